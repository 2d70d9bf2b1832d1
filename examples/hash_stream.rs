//! A streaming handler: hashes each message body as it arrives, holding no
//! message in memory (a message of any size costs the same few KiB). Run with
//! `cargo run --example hash_stream`, then send mail to the printed address
//! (e.g. `swaks --server 127.0.0.1:PORT --attach-body @big.iso`).
//!
//! The three streaming hooks: `handle_data_start` (the body begins: set up
//! per-message state in `envelope.spool`), `handle_data_chunk` (each piece,
//! in order; the server reads no more from the client until it returns) and
//! `handle_data` (the end: answer for the whole message).

use std::sync::{Arc, Mutex};

use smtpkit::{Envelope, Handler, HandlerError, HookResult, Outcome, Reply, Session};

/// FNV-1a, 64 bits: a digest that can be fed in pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv1a(pub u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// What is kept for one message while it streams.
#[derive(Default)]
struct Progress {
    digest: Fnv1a,
    bytes: usize,
}

/// Answers every message with its size and digest, and records them.
#[derive(Clone, Default)]
pub struct Hasher {
    /// (size, digest) of each message, in order.
    pub seen: Arc<Mutex<Vec<(usize, u64)>>>,
}

impl Handler for Hasher {
    async fn handle_data_start(
        &self,
        _: &mut Session,
        envelope: &mut Envelope,
    ) -> Result<(), HandlerError> {
        envelope.spool.set(Progress::default());
        Ok(())
    }

    async fn handle_data_chunk(
        &self,
        _: &mut Session,
        envelope: &mut Envelope,
        chunk: &[u8],
    ) -> Result<(), HandlerError> {
        // Not appended to envelope.content: nothing of the body is kept.
        let progress = envelope
            .spool
            .get_mut::<Progress>()
            .expect("set at the start");
        progress.digest.update(chunk);
        progress.bytes += chunk.len();
        Ok(())
    }

    async fn handle_data(&self, _: &mut Session, envelope: &mut Envelope) -> HookResult {
        let Progress { digest, bytes } = envelope.spool.take::<Progress>().unwrap_or_default();
        self.seen.lock().unwrap().push((bytes, digest.0));
        Ok(Outcome::Accept(Reply::new(
            250,
            format!("2.0.0 OK: {bytes} octets, FNV-1a {:016x}", digest.0),
        )))
    }
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut controller = smtpkit::tokio::Controller::new(Hasher::default())
        .with_hostname("127.0.0.1")
        .with_port(0)
        .with_config(smtpkit::Config::new("hash.example").with_data_size_limit(None));
    controller.start()?;
    println!(
        "listening on {}; Ctrl-C to stop",
        controller.local_addr().unwrap()
    );
    loop {
        std::thread::park();
    }
}
