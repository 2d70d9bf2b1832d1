//! The threaded Unix-socket controller.

use std::os::unix::net::{UnixListener, UnixStream};

use smtpkit::{Peer, ServerError};

use super::util::*;
use crate::rt;

fn dialogue(client: &mut Client<UnixStream>) {
    client.greeting();
    assert_eq!(client.cmd("HELO example.org"), format!("250 {HOST}"));
    assert_eq!(client.cmd("MAIL FROM:<anne@example.org>"), "250 OK");
    assert_eq!(client.cmd("RCPT TO:<bart@example.com>"), "250 OK");
    assert_eq!(client.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    client.send(b"Subject: over a Unix socket\r\n\r\nHello.\r\n..dotted\r\n.\r\n");
    assert_eq!(client.reply1(), "250 OK");
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
}

#[test]
fn unix_socket_controller_serves_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smtp.sock");
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = rt::UnixSocketController::new(recorder, &path).with_config(config());
    assert_eq!(controller.path(), path);
    assert!(!path.exists());

    controller.start().expect("start");
    assert!(controller.is_running());
    assert!(path.exists(), "the socket file exists while running");
    assert_eq!(controller.local_addr(), None, "no TCP address");

    dialogue(&mut Client::connect_unix(&path));

    let got = messages(&inbox);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].peer, Peer::Unix);
    assert_eq!(got[0].host_name.as_deref(), Some("example.org"));
    assert_eq!(got[0].mail_from.as_deref(), Some("anne@example.org"));
    assert_eq!(got[0].rcpt_tos, ["bart@example.com"]);
    assert_eq!(
        got[0].content_str(),
        "Subject: over a Unix socket\r\n\r\nHello.\r\n.dotted\r\n"
    );

    controller.stop().expect("stop");
    assert!(!path.exists(), "stop() removes the socket file");
    assert!(UnixStream::connect(&path).is_err());
    assert!(matches!(controller.stop(), Err(ServerError::NotRunning)));

    // Restartable.
    controller.start().expect("restart");
    dialogue(&mut Client::connect_unix(&path));
    controller.stop().unwrap();
    assert!(!path.exists());
}

#[test]
fn unix_socket_controller_replaces_a_stale_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a stale socket file is left behind");

    let mut controller =
        rt::UnixSocketController::new(Recorder::default(), &path).with_config(config());
    controller.start().expect("start over a stale socket file");
    dialogue(&mut Client::connect_unix(&path));
    drop(controller);
    assert!(
        !path.exists(),
        "dropping a running controller removes the socket"
    );
}

#[test]
fn unix_socket_controller_bind_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("smtp.sock");
    let mut controller = rt::UnixSocketController::new(Recorder::default(), &path);
    match controller.start() {
        Err(ServerError::Bind { addr, .. }) => assert!(addr.contains("smtp.sock"), "{addr}"),
        other => panic!("expected ServerError::Bind, got {:?}", other.map(|_| ())),
    }
    assert!(!controller.is_running());
}
