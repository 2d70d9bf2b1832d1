//! Engine tests: byte transcripts fed through [`Connection`] the way a driver
//! feeds it, aiosmtpd's recorded answers replayed, and a no-panic smoke test.
//!
//! Every expected reply here is aiosmtpd 1.4.6's (spec: shared/reference/
//! aiosmtpd-behaviour.md sections 2, 3 and 12; goldens: shared/conformance/golden/
//! aiosmtpd), except where the engine deliberately goes further (a `421` on idle
//! timeout, answering complete commands received before the peer closed), which is
//! said where tested. Every transcript is also fed whole, split in two at every byte
//! offset (inputs over 4 KiB: at a sample of offsets; the 1 MB ones: none) and byte
//! by byte: the output must not depend on how the input was cut.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    Action, Ask, CallLimits, Config, Connection, Decision, Envelope, Error, HookFailure, Outcome,
    Peer, Reply, Session,
};

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

const HOST: &str = "mx.example";
const IDENT: &str = "Python SMTP 1.4.6";
const GREETING: &str = "220 mx.example Python SMTP 1.4.6\r\n";
const GO_AHEAD: &str = "354 End data with <CR><LF>.<CR><LF>";
const EHLO_PLAIN: [&str; 3] = ["250-mx.example", "250-8BITMIME", "250 HELP"];
const EHLO_SIZED: [&str; 5] = [
    "250-mx.example",
    "250-SIZE 4096",
    "250-8BITMIME",
    "250-SMTPUTF8",
    "250 HELP",
];
const HELP_LIST: &str =
    "Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY";
const MAIL_SYNTAX: &str = "501 Syntax: MAIL FROM: <address>";
const MAIL_SYNTAX_ESMTP: &str = "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]";
const RCPT_SYNTAX: &str = "501 Syntax: RCPT TO: <address>";
const RCPT_SYNTAX_ESMTP: &str = "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]";
const MALFORMED: &str = "553 5.1.3 Error: malformed address";
const TOO_LONG: &str = "500 Command line too long";
const LINE_TOO_LONG: &str = "500 Line too long (see RFC5321 4.5.3.1.6)";
const TOO_MUCH: &str = "552 Error: Too much mail data";
const VRFY_OK: &str = "252 Cannot VRFY user, but will accept message and attempt delivery";
/// The message aiosmtpd's conformance corpus sends (`MSG` in corpus.py).
const MSG: &[u8] =
    b"From: anne@example.com\r\nTo: bart@example.com\r\nSubject: conformance\r\n\r\nHello.\r\n.\r\n";

fn base() -> Config {
    let mut config = Config::new(HOST);
    config.ident = IDENT.to_owned();
    config
}

/// aiosmtpd's CLI defaults (golden group `plain`): no SIZE limit, SMTPUTF8 off.
fn plain() -> Config {
    base().with_data_size_limit(None)
}

/// Golden group `sized`: SMTPUTF8 on, SIZE 4096.
fn sized() -> Config {
    base().with_smtputf8(true).with_data_size_limit(Some(4096))
}

/// aiosmtpd's library defaults: SIZE 33554432, SMTPUTF8 off.
fn library_defaults() -> Config {
    base()
}

/// How the test application answers hook calls.
type Responder = Box<dyn FnMut(&mut Ask, &mut Session, &mut Envelope) -> Decision>;

fn default_responder() -> Responder {
    Box::new(|_, _, _| Decision::Outcome(Outcome::Default))
}

/// Everything a connection did, as seen by its driver.
#[derive(Clone, Debug, Default)]
struct Trace {
    /// All bytes sent, in order.
    out: Vec<u8>,
    /// Number of `Action::Send`s.
    sends: usize,
    /// `Action::Close` was returned.
    closed: bool,
    /// Every hook call, in order.
    asks: Vec<Ask>,
    /// The envelope at each `Ask::Data` (content included).
    messages: Vec<Envelope>,
    /// Bytes of the current message delivered through `Action::Body` so far.
    body_offset: usize,
}

impl Trace {
    /// What must not depend on how the input was split.
    fn observable(&self) -> (&[u8], bool, &[Ask], &[Envelope]) {
        (&self.out, self.closed, &self.asks, &self.messages)
    }
}

/// Drives a [`Connection`] like a real driver: drains `poll_action` after every
/// input, answers hooks, buffers body chunks, stops at `Close`.
struct Driver {
    conn: Connection,
    now: Instant,
    responder: Responder,
    trace: Trace,
}

impl Driver {
    fn new(config: Config) -> Self {
        Self::with_responder(config, default_responder())
    }

    fn with_responder(config: Config, responder: Responder) -> Self {
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
    fn feed(&mut self, bytes: &[u8]) {
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
    fn feed_undrained(&mut self, bytes: &[u8]) {
        self.conn
            .handle_input(self.now, bytes)
            .expect("input before Close is accepted");
    }

    fn peer_closed(&mut self) {
        self.conn.handle_peer_closed(self.now);
        self.drain();
    }

    fn timeout(&mut self, at: Instant) {
        self.conn.handle_timeout(at);
        self.drain();
    }

    fn drain(&mut self) {
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
                Some(Action::Body(chunk)) => {
                    assert!(!self.trace.closed, "Body after Close");
                    if chunk.offset == 0 {
                        self.trace.body_offset = 0;
                    }
                    assert_eq!(chunk.offset, self.trace.body_offset, "body chunk offset");
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
struct Script<'a> {
    config: Config,
    responder: &'a dyn Fn() -> Responder,
    peer_close: bool,
    /// Inputs up to this size are split in two at every offset, larger ones at a
    /// sample of offsets.
    every_offset_max: usize,
}

impl Script<'_> {
    fn new(config: Config) -> Self {
        Script {
            config,
            responder: &default_responder,
            peer_close: false,
            every_offset_max: EVERY_OFFSET_MAX,
        }
    }

    /// Feeds `input` piece by piece (draining after each), stops at Close.
    fn drive(&self, input: &[&[u8]]) -> Trace {
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
    fn transcript(&self, input: &[&[u8]], replies: &[&str]) -> Trace {
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
    fn assert_split_invariant(&self, input: &[&[u8]], reference: &Trace) {
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
const EVERY_OFFSET_MAX: usize = 4 * 1024;
/// Inputs up to this size are split at a sample of offsets; larger ones (the 1 MB
/// transcripts) only fed whole and byte by byte.
const SAMPLED_OFFSETS_MAX: usize = 64 * 1024;

/// Feeds `input` piece by piece (draining after each, hooks answered with the
/// default), stops at Close.
fn drive(config: Config, input: &[&[u8]]) -> Trace {
    Script::new(config).drive(input)
}

/// Everything the engine sent for `input` (the greeting included).
fn run(config: Config, input: &[&[u8]]) -> String {
    String::from_utf8_lossy(&drive(config, input).out).into_owned()
}

/// [`Script::transcript`] with default hook answers.
#[track_caller]
fn transcript(config: Config, input: &[&[u8]], replies: &[&str]) -> Trace {
    Script::new(config).transcript(input, replies)
}

/// [`transcript`] with one command line (+ CRLF) per input piece.
#[track_caller]
fn session(config: Config, commands: &[&str], replies: &[&str]) -> Trace {
    let lines: Vec<Vec<u8>> = commands
        .iter()
        .map(|c| format!("{c}\r\n").into_bytes())
        .collect();
    let pieces: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    transcript(config, &pieces, replies)
}

#[track_caller]
fn assert_replies(out: &[u8], replies: &[&str]) {
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
fn show(bytes: &[u8], max: usize) -> String {
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
fn show_wire(out: &[u8]) -> String {
    out.split_inclusive(|&b| b == b'\n')
        .map(|line| format!("    {}", show(line, 200)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn mail_ask(trace: &Trace) -> Vec<(String, Vec<String>)> {
    trace
        .asks
        .iter()
        .filter_map(|a| match a {
            Ask::Mail { address, options } => Some((address.clone(), options.clone())),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Greeting, HELO, EHLO
// ---------------------------------------------------------------------------

#[test]
fn harness_run_returns_everything_sent() {
    assert_eq!(run(plain(), &[]), GREETING);
    assert_eq!(
        run(plain(), &[b"NOOP\r\n", b"QUIT\r\n", b"NOOP\r\n"]),
        format!("{GREETING}250 OK\r\n221 Bye\r\n")
    );
}

#[test]
fn greeting_then_quit_closes() {
    let trace = session(plain(), &[], &[]);
    assert!(!trace.closed);
    let trace = session(plain(), &["QUIT"], &["221 Bye"]);
    assert!(trace.closed);
    assert_eq!(trace.asks, vec![Ask::Quit]);
    // The greeting uses the configured host name and ident.
    let mut config = plain();
    config.hostname = "other.example".into();
    config.ident = "ESMTP ready".into();
    assert_eq!(run(config, &[]), "220 other.example ESMTP ready\r\n");
}

#[test]
fn helo_with_and_without_argument() {
    let trace = session(
        plain(),
        &[
            "HELO example.org",
            "HELO",
            "HELO ",
            "HELO   ",
            "HELO a b",
            "helo lower",
        ],
        &[
            "250 mx.example",
            "501 Syntax: HELO hostname",
            "501 Syntax: HELO hostname",
            "501 Syntax: HELO hostname",
            "250 mx.example",
            "250 mx.example",
        ],
    );
    let names: Vec<_> = trace
        .asks
        .iter()
        .map(|a| match a {
            Ask::Helo { hostname } => hostname.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // No validation: "HELO a b" keeps "a b".
    assert_eq!(names, ["example.org", "a b", "lower"]);
}

#[test]
fn ehlo_extension_lines() {
    session(plain(), &["EHLO example.com"], &EHLO_PLAIN);
    session(
        library_defaults(),
        &["EHLO example.com"],
        &[
            "250-mx.example",
            "250-SIZE 33554432",
            "250-8BITMIME",
            "250 HELP",
        ],
    );
    session(sized(), &["EHLO example.com"], &EHLO_SIZED);
    session(
        plain().with_smtputf8(true),
        &["EHLO example.com"],
        &["250-mx.example", "250-8BITMIME", "250-SMTPUTF8", "250 HELP"],
    );
    session(
        library_defaults().with_smtputf8(true),
        &["EHLO [IPv6:::1]"],
        &[
            "250-mx.example",
            "250-SIZE 33554432",
            "250-8BITMIME",
            "250-SMTPUTF8",
            "250 HELP",
        ],
    );
    session(
        plain(),
        &["EHLO", "EHLO  ", "ehlo"],
        &["501 Syntax: EHLO hostname"; 3],
    );
}

#[test]
fn helo_ehlo_reset_the_transaction() {
    // golden helo_clears_transaction, ehlo_clears_transaction, helo_then_ehlo
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL FROM:<anne@example.com>",
            "RCPT TO:<bart@example.com>",
            "HELO example.org",
            "RCPT TO:<bart@example.com>",
            "DATA",
            "EHLO example.com",
            "MAIL FROM:<anne@example.com>",
            "RCPT TO:<bart@example.com>",
            "EHLO example.com",
            "RCPT TO:<bart@example.com>",
            "MAIL FROM:<anne@example.com>",
        ],
        &[
            "250 mx.example",
            "250 OK",
            "250 OK",
            "250 mx.example",
            "503 Error: need MAIL command",
            "503 Error: need RCPT command",
            EHLO_PLAIN[0],
            EHLO_PLAIN[1],
            EHLO_PLAIN[2],
            "250 OK",
            "250 OK",
            EHLO_PLAIN[0],
            EHLO_PLAIN[1],
            EHLO_PLAIN[2],
            "503 Error: need MAIL command",
            "250 OK",
        ],
    );
}

// ---------------------------------------------------------------------------
// MAIL and RCPT
// ---------------------------------------------------------------------------

#[test]
fn mail_rcpt_data_need_helo() {
    session(
        plain(),
        &[
            "MAIL FROM: <anne@example.com>",
            "RCPT TO: <anne@example.com>",
            "DATA",
            "DATA FOO",
        ],
        &["503 Error: send HELO first"; 4],
    );
}

#[test]
fn mail_syntax_errors_in_helo_session() {
    // golden mail_syntax_helo_mode, params_in_helo_mode
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL",
            "MAIL <anne@example.com>",
            "MAIL FROM:",
            "MAIL FROM: ",
            "MAIL FROM :<anne@example.com>",
            "MAIL FROM: <anne@example.com> SIZE=10000",
            "MAIL FROM:<anne@example.com> BODY=8BITMIME",
            "MAIL FROM: Anne <anne@example.com>",
        ],
        &[
            "250 mx.example",
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
        ],
    );
}

#[test]
fn mail_syntax_errors_in_ehlo_session() {
    // golden mail_syntax_esmtp_mode, size_param
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([MAIL_SYNTAX_ESMTP; 11]);
    session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL",
            "MAIL <anne@example.com>",
            "MAIL FROM:",
            "MAIL FROM :<anne@example.com>",
            "MAIL FROM: <anne@example.com> SIZE 10000",
            "MAIL FROM: <anne@example.com> SIZE",
            "MAIL FROM: <anne@example.com> #$%=!@#",
            "MAIL FROM: <anne@example.com> SIZE = 10000",
            "MAIL FROM: <anne@example.com> SIZE=abc",
            "MAIL FROM: <anne@example.com> SIZE=",
            "MAIL FROM: <anne@example.com> SIZE=-1",
        ],
        &replies,
    );
}

#[test]
fn rcpt_syntax_errors_in_helo_and_ehlo_sessions() {
    // golden rcpt_syntax_helo_mode, rcpt_syntax_esmtp_mode
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL FROM: <anne@example.com>",
            "RCPT",
            "RCPT <anne@example.com>",
            "RCPT TO:",
            "RCPT TO: <bart@example.com> SIZE=1000",
            "RCPT TO: bart <bart@example.com>",
        ],
        &[
            "250 mx.example",
            "250 OK",
            RCPT_SYNTAX,
            RCPT_SYNTAX,
            RCPT_SYNTAX,
            RCPT_SYNTAX,
            RCPT_SYNTAX,
        ],
    );
    let mut replies = EHLO_PLAIN.to_vec();
    replies.push("250 OK");
    replies.extend([RCPT_SYNTAX_ESMTP; 6]);
    session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com>",
            "RCPT",
            "RCPT <anne@example.com>",
            "RCPT TO:",
            "RCPT TO : <bart@example.com>",
            "RCPT TO: <bart@example.com> #$%=!@#",
            "RCPT TO: bart <bart@example.com>",
        ],
        &replies,
    );
}

#[test]
fn malformed_addresses_get_553() {
    // golden mail_invalid_address, rcpt_invalid_address, data_after_failed_rcpt
    let mut replies = vec!["250 mx.example", MALFORMED, MALFORMED, MALFORMED];
    replies.extend(EHLO_PLAIN);
    replies.extend([
        MALFORMED,
        "250 OK",
        MALFORMED,
        MALFORMED,
        "503 Error: need RCPT command",
    ]);
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL FROM: <@example.com>",
            "MAIL FROM: <johnathon@>",
            "MAIL FROM:<<anne@example.com>>",
            "EHLO example.com",
            "MAIL FROM: <@example.com> SIZE=28113",
            "MAIL FROM: <anne@example.com>",
            "RCPT TO: <@example.com>",
            "RCPT TO: <johnathon@>",
            "DATA",
        ],
        &replies,
    );
}

#[test]
fn local_part_limit_makes_long_local_parts_malformed() {
    let mut config = plain();
    config.local_part_limit = Some(5);
    session(
        config,
        &[
            "HELO example.org",
            "MAIL FROM:<abcdef@example.com>",
            "MAIL FROM:<abcde@example.com>",
            "RCPT TO:<bcdefg@example.com>",
            "RCPT TO:<bcdef@example.com>",
            "VRFY <abcdef@example.com>",
        ],
        &[
            "250 mx.example",
            MALFORMED,
            "250 OK",
            MALFORMED,
            "250 OK",
            "502 Could not VRFY <abcdef@example.com>",
        ],
    );
}

#[test]
fn nested_mail_and_sequence_errors() {
    // golden mail_nested, rcpt_no_mail, data_no_rcpt, mail_null_reverse_path_forms
    let trace = session(
        plain(),
        &[
            "HELO example.org",
            "RCPT TO: <anne@example.com>",
            "DATA",
            "MAIL FROM: <anne@example.com>",
            "DATA",
            "DATA FOOBAR",
            "MAIL FROM: <anne@example.com>",
            "MAIL",
            "RSET",
            "MAIL FROM:<>",
            "MAIL FROM:<anne@example.com>",
        ],
        &[
            "250 mx.example",
            "503 Error: need MAIL command",
            "503 Error: need RCPT command",
            "250 OK",
            "503 Error: need RCPT command",
            // The RCPT check comes before the argument check.
            "503 Error: need RCPT command",
            "503 Error: nested MAIL command",
            // Syntax is checked before nesting.
            MAIL_SYNTAX,
            "250 OK",
            "250 OK",
            // "<>" is stored as a (truthy) string.
            "503 Error: nested MAIL command",
        ],
    );
    let senders: Vec<_> = mail_ask(&trace).into_iter().map(|(a, _)| a).collect();
    assert_eq!(senders, ["anne@example.com", "<>"]);
}

#[test]
fn mail_from_address_forms() {
    // golden mail_from_forms_1..3: every one of these is accepted.
    let long_a = format!("{}@example.com", "a".repeat(65));
    let long_b = format!("{}@example.com", "b".repeat(488));
    let long_c = "c".repeat(500);
    let forms = [
        "anne@example.com",
        "<anne@example.com>",
        " anne@example.com",
        " <anne@example.com>",
        "  <anne@example.com>",
        "anne.arthur@example.com",
        "anne+promo@example.com",
        "anne-arthur@example.com",
        "anne_arthur@example.com",
        "_@example.com",
        "anne@127.0.0.1",
        "anne@[127.0.0.1]",
        "anne@[IPv6:2001:db8::1]",
        "anne@[IPv6::1]",
        "anne(comment)@example.com",
        "(comment)anne@example.com",
        "anne@example.com(comment)",
        "<@example.org:anne@example.com>",
        "<@example.net,@example.org:anne@example.com>",
        "anne@mail",
        "\"\"@example.com",
        "<\"\"@example.com>",
        "\" \"@example.com",
        "\"anne..arthur\"@example.com",
        "mailhost!anne@example.com",
        "anne%example.org@example.com",
        "\"Fred Bloggs\"@example.com",
        "\"Abc@def\"@example.com",
        "customer/department=shipping@example.com",
        "$A12345@example.com",
        "!def!xyz%abc@example.com",
        "Fred\\ Bloggs@example.com",
        &long_a,
        &long_b,
        &long_c,
    ];
    // In parts, so that splitting at every offset stays quick.
    for part in forms.chunks(12) {
        let mut commands = vec!["EHLO example.com".to_owned()];
        let mut replies = EHLO_PLAIN.to_vec();
        for form in part {
            commands.push(format!("MAIL FROM:{form}"));
            commands.push("RSET".into());
            replies.extend(["250 OK", "250 OK"]);
        }
        let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
        let trace = session(plain(), &commands, &replies);
        assert_eq!(mail_ask(&trace).len(), part.len());
    }
}

#[test]
fn angle_bracket_and_keyword_edges() {
    // golden mail_angle_bracket_edges, rcpt_angle_bracket_edges, mail_from_keyword_spacing
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([
        "250 OK",
        "250 OK",
        MAIL_SYNTAX_ESMTP,
        "250 OK",
        MALFORMED,
        "250 OK",
        "250 OK",
        "250 OK",
        MAIL_SYNTAX_ESMTP,
        "250 OK",
        "250 OK",
        "250 OK",
        "555 MAIL FROM parameters not recognized or not implemented",
        "250 OK",
        "250 OK",
        "250 OK",
        "250 OK",
        "250 OK",
        "250 OK",
        "250 OK",
        // RCPT
        "250 OK",
        "250 OK",
        RCPT_SYNTAX_ESMTP,
        MALFORMED,
        "250 OK",
        "250 OK",
        RCPT_SYNTAX_ESMTP,
    ]);
    let trace = session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM:<anne@example.com",
            "RSET",
            "MAIL FROM:anne@example.com>",
            "RSET",
            "MAIL FROM:<<anne@example.com>>",
            "RSET",
            "MAIL FROM:< anne@example.com >",
            "RSET",
            "MAIL FROM:<anne@example.com> <x@example.com>",
            "RSET",
            "MAIL FROM:<anne @example.com>",
            "RSET",
            "MAIL FROM:<anne@example.com>x",
            "RSET",
            "MAIL  FROM:<anne@example.com>",
            "RSET",
            "MAIL FROM:  <anne@example.com>",
            "RSET",
            "MAIL from:<anne@example.com>",
            "RSET",
            "MAIL FROM:<anne@example.com>",
            "RCPT TO:<bart@example.com",
            "RCPT TO:bart@example.com>",
            "RCPT TO:<<bart@example.com>>",
            "RCPT TO:< bart@example.com >",
            "RCPT TO:<>",
            "RCPT TO:<bart@example.com> <x@example.com>",
        ],
        &replies,
    );
    let rcpts = trace
        .asks
        .iter()
        .filter(|a| matches!(a, Ask::Rcpt { .. }))
        .count();
    assert_eq!(rcpts, 3);
}

#[test]
fn null_reverse_path_and_quoted_empty_local_part() {
    // golden mail_null_reverse_path_forms, mail_quoted_empty_local
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend(["250 OK"; 8]);
    let trace = session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM:<>",
            "RSET",
            "MAIL FROM: <>",
            "RSET",
            "MAIL FROM:<> SIZE=100",
            "RSET",
            "MAIL FROM:<> BODY=8BITMIME",
            "RSET",
        ],
        &replies,
    );
    let mails = mail_ask(&trace);
    assert_eq!(mails.len(), 4);
    assert!(mails.iter().all(|(a, _)| a == "<>"), "{mails:?}");
    assert_eq!(mails[2].1, ["SIZE=100"]);
    assert_eq!(mails[3].1, ["BODY=8BITMIME"]);
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL FROM: <\"\"@example.com>",
            "RCPT TO: <\"\"@example.org>",
        ],
        &["250 mx.example", "250 OK", "250 OK"],
    );
}

