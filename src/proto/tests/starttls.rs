//! STARTTLS (RFC 3207): the handshake, the session reset, plaintext injection.

use std::sync::Arc;
use std::time::Instant;

use super::harness::*;
use super::tls_harness::*;
use crate::proto::replies::{
    AUTH_SUCCESS, BYE, NEED_MAIL, OK, READY_FOR_TLS, SEND_HELO_FIRST, START_DATA, STARTTLS_FIRST,
    TLS_ALREADY_ACTIVE, TLS_NOT_AVAILABLE,
};
use crate::proto::{Ask, Connection, Envelope, Error, Peer};

#[test]
fn starttls_flow_and_session_reset() {
    let before = crlf(&[
        "EHLO example.com",
        "MAIL FROM:<early@example.com>",
        "STARTTLS",
    ]);
    let after = crlf(&[
        "MAIL FROM:<anne@example.com>",
        "EHLO example.com",
        "RCPT TO:<bart@example.com>",
        "STARTTLS",
        "STARTTLS now",
        "HELP",
        &format!("AUTH PLAIN {}", plain_good()),
        "MAIL FROM:<anne@example.com>",
        "QUIT",
    ]);
    let mut replies = with_ehlo(&EHLO_STARTTLS, &[OK.line, READY_FOR_TLS.line, HANDSHAKE]);
    replies.extend([
        SEND_HELO_FIRST.line,
        "250-mx.example",
        "250-8BITMIME",
        "250-AUTH LOGIN PLAIN",
        "250 HELP",
        NEED_MAIL.line,
        TLS_ALREADY_ACTIVE.line,
        "501 Syntax: STARTTLS",
        "250 Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY",
        AUTH_SUCCESS.line,
        OK.line,
        BYE.line,
    ]);
    let trace = TlsScript::new(starttls_config()).transcript(&before, &after, &replies);
    assert!(trace.closed);

    // The state right after the handshake: a new session that keeps only the peer.
    let mut driver = TlsDriver::new(starttls_config(), auth_responder(), false);
    driver.feed(&before);
    assert!(driver.handshake_pending);
    assert!(!driver.d.conn.is_tls());
    assert_eq!(
        driver.d.conn.poll_timeout(),
        None,
        "no idle timer during the handshake"
    );
    driver.handshake();
    let conn = &driver.d.conn;
    assert!(conn.is_tls());
    assert_eq!(conn.session().tls, Some(tls_info()));
    assert_eq!(conn.session().host_name, None);
    assert!(!conn.session().extended_smtp);
    assert_eq!(*conn.envelope(), Envelope::default());
    assert_eq!(
        conn.poll_timeout(),
        Some(driver.d.now + conn.config().timeout)
    );
}

#[test]
fn starttls_discards_pipelined_plaintext() {
    // The STARTTLS injection attack (aiosmtpd PR #380): commands sent with
    // STARTTLS, in the same packet or later but before the handshake, are never
    // executed -- neither in plaintext nor after the handshake.
    let before = crlf(&[
        "EHLO example.com",
        "STARTTLS",
        "EHLO evil.example",
        "MAIL FROM:<x@y>",
        "RCPT TO:<victim@example.com>",
        "DATA",
        "injected",
        ".",
        "QUIT",
    ]);
    let after = crlf(&["NOOP", "RCPT TO:<a@b>", "EHLO example.com", "RCPT TO:<a@b>"]);
    let mut replies = EHLO_STARTTLS.to_vec();
    replies.extend([READY_FOR_TLS.line, HANDSHAKE, OK.line, SEND_HELO_FIRST.line]);
    replies.extend(EHLO_AUTH);
    replies.push(NEED_MAIL.line);
    let trace = TlsScript::new(starttls_config()).transcript(&before, &after, &replies);
    assert!(!trace.closed, "the injected QUIT was not executed");
    assert!(trace.messages.is_empty());
    assert!(mail_ask(&trace).is_empty(), "{:?}", trace.asks);
    assert!(
        !trace
            .asks
            .iter()
            .any(|a| matches!(a, Ask::Ehlo { hostname, .. } if hostname == "evil.example")),
        "{:?}",
        trace.asks
    );

    // Input arriving while the driver is busy with the STARTTLS reply (before it
    // even saw Action::StartTls) is discarded as well.
    let mut driver = TlsDriver::new(starttls_config(), auth_responder(), false);
    driver
        .d
        .conn
        .handle_input(driver.d.now, b"STARTTLS\r\n")
        .unwrap();
    driver
        .d
        .conn
        .handle_input(driver.d.now, b"MAIL FROM:<x@y>\r\n")
        .unwrap();
    driver.drain();
    assert!(driver.handshake_pending);
    driver
        .d
        .conn
        .handle_input(driver.d.now, b"HELO x\r\n")
        .expect("input during the handshake is accepted and dropped");
    driver.drain();
    driver.handshake();
    driver.feed(b"NOOP\r\n");
    assert_replies(
        &driver.d.trace.out,
        &[READY_FOR_TLS.line, HANDSHAKE, OK.line],
    );
    assert_eq!(driver.d.conn.session().host_name, None);
}

