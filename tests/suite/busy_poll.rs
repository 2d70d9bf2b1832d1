//! Busy polling: a lone connection read (and the next connection accepted)
//! without the event loop. The windows here are long, so the spinning path is
//! the one that meets the client's bytes; every message must still arrive
//! exactly once and every reply be right.

use std::time::Duration;

use super::util::*;
use crate::rt;

/// Long enough that a client on this machine always answers inside it.
const LONG_WINDOW: Duration = Duration::from_millis(20);

fn body(i: usize) -> String {
    format!("Subject: message {i}\r\n\r\nline one of {i}\r\n..a dotted line\r\n")
}

/// A started TCP controller with busy-polling `window`, and its inbox.
fn recording(window: Duration) -> (rt::Controller<Recorder>, Inbox) {
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = tcp_controller(recorder).with_busy_poll(Some(window));
    controller.start().expect("start");
    (controller, inbox)
}

fn check_inbox(inbox: &Inbox, count: usize) {
    let got = messages(inbox);
    assert_eq!(got.len(), count, "{got:?}");
    for (i, r) in got.iter().enumerate() {
        assert_eq!(
            r.content_str(),
            format!("Subject: message {i}\r\n\r\nline one of {i}\r\n.a dotted line\r\n")
        );
    }
}

#[test]
fn a_lone_client_is_served_by_busy_polling() {
    let (mut controller, inbox) = recording(LONG_WINDOW);
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    for i in 0..50 {
        let b = body(i);
        assert_eq!(
            client.send_mail("a@example.org", &["b@example.com"], &b),
            "250 OK"
        );
    }
    // Pipelined input read by the spinning path, in pieces.
    client.send(b"NOOP\r\nNO");
    client.send(b"OP\r\n");
    assert_eq!(client.reply1(), "250 OK");
    assert_eq!(client.reply1(), "250 OK");
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    controller.stop().expect("stop");
    check_inbox(&inbox, 50);
}

#[test]
fn connections_one_after_another_are_accepted_by_busy_polling() {
    let (mut controller, inbox) = recording(LONG_WINDOW);
    let addr = addr_of(&controller);
    for i in 0..20 {
        let mut client = Client::connect(addr);
        assert!(client.greeting().starts_with(&greeting_prefix()));
        assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
        assert_eq!(
            client.send_mail("a@example.org", &["b@example.com"], &body(i)),
            "250 OK"
        );
        assert_eq!(client.cmd("QUIT"), "221 Bye");
        client.expect_closed();
    }
    controller.stop().expect("stop");
    check_inbox(&inbox, 20);
}

#[test]
fn a_lone_unix_socket_client_is_served_by_busy_polling() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smtp.sock");
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = rt::UnixSocketController::new(recorder, &path)
        .with_config(config())
        .with_busy_poll(Some(LONG_WINDOW));
    controller.start().expect("start");
    for round in 0..3 {
        let mut client = Client::connect_unix(&path);
        client.greeting();
        assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
        for i in 0..5 {
            let b = body(round * 5 + i);
            assert_eq!(
                client.send_mail("a@example.org", &["b@example.com"], &b),
                "250 OK"
            );
        }
        assert_eq!(client.cmd("QUIT"), "221 Bye");
        client.expect_closed();
    }
    controller.stop().expect("stop");
    check_inbox(&inbox, 15);
}

#[test]
fn a_client_slower_than_the_window_is_served() {
    let (mut controller, inbox) = recording(Duration::from_micros(100));
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    // Every command comes after the window has passed: the server backs off
    // and waits in the event loop.
    for line in [
        "HELO client.test",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<b@example.com>",
    ] {
        std::thread::sleep(Duration::from_millis(3));
        let reply = client.cmd(line);
        assert!(reply.starts_with("250 "), "{line}: {reply}");
    }
    std::thread::sleep(Duration::from_millis(3));
    assert_eq!(client.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    std::thread::sleep(Duration::from_millis(3));
    client.send(body(0).as_bytes());
    std::thread::sleep(Duration::from_millis(3));
    client.send(b".\r\n");
    assert_eq!(client.reply1(), "250 OK");
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    controller.stop().expect("stop");
    check_inbox(&inbox, 1);
}

#[test]
fn two_clients_side_by_side_with_a_long_window() {
    let (mut controller, inbox) = recording(LONG_WINDOW);
    let addr = addr_of(&controller);
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.greeting();
    b.greeting();
    // Interleaved: neither client's commands wait on the other's window.
    for (i, client) in [&mut a, &mut b].into_iter().enumerate() {
        assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
        assert_eq!(
            client.cmd("MAIL FROM:<a@example.org>"),
            "250 OK",
            "client {i}"
        );
    }
    for client in [&mut a, &mut b] {
        assert_eq!(client.cmd("RCPT TO:<b@example.com>"), "250 OK");
        assert_eq!(client.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    }
    for (i, client) in [&mut a, &mut b].into_iter().enumerate() {
        client.send(body(i).as_bytes());
        client.send(b".\r\n");
        assert_eq!(client.reply1(), "250 OK");
    }
    // One closes; the other, now alone, goes on.
    assert_eq!(a.cmd("QUIT"), "221 Bye");
    a.expect_closed();
    assert_eq!(b.cmd("NOOP"), "250 OK");
    controller.stop().expect("stop");
    assert_eq!(
        b.reply1(),
        format!("421 {HOST} Service not available, closing transmission channel")
    );
    b.expect_closed();
    check_inbox(&inbox, 2);
}

#[test]
fn stop_reaches_a_lone_idle_client_under_a_long_window() {
    let mut controller = tcp_controller(smtpkit::handlers::Sink).with_busy_poll(Some(LONG_WINDOW));
    controller.start().expect("start");
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    controller.stop().expect("stop");
    assert_eq!(
        client.reply1(),
        format!("421 {HOST} Service not available, closing transmission channel")
    );
    client.expect_closed();
}
