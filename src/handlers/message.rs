//! [`prepare_message`]: the stored form of a received message, as aiosmtpd's
//! `MessageBase.prepare_message` followed by `Message.as_bytes()`.
//! With the `message-handler` feature, also aiosmtpd's `Message` and
//! `AsyncMessage` handlers: `Message` and `AsyncMessage` hand each
//! prepared message, parsed, to a callback.

use std::fmt::Write as _;

use crate::proto::{Envelope, Peer, Session};

/// Builds the message that aiosmtpd's `Message` handlers see: the received
/// content with the headers `X-Peer`, `X-MailFrom` and `X-RcptTo` appended to
/// its header block, as the bytes that `Message.as_bytes()` (and so a `Maildir`)
/// would produce.
///
/// aiosmtpd parses the content with Python's `email` package (compat32 policy),
/// sets the three headers (`Message.__setitem__` appends) and serialises the
/// message again. This function produces the same bytes without a parse and
/// re-serialisation round trip:
///
/// - the header block is the longest run of lines that Python's parser takes
///   for headers (`Name:` lines, continuation lines starting with a space or a
///   tab, and `From ` lines); the blank line that ends it, if any, is dropped;
/// - the original header lines come first, then `X-Peer: <peer>` (Python's
///   `str(session.peer)`: `('127.0.0.1', 1234)`, empty for a Unix socket peer),
///   `X-MailFrom: <mail_from>` and `X-RcptTo: <rcpt_tos joined with ", ">`,
///   then one blank line, then the rest of the content (the body). When the
///   content has no header lines the three headers open the message, and when
///   it has no blank line after its headers one is added, as Python does;
/// - every line ending (CRLF, CR or LF) becomes LF, as Python's generator and
///   `mailbox` write it; a last line without a line ending keeps none, and a
///   header line always gets one;
/// - an `X-MailFrom` or `X-RcptTo` value that is not ASCII (SMTPUTF8
///   addresses) is written as one RFC 2047 encoded word, `=?utf-8?b?...?=` or
///   `=?utf-8?q?...?=` whichever is shorter, as Python's `email.header.Header`
///   does.
///
/// Everything else is kept byte for byte, including 8-bit bytes. Python's round
/// trip differs only for unusual input, where this function keeps the original
/// bytes instead: Python rewrites `Name:value` and `Name:  value` as
/// `Name: value` and `Name:` as `Name: `, drops a leading `From ` (mbox) line, a
/// header block's first line that starts with white space, lines starting with
/// `:`, and white-space-only continuation lines, and regenerates multipart
/// bodies (closing a multipart whose closing boundary is missing, adding a line
/// ending after a closing boundary that lacks one).
///
/// ```
/// use smtpkit::{Envelope, Peer, Session, handlers::prepare_message};
///
/// let session = Session::new(Peer::Tcp("127.0.0.1:1234".parse().unwrap()));
/// let envelope = Envelope {
///     mail_from: Some("anne@example.com".into()),
///     rcpt_tos: vec!["bart@example.com".into(), "cate@example.com".into()],
///     content: b"Subject: hi\r\n\r\nHello\r\n".to_vec(),
///     ..Envelope::default()
/// };
/// assert_eq!(
///     prepare_message(&session, &envelope),
///     b"Subject: hi\n\
///       X-Peer: ('127.0.0.1', 1234)\n\
///       X-MailFrom: anne@example.com\n\
///       X-RcptTo: bart@example.com, cate@example.com\n\
///       \n\
///       Hello\n"
/// );
/// ```
pub fn prepare_message(session: &Session, envelope: &Envelope) -> Vec<u8> {
    let content = envelope.original_content();
    let peer = match &session.peer {
        Peer::Tcp(_) => session.peer.python_repr(),
        // aiosmtpd's peer is the string '' there, whose str() is empty.
        Peer::Unix | Peer::Unknown => String::new(),
    };
    let mail_from = envelope.mail_from.as_deref().unwrap_or("");
    let rcpt_tos = envelope.rcpt_tos.join(", ");

    let mut out = Vec::with_capacity(content.len() + 128 + mail_from.len() + rcpt_tos.len());
    let mut lines = Lines::new(content).peekable();

    // The header block.
    while let Some(&(line, _)) = lines.peek() {
        if !is_header_line(line) {
            break;
        }
        out.extend_from_slice(line);
        out.push(b'\n');
        lines.next();
    }
    // The blank line that ends the headers (if the next line is not blank,
    // it is the first line of the body).
    if let Some(&(line, true)) = lines.peek()
        && line.is_empty()
    {
        lines.next();
    }

    push_header(&mut out, "X-Peer", &peer);
    push_header(&mut out, "X-MailFrom", mail_from);
    push_header(&mut out, "X-RcptTo", &rcpt_tos);
    out.push(b'\n');

    for (line, has_ending) in lines {
        out.extend_from_slice(line);
        if has_ending {
            out.push(b'\n');
        }
    }
    out
}