#[test]
fn starttls_after_a_pending_hook() {
    // STARTTLS behind commands whose hooks are pending: answered in order, the
    // handshake after STARTTLS's own reply, the rest discarded.
    TlsScript::new(starttls_config()).transcript(
        &crlf(&["NOOP", "HELO example.com", "STARTTLS", "NOOP"]),
        &crlf(&["NOOP"]),
        &[
            OK.line,
            "250 mx.example",
            READY_FOR_TLS.line,
            HANDSHAKE,
            OK.line,
        ],
    );
}

#[test]
fn starttls_drops_authentication() {
    // With AUTH allowed in plaintext, the authentication does not survive the
    // handshake (a new session), nor does the transaction.
    let mut config = starttls_config();
    config.auth_require_tls = false;
    let good = format!("AUTH PLAIN {}", plain_good());
    let ehlo_before = [
        "250-mx.example",
        "250-8BITMIME",
        "250-STARTTLS",
        "250-AUTH LOGIN PLAIN",
        "250 HELP",
    ];
    let mut replies = ehlo_before.to_vec();
    replies.extend([AUTH_SUCCESS.line, OK.line, READY_FOR_TLS.line, HANDSHAKE]);
    replies.extend(EHLO_AUTH);
    replies.extend([AUTH_SUCCESS.line, OK.line]);
    let trace = TlsScript::new(config).transcript(
        &crlf(&[
            "EHLO example.com",
            &good,
            "MAIL FROM:<a@example.com>",
            "STARTTLS",
        ]),
        &crlf(&["EHLO example.com", &good, "MAIL FROM:<a@example.com>"]),
        &replies,
    );
    assert_eq!(auth_asks(&trace).len(), 2);
}

#[test]
fn require_starttls_refuses_everything_else() {
    let mut config = starttls_config();
    config.require_starttls = true;
    let refused = [
        "HELO example.com",
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<b@example.com>",
        "DATA",
        "RSET",
        "VRFY a@example.com",
        "EXPN list",
        "HELP",
        "AUTH PLAIN",
        "BOGUS",
    ];
    let mut before = vec!["NOOP", "EHLO example.com"];
    before.extend(refused);
    before.push("STARTTLS");
    let mut replies = vec![OK.line];
    replies.extend(EHLO_STARTTLS);
    replies.extend([STARTTLS_FIRST.line; 10]);
    replies.extend([
        READY_FOR_TLS.line,
        HANDSHAKE,
        "250 mx.example",
        OK.line,
        BYE.line,
    ]);
    let trace = TlsScript::new(config.clone()).transcript(
        &crlf(&before),
        &crlf(&["HELO example.com", "MAIL FROM:<a@example.com>", "QUIT"]),
        &replies,
    );
    assert!(trace.closed);
    // QUIT is allowed before TLS.
    TlsScript::new(config.clone()).transcript(&crlf(&["QUIT"]), b"", &["221 Bye"]);
    // Implicit TLS satisfies the requirement.
    TlsScript::implicit(config).transcript(
        b"",
        &crlf(&["HELO example.com", "MAIL FROM:<a@example.com>"]),
        &["250 mx.example", OK.line],
    );
    // Without STARTTLS offered, require_starttls has no effect.
    let mut config = plain();
    config.require_starttls = true;
    session(config, &["HELO example.com"], &["250 mx.example"]);
}