#[test]
fn mail_size_parameter() {
    // golden size_param_limit (sized) and size_param (no limit)
    let mut replies = EHLO_SIZED.to_vec();
    let too_big = "552 Error: message size exceeds fixed maximum message size";
    replies.extend([too_big, "250 OK", "250 OK", "250 OK", too_big, "250 OK"]);
    session(
        sized(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com> SIZE=4097",
            "RSET",
            "MAIL FROM: <anne@example.com> SIZE=4096",
            "RSET",
            "MAIL FROM: <anne@example.com> SIZE=10000",
            "RSET",
        ],
        &replies,
    );
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend(["250 OK"; 4]);
    let trace = session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com> SIZE=0",
            "RSET",
            "MAIL FROM: <anne@example.com> SIZE=99999999999",
            "RSET",
        ],
        &replies,
    );
    assert_eq!(mail_ask(&trace)[1].1, ["SIZE=99999999999"]);
}

#[test]
fn mail_body_parameter() {
    // golden body_param
    let body = "501 Error: BODY can only be one of 7BIT, 8BITMIME";
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([
        "250 OK", "250 OK", "250 OK", "250 OK", "250 OK", "250 OK", body, "250 OK", body, "250 OK",
        body, "250 OK", body,
    ]);
    let trace = session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com> BODY=8BITMIME",
            "RSET",
            "MAIL FROM: <anne@example.com> BODY=7BIT",
            "RSET",
            "MAIL FROM: <anne@example.com> body=8bitmime",
            "RSET",
            "MAIL FROM: <anne@example.com> BODY=FOOBAR",
            "RSET",
            "MAIL FROM: <anne@example.com> BODY 9BIT",
            "RSET",
            "MAIL FROM: <anne@example.com> BODY=BINARYMIME",
            "RSET",
            "MAIL FROM: <anne@example.com> BODY",
        ],
        &replies,
    );
    // Options are passed uppercased.
    assert_eq!(mail_ask(&trace)[2].1, ["BODY=8BITMIME"]);
}

#[test]
fn mail_smtputf8_parameter() {
    // golden smtputf8_param_disabled, smtputf8_with_value, smtputf8_transaction
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([
        "501 Error: SMTPUTF8 disabled",
        "501 Error: SMTPUTF8 takes no arguments",
    ]);
    session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com> SMTPUTF8",
            "MAIL FROM: <anne@example.com> SMTPUTF8=YES",
        ],
        &replies,
    );
    let mut replies = EHLO_SIZED.to_vec();
    replies.extend([
        "501 Error: SMTPUTF8 takes no arguments",
        "250 OK",
        "250 OK",
        GO_AHEAD,
        "250 OK",
    ]);
    let trace = transcript(
        sized(),
        &[
            b"EHLO example.com\r\n",
            b"MAIL FROM: <anne@example.com> SMTPUTF8=YES\r\n",
            "MAIL FROM: <anne\u{cb}@example.com> SMTPUTF8\r\n".as_bytes(),
            "RCPT TO: <bart\u{cb}@example.com>\r\n".as_bytes(),
            b"DATA\r\n",
            "Subject: caf\u{e9}\r\n\r\n\u{fc}nic\u{f6}de\r\n.\r\n".as_bytes(),
        ],
        &replies,
    );
    let message = &trace.messages[0];
    assert!(message.smtp_utf8);
    assert_eq!(message.mail_from.as_deref(), Some("anne\u{cb}@example.com"));
    assert_eq!(message.mail_options, ["SMTPUTF8"]);
    assert_eq!(message.rcpt_tos, ["bart\u{cb}@example.com"]);
    assert_eq!(
        message.content,
        "Subject: caf\u{e9}\r\n\r\n\u{fc}nic\u{f6}de\r\n".as_bytes()
    );
}

#[test]
fn unknown_parameters_get_555() {
    // golden mail_unknown_param, rcpt_unknown_params
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([
        "555 MAIL FROM parameters not recognized or not implemented",
        "555 MAIL FROM parameters not recognized or not implemented",
        "250 OK",
        "555 RCPT TO parameters not recognized or not implemented",
        "555 RCPT TO parameters not recognized or not implemented",
        "555 RCPT TO parameters not recognized or not implemented",
    ]);
    session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com> FOO=BAR",
            "MAIL FROM: <anne@example.com> RET=HDRS",
            "MAIL FROM: <anne@example.com>",
            "RCPT TO: <bart@example.com> FOOBAR",
            "RCPT TO: <bart@example.com> NOTIFY=NEVER",
            "RCPT TO: <bart@example.com> ORCPT=rfc822;bart@example.com",
        ],
        &replies,
    );
}

// ---------------------------------------------------------------------------
// DATA
// ---------------------------------------------------------------------------

#[test]
fn data_with_argument() {
    // golden data_with_arg
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL FROM: <anne@example.com>",
            "RCPT TO: <anne@example.com>",
            "DATA FOOBAR",
            "DATA",
        ],
        &[
            "250 mx.example",
            "250 OK",
            "250 OK",
            "501 Syntax: DATA",
            GO_AHEAD,
        ],
    );
}

#[test]
fn data_delivers_message_and_resets_envelope() {
    // golden data_basic, data_state_reset_after_message
    let trace = transcript(
        plain(),
        &[
            b"HELO example.org\r\n",
            b"MAIL FROM:<anne@example.com>\r\n",
            b"RCPT TO:<bart@example.com>\r\n",
            b"RCPT TO:<cate@example.com>\r\n",
            b"DATA\r\n",
            MSG,
            b"RCPT TO:<bart@example.com>\r\n",
            b"DATA\r\n",
            b"MAIL FROM:<dave@example.com>\r\n",
            b"QUIT\r\n",
        ],
        &[
            "250 mx.example",
            "250 OK",
            "250 OK",
            "250 OK",
            GO_AHEAD,
            "250 OK",
            "503 Error: need MAIL command",
            "503 Error: need RCPT command",
            "250 OK",
            "221 Bye",
        ],
    );
    assert!(trace.closed);
    assert_eq!(trace.messages.len(), 1);
    let message = &trace.messages[0];
    assert_eq!(message.mail_from.as_deref(), Some("anne@example.com"));
    assert_eq!(message.rcpt_tos, ["bart@example.com", "cate@example.com"]);
    assert_eq!(message.content, &MSG[..MSG.len() - 3]);
}

#[test]
fn data_dot_unstuffing_and_line_endings() {
    // golden data_dot_stuffing, data_empty_message, data_mixed_line_endings,
    // data_dot_space_is_not_end, data_nul_and_8bit
    let head: [&[u8]; 4] = [
        b"HELO example.org\r\n",
        b"MAIL FROM:<anne@example.com>\r\n",
        b"RCPT TO:<bart@example.com>\r\n",
        b"DATA\r\n",
    ];
    let ok = ["250 mx.example", "250 OK", "250 OK", GO_AHEAD, "250 OK"];
    let cases: [(&[u8], &[u8]); 6] = [
        (
            b"Subject: dots\r\n\r\n..leading dot\r\n..\r\n...\r\n..x.\r\na.\r\n.x\r\n\r\n.\r\n",
            // Every leading dot goes, not only doubled ones.
            b"Subject: dots\r\n\r\n.leading dot\r\n.\r\n..\r\n.x.\r\na.\r\nx\r\n\r\n",
        ),
        (b".\r\n", b""),
        (
            b"test\r\nmail\rdelimiters\nsaved\r\n.\r\n",
            b"test\r\nmail\rdelimiters\nsaved\r\n",
        ),
        (b"Subject: x\r\n\r\n. \r\n.\r\n", b"Subject: x\r\n\r\n \r\n"),
        (
            b"nul\x00byte\r\ncaf\xc3\xa9\r\n\xff\xfe invalid utf-8\r\n.\r\n",
            b"nul\x00byte\r\ncaf\xc3\xa9\r\n\xff\xfe invalid utf-8\r\n",
        ),
        (b"no final newline\r\n.\r\n", b"no final newline\r\n"),
    ];
    for (body, content) in cases {
        let mut input = head.to_vec();
        input.push(body);
        let trace = transcript(plain(), &input, &ok);
        assert_eq!(trace.messages.len(), 1);
        assert_eq!(
            trace.messages[0].content,
            content,
            "content for {}",
            show(body, 200)
        );
    }
}

#[test]
fn data_reply_is_delayed_until_the_final_dot() {
    // golden data_dot_space_is_not_end, data_long_line_delayed_error,
    // data_oversize_delayed_error
    let mut driver = Driver::new(sized());
    driver.feed(b"EHLO example.com\r\nMAIL FROM: <anne@example.com>\r\n");
    driver.feed(b"RCPT TO: <bruce@example.com>\r\nDATA\r\n");
    let before = driver.trace.out.len();
    driver.feed(b"Subject: x\r\n\r\n. \r\n");
    driver.feed(&b"z".repeat(1004));
    driver.feed(b"\r\n");
    driver.feed(&b"z".repeat(4000));
    driver.feed(b"\r\n");
    assert_eq!(
        driver.trace.out.len(),
        before,
        "nothing before the final dot"
    );
    driver.feed(b".\r\n");
    assert_eq!(
        &driver.trace.out[before..],
        format!("{LINE_TOO_LONG}\r\n").as_bytes()
    );
    assert!(driver.trace.messages.is_empty());
    // The same input as one transcript, for every split.
    let mut replies = EHLO_SIZED.to_vec();
    replies.extend(["250 OK", "250 OK", GO_AHEAD, LINE_TOO_LONG]);
    let long = [b"z".repeat(1004), b"\r\n".to_vec(), b"z".repeat(4000)].concat();
    transcript(
        sized(),
        &[
            b"EHLO example.com\r\nMAIL FROM: <anne@example.com>\r\n",
            b"RCPT TO: <bruce@example.com>\r\nDATA\r\n",
            b"Subject: x\r\n\r\n. \r\n",
            &long,
            b"\r\n.\r\n",
        ],
        &replies,
    );
}

#[test]
fn data_line_length_limit() {
    // golden data_line_length_boundary, data_long_lines: 999 octets + CRLF is fine,
    // 1000 + CRLF is too long; the session goes on.
    let line_999 = [b"x".repeat(999), b"\r\n.\r\n".to_vec()].concat();
    let line_1000 = [b"x".repeat(1000), b"\r\n.\r\n".to_vec()].concat();
    let trace = transcript(
        plain(),
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
            &line_999,
            b"MAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
            &line_1000,
            b"NOOP\r\nRCPT TO:<bart@example.com>\r\nMAIL FROM:<x@example.com>\r\n",
        ],
        &[
            "250 mx.example",
            "250 OK",
            "250 OK",
            GO_AHEAD,
            "250 OK",
            "250 OK",
            "250 OK",
            GO_AHEAD,
            LINE_TOO_LONG,
            "250 OK",
            "503 Error: need MAIL command",
            "250 OK",
        ],
    );
    assert_eq!(trace.messages.len(), 1);
    assert_eq!(trace.messages[0].content.len(), 1001);
}

#[test]
fn data_size_limit_counts_wire_bytes() {
    let config = plain().with_data_size_limit(Some(12));
    let head: &[u8] = b"EHLO example.com\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n";
    let ehlo = [
        "250-mx.example",
        "250-SIZE 12",
        "250-8BITMIME",
        "250 HELP",
        "250 OK",
        "250 OK",
        GO_AHEAD,
    ];
    let cases: [(&[u8], Option<&[u8]>); 5] = [
        // Exactly 12 bytes on the wire.
        (b"0123456789\r\n.\r\n", Some(b"0123456789\r\n")),
        (b"01234567890\r\n.\r\n", None),
        // The stuffing dot counts: 12 wire bytes, 11 kept.
        (b".123456789\r\n.\r\n", Some(b"123456789\r\n")),
        // 13 wire bytes, only 12 kept: still too much.
        (b".1234567890\r\n.\r\n", None),
        (b"0123\r\n0123\r\n.\r\n", Some(b"0123\r\n0123\r\n")),
    ];
    for (body, content) in cases {
        let mut replies = ehlo.to_vec();
        replies.push(if content.is_some() {
            "250 OK"
        } else {
            TOO_MUCH
        });
        // After a refused message the envelope is empty again.
        replies.push("503 Error: need MAIL command");
        let trace = transcript(
            config.clone(),
            &[head, body, b"RCPT TO:<bart@example.com>\r\n"],
            &replies,
        );
        match content {
            Some(content) => assert_eq!(trace.messages[0].content, content),
            None => assert!(
                trace.messages.is_empty(),
                "no Data hook for a refused message"
            ),
        }
    }
}

