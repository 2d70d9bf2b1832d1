//! The logic of smtpkit's fuzz targets, one plain `run(&[u8])` function per target.
//!
//! Shared by the libFuzzer binaries in `fuzz_targets/` and by the main crate's
//! `tests/fuzz_corpus.rs`, which includes this file with `#[path]` and replays the
//! committed corpus on stable Rust. So this code uses nothing but `std` and
//! `smtpkit::proto` (no libFuzzer, no other crate), and its submodules are declared
//! with explicit `#[path]`s that resolve the same way in both builds.
#![forbid(unsafe_code)]

#[path = "harness.rs"]
pub mod harness;

#[path = "auth.rs"]
pub mod auth;
#[path = "bdat.rs"]
pub mod bdat;
#[path = "command.rs"]
pub mod command;
#[path = "data.rs"]
pub mod data;
#[path = "dsn.rs"]
pub mod dsn;
#[path = "proxy.rs"]
pub mod proxy;
#[path = "session.rs"]
pub mod session;

/// A target's entry point: one fuzz input.
pub type Run = fn(&[u8]);

/// Every target: its name (the corpus directory) and its entry point.
pub const TARGETS: [(&str, Run); 7] = [
    ("auth", auth::run),
    ("bdat", bdat::run),
    ("command", command::run),
    ("data", data::run),
    ("dsn", dsn::run),
    ("proxy", proxy::run),
    ("session", session::run),
];
