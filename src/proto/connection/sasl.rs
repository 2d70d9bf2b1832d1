//! AUTH (RFC 4954, aiosmtpd's `smtp_AUTH` and `challenge_auth`): PLAIN and LOGIN
//! built in, the credentials checked by the application ([`Ask::Auth`]); any other
//! offered mechanism runs step by step through the application ([`Ask::AuthStep`]).

use std::time::Instant;

use super::super::auth;
use super::super::command;
use super::super::outcome::AuthResult;
use super::super::replies;
use super::state::AuthWait;
use super::{Ask, Connection};

impl Connection {
    /// True when EHLO advertises AUTH: mechanisms are configured and, if AUTH
    /// needs TLS, TLS is up.
    pub(super) fn auth_offered(&self) -> bool {
        !self.config.auth_mechanisms.is_empty() && (!self.config.auth_require_tls || self.is_tls())
    }

    /// EHLO's `AUTH LOGIN PLAIN ...` line, mechanisms sorted.
    pub(super) fn auth_extension(&mut self) -> String {
        let mut line = self.pool.string("AUTH");
        push_sorted_words(&mut line, &self.config.auth_mechanisms);
        line
    }

    /// `AUTH mechanism [initial-response]`.
    pub(super) fn auth(&mut self, arg: Option<&str>) {
        if self.session.host_name.is_none() {
            return self.push(replies::SEND_EHLO_FIRST);
        }
        if !self.session.extended_smtp {
            return self.push(replies::AUTH_NOT_RECOGNIZED);
        }
        if self.config.auth_require_tls && !self.is_tls() {
            return self.push(replies::ENCRYPTION_REQUIRED);
        }
        if self.session.authenticated {
            return self.push(replies::ALREADY_AUTHENTICATED);
        }
        let Some(arg) = arg else {
            return self.push(replies::AUTH_NOT_ENOUGH_VALUES);
        };
        let mut args = arg.split_whitespace();
        let (Some(first), second) = (args.next(), args.next()) else {
            return self.push(replies::AUTH_NOT_ENOUGH_VALUES);
        };
        if args.next().is_some() {
            return self.push(replies::AUTH_TOO_MANY_VALUES);
        }
        // RFC 4954: mechanism names are case-insensitive (aiosmtpd: case-sensitive).
        let mechanism = first.to_ascii_uppercase();
        if !self.config.auth_mechanisms.contains(&mechanism) {
            return self.push(replies::AUTH_UNKNOWN_MECHANISM);
        }
        let initial = match second {
            None => None,
            Some(text) => match auth::decode_initial(text.as_bytes()) {
                Some(bytes) => Some(bytes),
                None => return self.push(replies::AUTH_BAD_BASE64),
            },
        };
        match (mechanism.as_str(), initial) {
            ("PLAIN", Some(decoded)) => self.auth_plain(decoded),
            ("PLAIN", None) => {
                self.push(replies::PLAIN_CHALLENGE);
                self.read_auth(AuthWait::Plain);
            }
            ("LOGIN", Some(user)) => {
                self.push(replies::LOGIN_PASSWORD_CHALLENGE);
                self.read_auth(AuthWait::LoginPassword(user));
            }
            ("LOGIN", None) => {
                self.push(replies::LOGIN_USERNAME_CHALLENGE);
                self.read_auth(AuthWait::LoginUser);
            }
            (_, response) => self.ask(Ask::AuthStep {
                mechanism,
                step: 0,
                response,
            }),
        }
    }

    fn auth_plain(&mut self, decoded: Vec<u8>) {
        match auth::split_plain(&decoded) {
            Some((login, password)) => self.ask(Ask::Auth {
                mechanism: "PLAIN".to_owned(),
                login,
                password,
            }),
            None => self.push(replies::AUTH_CANNOT_SPLIT),
        }
    }

    /// A client response line during AUTH.
    pub(super) fn auth_response(&mut self, now: Instant, line: &[u8]) {
        let Some(wait) = self.take_auth_wait() else {
            return;
        };
        self.deadline = now + self.config.timeout;
        let line = command::trim_python_ws(line);
        if line == b"*" {
            return self.push(replies::AUTH_ABORTED);
        }
        let Some(decoded) = auth::decode(line) else {
            return self.push(replies::AUTH_BAD_BASE64);
        };
        match wait {
            AuthWait::Plain => self.auth_plain(decoded),
            AuthWait::LoginUser => {
                self.push(replies::LOGIN_PASSWORD_CHALLENGE);
                self.read_auth(AuthWait::LoginPassword(decoded));
            }
            AuthWait::LoginPassword(login) => self.ask(Ask::Auth {
                mechanism: "LOGIN".to_owned(),
                login,
                password: decoded,
            }),
            AuthWait::Custom { mechanism, step } => self.ask(Ask::AuthStep {
                mechanism,
                step,
                response: Some(decoded),
            }),
        }
    }

    /// Applies an authenticator's answer to [`Ask::Auth`] / [`Ask::AuthStep`].
    pub(super) fn finish_auth(&mut self, ask: Ask, result: AuthResult) {
        let (mechanism, login, step) = match ask {
            Ask::Auth {
                mechanism, login, ..
            } => (mechanism, Some(login), None),
            Ask::AuthStep {
                mechanism, step, ..
            } => (mechanism, None, Some(step)),
            _ => return,
        };
        match (result, step) {
            (AuthResult::Success(reply), _) => {
                self.session.authenticated = true;
                self.session.auth_mechanism = Some(mechanism);
                if let Some(login) = login {
                    self.session.auth_identity = Some(String::from_utf8_lossy(&login).into_owned());
                }
                match reply {
                    Some(r) => self.push_reply(&r),
                    None => self.push(replies::AUTH_SUCCESS),
                }
            }
            (AuthResult::Challenge(challenge), Some(step)) => {
                let text = auth::encode(&challenge);
                replies::AUTH_CHALLENGE.push(text.as_bytes(), &mut self.output.bytes);
                self.read_auth(AuthWait::Custom {
                    mechanism,
                    step: step + 1,
                });
            }
            (AuthResult::Failure(Some(r)), _) => {
                self.push_reply(&r);
                self.auth_failed();
            }
            (AuthResult::Failure(None) | AuthResult::Challenge(_), _) => {
                self.push(replies::AUTH_INVALID);
                self.auth_failed();
            }
        }
    }

    /// Counts a refused AUTH against [`Config::max_auth_failures`](super::super::Config).
    fn auth_failed(&mut self) {
        self.auth_failures = self.auth_failures.saturating_add(1);
        if self
            .config
            .max_auth_failures
            .is_some_and(|max| self.auth_failures >= max)
        {
            self.push_closing(replies::TOO_MANY_AUTH_FAILURES);
        }
    }
}

/// Appends ` word` for each of `words` in sorted order (duplicates kept), without
/// allocating.
fn push_sorted_words(out: &mut String, words: &[String]) {
    let mut last: Option<&str> = None;
    while let Some(next) = words
        .iter()
        .map(String::as_str)
        .filter(|w| last.is_none_or(|l| *w > l))
        .min()
    {
        for _ in words.iter().filter(|w| *w == next) {
            out.push(' ');
            out.push_str(next);
        }
        last = Some(next);
    }
}
