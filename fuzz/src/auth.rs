//! `auth`: AUTH exchanges through [`Connection`](smtpkit::proto::Connection)
//! (AUTH offered without TLS and required before MAIL), against a model of
//! RFC 4954 as the engine implements it: PLAIN and LOGIN with and without
//! initial responses, a custom mechanism (`XTEST`) answered with challenges,
//! `*` aborts, base64-ish garbage, pipelined lines, and authenticator answers of
//! every kind. The model predicts every hook call exactly (decoded credentials
//! included, using a reference base64) and every reply's code (and its exact text
//! for the `334` challenges and the replies the authenticator chose).
//!
//! Input layout: operations, each an opcode byte and its arguments.

use std::collections::VecDeque;

use smtpkit::proto::{Ask, AuthResult, Config, Decision, FailureClass, Outcome, Peer, Reply};

use super::harness::{Harness, Source, b64_decode, b64_encode, encode_reply};

/// A reply the model expects: its code, and its lines when they are known.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Expect {
    code: u16,
    wire: Option<Vec<u8>>,
}

impl Expect {
    fn code(code: u16) -> Self {
        Expect { code, wire: None }
    }

    fn exact(code: u16, text: &str) -> Self {
        Expect {
            code,
            wire: Some(encode_reply(code, text)),
        }
    }

    fn reply(r: &Reply) -> Self {
        Expect::exact(r.code(), r.text())
    }
}

/// What an AUTH response line answers.
#[derive(Clone, Debug)]
enum Wait {
    Plain,
    LoginUser,
    LoginPassword(Vec<u8>),
    Custom(u32),
}

/// The engine as the model sees it.
struct Model {
    wait: Option<Wait>,
    authenticated: bool,
    mail: bool,
    pending: Option<Ask>,
    queue: VecDeque<Vec<u8>>,
    replies: Vec<Expect>,
    asks: Vec<Ask>,
    extensions: Vec<String>,
    bogus_budget: u32,
    closed: bool,
}

/// The engine's command words.
fn is_verb(word: &str) -> bool {
    const VERBS: [&str; 14] = [
        "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP",
        "STARTTLS", "AUTH", "LHLO",
    ];
    VERBS.contains(&word.to_ascii_uppercase().as_str())
}

const MECHS: [&str; 3] = ["LOGIN", "PLAIN", "XTEST"];
const LOGIN_USER: &str = "VXNlciBOYW1lAA==";
const LOGIN_PASSWORD: &str = "UGFzc3dvcmQA";

/// Python's `bytes.strip()`.
fn py_strip(b: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    &b[start..end]
}

/// `authzid NUL authcid NUL passwd` → (authcid, passwd).
fn split_plain(decoded: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
    match parts[..] {
        [_, login, password] => Some((login.to_vec(), password.to_vec())),
        _ => None,
    }
}

impl Model {
    fn line(&mut self, line: &[u8]) {
        self.queue.push_back(line.to_vec());
        self.process();
    }

    fn process(&mut self) {
        while self.pending.is_none() && !self.closed {
            let Some(line) = self.queue.pop_front() else {
                return;
            };
            match self.wait.take() {
                Some(wait) => self.response(wait, &line),
                None => self.command(&line),
            }
        }
    }

    fn ask(&mut self, ask: Ask) {
        self.asks.push(ask.clone());
        self.pending = Some(ask);
    }

    fn plain(&mut self, decoded: &[u8]) {
        match split_plain(decoded) {
            Some((login, password)) => self.ask(Ask::Auth {
                mechanism: "PLAIN".to_owned(),
                login,
                password,
            }),
            None => self.replies.push(Expect::code(501)),
        }
    }

