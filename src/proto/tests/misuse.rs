//! API misuse by the driver, and Close as the last action.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::harness::*;
use crate::proto::{Action, CallLimits, Config, Connection, Decision, Error, Outcome, Peer};

#[test]
fn api_misuse_is_an_error() {
    let now = Instant::now();
    let mut conn = Connection::new(Arc::new(plain()), Peer::Unknown, now);
    assert_eq!(
        conn.handle_decision(now, Decision::Outcome(Outcome::Default)),
        Err(Error::NoDecisionPending)
    );
    // Answering twice.
    conn.handle_input(now, b"NOOP\r\n").unwrap();
    assert!(matches!(conn.poll_action(), Some(Action::Hook(_))));
    conn.handle_decision(now, Decision::Outcome(Outcome::Default))
        .unwrap();
    assert_eq!(
        conn.handle_decision(now, Decision::Outcome(Outcome::Default)),
        Err(Error::NoDecisionPending)
    );
    // Input after Close.
    conn.handle_input(now, b"QUIT\r\n").unwrap();
    let mut closed = false;
    while let Some(action) = conn.poll_action() {
        match action {
            Action::Hook(_) => conn
                .handle_decision(now, Decision::Outcome(Outcome::Default))
                .unwrap(),
            Action::Close => closed = true,
            _ => assert!(!closed),
        }
    }
    assert!(closed && conn.is_closed());
    assert_eq!(conn.handle_input(now, b"NOOP\r\n"), Err(Error::Closed));
    assert_eq!(
        conn.handle_decision(now, Decision::Outcome(Outcome::Default)),
        Err(Error::NoDecisionPending)
    );
    conn.handle_peer_closed(now);
    conn.handle_timeout(now + Duration::from_secs(3600));
    conn.handle_shutdown(now);
    assert!(conn.poll_action().is_none());
}

#[test]
fn close_is_always_the_last_action() {
    let scenarios: [(&str, Config, &[u8], u8); 7] = [
        ("quit", plain(), b"QUIT\r\nNOOP\r\n", 0),
        ("bogus", plain(), b"A\r\nB\r\nC\r\nD\r\nE\r\nNOOP\r\n", 0),
        (
            "call limit",
            plain().with_call_limits(Some(CallLimits::uniform(1))),
            b"NOOP\r\nNOOP\r\nNOOP\r\n",
            0,
        ),
        ("peer closed", plain(), b"NOOP\r\n", 1),
        ("timeout", plain(), b"NOOP\r\n", 2),
        ("shutdown", plain(), b"HELO x\r\nMAIL FROM:<a@b.c>\r\n", 3),
        (
            "peer closed in DATA",
            plain(),
            b"HELO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nxx",
            1,
        ),
    ];
    for (name, config, input, ending) in scenarios {
        let mut driver = Driver::new(config);
        driver.feed(input);
        match ending {
            1 => driver.peer_closed(),
            2 => {
                let deadline = driver.conn.poll_timeout().unwrap();
                driver.timeout(deadline);
            }
            3 => {
                driver.conn.handle_shutdown(driver.now);
                driver.drain();
            }
            _ => {}
        }
        assert!(driver.trace.closed, "{name}: closed");
        assert!(driver.trace.out.ends_with(b"\r\n"), "{name}");
        // Nothing comes after Close, whatever the driver does.
        assert_eq!(
            driver.conn.handle_input(driver.now, b"NOOP\r\n"),
            Err(Error::Closed)
        );
        driver.conn.handle_peer_closed(driver.now);
        driver
            .conn
            .handle_timeout(driver.now + Duration::from_secs(1000));
        driver.conn.handle_shutdown(driver.now);
        assert!(
            driver.conn.poll_action().is_none(),
            "{name}: action after Close"
        );
        assert_eq!(driver.conn.poll_timeout(), None, "{name}");
    }
}

#[test]
fn shutdown_sends_421_and_closes() {
    let mut driver = Driver::new(plain());
    driver.feed(b"HELO example.org\r\n");
    driver.conn.handle_shutdown(driver.now);
    driver.drain();
    let out = String::from_utf8_lossy(&driver.trace.out).into_owned();
    let last = out.trim_end().rsplit("\r\n").next().unwrap();
    assert!(last.starts_with("421 "), "{out:?}");
    assert!(driver.trace.closed);
}

#[test]
fn a_graceful_shutdown_lets_the_message_in_progress_finish() {
    use super::harness::*;
    let goodbye = "421 4.3.2 mx.example Service shutting down";
    // Between commands: 421 at once.
    let mut driver = Driver::new(plain());
    driver.feed(b"HELO x\r\nMAIL FROM:<a@b>\r\n");
    driver.conn.handle_graceful_shutdown(driver.now);
    driver.drain();
    assert!(driver.trace.closed);
    assert!(
        String::from_utf8_lossy(&driver.trace.out).ends_with(&format!("250 OK\r\n{goodbye}\r\n"))
    );
    // In DATA: the message ends, gets its 250, then the 421; what follows is not read.
    let mut driver = Driver::new(plain());
    driver.feed(b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\npart one\r\n");
    driver.conn.handle_graceful_shutdown(driver.now);
    driver.drain();
    assert!(!driver.trace.closed, "the message is still coming");
    driver.feed(b"part two\r\n.\r\nNOOP\r\n");
    assert!(driver.trace.closed);
    let out = String::from_utf8_lossy(&driver.trace.out).into_owned();
    assert!(
        out.ends_with(&format!(
            "354 End data with <CR><LF>.<CR><LF>\r\n250 OK\r\n{goodbye}\r\n"
        )),
        "{out}"
    );
    assert_eq!(
        driver.trace.messages[0].content,
        b"part one\r\npart two\r\n"
    );
    // The deadline: a hard shutdown closes in the middle.
    let mut driver = Driver::new(plain());
    driver.feed(b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\npart\r\n");
    driver.conn.handle_graceful_shutdown(driver.now);
    driver.conn.handle_shutdown(driver.now);
    driver.drain();
    assert!(driver.trace.closed);
    assert!(driver.trace.messages.is_empty());
}
