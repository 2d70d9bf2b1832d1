//! `bdat`: CHUNKING's framing against a model. The input is a list of
//! operations (an envelope, RSET, a BDAT chunk whose bytes are fuzz input,
//! possibly LAST, DATA with a small body, a BDAT whose size is not a number);
//! the model says which reply each gets and which messages are delivered
//! (RFC 3030: a refused chunk is still read to its end; the size limit ends
//! the transaction; DATA after BDAT is refused; a malformed size closes). The
//! same bytes are fed whole, byte by byte and in chunks of input-chosen sizes:
//! the reply codes and the messages must be the model's every time.

use std::sync::Arc;
use std::time::Instant;

use smtpkit::proto::{Action, Ask, Config, Connection, Decision, Extensions, Outcome, Peer};

use super::harness::Source;

/// What the model expects: each reply's code, each message's body, and
/// whether the connection closes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expected {
    pub codes: Vec<u16>,
    pub messages: Vec<Vec<u8>>,
    pub closed: bool,
}

/// Builds the wire bytes and the model's expectation from the fuzz input.
pub fn script(src: &mut Source<'_>, size_limit: Option<usize>) -> (Vec<u8>, Expected) {
    let mut wire = b"EHLO x\r\n".to_vec();
    let mut want = Expected {
        codes: vec![250],
        ..Expected::default()
    };
    let (mut mail, mut rcpt) = (false, false);
    let mut chunked: Option<usize> = None;
    let mut body = Vec::new();
    let reset =
        |mail: &mut bool, rcpt: &mut bool, chunked: &mut Option<usize>, body: &mut Vec<u8>| {
            *mail = false;
            *rcpt = false;
            *chunked = None;
            body.clear();
        };
    for _ in 0..32 {
        if src.is_empty() {
            break;
        }
        match src.below(8) {
            0 | 1 => {
                wire.extend_from_slice(b"RSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
                want.codes.extend([250, 250, 250]);
                reset(&mut mail, &mut rcpt, &mut chunked, &mut body);
                (mail, rcpt) = (true, true);
            }
            2 => {
                wire.extend_from_slice(b"RSET\r\n");
                want.codes.push(250);
                reset(&mut mail, &mut rcpt, &mut chunked, &mut body);
            }
            3 => {
                wire.extend_from_slice(b"DATA\r\n");
                if !mail || chunked.is_some() {
                    // Need MAIL, or DATA after BDAT.
                    want.codes.push(503);
                } else {
                    wire.extend_from_slice(b"x\r\n.\r\n");
                    if size_limit.is_some_and(|l| l < 3) {
                        want.codes.extend([354, 552]);
                    } else {
                        want.codes.extend([354, 250]);
                        want.messages.push(b"x\r\n".to_vec());
                    }
                    reset(&mut mail, &mut rcpt, &mut chunked, &mut body);
                }
            }
            4 => {
                wire.extend_from_slice(b"BDAT 12x LAST\r\n");
                want.codes.push(501);
                want.closed = true;
                break;
            }
            _ => {
                let chunk = src.blob(40);
                let last = src.byte() & 1 == 1;
                let head = format!(
                    "BDAT {}{}\r\n",
                    chunk.len(),
                    if last { " LAST" } else { "" }
                );
                wire.extend_from_slice(head.as_bytes());
                wire.extend_from_slice(chunk);
                let total = chunked.unwrap_or(0) + chunk.len();
                if !mail || !rcpt {
                    want.codes.push(503);
                } else if size_limit.is_some_and(|l| total > l) {
                    want.codes.push(552);
                    reset(&mut mail, &mut rcpt, &mut chunked, &mut body);
                } else {
                    chunked = Some(total);
                    body.extend_from_slice(chunk);
                    want.codes.push(250);
                    if last {
                        want.messages.push(std::mem::take(&mut body));
                        reset(&mut mail, &mut rcpt, &mut chunked, &mut body);
                    }
                }
            }
        }
    }
    (wire, want)
}

/// Feeds `wire` in pieces of `sizes` (cycled) and reports what happened.
pub fn drive(config: &Arc<Config>, wire: &[u8], sizes: &[usize]) -> Expected {
    let now = Instant::now();
    let mut conn = Connection::new(config.clone(), Peer::Unknown, now);
    let mut out = Vec::new();
    let mut got = Expected::default();
    let mut drain = |conn: &mut Connection, got: &mut Expected| {
        for _ in 0..100_000 {
            match conn.poll_action() {
                None => return,
                Some(Action::Send(bytes)) => out.extend_from_slice(bytes),
                Some(Action::MessageStart(_) | Action::MessageAbort(_)) => {}
                Some(Action::Body(chunk)) => {
                    // As the default handler: into the envelope, which RSET
                    // and the end of a transaction empty.
                    let content = &mut chunk.envelope.content;
                    assert_eq!(chunk.offset, content.len(), "body chunk offsets");
                    content.extend_from_slice(chunk.chunk);
                }
                Some(Action::Hook(call)) => {
                    if matches!(call.ask, Ask::Data) {
                        got.messages.push(call.envelope.content.clone());
                    }
                    conn.handle_decision(now, Decision::Outcome(Outcome::Default))
                        .expect("a pending hook");
                }
                Some(Action::Close) => {
                    got.closed = true;
                    return;
                }
                Some(other) => panic!("unexpected action {other:?}"),
            }
        }
        panic!("the engine never runs out of actions");
    };
    drain(&mut conn, &mut got);
    let mut fed = 0;
    let mut i = 0;
    while fed < wire.len() && !got.closed {
        let n = sizes[i % sizes.len()].max(1);
        i += 1;
        let end = (fed + n).min(wire.len());
        conn.handle_input(now, &wire[fed..end])
            .expect("open until Close");
        fed = end;
        drain(&mut conn, &mut got);
    }
    let text = String::from_utf8_lossy(&out);
    for line in text.split_terminator("\r\n") {
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if line.as_bytes().get(3) != Some(&b'-') {
            got.codes.push(code);
        }
    }
    got.codes.remove(0); // the greeting
    got
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut src = Source::new(data);
    let size_limit = match src.below(3) {
        0 => None,
        1 => Some(usize::from(src.byte())),
        _ => Some(33_554_432),
    };
    let seed = src.byte();
    let config = Arc::new(
        Config::new("mx.example")
            .with_data_size_limit(size_limit)
            .with_extensions(Extensions {
                chunking: true,
                pipelining: true,
                ..Extensions::NONE
            }),
    );
    let (wire, want) = script(&mut src, config.data_size_limit);
    for sizes in [
        vec![wire.len()],
        vec![1],
        vec![1 + usize::from(seed % 13), 3, 1 + usize::from(seed / 13)],
    ] {
        let got = drive(&config, &wire, &sizes);
        assert_eq!(
            got,
            want,
            "pieces {sizes:?} of {:?}",
            String::from_utf8_lossy(&wire)
        );
    }
}
