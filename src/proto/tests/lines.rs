//! Command lines: syntax, ASCII, length limits, call limits, unknown commands, timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::harness::*;
use crate::proto::replies::{
    BAD_SYNTAX, CANNOT_VRFY, COMMAND_TOO_LONG, NOT_RECOGNIZED, OK, SENT_TOO_MANY_TIMES, START_DATA,
    STRICT_ASCII, TOO_MANY_UNRECOGNIZED,
};
use crate::proto::{Action, Ask, CallLimits, Connection, Decision, Outcome, Peer};

#[test]
fn unknown_commands_and_the_bogus_limit() {
    // golden unknown_command, unknown_command_limit, unknown_command_limit_not_reset,
    // tab_separator, bare_cr_in_command, nul_in_command
    session(
        plain(),
        &[
            "FOOBAR",
            "FOOBAR with args",
            "foobar",
            "MAIL\tFROM:<anne@example.com>",
        ],
        &[
            &NOT_RECOGNIZED.line("FOOBAR"),
            &NOT_RECOGNIZED.line("FOOBAR"),
            &NOT_RECOGNIZED.line("FOOBAR"),
            &NOT_RECOGNIZED.line("MAIL\tFROM:<ANNE@EXAMPLE.COM>"),
        ],
    );
    let trace = session(
        plain(),
        &["BOGUS0", "BOGUS1", "BOGUS2", "BOGUS3", "LASTBOGUS", "NOOP"],
        &[
            &NOT_RECOGNIZED.line("BOGUS0"),
            &NOT_RECOGNIZED.line("BOGUS1"),
            &NOT_RECOGNIZED.line("BOGUS2"),
            &NOT_RECOGNIZED.line("BOGUS3"),
            TOO_MANY_UNRECOGNIZED.line,
        ],
    );
    assert!(trace.closed);
    let trace = session(
        plain(),
        &[
            "BOGUS1",
            "NOOP",
            "BOGUS2",
            "HELO example.org",
            "BOGUS3",
            "BOGUS4",
            "BOGUS5",
        ],
        &[
            &NOT_RECOGNIZED.line("BOGUS1"),
            OK.line,
            &NOT_RECOGNIZED.line("BOGUS2"),
            "250 mx.example",
            &NOT_RECOGNIZED.line("BOGUS3"),
            &NOT_RECOGNIZED.line("BOGUS4"),
            TOO_MANY_UNRECOGNIZED.line,
        ],
    );
    assert!(trace.closed);
    // Bare CR is not a line end, NUL is kept: both are echoed verbatim.
    transcript(
        plain(),
        &[
            b"NOOP\rNOOP\r\n",
            b"NOOP\x00\r\n",
            b"NOOP\r\n",
            b"HELO exa\x00mple.org\r\n",
        ],
        &[
            &NOT_RECOGNIZED.line("NOOP\rNOOP"),
            &NOT_RECOGNIZED.line("NOOP\x00"),
            OK.line,
            "250 mx.example",
        ],
    );
    let mut config = plain();
    config.bogus_limit = 1;
    let trace = session(config, &["FOO"], &[TOO_MANY_UNRECOGNIZED.line]);
    assert!(trace.closed);
}

#[test]
fn empty_and_blank_lines() {
    // golden empty_line, leading_space
    transcript(
        plain(),
        &[b"\r\n", b"\n", b"\r\r\n", b"   \r\n", b" NOOP\r\n"],
        &[
            BAD_SYNTAX.line,
            BAD_SYNTAX.line,
            BAD_SYNTAX.line,
            "500 Error: command \"\" not recognized",
            "500 Error: command \"\" not recognized",
        ],
    );
}

#[test]
fn bare_lf_ends_commands() {
    // golden bare_lf_commands
    transcript(
        plain(),
        &[
            b"NOOP\n",
            b"HELO example.org\n",
            b"MAIL FROM:<anne@example.com>\n",
        ],
        &[OK.line, "250 mx.example", OK.line],
    );
}

