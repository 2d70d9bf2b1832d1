//! What the targets share: a reader over the fuzz input, a driver for
//! [`Connection`] that checks the engine's invariants after every call, the
//! configurations fuzzed, the SMTP alphabet and a reference base64.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smtpkit::proto::{
    Action, Ask, AuthResult, CallLimits, Config, Connection, Decision, Error, Extensions,
    FailureClass, HookFailure, Outcome, Peer, Reply, TlsInfo,
};

/// Reads the fuzz input front to back; past its end every read gives zeros.
pub struct Source<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Source<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Source { data, pos: 0 }
    }

    /// True once every byte was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    /// Up to `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = end.max(self.pos);
        &self.data[start..end]
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn blob(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max + 1);
        self.bytes(n)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        self.pos = self.data.len();
        &self.data[start..]
    }

    /// A short reply text: a canned one (some multi-line) or arbitrary UTF-8.
    pub fn text(&mut self) -> String {
        const CANNED: [&str; 8] = [
            "",
            "OK",
            "2.1.5 Recipient ok",
            "first\nsecond",
            "a\r\nb\nc",
            "trailing\n",
            "\n",
            "bare\rcr",
        ];
        match self.below(4) {
            0 => String::from_utf8_lossy(self.blob(24)).into_owned(),
            _ => CANNED[self.below(CANNED.len())].to_owned(),
        }
    }

    /// A reply with a code in 0..=999 (the engine maps invalid codes to 451).
    pub fn reply(&mut self) -> Reply {
        let code = match self.below(4) {
            0 => u16::from_le_bytes([self.byte(), self.byte()]) % 1000,
            1 => 250,
            2 => 550,
            _ => 451,
        };
        Reply::new(code, self.text())
    }

    /// A hook answer of any kind.
    pub fn decision(&mut self) -> Decision {
        match self.below(12) {
            0..=3 => Decision::Outcome(Outcome::Default),
            4 => Decision::Outcome(Outcome::Accept(self.reply())),
            5 => Decision::Outcome(Outcome::Reply(self.reply())),
            6 => {
                let class = match self.below(3) {
                    0 => FailureClass::Permanent,
                    1 => FailureClass::Temporary,
                    _ => FailureClass::StorageFull,
                };
                Decision::Failed(HookFailure::new(self.text(), self.text()).with_class(class))
            }
            7 => Decision::Auth(AuthResult::Success(self.opt_reply())),
            8 => Decision::Auth(AuthResult::Failure(self.opt_reply())),
            9 => Decision::Auth(AuthResult::Challenge(self.blob(16).to_vec())),
            _ => {
                let n = self.below(4);
                Decision::Recipients(
                    (0..n)
                        .map(|_| match self.below(3) {
                            0 => Outcome::Default,
                            1 => Outcome::Accept(self.reply()),
                            _ => Outcome::Reply(self.reply()),
                        })
                        .collect(),
                )
            }
        }
    }

    fn opt_reply(&mut self) -> Option<Reply> {
        if self.byte() & 1 == 0 {
            None
        } else {
            Some(self.reply())
        }
    }

    /// A line of SMTP-alphabet tokens (see [`TOKENS`]): bytes below 0x80 stand for
    /// themselves, 0x80..=0xFE for a token, 0xFF for the byte after it.
    pub fn smtp_bytes(&mut self, max_tokens: usize, out: &mut Vec<u8>) {
        let n = self.below(max_tokens + 1);
        for _ in 0..n {
            if self.is_empty() {
                break;
            }
            let b = self.byte();
            match b {
                0..=0x7f => out.push(b),
                0xff => {
                    let raw = self.byte();
                    out.push(raw);
                }
                _ => out.extend_from_slice(TOKENS[usize::from(b - 0x80) % TOKENS.len()]),
            }
        }
    }
}

