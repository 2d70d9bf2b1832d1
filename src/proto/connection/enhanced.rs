//! ENHANCEDSTATUSCODES (RFC 2034, RFC 3463): with the extension on, in an EHLO
//! session, every reply line that does not carry a status code gets one as it
//! is handed out: the command's own for a success (`2.1.0` MAIL, `2.1.5` RCPT,
//! `2.0.0` the rest), and for a failure the one its reply code means (`5.5.1`
//! bad sequence, `5.5.4` bad parameter, `5.3.4` too big, `5.7.0` AUTH or
//! STARTTLS required...). The greeting, the EHLO reply and 3xx replies (which
//! RFC 3463 has no class for) are left as they are, and so is every reply
//! to HELO, EHLO or LHLO (RFC 2034 §3); a line that already
//! carries a code, the engine's or a handler's, keeps it.
//!
//! The replies are written without codes by every part of the engine; a
//! [`Marker`] remembers where the lines not yet marked start and which command
//! they answer, and `mark_replies` adds the codes when that changes (a new
//! command, a hook's answer) or when the replies go out.

use super::super::Verb;
use super::Connection;

/// Where the replies not yet marked start, and what they answer.
#[derive(Debug, Default)]
pub(super) struct Marker {
    /// Offset in the output of the first line not marked yet.
    from: usize,
    /// The command they answer (`None`: none known, e.g. an unparsable line).
    context: Option<Verb>,
    /// Where the unmarked lines are copied while marking (kept for reuse).
    scratch: Vec<u8>,
}

impl Marker {
    /// The output was emptied (sent): marking starts again at its start.
    pub(super) fn rewind(&mut self) {
        self.from = 0;
    }
}

impl Connection {
    /// True when replies get enhanced status codes now: in an EHLO session,
    /// and not for replies to HELO, EHLO or LHLO (RFC 2034 §3 excludes them
    /// with the greeting).
    fn enhancing(&self) -> bool {
        self.config.extensions.enhanced_status_codes
            && self.session.extended_smtp
            && !matches!(
                self.enhance.context,
                Some(Verb::Helo | Verb::Ehlo | Verb::Lhlo)
            )
    }

    /// Adds the codes to the replies written since the last mark.
    pub(super) fn mark_replies(&mut self) {
        let enhancing = self.enhancing();
        let out = &mut self.output.bytes;
        let marker = &mut self.enhance;
        if marker.from < out.len() && enhancing {
            add_codes(out, marker.from, marker.context, None, &mut marker.scratch);
        }
        marker.from = out.len();
    }

    /// Replies from now on answer `verb`.
    pub(super) fn answering(&mut self, verb: Option<Verb>) {
        self.mark_replies();
        self.enhance.context = verb;
    }

    /// Writes a reply that never carries a code (the greeting, EHLO's).
    pub(super) fn push_uncoded(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.mark_replies();
        write(&mut self.output.bytes);
        self.enhance.from = self.output.bytes.len();
    }

    /// Writes a failure reply whose status code is not the one its reply code
    /// means (e.g. an unknown command: 500 is a syntax error, `5.5.2`, but RFC
    /// 3463 calls an unsupported command `5.5.1`).
    pub(super) fn push_with_status(
        &mut self,
        status: &'static str,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        self.mark_replies();
        write(&mut self.output.bytes);
        if self.enhancing() {
            let marker = &mut self.enhance;
            let out = &mut self.output.bytes;
            add_codes(
                out,
                marker.from,
                marker.context,
                Some(status),
                &mut marker.scratch,
            );
        }
        self.enhance.from = self.output.bytes.len();
    }
}

