//! The ExampleHandler scenario of aiosmtpd's controller documentation, with lettre
//! as the client.

use lettre::Transport;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use smtpkit::{Envelope, Handler, HookResult, Outcome, Peer, Session};

use super::util::*;

/// aiosmtpd's ExampleHandler: relays only to example.com and records messages.
struct ExampleHandler {
    inbox: Inbox,
}

impl Handler for ExampleHandler {
    async fn handle_rcpt(
        &self,
        _session: &mut Session,
        _envelope: &mut Envelope,
        address: &str,
        _options: &[String],
    ) -> HookResult {
        if !address.ends_with("@example.com") {
            return Ok(Outcome::reply(550, "not relaying to that domain"));
        }
        Ok(Outcome::Default)
    }

    async fn handle_data(&self, session: &mut Session, envelope: &mut Envelope) -> HookResult {
        self.inbox
            .lock()
            .unwrap()
            .push(Received::from(session, envelope));
        Ok(Outcome::reply(250, "Message accepted for delivery"))
    }
}

fn anne_to_bart() -> Message {
    Message::builder()
        .from("Anne Person <anne@example.com>".parse::<Mailbox>().unwrap())
        .to("Bart Person <bart@example.com>".parse::<Mailbox>().unwrap())
        .subject("A test")
        .message_id(Some("<ant>".to_owned()))
        .header(ContentType::TEXT_PLAIN)
        .body(String::from(
            "Hi Bart, this is Anne.\r\n.A line that starts with a dot\r\n..and two dots\r\n",
        ))
        .unwrap()
}

#[test]
fn example_handler_accepts_and_records() {
    let inbox = Inbox::default();
    let mut controller = started(ExampleHandler {
        inbox: inbox.clone(),
    });
    let addr = addr_of(&controller);
    let msg = anne_to_bart();

    let response = mailer(addr.port()).send(&msg).expect("message accepted");
    assert_eq!(u16::from(response.code()), 250);
    assert_eq!(
        response.message().collect::<Vec<_>>(),
        ["Message accepted for delivery"]
    );

    let got = messages(&inbox);
    assert_eq!(got.len(), 1, "exactly one message recorded: {got:?}");
    let m = &got[0];
    assert_eq!(m.mail_from.as_deref(), Some("anne@example.com"));
    assert_eq!(m.rcpt_tos, ["bart@example.com"]);
    assert!(
        matches!(m.peer, Peer::Tcp(a) if a.ip().is_loopback()),
        "peer {:?}",
        m.peer
    );
    assert!(m.host_name.is_some(), "lettre sent EHLO");
    // The body arrived intact: exactly what lettre formatted, dot-stuffing undone.
    assert_eq!(
        m.content_str(),
        String::from_utf8(expected_content(&msg)).unwrap()
    );
    let content = m.content_str();
    assert!(content.contains("Subject: A test\r\n"), "{content}");
    assert!(content.contains("Message-ID: <ant>\r\n"), "{content}");
    assert!(
        content.contains(
            "\r\n\r\nHi Bart, this is Anne.\r\n.A line that starts with a dot\r\n..and two dots\r\n"
        ),
        "{content}"
    );

    controller.stop().unwrap();
}

#[test]
fn example_handler_rejects_other_domains() {
    let inbox = Inbox::default();
    let mut controller = started(ExampleHandler {
        inbox: inbox.clone(),
    });
    let addr = addr_of(&controller);
    let msg = Message::builder()
        .from(
            "Anne Person <aperson@example.com>"
                .parse::<Mailbox>()
                .unwrap(),
        )
        .to("Chris Person <cperson@example.net>"
            .parse::<Mailbox>()
            .unwrap())
        .subject("Another test")
        .message_id(Some("<another>".to_owned()))
        .header(ContentType::TEXT_PLAIN)
        .body(String::from("Hi Chris, this is Anne.\r\n"))
        .unwrap();

    let err = mailer(addr.port())
        .send(&msg)
        .expect_err("recipient outside example.com is refused");
    assert!(err.is_permanent(), "{err}");
    assert_eq!(error_code(&err), Some(550), "{err}");
    assert!(
        err.to_string().contains("not relaying to that domain"),
        "{err}"
    );
    assert!(messages(&inbox).is_empty());

    // The server keeps working after the refusal.
    let ok = anne_to_bart();
    mailer(addr.port())
        .send(&ok)
        .expect("accepted after a refusal");
    assert_eq!(messages(&inbox).len(), 1);

    controller.stop().unwrap();
    assert_refused(addr);
}
