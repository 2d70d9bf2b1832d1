//! DATA: the body, dot-unstuffing, line and size limits, smuggling.

use super::harness::*;
use crate::proto::replies::{
    BYE, COMMAND_TOO_LONG, LINE_TOO_LONG, NEED_MAIL, NEED_RCPT, OK, START_DATA, TOO_MUCH_DATA,
};

#[test]
fn data_with_argument() {
    // golden data_with_arg
    session(
        plain(),
        &[
            "HELO example.org",
            "MAIL FROM: <anne@example.com>",
            "RCPT TO: <anne@example.com>",
            "DATA FOOBAR",
            "DATA",
        ],
        &[
            "250 mx.example",
            OK.line,
            OK.line,
            "501 Syntax: DATA",
            START_DATA.line,
        ],
    );
}

#[test]
fn data_delivers_message_and_resets_envelope() {
    // golden data_basic, data_state_reset_after_message
    let trace = transcript(
        plain(),
        &[
            b"HELO example.org\r\n",
            b"MAIL FROM:<anne@example.com>\r\n",
            b"RCPT TO:<bart@example.com>\r\n",
            b"RCPT TO:<cate@example.com>\r\n",
            b"DATA\r\n",
            MSG,
            b"RCPT TO:<bart@example.com>\r\n",
            b"DATA\r\n",
            b"MAIL FROM:<dave@example.com>\r\n",
            b"QUIT\r\n",
        ],
        &[
            "250 mx.example",
            OK.line,
            OK.line,
            OK.line,
            START_DATA.line,
            OK.line,
            NEED_MAIL.line,
            NEED_RCPT.line,
            OK.line,
            BYE.line,
        ],
    );
    assert!(trace.closed);
    assert_eq!(trace.messages.len(), 1);
    let message = &trace.messages[0];
    assert_eq!(message.mail_from.as_deref(), Some("anne@example.com"));
    assert_eq!(message.rcpt_tos, ["bart@example.com", "cate@example.com"]);
    assert_eq!(message.content, &MSG[..MSG.len() - 3]);
}

#[test]
fn data_dot_unstuffing_and_line_endings() {
    // golden data_dot_stuffing, data_empty_message, data_mixed_line_endings,
    // data_dot_space_is_not_end, data_nul_and_8bit
    let head: [&[u8]; 4] = [
        b"HELO example.org\r\n",
        b"MAIL FROM:<anne@example.com>\r\n",
        b"RCPT TO:<bart@example.com>\r\n",
        b"DATA\r\n",
    ];
    let ok = ["250 mx.example", OK.line, OK.line, START_DATA.line, OK.line];
    let cases: [(&[u8], &[u8]); 6] = [
        (
            b"Subject: dots\r\n\r\n..leading dot\r\n..\r\n...\r\n..x.\r\na.\r\n.x\r\n\r\n.\r\n",
            // Every leading dot goes, not only doubled ones.
            b"Subject: dots\r\n\r\n.leading dot\r\n.\r\n..\r\n.x.\r\na.\r\nx\r\n\r\n",
        ),
        (b".\r\n", b""),
        (
            b"test\r\nmail\rdelimiters\nsaved\r\n.\r\n",
            b"test\r\nmail\rdelimiters\nsaved\r\n",
        ),
        (b"Subject: x\r\n\r\n. \r\n.\r\n", b"Subject: x\r\n\r\n \r\n"),
        (
            b"nul\x00byte\r\ncaf\xc3\xa9\r\n\xff\xfe invalid utf-8\r\n.\r\n",
            b"nul\x00byte\r\ncaf\xc3\xa9\r\n\xff\xfe invalid utf-8\r\n",
        ),
        (b"no final newline\r\n.\r\n", b"no final newline\r\n"),
    ];
    for (body, content) in cases {
        let mut input = head.to_vec();
        input.push(body);
        let trace = transcript(plain(), &input, &ok);
        assert_eq!(trace.messages.len(), 1);
        assert_eq!(
            trace.messages[0].content,
            content,
            "content for {}",
            show(body, 200)
        );
    }
}