#[test]
fn data_first_error_wins() {
    // golden data_too_much_then_too_long, data_too_long_then_too_much,
    // data_exactly_at_limit, data_one_over_limit, data_oversize_then_continue
    let head: &[u8] = b"EHLO example.com\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n";
    let line = |byte: u8, len: usize| [vec![byte; len], b"\r\n".to_vec()].concat();
    let too_much_then_long = [
        line(b'z', 76).repeat(60),
        line(b'a', 1100).repeat(2),
        b".\r\n".to_vec(),
    ]
    .concat();
    let long_then_too_much = [line(b'z', 1999).repeat(3), b".\r\n".to_vec()].concat();
    for (body, reply) in [
        (too_much_then_long, TOO_MUCH),
        (long_then_too_much, LINE_TOO_LONG),
        (sized_msg(4096), "250 OK"),
        (sized_msg(4097), TOO_MUCH),
    ] {
        let mut replies = EHLO_SIZED.to_vec();
        replies.extend(["250 OK", "250 OK", GO_AHEAD, reply]);
        replies.extend([
            "503 Error: need MAIL command",
            "250 OK",
            "250 OK",
            GO_AHEAD,
            "250 OK",
        ]);
        let trace = transcript(
            sized(),
            &[
                head,
                &body,
                b"RCPT TO:<bart@example.com>\r\nMAIL FROM:<anne@example.com>\r\n",
                b"RCPT TO:<bart@example.com>\r\nDATA\r\n",
                MSG,
            ],
            &replies,
        );
        assert_eq!(
            trace.messages.last().unwrap().content,
            &MSG[..MSG.len() - 3]
        );
    }
}

#[test]
fn smtp_smuggling_variants_never_end_data() {
    // CVE-2024-27305 / golden data_smuggling_*: only CRLF.CRLF ends the data.
    let variants: [(&[u8], &[u8]); 8] = [
        (b"\n.\n", b"\n.\n"),
        (b"\n.\r\n", b"\n.\r\n"),
        (b"\r.\r\n", b"\r.\r\n"),
        // A line starting with "." loses the dot, even when a bare CR/LF follows.
        (b"\r\n.\r", b"\r\n\r"),
        (b"\r\n.\n", b"\r\n\n"),
        (b"\r\n.\x00\r\n", b"\r\n\x00\r\n"),
        (b"\r\n\x00.\r\n", b"\r\n\x00.\r\n"),
        (b"\r\n.\r\r\n", b"\r\n\r\r\n"),
    ];
    let smuggled: &[u8] =
        b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n";
    for (variant, kept) in variants {
        let body = [
            b"Subject: smuggle\r\n\r\nTesting",
            variant,
            smuggled,
            b".\r\n",
        ]
        .concat();
        let trace = transcript(
            plain(),
            &[
                b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
                &body,
                b"QUIT\r\n",
            ],
            &["250 mx.example", "250 OK", "250 OK", GO_AHEAD, "250 OK", "221 Bye"],
        );
        assert_eq!(
            trace.messages.len(),
            1,
            "one message for {}",
            show(variant, 40)
        );
        let message = &trace.messages[0];
        assert_eq!(message.mail_from.as_deref(), Some("anne@example.com"));
        assert_eq!(message.rcpt_tos, ["bart@example.com"]);
        let content = [b"Subject: smuggle\r\n\r\nTesting", kept, smuggled].concat();
        assert_eq!(
            message.content,
            content,
            "content for {}",
            show(variant, 40)
        );
        let mails = mail_ask(&trace);
        assert_eq!(mails.len(), 1, "no injected MAIL for {}", show(variant, 40));
    }
}

// ---------------------------------------------------------------------------
// RSET, NOOP, QUIT, VRFY, EXPN, HELP
// ---------------------------------------------------------------------------

