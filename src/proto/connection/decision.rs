//! The application's answer to a hook call: what each [`Decision`] does to the
//! session, the envelope and the replies, per [`Ask`]. The shared tail (the idle
//! deadline restarts, buffered input is read) is `Connection::resume`, called
//! once by `handle_decision`.

use super::super::outcome::{AuthResult, Decision, HookFailure, Outcome};
use super::super::replies::{self, Canned};
use super::super::reply::{Reply, encode_lines, push_line};
use super::{Ask, Connection};

impl Connection {
    /// Applies `decision` to the hook call `ask` it answers.
    pub(super) fn apply_decision(&mut self, ask: Ask, decision: Decision) {
        self.answering(ask.verb());
        match ask {
            Ask::Auth { .. } | Ask::AuthStep { .. } => match auth_result(decision) {
                Ok(result) => self.finish_auth(ask, result),
                Err(failure) => self.push_failure(&failure),
            },
            Ask::Proxy => self.finish_proxy(decision),
            Ask::LmtpData => self.finish_lmtp_data(decision),
            _ => match outcome(decision) {
                Ok(Outcome::Default) => self.accept(ask, None),
                Ok(Outcome::Accept(reply)) => self.accept(ask, Some(reply)),
                Ok(Outcome::Reply(reply)) => {
                    self.push_reply(&reply);
                    if matches!(ask, Ask::Quit) {
                        self.close();
                    }
                    self.refuse_ask(ask);
                }
                // A failed hook is aiosmtpd's exception: a 500, and the session
                // goes on (even after QUIT).
                Err(failure) => {
                    self.push_failure(&failure);
                    self.refuse_ask(ask);
                }
            },
        }
    }

    /// The hook refused (or failed): nothing changes, except that a refused
    /// message ends its transaction.
    fn refuse_ask(&mut self, ask: Ask) {
        match ask {
            Ask::Data => self.reset_envelope(),
            Ask::Mail { .. } => self.pending_mail = Default::default(),
            Ask::Rcpt { .. } => self.align_rcpt_dsn(),
            _ => {}
        }
        self.pool.keep_ask(ask);
    }

    /// The default state change for `ask`, answered with `custom` or the
    /// command's default reply.
    fn accept(&mut self, ask: Ask, custom: Option<Reply>) {
        let reply = |default: Canned, out: &mut Vec<u8>| match &custom {
            Some(r) => r.encode(out),
            None => default.push(out),
        };
        match ask {
            Ask::Helo { hostname } => {
                if let Some(old) = self.session.host_name.replace(hostname) {
                    self.pool.keep(old);
                }
                match &custom {
                    Some(r) => r.encode(&mut self.output.bytes),
                    None => encode_lines(250, &self.config.hostname, &mut self.output.bytes),
                }
            }
            // EHLO's reply is the (possibly edited) extension list.
            Ask::Ehlo {
                hostname,
                extensions,
            } => {
                if let Some(old) = self.session.host_name.replace(hostname) {
                    self.pool.keep(old);
                }
                let config = self.config.clone();
                self.push_uncoded(|out| {
                    let sep = if extensions.is_empty() { b' ' } else { b'-' };
                    push_line(250, sep, &[config.hostname.as_bytes()], out);
                    let n = extensions.len();
                    for (i, ext) in extensions.iter().enumerate() {
                        let sep = if i + 1 == n { b' ' } else { b'-' };
                        push_line(250, sep, &[ext.as_bytes()], out);
                    }
                });
                self.pool.keep_extensions(extensions);
            }
            Ask::Mail {
                address,
                mut options,
            } => {
                if let Some(old) = self.envelope.mail_from.replace(address) {
                    self.pool.keep(old);
                }
                let typed = std::mem::take(&mut self.pending_mail);
                self.envelope.body_type = typed.body;
                self.envelope.require_tls = typed.require_tls;
                self.envelope.dsn = typed.dsn;
                self.envelope.mail_options.append(&mut options);
                self.pool.keep_list(options);
                reply(replies::OK, &mut self.output.bytes);
            }
            Ask::Rcpt {
                address,
                mut options,
            } => {
                self.envelope.rcpt_tos.push(address);
                self.align_rcpt_dsn();
                self.envelope.rcpt_options.append(&mut options);
                self.pool.keep_list(options);
                reply(replies::OK, &mut self.output.bytes);
            }
            Ask::Data => {
                reply(replies::OK, &mut self.output.bytes);
                self.reset_envelope();
            }
            Ask::Rset => reply(replies::OK, &mut self.output.bytes),
            Ask::Noop { arg } => {
                if let Some(arg) = arg {
                    self.pool.keep(arg);
                }
                reply(replies::OK, &mut self.output.bytes);
            }
            Ask::Quit => {
                reply(replies::BYE, &mut self.output.bytes);
                self.close();
            }
            Ask::Vrfy { address } => {
                self.pool.keep(address);
                reply(replies::CANNOT_VRFY, &mut self.output.bytes);
            }
            // Answered by their own finishers.
            Ask::Auth { .. } | Ask::AuthStep { .. } | Ask::LmtpData | Ask::Proxy => {}
        }
    }

