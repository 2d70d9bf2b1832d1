//! Credentials never reach the logs, at any level. A process-wide `tracing`
//! subscriber (hence a test binary of its own) captures everything at TRACE,
//! `log` records (rustls) included, while clients authenticate with distinctive
//! credentials; then the captured text is searched for them in every form the
//! server saw.

#![cfg(all(feature = "runtime-tokio", feature = "cli"))]

use std::future::Future;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lettre::Transport;
use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::Tls;
use smtpkit::proto::AuthResult;
use smtpkit::server::FileAuthenticator;
use smtpkit::{Envelope, Handler, HandlerError, Session};

use smtpkit::tokio as rt;

#[allow(dead_code)]
#[path = "suite/util.rs"]
mod util;

use util::*;

/// Used by `util` (unthreaded controllers); unused here.
#[allow(dead_code)]
pub fn block_on<F: Future>(future: F) -> F::Output {
    ::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
        .block_on(future)
}

/// Used by `util`.
pub async fn sleep(duration: Duration) {
    ::tokio::time::sleep(duration).await
}

/// Everything logged by any thread of this process.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .try_init()
            .expect("the only global subscriber");
        logs
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn logs_text() -> String {
    String::from_utf8_lossy(&captured().lock().unwrap()).into_owned()
}

/// Every form of `login`/`password` a client sends: raw, base64 alone (LOGIN),
/// base64 of the PLAIN message, hex.
fn secret_forms(login: &str, password: &str) -> Vec<String> {
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    vec![
        login.to_owned(),
        password.to_owned(),
        b64(login.as_bytes()),
        b64(password.as_bytes()),
        b64(format!("\0{login}\0{password}").as_bytes()),
        b64(format!("{login}\0{login}\0{password}").as_bytes()),
        hex(login),
        hex(password),
    ]
}

/// Waits until the server side of the finished connections has logged (the last
/// trace lines are written after the client saw the final reply).
fn settle() {
    std::thread::sleep(Duration::from_millis(100));
}

