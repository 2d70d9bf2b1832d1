//! What the engine says to its driver: the actions to carry out ([`Action`]), the
//! hook calls to answer ([`Ask`], [`HookCall`]), body chunks ([`BodyChunk`]), and
//! the driver's misuse of the API ([`Error`]).

use super::super::{Envelope, Session};

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
/// application answers with [`Connection::handle_decision`](crate::proto::Connection::handle_decision).
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
        /// The parameters, uppercased (empty unless DSN is on: aiosmtpd
        /// accepts none; with DSN, `NOTIFY` and `ORCPT`, typed in
        /// `Envelope::rcpt_dsn` once accepted).
        options: Vec<String>,
    },
    /// The message is complete (`Envelope::content` holds it).
    Data,
    /// A valid PROXY header arrived (`session.proxy_data`): accept it
    /// (`Outcome::Default`/`Accept`: the greeting follows), or refuse it
    /// (`Outcome::Reply(r)`: `r` is sent and the connection closes).
    Proxy,
    /// LMTP: the message is complete; answer with one outcome per recipient
    /// ([`Decision::Recipients`](crate::proto::Decision::Recipients)) or one for all.
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
    /// [`Decision::Auth`](crate::proto::Decision::Auth) (or `Outcome::Accept` = success, `Outcome::Reply` =
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
    /// [`AuthResult::Challenge`](crate::proto::AuthResult::Challenge) to continue, or success/failure.
    AuthStep {
        /// The mechanism (uppercase).
        mechanism: String,
        /// 0 for the AUTH command, then 1, 2, ... for each client response.
        step: u32,
        /// The decoded client response (the initial response at step 0, if any).
        response: Option<Vec<u8>>,
    },
}

impl Ask {
    /// The command this hook call answers (`None` for the PROXY header).
    pub fn verb(&self) -> Option<super::super::Verb> {
        use super::super::Verb;
        Some(match self {
            Ask::Helo { .. } => Verb::Helo,
            Ask::Ehlo { .. } => Verb::Ehlo,
            Ask::Mail { .. } => Verb::Mail,
            Ask::Rcpt { .. } => Verb::Rcpt,
            Ask::Data | Ask::LmtpData => Verb::Data,
            Ask::Rset => Verb::Rset,
            Ask::Noop { .. } => Verb::Noop,
            Ask::Quit => Verb::Quit,
            Ask::Vrfy { .. } => Verb::Vrfy,
            Ask::Auth { .. } | Ask::AuthStep { .. } => Verb::Auth,
            Ask::Proxy => return None,
        })
    }
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
    pub(super) unsent: Option<UnsentReplies<'a>>,
}

impl<'a> HookCall<'a> {
    /// The replies to the commands before this one that are not sent yet (a
    /// pipelined group). A driver whose hook does not answer at once sends
    /// them before it waits, so that a slow hook does not hold back the
    /// replies to earlier commands (RFC 2920); a hook that answers at once
    /// leaves them to go out with the rest of the group. `None` the second
    /// time.
    pub fn unsent_replies(&mut self) -> Option<UnsentReplies<'a>> {
        self.unsent.take().filter(|u| !u.bytes().is_empty())
    }
}

/// Replies waiting to be sent while a hook is out ([`HookCall::unsent_replies`]).
#[derive(Debug)]
pub struct UnsentReplies<'a> {
    pub(super) output: &'a mut super::Handout,
}

impl UnsentReplies<'_> {
    /// The bytes to write.
    pub fn bytes(&self) -> &[u8] {
        &self.output.bytes
    }

    /// They were written: the engine will not send them again.
    pub fn sent(self) {
        self.output.hand_out();
    }
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

/// A message body begins (DATA was answered `354`, or a transaction's first
/// BDAT chunk was accepted): a streaming handler opens its file or upstream
/// connection now, before the first [`BodyChunk`] (an empty message has
/// none). The message ends with [`Ask::Data`] (or [`Ask::LmtpData`]); one
/// abandoned instead (RSET, a refusal, the connection ending) ends with the
/// transaction, when the envelope is reset or dropped.
#[derive(Debug)]
pub struct MessageStart<'a> {
    /// The connection's session.
    pub session: &'a mut Session,
    /// The transaction whose message begins.
    pub envelope: &'a mut Envelope,
}

/// A message that began ([`Action::MessageStart`]) was abandoned before its
/// end: RSET, HELO/EHLO, a refusal by the engine (over SIZE, a line too long),
/// or the connection closing (QUIT, a timeout, shutdown, the client going
/// away). `spool` is what the handler kept for it in `Envelope::spool`; it is
/// dropped after this action.
#[derive(Debug)]
pub struct MessageAbort<'a> {
    /// The connection's session.
    pub session: &'a mut Session,
    /// The abandoned message's `Envelope::spool`.
    pub spool: &'a mut super::super::Spool,
}

/// What the driver must do next. Drain with [`Connection::poll_action`](crate::proto::Connection::poll_action) after
/// every input until it returns `None`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action<'a> {
    /// Write these bytes (all replies produced so far, coalesced).
    Send(&'a [u8]),
    /// A message body begins (before its first [`Action::Body`]).
    MessageStart(MessageStart<'a>),
    /// A message that began was abandoned (before any later `MessageStart`).
    MessageAbort(MessageAbort<'a>),
    /// Deliver a body chunk (default: append it to `envelope.content`).
    Body(BodyChunk<'a>),
    /// Ask the application, then call [`Connection::handle_decision`](crate::proto::Connection::handle_decision). Returned
    /// again until answered.
    Hook(HookCall<'a>),
    /// The `220 Ready to start TLS` reply has been sent: run the server-side TLS
    /// handshake on the stream, then call [`Connection::handle_tls_established`](crate::proto::Connection::handle_tls_established)
    /// (or close the connection if it fails). Bytes received before the handshake
    /// were discarded.
    StartTls,
    /// Close the connection. Always the last action.
    Close,
}