#[test]
fn rset_noop_quit_and_arguments() {
    // golden rset, rset_clears_transaction, noop, quit_with_arg, quit_trailing_space
    let trace = session(
        plain(),
        &[
            "RSET",
            "RSET FOO",
            "NOOP",
            "NOOP ok",
            "NOOP  with several words ",
            "HELO example.org",
            "MAIL FROM:<anne@example.com>",
            "RCPT TO:<bart@example.com>",
            "RSET",
            "DATA",
            "RCPT TO:<bart@example.com>",
            "MAIL FROM:<dave@example.com>",
            "QUIT oops",
            "QUIT ",
            "NOOP",
        ],
        &[
            "250 OK",
            "501 Syntax: RSET",
            "250 OK",
            "250 OK",
            "250 OK",
            "250 mx.example",
            "250 OK",
            "250 OK",
            "250 OK",
            "503 Error: need RCPT command",
            "503 Error: need MAIL command",
            "250 OK",
            "501 Syntax: QUIT",
            "221 Bye",
        ],
    );
    assert!(trace.closed);
    let noops: Vec<_> = trace
        .asks
        .iter()
        .filter_map(|a| match a {
            Ask::Noop { arg } => Some(arg.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        noops,
        [None, Some("ok".into()), Some("with several words".into())]
    );
    assert_eq!(trace.asks.iter().filter(|a| **a == Ask::Rset).count(), 2);
}

#[test]
fn vrfy_and_expn() {
    // golden vrfy, expn, vrfy_inside_transaction
    let trace = session(
        plain(),
        &[
            "VRFY <anne@example.com>",
            "VRFY anne@example.com",
            "VRFY",
            "VRFY @@",
            "EXPN anne@example.com",
            "EXPN",
            "HELO example.org",
            "MAIL FROM:<anne@example.com>",
            "RCPT TO:<bart@example.com>",
            "VRFY zuzu@example.com",
            "NOOP",
            "DATA",
        ],
        &[
            VRFY_OK,
            VRFY_OK,
            "501 Syntax: VRFY <address>",
            "502 Could not VRFY @@",
            "502 EXPN not implemented",
            "502 EXPN not implemented",
            "250 mx.example",
            "250 OK",
            "250 OK",
            VRFY_OK,
            "250 OK",
            GO_AHEAD,
        ],
    );
    let vrfys: Vec<_> = trace
        .asks
        .iter()
        .filter_map(|a| match a {
            Ask::Vrfy { address } => Some(address.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        vrfys,
        ["anne@example.com", "anne@example.com", "zuzu@example.com"]
    );
}

#[test]
fn help_list_per_command_and_errors() {
    // golden help, help_each_command, help_esmtp, help_bad_arg
    let list = format!("250 {HELP_LIST}");
    let bad = format!("501 {HELP_LIST}");
    session(
        plain(),
        &[
            "HELP",
            "HELP HELO",
            "HELP EHLO",
            "HELP MAIL",
            "HELP RCPT",
            "HELP DATA",
            "HELP RSET",
            "HELP NOOP",
            "HELP QUIT",
            "HELP VRFY",
            "HELP AUTH",
            "HELP help",
            "HELP quit",
            "HELP me!",
            "HELP EXPN",
            "HELP STARTTLS",
            "HELP NOOP extra",
            "HELP FOO",
            "help",
        ],
        &[
            &list,
            "250 Syntax: HELO hostname",
            "250 Syntax: EHLO hostname",
            "250 Syntax: MAIL FROM: <address>",
            "250 Syntax: RCPT TO: <address>",
            "250 Syntax: DATA",
            "250 Syntax: RSET",
            "250 Syntax: NOOP [ignored]",
            "250 Syntax: QUIT",
            "250 Syntax: VRFY <address>",
            "250 Syntax: AUTH <mechanism>",
            "250 Syntax: HELP [command]",
            "250 Syntax: QUIT",
            &bad,
            &bad,
            &bad,
            &bad,
            &bad,
            &list,
        ],
    );
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([
        "250 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
        "250 Syntax: RCPT TO: <address> [SP <mail-parameters>]",
        "250 Syntax: HELO hostname",
        "250 mx.example",
        "250 Syntax: MAIL FROM: <address>",
    ]);
    session(
        plain(),
        &[
            "EHLO example.com",
            "HELP MAIL",
            "HELP rcpt",
            "HELP HELO",
            "HELO example.org",
            "HELP MAIL",
        ],
        &replies,
    );
}

#[test]
fn auth_and_starttls_without_tls() {
    // golden auth_not_offered, starttls_not_offered
    let mut replies = vec!["503 Error: send EHLO first", "250 mx.example"];
    replies.push("500 Error: command 'AUTH' not recognized");
    replies.extend(EHLO_PLAIN);
    replies.extend([
        "538 5.7.11 Encryption required for requested authentication mechanism",
        "454 TLS not available",
        "501 Syntax: STARTTLS",
    ]);
    session(
        plain(),
        &[
            "AUTH PLAIN",
            "HELO example.org",
            "AUTH PLAIN",
            "EHLO example.com",
            "AUTH PLAIN AGdvb2Rsb2dpbgBnb29kcGFzc3dk",
            "STARTTLS",
            "STARTTLS now",
        ],
        &replies,
    );
}

// ---------------------------------------------------------------------------
// Command-line handling
// ---------------------------------------------------------------------------

#[test]
fn unknown_commands_and_the_bogus_limit() {
    // golden unknown_command, unknown_command_limit, unknown_command_limit_not_reset,
    // tab_separator, bare_cr_in_command, nul_in_command
    session(
        plain(),
        &[
            "FOOBAR",
            "FOOBAR with args",
            "foobar",
            "MAIL\tFROM:<anne@example.com>",
        ],
        &[
            "500 Error: command \"FOOBAR\" not recognized",
            "500 Error: command \"FOOBAR\" not recognized",
            "500 Error: command \"FOOBAR\" not recognized",
            "500 Error: command \"MAIL\tFROM:<ANNE@EXAMPLE.COM>\" not recognized",
        ],
    );
    let trace = session(
        plain(),
        &["BOGUS0", "BOGUS1", "BOGUS2", "BOGUS3", "LASTBOGUS", "NOOP"],
        &[
            "500 Error: command \"BOGUS0\" not recognized",
            "500 Error: command \"BOGUS1\" not recognized",
            "500 Error: command \"BOGUS2\" not recognized",
            "500 Error: command \"BOGUS3\" not recognized",
            "502 5.5.1 Too many unrecognized commands, goodbye.",
        ],
    );
    assert!(trace.closed);
    let trace = session(
        plain(),
        &[
            "BOGUS1",
            "NOOP",
            "BOGUS2",
            "HELO example.org",
            "BOGUS3",
            "BOGUS4",
            "BOGUS5",
        ],
        &[
            "500 Error: command \"BOGUS1\" not recognized",
            "250 OK",
            "500 Error: command \"BOGUS2\" not recognized",
            "250 mx.example",
            "500 Error: command \"BOGUS3\" not recognized",
            "500 Error: command \"BOGUS4\" not recognized",
            "502 5.5.1 Too many unrecognized commands, goodbye.",
        ],
    );
    assert!(trace.closed);
    // Bare CR is not a line end, NUL is kept: both are echoed verbatim.
    transcript(
        plain(),
        &[
            b"NOOP\rNOOP\r\n",
            b"NOOP\x00\r\n",
            b"NOOP\r\n",
            b"HELO exa\x00mple.org\r\n",
        ],
        &[
            "500 Error: command \"NOOP\rNOOP\" not recognized",
            "500 Error: command \"NOOP\x00\" not recognized",
            "250 OK",
            "250 mx.example",
        ],
    );
    let mut config = plain();
    config.bogus_limit = 1;
    let trace = session(
        config,
        &["FOO"],
        &["502 5.5.1 Too many unrecognized commands, goodbye."],
    );
    assert!(trace.closed);
}

#[test]
fn empty_and_blank_lines() {
    // golden empty_line, leading_space
    transcript(
        plain(),
        &[b"\r\n", b"\n", b"\r\r\n", b"   \r\n", b" NOOP\r\n"],
        &[
            "500 Error: bad syntax",
            "500 Error: bad syntax",
            "500 Error: bad syntax",
            "500 Error: command \"\" not recognized",
            "500 Error: command \"\" not recognized",
        ],
    );
}

#[test]
fn bare_lf_ends_commands() {
    // golden bare_lf_commands
    transcript(
        plain(),
        &[
            b"NOOP\n",
            b"HELO example.org\n",
            b"MAIL FROM:<anne@example.com>\n",
        ],
        &["250 OK", "250 mx.example", "250 OK"],
    );
}

#[test]
fn non_ascii_command_is_bad_syntax() {
    // golden binary_command; the command word must be ASCII even with SMTPUTF8.
    for config in [plain(), sized()] {
        transcript(
            config,
            &[
                b"\x80FAIL\r\n",
                b"\x80 FAIL\r\n",
                "N\u{d6}OP\r\n".as_bytes(),
            ],
            &["500 Error: bad syntax"; 3],
        );
    }
}

#[test]
fn non_ascii_argument_without_smtputf8() {
    // golden invalid_utf8_strict_ascii, invalid_utf8_addresses
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend(["500 Error: strict ASCII mode"; 4]);
    // The argument is decoded before the command is looked up, so an unknown
    // command with a non-ASCII argument does not spend the bogus budget.
    replies.extend(["500 Error: strict ASCII mode"; 4]);
    replies.push("500 Error: command \"FOO\" not recognized");
    transcript(
        plain(),
        &[
            b"EHLO example.com\r\n",
            b"MAIL FROM: <anne\xff@example.com>\r\n",
            "MAIL FROM: <ann\u{e9}@example.com>\r\n".as_bytes(),
            "NOOP \u{e9}\r\n".as_bytes(),
            b"VRFY \xff\r\n",
            b"FOO \xff\r\n",
            b"FOO \xff\r\n",
            b"FOO \xff\r\n",
            b"FOO \xff\r\n",
            b"FOO\r\n",
        ],
        &replies,
    );
    let mut replies = vec!["250 mx.example"];
    replies.extend(EHLO_SIZED);
    replies.extend(["250 OK", "250 OK", GO_AHEAD, "250 OK", "250 OK"]);
    let trace = transcript(
        sized(),
        &[
            b"HELO example.org\r\n",
            b"EHLO example.com\r\n",
            b"MAIL FROM:anne\xff@example.com\r\n",
            b"RCPT TO:bart\xff@example.com\r\n",
            b"DATA\r\n",
            b"Test mail\r\n.\r\n",
            "NOOP \u{e9}\r\n".as_bytes(),
        ],
        &replies,
    );
    assert_eq!(trace.messages.len(), 1);
}

#[test]
fn command_line_length_limits() {
    // golden command_length_boundary, helo_long_hostname, command_too_long,
    // mail_line_too_long, mail_command_limit_modes
    let noop = |n: usize| format!("NOOP {}", "x".repeat(n - 5));
    let mail = |n: usize| format!("MAIL FROM:<{}@x>", "m".repeat(n - 14));
    let rcpt = |n: usize| format!("RCPT TO:<{}@x>", "r".repeat(n - 12));
    assert_eq!(noop(512).len(), 512);
    assert_eq!(mail(548).len(), 548);
    assert_eq!(rcpt(512).len(), 512);
    // (Several short sessions: every-offset splitting is quadratic.)
    session(plain(), &[&noop(512), &noop(513)], &["250 OK", TOO_LONG]);
    session(plain(), &[&"a".repeat(513), "NOOP"], &[TOO_LONG, "250 OK"]);
    session(
        plain(),
        &[
            &format!("HELO {}", "h".repeat(507)),
            &format!("HELO {}", "h".repeat(508)),
        ],
        &["250 mx.example", TOO_LONG],
    );
    // SIZE (+26) and SMTPUTF8 (+10) raise the MAIL limit, in ESMTP sessions only.
    session(
        sized(),
        &["HELO example.org", &mail(513), &mail(512)],
        &["250 mx.example", TOO_LONG, "250 OK"],
    );
    let mut replies = EHLO_SIZED.to_vec();
    replies.extend(["250 OK", "250 OK", TOO_LONG]);
    session(
        sized(),
        &["EHLO example.com", &mail(548), "RSET", &mail(549)],
        &replies,
    );
    // RCPT keeps 512.
    let mut replies = EHLO_SIZED.to_vec();
    replies.extend(["250 OK", "250 OK", TOO_LONG]);
    session(
        sized(),
        &[
            "EHLO example.com",
            "MAIL FROM:<a@x>",
            &rcpt(512),
            &rcpt(513),
        ],
        &replies,
    );
    let mut replies = vec![
        "250-mx.example",
        "250-SIZE 33554432",
        "250-8BITMIME",
        "250 HELP",
    ];
    replies.extend(["250 OK", "250 OK", TOO_LONG]);
    session(
        library_defaults(),
        &["EHLO example.com", &mail(538), "RSET", &mail(539)],
        &replies,
    );
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend(["250 OK", "250 OK", TOO_LONG]);
    session(
        plain(),
        &["EHLO example.com", &mail(512), "RSET", &mail(513)],
        &replies,
    );
}

#[test]
fn overlong_line_is_discarded_and_answered_once() {
    // golden command_way_too_long: 1 MB without CRLF, then more of the same line.
    let megabyte = b"a".repeat(1_000_000);
    let rest = [b"a".repeat(1001), b"\r\n".to_vec()].concat();
    let trace = transcript(
        plain(),
        &[&megabyte, &rest, b"NOOP\r\n"],
        &[TOO_LONG, "250 OK"],
    );
    assert!(trace.asks.iter().all(|a| matches!(a, Ask::Noop { .. })));
    // An overlong line and the next command in one piece.
    let line = [
        b"MAIL FROM:<".to_vec(),
        b"m".repeat(2000),
        b">\r\nNOOP\r\n".to_vec(),
    ]
    .concat();
    transcript(
        plain(),
        &[b"HELO example.org\r\n", &line],
        &["250 mx.example", TOO_LONG, "250 OK"],
    );
    // An unfinished overlong line at peer close is dropped without a reply.
    let closing = Script {
        peer_close: true,
        ..Script::new(plain())
    };
    let trace = closing.transcript(&[&b"x".repeat(5000)], &[]);
    assert!(trace.closed);
}

#[test]
fn line_length_limit_boundary() {
    // The raw line limit counts bytes before the LF (asyncio's readuntil limit).
    let mut config = plain();
    config.line_length_limit = 20;
    let ok = format!("NOOP {}\r\n", "x".repeat(14));
    let long = format!("NOOP {}\r\n", "x".repeat(15));
    assert_eq!(ok.find('\n'), Some(20));
    transcript(
        config,
        &[ok.as_bytes(), long.as_bytes(), long.as_bytes(), b"NOOP\r\n"],
        &["250 OK", TOO_LONG, TOO_LONG, "250 OK"],
    );
}

#[test]
fn call_limits() {
    // spec 2.2 step 9 / 3.6: counted per command name, failed and unknown commands
    // included; the call after the budget gets 421 and the connection closes.
    let limits = |entries: &[(&str, u32)]| {
        plain().with_call_limits(Some(CallLimits::from_map(entries.iter().copied())))
    };
    let trace = session(
        limits(&[("NOOP", 3)]),
        &["NOOP", "noop", "NoOp x", "VRFY a@b", "NOOP", "NOOP"],
        &[
            "250 OK",
            "250 OK",
            "250 OK",
            VRFY_OK,
            "421 4.7.0 NOOP sent too many times",
        ],
    );
    assert!(trace.closed);
    let trace = session(
        limits(&[("HELO", 1)]),
        &["HELO", "HELO example.org"],
        &[
            "501 Syntax: HELO hostname",
            "421 4.7.0 HELO sent too many times",
        ],
    );
    assert!(trace.closed);
    let trace = session(
        limits(&[("*", 1)]),
        &["NOOP", "FOO", "FOO"],
        &[
            "250 OK",
            "500 Error: command \"FOO\" not recognized",
            "421 4.7.0 FOO sent too many times",
        ],
    );
    assert!(trace.closed);
    let trace = session(
        plain().with_call_limits(Some(CallLimits::uniform(2))),
        &["RSET", "RSET", "NOOP", "RSET"],
        &[
            "250 OK",
            "250 OK",
            "250 OK",
            "421 4.7.0 RSET sent too many times",
        ],
    );
    assert!(trace.closed);
    // Pipelined input after the 421 is not answered.
    transcript(
        limits(&[("NOOP", 1)]),
        &[b"NOOP\r\nNOOP\r\nQUIT\r\n"],
        &["250 OK", "421 4.7.0 NOOP sent too many times"],
    );
}

#[test]
fn idle_timeout() {
    // Beyond aiosmtpd (which closes silently): a 421 is sent before closing.
    let mut driver = Driver::new(plain());
    let start = driver.now;
    let deadline = driver.conn.poll_timeout().expect("a deadline");
    assert_eq!(deadline, start + Duration::from_secs(300));
    driver.timeout(deadline - Duration::from_millis(1));
    assert_eq!(
        driver.trace.out,
        GREETING.as_bytes(),
        "nothing before the deadline"
    );
    assert!(!driver.trace.closed);
    // A recognised command re-arms the timer ...
    driver.now = start + Duration::from_secs(100);
    driver.feed(b"NOOP\r\n");
    assert_eq!(
        driver.conn.poll_timeout(),
        Some(start + Duration::from_secs(400))
    );
    // ... unknown commands and rejected lines do not (spec 3.5).
    driver.now = start + Duration::from_secs(150);
    driver.feed(b"FOO\r\n\r\n\xff\r\n");
    assert_eq!(
        driver.conn.poll_timeout(),
        Some(start + Duration::from_secs(400))
    );
    driver.timeout(start + Duration::from_secs(399));
    assert!(!driver.trace.closed);
    let before = driver.trace.out.len();
    driver.timeout(start + Duration::from_secs(400));
    let tail = &driver.trace.out[before..];
    assert!(tail.starts_with(b"421 "), "got {}", show(tail, 200));
    assert!(tail.ends_with(b"\r\n") && find(tail, b"\r\n") == Some(tail.len() - 2));
    assert!(driver.trace.closed);
    assert_eq!(driver.conn.poll_timeout(), None);
    // The configured timeout is used.
    let driver = Driver::new(plain().with_timeout(Duration::from_secs(5)));
    assert_eq!(
        driver.conn.poll_timeout(),
        Some(driver.now + Duration::from_secs(5))
    );
}

#[test]
fn no_timeout_while_a_hook_is_pending() {
    let now = Instant::now();
    let mut conn = Connection::new(Arc::new(plain()), Peer::Unknown, now);
    conn.handle_input(now, b"NOOP\r\n").unwrap();
    assert!(matches!(conn.poll_action(), Some(Action::Hook(_))));
    assert_eq!(conn.poll_timeout(), None);
    conn.handle_timeout(now + Duration::from_secs(3600));
    assert!(
        matches!(conn.poll_action(), Some(Action::Hook(_))),
        "still asking"
    );
    conn.handle_decision(now, Decision::Outcome(Outcome::Default))
        .unwrap();
    match conn.poll_action() {
        Some(Action::Send(bytes)) => assert_eq!(bytes, format!("{GREETING}250 OK\r\n").as_bytes()),
        other => panic!("expected Send, got {other:?}"),
    }
    assert!(conn.poll_action().is_none());
    assert!(conn.poll_timeout().is_some());
}

// ---------------------------------------------------------------------------
// Pipelining and peer close
// ---------------------------------------------------------------------------

#[test]
fn pipelined_commands_are_answered_in_order_in_one_send() {
    // golden pipelined_envelope, pipelined_with_errors, pipelined_whole_session
    let mut driver = Driver::new(plain());
    assert_eq!(driver.trace.sends, 1);
    driver.feed(
        b"EHLO example.com\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<@example.com>\r\n\
          RCPT TO:<bart@example.com>\r\nFOO\r\nNOOP\r\nDATA\r\n",
    );
    assert_eq!(driver.trace.sends, 2, "one Send for the whole pipeline");
    let mut expected = String::from(GREETING);
    for line in EHLO_PLAIN.into_iter().chain([
        "250 OK",
        MALFORMED,
        "250 OK",
        "500 Error: command \"FOO\" not recognized",
        "250 OK",
        GO_AHEAD,
    ]) {
        expected.push_str(line);
        expected.push_str("\r\n");
    }
    assert_eq!(String::from_utf8_lossy(&driver.trace.out), expected);

    let whole = [
        b"EHLO example.com\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n".as_slice(),
        MSG,
        b"QUIT\r\n",
    ]
    .concat();
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend(["250 OK", "250 OK", GO_AHEAD, "250 OK", "221 Bye"]);
    let trace = transcript(plain(), &[&whole], &replies);
    assert_eq!(trace.sends, 2);
    assert!(trace.closed);
    // Nothing is answered after QUIT (golden pipelined_after_quit).
    let trace = transcript(plain(), &[b"QUIT\r\nNOOP\r\n"], &["221 Bye"]);
    assert!(trace.closed);
    // The command after the final dot, in the same piece (golden
    // data_pipelined_next_command).
    transcript(
        plain(),
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
            &[MSG, b"MAIL FROM:<next@example.com>\r\n"].concat(),
        ],
        &["250 mx.example", "250 OK", "250 OK", GO_AHEAD, "250 OK", "250 OK"],
    );
}

#[test]
fn many_recipients() {
    // golden many_recipients_100 (aiosmtpd has no recipient limit); short
    // addresses keep splitting at every offset quick.
    let rcpts: String = (0..100)
        .map(|i| format!("RCPT TO:<r{i:02}@x>\r\n"))
        .collect();
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend(["250 OK"; 101]);
    replies.extend([GO_AHEAD, "250 OK"]);
    // A hundred hook calls per run: split at a sample of offsets only.
    let script = Script {
        every_offset_max: 0,
        ..Script::new(plain())
    };
    let trace = script.transcript(
        &[
            b"EHLO x\r\nMAIL FROM:<a@x>\r\n",
            rcpts.as_bytes(),
            b"DATA\r\n",
            MSG,
        ],
        &replies,
    );
    assert_eq!(trace.messages[0].rcpt_tos.len(), 100);
    assert_eq!(trace.messages[0].rcpt_tos[99], "r99@x");
}

#[test]
fn peer_close_answers_buffered_complete_commands() {
    // Beyond aiosmtpd (which drops them, spec 3.7): complete commands received
    // before the peer closed are answered, then the connection closes; a partial
    // command is dropped.
    let mut driver = Driver::new(plain());
    driver.feed_undrained(b"HELO example.org\r\nNOOP\r\nNOOP");
    driver.peer_closed();
    assert_replies(&driver.trace.out, &["250 mx.example", "250 OK"]);
    assert!(driver.trace.closed);
    assert_eq!(driver.trace.asks.len(), 2);
    // Peer close while a hook call is pending: the hook is still answered.
    let mut driver = Driver::new(plain());
    driver.feed_undrained(b"NOOP\r\nRSET\r\n");
    assert!(matches!(driver.conn.poll_action(), Some(Action::Hook(_))));
    driver.peer_closed();
    assert_replies(&driver.trace.out, &["250 OK", "250 OK"]);
    assert!(driver.trace.closed);
    // A pipelined QUIT before the close.
    let mut driver = Driver::new(plain());
    driver.feed_undrained(b"NOOP\r\nQUIT\r\nNOOP\r\n");
    driver.peer_closed();
    assert_replies(&driver.trace.out, &["250 OK", "221 Bye"]);
    // The same, drained as input arrives, for every split.
    let closing = Script {
        peer_close: true,
        ..Script::new(plain())
    };
    let trace = closing.transcript(
        &[b"HELO example.org\r\nNOOP\r\nNOOP"],
        &["250 mx.example", "250 OK"],
    );
    assert!(trace.closed);
    // Peer close in the middle of DATA: no message, just Close.
    let trace = closing.transcript(
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\n",
            b"DATA\r\nFrom: <anne@example.com>\r\n\r\nunfinished\r\n.",
        ],
        &["250 mx.example", "250 OK", "250 OK", GO_AHEAD],
    );
    assert!(trace.messages.is_empty());
    assert!(trace.closed);
}

// ---------------------------------------------------------------------------
// Hook answers
// ---------------------------------------------------------------------------

#[test]
fn hook_reply_rejection_changes_nothing() {
    let responder = || -> Responder {
        Box::new(|ask, _, _| match ask {
            Ask::Rcpt { address, .. } if address.starts_with("bad") => {
                Decision::Outcome(Outcome::reply(550, "5.7.1 not relaying"))
            }
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    let trace = script.transcript(
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bad@example.com>\r\nDATA\r\n",
            b"RCPT TO:<good@example.com>\r\nDATA\r\n",
            MSG,
        ],
        &[
            "250 mx.example",
            "250 OK",
            "550 5.7.1 not relaying",
            "503 Error: need RCPT command",
            "250 OK",
            GO_AHEAD,
            "250 OK",
        ],
    );
    assert_eq!(trace.messages[0].rcpt_tos, ["good@example.com"]);
}

#[test]
fn hook_accept_records_with_custom_reply() {
    let responder = || -> Responder {
        Box::new(|ask, _, _| match ask {
            Ask::Rcpt { .. } => Decision::Outcome(Outcome::accept(250, "2.1.5 Recipient ok")),
            Ask::Mail { .. } => {
                Decision::Outcome(Outcome::Accept(Reply::new(250, "2.1.0 Sender ok")))
            }
            Ask::Data => Decision::Outcome(Outcome::accept(250, "2.0.0 queued as 1234")),
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    let trace = script.transcript(
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
            MSG,
            b"RCPT TO:<bart@example.com>\r\n",
        ],
        &[
            "250 mx.example",
            "250 2.1.0 Sender ok",
            "250 2.1.5 Recipient ok",
            GO_AHEAD,
            "250 2.0.0 queued as 1234",
            "503 Error: need MAIL command",
        ],
    );
    assert_eq!(
        trace.messages[0].mail_from.as_deref(),
        Some("anne@example.com")
    );
    assert_eq!(trace.messages[0].rcpt_tos, ["bart@example.com"]);
}

#[test]
fn hook_failure_becomes_500() {
    fn failure(kind: &str, message: &str) -> Decision {
        Decision::Failed(HookFailure {
            kind: kind.to_owned(),
            message: message.to_owned(),
        })
    }
    let responder = || -> Responder {
        let mut fail_mail = true;
        Box::new(move |ask, _, _| match ask {
            Ask::Mail { .. } if fail_mail => {
                fail_mail = false;
                failure("ValueError", "boom")
            }
            Ask::Data => failure("RuntimeError", "disk full"),
            Ask::Noop { .. } => failure("AssertionError", ""),
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    let trace = script.transcript(
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\n",
            b"MAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
            MSG,
            b"RCPT TO:<bart@example.com>\r\nNOOP\r\n",
        ],
        &[
            "250 mx.example",
            "500 Error: (ValueError) boom",
            "503 Error: need MAIL command",
            "250 OK",
            "250 OK",
            GO_AHEAD,
            "500 Error: (RuntimeError) disk full",
            // The envelope is reset after DATA whatever the hook did.
            "503 Error: need MAIL command",
            // aiosmtpd's answer to a hook returning None.
            "500 Error: (AssertionError) ",
        ],
    );
    assert!(!trace.closed, "the session goes on after a hook failure");
}

#[test]
fn hook_replies_for_other_commands() {
    let responder = || -> Responder {
        Box::new(|ask, session, _| match ask {
            Ask::Helo { hostname } if hostname == "sets.example" => {
                session.host_name = Some(hostname.clone());
                Decision::Outcome(Outcome::reply(250, "hello sets.example"))
            }
            Ask::Helo { .. } => Decision::Outcome(Outcome::reply(250, "hello, but no state")),
            Ask::Ehlo { extensions, .. } => {
                extensions.insert(extensions.len() - 1, "PIPELINING".to_owned());
                Decision::Outcome(Outcome::Default)
            }
            Ask::Noop { .. } => Decision::Outcome(Outcome::reply(250, "first\nsecond\r\nthird")),
            Ask::Vrfy { address } => {
                let text = format!("2.1.5 <{address}> is fine");
                Decision::Outcome(Outcome::reply(250, text))
            }
            Ask::Rset => Decision::Outcome(Outcome::reply(250, "2.0.0 Flushed")),
            Ask::Quit => Decision::Outcome(Outcome::reply(221, "2.0.0 Goodbye")),
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    let trace = script.transcript(
        &[
            b"HELO plain.example\r\nMAIL FROM:<anne@example.com>\r\n",
            b"HELO sets.example\r\nMAIL FROM:<anne@example.com>\r\nEHLO e.example\r\n",
            b"NOOP\r\nVRFY anne@example.com\r\nRSET\r\nQUIT\r\nNOOP\r\n",
        ],
        &[
            "250 hello, but no state",
            // The hook did not record the HELO name.
            "503 Error: send HELO first",
            "250 hello sets.example",
            "250 OK",
            "250-mx.example",
            "250-8BITMIME",
            "250-PIPELINING",
            "250 HELP",
            "250-first",
            "250-second",
            "250 third",
            "250 2.1.5 <anne@example.com> is fine",
            "250 2.0.0 Flushed",
            "221 2.0.0 Goodbye",
        ],
    );
    assert!(trace.closed);
    // A hook may remove every extension.
    let responder = || -> Responder {
        Box::new(|ask, _, _| {
            if let Ask::Ehlo { extensions, .. } = ask {
                extensions.clear();
            }
            Decision::Outcome(Outcome::Default)
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    script.transcript(
        &[b"EHLO example.com\r\nMAIL FROM:<anne@example.com>\r\n"],
        &["250 mx.example", "250 OK"],
    );
}

#[test]
fn data_hook_reply_resets_the_envelope() {
    let responder = || -> Responder {
        Box::new(|ask, _, envelope| match ask {
            Ask::Data => {
                assert_eq!(envelope.content, b"hi\r\n");
                Decision::Outcome(Outcome::reply(451, "4.3.0 try later"))
            }
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    script.transcript(
        &[b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\nhi\r\n.\r\nRCPT TO:<bart@example.com>\r\n"],
        &[
            "250 mx.example",
            "250 OK",
            "250 OK",
            GO_AHEAD,
            "451 4.3.0 try later",
            "503 Error: need MAIL command",
        ],
    );
}

// ---------------------------------------------------------------------------
// API misuse and Close
// ---------------------------------------------------------------------------

#[test]
fn api_misuse_is_an_error() {
    let now = Instant::now();
    let mut conn = Connection::new(Arc::new(plain()), Peer::Unknown, now);
    assert_eq!(
        conn.handle_decision(now, Decision::Outcome(Outcome::Default)),
        Err(Error::NoDecisionPending)
    );
    // Answering twice.
    conn.handle_input(now, b"NOOP\r\n").unwrap();
    assert!(matches!(conn.poll_action(), Some(Action::Hook(_))));
    conn.handle_decision(now, Decision::Outcome(Outcome::Default))
        .unwrap();
    assert_eq!(
        conn.handle_decision(now, Decision::Outcome(Outcome::Default)),
        Err(Error::NoDecisionPending)
    );
    // Input after Close.
    conn.handle_input(now, b"QUIT\r\n").unwrap();
    let mut closed = false;
    while let Some(action) = conn.poll_action() {
        match action {
            Action::Hook(_) => conn
                .handle_decision(now, Decision::Outcome(Outcome::Default))
                .unwrap(),
            Action::Close => closed = true,
            _ => assert!(!closed),
        }
    }
    assert!(closed && conn.is_closed());
    assert_eq!(conn.handle_input(now, b"NOOP\r\n"), Err(Error::Closed));
    assert_eq!(
        conn.handle_decision(now, Decision::Outcome(Outcome::Default)),
        Err(Error::NoDecisionPending)
    );
    conn.handle_peer_closed(now);
    conn.handle_timeout(now + Duration::from_secs(3600));
    conn.handle_shutdown(now);
    assert!(conn.poll_action().is_none());
}

#[test]
fn close_is_always_the_last_action() {
    let scenarios: [(&str, Config, &[u8], u8); 7] = [
        ("quit", plain(), b"QUIT\r\nNOOP\r\n", 0),
        ("bogus", plain(), b"A\r\nB\r\nC\r\nD\r\nE\r\nNOOP\r\n", 0),
        (
            "call limit",
            plain().with_call_limits(Some(CallLimits::uniform(1))),
            b"NOOP\r\nNOOP\r\nNOOP\r\n",
            0,
        ),
        ("peer closed", plain(), b"NOOP\r\n", 1),
        ("timeout", plain(), b"NOOP\r\n", 2),
        ("shutdown", plain(), b"HELO x\r\nMAIL FROM:<a@b.c>\r\n", 3),
        (
            "peer closed in DATA",
            plain(),
            b"HELO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nxx",
            1,
        ),
    ];
    for (name, config, input, ending) in scenarios {
        let mut driver = Driver::new(config);
        driver.feed(input);
        match ending {
            1 => driver.peer_closed(),
            2 => {
                let deadline = driver.conn.poll_timeout().unwrap();
                driver.timeout(deadline);
            }
            3 => {
                driver.conn.handle_shutdown(driver.now);
                driver.drain();
            }
            _ => {}
        }
        assert!(driver.trace.closed, "{name}: closed");
        assert!(driver.trace.out.ends_with(b"\r\n"), "{name}");
        // Nothing comes after Close, whatever the driver does.
        assert_eq!(
            driver.conn.handle_input(driver.now, b"NOOP\r\n"),
            Err(Error::Closed)
        );
        driver.conn.handle_peer_closed(driver.now);
        driver
            .conn
            .handle_timeout(driver.now + Duration::from_secs(1000));
        driver.conn.handle_shutdown(driver.now);
        assert!(
            driver.conn.poll_action().is_none(),
            "{name}: action after Close"
        );
        assert_eq!(driver.conn.poll_timeout(), None, "{name}");
    }
}

#[test]
fn shutdown_sends_421_and_closes() {
    let mut driver = Driver::new(plain());
    driver.feed(b"HELO example.org\r\n");
    driver.conn.handle_shutdown(driver.now);
    driver.drain();
    let out = String::from_utf8_lossy(&driver.trace.out).into_owned();
    let last = out.trim_end().rsplit("\r\n").next().unwrap();
    assert!(last.starts_with("421 "), "{out:?}");
    assert!(driver.trace.closed);
}

// ---------------------------------------------------------------------------
// No-panic smoke test
// ---------------------------------------------------------------------------

/// xorshift64: a small deterministic PRNG.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"HELO ",
    b"EHLO ",
    b"MAIL FROM:",
    b"RCPT TO:",
    b"DATA",
    b"RSET",
    b"NOOP",
    b"QUIT",
    b"VRFY ",
    b"EXPN ",
    b"HELP ",
    b"STARTTLS",
    b"AUTH PLAIN",
    b"helo ",
    b"mail from:",
    b"rcpt to:",
    b"data",
    b"<",
    b">",
    b"<>",
    b"@",
    b".",
    b":",
    b" ",
    b"  ",
    b"\r\n",
    b"\r\n",
    b"\r\n",
    b"\r",
    b"\n",
    b"\x00",
    b"\t",
    b"example.com",
    b"a@b.c",
    b"<anne@example.com>",
    b"SIZE=",
    b"100",
    b"99999999999999999999999",
    b"BODY=8BITMIME",
    b"BODY=",
    b"SMTPUTF8",
    b"=",
    b"\r\n.\r\n",
    b".\r\n",
    b"..",
    b"\xff",
    b"\xc3\xa9",
    b"\"q\"",
    b"(c)",
    b"[127.0.0.1]",
    b"FOO",
    b"#$%",
    b"\r\n.\n",
    b"\n.\r\n",
];

fn random_input(rng: &mut XorShift) -> Vec<u8> {
    let mut input = Vec::new();
    if rng.below(3) == 0 {
        input.extend_from_slice(b"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
    }
    for _ in 0..rng.below(40) {
        match rng.below(12) {
            0..=7 => input.extend_from_slice(TOKENS[rng.below(TOKENS.len())]),
            8 => input.push(rng.next() as u8),
            9 => {
                let byte = [b'x', b'.', b' ', b'\r', b'\n'][rng.below(5)];
                input.extend(std::iter::repeat_n(byte, rng.below(1200)));
            }
            _ => input.extend_from_slice(b"\r\n"),
        }
    }
    input
}

fn random_responder(seed: u64) -> Responder {
    let mut rng = XorShift(seed | 1);
    Box::new(move |ask, session, envelope| match rng.below(10) {
        0..=4 => Decision::Outcome(Outcome::Default),
        5 => {
            let code = [250, 251, 421, 450, 550, 554, 999, 100][rng.below(8)];
            Decision::Outcome(Outcome::reply(code, "hook says so"))
        }
        6 => Decision::Outcome(Outcome::accept(250, "accepted\nsecond line")),
        7 => Decision::Failed(HookFailure {
            kind: "RuntimeError".into(),
            message: "boom\nline two".into(),
        }),
        8 => {
            // A hook that edits state the way aiosmtpd hooks may.
            if let Ask::Ehlo { extensions, .. } = ask {
                extensions.clear();
            }
            session.host_name = Some("h".into());
            envelope.rcpt_tos.push("x@y".into());
            Decision::Outcome(Outcome::Reply(Reply::new(252, "")))
        }
        _ => Decision::Outcome(Outcome::Default),
    })
}

/// Every CRLF-terminated piece starts with three digits and a space or dash.
/// (Echoed command words may hold a bare CR or NUL, so lines are only split at CRLF.)
fn check_wire(out: &[u8], context: &dyn Fn() -> String) {
    assert!(
        out.ends_with(b"\r\n"),
        "output must end with CRLF: {}",
        context()
    );
    let mut rest = out;
    while !rest.is_empty() {
        let end = find(rest, b"\r\n").expect("CRLF-terminated");
        let line = &rest[..end];
        let ok = line.len() >= 4
            && line[..3].iter().all(u8::is_ascii_digit)
            && matches!(line[3], b' ' | b'-');
        assert!(ok, "bad reply line {}: {}", show(line, 100), context());
        rest = &rest[end + 2..];
    }
}

#[test]
fn smoke_random_input_never_panics() {
    let tiny = {
        let mut c = sized()
            .with_data_size_limit(Some(64))
            .with_call_limits(Some(CallLimits::uniform(4)));
        c.line_length_limit = 40;
        c.command_size_limit = 30;
        c.local_part_limit = Some(3);
        c.bogus_limit = 2;
        c
    };
    let configs = [plain(), sized(), library_defaults(), tiny];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for case in 0..3000 {
        let config = configs[rng.below(configs.len())].clone();
        let input = random_input(&mut rng);
        let mut driver = Driver::with_responder(config, random_responder(rng.next()));
        let mut cuts: Vec<usize> = (0..rng.below(5))
            .map(|_| rng.below(input.len() + 1))
            .collect();
        cuts.sort_unstable();
        let mut start = 0;
        for cut in cuts.into_iter().chain([input.len()]) {
            driver.feed(&input[start..cut]);
            start = cut;
        }
        match rng.below(4) {
            0 => driver.peer_closed(),
            1 => {
                if let Some(deadline) = driver.conn.poll_timeout() {
                    driver.timeout(deadline);
                }
            }
            2 => {
                driver.conn.handle_shutdown(driver.now);
                driver.drain();
            }
            _ => {}
        }
        check_wire(&driver.trace.out, &|| {
            format!("case {case}, input {}", show(&input, 400))
        });
        if driver.trace.closed {
            assert_eq!(
                driver.conn.handle_input(driver.now, b"NOOP\r\n"),
                Err(Error::Closed)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// aiosmtpd goldens
// ---------------------------------------------------------------------------

const GOLDEN_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/golden/aiosmtpd"
);

/// Dialogs not replayed, with the reason. Dialogs needing connection events this
/// replay cannot model (TLS, half-close, ...) are skipped automatically; the
/// `plain` and `sized` groups need none of that, and close/reconnect is modelled
/// (peer close, then a fresh connection).
const SKIPPED: &[(&str, &str)] = &[];

/// The golden groups replayed here and their configurations (see the table in
/// shared/conformance/README.md). The host name is masked as the harness does.
fn golden_config(group: &str) -> Option<Config> {
    let config = Config::new("HOST");
    match group {
        "plain" => Some(config.with_data_size_limit(None)),
        "sized" => Some(config.with_smtputf8(true).with_data_size_limit(Some(4096))),
        _ => None,
    }
}

#[test]
fn golden_aiosmtpd_dialogs() {
    let dir = Path::new(GOLDEN_DIR);
    if !dir.is_dir() {
        println!(
            "note: {GOLDEN_DIR} not found; golden replay skipped (the explicit tests cover the essentials)"
        );
        return;
    }
    let (mut passed, mut failed, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let mut notes = Vec::new();
    for group in ["plain", "sized"] {
        let config = golden_config(group).expect("known group");
        let mut files: Vec<_> = std::fs::read_dir(dir.join(group))
            .unwrap_or_else(|e| panic!("reading {group}: {e}"))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let label = format!("{group}/{}", path.file_stem().unwrap().to_string_lossy());
            let text = std::fs::read_to_string(&path).expect("golden file");
            let dialog = match parse_json(&text).and_then(|j| GoldenDialog::from_json(&j)) {
                Ok(d) => d,
                Err(e) => {
                    failed.push(format!("{label}: harness: cannot read golden: {e}"));
                    continue;
                }
            };
            if let Some((_, why)) = SKIPPED.iter().find(|(n, _)| *n == dialog.name) {
                skipped.push(format!("{label} ({why})"));
                continue;
            }
            match replay_golden(&dialog, &config) {
                Verdict::Pass(n) => {
                    notes.extend(n.into_iter().map(|n| format!("{label}: {n}")));
                    passed.push(label);
                }
                Verdict::Fail(why) => failed.push(format!(
                    "{label} [{}]\n{why}",
                    if dialog.text { "text" } else { "codes" }
                )),
                Verdict::Skip(why) => skipped.push(format!("{label} ({why})")),
            }
        }
    }
    println!(
        "golden replay: {} passed, {} failed, {} skipped",
        passed.len(),
        failed.len(),
        skipped.len()
    );
    for s in &skipped {
        println!("SKIP {s}");
    }
    for n in &notes {
        println!("NOTE {n}");
    }
    for f in &failed {
        println!("FAIL {f}");
    }
    assert!(
        failed.is_empty(),
        "{} of {} aiosmtpd goldens differ:\n\n{}",
        failed.len(),
        passed.len() + failed.len(),
        failed.join("\n\n")
    );
}

enum GoldenEvent {
    /// Client bytes (as recorded: possibly abbreviated, invalid UTF-8 as `\xNN`).
    C(String),
    /// One reply, its lines masked.
    S(Vec<String>),
    /// A connection event: EOF, QUIET, CLOSED, RECONNECT, ...
    X(String),
}

struct GoldenDialog {
    name: String,
    text: bool,
    events: Vec<GoldenEvent>,
}

impl GoldenDialog {
    fn from_json(json: &Json) -> Result<Self, String> {
        let name = json.get("name").and_then(Json::as_str).ok_or("no name")?;
        let text = json.get("text").and_then(Json::as_bool).unwrap_or(false);
        let mut events = Vec::new();
        for event in json
            .get("events")
            .and_then(Json::as_array)
            .ok_or("no events")?
        {
            if let Some(c) = event.get("C").and_then(Json::as_str) {
                events.push(GoldenEvent::C(c.to_owned()));
            } else if let Some(s) = event.get("S").and_then(Json::as_array) {
                let lines = s
                    .iter()
                    .map(|l| {
                        l.as_str()
                            .map(str::to_owned)
                            .ok_or("reply line not a string")
                    })
                    .collect::<Result<_, _>>()?;
                events.push(GoldenEvent::S(lines));
            } else if let Some(x) = event.get("X").and_then(Json::as_str) {
                events.push(GoldenEvent::X(x.to_owned()));
            } else {
                return Err("unknown event".into());
            }
        }
        Ok(GoldenDialog {
            name: name.to_owned(),
            text,
            events,
        })
    }
}

enum Verdict {
    Pass(Vec<String>),
    Fail(String),
    Skip(String),
}

/// Replays a golden dialog the way conformance.py ran it against aiosmtpd: client
/// bytes are fed as they were sent, each `S` reads one reply (lines up to one
/// without `-` after the code) from what the engine has sent, `EOF` needs the
/// engine closed with nothing left to read, `QUIET` needs nothing to read,
/// `CLOSED` is a peer close, `RECONNECT` a new connection.
fn replay_golden(dialog: &GoldenDialog, config: &Config) -> Verdict {
    let mut payloads = Vec::with_capacity(dialog.events.len());
    for event in &dialog.events {
        match event {
            GoldenEvent::C(text) => match expand_payload(text) {
                Ok(bytes) => payloads.push(Some(bytes)),
                Err(e) => return Verdict::Fail(format!("    harness: {e}")),
            },
            GoldenEvent::X(x)
                if !matches!(
                    x.as_str(),
                    "EOF" | "QUIET" | "IDLE" | "TIMEOUT" | "CLOSED" | "RECONNECT"
                ) =>
            {
                return Verdict::Skip(format!("needs connection event {x}"));
            }
            _ => payloads.push(None),
        }
    }

    let mut driver = Driver::new(config.clone());
    let mut read_pos = 0;
    let mut greeting = true;
    let mut hosts: Vec<String> = Vec::new();
    let mut last_sent = String::from("(connect)");
    let (mut expected_codes, mut got_codes) = (Vec::new(), Vec::new());
    let mut diffs = Vec::new();
    // Per connection: the client bytes and whether the peer closed, for the split check.
    let mut connections: Vec<(Vec<Vec<u8>>, bool)> = vec![(Vec::new(), false)];

    for (index, (event, payload)) in dialog.events.iter().zip(&payloads).enumerate() {
        match event {
            GoldenEvent::C(_) => {
                let bytes = payload.as_ref().expect("decoded");
                connections.last_mut().unwrap().0.push(bytes.clone());
                driver.feed(bytes);
                last_sent = show(bytes, 120);
            }
            GoldenEvent::S(expected) => {
                let (raw, used, status) =
                    read_reply(&driver.trace.out[read_pos..], driver.trace.closed);
                read_pos += used;
                let got = record_reply(&raw, greeting, &mut hosts);
                greeting = false;
                let expected_code = reply_code(expected);
                let got_code = if got.is_empty() {
                    status.unwrap_or("(nothing)").to_owned()
                } else {
                    reply_code(&got)
                };
                let same = if dialog.text {
                    got == *expected
                } else {
                    got_code == expected_code
                };
                if !same || (status.is_some() && !got.is_empty()) {
                    diffs.push(format!(
                        "    event #{index}, after C {last_sent}:\n      expected {expected:?}\n      got      {got:?}{}",
                        status.map(|s| format!(" then {s}")).unwrap_or_default()
                    ));
                }
                expected_codes.push(expected_code);
                got_codes.push(got_code);
            }
            GoldenEvent::X(x) => {
                let pending = &driver.trace.out[read_pos..];
                let closed = driver.trace.closed;
                let actual = match x.as_str() {
                    "EOF" if closed && pending.is_empty() => x.clone(),
                    "QUIET" | "IDLE" | "TIMEOUT" if !closed && pending.is_empty() => x.clone(),
                    "EOF" | "QUIET" | "IDLE" | "TIMEOUT" => {
                        if !pending.is_empty() {
                            format!("(reply pending: {})", show(pending, 120))
                        } else if closed {
                            "(closed)".to_owned()
                        } else {
                            "(open, nothing sent)".to_owned()
                        }
                    }
                    "CLOSED" => {
                        driver.peer_closed();
                        connections.last_mut().unwrap().1 = true;
                        x.clone()
                    }
                    _ => {
                        // RECONNECT
                        driver = Driver::new(config.clone());
                        read_pos = 0;
                        greeting = true;
                        connections.push((Vec::new(), false));
                        x.clone()
                    }
                };
                if actual != *x {
                    diffs.push(format!(
                        "    event #{index}, after C {last_sent}:\n      expected {x}\n      got      {actual}"
                    ));
                }
                expected_codes.push(x.clone());
                got_codes.push(actual);
            }
        }
    }

    let mut notes = Vec::new();
    let unread = &driver.trace.out[read_pos..];
    if !unread.is_empty() {
        notes.push(format!(
            "sent but never read by the dialog: {}",
            show(unread, 200)
        ));
    }
    for (index, (pieces, peer_closed)) in connections.iter().enumerate() {
        if let Some(why) = split_dependence(config, pieces, *peer_closed) {
            diffs.push(format!("    connection {index}: {why}"));
        }
    }
    if diffs.is_empty() {
        return Verdict::Pass(notes);
    }
    let mut report = format!(
        "    codes expected: {}\n    codes got:      {}\n",
        expected_codes.join(" "),
        got_codes.join(" ")
    );
    report.push_str(&diffs.join("\n"));
    if !notes.is_empty() {
        report.push_str(&format!("\n    note: {}", notes.join("; ")));
    }
    Verdict::Fail(report)
}

/// Feeds one connection's client bytes whole and in small pieces; `Some(why)` when
/// the outputs differ.
fn split_dependence(config: &Config, pieces: &[Vec<u8>], peer_closed: bool) -> Option<String> {
    let whole = pieces.concat();
    let feed = |chunk: usize| {
        let mut driver = Driver::new(config.clone());
        for piece in whole.chunks(chunk.max(1)) {
            driver.feed(piece);
        }
        if peer_closed {
            driver.peer_closed();
        }
        driver.trace
    };
    let reference = feed(whole.len());
    let small = if whole.len() <= 64 * 1024 { 1 } else { 4093 };
    let trace = feed(small);
    if trace.observable() == reference.observable() {
        None
    } else {
        Some(format!(
            "output depends on input splitting (whole vs {small}-byte pieces):\n{}\n    vs\n{}",
            show_wire(&reference.out),
            show_wire(&trace.out)
        ))
    }
}

/// conformance.py's `Conn.read_reply`: lines up to the first without `ddd-`.
/// Returns the lines (with their line ends), the bytes used and the status
/// (`EOF` or `TIMEOUT`) when the reply is incomplete.
fn read_reply(buf: &[u8], eof: bool) -> (Vec<Vec<u8>>, usize, Option<&'static str>) {
    let mut lines = Vec::new();
    let mut pos = 0;
    loop {
        match buf[pos..].iter().position(|&b| b == b'\n') {
            None => {
                if !eof {
                    return (lines, pos, Some("TIMEOUT"));
                }
                if pos < buf.len() {
                    lines.push(buf[pos..].to_vec());
                    pos = buf.len();
                }
                return (lines, pos, Some("EOF"));
            }
            Some(i) => {
                let line = buf[pos..pos + i + 1].to_vec();
                pos += i + 1;
                let last =
                    line.len() < 4 || line[3] != b'-' || !line[..3].iter().all(u8::is_ascii_digit);
                lines.push(line);
                if last {
                    return (lines, pos, None);
                }
            }
        }
    }
}

/// conformance.py's `Recorder.reply` + `Masker.line`.
fn record_reply(raw: &[Vec<u8>], greeting: bool, hosts: &mut Vec<String>) -> Vec<String> {
    raw.iter()
        .enumerate()
        .map(|(i, line)| {
            let bare_lf = line.ends_with(b"\n") && !line.ends_with(b"\r\n");
            let mut end = line.len();
            while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
                end -= 1;
            }
            let text = show_bytes(&line[..end]);
            if greeting && i == 0 {
                learn_greeting(&text, hosts);
            }
            let mut text = mask_line(&text, greeting, hosts);
            if bare_lf {
                text.push_str(" <bare-LF>");
            }
            text
        })
        .collect()
}

/// Python's `bytes.decode("utf-8", "backslashreplace")`.
fn show_bytes(mut bytes: &[u8]) -> String {
    let mut out = String::new();
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).expect("valid prefix"));
                let n = e.error_len().unwrap_or(bad.len());
                for b in &bad[..n] {
                    out.push_str(&format!("\\x{b:02x}"));
                }
                bytes = &bad[n..];
            }
        }
    }
}

/// The inverse of [`show_bytes`] for the recorded client bytes: `\xNN` (NN >= 80,
/// which `backslashreplace` produces only for undecodable bytes) becomes that byte.
fn unshow(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
                && v >= 0x80
                && hex.is_some_and(|h| h.bytes().all(|c| !c.is_ascii_uppercase()))
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn learn_greeting(text: &str, hosts: &mut Vec<String>) {
    // re.match(r"^\d{3}[ -](\S+)", line)
    let b = text.as_bytes();
    if b.len() > 4 && b[..3].iter().all(u8::is_ascii_digit) && matches!(b[3], b' ' | b'-') {
        let rest = &text[4..];
        let host: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
        if !host.is_empty()
            && !["ESMTP", "SMTP", "LMTP"].contains(&host.as_str())
            && !hosts.contains(&host)
        {
            hosts.push(host);
            hosts.sort_by_key(|h| std::cmp::Reverse(h.len()));
        }
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `Masker.line`: the greeting becomes `ddd <HOST> <BANNER>`; elsewhere host names
/// standing alone become `<HOST>`. (The harness's `queued as <ID>` masking is not
/// needed: the engine never says that by itself.)
fn mask_line(text: &str, greeting: bool, hosts: &[String]) -> String {
    let b = text.as_bytes();
    let coded = b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit);
    if greeting && coded && b.len() > 4 && matches!(b[3], b' ' | b'-') {
        let rest = &text[4..];
        let host_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if host_len > 0 {
            let banner = if rest[host_len..].trim().is_empty() {
                ""
            } else {
                " <BANNER>"
            };
            return format!("{}<HOST>{banner}", &text[..4]);
        }
    }
    let head_len = if !coded {
        0
    } else if matches!(b.get(3), Some(b' ' | b'-')) {
        4
    } else {
        3
    };
    let (head, mut rest) = (text[..head_len].to_owned(), text[head_len..].to_owned());
    for host in hosts {
        rest = replace_host(&rest, host);
    }
    head + &rest
}

/// `re.sub(r"(?<![\w.-])" + re.escape(host) + r"(?![\w-])", "<HOST>", rest)`.
fn replace_host(text: &str, host: &str) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(offset) = text[i..].find(host) {
        let start = i + offset;
        let end = start + host.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if before.is_none_or(|c| !(is_word(c) || c == '.' || c == '-'))
            && after.is_none_or(|c| !(is_word(c) || c == '-'))
        {
            out.push_str(&text[i..start]);
            out.push_str("<HOST>");
            i = end;
        } else {
            let step = text[start..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[i..start + step]);
            i = start + step;
        }
    }
    out.push_str(&text[i..]);
    out
}

/// conformance.py's `reply_code`: the last line's code, or `GARBAGE`.
fn reply_code(lines: &[String]) -> String {
    let last = lines.last().map(String::as_str).unwrap_or("");
    match last.get(..3) {
        Some(code) if code.bytes().all(|b| b.is_ascii_digit()) => code.to_owned(),
        _ => "GARBAGE".to_owned(),
    }
}

/// Decodes a recorded client payload. Payloads over 200 bytes were stored as
/// `head ...[N bytes, sha256 H]... tail`; they are rebuilt by extending the head
/// periodically or from corpus.py's generators, and checked against the hash.
fn expand_payload(text: &str) -> Result<Vec<u8>, String> {
    let Some(open) = text.find(" ...[") else {
        return Ok(unshow(text));
    };
    let parse = || -> Option<(usize, &str, &str)> {
        let rest = &text[open + 5..];
        let (n, rest) = rest.split_once(" bytes, sha256 ")?;
        let (hash, tail) = rest.split_once("]... ")?;
        Some((n.parse().ok()?, hash, tail))
    };
    let (n, hash, tail) = parse().ok_or_else(|| format!("unreadable abbreviation {text:?}"))?;
    let head = unshow(&text[..open]);
    let tail = unshow(tail);
    let matches = |data: &[u8]| data.len() == n && hex(&sha256(data)).starts_with(hash);
    if head.len() + tail.len() <= n {
        let middle = n - head.len() - tail.len();
        for p in 1..head.len() {
            let periodic = if 2 * p <= head.len() {
                head[head.len() - p..] == head[head.len() - 2 * p..head.len() - p]
            } else {
                head[p..] == head[..head.len() - p]
            };
            if !periodic {
                continue;
            }
            let unit = &head[head.len() - p..];
            // A unit that repeats a shorter one gives the same data as that one.
            if (1..p).any(|q| p % q == 0 && unit[q..] == unit[..p - q]) {
                continue;
            }
            let mut data = head.clone();
            data.extend(unit.iter().cycle().take(middle));
            data.extend_from_slice(&tail);
            if matches(&data) {
                return Ok(data);
            }
        }
    }
    for data in corpus_payloads(n) {
        if matches(&data) {
            return Ok(data);
        }
    }
    Err(format!(
        "cannot rebuild the abbreviated {n}-byte payload (sha256 {hash}); add its generator to corpus_payloads"
    ))
}

/// corpus.py's `sized_msg(n)`: DATA of exactly `n` wire bytes plus the final dot.
fn sized_msg(n: usize) -> Vec<u8> {
    let mut data = Vec::new();
    let mut left = n as i64;
    while left > 0 {
        let mut take = if left > 2 { (left - 2).min(78) } else { left };
        if matches!(left - (take + 2), 1 | 2) {
            take -= 3;
        }
        let take = take.max(0);
        data.extend(std::iter::repeat_n(b's', take as usize));
        data.extend_from_slice(b"\r\n");
        left -= take + 2;
    }
    assert_eq!(data.len(), n);
    data.extend_from_slice(b".\r\n");
    data
}

/// The corpus payloads that are not a periodic extension of their head.
fn corpus_payloads(n: usize) -> Vec<Vec<u8>> {
    let line = |byte: u8, len: usize| [vec![byte; len], b"\r\n".to_vec()].concat();
    let pipe = |width: usize, count: usize| -> Vec<u8> {
        (0..count)
            .flat_map(|i| format!("RCPT TO:<r{i:0width$}@example.com>\r\n").into_bytes())
            .collect()
    };
    let candidates: Vec<Box<dyn Fn() -> Vec<u8>>> = vec![
        Box::new(|| {
            [vec![b'a'; 5555], b"\r\n".to_vec()]
                .concat()
                .repeat(3)
                .into_iter()
                .chain(*b".\r\n")
                .collect()
        }),
        Box::new(move || pipe(3, 100)),
        Box::new(move || pipe(4, 1000)),
        Box::new(|| sized_msg(4096)),
        Box::new(|| sized_msg(4097)),
        Box::new(move || [line(b'z', 1999).repeat(3), b".\r\n".to_vec()].concat()),
        Box::new(move || {
            [
                line(b'z', 76).repeat(60),
                line(b'a', 1100).repeat(2),
                b".\r\n".to_vec(),
            ]
            .concat()
        }),
    ];
    candidates
        .iter()
        .map(|make| make())
        .filter(|data| data.len() == n)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (FIPS 180-4), to check rebuilt payloads against the recorded hash.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, wi) in K.iter().zip(w.iter()) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[test]
fn golden_helpers() {
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex(&sha256(&[b'a'; 1000])),
        "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
    );
    assert_eq!(
        unshow("\\x80FAIL \\xc3\\xa9 \\x41 x"),
        b"\x80FAIL \xc3\xa9 \\x41 x"
    );
    assert_eq!(show_bytes(b"\x80ok\xc3\xa9\xff"), "\\x80ok\u{e9}\\xff");
    let hosts = vec!["HOST".to_owned()];
    assert_eq!(
        mask_line("220 HOST smtpkit 0.1.0", true, &hosts),
        "220 <HOST> <BANNER>"
    );
    assert_eq!(mask_line("250-HOST", false, &hosts), "250-<HOST>");
    assert_eq!(
        mask_line("250 HOSTS HOST.x HOST xHOST -HOST HOST-", false, &hosts),
        "250 HOSTS <HOST>.x <HOST> xHOST -HOST HOST-"
    );
    assert_eq!(reply_code(&["250-a".into(), "251 b".into()]), "251");
    assert_eq!(reply_code(&["x".into()]), "GARBAGE");
    let json = parse_json(r#"{"a": [1, -2.5e3, true, false, null], "b": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\u0000"}"#)
        .unwrap();
    assert_eq!(
        json.get("b").and_then(Json::as_str),
        Some("x\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1f600}\u{0}")
    );
    assert_eq!(
        json.get("a").and_then(Json::as_array).map(<[Json]>::len),
        Some(5)
    );
    assert_eq!(sized_msg(4096).len(), 4099);
    let abbreviated = "aaaa ...[10 bytes, sha256 bf2cb58a68f684d9]... aa";
    assert_eq!(expand_payload(abbreviated).unwrap(), b"aaaaaaaaaa");
}

// ---------------------------------------------------------------------------
// A minimal JSON reader (no serde here)
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(a) => Some(a),
            _ => None,
        }
    }

    fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

fn parse_json(text: &str) -> Result<Json, String> {
    let mut parser = JsonParser {
        s: text.as_bytes(),
        i: 0,
    };
    let value = parser.value()?;
    parser.ws();
    if parser.i != parser.s.len() {
        return Err(format!("trailing data at byte {}", parser.i));
    }
    Ok(value)
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(value)
        } else {
            self.err("bad literal")
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return self.err("expected a key");
                    }
                    let key = self.string()?;
                    self.ws();
                    if self.peek() != Some(b':') {
                        return self.err("expected ':'");
                    }
                    self.i += 1;
                    fields.push((key, self.value()?));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return self.err("expected ',' or '}'"),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return self.err("expected ',' or ']'"),
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.i += 1;
                }
                let number = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII");
                number
                    .parse()
                    .map(Json::Num)
                    .map_err(|e| format!("bad number {number:?}: {e}"))
            }
            _ => self.err("expected a value"),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok());
        match digits {
            Some(v) => {
                self.i += 4;
                Ok(v)
            }
            None => self.err("bad \\u escape"),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let Some(byte) = self.peek() else {
                return self.err("unterminated string");
            };
            self.i += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    let Some(escape) = self.peek() else {
                        return self.err("unterminated escape");
                    };
                    self.i += 1;
                    match escape {
                        b'"' | b'\\' | b'/' => out.push(escape),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let low = self.hex4()?;
                                if (0xDC00..0xE000).contains(&low) {
                                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                                } else {
                                    self.i = save;
                                }
                            }
                            let c = char::from_u32(code).unwrap_or('\u{fffd}');
                            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        _ => return self.err("bad escape"),
                    }
                }
                b if b < 0x20 => return self.err("control character in string"),
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|e| format!("invalid UTF-8 in string: {e}"))
    }
}

// ---------------------------------------------------------------------------
// AUTH (RFC 4954) and STARTTLS (RFC 3207)
// ---------------------------------------------------------------------------
//
// Spec: aiosmtpd-behaviour.md sections 6 and 7, with the deliberate differences:
// implicit TLS counts as TLS (AUTH offered there), a second STARTTLS inside TLS
// gets `554 5.5.1 Error: TLS already active`, mechanism names are
// case-insensitive, and `AUTH PLAIN =` is an empty initial response.

use super::{AuthResult, TlsInfo};

const EHLO_AUTH: [&str; 4] = [
    "250-mx.example",
    "250-8BITMIME",
    "250-AUTH LOGIN PLAIN",
    "250 HELP",
];
const EHLO_STARTTLS: [&str; 4] = ["250-mx.example", "250-8BITMIME", "250-STARTTLS", "250 HELP"];
const AUTH_OK: &str = "235 2.7.0 Authentication successful";
const AUTH_INVALID: &str = "535 5.7.8 Authentication credentials invalid";
const AUTH_ABORTED: &str = "501 5.7.0 Auth aborted";
const CANT_DECODE: &str = "501 5.5.2 Can't decode base64";
const CANT_SPLIT: &str = "501 5.5.2 Can't split auth value";
const LOGIN_USER: &str = "334 VXNlciBOYW1lAA==";
const LOGIN_PASSWORD: &str = "334 UGFzc3dvcmQA";
const ENCRYPTION_REQUIRED: &str =
    "538 5.7.11 Encryption required for requested authentication mechanism";
const UNRECOGNIZED_MECH: &str = "504 5.5.4 Unrecognized authentication type";
const READY_TLS: &str = "220 Ready to start TLS";
const TLS_ACTIVE: &str = "554 5.5.1 Error: TLS already active";
const MUST_STARTTLS: &str = "530 Must issue a STARTTLS command first";
const AUTH_REQUIRED: &str = "530 5.7.0 Authentication required";
/// Written into the trace where the driver ran the handshake [`Action::StartTls`]
/// asked for (not a reply: it marks the point after which the client speaks TLS).
const HANDSHAKE: &str = "[TLS handshake]";

/// Standard base64, independent of the engine's encoder.
fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Standard base64 decoding, independent of the engine's decoder.
fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("valid base64")
}

/// `AUTH PLAIN` initial response for aiosmtpd's test user.
fn plain_good() -> String {
    b64(b"\0goodlogin\0goodpasswd")
}

/// AUTH offered without TLS (so the plain harness can drive it).
fn auth_config() -> Config {
    let mut config = plain();
    config.auth_require_tls = false;
    config
}

/// STARTTLS offered.
fn starttls_config() -> Config {
    let mut config = plain();
    config.starttls = true;
    config
}

fn tls_info() -> TlsInfo {
    TlsInfo {
        protocol_version: "TLSv1_3".to_owned(),
        cipher_suite: "TLS13_AES_128_GCM_SHA256".to_owned(),
        sni: Some("mx.example".to_owned()),
        peer_certificates: Vec::new(),
    }
}

/// `X-TWO-ROUNDS`: challenge `first`, expect `one`, challenge `second`, expect `two`.
fn two_rounds(step: u32, response: Option<&[u8]>) -> AuthResult {
    match (step, response) {
        (0, None) => AuthResult::Challenge(b"first".to_vec()),
        (1, Some(b"one")) => AuthResult::Challenge(b"second".to_vec()),
        (2, Some(b"two")) => AuthResult::Success(None),
        _ => AuthResult::Failure(None),
    }
}

/// Accepts goodlogin/goodpasswd (aiosmtpd's test user) and runs `X-TWO-ROUNDS`.
fn auth_responder() -> Responder {
    Box::new(|ask, _, _| match ask {
        Ask::Auth {
            login, password, ..
        } => {
            if login.as_slice() == b"goodlogin" && password.as_slice() == b"goodpasswd" {
                AuthResult::Success(None).into()
            } else {
                AuthResult::Failure(None).into()
            }
        }
        Ask::AuthStep { step, response, .. } => two_rounds(*step, response.as_deref()).into(),
        _ => Decision::Outcome(Outcome::Default),
    })
}

/// One command line (+ CRLF) per input piece, hooks answered by [`auth_responder`].
#[track_caller]
fn auth_session(config: Config, commands: &[&str], replies: &[&str]) -> Trace {
    let lines: Vec<Vec<u8>> = commands
        .iter()
        .map(|c| format!("{c}\r\n").into_bytes())
        .collect();
    let pieces: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let mut script = Script::new(config);
    script.responder = &auth_responder;
    script.transcript(&pieces, replies)
}

/// The `Ask::Auth` calls of a trace as (mechanism, login, password).
fn auth_asks(trace: &Trace) -> Vec<(String, String, String)> {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    trace
        .asks
        .iter()
        .filter_map(|a| match a {
            Ask::Auth {
                mechanism,
                login,
                password,
            } => Some((mechanism.clone(), s(login), s(password))),
            _ => None,
        })
        .collect()
}

/// `ehlo` followed by `rest`.
fn with_ehlo<'a>(ehlo: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    ehlo.iter().chain(rest).copied().collect()
}

/// A driver that also performs the TLS handshakes the engine asks for: at
/// [`Action::StartTls`] it writes [`HANDSHAKE`] into the trace and stops until
/// [`TlsDriver::handshake`]; plaintext sent in between fails the test.
struct TlsDriver {
    d: Driver,
    handshake_pending: bool,
}

impl TlsDriver {
    fn new(config: Config, responder: Responder, implicit_tls: bool) -> Self {
        let now = Instant::now();
        let mut conn = Connection::new(Arc::new(config), Peer::Unknown, now);
        if implicit_tls {
            conn = conn.with_tls(tls_info());
        }
        let mut driver = TlsDriver {
            d: Driver {
                conn,
                now,
                responder,
                trace: Trace::default(),
            },
            handshake_pending: false,
        };
        driver.drain();
        driver
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.d.trace.closed {
            return;
        }
        self.d
            .conn
            .handle_input(self.d.now, bytes)
            .expect("input before Close is accepted");
        self.drain();
    }

    /// The handshake succeeded.
    fn handshake(&mut self) {
        assert!(self.handshake_pending, "no handshake was asked for");
        self.handshake_pending = false;
        self.d
            .conn
            .handle_tls_established(self.d.now, tls_info())
            .expect("a handshake is pending");
        self.drain();
    }

    fn drain(&mut self) {
        loop {
            let decision = match self.d.conn.poll_action() {
                None => break,
                Some(Action::StartTls) => {
                    assert!(!self.d.trace.closed, "StartTls after Close");
                    assert!(!self.handshake_pending, "StartTls twice");
                    self.handshake_pending = true;
                    self.d.trace.out.extend_from_slice(HANDSHAKE.as_bytes());
                    self.d.trace.out.extend_from_slice(b"\r\n");
                    None
                }
                Some(Action::Send(bytes)) => {
                    assert!(!self.d.trace.closed, "Send after Close");
                    assert!(
                        !self.handshake_pending,
                        "plaintext sent while the handshake is pending: {}",
                        show(bytes, 200)
                    );
                    self.d.trace.out.extend_from_slice(bytes);
                    self.d.trace.sends += 1;
                    None
                }
                Some(Action::Body(chunk)) => {
                    assert!(
                        !self.handshake_pending,
                        "body while the handshake is pending"
                    );
                    chunk.envelope.content.extend_from_slice(chunk.chunk);
                    None
                }
                Some(Action::Hook(call)) => {
                    assert!(
                        !self.handshake_pending,
                        "hook while the handshake is pending"
                    );
                    if matches!(call.ask, Ask::Data) {
                        self.d.trace.messages.push(call.envelope.clone());
                    }
                    self.d.trace.asks.push(call.ask.clone());
                    Some((self.d.responder)(call.ask, call.session, call.envelope))
                }
                Some(Action::Close) => {
                    assert!(!self.d.trace.closed, "Close returned twice");
                    self.d.trace.closed = true;
                    None
                }
            };
            if let Some(decision) = decision {
                self.d
                    .conn
                    .handle_decision(self.d.now, decision)
                    .expect("a hook call is pending");
            }
        }
    }
}

/// A transcript in two phases: `before` is fed in plaintext (every piece, even
/// after the engine asked for the handshake, as if a careless driver kept
/// reading), then the handshake completes, then `after` is fed "over TLS".
struct TlsScript {
    config: Config,
    implicit_tls: bool,
}

impl TlsScript {
    fn new(config: Config) -> Self {
        TlsScript {
            config,
            implicit_tls: false,
        }
    }

    fn implicit(config: Config) -> Self {
        TlsScript {
            config,
            implicit_tls: true,
        }
    }

    fn drive_full(&self, before: &[&[u8]], after: &[&[u8]]) -> TlsDriver {
        let mut driver = TlsDriver::new(self.config.clone(), auth_responder(), self.implicit_tls);
        for piece in before {
            driver.feed(piece);
        }
        if driver.handshake_pending {
            driver.handshake();
        }
        for piece in after {
            driver.feed(piece);
        }
        driver
    }

    fn drive(&self, before: &[&[u8]], after: &[&[u8]]) -> Trace {
        self.drive_full(before, after).d.trace
    }

    /// Runs `before`/`after` whole, asserts `replies` (with [`HANDSHAKE`] where
    /// the handshake ran), then the same output for every split of either phase
    /// and byte-by-byte feeding.
    #[track_caller]
    fn transcript(&self, before: &[u8], after: &[u8], replies: &[&str]) -> Trace {
        let reference = self.drive(&[before], &[after]);
        assert_replies(&reference.out, replies);
        let check = |label: &str, b: &[&[u8]], a: &[&[u8]]| {
            let trace = self.drive(b, a);
            if trace.observable() != reference.observable() {
                panic!(
                    "output depends on how the input is split ({label})\n  before: {}\n  after: {}\n  reference:\n{}\n  got:\n{}\n  reference asks: {:?}\n  got asks: {:?}",
                    show(before, 300),
                    show(after, 300),
                    show_wire(&reference.out),
                    show_wire(&trace.out),
                    reference.asks,
                    trace.asks,
                );
            }
        };
        for k in 1..before.len() {
            check(
                &format!("before split at {k}"),
                &[&before[..k], &before[k..]],
                &[after],
            );
        }
        for k in 1..after.len() {
            check(
                &format!("after split at {k}"),
                &[before],
                &[&after[..k], &after[k..]],
            );
        }
        let b: Vec<&[u8]> = before.chunks(1).collect();
        let a: Vec<&[u8]> = after.chunks(1).collect();
        check("byte by byte", &b, &a);
        reference
    }
}

/// Command lines joined with CRLF (and a final CRLF).
fn crlf(commands: &[&str]) -> Vec<u8> {
    commands
        .iter()
        .flat_map(|c| format!("{c}\r\n").into_bytes())
        .collect()
}

#[test]
fn auth_plain_with_initial_response() {
    let good = format!("AUTH PLAIN {}", plain_good());
    let bad = format!("AUTH PLAIN {}", b64(b"\0goodlogin\0badpasswd"));
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            &bad,
            &bad,
            &good,
            "MAIL FROM:<anne@example.com>",
        ],
        &with_ehlo(&EHLO_AUTH, &[AUTH_INVALID, AUTH_INVALID, AUTH_OK, "250 OK"]),
    );
    let wrong = (
        "PLAIN".to_owned(),
        "goodlogin".to_owned(),
        "badpasswd".to_owned(),
    );
    let right = (
        "PLAIN".to_owned(),
        "goodlogin".to_owned(),
        "goodpasswd".to_owned(),
    );
    assert_eq!(auth_asks(&trace), [wrong.clone(), wrong, right]);

    // The session records who authenticated how; the authzid is ignored.
    let mut driver = Driver::with_responder(auth_config(), auth_responder());
    driver.feed(b"EHLO example.com\r\n");
    assert!(!driver.conn.session().authenticated);
    let with_authzid = format!("AUTH PLAIN {}\r\n", b64(b"admin\0goodlogin\0goodpasswd"));
    driver.feed(with_authzid.as_bytes());
    let session = driver.conn.session();
    assert!(session.authenticated);
    assert_eq!(session.auth_mechanism.as_deref(), Some("PLAIN"));
    assert_eq!(session.auth_identity.as_deref(), Some("goodlogin"));
    assert!(session.auth_data.is_none());
}

#[test]
fn auth_plain_with_challenge() {
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH PLAIN",
            &b64(b"\0goodlogin\0wrong"),
            "AUTH PLAIN",
            &plain_good(),
        ],
        &with_ehlo(&EHLO_AUTH, &["334 ", AUTH_INVALID, "334 ", AUTH_OK]),
    );
    assert_eq!(auth_asks(&trace).len(), 2);
}

#[test]
fn auth_login_both_forms() {
    let user = b64(b"goodlogin");
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH LOGIN",
            &user,
            &b64(b"badpasswd"),
            &format!("AUTH LOGIN {user}"),
            &b64(b"goodpasswd"),
            "NOOP",
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                LOGIN_USER,
                LOGIN_PASSWORD,
                AUTH_INVALID,
                LOGIN_PASSWORD,
                AUTH_OK,
                "250 OK",
            ],
        ),
    );
    let asks = auth_asks(&trace);
    assert_eq!(asks.len(), 2);
    assert_eq!(
        asks[1],
        (
            "LOGIN".to_owned(),
            "goodlogin".to_owned(),
            "goodpasswd".to_owned()
        )
    );

    let mut driver = Driver::with_responder(auth_config(), auth_responder());
    driver.feed(&crlf(&[
        "EHLO example.com",
        &format!("AUTH LOGIN {user}"),
        &b64(b"goodpasswd"),
    ]));
    assert_eq!(
        driver.conn.session().auth_mechanism.as_deref(),
        Some("LOGIN")
    );
    assert_eq!(
        driver.conn.session().auth_identity.as_deref(),
        Some("goodlogin")
    );
}