/// The SMTP alphabet: what a fuzz byte in 0x80..=0xFE expands to.
pub const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"HELO ",
    b"EHLO ",
    b"LHLO ",
    b"MAIL ",
    b"RCPT ",
    b"DATA\r\n",
    b"RSET\r\n",
    b"NOOP",
    b"QUIT\r\n",
    b"VRFY ",
    b"EXPN ",
    b"HELP",
    b"STARTTLS\r\n",
    b"AUTH ",
    b"FROM:<",
    b"TO:<",
    b">",
    b"@",
    b"a@b.c",
    b".",
    b"\r\n.\r\n",
    b".\r\n",
    b" ",
    b"PLAIN",
    b"LOGIN",
    b"XTEST",
    b"=",
    b"AGEAYg==",
    b"dXNlcg==",
    b"cGFzcw==",
    b"*",
    b" SIZE=",
    b" BODY=8BITMIME",
    b" SMTPUTF8",
    b"<>",
    b"\"",
    b"(",
    b")",
    b"[127.0.0.1]",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r\n",
    b"PROXY TCP6 ::1 ::2 1 2\r\n",
    b"PROXY UNKNOWN\r\n",
    b"\r\n\r\n\x00\r\nQUIT\n",
    b"\x21\x11\x00\x0c\x01\x02\x03\x04\x05\x06\x07\x08\x00\x19\x00\x1a",
    b"\x20\x00\x00\x00",
    b"\xc3\xa9",
    b"\n",
    b"\r",
    b"\0",
    b"\t",
    b"MAIL FROM:<a@b.c>\r\n",
    b"RCPT TO:<d@e.f>\r\n",
    b"EHLO x\r\n",
    b"LHLO x\r\n",
    b"AUTH PLAIN AGEAYg==\r\n",
    b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz",
    b"=?utf-8?q?a?=",
    b"\\",
    b",",
    b":",
    b"1234567890",
    b"BDAT ",
    b" LAST\r\n",
    b"BDAT 3\r\nabc",
    b"BDAT 0 LAST\r\n",
    b" BODY=BINARYMIME",
    b" RET=HDRS ENVID=x+2By",
    b" NOTIFY=SUCCESS,DELAY",
    b" ORCPT=rfc822;a+40b",
    b" REQUIRETLS",
];

/// The longest PROXY header: a v2 header's 16 bytes and a 65,535-byte payload.
const PROXY_V2_MAX: usize = 16 + 65_535;

/// The configurations fuzzed: `selector % 6` picks one of the brief's variants,
/// `tweaks` turns on extra limits and features.
pub fn config(selector: u8, tweaks: u8) -> Config {
    let mut c = Config::new("mx.example");
    c.timeout = Duration::from_secs(300);
    match selector % 6 {
        0 => {}
        1 => {
            c.enable_smtputf8 = true;
            c.data_size_limit = Some(4096);
        }
        2 => {
            c.auth_require_tls = false;
            c.auth_required = true;
            c.auth_mechanisms.push("XTEST".to_owned());
        }
        3 => c.lmtp = true,
        4 => c.proxy_protocol_timeout = Some(Duration::from_secs(5)),
        _ => c.starttls = true,
    }
    // Tweaks come in pairs of bits so that most inputs keep the plain variant.
    if tweaks & 0x03 == 0x03 {
        c.command_call_limit = Some(CallLimits::uniform(3));
    }
    if tweaks & 0x0c == 0x0c {
        c.command_size_limit = 40;
        c.line_length_limit = 60;
        c.data_line_length_limit = Some(60);
        c.data_size_limit = c.data_size_limit.map(|_| 200);
    }
    if tweaks & 0x30 == 0x30 {
        c.local_part_limit = Some(4);
        c.data_size_limit = None;
        c.bogus_limit = 2;
    }
    if tweaks & 0xc0 == 0xc0 {
        c.starttls = true;
        c.require_starttls = true;
        c.enable_smtputf8 = !c.enable_smtputf8;
    }
    // Every second selector value above the variants: every extension on.
    if (selector / 6) % 2 == 1 {
        c.extensions = Extensions::all();
        c.recipient_limit = Some(3);
    }
    // And with the per-connection limits.
    if (selector / 12) % 2 == 1 {
        c.max_messages_per_connection = Some(2);
        c.max_auth_failures = Some(2);
    }
    c
}

