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

/// A hook that failed (returned an error or panicked). The engine answers
/// `500 Error: ({kind}) {message}` as aiosmtpd does for an exception.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookFailure {
    /// The error's kind (aiosmtpd: the exception class name).
    pub kind: String,
    /// The error's message.
    pub message: String,
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
