//! # smtpkit
//!
//! An SMTP and LMTP server toolkit that answers like Python's aiosmtpd, byte for
//! byte, on tokio (and, through the same driver, any runtime with a small adapter).
//!
//! Three layers, data flowing down and decisions up:
//!
//! - [`proto`]: the sans-IO engine. A [`proto::Connection`] takes bytes, time and
//!   hook answers (`handle_*`) and gives replies, hook calls, body chunks and
//!   "close" (`poll_*`). It never blocks, reads a clock, does I/O or panics.
//!   **Drain [`proto::Connection::poll_action`] after every input.**
//! - `server` (with a runtime feature): the [`Handler`] trait with aiosmtpd's hooks,
//!   the hook table, the authenticator beside the handler, the settings, the one
//!   connection driver over futures-io, and the controller logic.
//! - runtime modules (`smtpkit::tokio`, `smtpkit::smol`, `smtpkit::async_std`,
//!   features `runtime-*`): each a `Runtime` impl plus the generated `Controller`,
//!   `UnixSocketController`, `UnthreadedController`,
//!   `UnixSocketUnthreadedController` and `serve`.
//!
//! Built without default features, the crate is the engine alone, with no async
//! runtime or futures crate in its dependency tree.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod proto;

pub use proto::{Config, Envelope, Outcome, Peer, Reply, Session};

#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "server")]
pub mod handlers;

#[cfg(feature = "server")]
pub use server::{Handler, HandlerError, HookResult, ServerError, get_localhost};

#[cfg(feature = "runtime-tokio")]
#[path = "../runtimes/tokio.rs"]
pub mod tokio;

#[cfg(any(feature = "runtime-smol", feature = "runtime-async-std"))]
#[path = "../runtimes/async_io.rs"]
mod async_io;

#[cfg(feature = "runtime-smol")]
#[path = "../runtimes/smol.rs"]
pub mod smol;

#[cfg(feature = "runtime-async-std")]
#[path = "../runtimes/async_std.rs"]
pub mod async_std;

/// The README's Rust examples, compiled as doctests.
#[cfg(all(doctest, feature = "runtime-tokio"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
