//! MAIL and RCPT parameters (RFC 1869 keywords), checked in aiosmtpd's order,
//! and those of the opt-in extensions (BODY=BINARYMIME, REQUIRETLS, DSN's).

use super::dsn::{self, DsnError, MailDsn, RcptDsn};
use super::{BodyType, Extensions};

/// Why MAIL parameters were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamError {
    /// Malformed keyword or value: the command's `501 Syntax:` reply.
    Syntax,
    /// `501 Error: BODY can only be one of 7BIT, 8BITMIME`.
    Body,
    /// `501 Error: SMTPUTF8 takes no arguments`.
    SmtpUtf8Argument,
    /// `501 Error: SMTPUTF8 disabled`.
    SmtpUtf8Disabled,
    /// `552 Error: message size exceeds fixed maximum message size`.
    TooBig,
    /// `555 ... parameters not recognized or not implemented`.
    Unknown,
    /// With BINARYMIME: `501 5.5.4 Error: BODY can only be one of 7BIT,
    /// 8BITMIME, BINARYMIME`.
    BodyWithBinary,
    /// `REQUIRETLS` outside TLS: `530 5.7.10`.
    RequireTlsWithoutTls,
    /// A DSN parameter that RFC 3461 does not allow: `501 5.5.4`.
    Dsn(DsnError),
}

/// What MAIL's parameters are checked against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MailChecks {
    /// SMTPUTF8 is offered.
    pub smtputf8: bool,
    /// The SIZE limit.
    pub size_limit: Option<usize>,
    /// The opt-in extensions.
    pub extensions: Extensions,
    /// The connection is TLS (REQUIRETLS).
    pub tls: bool,
}

/// What MAIL's accepted parameters say, typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MailParams {
    /// `BODY=`.
    pub body: Option<BodyType>,
    /// `REQUIRETLS`.
    pub require_tls: bool,
    /// `RET=` and `ENVID=`.
    pub dsn: MailDsn,
}

/// Splits the parameter string as aiosmtpd does: uppercased, on Python's white
/// space (`str.split()`).
pub(crate) fn split_options(rest: &str) -> Vec<String> {
    rest.to_uppercase()
        .split(super::address::py_space)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One of aiosmtpd's `_getparams` items: `KEY` or `KEY=VALUE`, key
/// alphanumeric, value non-empty; `None` on a syntax error.
fn split_param(opt: &str) -> Option<(&str, Option<&str>)> {
    let (key, value) = match opt.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (opt, None),
    };
    if key.is_empty() || !key.chars().all(char::is_alphanumeric) || value == Some("") {
        return None;
    }
    Some((key, value))
}

/// True when every parameter is well formed (aiosmtpd's `_getparams` is not None).
fn all_valid(options: &[String]) -> bool {
    options.iter().all(|o| split_param(o).is_some())
}

/// The value of parameter `name` (later duplicates win, as in aiosmtpd's dict):
/// `None` when absent, `Some(None)` for a bare keyword.
fn param<'a>(options: &'a [String], name: &str) -> Option<Option<&'a str>> {
    options
        .iter()
        .rev()
        .filter_map(|o| split_param(o))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Checks MAIL parameters (`options` uppercased, `raw` as sent). `smtp_utf8`
/// receives the SMTPUTF8 flag as soon as that parameter has been validated
/// (aiosmtpd sets `envelope.smtp_utf8` there, before the SIZE check).
pub(crate) fn check_mail(
    options: &[String],
    raw: &str,
    checks: &MailChecks,
    smtp_utf8: &mut bool,
) -> Result<MailParams, ParamError> {
    if !all_valid(options) {
        return Err(ParamError::Syntax);
    }
    let ext = checks.extensions;
    let take = |name: &str| param(options, name);
    let body = match take("BODY") {
        None => None,
        Some(Some("7BIT")) => Some(BodyType::SevenBit),
        Some(Some("8BITMIME")) => Some(BodyType::EightBitMime),
        Some(Some("BINARYMIME")) if ext.binary_mime() => Some(BodyType::BinaryMime),
        Some(_) if ext.binary_mime() => return Err(ParamError::BodyWithBinary),
        Some(_) => return Err(ParamError::Body),
    };
    match take("SMTPUTF8") {
        None => *smtp_utf8 = false,
        Some(Some(_)) => return Err(ParamError::SmtpUtf8Argument),
        Some(None) if !checks.smtputf8 => return Err(ParamError::SmtpUtf8Disabled),
        Some(None) => *smtp_utf8 = true,
    }
    match take("SIZE") {
        None => {}
        Some(None) => return Err(ParamError::Syntax),
        Some(Some(v)) => {
            if !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParamError::Syntax);
            }
            if let Some(limit) = checks.size_limit {
                // Arbitrary length: compare without overflowing.
                let v = v.trim_start_matches('0');
                let too_big = v.len() > 20 || v.parse::<u128>().is_ok_and(|n| n > limit as u128);
                if too_big {
                    return Err(ParamError::TooBig);
                }
            }
        }
    }
    let mut typed = MailParams {
        body,
        ..MailParams::default()
    };
    if ext.requiretls {
        match take("REQUIRETLS") {
            None => {}
            Some(Some(_)) => return Err(ParamError::Syntax),
            Some(None) if !checks.tls => return Err(ParamError::RequireTlsWithoutTls),
            Some(None) => typed.require_tls = true,
        }
    }
    if ext.dsn {
        typed.dsn = dsn::parse_mail(raw).map_err(ParamError::Dsn)?;
    }
    let known = |(k, _): (&str, Option<&str>)| match k {
        "BODY" | "SMTPUTF8" | "SIZE" => true,
        "REQUIRETLS" => ext.requiretls,
        "RET" | "ENVID" => ext.dsn,
        _ => false,
    };
    if options.iter().filter_map(|o| split_param(o)).all(known) {
        Ok(typed)
    } else {
        Err(ParamError::Unknown)
    }
}

