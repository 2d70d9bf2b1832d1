//! Micro-benchmarks of the sans-IO engine (`smtpkit::proto`), no sockets involved:
//!
//! - `parser/*`: typical command lines (HELO, MAIL, RCPT, RCPT, NOOP, RSET) fed
//!   through a [`Connection`], every hook answered with `Outcome::Default`:
//!   commands per second, one line per input (`per_line`) and the six lines in
//!   one input (`pipelined`);
//! - `data/*`: the DATA scanner and dot-unstuffer ([`DataDecoder`]) on a 1 MiB
//!   body without dot lines and on one where every other line is dot-stuffed
//!   (bytes per second), plus the same plain body fed through a `Connection` in
//!   64 KiB reads as the driver does (`connection_64k_reads`);
//! - `transaction`: one whole in-memory SMTP session (greeting, EHLO, MAIL, RCPT,
//!   DATA with a 1 KiB body, QUIT) on a new `Connection`: transactions per second.
//!
//! Before the timed benchmarks it prints the heap allocations of one transaction
//! (MAIL, RCPT, DATA, body) and of single commands on an already-greeted
//! connection, counted by the counting global allocator below. That is a
//! measurement, not an assertion.
//!
//! Run: `cargo bench --bench engine` (quicker: `-- --warm-up-time 1 --measurement-time 3`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use smtpkit::proto::{Action, Config, Connection, DataDecoder, Decision, Outcome, Peer};

// ---------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------

/// std's system allocator with counters: calls that obtain memory (`alloc`,
/// `alloc_zeroed`, `realloc`) and the bytes they asked for.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counters have no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocator calls made while running `f`.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    allocs: u64,
    reallocs: u64,
    bytes: u64,
}

impl Counts {
    fn now() -> Self {
        Counts {
            allocs: ALLOCS.load(Ordering::Relaxed),
            reallocs: REALLOCS.load(Ordering::Relaxed),
            bytes: BYTES.load(Ordering::Relaxed),
        }
    }

    fn since(start: Counts) -> Self {
        let end = Counts::now();
        Counts {
            allocs: end.allocs - start.allocs,
            reallocs: end.reallocs - start.reallocs,
            bytes: end.bytes - start.bytes,
        }
    }

    /// Allocations in all: new blocks plus reallocations.
    fn total(self) -> u64 {
        self.allocs + self.reallocs
    }
}

fn counted(f: impl FnOnce()) -> Counts {
    let start = Counts::now();
    f();
    Counts::since(start)
}

// ---------------------------------------------------------------------------
// Driving the engine in memory
// ---------------------------------------------------------------------------

/// What a body chunk becomes: appended to `envelope.content` (the default
/// `Handler::handle_data_chunk`, which `sink` uses) or dropped (a streaming handler).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyMode {
    Keep,
    Discard,
}

/// Drains every action as a driver with a do-nothing handler would; returns the
/// number of reply bytes the engine asked to send.
fn drain(conn: &mut Connection, now: Instant, mode: BodyMode) -> usize {
    let mut sent = 0;
    while let Some(action) = conn.poll_action() {
        match action {
            Action::Send(bytes) => sent += black_box(bytes).len(),
            Action::Body(body) => match mode {
                BodyMode::Keep => body.envelope.content.extend_from_slice(body.chunk),
                BodyMode::Discard => {
                    black_box(body.chunk);
                }
            },
            Action::Hook(_) => conn
                .handle_decision(now, Decision::Outcome(Outcome::Default))
                .expect("a hook call is pending"),
            Action::Close => break,
            _ => {}
        }
    }
    sent
}

/// Like [`drain`], but returns the reply bytes (for the sanity checks).
fn drain_wire(conn: &mut Connection, now: Instant) -> String {
    let mut wire = Vec::new();
    while let Some(action) = conn.poll_action() {
        match action {
            Action::Send(bytes) => wire.extend_from_slice(bytes),
            Action::Body(body) => body.envelope.content.extend_from_slice(body.chunk),
            Action::Hook(_) => conn
                .handle_decision(now, Decision::Outcome(Outcome::Default))
                .expect("a hook call is pending"),
            Action::Close => break,
            _ => {}
        }
    }
    String::from_utf8(wire).expect("replies are ASCII")
}

