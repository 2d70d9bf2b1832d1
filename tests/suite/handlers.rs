//! The built-in handlers behind a running controller.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use lettre::Transport;
use smtpkit::handlers::{Debugging, Mailbox};

use super::util::*;

/// A writer the test can read after handing a clone to the handler.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("UTF-8 output")
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn debugging_prints_each_message() {
    let out = SharedBuf::default();
    let mut controller = started(Debugging::with_writer(out.clone()));
    let addr = addr_of(&controller);

    let mut client = Client::connect(addr);
    let peer = client.local_addr();
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    assert_eq!(
        client.send_mail(
            "anne@example.com",
            &["bart@example.com"],
            "From: anne@example.com\r\nSubject: dbg\r\n\r\nHello\r\n\r\nBye\r\n",
        ),
        "250 OK"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    assert_eq!(
        out.text(),
        format!(
            "---------- MESSAGE FOLLOWS ----------\n\
             From: anne@example.com\n\
             Subject: dbg\n\
             X-Peer: ('{}', {})\n\
             \n\
             Hello\n\
             \n\
             Bye\n\
             ------------ END MESSAGE ------------\n",
            peer.ip(),
            peer.port()
        )
    );

    // A second message, through lettre, is printed after the first.
    let msg = message(
        "carl@example.com",
        &["dora@example.com"],
        "second",
        "Second body.\r\n",
    );
    mailer(addr.port()).send(&msg).expect("accepted");
    let text = out.text();
    assert_eq!(
        text.matches("---------- MESSAGE FOLLOWS ----------\n")
            .count(),
        2
    );
    assert_eq!(
        text.matches("------------ END MESSAGE ------------\n")
            .count(),
        2
    );
    let second = &text[text.rfind("---------- MESSAGE FOLLOWS").unwrap()..];
    assert!(second.contains("Subject: second\n"), "{second}");
    assert!(second.contains("\nX-Peer: ('127.0.0.1', "), "{second}");
    assert!(second.contains("\n\nSecond body.\n"), "{second}");
    assert!(
        second.find("X-Peer").unwrap() < second.find("Second body.").unwrap(),
        "{second}"
    );
    controller.stop().unwrap();
}

#[test]
fn mailbox_stores_messages_in_new() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    let mut controller = started(Mailbox::new(&maildir).expect("create the Maildir"));
    for sub in ["new", "cur", "tmp"] {
        assert!(maildir.join(sub).is_dir(), "{sub}/ exists");
    }
    let port = addr_of(&controller).port();
    let msg = message(
        "anne@example.com",
        &["bart@example.com", "carl@example.com"],
        "Into the Maildir",
        "Hello Mailbox.\r\n.Leading dot.\r\n",
    );
    mailer(port).send(&msg).expect("accepted");

    let new: Vec<_> = std::fs::read_dir(maildir.join("new"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(new.len(), 1, "one file in new/: {new:?}");
    let tmp: Vec<_> = std::fs::read_dir(maildir.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "tmp/ is empty: {tmp:?}");
    let stored = String::from_utf8(std::fs::read(&new[0]).unwrap()).unwrap();

    // aiosmtpd's stored form: the headers, then X-Peer, X-MailFrom, X-RcptTo,
    // a blank line and the body, all with LF line endings.
    let peer_line = stored
        .lines()
        .find(|l| l.starts_with("X-Peer: "))
        .unwrap_or_else(|| panic!("no X-Peer header in {stored:?}"));
    let port_part = peer_line
        .strip_prefix("X-Peer: ('127.0.0.1', ")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("X-Peer line {peer_line:?}"));
    assert!(port_part.parse::<u16>().is_ok(), "{peer_line:?}");

    let sent = String::from_utf8(expected_content(&msg)).unwrap();
    let (headers, body) = sent.split_once("\r\n\r\n").unwrap();
    let expected = format!(
        "{}\n{peer_line}\nX-MailFrom: anne@example.com\nX-RcptTo: bart@example.com, carl@example.com\n\n{}",
        headers.replace("\r\n", "\n"),
        body.replace("\r\n", "\n")
    );
    assert_eq!(stored, expected);
    assert!(
        stored.ends_with("\n\nHello Mailbox.\n.Leading dot.\n\n"),
        "{stored:?}"
    );

    // A second message adds a second file.
    mailer(port)
        .send(&message(
            "dora@example.com",
            &["erin@example.com"],
            "Second",
            "Two.\r\n",
        ))
        .expect("accepted");
    assert_eq!(std::fs::read_dir(maildir.join("new")).unwrap().count(), 2);
    assert_eq!(std::fs::read_dir(maildir.join("tmp")).unwrap().count(), 0);
    controller.stop().unwrap();
}

/// Polls `done` every 10 ms for at most 10 s.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn listing(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
}

