//! Hostile clients against a live server while a well-behaved client keeps being
//! served: connection limits, handler timeouts, slow-loris, never-ending lines and
//! floods of pipelined commands.

use std::time::{Duration, Instant};

use smtpkit::{Envelope, Handler, HookResult, Session};

use super::util::{Client, Recorder, addr_of, config, messages, tcp_controller};

/// A well-behaved client: one message, which must be accepted.
fn good_client(addr: std::net::SocketAddr) {
    let mut c = Client::connect(addr);
    assert!(c.greeting().starts_with("220 "));
    assert_eq!(c.cmd("HELO good.example"), "250 smtpkit.test");
    let reply = c.send_mail(
        "good@example.com",
        &["rcpt@example.com"],
        "Subject: ok\r\n\r\nok\r\n",
    );
    assert_eq!(reply, "250 OK");
    assert_eq!(c.cmd("QUIT"), "221 Bye");
}

#[test]
fn max_connections_refuses_with_421_and_recovers() {
    let mut cfg = config();
    cfg.max_connections = Some(2);
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = tcp_controller(recorder).with_config(cfg);
    controller.start().unwrap();
    let addr = addr_of(&controller);
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    assert!(a.greeting().starts_with("220 "));
    assert!(b.greeting().starts_with("220 "));
    let mut c = Client::connect(addr);
    let refused = c.reply1();
    assert!(
        refused.starts_with("421 4.7.0 smtpkit.test Too many connections"),
        "{refused}"
    );
    c.expect_closed();
    drop(a);
    // The slot frees once the server has seen the close; bounded retry.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = Client::connect(addr);
        let first = d.reply1();
        if first.starts_with("220 ") {
            assert_eq!(d.cmd("HELO good.example"), "250 smtpkit.test");
            let reply = d.send_mail("good@example.com", &["rcpt@example.com"], "x\r\n");
            assert_eq!(reply, "250 OK");
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(messages(&inbox).len(), 1);
    assert_eq!(b.cmd("NOOP"), "250 OK");
}

#[test]
fn max_connections_per_ip() {
    let mut cfg = config();
    cfg.max_connections_per_ip = Some(1);
    let mut controller = tcp_controller(Recorder::default()).with_config(cfg);
    controller.start().unwrap();
    let addr = addr_of(&controller);
    let mut a = Client::connect(addr);
    assert!(a.greeting().starts_with("220 "));
    let mut b = Client::connect(addr);
    assert!(b.reply1().starts_with("421 4.7.0 "));
    b.expect_closed();
    assert_eq!(a.cmd("NOOP"), "250 OK");
}

/// A handler that never answers RCPT.
struct Stuck;

impl Handler for Stuck {
    async fn handle_rcpt(
        &self,
        _: &mut Session,
        _: &mut Envelope,
        address: &str,
        _: &[String],
    ) -> HookResult {
        if address.starts_with("stuck") {
            std::future::pending::<()>().await;
        }
        Ok(smtpkit::Outcome::Default)
    }
}

#[test]
fn a_hook_that_never_answers_gets_421_and_the_server_survives() {
    let mut cfg = config();
    cfg.hook_timeout = Some(Duration::from_millis(300));
    let mut controller = tcp_controller(Stuck).with_config(cfg);
    controller.start().unwrap();
    let addr = addr_of(&controller);
    let mut c = Client::connect(addr);
    c.greeting();
    assert_eq!(c.cmd("HELO x"), "250 smtpkit.test");
    assert_eq!(c.cmd("MAIL FROM:<a@example.com>"), "250 OK");
    let reply = c.cmd("RCPT TO:<stuck@example.com>");
    assert!(
        reply.starts_with("421 4.3.0 smtpkit.test Error: handler timed out"),
        "{reply}"
    );
    c.expect_closed();
    good_client(addr);
}

#[test]
fn slow_loris_is_cut_off_by_the_idle_timeout() {
    let mut cfg = config();
    cfg.timeout = Duration::from_secs(1);
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = tcp_controller(recorder).with_config(cfg);
    controller.start().unwrap();
    let addr = addr_of(&controller);
    // In a command line: one byte every 200 ms, never a full line.
    let mut slow = Client::connect(addr);
    slow.greeting();
    // In DATA: the same, never completing a line.
    let mut slow_data = Client::connect(addr);
    slow_data.greeting();
    assert_eq!(slow_data.cmd("HELO slow.example"), "250 smtpkit.test");
    assert_eq!(slow_data.cmd("MAIL FROM:<a@example.com>"), "250 OK");
    assert_eq!(slow_data.cmd("RCPT TO:<b@example.com>"), "250 OK");
    assert_eq!(slow_data.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    let start = Instant::now();
    let mut cut = [false, false];
    for i in 0..25 {
        for (n, c) in [&mut slow, &mut slow_data].into_iter().enumerate() {
            if !cut[n] && std::io::Write::write_all(&mut c.stream_mut(), b"N").is_err() {
                cut[n] = true;
            }
        }
        if i == 3 {
            good_client(addr); // served while the slow clients hang on
        }
        std::thread::sleep(Duration::from_millis(200));
        if start.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    for c in [&mut slow, &mut slow_data] {
        let line = c.line().expect("a 421 before the close");
        assert!(
            line.starts_with("421 4.4.2 smtpkit.test Error: timeout exceeded"),
            "{line}"
        );
    }
    assert_eq!(
        messages(&inbox).len(),
        1,
        "only the good client's message arrives"
    );
}

#[test]
fn ten_thousand_pipelined_commands_in_one_write() {
    let mut controller = tcp_controller(Recorder::default());
    controller.start().unwrap();
    let addr = addr_of(&controller);
    let mut c = Client::connect(addr);
    c.greeting();
    let flood = "NOOP\r\n".repeat(10_000);
    // Write from another thread while reading here, so neither side's buffers fill.
    let mut writer = c.stream_mut().try_clone().unwrap();
    let sender =
        std::thread::spawn(move || std::io::Write::write_all(&mut writer, flood.as_bytes()));
    for i in 0..10_000 {
        assert_eq!(c.reply1(), "250 OK", "reply {i}");
    }
    sender.join().unwrap().unwrap();
    assert_eq!(c.cmd("QUIT"), "221 Bye");
    good_client(addr);
}

#[test]
fn never_ending_lines_are_answered_and_bounded() {
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = tcp_controller(recorder);
    controller.start().unwrap();
    let addr = addr_of(&controller);
    let mut c = Client::connect(addr);
    c.greeting();
    let mut writer = c.stream_mut().try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..32 {
            std::io::Write::write_all(&mut writer, &chunk)?; // 2 MiB without a line end
        }
        std::io::Write::write_all(&mut writer, b"\r\n")
    });
    assert_eq!(c.reply1(), "500 Command line too long");
    sender.join().unwrap().unwrap();
    assert_eq!(c.cmd("HELO x"), "250 smtpkit.test");
    assert_eq!(c.cmd("MAIL FROM:<a@example.com>"), "250 OK");
    assert_eq!(c.cmd("RCPT TO:<b@example.com>"), "250 OK");
    assert_eq!(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    let mut writer = c.stream_mut().try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'b'; 64 * 1024];
        for _ in 0..32 {
            std::io::Write::write_all(&mut writer, &chunk)?;
        }
        std::io::Write::write_all(&mut writer, b"\r\n.\r\n")
    });
    assert_eq!(c.reply1(), "500 Line too long (see RFC5321 4.5.3.1.6)");
    sender.join().unwrap().unwrap();
    assert!(messages(&inbox).is_empty());
    good_client(addr);
}
