//! The connection's state: one enum whose variants carry their own data, and the
//! transitions between them, all here.
//!
//! ```text
//! ProxyHeader ─► Hook(Proxy) ─► Command          (the greeting once it is accepted)
//! Command ─► Hook(ask) ─► Command                (a command the handler decides)
//! Command ─► Data ─► Hook(Data) ─► Command       (DATA, the body, its hook)
//! Command ─► Bdat ─► Command                    (a BDAT chunk: 250, or its refusal)
//! Command ─► Bdat ─► Hook(Data) ─► Command       (BDAT ... LAST, its hook)
//! Command ─► Auth ─► Hook(Auth) ─► Command/Auth  (AUTH: responses, the authenticator)
//! Command ─► TlsRequested ─► TlsHandshake ─► Command   (STARTTLS)
//! any state but Closed ─► Closing ─► Closed     (QUIT, limits, timeouts, shutdown)
//! ```
//!
//! A hook's answer and an AUTH response always come back through `Command`
//! ([`Connection::take_ask`], [`Connection::take_auth_wait`]);
//! the answer may move on from there (a custom SASL challenge to `Auth`, QUIT to
//! `Closing`).
//!
//! Input is read only in the reading states (`ProxyHeader`, `Command`, `Data`,
//! `Bdat`, `Auth`); while a hook is out it waits in the buffer; after STARTTLS and while
//! closing it is discarded.

use super::super::DataDecoder;
use super::super::replies::Canned;
use super::{Ask, Connection};

/// Where a connection is.
#[derive(Debug)]
pub(super) enum State {
    /// Waiting for the PROXY protocol header; no greeting yet.
    ProxyHeader,
    /// Reading command lines; `discarding` while skipping the rest of a line over
    /// the length limit.
    Command { discarding: bool },
    /// Reading a message body.
    Data(DataDecoder),
    /// Reading the bytes of a BDAT chunk.
    Bdat(Chunk),
    /// Reading a client response during AUTH.
    Auth(AuthWait),
    /// A hook call is out ([`super::Action::Hook`]); input waits in the buffer.
    Hook(Ask),
    /// STARTTLS was answered `220`; [`super::Action::StartTls`] comes once the
    /// reply is sent.
    TlsRequested,
    /// The driver runs the TLS handshake (until `handle_tls_established`).
    TlsHandshake,
    /// The last replies are being sent; [`super::Action::Close`] follows.
    Closing,
    /// [`super::Action::Close`] was returned.
    Closed,
}

/// A BDAT chunk being read.
#[derive(Clone, Copy, Debug)]
pub(super) struct Chunk {
    /// Its size, as the command gave it.
    pub size: usize,
    /// Bytes still to come.
    pub remaining: usize,
    /// `BDAT ... LAST`: the message ends with this chunk.
    pub last: bool,
    /// The chunk is refused: its bytes are read and dropped, then this is the
    /// reply (the byte stream stays in step with the commands).
    pub refusal: Option<Canned>,
}

/// What the client's next line answers during AUTH.
#[derive(Clone, Debug)]
pub(super) enum AuthWait {
    /// PLAIN's credentials, after an empty challenge.
    Plain,
    /// LOGIN's user name.
    LoginUser,
    /// LOGIN's password, for this user name.
    LoginPassword(Vec<u8>),
    /// A step of a handler's mechanism.
    Custom { mechanism: String, step: u32 },
}

/// The state a command line is read in, with nothing being skipped.
pub(super) const READING_COMMANDS: State = State::Command { discarding: false };

impl State {
    /// True in the states that consume input (the others hold or discard it).
    pub(super) fn reads_input(&self) -> bool {
        matches!(
            self,
            State::ProxyHeader
                | State::Command { .. }
                | State::Data(_)
                | State::Bdat(_)
                | State::Auth(_)
        )
    }

    /// True when input must be dropped as it arrives: plaintext after STARTTLS
    /// must never reach the SMTP layer, and nothing is read while closing.
    pub(super) fn discards_input(&self) -> bool {
        matches!(
            self,
            State::TlsRequested | State::TlsHandshake | State::Closing | State::Closed
        )
    }