/// What the engine did in one call, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Bytes written.
    Send(Vec<u8>),
    /// A body chunk (offset, bytes).
    Body(usize, Vec<u8>),
    /// A hook call.
    Hook(Ask),
    /// Start TLS.
    StartTls,
    /// Close.
    Close,
}

/// Drives one [`Connection`] and checks after every call:
///
/// - every byte written is a reply line: three digits (2-5 first), space or
///   hyphen, text, CRLF; a hyphen line is followed by one with the same code, each
///   Send ends on a final line (the unknown-command echo may hold a bare CR or NUL
///   inside a line, so the check is per CRLF-terminated line);
/// - no Send is larger than `64 * fed + 4096` bytes (`fed`: every byte given to the
///   engine so far, input and hook texts);
/// - Close is the last action: nothing comes after it, input after it is an error;
/// - a Hook is returned again until answered, answering it never fails, and
///   answering with nothing pending does;
/// - after STARTTLS, plaintext input does nothing until TLS is established;
/// - hook calls only come in states that allow them (MAIL after HELO, RCPT after
///   MAIL, DATA after RCPT, no MAIL, RCPT, DATA or VRFY before AUTH when it is
///   required, nothing but EHLO, NOOP and QUIT before a required STARTTLS, ...);
/// - body chunk offsets are contiguous.
pub struct Harness {
    /// The engine.
    pub conn: Connection,
    /// The clock.
    pub now: Instant,
    config: Arc<Config>,
    /// Everything written, in order.
    pub out: Vec<u8>,
    /// Every hook call, in order (the re-polls of a pending one not repeated).
    pub asks: Vec<Ask>,
    /// The pending hook call, as last polled.
    pub pending: Option<Ask>,
    /// An `Action::MessageStart` was returned and neither the message's DATA
    /// hook nor an `Action::MessageAbort` followed yet.
    pub started: bool,
    /// `Action::StartTls` was returned and TLS is not established yet.
    pub tls_pending: bool,
    /// `Action::Close` was returned.
    pub closed: bool,
    /// `handle_peer_closed` was called.
    pub peer_closed: bool,
    /// Bytes given to the engine so far.
    pub fed: usize,
    next_body_offset: usize,
    proxy_answered: bool,
    /// The events of the last drain.
    pub events: Vec<Event>,
}

impl Harness {
    /// A new connection (already drained: the greeting is in `out`).
    pub fn new(config: Config, peer: Peer, tls: bool, refused: bool) -> Self {
        let now = Instant::now();
        let config = Arc::new(config);
        let mut conn = if refused {
            Connection::refused(config.clone(), peer, now)
        } else {
            Connection::new(config.clone(), peer, now)
        };
        if tls {
            conn = conn.with_tls(TlsInfo::default());
        }
        let mut h = Harness {
            conn,
            now,
            config,
            out: Vec::new(),
            asks: Vec::new(),
            pending: None,
            tls_pending: false,
            closed: false,
            peer_closed: false,
            fed: 0,
            next_body_offset: 0,
            started: false,
            proxy_answered: false,
            events: Vec::new(),
        };
        h.drain();
        h
    }

    /// Feeds bytes.
    pub fn input(&mut self, data: &[u8]) {
        self.fed += data.len();
        let was_closed = self.closed;
        let tls_wait = self.tls_pending;
        let r = self.conn.handle_input(self.now, data);
        if was_closed {
            assert_eq!(r, Err(Error::Closed), "handle_input after Close");
        } else {
            assert_eq!(r, Ok(()), "handle_input before Close");
        }
        self.drain();
        self.check_held();
        if tls_wait {
            assert!(
                self.events.is_empty(),
                "plaintext after STARTTLS reached the SMTP layer: {:?}",
                self.events
            );
        }
    }