    fn response(&mut self, wait: Wait, line: &[u8]) {
        let line = py_strip(line);
        if line == b"*" {
            return self.replies.push(Expect::code(501));
        }
        let Some(decoded) = b64_decode(line) else {
            return self.replies.push(Expect::code(501));
        };
        match wait {
            Wait::Plain => self.plain(&decoded),
            Wait::LoginUser => {
                self.replies.push(Expect::exact(334, LOGIN_PASSWORD));
                self.wait = Some(Wait::LoginPassword(decoded));
            }
            Wait::LoginPassword(login) => self.ask(Ask::Auth {
                mechanism: "LOGIN".to_owned(),
                login,
                password: decoded,
            }),
            Wait::Custom(step) => self.ask(Ask::AuthStep {
                mechanism: "XTEST".to_owned(),
                step,
                response: Some(decoded),
            }),
        }
    }

    fn command(&mut self, line: &[u8]) {
        let line = std::str::from_utf8(line).expect("the auth target sends ASCII");
        let line = line.trim_end_matches(['\r', '\n']);
        let (word, arg) = match line.split_once(' ') {
            Some((w, a)) => {
                let a = std::str::from_utf8(py_strip(a.as_bytes())).expect("ASCII");
                (w, (!a.is_empty()).then_some(a))
            }
            None => (line, None),
        };
        match word.to_ascii_uppercase().as_str() {
            "AUTH" => self.auth(arg),
            "MAIL" => {
                if !self.authenticated {
                    self.replies.push(Expect::code(530));
                } else if self.mail {
                    self.replies.push(Expect::code(503));
                } else {
                    self.ask(Ask::Mail {
                        address: "a@b.c".to_owned(),
                        options: Vec::new(),
                    });
                }
            }
            "NOOP" => self.ask(Ask::Noop { arg: None }),
            "RSET" => {
                self.mail = false;
                self.ask(Ask::Rset);
            }
            "EHLO" => {
                self.mail = false;
                self.ask(Ask::Ehlo {
                    hostname: arg.expect("EHLO has an argument").to_owned(),
                    extensions: self.extensions.clone(),
                });
            }
            other => {
                assert!(!is_verb(other), "the auth target does not send {other:?}");
                if line.is_empty() {
                    return self.replies.push(Expect::code(500));
                }
                self.bogus_budget = self.bogus_budget.saturating_sub(1);
                if self.bogus_budget < 1 {
                    self.replies.push(Expect::code(502));
                    self.closed = true;
                } else {
                    self.replies.push(Expect::code(500));
                }
            }
        }
    }

    fn auth(&mut self, arg: Option<&str>) {
        if self.authenticated {
            return self.replies.push(Expect::code(503));
        }
        let Some(arg) = arg else {
            return self.replies.push(Expect::code(501));
        };
        let args: Vec<&str> = arg.split_whitespace().collect();
        if args.len() > 2 {
            return self.replies.push(Expect::code(501));
        }
        let mechanism = args[0].to_ascii_uppercase();
        if !MECHS.contains(&mechanism.as_str()) {
            return self.replies.push(Expect::code(504));
        }
        let initial = match args.get(1) {
            None => None,
            Some(&"=") => Some(Vec::new()),
            Some(text) => match b64_decode(text.as_bytes()) {
                Some(d) => Some(d),
                None => return self.replies.push(Expect::code(501)),
            },
        };
        match (mechanism.as_str(), initial) {
            ("PLAIN", Some(d)) => self.plain(&d),
            ("PLAIN", None) => {
                self.replies.push(Expect::exact(334, ""));
                self.wait = Some(Wait::Plain);
            }
            ("LOGIN", Some(user)) => {
                self.replies.push(Expect::exact(334, LOGIN_PASSWORD));
                self.wait = Some(Wait::LoginPassword(user));
            }
            ("LOGIN", None) => {
                self.replies.push(Expect::exact(334, LOGIN_USER));
                self.wait = Some(Wait::LoginUser);
            }
            (_, response) => self.ask(Ask::AuthStep {
                mechanism,
                step: 0,
                response,
            }),
        }
    }

