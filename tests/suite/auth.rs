//! AUTH through a running controller: custom SASL mechanisms, authenticator
//! replies and data, `auth_required`, handlers that decide AUTH themselves (no authenticator).
//! (AUTH over TLS with lettre is in `tls.rs`.)

use smtpkit::proto::{AuthData, AuthResult};
use smtpkit::server::{Authenticator, SaslMechanism};
use smtpkit::{Envelope, Handler, HandlerError, Reply, Session};

use super::util::*;

const SUCCESS: &str = "235 2.7.0 Authentication successful";
const INVALID: &str = "535 5.7.8 Authentication credentials invalid";
const ABORTED: &str = "501 5.7.0 Auth aborted";

/// `X-TWO-ROUNDS`: challenge `first`, expect `one`, challenge `second`, expect
/// `two`. Uses `state` to check it is kept across the steps of one exchange.
struct TwoRounds;

impl SaslMechanism for TwoRounds {
    fn name(&self) -> &str {
        "X-TWO-ROUNDS"
    }

    fn step(
        &self,
        session: &mut Session,
        step: u32,
        response: Option<&[u8]>,
        state: &mut Vec<u8>,
    ) -> AuthResult {
        match (step, response) {
            (0, None) if state.is_empty() => {
                state.push(b'0');
                AuthResult::Challenge(b"first".to_vec())
            }
            (1, Some(b"one")) if state == b"0" => {
                state.push(b'1');
                AuthResult::Challenge(b"second".to_vec())
            }
            (2, Some(b"two")) if state == b"01" => {
                session.auth_identity = Some("two-rounds-user".to_owned());
                session.auth_data = Some(AuthData::new(String::from("both rounds")));
                AuthResult::Success(None)
            }
            _ => AuthResult::Failure(None),
        }
    }
}

fn ehlo_with_auth(mechanisms: &str) -> Vec<String> {
    vec![
        format!("250-{HOST}"),
        "250-SIZE 33554432".into(),
        "250-8BITMIME".into(),
        "250-SMTPUTF8".into(),
        format!("250-AUTH {mechanisms}"),
        "250 HELP".into(),
    ]
}

#[test]
fn custom_mechanism_with_two_challenge_rounds() {
    let recorder = SessionRecorder::default();
    let mut controller = tcp_controller(recorder.clone())
        .with_authenticator(alice())
        .with_mechanism(TwoRounds);
    controller.config_mut().auth_require_tls = false;
    controller.start().unwrap();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(
        client.cmd_multi("EHLO client.test"),
        ehlo_with_auth("LOGIN PLAIN X-TWO-ROUNDS")
    );
    // A wrong answer in the first round, then in the second.
    assert_eq!(client.cmd("AUTH X-TWO-ROUNDS"), "334 Zmlyc3Q=");
    assert_eq!(client.cmd(&b64(b"two")), INVALID);
    assert_eq!(client.cmd("AUTH X-TWO-ROUNDS"), "334 Zmlyc3Q=");
    assert_eq!(client.cmd(&b64(b"one")), "334 c2Vjb25k");
    assert_eq!(client.cmd(&b64(b"one")), INVALID);
    // Cancelled in either round.
    assert_eq!(client.cmd("AUTH X-TWO-ROUNDS"), "334 Zmlyc3Q=");
    assert_eq!(client.cmd("*"), ABORTED);
    assert_eq!(client.cmd("AUTH X-TWO-ROUNDS"), "334 Zmlyc3Q=");
    assert_eq!(client.cmd(&b64(b"one")), "334 c2Vjb25k");
    assert_eq!(client.cmd("*"), ABORTED);
    // Not base64.
    assert_eq!(client.cmd("AUTH X-TWO-ROUNDS"), "334 Zmlyc3Q=");
    assert_eq!(client.cmd("not base64!"), "501 5.5.2 Can't decode base64");
    // The whole exchange, with the name in lower case; the state starts empty.
    assert_eq!(client.cmd("auth x-two-rounds"), "334 Zmlyc3Q=");
    assert_eq!(client.cmd(&b64(b"one")), "334 c2Vjb25k");
    assert_eq!(client.cmd(&b64(b"two")), SUCCESS);
    assert_eq!(client.cmd("AUTH X-TWO-ROUNDS"), "503 Already authenticated");
    assert_eq!(
        client.send_mail("anne@example.com", &["bart@example.com"], "sasl\r\n"),
        "250 OK"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();

    let seen = recorder.snapshot();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].authenticated);
    assert!(seen[0].tls.is_none());
    assert_eq!(seen[0].auth_mechanism.as_deref(), Some("X-TWO-ROUNDS"));
    assert_eq!(seen[0].auth_identity.as_deref(), Some("two-rounds-user"));
    let data = seen[0].auth_data.as_ref().expect("auth data");
    assert_eq!(
        data.downcast_ref::<String>().map(String::as_str),
        Some("both rounds")
    );
    controller.stop().unwrap();
}