/// Checks RCPT parameters (`options` uppercased, `raw` as sent): aiosmtpd
/// recognises none; with DSN, NOTIFY and ORCPT.
pub(crate) fn check_rcpt(
    options: &[String],
    raw: &str,
    extensions: Extensions,
) -> Result<RcptDsn, ParamError> {
    if !all_valid(options) {
        return Err(ParamError::Syntax);
    }
    if options.is_empty() {
        return Ok(RcptDsn::default());
    }
    let known = |(k, _): (&str, Option<&str>)| extensions.dsn && matches!(k, "NOTIFY" | "ORCPT");
    if !options.iter().filter_map(|o| split_param(o)).all(known) {
        return Err(ParamError::Unknown);
    }
    dsn::parse_rcpt(raw).map_err(ParamError::Dsn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(smtputf8: bool, size_limit: Option<usize>) -> MailChecks {
        MailChecks {
            smtputf8,
            size_limit,
            extensions: Extensions::NONE,
            tls: false,
        }
    }

    fn mail(s: &str, utf8: bool, limit: Option<usize>) -> Result<bool, ParamError> {
        let mut flag = false;
        check_mail(&split_options(s), s, &checks(utf8, limit), &mut flag).map(|_| flag)
    }

    fn mail_ext(s: &str, extensions: &str, tls: bool) -> Result<MailParams, ParamError> {
        let checks = MailChecks {
            extensions: extensions.parse().unwrap(),
            tls,
            ..checks(false, Some(100))
        };
        check_mail(&split_options(s), s, &checks, &mut false)
    }

    fn rcpt(s: &str, extensions: &str) -> Result<RcptDsn, ParamError> {
        check_rcpt(&split_options(s), s, extensions.parse().unwrap())
    }

    #[test]
    fn mail_params() {
        assert_eq!(mail("", false, None), Ok(false));
        assert_eq!(mail("body=8bitmime size=10", false, Some(10)), Ok(false));
        assert_eq!(mail("SIZE=11", false, Some(10)), Err(ParamError::TooBig));
        assert_eq!(
            mail("SIZE=99999999999999999999999999", false, None),
            Ok(false)
        );
        assert_eq!(
            mail("SIZE=99999999999999999999999999", false, Some(1)),
            Err(ParamError::TooBig)
        );
        assert_eq!(mail("SIZE", false, None), Err(ParamError::Syntax));
        assert_eq!(mail("SIZE=", false, None), Err(ParamError::Syntax));
        assert_eq!(mail("SIZE=1a", false, None), Err(ParamError::Syntax));
        assert_eq!(mail("BODY", false, None), Err(ParamError::Body));
        assert_eq!(mail("BODY=BINARYMIME", false, None), Err(ParamError::Body));
        assert_eq!(
            mail("SMTPUTF8", false, None),
            Err(ParamError::SmtpUtf8Disabled)
        );
        assert_eq!(mail("SMTPUTF8", true, None), Ok(true));
        assert_eq!(
            mail("SMTPUTF8=X", true, None),
            Err(ParamError::SmtpUtf8Argument)
        );
        assert_eq!(mail("X-FOO=1", false, None), Err(ParamError::Syntax));
        assert_eq!(mail("RET=HDRS", false, None), Err(ParamError::Unknown));
        assert_eq!(rcpt("NOTIFY=NEVER", ""), Err(ParamError::Unknown));
        assert_eq!(rcpt("", ""), Ok(RcptDsn::default()));
        assert_eq!(rcpt("X=", "dsn"), Err(ParamError::Syntax));
    }

    #[test]
    fn extension_params() {
        // Each is unknown (555) without its extension, as in aiosmtpd.
        for p in ["REQUIRETLS", "RET=FULL", "ENVID=x"] {
            assert_eq!(mail_ext(p, "", true), Err(ParamError::Unknown), "{p}");
        }
        assert_eq!(
            mail_ext("BODY=BINARYMIME", "binarymime", false),
            Err(ParamError::Body)
        );
        let binary = mail_ext("BODY=BINARYMIME", "chunking,binarymime", false).unwrap();
        assert_eq!(binary.body, Some(BodyType::BinaryMime));
        assert_eq!(
            mail_ext("BODY=X", "chunking,binarymime", false),
            Err(ParamError::BodyWithBinary)
        );
        assert_eq!(
            mail_ext("REQUIRETLS", "requiretls", false),
            Err(ParamError::RequireTlsWithoutTls)
        );
        assert!(
            mail_ext("REQUIRETLS", "requiretls", true)
                .unwrap()
                .require_tls
        );
        assert_eq!(
            mail_ext("REQUIRETLS=1", "requiretls", true),
            Err(ParamError::Syntax)
        );
        let dsn = mail_ext("RET=HDRS ENVID=Ab+2B", "dsn", false).unwrap().dsn;
        assert_eq!(
            dsn.envid.as_deref(),
            Some("Ab+"),
            "the case is the client's"
        );
        assert_eq!(
            mail_ext("RET=FULL RET=FULL", "dsn", false),
            Err(ParamError::Dsn(DsnError::Duplicate("RET")))
        );
        assert_eq!(
            rcpt("NOTIFY=NEVER,DELAY", "dsn"),
            Err(ParamError::Dsn(DsnError::Invalid("NOTIFY")))
        );
        assert!(rcpt("ORCPT=rfc822;a+40b", "dsn").unwrap().orcpt.is_some());
        assert_eq!(rcpt("NOTIFY=NEVER XYZ=1", "dsn"), Err(ParamError::Unknown));
    }
}
