//! The opt-in ESMTP extensions: PIPELINING, CHUNKING (BDAT), BINARYMIME,
//! ENHANCEDSTATUSCODES, DSN, REQUIRETLS and LIMITS, each fed split at every
//! byte offset. With none on, every reply stays aiosmtpd's (the other test
//! files and the conformance corpus).

use std::sync::Arc;
use std::time::Instant;

use super::harness::*;
use crate::proto::{
    Action, Ask, BodyType, CallLimits, Config, Connection, Decision, DsnReturn, Extensions, Notify,
    Outcome, Peer, Reply, TlsInfo,
};

fn with(extensions: &str) -> Config {
    plain().with_extensions(extensions.parse().unwrap())
}

const EHLO: &[u8] = b"EHLO client.example\r\n";
const ENVELOPE: &[u8] = b"MAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\n";

/// The EHLO lines with `extensions` between 8BITMIME and HELP.
fn ehlo_with(extensions: &[&'static str]) -> Vec<&'static str> {
    let mut lines = vec!["250-mx.example", "250-8BITMIME"];
    lines.extend(extensions);
    lines.push("250 HELP");
    lines
}

#[test]
fn each_extension_is_advertised_only_when_on() {
    transcript(plain(), &[EHLO], &EHLO_PLAIN);
    transcript(
        with("all").with_recipient_limit(Some(50)),
        &[EHLO],
        &ehlo_with(&[
            "250-BINARYMIME",
            "250-PIPELINING",
            "250-CHUNKING",
            "250-ENHANCEDSTATUSCODES",
            "250-DSN",
            "250-LIMITS RCPTMAX=50",
        ]),
    );
    transcript(with("pipelining"), &[EHLO], &ehlo_with(&["250-PIPELINING"]));
    // BINARYMIME needs CHUNKING; REQUIRETLS is only offered inside TLS;
    // LIMITS only with a limit to tell.
    transcript(with("binarymime,requiretls,limits"), &[EHLO], &EHLO_PLAIN);
    let limits = with("limits").with_call_limits(Some(CallLimits::from_map([("MAIL", 3)])));
    transcript(limits, &[EHLO], &ehlo_with(&["250-LIMITS MAILMAX=3"]));
}

#[test]
fn unknown_without_their_extension() {
    transcript(
        plain(),
        &[EHLO, ENVELOPE, b"BDAT 3 LAST\r\n"],
        &[
            &EHLO_PLAIN[..],
            &[
                "250 OK",
                "250 OK",
                "500 Error: command \"BDAT\" not recognized",
            ],
        ]
        .concat(),
    );
    transcript(
        plain(),
        &[EHLO, b"MAIL FROM:<a@b> RET=FULL\r\nMAIL FROM:<a@b> REQUIRETLS\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d> NOTIFY=NEVER\r\n"],
        &[
            &EHLO_PLAIN[..],
            &[
                "555 MAIL FROM parameters not recognized or not implemented",
                "555 MAIL FROM parameters not recognized or not implemented",
                "250 OK",
                "555 RCPT TO parameters not recognized or not implemented",
            ],
        ]
        .concat(),
    );
}

#[test]
fn pipelined_replies_before_a_pending_hook_can_go_out_first() {
    let now = Instant::now();
    let mut conn = Connection::new(Arc::new(with("pipelining")), Peer::Unknown, now);
    conn.handle_input(
        now,
        &[b"HELO x\r\n".as_slice(), ENVELOPE, b"NOOP\r\n"].concat(),
    )
    .unwrap();
    let mut wire = Vec::new();
    let mut early = Vec::new();
    loop {
        match conn.poll_action() {
            Some(Action::Send(b)) => wire.extend_from_slice(b),
            Some(Action::Hook(mut call)) => {
                let ask = call.ask.clone();
                if let Ask::Rcpt { .. } = ask {
                    // A slow RCPT hook: the driver sends HELO's and MAIL's
                    // replies before it waits.
                    let unsent = call.unsent_replies().expect("replies are waiting");
                    early.extend_from_slice(unsent.bytes());
                    unsent.sent();
                    assert!(call.unsent_replies().is_none(), "taken once");
                }
                conn.handle_decision(now, Decision::Outcome(Outcome::Default))
                    .unwrap();
            }
            None => break,
            Some(other) => panic!("{other:?}"),
        }
    }
    let early = String::from_utf8(early).unwrap();
    assert!(early.starts_with("220 "), "{early:?}");
    assert!(
        early.ends_with("\r\n250 mx.example\r\n250 OK\r\n"),
        "{early:?}"
    );
    let wire = String::from_utf8(wire).unwrap();
    assert_eq!(
        wire, "250 OK\r\n250 OK\r\n",
        "RCPT's and NOOP's, nothing twice"
    );
}

/// RFC 3030's example (section 4.2), with a binary body: NUL, bare CR, bare
/// LF and a lone dot line are the message's bytes.
#[test]
fn bdat_chunks_are_the_message() {
    let first: &[u8] = b"To: ned@example.com\r\nSubject: chunks\r\n\r\n\0\r.\n.\r\n";
    let last: &[u8] = b"the end\r\n";
    let input = [
        EHLO,
        ENVELOPE,
        format!("BDAT {}\r\n", first.len()).as_bytes(),
        first,
        format!("BDAT {} LAST\r\n", last.len()).as_bytes(),
        last,
        b"QUIT\r\n",
    ]
    .concat();
    let chunk_reply = format!("250 2.0.0 OK: {} octets received", first.len());
    let trace = transcript(
        with("chunking"),
        &[&input],
        &[
            &ehlo_with(&["250-CHUNKING"])[..],
            &["250 OK", "250 OK", &chunk_reply, "250 OK", "221 Bye"],
        ]
        .concat(),
    );
    assert_eq!(trace.messages.len(), 1);
    assert_eq!(trace.messages[0].content, [first, last].concat());
    assert!(matches!(trace.asks.last(), Some(Ask::Quit)));
    // An empty last chunk ends the message too; a second message follows.
    let trace = transcript(
        with("chunking"),
        &[
            EHLO,
            ENVELOPE,
            b"BDAT 2\r\nab",
            b"BDAT 0 LAST\r\n",
            ENVELOPE,
            b"BDAT 1 last\r\nc",
        ],
        &[
            &ehlo_with(&["250-CHUNKING"])[..],
            &[
                "250 OK",
                "250 OK",
                "250 2.0.0 OK: 2 octets received",
                "250 OK",
            ],
            &["250 OK", "250 OK", "250 OK"],
        ]
        .concat(),
    );
    let bodies: Vec<&[u8]> = trace
        .messages
        .iter()
        .map(|m| m.content.as_slice())
        .collect();
    assert_eq!(bodies, [b"ab".as_slice(), b"c"]);
}

#[test]
fn refused_chunks_are_read_before_they_are_answered() {
    // Each refused chunk holds what would be a command: it must stay content.
    let evil = b"RSET\r\nMAIL FROM:<x@y>\r\n";
    let bdat = [format!("BDAT {} LAST\r\n", evil.len()).as_bytes(), evil].concat();
    transcript(
        with("chunking"),
        &[
            &bdat,
            EHLO,
            &bdat,
            b"MAIL FROM:<a@b>\r\n",
            &bdat,
            b"NOOP\r\n",
        ],
        &[
            &["503 Error: send HELO first"][..],
            &ehlo_with(&["250-CHUNKING"]),
            &[
                "503 Error: need MAIL command",
                "250 OK",
                "503 Error: need RCPT command",
                "250 OK",
            ],
        ]
        .concat(),
    );
    // Over the size limit: the transaction ends, later chunks need a new MAIL.
    let config = with("chunking").with_data_size_limit(Some(10));
    transcript(
        config,
        &[
            EHLO,
            ENVELOPE,
            b"BDAT 6\r\n123456",
            b"BDAT 6\r\n789012",
            b"BDAT 1 LAST\r\nx",
            b"RSET\r\n",
        ],
        &[
            &[
                "250-mx.example",
                "250-SIZE 10",
                "250-8BITMIME",
                "250-CHUNKING",
                "250 HELP",
            ][..],
            &["250 OK", "250 OK", "250 2.0.0 OK: 6 octets received"],
            &[
                "552 Error: Too much mail data",
                "503 Error: need MAIL command",
                "250 OK",
            ],
        ]
        .concat(),
    )
    .asks
    .iter()
    .for_each(|a| assert!(!matches!(a, Ask::Data), "no message"));
    // STARTTLS required: the chunk is read, then 530.
    let mut tls = with("chunking");
    tls.starttls = true;
    tls.require_starttls = true;
    transcript(
        tls,
        &[b"BDAT 4\r\nQUIT", b"NOOP\r\n"],
        &["530 Must issue a STARTTLS command first", "250 OK"],
    );
}

#[test]
fn bdat_syntax_errors_close_and_data_after_bdat_is_refused() {
    for bad in [
        "BDAT",
        "BDAT x",
        "BDAT -1",
        "BDAT 1 LAST X",
        "BDAT 99999999999999999999999",
        "BDAT 1\u{e9}",
    ] {
        let line = format!("{bad}\r\nNOOP\r\n");
        let trace = transcript(
            with("chunking").with_smtputf8(true),
            &[EHLO, line.as_bytes()],
            &[
                &ehlo_with(&["250-CHUNKING", "250-SMTPUTF8"])[..],
                &["501 5.5.4 Syntax: BDAT count [LAST]"],
            ]
            .concat(),
        );
        assert!(trace.closed, "{bad}: the chunk's end is unknown");
    }
    transcript(
        with("chunking"),
        &[
            EHLO,
            ENVELOPE,
            b"BDAT 3\r\nabc",
            b"DATA\r\n",
            b"RSET\r\n",
            ENVELOPE,
            b"DATA\r\n",
        ],
        &[
            &ehlo_with(&["250-CHUNKING"])[..],
            &[
                "250 OK",
                "250 OK",
                "250 2.0.0 OK: 3 octets received",
                "503 5.5.1 Error: DATA after BDAT",
            ],
            &[
                "250 OK",
                "250 OK",
                "250 OK",
                "354 End data with <CR><LF>.<CR><LF>",
            ],
        ]
        .concat(),
    );
}

#[test]
fn binarymime_is_bdat_only_and_byte_exact() {
    let body: &[u8] = b"\0\x01\r\r\n\n.\r\n\xff";
    let input = [
        EHLO,
        b"MAIL FROM:<a@b> BODY=BINARYMIME\r\nRCPT TO:<c@d>\r\nDATA\r\n",
        format!("BDAT {} LAST\r\n", body.len()).as_bytes(),
        body,
    ]
    .concat();
    let trace = transcript(
        with("chunking,binarymime"),
        &[&input],
        &[
            &ehlo_with(&["250-BINARYMIME", "250-CHUNKING"])[..],
            &[
                "250 OK",
                "250 OK",
                "503 5.5.1 Error: BODY=BINARYMIME requires BDAT",
                "250 OK",
            ],
        ]
        .concat(),
    );
    assert_eq!(trace.messages[0].content, body);
    assert_eq!(trace.messages[0].body_type, Some(BodyType::BinaryMime));
    transcript(
        with("chunking,binarymime"),
        &[EHLO, b"MAIL FROM:<a@b> BODY=8BIT\r\n"],
        &[
            &ehlo_with(&["250-BINARYMIME", "250-CHUNKING"])[..],
            &["501 5.5.4 Error: BODY can only be one of 7BIT, 8BITMIME, BINARYMIME"],
        ]
        .concat(),
    );
    transcript(
        with("binarymime"),
        &[EHLO, b"MAIL FROM:<a@b> BODY=BINARYMIME\r\n"],
        &[
            &EHLO_PLAIN[..],
            &["501 Error: BODY can only be one of 7BIT, 8BITMIME"],
        ]
        .concat(),
    );
}

#[test]
fn lmtp_answers_each_recipient_after_bdat_last() {
    let mut config = with("chunking");
    config.lmtp = true;
    transcript(
        config,
        &[b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nBDAT 2 LAST\r\nhi"],
        &[
            "250-mx.example",
            "250-8BITMIME",
            "250-CHUNKING",
            "250 HELP",
            "250 OK",
            "250 OK",
            "250 OK",
            "250 OK",
            "250 OK",
        ],
    );
}

#[test]
fn enhanced_status_codes() {
    let big = "MAIL FROM:<a@b> SIZE=99999\r\n";
    let trace = transcript(
        with("enhancedstatuscodes").with_data_size_limit(Some(100)),
        &[
            EHLO,
            big.as_bytes(),
            ENVELOPE,
            b"DATA\r\n",
            b"hello\r\n.\r\n",
            b"FOO\r\nMAIL FROM:<a@b> X=1\r\nRCPT TO:<c@d>\r\nVRFY <a@b>\r\nNOOP\r\nQUIT\r\n",
        ],
        &[
            "250-mx.example",
            "250-SIZE 100",
            "250-8BITMIME",
            "250-ENHANCEDSTATUSCODES",
            "250 HELP",
            "552 5.3.4 Error: message size exceeds fixed maximum message size",
            "250 2.1.0 OK",
            "250 2.1.5 OK",
            "354 End data with <CR><LF>.<CR><LF>",
            "250 2.0.0 OK",
            "500 5.5.1 Error: command \"FOO\" not recognized",
            "555 5.5.4 MAIL FROM parameters not recognized or not implemented",
            "503 5.5.1 Error: need MAIL command",
            "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
            "250 2.0.0 OK",
            "221 2.0.0 Bye",
        ],
    );
    assert!(trace.closed);
    // A HELO session does not know the extension: no codes.
    transcript(
        with("enhancedstatuscodes"),
        &[b"HELO x\r\nNOOP\r\n"],
        &["250 mx.example", "250 OK"],
    );
    // A hook's reply without a code gets the command's; one with a code keeps it.
    let script = Script {
        responder: &|| {
            Box::new(|ask, _, _| match ask {
                Ask::Rcpt { address, .. } if address.starts_with("no") => Decision::Outcome(
                    Outcome::Reply(Reply::new(550, "5.1.1 no such user\nreally")),
                ),
                Ask::Rcpt { .. } => Decision::Outcome(Outcome::Accept(Reply::new(250, "fine"))),
                _ => Decision::Outcome(Outcome::Default),
            })
        },
        ..Script::new(with("enhancedstatuscodes"))
    };
    script.transcript(
        &[
            EHLO,
            b"MAIL FROM:<a@b>\r\nRCPT TO:<no@d>\r\nRCPT TO:<yes@d>\r\n",
        ],
        &[
            "250-mx.example",
            "250-8BITMIME",
            "250-ENHANCEDSTATUSCODES",
            "250 HELP",
            "250 2.1.0 OK",
            "550-5.1.1 no such user",
            "550 5.0.0 really",
            "250 2.1.5 fine",
        ],
    );
}

#[test]
fn dsn_parameters_reach_the_envelope() {
    // RFC 3461 §9's example, ENVID and ORCPT in their xtext form.
    let input: &[u8] = b"MAIL FROM:<Alice@Example.ORG> RET=HDRS ENVID=QQ314159+2Bpr\r\n\
        RCPT TO:<Bob@Example.COM> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Bob+40Example.COM\r\n\
        RCPT TO:<Carol@Ivory.EDU> NOTIFY=NEVER\r\nRCPT TO:<dan@x>\r\nDATA\r\nhi\r\n.\r\n";
    let trace = transcript(
        with("dsn"),
        &[EHLO, input],
        &[
            &ehlo_with(&["250-DSN"])[..],
            &[
                "250 OK",
                "250 OK",
                "250 OK",
                "250 OK",
                "354 End data with <CR><LF>.<CR><LF>",
                "250 OK",
            ],
        ]
        .concat(),
    );
    let message = &trace.messages[0];
    assert_eq!(message.dsn.ret, Some(DsnReturn::Headers));
    assert_eq!(message.dsn.envid.as_deref(), Some("QQ314159+pr"));
    assert_eq!(
        message.mail_options,
        ["RET=HDRS", "ENVID=QQ314159+2BPR"],
        "aiosmtpd's list"
    );
    assert_eq!(message.rcpt_dsn.len(), 3, "one per recipient");
    let bob = &message.rcpt_dsn[0];
    assert_eq!(
        bob.notify,
        Some(Notify {
            success: true,
            failure: false,
            delay: true
        })
    );
    let orcpt = bob.orcpt.as_ref().unwrap();
    assert_eq!(
        (orcpt.addr_type.as_str(), orcpt.address.as_str()),
        ("rfc822", "Bob@Example.COM")
    );
    assert!(message.rcpt_dsn[1].notify.unwrap().is_never());
    assert_eq!(message.rcpt_dsn[2], Default::default());
    transcript(
        with("dsn"),
        &[
            EHLO,
            b"MAIL FROM:<a@b> RET=FULL RET=HDRS\r\nMAIL FROM:<a@b> ENVID=a=b\r\nMAIL FROM:<a@b>\r\n",
            b"RCPT TO:<c@d> NOTIFY=NEVER,SUCCESS\r\nRCPT TO:<c@d> ORCPT=rfc822\r\nRCPT TO:<c@d> FOO=1\r\n",
        ],
        &[
            &ehlo_with(&["250-DSN"])[..],
            &[
                "501 5.5.4 Error: duplicate RET parameter",
                "501 5.5.4 Error: bad ENVID parameter syntax",
                "250 OK",
                "501 5.5.4 Error: bad NOTIFY parameter syntax",
                "501 5.5.4 Error: bad ORCPT parameter syntax",
                "555 RCPT TO parameters not recognized or not implemented",
            ],
        ]
        .concat(),
    );
}

#[test]
fn requiretls_only_inside_tls() {
    transcript(
        with("requiretls"),
        &[EHLO, b"MAIL FROM:<a@b> REQUIRETLS\r\n"],
        &[
            &EHLO_PLAIN[..],
            &["530 5.7.10 REQUIRETLS requires a TLS connection"],
        ]
        .concat(),
    );
    let now = Instant::now();
    let mut conn = Connection::new(Arc::new(with("requiretls")), Peer::Unknown, now)
        .with_tls(TlsInfo::default());
    conn.handle_input(
        now,
        &[EHLO, b"MAIL FROM:<a@b> REQUIRETLS\r\nRCPT TO:<c@d>\r\n"].concat(),
    )
    .unwrap();
    let mut wire = Vec::new();
    let mut require_tls = None;
    while let Some(action) = conn.poll_action() {
        match action {
            Action::Send(b) => wire.extend_from_slice(b),
            Action::Hook(call) => {
                if matches!(call.ask, Ask::Rcpt { .. }) {
                    require_tls = Some(call.envelope.require_tls);
                }
                conn.handle_decision(now, Decision::Outcome(Outcome::Default))
                    .unwrap();
            }
            _ => {}
        }
    }
    let wire = String::from_utf8(wire).unwrap();
    assert!(wire.contains("250-REQUIRETLS\r\n"), "{wire}");
    assert!(wire.ends_with("250 HELP\r\n250 OK\r\n250 OK\r\n"), "{wire}");
    assert_eq!(require_tls, Some(true));
}

#[test]
fn rcptmax_is_enforced() {
    transcript(
        plain().with_recipient_limit(Some(2)),
        &[b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<1@x>\r\nRCPT TO:<2@x>\r\nRCPT TO:<3@x>\r\nRSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<3@x>\r\n"],
        &["250 mx.example", "250 OK", "250 OK", "250 OK", "452 4.5.3 Error: too many recipients", "250 OK", "250 OK", "250 OK"],
    );
}

#[test]
fn lhlo_in_smtp_mode_needs_starttls_first() {
    // aiosmtpd: LHLO is not among the commands allowed before STARTTLS.
    let mut config = plain();
    config.starttls = true;
    config.require_starttls = true;
    transcript(
        config,
        &[b"LHLO x\r\n"],
        &["530 Must issue a STARTTLS command first"],
    );
}

#[test]
fn extensions_together_over_tls_lmtp_and_pipelined() {
    // Everything on, one pipelined write: DSN + BDAT + enhanced codes.
    let config = with("all").with_recipient_limit(Some(1));
    let input: &[u8] =
        b"EHLO x\r\nMAIL FROM:<a@b> BODY=BINARYMIME RET=FULL\r\nRCPT TO:<c@d> NOTIFY=FAILURE\r\n\
        RCPT TO:<e@f>\r\nBDAT 3\r\n\0\0\0BDAT 1 LAST\r\n\n";
    let trace = transcript(
        config,
        &[input],
        &[
            "250-mx.example",
            "250-8BITMIME",
            "250-BINARYMIME",
            "250-PIPELINING",
            "250-CHUNKING",
            "250-ENHANCEDSTATUSCODES",
            "250-DSN",
            "250-LIMITS RCPTMAX=1",
            "250 HELP",
            "250 2.1.0 OK",
            "250 2.1.5 OK",
            "452 4.5.3 Error: too many recipients",
            "250 2.0.0 OK: 3 octets received",
            "250 2.0.0 OK",
        ],
    );
    let message = &trace.messages[0];
    assert_eq!(message.content, b"\0\0\0\n");
    assert_eq!(message.dsn.ret, Some(DsnReturn::Full));
    assert!(message.rcpt_dsn[0].notify.unwrap().failure);
    assert_eq!(Extensions::all(), "all".parse().unwrap());
}

#[test]
fn an_abandoned_chunk_never_reaches_the_next_message() {
    // The chunk, then RSET (or a chunk over SIZE) in the same read: its bytes
    // belong to no message, least of all the next one.
    for (end, reply) in [
        (&b"RSET\r\n"[..], "250 OK"),
        (
            b"BDAT 20\r\n01234567890123456789",
            "552 Error: Too much mail data",
        ),
    ] {
        let input = [
            EHLO,
            ENVELOPE,
            b"BDAT 5\r\nstale",
            end,
            ENVELOPE,
            b"BDAT 3 LAST\r\nnew",
        ]
        .concat();
        let trace = transcript(
            with("chunking").with_data_size_limit(Some(10)),
            &[&input],
            &[
                &[
                    "250-mx.example",
                    "250-SIZE 10",
                    "250-8BITMIME",
                    "250-CHUNKING",
                    "250 HELP",
                ][..],
                &["250 OK", "250 OK", "250 2.0.0 OK: 5 octets received", reply],
                &["250 OK", "250 OK", "250 OK"],
            ]
            .concat(),
        );
        assert_eq!(trace.messages.len(), 1);
        assert_eq!(trace.messages[0].content, b"new");
    }
}

#[test]
fn review_findings_stay_fixed() {
    // Sizes that add up past usize::MAX without a size limit: no overflow.
    let trace = drive(
        with("chunking"),
        &[
            EHLO,
            ENVELOPE,
            b"BDAT 1\r\nx",
            b"BDAT 18446744073709551615\r\nabc",
        ],
    );
    assert!(String::from_utf8_lossy(&trace.out).ends_with("250 2.0.0 OK: 1 octets received\r\n"));
    // Replies to HELO, EHLO and LHLO carry no enhanced code (RFC 2034 §3).
    transcript(
        with("enhancedstatuscodes"),
        &[EHLO, b"EHLO\r\nNOOP\r\n"],
        &[
            "250-mx.example",
            "250-8BITMIME",
            "250-ENHANCEDSTATUSCODES",
            "250 HELP",
            "501 Syntax: EHLO hostname",
            "250 2.0.0 OK",
        ],
    );
    // The call limit counts messages, not chunks.
    transcript(
        with("chunking").with_call_limits(Some(CallLimits::uniform(1))),
        &[EHLO, ENVELOPE, b"BDAT 1\r\naBDAT 1\r\nbBDAT 1 LAST\r\nc"],
        &[
            &ehlo_with(&["250-CHUNKING"])[..],
            &["250 OK", "250 OK", "250 2.0.0 OK: 1 octets received"],
            &["250 2.0.0 OK: 1 octets received", "250 OK"],
        ]
        .concat(),
    );
    // A BDAT line too long to read closes: its chunk cannot be found.
    let long = format!("BDAT 5 LAST{}\r\nQUIT\r\n", " ".repeat(1100));
    let trace = transcript(
        with("chunking"),
        &[EHLO, long.as_bytes()],
        &[
            &ehlo_with(&["250-CHUNKING"])[..],
            &["500 Command line too long"],
        ]
        .concat(),
    );
    assert!(trace.closed);
    // A RCPT hook that records the recipient itself (aiosmtpd's way) keeps
    // rcpt_dsn in step with rcpt_tos.
    let script = Script {
        responder: &|| {
            Box::new(|ask, _, envelope| match ask {
                Ask::Rcpt { address, .. } => {
                    envelope.rcpt_tos.push(address.clone());
                    Decision::Outcome(Outcome::Reply(Reply::new(250, "recorded")))
                }
                _ => Decision::Outcome(Outcome::Default),
            })
        },
        ..Script::new(with("dsn"))
    };
    let trace = script.transcript(
        &[
            EHLO,
            b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f> NOTIFY=NEVER\r\nDATA\r\n.\r\n",
        ],
        &[
            &ehlo_with(&["250-DSN"])[..],
            &[
                "250 OK",
                "250 recorded",
                "250 recorded",
                "354 End data with <CR><LF>.<CR><LF>",
                "250 OK",
            ],
        ]
        .concat(),
    );
    let message = &trace.messages[0];
    assert_eq!(message.rcpt_tos.len(), 2);
    assert_eq!(message.rcpt_dsn.len(), 2);
    assert!(message.rcpt_dsn[1].notify.unwrap().is_never());
}

#[test]
fn an_abandoned_message_is_aborted_once_and_a_delivered_one_never() {
    let envelope = [EHLO, ENVELOPE].concat();
    type Case<'a> = (&'a str, Config, Vec<&'a [u8]>, usize, usize);
    let cases: [Case<'_>; 6] = [
        // (case, config, input pieces, starts, aborts)
        (
            "delivered by DATA",
            with(""),
            vec![&envelope, b"DATA\r\nhi\r\n.\r\n"],
            1,
            0,
        ),
        (
            "delivered by BDAT",
            with("chunking"),
            vec![&envelope, b"BDAT 2\r\nhi", b"BDAT 1 LAST\r\n!"],
            1,
            0,
        ),
        (
            "RSET after a chunk",
            with("chunking"),
            vec![&envelope, b"BDAT 2\r\nhi", b"RSET\r\n"],
            1,
            1,
        ),
        (
            "over SIZE",
            with("").with_data_size_limit(Some(5)),
            vec![&envelope, b"DATA\r\n", b"0123456789\r\n.\r\n"],
            1,
            1,
        ),
        (
            "peer closes in DATA",
            with(""),
            vec![&envelope, b"DATA\r\npart"],
            1,
            1,
        ),
        (
            "a message still open",
            with("chunking"),
            vec![&envelope, b"BDAT 2\r\nhi"],
            1,
            0,
        ),
    ];
    for (case, config, input, starts, aborts) in cases {
        let mut driver = Driver::new(config);
        for piece in input {
            driver.feed(piece);
        }
        if case == "peer closes in DATA" {
            driver.peer_closed();
        }
        assert_eq!(
            (driver.trace.starts, driver.trace.aborts),
            (starts, aborts),
            "{case}"
        );
    }
    // A message started and abandoned within one read never starts at all.
    let mut driver = Driver::new(with("chunking"));
    driver.feed(&[EHLO, ENVELOPE, b"BDAT 2\r\nhiRSET\r\n"].concat());
    assert_eq!((driver.trace.starts, driver.trace.aborts), (0, 0));
    // The spool travels to the abort.
    let now = Instant::now();
    let mut conn = Connection::new(Arc::new(with("")), Peer::Unknown, now);
    conn.handle_input(now, &[EHLO, ENVELOPE, b"DATA\r\n"].concat())
        .unwrap();
    let mut saw = None;
    for _ in 0..100 {
        match conn.poll_action() {
            Some(Action::MessageStart(start)) => start.envelope.spool.set(42u32),
            Some(Action::MessageAbort(abort)) => saw = abort.spool.take::<u32>(),
            Some(Action::Hook(_)) => conn
                .handle_decision(now, Decision::Outcome(Outcome::Default))
                .unwrap(),
            Some(Action::Close) => break,
            Some(_) => {}
            None => conn.handle_timeout(now + std::time::Duration::from_secs(301)),
        }
    }
    assert_eq!(
        saw,
        Some(42),
        "the timeout aborts the message with its spool"
    );
}

#[test]
fn messages_and_auth_failures_per_connection_are_limited() {
    let mut config = plain();
    config.max_messages_per_connection = Some(2);
    let message: &[u8] = b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\r\n.\r\n";
    let trace = transcript(
        config,
        &[b"HELO x\r\n", message, message, b"MAIL FROM:<a@b>\r\n"],
        &[
            "250 mx.example",
            "250 OK",
            "250 OK",
            "354 End data with <CR><LF>.<CR><LF>",
            "250 OK",
            "250 OK",
            "250 OK",
            "354 End data with <CR><LF>.<CR><LF>",
            "250 OK",
            "421 4.7.0 mx.example Too many messages on one connection, closing",
        ],
    );
    assert!(trace.closed);
    let mut config = plain();
    config.auth_require_tls = false;
    config.max_auth_failures = Some(2);
    let trace = transcript(
        config,
        &[b"EHLO x\r\nAUTH PLAIN AHUAcA==\r\nAUTH PLAIN AHUAcA==\r\nNOOP\r\n"],
        &[
            "250-mx.example",
            "250-8BITMIME",
            "250-AUTH LOGIN PLAIN",
            "250 HELP",
            "535 5.7.8 Authentication credentials invalid",
            "535 5.7.8 Authentication credentials invalid",
            "421 4.7.0 mx.example Too many failed authentication attempts, closing",
        ],
    );
    assert!(trace.closed);
}
