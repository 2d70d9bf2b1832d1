//! [`Proxy`]: relays every message to an upstream SMTP server, as aiosmtpd's
//! `Proxy`, and reports the upstream's answer.

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::commands::Data;
use lettre::transport::smtp::extension::{ClientId, Extension};
use lettre::transport::smtp::response::Response;

use crate::HandlerError;
use crate::proto::{Envelope, Outcome, Peer, Reply, Session};
use crate::server::{Handler, HookResult, default_server_hostname};

use super::blocking::BlockingPool;
use super::spool::{DEFAULT_SPOOL_THRESHOLD, SpoolFile};

/// Relays each received message to an upstream SMTP server, as aiosmtpd's
/// `Proxy(remote_hostname, remote_port)`, and answers the client with the
/// upstream's verdict.
///
/// The relayed message is the content as received with one header added, as
/// aiosmtpd adds it: `X-Peer: <client IP address>` followed by the message's
/// own line ending (CRLF, LF or CR), inserted before the first empty line (the
/// end of the header block) — or, when the message has no empty line, before
/// its last line. The envelope is relayed unchanged: `MAIL FROM` is the
/// envelope's `mail_from` (`<>` stays the null reverse path) and one `RCPT TO`
/// is sent per entry of `rcpt_tos`, in order.
///
/// # Replies
///
/// aiosmtpd's `Proxy` always answers `250 OK` and only logs refusals. This
/// handler answers with what the upstream said (see [`RelayReport::outcome`]):
///
/// - every recipient accepted: `250 OK`;
/// - some recipients refused, others accepted: a multi-line `250` naming the
///   refused ones, one per line, with the upstream's reply to each:
///
///   ```text
///   250-OK, but the upstream server refused 1 of 3 recipients:
///   250 <c@refused.example>: 550 5.1.1 No such user
///   ```
///
/// - no recipient accepted, or the upstream refused the sender or the message:
///   the upstream's own code and text (a transient refusal is preferred, so
///   that the client retries; `421` becomes `451`, since this server does not
///   close the connection). When the upstream cannot be reached or the
///   connection fails, `451 4.4.1 Cannot connect to the upstream server` or
///   `451 4.4.2 The connection to the upstream server failed`.
///
/// The per-recipient results are available through [`Proxy::relay`] and
/// [`Proxy::deliver`] as a [`RelayReport`].
///
/// # Memory
///
/// The message is spooled as it arrives: in memory up to a threshold (1 MiB by
/// default), then in a temporary file ([`Proxy::with_spool`]), and relayed from
/// the spool once the client finished it (lettre's client cannot stream into
/// an upstream's DATA while the client is still sending). A 50 MiB message
/// costs about the threshold in memory; the file is removed once the message
/// is relayed or abandoned. The relayed bytes are the same as aiosmtpd's.
///
/// # Transport
///
/// Each message is relayed over a new plain-text connection (no TLS, no
/// authentication) with lettre's blocking SMTP client, on a bounded
/// [`BlockingPool`] (see [`Proxy::with_pool`]) that the hook awaits, so any async
/// runtime works; a full pool is a temporary `451` for the sender. The client
/// greets with `EHLO` (this machine's host name; see
/// [`Proxy::with_hello_name`]) and adds `BODY=8BITMIME` when the message has
/// 8-bit bytes and `SMTPUTF8` when the transaction uses it, if the upstream
/// offers them. With DSN on ([`Extensions::dsn`](crate::proto::Extensions)),
/// the client's `RET`, `ENVID`, `NOTIFY` and `ORCPT` go on to an upstream
/// that offers DSN; to one that does not they are dropped (RFC 3461 §4.1
/// would have this server send a "relayed" notification for
/// `NOTIFY=SUCCESS`; it sends none, as it generates no bounces at all). Each connect, read and write is bounded by
/// [`Proxy::with_timeout`] (default [`Proxy::DEFAULT_TIMEOUT`]). The body is
/// sent byte for byte, dot-stuffed (also after a bare CR or LF, so no line of
/// the body can end the upstream's DATA early).
///
/// ```no_run
/// use smtpkit::{handlers::Proxy, tokio::Controller};
///
/// let mut controller = Controller::new(Proxy::new("mail.example.com", 25)).with_port(8025);
/// controller.start().unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Proxy {
    host: String,
    port: u16,
    timeout: Duration,
    hello_name: Option<String>,
    pool: BlockingPool,
    spool_threshold: usize,
    spool_dir: std::path::PathBuf,
}

impl Proxy {
    /// The default bound of each connect, read and write to the upstream: five
    /// minutes, RFC 5321's timeout for most SMTP client steps.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

