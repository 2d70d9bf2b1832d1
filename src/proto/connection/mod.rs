//! The SMTP state machine for one connection: [`Connection`] and its API.
//!
//! Which file holds what:
//! - `mod.rs`: the [`Connection`] and every public method (`handle_*` for input,
//!   `poll_*` for output);
//! - `actions.rs`: what the driver gets back ([`Action`], [`Ask`], [`HookCall`],
//!   [`BodyChunk`]) and the API misuse errors ([`Error`]);
//! - `state.rs`: the `State` enum (waiting for a PROXY header, reading commands, in
//!   DATA, in an AUTH exchange, awaiting a hook, switching to TLS, closing) and
//!   every transition;
//! - `input.rs`: bytes into lines, message bodies and AUTH responses, and the
//!   checks every command line passes before its verb runs;
//! - `verbs.rs`: one method per command;
//! - `chunking.rs`: BDAT and its chunks (CHUNKING);
//! - `enhanced.rs`: ENHANCEDSTATUSCODES, added to the replies as they go out;
//! - `decision.rs`: applying the application's answer to a hook call;
//! - `sasl.rs`: AUTH (PLAIN, LOGIN and handler-defined mechanisms);
//! - `pool.rs`: strings kept for reuse, so the steady path allocates nothing.
//!
//! The reply texts are in [`super::replies`].

mod actions;
mod chunking;
mod decision;
mod enhanced;
mod input;
mod pool;
mod sasl;
mod state;
mod verbs;

use std::sync::Arc;
use std::time::Instant;

pub use actions::{
    Action, Ask, BodyChunk, Error, HookCall, MessageAbort, MessageStart, UnsentReplies,
};

use super::params::MailParams;
use super::replies::{self, Canned};
use super::{Config, Envelope, Peer, RcptDsn, Reply, Session, TlsInfo};
use pool::StringPool;
use state::{READING_COMMANDS, State};

/// One SMTP session, sans I/O: bytes, time and decisions in; replies, hook calls,
/// body chunks and close out.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use smtpkit::proto::{Action, Config, Connection, Decision, Outcome, Peer};
///
/// let now = Instant::now();
/// let mut conn = Connection::new(Arc::new(Config::new("mx.example")), Peer::Unknown, now);
/// conn.handle_input(now, b"HELO client.example\r\nQUIT\r\n").unwrap();
/// let mut wire = Vec::new();
/// while let Some(action) = conn.poll_action() {
///     match action {
///         Action::Send(bytes) => wire.extend_from_slice(bytes),
///         Action::Hook(_) => conn.handle_decision(now, Decision::Outcome(Outcome::Default)).unwrap(),
///         Action::Body(b) => b.envelope.content.extend_from_slice(b.chunk),
///         Action::Close => break,
///         _ => {}
///     }
/// }
/// let wire = String::from_utf8(wire).unwrap();
/// assert!(wire.starts_with("220 mx.example smtpkit"));
/// assert!(wire.ends_with("250 mx.example\r\n221 Bye\r\n"));
/// ```
pub struct Connection {
    config: Arc<Config>,
    state: State,
    session: Session,
    envelope: Envelope,
    /// Received bytes not consumed yet, from `input_pos` on.
    input: Vec<u8>,
    input_pos: usize,
    /// Replies not yet handed to the driver.
    output: Handout,
    /// Body bytes (dot-unstuffed) not yet handed to the driver.
    body: Handout,
    /// Where the next body chunk starts in the message.
    body_offset: usize,
    /// The peer closed its side: answer what is complete, then close.
    peer_closed: bool,
    /// When the idle timeout fires (see [`Connection::poll_timeout`]).
    deadline: Instant,
    /// Unrecognised commands still allowed.
    bogus_budget: u32,
    /// Calls per command word, for [`Config::command_call_limit`].
    call_counts: Vec<(Vec<u8>, u32)>,
    /// Bytes of BDAT chunks accepted in this transaction (`None`: no BDAT yet).
    chunked: Option<usize>,
    /// A message began and [`Action::MessageStart`] was not returned yet.
    start_pending: bool,
    /// A message began and has not reached its end (its DATA hook) yet.
    message_open: bool,
    /// Messages answered on this connection (for the message limit).
    messages: u32,
    /// Failed AUTH attempts on this connection.
    auth_failures: u32,
    /// A graceful shutdown waits for the message in progress to end.
    closing_after_message: bool,
    /// The spool of an abandoned message, for [`Action::MessageAbort`];
    /// `abort` says where that action is.
    aborted: super::Spool,
    abort: AbortState,
    /// MAIL's typed parameters while its hook is out.
    pending_mail: MailParams,
    /// RCPT's DSN parameters while its hook is out.
    pending_rcpt: RcptDsn,
    /// ENHANCEDSTATUSCODES: what the replies not yet marked answer.
    enhance: enhanced::Marker,
    pool: StringPool,
}