#[test]
fn data_reply_is_delayed_until_the_final_dot() {
    // golden data_dot_space_is_not_end, data_long_line_delayed_error,
    // data_oversize_delayed_error
    let mut driver = Driver::new(sized());
    driver.feed(b"EHLO example.com\r\nMAIL FROM: <anne@example.com>\r\n");
    driver.feed(b"RCPT TO: <bruce@example.com>\r\nDATA\r\n");
    let before = driver.trace.out.len();
    driver.feed(b"Subject: x\r\n\r\n. \r\n");
    driver.feed(&b"z".repeat(1004));
    driver.feed(b"\r\n");
    driver.feed(&b"z".repeat(4000));
    driver.feed(b"\r\n");
    assert_eq!(
        driver.trace.out.len(),
        before,
        "nothing before the final dot"
    );
    driver.feed(b".\r\n");
    assert_eq!(
        &driver.trace.out[before..],
        format!("{}\r\n", LINE_TOO_LONG.line).as_bytes()
    );
    assert!(driver.trace.messages.is_empty());
    // The same input as one transcript, for every split.
    let mut replies = EHLO_SIZED.to_vec();
    replies.extend([OK.line, OK.line, START_DATA.line, LINE_TOO_LONG.line]);
    let long = [b"z".repeat(1004), b"\r\n".to_vec(), b"z".repeat(4000)].concat();
    transcript(
        sized(),
        &[
            b"EHLO example.com\r\nMAIL FROM: <anne@example.com>\r\n",
            b"RCPT TO: <bruce@example.com>\r\nDATA\r\n",
            b"Subject: x\r\n\r\n. \r\n",
            &long,
            b"\r\n.\r\n",
        ],
        &replies,
    );
}

#[test]
fn data_line_length_limit() {
    // golden data_line_length_boundary, data_long_lines: 999 octets + CRLF is fine,
    // 1000 + CRLF is too long; the session goes on.
    let line_999 = [b"x".repeat(999), b"\r\n.\r\n".to_vec()].concat();
    let line_1000 = [b"x".repeat(1000), b"\r\n.\r\n".to_vec()].concat();
    let trace = transcript(
        plain(),
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
            &line_999,
            b"MAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
            &line_1000,
            b"NOOP\r\nRCPT TO:<bart@example.com>\r\nMAIL FROM:<x@example.com>\r\n",
        ],
        &[
            "250 mx.example",
            OK.line,
            OK.line,
            START_DATA.line,
            OK.line,
            OK.line,
            OK.line,
            START_DATA.line,
            LINE_TOO_LONG.line,
            OK.line,
            NEED_MAIL.line,
            OK.line,
        ],
    );
    assert_eq!(trace.messages.len(), 1);
    assert_eq!(trace.messages[0].content.len(), 1001);
}

#[test]
fn data_size_limit_counts_wire_bytes() {
    let config = plain().with_data_size_limit(Some(12));
    let head: &[u8] = b"EHLO example.com\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n";
    let ehlo = [
        "250-mx.example",
        "250-SIZE 12",
        "250-8BITMIME",
        "250 HELP",
        OK.line,
        OK.line,
        START_DATA.line,
    ];
    let cases: [(&[u8], Option<&[u8]>); 5] = [
        // Exactly 12 bytes on the wire.
        (b"0123456789\r\n.\r\n", Some(b"0123456789\r\n")),
        (b"01234567890\r\n.\r\n", None),
        // The stuffing dot counts: 12 wire bytes, 11 kept.
        (b".123456789\r\n.\r\n", Some(b"123456789\r\n")),
        // 13 wire bytes, only 12 kept: still too much.
        (b".1234567890\r\n.\r\n", None),
        (b"0123\r\n0123\r\n.\r\n", Some(b"0123\r\n0123\r\n")),
    ];
    for (body, content) in cases {
        let mut replies = ehlo.to_vec();
        replies.push(if content.is_some() {
            OK.line
        } else {
            TOO_MUCH_DATA.line
        });
        // After a refused message the envelope is empty again.
        replies.push(NEED_MAIL.line);
        let trace = transcript(
            config.clone(),
            &[head, body, b"RCPT TO:<bart@example.com>\r\n"],
            &replies,
        );
        match content {
            Some(content) => assert_eq!(trace.messages[0].content, content),
            None => assert!(
                trace.messages.is_empty(),
                "no Data hook for a refused message"
            ),
        }
    }
}

