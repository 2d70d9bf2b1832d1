//! The AUTH and STARTTLS harness: a hook responder with aiosmtpd's test user, a
//! driver that performs the TLS handshakes the engine asks for, and two-phase
//! transcripts (plaintext, then "over TLS").
//!
//! Spec: aiosmtpd-behaviour.md sections 6 and 7, with the deliberate differences:
//! implicit TLS counts as TLS (AUTH offered there), a second STARTTLS inside TLS
//! gets `554 5.5.1 Error: TLS already active`, mechanism names are
//! case-insensitive, and `AUTH PLAIN =` is an empty initial response.

use std::sync::Arc;
use std::time::Instant;

use super::harness::*;
use crate::proto::{Action, Ask, AuthResult, Config, Connection, Decision, Outcome, Peer, TlsInfo};

pub(super) const EHLO_AUTH: [&str; 4] = [
    "250-mx.example",
    "250-8BITMIME",
    "250-AUTH LOGIN PLAIN",
    "250 HELP",
];
pub(super) const EHLO_STARTTLS: [&str; 4] =
    ["250-mx.example", "250-8BITMIME", "250-STARTTLS", "250 HELP"];
/// Written into the trace where the driver ran the handshake [`Action::StartTls`]
/// asked for (not a reply: it marks the point after which the client speaks TLS).
pub(super) const HANDSHAKE: &str = "[TLS handshake]";

/// Standard base64, independent of the engine's encoder.
pub(super) fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Standard base64 decoding, independent of the engine's decoder.
pub(super) fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("valid base64")
}

/// `AUTH PLAIN` initial response for aiosmtpd's test user.
pub(super) fn plain_good() -> String {
    b64(b"\0goodlogin\0goodpasswd")
}

/// AUTH offered without TLS (so the plain harness can drive it).
pub(super) fn auth_config() -> Config {
    let mut config = plain();
    config.auth_require_tls = false;
    config
}

/// STARTTLS offered.
pub(super) fn starttls_config() -> Config {
    let mut config = plain();
    config.starttls = true;
    config
}

pub(super) fn tls_info() -> TlsInfo {
    TlsInfo {
        protocol_version: "TLSv1_3".to_owned(),
        cipher_suite: "TLS13_AES_128_GCM_SHA256".to_owned(),
        sni: Some("mx.example".to_owned()),
        peer_certificates: Vec::new(),
    }
}

/// `X-TWO-ROUNDS`: challenge `first`, expect `one`, challenge `second`, expect `two`.
pub(super) fn two_rounds(step: u32, response: Option<&[u8]>) -> AuthResult {
    match (step, response) {
        (0, None) => AuthResult::Challenge(b"first".to_vec()),
        (1, Some(b"one")) => AuthResult::Challenge(b"second".to_vec()),
        (2, Some(b"two")) => AuthResult::Success(None),
        _ => AuthResult::Failure(None),
    }
}

/// Accepts goodlogin/goodpasswd (aiosmtpd's test user) and runs `X-TWO-ROUNDS`.
pub(super) fn auth_responder() -> Responder {
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
pub(super) fn auth_session(config: Config, commands: &[&str], replies: &[&str]) -> Trace {
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
pub(super) fn auth_asks(trace: &Trace) -> Vec<(String, String, String)> {
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
pub(super) fn with_ehlo<'a>(ehlo: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    ehlo.iter().chain(rest).copied().collect()
}

/// A driver that also performs the TLS handshakes the engine asks for: at
/// [`Action::StartTls`] it writes [`HANDSHAKE`] into the trace and stops until
/// [`TlsDriver::handshake`]; plaintext sent in between fails the test.
pub(super) struct TlsDriver {
    pub(super) d: Driver,
    pub(super) handshake_pending: bool,
}

impl TlsDriver {
    pub(super) fn new(config: Config, responder: Responder, implicit_tls: bool) -> Self {
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

    pub(super) fn feed(&mut self, bytes: &[u8]) {
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
    pub(super) fn handshake(&mut self) {
        assert!(self.handshake_pending, "no handshake was asked for");
        self.handshake_pending = false;
        self.d
            .conn
            .handle_tls_established(self.d.now, tls_info())
            .expect("a handshake is pending");
        self.drain();
    }

    pub(super) fn drain(&mut self) {
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
                Some(Action::MessageStart(_) | Action::MessageAbort(_)) => None,
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
pub(super) struct TlsScript {
    pub(super) config: Config,
    pub(super) implicit_tls: bool,
}

impl TlsScript {
    pub(super) fn new(config: Config) -> Self {
        TlsScript {
            config,
            implicit_tls: false,
        }
    }

    pub(super) fn implicit(config: Config) -> Self {
        TlsScript {
            config,
            implicit_tls: true,
        }
    }

    pub(super) fn drive_full(&self, before: &[&[u8]], after: &[&[u8]]) -> TlsDriver {
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

    pub(super) fn drive(&self, before: &[&[u8]], after: &[&[u8]]) -> Trace {
        self.drive_full(before, after).d.trace
    }

    /// Runs `before`/`after` whole, asserts `replies` (with [`HANDSHAKE`] where
    /// the handshake ran), then the same output for every split of either phase
    /// and byte-by-byte feeding.
    #[track_caller]
    pub(super) fn transcript(&self, before: &[u8], after: &[u8], replies: &[&str]) -> Trace {
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
pub(super) fn crlf(commands: &[&str]) -> Vec<u8> {
    commands
        .iter()
        .flat_map(|c| format!("{c}\r\n").into_bytes())
        .collect()
}
