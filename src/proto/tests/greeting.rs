//! HELO, EHLO and the greeting.

use super::harness::*;
use crate::proto::Ask;
use crate::proto::replies::{BYE, NEED_MAIL, NEED_RCPT, OK};

#[test]
fn harness_run_returns_everything_sent() {
    assert_eq!(run(plain(), &[]), GREETING);
    assert_eq!(
        run(plain(), &[b"NOOP\r\n", b"QUIT\r\n", b"NOOP\r\n"]),
        format!("{GREETING}250 OK\r\n221 Bye\r\n")
    );
}

#[test]
fn greeting_then_quit_closes() {
    let trace = session(plain(), &[], &[]);
    assert!(!trace.closed);
    let trace = session(plain(), &["QUIT"], &[BYE.line]);
    assert!(trace.closed);
    assert_eq!(trace.asks, vec![Ask::Quit]);
    // The greeting uses the configured host name and ident.
    let mut config = plain();
    config.hostname = "other.example".into();
    config.ident = "ESMTP ready".into();
    assert_eq!(run(config, &[]), "220 other.example ESMTP ready\r\n");
}

#[test]
fn helo_with_and_without_argument() {
    let trace = session(
        plain(),
        &[
            "HELO example.org",
            "HELO",
            "HELO ",
            "HELO   ",
            "HELO a b",
            "helo lower",
        ],
        &[
            "250 mx.example",
            "501 Syntax: HELO hostname",
            "501 Syntax: HELO hostname",
            "501 Syntax: HELO hostname",
            "250 mx.example",
            "250 mx.example",
        ],
    );
    let names: Vec<_> = trace
        .asks
        .iter()
        .map(|a| match a {
            Ask::Helo { hostname } => hostname.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // No validation: "HELO a b" keeps "a b".
    assert_eq!(names, ["example.org", "a b", "lower"]);
}

#[test]
fn ehlo_extension_lines() {
    session(plain(), &["EHLO example.com"], &EHLO_PLAIN);
    session(
        library_defaults(),
        &["EHLO example.com"],
        &[
            "250-mx.example",
            "250-SIZE 33554432",
            "250-8BITMIME",
            "250 HELP",
        ],
    );
    session(sized(), &["EHLO example.com"], &EHLO_SIZED);
    session(
        plain().with_smtputf8(true),
        &["EHLO example.com"],
        &["250-mx.example", "250-8BITMIME", "250-SMTPUTF8", "250 HELP"],
    );
    session(
        library_defaults().with_smtputf8(true),
        &["EHLO [IPv6:::1]"],
        &[
            "250-mx.example",
            "250-SIZE 33554432",
            "250-8BITMIME",
            "250-SMTPUTF8",
            "250 HELP",
        ],
    );
    session(
        plain(),
        &["EHLO", "EHLO  ", "ehlo"],
        &["501 Syntax: EHLO hostname"; 3],
    );
}

#[test]
fn helo_ehlo_reset_the_transaction() {
    // golden helo_clears_transaction, ehlo_clears_transaction, helo_then_ehlo
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL FROM:<anne@example.com>",
            "RCPT TO:<bart@example.com>",
            "HELO example.org",
            "RCPT TO:<bart@example.com>",
            "DATA",
            "EHLO example.com",
            "MAIL FROM:<anne@example.com>",
            "RCPT TO:<bart@example.com>",
            "EHLO example.com",
            "RCPT TO:<bart@example.com>",
            "MAIL FROM:<anne@example.com>",
        ],
        &[
            "250 mx.example",
            OK.line,
            OK.line,
            "250 mx.example",
            NEED_MAIL.line,
            NEED_RCPT.line,
            EHLO_PLAIN[0],
            EHLO_PLAIN[1],
            EHLO_PLAIN[2],
            OK.line,
            OK.line,
            EHLO_PLAIN[0],
            EHLO_PLAIN[1],
            EHLO_PLAIN[2],
            NEED_MAIL.line,
            OK.line,
        ],
    );
}