#[test]
fn auth_cancelled_at_every_step() {
    let user = b64(b"goodlogin");
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH PLAIN",
            "*",
            "AUTH LOGIN",
            "*",
            "AUTH LOGIN",
            &user,
            "*",
            &format!("AUTH LOGIN {user}"),
            "*",
            "AUTH X-TWO-ROUNDS",
            "*",
            // Back in command mode, not authenticated.
            "NOOP",
            &format!("AUTH PLAIN {}", plain_good()),
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                "334 ",
                AUTH_ABORTED,
                LOGIN_USER,
                AUTH_ABORTED,
                LOGIN_USER,
                LOGIN_PASSWORD,
                AUTH_ABORTED,
                LOGIN_PASSWORD,
                AUTH_ABORTED,
                // X-TWO-ROUNDS is not configured here; `*` is then a command.
                UNRECOGNIZED_MECH,
                "500 Error: command \"*\" not recognized",
                "250 OK",
                AUTH_OK,
            ],
        ),
    );
    assert_eq!(
        auth_asks(&trace).len(),
        1,
        "only the last AUTH reached the hook"
    );
}

#[test]
fn auth_bad_base64() {
    auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH PLAIN not-b64!",
            "AUTH PLAIN YQ",
            "AUTH LOGIN @@@@",
            "AUTH PLAIN",
            "ab@%",
            "AUTH LOGIN",
            "not base64",
            "AUTH LOGIN",
            &b64(b"goodlogin"),
            "Z29vZHBhc3N3ZA", // missing padding
            // A lone `=` is an empty initial response, but not an empty reply line.
            "AUTH PLAIN",
            "=",
            "NOOP",
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                CANT_DECODE,
                CANT_DECODE,
                CANT_DECODE,
                "334 ",
                CANT_DECODE,
                LOGIN_USER,
                CANT_DECODE,
                LOGIN_USER,
                LOGIN_PASSWORD,
                CANT_DECODE,
                "334 ",
                CANT_DECODE,
                "250 OK",
            ],
        ),
    );
}