    fn decide(&mut self, decision: &Decision) {
        let Some(ask) = self.pending.take() else {
            return;
        };
        match ask {
            Ask::Auth { .. } | Ask::AuthStep { .. } => {
                let step = match ask {
                    Ask::AuthStep { step, .. } => Some(step),
                    _ => None,
                };
                let result = match decision.clone() {
                    Decision::Auth(r) => r,
                    Decision::Outcome(Outcome::Accept(r)) => AuthResult::Success(Some(r)),
                    Decision::Outcome(Outcome::Reply(r)) => AuthResult::Failure(Some(r)),
                    Decision::Outcome(Outcome::Default) | Decision::Recipients(_) => {
                        AuthResult::Failure(None)
                    }
                    Decision::Failed(f) => {
                        let (code, text) = match f.class {
                            FailureClass::Permanent => {
                                (500, format!("Error: ({}) {}", f.kind, f.message))
                            }
                            FailureClass::Temporary => {
                                (451, format!("4.3.0 Error: ({}) {}", f.kind, f.message))
                            }
                            FailureClass::StorageFull => (
                                452,
                                format!(
                                    "4.3.1 Insufficient system storage: ({}) {}",
                                    f.kind, f.message
                                ),
                            ),
                        };
                        self.replies.push(Expect::exact(code, &text));
                        return self.process();
                    }
                };
                match result {
                    AuthResult::Success(r) => {
                        self.authenticated = true;
                        self.replies
                            .push(r.as_ref().map_or(Expect::code(235), Expect::reply));
                    }
                    AuthResult::Challenge(c) if step.is_some() => {
                        self.replies.push(Expect::exact(334, &b64_encode(&c)));
                        self.wait = Some(Wait::Custom(step.unwrap_or(0) + 1));
                    }
                    AuthResult::Failure(Some(r)) => self.replies.push(Expect::reply(&r)),
                    AuthResult::Failure(None) | AuthResult::Challenge(_) => {
                        self.replies.push(Expect::code(535))
                    }
                }
            }
            // Every other hook is answered by default.
            Ask::Mail { .. } => {
                self.mail = true;
                self.replies.push(Expect::code(250));
            }
            Ask::Ehlo { .. } => self.replies.push(Expect::code(250)),
            _ => self.replies.push(Expect::code(250)),
        }
        self.process();
    }
}

/// Splits written bytes into replies: (code, wire bytes).
fn replies(out: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut v = Vec::new();
    let mut start = 0;
    let mut line_start = 0;
    while let Some(i) = out[line_start..].windows(2).position(|w| w == b"\r\n") {
        let line = &out[line_start..line_start + i];
        line_start += i + 2;
        if line.get(3) == Some(&b' ') {
            let code = std::str::from_utf8(&line[..3])
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            v.push((code, out[start..line_start].to_vec()));
            start = line_start;
        }
    }
    v
}

fn compare(h: &Harness, m: &Model) {
    assert_eq!(h.asks, m.asks, "hook calls differ from the model");
    let got = replies(&h.out);
    // Output may be held back while a hook is pending; without one it is all out.
    assert!(
        got.len() <= m.replies.len(),
        "more replies than the model expects: {got:?} vs {:?}",
        m.replies
    );
    if h.pending.is_none() {
        assert_eq!(
            got.len(),
            m.replies.len(),
            "replies missing: {got:?} vs {:?}",
            m.replies
        );
    }
    for (i, ((code, wire), expect)) in got.iter().zip(&m.replies).enumerate() {
        assert_eq!(
            *code,
            expect.code,
            "reply {i}: {:?}",
            String::from_utf8_lossy(wire)
        );
        if let Some(w) = &expect.wire {
            assert_eq!(wire, w, "reply {i}");
        }
    }
}

/// Base64-ish garbage: the alphabet, padding, and a little else.
fn garbage(src: &mut Source<'_>) -> String {
    const ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/====-_.* \t";
    let n = src.below(24);
    (0..n)
        .map(|_| char::from(ALPHABET[src.below(ALPHABET.len())]))
        .collect()
}

