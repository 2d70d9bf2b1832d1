//! Input: the received bytes become a PROXY header, command lines, message bodies
//! or AUTH responses, depending on the state; every command line passes aiosmtpd's
//! checks (syntax, ASCII, length, required STARTTLS, call limits, unknown
//! commands) before its verb runs.

use std::borrow::Cow;
use std::time::Instant;

use super::super::command::{self, Verb};
use super::super::data::DataError;
use super::super::proxy_protocol::{ProxyParse, parse_proxy_header};
use super::super::replies;
use super::state::State;
use super::{Ask, Connection};

/// The commands allowed before STARTTLS when it is required (aiosmtpd's set).
const ALLOWED_BEFORE_STARTTLS: [&[u8]; 4] = [b"NOOP", b"EHLO", b"STARTTLS", b"QUIT"];

/// What one read step did with the bytes it was offered.
enum Step {
    /// Used this many bytes; the next step may go on.
    Used(usize),
    /// Used this many bytes (possibly none) and needs more input.
    NeedMore(usize),
}

impl Connection {
    /// Consumes buffered input until the connection stops reading (a hook call,
    /// STARTTLS, the close) or more bytes are needed.
    pub(super) fn process(&mut self, now: Instant) {
        let input = std::mem::take(&mut self.input);
        let consumed = self.consume(now, &input[self.input_pos..]);
        self.input_pos += consumed;
        self.input = input;
        if self.input_pos >= self.input.len() {
            self.clear_input();
        } else if self.input_pos > self.input.len() / 2 {
            self.input.drain(..self.input_pos);
            self.input_pos = 0;
        }
    }

    /// Consumes `input` until the connection stops reading or more bytes are
    /// needed; returns how many bytes were used.
    pub(super) fn consume(&mut self, now: Instant, input: &[u8]) -> usize {
        let mut pos = 0;
        while pos < input.len() {
            if self.closing_after_message {
                // A graceful shutdown: nothing after the message is read.
                self.close_if_idle();
            }
            let avail = &input[pos..];
            let step = match &self.state {
                State::ProxyHeader => self.consume_proxy_header(avail),
                State::Command { discarding } => self.consume_command_line(now, avail, *discarding),
                State::Data(_) => self.consume_data(now, avail),
                State::Bdat(_) => match self.consume_chunk(now, avail) {
                    (n, true) => Step::Used(n),
                    (n, false) => Step::NeedMore(n),
                },
                State::Auth(_) => self.consume_auth_line(now, avail),
                _ => break,
            };
            match step {
                Step::Used(n) => pos += n,
                Step::NeedMore(n) => {
                    pos += n;
                    break;
                }
            }
        }
        if self.closing_after_message {
            self.close_if_idle();
        }
        if matches!(self.state, State::TlsRequested | State::TlsHandshake) {
            // RFC 3207 4.2: anything pipelined after STARTTLS is discarded.
            pos = input.len();
        }
        if self.peer_closed && self.state.reads_input() {
            self.close();
        }
        pos
    }

    fn consume_proxy_header(&mut self, avail: &[u8]) -> Step {
        match parse_proxy_header(avail) {
            ProxyParse::Partial => Step::NeedMore(0),
            ProxyParse::Done { data, consumed } => {
                if data.is_valid() {
                    self.session.proxy_data = Some(data);
                    self.ask(Ask::Proxy);
                } else {
                    // aiosmtpd closes silently on an invalid header.
                    self.close();
                }
                Step::Used(consumed)
            }
        }
    }

    fn consume_command_line(&mut self, now: Instant, avail: &[u8], discarding: bool) -> Step {
        let limit = self.config.line_length_limit;
        match memchr::memchr(b'\n', avail) {
            Some(i) => {
                if discarding || i > limit {
                    if discarding {
                        self.read_commands();
                    }
                    self.push(replies::COMMAND_TOO_LONG);
                    if !discarding && self.is_bdat(avail) {
                        self.close();
                    }
                } else {
                    self.dispatch(now, &avail[..i]);
                }
                Step::Used(i + 1)
            }
            // A line over the limit is dropped as it arrives, not buffered.
            None if discarding || avail.len() > limit => {
                if !discarding && self.is_bdat(avail) {
                    self.push(replies::COMMAND_TOO_LONG);
                    self.close();
                    return Step::NeedMore(avail.len());
                }
                if !discarding {
                    self.discard_line();
                }
                Step::NeedMore(avail.len())
            }
            None => Step::NeedMore(0),
        }
    }

    fn consume_auth_line(&mut self, now: Instant, avail: &[u8]) -> Step {
        let limit = self.config.line_length_limit;
        match memchr::memchr(b'\n', avail) {
            Some(i) if i > limit => {
                self.read_commands();
                self.push(replies::COMMAND_TOO_LONG);
                Step::Used(i + 1)
            }
            Some(i) => {
                self.auth_response(now, &avail[..i]);
                Step::Used(i + 1)
            }
            None if avail.len() > limit => {
                self.discard_line();
                Step::NeedMore(avail.len())
            }
            None => Step::NeedMore(0),
        }
    }

