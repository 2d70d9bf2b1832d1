//! Replaying one recorded dialog over a [`Wire`] the way the harness ran it
//! against aiosmtpd: each recorded event says what the client did next (send,
//! read a reply, wait for the close, stay quiet, switch to TLS, reconnect),
//! what we see is recorded as the harness records it, and the two are compared
//! as the harness compares them.

use std::time::{Duration, Instant};

use crate::dialog::{Dialog, Event};
use crate::masking::{Masker, reply_code};

/// The harness's wait for one reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a recorded QUIET waits for nothing to come (the longest `quiet`
/// step of the recording).
const QUIET: Duration = Duration::from_millis(500);
/// The pause between two sends with nothing between them (the recording's
/// split writes paused 100 ms).
const SPLIT_PAUSE: Duration = Duration::from_millis(100);

/// What a read gave.
pub enum Fill {
    Data(Vec<u8>),
    Eof,
    Timeout,
}

/// A client connection: to the engine in memory, or to a server over a socket.
pub trait Wire {
    /// Sends bytes (a failure is not an event: the server's close shows in reads).
    fn send(&mut self, data: &[u8]);
    /// Reads what arrives within `timeout`.
    fn fill(&mut self, timeout: Duration) -> Fill;
    /// The client side of a TLS handshake.
    fn start_tls(&mut self) -> Result<(), String>;
    /// Pauses between two writes.
    fn pause(&mut self, duration: Duration);
    /// The wire's clock (the engine's is virtual).
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Opens connections for a dialog.
pub trait Connector {
    /// A new connection (`tls`: implicit TLS from the first byte).
    fn connect(&self, tls: bool) -> Result<Box<dyn Wire>, String>;
}

/// What we saw, in the recording's terms.
enum Seen {
    C,
    S(Vec<String>),
    X(String),
}

struct Client {
    wire: Box<dyn Wire>,
    buf: Vec<u8>,
    eof: bool,
    greeting: bool,
}

impl Client {
    fn new(wire: Box<dyn Wire>) -> Self {
        Client {
            wire,
            buf: Vec::new(),
            eof: false,
            greeting: true,
        }
    }

    /// Reads more; false on timeout.
    fn fill(&mut self, timeout: Duration) -> bool {
        match self.wire.fill(timeout) {
            Fill::Data(d) => self.buf.extend_from_slice(&d),
            Fill::Eof => self.eof = true,
            Fill::Timeout => return false,
        }
        true
    }

    /// The harness's `read_reply`: lines up to one without `ddd-`.
    fn read_reply(&mut self, timeout: Duration) -> (Vec<Vec<u8>>, Option<&'static str>) {
        let deadline = self.wire.now() + timeout;
        let mut lines = Vec::new();
        loop {
            while !self.buf.contains(&b'\n') {
                if self.eof {
                    if !self.buf.is_empty() {
                        lines.push(std::mem::take(&mut self.buf));
                    }
                    return (lines, Some("EOF"));
                }
                let left = deadline.saturating_duration_since(self.wire.now());
                if left.is_zero() || !self.fill(left) {
                    return (lines, Some("TIMEOUT"));
                }
            }
            let end = self.buf.iter().position(|&b| b == b'\n').expect("a line") + 1;
            let line: Vec<u8> = self.buf.drain(..end).collect();
            let last =
                line.len() < 4 || line[3] != b'-' || !line[..3].iter().all(u8::is_ascii_digit);
            lines.push(line);
            if last {
                return (lines, None);
            }
        }
    }

    /// True when data (or the close) arrives within `timeout`.
    fn wait_data(&mut self, timeout: Duration) -> bool {
        if !self.buf.is_empty() || self.eof {
            return true;
        }
        let deadline = self.wire.now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(self.wire.now());
            if left.is_zero() {
                return false;
            }
            if self.fill(left) && (!self.buf.is_empty() || self.eof) {
                return true;
            }
        }
    }
}