    /// The engine's input buffer stays within the configured limits: once
    /// nothing blocks it (no hook call, STARTTLS or close pending), it holds at
    /// most an unfinished command line or PROXY header.
    fn check_held(&self) {
        if self.pending.is_some() || self.tls_pending || self.closed {
            return;
        }
        let limit = self.config.line_length_limit.max(PROXY_V2_MAX) + 1;
        let held = self.conn.buffered_input();
        assert!(
            held <= limit,
            "{held} bytes held with nothing pending (limit {limit})"
        );
    }

    /// Answers the pending hook (or checks that answering nothing is an error).
    pub fn decide(&mut self, decision: Decision) {
        self.fed += decision_len(&decision);
        let was_pending = self.pending.take();
        let r = self.conn.handle_decision(self.now, decision);
        match was_pending {
            Some(ask) => {
                assert_eq!(r, Ok(()), "handle_decision failed for a returned Hook");
                if matches!(ask, Ask::Proxy) {
                    self.proxy_answered = true;
                }
            }
            None => assert_eq!(
                r,
                Err(Error::NoDecisionPending),
                "handle_decision with nothing pending"
            ),
        }
        self.drain();
        self.check_held();
    }

    /// Answers a pending EHLO hook after replacing the extensions it advertises.
    pub fn decide_ehlo(&mut self, extensions: Vec<String>, decision: Decision) {
        if matches!(self.pending, Some(Ask::Ehlo { .. })) {
            match self.conn.poll_action() {
                Some(Action::Hook(call)) => {
                    if let Ask::Ehlo { extensions: e, .. } = call.ask {
                        *e = extensions;
                    }
                }
                other => panic!("the pending EHLO hook was not returned again: {other:?}"),
            }
        }
        self.decide(decision);
    }

    /// The TLS handshake finished.
    pub fn tls_established(&mut self) {
        let r = self
            .conn
            .handle_tls_established(self.now, TlsInfo::default());
        if self.closed {
            // After Close anything goes, as long as nothing more happens (checked
            // in drain).
        } else if self.tls_pending {
            assert_eq!(r, Ok(()), "handle_tls_established after StartTls");
            self.tls_pending = false;
            assert!(self.conn.is_tls());
            assert!(
                self.conn.session().host_name.is_none(),
                "the session was not reset by STARTTLS"
            );
            assert_eq!(self.conn.envelope().mail_from, None);
        } else {
            assert_eq!(
                r,
                Err(Error::NoTlsPending),
                "TLS established without StartTls"
            );
        }
        self.drain();
    }

    /// Time passes.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// The driver's timer fired: jumps to the deadline (if there is one) and calls
    /// `handle_timeout`; with `early`, calls it before the deadline instead and
    /// checks that nothing happens.
    pub fn timeout(&mut self, early: bool) {
        let Some(deadline) = self.conn.poll_timeout() else {
            assert!(
                self.closed || self.pending.is_some() || self.tls_pending,
                "no deadline on an idle connection"
            );
            return;
        };
        if early {
            if self.now < deadline {
                self.conn.handle_timeout(self.now);
                self.drain();
                assert!(
                    self.events.is_empty(),
                    "a timeout before the deadline acted"
                );
            }
            return;
        }
        if self.now < deadline {
            self.now = deadline;
        }
        self.conn.handle_timeout(self.now);
        self.drain();
        assert!(
            self.closed,
            "a timeout did not close the connection: {:?}",
            self.events
        );
    }

    /// The peer closed its side.
    pub fn peer_close(&mut self) {
        self.peer_closed = true;
        self.conn.handle_peer_closed(self.now);
        self.drain();
    }

    /// The hook took too long.
    pub fn hook_timeout(&mut self) {
        self.conn.handle_hook_timeout(self.now);
        self.drain();
    }

    /// The server shuts down.
    pub fn shutdown(&mut self) {
        self.conn.handle_shutdown(self.now);
        self.drain();
        assert!(self.closed, "shutdown did not close");
    }