/// A client response: valid base64 of something, or not.
fn response(src: &mut Source<'_>) -> String {
    match src.below(10) {
        0..=2 => b64_encode(src.blob(20)),
        3 => {
            let mut msg = src.blob(6).to_vec();
            msg.push(0);
            msg.extend_from_slice(src.blob(8));
            msg.push(0);
            msg.extend_from_slice(src.blob(8));
            b64_encode(&msg)
        }
        4 => "*".to_owned(),
        5 => String::new(),
        6 => format!(" {} ", b64_encode(src.blob(8))),
        7 => "=".to_owned(),
        _ => garbage(src),
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut src = Source::new(data);
    let mut config = Config::new("mx.example");
    config.auth_require_tls = false;
    config.auth_required = true;
    config.auth_mechanisms = MECHS.iter().map(|m| (*m).to_owned()).collect();
    let mut h = Harness::new(config, Peer::Unknown, false, false);
    h.input(b"EHLO client.example\r\n");
    let Some(Ask::Ehlo { extensions, .. }) = h.pending.clone() else {
        panic!("no EHLO hook");
    };
    let mut m = Model {
        wait: None,
        authenticated: false,
        mail: false,
        pending: None,
        queue: VecDeque::new(),
        replies: Vec::new(),
        asks: Vec::new(),
        extensions,
        bogus_budget: smtpkit::proto::BOGUS_LIMIT,
        closed: false,
    };
    m.line(b"EHLO client.example");
    h.decide(Decision::Outcome(Outcome::Default));
    m.decide(&Decision::Outcome(Outcome::Default));
    // The greeting is not the model's business.
    let greeting = replies(&h.out)[0].1.len();
    h.out.drain(..greeting);
    compare(&h, &m);

    let mut ops = 0;
    while !src.is_empty() && ops < 512 && !h.closed {
        ops += 1;
        let line: Option<String> = match src.below(12) {
            0..=2 => {
                let mech = [
                    "PLAIN", "LOGIN", "XTEST", "plain", "Login", "xtest", "CRAM-MD5", "",
                ][src.below(8)];
                let sep = [" ", "  ", "\t", " "][src.below(4)];
                let mut line = format!("AUTH {mech}");
                match src.below(4) {
                    0 => {}
                    1 | 2 => {
                        line.push_str(sep);
                        line.push_str(&response(&mut src));
                    }
                    _ => {
                        line.push_str(sep);
                        line.push_str(&response(&mut src));
                        line.push(' ');
                        line.push_str(&garbage(&mut src));
                    }
                }
                Some(line)
            }
            3..=5 => {
                // Mostly where a response is expected; sometimes as a command.
                let expected = m.wait.is_some() || m.pending.is_some() || !m.queue.is_empty();
                let line = response(&mut src);
                let word = line.split(' ').next().unwrap_or_default();
                (!is_verb(word) && (expected || src.below(4) == 0)).then_some(line)
            }
            6 => Some("MAIL FROM:<a@b.c>".to_owned()),
            7 => Some(["NOOP", "RSET", "EHLO client.example"][src.below(3)].to_owned()),
            _ => {
                let decision = match src.below(6) {
                    0 => Decision::Auth(AuthResult::Success(None)),
                    1 => Decision::Auth(AuthResult::Challenge(src.blob(12).to_vec())),
                    2 => Decision::Outcome(Outcome::Default),
                    _ => src.decision(),
                };
                let auth_hook = matches!(h.pending, Some(Ask::Auth { .. } | Ask::AuthStep { .. }));
                let decision = if h.pending.is_some() && !auth_hook {
                    Decision::Outcome(Outcome::Default)
                } else {
                    decision
                };
                h.decide(decision.clone());
                m.decide(&decision);
                compare(&h, &m);
                None
            }
        };
        if let Some(line) = line {
            h.input(format!("{line}\r\n").as_bytes());
            m.line(line.as_bytes());
            compare(&h, &m);
        }
    }
    h.finish(|ask| match ask {
        Ask::Auth { .. } | Ask::AuthStep { .. } => Decision::Auth(AuthResult::Failure(None)),
        _ => Decision::Outcome(Outcome::Default),
    });
}