#[test]
fn data_first_error_wins() {
    // golden data_too_much_then_too_long, data_too_long_then_too_much,
    // data_exactly_at_limit, data_one_over_limit, data_oversize_then_continue
    let head: &[u8] = b"EHLO example.com\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n";
    let line = |byte: u8, len: usize| [vec![byte; len], b"\r\n".to_vec()].concat();
    let too_much_then_long = [
        line(b'z', 76).repeat(60),
        line(b'a', 1100).repeat(2),
        b".\r\n".to_vec(),
    ]
    .concat();
    let long_then_too_much = [line(b'z', 1999).repeat(3), b".\r\n".to_vec()].concat();
    // One line over 1000 octets that also crosses SIZE (4096): aiosmtpd reads
    // the line before counting its size, so it is too long, not too much.
    let long_and_too_much = [line(b'z', 76), line(b'y', 5000), b".\r\n".to_vec()].concat();
    for (body, reply) in [
        (long_and_too_much, LINE_TOO_LONG.line),
        (too_much_then_long, TOO_MUCH_DATA.line),
        (long_then_too_much, LINE_TOO_LONG.line),
        (sized_msg(4096), OK.line),
        (sized_msg(4097), TOO_MUCH_DATA.line),
    ] {
        let mut replies = EHLO_SIZED.to_vec();
        replies.extend([OK.line, OK.line, START_DATA.line, reply]);
        replies.extend([NEED_MAIL.line, OK.line, OK.line, START_DATA.line, OK.line]);
        let trace = transcript(
            sized(),
            &[
                head,
                &body,
                b"RCPT TO:<bart@example.com>\r\nMAIL FROM:<anne@example.com>\r\n",
                b"RCPT TO:<bart@example.com>\r\nDATA\r\n",
                MSG,
            ],
            &replies,
        );
        assert_eq!(
            trace.messages.last().unwrap().content,
            &MSG[..MSG.len() - 3]
        );
    }
}

#[test]
fn smtp_smuggling_variants_never_end_data() {
    // CVE-2024-27305 / golden data_smuggling_*: only CRLF.CRLF ends the data.
    let variants: [(&[u8], &[u8]); 8] = [
        (b"\n.\n", b"\n.\n"),
        (b"\n.\r\n", b"\n.\r\n"),
        (b"\r.\r\n", b"\r.\r\n"),
        // A line starting with "." loses the dot, even when a bare CR/LF follows.
        (b"\r\n.\r", b"\r\n\r"),
        (b"\r\n.\n", b"\r\n\n"),
        (b"\r\n.\x00\r\n", b"\r\n\x00\r\n"),
        (b"\r\n\x00.\r\n", b"\r\n\x00.\r\n"),
        (b"\r\n.\r\r\n", b"\r\n\r\r\n"),
    ];
    let smuggled: &[u8] =
        b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n";
    for (variant, kept) in variants {
        let body = [
            b"Subject: smuggle\r\n\r\nTesting",
            variant,
            smuggled,
            b".\r\n",
        ]
        .concat();
        let trace = transcript(
            plain(),
            &[
                b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
                &body,
                b"QUIT\r\n",
            ],
            &["250 mx.example", OK.line, OK.line, START_DATA.line, OK.line, BYE.line],
        );
        assert_eq!(
            trace.messages.len(),
            1,
            "one message for {}",
            show(variant, 40)
        );
        let message = &trace.messages[0];
        assert_eq!(message.mail_from.as_deref(), Some("anne@example.com"));
        assert_eq!(message.rcpt_tos, ["bart@example.com"]);
        let content = [b"Subject: smuggle\r\n\r\nTesting", kept, smuggled].concat();
        assert_eq!(
            message.content,
            content,
            "content for {}",
            show(variant, 40)
        );
        let mails = mail_ask(&trace);
        assert_eq!(mails.len(), 1, "no injected MAIL for {}", show(variant, 40));
    }
}

