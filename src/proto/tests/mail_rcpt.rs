//! MAIL and RCPT: paths, addresses, parameters, sequence errors.

use super::harness::*;
use crate::proto::replies::{
    BAD_BODY, CONTROL_IN_RECIPIENT, CONTROL_IN_SENDER, COULD_NOT_VRFY, MAIL_PARAMS_UNKNOWN,
    MALFORMED_ADDRESS, NEED_MAIL, NEED_RCPT, NESTED_MAIL, OK, RCPT_PARAMS_UNKNOWN, SEND_HELO_FIRST,
    SIZE_EXCEEDED, SMTPUTF8_ARGUMENT, SMTPUTF8_DISABLED, START_DATA,
};
use crate::proto::{Ask, Config};

#[test]
fn mail_rcpt_data_need_helo() {
    session(
        plain(),
        &[
            "MAIL FROM: <anne@example.com>",
            "RCPT TO: <anne@example.com>",
            "DATA",
            "DATA FOO",
        ],
        &[SEND_HELO_FIRST.line; 4],
    );
}

#[test]
fn mail_syntax_errors_in_helo_session() {
    // golden mail_syntax_helo_mode, params_in_helo_mode
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL",
            "MAIL <anne@example.com>",
            "MAIL FROM:",
            "MAIL FROM: ",
            "MAIL FROM :<anne@example.com>",
            "MAIL FROM: <anne@example.com> SIZE=10000",
            "MAIL FROM:<anne@example.com> BODY=8BITMIME",
            "MAIL FROM: Anne <anne@example.com>",
        ],
        &[
            "250 mx.example",
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
            MAIL_SYNTAX,
        ],
    );
}

#[test]
fn mail_syntax_errors_in_ehlo_session() {
    // golden mail_syntax_esmtp_mode, size_param
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([MAIL_SYNTAX_ESMTP; 11]);
    session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL",
            "MAIL <anne@example.com>",
            "MAIL FROM:",
            "MAIL FROM :<anne@example.com>",
            "MAIL FROM: <anne@example.com> SIZE 10000",
            "MAIL FROM: <anne@example.com> SIZE",
            "MAIL FROM: <anne@example.com> #$%=!@#",
            "MAIL FROM: <anne@example.com> SIZE = 10000",
            "MAIL FROM: <anne@example.com> SIZE=abc",
            "MAIL FROM: <anne@example.com> SIZE=",
            "MAIL FROM: <anne@example.com> SIZE=-1",
        ],
        &replies,
    );
}

#[test]
fn rcpt_syntax_errors_in_helo_and_ehlo_sessions() {
    // golden rcpt_syntax_helo_mode, rcpt_syntax_esmtp_mode
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL FROM: <anne@example.com>",
            "RCPT",
            "RCPT <anne@example.com>",
            "RCPT TO:",
            "RCPT TO: <bart@example.com> SIZE=1000",
            "RCPT TO: bart <bart@example.com>",
        ],
        &[
            "250 mx.example",
            OK.line,
            RCPT_SYNTAX,
            RCPT_SYNTAX,
            RCPT_SYNTAX,
            RCPT_SYNTAX,
            RCPT_SYNTAX,
        ],
    );
    let mut replies = EHLO_PLAIN.to_vec();
    replies.push(OK.line);
    replies.extend([RCPT_SYNTAX_ESMTP; 6]);
    session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com>",
            "RCPT",
            "RCPT <anne@example.com>",
            "RCPT TO:",
            "RCPT TO : <bart@example.com>",
            "RCPT TO: <bart@example.com> #$%=!@#",
            "RCPT TO: bart <bart@example.com>",
        ],
        &replies,
    );
}

#[test]
fn malformed_addresses_get_553() {
    // golden mail_invalid_address, rcpt_invalid_address, data_after_failed_rcpt
    let mut replies = vec![
        "250 mx.example",
        MALFORMED_ADDRESS.line,
        MALFORMED_ADDRESS.line,
        MALFORMED_ADDRESS.line,
    ];
    replies.extend(EHLO_PLAIN);
    replies.extend([
        MALFORMED_ADDRESS.line,
        OK.line,
        MALFORMED_ADDRESS.line,
        MALFORMED_ADDRESS.line,
        NEED_RCPT.line,
    ]);
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL FROM: <@example.com>",
            "MAIL FROM: <johnathon@>",
            "MAIL FROM:<<anne@example.com>>",
            "EHLO example.com",
            "MAIL FROM: <@example.com> SIZE=28113",
            "MAIL FROM: <anne@example.com>",
            "RCPT TO: <@example.com>",
            "RCPT TO: <johnathon@>",
            "DATA",
        ],
        &replies,
    );
}