/// [`prepare_message`] as the body streams in: the same bytes for any split
/// of the content into chunks. Only the current header line is buffered (a
/// header line is at most the DATA line limit); the body passes straight
/// through with its line endings turned into LF.
#[derive(Debug)]
pub(crate) struct PrepareStream {
    /// The three headers aiosmtpd adds, with their LF and the blank line.
    added: Vec<u8>,
    /// Still in the header block.
    in_headers: bool,
    /// The header-block line read so far (without its ending).
    line: Vec<u8>,
    /// The last byte was a CR: an LF right after it is part of that ending.
    after_cr: bool,
}

impl PrepareStream {
    /// For the message of `envelope` (its addresses) from `session`'s peer.
    pub(crate) fn new(session: &Session, envelope: &Envelope) -> Self {
        let peer = match &session.peer {
            Peer::Tcp(_) => session.peer.python_repr(),
            Peer::Unix | Peer::Unknown => String::new(),
        };
        let mut added = Vec::new();
        push_header(&mut added, "X-Peer", &peer);
        push_header(
            &mut added,
            "X-MailFrom",
            envelope.mail_from.as_deref().unwrap_or(""),
        );
        push_header(&mut added, "X-RcptTo", &envelope.rcpt_tos.join(", "));
        added.push(b'\n');
        PrepareStream {
            added,
            in_headers: true,
            line: Vec::new(),
            after_cr: false,
        }
    }

    /// Appends the prepared form of `chunk` to `out`.
    pub(crate) fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while self.in_headers && !chunk.is_empty() {
            let Some(i) = memchr::memchr2(b'\r', b'\n', chunk) else {
                self.line.extend_from_slice(chunk);
                return;
            };
            self.line.extend_from_slice(&chunk[..i]);
            let crlf = chunk[i] == b'\r' && chunk.get(i + 1) == Some(&b'\n');
            self.after_cr = chunk[i] == b'\r' && i + 1 == chunk.len();
            chunk = &chunk[i + if crlf { 2 } else { 1 }..];
            self.end_header_line(true, out);
        }
        // The body: every line ending becomes LF.
        while !chunk.is_empty() {
            let Some(i) = memchr::memchr2(b'\r', b'\n', chunk) else {
                out.extend_from_slice(chunk);
                return;
            };
            out.extend_from_slice(&chunk[..i]);
            out.push(b'\n');
            let crlf = chunk[i] == b'\r' && chunk.get(i + 1) == Some(&b'\n');
            self.after_cr = chunk[i] == b'\r' && i + 1 == chunk.len();
            chunk = &chunk[i + if crlf { 2 } else { 1 }..];
        }
    }

    /// The end of the content: appends what is still held back.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if self.in_headers {
            if self.line.is_empty() {
                self.in_headers = false;
                out.extend_from_slice(&self.added);
            } else {
                self.end_header_line(false, out);
                if self.in_headers {
                    self.in_headers = false;
                    out.extend_from_slice(&self.added);
                }
            }
        }
    }

    /// A whole line of the header block (`ended`: with a line ending).
    fn end_header_line(&mut self, ended: bool, out: &mut Vec<u8>) {
        let line = std::mem::take(&mut self.line);
        if is_header_line(&line) {
            out.extend_from_slice(&line);
            out.push(b'\n');
        } else {
            // The headers end here; a blank line that ends them is dropped.
            self.in_headers = false;
            out.extend_from_slice(&self.added);
            if !line.is_empty() {
                out.extend_from_slice(&line);
                if ended {
                    out.push(b'\n');
                }
            }
        }
        self.line = line;
        self.line.clear();
    }
}

