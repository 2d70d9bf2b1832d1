//! Streamed message bodies: a message begins (`handle_data_start`), its
//! chunks arrive with backpressure (the server reads no more while the
//! handler works on a chunk), a handler may refuse part-way (answered only
//! at the end of the message), and `Mailbox` streams into `tmp/` and leaves
//! nothing behind on any path that does not deliver.

use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtpkit::handlers::Mailbox;
use smtpkit::proto::Extensions;
use smtpkit::{Envelope, Handler, HandlerError, HookResult, Outcome, Reply, Session};

use super::util::{Client, config, tcp_controller};

const GO_AHEAD: &str = "354 End data with <CR><LF>.<CR><LF>";

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Waits (at most 5 s) until `tmp/` is empty: a connection's envelope, and
/// with it an abandoned message's file, goes when the connection ends.
fn assert_tmp_empties(maildir: &Path, case: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !files(&maildir.join("tmp")).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{case}: left in tmp/: {:?}",
            files(&maildir.join("tmp"))
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        files(&maildir.join("new")).is_empty(),
        "{case}: nothing delivered"
    );
}

fn open_data(c: &mut Client<TcpStream>) {
    c.greeting();
    c.cmd_multi("EHLO client.example");
    assert_eq!(c.cmd("MAIL FROM:<anne@example.com>"), "250 OK");
    assert_eq!(c.cmd("RCPT TO:<bart@example.com>"), "250 OK");
    assert_eq!(c.cmd("DATA"), GO_AHEAD);
    c.send(b"Subject: abandoned\r\n\r\n");
    c.send(&[b"x".repeat(998).as_slice(), b"\r\n"].concat().repeat(200));
}

#[test]
fn mailbox_leaves_nothing_in_tmp_when_a_message_is_not_delivered() {
    let root = tempfile::tempdir().unwrap();
    let maildir = root.path().join("Maildir");
    let mailbox = Mailbox::new(&maildir).unwrap();
    let cfg = config()
        .with_data_size_limit(Some(100_000))
        .with_timeout(Duration::from_millis(500))
        .with_extensions(Extensions {
            chunking: true,
            ..Extensions::NONE
        });
    let mut controller = tcp_controller(mailbox).with_config(cfg);
    controller.start().unwrap();
    let addr = controller.local_addr().unwrap();

    // Over SIZE part-way: 552 at the end, nothing stored.
    let mut c = Client::connect(addr);
    open_data(&mut c);
    c.send(b".\r\n");
    assert_eq!(c.reply1(), "552 Error: Too much mail data");
    assert_tmp_empties(&maildir, "over SIZE");

    // The client goes away in the middle of DATA.
    let mut c = Client::connect(addr);
    open_data(&mut c);
    drop(c);
    assert_tmp_empties(&maildir, "disconnect");

    // The idle timeout in the middle of DATA.
    let mut c = Client::connect(addr);
    open_data(&mut c);
    assert_eq!(c.reply1(), "421 4.4.2 smtpkit.test Error: timeout exceeded");
    assert_tmp_empties(&maildir, "timeout");

    // RSET after a BDAT chunk; then QUIT in the middle of a BDAT message.
    let mut c = Client::connect(addr);
    c.greeting();
    c.cmd_multi("EHLO client.example");
    c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5\r\nhello");
    assert_eq!(c.reply1(), "250 OK");
    assert_eq!(c.reply1(), "250 OK");
    assert_eq!(c.reply1(), "250 2.0.0 OK: 5 octets received");
    assert_eq!(c.cmd("RSET"), "250 OK");
    assert_tmp_empties(&maildir, "RSET after a chunk");
    c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5\r\nhello");
    for _ in 0..3 {
        c.reply1();
    }
    assert_eq!(c.cmd("QUIT"), "221 Bye");
    assert_tmp_empties(&maildir, "QUIT after a chunk");

    // A failing Maildir: the message cannot even start (tmp/ is gone).
    std::fs::remove_dir(maildir.join("tmp")).unwrap();
    let mut c = Client::connect(addr);
    c.greeting();
    c.cmd_multi("EHLO client.example");
    assert_eq!(c.cmd("MAIL FROM:<a@b>"), "250 OK");
    assert_eq!(c.cmd("RCPT TO:<c@d>"), "250 OK");
    assert_eq!(c.cmd("DATA"), GO_AHEAD);
    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n");
    let reply = c.reply1();
    assert!(
        reply.starts_with("451 4.3.0 Error: (io::Error) No such file"),
        "{reply}"
    );
    std::fs::create_dir(maildir.join("tmp")).unwrap();
    assert_tmp_empties(&maildir, "missing tmp/");

    // And a message that is delivered: in new/, streamed byte for byte.
    let mut c = Client::connect(addr);
    c.greeting();
    c.cmd_multi("EHLO client.example");
    let body = "Subject: kept\r\n\r\nline one\r\n..dot\r\n";
    assert_eq!(c.send_mail("a@b", &["c@d"], body), "250 OK");
    let new = files(&maildir.join("new"));
    assert_eq!(new.len(), 1);
    let stored = std::fs::read_to_string(maildir.join("new").join(&new[0])).unwrap();
    assert!(stored.starts_with("Subject: kept\nX-Peer: "), "{stored:?}");
    assert!(
        stored.ends_with("X-RcptTo: c@d\n\nline one\n.dot\n"),
        "{stored:?}"
    );
    assert!(files(&maildir.join("tmp")).is_empty());
    controller.stop().unwrap();
}