    fn consume_data(&mut self, now: Instant, avail: &[u8]) -> Step {
        let State::Data(decoder) = &mut self.state else {
            return Step::NeedMore(0);
        };
        let had_error = decoder.error().is_some();
        let lines_before = decoder.lines();
        let progress = decoder.decode(avail, &mut self.body.bytes);
        if decoder.lines() > lines_before {
            // Progress is activity: a long message does not time out.
            self.deadline = now + self.config.timeout;
        }
        let error = decoder.error();
        if !had_error && error.is_some() {
            self.envelope.content.clear();
        }
        if !progress.finished {
            return Step::NeedMore(progress.consumed);
        }
        match error {
            Some(DataError::LineTooLong) => self.refuse_message(replies::LINE_TOO_LONG),
            Some(DataError::TooMuchData) => self.refuse_message(replies::TOO_MUCH_DATA),
            None if self.config.lmtp => self.ask(Ask::LmtpData),
            None => self.ask(Ask::Data),
        }
        Step::Used(progress.consumed)
    }

    fn refuse_message(&mut self, reply: replies::Canned) {
        self.read_commands();
        self.push(reply);
        self.reset_envelope();
    }

    /// aiosmtpd's `_handle_client` checks for one command line (without its LF).
    fn dispatch(&mut self, now: Instant, line: &[u8]) {
        self.answering(None);
        let line = command::trim_line_end(line);
        if line.is_empty() {
            return self.push(replies::BAD_SYNTAX);
        }
        let raw = command::split(line);
        if !raw.word.is_ascii() {
            return self.push(replies::BAD_SYNTAX);
        }
        // Uppercased on the stack: verbs are short (a long bogus word allocates).
        let mut upper = [0u8; 16];
        let long_upper;
        let word: &[u8] = if !raw.word.iter().any(u8::is_ascii_lowercase) {
            raw.word
        } else if let Some(buf) = upper.get_mut(..raw.word.len()) {
            buf.copy_from_slice(raw.word);
            buf.make_ascii_uppercase();
            buf
        } else {
            long_upper = raw.word.to_ascii_uppercase();
            &long_upper
        };
        if word == b"BDAT" && self.config.extensions.chunking {
            // Its chunk follows the line: every refusal waits for the chunk's end.
            return self.bdat(now, raw.arg);
        }
        let arg: Option<Cow<'_, str>> = match raw.arg {
            None => None,
            Some(a) if self.config.enable_smtputf8 => Some(String::from_utf8_lossy(a)),
            Some(a) => match std::str::from_utf8(a) {
                Ok(s) if a.is_ascii() => Some(Cow::Borrowed(s)),
                _ => return self.push(replies::STRICT_ASCII),
            },
        };
        let limit = if self.session.extended_smtp && word == b"MAIL" {
            self.config.mail_command_limit()
        } else {
            self.config.command_size_limit
        };
        if line.len() > limit {
            return self.push(replies::COMMAND_TOO_LONG);
        }
        // LHLO is LMTP's EHLO (aiosmtpd blocks it, so LMTP with required
        // STARTTLS could never start); in SMTP it is refused like any other.
        let allowed =
            ALLOWED_BEFORE_STARTTLS.contains(&word) || (self.config.lmtp && word == b"LHLO");
        if !allowed && self.starttls_required() {
            return self.push(replies::STARTTLS_FIRST);
        }
        if !self.count_call(word) {
            replies::SENT_TOO_MANY_TIMES.push(word, &mut self.output.bytes);
            return self.close();
        }
        let verb = match Verb::from_upper(word) {
            // LMTP: HELO and EHLO exist but are refused (aiosmtpd: no bogus count);
            // LHLO does not exist in SMTP.
            Some(Verb::Helo | Verb::Ehlo) if self.config.lmtp => {
                return self.push_not_recognized(word);
            }
            Some(Verb::Lhlo) if !self.config.lmtp => None,
            // Without CHUNKING BDAT is unknown, as in aiosmtpd.
            Some(Verb::Bdat) => None,
            v => v,
        };
        let Some(verb) = verb else {
            self.bogus_budget = self.bogus_budget.saturating_sub(1);
            if self.bogus_budget < 1 {
                self.push(replies::TOO_MANY_UNRECOGNIZED);
                self.close();
            } else {
                self.push_not_recognized(word);
            }
            return;
        };
        self.answering(Some(verb));
        self.deadline = now + self.config.timeout;
        self.run(verb, arg.as_deref());
    }

    /// `500 Error: command "X" not recognized` (`5.5.1` with enhanced codes).
    fn push_not_recognized(&mut self, word: &[u8]) {
        self.push_with_status("5.5.1", |out| replies::NOT_RECOGNIZED.push(word, out));
    }

    /// With CHUNKING, a command line that starts as BDAT: when it is too long
    /// to be read, where its chunk ends is unknown and the connection closes
    /// (reading the chunk as commands would let it inject some).
    fn is_bdat(&self, line: &[u8]) -> bool {
        self.config.extensions.chunking
            && line.len() > 4
            && line[..4].eq_ignore_ascii_case(b"BDAT")
            && line[4] == b' '
    }

    /// STARTTLS is required and the connection is not TLS yet.
    pub(super) fn starttls_required(&self) -> bool {
        self.config.starttls && self.config.require_starttls && !self.is_tls()
    }

    /// Counts a call of `word` against [`super::super::Config::command_call_limit`];
    /// false when its budget is spent.
    pub(super) fn count_call(&mut self, word: &[u8]) -> bool {
        let Some(limits) = &self.config.command_call_limit else {
            return true;
        };
        let budget = limits.limit_for(word);
        let i = match self.call_counts.iter().position(|(w, _)| **w == *word) {
            Some(i) => i,
            None => {
                self.call_counts.push((word.to_vec(), 0));
                self.call_counts.len() - 1
            }
        };
        let used = &mut self.call_counts[i].1;
        if *used >= budget {
            return false;
        }
        *used += 1;
        true
    }
}