#[test]
fn auth_plain_split_errors_and_empty_responses() {
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            &format!("AUTH PLAIN {}", b64(b"\0onlylogin")),
            &format!("AUTH PLAIN {}", b64(b"a\0b\0c\0d")),
            &format!("AUTH PLAIN {}", b64(b"no separators")),
            // RFC 4954: `=` is an empty initial response (aiosmtpd: bad base64),
            // which PLAIN cannot split.
            "AUTH PLAIN =",
            // An empty reply line is an empty response.
            "AUTH PLAIN",
            "",
            // LOGIN with an empty user name: passed on as is.
            "AUTH LOGIN =",
            &b64(b"goodpasswd"),
            "AUTH LOGIN",
            "",
            "",
            // Empty login and password in PLAIN reach the authenticator too.
            &format!("AUTH PLAIN {}", b64(b"\0\0")),
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                CANT_SPLIT,
                CANT_SPLIT,
                CANT_SPLIT,
                CANT_SPLIT,
                "334 ",
                CANT_SPLIT,
                LOGIN_PASSWORD,
                AUTH_INVALID,
                LOGIN_USER,
                LOGIN_PASSWORD,
                AUTH_INVALID,
                AUTH_INVALID,
            ],
        ),
    );
    let empty = |m: &str, p: &str| (m.to_owned(), String::new(), p.to_owned());
    assert_eq!(
        auth_asks(&trace),
        [
            empty("LOGIN", "goodpasswd"),
            empty("LOGIN", ""),
            empty("PLAIN", "")
        ]
    );
}

