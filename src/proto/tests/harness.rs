//! The engine test harness: a [`Driver`] that drives a [`Connection`] the way the
//! async driver does (draining `poll_action` after every input, answering hooks,
//! buffering bodies), and [`Script`], which runs a transcript whole, split in two
//! at every byte offset and byte by byte, asserting the same output each time.

use std::sync::Arc;
use std::time::Instant;

use crate::proto::{Action, Ask, Config, Connection, Decision, Envelope, Outcome, Peer, Session};

pub(super) const HOST: &str = "mx.example";
pub(super) const IDENT: &str = "Python SMTP 1.4.6";
pub(super) const GREETING: &str = "220 mx.example Python SMTP 1.4.6\r\n";
pub(super) const EHLO_PLAIN: [&str; 3] = ["250-mx.example", "250-8BITMIME", "250 HELP"];
pub(super) const EHLO_SIZED: [&str; 5] = [
    "250-mx.example",
    "250-SIZE 4096",
    "250-8BITMIME",
    "250-SMTPUTF8",
    "250 HELP",
];
pub(super) const HELP_LIST: &str =
    "Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY";
pub(super) const MAIL_SYNTAX: &str = "501 Syntax: MAIL FROM: <address>";
pub(super) const MAIL_SYNTAX_ESMTP: &str =
    "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]";
pub(super) const RCPT_SYNTAX: &str = "501 Syntax: RCPT TO: <address>";
pub(super) const RCPT_SYNTAX_ESMTP: &str = "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]";
/// The message aiosmtpd's conformance corpus sends (`MSG` in corpus.py).
pub(super) const MSG: &[u8] =
    b"From: anne@example.com\r\nTo: bart@example.com\r\nSubject: conformance\r\n\r\nHello.\r\n.\r\n";

pub(super) fn base() -> Config {
    let mut config = Config::new(HOST);
    config.ident = IDENT.to_owned();
    config
}

/// aiosmtpd's CLI defaults (golden group `plain`): no SIZE limit, SMTPUTF8 off.
pub(super) fn plain() -> Config {
    base().with_data_size_limit(None)
}

/// Golden group `sized`: SMTPUTF8 on, SIZE 4096.
pub(super) fn sized() -> Config {
    base().with_smtputf8(true).with_data_size_limit(Some(4096))
}

/// aiosmtpd's library defaults: SIZE 33554432, SMTPUTF8 off.
pub(super) fn library_defaults() -> Config {
    base()
}

/// How the test application answers hook calls.
pub(super) type Responder = Box<dyn FnMut(&mut Ask, &mut Session, &mut Envelope) -> Decision>;

pub(super) fn default_responder() -> Responder {
    Box::new(|_, _, _| Decision::Outcome(Outcome::Default))
}

/// Everything a connection did, as seen by its driver.
#[derive(Clone, Debug, Default)]
pub(super) struct Trace {
    /// All bytes sent, in order.
    pub(super) out: Vec<u8>,
    /// Number of `Action::Send`s.
    pub(super) sends: usize,
    /// `Action::Close` was returned.
    pub(super) closed: bool,
    /// Every hook call, in order.
    pub(super) asks: Vec<Ask>,
    /// The envelope at each `Ask::Data` (content included).
    pub(super) messages: Vec<Envelope>,
    /// `Action::MessageStart`s returned.
    pub(super) starts: usize,
    /// `Action::MessageAbort`s returned.
    pub(super) aborts: usize,
    /// Bytes of the current message delivered through `Action::Body` so far.
    pub(super) body_offset: usize,
}

impl Trace {
    /// What must not depend on how the input was split.
    pub(super) fn observable(&self) -> (&[u8], bool, &[Ask], &[Envelope]) {
        (&self.out, self.closed, &self.asks, &self.messages)
    }
}

/// Drives a [`Connection`] like a real driver: drains `poll_action` after every
/// input, answers hooks, buffers body chunks, stops at `Close`.
pub(super) struct Driver {
    pub(super) conn: Connection,
    pub(super) now: Instant,
    pub(super) responder: Responder,
    pub(super) trace: Trace,
}

impl Driver {
    pub(super) fn new(config: Config) -> Self {
        Self::with_responder(config, default_responder())
    }

    pub(super) fn with_responder(config: Config, responder: Responder) -> Self {
        let now = Instant::now();
        let conn = Connection::new(Arc::new(config), Peer::Unknown, now);
        let mut driver = Driver {
            conn,
            now,
            responder,
            trace: Trace::default(),
        };
        driver.drain();
        driver
    }