    /// A proxy to the SMTP server at `host` (a name or an IP address) and
    /// `port`. Nothing is resolved or connected until a message arrives.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Proxy {
            host: host.into(),
            port,
            timeout: Self::DEFAULT_TIMEOUT,
            hello_name: None,
            pool: BlockingPool::shared(),
            spool_threshold: DEFAULT_SPOOL_THRESHOLD,
            spool_dir: std::env::temp_dir(),
        }
    }

    /// Where a message goes while it arrives: in memory up to `threshold`
    /// bytes, then in a temporary file in `dir` (removed once the message is
    /// relayed or abandoned). Default: [`DEFAULT_SPOOL_THRESHOLD`] (1 MiB) and
    /// the system's temporary directory.
    #[must_use]
    pub fn with_spool(mut self, threshold: usize, dir: impl Into<std::path::PathBuf>) -> Self {
        self.spool_threshold = threshold;
        self.spool_dir = dir.into();
        self
    }

    /// The handler for the command line's `-c Proxy HOST PORT`.
    ///
    /// # Errors
    ///
    /// `Proxy usage: proxy HOST PORT` unless there are exactly two arguments,
    /// and `Invalid port number: X` when the port is not a number from 1 to
    /// 65535.
    pub fn from_cli_args(args: &[String]) -> Result<Self, String> {
        match args {
            [host, port] => match port.parse::<u16>() {
                Ok(number) if number != 0 => Ok(Proxy::new(host.clone(), number)),
                _ => Err(format!("Invalid port number: {port}")),
            },
            _ => Err("Proxy usage: proxy HOST PORT".to_owned()),
        }
    }

    /// Bounds each connect, read and write to the upstream by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The name to send in `EHLO` (default: this machine's host name).
    pub fn with_hello_name(mut self, name: impl Into<String>) -> Self {
        self.hello_name = Some(name.into());
        self
    }

    /// Relays on `pool` instead of the process-wide [`BlockingPool::shared`]
    /// (the command line's `--blocking-threads` and `--blocking-queue`).
    #[must_use]
    pub fn with_pool(mut self, pool: BlockingPool) -> Self {
        self.pool = pool;
        self
    }

    /// The upstream's host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The upstream's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Relays the transaction's message (with the `X-Peer` header added) on the
    /// proxy's [`BlockingPool`] and resolves to the upstream's per-recipient answers
    /// without blocking the caller's executor.
    ///
    /// # Errors
    ///
    /// Only when the pool is full or cannot start its threads, or the relay
    /// panics (`io::Error`s from [`super::blocking::BlockingError`]); every SMTP or
    /// network failure is a refusal in the report.
    pub fn relay(
        &self,
        session: &Session,
        envelope: &Envelope,
    ) -> impl Future<Output = io::Result<RelayReport>> + Send + 'static {
        let data = insert_x_peer(envelope.original_content(), &session.peer);
        let ascii = data.is_ascii();
        let wire = wire_body(&data);
        let mail_from = envelope.mail_from.clone().unwrap_or_default();
        let rcpt_tos = envelope.rcpt_tos.clone();
        let options = Options {
            smtp_utf8: envelope.smtp_utf8,
            dsn: envelope.dsn.clone(),
            rcpt_dsn: envelope.rcpt_dsn.clone(),
        };
        let proxy = self.clone();
        let relay = self.pool.run(move || {
            let wire = Wire::Memory { bytes: wire, ascii };
            proxy.deliver_with(&mail_from, &rcpt_tos, wire, &options)
        });
        async move { relay.await.map_err(io::Error::from) }
    }

    /// Sends `data` from `mail_from` to `rcpt_tos` through the upstream, as is
    /// (no header is added), and returns each recipient's result: aiosmtpd's
    /// `Proxy._deliver`. This blocks on network I/O; the [`Handler`] hook runs
    /// it on the proxy's pool (see [`Proxy::relay`]).
    ///
    /// `mail_from` `""` or `"<>"` is the null reverse path. `SMTPUTF8` is
    /// requested when an address is not ASCII.
    pub fn deliver(&self, mail_from: &str, rcpt_tos: &[String], data: &[u8]) -> RelayReport {
        let wire = Wire::Memory {
            bytes: wire_body(data),
            ascii: data.is_ascii(),
        };
        self.deliver_with(mail_from, rcpt_tos, wire, &Options::default())
    }

    fn deliver_with(
        &self,
        mail_from: &str,
        rcpt_tos: &[String],
        data: Wire<'_>,
        options: &Options,
    ) -> RelayReport {
        let mut relay = Relay {
            proxy: self,
            report: RelayReport::default(),
            pending: Vec::new(),
        };
        relay.run(mail_from, rcpt_tos, data, options);
        // Refusals at RCPT time come first; restore the envelope's order.
        relay.report.refused.sort_by_key(|refusal| {
            rcpt_tos
                .iter()
                .position(|r| *r == refusal.recipient)
                .unwrap_or(usize::MAX)
        });
        if !relay.report.refused.is_empty() {
            tracing::info!(
                upstream = %relay.proxy.upstream(),
                refused = ?relay.report.refused,
                "the upstream server refused recipients"
            );
        }
        relay.report
    }

    fn upstream(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A message being spooled for the relay.
struct Spooling {
    prepare: RelayPrep,
    pending: Vec<u8>,
    body: SpoolFile,
}

/// Spool writes are collected to this size first.
const SPOOL_WRITE_AT: usize = 64 << 10;

impl Proxy {
    /// Writes `spooling.pending` into its spool: directly while it stays in
    /// memory, on the pool once it goes to a file.
    async fn spool_pending(&self, mut spooling: Spooling) -> Result<Spooling, HandlerError> {
        if !spooling.body.in_file()
            && spooling.body.len() + spooling.pending.len() <= self.spool_threshold
        {
            spooling.body.write(&spooling.pending)?;
            spooling.pending.clear();
            return Ok(spooling);
        }
        let written = self.pool.run(move || {
            spooling.body.write(&spooling.pending)?;
            spooling.pending.clear();
            Ok::<_, io::Error>(spooling)
        });
        Ok(written.await.map_err(io::Error::from)??)
    }
}

/// The message is spooled as it arrives (memory bounded by
/// [`Proxy::with_spool`]'s threshold), then relayed from the spool once the
/// client finished it.
impl Handler for Proxy {
    async fn handle_data_start(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> Result<(), HandlerError> {
        envelope.spool.set(Spooling {
            prepare: RelayPrep::new(&session.peer),
            pending: Vec::new(),
            body: SpoolFile::new(self.spool_threshold, &self.spool_dir),
        });
        Ok(())
    }

    async fn handle_data_chunk(
        &self,
        _: &mut Session,
        envelope: &mut Envelope,
        chunk: &[u8],
    ) -> Result<(), HandlerError> {
        let Some(mut spooling) = envelope.spool.take::<Spooling>() else {
            envelope.content.extend_from_slice(chunk);
            return Ok(());
        };
        spooling.prepare.feed(chunk, &mut spooling.pending);
        if spooling.pending.len() >= SPOOL_WRITE_AT {
            spooling = self.spool_pending(spooling).await?;
        }
        envelope.spool.set(spooling);
        Ok(())
    }

    async fn handle_data(&self, session: &mut Session, envelope: &mut Envelope) -> HookResult {
        if let Some(mut spooling) = envelope.spool.take::<Spooling>() {
            spooling.prepare.finish(&mut spooling.pending);
            let mut spooling = self.spool_pending(spooling).await?;
            let mail_from = envelope.mail_from.clone().unwrap_or_default();
            let rcpt_tos = envelope.rcpt_tos.clone();
            let options = Options::of(envelope);
            let proxy = self.clone();
            let relay = self.pool.run(move || {
                let ascii = spooling.prepare.ascii;
                let wire = Wire::Spool {
                    body: &mut spooling.body,
                    ascii,
                };
                proxy.deliver_with(&mail_from, &rcpt_tos, wire, &options)
            });
            return match relay.await {
                Ok(report) => Ok(report.outcome()),
                Err(error) => {
                    tracing::error!(upstream = %self.upstream(), %error, "relaying failed");
                    Ok(Outcome::reply(
                        451,
                        "4.3.0 Local error while relaying the message",
                    ))
                }
            };
        }
        match self.relay(session, envelope).await {
            Ok(report) => Ok(report.outcome()),
            Err(error) => {
                tracing::error!(upstream = %self.upstream(), %error, "relaying failed");
                Ok(Outcome::reply(
                    451,
                    "4.3.0 Local error while relaying the message",
                ))
            }
        }
    }
}

/// What the upstream server did with each recipient of one relayed message.
///
/// Recipients keep the envelope's order within each list. A recipient is
/// accepted when the upstream accepted its `RCPT` and then the message; it is
/// refused with the upstream's reply to its `RCPT`, or, when the whole
/// transaction failed (connection, `MAIL`, `DATA` or the message itself), with
/// that failure's reply.
///
/// ```
/// use smtpkit::handlers::{Refusal, RelayReport};
///
/// let report = RelayReport {
///     accepted: vec!["bart@example.com".into()],
///     refused: vec![Refusal {
///         recipient: "cate@refused.example".into(),
///         code: 550,
///         text: "5.1.1 No such user".into(),
///     }],
/// };
/// let reply = report.reply().unwrap();
/// assert_eq!(reply.code(), 250);
/// assert_eq!(
///     reply.text(),
///     "OK, but the upstream server refused 1 of 2 recipients:\n\
///      <cate@refused.example>: 550 5.1.1 No such user"
/// );
/// assert_eq!(report.reply_for("cate@refused.example").unwrap().code(), 550);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// The recipients the upstream accepted the message for.
    pub accepted: Vec<String>,
    /// The recipients it did not, with the reply that refused each.
    pub refused: Vec<Refusal>,
}

/// One recipient the upstream did not accept, with the refusing reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The recipient's address.
    pub recipient: String,
    /// The reply's code: the upstream's, or `451` (`501`, `553`) for a failure
    /// this side detected.
    pub code: u16,
    /// The reply's text (a multi-line upstream reply is joined with spaces).
    pub text: String,
}

