//! `mailin-sink ADDR`: a minimal SMTP sink on mailin-embedded, the `mailin` peer
//! of benches/load.sh (like Postfix's `smtp-sink`: accept everything, keep nothing).
//!
//! No STARTTLS (`SslConfig::None`), no AUTH (no mechanism added), no logger
//! (mailin-embedded's `log` calls go nowhere). The thread pool keeps
//! mailin-embedded's default, 4 threads as of 0.8.3 (`Server::new` sets
//! `num_threads: 4`): blocking I/O, one thread per session, so at most 4
//! sessions are served at once and further connections wait, ungreeted, until
//! one ends.

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
    let mut server = Server::new(Discard);
    server.with_name("mailin-sink");
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