    /// One `rcpt_dsn` entry per `rcpt_tos` entry after a RCPT hook, also when
    /// the hook recorded (or dropped) recipients itself, as aiosmtpd's hooks
    /// do: the newest recipient gets this RCPT's DSN parameters.
    fn align_rcpt_dsn(&mut self) {
        let dsn = std::mem::take(&mut self.pending_rcpt);
        let (tos, dsns) = (self.envelope.rcpt_tos.len(), &mut self.envelope.rcpt_dsn);
        if dsns.len() < tos {
            dsns.resize(tos - 1, Default::default());
            dsns.push(dsn);
        } else {
            dsns.truncate(tos);
        }
    }

    /// A valid PROXY header was accepted (the greeting follows) or refused (the
    /// refusal's reply, if any, then the close).
    fn finish_proxy(&mut self, decision: Decision) {
        match decision {
            Decision::Outcome(Outcome::Default | Outcome::Accept(_))
            | Decision::Auth(AuthResult::Success(_)) => self.push_greeting(),
            Decision::Outcome(Outcome::Reply(r)) => {
                self.push_reply(&r);
                self.close();
            }
            _ => self.close(),
        }
    }

    /// RFC 2033: one reply per accepted recipient after an LMTP message (aiosmtpd
    /// sends one for all, issue #517).
    fn finish_lmtp_data(&mut self, decision: Decision) {
        let n = self.envelope.rcpt_tos.len().max(1);
        match decision {
            Decision::Failed(f) => {
                for _ in 0..n {
                    self.push_failure(&f);
                }
            }
            Decision::Recipients(outcomes) => {
                for i in 0..n {
                    self.push_data_outcome(outcomes.get(i).or(outcomes.last()));
                }
            }
            Decision::Outcome(o) => {
                for _ in 0..n {
                    self.push_data_outcome(Some(&o));
                }
            }
            Decision::Auth(_) => {
                for _ in 0..n {
                    self.push(replies::OK);
                }
            }
        }
        self.reset_envelope();
    }

    fn push_data_outcome(&mut self, outcome: Option<&Outcome>) {
        match outcome {
            Some(Outcome::Accept(r) | Outcome::Reply(r)) => self.push_reply(r),
            Some(Outcome::Default) | None => self.push(replies::OK),
        }
    }

    fn push_failure(&mut self, f: &HookFailure) {
        replies::push_hook_failure(f.class, &f.kind, &f.message, &mut self.output.bytes);
    }
}

/// An authenticator's answer, whatever form the application gave it in.
fn auth_result(decision: Decision) -> Result<AuthResult, HookFailure> {
    Ok(match decision {
        Decision::Auth(r) => r,
        Decision::Outcome(Outcome::Accept(r)) => AuthResult::Success(Some(r)),
        Decision::Outcome(Outcome::Reply(r)) => AuthResult::Failure(Some(r)),
        Decision::Outcome(Outcome::Default) | Decision::Recipients(_) => AuthResult::Failure(None),
        Decision::Failed(f) => return Err(f),
    })
}

/// A command hook's answer, whatever form the application gave it in.
fn outcome(decision: Decision) -> Result<Outcome, HookFailure> {
    Ok(match decision {
        Decision::Outcome(o) => o,
        Decision::Recipients(v) => v.into_iter().next().unwrap_or_default(),
        Decision::Auth(AuthResult::Success(r)) => r.map_or(Outcome::Default, Outcome::Accept),
        Decision::Auth(AuthResult::Failure(Some(r))) => Outcome::Reply(r),
        Decision::Auth(_) => Outcome::Default,
        Decision::Failed(f) => return Err(f),
    })
}