fn feed(conn: &mut Connection, now: Instant, bytes: &[u8], mode: BodyMode) -> usize {
    conn.handle_input(now, bytes).expect("connection open");
    drain(conn, now, mode)
}

fn config() -> Arc<Config> {
    Arc::new(Config::new("mx.example.com"))
}

/// The command mix of the parser benchmark (one HELO per six commands).
const MIX: [&[u8]; 6] = [
    b"HELO client.example.org\r\n",
    b"MAIL FROM:<sender@example.org>\r\n",
    b"RCPT TO:<alice@example.com>\r\n",
    b"RCPT TO:<bob@example.com>\r\n",
    b"NOOP\r\n",
    b"RSET\r\n",
];

const EHLO: &[u8] = b"EHLO client.example.org\r\n";
const MAIL: &[u8] = b"MAIL FROM:<sender@example.org>\r\n";
const RCPT: &[u8] = b"RCPT TO:<alice@example.com>\r\n";
const DATA: &[u8] = b"DATA\r\n";
const QUIT: &[u8] = b"QUIT\r\n";

/// Exactly `total` bytes of CRLF lines of `width` printable bytes (the last line
/// takes up the rest); every `dot_every`-th line (if any) starts with a stuffed
/// dot (`..`).
fn body_lines(total: usize, width: usize, dot_every: Option<usize>) -> Vec<u8> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
    let mut body = Vec::with_capacity(total);
    let mut line = 0usize;
    let fill = |body: &mut Vec<u8>, n: usize, line: usize| {
        for i in 0..n {
            body.push(alphabet[(i * 7 + line) % alphabet.len()]);
        }
        body.extend_from_slice(b"\r\n");
    };
    while total - body.len() >= 2 * (width + 4) {
        if dot_every.is_some_and(|n| line.is_multiple_of(n)) {
            body.extend_from_slice(b"..");
        }
        fill(&mut body, width, line);
        line += 1;
    }
    let rest = total - body.len() - 2;
    fill(&mut body, rest, line);
    assert_eq!(body.len(), total);
    body
}

/// A 1 KiB message (headers and text) followed by the end-of-data line.
fn message_1k() -> Vec<u8> {
    let mut msg = Vec::with_capacity(1027);
    msg.extend_from_slice(
        b"From: sender@example.org\r\nTo: alice@example.com\r\nSubject: benchmark\r\n\r\n",
    );
    let rest = 1024 - msg.len();
    msg.extend_from_slice(&body_lines(rest, 62, None));
    assert_eq!(msg.len(), 1024);
    msg.extend_from_slice(b".\r\n");
    msg
}

/// A connection past the greeting and EHLO, buffers warmed up by a few transactions.
fn greeted(now: Instant, message: &[u8], mode: BodyMode) -> Connection {
    let mut conn = Connection::new(config(), Peer::Unknown, now);
    drain(&mut conn, now, mode);
    feed(&mut conn, now, EHLO, mode);
    for _ in 0..4 {
        steady_transaction(&mut conn, now, message, mode);
    }
    conn
}

/// MAIL, RCPT, DATA and the message on a greeted connection.
fn steady_transaction(conn: &mut Connection, now: Instant, message: &[u8], mode: BodyMode) {
    feed(conn, now, MAIL, mode);
    feed(conn, now, RCPT, mode);
    feed(conn, now, DATA, mode);
    feed(conn, now, message, mode);
}

// ---------------------------------------------------------------------------
// Sanity checks: every benchmark measures the success path
// ---------------------------------------------------------------------------