/// Refuses every message once 10,000 bytes of it arrived; counts the chunks
/// it saw and what it saw at the end.
#[derive(Clone, Default)]
struct Quota {
    seen: Arc<AtomicUsize>,
    starts: Arc<AtomicUsize>,
    ends: Arc<Mutex<Vec<usize>>>,
}

impl Handler for Quota {
    async fn handle_data_start(
        &self,
        _: &mut Session,
        envelope: &mut Envelope,
    ) -> Result<(), HandlerError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        envelope.spool.set(0usize);
        Ok(())
    }

    async fn handle_data_chunk(
        &self,
        _: &mut Session,
        envelope: &mut Envelope,
        chunk: &[u8],
    ) -> Result<(), HandlerError> {
        let total = envelope.spool.get_mut::<usize>().expect("started");
        *total += chunk.len();
        self.seen.fetch_add(chunk.len(), Ordering::SeqCst);
        if *total > 10_000 {
            return Err(HandlerError::refuse(Reply::new(
                552,
                "5.2.2 Mailbox over quota",
            )));
        }
        Ok(())
    }

    async fn handle_data(&self, _: &mut Session, envelope: &mut Envelope) -> HookResult {
        self.ends
            .lock()
            .unwrap()
            .push(*envelope.spool.get_mut::<usize>().unwrap_or(&mut 0));
        Ok(Outcome::Default)
    }
}

#[test]
fn a_refusal_part_way_is_answered_at_the_end_of_the_message() {
    let handler = Quota::default();
    let mut controller =
        tcp_controller(handler.clone()).with_config(config().with_extensions(Extensions {
            chunking: true,
            ..Extensions::NONE
        }));
    controller.start().unwrap();
    let mut c = Client::connect(controller.local_addr().unwrap());
    c.greeting();
    c.cmd_multi("EHLO client.example");
    assert_eq!(c.cmd("MAIL FROM:<a@b>"), "250 OK");
    assert_eq!(c.cmd("RCPT TO:<c@d>"), "250 OK");
    assert_eq!(c.cmd("DATA"), GO_AHEAD);
    for _ in 0..50 {
        c.send(&[b"y".repeat(998).as_slice(), b"\r\n"].concat());
    }
    // Nothing was answered in the middle: the first reply after the dot is
    // the refusal, then NOOP's.
    c.send(b".\r\nNOOP\r\n");
    assert_eq!(c.reply1(), "552 5.2.2 Mailbox over quota");
    assert_eq!(c.reply1(), "250 OK");
    // A small message is accepted; by BDAT too, streamed in its chunks.
    assert_eq!(
        c.send_mail("a@b", &["c@d"], "Subject: small\r\n\r\nok\r\n"),
        "250 OK"
    );
    c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 3000\r\n");
    c.send(&b"z".repeat(3000));
    c.send(b"BDAT 3000 LAST\r\n");
    c.send(&b"z".repeat(3000));
    for want in [
        "250 OK",
        "250 OK",
        "250 2.0.0 OK: 3000 octets received",
        "250 OK",
    ] {
        assert_eq!(c.reply1(), want);
    }
    assert_eq!(c.cmd("QUIT"), "221 Bye");
    assert_eq!(
        handler.starts.load(Ordering::SeqCst),
        3,
        "one start per message"
    );
    let ends = handler.ends.lock().unwrap().clone();
    let small = "Subject: small\r\n\r\nok\r\n".len();
    assert_eq!(
        ends,
        [small, 6000],
        "the refused message never reached handle_data"
    );
    controller.stop().unwrap();
}