#[test]
fn builtin_mechanisms_through_the_driver() {
    let recorder = SessionRecorder::default();
    let mut controller = tcp_controller(recorder.clone()).with_authenticator(alice());
    controller.config_mut().auth_require_tls = false;
    controller.start().unwrap();
    let addr = addr_of(&controller);

    let mut client = Client::connect(addr);
    client.greeting();
    assert_eq!(
        client.cmd_multi("EHLO client.test"),
        ehlo_with_auth("LOGIN PLAIN")
    );
    assert_eq!(client.auth_plain("alice", "nope"), INVALID);
    assert_eq!(client.auth_plain("bob", "wonderland"), INVALID);
    // PLAIN without initial response: an empty challenge.
    assert_eq!(client.cmd("AUTH PLAIN"), "334 ");
    assert_eq!(client.cmd(&b64(b"\0alice\0wonderland")), SUCCESS);
    assert_eq!(
        client.send_mail("a@example.com", &["b@example.com"], "1\r\n"),
        "250 OK"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();

    // LOGIN, both forms.
    let mut client = Client::connect(addr);
    client.greeting();
    client.cmd_multi("EHLO client.test");
    assert_eq!(client.cmd("AUTH LOGIN"), "334 VXNlciBOYW1lAA==");
    assert_eq!(client.cmd(&b64(b"alice")), "334 UGFzc3dvcmQA");
    assert_eq!(client.cmd(&b64(b"wrong")), INVALID);
    assert_eq!(
        client.cmd(&format!("AUTH LOGIN {}", b64(b"alice"))),
        "334 UGFzc3dvcmQA"
    );
    assert_eq!(client.cmd(&b64(b"wonderland")), SUCCESS);
    assert_eq!(
        client.send_mail("a@example.com", &["b@example.com"], "2\r\n"),
        "250 OK"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();

    let seen = recorder.snapshot();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].auth_mechanism.as_deref(), Some("PLAIN"));
    assert_eq!(seen[1].auth_mechanism.as_deref(), Some("LOGIN"));
    for s in &seen {
        assert!(s.authenticated);
        assert_eq!(s.auth_identity.as_deref(), Some("alice"));
    }
    controller.stop().unwrap();
}

/// Refuses everyone with a temporary failure.
struct Unavailable;

impl Authenticator for Unavailable {
    async fn authenticate(&self, _: &mut Session, _: &str, _: &[u8], _: &[u8]) -> AuthResult {
        AuthResult::Failure(Some(Reply::new(
            454,
            "4.7.0 Temporary authentication failure",
        )))
    }
}

/// Accepts `alice` and attaches her user id.
struct WithUserId;

impl Authenticator for WithUserId {
    async fn authenticate(
        &self,
        session: &mut Session,
        mechanism: &str,
        login: &[u8],
        password: &[u8],
    ) -> AuthResult {
        assert!(mechanism == "PLAIN" || mechanism == "LOGIN", "{mechanism}");
        if login == b"alice" && password == b"wonderland" {
            session.auth_data = Some(AuthData::new(42u32));
            AuthResult::Success(Some(Reply::new(235, "2.7.0 Welcome, alice")))
        } else {
            AuthResult::Failure(None)
        }
    }
}

#[test]
fn authenticator_custom_failure_reply() {
    let recorder = SessionRecorder::default();
    let mut controller = tcp_controller(recorder).with_authenticator(Unavailable);
    controller.config_mut().auth_require_tls = false;
    controller.start().unwrap();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    client.cmd_multi("EHLO client.test");
    assert_eq!(
        client.auth_plain("alice", "wonderland"),
        "454 4.7.0 Temporary authentication failure"
    );
    assert_eq!(client.cmd("AUTH LOGIN"), "334 VXNlciBOYW1lAA==");
    assert_eq!(client.cmd(&b64(b"alice")), "334 UGFzc3dvcmQA");
    assert_eq!(
        client.cmd(&b64(b"wonderland")),
        "454 4.7.0 Temporary authentication failure"
    );
    // Not authenticated: a later attempt is evaluated again.
    assert_eq!(
        client.auth_plain("alice", "wonderland"),
        "454 4.7.0 Temporary authentication failure"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    controller.stop().unwrap();
}

#[test]
fn authenticator_attaches_auth_data() {
    let recorder = SessionRecorder::default();
    let mut controller = tcp_controller(recorder.clone()).with_authenticator(WithUserId);
    controller.config_mut().auth_require_tls = false;
    controller.start().unwrap();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    client.cmd_multi("EHLO client.test");
    assert_eq!(client.auth_plain("alice", "wrong"), INVALID);
    assert_eq!(
        client.auth_plain("alice", "wonderland"),
        "235 2.7.0 Welcome, alice"
    );
    // EHLO and RSET keep the authentication (as aiosmtpd).
    client.cmd_multi("EHLO again.test");
    assert_eq!(client.cmd("RSET"), "250 OK");
    assert_eq!(
        client.auth_plain("alice", "wonderland"),
        "503 Already authenticated"
    );
    assert_eq!(
        client.send_mail("a@example.com", &["b@example.com"], "x\r\n"),
        "250 OK"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    let seen = recorder.snapshot();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].authenticated);
    assert_eq!(seen[0].auth_mechanism.as_deref(), Some("PLAIN"));
    assert_eq!(seen[0].auth_identity.as_deref(), Some("alice"));
    let data = seen[0].auth_data.as_ref().expect("auth data attached");
    assert_eq!(data.downcast_ref::<u32>(), Some(&42));
    assert_eq!(data.downcast_ref::<i64>(), None);
    controller.stop().unwrap();
}