#[track_caller]
fn assert_not_logged(forms: &[String]) {
    let logs = logs_text();
    let leaks: Vec<&str> = logs
        .lines()
        .filter(|line| forms.iter().any(|form| line.contains(form.as_str())))
        .collect();
    assert!(
        leaks.is_empty(),
        "credentials ({forms:?}) reached the logs in {} line(s):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// `needle` was logged (shows the log's size otherwise, not its text).
#[track_caller]
fn assert_logged(needle: &str, what: &str) {
    let logs = logs_text();
    assert!(
        logs.contains(needle),
        "{what} not captured ({needle:?} absent from {} bytes of logs)",
        logs.len()
    );
}

const LOGIN: &str = "zebra-login-7f3a";
const PASSWORD: &str = "Sup3r-S3cret-pw-91c4";

#[test]
fn credentials_are_never_logged() {
    let forms = secret_forms(LOGIN, PASSWORD);
    let _ = captured();
    let users = FileAuthenticator::from_pairs([(LOGIN, PASSWORD)]);

    // lettre over STARTTLS: PLAIN, LOGIN, and a wrong password.
    let recorder = SessionRecorder::default();
    let mut controller = starttls_controller(recorder.clone()).with_authenticator(users.clone());
    controller.start().unwrap();
    let port = addr_of(&controller).port();
    let msg = message("anne@example.com", &["bart@example.com"], "log", "body\n");
    for mechanism in [Mechanism::Plain, Mechanism::Login] {
        tls_mailer(
            port,
            Tls::Required(lettre_tls()),
            Some((LOGIN, PASSWORD)),
            mechanism,
        )
        .send(&msg)
        .expect("authenticated send");
        let wrong = format!("{PASSWORD}-wrong");
        let err = tls_mailer(
            port,
            Tls::Required(lettre_tls()),
            Some((LOGIN, wrong.as_str())),
            mechanism,
        )
        .send(&msg)
        .expect_err("wrong password");
        assert_eq!(error_code(&err), Some(535));
    }
    assert_eq!(recorder.snapshot().len(), 2);
    controller.stop().unwrap();

    // Raw, in plaintext (AUTH allowed without TLS), every flow and error path.
    let mut controller = tcp_controller(Recorder::default()).with_authenticator(users);
    controller.config_mut().auth_require_tls = false;
    controller.start().unwrap();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    client.cmd_multi("EHLO client.test");
    assert_eq!(client.cmd("AUTH PLAIN"), "334 ");
    assert_eq!(
        client.cmd(&b64(format!("\0{LOGIN}\0{PASSWORD}").as_bytes())),
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    client.cmd_multi("EHLO client.test");
    assert_eq!(
        client.cmd(&format!(
            "AUTH PLAIN {}",
            b64(format!("{LOGIN}\0{PASSWORD}").as_bytes())
        )),
        "501 5.5.2 Can't split auth value"
    );
    assert_eq!(
        client.cmd(&format!("AUTH LOGIN {}", b64(LOGIN.as_bytes()))),
        "334 UGFzc3dvcmQA"
    );
    assert_eq!(client.cmd("*"), "501 5.7.0 Auth aborted");
    assert_eq!(client.cmd("AUTH LOGIN"), "334 VXNlciBOYW1lAA==");
    assert_eq!(client.cmd(&b64(LOGIN.as_bytes())), "334 UGFzc3dvcmQA");
    assert_eq!(
        client.cmd(&b64(PASSWORD.as_bytes())),
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    controller.stop().unwrap();
    settle();

    // The capture works and is detailed enough to catch a leak: the replies of
    // these very exchanges are there (TRACE, codes only), and connection events
    // (DEBUG).
    assert_logged("codes=235", "TRACE replies");
    assert_logged("codes=334", "TRACE replies");
    assert_logged("connection opened", "DEBUG events");
    // Every line of a session carries its span: an id, the peer, and once
    // known the TLS version and the AUTH mechanism (never the login).
    assert_logged("session{id=", "session spans");
    assert_logged("tls=TLSv1_3", "the TLS version on the session span");
    assert_logged("auth=PLAIN", "the mechanism on the session span");
    assert_not_logged(&forms);
}

const ERR_LOGIN: &str = "yak-login-c0ffee";
const ERR_PASSWORD: &str = "Hunter2-Err-pw-5d1e";

/// A handler whose authentication fails with an error that quotes the
/// credentials (as careless code does, e.g. a database error with the query).
struct LeakyErrors;

impl Handler for LeakyErrors {
    async fn handle_auth(
        &self,
        _: &mut Session,
        _: &mut Envelope,
        _mechanism: &str,
        login: &[u8],
        password: &[u8],
    ) -> Result<AuthResult, HandlerError> {
        Err(HandlerError::new(
            "LookupError",
            format!(
                "no row for user={} password={}",
                String::from_utf8_lossy(login),
                String::from_utf8_lossy(password)
            ),
        ))
    }
}

/// The driver deliberately never logs an authenticator's error ("it may echo
/// credentials"); that must hold at every level, replies included.
#[test]
fn authenticator_errors_are_not_logged() {
    let forms = secret_forms(ERR_LOGIN, ERR_PASSWORD);
    let _ = captured();
    let mut controller = tcp_controller(LeakyErrors);
    controller.config_mut().auth_require_tls = false;
    controller.start().unwrap();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    client.cmd_multi("EHLO client.test");
    let reply = client.cmd(&format!(
        "AUTH PLAIN {}",
        b64(format!("\0{ERR_LOGIN}\0{ERR_PASSWORD}").as_bytes())
    ));
    assert!(reply.starts_with("500 Error: (LookupError) "), "{reply}");
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    controller.stop().unwrap();
    settle();
    assert_logged("authenticator failed", "WARN events");
    assert_not_logged(&forms);
}
