//! The `Proxy` handler between a real client (lettre) and a real upstream
//! (another smtpkit server), and the `Message` / `AsyncMessage` handlers'
//! callbacks, on the tokio controllers.
#![cfg(all(
    feature = "runtime-tokio",
    feature = "proxy-handler",
    feature = "message-handler"
))]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::{Message as Email, SmtpTransport, Transport};
use smtpkit::handlers::{AsyncMessage, Message, Proxy, ReceivedMessage, mail_parser};
use smtpkit::tokio::Controller;
use smtpkit::{Envelope, Handler, HandlerError, HookResult, Outcome, Session};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A stopped controller on 127.0.0.1, any free port.
fn start<H: Handler>(handler: H) -> Controller<H> {
    let mut controller = Controller::new(handler)
        .with_hostname("127.0.0.1")
        .with_port(0)
        .with_server_hostname("smtpkit.test");
    controller.start().expect("controller starts");
    controller
}

fn addr_of<H: Handler>(controller: &Controller<H>) -> SocketAddr {
    controller
        .local_addr()
        .expect("a running controller's address")
}

/// A blocking lettre transport to 127.0.0.1:`port`.
fn mailer(port: u16) -> SmtpTransport {
    SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(TIMEOUT))
        .build()
}

fn email(to: &[&str], subject: &str, body: &str) -> Email {
    let mut builder = Email::builder()
        .from("Anne Person <anne@example.com>".parse().unwrap())
        .subject(subject)
        .message_id(Some("<proxy-test@example.com>".to_owned()))
        .header(ContentType::TEXT_PLAIN);
    for t in to {
        builder = builder.to(t.parse().unwrap());
    }
    builder.body(body.to_owned()).unwrap()
}

/// What a server receives for `email` sent by lettre (which ends the
/// formatted message with `CRLF . CRLF`).
fn received_content(email: &Email) -> Vec<u8> {
    let mut v = email.formatted();
    v.extend_from_slice(b"\r\n");
    v
}

// ---------------------------------------------------------------------------
// Proxy
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Relayed {
    host_name: Option<String>,
    mail_from: Option<String>,
    mail_options: Vec<String>,
    smtp_utf8: bool,
    rcpt_tos: Vec<String>,
    dsn: smtpkit::proto::MailDsn,
    rcpt_dsn: Vec<smtpkit::proto::RcptDsn>,
    content: Vec<u8>,
}

/// The upstream: refuses recipients at `@refused.example` (550) and
/// `@busy.example` (450), answers 421 to `@closing.example`, refuses messages
/// with an `X-Reject` header (554) and records the others.
#[derive(Clone, Default)]
struct Upstream {
    inbox: Arc<Mutex<Vec<Relayed>>>,
}

impl Upstream {
    fn messages(&self) -> Vec<Relayed> {
        self.inbox.lock().unwrap().clone()
    }
}

impl Handler for Upstream {
    async fn handle_rcpt(
        &self,
        _: &mut Session,
        _: &mut Envelope,
        address: &str,
        _: &[String],
    ) -> HookResult {
        if address.ends_with("@refused.example") {
            return Ok(Outcome::reply(550, "5.1.1 No such user here"));
        }
        if address.ends_with("@closing.example") {
            return Ok(Outcome::reply(421, "4.3.2 Shutting down"));
        }
        if address.ends_with("@busy.example") {
            return Ok(Outcome::reply(450, "4.2.1 Mailbox busy, try later"));
        }
        Ok(Outcome::Default)
    }

    async fn handle_data(&self, session: &mut Session, envelope: &mut Envelope) -> HookResult {
        if envelope.content.windows(10).any(|w| w == b"X-Reject: ") {
            return Ok(Outcome::reply(554, "5.6.0 Content rejected"));
        }
        self.inbox.lock().unwrap().push(Relayed {
            host_name: session.host_name.clone(),
            mail_from: envelope.mail_from.clone(),
            mail_options: envelope.mail_options.clone(),
            smtp_utf8: envelope.smtp_utf8,
            rcpt_tos: envelope.rcpt_tos.clone(),
            dsn: envelope.dsn.clone(),
            rcpt_dsn: envelope.rcpt_dsn.clone(),
            content: envelope.content.clone(),
        });
        Ok(Outcome::Default)
    }
}