#[test]
fn local_part_limit_makes_long_local_parts_malformed() {
    let mut config = plain();
    config.local_part_limit = Some(5);
    session(
        config,
        &[
            "HELO example.org",
            "MAIL FROM:<abcdef@example.com>",
            "MAIL FROM:<abcde@example.com>",
            "RCPT TO:<bcdefg@example.com>",
            "RCPT TO:<bcdef@example.com>",
            "VRFY <abcdef@example.com>",
        ],
        &[
            "250 mx.example",
            MALFORMED_ADDRESS.line,
            OK.line,
            MALFORMED_ADDRESS.line,
            OK.line,
            &COULD_NOT_VRFY.line("<abcdef@example.com>"),
        ],
    );
}

#[test]
fn nested_mail_and_sequence_errors() {
    // golden mail_nested, rcpt_no_mail, data_no_rcpt, mail_null_reverse_path_forms
    let trace = session(
        plain(),
        &[
            "HELO example.org",
            "RCPT TO: <anne@example.com>",
            "DATA",
            "MAIL FROM: <anne@example.com>",
            "DATA",
            "DATA FOOBAR",
            "MAIL FROM: <anne@example.com>",
            "MAIL",
            "RSET",
            "MAIL FROM:<>",
            "MAIL FROM:<anne@example.com>",
        ],
        &[
            "250 mx.example",
            NEED_MAIL.line,
            NEED_RCPT.line,
            OK.line,
            NEED_RCPT.line,
            // The RCPT check comes before the argument check.
            NEED_RCPT.line,
            NESTED_MAIL.line,
            // Syntax is checked before nesting.
            MAIL_SYNTAX,
            OK.line,
            OK.line,
            // "<>" is stored as a (truthy) string.
            NESTED_MAIL.line,
        ],
    );
    let senders: Vec<_> = mail_ask(&trace).into_iter().map(|(a, _)| a).collect();
    assert_eq!(senders, ["anne@example.com", "<>"]);
}

#[test]
fn mail_from_address_forms() {
    // golden mail_from_forms_1..3: every one of these is accepted.
    let long_a = format!("{}@example.com", "a".repeat(65));
    let long_b = format!("{}@example.com", "b".repeat(488));
    let long_c = "c".repeat(500);
    let forms = [
        "anne@example.com",
        "<anne@example.com>",
        " anne@example.com",
        " <anne@example.com>",
        "  <anne@example.com>",
        "anne.arthur@example.com",
        "anne+promo@example.com",
        "anne-arthur@example.com",
        "anne_arthur@example.com",
        "_@example.com",
        "anne@127.0.0.1",
        "anne@[127.0.0.1]",
        "anne@[IPv6:2001:db8::1]",
        "anne@[IPv6::1]",
        "anne(comment)@example.com",
        "(comment)anne@example.com",
        "anne@example.com(comment)",
        "<@example.org:anne@example.com>",
        "<@example.net,@example.org:anne@example.com>",
        "anne@mail",
        "\"\"@example.com",
        "<\"\"@example.com>",
        "\" \"@example.com",
        "\"anne..arthur\"@example.com",
        "mailhost!anne@example.com",
        "anne%example.org@example.com",
        "\"Fred Bloggs\"@example.com",
        "\"Abc@def\"@example.com",
        "customer/department=shipping@example.com",
        "$A12345@example.com",
        "!def!xyz%abc@example.com",
        "Fred\\ Bloggs@example.com",
        &long_a,
        &long_b,
        &long_c,
    ];
    // In parts, so that splitting at every offset stays quick.
    for part in forms.chunks(12) {
        let mut commands = vec!["EHLO example.com".to_owned()];
        let mut replies = EHLO_PLAIN.to_vec();
        for form in part {
            commands.push(format!("MAIL FROM:{form}"));
            commands.push("RSET".into());
            replies.extend([OK.line, OK.line]);
        }
        let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
        let trace = session(plain(), &commands, &replies);
        assert_eq!(mail_ask(&trace).len(), part.len());
    }
}