#[test]
fn non_ascii_command_is_bad_syntax() {
    // golden binary_command; the command word must be ASCII even with SMTPUTF8.
    for config in [plain(), sized()] {
        transcript(
            config,
            &[
                b"\x80FAIL\r\n",
                b"\x80 FAIL\r\n",
                "N\u{d6}OP\r\n".as_bytes(),
            ],
            &[BAD_SYNTAX.line; 3],
        );
    }
}

#[test]
fn non_ascii_argument_without_smtputf8() {
    // golden invalid_utf8_strict_ascii, invalid_utf8_addresses
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([STRICT_ASCII.line; 4]);
    // The argument is decoded before the command is looked up, so an unknown
    // command with a non-ASCII argument does not spend the bogus budget.
    replies.extend([STRICT_ASCII.line; 4]);
    let not_recognized = NOT_RECOGNIZED.line("FOO");
    replies.push(&not_recognized);
    transcript(
        plain(),
        &[
            b"EHLO example.com\r\n",
            b"MAIL FROM: <anne\xff@example.com>\r\n",
            "MAIL FROM: <ann\u{e9}@example.com>\r\n".as_bytes(),
            "NOOP \u{e9}\r\n".as_bytes(),
            b"VRFY \xff\r\n",
            b"FOO \xff\r\n",
            b"FOO \xff\r\n",
            b"FOO \xff\r\n",
            b"FOO \xff\r\n",
            b"FOO\r\n",
        ],
        &replies,
    );
    let mut replies = vec!["250 mx.example"];
    replies.extend(EHLO_SIZED);
    replies.extend([OK.line, OK.line, START_DATA.line, OK.line, OK.line]);
    let trace = transcript(
        sized(),
        &[
            b"HELO example.org\r\n",
            b"EHLO example.com\r\n",
            b"MAIL FROM:anne\xff@example.com\r\n",
            b"RCPT TO:bart\xff@example.com\r\n",
            b"DATA\r\n",
            b"Test mail\r\n.\r\n",
            "NOOP \u{e9}\r\n".as_bytes(),
        ],
        &replies,
    );
    assert_eq!(trace.messages.len(), 1);
}

#[test]
fn command_line_length_limits() {
    // golden command_length_boundary, helo_long_hostname, command_too_long,
    // mail_line_too_long, mail_command_limit_modes
    let noop = |n: usize| format!("NOOP {}", "x".repeat(n - 5));
    let mail = |n: usize| format!("MAIL FROM:<{}@x>", "m".repeat(n - 14));
    let rcpt = |n: usize| format!("RCPT TO:<{}@x>", "r".repeat(n - 12));
    assert_eq!(noop(512).len(), 512);
    assert_eq!(mail(548).len(), 548);
    assert_eq!(rcpt(512).len(), 512);
    // (Several short sessions: every-offset splitting is quadratic.)
    session(
        plain(),
        &[&noop(512), &noop(513)],
        &[OK.line, COMMAND_TOO_LONG.line],
    );
    session(
        plain(),
        &[&"a".repeat(513), "NOOP"],
        &[COMMAND_TOO_LONG.line, OK.line],
    );
    session(
        plain(),
        &[
            &format!("HELO {}", "h".repeat(507)),
            &format!("HELO {}", "h".repeat(508)),
        ],
        &["250 mx.example", COMMAND_TOO_LONG.line],
    );
    // SIZE (+26) and SMTPUTF8 (+10) raise the MAIL limit, in ESMTP sessions only.
    session(
        sized(),
        &["HELO example.org", &mail(513), &mail(512)],
        &["250 mx.example", COMMAND_TOO_LONG.line, OK.line],
    );
    let mut replies = EHLO_SIZED.to_vec();
    replies.extend([OK.line, OK.line, COMMAND_TOO_LONG.line]);
    session(
        sized(),
        &["EHLO example.com", &mail(548), "RSET", &mail(549)],
        &replies,
    );
    // RCPT keeps 512.
    let mut replies = EHLO_SIZED.to_vec();
    replies.extend([OK.line, OK.line, COMMAND_TOO_LONG.line]);
    session(
        sized(),
        &[
            "EHLO example.com",
            "MAIL FROM:<a@x>",
            &rcpt(512),
            &rcpt(513),
        ],
        &replies,
    );
    let mut replies = vec![
        "250-mx.example",
        "250-SIZE 33554432",
        "250-8BITMIME",
        "250 HELP",
    ];
    replies.extend([OK.line, OK.line, COMMAND_TOO_LONG.line]);
    session(
        library_defaults(),
        &["EHLO example.com", &mail(538), "RSET", &mail(539)],
        &replies,
    );
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([OK.line, OK.line, COMMAND_TOO_LONG.line]);
    session(
        plain(),
        &["EHLO example.com", &mail(512), "RSET", &mail(513)],
        &replies,
    );
}