impl Refusal {
    /// The refusal as a reply to send on: the upstream's code and text, with
    /// `421` (which would tell the client that this server closes the
    /// connection) turned into `451`.
    pub fn reply(&self) -> Reply {
        let code = if self.code == 421 { 451 } else { self.code };
        Reply::new(code, self.text.clone())
    }

    /// True for a transient (4xx) refusal.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>: {} {}", self.recipient, self.code, self.text)
    }
}

impl RelayReport {
    /// True when no recipient was refused.
    pub fn all_accepted(&self) -> bool {
        self.refused.is_empty()
    }

    /// The reply for the client: `None` (`250 OK`) when no recipient was
    /// refused; a multi-line `250` naming each refused recipient
    /// (`<address>: code text`) when some were accepted; otherwise the reply of
    /// the first transient refusal, or of the first refusal when all are
    /// permanent.
    pub fn reply(&self) -> Option<Reply> {
        if self.refused.is_empty() {
            return None;
        }
        if self.accepted.is_empty() {
            let decisive = self
                .refused
                .iter()
                .find(|r| r.is_transient())
                .unwrap_or(&self.refused[0]);
            return Some(decisive.reply());
        }
        let mut text = format!(
            "OK, but the upstream server refused {} of {} recipients:",
            self.refused.len(),
            self.refused.len() + self.accepted.len()
        );
        for refusal in &self.refused {
            text.push('\n');
            text.push_str(&refusal.to_string());
        }
        Some(Reply::new(250, text))
    }

    /// [`RelayReport::reply`] as a `handle_data` outcome: `Outcome::Default`
    /// when all were accepted, `Outcome::Accept` for a partial success and
    /// `Outcome::Reply` for a failure.
    pub fn outcome(&self) -> Outcome {
        match self.reply() {
            None => Outcome::Default,
            Some(reply) if reply.is_positive() => Outcome::Accept(reply),
            Some(reply) => Outcome::Reply(reply),
        }
    }