/// An upstream and a proxy in front of it.
struct Pair {
    upstream: Upstream,
    _upstream_controller: Controller<Upstream>,
    proxy_controller: Controller<Proxy>,
}

impl Pair {
    fn new() -> Self {
        let upstream = Upstream::default();
        let upstream_controller = start(upstream.clone());
        let port = addr_of(&upstream_controller).port();
        let proxy = Proxy::new("127.0.0.1", port)
            .with_timeout(TIMEOUT)
            .with_hello_name("proxy.test");
        Pair {
            upstream,
            _upstream_controller: upstream_controller,
            proxy_controller: start(proxy),
        }
    }

    fn mailer(&self) -> SmtpTransport {
        mailer(addr_of(&self.proxy_controller).port())
    }
}

/// `content` with `X-Peer: 127.0.0.1` before the first empty line.
fn with_x_peer(content: &[u8]) -> Vec<u8> {
    let end = content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block")
        + 2;
    let mut v = content[..end].to_vec();
    v.extend_from_slice(b"X-Peer: 127.0.0.1\r\n");
    v.extend_from_slice(&content[end..]);
    v
}

/// Sends one message with DSN parameters through `proxy` by raw commands.
fn send_with_dsn(proxy: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(proxy).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
        .write_all(
            b"EHLO client.example\r\nMAIL FROM:<anne@example.com> RET=HDRS ENVID=Id+2B7\r\n\
              RCPT TO:<bart@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bart+40example.com\r\n\
              RCPT TO:<cate@example.com>\r\nDATA\r\n",
        )
        .unwrap();
    let mut wire = Vec::new();
    let mut buf = [0; 4096];
    while !wire.ends_with(b"354 End data with <CR><LF>.<CR><LF>\r\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&wire));
        wire.extend_from_slice(&buf[..n]);
    }
    stream
        .write_all(b"Subject: dsn\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        .unwrap();
    stream.read_to_end(&mut wire).unwrap();
    String::from_utf8_lossy(&wire).into_owned()
}

#[test]
fn proxy_passes_dsn_parameters_to_an_upstream_that_offers_dsn() {
    use smtpkit::proto::{DsnReturn, Extensions, Notify};
    let dsn_on = smtpkit::Config::new("smtpkit.test").with_extensions(Extensions {
        dsn: true,
        ..Extensions::NONE
    });
    for upstream_has_dsn in [true, false] {
        let upstream = Upstream::default();
        let mut upstream_controller = Controller::new(upstream.clone())
            .with_hostname("127.0.0.1")
            .with_port(0);
        if upstream_has_dsn {
            upstream_controller = upstream_controller.with_config(dsn_on.clone());
        }
        upstream_controller.start().unwrap();
        let proxy =
            Proxy::new("127.0.0.1", addr_of(&upstream_controller).port()).with_timeout(TIMEOUT);
        let mut proxy_controller = Controller::new(proxy)
            .with_hostname("127.0.0.1")
            .with_port(0)
            .with_config(dsn_on.clone());
        proxy_controller.start().unwrap();
        let wire = send_with_dsn(addr_of(&proxy_controller));
        assert!(wire.contains("\r\n250 OK\r\n221 Bye\r\n"), "{wire}");
        let got = upstream.messages();
        assert_eq!(got.len(), 1, "{wire}");
        let relayed = &got[0];
        assert_eq!(relayed.rcpt_tos, ["bart@example.com", "cate@example.com"]);
        if upstream_has_dsn {
            assert_eq!(relayed.dsn.ret, Some(DsnReturn::Headers));
            assert_eq!(relayed.dsn.envid.as_deref(), Some("Id+7"));
            let bart = &relayed.rcpt_dsn[0];
            assert_eq!(
                bart.notify,
                Some(Notify {
                    success: true,
                    failure: true,
                    delay: false
                })
            );
            assert_eq!(bart.orcpt.as_ref().unwrap().address, "Bart@example.com");
            assert!(relayed.rcpt_dsn[1].is_empty());
        } else {
            // Not offered: the parameters are dropped, the message still goes.
            assert!(
                relayed.mail_options.is_empty(),
                "{:?}",
                relayed.mail_options
            );
            assert!(relayed.dsn.is_empty());
        }
        proxy_controller.stop().unwrap();
        upstream_controller.stop().unwrap();
    }
}

#[test]
fn proxy_relays_to_every_accepted_recipient() {
    let pair = Pair::new();
    let message = email(
        &["bart@example.com", "cate@example.com"],
        "relayed",
        "Hi Bart and Cate.\r\n.a line that starts with a dot\r\n..and two\r\n.\r\nBye.\r\n",
    );
    let response = pair.mailer().send(&message).expect("relayed");
    assert_eq!(u16::from(response.code()), 250);
    assert_eq!(response.message().collect::<Vec<_>>(), ["OK"]);

    let got = pair.upstream.messages();
    assert_eq!(got.len(), 1, "{got:?}");
    let relayed = &got[0];
    assert_eq!(relayed.host_name.as_deref(), Some("proxy.test"));
    assert_eq!(relayed.mail_from.as_deref(), Some("anne@example.com"));
    assert_eq!(relayed.rcpt_tos, ["bart@example.com", "cate@example.com"]);
    let sent = received_content(&message);
    assert_eq!(
        String::from_utf8_lossy(&relayed.content),
        String::from_utf8_lossy(&with_x_peer(&sent))
    );
    // The body is byte for byte the one sent.
    let body = |c: &[u8]| {
        let i = c.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        c[i..].to_vec()
    };
    assert_eq!(body(&relayed.content), body(&sent));
}

#[test]
fn proxy_reports_a_refused_recipient() {
    let pair = Pair::new();
    let message = email(
        &[
            "bart@example.com",
            "cate@refused.example",
            "dave@example.com",
        ],
        "partly refused",
        "Hello.\r\n",
    );
    let response = pair.mailer().send(&message).expect("accepted for some");
    assert_eq!(u16::from(response.code()), 250);
    assert_eq!(
        response.message().collect::<Vec<_>>(),
        [
            "OK, but the upstream server refused 1 of 3 recipients:",
            "<cate@refused.example>: 550 5.1.1 No such user here",
        ]
    );
    let got = pair.upstream.messages();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rcpt_tos, ["bart@example.com", "dave@example.com"]);
    assert_eq!(got[0].content, with_x_peer(&received_content(&message)));
}

