//! [`Debugging`]: prints every message, as aiosmtpd's `Debugging` handler.

use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use crate::proto::{Envelope, Session};
use crate::server::{Handler, HookResult};
use crate::{HandlerError, Outcome};

use super::message::Lines;

/// Prints each received message to a stream (stdout by default) and accepts it
/// with `250 OK`, as aiosmtpd's `Debugging` handler (the CLI's default handler).
///
/// The output for one message is, line by line (each ending with `\n`):
///
/// ```text
/// ---------- MESSAGE FOLLOWS ----------
/// mail options: ['SIZE=100', 'BODY=8BITMIME']     (only when there are MAIL options)
/// rcpt options: ['NOTIFY=NEVER']                  (only when there are RCPT options)
///                                                 (a blank line after either)
/// Subject: hi                                     (the content, line by line,
/// X-Peer: ('127.0.0.1', 44998)                     X-Peer before the first blank line)
///
/// Hello
/// ------------ END MESSAGE ------------
/// ```
///
/// Content lines are split as Python's `bytes.splitlines()` splits them (at
/// CRLF, CR or LF) and decoded as UTF-8 with invalid bytes replaced by U+FFFD.
/// `X-Peer` is never printed for content without a blank line.
///
/// Each message is formatted in memory and written with a single `write_all`,
/// then flushed, so messages from concurrent sessions never interleave. The
/// write happens inside the async hook and blocks it for as long as the
/// stream takes (as aiosmtpd's `print` does); a failed write makes the hook
/// fail (the client gets a `500` reply).
///
/// ```no_run
/// use smtpkit::{handlers::Debugging, tokio::Controller};
///
/// let mut controller = Controller::new(Debugging::stderr()).with_port(8025);
/// controller.start().unwrap();
/// ```
///
/// Writing into a buffer instead:
///
/// ```
/// use smtpkit::handlers::Debugging;
///
/// let handler = Debugging::with_writer(Vec::<u8>::new());
/// # let _ = handler;
/// ```
pub struct Debugging {
    stream: Mutex<Box<dyn Write + Send>>,
}

impl Debugging {
    /// Prints to the process's standard output (aiosmtpd's default).
    pub fn stdout() -> Self {
        Debugging::with_writer(io::stdout())
    }

    /// Prints to the process's standard error.
    pub fn stderr() -> Self {
        Debugging::with_writer(io::stderr())
    }

    /// Prints to `writer` (aiosmtpd's `Debugging(stream)`).
    pub fn with_writer(writer: impl Write + Send + 'static) -> Self {
        Debugging {
            stream: Mutex::new(Box::new(writer)),
        }
    }

    /// The handler for the command line's `-c Debugging [stdout|stderr]`: no
    /// argument or `stdout` prints to stdout, `stderr` to stderr; anything else
    /// is aiosmtpd's usage error.
    ///
    /// # Errors
    ///
    /// `Debugging usage: [stdout|stderr]` for any other arguments.
    pub fn from_cli_args(args: &[String]) -> Result<Self, String> {
        match args {
            [] => Ok(Debugging::stdout()),
            [arg] if arg == "stdout" => Ok(Debugging::stdout()),
            [arg] if arg == "stderr" => Ok(Debugging::stderr()),
            _ => Err("Debugging usage: [stdout|stderr]".to_owned()),
        }
    }

    /// The text printed for one message.
    fn format(session: &Session, envelope: &Envelope) -> String {
        let mut out = String::with_capacity(envelope.content.len() + 128);
        out.push_str("---------- MESSAGE FOLLOWS ----------\n");
        let mut separator = false;
        // aiosmtpd tests the list's truthiness for mail options and `any()` for
        // rcpt options.
        if !envelope.mail_options.is_empty() {
            out.push_str("mail options: ");
            push_list_repr(&mut out, &envelope.mail_options);
            out.push('\n');
            separator = true;
        }
        if envelope.rcpt_options.iter().any(|o| !o.is_empty()) {
            out.push_str("rcpt options: ");
            push_list_repr(&mut out, &envelope.rcpt_options);
            out.push('\n');
            separator = true;
        }
        if separator {
            out.push('\n');
        }
        let mut in_headers = true;
        for (line, _) in Lines::new(&envelope.content) {
            if in_headers && line.is_empty() {
                out.push_str("X-Peer: ");
                out.push_str(&session.peer.python_repr());
                out.push('\n');
                in_headers = false;
            }
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("------------ END MESSAGE ------------\n");
        out
    }
}

impl Default for Debugging {
    /// Prints to stdout.
    fn default() -> Self {
        Debugging::stdout()
    }
}

impl fmt::Debug for Debugging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Debugging").finish_non_exhaustive()
    }
}

impl Handler for Debugging {
    async fn handle_data(&self, session: &mut Session, envelope: &mut Envelope) -> HookResult {
        let text = Debugging::format(session, envelope);
        // A panic while holding the lock cannot leave the stream in a state
        // worse than a failed write; keep using it.
        let mut stream = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        stream
            .write_all(text.as_bytes())
            .and_then(|()| stream.flush())
            .map_err(HandlerError::from)?;
        Ok(Outcome::Default)
    }
}

/// Python's `repr()` of a list of strings: `['SIZE=100', 'BODY=8BITMIME']`.
fn push_list_repr(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_str_repr(out, item);
    }
    out.push(']');
}