#[test]
fn angle_bracket_and_keyword_edges() {
    // golden mail_angle_bracket_edges, rcpt_angle_bracket_edges, mail_from_keyword_spacing
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([
        OK.line,
        OK.line,
        MAIL_SYNTAX_ESMTP,
        OK.line,
        MALFORMED_ADDRESS.line,
        OK.line,
        OK.line,
        OK.line,
        MAIL_SYNTAX_ESMTP,
        OK.line,
        OK.line,
        OK.line,
        MAIL_PARAMS_UNKNOWN.line,
        OK.line,
        OK.line,
        OK.line,
        OK.line,
        OK.line,
        OK.line,
        OK.line,
        // RCPT
        OK.line,
        OK.line,
        RCPT_SYNTAX_ESMTP,
        MALFORMED_ADDRESS.line,
        OK.line,
        OK.line,
        RCPT_SYNTAX_ESMTP,
    ]);
    let trace = session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM:<anne@example.com",
            "RSET",
            "MAIL FROM:anne@example.com>",
            "RSET",
            "MAIL FROM:<<anne@example.com>>",
            "RSET",
            "MAIL FROM:< anne@example.com >",
            "RSET",
            "MAIL FROM:<anne@example.com> <x@example.com>",
            "RSET",
            "MAIL FROM:<anne @example.com>",
            "RSET",
            "MAIL FROM:<anne@example.com>x",
            "RSET",
            "MAIL  FROM:<anne@example.com>",
            "RSET",
            "MAIL FROM:  <anne@example.com>",
            "RSET",
            "MAIL from:<anne@example.com>",
            "RSET",
            "MAIL FROM:<anne@example.com>",
            "RCPT TO:<bart@example.com",
            "RCPT TO:bart@example.com>",
            "RCPT TO:<<bart@example.com>>",
            "RCPT TO:< bart@example.com >",
            "RCPT TO:<>",
            "RCPT TO:<bart@example.com> <x@example.com>",
        ],
        &replies,
    );
    let rcpts = trace
        .asks
        .iter()
        .filter(|a| matches!(a, Ask::Rcpt { .. }))
        .count();
    assert_eq!(rcpts, 3);
}

#[test]
fn null_reverse_path_and_quoted_empty_local_part() {
    // golden mail_null_reverse_path_forms, mail_quoted_empty_local
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([OK.line; 8]);
    let trace = session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM:<>",
            "RSET",
            "MAIL FROM: <>",
            "RSET",
            "MAIL FROM:<> SIZE=100",
            "RSET",
            "MAIL FROM:<> BODY=8BITMIME",
            "RSET",
        ],
        &replies,
    );
    let mails = mail_ask(&trace);
    assert_eq!(mails.len(), 4);
    assert!(mails.iter().all(|(a, _)| a == "<>"), "{mails:?}");
    assert_eq!(mails[2].1, ["SIZE=100"]);
    assert_eq!(mails[3].1, ["BODY=8BITMIME"]);
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL FROM: <\"\"@example.com>",
            "RCPT TO: <\"\"@example.org>",
        ],
        &["250 mx.example", OK.line, OK.line],
    );
}

#[test]
fn mail_size_parameter() {
    // golden size_param_limit (sized) and size_param (no limit)
    let mut replies = EHLO_SIZED.to_vec();
    let too_big = SIZE_EXCEEDED.line;
    replies.extend([too_big, OK.line, OK.line, OK.line, too_big, OK.line]);
    session(
        sized(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com> SIZE=4097",
            "RSET",
            "MAIL FROM: <anne@example.com> SIZE=4096",
            "RSET",
            "MAIL FROM: <anne@example.com> SIZE=10000",
            "RSET",
        ],
        &replies,
    );
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([OK.line; 4]);
    let trace = session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com> SIZE=0",
            "RSET",
            "MAIL FROM: <anne@example.com> SIZE=99999999999",
            "RSET",
        ],
        &replies,
    );
    assert_eq!(mail_ask(&trace)[1].1, ["SIZE=99999999999"]);
}

#[test]
fn mail_body_parameter() {
    // golden body_param
    let body = BAD_BODY.line;
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([
        OK.line, OK.line, OK.line, OK.line, OK.line, OK.line, body, OK.line, body, OK.line, body,
        OK.line, body,
    ]);
    let trace = session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com> BODY=8BITMIME",
            "RSET",
            "MAIL FROM: <anne@example.com> BODY=7BIT",
            "RSET",
            "MAIL FROM: <anne@example.com> body=8bitmime",
            "RSET",
            "MAIL FROM: <anne@example.com> BODY=FOOBAR",
            "RSET",
            "MAIL FROM: <anne@example.com> BODY 9BIT",
            "RSET",
            "MAIL FROM: <anne@example.com> BODY=BINARYMIME",
            "RSET",
            "MAIL FROM: <anne@example.com> BODY",
        ],
        &replies,
    );
    // Options are passed uppercased.
    assert_eq!(mail_ask(&trace)[2].1, ["BODY=8BITMIME"]);
}

