//! The async [`Handler`] trait: one method per aiosmtpd hook, each with aiosmtpd's
//! behaviour as its default.

use std::any::Any;
use std::fmt;
use std::future::Future;

use crate::proto::{
    AuthResult, Envelope, FailureClass, HookFailure, Outcome, Reply, Session, Spool,
};

/// What a hook returns: an [`Outcome`], or an error that the server answers by
/// its [`FailureClass`] (or with [`Handler::handle_exception`]'s reply).
pub type HookResult = Result<Outcome, HandlerError>;

/// An error from a hook. Any `std::error::Error` converts into it with `?`.
///
/// Its [`FailureClass`] decides the reply. Converted errors are classified by
/// the first `std::io::Error` in their source chain (the error itself
/// included):
///
/// | error | class | reply |
/// |---|---|---|
/// | `io::ErrorKind::StorageFull`, `QuotaExceeded` (ENOSPC, EDQUOT) | `StorageFull` | `452 4.3.1 Insufficient system storage: (kind) message` |
/// | `InvalidInput`, `InvalidData`, `Unsupported`, `InvalidFilename` | `Permanent` | `500 Error: (kind) message` |
/// | any other I/O error (EAGAIN, ENOMEM, EMFILE, EIO, a timeout, a refused connection, a full [`BlockingPool`](crate::handlers::blocking::BlockingPool), permissions...) | `Temporary` | `451 4.3.0 Error: (kind) message` |
/// | an error with no I/O error in it, a panic | `Permanent` | `500 Error: (kind) message` (aiosmtpd's) |
///
/// ```
/// use smtpkit::HandlerError;
/// use smtpkit::proto::FailureClass;
///
/// let full = HandlerError::from(std::io::Error::from_raw_os_error(28)); // ENOSPC
/// assert_eq!(full.class(), FailureClass::StorageFull);
/// let parse = HandlerError::from("x".parse::<u8>().unwrap_err());
/// assert_eq!(parse.class(), FailureClass::Permanent);
/// let busy = HandlerError::msg("database busy").with_class(FailureClass::Temporary);
/// assert_eq!(busy.class(), FailureClass::Temporary);
/// ```
pub struct HandlerError {
    kind: String,
    message: String,
    class: FailureClass,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    reply: Option<Reply>,
}

impl HandlerError {
    /// A permanent error of `kind` (aiosmtpd: the exception class) with `message`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        HandlerError {
            kind: kind.into(),
            message: message.into(),
            class: FailureClass::Permanent,
            source: None,
            reply: None,
        }
    }

    /// The same error in another class (e.g. [`FailureClass::Temporary`] for
    /// trouble the sender should retry after).
    #[must_use]
    pub fn with_class(mut self, class: FailureClass) -> Self {
        self.class = class;
        self
    }

    /// Whether the sender should retry, which decides the reply.
    pub fn class(&self) -> FailureClass {
        self.class
    }

    /// A refusal with this exact reply (not an exception: `handle_exception`
    /// is not called and the reply is sent as is), e.g. from
    /// [`Handler::handle_data_chunk`] to refuse a message part-way.
    ///
    /// ```
    /// use smtpkit::{HandlerError, Reply};
    /// let too_big = HandlerError::refuse(Reply::new(552, "5.3.4 Message too big for this mailbox"));
    /// assert_eq!(too_big.reply().map(Reply::code), Some(552));
    /// ```
    pub fn refuse(reply: Reply) -> Self {
        let mut error = HandlerError::new("Refused", reply.to_string());
        error.reply = Some(reply);
        error
    }

    /// The reply of a [`HandlerError::refuse`].
    pub fn reply(&self) -> Option<&Reply> {
        self.reply.as_ref()
    }

    /// An error with just a message (kind `Error`).
    pub fn msg(message: impl Into<String>) -> Self {
        HandlerError::new("Error", message)
    }

    /// A hook that panicked.
    pub(crate) fn from_panic(panic: Box<dyn Any + Send>) -> Self {
        let message = if let Some(s) = panic.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = panic.downcast_ref::<String>() {
            s.clone()
        } else {
            "hook panicked".to_owned()
        };
        HandlerError::new("panic", message)
    }

    /// The error's kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The original error, when converted from one.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    pub(crate) fn to_failure(&self) -> HookFailure {
        HookFailure {
            kind: self.kind.clone(),
            message: self.message.clone(),
            class: self.class,
        }
    }
}

/// `std::io::error::Error` → `io::Error`; `my_crate::MyError` → `MyError`.
fn short_type_name(full: &str) -> String {
    let base = full.split('<').next().unwrap_or(full);
    let parts: Vec<&str> = base.split("::").filter(|p| *p != "error").collect();
    match parts.as_slice() {
        [.., module, "Error"] => format!("{module}::Error"),
        [.., last] => (*last).to_owned(),
        [] => "Error".to_owned(),
    }
}