/// Where an [`Action::MessageAbort`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AbortState {
    None,
    /// To be returned by the next `poll_action`.
    Pending,
    /// Returned: the spool is dropped at the next call into the engine.
    HandedOut,
}

/// Bytes handed to the driver by [`Connection::poll_action`]; cleared by the next
/// call into the engine, which is when the driver is done with them.
#[derive(Debug, Default)]
struct Handout {
    bytes: Vec<u8>,
    handed_out: bool,
}

impl Handout {
    fn hand_out(&mut self) -> &[u8] {
        self.handed_out = true;
        &self.bytes
    }

    fn retire(&mut self) {
        if self.handed_out {
            self.bytes.clear();
            self.handed_out = false;
        }
    }

    /// Frees the buffer when it is empty and larger than `keep`.
    fn release_above(&mut self, keep: usize) {
        if self.bytes.is_empty() && self.bytes.capacity() > keep {
            self.bytes = Vec::new();
        }
    }
}

/// What a connection keeps of its buffers once they are empty, so that an idle
/// connection costs the same whatever it received before (a message, a flood
/// of pipelined commands) while small commands and messages reuse their
/// buffers without allocating. Larger buffers are freed: the input when it is
/// consumed, the body buffer when a message ends, the reply buffer once sent;
/// the envelope's copy of the body in [`pool::StringPool::reset`].
const KEEP_INPUT: usize = 4 << 10;
/// See [`KEEP_INPUT`].
const KEEP_BODY: usize = 8 << 10;
/// See [`KEEP_INPUT`].
const KEEP_OUTPUT: usize = 4 << 10;

impl Connection {
    /// A new connection from `peer`; queues the `220` greeting (or, with the
    /// PROXY protocol configured, waits for the header first).
    pub fn new(config: Arc<Config>, peer: Peer, now: Instant) -> Self {
        let mut conn = Connection {
            state: READING_COMMANDS,
            session: Session::new(peer),
            envelope: Envelope::default(),
            input: Vec::new(),
            input_pos: 0,
            output: Handout {
                bytes: Vec::with_capacity(256),
                handed_out: false,
            },
            body: Handout::default(),
            body_offset: 0,
            peer_closed: false,
            deadline: now + config.proxy_protocol_timeout.unwrap_or(config.timeout),
            bogus_budget: config.bogus_limit,
            call_counts: Vec::new(),
            chunked: None,
            start_pending: false,
            message_open: false,
            closing_after_message: false,
            messages: 0,
            auth_failures: 0,
            aborted: super::Spool::default(),
            abort: AbortState::None,
            pending_mail: MailParams::default(),
            pending_rcpt: RcptDsn::default(),
            enhance: enhanced::Marker::default(),
            pool: StringPool::default(),
            config,
        };
        if conn.config.proxy_protocol_timeout.is_some() {
            conn.state = State::ProxyHeader;
        } else {
            conn.push_greeting();
        }
        conn
    }

    /// A connection the server turns away (too many connections in all or from its
    /// address): it gets `421` instead of the greeting and is closed.
    pub fn refused(config: Arc<Config>, peer: Peer, now: Instant) -> Self {
        let mut conn = Connection::new(
            Arc::new(Config {
                proxy_protocol_timeout: None,
                ..(*config).clone()
            }),
            peer,
            now,
        );
        conn.output.bytes.clear();
        conn.enhance.rewind();
        conn.push_closing(replies::TOO_MANY_CONNECTIONS);
        conn
    }

    /// Marks the connection as TLS from the start (implicit TLS, SMTPS). Call it
    /// right after [`Connection::new`].
    pub fn with_tls(mut self, info: TlsInfo) -> Self {
        self.session.tls = Some(info);
        self
    }

    /// True once TLS is up (STARTTLS completed, or implicit TLS).
    pub fn is_tls(&self) -> bool {
        self.session.tls.is_some()
    }

    /// The session (peer, greeting name, ...).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The current transaction.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Received bytes the connection holds without having consumed them yet: an
    /// unfinished command line (at most the line length limit: a longer one is
    /// discarded as it arrives), an unfinished PROXY header, or input that
    /// arrived while a hook call, STARTTLS or the close was pending.
    pub fn buffered_input(&self) -> usize {
        self.input.len() - self.input_pos
    }

    /// Bytes of buffer capacity the connection holds for input, replies and
    /// the message body (its own and the envelope's copy). Once a message is
    /// answered or the input consumed, large buffers are freed: an idle
    /// connection holds a few KiB here whatever it received before.
    pub fn buffer_capacity(&self) -> usize {
        self.input.capacity()
            + self.output.bytes.capacity()
            + self.body.bytes.capacity()
            + self.envelope.content.capacity()
    }