#[test]
fn proxy_passes_on_a_refusal_of_every_recipient() {
    let pair = Pair::new();
    let message = email(
        &["cate@refused.example", "dave@refused.example"],
        "refused",
        "Hello.\r\n",
    );
    let error = pair.mailer().send(&message).expect_err("refused");
    assert_eq!(error.status().map(u16::from), Some(550), "{error}");
    assert!(
        error.to_string().contains("5.1.1 No such user here"),
        "{error}"
    );
    assert!(pair.upstream.messages().is_empty());
}

#[test]
fn proxy_prefers_a_transient_refusal() {
    let pair = Pair::new();
    let message = email(
        &["cate@refused.example", "dave@busy.example"],
        "refused and deferred",
        "Hello.\r\n",
    );
    let error = pair.mailer().send(&message).expect_err("refused");
    assert_eq!(error.status().map(u16::from), Some(450), "{error}");
    assert!(error.to_string().contains("4.2.1 Mailbox busy"), "{error}");
    assert!(pair.upstream.messages().is_empty());
}

#[test]
fn proxy_stops_at_a_421() {
    let pair = Pair::new();
    let proxy = pair.proxy_controller.handler();
    let report = proxy.deliver(
        "anne@example.com",
        &["carl@closing.example".into(), "bart@example.com".into()],
        b"Subject: x\r\n\r\nbody\r\n",
    );
    assert!(report.accepted.is_empty());
    assert_eq!(report.refused.len(), 2);
    assert!(
        report
            .refused
            .iter()
            .all(|r| r.code == 421 && r.text == "4.3.2 Shutting down"),
        "{report:?}"
    );
    // This server keeps its connection open: 421 is passed on as 451.
    assert_eq!(
        report.reply().unwrap().to_string(),
        "451 4.3.2 Shutting down"
    );
    assert!(pair.upstream.messages().is_empty());
}

