//! `session`: the whole engine driven by a sequence of operations read from the
//! input: byte chunks in an SMTP alphabet (split anywhere), hook answers of every
//! kind, time steps and timeouts, TLS established, peer closed, hook timeout and
//! shutdown, over the fuzzed configurations. [`Harness`] checks the invariants
//! after every call; at the end the peer closes and the connection must close.
//!
//! Input layout: config selector, config tweaks, peer/TLS flags, then operations.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use smtpkit::proto::{Ask, AuthResult, Decision, Outcome, Peer};

use super::harness::{Harness, Source, config};

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut src = Source::new(data);
    let config = config(src.byte(), src.byte());
    let flags = src.byte();
    let peer = if flags & 1 == 0 {
        Peer::Unknown
    } else {
        Peer::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 2525)))
    };
    let implicit_tls = flags & 0x06 == 0x06;
    let refused = flags & 0x78 == 0x78;
    let mut h = Harness::new(config, peer, implicit_tls, refused);
    let mut ops = 0;
    while !src.is_empty() && ops < 4096 {
        ops += 1;
        let op = src.byte();
        match op % 32 {
            0..=13 => {
                let mut chunk = Vec::new();
                src.smtp_bytes(48, &mut chunk);
                // Split anywhere: one call, two calls, or byte by byte.
                match op / 32 {
                    0..=3 => h.input(&chunk),
                    4..=5 => {
                        let at = src.below(chunk.len() + 1);
                        h.input(&chunk[..at]);
                        h.input(&chunk[at..]);
                    }
                    6 => {
                        for b in &chunk {
                            h.input(std::slice::from_ref(b));
                        }
                    }
                    _ => {
                        // A long line of filler (line-length limits, discarding).
                        let n = 64 * (1 + src.below(32));
                        chunk.resize(chunk.len() + n, b'z');
                        h.input(&chunk);
                    }
                }
            }
            14..=21 => {
                let decision = match h.pending {
                    // Mostly sensible answers so sessions get somewhere.
                    Some(Ask::Auth { .. } | Ask::AuthStep { .. }) if op & 0x80 == 0 => {
                        Decision::Auth(AuthResult::Success(None))
                    }
                    Some(_) if op & 0xc0 == 0 => Decision::Outcome(Outcome::Default),
                    _ => src.decision(),
                };
                if matches!(h.pending, Some(Ask::Ehlo { .. })) && op & 0xe0 == 0x20 {
                    let extensions = match src.below(3) {
                        0 => Vec::new(),
                        1 => vec!["8BITMIME".to_owned()],
                        _ => vec!["X-FOO bar".to_owned(), "HELP".to_owned()],
                    };
                    h.decide_ehlo(extensions, decision);
                } else {
                    h.decide(decision);
                }
            }
            22 | 23 => {
                const STEPS: [u64; 8] = [0, 1, 4, 10, 299, 300, 301, 3600];
                h.advance(Duration::from_secs(STEPS[src.below(STEPS.len())]));
            }
            24 => h.timeout(op & 0x20 == 0),
            25 | 26 => h.tls_established(),
            27 => h.peer_close(),
            28 if op & 0xe0 == 0xe0 => h.hook_timeout(),
            29 if op & 0xe0 == 0xe0 => h.shutdown(),
            _ => {
                // NOOP-ish filler: a complete command line.
                h.input(b"NOOP\r\n");
            }
        }
    }
    h.finish(|ask| match ask {
        Ask::Auth { .. } | Ask::AuthStep { .. } => Decision::Auth(AuthResult::Failure(None)),
        _ => Decision::Outcome(Outcome::Default),
    });
}