/// corpus.py's `sized_msg(n)`: DATA of exactly `n` wire bytes plus the final dot.
fn sized_msg(n: usize) -> Vec<u8> {
    let mut data = Vec::new();
    let mut left = n as i64;
    while left > 0 {
        let mut take = if left > 2 { (left - 2).min(78) } else { left };
        if matches!(left - (take + 2), 1 | 2) {
            take -= 3;
        }
        let take = take.max(0);
        data.extend(std::iter::repeat_n(b's', take as usize));
        data.extend_from_slice(b"\r\n");
        left -= take + 2;
    }
    assert_eq!(data.len(), n);
    data.extend_from_slice(b".\r\n");
    data
}

/// An idle connection holds about what a fresh one does, whatever it received
/// before: a 64 KiB message in one write, the same in small pieces, or 10,000
/// pipelined commands.
#[test]
fn an_idle_connection_gives_large_buffers_back() {
    const LIMIT: usize = 32 << 10;
    let fresh = Driver::new(library_defaults()).conn.buffer_capacity();
    assert!(fresh <= 1024, "a fresh connection holds {fresh} bytes");

    let mut session = b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n".to_vec();
    let line = [b"x".repeat(98).as_slice(), b"\r\n"].concat();
    for _ in 0..655 {
        session.extend_from_slice(&line);
    }
    session.extend_from_slice(b".\r\n");
    for piece in [session.len(), 1000, 7] {
        let mut driver = Driver::new(library_defaults());
        for chunk in session.chunks(piece) {
            driver.feed(chunk);
        }
        assert_eq!(driver.trace.messages.len(), 1, "pieces of {piece}");
        assert_eq!(driver.trace.messages[0].content.len(), 65_500);
        let held = driver.conn.buffer_capacity();
        assert!(
            held <= LIMIT,
            "after a 64 KiB message in pieces of {piece}: {held} bytes held"
        );
        // A second, small message still works with the freed buffers.
        driver.feed(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nsmall\r\n.\r\n");
        assert_eq!(driver.trace.messages[1].content, b"small\r\n");
        assert!(driver.conn.buffer_capacity() <= LIMIT);
    }

    let mut driver = Driver::new(library_defaults());
    driver.feed("NOOP\r\n".repeat(10_000).as_bytes());
    let held = driver.conn.buffer_capacity();
    assert!(held <= LIMIT, "after 10,000 NOOPs: {held} bytes held");
}

#[test]
fn the_data_line_limit_can_be_raised_or_turned_off() {
    let head: &[u8] = b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
    let body = [vec![b'x'; 5000], b"\r\n.\r\n".to_vec()].concat();
    let replies = |last| ["250 mx.example", OK.line, OK.line, START_DATA.line, last];
    transcript(plain(), &[head, &body], &replies(LINE_TOO_LONG.line));
    transcript(
        plain().with_data_line_length_limit(Some(5002)),
        &[head, &body],
        &replies(OK.line),
    );
    transcript(
        plain().with_data_line_length_limit(Some(5001)),
        &[head, &body],
        &replies(LINE_TOO_LONG.line),
    );
    let trace = transcript(
        plain().with_data_line_length_limit(None),
        &[head, &body],
        &replies(OK.line),
    );
    assert_eq!(trace.messages[0].content.len(), 5002);
    // Command lines keep their own limit.
    let long_noop = format!("NOOP {}\r\n", "x".repeat(2000));
    transcript(
        plain().with_data_line_length_limit(None),
        &[long_noop.as_bytes()],
        &[COMMAND_TOO_LONG.line],
    );
}
