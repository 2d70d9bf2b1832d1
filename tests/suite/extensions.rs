//! The opt-in ESMTP extensions end to end, on every transport: a binary
//! message by BDAT with DSN parameters, pipelined in one write and answered
//! with enhanced status codes, over TCP, a Unix socket, STARTTLS (where
//! REQUIRETLS is offered), implicit TLS, LMTP and behind a PROXY header; and a
//! slow hook that must not hold back the replies to the commands before it.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtpkit::proto::{BodyType, DsnReturn, Extensions, Notify};
use smtpkit::{Envelope, Handler, HookResult, Outcome, Session};

use super::util::{
    Client, config, ehlo_keywords, implicit_tls_controller, starttls_controller, tcp_controller,
};
use crate::rt;

/// Keeps every message's envelope.
#[derive(Clone, Default)]
struct Envelopes(Arc<Mutex<Vec<Envelope>>>);

impl Handler for Envelopes {
    async fn handle_data(&self, _: &mut Session, envelope: &mut Envelope) -> HookResult {
        self.0.lock().unwrap().push(envelope.clone());
        Ok(Outcome::Default)
    }
}

impl Envelopes {
    fn only(&self) -> Envelope {
        let all = self.0.lock().unwrap();
        assert_eq!(all.len(), 1, "one message");
        all[0].clone()
    }
}

/// Two chunks of binary content: NUL, bare CR, bare LF, a lone dot line,
/// 8-bit bytes and what would be commands.
const FIRST: &[u8] = b"Subject: binary\r\n\r\n\0\x01\r\r\n\n.\r\nQUIT\r\n";
const LAST: &[u8] = b"\xff\xfe tail without CRLF";

fn all() -> smtpkit::Config {
    config().with_extensions(Extensions::all())
}

/// The whole dialogue after the greeting: EHLO (`greet`), then MAIL, RCPT and
/// both BDATs in one write; checks the replies and returns the envelope seen.
fn bdat_message<S: Read + Write>(c: &mut Client<S>, greet: &str, tls: bool, recipients: usize) {
    let ehlo = c.cmd_multi(&format!("{greet} client.example"));
    let keywords = ehlo_keywords(&ehlo);
    for k in [
        "PIPELINING",
        "CHUNKING",
        "BINARYMIME",
        "ENHANCEDSTATUSCODES",
        "DSN",
    ] {
        assert!(keywords.contains(&k), "{k} in {ehlo:?}");
    }
    assert_eq!(
        keywords.contains(&"REQUIRETLS"),
        tls,
        "REQUIRETLS only in TLS: {ehlo:?}"
    );
    let require = if tls { " REQUIRETLS" } else { "" };
    let mut group = format!(
        "MAIL FROM:<anne@example.com> BODY=BINARYMIME RET=HDRS ENVID=Q+2B1{require}\r\n\
         RCPT TO:<bart@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bart+40example.com\r\n"
    )
    .into_bytes();
    for i in 1..recipients {
        group.extend_from_slice(format!("RCPT TO:<r{i}@example.com>\r\n").as_bytes());
    }
    group.extend_from_slice(format!("BDAT {}\r\n", FIRST.len()).as_bytes());
    group.extend_from_slice(FIRST);
    group.extend_from_slice(format!("BDAT {} LAST\r\n", LAST.len()).as_bytes());
    group.extend_from_slice(LAST);
    c.send(&group);
    assert_eq!(c.reply1(), "250 2.1.0 OK");
    for _ in 0..recipients {
        assert_eq!(c.reply1(), "250 2.1.5 OK");
    }
    assert_eq!(
        c.reply1(),
        format!("250 2.0.0 OK: {} octets received", FIRST.len())
    );
    for _ in 0..recipients {
        assert_eq!(c.reply1(), "250 2.0.0 OK", "one per recipient in LMTP");
    }
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");
}

fn assert_envelope(envelope: &Envelope, tls: bool) {
    assert_eq!(envelope.content, [FIRST, LAST].concat(), "byte-exact");
    assert_eq!(envelope.body_type, Some(BodyType::BinaryMime));
    assert_eq!(envelope.require_tls, tls);
    assert_eq!(envelope.dsn.ret, Some(DsnReturn::Headers));
    assert_eq!(envelope.dsn.envid.as_deref(), Some("Q+1"));
    let bart = &envelope.rcpt_dsn[0];
    assert_eq!(
        bart.notify,
        Some(Notify {
            success: true,
            failure: true,
            delay: false
        })
    );
    assert_eq!(bart.orcpt.as_ref().unwrap().address, "Bart@example.com");
}

#[test]
fn extensions_over_tcp() {
    let handler = Envelopes::default();
    let mut controller = tcp_controller(handler.clone()).with_config(all());
    controller.start().unwrap();
    let mut c = Client::connect(controller.local_addr().unwrap());
    c.greeting();
    bdat_message(&mut c, "EHLO", false, 1);
    assert_envelope(&handler.only(), false);
    controller.stop().unwrap();
}