    /// The reply for one recipient (for per-recipient answers such as LMTP's):
    /// `250 OK` when it was accepted, its refusal's reply when refused, `None`
    /// when it was not part of the transaction.
    pub fn reply_for(&self, recipient: &str) -> Option<Reply> {
        if self.accepted.iter().any(|r| r == recipient) {
            return Some(Reply::ok());
        }
        self.refused
            .iter()
            .find(|r| r.recipient == recipient)
            .map(Refusal::reply)
    }
}

/// A failure that refuses every recipient still pending.
struct Failure {
    code: u16,
    text: String,
}

impl Failure {
    fn new(code: u16, text: impl Into<String>) -> Self {
        Failure {
            code,
            text: text.into(),
        }
    }
}

/// One SMTP client transaction with the upstream.
struct Relay<'a> {
    proxy: &'a Proxy,
    report: RelayReport,
    /// Recipients the upstream accepted so far (not yet delivered).
    pending: Vec<String>,
}

impl Relay<'_> {
    fn run(&mut self, mail_from: &str, rcpt_tos: &[String], mut data: Wire<'_>, options: &Options) {
        let smtp_utf8 = options.smtp_utf8;
        self.pending = rcpt_tos.to_vec();
        if rcpt_tos.is_empty() {
            return;
        }
        if !is_valid_address(mail_from) {
            return self.fail(Failure::new(501, "5.1.7 Invalid sender address"));
        }

        let hello = ClientId::Domain(
            self.proxy
                .hello_name
                .clone()
                .unwrap_or_else(default_server_hostname),
        );
        let mut conn = match SmtpConnection::connect(
            (self.proxy.host.as_str(), self.proxy.port),
            Some(self.proxy.timeout),
            &hello,
            None,
            None,
        ) {
            Ok(conn) => conn,
            Err(error) => return self.fail(self.failure(&error, false, "connect")),
        };

        let non_ascii_addresses = !mail_from.is_ascii() || rcpt_tos.iter().any(|r| !r.is_ascii());
        let mut parameters = String::new();
        if !data.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
            parameters.push_str(" BODY=8BITMIME");
        }
        if smtp_utf8 || non_ascii_addresses {
            if conn.server_info().supports_feature(Extension::SmtpUtfEight) {
                parameters.push_str(" SMTPUTF8");
            } else if non_ascii_addresses {
                let _ = conn.quit();
                return self.fail(Failure::new(
                    553,
                    "5.6.7 The upstream server does not support SMTPUTF8 addresses",
                ));
            }
        }

        // DSN parameters go on only to an upstream that offers DSN (lettre
        // does not list it: EHLO is asked again, once, when there are some).
        let dsn = (!options.dsn.is_empty() || options.rcpt_dsn.iter().any(|d| !d.is_empty()))
            && offers(&mut conn, &hello, "DSN");
        if dsn {
            parameters.push_str(&options.dsn.parameters());
        }
        let mail = Command::Mail {
            from: mail_from,
            parameters: &parameters,
        };
        if let Err(failure) = self.expect(&mut conn, mail, 2, "MAIL") {
            return self.fail_and_close(conn, failure);
        }

        // One RCPT per recipient: each answer is the recipient's own.
        self.pending.clear();
        for (index, rcpt) in rcpt_tos.iter().enumerate() {
            if rcpt.is_empty() || rcpt == "<>" || !is_valid_address(rcpt) {
                self.refuse(rcpt, Failure::new(501, "5.1.3 Invalid recipient address"));
                continue;
            }
            let rcpt_parameters = match options.rcpt_dsn.get(index) {
                Some(d) if dsn => d.parameters(),
                _ => String::new(),
            };
            match conn.command(Command::Rcpt(rcpt, &rcpt_parameters)) {
                Ok(response) if code_of(&response) / 100 == 2 => self.pending.push(rcpt.clone()),
                Ok(response) => self.refuse(rcpt, unexpected(&response, "RCPT")),
                Err(error) if error.status().is_some_and(|code| u16::from(code) != 421) => {
                    let failure = self.failure(&error, true, "RCPT");
                    self.refuse(rcpt, failure);
                }
                Err(error) => {
                    // The connection broke or the upstream is closing it
                    // (421): this and every later recipient fail.
                    let failure = self.failure(&error, true, "RCPT");
                    self.pending.extend(rcpt_tos[index..].iter().cloned());
                    conn.abort();
                    return self.fail(failure);
                }
            }
        }
        if self.pending.is_empty() {
            let _ = conn.quit();
            return;
        }

        if let Err(failure) = self.expect(&mut conn, Data, 3, "DATA") {
            return self.fail_and_close(conn, failure);
        }
        let sent = match data.send(&mut conn) {
            Ok(sent) => sent,
            Err(failure) => return self.fail(failure),
        };
        match sent {
            Ok(response) if code_of(&response) / 100 == 2 => {
                self.report.accepted.append(&mut self.pending);
                let _ = conn.quit();
            }
            Ok(response) => self.fail_and_close(conn, unexpected(&response, "the message")),
            Err(error) => {
                let failure = self.failure(&error, true, "the message");
                self.fail_and_close(conn, failure);
            }
        }
    }

    /// Sends `command` (named `step`) and checks that the reply is of `class`
    /// (2 or 3).
    fn expect(
        &self,
        conn: &mut SmtpConnection,
        command: impl fmt::Display,
        class: u16,
        step: &str,
    ) -> Result<(), Failure> {
        match conn.command(command) {
            Ok(response) if code_of(&response) / 100 == class => Ok(()),
            Ok(response) => Err(unexpected(&response, step)),
            Err(error) => Err(self.failure(&error, true, step)),
        }
    }

    /// The failure for a lettre error at `step`.
    fn failure(&self, error: &SmtpError, connected: bool, step: &str) -> Failure {
        if let Some(code) = error.status() {
            let text = std::error::Error::source(error)
                .map(|s| s.to_string())
                .unwrap_or_default();
            return Failure::new(u16::from(code), sanitize(&text));
        }
        tracing::warn!(upstream = %self.proxy.upstream(), %error, step, "relaying failed");
        if connected {
            Failure::new(451, "4.4.2 The connection to the upstream server failed")
        } else {
            Failure::new(451, "4.4.1 Cannot connect to the upstream server")
        }
    }

    fn refuse(&mut self, recipient: &str, failure: Failure) {
        self.report.refused.push(Refusal {
            recipient: recipient.to_owned(),
            code: failure.code,
            text: failure.text,
        });
    }

    /// Refuses every pending recipient with `failure`.
    fn fail(&mut self, failure: Failure) {
        for recipient in std::mem::take(&mut self.pending) {
            self.report.refused.push(Refusal {
                recipient,
                code: failure.code,
                text: failure.text.clone(),
            });
        }
    }

    fn fail_and_close(&mut self, mut conn: SmtpConnection, failure: Failure) {
        if conn.has_broken() || failure.code == 421 {
            conn.abort();
        } else {
            let _ = conn.quit();
        }
        self.fail(failure);
    }
}

