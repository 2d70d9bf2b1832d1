//! CHUNKING (RFC 3030): the BDAT command and the reading of its chunk. A chunk
//! is exactly the bytes the command announced (no dot handling), split
//! anywhere across reads. A chunk that cannot be accepted (no MAIL, no
//! recipient, over the size limit, STARTTLS or AUTH still required) is read to
//! its end and dropped, and only then answered, so the byte stream stays in
//! step with the commands; a size that is not a number cannot be skipped, so
//! it is answered `501` and the connection closes.

use std::time::Instant;

use super::super::command::{self, Verb};
use super::super::replies;
use super::state::{Chunk, State};
use super::{Ask, Connection};

impl Connection {
    /// `BDAT size [LAST]` (`arg` as sent, the line's checks not yet made).
    pub(super) fn bdat(&mut self, now: Instant, arg: Option<&[u8]>) {
        self.answering(Some(Verb::Bdat));
        let Some((size, last)) = command::parse_bdat(arg) else {
            // What follows could be chunk bytes or commands: reading it as
            // commands would let a chunk's content inject some.
            self.push(replies::BDAT_SYNTAX);
            return self.close();
        };
        // The call limit counts messages, as for DATA: a message may come in
        // any number of chunks.
        if self.chunked.is_none() && !self.count_call(b"BDAT") {
            replies::SENT_TOO_MANY_TIMES.push(b"BDAT", &mut self.output.bytes);
            return self.close();
        }
        self.deadline = now + self.config.timeout;
        let refusal = self.chunk_refusal(size);
        if refusal.is_none() && self.chunked.is_none() {
            self.start_message();
        }
        if refusal.is_none() {
            self.chunked = Some(self.chunked.unwrap_or(0).saturating_add(size));
        }
        self.read_chunk(Chunk {
            size,
            remaining: size,
            last,
            refusal,
        });
        if size == 0 {
            self.end_chunk();
        }
    }

    /// Why a chunk of `size` bytes cannot be accepted, if it cannot.
    fn chunk_refusal(&self, size: usize) -> Option<replies::Canned> {
        if self.starttls_required() {
            return Some(replies::STARTTLS_FIRST);
        }
        if self.session.host_name.is_none() {
            return Some(replies::SEND_HELO_FIRST);
        }
        if self.config.auth_required && !self.session.authenticated {
            return Some(replies::AUTH_REQUIRED);
        }
        if self.envelope.mail_from.is_none() {
            return Some(replies::NEED_MAIL);
        }
        if self.envelope.rcpt_tos.is_empty() {
            return Some(replies::NEED_RCPT);
        }
        let total = self.chunked.unwrap_or(0).saturating_add(size);
        if self
            .config
            .data_size_limit
            .is_some_and(|limit| total > limit)
        {
            return Some(replies::TOO_MUCH_DATA);
        }
        None
    }

    /// Reads chunk bytes from `avail`; returns how many it used and whether
    /// the chunk is complete.
    pub(super) fn consume_chunk(&mut self, now: Instant, avail: &[u8]) -> (usize, bool) {
        let State::Bdat(chunk) = &mut self.state else {
            return (0, false);
        };
        let n = chunk.remaining.min(avail.len());
        chunk.remaining -= n;
        if chunk.refusal.is_none() {
            self.body.bytes.extend_from_slice(&avail[..n]);
        }
        if n > 0 {
            // Progress is activity: a large chunk does not time out.
            self.deadline = now + self.config.timeout;
        }
        let done = chunk.remaining == 0;
        if done {
            self.end_chunk();
        }
        (n, done)
    }

    /// The chunk's last byte arrived: its reply, or the message's hook after
    /// `BDAT ... LAST`.
    fn end_chunk(&mut self) {
        let State::Bdat(chunk) = self.state else {
            return;
        };
        self.read_commands();
        match chunk.refusal {
            Some(refusal) => {
                self.push(refusal);
                if refusal == replies::TOO_MUCH_DATA {
                    // The message cannot be complete: the transaction ends.
                    self.reset_envelope();
                }
            }
            None if chunk.last && self.config.lmtp => self.ask(Ask::LmtpData),
            None if chunk.last => self.ask(Ask::Data),
            None => {
                let mut digits = itoa::Buffer::new();
                let size = digits.format(chunk.size).as_bytes();
                replies::CHUNK_RECEIVED.push(size, &mut self.output.bytes);
            }
        }
    }
}