    /// Answers hooks (`answer`), establishes TLS and closes the peer's side until
    /// the connection closes; asserts that it does.
    pub fn finish(&mut self, mut answer: impl FnMut(&Ask) -> Decision) {
        for _ in 0..10_000 {
            if self.closed {
                break;
            }
            if let Some(ask) = self.pending.clone() {
                let d = answer(&ask);
                self.decide(d);
            } else if self.tls_pending {
                self.tls_established();
            } else if !self.peer_closed {
                self.peer_close();
            } else {
                break;
            }
        }
        if std::env::var_os("SMTPKIT_FUZZ_TRACE").is_some() {
            eprintln!(
                "hooks: {:?}\nwire:\n{}",
                self.asks,
                String::from_utf8_lossy(&self.out)
            );
        }
        assert!(
            self.closed,
            "the connection did not close after the peer did"
        );
        assert!(self.conn.is_closed());
        // Everything after Close is refused or ignored.
        self.input(b"NOOP\r\n");
        self.peer_close();
        self.decide(Decision::Outcome(Outcome::Default));
        self.timeout(false);
        self.conn.handle_shutdown(self.now);
        self.conn.handle_hook_timeout(self.now);
        self.drain();
        assert!(self.conn.poll_timeout().is_none());
    }

    /// Polls every action, checking each; leaves them in `events`.
    pub fn drain(&mut self) {
        self.events.clear();
        // Still pending unless `decide` took it: then a Hook is the same call again.
        let unanswered = self.pending.take();
        if self.closed {
            assert!(self.conn.poll_action().is_none(), "an action after Close");
            return;
        }
        let bound = 64 * self.fed + 4096;
        for _ in 0..1000 {
            let Some(action) = self.conn.poll_action() else {
                return;
            };
            match action {
                Action::Send(bytes) => {
                    assert!(!bytes.is_empty(), "an empty Send");
                    assert!(
                        bytes.len() <= bound,
                        "a Send of {} bytes after {} bytes fed",
                        bytes.len(),
                        self.fed
                    );
                    if self.config.proxy_protocol_timeout.is_some() && !self.proxy_answered {
                        // Before the PROXY header is accepted the client hears
                        // nothing but a shutdown's or a hook timeout's 421.
                        assert!(
                            bytes.starts_with(b"421 "),
                            "a reply before PROXY: {bytes:?}"
                        );
                    }
                    check_wire(bytes);
                    self.out.extend_from_slice(bytes);
                    self.events.push(Event::Send(bytes.to_vec()));
                }
                Action::MessageAbort(_) => {
                    assert!(self.started, "an abort without a start");
                    self.started = false;
                }
                Action::MessageStart(start) => {
                    assert!(!self.started, "a start while a message is open");
                    assert!(
                        start.envelope.content.is_empty(),
                        "a message starts with content"
                    );
                    self.next_body_offset = 0;
                    self.started = true;
                }
                Action::Body(chunk) => {
                    assert!(
                        self.started,
                        "a body chunk before its MessageStart; events: {:?}",
                        &self.events[self.events.len().saturating_sub(6)..]
                    );
                    assert!(
                        chunk.offset == self.next_body_offset,
                        "body chunk at {} after {}",
                        chunk.offset,
                        self.next_body_offset
                    );
                    assert!(!chunk.chunk.is_empty(), "an empty body chunk");
                    self.next_body_offset = chunk.offset + chunk.chunk.len();
                    chunk.envelope.content.extend_from_slice(chunk.chunk);
                    self.events
                        .push(Event::Body(chunk.offset, chunk.chunk.to_vec()));
                }
                Action::Hook(call) => {
                    check_hook(&self.config, call.ask, call.session, call.envelope);
                    let ask = call.ask.clone();
                    if matches!(ask, Ask::Data | Ask::LmtpData) {
                        self.started = false; // the message reached its end
                    }
                    // Returned again until answered.
                    match self.conn.poll_action() {
                        Some(Action::Hook(again)) => {
                            assert_eq!(*again.ask, ask, "a different hook on re-poll")
                        }
                        other => panic!("a pending Hook was not returned again: {other:?}"),
                    }
                    match &unanswered {
                        Some(prev) => {
                            assert_eq!(*prev, ask, "a new hook before the last was answered")
                        }
                        None => self.asks.push(ask.clone()),
                    }
                    self.events.push(Event::Hook(ask.clone()));
                    self.pending = Some(ask);
                    return;
                }
                Action::StartTls => {
                    assert!(!self.tls_pending, "StartTls twice");
                    assert!(!self.conn.is_tls(), "StartTls over TLS");
                    // With ENHANCEDSTATUSCODES: `220 2.0.0 Ready to start TLS`.
                    let last = self.out[..self.out.len().saturating_sub(2)]
                        .rsplit(|&b| b == b'\n')
                        .next()
                        .unwrap_or_default();
                    assert!(
                        last.starts_with(b"220 ") && self.out.ends_with(b"Ready to start TLS\r\n"),
                        "StartTls before its 220 was sent"
                    );
                    self.tls_pending = true;
                    self.events.push(Event::StartTls);
                }
                Action::Close => {
                    self.closed = true;
                    self.events.push(Event::Close);
                    assert!(self.conn.is_closed());
                    assert!(self.conn.poll_action().is_none(), "an action after Close");
                    assert!(self.conn.poll_timeout().is_none(), "a deadline after Close");
                    return;
                }
                _ => {}
            }
        }
        panic!("poll_action never returned None");
    }
}

