//! Splitting a command line into verb and argument, aiosmtpd's way, and the
//! command table (names and HELP syntax texts).

/// The commands the engine knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `HELO hostname`
    Helo,
    /// `EHLO hostname`
    Ehlo,
    /// `MAIL FROM:<address> [params]`
    Mail,
    /// `RCPT TO:<address> [params]`
    Rcpt,
    /// `DATA`
    Data,
    /// `RSET`
    Rset,
    /// `NOOP [ignored]`
    Noop,
    /// `QUIT`
    Quit,
    /// `VRFY <address>`
    Vrfy,
    /// `EXPN` (always 502)
    Expn,
    /// `HELP [command]`
    Help,
    /// `STARTTLS`
    StartTls,
    /// `AUTH <mechanism>`
    Auth,
    /// `LHLO hostname` (LMTP only)
    Lhlo,
    /// `BDAT size [LAST]` (with CHUNKING on)
    Bdat,
}

impl Verb {
    /// Looks up an uppercase command name.
    pub fn from_upper(name: &[u8]) -> Option<Verb> {
        Some(match name {
            b"HELO" => Verb::Helo,
            b"EHLO" => Verb::Ehlo,
            b"MAIL" => Verb::Mail,
            b"RCPT" => Verb::Rcpt,
            b"DATA" => Verb::Data,
            b"RSET" => Verb::Rset,
            b"NOOP" => Verb::Noop,
            b"QUIT" => Verb::Quit,
            b"VRFY" => Verb::Vrfy,
            b"EXPN" => Verb::Expn,
            b"HELP" => Verb::Help,
            b"STARTTLS" => Verb::StartTls,
            b"AUTH" => Verb::Auth,
            b"LHLO" => Verb::Lhlo,
            b"BDAT" => Verb::Bdat,
            _ => return None,
        })
    }

    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Helo => "HELO",
            Verb::Ehlo => "EHLO",
            Verb::Mail => "MAIL",
            Verb::Rcpt => "RCPT",
            Verb::Data => "DATA",
            Verb::Rset => "RSET",
            Verb::Noop => "NOOP",
            Verb::Quit => "QUIT",
            Verb::Vrfy => "VRFY",
            Verb::Expn => "EXPN",
            Verb::Help => "HELP",
            Verb::StartTls => "STARTTLS",
            Verb::Auth => "AUTH",
            Verb::Lhlo => "LHLO",
            Verb::Bdat => "BDAT",
        }
    }

    /// The HELP syntax text (aiosmtpd's `@syntax`), and the ESMTP suffix.
    pub(crate) fn syntax(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Verb::Helo => ("HELO hostname", ""),
            Verb::Ehlo => ("EHLO hostname", ""),
            Verb::Mail => ("MAIL FROM: <address>", " [SP <mail-parameters>]"),
            Verb::Rcpt => ("RCPT TO: <address>", " [SP <mail-parameters>]"),
            Verb::Data => ("DATA", ""),
            Verb::Rset => ("RSET", ""),
            Verb::Noop => ("NOOP [ignored]", ""),
            Verb::Quit => ("QUIT", ""),
            Verb::Vrfy => ("VRFY <address>", ""),
            Verb::Help => ("HELP [command]", ""),
            Verb::StartTls => ("STARTTLS", ""),
            Verb::Auth => ("AUTH <mechanism>", ""),
            Verb::Lhlo => ("LHLO hostname", ""),
            Verb::Expn | Verb::Bdat => return None,
        })
    }
}

/// Commands listed by HELP without TLS, sorted as aiosmtpd sorts them.
pub(crate) const HELP_LIST: &str = "AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY";
/// Commands listed by HELP in LMTP mode.
pub(crate) const HELP_LIST_LMTP: &str = "AUTH DATA HELP LHLO MAIL NOOP QUIT RCPT RSET VRFY";
/// Commands listed by HELP in LMTP mode when STARTTLS is offered.
pub(crate) const HELP_LIST_LMTP_TLS: &str =
    "AUTH DATA HELP LHLO MAIL NOOP QUIT RCPT RSET STARTTLS VRFY";
