//! What the application answers when the engine asks: [`Outcome`] (aiosmtpd's
//! hook return values, typed) or a [`HookFailure`].

use super::Reply;

/// A handler's answer to a hook call.
///
/// aiosmtpd hooks return a reply string and must update the envelope themselves;
/// a missing hook (`MISSING`) gets the default behaviour. `Outcome` says which of
/// those a hook wants:
///
/// ```
/// use smtpkit::proto::{Outcome, Reply};
/// // Do what aiosmtpd does without a hook (record the recipient, `250 OK`):
/// let _ = Outcome::Default;
/// // Record it as the default would, but answer with this reply:
/// let _ = Outcome::Accept(Reply::new(250, "2.1.5 Recipient ok"));
/// // Send this reply and change nothing (a rejection):
/// let _ = Outcome::reply(550, "not relaying to that domain");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Outcome {
    /// The default behaviour: aiosmtpd's behaviour when the hook is absent.
    #[default]
    Default,
    /// The default state change (e.g. MAIL records the sender) with this reply.
    Accept(Reply),
    /// This reply, and no state change (aiosmtpd's hook returning a string).
    Reply(Reply),
}

impl Outcome {
    /// [`Outcome::Reply`] with a new [`Reply`].
    pub fn reply(code: u16, text: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Outcome::Reply(Reply::new(code, text))
    }

    /// [`Outcome::Accept`] with a new [`Reply`].
    pub fn accept(code: u16, text: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Outcome::Accept(Reply::new(code, text))
    }
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Self {
        Outcome::Reply(reply)
    }
}

/// A hook that failed (returned an error or panicked). The engine answers as
/// its [`FailureClass`] says: aiosmtpd's `500 Error: ({kind}) {message}` for a
/// permanent failure, `451 4.3.0 Error: ({kind}) {message}` for a temporary one,
/// `452 4.3.1 Insufficient system storage: ({kind}) {message}` when storage
/// ran out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookFailure {
    /// The error's kind (aiosmtpd: the exception class name).
    pub kind: String,
    /// The error's message.
    pub message: String,
    /// Whether the sender should retry.
    pub class: FailureClass,
}

impl HookFailure {
    /// A permanent failure (aiosmtpd's `500 Error: ({kind}) {message}`).
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        HookFailure {
            kind: kind.into(),
            message: message.into(),
            class: FailureClass::Permanent,
        }
    }

    /// The same failure in another class.
    #[must_use]
    pub fn with_class(mut self, class: FailureClass) -> Self {
        self.class = class;
        self
    }
}

/// Whether a failure is worth retrying, which decides its reply code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// Retrying will not help (a bug, bad data): aiosmtpd's `500 Error: ...`.
    #[default]
    Permanent,
    /// Local trouble that may pass (an I/O error, memory or threads exhausted,
    /// a full pool, a timeout): `451 4.3.0 Error: ...`, so the sender retries.
    Temporary,
    /// The disk or a quota is full: `452 4.3.1 Insufficient system storage: ...`,
    /// so the sender retries.
    StorageFull,
}

/// An authenticator's answer (to [`crate::proto::Ask::Auth`] and
/// [`crate::proto::Ask::AuthStep`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthResult {
    /// Authenticated; the reply defaults to `235 2.7.0 Authentication successful`.
    Success(Option<Reply>),
    /// Refused; the reply defaults to `535 5.7.8 Authentication credentials
    /// invalid` (use e.g. `454 4.7.0 ...` for a temporary failure).
    Failure(Option<Reply>),
    /// Send this challenge (`334 base64`) and wait for the client's response
    /// (custom mechanisms only).
    Challenge(Vec<u8>),
}

/// The application's answer to a pending hook call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The hook answered.
    Outcome(Outcome),
    /// The hook failed.
    Failed(HookFailure),
    /// An authenticator's answer.
    Auth(AuthResult),
    /// LMTP: one outcome per accepted recipient, in RCPT order (the last one is
    /// repeated for recipients beyond the list).
    Recipients(Vec<Outcome>),
}

impl From<Outcome> for Decision {
    fn from(o: Outcome) -> Self {
        Decision::Outcome(o)
    }
}

impl From<HookFailure> for Decision {
    fn from(f: HookFailure) -> Self {
        Decision::Failed(f)
    }
}

impl From<AuthResult> for Decision {
    fn from(a: AuthResult) -> Self {
        Decision::Auth(a)
    }
}
