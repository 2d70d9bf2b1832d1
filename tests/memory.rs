//! The `smtpkit` binary's memory under hostile clients, on every runtime it was
//! built with: 16 MiB never-ending command and DATA lines, 10,000 pipelined
//! commands, a thousand idle connections and slow clients, and connections left
//! idle after one message each (2,000 after 64 KiB to Sink, 500 after 1 MiB to a
//! Maildir). The figures come from
//! the server process's `/proc/<pid>/status` (VmRSS, VmHWM), so this is Linux
//! only. Memory figures, not timings, are asserted; a good client must be served
//! at the end.

#![cfg(target_os = "linux")]

mod common;
use common::server::{Client, KIB, MIB, Server, mib};

use std::io::Write;
use std::time::Duration;

/// Peak resident memory of the whole run, whatever the runtime.
const PEAK_LIMIT: u64 = 64 * MIB;
/// Growth of the peak while a 16 MiB line arrives: well below the line itself, so
/// a server that buffered it fails.
const LONG_LINE_GROWTH_LIMIT: u64 = 8 * MIB;
/// Resident memory per idle connection.
const PER_IDLE_CONNECTION_LIMIT: u64 = 64 * KIB;
/// Growth of resident memory while 10,000 pipelined commands are answered, and
/// while slow clients trickle bytes.
const FLOOD_GROWTH_LIMIT: u64 = 4 * MIB;

const IDLE: usize = 1000;
const SLOW: usize = 100;
const LONG_LINE: usize = 16 << 20;

