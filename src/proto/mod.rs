//! The sans-IO SMTP engine.
//!
//! A [`Connection`] owns everything about one SMTP session. It never blocks, never
//! does I/O and never reads a clock: bytes, time and the application's decisions
//! are its inputs (`handle_*`), replies, hook calls, body chunks and "close" its
//! outputs (`poll_*`). Drain [`Connection::poll_action`] completely after every
//! input. Every reply text lives here, so every runtime answers byte for byte the
//! same, and bad input from the peer always becomes an SMTP reply, never a panic.

mod address;
mod auth;
mod command;
mod config;
mod connection;
mod data;
mod outcome;
mod params;
mod proxy;
mod reply;
mod session;

pub use address::{ParsedPath, parse_path, parse_plain_path};
pub use command::Verb;
pub use config::{BOGUS_LIMIT, CALL_LIMIT_DEFAULT, CallLimits, Config, DATA_SIZE_DEFAULT};
pub use connection::{Action, Ask, BodyChunk, Connection, Error, HookCall};
pub use data::{DataDecoder, DataError, Progress};
pub use outcome::{AuthResult, Decision, HookFailure, Outcome};
pub use proxy::{
    PROXY_V1_MAX_LEN, PROXY_V2_SIGNATURE, ProxyAddr, ProxyCommand, ProxyData, ProxyFamily,
    ProxyParse, ProxyProtocol, ProxyTlvs, parse_proxy_header, parse_proxy_header_eof,
};
pub use reply::Reply;
pub use session::{AuthData, Envelope, Peer, Session, TlsInfo};

#[cfg(test)]
mod tests;
