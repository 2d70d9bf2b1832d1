//! Strings kept for reuse, so that the steady path allocates nothing per command:
//! the addresses, host names, parameters and EHLO lines of answered hook calls and
//! reset envelopes come back here and are handed out again.

use super::super::address::py_space;
use super::super::params;
use super::super::{Ask, Envelope};

/// At most this many spare strings are kept per connection.
const SPARE_STRINGS: usize = 32;
/// Spare strings larger than this are dropped rather than kept.
const SPARE_STRING_CAPACITY: usize = 1024;
/// A body buffer larger than this is freed after its transaction instead of
/// being reused for the next one: small messages reuse it, and an idle
/// connection never keeps a large message's memory.
const KEEP_CONTENT_CAPACITY: usize = 8 << 10;

/// Cleared strings and lists of one connection, ready for reuse.
#[derive(Debug, Default)]
pub(super) struct StringPool {
    /// Empty strings with capacity.
    spare: Vec<String>,
    /// An empty list (MAIL/RCPT parameters).
    spare_list: Vec<String>,
    /// The EHLO extension list.
    spare_extensions: Vec<String>,
}

impl StringPool {
    /// A string holding `text`, reusing a spare allocation when there is one.
    pub(super) fn string(&mut self, text: &str) -> String {
        let mut s = self.spare.pop().unwrap_or_default();
        s.push_str(text);
        s
    }

    /// Keeps `s`, emptied, when there is room and it is small.
    pub(super) fn keep(&mut self, mut s: String) {
        if self.spare.len() < SPARE_STRINGS
            && s.capacity() <= SPARE_STRING_CAPACITY
            && s.capacity() > 0
        {
            s.clear();
            self.spare.push(s);
        }
    }

    /// An empty list for the EHLO extension lines.
    pub(super) fn extensions(&mut self) -> Vec<String> {
        std::mem::take(&mut self.spare_extensions)
    }

    /// Gives back a parameter list and its strings.
    pub(super) fn keep_list(&mut self, mut list: Vec<String>) {
        for s in list.drain(..) {
            self.keep(s);
        }
        if list.capacity() > self.spare_list.capacity() {
            self.spare_list = list;
        }
    }

    /// Gives back the EHLO extension list and its strings.
    pub(super) fn keep_extensions(&mut self, mut list: Vec<String>) {
        for s in list.drain(..) {
            self.keep(s);
        }
        self.spare_extensions = list;
    }

    /// Gives back the strings of an answered (or refused) hook call.
    pub(super) fn keep_ask(&mut self, ask: Ask) {
        match ask {
            Ask::Helo { hostname } => self.keep(hostname),
            Ask::Ehlo {
                hostname,
                extensions,
            } => {
                self.keep(hostname);
                self.keep_extensions(extensions);
            }
            Ask::Mail { address, options } | Ask::Rcpt { address, options } => {
                self.keep(address);
                self.keep_list(options);
            }
            Ask::Noop { arg: Some(arg) } => self.keep(arg),
            Ask::Vrfy { address } => self.keep(address),
            _ => {}
        }
    }

    /// aiosmtpd's parameter split (uppercased, on white space) into reused strings.
    pub(super) fn split_options(&mut self, rest: &str) -> Vec<String> {
        if !rest.is_ascii() {
            return params::split_options(rest);
        }
        let mut words = rest.split(py_space).filter(|w| !w.is_empty()).peekable();
        if words.peek().is_none() {
            return Vec::new();
        }
        let mut list = std::mem::take(&mut self.spare_list);
        for word in words {
            let mut s = self.string(word);
            s.make_ascii_uppercase();
            list.push(s);
        }
        list
    }

    /// Empties `envelope` (HELO, EHLO, RSET, after DATA), keeping its strings and
    /// its body buffer (up to a size) for the next transaction.
    pub(super) fn reset(&mut self, envelope: &mut Envelope) {
        let Envelope {
            mail_from,
            mail_options,
            smtp_utf8,
            rcpt_tos,
            rcpt_options,
            body_type,
            require_tls,
            dsn,
            rcpt_dsn,
            spool,
            content,
        } = envelope;
        spool.clear();
        *body_type = None;
        *require_tls = false;
        if dsn.envid.is_some() || dsn.ret.is_some() {
            *dsn = Default::default();
        }
        rcpt_dsn.clear();
        for s in mail_from
            .take()
            .into_iter()
            .chain(mail_options.drain(..))
            .chain(rcpt_tos.drain(..))
            .chain(rcpt_options.drain(..))
        {
            self.keep(s);
        }
        *smtp_utf8 = false;
        if content.capacity() > KEEP_CONTENT_CAPACITY {
            *content = Vec::new();
        } else {
            content.clear();
        }
    }
}