fn check_paths() {
    let now = Instant::now();
    let mut conn = Connection::new(config(), Peer::Unknown, now);
    let greeting = drain_wire(&mut conn, now);
    assert!(greeting.starts_with("220 "), "{greeting}");
    for line in MIX {
        conn.handle_input(now, line).unwrap();
        let reply = drain_wire(&mut conn, now);
        assert!(reply.starts_with("250 "), "{reply}");
    }
    conn.handle_input(now, &MIX.concat()).unwrap();
    let replies = drain_wire(&mut conn, now);
    assert_eq!(replies.matches("250 ").count(), MIX.len(), "{replies}");

    let mut conn = Connection::new(config(), Peer::Unknown, now);
    let mut wire = drain_wire(&mut conn, now);
    let message = message_1k();
    for part in [EHLO, MAIL, RCPT, DATA, &message[..], QUIT] {
        conn.handle_input(now, part).unwrap();
        wire.push_str(&drain_wire(&mut conn, now));
    }
    let codes: Vec<&str> = wire
        .lines()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(|l| &l[..3])
        .collect();
    assert_eq!(
        codes,
        ["220", "250", "250", "250", "354", "250", "221"],
        "{wire}"
    );
    assert!(conn.is_closed());
}

// ---------------------------------------------------------------------------
// Allocations per transaction and per command
// ---------------------------------------------------------------------------

fn report_allocations() {
    const ROUNDS: u64 = 1000;
    let now = Instant::now();
    let message = message_1k();
    eprintln!();
    eprintln!("heap allocations on the steady path (greeted connection, warmed up; 1 KiB body):");
    for mode in [BodyMode::Keep, BodyMode::Discard] {
        let what = match mode {
            BodyMode::Keep => "body appended to envelope.content (default handler, sink)",
            BodyMode::Discard => "body chunks dropped (streaming handler)",
        };
        let mut conn = greeted(now, &message, mode);
        let one = counted(|| steady_transaction(&mut conn, now, &message, mode));
        let many = counted(|| {
            for _ in 0..ROUNDS {
                steady_transaction(&mut conn, now, &message, mode);
            }
        });
        eprintln!("  [{what}]");
        eprintln!(
            "  allocations per transaction: {} ({} new blocks, {} reallocs, {} bytes; mean of {ROUNDS}: {:.2})",
            one.total(),
            one.allocs,
            one.reallocs,
            one.bytes,
            many.total() as f64 / ROUNDS as f64,
        );
        let mut per_command = Vec::new();
        for (name, input) in [
            ("MAIL", MAIL),
            ("RCPT", RCPT),
            ("DATA", DATA),
            ("body + .", &message[..]),
        ] {
            let c = counted(|| {
                feed(&mut conn, now, input, mode);
            });
            per_command.push(format!("{name} {} ({} B)", c.total(), c.bytes));
        }
        eprintln!("    per command: {}", per_command.join(", "));
    }
    // Single commands outside a transaction, each measured after a warm-up call.
    let mut conn = greeted(now, &message, BodyMode::Discard);
    let mut other = Vec::new();
    for (name, input) in [
        ("NOOP", &b"NOOP\r\n"[..]),
        ("RSET", b"RSET\r\n"),
        ("HELO", b"HELO client.example.org\r\n"),
        ("EHLO", EHLO),
        ("MAIL+RSET", b"MAIL FROM:<sender@example.org>\r\nRSET\r\n"),
    ] {
        feed(&mut conn, now, input, BodyMode::Discard);
        let c = counted(|| {
            feed(&mut conn, now, input, BodyMode::Discard);
        });
        other.push(format!("{name} {} ({} B)", c.total(), c.bytes));
    }
    eprintln!("  other commands: {}", other.join(", "));
    let mut parser_conn = Connection::new(config(), Peer::Unknown, now);
    drain(&mut parser_conn, now, BodyMode::Discard);
    for line in MIX {
        feed(&mut parser_conn, now, line, BodyMode::Discard);
    }
    let mix = counted(|| {
        for _ in 0..ROUNDS {
            for line in MIX {
                feed(&mut parser_conn, now, line, BodyMode::Discard);
            }
        }
    });
    eprintln!(
        "  allocations per command in the parser mix (HELO MAIL RCPT RCPT NOOP RSET): {:.2}",
        mix.total() as f64 / (ROUNDS * MIX.len() as u64) as f64
    );
    let session = counted(|| {
        let mut conn = Connection::new(config(), Peer::Unknown, now);
        drain(&mut conn, now, BodyMode::Keep);
        for part in [EHLO, MAIL, RCPT, DATA, &message[..], QUIT] {
            feed(&mut conn, now, part, BodyMode::Keep);
        }
    });
    eprintln!(
        "  whole session on a new connection (greeting .. QUIT, as in `transaction`): {} ({} B)",
        session.total(),
        session.bytes
    );
    eprintln!();
}