/// The SMTP commands sent with addresses as aiosmtpd stores them (lettre's own
/// command types need addresses that its parser accepts).
enum Command<'a> {
    Ehlo(&'a ClientId),
    Mail { from: &'a str, parameters: &'a str },
    Rcpt(&'a str, &'a str),
}

/// The message as it goes to the upstream ([`wire_body`]'s bytes).
enum Wire<'a> {
    /// In memory.
    Memory { bytes: Vec<u8>, ascii: bool },
    /// Spooled (in memory up to the threshold, then in a file).
    Spool {
        body: &'a mut SpoolFile,
        ascii: bool,
    },
}

impl Wire<'_> {
    fn is_ascii(&self) -> bool {
        match self {
            Wire::Memory { ascii, .. } | Wire::Spool { ascii, .. } => *ascii,
        }
    }

    /// Sends the message after DATA's 354. A spool file that cannot be read
    /// to its end must not become a truncated message that the upstream
    /// accepts: the relay unwinds out of lettre before the final dot, and the
    /// connection is dropped.
    fn send(&mut self, conn: &mut SmtpConnection) -> Result<Result<Response, SmtpError>, Failure> {
        let body = match self {
            Wire::Memory { bytes, .. } => return Ok(conn.message(bytes)),
            Wire::Spool { body, .. } => body,
        };
        if let Some(memory) = body.memory() {
            return Ok(conn.message(memory));
        }
        let mut blocks = body
            .blocks(64 << 10)
            .map_err(|_| Failure::new(451, "4.3.0 Local error while relaying the message"))?;
        let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let parts = std::iter::from_fn(|| {
                if let Some(block) = blocks.next_block() {
                    return Some(block.to_vec());
                }
                if blocks.error.is_some() {
                    std::panic::resume_unwind(Box::new(SpoolReadFailed));
                }
                None
            });
            conn.message_iter(parts)
        }));
        sent.map_err(|_| {
            conn.abort();
            Failure::new(451, "4.3.0 Local error while relaying the message")
        })
    }
}

/// Unwinds a relay whose spool file could not be read.
struct SpoolReadFailed;

/// What the relay carries beside the addresses and the message.
#[derive(Clone, Debug, Default)]
struct Options {
    /// The transaction used SMTPUTF8.
    smtp_utf8: bool,
    /// MAIL's DSN parameters.
    dsn: crate::proto::MailDsn,
    /// Each recipient's (in `rcpt_tos` order).
    rcpt_dsn: Vec<crate::proto::RcptDsn>,
}

impl Options {
    /// What `envelope` asks of the relay.
    fn of(envelope: &Envelope) -> Self {
        Options {
            smtp_utf8: envelope.smtp_utf8,
            dsn: envelope.dsn.clone(),
            rcpt_dsn: envelope.rcpt_dsn.clone(),
        }
    }
}

/// True when the upstream's EHLO reply lists `keyword` (asked again: lettre
/// keeps only the extensions it knows).
fn offers(conn: &mut SmtpConnection, hello: &ClientId, keyword: &str) -> bool {
    conn.command(Command::Ehlo(hello)).is_ok_and(|response| {
        response.message().any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
        })
    })
}

impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Mail { from, parameters } => {
                let from = if *from == "<>" { "" } else { from };
                write!(f, "MAIL FROM:<{from}>{parameters}\r\n")
            }
            Command::Rcpt(to, parameters) => write!(f, "RCPT TO:<{to}>{parameters}\r\n"),
            Command::Ehlo(hello) => write!(f, "EHLO {hello}\r\n"),
        }
    }
}

/// An address that can be put in a command line (no CR, LF or other control
/// character that could end or forge a command).
fn is_valid_address(address: &str) -> bool {
    !address.contains(char::is_control)
}

fn code_of(response: &Response) -> u16 {
    u16::from(response.code())
}