    /// Whether `self` may become `next` (the arrows of the module's diagram).
    fn may_become(&self, next: &State) -> bool {
        use State::*;
        match (self, next) {
            (Closed, _) => false,
            (_, Closing) => true,
            (Closing, Closed) => true,
            (ProxyHeader, Hook(Ask::Proxy)) => true,
            (
                Command { .. },
                Command { .. } | Data(_) | Bdat(_) | Auth(_) | Hook(_) | TlsRequested,
            ) => true,
            (Data(_) | Bdat(_), Command { .. } | Hook(Ask::Data | Ask::LmtpData)) => true,
            (Auth(_), Command { .. } | Auth(_)) => true,
            (Auth(_), Hook(Ask::Auth { .. } | Ask::AuthStep { .. })) => true,
            (Hook(_), Command { .. }) => true,
            (TlsRequested, TlsHandshake) => true,
            (TlsHandshake, Command { .. }) => true,
            _ => false,
        }
    }
}

/// The transitions. Each goes through [`Connection::enter`], which checks the
/// arrow in debug builds (tests and fuzzing); release builds never panic.
impl Connection {
    fn enter(&mut self, next: State) {
        debug_assert!(
            self.state.may_become(&next),
            "no transition from {:?} to {next:?}",
            self.state
        );
        self.state = next;
    }

    /// Back to reading commands (after a message, an AUTH exchange, TLS).
    pub(super) fn read_commands(&mut self) {
        self.enter(READING_COMMANDS);
    }

    /// Skip the rest of an over-long command line, then read commands again.
    pub(super) fn discard_line(&mut self) {
        self.enter(State::Command { discarding: true });
    }

    /// Read a message body.
    pub(super) fn read_data(&mut self) {
        let line_limit = self.config.data_line_length_limit.unwrap_or(usize::MAX);
        let decoder = DataDecoder::new(self.config.data_size_limit, line_limit);
        self.enter(State::Data(decoder));
    }

    /// Read the bytes of a BDAT chunk.
    pub(super) fn read_chunk(&mut self, chunk: Chunk) {
        self.enter(State::Bdat(chunk));
    }

    /// Read the client's next AUTH response.
    pub(super) fn read_auth(&mut self, wait: AuthWait) {
        self.enter(State::Auth(wait));
    }

    /// Ask the application; input waits until it answers.
    pub(super) fn ask(&mut self, ask: Ask) {
        if matches!(ask, Ask::Data | Ask::LmtpData) {
            self.end_message();
            self.messages = self.messages.saturating_add(1);
        }
        self.enter(State::Hook(ask));
    }

    /// Takes the pending hook call, if there is one; the connection reads
    /// commands again unless the answer moves it elsewhere.
    pub(super) fn take_ask(&mut self) -> Option<Ask> {
        if !matches!(self.state, State::Hook(_)) {
            return None;
        }
        match std::mem::replace(&mut self.state, READING_COMMANDS) {
            State::Hook(ask) => Some(ask),
            _ => None,
        }
    }

    /// Takes what the AUTH response being read answers; the connection reads
    /// commands again unless the response moves it on.
    pub(super) fn take_auth_wait(&mut self) -> Option<AuthWait> {
        if !matches!(self.state, State::Auth(_)) {
            return None;
        }
        match std::mem::replace(&mut self.state, READING_COMMANDS) {
            State::Auth(wait) => Some(wait),
            _ => None,
        }
    }

    /// STARTTLS was accepted: the handshake starts once the reply is sent.
    pub(super) fn request_tls(&mut self) {
        self.enter(State::TlsRequested);
    }

    /// The driver starts the handshake ([`super::Action::StartTls`] returned).
    pub(super) fn start_handshake(&mut self) {
        self.enter(State::TlsHandshake);
    }

    /// Send what is queued, then close (a message in progress is abandoned).
    /// Closing twice, or after the close, is a no-op.
    pub(super) fn close(&mut self) {
        if !matches!(self.state, State::Closing | State::Closed) {
            self.abandon_message();
            self.enter(State::Closing);
        }
    }

    /// The driver was told to close ([`super::Action::Close`] returned).
    pub(super) fn closed(&mut self) {
        self.enter(State::Closed);
    }
}
