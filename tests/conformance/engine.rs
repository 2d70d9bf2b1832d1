//! The engine-level replay: each dialog straight into a
//! `smtpkit::proto::Connection` configured as the CLI configures the group,
//! hooks answered as the CLI's sink (and aiosmtpd's test authenticator) answer
//! them, time on a virtual clock so timeouts fire without waiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtpkit::proto::{
    Action, Ask, AuthResult, Config, Connection, DATA_SIZE_DEFAULT, Decision, Outcome, Peer, Reply,
};

use crate::dialog::Dialog;
use crate::replay::{self, Connector, Fill, Wire};

/// The groups the engine replay covers: all but the TLS ones (STARTTLS and
/// implicit TLS need a real handshake; the CLI replay covers them).
pub fn replays(group: &str) -> bool {
    !matches!(group, "starttls" | "tlsreq" | "smtps")
}

/// The configuration the CLI builds from the group's command line in
/// `servers.json` (`-s`, `-u`, `--auth-file`, `--auth-required`, `--lmtp`,
/// `--proxy-protocol-timeout`, `--unix`; without `-s` the CLI has no size
/// limit, except with the library-only flags, which take aiosmtpd's library
/// default).
fn config(group: &str) -> Config {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let config = Config::new(host);
    let mut config = match group {
        "plain" => config.with_data_size_limit(None),
        "sized" => config.with_smtputf8(true).with_data_size_limit(Some(4096)),
        _ => config.with_data_size_limit(Some(DATA_SIZE_DEFAULT)),
    };
    match group {
        "auth" => config.auth_require_tls = false,
        "authreq" => {
            config.auth_require_tls = false;
            config.auth_required = true;
        }
        "lmtp" => config.lmtp = true,
        "proxy" => config.proxy_protocol_timeout = Some(Duration::from_secs(1)),
        _ => {}
    }
    config
}

/// Replays `dialog` into the engine, every send whole (`split`: `None`) or in
/// pieces of `split` bytes (large sends in 4093-byte pieces), which must not
/// change a single reply.
pub fn replay(dialog: &Dialog, split: Option<usize>) -> Result<(), String> {
    let connector = Engine {
        split,
        config: Arc::new(config(&dialog.group)),
        peer: if dialog.group == "unix" {
            Peer::Unix
        } else {
            Peer::Tcp(SocketAddr::from(([127, 0, 0, 1], 41_000)))
        },
    };
    replay::replay(dialog, &connector, false)
}

struct Engine {
    split: Option<usize>,
    config: Arc<Config>,
    peer: Peer,
}

impl Connector for Engine {
    fn connect(&self, tls: bool) -> Result<Box<dyn Wire>, String> {
        assert!(!tls, "the engine replay has no TLS");
        let now = Instant::now();
        let mut wire = EngineWire {
            split: self.split,
            conn: Connection::new(self.config.clone(), self.peer.clone(), now),
            now,
            out: Vec::new(),
            closed: false,
        };
        wire.drain();
        Ok(Box::new(wire))
    }
}

/// A connection to the engine: what it sends collects in `out`.
struct EngineWire {
    split: Option<usize>,
    conn: Connection,
    now: Instant,
    out: Vec<u8>,
    closed: bool,
}

/// The CLI's answers: the sink's defaults, and aiosmtpd's test authenticator
/// (`goodlogin`/`goodpasswd` accepted, `454` for `failme_with454`, `535` else).
fn answer(ask: &Ask) -> Decision {
    match ask {
        Ask::Auth {
            login, password, ..
        } => Decision::Auth(match (login.as_slice(), password.as_slice()) {
            (b"goodlogin", b"goodpasswd") => AuthResult::Success(None),
            (b"failme_with454", _) => AuthResult::Failure(Some(Reply::new(
                454,
                "4.7.0 Temporary authentication failure",
            ))),
            _ => AuthResult::Failure(None),
        }),
        Ask::AuthStep { .. } => Decision::Auth(AuthResult::Failure(None)),
        Ask::LmtpData => Decision::Recipients(vec![Outcome::Default]),
        _ => Decision::Outcome(Outcome::Default),
    }
}

impl EngineWire {
    /// Carries out the engine's actions until it waits for input.
    fn drain(&mut self) {
        while let Some(action) = self.conn.poll_action() {
            match action {
                Action::Send(bytes) => self.out.extend_from_slice(bytes),
                Action::Body(_) | Action::MessageStart(_) | Action::MessageAbort(_) => {}
                Action::Hook(call) => {
                    let decision = answer(call.ask);
                    self.conn
                        .handle_decision(self.now, decision)
                        .expect("a decision for the pending hook");
                }
                Action::StartTls => panic!("the engine replay has no TLS"),
                Action::Close => self.closed = true,
                _ => panic!("an action the replay does not know"),
            }
        }
    }
}

impl Wire for EngineWire {
    fn send(&mut self, data: &[u8]) {
        let piece = match self.split {
            None => data.len().max(1),
            Some(_) if data.len() > 64 * 1024 => 4093,
            Some(n) => n,
        };
        for chunk in data.chunks(piece) {
            if self.closed {
                return;
            }
            let _ = self.conn.handle_input(self.now, chunk);
            self.drain();
        }
    }

    fn fill(&mut self, timeout: Duration) -> Fill {
        if self.out.is_empty() && !self.closed {
            // Nothing to read: let the virtual clock run to the engine's
            // deadline, if it falls within the wait.
            match self.conn.poll_timeout() {
                Some(deadline) if deadline <= self.now + timeout => {
                    self.now = deadline;
                    self.conn.handle_timeout(self.now);
                    self.drain();
                }
                _ => self.now += timeout,
            }
        }
        if !self.out.is_empty() {
            Fill::Data(std::mem::take(&mut self.out))
        } else if self.closed {
            Fill::Eof
        } else {
            Fill::Timeout
        }
    }

    fn start_tls(&mut self) -> Result<(), String> {
        Err("the engine replay has no TLS".into())
    }

    fn pause(&mut self, duration: Duration) {
        self.now += duration;
    }

    fn now(&self) -> Instant {
        self.now
    }
}

impl Drop for EngineWire {
    /// The client closed its side.
    fn drop(&mut self) {
        if !self.closed {
            self.conn.handle_peer_closed(self.now);
        }
    }
}
