//! Hostile clients against a live server while a well-behaved client keeps being
//! served ([`GoodTraffic`]): connection limits, handler timeouts, slow-loris,
//! never-ending lines, floods of pipelined commands, connections reset in the
//! middle of a command, of DATA, of AUTH and of the TLS handshake, TLS garbage,
//! plaintext on the implicit-TLS port, a thousand idle connections and every SMTP
//! smuggling variant.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smtpkit::server::Limits;
use smtpkit::{Envelope, Handler, HookResult, Session};

use crate::rt;

use super::util::{
    Client, GoodTraffic, HOST, Inbox, Recorder, Via, addr_of, alice, b64, client_hello, config,
    has_smtp_reply, hostile_messages, implicit_tls_controller, messages, starttls_controller,
    tcp_controller,
};

/// A started controller built by `make` around a fresh [`Recorder`], its inbox,
/// its address, and well-behaved traffic `via` running against it throughout.
fn under_traffic<H: Handler>(
    make: impl FnOnce(Recorder) -> rt::Controller<H>,
    via: Via,
) -> (rt::Controller<H>, Inbox, SocketAddr, GoodTraffic) {
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = make(recorder);
    controller.start().unwrap();
    let addr = addr_of(&controller);
    let traffic = GoodTraffic::start(addr, via);
    (controller, inbox, addr, traffic)
}

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
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = tcp_controller(recorder).with_config(config());
    controller.limits_mut().max_connections = Some(2);
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
    let mut controller = tcp_controller(Recorder::default()).with_config(config());
    controller.limits_mut().max_connections_per_ip = Some(1);
    controller.start().unwrap();
    let addr = addr_of(&controller);
    let mut a = Client::connect(addr);
    assert!(a.greeting().starts_with("220 "));
    let mut b = Client::connect(addr);
    assert!(b.reply1().starts_with("421 4.7.0 "));
    b.expect_closed();
    assert_eq!(a.cmd("NOOP"), "250 OK");
}