/// A well-behaved client: one message, accepted.
fn good_client(server: &Server) {
    let mut c = server.connect();
    c.greeting();
    assert_eq!(c.cmd("EHLO good.example"), "250 HELP");
    assert_eq!(c.cmd("MAIL FROM:<good@example.com>"), "250 OK");
    assert_eq!(c.cmd("RCPT TO:<rcpt@example.com>"), "250 OK");
    assert_eq!(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    c.send(b"Subject: good\r\n\r\nstill served\r\n");
    assert_eq!(c.cmd("."), "250 OK");
    assert_eq!(c.cmd("QUIT"), "221 Bye");
}

fn memory_stays_bounded(runtime: &str) {
    let server = Server::start(runtime);
    good_client(&server);
    let start_peak = server.peak();

    // A 16 MiB command line without an end, then a 16 MiB DATA line.
    let mut c = server.connect();
    c.greeting();
    assert_eq!(
        c.flood(b'a', LONG_LINE, b"\r\n"),
        "500 Command line too long"
    );
    assert!(c.cmd("HELO long.example").starts_with("250 "));
    assert_eq!(c.cmd("MAIL FROM:<long@example.com>"), "250 OK");
    assert_eq!(c.cmd("RCPT TO:<rcpt@example.com>"), "250 OK");
    assert_eq!(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    assert_eq!(
        c.flood(b'b', LONG_LINE, b"\r\n.\r\n"),
        "500 Line too long (see RFC5321 4.5.3.1.6)"
    );
    assert_eq!(c.cmd("QUIT"), "221 Bye");
    let long_line_peak = server.peak();
    eprintln!(
        "{runtime}: peak {} at the start, {} after the 16 MiB lines",
        mib(start_peak),
        mib(long_line_peak)
    );
    assert!(
        long_line_peak.saturating_sub(start_peak) < LONG_LINE_GROWTH_LIMIT,
        "{runtime}: the peak grew from {} to {} while 16 MiB lines arrived",
        mib(start_peak),
        mib(long_line_peak)
    );

    // 10,000 pipelined NOOPs in one write, the replies read only once all of them
    // were sent.
    let before_flood = server.rss();
    let mut c = server.connect();
    c.greeting();
    c.send("NOOP\r\n".repeat(10_000).as_bytes());
    for i in 0..10_000 {
        assert_eq!(c.reply(), "250 OK", "reply {i}");
    }
    assert_eq!(c.cmd("QUIT"), "221 Bye");
    let after_flood = server.rss();
    eprintln!(
        "{runtime}: RSS {} before the pipelined flood, {} after",
        mib(before_flood),
        mib(after_flood)
    );
    assert!(
        after_flood.saturating_sub(before_flood) < FLOOD_GROWTH_LIMIT,
        "{runtime}: RSS grew from {} to {} with 10,000 pipelined commands",
        mib(before_flood),
        mib(after_flood)
    );

    // A thousand idle connections, each past its greeting.
    let before_idle = server.rss();
    let idle: Vec<Client> = (0..IDLE)
        .map(|_| {
            let mut c = server.connect();
            c.greeting();
            c
        })
        .collect();
    let with_idle = server.rss();
    let per_connection = with_idle.saturating_sub(before_idle) / IDLE as u64;
    eprintln!(
        "{runtime}: RSS {} before {IDLE} idle connections, {} with them: {per_connection} bytes each",
        mib(before_idle),
        mib(with_idle)
    );
    assert!(
        per_connection < PER_IDLE_CONNECTION_LIMIT,
        "{runtime}: {per_connection} bytes per idle connection ({} -> {})",
        mib(before_idle),
        mib(with_idle)
    );

    // Slow clients: one byte each every 20 ms, in a command line or in DATA,
    // never completing a line.
    let mut slow: Vec<Client> = (0..SLOW)
        .map(|i| {
            let mut c = server.connect();
            c.greeting();
            if i % 2 == 1 {
                assert!(c.cmd("HELO slow.example").starts_with("250 "));
                assert_eq!(c.cmd("MAIL FROM:<slow@example.com>"), "250 OK");
                assert_eq!(c.cmd("RCPT TO:<rcpt@example.com>"), "250 OK");
                assert_eq!(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
            }
            c
        })
        .collect();
    let before_slow = server.rss();
    for _ in 0..50 {
        for c in &mut slow {
            c.send(b"s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let after_slow = server.rss();
    eprintln!(
        "{runtime}: RSS {} before {SLOW} slow clients trickled, {} after",
        mib(before_slow),
        mib(after_slow)
    );
    assert!(
        after_slow.saturating_sub(before_slow) < FLOOD_GROWTH_LIMIT,
        "{runtime}: RSS grew from {} to {} with slow clients",
        mib(before_slow),
        mib(after_slow)
    );

    // Still serving, with all of them hanging on, and after they left.
    good_client(&server);
    drop(idle);
    drop(slow);
    good_client(&server);
    let peak = server.peak();
    eprintln!("{runtime}: peak RSS {}", mib(peak));
    assert!(
        peak < PEAK_LIMIT,
        "{runtime}: peak RSS {} (limit {})",
        mib(peak),
        mib(PEAK_LIMIT)
    );
}

/// Each of `count` connections sends, in one write, EHLO, MAIL, RCPT, DATA, a
/// `size`-byte body of 100-byte lines and the final dot, gets its 250 and stays
/// open: the server's resident memory may grow by less than `count` x (a fresh
/// idle connection's share + 32 KiB), so what an idle connection costs does not
/// depend on what it sent before. The connections deliver one after another,
/// so a freed buffer is reused by the next one rather than left to the
/// allocator.
fn idle_after_one_message(runtime: &str, handler: &[&str], size: usize, count: usize) {
    let server = Server::start_with(runtime, handler);
    good_client(&server);

    const FRESH: usize = 200;
    let before_fresh = server.rss();
    let fresh: Vec<Client> = (0..FRESH)
        .map(|_| {
            let mut c = server.connect();
            c.greeting();
            c
        })
        .collect();
    let fresh_each = server.rss().saturating_sub(before_fresh) / FRESH as u64;
    drop(fresh);
    std::thread::sleep(Duration::from_millis(200));

    let line = [b"x".repeat(98).as_slice(), b"\r\n"].concat();
    let mut session = b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n".to_vec();
    for _ in 0..size / line.len() {
        session.extend_from_slice(&line);
    }
    session.extend_from_slice(b".\r\n");

    let before = server.rss();
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        let mut c = server.connect();
        c.greeting();
        let mut writer = c.stream.try_clone().unwrap();
        let body = session.clone();
        // Written from another thread: the replies to EHLO, MAIL and RCPT come
        // while the body is still being sent.
        let sender = std::thread::spawn(move || writer.write_all(&body));
        assert_eq!(c.reply(), "250 HELP", "connection {i}: EHLO");
        assert_eq!(c.reply(), "250 OK", "connection {i}: MAIL");
        assert_eq!(c.reply(), "250 OK", "connection {i}: RCPT");
        assert_eq!(c.reply(), "354 End data with <CR><LF>.<CR><LF>");
        assert_eq!(c.reply(), "250 OK", "connection {i}: the message");
        sender.join().unwrap().expect("the message is taken in");
        held.push(c);
        if let Some(dir) = handler.get(2).filter(|_| i % 100 == 99) {
            // Keep the disk use of a long run small.
            for entry in std::fs::read_dir(format!("{dir}/new")).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = server.rss();
    let growth = after.saturating_sub(before);
    let limit = count as u64 * (fresh_each + 32 * KIB);
    eprintln!(
        "{runtime} {handler:?}: a fresh idle connection {:.1} KiB; RSS {} -> {} with {count} \
         idle after a {size}-byte message: {:.1} KiB each (limit {:.1} KiB)",
        fresh_each as f64 / KIB as f64,
        mib(before),
        mib(after),
        growth as f64 / count as f64 / KIB as f64,
        limit as f64 / count as f64 / KIB as f64,
    );
    assert!(
        growth < limit,
        "{runtime}: RSS grew by {} with {count} idle connections after a {size}-byte \
         message (limit {})",
        mib(growth),
        mib(limit)
    );
    good_client(&server);
    drop(held);
}

const IDLE_AFTER: usize = 2000;

fn idle_after_messages(runtime: &str) {
    idle_after_one_message(runtime, &["-c", "sink"], 64 << 10, IDLE_AFTER);
    let maildir = tempfile::tempdir().unwrap();
    let dir = maildir.path().join("Maildir");
    let dir = dir.to_str().unwrap();
    // The figure: 500 connections after a 1 MiB message each.
    idle_after_one_message(runtime, &["-c", "mailbox", dir], 1 << 20, IDLE_AFTER / 4);
}

#[test]
#[cfg(feature = "runtime-tokio")]
fn idle_after_messages_on_tokio() {
    idle_after_messages("tokio");
}

#[test]
#[cfg(feature = "runtime-smol")]
fn idle_after_messages_on_smol() {
    idle_after_messages("smol");
}

#[test]
#[cfg(feature = "runtime-async-std")]
fn idle_after_messages_on_async_std() {
    idle_after_messages("async-std");
}

#[test]
#[cfg(feature = "runtime-tokio")]
fn memory_stays_bounded_on_tokio() {
    memory_stays_bounded("tokio");
}

#[test]
#[cfg(feature = "runtime-smol")]
fn memory_stays_bounded_on_smol() {
    memory_stays_bounded("smol");
}

#[test]
#[cfg(feature = "runtime-async-std")]
fn memory_stays_bounded_on_async_std() {
    memory_stays_bounded("async-std");
}