#[test]
fn extensions_over_a_unix_socket_in_lmtp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lmtp.sock");
    let handler = Envelopes::default();
    let mut cfg = all();
    cfg.lmtp = true;
    let mut controller = rt::UnixSocketController::new(handler.clone(), &path).with_config(cfg);
    controller.start().unwrap();
    let mut c = Client::connect_unix(&path);
    c.greeting();
    bdat_message(&mut c, "LHLO", false, 3);
    let envelope = handler.only();
    assert_envelope(&envelope, false);
    assert_eq!(envelope.rcpt_dsn.len(), 3);
    controller.stop().unwrap();
}

#[test]
fn extensions_after_starttls_offer_requiretls() {
    let handler = Envelopes::default();
    let mut controller = starttls_controller(handler.clone()).with_config(all());
    controller.start().unwrap();
    let mut c = Client::connect(controller.local_addr().unwrap());
    c.greeting();
    c.cmd_multi("EHLO client.example");
    assert_eq!(
        c.cmd("MAIL FROM:<a@b> REQUIRETLS"),
        "530 5.7.10 REQUIRETLS requires a TLS connection"
    );
    assert_eq!(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
    let mut c = c.upgrade();
    bdat_message(&mut c, "EHLO", true, 1);
    assert_envelope(&handler.only(), true);
    controller.stop().unwrap();
}

#[test]
fn extensions_over_implicit_tls() {
    let handler = Envelopes::default();
    let mut controller = implicit_tls_controller(handler.clone()).with_config(all());
    controller.start().unwrap();
    let mut c = Client::connect_tls(controller.local_addr().unwrap());
    c.greeting();
    bdat_message(&mut c, "EHLO", true, 1);
    assert_envelope(&handler.only(), true);
    controller.stop().unwrap();
}

#[test]
fn extensions_behind_a_proxy_header() {
    let handler = Envelopes::default();
    let mut cfg = all();
    cfg.proxy_protocol_timeout = Some(Duration::from_secs(5));
    let mut controller = tcp_controller(handler.clone()).with_config(cfg);
    controller.start().unwrap();
    let mut c = Client::connect(controller.local_addr().unwrap());
    c.send(b"PROXY TCP4 192.0.2.1 198.51.100.2 4321 25\r\n");
    c.greeting();
    bdat_message(&mut c, "EHLO", false, 1);
    assert_envelope(&handler.only(), false);
    controller.stop().unwrap();
}

#[test]
fn default_dialogue_has_none_of_them() {
    let mut controller = tcp_controller(Envelopes::default());
    controller.start().unwrap();
    let mut c = Client::connect(controller.local_addr().unwrap());
    c.greeting();
    let ehlo = c.cmd_multi("EHLO client.example");
    assert_eq!(
        ehlo_keywords(&ehlo),
        [
            "smtpkit.test",
            "SIZE 33554432",
            "8BITMIME",
            "SMTPUTF8",
            "HELP"
        ]
    );
    assert_eq!(c.cmd("MAIL FROM:<a@b>"), "250 OK");
    assert_eq!(
        c.cmd("BDAT 1 LAST"),
        "500 Error: command \"BDAT\" not recognized"
    );
    controller.stop().unwrap();
}

/// RCPT's hook waits until the test has read MAIL's reply: a server that
/// held the replies of the group back until every hook answered would never
/// send it (the read fails after the client's timeout).
#[derive(Clone, Default)]
struct SlowRcpt {
    released: Arc<AtomicBool>,
}

impl Handler for SlowRcpt {
    async fn handle_rcpt(
        &self,
        _: &mut Session,
        envelope: &mut Envelope,
        address: &str,
        _: &[String],
    ) -> HookResult {
        for _ in 0..1000 {
            if self.released.load(Ordering::SeqCst) {
                break;
            }
            crate::sleep(Duration::from_millis(10)).await;
        }
        envelope.rcpt_tos.push(address.to_owned());
        Ok(Outcome::reply(250, "OK after a while"))
    }
}

#[test]
fn a_slow_hook_does_not_hold_back_earlier_replies() {
    let handler = SlowRcpt::default();
    let released = handler.released.clone();
    let mut controller =
        tcp_controller(handler).with_config(config().with_extensions(Extensions {
            pipelining: true,
            ..Extensions::NONE
        }));
    controller.start().unwrap();
    let mut c = Client::connect(controller.local_addr().unwrap());
    c.greeting();
    assert!(ehlo_keywords(&c.cmd_multi("EHLO x")).contains(&"PIPELINING"));
    c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nNOOP\r\n");
    assert_eq!(c.reply1(), "250 OK", "MAIL's reply while RCPT's hook waits");
    released.store(true, Ordering::SeqCst);
    assert_eq!(c.reply1(), "250 OK after a while");
    assert_eq!(c.reply1(), "250 OK");
    controller.stop().unwrap();
}