/// Inserts a status code into each line of `out[from..]` that lacks one.
fn add_codes(
    out: &mut Vec<u8>,
    from: usize,
    context: Option<Verb>,
    status: Option<&'static str>,
    scratch: &mut Vec<u8>,
) {
    scratch.clear();
    scratch.extend_from_slice(&out[from..]);
    out.truncate(from);
    for line in scratch.split_inclusive(|&b| b == b'\n') {
        let code = line
            .get(..3)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(|d| d.iter().fold(0u16, |n, &b| n * 10 + u16::from(b - b'0')));
        let text = line.get(4..).unwrap_or_default();
        match code {
            Some(code) if matches!(code / 100, 2 | 4 | 5) && !has_status(text) => {
                out.extend_from_slice(&line[..4]);
                out.extend_from_slice(
                    status
                        .unwrap_or_else(|| default_status(code, context))
                        .as_bytes(),
                );
                out.push(b' ');
                out.extend_from_slice(text);
            }
            _ => out.extend_from_slice(line),
        }
    }
}

/// True when `text` starts with `class.subject.detail` (RFC 3463: a class of
/// 2, 4 or 5, then one to three digits twice) and a space or the line's end.
fn has_status(text: &[u8]) -> bool {
    let end = text
        .iter()
        .position(|&b| matches!(b, b' ' | b'\r' | b'\n'))
        .unwrap_or(text.len());
    let number = |p: &[u8]| (1..=3).contains(&p.len()) && p.iter().all(u8::is_ascii_digit);
    let mut parts = text[..end].split(|&b| b == b'.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some([b'2' | b'4' | b'5']), Some(subject), Some(detail), None)
            if number(subject) && number(detail)
    )
}

/// The status code a reply code stands for (RFC 3463's meanings of RFC 5321's
/// codes); for a success, the command's.
fn default_status(code: u16, context: Option<Verb>) -> &'static str {
    match code {
        200..=299 => match context {
            Some(Verb::Mail) => "2.1.0",
            Some(Verb::Rcpt) => "2.1.5",
            _ => "2.0.0",
        },
        421 => "4.3.2",
        451 => "4.3.0",
        452 => "4.3.1",
        454 => "4.7.0",
        500 => "5.5.2",
        501 | 504 | 555 => "5.5.4",
        502 | 503 => "5.5.1",
        530 => "5.7.0",
        534 => "5.7.9",
        535 => "5.7.8",
        538 => "5.7.11",
        552 => "5.3.4",
        553 => "5.1.3",
        400..=499 => "4.0.0",
        _ => "5.0.0",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coded(replies: &str, context: Option<Verb>) -> String {
        let mut out = b"220 greeting\r\n".to_vec();
        out.extend_from_slice(replies.as_bytes());
        add_codes(&mut out, 14, context, None, &mut Vec::new());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn codes_are_added_once() {
        assert_eq!(
            coded("250 OK\r\n", Some(Verb::Mail)),
            "220 greeting\r\n250 2.1.0 OK\r\n"
        );
        assert_eq!(
            coded("250 OK\r\n", Some(Verb::Rcpt)),
            "220 greeting\r\n250 2.1.5 OK\r\n"
        );
        assert_eq!(
            coded("250-a\r\n250 b\r\n354 go\r\n", None),
            "220 greeting\r\n250-2.0.0 a\r\n250 2.0.0 b\r\n354 go\r\n"
        );
        assert_eq!(
            coded(
                "550 5.1.1 no such user\r\n503 Error: need MAIL command\r\n",
                None
            ),
            "220 greeting\r\n550 5.1.1 no such user\r\n503 5.5.1 Error: need MAIL command\r\n"
        );
        assert_eq!(coded("552 x\r\n", None), "220 greeting\r\n552 5.3.4 x\r\n");
        assert_eq!(coded("250 \r\n", None), "220 greeting\r\n250 2.0.0 \r\n");
        assert_eq!(
            coded("250 2.1.0\r\n", None),
            "220 greeting\r\n250 2.1.0\r\n"
        );
    }

    #[test]
    fn what_counts_as_a_status_code() {
        for yes in ["2.0.0 OK", "5.7.10 x", "4.123.456", "5.1.1\r\n"] {
            assert!(has_status(yes.as_bytes()), "{yes}");
        }
        for no in [
            "OK",
            "2.0 OK",
            "25.0.0 x",
            "2.0.0x",
            "3.0.0 x",
            "2.1234.0 x",
            ".2.0.0",
            "2..0 x",
            "",
        ] {
            assert!(!has_status(no.as_bytes()), "{no}");
        }
    }
}