#[test]
fn starttls_under_implicit_tls() {
    // STARTTLS configured but the connection is already TLS: not advertised,
    // refused (aiosmtpd answers 220 and breaks the connection).
    TlsScript::implicit(starttls_config()).transcript(
        b"",
        &crlf(&["EHLO example.com", "STARTTLS", "NOOP"]),
        &with_ehlo(&EHLO_AUTH, &[TLS_ALREADY_ACTIVE.line, OK.line]),
    );
    // Implicit TLS only: STARTTLS is not available at all.
    TlsScript::implicit(plain()).transcript(
        b"",
        &crlf(&["EHLO example.com", "STARTTLS"]),
        &with_ehlo(&EHLO_AUTH, &[TLS_NOT_AVAILABLE.line]),
    );
}

#[test]
fn starttls_inside_data_is_content() {
    let trace = TlsScript::new(starttls_config()).transcript(
        &crlf(&[
            "HELO example.com",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "STARTTLS",
            ".",
            "NOOP",
        ]),
        b"",
        &[
            "250 mx.example",
            OK.line,
            OK.line,
            START_DATA.line,
            OK.line,
            OK.line,
        ],
    );
    assert_eq!(trace.messages.len(), 1);
    assert_eq!(trace.messages[0].content, b"STARTTLS\r\n");
}

#[test]
fn handle_tls_established_without_a_pending_handshake() {
    let now = Instant::now();
    let mut conn = Connection::new(Arc::new(starttls_config()), Peer::Unknown, now);
    assert_eq!(
        conn.handle_tls_established(now, tls_info()),
        Err(Error::NoTlsPending)
    );
    assert!(!conn.is_tls(), "a refused call changes nothing");

    // After a completed handshake, a second call is refused too.
    let mut driver = TlsDriver::new(starttls_config(), auth_responder(), false);
    driver.feed(b"STARTTLS\r\n");
    driver.handshake();
    assert_eq!(
        driver
            .d
            .conn
            .handle_tls_established(driver.d.now, tls_info()),
        Err(Error::NoTlsPending)
    );
    driver.feed(b"NOOP\r\n");
    assert_replies(
        &driver.d.trace.out,
        &[READY_FOR_TLS.line, HANDSHAKE, OK.line],
    );

    // The STARTTLS reply queued but not yet taken: no handshake pending yet.
    let mut conn = Connection::new(Arc::new(starttls_config()), Peer::Unknown, now);
    conn.handle_input(now, b"STARTTLS\r\n").unwrap();
    assert_eq!(
        conn.handle_tls_established(now, tls_info()),
        Err(Error::NoTlsPending)
    );
}

/// The driver bounds the TLS handshake itself (the idle timeout and the
/// shutdown signal): the engine's idle deadline does not run while the
/// handshake is pending, and a late `handle_timeout` changes nothing.
#[test]
fn no_idle_timeout_during_the_handshake() {
    let mut driver = TlsDriver::new(starttls_config(), auth_responder(), false);
    driver.feed(b"STARTTLS\r\n");
    assert!(driver.handshake_pending);
    let much_later = driver.d.now + std::time::Duration::from_secs(3600);
    driver.d.conn.handle_timeout(much_later);
    driver.drain();
    assert!(driver.handshake_pending, "still waiting for the handshake");
    assert!(!driver.d.trace.closed);
    driver.handshake();
    driver.feed(b"NOOP\r\n");
    assert_replies(
        &driver.d.trace.out,
        &[READY_FOR_TLS.line, HANDSHAKE, OK.line],
    );
}