/// A reply that lettre takes as positive but that is not the one expected.
fn unexpected(response: &Response, step: &str) -> Failure {
    let text = response.message().collect::<Vec<_>>().join(" ");
    Failure::new(
        451,
        format!(
            "4.5.0 Unexpected reply to {step} from the upstream server: {} {}",
            code_of(response),
            sanitize(&text)
        ),
    )
}

/// Removes control characters from upstream text that is sent on.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The message as lettre must be given it: lettre writes the bytes with
/// dot-stuffing after CRLF, then `CRLF . CRLF`. As Python's `smtplib` does,
/// a message that ends with CRLF is sent without a second one (lettre's CRLF
/// then ends the last line), and a dot after a bare LF or CR is doubled too,
/// which lettre's codec would not do.
fn wire_body(data: &[u8]) -> Vec<u8> {
    let data = data.strip_suffix(b"\r\n").unwrap_or(data);
    let mut out = Vec::with_capacity(data.len() + 16);
    for (i, &b) in data.iter().enumerate() {
        if b == b'.' && i > 0 {
            let after_bare_lf = data[i - 1] == b'\n' && (i < 2 || data[i - 2] != b'\r');
            let after_cr = data[i - 1] == b'\r';
            if after_bare_lf || after_cr {
                out.push(b'.');
            }
        }
        out.push(b);
    }
    out
}

/// aiosmtpd's `Proxy.handle_DATA`: `X-Peer: <peer IP>` plus the line ending of
/// the first empty line, inserted before that line; with no empty line, CRLF
/// and before the last line (at the start of an empty message). A peer without
/// an IP address (Unix socket) gives an empty value.
fn insert_x_peer(content: &[u8], peer: &Peer) -> Vec<u8> {
    let ip = match peer {
        Peer::Tcp(address) => address.ip().to_string(),
        Peer::Unix | Peer::Unknown => String::new(),
    };
    let lines = lines_with_endings(content);
    let mut index = 0;
    let mut ending: &[u8] = b"\r\n";
    for (i, line) in lines.iter().enumerate() {
        index = i;
        if matches!(line.first(), Some(b'\r' | b'\n')) {
            ending = line;
            break;
        }
    }
    let mut out = Vec::with_capacity(content.len() + ip.len() + 12);
    for line in &lines[..index] {
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b"X-Peer: ");
    out.extend_from_slice(ip.as_bytes());
    out.extend_from_slice(ending);
    for line in &lines[index..] {
        out.extend_from_slice(line);
    }
    out
}

/// `wire_body(insert_x_peer(content))` as the content streams in: the same
/// bytes for any split. Only the header block's current line is held back
/// (the `X-Peer` line goes before the first empty line, or before the last
/// line when there is none), and the last two bytes (a final CRLF is not
/// sent: lettre sends its own).
#[derive(Debug)]
struct RelayPrep {
    /// `X-Peer: <ip>` without its line ending; `None` once inserted.
    x_peer: Option<Vec<u8>>,
    /// The last complete line before any empty line (it may be the last).
    held: Vec<u8>,
    /// The current, unfinished line of the header block.
    line: Vec<u8>,
    /// `line` ended in a CR that may be half of a CRLF.
    line_cr: bool,
    /// Dot-stuffing after bare CR and LF, and the final CRLF.
    stuff: Stuffer,
    /// Every content byte was ASCII.
    ascii: bool,
}

impl RelayPrep {
    fn new(peer: &Peer) -> Self {
        let ip = match peer {
            Peer::Tcp(address) => address.ip().to_string(),
            Peer::Unix | Peer::Unknown => String::new(),
        };
        RelayPrep {
            x_peer: Some(format!("X-Peer: {ip}").into_bytes()),
            held: Vec::new(),
            line: Vec::new(),
            line_cr: false,
            stuff: Stuffer::default(),
            ascii: true,
        }
    }

    fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        self.ascii &= chunk.is_ascii();
        while self.x_peer.is_some() && !chunk.is_empty() {
            if self.line_cr {
                // The line ended in CR; an LF right after it belongs to it.
                self.line_cr = false;
                if chunk[0] == b'\n' {
                    self.line.push(b'\n');
                    chunk = &chunk[1..];
                }
                self.end_line(out);
                continue;
            }
            match memchr::memchr2(b'\r', b'\n', chunk) {
                None => {
                    self.line.extend_from_slice(chunk);
                    return;
                }
                Some(i) if chunk[i] == b'\r' && i + 1 == chunk.len() => {
                    self.line.extend_from_slice(chunk);
                    self.line_cr = true;
                    return;
                }
                Some(i) => {
                    let end = if chunk[i] == b'\r' && chunk[i + 1] == b'\n' {
                        i + 2
                    } else {
                        i + 1
                    };
                    self.line.extend_from_slice(&chunk[..end]);
                    chunk = &chunk[end..];
                    self.end_line(out);
                }
            }
        }
        self.stuff.feed(chunk, out);
    }

    /// A whole line (with its ending) of the part before the first empty line.
    fn end_line(&mut self, out: &mut Vec<u8>) {
        let line = std::mem::take(&mut self.line);
        self.stuff.feed(&self.held, out);
        self.held.clear();
        if matches!(line.first(), Some(b'\r' | b'\n')) {
            // `X-Peer: ip` with the empty line's ending, then the empty line.
            let x_peer = self.x_peer.take().unwrap_or_default();
            self.stuff.feed(&x_peer, out);
            self.stuff.feed(&line, out);
            self.stuff.feed(&line, out);
        } else {
            self.held = line;
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.line_cr {
            self.line_cr = false;
            self.end_line(out);
        }
        if let Some(x_peer) = self.x_peer.take() {
            // No empty line: before the last line (the unfinished one, or the
            // held one), with CRLF.
            let (before, last) = if self.line.is_empty() {
                (Vec::new(), std::mem::take(&mut self.held))
            } else {
                (
                    std::mem::take(&mut self.held),
                    std::mem::take(&mut self.line),
                )
            };
            self.stuff.feed(&before, out);
            self.stuff.feed(&x_peer, out);
            self.stuff.feed(b"\r\n", out);
            self.stuff.feed(&last, out);
        }
        self.stuff.finish(out);
    }
}