#[test]
fn overlong_line_is_discarded_and_answered_once() {
    // golden command_way_too_long: 1 MB without CRLF, then more of the same line.
    let megabyte = b"a".repeat(1_000_000);
    let rest = [b"a".repeat(1001), b"\r\n".to_vec()].concat();
    let trace = transcript(
        plain(),
        &[&megabyte, &rest, b"NOOP\r\n"],
        &[COMMAND_TOO_LONG.line, OK.line],
    );
    assert!(trace.asks.iter().all(|a| matches!(a, Ask::Noop { .. })));
    // An overlong line and the next command in one piece.
    let line = [
        b"MAIL FROM:<".to_vec(),
        b"m".repeat(2000),
        b">\r\nNOOP\r\n".to_vec(),
    ]
    .concat();
    transcript(
        plain(),
        &[b"HELO example.org\r\n", &line],
        &["250 mx.example", COMMAND_TOO_LONG.line, OK.line],
    );
    // An unfinished overlong line at peer close is dropped without a reply.
    let closing = Script {
        peer_close: true,
        ..Script::new(plain())
    };
    let trace = closing.transcript(&[&b"x".repeat(5000)], &[]);
    assert!(trace.closed);
}

#[test]
fn line_length_limit_boundary() {
    // The raw line limit counts bytes before the LF (asyncio's readuntil limit).
    let mut config = plain();
    config.line_length_limit = 20;
    let ok = format!("NOOP {}\r\n", "x".repeat(14));
    let long = format!("NOOP {}\r\n", "x".repeat(15));
    assert_eq!(ok.find('\n'), Some(20));
    transcript(
        config,
        &[ok.as_bytes(), long.as_bytes(), long.as_bytes(), b"NOOP\r\n"],
        &[
            OK.line,
            COMMAND_TOO_LONG.line,
            COMMAND_TOO_LONG.line,
            OK.line,
        ],
    );
}

#[test]
fn call_limits() {
    // spec 2.2 step 9 / 3.6: counted per command name, failed and unknown commands
    // included; the call after the budget gets 421 and the connection closes.
    let limits = |entries: &[(&str, u32)]| {
        plain().with_call_limits(Some(CallLimits::from_map(entries.iter().copied())))
    };
    let trace = session(
        limits(&[("NOOP", 3)]),
        &["NOOP", "noop", "NoOp x", "VRFY a@b", "NOOP", "NOOP"],
        &[
            OK.line,
            OK.line,
            OK.line,
            CANNOT_VRFY.line,
            &SENT_TOO_MANY_TIMES.line("NOOP"),
        ],
    );
    assert!(trace.closed);
    let trace = session(
        limits(&[("HELO", 1)]),
        &["HELO", "HELO example.org"],
        &[
            "501 Syntax: HELO hostname",
            &SENT_TOO_MANY_TIMES.line("HELO"),
        ],
    );
    assert!(trace.closed);
    let trace = session(
        limits(&[("*", 1)]),
        &["NOOP", "FOO", "FOO"],
        &[
            OK.line,
            &NOT_RECOGNIZED.line("FOO"),
            &SENT_TOO_MANY_TIMES.line("FOO"),
        ],
    );
    assert!(trace.closed);
    let trace = session(
        plain().with_call_limits(Some(CallLimits::uniform(2))),
        &["RSET", "RSET", "NOOP", "RSET"],
        &[OK.line, OK.line, OK.line, &SENT_TOO_MANY_TIMES.line("RSET")],
    );
    assert!(trace.closed);
    // Pipelined input after the 421 is not answered.
    transcript(
        limits(&[("NOOP", 1)]),
        &[b"NOOP\r\nNOOP\r\nQUIT\r\n"],
        &[OK.line, &SENT_TOO_MANY_TIMES.line("NOOP")],
    );
}

