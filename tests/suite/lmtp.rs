//! LMTP on a Unix socket (the usual deployment behind Postfix or Dovecot) with
//! per-recipient answers, and PROXY data that survives STARTTLS.

use std::sync::{Arc, Mutex};

use smtpkit::proto::ProxyAddr;
use smtpkit::{Envelope, Handler, HandlerError, HookResult, Outcome, Reply, Session};

use super::util::{Client, config, tcp_controller, tls_config};
use crate::rt;

/// Delivers to every recipient but `full@...`, whose mailbox is over quota.
struct Quota;

impl Handler for Quota {
    async fn handle_lmtp_data(
        &self,
        _: &mut Session,
        envelope: &mut Envelope,
    ) -> Result<Vec<Outcome>, HandlerError> {
        Ok(envelope
            .rcpt_tos
            .iter()
            .map(|r| {
                if r.starts_with("full@") {
                    Outcome::Reply(Reply::new(452, "4.2.2 Mailbox full"))
                } else {
                    Outcome::Accept(Reply::new(250, format!("2.0.0 <{r}> delivered")))
                }
            })
            .collect())
    }
}

#[test]
fn lmtp_over_a_unix_socket_answers_per_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lmtp.sock");
    let mut cfg = config();
    cfg.lmtp = true;
    let mut controller = rt::UnixSocketController::new(Quota, &path).with_config(cfg);
    controller.start().unwrap();
    let mut c = Client::connect_unix(&path);
    assert!(c.greeting().starts_with("220 "));
    assert_eq!(
        c.cmd("HELO x"),
        "500 Error: command \"HELO\" not recognized"
    );
    let lhlo = c.cmd_multi("LHLO client.example");
    assert_eq!(lhlo.last().map(String::as_str), Some("250 HELP"));
    assert_eq!(c.cmd("MAIL FROM:<anne@example.com>"), "250 OK");
    for r in ["a@example.com", "full@example.com", "b@example.com"] {
        assert_eq!(c.cmd(&format!("RCPT TO:<{r}>")), "250 OK");
    }
    assert_eq!(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    c.send(b"Subject: lmtp\r\n\r\nhi\r\n.\r\n");
    assert_eq!(c.reply1(), "250 2.0.0 <a@example.com> delivered");
    assert_eq!(c.reply1(), "452 4.2.2 Mailbox full");
    assert_eq!(c.reply1(), "250 2.0.0 <b@example.com> delivered");
    // By default every recipient gets the DATA reply.
    assert_eq!(c.cmd("QUIT"), "221 Bye");
    controller.stop().unwrap();

    let mut cfg = config();
    cfg.lmtp = true;
    let mut controller =
        rt::UnixSocketController::new(smtpkit::handlers::Sink, &path).with_config(cfg);
    controller.start().unwrap();
    let mut c = Client::connect_unix(&path);
    c.greeting();
    c.cmd_multi("LHLO client.example");
    assert_eq!(c.cmd("MAIL FROM:<anne@example.com>"), "250 OK");
    assert_eq!(c.cmd("RCPT TO:<a@example.com>"), "250 OK");
    assert_eq!(c.cmd("RCPT TO:<b@example.com>"), "250 OK");
    assert_eq!(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    c.send(b"hi\r\n.\r\n");
    assert_eq!(c.reply1(), "250 OK");
    assert_eq!(c.reply1(), "250 OK");
}

/// Per message: the PROXY source address and port, and whether TLS was up.
type ProxySeen = Arc<Mutex<Vec<Option<(ProxyAddr, u16, bool)>>>>;

#[derive(Clone, Default)]
struct SeesProxy {
    seen: ProxySeen,
}

impl Handler for SeesProxy {
    async fn handle_data(&self, session: &mut Session, _: &mut Envelope) -> HookResult {
        let seen = session.proxy_data.as_ref().map(|p| {
            (
                p.src_addr.clone().expect("source address"),
                p.src_port.expect("source port"),
                session.tls.is_some(),
            )
        });
        self.seen.lock().unwrap().push(seen);
        Ok(Outcome::Default)
    }
}

#[test]
fn proxy_data_survives_starttls() {
    let handler = SeesProxy::default();
    let seen = handler.seen.clone();
    let mut cfg = config();
    cfg.proxy_protocol_timeout = Some(std::time::Duration::from_secs(5));
    let mut controller = tcp_controller(handler)
        .with_config(cfg)
        .with_starttls(tls_config());
    controller.start().unwrap();
    let mut c = Client::connect(controller.local_addr().unwrap());
    c.send(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n");
    assert!(c.greeting().starts_with("220 "));
    c.cmd_multi("EHLO client.example");
    let mut tls = c.starttls();
    tls.cmd_multi("EHLO client.example");
    let reply = tls.send_mail("a@example.com", &["b@example.com"], "hi\r\n");
    assert_eq!(reply, "250 OK");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [Some((
            ProxyAddr::Ip("192.0.2.7".parse().unwrap()),
            40000,
            true
        ))]
    );
}
