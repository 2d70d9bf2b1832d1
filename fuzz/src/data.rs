//! `data`: [`DataDecoder`] against a reference model, fed whole, byte by byte and
//! in chunks of input-chosen sizes; and the same body through a whole
//! [`Connection`] after `HELO`/`MAIL`/`RCPT`/`DATA`: the body chunks it hands out
//! must be the model's unstuffed content, and its DATA verdict the model's.
//!
//! The model reads the body byte by byte: only `CRLF.CRLF` ends it (a `.CRLF` at
//! the very start too), a line's leading dot is dropped, every wire byte before
//! the end line counts towards the size limit and towards its line (CRLF
//! included). As in aiosmtpd, which reads a whole line before it counts its
//! size: a line over the line limit is `LineTooLong` the moment it crosses it,
//! and the size limit is checked when a line ends, so a long line that also
//! crosses the size limit is `LineTooLong`; the first error stays. On an error
//! the output is empty.
//!
//! Input layout: size-limit selector, line-limit selector, split seed, then the
//! body, whose bytes 0xF0..=0xFF stand for `\r\n`, `.`, `\r`, `\n` and
//! `\r\n.\r\n`-like pieces (everything else is itself). `\r\n.\r\n` is appended so
//! every body ends.

use std::sync::Arc;
use std::time::Instant;

use smtpkit::proto::{Action, Config, Connection, DataDecoder, DataError, Decision, Outcome, Peer};

use super::harness::Source;

/// What the reference model (and the decoder) make of a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes up to and including the end line.
    pub consumed: usize,
    /// The unstuffed content (empty on an error).
    pub out: Vec<u8>,
    /// The first limit exceeded.
    pub error: Option<DataError>,
    /// Wire bytes counted (the end line excluded).
    pub total: usize,
    /// Complete lines before the end line.
    pub lines: u64,
}

/// The reference model. `None` when `input` has no end line.
pub fn reference(input: &[u8], size: Option<usize>, line_limit: usize) -> Option<Decoded> {
    let mut d = Decoded {
        consumed: 0,
        out: Vec::new(),
        error: None,
        total: 0,
        lines: 0,
    };
    let mut line_len = 0usize;
    let mut pos = 0;
    let count = |d: &mut Decoded, line_len: &mut usize| {
        d.total += 1;
        *line_len += 1;
        if d.error.is_none() && *line_len > line_limit {
            d.error = Some(DataError::LineTooLong);
        }
    };
    loop {
        // At the start of a line.
        let rest = &input[pos..];
        if rest.starts_with(b".\r\n") {
            d.consumed = pos + 3;
            if d.error.is_some() {
                d.out.clear();
            }
            return Some(d);
        }
        let end = rest.windows(2).position(|w| w == b"\r\n")? + 2;
        let line = &rest[..end];
        let content = if line[0] == b'.' {
            count(&mut d, &mut line_len);
            &line[1..]
        } else {
            line
        };
        for &b in content {
            count(&mut d, &mut line_len);
            d.out.push(b);
        }
        if d.error.is_none() && size.is_some_and(|s| d.total > s) {
            d.error = Some(DataError::TooMuchData);
        }
        line_len = 0;
        d.lines += 1;
        pos += end;
    }
}