#[test]
fn auth_argument_counts() {
    auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH",
            "AUTH ",
            "AUTH PLAIN a b",
            "AUTH LOGIN Z29vZGxvZ2lu Z29vZHBhc3N3ZA== extra",
            "NOOP",
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                "501 Not enough value",
                "501 Not enough value",
                "501 Too many values",
                "501 Too many values",
                "250 OK",
            ],
        ),
    );
}

#[test]
fn auth_needs_ehlo_and_only_once() {
    let good = format!("AUTH PLAIN {}", plain_good());
    let mut replies = vec![
        "503 Error: send EHLO first",
        "250 mx.example",
        "500 Error: command 'AUTH' not recognized",
    ];
    replies.extend(EHLO_AUTH);
    replies.extend([
        AUTH_OK,
        "503 Already authenticated",
        "503 Already authenticated",
        "503 Already authenticated",
        "250 OK",
    ]);
    replies.extend(EHLO_AUTH);
    replies.push("503 Already authenticated");
    auth_session(
        auth_config(),
        &[
            &good,
            "HELO example.com",
            &good,
            "EHLO example.com",
            &good,
            &good,
            "AUTH LOGIN",
            "AUTH BOGUS",
            // RSET and EHLO keep the authentication (aiosmtpd).
            "RSET",
            "EHLO example.com",
            &good,
        ],
        &replies,
    );
}

#[test]
fn auth_requires_tls_by_default() {
    // Plaintext with the default auth_require_tls: not offered, 538 (before the
    // mechanism is even looked at).
    let config = plain();
    assert!(config.auth_require_tls);
    auth_session(
        config.clone(),
        &[
            "EHLO example.com",
            &format!("AUTH PLAIN {}", plain_good()),
            "AUTH LOGIN",
            "AUTH CRAM-MD5",
            "AUTH",
        ],
        &with_ehlo(
            &EHLO_PLAIN,
            &[
                ENCRYPTION_REQUIRED,
                ENCRYPTION_REQUIRED,
                ENCRYPTION_REQUIRED,
                ENCRYPTION_REQUIRED,
            ],
        ),
    );
    // Implicit TLS counts as TLS (aiosmtpd #274/#281 fixed).
    let after = crlf(&["EHLO example.com", &format!("AUTH PLAIN {}", plain_good())]);
    TlsScript::implicit(config).transcript(b"", &after, &with_ehlo(&EHLO_AUTH, &[AUTH_OK]));
}

#[test]
fn auth_mechanism_names() {
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            // RFC 4954: case-insensitive (aiosmtpd: `AUTH plain` gets 504, #305).
            &format!("auth plain {}", plain_good()),
        ],
        &with_ehlo(&EHLO_AUTH, &[AUTH_OK]),
    );
    assert_eq!(
        auth_asks(&trace)[0].0,
        "PLAIN",
        "the hook sees the canonical name"
    );
    auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH LoGiN",
            "*",
            "AUTH CRAM-MD5",
            "AUTH PLAINX",
            "AUTH X-TWO-ROUNDS",
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                LOGIN_USER,
                AUTH_ABORTED,
                UNRECOGNIZED_MECH,
                UNRECOGNIZED_MECH,
                UNRECOGNIZED_MECH,
            ],
        ),
    );
    // Only the configured mechanisms are offered and accepted.
    let mut only_plain = auth_config();
    only_plain.auth_mechanisms = vec!["PLAIN".to_owned()];
    auth_session(
        only_plain,
        &["EHLO example.com", "AUTH LOGIN", "AUTH PLAIN"],
        &[
            "250-mx.example",
            "250-8BITMIME",
            "250-AUTH PLAIN",
            "250 HELP",
            UNRECOGNIZED_MECH,
            "334 ",
        ],
    );
}

