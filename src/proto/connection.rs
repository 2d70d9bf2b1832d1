//! The SMTP state machine for one connection.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use super::address::{ParsedPath, parse_path_checked, parse_plain_path, py_space};
use super::auth;
use super::command::{self, HELP_LIST, HELP_LIST_LMTP, HELP_LIST_LMTP_TLS, HELP_LIST_TLS, Verb};
use super::data::{DataDecoder, DataError};
use super::outcome::{AuthResult, Decision, HookFailure, Outcome};
use super::params::{self, ParamError};
use super::proxy::{ProxyParse, parse_proxy_header};
use super::reply::{encode_lines, push_line};
use super::{Config, Envelope, Peer, Reply, Session, TlsInfo};

/// Misuse of the engine's API by the driver (never caused by the peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `handle_decision` was called with no hook call pending.
    #[error("no decision is pending")]
    NoDecisionPending,
    /// Input was fed after the engine returned [`Action::Close`].
    #[error("the connection is closed")]
    Closed,
    /// `handle_tls_established` without a pending [`Action::StartTls`].
    #[error("no TLS handshake is pending")]
    NoTlsPending,
}

/// A hook call the engine is waiting for (aiosmtpd's `handle_*` hooks). The
/// application answers with [`Connection::handle_decision`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ask {
    /// `HELO hostname`.
    Helo {
        /// The client's name.
        hostname: String,
    },
    /// `EHLO hostname`. The hook may edit `extensions` (the lines after the first,
    /// without codes, e.g. `SIZE 33554432`, `8BITMIME`, `HELP`).
    Ehlo {
        /// The client's name.
        hostname: String,
        /// The extension lines to advertise.
        extensions: Vec<String>,
    },
    /// `MAIL FROM:`.
    Mail {
        /// The reverse path (`<>` for the null path).
        address: String,
        /// The parameters, uppercased.
        options: Vec<String>,
    },
    /// `RCPT TO:`.
    Rcpt {
        /// The forward path.
        address: String,
        /// The parameters, uppercased (always empty: aiosmtpd accepts none).
        options: Vec<String>,
    },
    /// The message is complete (`Envelope::content` holds it).
    Data,
    /// A valid PROXY header arrived (`session.proxy_data`): accept it
    /// (`Outcome::Default`/`Accept`: the greeting follows), or refuse it
    /// (`Outcome::Reply(r)`: `r` is sent and the connection closes).
    Proxy,
    /// LMTP: the message is complete; answer with one outcome per recipient
    /// ([`Decision::Recipients`]) or one for all.
    LmtpData,
    /// `RSET` (the envelope is already reset).
    Rset,
    /// `NOOP [arg]`.
    Noop {
        /// The argument, if any.
        arg: Option<String>,
    },
    /// `QUIT`.
    Quit,
    /// `VRFY address`.
    Vrfy {
        /// The parsed address.
        address: String,
    },
    /// `AUTH PLAIN` or `AUTH LOGIN` credentials to check. Answer with
    /// [`Decision::Auth`] (or `Outcome::Accept` = success, `Outcome::Reply` =
    /// failure with that reply, `Outcome::Default` = failure).
    Auth {
        /// `PLAIN` or `LOGIN`.
        mechanism: String,
        /// The authentication identity.
        login: Vec<u8>,
        /// The password.
        password: Vec<u8>,
    },
    /// One step of a custom SASL mechanism: answer with
    /// [`AuthResult::Challenge`] to continue, or success/failure.
    AuthStep {
        /// The mechanism (uppercase).
        mechanism: String,
        /// 0 for the AUTH command, then 1, 2, ... for each client response.
        step: u32,
        /// The decoded client response (the initial response at step 0, if any).
        response: Option<Vec<u8>>,
    },
}

/// A pending hook call with the state a hook may read and change.
#[derive(Debug)]
pub struct HookCall<'a> {
    /// What is asked.
    pub ask: &'a mut Ask,
    /// The connection's session.
    pub session: &'a mut Session,
    /// The current transaction.
    pub envelope: &'a mut Envelope,
}

/// A piece of the message body (after dot-unstuffing) with the state it belongs to.
#[derive(Debug)]
pub struct BodyChunk<'a> {
    /// The bytes.
    pub chunk: &'a [u8],
    /// Where `chunk` starts in the message (0 for the first chunk of a message).
    pub offset: usize,
    /// The connection's session.
    pub session: &'a mut Session,
    /// The current transaction; buffer the chunk into `envelope.content` to keep it.
    pub envelope: &'a mut Envelope,
}