/// Feeds `input` to a decoder in chunks of the given sizes (cycled), offering the
/// unconsumed bytes again each time, and checks that at most two bytes are ever
/// held back. `None` if it never finished.
pub fn decode_in_chunks(
    input: &[u8],
    size: Option<usize>,
    line_limit: usize,
    sizes: &[usize],
) -> Option<Decoded> {
    let mut decoder = DataDecoder::new(size, line_limit);
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut consumed = 0;
    let mut i = 0;
    while fed < input.len() {
        let n = sizes[i % sizes.len()].max(1);
        i += 1;
        let end = (fed + n).min(input.len());
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        let p = decoder.decode(&buf, &mut out);
        assert!(p.consumed <= buf.len(), "consumed more than offered");
        consumed += p.consumed;
        buf.drain(..p.consumed);
        if p.finished {
            assert_eq!(decoder.total() + 3, consumed, "total() after the end");
            return Some(Decoded {
                consumed,
                out,
                error: decoder.error(),
                total: decoder.total(),
                lines: decoder.lines(),
            });
        }
        assert!(
            buf.len() <= 2,
            "the decoder held back {} bytes: {:?}",
            buf.len(),
            buf
        );
        if decoder.error().is_some() {
            assert!(out.is_empty(), "output after an error");
        }
    }
    None
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut src = Source::new(data);
    let size = match src.below(4) {
        0 => None,
        1 => Some(usize::from(src.byte())),
        2 => Some(usize::from(src.byte()) * 16),
        _ => Some(33_554_432),
    };
    let line_limit = match src.below(3) {
        0 => 1 + usize::from(src.byte() % 64),
        1 => 1001,
        _ => usize::from(src.byte()),
    };
    let seed = src.byte();
    let mut body = Vec::new();
    for &b in src.rest() {
        match b {
            0xf0..=0xf3 => body.extend_from_slice(b"\r\n"),
            0xf4 | 0xf5 => body.push(b'.'),
            0xf6 => body.push(b'\r'),
            0xf7 => body.push(b'\n'),
            0xf8 => body.extend_from_slice(b"\r\n."),
            0xf9 => body.extend_from_slice(b"\r\n.\r\n"),
            0xfa => body.extend_from_slice(b"\n.\r\n"),
            0xfb => body.extend_from_slice(b"\r.\r\n"),
            0xfc => body.extend_from_slice(b"\n.\n"),
            0xfd => body.extend_from_slice(b".."),
            _ => body.push(b),
        }
    }
    body.extend_from_slice(b"\r\n.\r\n");
    let expected = reference(&body, size, line_limit).expect("the body ends");
    let runs: [(&str, Vec<usize>); 4] = [
        ("whole", vec![body.len()]),
        ("byte by byte", vec![1]),
        (
            "chunks",
            vec![1 + usize::from(seed % 7), 2, 3, 1 + usize::from(seed / 7)],
        ),
        ("pairs", vec![2]),
    ];
    for (label, sizes) in &runs {
        let got = decode_in_chunks(&body, size, line_limit, sizes).expect("finished");
        assert_eq!(
            got, expected,
            "{label}: size limit {size:?}, line limit {line_limit}, body {body:?}"
        );
    }
    if line_limit >= PREFIX_LINE_MAX {
        let body = &body[..expected.consumed];
        for (label, sizes) in &runs {
            let (content, verdict) = through_connection(body, size, line_limit, sizes);
            let want = match expected.error {
                None => "250 OK",
                Some(DataError::TooMuchData) => "552 Error: Too much mail data",
                Some(DataError::LineTooLong) => "500 Line too long (see RFC5321 4.5.3.1.6)",
            };
            assert_eq!(verdict, want, "{label}: the DATA verdict for {body:?}");
            if expected.error.is_none() {
                assert_eq!(
                    content, expected.out,
                    "{label}: the body a Connection hands out, for {body:?}"
                );
            }
        }
    }
}

/// The longest line of the command prefix (`MAIL FROM:<a@b>`, CRLF included).
const PREFIX_LINE_MAX: usize = 17;

/// Feeds the commands, then `body` in chunks of `sizes` (cycled), to a
/// `Connection`, answering every hook with the default; returns the body chunks
/// it handed out, joined, and its first reply after `354`.
fn through_connection(
    body: &[u8],
    size: Option<usize>,
    line_limit: usize,
    sizes: &[usize],
) -> (Vec<u8>, String) {
    let now = Instant::now();
    let mut config = Config::new("mx.example");
    config.data_size_limit = size;
    config.line_length_limit = line_limit;
    config.data_line_length_limit = Some(line_limit);
    let mut conn = Connection::new(Arc::new(config), Peer::Unknown, now);
    let mut content = Vec::new();
    let mut wire = Vec::new();
    let mut drain = |conn: &mut Connection| {
        for _ in 0..10_000 {
            match conn.poll_action() {
                None => return,
                Some(Action::Send(bytes)) => wire.extend_from_slice(bytes),
                Some(Action::MessageStart(_) | Action::MessageAbort(_)) => {}
                Some(Action::Body(chunk)) => content.extend_from_slice(chunk.chunk),
                Some(Action::Hook(_)) => conn
                    .handle_decision(now, Decision::Outcome(Outcome::Default))
                    .expect("a pending hook"),
                Some(other) => panic!("unexpected action {other:?}"),
            }
        }
        panic!("the engine never runs out of actions");
    };
    drain(&mut conn);
    conn.handle_input(
        now,
        b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
    )
    .expect("open");
    drain(&mut conn);
    let mut fed = 0;
    let mut i = 0;
    while fed < body.len() {
        let n = sizes[i % sizes.len()].max(1);
        i += 1;
        let end = (fed + n).min(body.len());
        conn.handle_input(now, &body[fed..end]).expect("open");
        fed = end;
        drain(&mut conn);
    }
    let wire = String::from_utf8_lossy(&wire).into_owned();
    let go_ahead = "354 End data with <CR><LF>.<CR><LF>\r\n";
    let after = wire
        .split_once(go_ahead)
        .unwrap_or_else(|| panic!("no 354 in {wire:?}"))
        .1;
    let verdict = after.split("\r\n").next().unwrap_or("").to_owned();
    (content, verdict)
}
