//! Raw-socket dialogues against a running threaded controller.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtpkit::{Envelope, Handler, HandlerError, HookResult, Outcome, Reply, Session};

use super::util::*;

#[test]
fn pipelined_session_in_one_write() {
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = started(recorder);
    let mut client = Client::connect(addr_of(&controller));
    // Everything at once, before even reading the greeting.
    client.send(
        b"EHLO client.test\r\n\
          MAIL FROM:<anne@example.com>\r\n\
          RCPT TO:<bart@example.com>\r\n\
          RCPT TO:<carl@example.com>\r\n\
          DATA\r\n\
          Subject: pipelined\r\n\
          \r\n\
          one\r\n\
          ..two\r\n\
          .\r\n\
          NOOP\r\n\
          MAIL FROM:<>\r\n\
          RCPT TO:<dora@example.com>\r\n\
          DATA\r\n\
          second\r\n\
          .\r\n\
          QUIT\r\n",
    );
    client.greeting();
    assert_eq!(
        client.reply(),
        [
            format!("250-{HOST}"),
            "250-SIZE 33554432".into(),
            "250-8BITMIME".into(),
            "250-SMTPUTF8".into(),
            "250 HELP".into(),
        ]
    );
    let expected = [
        "250 OK",
        "250 OK",
        "250 OK",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 OK",
        "250 OK",
        "250 OK",
        "250 OK",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 OK",
        "221 Bye",
    ];
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(client.reply1(), *want, "reply #{i}");
    }
    client.expect_closed();

    let got = messages(&inbox);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].mail_from.as_deref(), Some("anne@example.com"));
    assert_eq!(got[0].rcpt_tos, ["bart@example.com", "carl@example.com"]);
    assert_eq!(
        got[0].content_str(),
        "Subject: pipelined\r\n\r\none\r\n.two\r\n"
    );
    assert_eq!(got[1].mail_from.as_deref(), Some("<>"));
    assert_eq!(got[1].rcpt_tos, ["dora@example.com"]);
    assert_eq!(got[1].content_str(), "second\r\n");
    controller.stop().unwrap();
}

#[test]
fn bare_lf_dot_does_not_end_data() {
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = started(recorder);
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(
        client
            .cmd_multi("EHLO client.test")
            .last()
            .map(String::as_str),
        Some("250 HELP")
    );
    // The smuggling attempt: `\n.\n` (and `\n.\r\n`) inside the body, followed by
    // a second transaction. Only CRLF.CRLF ends the message.
    let body = "Subject: smuggle\r\n\
                \r\n\
                first\n.\n\
                MAIL FROM:<evil@example.com>\r\n\
                RCPT TO:<victim@example.com>\r\n\
                DATA\r\n\
                smuggled\n.\r\n\
                still data\r\n";
    assert_eq!(client.cmd("MAIL FROM:<anne@example.com>"), "250 OK");
    assert_eq!(client.cmd("RCPT TO:<bart@example.com>"), "250 OK");
    assert_eq!(client.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    client.send(body.as_bytes());
    client.send(b".\r\n");
    assert_eq!(client.reply1(), "250 OK", "one reply for one message");
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();

    let got = messages(&inbox);
    assert_eq!(got.len(), 1, "exactly one message: {got:?}");
    assert_eq!(got[0].mail_from.as_deref(), Some("anne@example.com"));
    assert_eq!(got[0].rcpt_tos, ["bart@example.com"]);
    assert_eq!(
        got[0].content_str(),
        body,
        "content preserved byte for byte"
    );
    controller.stop().unwrap();
}

#[test]
fn five_unknown_commands_close_the_connection() {
    let mut controller = started(Recorder::default());
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    for _ in 0..4 {
        assert_eq!(
            client.cmd("FOO bar"),
            "500 Error: command \"FOO\" not recognized"
        );
    }
    // Valid commands do not reset the budget.
    assert_eq!(client.cmd("NOOP"), "250 OK");
    assert_eq!(
        client.cmd("BAR"),
        "502 5.5.1 Too many unrecognized commands, goodbye."
    );
    client.expect_closed();

    // The server still serves new connections.
    let mut again = Client::connect(addr_of(&controller));
    again.greeting();
    assert_eq!(again.cmd("NOOP"), "250 OK");
    controller.stop().unwrap();
}

#[test]
fn quit_says_bye_and_closes() {
    let mut controller = started(Recorder::default());
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    controller.stop().unwrap();
}

/// Panics in `handle_data` for the first message, records the others.
struct PanicsOnce {
    calls: AtomicUsize,
    inbox: Inbox,
}

impl Handler for PanicsOnce {
    async fn handle_data(&self, session: &mut Session, envelope: &mut Envelope) -> HookResult {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("kaboom");
        }
        self.inbox
            .lock()
            .unwrap()
            .push(Received::from(session, envelope));
        Ok(Outcome::Default)
    }
}