/// The class of an error: by the first I/O error in its source chain.
fn classify(error: &(dyn std::error::Error + 'static)) -> FailureClass {
    let mut next = Some(error);
    for _ in 0..16 {
        let Some(e) = next else { break };
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io_class(io.kind());
        }
        next = e.source();
    }
    FailureClass::Permanent
}

/// The class of an I/O error (see [`HandlerError`]'s table).
fn io_class(kind: std::io::ErrorKind) -> FailureClass {
    use std::io::ErrorKind::*;
    match kind {
        StorageFull | QuotaExceeded => FailureClass::StorageFull,
        InvalidInput | InvalidData | Unsupported | InvalidFilename => FailureClass::Permanent,
        _ => FailureClass::Temporary,
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        HandlerError {
            kind: short_type_name(std::any::type_name::<E>()),
            message: error.to_string(),
            class: classify(&error),
            source: Some(Box::new(error)),
            reply: None,
        }
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HandlerError({}: {})", self.kind, self.message)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}) {}", self.kind, self.message)
    }
}

/// The application's side of the SMTP dialogue: aiosmtpd's handler hooks.
///
/// Every method has a default that does what aiosmtpd does when the hook is
/// absent, so a handler implements only what it cares about. Hooks receive the
/// connection's [`Session`] and the current [`Envelope`] and return an
/// [`Outcome`]: `Outcome::Default` (aiosmtpd's behaviour without the hook),
/// `Outcome::Accept(reply)` (the default state change with a custom reply) or
/// `Outcome::Reply(reply)` (this reply, no state change). A hook that returns an
/// error or panics gets aiosmtpd's `500 Error: (kind) message` reply and the
/// server keeps serving.
///
/// aiosmtpd's ExampleHandler:
///
/// ```
/// use smtpkit::{Envelope, Handler, HookResult, Outcome, Session};
///
/// struct ExampleHandler;
///
/// impl Handler for ExampleHandler {
///     async fn handle_rcpt(&self, _: &mut Session, _: &mut Envelope, address: &str, _: &[String]) -> HookResult {
///         if !address.ends_with("@example.com") {
///             return Ok(Outcome::reply(550, "not relaying to that domain"));
///         }
///         Ok(Outcome::Default) // records the recipient and answers 250 OK
///     }
///
///     async fn handle_data(&self, _: &mut Session, envelope: &mut Envelope) -> HookResult {
///         println!("Message from {:?}", envelope.mail_from);
///         println!("Message for {:?}", envelope.rcpt_tos);
///         Ok(Outcome::reply(250, "Message accepted for delivery"))
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// `HELO hostname`. Default: record the name, `250 {server hostname}`.
    fn handle_helo(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        hostname: &str,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = (session, envelope, hostname);
        async { Ok(Outcome::Default) }
    }

    /// `EHLO hostname`. `extensions` holds the lines to advertise after the first
    /// (`SIZE 33554432`, `8BITMIME`, `HELP`, ...) and may be edited (aiosmtpd's
    /// 5-argument `handle_EHLO`). Default: record the name and send them.
    fn handle_ehlo(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        hostname: &str,
        extensions: &mut Vec<String>,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = (session, envelope, hostname, extensions);
        async { Ok(Outcome::Default) }
    }

    /// `MAIL FROM:` after the syntax checks. Default: record the sender and
    /// options, `250 OK`.
    fn handle_mail(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        address: &str,
        options: &[String],
    ) -> impl Future<Output = HookResult> + Send {
        let _ = (session, envelope, address, options);
        async { Ok(Outcome::Default) }
    }

    /// `RCPT TO:` after the syntax checks. Default: record the recipient, `250 OK`.
    fn handle_rcpt(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        address: &str,
        options: &[String],
    ) -> impl Future<Output = HookResult> + Send {
        let _ = (session, envelope, address, options);
        async { Ok(Outcome::Default) }
    }

    /// A message body begins: DATA was answered `354`, or the transaction's
    /// first BDAT chunk was accepted. A streaming handler opens its file or
    /// upstream connection here and keeps it in `envelope.spool` (see
    /// [`Spool`](crate::proto::Spool)), which is dropped if the message is
    /// abandoned (RSET, a refusal, QUIT, a timeout, the client going away).
    /// An error refuses the message: the rest of it is read and skipped, and
    /// the end of DATA gets the error's reply. Default: nothing.
    fn handle_data_start(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let _ = (session, envelope);
        async { Ok(()) }
    }

    /// A message that began ([`Handler::handle_data_start`]) was abandoned
    /// before its end: RSET, HELO/EHLO, a refusal by the server (over SIZE, a
    /// line too long), QUIT, a timeout, shutdown or the client going away.
    /// `spool` is what the handler kept in `envelope.spool`; it is dropped
    /// afterwards (so cleanup that needs no `await` can also live in its
    /// `Drop`, which also runs when the connection breaks without a close).
    /// Default: nothing.
    fn handle_data_abort(
        &self,
        session: &mut Session,
        spool: &mut Spool,
    ) -> impl Future<Output = ()> + Send {
        let _ = (session, spool);
        async {}
    }

    /// A piece of the message body, in order, after dot-unstuffing (for BDAT:
    /// the chunks' bytes as sent). Default: append it to `envelope.content`.
    /// Override to stream bodies with bounded memory: the server reads no more
    /// from the client until this returns (backpressure). An error refuses the
    /// message part-way: the rest is read and skipped, and only the end of
    /// DATA gets the error's reply (e.g. [`HandlerError::refuse`] with `552
    /// 5.3.4` for too big), never a reply in the middle of the message.
    fn handle_data_chunk(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        chunk: &[u8],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let _ = session;
        envelope.content.extend_from_slice(chunk);
        async { Ok(()) }
    }

    /// The message is complete (`envelope.content`). Default: `250 OK` (the
    /// message is dropped).
    fn handle_data(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = (session, envelope);
        async { Ok(Outcome::Default) }
    }

    /// LMTP: the message is complete; return one outcome per recipient in
    /// `envelope.rcpt_tos` order (RFC 2033), or one for all. Default: the outcome
    /// of [`Handler::handle_data`] for every recipient.
    fn handle_lmtp_data(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> impl Future<Output = Result<Vec<Outcome>, HandlerError>> + Send {
        async move { Ok(vec![self.handle_data(session, envelope).await?]) }
    }

    /// `RSET` (the envelope is already reset). Default: `250 OK`.
    fn handle_rset(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = (session, envelope);
        async { Ok(Outcome::Default) }
    }

    /// `NOOP [arg]`. Default: `250 OK`.
    fn handle_noop(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        arg: Option<&str>,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = (session, envelope, arg);
        async { Ok(Outcome::Default) }
    }

    /// `QUIT`. Default: `221 Bye`. The connection closes after the reply.
    fn handle_quit(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = (session, envelope);
        async { Ok(Outcome::Default) }
    }

    /// `VRFY address`. Default:
    /// `252 Cannot VRFY user, but will accept message and attempt delivery`.
    fn handle_vrfy(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        address: &str,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = (session, envelope, address);
        async { Ok(Outcome::Default) }
    }

    /// A valid PROXY protocol header arrived (`session.proxy_data`), before the
    /// greeting. Default: accept it (aiosmtpd without `handle_PROXY` rejects
    /// every connection). `Outcome::Reply(r)` refuses: `r` is sent and the
    /// connection closes; an error closes it silently.
    fn handle_proxy(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = (session, envelope);
        async { Ok(Outcome::Default) }
    }

    /// `AUTH PLAIN` / `AUTH LOGIN` credentials (aiosmtpd's `authenticator`).
    /// Default: refuse (`535 5.7.8 Authentication credentials invalid`), as
    /// aiosmtpd without an authenticator. On success the engine records
    /// `session.authenticated`, `auth_mechanism` and `auth_identity`; set
    /// `session.auth_data` here to attach your own data. See
    /// [`crate::server::Authenticator`] for a handler-independent authenticator:
    /// when a server has one ([`crate::server::Authentication`]), it decides
    /// instead and this hook is not called.
    fn handle_auth(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        mechanism: &str,
        login: &[u8],
        password: &[u8],
    ) -> impl Future<Output = Result<AuthResult, HandlerError>> + Send {
        let _ = (session, envelope, mechanism, login, password);
        async { Ok(AuthResult::Failure(None)) }
    }

    /// Extra SASL mechanisms this handler offers besides PLAIN and LOGIN
    /// (uppercase names). Each AUTH exchange for them runs through
    /// [`Handler::handle_auth_step`].
    fn auth_mechanisms(&self) -> Vec<String> {
        Vec::new()
    }

    /// One step of a custom mechanism: `step` 0 is the AUTH command (`response` =
    /// its initial response, if any), then one step per client response. Return
    /// `AuthResult::Challenge(bytes)` to send `334 base64(bytes)`, or success or
    /// failure. `state` is scratch space kept for the exchange. Default: refuse.
    /// A [`crate::server::SaslMechanism`] of the same name set beside the
    /// handler ([`crate::server::Authentication`]) takes precedence.
    fn handle_auth_step(
        &self,
        session: &mut Session,
        mechanism: &str,
        step: u32,
        response: Option<&[u8]>,
        state: &mut Vec<u8>,
    ) -> impl Future<Output = Result<AuthResult, HandlerError>> + Send {
        let _ = (session, mechanism, step, response, state);
        async { Ok(AuthResult::Failure(None)) }
    }

    /// A hook failed. Return the reply to send, or `None` for aiosmtpd's
    /// `500 Error: (kind) message`.
    fn handle_exception(&self, error: &HandlerError) -> impl Future<Output = Option<Reply>> + Send {
        let _ = error;
        async { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        assert_eq!(short_type_name("std::io::error::Error"), "io::Error");
        assert_eq!(short_type_name("my::MyError"), "MyError");
        assert_eq!(
            HandlerError::from(std::io::Error::other("disk full")).to_string(),
            "(io::Error) disk full"
        );
    }
}
