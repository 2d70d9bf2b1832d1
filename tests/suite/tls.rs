//! STARTTLS and implicit TLS against a running controller: lettre over TLS with
//! AUTH, exact raw dialogues after the handshake, the STARTTLS command-injection
//! fix, broken handshakes.

use lettre::Transport;
use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::Tls;

use super::util::*;
use crate::rt;

/// EHLO before TLS on a STARTTLS controller.
fn ehlo_before_tls() -> Vec<String> {
    vec![
        format!("250-{HOST}"),
        "250-SIZE 33554432".into(),
        "250-8BITMIME".into(),
        "250-SMTPUTF8".into(),
        "250-STARTTLS".into(),
        "250 HELP".into(),
    ]
}

/// EHLO over TLS (STARTTLS done, or implicit TLS).
fn ehlo_over_tls() -> Vec<String> {
    vec![
        format!("250-{HOST}"),
        "250-SIZE 33554432".into(),
        "250-8BITMIME".into(),
        "250-SMTPUTF8".into(),
        "250-AUTH LOGIN PLAIN".into(),
        "250 HELP".into(),
    ]
}

fn lettre_starttls_auth(mechanism: Mechanism, name: &str) {
    let recorder = SessionRecorder::default();
    let mut controller = starttls_controller(recorder.clone())
        .with_authenticator(alice())
        .with_require_starttls(true);
    controller.start().unwrap();
    let port = addr_of(&controller).port();
    let mailer = tls_mailer(
        port,
        Tls::Required(lettre_tls()),
        Some(("alice", "wonderland")),
        mechanism,
    );
    let msg = message(
        "anne@example.com",
        &["bart@example.com"],
        "over TLS",
        "Hello, encrypted world.\n",
    );
    let response = mailer.send(&msg).expect("lettre sends over STARTTLS");
    assert_eq!(u16::from(response.code()), 250);

    let seen = recorder.snapshot();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let s = &seen[0];
    assert_tls_info(s.tls.as_ref());
    assert!(s.authenticated, "{s:?}");
    assert_eq!(s.auth_mechanism.as_deref(), Some(name));
    assert_eq!(s.auth_identity.as_deref(), Some("alice"));
    assert!(s.auth_data.is_none());
    assert!(s.host_name.is_some(), "EHLO after STARTTLS was recorded");
    assert_eq!(s.mail_from.as_deref(), Some("anne@example.com"));
    assert_eq!(s.rcpt_tos, ["bart@example.com"]);
    assert_eq!(s.content, expected_content(&msg));
    controller.stop().unwrap();
}

#[test]
fn lettre_starttls_auth_plain() {
    lettre_starttls_auth(Mechanism::Plain, "PLAIN");
}

#[test]
fn lettre_starttls_auth_login() {
    lettre_starttls_auth(Mechanism::Login, "LOGIN");
}

#[test]
fn lettre_starttls_wrong_password_gets_535() {
    let recorder = SessionRecorder::default();
    let mut controller = starttls_controller(recorder.clone()).with_authenticator(alice());
    controller.start().unwrap();
    let port = addr_of(&controller).port();
    let msg = message("anne@example.com", &["bart@example.com"], "no", "x\n");
    for mechanism in [Mechanism::Plain, Mechanism::Login] {
        let mailer = tls_mailer(
            port,
            Tls::Required(lettre_tls()),
            Some(("alice", "looking-glass")),
            mechanism,
        );
        let err = mailer.send(&msg).expect_err("a wrong password is refused");
        assert_eq!(error_code(&err), Some(535), "{mechanism:?}: {err}");
    }
    assert!(recorder.snapshot().is_empty());
    controller.stop().unwrap();
}

#[test]
fn lettre_implicit_tls_auth_plain() {
    let recorder = SessionRecorder::default();
    let mut controller = implicit_tls_controller(recorder.clone()).with_authenticator(alice());
    assert!(controller.config_mut().auth_require_tls, "the default");
    controller.start().unwrap();
    let port = addr_of(&controller).port();
    let mailer = tls_mailer(
        port,
        Tls::Wrapper(lettre_tls()),
        Some(("alice", "wonderland")),
        Mechanism::Plain,
    );
    let msg = message(
        "anne@example.com",
        &["bart@example.com", "carl@example.com"],
        "SMTPS",
        "Implicit TLS.\n",
    );
    mailer.send(&msg).expect("lettre sends over implicit TLS");

    let seen = recorder.snapshot();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_tls_info(seen[0].tls.as_ref());
    assert!(seen[0].authenticated);
    assert_eq!(seen[0].auth_mechanism.as_deref(), Some("PLAIN"));
    assert_eq!(seen[0].auth_identity.as_deref(), Some("alice"));
    assert_eq!(seen[0].rcpt_tos, ["bart@example.com", "carl@example.com"]);
    assert_eq!(seen[0].content, expected_content(&msg));
    controller.stop().unwrap();
}