    /// Feeds bytes and drains; ignored once closed (a driver stops reading).
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        if self.trace.closed {
            return;
        }
        self.conn
            .handle_input(self.now, bytes)
            .expect("input before Close is accepted");
        self.drain();
    }

    /// Feeds bytes without draining (to model input that arrived while the driver
    /// was busy).
    pub(super) fn feed_undrained(&mut self, bytes: &[u8]) {
        self.conn
            .handle_input(self.now, bytes)
            .expect("input before Close is accepted");
    }

    pub(super) fn peer_closed(&mut self) {
        self.conn.handle_peer_closed(self.now);
        self.drain();
    }

    pub(super) fn timeout(&mut self, at: Instant) {
        self.conn.handle_timeout(at);
        self.drain();
    }

    pub(super) fn drain(&mut self) {
        loop {
            let decision = match self.conn.poll_action() {
                None => break,
                Some(Action::Send(bytes)) => {
                    assert!(!self.trace.closed, "Send after Close");
                    assert!(!bytes.is_empty(), "empty Send");
                    self.trace.out.extend_from_slice(bytes);
                    self.trace.sends += 1;
                    None
                }
                Some(Action::MessageAbort(_)) => {
                    assert!(!self.trace.closed, "MessageAbort after Close");
                    self.trace.aborts += 1;
                    None
                }
                Some(Action::MessageStart(_)) => {
                    assert!(!self.trace.closed, "MessageStart after Close");
                    self.trace.starts += 1;
                    self.trace.body_offset = 0;
                    None
                }
                Some(Action::Body(chunk)) => {
                    assert!(!self.trace.closed, "Body after Close");
                    assert_eq!(chunk.offset, self.trace.body_offset, "body chunk offset");
                    assert!(
                        self.trace.starts > 0,
                        "a body chunk before its MessageStart"
                    );
                    self.trace.body_offset += chunk.chunk.len();
                    chunk.envelope.content.extend_from_slice(chunk.chunk);
                    None
                }
                Some(Action::Hook(call)) => {
                    assert!(!self.trace.closed, "Hook after Close");
                    if matches!(call.ask, Ask::Data) {
                        self.trace.messages.push(call.envelope.clone());
                    }
                    self.trace.asks.push(call.ask.clone());
                    Some((self.responder)(call.ask, call.session, call.envelope))
                }
                Some(Action::Close) => {
                    assert!(!self.trace.closed, "Close returned twice");
                    self.trace.closed = true;
                    None
                }
                #[allow(unreachable_patterns)]
                Some(other) => panic!("unexpected action {other:?}"),
            };
            if let Some(decision) = decision {
                self.conn
                    .handle_decision(self.now, decision)
                    .expect("a hook call is pending");
            }
        }
        if self.trace.closed {
            assert!(self.conn.is_closed());
            assert!(self.conn.poll_action().is_none(), "an action after Close");
        }
    }
}

/// How a transcript is run: the configuration, a fresh hook responder per run, and
/// whether the peer closes after the last input.
pub(super) struct Script<'a> {
    pub(super) config: Config,
    pub(super) responder: &'a dyn Fn() -> Responder,
    pub(super) peer_close: bool,
    /// Inputs up to this size are split in two at every offset, larger ones at a
    /// sample of offsets.
    pub(super) every_offset_max: usize,
}