#[test]
fn idle_timeout() {
    // Beyond aiosmtpd (which closes silently): a 421 is sent before closing.
    let mut driver = Driver::new(plain());
    let start = driver.now;
    let deadline = driver.conn.poll_timeout().expect("a deadline");
    assert_eq!(deadline, start + Duration::from_secs(300));
    driver.timeout(deadline - Duration::from_millis(1));
    assert_eq!(
        driver.trace.out,
        GREETING.as_bytes(),
        "nothing before the deadline"
    );
    assert!(!driver.trace.closed);
    // A recognised command re-arms the timer ...
    driver.now = start + Duration::from_secs(100);
    driver.feed(b"NOOP\r\n");
    assert_eq!(
        driver.conn.poll_timeout(),
        Some(start + Duration::from_secs(400))
    );
    // ... unknown commands and rejected lines do not (spec 3.5).
    driver.now = start + Duration::from_secs(150);
    driver.feed(b"FOO\r\n\r\n\xff\r\n");
    assert_eq!(
        driver.conn.poll_timeout(),
        Some(start + Duration::from_secs(400))
    );
    driver.timeout(start + Duration::from_secs(399));
    assert!(!driver.trace.closed);
    let before = driver.trace.out.len();
    driver.timeout(start + Duration::from_secs(400));
    let tail = &driver.trace.out[before..];
    assert!(tail.starts_with(b"421 "), "got {}", show(tail, 200));
    assert!(tail.ends_with(b"\r\n") && find(tail, b"\r\n") == Some(tail.len() - 2));
    assert!(driver.trace.closed);
    assert_eq!(driver.conn.poll_timeout(), None);
    // The configured timeout is used.
    let driver = Driver::new(plain().with_timeout(Duration::from_secs(5)));
    assert_eq!(
        driver.conn.poll_timeout(),
        Some(driver.now + Duration::from_secs(5))
    );
}

#[test]
fn no_timeout_while_a_hook_is_pending() {
    let now = Instant::now();
    let mut conn = Connection::new(Arc::new(plain()), Peer::Unknown, now);
    conn.handle_input(now, b"NOOP\r\n").unwrap();
    assert!(matches!(conn.poll_action(), Some(Action::Hook(_))));
    assert_eq!(conn.poll_timeout(), None);
    conn.handle_timeout(now + Duration::from_secs(3600));
    assert!(
        matches!(conn.poll_action(), Some(Action::Hook(_))),
        "still asking"
    );
    conn.handle_decision(now, Decision::Outcome(Outcome::Default))
        .unwrap();
    match conn.poll_action() {
        Some(Action::Send(bytes)) => assert_eq!(bytes, format!("{GREETING}250 OK\r\n").as_bytes()),
        other => panic!("expected Send, got {other:?}"),
    }
    assert!(conn.poll_action().is_none());
    assert!(conn.poll_timeout().is_some());
}

#[test]
fn unfinished_lines_are_held_within_the_line_limit() {
    let now = Instant::now();
    let config = base();
    let limit = config.line_length_limit;
    let mut conn = Connection::new(Arc::new(config), Peer::Unknown, now);
    while conn.poll_action().is_some() {}
    // A never-ending command line, fed in pieces of every size: the engine keeps
    // at most one line's worth, whatever arrives.
    for size in [1, 7, 500, 4096, 65536] {
        conn.handle_input(now, &vec![b'a'; size]).unwrap();
        assert!(conn.buffered_input() <= limit, "{size}");
    }
    conn.handle_input(now, b"\r\n").unwrap();
    assert_eq!(conn.buffered_input(), 0);
    let mut out = Vec::new();
    while let Some(action) = conn.poll_action() {
        if let Action::Send(b) = action {
            out.extend_from_slice(b);
        }
    }
    assert_eq!(out, b"500 Command line too long\r\n");
    // Short pieces of a line that ends are held, then consumed.
    conn.handle_input(now, b"NO").unwrap();
    assert_eq!(conn.buffered_input(), 2);
}
