//! SMTP replies: a typed three-digit code with text, and the wire encoding.

use std::borrow::Cow;
use std::fmt;

/// An SMTP reply: a three-digit code and its text.
///
/// Handlers answer with a `Reply` instead of aiosmtpd's reply strings. A text with
/// line breaks becomes a multi-line reply (`250-first`, `250 last`).
///
/// ```
/// use smtpkit::proto::Reply;
/// let r = Reply::new(550, "not relaying to that domain");
/// assert_eq!(r.to_string(), "550 not relaying to that domain");
/// assert!(r.is_negative());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    code: u16,
    text: Cow<'static, str>,
}

impl Reply {
    /// A reply with `code` (200-599; anything else is sent as `451`) and `text`.
    pub fn new(code: u16, text: impl Into<Cow<'static, str>>) -> Self {
        let code = if (200..=599).contains(&code) {
            code
        } else {
            451
        };
        Reply {
            code,
            text: text.into(),
        }
    }

    /// `250 OK`.
    pub fn ok() -> Self {
        Reply::new(250, "OK")
    }

    /// The three-digit code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The text after the code (line breaks separate the lines of a multi-line reply).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True for 2xx and 3xx replies.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// True for 4xx and 5xx replies.
    pub fn is_negative(&self) -> bool {
        self.code >= 400
    }

    /// Appends the wire form (`code SP text CRLF`, or `code-` lines for multi-line text).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        encode_lines(self.code, &self.text, out);
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {}", self.code, self.text)
    }
}

/// Writes `text` as one or more reply lines with `code` (split at `\n`, each
/// line without a trailing `\r`).
pub(crate) fn encode_lines(code: u16, text: &str, out: &mut Vec<u8>) {
    let mut rest = text.as_bytes();
    loop {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        push_code(code, if next.is_some() { b'-' } else { b' ' }, out);
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        match next {
            Some(next) => rest = next,
            None => return,
        }
    }
}

/// Writes one reply line exactly as given (the engine's own texts, which may echo
/// client bytes the way aiosmtpd does).
pub(crate) fn push_line(code: u16, sep: u8, text: &[&[u8]], out: &mut Vec<u8>) {
    push_code(code, sep, out);
    for part in text {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\n");
}

fn push_code(code: u16, sep: u8, out: &mut Vec<u8>) {
    let code = code.min(999);
    out.extend_from_slice(&[
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
        sep,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line() {
        let mut out = Vec::new();
        Reply::new(250, "OK").encode(&mut out);
        Reply::new(250, "a\r\nb\nc").encode(&mut out);
        assert_eq!(out, b"250 OK\r\n250-a\r\n250-b\r\n250 c\r\n");
        // Python's split: a trailing line break makes an empty last line, and
        // only one `\r` before each `\n` is dropped.
        out.clear();
        encode_lines(451, "x\r\r\n\n", &mut out);
        assert_eq!(out, b"451-x\r\r\n451-\r\n451 \r\n");
        out.clear();
        encode_lines(250, "", &mut out);
        assert_eq!(out, b"250 \r\n");
    }

    #[test]
    fn out_of_range_code() {
        assert_eq!(Reply::new(99, "x").code(), 451);
        assert_eq!(Reply::new(600, "x").code(), 451);
    }
}