/// Python's `email.feedparser.headerRE`: `^(From |[\041-\071\073-\176]*:|[\t ])`.
fn is_header_line(line: &[u8]) -> bool {
    if line.starts_with(b"From ") || matches!(line.first(), Some(b' ' | b'\t')) {
        return true;
    }
    let name_len = line
        .iter()
        .take_while(|&&b| matches!(b, 0x21..=0x39 | 0x3b..=0x7e))
        .count();
    line.get(name_len) == Some(&b':')
}

/// Appends `Name: value\n`, encoding a non-ASCII value as Python's `Header` does.
fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    if value.is_ascii() {
        out.extend_from_slice(value.as_bytes());
    } else {
        out.extend_from_slice(encoded_word(value.as_bytes()).as_bytes());
    }
    out.push(b'\n');
}

/// One RFC 2047 encoded word for UTF-8 `bytes`: Python's `Charset('utf-8')`
/// picks base64 when it is strictly shorter than Q encoding.
fn encoded_word(bytes: &[u8]) -> String {
    let q_safe = |b: u8| b.is_ascii_alphanumeric() || b"-!*+/ ".contains(&b);
    let q_len: usize = bytes.iter().map(|&b| if q_safe(b) { 1 } else { 3 }).sum();
    let b64_len = bytes.len().div_ceil(3) * 4;
    let mut word = String::with_capacity(q_len.max(b64_len) + 12);
    if b64_len < q_len {
        word.push_str("=?utf-8?b?");
        base64(bytes, &mut word);
    } else {
        word.push_str("=?utf-8?q?");
        for &b in bytes {
            match b {
                b' ' => word.push('_'),
                _ if q_safe(b) => word.push(char::from(b)),
                _ => {
                    let _ = write!(word, "={b:02X}");
                }
            }
        }
    }
    word.push_str("?=");
    word
}

/// Standard base64 with padding.
fn base64(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
}

/// The lines of `data` split as Python's `bytes.splitlines()` (and the email
/// parser) split them: at CRLF, CR or LF. Yields each line without its ending,
/// and whether it had one.
pub(crate) struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Lines { rest: data }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (&'a [u8], bool);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match memchr::memchr2(b'\r', b'\n', self.rest) {
            None => {
                let line = self.rest;
                self.rest = &[];
                Some((line, false))
            }
            Some(i) => {
                let line = &self.rest[..i];
                let ending = if self.rest[i] == b'\r' && self.rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                self.rest = &self.rest[i + ending..];
                Some((line, true))
            }
        }
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn streaming_gives_prepare_message_s_bytes_for_every_split() {
        let session = Session::new(Peer::Tcp("127.0.0.1:1234".parse().unwrap()));
        let bodies: [&[u8]; 12] = [
            b"",
            b"Subject: hi\r\n\r\nHello\r\n",
            b"Subject: hi\r\nX: y\r\n continued\r\n\r\nbody\r\nmore\r\n",
            b"no headers\r\nat all\r\n",
            b"Subject: no blank line\r\nbody? no: a header\r\nnot one\r\n",
            b"Subject: x\rbare CR\r\rY: z\n\nLF body\n\rend",
            b"Subject: last line without ending",
            b"not a header, no ending",
            b"\r\n\r\nstarts blank",
            b"From someone\r\nSubject: mbox\r\n\r\n",
            b"Subject: x\r\n\r\n\r\r\n\n\r",
            b"Subject: \xff\xfe 8-bit\r\n\r\n\0\xff",
        ];
        for body in bodies {
            let envelope = Envelope {
                mail_from: Some("anne@example.com".into()),
                rcpt_tos: vec!["b@x".into(), "c@y".into()],
                content: body.to_vec(),
                ..Envelope::default()
            };
            let want = prepare_message(&session, &envelope);
            for a in 0..=body.len() {
                for b in a..=body.len() {
                    let mut stream = PrepareStream::new(&session, &envelope);
                    let mut out = Vec::new();
                    for piece in [&body[..a], &body[a..b], &body[b..]] {
                        stream.feed(piece, &mut out);
                    }
                    stream.finish(&mut out);
                    assert_eq!(
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(&want),
                        "{body:?} split at {a} and {b}"
                    );
                }
            }
        }
    }
}