#[test]
fn proxy_passes_on_a_refused_message() {
    let pair = Pair::new();
    let message = Email::builder()
        .from("anne@example.com".parse().unwrap())
        .to("bart@example.com".parse().unwrap())
        .to("cate@refused.example".parse().unwrap())
        .subject("spam")
        .raw_header(lettre::message::header::HeaderValue::new(
            lettre::message::header::HeaderName::new_from_ascii_str("X-Reject"),
            "yes".to_owned(),
        ))
        .body("Buy now.\r\n".to_owned())
        .unwrap();
    let error = pair.mailer().send(&message).expect_err("refused");
    // bart was refused with the message (554), cate at RCPT (550): both
    // permanent, so the first recipient's reply is the answer.
    assert_eq!(error.status().map(u16::from), Some(554), "{error}");
    assert!(
        error.to_string().contains("5.6.0 Content rejected"),
        "{error}"
    );
    let proxy = pair.proxy_controller.handler();
    let report = proxy.deliver(
        "anne@example.com",
        &["bart@example.com".into(), "cate@refused.example".into()],
        b"X-Reject: yes\r\n\r\nBuy now.\r\n",
    );
    assert!(report.accepted.is_empty());
    let replies: Vec<_> = report
        .refused
        .iter()
        .map(|r| (r.recipient.as_str(), r.code, r.text.as_str()))
        .collect();
    assert_eq!(
        replies,
        [
            ("bart@example.com", 554, "5.6.0 Content rejected"),
            ("cate@refused.example", 550, "5.1.1 No such user here"),
        ]
    );
    assert_eq!(
        report.reply().unwrap().to_string(),
        "554 5.6.0 Content rejected"
    );
    assert!(pair.upstream.messages().is_empty());
}

#[test]
fn proxy_relays_8bit_and_smtputf8() {
    let pair = Pair::new();
    let envelope = lettre::address::Envelope::new(
        Some("anne@example.com".parse().unwrap()),
        vec!["jörg@example.com".parse().unwrap()],
    )
    .unwrap();
    let content = "Subject: Grüße\r\n\r\nGrüße, Jörg.\r\n.Punkt\r\n".as_bytes();
    let response = pair.mailer().send_raw(&envelope, content).expect("relayed");
    assert_eq!(u16::from(response.code()), 250);
    let got = pair.upstream.messages();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rcpt_tos, ["jörg@example.com"]);
    assert!(got[0].smtp_utf8, "SMTPUTF8 relayed");
    assert!(
        got[0].mail_options.iter().any(|o| o == "BODY=8BITMIME"),
        "{:?}",
        got[0].mail_options
    );
    let mut expected = content.to_vec();
    expected.extend_from_slice(b"\r\n");
    assert_eq!(
        String::from_utf8_lossy(&got[0].content),
        String::from_utf8_lossy(&with_x_peer(&expected))
    );
}

#[test]
fn proxy_answers_451_when_the_upstream_is_down() {
    // Bind and drop a listener: nothing listens on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = start(Proxy::new("127.0.0.1", port).with_timeout(TIMEOUT));
    let message = email(&["bart@example.com"], "nobody home", "Hello.\r\n");
    let error = mailer(addr_of(&proxy).port())
        .send(&message)
        .expect_err("upstream down");
    assert_eq!(error.status().map(u16::from), Some(451), "{error}");
    assert!(
        error
            .to_string()
            .contains("4.4.1 Cannot connect to the upstream server"),
        "{error}"
    );
}

#[test]
fn proxy_report_per_recipient() {
    let pair = Pair::new();
    let proxy = pair.proxy_controller.handler();
    let report = proxy.deliver(
        "<>",
        &["bart@example.com".into(), "cate@refused.example".into()],
        b"Subject: bounce\r\n\r\nbody\r\n",
    );
    assert_eq!(report.accepted, ["bart@example.com"]);
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].recipient, "cate@refused.example");
    assert_eq!(report.refused[0].code, 550);
    assert_eq!(report.refused[0].text, "5.1.1 No such user here");
    let got = pair.upstream.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from.as_deref(), Some("<>"));
    assert_eq!(got[0].content, b"Subject: bounce\r\n\r\nbody\r\n");
}

// ---------------------------------------------------------------------------
// Message / AsyncMessage
// ---------------------------------------------------------------------------

/// What a callback saw.
#[derive(Clone, Debug, Default, PartialEq)]
struct Seen {
    subject: Option<String>,
    from_name: Option<String>,
    from_address: Option<String>,
    body: Option<String>,
    x_peer: Option<String>,
    x_mail_from: Option<String>,
    x_rcpt_to: Option<String>,
    envelope_rcpt_tos: Vec<String>,
}

