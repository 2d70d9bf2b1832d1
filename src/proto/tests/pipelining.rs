//! Pipelined input and the peer closing its side.

use super::harness::*;
use crate::proto::Action;
use crate::proto::replies::{BYE, MALFORMED_ADDRESS, NOT_RECOGNIZED, OK, START_DATA};

#[test]
fn pipelined_commands_are_answered_in_order_in_one_send() {
    // golden pipelined_envelope, pipelined_with_errors, pipelined_whole_session
    let mut driver = Driver::new(plain());
    assert_eq!(driver.trace.sends, 1);
    driver.feed(
        b"EHLO example.com\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<@example.com>\r\n\
          RCPT TO:<bart@example.com>\r\nFOO\r\nNOOP\r\nDATA\r\n",
    );
    assert_eq!(driver.trace.sends, 2, "one Send for the whole pipeline");
    let mut expected = String::from(GREETING);
    for line in EHLO_PLAIN.into_iter().chain([
        OK.line,
        MALFORMED_ADDRESS.line,
        OK.line,
        &NOT_RECOGNIZED.line("FOO"),
        OK.line,
        START_DATA.line,
    ]) {
        expected.push_str(line);
        expected.push_str("\r\n");
    }
    assert_eq!(String::from_utf8_lossy(&driver.trace.out), expected);

    let whole = [
        b"EHLO example.com\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n".as_slice(),
        MSG,
        b"QUIT\r\n",
    ]
    .concat();
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([OK.line, OK.line, START_DATA.line, OK.line, BYE.line]);
    let trace = transcript(plain(), &[&whole], &replies);
    assert_eq!(trace.sends, 2);
    assert!(trace.closed);
    // Nothing is answered after QUIT (golden pipelined_after_quit).
    let trace = transcript(plain(), &[b"QUIT\r\nNOOP\r\n"], &[BYE.line]);
    assert!(trace.closed);
    // The command after the final dot, in the same piece (golden
    // data_pipelined_next_command).
    transcript(
        plain(),
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\nDATA\r\n",
            &[MSG, b"MAIL FROM:<next@example.com>\r\n"].concat(),
        ],
        &["250 mx.example", OK.line, OK.line, START_DATA.line, OK.line, OK.line],
    );
}

#[test]
fn many_recipients() {
    // golden many_recipients_100 (aiosmtpd has no recipient limit); short
    // addresses keep splitting at every offset quick.
    let rcpts: String = (0..100)
        .map(|i| format!("RCPT TO:<r{i:02}@x>\r\n"))
        .collect();
    let mut replies = EHLO_PLAIN.to_vec();
    replies.extend([OK.line; 101]);
    replies.extend([START_DATA.line, OK.line]);
    // A hundred hook calls per run: split at a sample of offsets only.
    let script = Script {
        every_offset_max: 0,
        ..Script::new(plain())
    };
    let trace = script.transcript(
        &[
            b"EHLO x\r\nMAIL FROM:<a@x>\r\n",
            rcpts.as_bytes(),
            b"DATA\r\n",
            MSG,
        ],
        &replies,
    );
    assert_eq!(trace.messages[0].rcpt_tos.len(), 100);
    assert_eq!(trace.messages[0].rcpt_tos[99], "r99@x");
}

#[test]
fn peer_close_answers_buffered_complete_commands() {
    // Beyond aiosmtpd (which drops them, spec 3.7): complete commands received
    // before the peer closed are answered, then the connection closes; a partial
    // command is dropped.
    let mut driver = Driver::new(plain());
    driver.feed_undrained(b"HELO example.org\r\nNOOP\r\nNOOP");
    driver.peer_closed();
    assert_replies(&driver.trace.out, &["250 mx.example", OK.line]);
    assert!(driver.trace.closed);
    assert_eq!(driver.trace.asks.len(), 2);
    // Peer close while a hook call is pending: the hook is still answered.
    let mut driver = Driver::new(plain());
    driver.feed_undrained(b"NOOP\r\nRSET\r\n");
    assert!(matches!(driver.conn.poll_action(), Some(Action::Hook(_))));
    driver.peer_closed();
    assert_replies(&driver.trace.out, &[OK.line, OK.line]);
    assert!(driver.trace.closed);
    // A pipelined QUIT before the close.
    let mut driver = Driver::new(plain());
    driver.feed_undrained(b"NOOP\r\nQUIT\r\nNOOP\r\n");
    driver.peer_closed();
    assert_replies(&driver.trace.out, &[OK.line, BYE.line]);
    // The same, drained as input arrives, for every split.
    let closing = Script {
        peer_close: true,
        ..Script::new(plain())
    };
    let trace = closing.transcript(
        &[b"HELO example.org\r\nNOOP\r\nNOOP"],
        &["250 mx.example", OK.line],
    );
    assert!(trace.closed);
    // Peer close in the middle of DATA: no message, just Close.
    let trace = closing.transcript(
        &[
            b"HELO example.org\r\nMAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\n",
            b"DATA\r\nFrom: <anne@example.com>\r\n\r\nunfinished\r\n.",
        ],
        &["250 mx.example", OK.line, OK.line, START_DATA.line],
    );
    assert!(trace.messages.is_empty());
    assert!(trace.closed);
}