    /// True once [`Action::Close`] has been returned.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Feeds bytes received from the peer, split anywhere.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        self.retire();
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if self.state.discards_input() {
            return Ok(());
        }
        if self.input_pos == self.input.len() {
            // Nothing buffered: work on the caller's bytes and keep only what is
            // left over (saves a copy of every body byte).
            self.clear_input();
            let consumed = self.consume(now, data);
            self.input.extend_from_slice(&data[consumed..]);
        } else {
            self.input.extend_from_slice(data);
            self.process(now);
        }
        Ok(())
    }

    /// The peer closed its side: complete commands already received are still
    /// answered, then the connection closes. A partial command or message is dropped.
    pub fn handle_peer_closed(&mut self, now: Instant) {
        self.retire();
        if self.is_closed() {
            return;
        }
        self.peer_closed = true;
        self.process(now);
    }

    /// When [`Connection::handle_timeout`] must be called, if no input comes first.
    /// `None` unless it is the client's turn (a hook call, the TLS handshake or
    /// the close is pending).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.state.reads_input().then_some(self.deadline)
    }

    /// The deadline from [`Connection::poll_timeout`] passed: the client gets
    /// `421` and the connection closes (before a PROXY header: it closes
    /// silently, as aiosmtpd does). Ignored before the deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.retire();
        if !self.state.reads_input() || now < self.deadline {
            return;
        }
        if matches!(self.state, State::ProxyHeader) {
            self.close();
        } else {
            self.push_closing(replies::TIMEOUT);
        }
    }

    /// The pending hook did not answer in time (the server's hook timeout): the
    /// client gets `421` and the connection closes (the transaction's state is
    /// unknown, so it cannot go on).
    pub fn handle_hook_timeout(&mut self, _now: Instant) {
        self.retire();
        if let Some(ask) = self.take_ask() {
            self.pool.keep_ask(ask);
            self.push_closing(replies::HANDLER_TIMED_OUT);
        }
    }

    /// The server is shutting down: the client gets `421` and the connection closes.
    pub fn handle_shutdown(&mut self, _now: Instant) {
        self.retire();
        if matches!(self.state, State::Closing | State::Closed) {
            return;
        }
        self.push_closing(replies::SHUTTING_DOWN);
    }

    /// The server is shutting down gracefully: a session between commands
    /// gets `421 4.3.2 <host> Service shutting down` and closes now; one in the
    /// middle of a message (DATA, BDAT chunks, its DATA hook) finishes it (its
    /// reply is sent) and then gets the same 421. Input after the message is
    /// not read. [`Connection::handle_shutdown`] (at the deadline) closes at once.
    pub fn handle_graceful_shutdown(&mut self, _now: Instant) {
        self.retire();
        if matches!(self.state, State::Closing | State::Closed) {
            return;
        }
        self.closing_after_message = true;
        self.close_if_idle();
    }

    /// After a graceful shutdown: closes once no message is in progress.
    fn close_if_idle(&mut self) {
        let mid_message = self.message_open
            || self.chunked.is_some()
            || matches!(
                self.state,
                State::Data(_) | State::Bdat(_) | State::Hook(Ask::Data | Ask::LmtpData)
            );
        if self.closing_after_message
            && !mid_message
            && !matches!(self.state, State::Closing | State::Closed)
        {
            self.push_closing(replies::SHUTTING_DOWN_GRACEFULLY);
        }
    }

    /// Answers the pending [`Action::Hook`].
    pub fn handle_decision(
        &mut self,
        now: Instant,
        decision: super::Decision,
    ) -> Result<(), Error> {
        self.retire();
        let ask = self.take_ask().ok_or(Error::NoDecisionPending)?;
        self.apply_decision(ask, decision);
        self.resume(now);
        Ok(())
    }

    /// The TLS handshake that [`Action::StartTls`] asked for completed: the SMTP
    /// state is reset as RFC 3207 requires (a new session that keeps only the
    /// peer and its PROXY header; a new envelope) and TLS counts from now on.
    pub fn handle_tls_established(&mut self, now: Instant, info: TlsInfo) -> Result<(), Error> {
        self.retire();
        if !matches!(self.state, State::TlsHandshake) {
            return Err(Error::NoTlsPending);
        }
        let mut session = Session::new(self.session.peer.clone());
        session.tls = Some(info);
        session.proxy_data = self.session.proxy_data.take();
        self.session = session;
        self.pool.reset(&mut self.envelope);
        self.read_commands();
        self.clear_input();
        self.resume(now);
        Ok(())
    }

    /// The next thing the driver must do. Bytes returned by [`Action::Send`] and
    /// [`Action::Body`] count as handled once the next method is called.
    pub fn poll_action(&mut self) -> Option<Action<'_>> {
        self.retire();
        if self.abort == AbortState::Pending {
            self.abort = AbortState::HandedOut;
            return Some(Action::MessageAbort(MessageAbort {
                session: &mut self.session,
                spool: &mut self.aborted,
            }));
        }
        if self.start_pending {
            self.start_pending = false;
            return Some(Action::MessageStart(MessageStart {
                session: &mut self.session,
                envelope: &mut self.envelope,
            }));
        }
        if !self.body.bytes.is_empty() {
            let offset = self.body_offset;
            self.body_offset += self.body.bytes.len();
            return Some(Action::Body(BodyChunk {
                chunk: self.body.hand_out(),
                offset,
                session: &mut self.session,
                envelope: &mut self.envelope,
            }));
        }
        self.mark_replies();
        // Hook calls before replies: the replies to pipelined commands collect
        // until the engine waits for the client, then go out in one write. A
        // hook that takes its time must not hold them back (RFC 2920): the
        // driver may send them first ([`HookCall::unsent_replies`]).
        if matches!(self.state, State::Hook(_)) {
            let State::Hook(ask) = &mut self.state else {
                return None;
            };
            return Some(Action::Hook(HookCall {
                ask,
                session: &mut self.session,
                envelope: &mut self.envelope,
                unsent: Some(UnsentReplies {
                    output: &mut self.output,
                }),
            }));
        }
        if !self.output.bytes.is_empty() {
            return Some(Action::Send(self.output.hand_out()));
        }
        match self.state {
            State::TlsRequested => {
                self.start_handshake();
                Some(Action::StartTls)
            }
            State::Closing => {
                self.closed();
                Some(Action::Close)
            }
            _ => None,
        }
    }

    /// Forgets what the driver was handed by the last [`Connection::poll_action`].
    fn retire(&mut self) {
        if self.abort == AbortState::HandedOut {
            self.abort = AbortState::None;
            self.aborted.clear();
        }
        self.output.retire();
        if self.output.bytes.is_empty() {
            self.enhance.rewind();
        }
        self.output.release_above(KEEP_OUTPUT);
        self.body.retire();
        if !matches!(self.state, State::Data(_) | State::Bdat(_)) {
            self.body.release_above(KEEP_BODY);
        }
    }

    /// Empties the input buffer, freeing it if it grew large.
    fn clear_input(&mut self) {
        self.input_pos = 0;
        if self.input.capacity() > KEEP_INPUT {
            self.input = Vec::new();
        } else {
            self.input.clear();
        }
    }

    /// The client's turn again: the idle deadline restarts and buffered input
    /// is read (the tail of every hook answer and of the TLS switch).
    fn resume(&mut self, now: Instant) {
        self.deadline = now + self.config.timeout;
        self.process(now);
    }

    fn push_greeting(&mut self) {
        let config = self.config.clone();
        self.push_uncoded(|out| replies::push_greeting(&config.hostname, &config.ident, out));
    }

    fn push(&mut self, reply: Canned) {
        reply.push(&mut self.output.bytes);
    }

    fn push_reply(&mut self, reply: &Reply) {
        reply.encode(&mut self.output.bytes);
    }

    /// One of the `421 ... {hostname} ...` replies, then the close.
    fn push_closing(&mut self, reply: replies::Template) {
        reply.push(self.config.hostname.as_bytes(), &mut self.output.bytes);
        self.close();
    }

    /// Empties the envelope (HELO, EHLO, RSET, after DATA), keeping its strings
    /// and buffers for reuse.
    fn reset_envelope(&mut self) {
        self.abandon_message();
        self.pool.reset(&mut self.envelope);
        self.chunked = None;
        // Chunk bytes of the transaction not handed out yet (a BDAT chunk
        // followed by RSET, or by a chunk over SIZE, in the same read) belong
        // to no message now.
        self.body.bytes.clear();
        self.body_offset = 0;
    }

    /// A started message that has not reached its end is abandoned: its
    /// spool goes to [`Action::MessageAbort`].
    fn abandon_message(&mut self) {
        if !self.message_open {
            return;
        }
        self.message_open = false;
        // Its bytes not handed out yet go with it.
        self.body.bytes.clear();
        if self.start_pending {
            // Begun and abandoned within one read: the handler never saw it.
            self.start_pending = false;
        } else {
            self.aborted = std::mem::take(&mut self.envelope.spool);
            self.abort = AbortState::Pending;
        }
    }

    /// The message reached its end (its DATA hook is asked): no abort.
    fn end_message(&mut self) {
        self.message_open = false;
    }

    /// A message body begins: [`Action::MessageStart`] comes before its chunks.
    fn start_message(&mut self) {
        self.envelope.content.clear();
        self.body_offset = 0;
        self.start_pending = true;
        self.message_open = true;
    }
}