/// Commands listed by HELP when STARTTLS is offered.
pub(crate) const HELP_LIST_TLS: &str =
    "AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY";

/// BDAT's argument (RFC 3030): `chunk-size [SP "LAST"]`, the size 1 to 20
/// digits that fit a `usize`, `LAST` in any case; `None` otherwise.
pub(crate) fn parse_bdat(arg: Option<&[u8]>) -> Option<(usize, bool)> {
    let arg = arg?;
    let (size, last) = match memchr::memchr(b' ', arg) {
        Some(i) => (&arg[..i], Some(&arg[i + 1..])),
        None => (arg, None),
    };
    let last = match last {
        None => false,
        Some(word) if word.eq_ignore_ascii_case(b"LAST") => true,
        Some(_) => return None,
    };
    if size.is_empty() || size.len() > 20 || !size.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(size).ok()?.parse().ok()?;
    Some((size, last))
}

/// A command line split aiosmtpd's way: the first token (up to the first space),
/// and the rest with ASCII whitespace stripped (`None` when empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawCommand<'a> {
    /// The command word as sent.
    pub word: &'a [u8],
    /// The argument, stripped.
    pub arg: Option<&'a [u8]>,
}

/// Removes every trailing CR and LF (Python's `rstrip(b"\r\n")`).
pub fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    &line[..end]
}

/// Splits a (non-empty, line-end-trimmed) line at the first space.
pub fn split(line: &[u8]) -> RawCommand<'_> {
    match memchr::memchr(b' ', line) {
        Some(i) => {
            let arg = line[i + 1..].trim_ascii_and_python_ws();
            RawCommand {
                word: &line[..i],
                arg: if arg.is_empty() { None } else { Some(arg) },
            }
        }
        None => RawCommand {
            word: line,
            arg: None,
        },
    }
}

/// Python's `bytes.strip()`.
pub(crate) fn trim_python_ws(b: &[u8]) -> &[u8] {
    b.trim_ascii_and_python_ws()
}

trait PyStrip {
    fn trim_ascii_and_python_ws(&self) -> &[u8];
}

impl PyStrip for [u8] {
    /// Python's `bytes.strip()`: space, \t, \n, \r, \x0b, \x0c.
    fn trim_ascii_and_python_ws(&self) -> &[u8] {
        let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
        let start = self.iter().position(|b| !ws(b)).unwrap_or(self.len());
        let end = self.iter().rposition(|b| !ws(b)).map_or(start, |e| e + 1);
        &self[start..end.max(start)]
    }
}

/// Python's `str.strip()` for the whitespace that matters in arguments.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdat_arguments() {
        assert_eq!(parse_bdat(Some(b"0 LAST")), Some((0, true)));
        assert_eq!(parse_bdat(Some(b"86")), Some((86, false)));
        assert_eq!(parse_bdat(Some(b"007 last")), Some((7, true)));
        for bad in [
            &b""[..],
            b"x",
            b"-1",
            b"1 LAST X",
            b"1  LAST",
            b"1 FIRST",
            b"1.5",
            b"99999999999999999999999",
            b" 1",
        ] {
            assert_eq!(
                parse_bdat(Some(bad)),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_bdat(None), None);
    }

    #[test]
    fn split_like_aiosmtpd() {
        assert_eq!(
            split(b"MAIL FROM:<a@b> "),
            RawCommand {
                word: b"MAIL",
                arg: Some(b"FROM:<a@b>")
            }
        );
        assert_eq!(split(b"NOOP  ").arg, None);
        assert_eq!(split(b"MAIL\tFROM:<a@b>").word, b"MAIL\tFROM:<a@b>");
        assert_eq!(trim_line_end(b"QUIT\r\r\n"), b"QUIT");
    }
}