#[test]
fn implicit_tls_raw_dialogue() {
    let recorder = SessionRecorder::default();
    let mut controller = implicit_tls_controller(recorder.clone());
    controller.start().unwrap();
    let mut client = Client::connect_tls(addr_of(&controller));
    client.greeting();
    // AUTH is offered over implicit TLS (aiosmtpd #274/#281 fixed); no STARTTLS
    // is configured, so it is neither advertised nor available.
    assert_eq!(client.cmd_multi("EHLO client.test"), ehlo_over_tls());
    assert_eq!(client.cmd("STARTTLS"), "454 TLS not available");
    // The default handler refuses every credential.
    assert_eq!(
        client.auth_plain("alice", "wonderland"),
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(
        client.send_mail("anne@example.com", &["bart@example.com"], "hi\r\n"),
        "250 OK"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    assert_eq!(client.read_until_closed(), b"");
    let seen = recorder.snapshot();
    assert_eq!(seen.len(), 1);
    assert_tls_info(seen[0].tls.as_ref());
    assert!(!seen[0].authenticated);
    controller.stop().unwrap();
}

#[test]
fn starttls_on_an_implicit_tls_connection_is_refused() {
    let mut controller = tcp_controller(Recorder::default())
        .with_implicit_tls(tls_config())
        .with_starttls(tls_config());
    controller.start().unwrap();
    let mut client = Client::connect_tls(addr_of(&controller));
    client.greeting();
    assert_eq!(client.cmd_multi("EHLO client.test"), ehlo_over_tls());
    assert_eq!(
        client.cmd("STARTTLS"),
        "554 5.5.1 Error: TLS already active"
    );
    assert_eq!(client.cmd("NOOP"), "250 OK");
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    assert_eq!(client.read_until_closed(), b"");
    controller.stop().unwrap();
}

#[test]
fn starttls_raw_dialogue() {
    let recorder = SessionRecorder::default();
    let mut controller = starttls_controller(recorder.clone());
    controller.start().unwrap();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    let before = client.cmd_multi("EHLO client.test");
    assert_eq!(before, ehlo_before_tls());
    assert!(!ehlo_keywords(&before).iter().any(|k| k.starts_with("AUTH")));
    assert_eq!(
        client.cmd("AUTH PLAIN"),
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );
    // A transaction begun in plaintext must not survive the handshake.
    assert_eq!(client.cmd("MAIL FROM:<early@example.com>"), "250 OK");

    let mut client = client.starttls();
    assert!(client.protocol_version().is_some());
    // RFC 3207 4.2: the SMTP state is reset, HELO/EHLO needed again.
    assert_eq!(
        client.cmd("MAIL FROM:<anne@example.com>"),
        "503 Error: send HELO first"
    );
    let after = client.cmd_multi("EHLO client.test");
    assert_eq!(after, ehlo_over_tls());
    assert!(!ehlo_keywords(&after).contains(&"STARTTLS"));
    assert_eq!(
        client.cmd("RCPT TO:<bart@example.com>"),
        "503 Error: need MAIL command"
    );
    assert_eq!(
        client.cmd("STARTTLS"),
        "554 5.5.1 Error: TLS already active"
    );
    assert_eq!(client.cmd("STARTTLS x"), "501 Syntax: STARTTLS");
    assert_eq!(
        client.send_mail("anne@example.com", &["bart@example.com"], "secret\r\n"),
        "250 OK"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    assert_eq!(client.read_until_closed(), b"");

    let seen = recorder.snapshot();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_tls_info(seen[0].tls.as_ref());
    assert_eq!(seen[0].host_name.as_deref(), Some("client.test"));
    assert_eq!(seen[0].mail_from.as_deref(), Some("anne@example.com"));
    assert_eq!(seen[0].content, b"secret\r\n");
    controller.stop().unwrap();
}

#[test]
fn starttls_without_ehlo_and_plaintext_session_without_tls() {
    let mut controller = starttls_controller(Recorder::default());
    controller.start().unwrap();
    let addr = addr_of(&controller);
    // STARTTLS needs no greeting first.
    let mut client = Client::connect(addr);
    client.greeting();
    let mut client = client.starttls();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    assert_eq!(client.read_until_closed(), b"");
    // STARTTLS offered but not required: plaintext mail still works.
    let mut plain = Client::connect(addr);
    plain.greeting();
    assert_eq!(plain.cmd("HELO client.test"), format!("250 {HOST}"));
    assert_eq!(
        plain.send_mail("anne@example.com", &["bart@example.com"], "plain\r\n"),
        "250 OK"
    );
    assert_eq!(plain.cmd("QUIT"), "221 Bye");
    plain.expect_closed();
    controller.stop().unwrap();
}

#[test]
fn require_starttls_refuses_commands_before_tls() {
    let recorder = SessionRecorder::default();
    let mut controller = starttls_controller(recorder.clone()).with_require_starttls(true);
    controller.start().unwrap();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    const MUST: &str = "530 Must issue a STARTTLS command first";
    assert_eq!(client.cmd("NOOP"), "250 OK");
    assert_eq!(client.cmd_multi("EHLO client.test"), ehlo_before_tls());
    for refused in [
        "MAIL FROM:<anne@example.com>",
        "RCPT TO:<bart@example.com>",
        "DATA",
        "HELO client.test",
        "RSET",
        "HELP",
        "VRFY anne@example.com",
        "AUTH PLAIN",
    ] {
        assert_eq!(client.cmd(refused), MUST, "{refused}");
    }
    let mut client = client.starttls();
    assert_eq!(client.cmd_multi("EHLO client.test"), ehlo_over_tls());
    assert_eq!(
        client.send_mail("anne@example.com", &["bart@example.com"], "ok\r\n"),
        "250 OK"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    assert_eq!(client.read_until_closed(), b"");
    assert_eq!(recorder.snapshot().len(), 1);

    // QUIT is allowed before TLS.
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    controller.stop().unwrap();
}

/// The STARTTLS command-injection attack (CVE-2011-0411 style; aiosmtpd PR #380):
/// plaintext pipelined after STARTTLS must be discarded, never executed over TLS.
#[test]
fn plaintext_pipelined_after_starttls_is_discarded() {
    let recorder = SessionRecorder::default();
    let mut controller = starttls_controller(recorder.clone());
    controller.start().unwrap();
    for injected in [
        &b"MAIL FROM:<x@y>\r\n"[..],
        b"EHLO evil.test\r\nMAIL FROM:<x@y>\r\nRCPT TO:<victim@example.com>\r\n",
    ] {
        let mut client = Client::connect(addr_of(&controller));
        client.greeting();
        assert_eq!(client.cmd_multi("EHLO client.test"), ehlo_before_tls());
        // One write: STARTTLS and the injected commands arrive together.
        let mut write = b"STARTTLS\r\n".to_vec();
        write.extend_from_slice(injected);
        client.send(&write);
        assert_eq!(client.reply1(), "220 Ready to start TLS");
        let mut client = client.upgrade();
        // The first command over TLS gets exactly its own reply...
        assert_eq!(client.cmd("NOOP"), "250 OK");
        assert_eq!(client.cmd("NOOP"), "250 OK");
        // ...and neither the injected EHLO nor MAIL took effect.
        assert_eq!(client.cmd("MAIL FROM:<a@b>"), "503 Error: send HELO first");
        assert_eq!(client.cmd_multi("EHLO client.test"), ehlo_over_tls());
        assert_eq!(client.cmd("RCPT TO:<a@b>"), "503 Error: need MAIL command");
        assert_eq!(client.cmd("QUIT"), "221 Bye");
        assert_eq!(client.read_until_closed(), b"");
    }
    assert!(recorder.snapshot().is_empty());
    controller.stop().unwrap();
}

#[test]
fn garbage_handshake_ends_only_that_connection() {
    let recorder = SessionRecorder::default();
    let mut controller = starttls_controller(recorder.clone());
    controller.start().unwrap();
    let addr = addr_of(&controller);

    // A client that is mid-session on another connection must be unaffected.
    let mut bystander = Client::connect(addr);
    bystander.greeting();
    assert_eq!(bystander.cmd("HELO bystander.test"), format!("250 {HOST}"));

    let mut client = Client::connect(addr);
    client.greeting();
    assert_eq!(client.cmd("STARTTLS"), "220 Ready to start TLS");
    client.send(b"this is not a TLS ClientHello\r\nQUIT\r\n");
    let got = client.read_until_closed();
    assert!(
        !got.windows(3)
            .any(|w| w == b"221" || w == b"250" || w == b"500"),
        "no SMTP reply after a failed handshake: {:?}",
        String::from_utf8_lossy(&got)
    );

    // The server still serves new and existing connections, over TLS or not.
    assert_eq!(
        bystander.send_mail("anne@example.com", &["bart@example.com"], "still here\r\n"),
        "250 OK"
    );
    assert_eq!(bystander.cmd("QUIT"), "221 Bye");
    bystander.expect_closed();
    let mut second = Client::connect(addr);
    second.greeting();
    let mut second = second.starttls();
    assert_eq!(second.cmd("HELO second.test"), format!("250 {HOST}"));
    assert_eq!(
        second.send_mail("anne@example.com", &["carl@example.com"], "after\r\n"),
        "250 OK"
    );
    assert_eq!(second.cmd("QUIT"), "221 Bye");
    assert_eq!(second.read_until_closed(), b"");
    assert_eq!(recorder.snapshot().len(), 2);
    controller.stop().unwrap();
}

#[test]
fn client_closing_during_the_handshake_ends_only_that_connection() {
    let mut controller = starttls_controller(Recorder::default());
    controller.start().unwrap();
    let addr = addr_of(&controller);
    let mut client = Client::connect(addr);
    client.greeting();
    assert_eq!(client.cmd("STARTTLS"), "220 Ready to start TLS");
    drop(client);
    let mut second = Client::connect(addr);
    second.greeting();
    assert_eq!(second.cmd("NOOP"), "250 OK");
    assert_eq!(second.cmd("QUIT"), "221 Bye");
    second.expect_closed();
    controller.stop().unwrap();
}

#[test]
fn plaintext_to_the_implicit_tls_port_is_closed() {
    let recorder = SessionRecorder::default();
    let mut controller = implicit_tls_controller(recorder.clone());
    controller.start().unwrap();
    let addr = addr_of(&controller);

    let mut plain = Client::connect(addr);
    plain.send(b"EHLO plain.test\r\n");
    let got = plain.read_until_closed();
    assert!(
        !got.starts_with(b"220") && !got.windows(3).any(|w| w == b"250"),
        "no plaintext SMTP on the implicit-TLS port: {:?}",
        String::from_utf8_lossy(&got)
    );

    let mut client = Client::connect_tls(addr);
    client.greeting();
    assert_eq!(client.cmd("HELO tls.test"), format!("250 {HOST}"));
    assert_eq!(
        client.send_mail("anne@example.com", &["bart@example.com"], "tls\r\n"),
        "250 OK"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    assert_eq!(client.read_until_closed(), b"");
    let seen = recorder.snapshot();
    assert_eq!(seen.len(), 1);
    assert_tls_info(seen[0].tls.as_ref());
    controller.stop().unwrap();
}

#[test]
fn unthreaded_controller_with_starttls_and_implicit_tls() {
    within(std::time::Duration::from_secs(15), || {
        crate::block_on(async {
            let recorder = SessionRecorder::default();
            let mut starttls = rt::UnthreadedController::new(recorder.clone())
                .with_hostname("127.0.0.1")
                .with_port(0)
                .with_config(config())
                .with_starttls(tls_config())
                .with_require_starttls(true);
            let mut implicit = rt::UnthreadedController::new(recorder.clone())
                .with_hostname("127.0.0.1")
                .with_port(0)
                .with_config(config())
                .with_implicit_tls(tls_config());
            starttls.begin().expect("begin");
            implicit.begin().expect("begin");
            let a = starttls.local_addr().unwrap();
            let b = implicit.local_addr().unwrap();
            let replies = join_thread(std::thread::spawn(move || {
                let mut client = Client::connect(a);
                client.greeting();
                let refused = client.cmd("HELO client.test");
                let mut client = client.starttls();
                let mut replies = vec![refused, client.cmd("HELO client.test")];
                replies.push(client.send_mail("anne@example.com", &["x@example.com"], "1\r\n"));
                replies.push(client.cmd("QUIT"));
                let mut client = Client::connect_tls(b);
                client.greeting();
                replies.push(client.cmd("HELO client.test"));
                replies.push(client.send_mail("anne@example.com", &["y@example.com"], "2\r\n"));
                replies.push(client.cmd("QUIT"));
                replies
            }))
            .await;
            assert_eq!(
                replies,
                [
                    "530 Must issue a STARTTLS command first".to_owned(),
                    format!("250 {HOST}"),
                    "250 OK".into(),
                    "221 Bye".into(),
                    format!("250 {HOST}"),
                    "250 OK".into(),
                    "221 Bye".into(),
                ]
            );
            starttls.finalize().await;
            implicit.finalize().await;
            let seen = recorder.snapshot();
            assert_eq!(seen.len(), 2);
            for s in &seen {
                assert_tls_info(s.tls.as_ref());
            }
        })
    });
}
