//! RSET, NOOP, QUIT, VRFY, EXPN and HELP.

use super::harness::*;
use crate::proto::Ask;
use crate::proto::replies::{
    AUTH_NOT_RECOGNIZED, BYE, CANNOT_VRFY, COULD_NOT_VRFY, ENCRYPTION_REQUIRED,
    EXPN_NOT_IMPLEMENTED, NEED_MAIL, NEED_RCPT, OK, SEND_EHLO_FIRST, START_DATA, TLS_NOT_AVAILABLE,
};

#[test]
fn rset_noop_quit_and_arguments() {
    // golden rset, rset_clears_transaction, noop, quit_with_arg, quit_trailing_space
    let trace = session(
        plain(),
        &[
            "RSET",
            "RSET FOO",
            "NOOP",
            "NOOP ok",
            "NOOP  with several words ",
            "HELO example.org",
            "MAIL FROM:<anne@example.com>",
            "RCPT TO:<bart@example.com>",
            "RSET",
            "DATA",
            "RCPT TO:<bart@example.com>",
            "MAIL FROM:<dave@example.com>",
            "QUIT oops",
            "QUIT ",
            "NOOP",
        ],
        &[
            OK.line,
            "501 Syntax: RSET",
            OK.line,
            OK.line,
            OK.line,
            "250 mx.example",
            OK.line,
            OK.line,
            OK.line,
            NEED_RCPT.line,
            NEED_MAIL.line,
            OK.line,
            "501 Syntax: QUIT",
            BYE.line,
        ],
    );
    assert!(trace.closed);
    let noops: Vec<_> = trace
        .asks
        .iter()
        .filter_map(|a| match a {
            Ask::Noop { arg } => Some(arg.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        noops,
        [None, Some("ok".into()), Some("with several words".into())]
    );
    assert_eq!(trace.asks.iter().filter(|a| **a == Ask::Rset).count(), 2);
}

#[test]
fn vrfy_and_expn() {
    // golden vrfy, expn, vrfy_inside_transaction
    let trace = session(
        plain(),
        &[
            "VRFY <anne@example.com>",
            "VRFY anne@example.com",
            "VRFY",
            "VRFY @@",
            "EXPN anne@example.com",
            "EXPN",
            "HELO example.org",
            "MAIL FROM:<anne@example.com>",
            "RCPT TO:<bart@example.com>",
            "VRFY zuzu@example.com",
            "NOOP",
            "DATA",
        ],
        &[
            CANNOT_VRFY.line,
            CANNOT_VRFY.line,
            "501 Syntax: VRFY <address>",
            &COULD_NOT_VRFY.line("@@"),
            EXPN_NOT_IMPLEMENTED.line,
            EXPN_NOT_IMPLEMENTED.line,
            "250 mx.example",
            OK.line,
            OK.line,
            CANNOT_VRFY.line,
            OK.line,
            START_DATA.line,
        ],
    );
    let vrfys: Vec<_> = trace
        .asks
        .iter()
        .filter_map(|a| match a {
            Ask::Vrfy { address } => Some(address.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        vrfys,
        ["anne@example.com", "anne@example.com", "zuzu@example.com"]
    );
}

#[test]
fn help_list_per_command_and_errors() {
    // golden help, help_each_command, help_esmtp, help_bad_arg
    let list = format!("250 {HELP_LIST}");
    let bad = format!("501 {HELP_LIST}");
    session(
        plain(),
        &[
            "HELP",
            "HELP HELO",
            "HELP EHLO",
            "HELP MAIL",
            "HELP RCPT",
            "HELP DATA",
            "HELP RSET",
            "HELP NOOP",
            "HELP QUIT",
            "HELP VRFY",
            "HELP AUTH",
            "HELP help",
            "HELP quit",
            "HELP me!",
            "HELP EXPN",
            "HELP STARTTLS",
            "HELP NOOP extra",
            "HELP FOO",
            "help",
        ],
        &[
            &list,
            "250 Syntax: HELO hostname",
            "250 Syntax: EHLO hostname",
            "250 Syntax: MAIL FROM: <address>",
            "250 Syntax: RCPT TO: <address>",
            "250 Syntax: DATA",
            "250 Syntax: RSET",
            "250 Syntax: NOOP [ignored]",
            "250 Syntax: QUIT",
            "250 Syntax: VRFY <address>",
            "250 Syntax: AUTH <mechanism>",
            "250 Syntax: HELP [command]",
            "250 Syntax: QUIT",
            &bad,
            &bad,
            &bad,
            &bad,
            &bad,
            &list,
        ],
    );
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([
        "250 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
        "250 Syntax: RCPT TO: <address> [SP <mail-parameters>]",
        "250 Syntax: HELO hostname",
        "250 mx.example",
        "250 Syntax: MAIL FROM: <address>",
    ]);
    session(
        plain(),
        &[
            "EHLO example.com",
            "HELP MAIL",
            "HELP rcpt",
            "HELP HELO",
            "HELO example.org",
            "HELP MAIL",
        ],
        &replies,
    );
}

#[test]
fn auth_and_starttls_without_tls() {
    // golden auth_not_offered, starttls_not_offered
    let mut replies = vec![SEND_EHLO_FIRST.line, "250 mx.example"];
    replies.push(AUTH_NOT_RECOGNIZED.line);
    replies.extend(EHLO_PLAIN);
    replies.extend([
        ENCRYPTION_REQUIRED.line,
        TLS_NOT_AVAILABLE.line,
        "501 Syntax: STARTTLS",
    ]);
    session(
        plain(),
        &[
            "AUTH PLAIN",
            "HELO example.org",
            "AUTH PLAIN",
            "EHLO example.com",
            "AUTH PLAIN AGdvb2Rsb2dpbgBnb29kcGFzc3dk",
            "STARTTLS",
            "STARTTLS now",
        ],
        &replies,
    );
}