fn seen(msg: &mail_parser::Message<'_>, envelope: &Envelope) -> Seen {
    let text = |name: &'static str| {
        msg.header(name)
            .and_then(|v| v.as_text())
            .map(str::to_owned)
    };
    let from = msg.from().and_then(|a| a.first());
    Seen {
        subject: msg.subject().map(str::to_owned),
        from_name: from.and_then(|a| a.name()).map(str::to_owned),
        from_address: from.and_then(|a| a.address()).map(str::to_owned),
        body: msg.body_text(0).map(|b| b.into_owned()),
        x_peer: text("X-Peer"),
        x_mail_from: text("X-MailFrom"),
        x_rcpt_to: text("X-RcptTo"),
        envelope_rcpt_tos: envelope.rcpt_tos.clone(),
    }
}

fn assert_seen(seen: &Seen) {
    assert_eq!(seen.subject.as_deref(), Some("parsed"));
    assert_eq!(seen.from_name.as_deref(), Some("Anne Person"));
    assert_eq!(seen.from_address.as_deref(), Some("anne@example.com"));
    assert_eq!(seen.body.as_deref(), Some("Hello Bart.\nSecond line.\n"));
    let peer = seen.x_peer.as_deref().unwrap_or_default();
    assert!(peer.starts_with("('127.0.0.1', "), "{peer}");
    assert_eq!(seen.x_mail_from.as_deref(), Some("anne@example.com"));
    assert_eq!(
        seen.x_rcpt_to.as_deref(),
        Some("bart@example.com, cate@example.com")
    );
    assert_eq!(
        seen.envelope_rcpt_tos,
        ["bart@example.com", "cate@example.com"]
    );
}

#[test]
fn message_callback_sees_the_parsed_message() {
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let sink = log.clone();
    let controller = start(Message::new(
        move |msg: &mail_parser::Message<'_>, _: &Session, envelope: &Envelope| {
            if msg.subject() == Some("reject me") {
                return Err(HandlerError::new("Rejected", "not this one"));
            }
            sink.lock().unwrap().push(seen(msg, envelope));
            Ok(())
        },
    ));
    let mailer = mailer(addr_of(&controller).port());

    let message = email(
        &["bart@example.com", "cate@example.com"],
        "parsed",
        "Hello Bart.\r\nSecond line.",
    );
    let response = mailer.send(&message).expect("accepted");
    assert_eq!(u16::from(response.code()), 250);
    assert_eq!(response.message().collect::<Vec<_>>(), ["OK"]);
    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_seen(&got[0]);

    // A callback error is aiosmtpd's 500 reply for an exception.
    let error = mailer
        .send(&email(&["bart@example.com"], "reject me", "x\r\n"))
        .expect_err("refused");
    assert_eq!(error.status().map(u16::from), Some(500), "{error}");
    assert!(
        error.to_string().contains("(Rejected) not this one"),
        "{error}"
    );
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[test]
fn async_message_callback_sees_the_parsed_message() {
    /// What the callback saw, and the prepared message's bytes.
    type Log = Arc<Mutex<Vec<(Seen, Vec<u8>)>>>;
    let log: Log = Arc::default();
    let sink = log.clone();
    let controller = start(AsyncMessage::new(move |received: ReceivedMessage| {
        let sink = sink.clone();
        async move {
            // Keep the message across an await point.
            futures_yield().await;
            let seen = seen(&received.message, &received.envelope);
            sink.lock().unwrap().push((seen, received.raw().to_vec()));
            Ok::<(), HandlerError>(())
        }
    }));
    let message = email(
        &["bart@example.com", "cate@example.com"],
        "parsed",
        "Hello Bart.\r\nSecond line.",
    );
    let response = mailer(addr_of(&controller).port())
        .send(&message)
        .expect("accepted");
    assert_eq!(u16::from(response.code()), 250);
    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_seen(&got[0].0);
    let raw = String::from_utf8(got[0].1.clone()).unwrap();
    assert!(
        raw.contains(
            "\nX-MailFrom: anne@example.com\nX-RcptTo: bart@example.com, cate@example.com\n\n"
        ),
        "{raw}"
    );
    assert!(raw.ends_with("\n\nHello Bart.\nSecond line.\n"), "{raw}");
}

/// Yields once to the executor (runtime-independent).
async fn futures_yield() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}