#[test]
fn auth_custom_mechanism_steps() {
    let mut config = auth_config();
    config.auth_mechanisms.push("X-TWO-ROUNDS".to_owned());
    let ehlo = [
        "250-mx.example",
        "250-8BITMIME",
        "250-AUTH LOGIN PLAIN X-TWO-ROUNDS",
        "250 HELP",
    ];
    let trace = auth_session(
        config.clone(),
        &[
            "EHLO example.com",
            // An initial response is passed to step 0 (here: refused).
            &format!("AUTH X-TWO-ROUNDS {}", b64(b"one")),
            "AUTH X-TWO-ROUNDS",
            &b64(b"wrong"),
            "auth x-two-rounds",
            &b64(b"one"),
            &b64(b"two"),
            "AUTH X-TWO-ROUNDS",
        ],
        &with_ehlo(
            &ehlo,
            &[
                AUTH_INVALID,
                "334 Zmlyc3Q=",
                AUTH_INVALID,
                "334 Zmlyc3Q=",
                "334 c2Vjb25k",
                AUTH_OK,
                "503 Already authenticated",
            ],
        ),
    );
    let step = |step: u32, response: Option<&[u8]>| Ask::AuthStep {
        mechanism: "X-TWO-ROUNDS".to_owned(),
        step,
        response: response.map(<[u8]>::to_vec),
    };
    let steps: Vec<&Ask> = trace
        .asks
        .iter()
        .filter(|a| matches!(a, Ask::AuthStep { .. }))
        .collect();
    assert_eq!(
        steps,
        [
            &step(0, Some(b"one")),
            &step(0, None),
            &step(1, Some(b"wrong")),
            &step(0, None),
            &step(1, Some(b"one")),
            &step(2, Some(b"two")),
        ]
    );
    assert!(
        auth_asks(&trace).is_empty(),
        "no Ask::Auth for custom mechanisms"
    );

    let mut driver = Driver::with_responder(config, auth_responder());
    driver.feed(&crlf(&[
        "EHLO example.com",
        "AUTH X-TWO-ROUNDS",
        &b64(b"one"),
        &b64(b"two"),
    ]));
    let session = driver.conn.session();
    assert!(session.authenticated);
    assert_eq!(session.auth_mechanism.as_deref(), Some("X-TWO-ROUNDS"));
    assert_eq!(
        session.auth_identity, None,
        "no login for custom mechanisms"
    );
}

#[test]
fn auth_decisions_of_every_kind() {
    // Each Ask::Auth answer, in order, and what the client gets.
    let answers: Vec<(Decision, &str)> = vec![
        (AuthResult::Challenge(b"x".to_vec()).into(), AUTH_INVALID),
        (
            AuthResult::Failure(Some(Reply::new(
                454,
                "4.7.0 Temporary authentication failure",
            )))
            .into(),
            "454 4.7.0 Temporary authentication failure",
        ),
        (Outcome::Default.into(), AUTH_INVALID),
        (Outcome::reply(535, "5.7.8 No").into(), "535 5.7.8 No"),
        (
            HookFailure {
                kind: "LookupError".to_owned(),
                message: "db down".to_owned(),
            }
            .into(),
            "500 Error: (LookupError) db down",
        ),
        (
            Outcome::accept(235, "2.7.0 Welcome").into(),
            "235 2.7.0 Welcome",
        ),
    ];
    let decisions: Vec<Decision> = answers.iter().map(|(d, _)| d.clone()).collect();
    let make = move || -> Responder {
        let mut queue = decisions.clone();
        queue.reverse();
        Box::new(move |ask, _, _| match ask {
            Ask::Auth { .. } => queue.pop().expect("one decision per AUTH"),
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let good = format!("AUTH PLAIN {}", plain_good());
    let mut commands = vec!["EHLO example.com"];
    commands.extend(std::iter::repeat_n(good.as_str(), answers.len()));
    commands.push("MAIL FROM:<a@example.com>");
    let input = crlf(&commands);
    let mut replies = with_ehlo(
        &EHLO_AUTH,
        &answers.iter().map(|(_, r)| *r).collect::<Vec<_>>(),
    );
    replies.push("250 OK");
    let mut script = Script::new(auth_config());
    script.responder = &make;
    script.transcript(&[&input], &replies);

    let mut driver = Driver::with_responder(auth_config(), make());
    driver.feed(&input);
    let session = driver.conn.session();
    assert!(session.authenticated);
    assert_eq!(session.auth_identity.as_deref(), Some("goodlogin"));
}

#[test]
fn auth_required_refuses_transactions() {
    let mut config = auth_config();
    config.auth_required = true;
    auth_session(
        config,
        &[
            "MAIL FROM:<a@example.com>",
            "EHLO example.com",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "VRFY a@example.com",
            "HELP",
            "NOOP",
            "RSET",
            &format!("AUTH PLAIN {}", b64(b"\0goodlogin\0nope")),
            "MAIL FROM:<a@example.com>",
            &format!("AUTH PLAIN {}", plain_good()),
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "VRFY a@example.com",
        ],
        &with_ehlo(
            &["503 Error: send HELO first"],
            &with_ehlo(
                &EHLO_AUTH,
                &[
                    AUTH_REQUIRED,
                    AUTH_REQUIRED,
                    AUTH_REQUIRED,
                    AUTH_REQUIRED,
                    AUTH_REQUIRED,
                    "250 OK",
                    "250 OK",
                    AUTH_INVALID,
                    AUTH_REQUIRED,
                    AUTH_OK,
                    "250 OK",
                    "250 OK",
                    VRFY_OK,
                ],
            ),
        ),
    );
}

#[test]
fn auth_response_is_not_a_command() {
    // During an AUTH exchange every line is a response: STARTTLS, QUIT and a
    // command with base64-looking text are decoded, never executed.
    let mut config = starttls_config();
    config.auth_require_tls = false;
    let trace = TlsScript::new(config).transcript(
        &crlf(&["EHLO example.com", "AUTH LOGIN", "STARTTLS", "QUIT", "NOOP"]),
        b"",
        &with_ehlo(
            &[
                "250-mx.example",
                "250-8BITMIME",
                "250-STARTTLS",
                "250-AUTH LOGIN PLAIN",
                "250 HELP",
            ],
            &[LOGIN_USER, LOGIN_PASSWORD, AUTH_INVALID, "250 OK"],
        ),
    );
    assert!(!trace.closed);
    assert_eq!(
        auth_asks(&trace),
        [(
            "LOGIN".to_owned(),
            String::from_utf8_lossy(&unb64("STARTTLS")).into_owned(),
            String::from_utf8_lossy(&unb64("QUIT")).into_owned(),
        )]
    );
}

#[test]
fn starttls_flow_and_session_reset() {
    let before = crlf(&[
        "EHLO example.com",
        "MAIL FROM:<early@example.com>",
        "STARTTLS",
    ]);
    let after = crlf(&[
        "MAIL FROM:<anne@example.com>",
        "EHLO example.com",
        "RCPT TO:<bart@example.com>",
        "STARTTLS",
        "STARTTLS now",
        "HELP",
        &format!("AUTH PLAIN {}", plain_good()),
        "MAIL FROM:<anne@example.com>",
        "QUIT",
    ]);
    let mut replies = with_ehlo(&EHLO_STARTTLS, &["250 OK", READY_TLS, HANDSHAKE]);
    replies.extend([
        "503 Error: send HELO first",
        "250-mx.example",
        "250-8BITMIME",
        "250-AUTH LOGIN PLAIN",
        "250 HELP",
        "503 Error: need MAIL command",
        TLS_ACTIVE,
        "501 Syntax: STARTTLS",
        "250 Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY",
        AUTH_OK,
        "250 OK",
        "221 Bye",
    ]);
    let trace = TlsScript::new(starttls_config()).transcript(&before, &after, &replies);
    assert!(trace.closed);

    // The state right after the handshake: a new session that keeps only the peer.
    let mut driver = TlsDriver::new(starttls_config(), auth_responder(), false);
    driver.feed(&before);
    assert!(driver.handshake_pending);
    assert!(!driver.d.conn.is_tls());
    assert_eq!(
        driver.d.conn.poll_timeout(),
        None,
        "no idle timer during the handshake"
    );
    driver.handshake();
    let conn = &driver.d.conn;
    assert!(conn.is_tls());
    assert_eq!(conn.session().tls, Some(tls_info()));
    assert_eq!(conn.session().host_name, None);
    assert!(!conn.session().extended_smtp);
    assert_eq!(*conn.envelope(), Envelope::default());
    assert_eq!(
        conn.poll_timeout(),
        Some(driver.d.now + conn.config().timeout)
    );
}

#[test]
fn starttls_discards_pipelined_plaintext() {
    // The STARTTLS injection attack (aiosmtpd PR #380): commands sent with
    // STARTTLS, in the same packet or later but before the handshake, are never
    // executed -- neither in plaintext nor after the handshake.
    let before = crlf(&[
        "EHLO example.com",
        "STARTTLS",
        "EHLO evil.example",
        "MAIL FROM:<x@y>",
        "RCPT TO:<victim@example.com>",
        "DATA",
        "injected",
        ".",
        "QUIT",
    ]);
    let after = crlf(&["NOOP", "RCPT TO:<a@b>", "EHLO example.com", "RCPT TO:<a@b>"]);
    let mut replies = EHLO_STARTTLS.to_vec();
    replies.extend([READY_TLS, HANDSHAKE, "250 OK", "503 Error: send HELO first"]);
    replies.extend(EHLO_AUTH);
    replies.push("503 Error: need MAIL command");
    let trace = TlsScript::new(starttls_config()).transcript(&before, &after, &replies);
    assert!(!trace.closed, "the injected QUIT was not executed");
    assert!(trace.messages.is_empty());
    assert!(mail_ask(&trace).is_empty(), "{:?}", trace.asks);
    assert!(
        !trace
            .asks
            .iter()
            .any(|a| matches!(a, Ask::Ehlo { hostname, .. } if hostname == "evil.example")),
        "{:?}",
        trace.asks
    );

    // Input arriving while the driver is busy with the STARTTLS reply (before it
    // even saw Action::StartTls) is discarded as well.
    let mut driver = TlsDriver::new(starttls_config(), auth_responder(), false);
    driver
        .d
        .conn
        .handle_input(driver.d.now, b"STARTTLS\r\n")
        .unwrap();
    driver
        .d
        .conn
        .handle_input(driver.d.now, b"MAIL FROM:<x@y>\r\n")
        .unwrap();
    driver.drain();
    assert!(driver.handshake_pending);
    driver
        .d
        .conn
        .handle_input(driver.d.now, b"HELO x\r\n")
        .expect("input during the handshake is accepted and dropped");
    driver.drain();
    driver.handshake();
    driver.feed(b"NOOP\r\n");
    assert_replies(&driver.d.trace.out, &[READY_TLS, HANDSHAKE, "250 OK"]);
    assert_eq!(driver.d.conn.session().host_name, None);
}

#[test]
fn starttls_after_a_pending_hook() {
    // STARTTLS behind commands whose hooks are pending: answered in order, the
    // handshake after STARTTLS's own reply, the rest discarded.
    TlsScript::new(starttls_config()).transcript(
        &crlf(&["NOOP", "HELO example.com", "STARTTLS", "NOOP"]),
        &crlf(&["NOOP"]),
        &["250 OK", "250 mx.example", READY_TLS, HANDSHAKE, "250 OK"],
    );
}

#[test]
fn starttls_drops_authentication() {
    // With AUTH allowed in plaintext, the authentication does not survive the
    // handshake (a new session), nor does the transaction.
    let mut config = starttls_config();
    config.auth_require_tls = false;
    let good = format!("AUTH PLAIN {}", plain_good());
    let ehlo_before = [
        "250-mx.example",
        "250-8BITMIME",
        "250-STARTTLS",
        "250-AUTH LOGIN PLAIN",
        "250 HELP",
    ];
    let mut replies = ehlo_before.to_vec();
    replies.extend([AUTH_OK, "250 OK", READY_TLS, HANDSHAKE]);
    replies.extend(EHLO_AUTH);
    replies.extend([AUTH_OK, "250 OK"]);
    let trace = TlsScript::new(config).transcript(
        &crlf(&[
            "EHLO example.com",
            &good,
            "MAIL FROM:<a@example.com>",
            "STARTTLS",
        ]),
        &crlf(&["EHLO example.com", &good, "MAIL FROM:<a@example.com>"]),
        &replies,
    );
    assert_eq!(auth_asks(&trace).len(), 2);
}

#[test]
fn require_starttls_refuses_everything_else() {
    let mut config = starttls_config();
    config.require_starttls = true;
    let refused = [
        "HELO example.com",
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<b@example.com>",
        "DATA",
        "RSET",
        "VRFY a@example.com",
        "EXPN list",
        "HELP",
        "AUTH PLAIN",
        "BOGUS",
    ];
    let mut before = vec!["NOOP", "EHLO example.com"];
    before.extend(refused);
    before.push("STARTTLS");
    let mut replies = vec!["250 OK"];
    replies.extend(EHLO_STARTTLS);
    replies.extend([MUST_STARTTLS; 10]);
    replies.extend([READY_TLS, HANDSHAKE, "250 mx.example", "250 OK", "221 Bye"]);
    let trace = TlsScript::new(config.clone()).transcript(
        &crlf(&before),
        &crlf(&["HELO example.com", "MAIL FROM:<a@example.com>", "QUIT"]),
        &replies,
    );
    assert!(trace.closed);
    // QUIT is allowed before TLS.
    TlsScript::new(config.clone()).transcript(&crlf(&["QUIT"]), b"", &["221 Bye"]);
    // Implicit TLS satisfies the requirement.
    TlsScript::implicit(config).transcript(
        b"",
        &crlf(&["HELO example.com", "MAIL FROM:<a@example.com>"]),
        &["250 mx.example", "250 OK"],
    );
    // Without STARTTLS offered, require_starttls has no effect.
    let mut config = plain();
    config.require_starttls = true;
    session(config, &["HELO example.com"], &["250 mx.example"]);
}

#[test]
fn starttls_under_implicit_tls() {
    // STARTTLS configured but the connection is already TLS: not advertised,
    // refused (aiosmtpd answers 220 and breaks the connection).
    TlsScript::implicit(starttls_config()).transcript(
        b"",
        &crlf(&["EHLO example.com", "STARTTLS", "NOOP"]),
        &with_ehlo(&EHLO_AUTH, &[TLS_ACTIVE, "250 OK"]),
    );
    // Implicit TLS only: STARTTLS is not available at all.
    TlsScript::implicit(plain()).transcript(
        b"",
        &crlf(&["EHLO example.com", "STARTTLS"]),
        &with_ehlo(&EHLO_AUTH, &["454 TLS not available"]),
    );
}

#[test]
fn starttls_inside_data_is_content() {
    let trace = TlsScript::new(starttls_config()).transcript(
        &crlf(&[
            "HELO example.com",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "STARTTLS",
            ".",
            "NOOP",
        ]),
        b"",
        &[
            "250 mx.example",
            "250 OK",
            "250 OK",
            GO_AHEAD,
            "250 OK",
            "250 OK",
        ],
    );
    assert_eq!(trace.messages.len(), 1);
    assert_eq!(trace.messages[0].content, b"STARTTLS\r\n");
}

#[test]
fn handle_tls_established_without_a_pending_handshake() {
    let now = Instant::now();
    let mut conn = Connection::new(Arc::new(starttls_config()), Peer::Unknown, now);
    assert_eq!(
        conn.handle_tls_established(now, tls_info()),
        Err(Error::NoTlsPending)
    );
    assert!(!conn.is_tls(), "a refused call changes nothing");

    // After a completed handshake, a second call is refused too.
    let mut driver = TlsDriver::new(starttls_config(), auth_responder(), false);
    driver.feed(b"STARTTLS\r\n");
    driver.handshake();
    assert_eq!(
        driver
            .d
            .conn
            .handle_tls_established(driver.d.now, tls_info()),
        Err(Error::NoTlsPending)
    );
    driver.feed(b"NOOP\r\n");
    assert_replies(&driver.d.trace.out, &[READY_TLS, HANDSHAKE, "250 OK"]);

    // The STARTTLS reply queued but not yet taken: no handshake pending yet.
    let mut conn = Connection::new(Arc::new(starttls_config()), Peer::Unknown, now);
    conn.handle_input(now, b"STARTTLS\r\n").unwrap();
    assert_eq!(
        conn.handle_tls_established(now, tls_info()),
        Err(Error::NoTlsPending)
    );
}

#[test]
fn auth_overlong_response_line() {
    // A response line longer than the limit is refused like an over-long command
    // line, however the bytes arrive (the engine's split invariance): the exchange
    // ends with `500 Command line too long`, back in command mode. (The line is
    // also longer than RFC 4954's 12288 octets, so this holds whether the limit
    // is line_length_limit or that.) Today a line that arrives whole reaches the
    // authenticator, one cut after more than line_length_limit bytes gets 500.
    let long_password = "p".repeat(13_000);
    let response = b64(format!("\0goodlogin\0{long_password}").as_bytes());
    let trace = auth_session(
        auth_config(),
        &["EHLO example.com", "AUTH PLAIN", &response, "NOOP"],
        &with_ehlo(&EHLO_AUTH, &["334 ", TOO_LONG, "250 OK"]),
    );
    assert!(auth_asks(&trace).is_empty(), "{:?}", trace.asks);
    auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH LOGIN",
            &b64(long_password.as_bytes()),
            "NOOP",
        ],
        &with_ehlo(&EHLO_AUTH, &[LOGIN_USER, TOO_LONG, "250 OK"]),
    );
}

#[test]
fn unfinished_lines_are_held_within_the_line_limit() {
    let now = Instant::now();
    let config = base();
    let limit = config.line_length_limit;
    let mut conn = Connection::new(Arc::new(config), Peer::Unknown, now);
    while conn.poll_action().is_some() {}
    // A never-ending command line, fed in pieces of every size: the engine keeps
    // at most one line's worth, whatever arrives.
    for size in [1, 7, 500, 4096, 65536] {
        conn.handle_input(now, &vec![b'a'; size]).unwrap();
        assert!(conn.buffered_input() <= limit, "{size}");
    }
    conn.handle_input(now, b"\r\n").unwrap();
    assert_eq!(conn.buffered_input(), 0);
    let mut out = Vec::new();
    while let Some(action) = conn.poll_action() {
        if let Action::Send(b) = action {
            out.extend_from_slice(b);
        }
    }
    assert_eq!(out, b"500 Command line too long\r\n");
    // Short pieces of a line that ends are held, then consumed.
    conn.handle_input(now, b"NO").unwrap();
    assert_eq!(conn.buffered_input(), 2);
}