// ---------------------------------------------------------------------------
// Timed benchmarks
// ---------------------------------------------------------------------------

fn parser(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("parser");
    group.throughput(Throughput::Elements(MIX.len() as u64));

    let mut conn = Connection::new(config(), Peer::Unknown, now);
    drain(&mut conn, now, BodyMode::Discard);
    group.bench_function("per_line", |b| {
        b.iter(|| {
            let mut sent = 0;
            for line in MIX {
                sent += feed(&mut conn, now, line, BodyMode::Discard);
            }
            sent
        })
    });

    let batch = MIX.concat();
    let mut conn = Connection::new(config(), Peer::Unknown, now);
    drain(&mut conn, now, BodyMode::Discard);
    group.bench_function("pipelined", |b| {
        b.iter(|| feed(&mut conn, now, black_box(&batch), BodyMode::Discard))
    });
    group.finish();
}

fn data(c: &mut Criterion) {
    const MIB: usize = 1 << 20;
    let mut group = c.benchmark_group("data");
    for (name, dot_every) in [("plain_1MiB", None), ("dot_stuffed_1MiB", Some(2))] {
        let mut input = body_lines(MIB, 76, dot_every);
        input.extend_from_slice(b".\r\n");
        let mut out = Vec::with_capacity(MIB);
        let decode = |input: &[u8], out: &mut Vec<u8>| {
            out.clear();
            let mut decoder = DataDecoder::new(None, 1001);
            let progress = decoder.decode(input, out);
            debug_assert!(progress.finished);
            progress.consumed
        };
        let consumed = decode(&input, &mut out);
        assert_eq!(consumed, input.len());
        let dots = input.windows(4).filter(|w| w == b"\r\n..").count()
            + usize::from(input.starts_with(b".."));
        assert_eq!(out.len(), MIB - dots, "{name}: unstuffed size");
        group.throughput(Throughput::Bytes(MIB as u64));
        group.bench_function(name, |b| b.iter(|| decode(black_box(&input), &mut out)));
    }

    // The plain body through a Connection in DATA mode, in 64 KiB reads (the
    // driver's largest read buffer), body chunks dropped.
    let now = Instant::now();
    let mut body = body_lines(MIB, 76, None);
    body.extend_from_slice(b".\r\n");
    let message = message_1k();
    let mut conn = greeted(now, &message, BodyMode::Discard);
    group.throughput(Throughput::Bytes(MIB as u64));
    group.bench_function("connection_64k_reads", |b| {
        b.iter(|| {
            feed(&mut conn, now, MAIL, BodyMode::Discard);
            feed(&mut conn, now, RCPT, BodyMode::Discard);
            feed(&mut conn, now, DATA, BodyMode::Discard);
            let mut sent = 0;
            for chunk in body.chunks(64 * 1024) {
                sent += feed(&mut conn, now, black_box(chunk), BodyMode::Discard);
            }
            sent
        })
    });
    group.finish();
}

fn transaction(c: &mut Criterion) {
    let now = Instant::now();
    let config = config();
    let message = message_1k();
    let mut group = c.benchmark_group("transaction");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ehlo_mail_rcpt_data1k_quit", |b| {
        b.iter_batched(
            || config.clone(),
            |config| {
                let mut conn = Connection::new(config, Peer::Unknown, now);
                let mut sent = drain(&mut conn, now, BodyMode::Keep);
                for part in [EHLO, MAIL, RCPT, DATA, &message[..], QUIT] {
                    sent += feed(&mut conn, now, part, BodyMode::Keep);
                }
                debug_assert!(conn.is_closed());
                sent
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, parser, data, transaction);

fn main() {
    check_paths();
    report_allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