fn decision_len(d: &Decision) -> usize {
    fn reply_len(r: &Reply) -> usize {
        r.text().len() + 8
    }
    fn outcome_len(o: &Outcome) -> usize {
        match o {
            Outcome::Default => 0,
            Outcome::Accept(r) | Outcome::Reply(r) => reply_len(r),
        }
    }
    match d {
        Decision::Outcome(o) => outcome_len(o),
        Decision::Failed(f) => f.kind.len() + f.message.len() + 16,
        Decision::Auth(AuthResult::Success(r) | AuthResult::Failure(r)) => {
            r.as_ref().map_or(0, reply_len)
        }
        Decision::Auth(AuthResult::Challenge(c)) => c.len() * 2 + 8,
        Decision::Recipients(v) => v.iter().map(outcome_len).sum::<usize>() + 8,
    }
}

/// Checks that `bytes` is a sequence of complete reply lines.
pub fn check_wire(bytes: &[u8]) {
    assert!(
        bytes.ends_with(b"\r\n"),
        "a Send not ending in CRLF: {bytes:?}"
    );
    let mut continued: Option<&[u8]> = None;
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = find_crlf(rest).expect("ends with CRLF");
        let line = &rest[..end];
        rest = &rest[end + 2..];
        assert!(line.len() >= 4, "a short reply line: {line:?}");
        assert!(
            matches!(line[0], b'2'..=b'5') && line[1].is_ascii_digit() && line[2].is_ascii_digit(),
            "a reply line without a code: {line:?}"
        );
        assert!(matches!(line[3], b' ' | b'-'), "no separator: {line:?}");
        if let Some(code) = continued {
            assert_eq!(code, &line[..3], "a multi-line reply changed its code");
        }
        continued = (line[3] == b'-').then(|| &line[..3]);
    }
    assert!(continued.is_none(), "a Send ends inside a multi-line reply");
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// The state a hook may be called in.
fn check_hook(
    config: &Config,
    ask: &Ask,
    session: &smtpkit::proto::Session,
    envelope: &smtpkit::proto::Envelope,
) {
    let authed = !config.auth_required || session.authenticated;
    let tls_ok = !(config.starttls && config.require_starttls) || session.tls.is_some();
    match ask {
        Ask::Helo { .. } => {
            assert!(!config.lmtp, "HELO in LMTP");
            assert!(tls_ok, "HELO before the required STARTTLS");
        }
        Ask::Ehlo { extensions, .. } => {
            assert!(!extensions.is_empty());
            assert_eq!(
                extensions.iter().any(|e| e == "STARTTLS"),
                config.starttls && session.tls.is_none(),
                "STARTTLS advertised wrongly: {extensions:?}"
            );
            let auth = extensions.iter().any(|e| e.starts_with("AUTH "));
            assert_eq!(
                auth,
                !config.auth_mechanisms.is_empty()
                    && (!config.auth_require_tls || session.tls.is_some()),
                "AUTH advertised wrongly: {extensions:?}"
            );
        }
        Ask::Mail { .. } => {
            assert!(session.host_name.is_some(), "MAIL before HELO");
            assert!(envelope.mail_from.is_none(), "nested MAIL");
            assert!(authed, "MAIL before AUTH");
            assert!(tls_ok, "MAIL before the required STARTTLS");
        }
        Ask::Rcpt { .. } => {
            assert!(session.host_name.is_some(), "RCPT before HELO");
            assert!(envelope.mail_from.is_some(), "RCPT before MAIL");
            assert!(authed, "RCPT before AUTH");
            assert!(tls_ok, "RCPT before the required STARTTLS");
        }
        Ask::Data | Ask::LmtpData => {
            assert_eq!(matches!(ask, Ask::LmtpData), config.lmtp, "DATA hook kind");
            assert!(envelope.mail_from.is_some(), "DATA before MAIL");
            assert!(!envelope.rcpt_tos.is_empty(), "DATA before RCPT");
            assert!(authed, "DATA before AUTH");
            assert!(tls_ok, "DATA before the required STARTTLS");
            if let Some(limit) = config.data_size_limit {
                assert!(envelope.content.len() <= limit, "an oversized message");
            }
        }
        Ask::Vrfy { .. } => {
            assert!(authed, "VRFY before AUTH");
            assert!(tls_ok, "VRFY before the required STARTTLS");
        }
        Ask::Auth { .. } | Ask::AuthStep { .. } => {
            assert!(!session.authenticated, "AUTH twice");
            assert!(session.extended_smtp, "AUTH without EHLO");
            assert!(
                !config.auth_require_tls || session.tls.is_some(),
                "AUTH without TLS"
            );
            assert!(tls_ok, "AUTH before the required STARTTLS");
        }
        Ask::Proxy => {
            assert!(
                config.proxy_protocol_timeout.is_some(),
                "PROXY hook without PROXY"
            );
            let data = session
                .proxy_data
                .as_ref()
                .expect("PROXY hook without data");
            assert!(data.is_valid(), "PROXY hook for an invalid header");
        }
        Ask::Rset | Ask::Noop { .. } | Ask::Quit => {}
        _ => {}
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn b64_encode(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Strict base64 as the engine documents it (Python's `b64decode(validate=True)`):
/// the standard alphabet, canonical padding, trailing bits ignored.
pub fn b64_decode(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let quads = text.len() / 4;
    for (qi, quad) in text.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && qi + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            let v = B64.iter().position(|&a| a == c)? as u32;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// The wire form of a reply with `code` and `text` (the engine's documented
/// encoding: one line per `\n`, a CR before it dropped, `-` on all but the last).
pub fn encode_reply(code: u16, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.extend_from_slice(format!("{code:03}{sep}{line}\r\n").as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for n in 0..10u8 {
            let data: Vec<u8> = (0..n).collect();
            assert_eq!(b64_decode(b64_encode(&data).as_bytes()), Some(data));
        }
        assert_eq!(b64_encode(b"User Name\0"), "VXNlciBOYW1lAA==");
        assert_eq!(b64_decode(b"YQ"), None);
        assert_eq!(b64_decode(b"YR==").as_deref(), Some(&b"a"[..]));
        assert_eq!(b64_decode(b"YQ==YQ=="), None);
    }
}
