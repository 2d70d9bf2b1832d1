//! `mailin-sink ADDR`: a minimal SMTP sink on mailin-embedded, the `mailin` peer
//! of benches/load.sh (like Postfix's `smtp-sink`: accept everything, keep nothing).
//!
//! No STARTTLS (`SslConfig::None`), no AUTH (no mechanism added), no logger
//! (mailin-embedded's `log` calls go nowhere). mailin-embedded serves each
//! session on a thread of its own (blocking I/O) from a pool of 4 by default
//! (0.8.3), which would serve at most 4 sessions at once and leave the idle
//! workload's 2,000 connections ungreeted; the pool is raised to
//! `MAILIN_THREADS` (default 4096) so that every workload runs, as in the
//! reference figures of issue 6.

use std::io;
use std::process::ExitCode;

use mailin_embedded::{Handler, Server, SslConfig};

/// Accepts every command (the `Handler` defaults answer 250) and drops the body.
#[derive(Clone, Copy)]
struct Discard;

impl Handler for Discard {
    fn data(&mut self, _chunk: &[u8]) -> io::Result<()> {
        Ok(())
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(addr), None) = (args.next(), args.next()) else {
        eprintln!("usage: mailin-sink HOST:PORT");
        return ExitCode::from(2);
    };
    let threads = std::env::var("MAILIN_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096);
    let mut server = Server::new(Discard);
    server.with_name("mailin-sink").with_num_threads(threads);
    let configured = server
        .with_ssl(SslConfig::None)
        .and_then(|s| s.with_addr(addr.as_str()));
    if let Err(e) = configured {
        eprintln!("mailin-sink: {addr}: {e}");
        return ExitCode::FAILURE;
    }
    // Runs until the process is killed; returns only if the listener fails.
    match server.serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailin-sink: {e}");
            ExitCode::FAILURE
        }
    }
}
