//! Delivery Status Notification parameters (RFC 3461): `RET` and `ENVID` on
//! MAIL, `NOTIFY` and `ORCPT` on RCPT, with xtext decoding. Parsed from the
//! parameters as the client sent them (aiosmtpd uppercases its option lists;
//! an ENVID or ORCPT keeps its case here).

/// `RET=`: what a bounce should carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DsnReturn {
    /// `RET=FULL`: the whole message.
    Full,
    /// `RET=HDRS`: its headers only.
    Headers,
}

/// The DSN parameters of MAIL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MailDsn {
    /// `RET=FULL|HDRS`.
    pub ret: Option<DsnReturn>,
    /// `ENVID=`, xtext-decoded: the sender's identifier of this transaction.
    pub envid: Option<String>,
}

/// `NOTIFY=`: when the sender wants a notification. All false is `NEVER`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Notify {
    /// `SUCCESS`.
    pub success: bool,
    /// `FAILURE`.
    pub failure: bool,
    /// `DELAY`.
    pub delay: bool,
}

impl Notify {
    /// `NOTIFY=NEVER`.
    pub fn is_never(&self) -> bool {
        !(self.success || self.failure || self.delay)
    }
}

/// `ORCPT=addr-type;xtext`: the recipient as the sender first addressed it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OriginalRecipient {
    /// The address type as sent, e.g. `rfc822`.
    pub addr_type: String,
    /// The address, xtext-decoded.
    pub address: String,
}

/// The DSN parameters of one RCPT.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RcptDsn {
    /// `NOTIFY=`.
    pub notify: Option<Notify>,
    /// `ORCPT=`.
    pub orcpt: Option<OriginalRecipient>,
}

impl MailDsn {
    /// True when neither `RET` nor `ENVID` was given.
    pub fn is_empty(&self) -> bool {
        self.ret.is_none() && self.envid.is_none()
    }

    /// The parameters to relay on a MAIL command, each with its leading
    /// space (`" RET=HDRS ENVID=QQ+2B1"`; empty when none was given).
    ///
    /// ```
    /// use smtpkit::proto::{DsnReturn, MailDsn};
    /// let dsn = MailDsn { ret: Some(DsnReturn::Full), envid: Some("a b+".into()) };
    /// assert_eq!(dsn.parameters(), " RET=FULL ENVID=a+20b+2B");
    /// ```
    pub fn parameters(&self) -> String {
        let mut out = String::new();
        match self.ret {
            Some(DsnReturn::Full) => out.push_str(" RET=FULL"),
            Some(DsnReturn::Headers) => out.push_str(" RET=HDRS"),
            None => {}
        }
        if let Some(envid) = &self.envid {
            out.push_str(" ENVID=");
            out.push_str(&encode_xtext(envid));
        }
        out
    }
}

impl RcptDsn {
    /// True when neither `NOTIFY` nor `ORCPT` was given.
    pub fn is_empty(&self) -> bool {
        self.notify.is_none() && self.orcpt.is_none()
    }

    /// The parameters to relay on a RCPT command, each with its leading space
    /// (`" NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@example.com"`).
    ///
    /// ```
    /// use smtpkit::proto::{Notify, OriginalRecipient, RcptDsn};
    /// let dsn = RcptDsn {
    ///     notify: Some(Notify { failure: true, delay: true, ..Notify::default() }),
    ///     orcpt: Some(OriginalRecipient { addr_type: "rfc822".into(), address: "a+b@x".into() }),
    /// };
    /// assert_eq!(dsn.parameters(), " NOTIFY=FAILURE,DELAY ORCPT=rfc822;a+2Bb@x");
    /// ```
    pub fn parameters(&self) -> String {
        let mut out = String::new();
        if let Some(notify) = self.notify {
            out.push_str(" NOTIFY=");
            if notify.is_never() {
                out.push_str("NEVER");
            } else {
                let names = [
                    (notify.success, "SUCCESS"),
                    (notify.failure, "FAILURE"),
                    (notify.delay, "DELAY"),
                ];
                let on: Vec<&str> = names
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| *n)
                    .collect();
                out.push_str(&on.join(","));
            }
        }
        if let Some(orcpt) = &self.orcpt {
            out.push_str(" ORCPT=");
            out.push_str(&orcpt.addr_type);
            out.push(';');
            out.push_str(&encode_xtext(&orcpt.address));
        }
        out
    }
}