/// Holds the first chunk until released, then drops everything.
#[derive(Clone, Default)]
struct Slow {
    released: Arc<AtomicBool>,
    received: Arc<AtomicUsize>,
}

impl Handler for Slow {
    async fn handle_data_chunk(
        &self,
        _: &mut Session,
        _: &mut Envelope,
        chunk: &[u8],
    ) -> Result<(), HandlerError> {
        for _ in 0..2000 {
            if self.released.load(Ordering::SeqCst) {
                break;
            }
            crate::sleep(Duration::from_millis(5)).await;
        }
        self.received.fetch_add(chunk.len(), Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_slow_handler_holds_the_socket_read_back() {
    const TOTAL: usize = 200 << 20;
    let handler = Slow::default();
    let mut controller =
        tcp_controller(handler.clone()).with_config(config().with_data_size_limit(None));
    controller.start().unwrap();
    let mut c = Client::connect(controller.local_addr().unwrap());
    c.greeting();
    c.cmd_multi("EHLO client.example");
    assert_eq!(c.cmd("MAIL FROM:<a@b>"), "250 OK");
    assert_eq!(c.cmd("RCPT TO:<c@d>"), "250 OK");
    assert_eq!(c.cmd("DATA"), GO_AHEAD);
    let mut writer = c.stream_mut().try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let progress = written.clone();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        let line = [b"w".repeat(998).as_slice(), b"\r\n"].concat();
        let block = line.repeat(64); // 64,000 bytes
        while progress.load(Ordering::SeqCst) < TOTAL {
            writer.write_all(&block).unwrap();
            progress.fetch_add(block.len(), Ordering::SeqCst);
        }
        writer.write_all(b".\r\n").unwrap();
    });
    // The client's writes stall: socket buffers and one read buffer, no more.
    let mut last = 0;
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(20));
        let now = written.load(Ordering::SeqCst);
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    let stalled_at = written.load(Ordering::SeqCst);
    assert!(
        stalled_at < 32 << 20,
        "the client wrote {stalled_at} bytes while the handler held its first chunk"
    );
    assert!(
        handler.received.load(Ordering::SeqCst) == 0,
        "the first chunk is still held"
    );
    handler.released.store(true, Ordering::SeqCst);
    sender.join().unwrap();
    assert_eq!(c.reply1(), "250 OK");
    assert!(handler.received.load(Ordering::SeqCst) >= TOTAL);
    controller.stop().unwrap();
}

/// Counts aborted messages, and checks that each brings its spool.
#[derive(Clone, Default)]
struct Aborts {
    aborted: Arc<AtomicUsize>,
}

impl Handler for Aborts {
    async fn handle_data_start(
        &self,
        _: &mut Session,
        envelope: &mut Envelope,
    ) -> Result<(), HandlerError> {
        envelope.spool.set("mine");
        Ok(())
    }

    async fn handle_data_abort(&self, _: &mut Session, spool: &mut smtpkit::proto::Spool) {
        assert_eq!(spool.take::<&str>(), Some("mine"));
        self.aborted.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn an_abandoned_message_reaches_handle_data_abort() {
    let handler = Aborts::default();
    let cfg = config()
        .with_timeout(Duration::from_millis(500))
        .with_extensions(Extensions {
            chunking: true,
            ..Extensions::NONE
        });
    let mut controller = tcp_controller(handler.clone()).with_config(cfg);
    controller.start().unwrap();
    let addr = controller.local_addr().unwrap();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while handler.aborted.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "{} aborts, not {n}",
                handler.aborted.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // Delivered: no abort. Then RSET after a chunk: one.
    let mut c = Client::connect(addr);
    c.greeting();
    c.cmd_multi("EHLO client.example");
    assert_eq!(
        c.send_mail("a@b", &["c@d"], "Subject: kept\r\n\r\nhi\r\n"),
        "250 OK"
    );
    c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 2\r\nhi");
    for want in ["250 OK", "250 OK", "250 2.0.0 OK: 2 octets received"] {
        assert_eq!(c.reply1(), want);
    }
    assert_eq!(c.cmd("RSET"), "250 OK");
    wait_for(1);
    // The client goes away in the middle of DATA.
    let mut c = Client::connect(addr);
    open_data(&mut c);
    drop(c);
    wait_for(2);
    // The idle timeout in the middle of DATA.
    let mut c = Client::connect(addr);
    open_data(&mut c);
    assert_eq!(c.reply1(), "421 4.4.2 smtpkit.test Error: timeout exceeded");
    wait_for(3);
    controller.stop().unwrap();
    assert_eq!(handler.aborted.load(Ordering::SeqCst), 3);
}