/// [`wire_body`] as bytes stream in.
#[derive(Debug, Default)]
struct Stuffer {
    /// The last two bytes passed on (before stuffing), and how many there were.
    prev: [u8; 2],
    count: usize,
    /// Up to two bytes held back (`held[..held_len]`): a final CRLF is dropped.
    held: [u8; 2],
    held_len: usize,
}

impl Stuffer {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if bytes.len() >= 2 {
            // Everything but the last two bytes goes out, in runs.
            let held = self.held;
            self.emit(&held[..self.held_len], out);
            self.emit(&bytes[..bytes.len() - 2], out);
            self.held.copy_from_slice(&bytes[bytes.len() - 2..]);
            self.held_len = 2;
            return;
        }
        for &b in bytes {
            if self.held_len == 2 {
                let first = self.held[0];
                self.emit(&[first], out);
                self.held = [self.held[1], b];
            } else {
                self.held[self.held_len] = b;
                self.held_len += 1;
            }
        }
    }

    /// Passes `run` on, doubling each dot after a bare LF or a CR.
    fn emit(&mut self, run: &[u8], out: &mut Vec<u8>) {
        let mut start = 0;
        for i in memchr::memchr_iter(b'.', run) {
            let p1 = if i >= 1 { run[i - 1] } else { self.prev[1] };
            let p0 = match i {
                0 => self.prev[0],
                1 => self.prev[1],
                _ => run[i - 2],
            };
            let before = self.count + i;
            let after_bare_lf = p1 == b'\n' && (before < 2 || p0 != b'\r');
            if before > 0 && (after_bare_lf || p1 == b'\r') {
                out.extend_from_slice(&run[start..i]);
                out.push(b'.');
                start = i;
            }
        }
        out.extend_from_slice(&run[start..]);
        match run {
            [] => {}
            [b] => self.prev = [self.prev[1], *b],
            [.., a, b] => self.prev = [*a, *b],
        }
        self.count += run.len();
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        let held = self.held;
        let held = &held[..self.held_len];
        self.held_len = 0;
        if held != b"\r\n" {
            self.emit(held, out);
        }
    }
}

