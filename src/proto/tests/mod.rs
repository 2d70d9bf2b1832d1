//! Engine tests: byte transcripts fed through [`Connection`](super::Connection) the
//! way a driver feeds it, by topic, and a no-panic smoke test. aiosmtpd's recorded
//! answers are replayed by `tests/conformance.rs` (at engine level and through the
//! CLI on every runtime).
//!
//! Every expected reply here is aiosmtpd 1.4.6's, except where the engine
//! deliberately goes further (a `421` on idle timeout, answering complete commands
//! received before the peer closed), which is said where tested. The texts come
//! from the engine's reply catalogue ([`super::replies`]); the conformance replay
//! checks the catalogue against aiosmtpd's own texts. Every transcript is also fed
//! whole, split in two at every byte offset (inputs over 4 KiB: at a sample of
//! offsets; the 1 MB ones: none) and byte by byte: the output must not depend on
//! how the input was cut.

mod auth;
mod commands;
mod data;
mod extensions;
mod greeting;
mod harness;
mod hooks;
mod lines;
mod mail_rcpt;
mod misuse;
mod pipelining;
mod smoke;
mod starttls;
mod tls_harness;
