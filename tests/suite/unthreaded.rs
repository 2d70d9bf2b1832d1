//! The unthreaded controllers: served by the caller's runtime (`crate::block_on`),
//! with blocking clients on their own threads.

use std::time::Duration;

use smtpkit::{Peer, ServerError};

use super::util::*;
use crate::rt;

const LIMIT: Duration = Duration::from_secs(15);

fn tcp_session(addr: std::net::SocketAddr) -> Vec<String> {
    let mut client = Client::connect(addr);
    let mut replies = vec![client.greeting()];
    replies.push(client.cmd("HELO client.test"));
    replies.push(client.send_mail(
        "anne@example.com",
        &["bart@example.com"],
        "Subject: unthreaded\r\n\r\nHello.\r\n",
    ));
    replies.push(client.cmd("QUIT"));
    client.expect_closed();
    replies
}

#[test]
fn unthreaded_controller_begin_serve_end() {
    within(LIMIT, || {
        crate::block_on(async {
            let recorder = Recorder::default();
            let inbox = recorder.inbox.clone();
            let mut controller = rt::UnthreadedController::new(recorder)
                .with_hostname("127.0.0.1")
                .with_port(0)
                .with_config(config());
            assert!(controller.ended().is_fired(), "not begun: counts as ended");
            assert!(matches!(controller.end(), Err(ServerError::NotRunning)));

            controller.begin().expect("begin");
            let ended = controller.ended();
            assert!(!ended.is_fired());
            let addr = controller.local_addr().expect("bound address");
            assert_ne!(addr.port(), 0);
            assert!(matches!(
                controller.begin(),
                Err(ServerError::AlreadyRunning)
            ));

            let replies = join_thread(std::thread::spawn(move || tcp_session(addr))).await;
            assert_eq!(
                replies[1..],
                [format!("250 {HOST}"), "250 OK".into(), "221 Bye".into()]
            );

            let got = messages(&inbox);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(matches!(got[0].peer, Peer::Tcp(a) if a.ip().is_loopback()));
            assert_eq!(
                got[0].content_str(),
                "Subject: unthreaded\r\n\r\nHello.\r\n"
            );

            controller.end().expect("end");
            wait_fired(&ended).await;
            assert!(controller.ended().is_fired());
            assert_eq!(controller.local_addr(), None);
            assert!(matches!(controller.end(), Err(ServerError::NotRunning)));
            assert_refused(addr);

            // Can begin again after ending.
            controller.begin().expect("begin again");
            let addr = controller.local_addr().unwrap();
            join_thread(std::thread::spawn(move || tcp_session(addr))).await;
            controller.finalize().await;
            assert!(controller.ended().is_fired());
            assert_refused(addr);
            assert_eq!(messages(&inbox).len(), 2);
        })
    });
}

#[test]
fn unthreaded_controller_ends_gracefully() {
    within(LIMIT, || {
        crate::block_on(async {
            let inbox = Recorder::default();
            let mut controller = rt::UnthreadedController::new(inbox.clone())
                .with_hostname("127.0.0.1")
                .with_port(0)
                .with_config(config());
            controller.begin().unwrap();
            let addr = controller.local_addr().unwrap();
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let client = std::thread::spawn(move || {
                let mut idle = Client::connect(addr);
                idle.greeting();
                assert_eq!(idle.cmd("HELO client.test"), format!("250 {HOST}"));
                let mut sending = Client::connect(addr);
                sending.greeting();
                assert_eq!(sending.cmd("HELO client.test"), format!("250 {HOST}"));
                assert_eq!(sending.cmd("MAIL FROM:<a@b>"), "250 OK");
                assert_eq!(sending.cmd("RCPT TO:<c@d>"), "250 OK");
                assert_eq!(sending.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
                sending.send(b"Subject: in flight\r\n\r\n");
                tx.send(()).unwrap();
                let idle_last = idle.reply1();
                go_rx.recv().unwrap();
                sending.send(b"the rest\r\n.\r\n");
                (idle_last, sending.reply1(), sending.reply1())
            });
            for _ in 0..500 {
                if rx.try_recv().is_ok() {
                    break;
                }
                crate::sleep(Duration::from_millis(10)).await;
            }
            controller.end_gracefully(Duration::from_secs(10)).unwrap();
            go_tx.send(()).unwrap();
            controller.finalize().await;
            let (idle_last, delivered, last) = join_thread(client).await;
            let goodbye = format!("421 4.3.2 {HOST} Service shutting down");
            assert_eq!(idle_last, goodbye, "an idle session at once");
            assert_eq!(delivered, "250 OK", "the message in progress is delivered");
            assert_eq!(last, goodbye);
            assert_eq!(messages(&inbox.inbox).len(), 1);
            assert_refused(addr);
        })
    });
}

#[test]
fn unthreaded_controller_finalize_closes_open_connections() {
    within(LIMIT, || {
        crate::block_on(async {
            let mut controller = rt::UnthreadedController::new(Recorder::default())
                .with_hostname("127.0.0.1")
                .with_port(0)
                .with_config(config());
            controller.begin().unwrap();
            let addr = controller.local_addr().unwrap();
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let client = std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                client.greeting();
                assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
                tx.send(()).unwrap();
                // The server shuts down under this idle connection.
                let last = client.reply1();
                client.expect_closed();
                last
            });
            for _ in 0..500 {
                if rx.try_recv().is_ok() {
                    break;
                }
                crate::sleep(Duration::from_millis(10)).await;
            }
            controller.finalize().await;
            let last = join_thread(client).await;
            assert_eq!(
                last,
                format!("421 {HOST} Service not available, closing transmission channel")
            );
            assert_refused(addr);
        })
    });
}

#[test]
fn unix_socket_unthreaded_controller() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unthreaded.sock");
    within(LIMIT, move || {
        crate::block_on(async {
            let recorder = Recorder::default();
            let inbox = recorder.inbox.clone();
            let mut controller =
                rt::UnixSocketUnthreadedController::new(recorder, &path).with_config(config());
            assert_eq!(controller.path(), path);
            controller.begin().expect("begin");
            assert!(path.exists());
            let ended = controller.ended();
            assert!(!ended.is_fired());

            let p = path.clone();
            let replies = join_thread(std::thread::spawn(move || {
                let mut client = Client::connect_unix(&p);
                let mut replies = vec![client.greeting()];
                replies.push(client.cmd("HELO example.org"));
                replies.push(client.send_mail(
                    "anne@example.org",
                    &["bart@example.com", "carl@example.com"],
                    "Subject: unix\r\n\r\nHi.\r\n",
                ));
                replies.push(client.cmd("QUIT"));
                client.expect_closed();
                replies
            }))
            .await;
            assert_eq!(
                replies[1..],
                [format!("250 {HOST}"), "250 OK".into(), "221 Bye".into()]
            );

            let got = messages(&inbox);
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].peer, Peer::Unix);
            assert_eq!(got[0].rcpt_tos, ["bart@example.com", "carl@example.com"]);

            controller.end().expect("end");
            wait_fired(&ended).await;
            assert!(!path.exists(), "the socket file is removed once ended");
        })
    });
}