#[test]
fn auth_required_blocks_mail_until_authenticated() {
    let recorder = SessionRecorder::default();
    let mut controller = starttls_controller(recorder.clone()).with_authenticator(alice());
    controller.config_mut().auth_required = true;
    controller.start().unwrap();
    const REQUIRED: &str = "530 5.7.0 Authentication required";
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(
        client.cmd("MAIL FROM:<a@example.com>"),
        "503 Error: send HELO first"
    );
    client.cmd_multi("EHLO client.test");
    assert_eq!(client.cmd("MAIL FROM:<a@example.com>"), REQUIRED);
    let mut client = client.starttls();
    client.cmd_multi("EHLO client.test");
    for refused in [
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<b@example.com>",
        "DATA",
        "VRFY a@example.com",
        "HELP",
    ] {
        assert_eq!(client.cmd(refused), REQUIRED, "{refused}");
    }
    assert_eq!(client.cmd("NOOP"), "250 OK");
    assert_eq!(client.cmd("RSET"), "250 OK");
    assert_eq!(client.auth_plain("alice", "wrong"), INVALID);
    assert_eq!(client.cmd("MAIL FROM:<a@example.com>"), REQUIRED);
    assert_eq!(client.auth_plain("alice", "wonderland"), SUCCESS);
    assert_eq!(
        client.send_mail("a@example.com", &["b@example.com"], "authed\r\n"),
        "250 OK"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    assert_eq!(client.read_until_closed(), b"");
    let seen = recorder.snapshot();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].authenticated);
    assert_tls_info(seen[0].tls.as_ref());
    controller.stop().unwrap();
}

/// A handler with its own `handle_auth` (no authenticator), failing with an
/// error for one user.
struct OwnAuth;

impl Handler for OwnAuth {
    async fn handle_auth(
        &self,
        _: &mut Session,
        _: &mut Envelope,
        _mechanism: &str,
        login: &[u8],
        _password: &[u8],
    ) -> Result<AuthResult, HandlerError> {
        match login {
            b"broken" => Err(HandlerError::new("LookupError", "user database down")),
            b"alice" => Ok(AuthResult::Success(None)),
            _ => Ok(AuthResult::Failure(None)),
        }
    }
}

#[test]
fn handler_auth_hooks_and_their_errors() {
    let mut controller = tcp_controller(OwnAuth);
    controller.config_mut().auth_require_tls = false;
    controller.start().unwrap();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(
        client.cmd_multi("EHLO client.test"),
        ehlo_with_auth("LOGIN PLAIN")
    );
    assert_eq!(
        client.auth_plain("broken", "x"),
        "500 Error: (LookupError) user database down"
    );
    assert_eq!(client.cmd("NOOP"), "250 OK");
    assert_eq!(client.auth_plain("bob", "x"), INVALID);
    // An unknown mechanism (the handler offers none of its own).
    assert_eq!(
        client.cmd("AUTH X-TWO-ROUNDS"),
        "504 5.5.4 Unrecognized authentication type"
    );
    assert_eq!(client.auth_plain("alice", "anything"), SUCCESS);
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    controller.stop().unwrap();

    // Without any auth hook, every credential is refused (aiosmtpd's default).
    let mut controller = tcp_controller(Recorder::default());
    controller.config_mut().auth_require_tls = false;
    controller.start().unwrap();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    client.cmd_multi("EHLO client.test");
    assert_eq!(client.auth_plain("alice", "wonderland"), INVALID);
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    controller.stop().unwrap();
}
