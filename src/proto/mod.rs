//! The sans-IO SMTP engine.
//!
//! A [`Connection`] owns everything about one SMTP session. It never blocks, never
//! does I/O and never reads a clock: bytes, time and the application's decisions
//! are its inputs (`handle_*`), replies, hook calls, body chunks and "close" its
//! outputs (`poll_*`). Drain [`Connection::poll_action`] completely after every
//! input. Every reply text lives here, so every runtime answers byte for byte the
//! same, and bad input from the peer always becomes an SMTP reply, never a panic.
//!
//! Which file holds what:
//! - `connection/`: the [`Connection`] state machine (its own module docs list
//!   its files: the `State` enum and transitions, input, verbs, hook answers,
//!   SASL, the string pool);
//! - `replies.rs`: every reply text, as named constants ([`replies`]);
//! - `config.rs`: what the engine reads ([`Config`]): limits, timeouts, offered
//!   features, with aiosmtpd's defaults;
//! - `command.rs`, `address.rs`, `params.rs`: command lines, paths and MAIL/RCPT
//!   parameters parsed aiosmtpd's way; `dsn.rs`: DSN parameters and xtext;
//!   `extensions.rs`: the opt-in ESMTP extensions ([`Extensions`]);
//!   `data.rs`: the DATA decoder; `bdat.rs`: BDAT's command and chunks;
//!   `auth.rs`: SASL encodings; `proxy_protocol.rs`: the PROXY protocol header;
//! - `session.rs`, `outcome.rs`, `reply.rs`: the values crossing the API
//!   ([`Session`], [`Envelope`], [`Outcome`], [`Decision`], [`Reply`]);
//! - `tests/`: engine tests by topic, fed at every byte offset.

mod address;
mod auth;
mod command;
mod config;
mod connection;
mod data;
mod dsn;
mod extensions;
mod outcome;
mod params;
mod proxy_protocol;
pub mod replies;
mod reply;
mod session;

pub use address::{ParsedPath, parse_path, parse_plain_path};
pub use command::Verb;
pub use config::{BOGUS_LIMIT, CALL_LIMIT_DEFAULT, CallLimits, Config, DATA_SIZE_DEFAULT};
pub use connection::{
    Action, Ask, BodyChunk, Connection, Error, HookCall, MessageAbort, MessageStart, UnsentReplies,
};
pub use data::{DataDecoder, DataError, Progress};
pub use dsn::{DsnReturn, MailDsn, Notify, OriginalRecipient, RcptDsn, encode_xtext};
pub use extensions::{Extensions, UnknownExtension};
pub use outcome::{AuthResult, Decision, FailureClass, HookFailure, Outcome};
pub use proxy_protocol::{
    PROXY_V1_MAX_LEN, PROXY_V2_SIGNATURE, ProxyAddr, ProxyCommand, ProxyData, ProxyFamily,
    ProxyParse, ProxyProtocol, ProxyTlvs, parse_proxy_header,
};
pub use reply::Reply;
pub use session::{AuthData, BodyType, Envelope, Peer, Session, Spool, TlsInfo};

#[cfg(test)]
mod tests;
