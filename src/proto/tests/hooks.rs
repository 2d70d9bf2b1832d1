//! What each kind of hook answer does.

use super::harness::*;
use crate::proto::replies::{NEED_MAIL, NEED_RCPT, OK, SEND_HELO_FIRST, START_DATA};
use crate::proto::{Ask, Decision, FailureClass, HookFailure, Outcome, Reply};

#[test]
fn hook_reply_rejection_changes_nothing() {
    let responder = || -> Responder {
        Box::new(|ask, _, _| match ask {
            Ask::Rcpt { address, .. } if address.starts_with("bad") => {
                Decision::Outcome(Outcome::reply(550, "5.7.1 not relaying"))
            }
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    let trace = script.transcript(
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bad@example.com>\r\nDATA\r\n",
            b"RCPT TO:<good@example.com>\r\nDATA\r\n",
            MSG,
        ],
        &[
            "250 mx.example",
            OK.line,
            "550 5.7.1 not relaying",
            NEED_RCPT.line,
            OK.line,
            START_DATA.line,
            OK.line,
        ],
    );
    assert_eq!(trace.messages[0].rcpt_tos, ["good@example.com"]);
}

#[test]
fn hook_accept_records_with_custom_reply() {
    let responder = || -> Responder {
        Box::new(|ask, _, _| match ask {
            Ask::Rcpt { .. } => Decision::Outcome(Outcome::accept(250, "2.1.5 Recipient ok")),
            Ask::Mail { .. } => {
                Decision::Outcome(Outcome::Accept(Reply::new(250, "2.1.0 Sender ok")))
            }
            Ask::Data => Decision::Outcome(Outcome::accept(250, "2.0.0 queued as 1234")),
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    let trace = script.transcript(
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
            MSG,
            b"RCPT TO:<bart@example.com>\r\n",
        ],
        &[
            "250 mx.example",
            "250 2.1.0 Sender ok",
            "250 2.1.5 Recipient ok",
            START_DATA.line,
            "250 2.0.0 queued as 1234",
            NEED_MAIL.line,
        ],
    );
    assert_eq!(
        trace.messages[0].mail_from.as_deref(),
        Some("anne@example.com")
    );
    assert_eq!(trace.messages[0].rcpt_tos, ["bart@example.com"]);
}

#[test]
fn hook_failure_becomes_500() {
    fn failure(kind: &str, message: &str) -> Decision {
        Decision::Failed(HookFailure::new(kind, message))
    }
    let responder = || -> Responder {
        let mut fail_mail = true;
        Box::new(move |ask, _, _| match ask {
            Ask::Mail { .. } if fail_mail => {
                fail_mail = false;
                failure("ValueError", "boom")
            }
            Ask::Data => failure("RuntimeError", "disk full"),
            Ask::Noop { .. } => failure("AssertionError", ""),
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    let trace = script.transcript(
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\n",
            b"MAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
            MSG,
            b"RCPT TO:<bart@example.com>\r\nNOOP\r\n",
        ],
        &[
            "250 mx.example",
            "500 Error: (ValueError) boom",
            NEED_MAIL.line,
            OK.line,
            OK.line,
            START_DATA.line,
            "500 Error: (RuntimeError) disk full",
            // The envelope is reset after DATA whatever the hook did.
            NEED_MAIL.line,
            // aiosmtpd's answer to a hook returning None.
            "500 Error: (AssertionError) ",
        ],
    );
    assert!(!trace.closed, "the session goes on after a hook failure");
}

#[test]
fn temporary_and_storage_failures_become_451_and_452() {
    let responder = || -> Responder {
        Box::new(move |ask, _, _| match ask {
            Ask::Rcpt { address, .. } if address.starts_with("busy") => Decision::Failed(
                HookFailure::new(
                    "io::Error",
                    "Resource temporarily unavailable (os error 11)",
                )
                .with_class(FailureClass::Temporary),
            ),
            Ask::Data => Decision::Failed(
                HookFailure::new("io::Error", "No space left on device (os error 28)")
                    .with_class(FailureClass::StorageFull),
            ),
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    let trace = script.transcript(
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\n",
            b"RCPT TO:<busy@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
            MSG,
            b"NOOP\r\n",
        ],
        &[
            "250 mx.example",
            OK.line,
            "451 4.3.0 Error: (io::Error) Resource temporarily unavailable (os error 11)",
            OK.line,
            START_DATA.line,
            "452 4.3.1 Insufficient system storage: (io::Error) No space left on device (os error 28)",
            OK.line,
        ],
    );
    assert!(!trace.closed);
}

#[test]
fn hook_replies_for_other_commands() {
    let responder = || -> Responder {
        Box::new(|ask, session, _| match ask {
            Ask::Helo { hostname } if hostname == "sets.example" => {
                session.host_name = Some(hostname.clone());
                Decision::Outcome(Outcome::reply(250, "hello sets.example"))
            }
            Ask::Helo { .. } => Decision::Outcome(Outcome::reply(250, "hello, but no state")),
            Ask::Ehlo { extensions, .. } => {
                extensions.insert(extensions.len() - 1, "PIPELINING".to_owned());
                Decision::Outcome(Outcome::Default)
            }
            Ask::Noop { .. } => Decision::Outcome(Outcome::reply(250, "first\nsecond\r\nthird")),
            Ask::Vrfy { address } => {
                let text = format!("2.1.5 <{address}> is fine");
                Decision::Outcome(Outcome::reply(250, text))
            }
            Ask::Rset => Decision::Outcome(Outcome::reply(250, "2.0.0 Flushed")),
            Ask::Quit => Decision::Outcome(Outcome::reply(221, "2.0.0 Goodbye")),
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    let trace = script.transcript(
        &[
            b"HELO plain.example\r\nMAIL FROM:<anne@example.com>\r\n",
            b"HELO sets.example\r\nMAIL FROM:<anne@example.com>\r\nEHLO e.example\r\n",
            b"NOOP\r\nVRFY anne@example.com\r\nRSET\r\nQUIT\r\nNOOP\r\n",
        ],
        &[
            "250 hello, but no state",
            // The hook did not record the HELO name.
            SEND_HELO_FIRST.line,
            "250 hello sets.example",
            OK.line,
            "250-mx.example",
            "250-8BITMIME",
            "250-PIPELINING",
            "250 HELP",
            "250-first",
            "250-second",
            "250 third",
            "250 2.1.5 <anne@example.com> is fine",
            "250 2.0.0 Flushed",
            "221 2.0.0 Goodbye",
        ],
    );
    assert!(trace.closed);
    // A hook may remove every extension.
    let responder = || -> Responder {
        Box::new(|ask, _, _| {
            if let Ask::Ehlo { extensions, .. } = ask {
                extensions.clear();
            }
            Decision::Outcome(Outcome::Default)
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    script.transcript(
        &[b"EHLO example.com\r\nMAIL FROM:<anne@example.com>\r\n"],
        &["250 mx.example", OK.line],
    );
}

#[test]
fn data_hook_reply_resets_the_envelope() {
    let responder = || -> Responder {
        Box::new(|ask, _, envelope| match ask {
            Ask::Data => {
                assert_eq!(envelope.content, b"hi\r\n");
                Decision::Outcome(Outcome::reply(451, "4.3.0 try later"))
            }
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let script = Script {
        responder: &responder,
        ..Script::new(plain())
    };
    script.transcript(
        &[b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\nhi\r\n.\r\nRCPT TO:<bart@example.com>\r\n"],
        &[
            "250 mx.example",
            OK.line,
            OK.line,
            START_DATA.line,
            "451 4.3.0 try later",
            NEED_MAIL.line,
        ],
    );
}