impl Script<'_> {
    pub(super) fn new(config: Config) -> Self {
        Script {
            config,
            responder: &default_responder,
            peer_close: false,
            every_offset_max: EVERY_OFFSET_MAX,
        }
    }

    /// Feeds `input` piece by piece (draining after each), stops at Close.
    pub(super) fn drive(&self, input: &[&[u8]]) -> Trace {
        let mut driver = Driver::with_responder(self.config.clone(), (self.responder)());
        for piece in input {
            if driver.trace.closed {
                break;
            }
            driver.feed(piece);
        }
        if self.peer_close && !driver.trace.closed {
            driver.peer_closed();
        }
        driver.trace
    }

    /// Runs a transcript, asserts the replies after the greeting are exactly
    /// `replies` (each + CRLF), then checks split invariance.
    #[track_caller]
    pub(super) fn transcript(&self, input: &[&[u8]], replies: &[&str]) -> Trace {
        let trace = self.drive(input);
        assert_replies(&trace.out, replies);
        self.assert_split_invariant(input, &trace);
        trace
    }

    /// Feeds the concatenated input whole, in two pieces at every offset (for
    /// inputs up to `every_offset_max`, [`EVERY_OFFSET_MAX`] by default; up to
    /// [`SAMPLED_OFFSETS_MAX`]: the first and last 256 offsets and every 127th) and
    /// byte by byte, and asserts the same replies, hook calls and messages as
    /// `reference`.
    #[track_caller]
    pub(super) fn assert_split_invariant(&self, input: &[&[u8]], reference: &Trace) {
        let whole: Vec<u8> = input.concat();
        let check = |label: &str, pieces: &[&[u8]]| {
            let trace = self.drive(pieces);
            if trace.observable() != reference.observable() {
                panic!(
                    "output depends on how the input is split ({label})\n  input: {}\n  reference:\n{}\n  got:\n{}\n  reference asks: {:?}\n  got asks: {:?}",
                    show(&whole, 300),
                    show_wire(&reference.out),
                    show_wire(&trace.out),
                    reference.asks,
                    trace.asks,
                );
            }
        };
        check("whole", &[&whole]);
        let n = whole.len();
        if n <= self.every_offset_max {
            for k in 1..n {
                check(&format!("split at {k}"), &[&whole[..k], &whole[k..]]);
            }
        } else if n <= SAMPLED_OFFSETS_MAX {
            let mut k = 1;
            while k < n {
                check(&format!("split at {k}"), &[&whole[..k], &whole[k..]]);
                k += if k < 256 || n - k <= 256 { 1 } else { 127 };
            }
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        check("byte by byte", &bytes);
    }
}

/// Inputs up to this size are split in two at every byte offset.
pub(super) const EVERY_OFFSET_MAX: usize = 4 * 1024;
/// Inputs up to this size are split at a sample of offsets; larger ones (the 1 MB
/// transcripts) only fed whole and byte by byte.
pub(super) const SAMPLED_OFFSETS_MAX: usize = 64 * 1024;

/// Feeds `input` piece by piece (draining after each, hooks answered with the
/// default), stops at Close.
pub(super) fn drive(config: Config, input: &[&[u8]]) -> Trace {
    Script::new(config).drive(input)
}

/// Everything the engine sent for `input` (the greeting included).
pub(super) fn run(config: Config, input: &[&[u8]]) -> String {
    String::from_utf8_lossy(&drive(config, input).out).into_owned()
}

/// [`Script::transcript`] with default hook answers.
#[track_caller]
pub(super) fn transcript(config: Config, input: &[&[u8]], replies: &[&str]) -> Trace {
    Script::new(config).transcript(input, replies)
}

/// [`transcript`] with one command line (+ CRLF) per input piece.
#[track_caller]
pub(super) fn session(config: Config, commands: &[&str], replies: &[&str]) -> Trace {
    let lines: Vec<Vec<u8>> = commands
        .iter()
        .map(|c| format!("{c}\r\n").into_bytes())
        .collect();
    let pieces: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    transcript(config, &pieces, replies)
}

#[track_caller]
pub(super) fn assert_replies(out: &[u8], replies: &[&str]) {
    let mut expected = String::from(GREETING);
    for reply in replies {
        expected.push_str(reply);
        expected.push_str("\r\n");
    }
    if out != expected.as_bytes() {
        panic!(
            "replies differ\n  expected:\n{}\n  got:\n{}",
            show_wire(expected.as_bytes()),
            show_wire(out)
        );
    }
}

/// Bytes as an escaped string, cut to about `max` characters.
pub(super) fn show(bytes: &[u8], max: usize) -> String {
    let s = format!("{:?}", String::from_utf8_lossy(bytes));
    if s.len() > max {
        let cut = (0..=max)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}... ({} bytes)", &s[..cut], bytes.len())
    } else {
        s
    }
}

/// Wire output, one escaped line per row.
pub(super) fn show_wire(out: &[u8]) -> String {
    out.split_inclusive(|&b| b == b'\n')
        .map(|line| format!("    {}", show(line, 200)))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn mail_ask(trace: &Trace) -> Vec<(String, Vec<String>)> {
    trace
        .asks
        .iter()
        .filter_map(|a| match a {
            Ask::Mail { address, options } => Some((address.clone(), options.clone())),
            _ => None,
        })
        .collect()
}