/// What the driver must do next. Drain with [`Connection::poll_action`] after
/// every input until it returns `None`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action<'a> {
    /// Write these bytes (all replies produced so far, coalesced).
    Send(&'a [u8]),
    /// Deliver a body chunk (default: append it to `envelope.content`).
    Body(BodyChunk<'a>),
    /// Ask the application, then call [`Connection::handle_decision`]. Returned
    /// again until answered.
    Hook(HookCall<'a>),
    /// The `220 Ready to start TLS` reply has been sent: run the server-side TLS
    /// handshake on the stream, then call [`Connection::handle_tls_established`]
    /// (or close the connection if it fails). Bytes received before the handshake
    /// were discarded.
    StartTls,
    /// Close the connection. Always the last action.
    Close,
}

enum Mode {
    /// Waiting for the PROXY protocol header.
    Proxy,
    /// Reading command lines; `discarding` while skipping an over-long line.
    Command { discarding: bool },
    /// Reading a message body.
    Data(DataDecoder),
    /// Reading an AUTH response line.
    Auth(AuthWait),
}

/// What an AUTH response line answers.
#[derive(Clone, Debug)]
enum AuthWait {
    Plain,
    LoginUser,
    LoginPassword(Vec<u8>),
    Custom { mechanism: String, step: u32 },
}

/// The commands allowed before STARTTLS when it is required (aiosmtpd's set).
/// LHLO is LMTP's EHLO (aiosmtpd blocks it, so LMTP with required STARTTLS could
/// never start).
const ALLOWED_BEFORE_STARTTLS: [&[u8]; 5] = [b"NOOP", b"EHLO", b"LHLO", b"STARTTLS", b"QUIT"];

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
    session: Session,
    envelope: Envelope,
    input: Vec<u8>,
    input_pos: usize,
    output: Vec<u8>,
    output_taken: bool,
    body: Vec<u8>,
    body_taken: bool,
    body_offset: usize,
    mode: Mode,
    pending: Option<Ask>,
    starttls_queued: bool,
    awaiting_tls: bool,
    closing: bool,
    closed: bool,
    peer_closed: bool,
    deadline: Instant,
    bogus_budget: u32,
    call_counts: Vec<(Vec<u8>, u32)>,
    /// Cleared strings kept for reuse (addresses, host names, parameters, EHLO
    /// lines), so that the steady path allocates nothing per command.
    spare: Vec<String>,
    /// An empty list kept for reuse (MAIL/RCPT parameters).
    spare_list: Vec<String>,
    /// The EHLO extension list, kept for reuse.
    spare_extensions: Vec<String>,
}

/// At most this many spare strings are kept per connection.
const SPARE_STRINGS: usize = 32;
/// Spare strings larger than this are dropped rather than kept.
const SPARE_STRING_CAPACITY: usize = 1024;
/// A body buffer larger than this is freed after its transaction instead of
/// being reused for the next one.
const KEEP_CONTENT_CAPACITY: usize = 1 << 20;

impl Connection {
    /// A new connection from `peer`; queues the `220` greeting.
    pub fn new(config: Arc<Config>, peer: Peer, now: Instant) -> Self {
        let mut conn = Connection {
            session: Session::new(peer),
            envelope: Envelope::default(),
            input: Vec::new(),
            input_pos: 0,
            output: Vec::with_capacity(256),
            output_taken: false,
            body: Vec::new(),
            body_taken: false,
            body_offset: 0,
            mode: Mode::Command { discarding: false },
            pending: None,
            starttls_queued: false,
            awaiting_tls: false,
            closing: false,
            closed: false,
            peer_closed: false,
            deadline: now + config.proxy_protocol_timeout.unwrap_or(config.timeout),
            bogus_budget: config.bogus_limit,
            call_counts: Vec::new(),
            spare: Vec::new(),
            spare_list: Vec::new(),
            spare_extensions: Vec::new(),
            config,
        };
        if conn.config.proxy_protocol_timeout.is_some() {
            // No greeting until a PROXY header has been accepted.
            conn.mode = Mode::Proxy;
        } else {
            conn.push_greeting();
        }
        conn
    }

    fn push_greeting(&mut self) {
        push_line(
            220,
            b' ',
            &[
                self.config.hostname.as_bytes(),
                b" ",
                self.config.ident.as_bytes(),
            ],
            &mut self.output,
        );
    }

    /// Marks the connection as TLS from the start (implicit TLS, SMTPS). Call it
    /// right after [`Connection::new`].
    pub fn with_tls(mut self, info: TlsInfo) -> Self {
        self.session.tls = Some(info);
        self
    }

    /// The TLS handshake that [`Action::StartTls`] asked for completed: the SMTP
    /// state is reset as RFC 3207 requires (a new session that keeps only the
    /// peer; a new envelope) and TLS counts from now on.
    pub fn handle_tls_established(&mut self, now: Instant, info: TlsInfo) -> Result<(), Error> {
        self.retire();
        if !self.awaiting_tls {
            return Err(Error::NoTlsPending);
        }
        self.awaiting_tls = false;
        let mut session = Session::new(self.session.peer.clone());
        session.tls = Some(info);
        session.proxy_data = self.session.proxy_data.take();
        self.session = session;
        self.reset_envelope();
        self.mode = Mode::Command { discarding: false };
        self.input.clear();
        self.input_pos = 0;
        self.deadline = now + self.config.timeout;
        self.process(now);
        Ok(())
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

    /// True once [`Action::Close`] has been returned.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Feeds bytes received from the peer, split anywhere.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        self.retire();
        if self.closed {
            return Err(Error::Closed);
        }
        if self.closing || self.starttls_queued || self.awaiting_tls {
            // After STARTTLS, plaintext must never reach the SMTP layer.
            return Ok(());
        }
        if self.input_pos == self.input.len() {
            // Nothing buffered: work on the caller's bytes and keep only what is
            // left over (saves a copy of every body byte).
            self.input.clear();
            self.input_pos = 0;
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
        if self.closed {
            return;
        }
        self.peer_closed = true;
        self.process(now);
    }

    /// The deadline from [`Connection::poll_timeout`] passed: the client gets
    /// `421` and the connection closes.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.retire();
        if self.closing || self.closed || self.pending.is_some() || now < self.deadline {
            return;
        }
        if matches!(self.mode, Mode::Proxy) {
            // aiosmtpd closes silently when the PROXY header does not come in time.
            self.closing = true;
            return;
        }
        let text = format!("4.4.2 {} Error: timeout exceeded", self.config.hostname);
        self.push(421, &text);
        self.closing = true;
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
        conn.output.clear();
        let text = format!(
            "4.7.0 {} Too many connections, try again later",
            conn.config.hostname
        );
        conn.push(421, &text);
        conn.closing = true;
        conn
    }

    /// The pending hook did not answer within [`Config::hook_timeout`]: the
    /// client gets `421` and the connection closes (the transaction's state is
    /// unknown, so it cannot go on).
    pub fn handle_hook_timeout(&mut self, _now: Instant) {
        self.retire();
        if self.closing || self.closed || self.pending.take().is_none() {
            return;
        }
        let text = format!(
            "4.3.0 {} Error: handler timed out, closing transmission channel",
            self.config.hostname
        );
        self.push(421, &text);
        self.closing = true;
    }

    /// The server is shutting down: the client gets `421` and the connection closes.
    pub fn handle_shutdown(&mut self, _now: Instant) {
        self.retire();
        if self.closing || self.closed {
            return;
        }
        self.pending = None;
        let text = format!(
            "{} Service not available, closing transmission channel",
            self.config.hostname
        );
        self.push(421, &text);
        self.closing = true;
    }

    /// When [`Connection::handle_timeout`] must be called, if no input comes first.
    /// `None` while a hook call is pending or the connection is closing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closing || self.closed || self.pending.is_some() || self.awaiting_tls {
            None
        } else {
            Some(self.deadline)
        }
    }

    /// Answers the pending [`Action::Hook`].
    pub fn handle_decision(&mut self, now: Instant, decision: Decision) -> Result<(), Error> {
        self.retire();
        let ask = self.pending.take().ok_or(Error::NoDecisionPending)?;
        if matches!(ask, Ask::Auth { .. } | Ask::AuthStep { .. }) {
            let result = match decision {
                Decision::Auth(r) => r,
                Decision::Outcome(Outcome::Accept(r)) => AuthResult::Success(Some(r)),
                Decision::Outcome(Outcome::Reply(r)) => AuthResult::Failure(Some(r)),
                Decision::Outcome(Outcome::Default) => AuthResult::Failure(None),
                Decision::Failed(f) => {
                    self.push_failure(&f);
                    self.deadline = now + self.config.timeout;
                    self.process(now);
                    return Ok(());
                }
                Decision::Recipients(_) => AuthResult::Failure(None),
            };
            self.finish_auth(ask, result);
            self.deadline = now + self.config.timeout;
            self.process(now);
            return Ok(());
        }
        if matches!(ask, Ask::Proxy) {
            match decision {
                Decision::Outcome(Outcome::Default | Outcome::Accept(_))
                | Decision::Auth(AuthResult::Success(_)) => {
                    self.mode = Mode::Command { discarding: false };
                    self.push_greeting();
                }
                Decision::Outcome(Outcome::Reply(r)) => {
                    self.push_reply(&r);
                    self.closing = true;
                }
                _ => self.closing = true,
            }
            self.deadline = now + self.config.timeout;
            self.process(now);
            return Ok(());
        }
        if matches!(ask, Ask::LmtpData) {
            self.finish_lmtp_data(decision);
            self.deadline = now + self.config.timeout;
            self.process(now);
            return Ok(());
        }
        let outcome = match decision {
            Decision::Outcome(o) => o,
            Decision::Recipients(v) => v.into_iter().next().unwrap_or_default(),
            Decision::Auth(AuthResult::Success(r)) => r.map_or(Outcome::Default, Outcome::Accept),
            Decision::Auth(AuthResult::Failure(Some(r))) => Outcome::Reply(r),
            Decision::Auth(_) => Outcome::Default,
            Decision::Failed(f) => {
                self.push_failure(&f);
                if matches!(ask, Ask::Data) {
                    self.reset_envelope();
                }
                self.recycle_ask(ask);
                self.deadline = now + self.config.timeout;
                self.process(now);
                return Ok(());
            }
        };
        let custom = match outcome {
            Outcome::Reply(r) => {
                self.push_reply(&r);
                if matches!(ask, Ask::Data) {
                    self.reset_envelope();
                }
                if matches!(ask, Ask::Quit) {
                    self.closing = true;
                }
                self.recycle_ask(ask);
                self.deadline = now + self.config.timeout;
                self.process(now);
                return Ok(());
            }
            Outcome::Accept(r) => Some(r),
            Outcome::Default => None,
        };
        let reply = |default: (u16, &str), out: &mut Vec<u8>| match &custom {
            Some(r) => r.encode(out),
            None => encode_lines(default.0, default.1, out),
        };
        match ask {
            Ask::Helo { hostname } => {
                if let Some(old) = self.session.host_name.replace(hostname) {
                    keep_spare(&mut self.spare, old);
                }
                reply((250, &self.config.hostname), &mut self.output);
            }
            Ask::Ehlo {
                hostname,
                extensions,
            } => {
                if let Some(old) = self.session.host_name.replace(hostname) {
                    keep_spare(&mut self.spare, old);
                }
                let sep = if extensions.is_empty() { b' ' } else { b'-' };
                push_line(
                    250,
                    sep,
                    &[self.config.hostname.as_bytes()],
                    &mut self.output,
                );
                let n = extensions.len();
                for (i, ext) in extensions.iter().enumerate() {
                    let sep = if i + 1 == n { b' ' } else { b'-' };
                    push_line(250, sep, &[ext.as_bytes()], &mut self.output);
                }
                self.recycle_extensions(extensions);
            }
            Ask::Mail {
                address,
                mut options,
            } => {
                if let Some(old) = self.envelope.mail_from.replace(address) {
                    keep_spare(&mut self.spare, old);
                }
                self.envelope.mail_options.append(&mut options);
                self.recycle_list(options);
                reply((250, "OK"), &mut self.output);
            }
            Ask::Rcpt {
                address,
                mut options,
            } => {
                self.envelope.rcpt_tos.push(address);
                self.envelope.rcpt_options.append(&mut options);
                self.recycle_list(options);
                reply((250, "OK"), &mut self.output);
            }
            Ask::Data => {
                reply((250, "OK"), &mut self.output);
                self.reset_envelope();
            }
            Ask::Rset => reply((250, "OK"), &mut self.output),
            Ask::Noop { arg } => {
                if let Some(arg) = arg {
                    keep_spare(&mut self.spare, arg);
                }
                reply((250, "OK"), &mut self.output)
            }
            Ask::Quit => {
                reply((221, "Bye"), &mut self.output);
                self.closing = true;
            }
            Ask::Vrfy { address } => {
                keep_spare(&mut self.spare, address);
                reply(
                    (
                        252,
                        "Cannot VRFY user, but will accept message and attempt delivery",
                    ),
                    &mut self.output,
                )
            }
            Ask::Auth { .. } | Ask::AuthStep { .. } | Ask::LmtpData | Ask::Proxy => {}
        }
        self.deadline = now + self.config.timeout;
        self.process(now);
        Ok(())
    }

    /// The next thing the driver must do. Bytes returned by [`Action::Send`] and
    /// [`Action::Body`] count as handled once the next method is called.
    pub fn poll_action(&mut self) -> Option<Action<'_>> {
        self.retire();
        if self.closed {
            return None;
        }
        if !self.body.is_empty() {
            self.body_taken = true;
            let offset = self.body_offset;
            self.body_offset += self.body.len();
            return Some(Action::Body(BodyChunk {
                chunk: &self.body,
                offset,
                session: &mut self.session,
                envelope: &mut self.envelope,
            }));
        }
        if let Some(ask) = self.pending.as_mut() {
            return Some(Action::Hook(HookCall {
                ask,
                session: &mut self.session,
                envelope: &mut self.envelope,
            }));
        }
        if !self.output.is_empty() {
            self.output_taken = true;
            return Some(Action::Send(&self.output));
        }
        if self.starttls_queued {
            self.starttls_queued = false;
            self.awaiting_tls = true;
            return Some(Action::StartTls);
        }
        if self.closing {
            self.closed = true;
            return Some(Action::Close);
        }
        None
    }

    fn retire(&mut self) {
        if self.output_taken {
            self.output.clear();
            self.output_taken = false;
        }
        if self.body_taken {
            self.body.clear();
            self.body_taken = false;
        }
    }

    fn blocked(&self) -> bool {
        self.pending.is_some()
            || self.closing
            || self.closed
            || self.starttls_queued
            || self.awaiting_tls
    }

    /// Consumes buffered input until a hook call is pending, the connection is
    /// closing, or more bytes are needed.
    fn process(&mut self, now: Instant) {
        let input = std::mem::take(&mut self.input);
        let consumed = self.consume(now, &input[self.input_pos..]);
        self.input_pos += consumed;
        self.input = input;
        if self.input_pos >= self.input.len() {
            self.input.clear();
            self.input_pos = 0;
        } else if self.input_pos > self.input.len() / 2 {
            self.input.drain(..self.input_pos);
            self.input_pos = 0;
        }
    }

    /// Consumes `input` until a hook call is pending, the connection is closing,
    /// or more bytes are needed; returns how many bytes were used.
    fn consume(&mut self, now: Instant, input: &[u8]) -> usize {
        let mut pos = 0;
        while !self.blocked() && pos < input.len() {
            let avail = &input[pos..];
            match &mut self.mode {
                Mode::Proxy => match parse_proxy_header(avail) {
                    ProxyParse::Partial => break,
                    ProxyParse::Done { data, consumed } => {
                        pos += consumed;
                        if data.is_valid() {
                            self.session.proxy_data = Some(data);
                            self.pending = Some(Ask::Proxy);
                        } else {
                            // aiosmtpd closes silently on an invalid header.
                            self.closing = true;
                        }
                    }
                },
                Mode::Auth(_) => match memchr::memchr(b'\n', avail) {
                    Some(i) if i > self.config.line_length_limit => {
                        pos += i + 1;
                        self.mode = Mode::Command { discarding: false };
                        self.push(500, "Command line too long");
                    }
                    Some(i) => {
                        pos += i + 1;
                        self.auth_response(now, &avail[..i]);
                    }
                    None => {
                        if avail.len() > self.config.line_length_limit {
                            self.mode = Mode::Command { discarding: true };
                            pos = input.len();
                        }
                        break;
                    }
                },
                Mode::Command { discarding } => match memchr::memchr(b'\n', avail) {
                    Some(i) => {
                        pos += i + 1;
                        if *discarding || i > self.config.line_length_limit {
                            self.mode = Mode::Command { discarding: false };
                            self.push(500, "Command line too long");
                        } else {
                            self.dispatch(now, &avail[..i]);
                        }
                    }
                    None => {
                        if *discarding || avail.len() > self.config.line_length_limit {
                            *discarding = true;
                            pos = input.len();
                        }
                        break;
                    }
                },
                Mode::Data(decoder) => {
                    let had_error = decoder.error().is_some();
                    let lines_before = decoder.lines();
                    let progress = decoder.decode(avail, &mut self.body);
                    let completed_lines = decoder.lines() > lines_before;
                    if !had_error && decoder.error().is_some() {
                        self.envelope.content.clear();
                    }
                    pos += progress.consumed;
                    if completed_lines {
                        self.deadline = now + self.config.timeout;
                    }
                    if progress.finished {
                        let error = decoder.error();
                        self.mode = Mode::Command { discarding: false };
                        match error {
                            Some(DataError::LineTooLong) => {
                                self.push(500, "Line too long (see RFC5321 4.5.3.1.6)");
                                self.reset_envelope();
                            }
                            Some(DataError::TooMuchData) => {
                                self.push(552, "Error: Too much mail data");
                                self.reset_envelope();
                            }
                            None if self.config.lmtp => self.pending = Some(Ask::LmtpData),
                            None => self.pending = Some(Ask::Data),
                        }
                    } else {
                        break;
                    }
                }
            }
        }
        if self.starttls_queued || self.awaiting_tls {
            // RFC 3207 4.2: anything pipelined after STARTTLS is discarded.
            pos = input.len();
        }
        if self.peer_closed && !self.blocked() {
            self.closing = true;
        }
        pos
    }

    fn push(&mut self, code: u16, text: &str) {
        push_line(code, b' ', &[text.as_bytes()], &mut self.output);
    }

    fn push_reply(&mut self, reply: &Reply) {
        reply.encode(&mut self.output);
    }

    fn push_failure(&mut self, f: &HookFailure) {
        let text = format!("Error: ({}) {}", f.kind, f.message);
        encode_lines(500, &text, &mut self.output);
    }

    /// aiosmtpd's `_handle_client` checks for one command line (without its LF).
    fn dispatch(&mut self, now: Instant, line: &[u8]) {
        let line = command::trim_line_end(line);
        if line.is_empty() {
            return self.push(500, "Error: bad syntax");
        }
        let raw = command::split(line);
        if !raw.word.is_ascii() {
            return self.push(500, "Error: bad syntax");
        }
        // Uppercased on the stack: verbs are short (a long bogus word allocates).
        let mut upper = [0u8; 16];
        let long_upper;
        let word: &[u8] = if !raw.word.iter().any(u8::is_ascii_lowercase) {
            raw.word
        } else if let Some(buf) = upper.get_mut(..raw.word.len()) {
            buf.copy_from_slice(raw.word);
            buf.make_ascii_uppercase();
            buf
        } else {
            long_upper = raw.word.to_ascii_uppercase();
            &long_upper
        };
        let arg: Option<Cow<'_, str>> = match raw.arg {
            None => None,
            Some(a) if self.config.enable_smtputf8 => Some(String::from_utf8_lossy(a)),
            Some(a) => match std::str::from_utf8(a) {
                Ok(s) if a.is_ascii() => Some(Cow::Borrowed(s)),
                _ => return self.push(500, "Error: strict ASCII mode"),
            },
        };
        let limit = if self.session.extended_smtp && word == b"MAIL" {
            self.config.mail_command_limit()
        } else {
            self.config.command_size_limit
        };
        if line.len() > limit {
            return self.push(500, "Command line too long");
        }
        if self.config.starttls
            && self.config.require_starttls
            && !self.is_tls()
            && !ALLOWED_BEFORE_STARTTLS.contains(&word)
        {
            return self.push(530, "Must issue a STARTTLS command first");
        }
        if let Some(limits) = &self.config.command_call_limit {
            let budget = limits.limit_for(word);
            let used = match self.call_counts.iter_mut().find(|(w, _)| **w == *word) {
                Some((_, n)) => n,
                None => {
                    self.call_counts.push((word.to_vec(), 0));
                    &mut self.call_counts.last_mut().expect("just pushed").1
                }
            };
            if *used >= budget {
                push_line(
                    421,
                    b' ',
                    &[b"4.7.0 ", word, b" sent too many times"],
                    &mut self.output,
                );
                self.closing = true;
                return;
            }
            *used += 1;
        }
        let verb = match Verb::from_upper(word) {
            // LMTP: HELO and EHLO exist but are refused (aiosmtpd: no bogus count);
            // LHLO does not exist in SMTP.
            Some(Verb::Helo | Verb::Ehlo) if self.config.lmtp => {
                return push_line(
                    500,
                    b' ',
                    &[b"Error: command \"", word, b"\" not recognized"],
                    &mut self.output,
                );
            }
            Some(Verb::Lhlo) if !self.config.lmtp => None,
            v => v,
        };
        let Some(verb) = verb else {
            self.bogus_budget = self.bogus_budget.saturating_sub(1);
            if self.bogus_budget < 1 {
                self.push(502, "5.5.1 Too many unrecognized commands, goodbye.");
                self.closing = true;
            } else {
                push_line(
                    500,
                    b' ',
                    &[b"Error: command \"", word, b"\" not recognized"],
                    &mut self.output,
                );
            }
            return;
        };
        self.deadline = now + self.config.timeout;
        self.run(verb, arg.as_deref());
    }

    /// Empties the envelope (HELO, EHLO, RSET, after DATA), keeping its strings
    /// and buffers for reuse.
    fn reset_envelope(&mut self) {
        let Envelope {
            mail_from,
            mail_options,
            smtp_utf8,
            rcpt_tos,
            rcpt_options,
            content,
        } = &mut self.envelope;
        let spare = &mut self.spare;
        for s in mail_from
            .take()
            .into_iter()
            .chain(mail_options.drain(..))
            .chain(rcpt_tos.drain(..))
            .chain(rcpt_options.drain(..))
        {
            keep_spare(spare, s);
        }
        *smtp_utf8 = false;
        if content.capacity() > KEEP_CONTENT_CAPACITY {
            *content = Vec::new();
        } else {
            content.clear();
        }
    }

    /// A string holding `text`, reusing a spare allocation when there is one.
    fn take_string(&mut self, text: &str) -> String {
        let mut s = self.spare.pop().unwrap_or_default();
        s.push_str(text);
        s
    }

    /// Gives the strings of an answered (or refused) hook call back for reuse.
    fn recycle_ask(&mut self, ask: Ask) {
        match ask {
            Ask::Helo { hostname } => keep_spare(&mut self.spare, hostname),
            Ask::Ehlo {
                hostname,
                extensions,
            } => {
                keep_spare(&mut self.spare, hostname);
                self.recycle_extensions(extensions);
            }
            Ask::Mail { address, options } | Ask::Rcpt { address, options } => {
                keep_spare(&mut self.spare, address);
                self.recycle_list(options);
            }
            Ask::Noop { arg: Some(arg) } => keep_spare(&mut self.spare, arg),
            Ask::Vrfy { address } => keep_spare(&mut self.spare, address),
            _ => {}
        }
    }

    fn recycle_list(&mut self, mut list: Vec<String>) {
        for s in list.drain(..) {
            keep_spare(&mut self.spare, s);
        }
        if list.capacity() > self.spare_list.capacity() {
            self.spare_list = list;
        }
    }

    fn recycle_extensions(&mut self, mut list: Vec<String>) {
        for s in list.drain(..) {
            keep_spare(&mut self.spare, s);
        }
        self.spare_extensions = list;
    }

    /// aiosmtpd's parameter split (uppercased, on white space) into reused strings.
    fn split_options(&mut self, rest: &str) -> Vec<String> {
        if !rest.is_ascii() {
            return params::split_options(rest);
        }
        let mut words = rest.split(py_space).filter(|w| !w.is_empty()).peekable();
        if words.peek().is_none() {
            return Vec::new();
        }
        let mut list = std::mem::take(&mut self.spare_list);
        for word in words {
            let mut s = self.take_string(word);
            s.make_ascii_uppercase();
            list.push(s);
        }
        list
    }

    fn helo_needed(&mut self) -> bool {
        if self.session.host_name.is_none() {
            self.push(503, "Error: send HELO first");
            return true;
        }
        false
    }

    fn syntax_error(&mut self, verb: Verb) {
        if let Some((text, ext)) = verb.syntax() {
            let ext = if self.session.extended_smtp { ext } else { "" };
            push_line(
                501,
                b' ',
                &[b"Syntax: ", text.as_bytes(), ext.as_bytes()],
                &mut self.output,
            );
        }
    }

    fn run(&mut self, verb: Verb, arg: Option<&str>) {
        match verb {
            Verb::Helo => {
                let Some(hostname) = arg else {
                    return self.syntax_error(verb);
                };
                self.reset_envelope();
                self.session.extended_smtp = false;
                let hostname = self.take_string(hostname);
                self.pending = Some(Ask::Helo { hostname });
            }
            Verb::Ehlo | Verb::Lhlo => {
                let Some(hostname) = arg else {
                    // aiosmtpd's LHLO is its EHLO, syntax text included.
                    return self.syntax_error(Verb::Ehlo);
                };
                self.reset_envelope();
                self.session.extended_smtp = true;
                let mut extensions = std::mem::take(&mut self.spare_extensions);
                if let Some(limit) = self.config.data_size_limit {
                    let mut line = self.take_string("SIZE ");
                    let _ = write!(line, "{limit}");
                    extensions.push(line);
                }
                extensions.push(self.take_string("8BITMIME"));
                if self.config.enable_smtputf8 {
                    extensions.push(self.take_string("SMTPUTF8"));
                }
                if self.config.starttls && !self.is_tls() {
                    extensions.push(self.take_string("STARTTLS"));
                }
                if self.auth_offered() {
                    let mut line = self.take_string("AUTH");
                    push_sorted_words(&mut line, &self.config.auth_mechanisms);
                    extensions.push(line);
                }
                extensions.push(self.take_string("HELP"));
                let hostname = self.take_string(hostname);
                self.pending = Some(Ask::Ehlo {
                    hostname,
                    extensions,
                });
            }
            Verb::Mail => self.run_mail(arg),
            Verb::Rcpt => self.run_rcpt(arg),
            Verb::Data => {
                if self.helo_needed() || self.auth_needed() {
                    return;
                }
                if self.envelope.rcpt_tos.is_empty() {
                    return self.push(503, "Error: need RCPT command");
                }
                if arg.is_some() {
                    return self.syntax_error(verb);
                }
                self.push(354, "End data with <CR><LF>.<CR><LF>");
                self.envelope.content.clear();
                self.body_offset = 0;
                self.mode = Mode::Data(DataDecoder::new(
                    self.config.data_size_limit,
                    self.config.line_length_limit,
                ));
            }
            Verb::Rset => {
                if arg.is_some() {
                    return self.syntax_error(verb);
                }
                self.reset_envelope();
                self.pending = Some(Ask::Rset);
            }
            Verb::Noop => {
                let arg = arg.map(|a| self.take_string(a));
                self.pending = Some(Ask::Noop { arg });
            }
            Verb::Quit => {
                if arg.is_some() {
                    return self.syntax_error(verb);
                }
                self.pending = Some(Ask::Quit);
            }
            Verb::Vrfy => {
                if self.auth_needed() {
                    return;
                }
                let Some(arg) = arg else {
                    return self.syntax_error(verb);
                };
                let parsed = match parse_path_checked(arg) {
                    Ok(p) => p,
                    // Python raised something other than HeaderParseError: aiosmtpd's
                    // generic exception reply.
                    Err(exc) => return self.push(500, &exc.to_string()),
                };
                match parsed {
                    ParsedPath::Address { addr, .. } if !self.local_part_too_long(&addr) => {
                        self.pending = Some(Ask::Vrfy { address: addr });
                    }
                    ParsedPath::Empty => {
                        self.pending = Some(Ask::Vrfy {
                            address: String::new(),
                        })
                    }
                    _ => {
                        let text = format!("Could not VRFY {arg}");
                        self.push(502, &text);
                    }
                }
            }
            Verb::Expn => self.push(502, "EXPN not implemented"),
            Verb::Help => self.run_help(arg),
            Verb::StartTls => {
                if arg.is_some() {
                    return self.syntax_error(verb);
                }
                if !self.config.starttls {
                    return self.push(454, "TLS not available");
                }
                if self.is_tls() {
                    // aiosmtpd answers 220 and breaks the connection with a nested
                    // handshake; RFC 3207 forbids a second STARTTLS.
                    return self.push(554, "5.5.1 Error: TLS already active");
                }
                self.push(220, "Ready to start TLS");
                self.starttls_queued = true;
            }
            Verb::Auth => self.run_auth(arg),
        }
    }

    fn local_part_too_long(&self, addr: &str) -> bool {
        let local = addr.rsplit_once('@').map_or("", |(l, _)| l);
        self.config
            .local_part_limit
            .is_some_and(|limit| limit > 0 && local.chars().count() > limit)
    }

    /// aiosmtpd's `_strip_command_keyword`.
    fn strip_keyword<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
        let head = arg.get(..keyword.len())?;
        if head.eq_ignore_ascii_case(keyword) {
            Some(command::py_strip(&arg[keyword.len()..]))
        } else {
            None
        }
    }

    /// Parses a MAIL/RCPT path; on error pushes the reply and returns `None`.
    fn parse_command_path(
        &mut self,
        verb: Verb,
        arg: Option<&str>,
        keyword: &str,
    ) -> Option<(String, Vec<String>)> {
        let Some(rest) = arg.and_then(|a| Self::strip_keyword(a, keyword)) else {
            self.syntax_error(verb);
            return None;
        };
        if let Some((addr, params)) = parse_plain_path(rest)
            && !self.local_part_too_long(addr)
            && (self.session.extended_smtp || params.is_empty())
        {
            let addr = self.take_string(addr);
            return Some((addr, self.split_options(params)));
        }
        let parsed = match parse_path_checked(rest) {
            Ok(p) => p,
            Err(exc) => {
                self.push(500, &exc.to_string());
                return None;
            }
        };
        let (addr, params) = match parsed {
            ParsedPath::Malformed => {
                self.push(553, "5.1.3 Error: malformed address");
                return None;
            }
            ParsedPath::Empty => {
                self.syntax_error(verb);
                return None;
            }
            ParsedPath::Address { addr, rest } => (addr, rest),
        };
        if self.local_part_too_long(&addr) {
            self.push(553, "5.1.3 Error: malformed address");
            return None;
        }
        if addr.is_empty() || (!self.session.extended_smtp && !params.is_empty()) {
            self.syntax_error(verb);
            return None;
        }
        Some((addr, self.split_options(params)))
    }

    fn run_mail(&mut self, arg: Option<&str>) {
        if self.helo_needed() || self.auth_needed() {
            return;
        }
        let Some((address, options)) = self.parse_command_path(Verb::Mail, arg, "FROM:") else {
            return;
        };
        if self.envelope.mail_from.is_some() {
            return self.push(503, "Error: nested MAIL command");
        }
        let checked = params::check_mail(
            &options,
            self.config.enable_smtputf8,
            self.config.data_size_limit,
            &mut self.envelope.smtp_utf8,
        );
        match checked {
            Ok(()) => self.pending = Some(Ask::Mail { address, options }),
            Err(ParamError::Syntax) => self.syntax_error(Verb::Mail),
            Err(ParamError::Body) => {
                self.push(501, "Error: BODY can only be one of 7BIT, 8BITMIME")
            }
            Err(ParamError::SmtpUtf8Argument) => {
                self.push(501, "Error: SMTPUTF8 takes no arguments")
            }
            Err(ParamError::SmtpUtf8Disabled) => self.push(501, "Error: SMTPUTF8 disabled"),
            Err(ParamError::TooBig) => self.push(
                552,
                "Error: message size exceeds fixed maximum message size",
            ),
            Err(ParamError::Unknown) => self.push(
                555,
                "MAIL FROM parameters not recognized or not implemented",
            ),
        }
    }

    fn run_rcpt(&mut self, arg: Option<&str>) {
        if self.helo_needed() || self.auth_needed() {
            return;
        }
        if self.envelope.mail_from.is_none() {
            return self.push(503, "Error: need MAIL command");
        }
        let Some((address, options)) = self.parse_command_path(Verb::Rcpt, arg, "TO:") else {
            return;
        };
        match params::check_rcpt(&options) {
            Ok(()) => self.pending = Some(Ask::Rcpt { address, options }),
            Err(ParamError::Unknown) => {
                self.push(555, "RCPT TO parameters not recognized or not implemented")
            }
            Err(_) => self.syntax_error(Verb::Rcpt),
        }
    }

    fn run_help(&mut self, arg: Option<&str>) {
        if self.auth_needed() {
            return;
        }
        let mut code = 250;
        if let Some(arg) = arg {
            let upper = arg.to_uppercase();
            let starttls = self.config.starttls;
            let lmtp = self.config.lmtp;
            if let Some((text, ext)) = Verb::from_upper(upper.as_bytes())
                .filter(|v| *v != Verb::StartTls || starttls)
                .filter(|v| match v {
                    Verb::Lhlo => lmtp,
                    Verb::Helo | Verb::Ehlo => !lmtp,
                    _ => true,
                })
                .and_then(Verb::syntax)
            {
                let ext = if self.session.extended_smtp { ext } else { "" };
                push_line(
                    250,
                    b' ',
                    &[b"Syntax: ", text.as_bytes(), ext.as_bytes()],
                    &mut self.output,
                );
                return;
            }
            code = 501;
        }
        let list = match (self.config.lmtp, self.config.starttls) {
            (false, false) => HELP_LIST,
            (false, true) => HELP_LIST_TLS,
            (true, false) => HELP_LIST_LMTP,
            (true, true) => HELP_LIST_LMTP_TLS,
        };
        push_line(
            code,
            b' ',
            &[b"Supported commands: ", list.as_bytes()],
            &mut self.output,
        );
    }

    /// RFC 2033: one reply per accepted recipient after an LMTP message (aiosmtpd
    /// sends one for all, issue #517).
    fn finish_lmtp_data(&mut self, decision: Decision) {
        let n = self.envelope.rcpt_tos.len().max(1);
        match decision {
            Decision::Failed(f) => {
                for _ in 0..n {
                    self.push_failure(&f);
                }
            }
            Decision::Recipients(outcomes) => {
                for i in 0..n {
                    let o = outcomes.get(i).or(outcomes.last());
                    self.push_data_outcome(o);
                }
            }
            Decision::Outcome(o) => {
                for _ in 0..n {
                    self.push_data_outcome(Some(&o));
                }
            }
            Decision::Auth(_) => {
                for _ in 0..n {
                    self.push(250, "OK");
                }
            }
        }
        self.reset_envelope();
    }

    fn push_data_outcome(&mut self, outcome: Option<&Outcome>) {
        match outcome {
            Some(Outcome::Accept(r) | Outcome::Reply(r)) => self.push_reply(r),
            Some(Outcome::Default) | None => self.push(250, "OK"),
        }
    }

    /// aiosmtpd's `check_auth_needed`.
    fn auth_needed(&mut self) -> bool {
        if self.config.auth_required && !self.session.authenticated {
            self.push(530, "5.7.0 Authentication required");
            return true;
        }
        false
    }

    fn auth_offered(&self) -> bool {
        !self.config.auth_mechanisms.is_empty() && (!self.config.auth_require_tls || self.is_tls())
    }

    /// `AUTH mechanism [initial-response]` (aiosmtpd's `smtp_AUTH`).
    fn run_auth(&mut self, arg: Option<&str>) {
        if self.session.host_name.is_none() {
            return self.push(503, "Error: send EHLO first");
        }
        if !self.session.extended_smtp {
            return self.push(500, "Error: command 'AUTH' not recognized");
        }
        if self.config.auth_require_tls && !self.is_tls() {
            return self.push(
                538,
                "5.7.11 Encryption required for requested authentication mechanism",
            );
        }
        if self.session.authenticated {
            return self.push(503, "Already authenticated");
        }
        let Some(arg) = arg else {
            return self.push(501, "Not enough value");
        };
        let args: Vec<&str> = arg.split_whitespace().collect();
        if args.len() > 2 {
            return self.push(501, "Too many values");
        }
        let Some(first) = args.first() else {
            return self.push(501, "Not enough value");
        };
        // RFC 4954: mechanism names are case-insensitive (aiosmtpd: case-sensitive).
        let mechanism = first.to_ascii_uppercase();
        if !self.config.auth_mechanisms.contains(&mechanism) {
            return self.push(504, "5.5.4 Unrecognized authentication type");
        }
        let initial = match args.get(1) {
            None => None,
            Some(text) => match auth::decode_initial(text.as_bytes()) {
                Some(bytes) => Some(bytes),
                None => return self.push(501, "5.5.2 Can't decode base64"),
            },
        };
        match (mechanism.as_str(), initial) {
            ("PLAIN", Some(decoded)) => self.auth_plain(decoded),
            ("PLAIN", None) => {
                self.push(334, "");
                self.mode = Mode::Auth(AuthWait::Plain);
            }
            ("LOGIN", Some(user)) => {
                self.push(334, auth::LOGIN_PASSWORD_CHALLENGE);
                self.mode = Mode::Auth(AuthWait::LoginPassword(user));
            }
            ("LOGIN", None) => {
                self.push(334, auth::LOGIN_USERNAME_CHALLENGE);
                self.mode = Mode::Auth(AuthWait::LoginUser);
            }
            (_, response) => {
                self.pending = Some(Ask::AuthStep {
                    mechanism,
                    step: 0,
                    response,
                });
            }
        }
    }

    fn auth_plain(&mut self, decoded: Vec<u8>) {
        match auth::split_plain(&decoded) {
            Some((login, password)) => {
                self.pending = Some(Ask::Auth {
                    mechanism: "PLAIN".to_owned(),
                    login,
                    password,
                });
            }
            None => self.push(501, "5.5.2 Can't split auth value"),
        }
    }

    /// A client response line during AUTH (aiosmtpd's `challenge_auth`).
    fn auth_response(&mut self, now: Instant, line: &[u8]) {
        let Mode::Auth(wait) =
            std::mem::replace(&mut self.mode, Mode::Command { discarding: false })
        else {
            return;
        };
        self.deadline = now + self.config.timeout;
        let line = command::trim_python_ws(line);
        if line == b"*" {
            return self.push(501, "5.7.0 Auth aborted");
        }
        let Some(decoded) = auth::decode(line) else {
            return self.push(501, "5.5.2 Can't decode base64");
        };
        match wait {
            AuthWait::Plain => self.auth_plain(decoded),
            AuthWait::LoginUser => {
                self.push(334, auth::LOGIN_PASSWORD_CHALLENGE);
                self.mode = Mode::Auth(AuthWait::LoginPassword(decoded));
            }
            AuthWait::LoginPassword(login) => {
                self.pending = Some(Ask::Auth {
                    mechanism: "LOGIN".to_owned(),
                    login,
                    password: decoded,
                });
            }
            AuthWait::Custom { mechanism, step } => {
                self.pending = Some(Ask::AuthStep {
                    mechanism,
                    step,
                    response: Some(decoded),
                });
            }
        }
    }

    /// Applies an authenticator's answer to `Ask::Auth` / `Ask::AuthStep`.
    fn finish_auth(&mut self, ask: Ask, result: AuthResult) {
        let (mechanism, login, step) = match ask {
            Ask::Auth {
                mechanism, login, ..
            } => (mechanism, Some(login), None),
            Ask::AuthStep {
                mechanism, step, ..
            } => (mechanism, None, Some(step)),
            _ => return,
        };
        match result {
            AuthResult::Success(reply) => {
                self.session.authenticated = true;
                self.session.auth_mechanism = Some(mechanism);
                if let Some(login) = login {
                    self.session.auth_identity = Some(String::from_utf8_lossy(&login).into_owned());
                }
                match reply {
                    Some(r) => self.push_reply(&r),
                    None => self.push(235, "2.7.0 Authentication successful"),
                }
            }
            AuthResult::Challenge(challenge) if step.is_some() => {
                let text = auth::encode(&challenge);
                self.push(334, &text);
                self.mode = Mode::Auth(AuthWait::Custom {
                    mechanism,
                    step: step.unwrap_or(0) + 1,
                });
            }
            AuthResult::Failure(Some(r)) => self.push_reply(&r),
            AuthResult::Failure(None) | AuthResult::Challenge(_) => {
                self.push(535, "5.7.8 Authentication credentials invalid")
            }
        }
    }
}

/// Keeps `s`, emptied, for reuse when the spare list has room and `s` is small.
fn keep_spare(spare: &mut Vec<String>, mut s: String) {
    if spare.len() < SPARE_STRINGS && s.capacity() <= SPARE_STRING_CAPACITY && s.capacity() > 0 {
        s.clear();
        spare.push(s);
    }
}

/// Appends ` word` for each of `words` in sorted order (duplicates kept), without
/// allocating.
fn push_sorted_words(out: &mut String, words: &[String]) {
    let mut last: Option<&str> = None;
    while let Some(next) = words
        .iter()
        .map(String::as_str)
        .filter(|w| last.is_none_or(|l| *w > l))
        .min()
    {
        for _ in words.iter().filter(|w| *w == next) {
            out.push(' ');
            out.push_str(next);
        }
        last = Some(next);
    }
}