#[test]
fn panicking_hook_gets_500_and_the_connection_survives() {
    let inbox = Inbox::default();
    let mut controller = started(PanicsOnce {
        calls: AtomicUsize::new(0),
        inbox: inbox.clone(),
    });
    let addr = addr_of(&controller);
    let mut client = Client::connect(addr);
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    assert_eq!(
        client.send_mail("a@example.com", &["b@example.com"], "first\r\n"),
        "500 Error: (panic) kaboom"
    );
    // Same connection, next message (the failed transaction was reset).
    assert_eq!(
        client.send_mail("c@example.com", &["d@example.com"], "second\r\n"),
        "250 OK"
    );
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();

    // And a new connection works too.
    let mut other = Client::connect(addr);
    other.greeting();
    assert_eq!(other.cmd("HELO other.test"), format!("250 {HOST}"));
    assert_eq!(
        other.send_mail("e@example.com", &["f@example.com"], "third\r\n"),
        "250 OK"
    );

    let got = messages(&inbox);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].mail_from.as_deref(), Some("c@example.com"));
    assert_eq!(got[0].content_str(), "second\r\n");
    assert_eq!(got[1].mail_from.as_deref(), Some("e@example.com"));
    controller.stop().unwrap();
}

/// Fails MAIL with an error; optionally answers failures through `handle_exception`.
struct Failing {
    custom: Option<Reply>,
    seen: Mutex<Vec<String>>,
}

impl Handler for Failing {
    async fn handle_mail(
        &self,
        _session: &mut Session,
        _envelope: &mut Envelope,
        address: &str,
        _options: &[String],
    ) -> HookResult {
        match address {
            "io@example.com" => Err(std::io::Error::other("disk full").into()),
            "ok@example.com" => Ok(Outcome::Default),
            _ => Err(HandlerError::new("ValueError", "boom")),
        }
    }

    async fn handle_exception(&self, error: &HandlerError) -> Option<Reply> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{}: {}", error.kind(), error.message()));
        self.custom.clone()
    }
}

#[test]
fn hook_errors_get_their_kind_and_message() {
    let mut controller = started(Failing {
        custom: None,
        seen: Mutex::new(Vec::new()),
    });
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    assert_eq!(
        client.cmd("MAIL FROM:<x@example.com>"),
        "500 Error: (ValueError) boom"
    );
    // An I/O error is transient: the sender should retry.
    assert_eq!(
        client.cmd("MAIL FROM:<io@example.com>"),
        "451 4.3.0 Error: (io::Error) disk full"
    );
    // The failed MAIL changed nothing: a new MAIL is not "nested".
    assert_eq!(client.cmd("MAIL FROM:<ok@example.com>"), "250 OK");
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    assert_eq!(
        *controller.handler().seen.lock().unwrap(),
        ["ValueError: boom", "io::Error: disk full"]
    );
    controller.stop().unwrap();
}

#[test]
fn handle_exception_reply_is_sent() {
    let mut controller = started(Failing {
        custom: Some(Reply::new(451, "try later")),
        seen: Mutex::new(Vec::new()),
    });
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    assert_eq!(client.cmd("MAIL FROM:<x@example.com>"), "451 try later");
    assert_eq!(client.cmd("MAIL FROM:<ok@example.com>"), "250 OK");
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();
    assert_eq!(
        *controller.handler().seen.lock().unwrap(),
        ["ValueError: boom"]
    );
    controller.stop().unwrap();
}

#[test]
fn idle_timeout_sends_421_and_closes() {
    let mut controller = tcp_controller(Recorder::default())
        .with_config(config().with_timeout(Duration::from_secs(1)));
    controller.start().unwrap();
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    // Now idle: the reply arrives within the client's 5 s read timeout.
    assert_eq!(
        client.reply1(),
        format!("421 4.4.2 {HOST} Error: timeout exceeded")
    );
    client.expect_closed();
    controller.stop().unwrap();
}