/// Python's `repr()` of a string: single quotes unless the string contains a
/// single quote and no double quote; backslash escapes for the quote, `\\`,
/// `\t`, `\n`, `\r` and non-printable characters.
fn push_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ if c == quote => {
                out.push('\\');
                out.push(c);
            }
            _ if !is_printable(c) => {
                let n = u32::from(c);
                if n < 0x100 {
                    let _ = write!(out, "\\x{n:02x}");
                } else if n < 0x10000 {
                    let _ = write!(out, "\\u{n:04x}");
                } else {
                    let _ = write!(out, "\\U{n:08x}");
                }
            }
            _ => out.push(c),
        }
    }
    out.push(quote);
}

/// An approximation of Python's `str.isprintable()` for one character: false
/// for control characters, separators other than the space, and the common
/// format characters. (Unassigned and private-use code points, which Python
/// also escapes, are printed as they are.)
fn is_printable(c: char) -> bool {
    !(c.is_control()
        || matches!(
            c,
            '\u{a0}'
                | '\u{ad}'
                | '\u{600}'..='\u{605}'
                | '\u{61c}'
                | '\u{6dd}'
                | '\u{70f}'
                | '\u{1680}'
                | '\u{180e}'
                | '\u{2000}'..='\u{200f}'
                | '\u{2028}'..='\u{202f}'
                | '\u{205f}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{3000}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_lite::future::block_on;

    use super::*;
    use crate::Peer;

    /// A writer whose bytes the test can read after handing it over.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn run(envelope: Envelope) -> String {
        let buffer = Shared::default();
        let handler = Debugging::with_writer(buffer.clone());
        let mut session = Session::new(Peer::Tcp("127.0.0.1:44998".parse().unwrap()));
        let mut envelope = envelope;
        let outcome = block_on(handler.handle_data(&mut session, &mut envelope)).unwrap();
        assert_eq!(outcome, Outcome::Default);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    fn envelope(content: &[u8]) -> Envelope {
        Envelope {
            mail_from: Some("anne@example.com".into()),
            rcpt_tos: vec!["bart@example.com".into()],
            content: content.to_vec(),
            ..Envelope::default()
        }
    }

    #[test]
    fn message_with_headers() {
        let out = run(envelope(
            b"From: anne@example.com\r\nSubject: hi\r\n\r\nHello\r\n\r\nBye\r\n",
        ));
        assert_eq!(
            out,
            "---------- MESSAGE FOLLOWS ----------\n\
             From: anne@example.com\n\
             Subject: hi\n\
             X-Peer: ('127.0.0.1', 44998)\n\
             \n\
             Hello\n\
             \n\
             Bye\n\
             ------------ END MESSAGE ------------\n"
        );
    }

    #[test]
    fn message_without_blank_line() {
        let out = run(envelope(b"Subject: hi\rjust text\nno blank"));
        assert_eq!(
            out,
            "---------- MESSAGE FOLLOWS ----------\n\
             Subject: hi\n\
             just text\n\
             no blank\n\
             ------------ END MESSAGE ------------\n"
        );
        assert_eq!(
            run(envelope(b"")),
            "---------- MESSAGE FOLLOWS ----------\n------------ END MESSAGE ------------\n"
        );
    }

    #[test]
    fn options_and_invalid_utf8() {
        let mut env = envelope(b"Subject: \xe9t\xc3\xa9\r\n\r\nbody\r\n");
        env.mail_options = vec!["SIZE=100".into(), "BODY=8BITMIME".into()];
        env.rcpt_options = vec!["NOTIFY=NEVER".into()];
        assert_eq!(
            run(env),
            "---------- MESSAGE FOLLOWS ----------\n\
             mail options: ['SIZE=100', 'BODY=8BITMIME']\n\
             rcpt options: ['NOTIFY=NEVER']\n\
             \n\
             Subject: \u{fffd}t\u{e9}\n\
             X-Peer: ('127.0.0.1', 44998)\n\
             \n\
             body\n\
             ------------ END MESSAGE ------------\n"
        );
        // Empty rcpt options are not printed (Python's `any()`); an empty
        // string in the mail options is (the list is not empty).
        let mut env = envelope(b"\r\n");
        env.mail_options = vec![String::new()];
        env.rcpt_options = vec![String::new()];
        assert_eq!(
            run(env),
            "---------- MESSAGE FOLLOWS ----------\n\
             mail options: ['']\n\
             \n\
             X-Peer: ('127.0.0.1', 44998)\n\
             \n\
             ------------ END MESSAGE ------------\n"
        );
    }

    #[test]
    fn python_string_repr() {
        let repr = |s: &str| {
            let mut out = String::new();
            push_str_repr(&mut out, s);
            out
        };
        assert_eq!(repr("SIZE=1"), "'SIZE=1'");
        assert_eq!(repr("it's"), "\"it's\"");
        assert_eq!(repr("'\""), "'\\'\"'");
        assert_eq!(
            repr("a\\b\tc\u{1}\u{7f}é\u{a0}\u{2028}"),
            "'a\\\\b\\tc\\x01\\x7fé\\xa0\\u2028'"
        );
    }

    #[test]
    fn write_errors_fail_the_hook() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "Broken pipe"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let handler = Debugging::with_writer(Broken);
        let mut session = Session::new(Peer::Unknown);
        let mut env = envelope(b"x\r\n");
        let err = block_on(handler.handle_data(&mut session, &mut env)).unwrap_err();
        assert_eq!(err.kind(), "io::Error");
    }

    #[test]
    fn cli_args() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(Debugging::from_cli_args(&args(&[])).is_ok());
        assert!(Debugging::from_cli_args(&args(&["stdout"])).is_ok());
        assert!(Debugging::from_cli_args(&args(&["stderr"])).is_ok());
        for bad in [&["stdin"][..], &["stdout", "stderr"]] {
            assert_eq!(
                Debugging::from_cli_args(&args(bad)).unwrap_err(),
                "Debugging usage: [stdout|stderr]"
            );
        }
    }
}