/// A handler that never answers RCPT for `stuck@...`; `live` counts the stuck
/// hook calls whose futures still exist.
#[derive(Default)]
struct Stuck {
    live: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts itself in `Stuck::live` while it exists.
struct LiveGuard(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Handler for Stuck {
    async fn handle_rcpt(
        &self,
        _: &mut Session,
        _: &mut Envelope,
        address: &str,
        _: &[String],
    ) -> HookResult {
        if address.starts_with("stuck") {
            self.live.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _guard = LiveGuard(self.live.clone());
            std::future::pending::<()>().await;
        }
        Ok(smtpkit::Outcome::Default)
    }
}

#[test]
fn a_hook_that_never_answers_gets_421_and_the_server_survives() {
    let stuck = Stuck::default();
    let live = stuck.live.clone();
    let mut controller = tcp_controller(stuck)
        .with_config(config())
        .with_limits(Limits {
            hook_timeout: Some(Duration::from_millis(300)),
            // One connection at a time: the stuck one must give its slot back.
            max_connections: Some(1),
            ..Limits::default()
        });
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
    // Nothing leaked: the abandoned hook future was dropped, and the connection
    // slot is free again (bounded wait for the server to notice the close).
    let deadline = Instant::now() + Duration::from_secs(5);
    while live.load(std::sync::atomic::Ordering::SeqCst) != 0 {
        assert!(
            Instant::now() < deadline,
            "the stuck hook's future was never dropped"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = Client::connect(addr);
        if d.reply1().starts_with("220 ") {
            // The freed slot serves a good client.
            assert_eq!(d.cmd("HELO good.example"), "250 smtpkit.test");
            let reply = d.send_mail("good@example.com", &["rcpt@example.com"], "ok\r\n");
            assert_eq!(reply, "250 OK");
            assert_eq!(d.cmd("QUIT"), "221 Bye");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stuck connection's slot was never freed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn slow_loris_is_cut_off_by_the_idle_timeout() {
    let mut cfg = config();
    cfg.timeout = Duration::from_secs(1);
    let (_controller, inbox, addr, traffic) = under_traffic(
        |recorder| tcp_controller(recorder).with_config(cfg),
        Via::Plain,
    );
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
    for _ in 0..25 {
        for (n, c) in [&mut slow, &mut slow_data].into_iter().enumerate() {
            if !cut[n] && std::io::Write::write_all(&mut c.stream_mut(), b"N").is_err() {
                cut[n] = true;
            }
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
    // The good client was served while the slow clients hung on, and after.
    traffic.finish(&inbox);
    let hostile = hostile_messages(&inbox);
    assert!(hostile.is_empty(), "only good messages arrive: {hostile:?}");
}

#[test]
fn ten_thousand_pipelined_commands_in_one_write() {
    let (_controller, inbox, addr, traffic) = under_traffic(tcp_controller, Via::Plain);
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
    traffic.finish(&inbox);
    assert!(hostile_messages(&inbox).is_empty());
}

#[test]
fn never_ending_lines_are_answered_and_bounded() {
    let (_controller, inbox, addr, traffic) = under_traffic(tcp_controller, Via::Plain);
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
    assert_eq!(c.cmd("QUIT"), "221 Bye");
    traffic.finish(&inbox);
    let hostile = hostile_messages(&inbox);
    assert!(
        hostile.is_empty(),
        "the refused message is not delivered: {hostile:?}"
    );
}

// ---------------------------------------------------------------------------
// Connections reset (TCP RST) in the middle of things
// ---------------------------------------------------------------------------

/// Gives the server a moment to read what a client sent before the client resets
/// the connection (so the reset lands in the state the bytes put it in).
fn settle() {
    std::thread::sleep(Duration::from_millis(20));
}

/// A client past the greeting and `HELO`.
fn helo(addr: SocketAddr) -> Client<std::net::TcpStream> {
    let mut c = Client::connect(addr);
    c.greeting();
    assert_eq!(c.cmd("HELO hostile.example"), format!("250 {HOST}"));
    c
}

/// A client in DATA (after `354`) for a message from `from`.
fn in_data(addr: SocketAddr, from: &str) -> Client<std::net::TcpStream> {
    let mut c = helo(addr);
    assert_eq!(c.cmd(&format!("MAIL FROM:<{from}>")), "250 OK");
    assert_eq!(c.cmd("RCPT TO:<rcpt@example.com>"), "250 OK");
    assert_eq!(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    c
}

/// The senders of the messages in `inbox` not sent by the good clients, sorted.
fn hostile_senders(inbox: &super::util::Inbox) -> Vec<String> {
    let mut senders: Vec<String> = hostile_messages(inbox)
        .into_iter()
        .map(|m| m.mail_from.unwrap_or_default())
        .collect();
    senders.sort();
    senders
}

#[test]
fn connection_reset_mid_command() {
    let (_controller, inbox, addr, traffic) = under_traffic(tcp_controller, Via::Plain);
    // A client in the middle of a transaction on another connection.
    let mut bystander = helo(addr);
    assert_eq!(bystander.cmd("MAIL FROM:<bystander@example.com>"), "250 OK");

    for _round in 0..3 {
        // Before the greeting was read.
        Client::connect(addr).reset();
        // Half a command line, at every stage of a transaction.
        let stages: [(&[&str], &str); 4] = [
            (&[], "HEL"),
            (&["HELO hostile.example"], "MAIL FROM:<reset@exa"),
            (
                &["HELO hostile.example", "MAIL FROM:<reset@example.com>"],
                "RCPT TO:<rcpt@exam",
            ),
            (
                &[
                    "HELO hostile.example",
                    "MAIL FROM:<reset@example.com>",
                    "RCPT TO:<rcpt@example.com>",
                ],
                "DAT",
            ),
        ];
        for (setup, partial) in stages {
            let mut c = Client::connect(addr);
            c.greeting();
            for cmd in setup {
                let reply = c.cmd(cmd);
                assert!(reply.starts_with("250 "), "{cmd}: {reply}");
            }
            c.send(partial.as_bytes());
            settle();
            c.reset();
        }
        // Whole commands sent, their replies never read.
        let mut c = Client::connect(addr);
        c.send(
            b"HELO hostile.example\r\nMAIL FROM:<reset@example.com>\r\n\
              RCPT TO:<rcpt@example.com>\r\nDATA\r\n",
        );
        settle();
        c.reset();
        // In the middle of an overlong command line being discarded.
        let mut c = Client::connect(addr);
        c.greeting();
        c.send(&[b'x'; 64 * 1024]);
        settle();
        c.reset();
    }

    // The bystander's transaction goes on as if nothing happened.
    assert_eq!(bystander.cmd("RCPT TO:<rcpt@example.com>"), "250 OK");
    assert_eq!(bystander.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    bystander.send(b"Subject: bystander\r\n\r\nstill here\r\n.\r\n");
    assert_eq!(bystander.reply1(), "250 OK");
    assert_eq!(bystander.cmd("QUIT"), "221 Bye");
    bystander.expect_closed();
    traffic.finish(&inbox);
    assert_eq!(hostile_senders(&inbox), ["bystander@example.com"]);
}

#[test]
fn connection_reset_mid_data_loses_only_that_message() {
    let (_controller, inbox, addr, traffic) = under_traffic(tcp_controller, Via::Plain);
    // Another client in the middle of its message body.
    let mut bystander = in_data(addr, "bystander@example.com");
    bystander.send(b"Subject: bystander\r\n\r\nfirst half\r\n");

    let mut big = Vec::new();
    while big.len() < 1 << 20 {
        big.extend_from_slice(b"a line of a big message that never ends\r\n");
    }
    let cuts: [(&str, Vec<u8>); 8] = [
        ("nothing sent", Vec::new()),
        (
            "complete lines",
            b"Subject: cut\r\n\r\nline one\r\nline two\r\n".to_vec(),
        ),
        ("mid-line", b"Subject: cut\r\n\r\nhalf a li".to_vec()),
        ("after CRLF .", b"Subject: cut\r\n\r\nbody\r\n.".to_vec()),
        (
            "after CRLF . CR",
            b"Subject: cut\r\n\r\nbody\r\n.\r".to_vec(),
        ),
        ("a stuffed dot", b"Subject: cut\r\n\r\nbody\r\n..".to_vec()),
        ("an overlong line", vec![b'x'; 100_000]),
        ("1 MiB of lines", big),
    ];
    for round in 0..2 {
        for (i, (what, bytes)) in cuts.iter().enumerate() {
            let from = format!("cut-{round}-{i}@example.com");
            let mut c = in_data(addr, &from);
            let mut writer = c.stream_mut().try_clone().unwrap();
            writer
                .write_all(bytes)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            settle();
            c.reset();
        }
    }
    // An accepted message whose connection is reset right after the 250 stays
    // accepted.
    let mut c = in_data(addr, "whole@example.com");
    c.send(b"Subject: whole\r\n\r\nwhole\r\n.\r\n");
    assert_eq!(c.reply1(), "250 OK");
    c.reset();

    bystander.send(b"second half\r\n.\r\n");
    assert_eq!(bystander.reply1(), "250 OK");
    assert_eq!(bystander.cmd("QUIT"), "221 Bye");
    bystander.expect_closed();
    traffic.finish(&inbox);
    // No cut message arrives, every accepted one does, once and intact.
    assert_eq!(
        hostile_senders(&inbox),
        ["bystander@example.com", "whole@example.com"]
    );
    for m in hostile_messages(&inbox) {
        let expected = match m.mail_from.as_deref() {
            Some("bystander@example.com") => {
                "Subject: bystander\r\n\r\nfirst half\r\nsecond half\r\n"
            }
            _ => "Subject: whole\r\n\r\nwhole\r\n",
        };
        assert_eq!(m.content_str(), expected);
    }
}

const AUTH_SUCCESS: &str = "235 2.7.0 Authentication successful";
const USER_PROMPT: &str = "334 VXNlciBOYW1lAA==";
const PASSWORD_PROMPT: &str = "334 UGFzc3dvcmQA";

/// Every way to abandon an AUTH exchange on `client()`'s connection with a reset.
fn reset_in_every_auth_state<S: Read + Write>(
    client: impl Fn() -> Client<S>,
    reset: impl Fn(Client<S>),
) {
    // At the user-name prompt.
    let mut c = client();
    assert_eq!(c.cmd("AUTH LOGIN"), USER_PROMPT);
    reset(c);
    // At the password prompt.
    let mut c = client();
    assert_eq!(c.cmd("AUTH LOGIN"), USER_PROMPT);
    assert_eq!(c.cmd(&b64(b"alice")), PASSWORD_PROMPT);
    reset(c);
    // Half the password.
    let mut c = client();
    assert_eq!(
        c.cmd(&format!("AUTH LOGIN {}", b64(b"alice"))),
        PASSWORD_PROMPT
    );
    c.send(&b64(b"wonderland").as_bytes()[..6]);
    settle();
    reset(c);
    // AUTH PLAIN's empty challenge.
    let mut c = client();
    assert_eq!(c.cmd("AUTH PLAIN"), "334 ");
    reset(c);
    // Credentials sent, the verdict never read.
    let mut c = client();
    c.send(format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")).as_bytes());
    settle();
    reset(c);
    // Half an AUTH command.
    let mut c = client();
    c.send(b"AUTH LOG");
    settle();
    reset(c);
}

/// Alice authenticates on `c` and sends one message, which must be accepted.
fn alice_sends<S: Read + Write>(c: &mut Client<S>) {
    assert_eq!(c.auth_plain("alice", "wonderland"), AUTH_SUCCESS);
    assert_eq!(
        c.send_mail(
            "alice@example.com",
            &["rcpt@example.com"],
            "Subject: authed\r\n\r\nhi\r\n"
        ),
        "250 OK"
    );
    assert_eq!(c.cmd("QUIT"), "221 Bye");
}

#[test]
fn connection_reset_mid_auth() {
    let (_controller, inbox, addr, traffic) = under_traffic(
        |recorder| {
            let mut controller = tcp_controller(recorder).with_authenticator(alice());
            controller.config_mut().auth_require_tls = false;
            controller
        },
        Via::Plain,
    );
    let ehlo = || {
        let mut c = Client::connect(addr);
        c.greeting();
        let ehlo = c.cmd_multi("EHLO hostile.example");
        assert!(
            ehlo.contains(&"250-AUTH LOGIN PLAIN".to_owned()),
            "{ehlo:?}"
        );
        c
    };
    for _round in 0..3 {
        reset_in_every_auth_state(ehlo, Client::<std::net::TcpStream>::reset);
    }
    let mut c = ehlo();
    alice_sends(&mut c);
    c.expect_closed();
    traffic.finish(&inbox);
    assert_eq!(hostile_senders(&inbox), ["alice@example.com"]);
}

#[test]
fn connection_reset_mid_auth_over_tls() {
    let (_controller, inbox, addr, traffic) = under_traffic(
        |recorder| starttls_controller(recorder).with_authenticator(alice()),
        Via::StartTls,
    );
    let ehlo = || {
        let mut c = Client::connect(addr);
        c.greeting();
        c.cmd_multi("EHLO hostile.example");
        let mut c = c.starttls();
        let ehlo = c.cmd_multi("EHLO hostile.example");
        assert!(
            ehlo.contains(&"250-AUTH LOGIN PLAIN".to_owned()),
            "{ehlo:?}"
        );
        c
    };
    for _round in 0..2 {
        reset_in_every_auth_state(ehlo, super::util::TlsClient::reset);
    }
    let mut c = ehlo();
    alice_sends(&mut c);
    assert_eq!(c.read_until_closed(), b"");
    traffic.finish(&inbox);
    assert_eq!(hostile_senders(&inbox), ["alice@example.com"]);
}

/// Resets connections at every point of a TLS handshake started by `begin`
/// (which returns a connection whose next bytes are the ClientHello).
fn reset_in_every_handshake_state(begin: impl Fn() -> Client<std::net::TcpStream>) {
    let hello = client_hello();
    for cut in [0, 1, 5, hello.len() / 2, hello.len() - 1, hello.len()] {
        let mut c = begin();
        c.send(&hello[..cut]);
        settle();
        c.reset();
    }
    // The server's first flight partly read.
    let mut c = begin();
    c.send(&hello);
    let mut first = [0u8; 64];
    let n = c
        .stream_mut()
        .read(&mut first)
        .expect("the server's first flight");
    assert!(
        n > 0 && first[0] == 0x16,
        "a TLS handshake record: {:?}",
        &first[..n]
    );
    c.reset();
}

#[test]
fn connection_reset_mid_starttls_handshake() {
    let (_controller, inbox, addr, traffic) = under_traffic(starttls_controller, Via::StartTls);
    // A client in the middle of a transaction over TLS.
    let mut bystander = Client::connect(addr);
    bystander.greeting();
    let mut bystander = bystander.starttls();
    assert_eq!(
        bystander.cmd("HELO bystander.example"),
        format!("250 {HOST}")
    );
    assert_eq!(bystander.cmd("MAIL FROM:<bystander@example.com>"), "250 OK");
    for _round in 0..3 {
        reset_in_every_handshake_state(|| {
            let mut c = Client::connect(addr);
            c.greeting();
            assert_eq!(c.cmd("STARTTLS"), "220 Ready to start TLS");
            c
        });
    }
    assert_eq!(bystander.cmd("RCPT TO:<rcpt@example.com>"), "250 OK");
    assert_eq!(bystander.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    bystander.send(b"Subject: bystander\r\n\r\nover TLS\r\n.\r\n");
    assert_eq!(bystander.reply1(), "250 OK");
    assert_eq!(bystander.cmd("QUIT"), "221 Bye");
    assert_eq!(bystander.read_until_closed(), b"");
    traffic.finish(&inbox);
    assert_eq!(hostile_senders(&inbox), ["bystander@example.com"]);
}

#[test]
fn connection_reset_mid_implicit_tls_handshake() {
    let (_controller, inbox, addr, traffic) =
        under_traffic(implicit_tls_controller, Via::ImplicitTls);
    for _round in 0..3 {
        reset_in_every_handshake_state(|| Client::connect(addr));
    }
    traffic.finish(&inbox);
    assert!(hostile_messages(&inbox).is_empty());
}

// ---------------------------------------------------------------------------
// TLS garbage, plaintext on the implicit-TLS port
// ---------------------------------------------------------------------------

/// Bytes that are not a TLS handshake, each ending that connection at once.
fn tls_garbage() -> Vec<(&'static str, Vec<u8>)> {
    // A deterministic pseudo-random stream.
    let mut x: u32 = 0x1234_5678;
    let noise: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let mut bad_hello = vec![0x16, 0x03, 0x01, 0x00, 0x10];
    bad_hello.extend_from_slice(&[0xff; 16]);
    vec![
        (
            "SMTP",
            b"this is not a TLS ClientHello\r\nQUIT\r\n".to_vec(),
        ),
        ("noise", noise),
        ("a handshake record of garbage", bad_hello),
        (
            "an SSLv2 hello header",
            vec![0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15],
        ),
        (
            "HTTP",
            b"GET / HTTP/1.1\r\nHost: smtpkit.test\r\n\r\n".to_vec(),
        ),
        ("NUL bytes", vec![0; 1024]),
        ("an alert", vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]),
        (
            "application data first",
            vec![0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5],
        ),
    ]
}

/// Sends `bytes` (the server may close before taking them all) and checks that
/// the server closes the connection without a single SMTP reply.
fn closed_without_smtp(mut c: Client<std::net::TcpStream>, what: &str, bytes: &[u8]) {
    let _ = c.stream_mut().write_all(bytes);
    let got = c.read_until_closed();
    assert!(
        !has_smtp_reply(&got),
        "{what}: no SMTP reply, got {:?}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn tls_garbage_after_starttls_ends_only_that_connection() {
    let (_controller, inbox, addr, traffic) = under_traffic(
        |recorder| {
            let mut controller = starttls_controller(recorder);
            controller.config_mut().timeout = Duration::from_secs(2);
            controller
        },
        Via::StartTls,
    );
    let starttls = || {
        let mut c = Client::connect(addr);
        c.greeting();
        assert_eq!(c.cmd("STARTTLS"), "220 Ready to start TLS");
        c
    };
    // Handshakes that stall: half a record, a record header, nothing at all. The
    // idle timeout (2 s) must end them.
    let mut stalled = Vec::new();
    for bytes in [
        &client_hello()[..20],
        &[0x16, 0x03, 0x01, 0x02, 0x00][..],
        &[][..],
    ] {
        let mut c = starttls();
        c.send(bytes);
        stalled.push(c);
    }
    let mut bystander = helo(addr);
    for (what, bytes) in tls_garbage() {
        closed_without_smtp(starttls(), what, &bytes);
        assert_eq!(bystander.cmd("NOOP"), "250 OK");
    }
    assert_eq!(
        bystander.send_mail("bystander@example.com", &["rcpt@example.com"], "b\r\n"),
        "250 OK"
    );
    assert_eq!(bystander.cmd("QUIT"), "221 Bye");
    bystander.expect_closed();
    for c in stalled {
        closed_without_smtp(c, "a stalled handshake", b"");
    }
    traffic.finish(&inbox);
    assert_eq!(hostile_senders(&inbox), ["bystander@example.com"]);
}

#[test]
fn plaintext_and_garbage_on_the_implicit_tls_port() {
    let (_controller, inbox, addr, traffic) = under_traffic(
        |recorder| {
            let mut controller = implicit_tls_controller(recorder);
            controller.config_mut().timeout = Duration::from_secs(2);
            controller
        },
        Via::ImplicitTls,
    );
    // A client waiting for a plaintext greeting that must never come, and one
    // that stalls in the handshake: the idle timeout (2 s) ends both.
    let silent = Client::connect(addr);
    let mut stalled = Client::connect(addr);
    stalled.send(&client_hello()[..20]);
    let mut plaintext = vec![
        ("EHLO", b"EHLO plain.test\r\n".to_vec()),
        ("QUIT", b"QUIT\r\n".to_vec()),
        (
            "a whole transaction",
            b"HELO plain.test\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\n\
              DATA\r\nSubject: injected\r\n\r\nplaintext\r\n.\r\nQUIT\r\n"
                .to_vec(),
        ),
        ("64 KiB of NOOPs", b"NOOP\r\n".repeat(64 * 1024 / 6)),
    ];
    plaintext.extend(tls_garbage());
    for (what, bytes) in plaintext {
        closed_without_smtp(Client::connect(addr), what, &bytes);
    }
    closed_without_smtp(silent, "a silent client", b"");
    closed_without_smtp(stalled, "a stalled handshake", b"");
    traffic.finish(&inbox);
    assert!(hostile_messages(&inbox).is_empty(), "nothing injected");
}

// ---------------------------------------------------------------------------
// Many idle connections
// ---------------------------------------------------------------------------

#[test]
fn a_thousand_idle_connections_then_a_normal_client() {
    const IDLE: usize = 1000;
    let (_controller, inbox, addr, traffic) = under_traffic(tcp_controller, Via::Plain);
    // Each greeting read before the next connect: the server accepts them one by
    // one as a real crowd arrives, and its listen backlog never overflows.
    let mut idle: Vec<_> = (0..IDLE)
        .map(|_| {
            let mut c = Client::connect(addr);
            c.greeting();
            c
        })
        .collect();
    // A normal client is served while they all hang on.
    good_client(addr);
    // The idle ones are still served too.
    for i in [0, IDLE / 2, IDLE - 1] {
        assert_eq!(idle[i].cmd("NOOP"), "250 OK", "idle connection {i}");
    }
    traffic.finish(&inbox);
    drop(idle);
    good_client(addr);
    assert!(hostile_messages(&inbox).is_empty());
    assert_eq!(
        messages(&inbox)
            .iter()
            .filter(|m| m.content_str() == "Subject: ok\r\n\r\nok\r\n")
            .count(),
        2
    );
}

// ---------------------------------------------------------------------------
// SMTP smuggling
// ---------------------------------------------------------------------------

/// What the server keeps of `body` sent as is in DATA (before the final
/// `.CRLF`): every line, i.e. the start and whatever follows a CRLF, loses one
/// leading dot (RFC 5321 4.5.2). Bare CRs and LFs are content.
fn unstuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut at_line_start = true;
    for (i, &b) in body.iter().enumerate() {
        if at_line_start && b == b'.' {
            at_line_start = false;
            continue;
        }
        at_line_start = b == b'\n' && i > 0 && body[i - 1] == b'\r';
        out.push(b);
    }
    out
}

/// Line ends and dots an attacker may hope a server takes for the end of data.
const SMUGGLING: [(&str, &[u8]); 12] = [
    ("LF . LF", b"\n.\n"),
    ("LF . CRLF", b"\n.\r\n"),
    ("CR . CRLF", b"\r.\r\n"),
    ("CRLF . CR", b"\r\n.\r"),
    ("CRLF . LF", b"\r\n.\n"),
    ("CR . CR", b"\r.\r"),
    ("LF . CR", b"\n.\r"),
    ("CRLF NUL . CRLF", b"\r\n\0.\r\n"),
    ("CRLF . NUL CRLF", b"\r\n.\0\r\n"),
    ("CR NUL LF . CR NUL LF", b"\r\0\n.\r\0\n"),
    ("CRLF . NUL", b"\r\n.\0"),
    ("NUL", b"\0"),
];

#[test]
fn smtp_smuggling_never_ends_data_nor_injects_a_message() {
    let (_controller, inbox, addr, traffic) = under_traffic(tcp_controller, Via::Plain);
    let mut expected = Vec::new();
    for (k, (name, end)) in SMUGGLING.iter().enumerate() {
        let mut body = format!("Subject: smuggle {k}\r\n\r\nbefore").into_bytes();
        let at = body.len();
        body.extend_from_slice(end);
        body.extend_from_slice(
            b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n\
              Subject: smuggled\r\n\r\nsmuggled",
        );
        body.extend_from_slice(end);
        body.extend_from_slice(b"RSET\r\nafter\r\n");
        assert!(!body.windows(5).any(|w| w == b"\r\n.\r\n"), "{name}");
        let mut c = helo(addr);
        // In one write, then split inside the sequence at every point (the server
        // sees the pieces in separate reads).
        for split in 0..end.len() {
            assert_eq!(c.cmd("MAIL FROM:<anne@example.com>"), "250 OK", "{name}");
            assert_eq!(c.cmd("RCPT TO:<bart@example.com>"), "250 OK", "{name}");
            assert_eq!(
                c.cmd("DATA"),
                "354 End data with <CR><LF>.<CR><LF>",
                "{name}"
            );
            if split == 0 {
                c.send(&body);
            } else {
                c.send(&body[..at + split]);
                settle();
                c.send(&body[at + split..]);
            }
            c.send(b".\r\n");
            assert_eq!(
                c.reply1(),
                "250 OK",
                "{name}, split at {split}: one message, one reply"
            );
            expected.push((name, split, unstuffed(&body)));
        }
        // Nothing was injected: no reply is pending, QUIT gets the next one.
        assert_eq!(c.cmd("QUIT"), "221 Bye", "{name}");
        c.expect_closed();
    }
    traffic.finish(&inbox);
    let got = hostile_messages(&inbox);
    assert_eq!(got.len(), expected.len(), "one message per DATA");
    for (m, (name, split, content)) in got.iter().zip(&expected) {
        assert_eq!(m.mail_from.as_deref(), Some("anne@example.com"), "{name}");
        assert_eq!(m.rcpt_tos, ["bart@example.com"], "{name}");
        // All ASCII (NULs included), so compared as text for a readable failure.
        assert_eq!(
            String::from_utf8_lossy(&m.content),
            String::from_utf8_lossy(content),
            "{name}, split at {split}"
        );
    }
}