/// Replays `dialog`; `Ok` when what we saw is what aiosmtpd answered, else a
/// readable reason.
pub fn replay(
    dialog: &Dialog,
    connector: &dyn Connector,
    implicit_tls: bool,
) -> Result<(), String> {
    let tls = implicit_tls && !dialog.plain_tcp;
    let mut masker = Masker::new();
    let mut seen: Vec<Seen> = Vec::new();
    let mut client = Client::new(connector.connect(tls)?);
    let read_one = |client: &mut Client, seen: &mut Vec<Seen>, masker: &mut Masker| {
        let (lines, status) = client.read_reply(REPLY_TIMEOUT);
        if !lines.is_empty() {
            seen.push(Seen::S(masker.reply(&lines, client.greeting)));
            client.greeting = false;
        }
        if let Some(s) = status {
            seen.push(Seen::X(s.to_owned()));
        }
    };
    for (index, event) in dialog.events.iter().enumerate() {
        // An event we already saw (a read that ended at the close records the
        // close too, as the recording did).
        if seen.len() > index {
            continue;
        }
        match event {
            Event::C(bytes) => {
                if matches!(seen.last(), Some(Seen::C)) {
                    client.wire.pause(SPLIT_PAUSE);
                }
                client.wire.send(bytes);
                seen.push(Seen::C);
            }
            Event::S(_) => read_one(&mut client, &mut seen, &mut masker),
            Event::X(x) => match x.as_str() {
                "EOF" | "IDLE" | "TIMEOUT" => loop {
                    if !client.wait_data(REPLY_TIMEOUT) {
                        seen.push(Seen::X("IDLE".into()));
                        break;
                    }
                    // A TLS record (an alert) before the close is not an SMTP
                    // reply: the harness counted such bytes aside.
                    if client
                        .buf
                        .first()
                        .is_some_and(|b| (0x14..=0x17).contains(b))
                    {
                        client.buf.clear();
                        continue;
                    }
                    read_one(&mut client, &mut seen, &mut masker);
                    break;
                },
                "QUIET" => {
                    if client.wait_data(QUIET) {
                        read_one(&mut client, &mut seen, &mut masker);
                    } else {
                        seen.push(Seen::X("QUIET".into()));
                    }
                }
                "CLOSED" => {
                    client.wire = Box::new(Closed);
                    seen.push(Seen::X("CLOSED".into()));
                }
                "RECONNECT" => {
                    client = Client::new(connector.connect(tls)?);
                    seen.push(Seen::X("RECONNECT".into()));
                }
                "TLS-OK" => {
                    if !client.buf.is_empty() {
                        seen.push(Seen::X("PLAINTEXT-PENDING".into()));
                        client.buf.clear();
                    }
                    match client.wire.start_tls() {
                        Ok(()) => seen.push(Seen::X("TLS-OK".into())),
                        Err(e) => {
                            seen.push(Seen::X(format!("TLS-FAIL ({e})")));
                            client.eof = true;
                        }
                    }
                }
                // The client library's own verdict on what it read.
                x if x.starts_with("SMTPLIB-") => seen.push(Seen::X(x.to_owned())),
                other => return Err(format!("the replay cannot do the recorded event {other}")),
            },
        }
    }
    compare(dialog, &seen)
}

/// The harness's `compare_one`.
fn compare(dialog: &Dialog, seen: &[Seen]) -> Result<(), String> {
    let codes: Vec<String> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::C => None,
            Seen::S(lines) => Some(reply_code(lines)),
            Seen::X(x) => Some(x.clone()),
        })
        .collect();
    if codes != dialog.codes {
        let i = codes
            .iter()
            .zip(&dialog.codes)
            .position(|(a, b)| a != b)
            .unwrap_or(codes.len().min(dialog.codes.len()));
        let show = |c: &[String]| {
            let tail = c.get(i..).unwrap_or(&[]);
            if tail.is_empty() {
                "(end)".to_owned()
            } else {
                tail.iter().take(4).cloned().collect::<Vec<_>>().join(" ")
            }
        };
        return Err(format!(
            "codes differ at #{i}: expected {}, got {}",
            show(&dialog.codes),
            show(&codes)
        ));
    }
    if dialog.text {
        let ours = seen.iter().filter_map(|s| match s {
            Seen::S(lines) => Some(lines),
            _ => None,
        });
        let theirs = dialog.events.iter().filter_map(|e| match e {
            Event::S(lines) => Some(lines),
            _ => None,
        });
        for (i, (got, want)) in ours.zip(theirs).enumerate() {
            if got != want {
                return Err(format!(
                    "text differs in reply #{i}: expected {want:?}, got {got:?}"
                ));
            }
        }
    }
    Ok(())
}

/// A connection the client closed.
struct Closed;

impl Wire for Closed {
    fn send(&mut self, _: &[u8]) {}
    fn fill(&mut self, _: Duration) -> Fill {
        Fill::Eof
    }
    fn start_tls(&mut self) -> Result<(), String> {
        Err("the connection is closed".into())
    }
    fn pause(&mut self, _: Duration) {}
}