#[test]
fn mailbox_answers_451_while_its_blocking_pool_is_full() {
    use smtpkit::handlers::blocking::BlockingPool;
    use std::sync::mpsc;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    // One thread, no queue: while the gate job holds the thread, a delivery
    // cannot even wait for it.
    let pool = BlockingPool::new(1, 0);
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let gate = pool.run(move || {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
    });
    started_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the gate job runs");
    let mailbox = Mailbox::new(&maildir)
        .expect("create the Maildir")
        .with_pool(pool.clone());
    let mut controller = started(mailbox);
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    // Transient: the sender keeps the message and retries.
    assert_eq!(
        client.send_mail("anne@example.com", &["bart@example.com"], "One.\r\n"),
        "451 4.3.0 Error: (io::Error) the blocking pool is full (1 threads busy, 0 waiting)"
    );
    assert!(listing(&maildir.join("new")).is_empty());
    assert!(listing(&maildir.join("tmp")).is_empty());

    // Once the thread is free, the retry is delivered on the same connection.
    release_tx.send(()).unwrap();
    drop(gate);
    wait_until("the gate job ends", || pool.in_flight() == 0);
    assert_eq!(
        client.send_mail("anne@example.com", &["bart@example.com"], "One.\r\n"),
        "250 OK"
    );
    assert_eq!(listing(&maildir.join("new")).len(), 1);
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    controller.stop().unwrap();
}

#[test]
fn mailbox_answers_451_when_it_cannot_store_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    let mut controller = started(Mailbox::new(&maildir).expect("create the Maildir"));
    // An operator removed new/ under the running server: the rename fails.
    std::fs::remove_dir(maildir.join("new")).unwrap();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    let reply = client.send_mail("anne@example.com", &["bart@example.com"], "One.\r\n");
    assert!(
        reply.starts_with("451 4.3.0 Error: (io::Error) "),
        "a transient storage failure: {reply:?}"
    );
    assert!(listing(&maildir.join("tmp")).is_empty(), "no partial file");

    // Restored, the next message is stored.
    std::fs::create_dir(maildir.join("new")).unwrap();
    assert_eq!(
        client.send_mail("anne@example.com", &["bart@example.com"], "Two.\r\n"),
        "250 OK"
    );
    assert_eq!(listing(&maildir.join("new")).len(), 1);
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    controller.stop().unwrap();
}

/// A handler whose storage fails in a way chosen by the test.
struct FailingStore(io::ErrorKind);

impl smtpkit::Handler for FailingStore {
    async fn handle_data(
        &self,
        _session: &mut smtpkit::Session,
        _envelope: &mut smtpkit::Envelope,
    ) -> smtpkit::HookResult {
        Err(io::Error::new(self.0, "the store said no").into())
    }
}

#[test]
fn handler_io_errors_answer_by_their_kind() {
    for (kind, expected) in [
        (
            io::ErrorKind::StorageFull,
            "452 4.3.1 Insufficient system storage: (io::Error) the store said no",
        ),
        (
            io::ErrorKind::TimedOut,
            "451 4.3.0 Error: (io::Error) the store said no",
        ),
        (
            io::ErrorKind::InvalidData,
            "500 Error: (io::Error) the store said no",
        ),
    ] {
        let mut controller = started(FailingStore(kind));
        let mut client = Client::connect(addr_of(&controller));
        client.greeting();
        assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
        assert_eq!(
            client.send_mail("anne@example.com", &["bart@example.com"], "One.\r\n"),
            expected,
            "{kind:?}"
        );
        assert_eq!(client.cmd("QUIT"), "221 Bye");
        controller.stop().unwrap();
    }
}