#[test]
fn mail_smtputf8_parameter() {
    // golden smtputf8_param_disabled, smtputf8_with_value, smtputf8_transaction
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([SMTPUTF8_DISABLED.line, SMTPUTF8_ARGUMENT.line]);
    session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com> SMTPUTF8",
            "MAIL FROM: <anne@example.com> SMTPUTF8=YES",
        ],
        &replies,
    );
    let mut replies = EHLO_SIZED.to_vec();
    replies.extend([
        SMTPUTF8_ARGUMENT.line,
        OK.line,
        OK.line,
        START_DATA.line,
        OK.line,
    ]);
    let trace = transcript(
        sized(),
        &[
            b"EHLO example.com\r\n",
            b"MAIL FROM: <anne@example.com> SMTPUTF8=YES\r\n",
            "MAIL FROM: <anne\u{cb}@example.com> SMTPUTF8\r\n".as_bytes(),
            "RCPT TO: <bart\u{cb}@example.com>\r\n".as_bytes(),
            b"DATA\r\n",
            "Subject: caf\u{e9}\r\n\r\n\u{fc}nic\u{f6}de\r\n.\r\n".as_bytes(),
        ],
        &replies,
    );
    let message = &trace.messages[0];
    assert!(message.smtp_utf8);
    assert_eq!(message.mail_from.as_deref(), Some("anne\u{cb}@example.com"));
    assert_eq!(message.mail_options, ["SMTPUTF8"]);
    assert_eq!(message.rcpt_tos, ["bart\u{cb}@example.com"]);
    assert_eq!(
        message.content,
        "Subject: caf\u{e9}\r\n\r\n\u{fc}nic\u{f6}de\r\n".as_bytes()
    );
}

#[test]
fn unknown_parameters_get_555() {
    // golden mail_unknown_param, rcpt_unknown_params
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([
        MAIL_PARAMS_UNKNOWN.line,
        MAIL_PARAMS_UNKNOWN.line,
        OK.line,
        RCPT_PARAMS_UNKNOWN.line,
        RCPT_PARAMS_UNKNOWN.line,
        RCPT_PARAMS_UNKNOWN.line,
    ]);
    session(
        plain(),
        &[
            "EHLO example.com",
            "MAIL FROM: <anne@example.com> FOO=BAR",
            "MAIL FROM: <anne@example.com> RET=HDRS",
            "MAIL FROM: <anne@example.com>",
            "RCPT TO: <bart@example.com> FOOBAR",
            "RCPT TO: <bart@example.com> NOTIFY=NEVER",
            "RCPT TO: <bart@example.com> ORCPT=rfc822;bart@example.com",
        ],
        &replies,
    );
}

#[test]
fn control_characters_in_addresses_pass_by_default() {
    // aiosmtpd: a NUL inside an address is just another character.
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL FROM:<an\0ne@example.com>",
            "RCPT TO:<a\0b@example.com>",
        ],
        &["250 mx.example", OK.line, OK.line],
    );
}

#[test]
fn control_characters_in_addresses_refused_on_request() {
    let config = Config {
        refuse_control_characters: true,
        ..plain()
    };
    let trace = session(
        config,
        &[
            "EHLO example.org",
            "MAIL FROM:<an\0ne@example.com>",
            "MAIL FROM:<anne\x7f@example.com> BODY=8BITMIME",
            "MAIL FROM:<anne@example.com>",
            "RCPT TO:<a\0b@example.com>",
            "RCPT TO:<a\x1bb@example.com>",
            "RCPT TO:\"a\x01b\"@example.com",
            "RCPT TO:<bart@example.com>",
        ],
        &[
            EHLO_PLAIN[0],
            EHLO_PLAIN[1],
            EHLO_PLAIN[2],
            CONTROL_IN_SENDER.line,
            CONTROL_IN_SENDER.line,
            OK.line,
            CONTROL_IN_RECIPIENT.line,
            CONTROL_IN_RECIPIENT.line,
            CONTROL_IN_RECIPIENT.line,
            OK.line,
        ],
    );
    assert!(!trace.closed);
    assert_eq!(
        CONTROL_IN_SENDER.line,
        "501 5.1.7 Bad sender address syntax: control character"
    );
    assert_eq!(
        CONTROL_IN_RECIPIENT.line,
        "501 5.1.3 Bad recipient address syntax: control character"
    );
}