/// Python's `bytes.splitlines(keepends=True)`: lines ending at CRLF, CR or LF,
/// each with its ending.
fn lines_with_endings(data: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let end = match memchr::memchr2(b'\r', b'\n', rest) {
            None => rest.len(),
            Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => i + 2,
            Some(i) => i + 1,
        };
        lines.push(&rest[..end]);
        rest = &rest[end..];
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp() -> Peer {
        Peer::Tcp("127.0.0.1:1234".parse().unwrap())
    }

    /// Each expected value is what aiosmtpd 1.4.6's `Proxy.handle_DATA`
    /// insertion code (run in Python 3.11) builds for the same content.
    #[test]
    fn streaming_relay_bytes_for_every_split() {
        let bodies: [&[u8]; 11] = [
            b"",
            b"Subject: hi\r\n\r\nHello\r\n",
            b"Subject: hi\r\nX: y\r\n\r\n.dot\r\n..two\r\n",
            b"no empty line\r\nlast line\r\n",
            b"one line no ending",
            b"a\rb\r\r\nc\n.\n.d\r.e",
            b"\r\nstarts empty",
            b"x\n\nbare LF blank\n.dot\n",
            b"Subject: x\r\n\r\nends\r\n\r\n",
            b"Subject: x\r",
            b"h: 1\r\n\n\r\n.\r\n",
        ];
        for body in bodies {
            let want = wire_body(&insert_x_peer(body, &tcp()));
            for a in 0..=body.len() {
                for b in a..=body.len() {
                    let mut prep = RelayPrep::new(&tcp());
                    let mut out = Vec::new();
                    for piece in [&body[..a], &body[a..b], &body[b..]] {
                        prep.feed(piece, &mut out);
                    }
                    prep.finish(&mut out);
                    assert_eq!(
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(&want),
                        "{body:?} split at {a} and {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn x_peer_like_aiosmtpd() {
        let cases: &[(&[u8], &[u8])] = &[
            (
                b"Subject: hi\r\nFrom: a@x\r\n\r\nbody\r\n",
                b"Subject: hi\r\nFrom: a@x\r\nX-Peer: 127.0.0.1\r\n\r\nbody\r\n",
            ),
            (
                b"Subject: hi\n\nbody\n",
                b"Subject: hi\nX-Peer: 127.0.0.1\n\nbody\n",
            ),
            (
                b"Subject: hi\r\rbody\r",
                b"Subject: hi\rX-Peer: 127.0.0.1\r\rbody\r",
            ),
            // No empty line: before the last line, with CRLF.
            (
                b"Subject: hi\nSecond: x\n",
                b"Subject: hi\nX-Peer: 127.0.0.1\r\nSecond: x\n",
            ),
            (b"just one line", b"X-Peer: 127.0.0.1\r\njust one line"),
            (b"", b"X-Peer: 127.0.0.1\r\n"),
            // An empty first line: the header goes first.
            (b"\r\nbody\r\n", b"X-Peer: 127.0.0.1\r\n\r\nbody\r\n"),
        ];
        for (content, expected) in cases {
            assert_eq!(
                String::from_utf8_lossy(&insert_x_peer(content, &tcp())),
                String::from_utf8_lossy(expected),
                "content {:?}",
                String::from_utf8_lossy(content)
            );
        }
        let v6 = Peer::Tcp("[::1]:25".parse().unwrap());
        assert_eq!(
            insert_x_peer(b"S: x\r\n\r\nb\r\n", &v6),
            b"S: x\r\nX-Peer: ::1\r\n\r\nb\r\n"
        );
        assert_eq!(
            insert_x_peer(b"S: x\r\n\r\nb\r\n", &Peer::Unix),
            b"S: x\r\nX-Peer: \r\n\r\nb\r\n"
        );
    }

    #[test]
    fn body_for_lettre() {
        assert_eq!(wire_body(b"a\r\nb\r\n"), b"a\r\nb");
        assert_eq!(wire_body(b"a\r\nb\n"), b"a\r\nb\n");
        assert_eq!(wire_body(b"a\r\nb"), b"a\r\nb");
        // lettre stuffs dots after CRLF itself; bare LF and CR are done here.
        assert_eq!(wire_body(b".a\r\n.b\n.c\r.d\r\n"), b".a\r\n.b\n..c\r..d");
        assert_eq!(wire_body(b"x\n.\r\n"), b"x\n..");
    }

    #[test]
    fn commands() {
        let mail = Command::Mail {
            from: "<>",
            parameters: " BODY=8BITMIME",
        };
        assert_eq!(mail.to_string(), "MAIL FROM:<> BODY=8BITMIME\r\n");
        let mail = Command::Mail {
            from: "a@x",
            parameters: "",
        };
        assert_eq!(mail.to_string(), "MAIL FROM:<a@x>\r\n");
        assert_eq!(Command::Rcpt("b@y", "").to_string(), "RCPT TO:<b@y>\r\n");
        assert_eq!(
            Command::Rcpt("b@y", " NOTIFY=NEVER").to_string(),
            "RCPT TO:<b@y> NOTIFY=NEVER\r\n"
        );
        assert!(is_valid_address("a@x"));
        assert!(is_valid_address("<>"));
        assert!(!is_valid_address("a@x>\r\nRSET"));
    }

    fn refusal(recipient: &str, code: u16, text: &str) -> Refusal {
        Refusal {
            recipient: recipient.into(),
            code,
            text: text.into(),
        }
    }

    #[test]
    fn replies() {
        let all = RelayReport {
            accepted: vec!["a@x".into(), "b@x".into()],
            refused: vec![],
        };
        assert_eq!(all.outcome(), Outcome::Default);
        assert_eq!(all.reply_for("a@x"), Some(Reply::ok()));
        assert_eq!(all.reply_for("c@x"), None);

        let partial = RelayReport {
            accepted: vec!["a@x".into()],
            refused: vec![refusal("b@y", 550, "no"), refusal("c@z", 450, "later")],
        };
        assert_eq!(
            partial.outcome(),
            Outcome::accept(
                250,
                "OK, but the upstream server refused 2 of 3 recipients:\n<b@y>: 550 no\n<c@z>: 450 later"
            )
        );

        let none = RelayReport {
            accepted: vec![],
            refused: vec![refusal("b@y", 550, "no"), refusal("c@z", 450, "later")],
        };
        assert_eq!(none.outcome(), Outcome::reply(450, "later"));
        let none = RelayReport {
            accepted: vec![],
            refused: vec![refusal("b@y", 550, "no"), refusal("c@z", 554, "never")],
        };
        assert_eq!(none.outcome(), Outcome::reply(550, "no"));
        let closing = RelayReport {
            accepted: vec![],
            refused: vec![refusal("b@y", 421, "shutting down")],
        };
        assert_eq!(closing.outcome(), Outcome::reply(451, "shutting down"));
    }

    #[test]
    fn cli_arguments() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let proxy = Proxy::from_cli_args(&args(&["mail.example.com", "2525"])).unwrap();
        assert_eq!((proxy.host(), proxy.port()), ("mail.example.com", 2525));
        for bad in [&[][..], &["host"], &["host", "25", "x"]] {
            assert_eq!(
                Proxy::from_cli_args(&args(bad)).unwrap_err(),
                "Proxy usage: proxy HOST PORT"
            );
        }
        for port in ["x", "0", "65536", "-1", ""] {
            assert_eq!(
                Proxy::from_cli_args(&args(&["host", port])).unwrap_err(),
                format!("Invalid port number: {port}")
            );
        }
    }

    #[test]
    fn unreachable_upstream_refuses_all() {
        // Bind and drop a listener: nothing listens on that port afterwards.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let proxy = Proxy::new("127.0.0.1", port).with_timeout(Duration::from_secs(5));
        let report = proxy.deliver("a@x", &["b@y".into(), "c@z".into()], b"S: x\r\n\r\nb\r\n");
        assert!(report.accepted.is_empty());
        assert_eq!(
            report.refused,
            vec![
                refusal("b@y", 451, "4.4.1 Cannot connect to the upstream server"),
                refusal("c@z", 451, "4.4.1 Cannot connect to the upstream server"),
            ]
        );
    }
}