/// Encodes `text` as RFC 3461 xtext: `+`, `=` and every byte outside `!`..`~`
/// become `+XX`.
pub fn encode_xtext(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// Why a DSN parameter was refused (`501 5.5.4`); the name is the parameter's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DsnError {
    /// The parameter came twice.
    Duplicate(&'static str),
    /// Its value is not what RFC 3461 allows.
    Invalid(&'static str),
}

/// RFC 3461 §4.4: an ENVID is at most 100 characters (its xtext form).
const ENVID_MAX: usize = 100;
/// RFC 3461 §4.2: an ORCPT is at most 500 characters.
const ORCPT_MAX: usize = 500;

/// The words of a parameter string, as aiosmtpd splits it (Python's white space).
fn words(raw: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    raw.split(super::address::py_space)
        .filter(|w| !w.is_empty())
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (w, None),
        })
}

/// True when `key` is `name` once uppercased as aiosmtpd (and `params.rs`)
/// uppercase parameters: Python's `str.upper`, so that both agree on which
/// parameter a key is (`notıfy` is `NOTIFY` there).
fn is(key: &str, name: &str) -> bool {
    if key.is_ascii() {
        key.eq_ignore_ascii_case(name)
    } else {
        key.to_uppercase() == name
    }
}

/// Stores `value` in `slot`, refusing a second one.
fn once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), DsnError> {
    if slot.is_some() {
        return Err(DsnError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

/// The DSN parameters among MAIL's (other parameters are left to the caller).
pub(crate) fn parse_mail(raw: &str) -> Result<MailDsn, DsnError> {
    let mut dsn = MailDsn::default();
    for (key, value) in words(raw) {
        if is(key, "RET") {
            let ret = match value {
                Some(v) if v.eq_ignore_ascii_case("FULL") => DsnReturn::Full,
                Some(v) if v.eq_ignore_ascii_case("HDRS") => DsnReturn::Headers,
                _ => return Err(DsnError::Invalid("RET")),
            };
            once(&mut dsn.ret, ret, "RET")?;
        } else if is(key, "ENVID") {
            let envid = value
                .filter(|v| v.len() <= ENVID_MAX)
                .and_then(decode_xtext)
                .ok_or(DsnError::Invalid("ENVID"))?;
            once(&mut dsn.envid, envid, "ENVID")?;
        }
    }
    Ok(dsn)
}

/// The DSN parameters among RCPT's.
pub(crate) fn parse_rcpt(raw: &str) -> Result<RcptDsn, DsnError> {
    let mut dsn = RcptDsn::default();
    for (key, value) in words(raw) {
        if is(key, "NOTIFY") {
            let notify = value
                .and_then(parse_notify)
                .ok_or(DsnError::Invalid("NOTIFY"))?;
            once(&mut dsn.notify, notify, "NOTIFY")?;
        } else if is(key, "ORCPT") {
            let orcpt = value
                .filter(|v| v.len() <= ORCPT_MAX)
                .and_then(parse_orcpt)
                .ok_or(DsnError::Invalid("ORCPT"))?;
            once(&mut dsn.orcpt, orcpt, "ORCPT")?;
        }
    }
    Ok(dsn)
}

/// `NEVER`, or a list of `SUCCESS`, `FAILURE` and `DELAY` (each at most once).
fn parse_notify(value: &str) -> Option<Notify> {
    if value.eq_ignore_ascii_case("NEVER") {
        return Some(Notify::default());
    }
    let mut notify = Notify::default();
    for item in value.split(',') {
        let flag = if item.eq_ignore_ascii_case("SUCCESS") {
            &mut notify.success
        } else if item.eq_ignore_ascii_case("FAILURE") {
            &mut notify.failure
        } else if item.eq_ignore_ascii_case("DELAY") {
            &mut notify.delay
        } else {
            return None; // NEVER among others, an empty item, a typo
        };
        if std::mem::replace(flag, true) {
            return None;
        }
    }
    Some(notify)
}

/// `addr-type ";" xtext`, the type an atom (RFC 3461 §4.2).
fn parse_orcpt(value: &str) -> Option<OriginalRecipient> {
    let (addr_type, xtext) = value.split_once(';')?;
    let atom = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    if addr_type.is_empty() || !addr_type.bytes().all(atom) || xtext.is_empty() {
        return None;
    }
    Some(OriginalRecipient {
        addr_type: addr_type.to_owned(),
        address: decode_xtext(xtext)?,
    })
}

/// Decodes RFC 3461 xtext: printable ASCII but `+` and `=` stand for
/// themselves, `+XX` (two hex digits) for any octet. `None` when malformed or
/// when the octets are not UTF-8.
pub(crate) fn decode_xtext(xtext: &str) -> Option<String> {
    let bytes = xtext.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let digit = |b: u8| (b as char).to_digit(16);
                out.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
                i += 3;
            }
            b'!'..=b'~' if bytes[i] != b'=' => {
                out.push(bytes[i]);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext() {
        assert_eq!(decode_xtext("abc").as_deref(), Some("abc"));
        assert_eq!(decode_xtext("a+2Bb+3Dc").as_deref(), Some("a+b=c"));
        assert_eq!(decode_xtext("+2b").as_deref(), Some("+"));
        assert_eq!(decode_xtext(""), Some(String::new()));
        for bad in [
            "a=b",
            "a+",
            "a+2",
            "a+zz",
            "a b",
            "caf\u{e9}",
            "+FF",
            "a\u{7f}",
        ] {
            assert_eq!(decode_xtext(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parameters_round_trip() {
        let raw = "RET=HDRS ENVID=Q+2B1+20x";
        let dsn = parse_mail(raw).unwrap();
        assert_eq!(dsn.parameters().trim_start(), raw);
        let raw = "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+3Dc@x";
        assert_eq!(parse_rcpt(raw).unwrap().parameters().trim_start(), raw);
        assert_eq!(
            parse_rcpt("NOTIFY=NEVER").unwrap().parameters(),
            " NOTIFY=NEVER"
        );
        assert!(MailDsn::default().is_empty() && RcptDsn::default().is_empty());
    }

    #[test]
    fn mail_parameters() {
        // RFC 3461 §4.3's and §4.4's forms.
        let dsn = parse_mail("RET=HDRS ENVID=QQ314159+2Bx SIZE=10").unwrap();
        assert_eq!(dsn.ret, Some(DsnReturn::Headers));
        assert_eq!(dsn.envid.as_deref(), Some("QQ314159+x"));
        assert_eq!(parse_mail("ret=full").unwrap().ret, Some(DsnReturn::Full));
        assert_eq!(parse_mail("BODY=8BITMIME"), Ok(MailDsn::default()));
        assert_eq!(parse_mail("RET=ALL"), Err(DsnError::Invalid("RET")));
        assert_eq!(parse_mail("RET"), Err(DsnError::Invalid("RET")));
        assert_eq!(
            parse_mail("RET=FULL RET=HDRS"),
            Err(DsnError::Duplicate("RET"))
        );
        assert_eq!(parse_mail("ENVID=a=b"), Err(DsnError::Invalid("ENVID")));
        let long = format!("ENVID={}", "x".repeat(101));
        assert_eq!(parse_mail(&long), Err(DsnError::Invalid("ENVID")));
        assert_eq!(
            parse_mail("ENVID=a ENVID=b"),
            Err(DsnError::Duplicate("ENVID"))
        );
    }

    #[test]
    fn rcpt_parameters() {
        let dsn = parse_rcpt("NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Bob+40Example.COM").unwrap();
        assert_eq!(
            dsn.notify,
            Some(Notify {
                success: true,
                failure: false,
                delay: true
            })
        );
        let orcpt = dsn.orcpt.unwrap();
        assert_eq!(orcpt.addr_type, "rfc822");
        assert_eq!(orcpt.address, "Bob@Example.COM");
        assert!(
            parse_rcpt("notify=never")
                .unwrap()
                .notify
                .unwrap()
                .is_never()
        );
        for bad in [
            "NOTIFY=NEVER,SUCCESS",
            "NOTIFY=SUCCESS,SUCCESS",
            "NOTIFY=",
            "NOTIFY",
            "NOTIFY=SOMETIMES",
            "NOTIFY=SUCCESS,",
        ] {
            assert_eq!(parse_rcpt(bad), Err(DsnError::Invalid("NOTIFY")), "{bad}");
        }
        for bad in [
            "ORCPT=rfc822",
            "ORCPT=;a@b",
            "ORCPT=rfc822;",
            "ORCPT=rf(c;a",
            "ORCPT=x;a=b",
        ] {
            assert_eq!(parse_rcpt(bad), Err(DsnError::Invalid("ORCPT")), "{bad}");
        }
        assert_eq!(
            parse_rcpt("NOTIFY=NEVER NOTIFY=NEVER"),
            Err(DsnError::Duplicate("NOTIFY"))
        );
        assert_eq!(
            parse_rcpt("ORCPT=a;b ORCPT=a;b"),
            Err(DsnError::Duplicate("ORCPT"))
        );
    }
}