#[cfg(feature = "message-handler")]
pub use parsed::{AsyncMessage, Message, ReceivedMessage};

/// aiosmtpd's `Message` and `AsyncMessage` handlers: the prepared message,
/// parsed with mail-parser, handed to a callback.
#[cfg(feature = "message-handler")]
mod parsed {
    use std::fmt;
    use std::future::Future;

    use mail_parser::MessageParser;

    use super::prepare_message;
    use crate::proto::{Envelope, Outcome, Session};
    use crate::server::{Handler, HandlerError, HookResult};

    /// Parses [`prepare_message`]'s bytes, lenient as mail-parser is.
    fn parse(bytes: &[u8]) -> Result<mail_parser::Message<'_>, HandlerError> {
        MessageParser::new().parse(bytes).ok_or_else(|| {
            HandlerError::new("MessageParseError", "the message could not be parsed")
        })
    }

    /// Hands every received message, parsed, to a callback and accepts it with
    /// `250 OK`: aiosmtpd's `Message` handler, whose subclasses implement
    /// `handle_message(message)`.
    ///
    /// The callback gets the message that aiosmtpd's `prepare_message` builds
    /// (see [`prepare_message`]: the content with `X-Peer`, `X-MailFrom` and
    /// `X-RcptTo` headers added) parsed by [mail-parser] (re-exported as
    /// [`crate::handlers::mail_parser`]), and the session and envelope. When it
    /// returns an error, the client gets aiosmtpd's `500 Error: (kind) message`
    /// (or [`Handler::handle_exception`]'s reply) instead of `250 OK`.
    ///
    /// As in aiosmtpd, the callback runs inline, on the task serving the
    /// connection: it should not block for long. Use [`AsyncMessage`] for work
    /// that waits.
    ///
    /// ```no_run
    /// use smtpkit::handlers::{Message, mail_parser};
    /// use smtpkit::{Envelope, HandlerError, Session, tokio::Controller};
    ///
    /// let handler = Message::new(
    ///     |msg: &mail_parser::Message<'_>, _: &Session, envelope: &Envelope| {
    ///         println!("{:?} for {:?}", msg.subject(), envelope.rcpt_tos);
    ///         println!("{}", msg.body_text(0).unwrap_or_default());
    ///         Ok::<(), HandlerError>(())
    ///     },
    /// );
    /// let mut controller = Controller::new(handler).with_port(8025);
    /// controller.start().unwrap();
    /// ```
    ///
    /// [mail-parser]: https://docs.rs/mail-parser
    pub struct Message<F> {
        callback: F,
    }

    impl<F> Message<F>
    where
        F: Fn(&mail_parser::Message<'_>, &Session, &Envelope) -> Result<(), HandlerError>
            + Send
            + Sync
            + 'static,
    {
        /// A handler that calls `callback` with each parsed message.
        pub fn new(callback: F) -> Self {
            Message { callback }
        }
    }

    impl<F> fmt::Debug for Message<F> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Message").finish_non_exhaustive()
        }
    }

    impl<F> Handler for Message<F>
    where
        F: Fn(&mail_parser::Message<'_>, &Session, &Envelope) -> Result<(), HandlerError>
            + Send
            + Sync
            + 'static,
    {
        async fn handle_data(&self, session: &mut Session, envelope: &mut Envelope) -> HookResult {
            let bytes = prepare_message(session, envelope);
            let message = parse(&bytes)?;
            (self.callback)(&message, session, envelope)?;
            Ok(Outcome::Default)
        }
    }

    /// A received message as [`AsyncMessage`]'s callback gets it: owned, so
    /// the callback's future can keep it across awaits.
    #[derive(Clone, Debug)]
    pub struct ReceivedMessage {
        /// The parsed message; `message.raw_message` holds the bytes of
        /// [`prepare_message`] (also [`ReceivedMessage::raw`]).
        pub message: mail_parser::Message<'static>,
        /// The connection's session at the end of DATA.
        pub session: Session,
        /// The transaction's envelope (with the content as received).
        pub envelope: Envelope,
    }

    impl ReceivedMessage {
        /// The prepared message's bytes: the content with `X-Peer`,
        /// `X-MailFrom` and `X-RcptTo` added, LF line endings.
        pub fn raw(&self) -> &[u8] {
            &self.message.raw_message
        }
    }

    /// aiosmtpd's `AsyncMessage`: as [`Message`], with an async callback. The
    /// callback receives an owned [`ReceivedMessage`] and the client gets
    /// `250 OK` once the future it returns completes with `Ok` (an error gives
    /// the `500` reply).
    ///
    /// ```no_run
    /// use smtpkit::handlers::{AsyncMessage, ReceivedMessage};
    /// use smtpkit::{HandlerError, tokio::Controller};
    ///
    /// let handler = AsyncMessage::new(|received: ReceivedMessage| async move {
    ///     let subject = received.message.subject().unwrap_or_default().to_owned();
    ///     // ... await a database, a queue, an HTTP call ...
    ///     println!("{subject}: {} bytes", received.raw().len());
    ///     Ok::<(), HandlerError>(())
    /// });
    /// let mut controller = Controller::new(handler).with_port(8025);
    /// controller.start().unwrap();
    /// ```
    pub struct AsyncMessage<F> {
        callback: F,
    }

    impl<F, Fut> AsyncMessage<F>
    where
        F: Fn(ReceivedMessage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send,
    {
        /// A handler that calls `callback` with each parsed message and awaits
        /// the future it returns.
        pub fn new(callback: F) -> Self {
            AsyncMessage { callback }
        }
    }

    impl<F> fmt::Debug for AsyncMessage<F> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("AsyncMessage").finish_non_exhaustive()
        }
    }

    impl<F, Fut> Handler for AsyncMessage<F>
    where
        F: Fn(ReceivedMessage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send,
    {
        async fn handle_data(&self, session: &mut Session, envelope: &mut Envelope) -> HookResult {
            let bytes = prepare_message(session, envelope);
            let message = parse(&bytes)?.into_owned();
            let received = ReceivedMessage {
                message,
                session: session.clone(),
                envelope: envelope.clone(),
            };
            (self.callback)(received).await?;
            Ok(Outcome::Default)
        }
    }

    #[cfg(test)]
    mod tests {
        use std::sync::{Arc, Mutex};

        use futures_lite::future::block_on;

        use super::*;
        use crate::proto::Peer;

        fn transaction() -> (Session, Envelope) {
            let session = Session::new(Peer::Tcp("127.0.0.1:1234".parse().unwrap()));
            let envelope = Envelope {
                mail_from: Some("anne@example.com".into()),
                rcpt_tos: vec!["bart@example.com".into()],
                content: b"From: Anne <anne@example.com>\r\nSubject: hi\r\n\r\nHello\r\n".to_vec(),
                ..Envelope::default()
            };
            (session, envelope)
        }

        #[test]
        fn message_callback() {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let sink = seen.clone();
            let handler = Message::new(
                move |msg: &mail_parser::Message<'_>, session: &Session, envelope: &Envelope| {
                    sink.lock().unwrap().push((
                        msg.subject().map(str::to_owned),
                        msg.header("X-Peer")
                            .and_then(|v| v.as_text())
                            .map(str::to_owned),
                        msg.header("X-RcptTo")
                            .and_then(|v| v.as_text())
                            .map(str::to_owned),
                        msg.body_text(0).map(|b| b.into_owned()),
                        session.peer.clone(),
                        envelope.rcpt_tos.clone(),
                    ));
                    if msg.subject() == Some("fail") {
                        return Err(HandlerError::new("Nope", "refused"));
                    }
                    Ok(())
                },
            );
            let (mut session, mut envelope) = transaction();
            let outcome = block_on(handler.handle_data(&mut session, &mut envelope)).unwrap();
            assert_eq!(outcome, Outcome::Default);
            let got = seen.lock().unwrap().clone();
            assert_eq!(
                got,
                [(
                    Some("hi".to_owned()),
                    Some("('127.0.0.1', 1234)".to_owned()),
                    Some("bart@example.com".to_owned()),
                    Some("Hello\n".to_owned()),
                    session.peer.clone(),
                    vec!["bart@example.com".to_owned()],
                )]
            );

            envelope.content = b"Subject: fail\r\n\r\nx\r\n".to_vec();
            let error = block_on(handler.handle_data(&mut session, &mut envelope)).unwrap_err();
            assert_eq!(error.to_string(), "(Nope) refused");
        }

        #[test]
        fn async_message_callback() {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let sink = seen.clone();
            let handler = AsyncMessage::new(move |received: ReceivedMessage| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(received);
                    Ok(())
                }
            });
            let (mut session, mut envelope) = transaction();
            let outcome = block_on(handler.handle_data(&mut session, &mut envelope)).unwrap();
            assert_eq!(outcome, Outcome::Default);
            let got = seen.lock().unwrap().clone();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].raw(), prepare_message(&session, &envelope));
            assert_eq!(got[0].message.subject(), Some("hi"));
            assert_eq!(got[0].envelope, envelope);
            assert_eq!(format!("{:?}", handler), "AsyncMessage { .. }");
        }

        #[test]
        fn unparsable_message() {
            let error = parse(b"").unwrap_err();
            assert_eq!(error.kind(), "MessageParseError");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare(content: &[u8], peer: Peer, mail_from: &str, rcpt_tos: &[&str]) -> Vec<u8> {
        let session = Session::new(peer);
        let envelope = Envelope {
            mail_from: Some(mail_from.to_owned()),
            rcpt_tos: rcpt_tos.iter().map(|s| (*s).to_owned()).collect(),
            content: content.to_vec(),
            ..Envelope::default()
        };
        prepare_message(&session, &envelope)
    }

    fn tcp() -> Peer {
        Peer::Tcp("127.0.0.1:1234".parse().unwrap())
    }

    const ADDED: &str = "X-Peer: ('127.0.0.1', 1234)\nX-MailFrom: a@x\nX-RcptTo: b@y, c@z\n";

    /// Each expected value below is what aiosmtpd 1.4.6 (Python 3.11) stores
    /// through `Mailbox` for the same content, envelope and peer.
    #[test]
    fn matches_aiosmtpd() {
        let cases: &[(&[u8], String)] = &[
            (
                b"Subject: hi\r\nFrom: a@x\r\n\r\nbody\r\nline2\r\n",
                format!("Subject: hi\nFrom: a@x\n{ADDED}\nbody\nline2\n"),
            ),
            (
                b"Subject: hi\nFrom: a@x\n\nbody\nline2\n",
                format!("Subject: hi\nFrom: a@x\n{ADDED}\nbody\nline2\n"),
            ),
            (
                b"Subject: hi\r\n\r\nbody",
                format!("Subject: hi\n{ADDED}\nbody"),
            ),
            (
                b"Hello world\r\nsecond\r\n",
                format!("{ADDED}\nHello world\nsecond\n"),
            ),
            (b"Subject: hi\r\n", format!("Subject: hi\n{ADDED}\n")),
            (b"Subject: hi", format!("Subject: hi\n{ADDED}\n")),
            (
                b"Subject: hi\r\nbody line\r\n",
                format!("Subject: hi\n{ADDED}\nbody line\n"),
            ),
            (b"", format!("{ADDED}\n")),
            (b"\r\nbody\r\n", format!("{ADDED}\nbody\n")),
            (
                b"Subject: a\r\n\tb\r\n  c\r\nX: y\r\n\r\nbody\r\n",
                format!("Subject: a\n\tb\n  c\nX: y\n{ADDED}\nbody\n"),
            ),
            (
                b"Subject: hi\r\n\r\na\rb\r\n",
                format!("Subject: hi\n{ADDED}\na\nb\n"),
            ),
            (
                b"Subject: hi\r\rbody\r",
                format!("Subject: hi\n{ADDED}\nbody\n"),
            ),
            (
                b"Subject: hi\r\n\r\nbody\r\n\r\n\r\n",
                format!("Subject: hi\n{ADDED}\nbody\n\n\n"),
            ),
            (
                b"X-Peer: foo\r\nSubject: hi\r\n\r\nb\r\n",
                format!("X-Peer: foo\nSubject: hi\n{ADDED}\nb\n"),
            ),
            (
                b"Subject: hi\r\n\r\nFrom here\r\n>From\r\n",
                format!("Subject: hi\n{ADDED}\nFrom here\n>From\n"),
            ),
        ];
        for (content, expected) in cases {
            let got = prepare(content, tcp(), "a@x", &["b@y", "c@z"]);
            assert_eq!(
                String::from_utf8_lossy(&got),
                *expected,
                "content {:?}",
                String::from_utf8_lossy(content)
            );
        }
    }

    #[test]
    fn eight_bit_bytes_are_kept() {
        let content = b"Subject: h\xe9llo\r\n\r\nb\xf6dy \xff\r\n";
        let got = prepare(content, tcp(), "a@x", &["b@y", "c@z"]);
        let mut expected = b"Subject: h\xe9llo\n".to_vec();
        expected.extend_from_slice(ADDED.as_bytes());
        expected.extend_from_slice(b"\nb\xf6dy \xff\n");
        assert_eq!(got, expected);
    }

    #[test]
    fn peers_and_encoded_words() {
        // Outputs of aiosmtpd 1.4.6 for the same envelopes.
        let got = prepare(
            b"Subject: hi\r\n\r\nb\r\n",
            Peer::Tcp("[::1]:25".parse().unwrap()),
            "jörg@exämple.com",
            &["bö@x.com"],
        );
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "Subject: hi\nX-Peer: ('::1', 25, 0, 0)\n\
             X-MailFrom: =?utf-8?b?asO2cmdAZXjDpG1wbGUuY29t?=\n\
             X-RcptTo: =?utf-8?b?YsO2QHguY29t?=\n\nb\n"
        );
        let long = format!("{}é@y.com", "x".repeat(100));
        let got = prepare(b"Subject: hi\r\n\r\nb\r\n", Peer::Unix, &long, &["z@z"]);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            format!(
                "Subject: hi\nX-Peer: \nX-MailFrom: =?utf-8?q?{}=C3=A9=40y=2Ecom?=\n\
                 X-RcptTo: z@z\n\nb\n",
                "x".repeat(100)
            )
        );
        let got = prepare(b"Subject: hi\r\n\r\nb\r\n", tcp(), "<>", &[]);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "Subject: hi\nX-Peer: ('127.0.0.1', 1234)\nX-MailFrom: <>\nX-RcptTo: \n\nb\n"
        );
    }

    #[test]
    fn base64_padding() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            let mut out = String::new();
            base64(input.as_bytes(), &mut out);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn lines_split_like_python() {
        let lines: Vec<_> = Lines::new(b"a\r\nb\rc\n\r\n\rd").collect();
        assert_eq!(
            lines,
            vec![
                (&b"a"[..], true),
                (&b"b"[..], true),
                (&b"c"[..], true),
                (&b""[..], true),
                (&b""[..], true),
                (&b"d"[..], false)
            ]
        );
    }
}
