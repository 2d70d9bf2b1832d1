//! MAIL and RCPT parameters (RFC 1869 keywords), checked in aiosmtpd's order.

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

/// Checks MAIL parameters. `smtp_utf8` receives the SMTPUTF8 flag as soon as that
/// parameter has been validated (aiosmtpd sets `envelope.smtp_utf8` there, before
/// the SIZE check).
pub(crate) fn check_mail(
    options: &[String],
    smtputf8_enabled: bool,
    size_limit: Option<usize>,
    smtp_utf8: &mut bool,
) -> Result<(), ParamError> {
    if !all_valid(options) {
        return Err(ParamError::Syntax);
    }
    let take = |name: &str| param(options, name);
    match take("BODY") {
        None | Some(Some("7BIT")) | Some(Some("8BITMIME")) => {}
        Some(_) => return Err(ParamError::Body),
    }
    match take("SMTPUTF8") {
        None => *smtp_utf8 = false,
        Some(Some(_)) => return Err(ParamError::SmtpUtf8Argument),
        Some(None) if !smtputf8_enabled => return Err(ParamError::SmtpUtf8Disabled),
        Some(None) => *smtp_utf8 = true,
    }
    match take("SIZE") {
        None => {}
        Some(None) => return Err(ParamError::Syntax),
        Some(Some(v)) => {
            if !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParamError::Syntax);
            }
            if let Some(limit) = size_limit {
                // Arbitrary length: compare without overflowing.
                let v = v.trim_start_matches('0');
                let too_big = v.len() > 20 || v.parse::<u128>().is_ok_and(|n| n > limit as u128);
                if too_big {
                    return Err(ParamError::TooBig);
                }
            }
        }
    }
    let known = |(k, _): (&str, Option<&str>)| matches!(k, "BODY" | "SMTPUTF8" | "SIZE");
    if options.iter().filter_map(|o| split_param(o)).all(known) {
        Ok(())
    } else {
        Err(ParamError::Unknown)
    }
}

/// Checks RCPT parameters: aiosmtpd recognises none.
pub(crate) fn check_rcpt(options: &[String]) -> Result<(), ParamError> {
    if !all_valid(options) {
        Err(ParamError::Syntax)
    } else if options.is_empty() {
        Ok(())
    } else {
        Err(ParamError::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(s: &str, utf8: bool, limit: Option<usize>) -> Result<bool, ParamError> {
        let mut flag = false;
        check_mail(&split_options(s), utf8, limit, &mut flag).map(|()| flag)
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
        assert_eq!(
            check_rcpt(&split_options("NOTIFY=NEVER")),
            Err(ParamError::Unknown)
        );
        assert_eq!(check_rcpt(&split_options("")), Ok(()));
    }
}
