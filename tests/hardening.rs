//! The `smtpkit` binary when resources run out, on every runtime it was built
//! with (Linux: the figures come from `/proc/<pid>/status`, the limits from
//! `ulimit` and a small tmpfs in a private mount namespace).
//!
//! - 3,000 clients end DATA at the same moment against `-c mailbox` under a
//!   3 GiB address-space limit: the process survives, deliveries queue for the
//!   bounded blocking pool (the thread count stays flat), every client gets
//!   `250` or a `4xx` (never a `5xx`), and every `250` is a file in `new/`.
//! - A Maildir on a full disk answers `452 4.3.1` (retry later) and leaves no
//!   partial file; a message that fits is then stored.
//! - SIGTERM stops gracefully: idle sessions get `421 4.3.2 ... Service
//!   shutting down` at once, sessions in the middle of DATA finish their
//!   message (250, stored) and then get it, and the process exits 0.
//! - `kill -9` while 200 messages are in flight from 8 clients: afterwards every
//!   message a client saw `250` for is in `new/`, complete, and every file in
//!   `new/` is a complete message that was sent (files in `tmp/` may remain:
//!   nothing runs after SIGKILL, and Maildir readers ignore `tmp/`).

#![cfg(target_os = "linux")]

mod common;
use common::server::{Client, Server};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Clients ending DATA together (fewer if the open-file limit is lower).
const CONCURRENT: usize = 3000;
/// `--blocking-threads` for the concurrency test.
const POOL_THREADS: u64 = 16;
/// Threads beyond the ones running after the first delivery that the runtime
/// may add (its own helpers); far below one per delivery.
const THREAD_SLACK: u64 = 8;
/// `ulimit -v` for the concurrency test, in KiB (3 GiB).
const ADDRESS_SPACE_KIB: u64 = 3 << 20;

/// A number field of `/proc/<pid>/status` as written (no unit conversion).
fn status_number(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The soft limit on open files of this process (the server inherits it).
fn open_file_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024)
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .count()
}

/// One message from a fresh client; returns the reply to the final dot.
fn deliver(server: &Server, body: &[u8]) -> String {
    let mut c = server.connect();
    c.greeting();
    assert_eq!(c.cmd("EHLO client.example"), "250 HELP");
    assert_eq!(c.cmd("MAIL FROM:<a@example.com>"), "250 OK");
    assert_eq!(c.cmd("RCPT TO:<b@example.com>"), "250 OK");
    assert_eq!(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    c.send(body);
    let reply = c.cmd(".");
    assert_eq!(c.cmd("QUIT"), "221 Bye");
    reply
}

fn concurrent_deliveries(runtime: &str) {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    let ulimit = format!("ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\"");
    let threads = POOL_THREADS.to_string();
    let mut server = Server::start_wrapped(
        &["sh", "-c", &ulimit],
        runtime,
        &[
            "-c",
            "mailbox",
            maildir.to_str().unwrap(),
            "--blocking-threads",
            &threads,
        ],
    );
    let pid = server.child.id();
    // The first delivery starts the pool's threads.
    assert_eq!(
        deliver(&server, b"Subject: first\r\n\r\nfirst\r\n"),
        "250 OK"
    );
    let baseline = status_number(pid, "Threads").expect("Threads");

    let count = CONCURRENT.min(open_file_limit().saturating_sub(200) / 2);
    let mut clients: Vec<Client> = Vec::with_capacity(count);
    for i in 0..count {
        let mut c = server.connect();
        c.greeting();
        c.send(
            format!(
                "EHLO c{i}.example\r\nMAIL FROM:<a{i}@example.com>\r\nRCPT TO:<b@example.com>\r\n\
                 DATA\r\nSubject: {i}\r\n\r\nmessage {i}\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(c.reply(), "250 HELP", "client {i}: EHLO");
        assert_eq!(c.reply(), "250 OK", "client {i}: MAIL");
        assert_eq!(c.reply(), "250 OK", "client {i}: RCPT");
        assert_eq!(c.reply(), "354 End data with <CR><LF>.<CR><LF>");
        clients.push(c);
    }

    // Sample the thread count while every message ends at once.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            // Bounded: at most 120 s of 2 ms samples.
            for _ in 0..60_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(n) = status_number(pid, "Threads") {
                    peak.fetch_max(n, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    for c in &mut clients {
        c.send(b".\r\n");
    }
    let mut accepted = 0;
    let mut deferred: Vec<String> = Vec::new();
    let mut wrong: Vec<String> = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        match c.try_line() {
            Ok(reply) if reply == "250 OK" => accepted += 1,
            Ok(reply) if reply.starts_with('4') => deferred.push(reply),
            Ok(reply) => wrong.push(format!("client {i}: {reply:?}")),
            Err(e) => wrong.push(format!("client {i}: {e}")),
        }
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "{runtime}: {count} deliveries at once under ulimit -v {ADDRESS_SPACE_KIB}: \
         {accepted} accepted, {} deferred {:?}, threads {baseline} -> peak {peak}",
        deferred.len(),
        deferred.first()
    );
    assert!(
        server.is_running(),
        "{runtime}: smtpkit died: {}",
        server.stderr()
    );
    assert!(
        wrong.is_empty(),
        "{runtime}: {} clients got neither 250 nor 4xx, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(
        count_files(&maildir.join("new")),
        accepted + 1,
        "{runtime}: every 250 is a stored message"
    );
    assert_eq!(count_files(&maildir.join("tmp")), 0, "{runtime}: tmp/");
    assert!(
        peak <= baseline + THREAD_SLACK,
        "{runtime}: {peak} threads while {count} deliveries ran (baseline {baseline}, \
         pool {POOL_THREADS})"
    );
    drop(clients);
    assert_eq!(deliver(&server, b"Subject: last\r\n\r\nlast\r\n"), "250 OK");
}

/// Whether this process may make a private mount namespace (`unshare -rm`).
fn can_unshare() -> bool {
    std::process::Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn disk_full(runtime: &str) {
    if !can_unshare() {
        assert!(
            std::env::var_os("SMTPKIT_REQUIRE_CLIENTS").is_none(),
            "`unshare -rm` is needed for the disk-full test"
        );
        eprintln!("skipping the disk-full test: `unshare -rm` is not permitted here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().to_str().unwrap().to_owned();
    // A 64 KiB tmpfs seen only by the server (its own mount namespace).
    let script = format!("mount -t tmpfs -o size=64k tmpfs '{mount}' && exec \"$0\" \"$@\"");
    let maildir = format!("{mount}/Maildir");
    let server = Server::start_wrapped(
        &["unshare", "-rm", "sh", "-c", &script],
        runtime,
        &["-c", "mailbox", &maildir],
    );
    // The server's view of the Maildir.
    let seen = format!("/proc/{}/root{maildir}", server.child.id());
    let seen = Path::new(&seen);
    assert_eq!(count_files(&seen.join("new")), 0);

    let line = [b"y".repeat(98).as_slice(), b"\r\n"].concat();
    let big: Vec<u8> = line.repeat(2000);
    let reply = deliver(&server, &big);
    assert!(
        reply.starts_with("452 4.3.1 Insufficient system storage: (io::Error) "),
        "{runtime}: a full disk is a transient failure: {reply:?}"
    );
    assert_eq!(count_files(&seen.join("tmp")), 0, "no partial file");
    assert_eq!(count_files(&seen.join("new")), 0);

    assert_eq!(
        deliver(&server, b"Subject: small\r\n\r\nfits\r\n"),
        "250 OK"
    );
    assert_eq!(count_files(&seen.join("new")), 1);
}

/// The body of message `id`: about 32 KiB of lines naming it.
fn numbered_body(id: &str) -> String {
    let mut body = format!("Subject: {id}\r\n\r\n");
    for i in 0..400 {
        body.push_str(&format!("{id} line {i:04} {}\r\n", "k".repeat(60)));
    }
    body
}

/// One message on a fresh connection; `Ok(true)` when the final dot got 250.
fn try_deliver(port: u16, id: &str) -> Result<bool, String> {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let mut reply = || -> Result<String, String> {
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return Err("closed".into()),
                Ok(_) if line.as_bytes().get(3) == Some(&b'-') => {}
                Ok(_) => return Ok(line.trim_end().to_owned()),
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    reply()?;
    let mut send = |data: &[u8]| writer.write_all(data).map_err(|e| e.to_string());
    send(b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")?;
    for _ in 0..4 {
        reply()?;
    }
    send(numbered_body(id).as_bytes())?;
    send(b".\r\n")?;
    Ok(reply()? == "250 OK")
}

fn killed_during_deliveries(runtime: &str) {
    const CLIENTS: usize = 8;
    const EACH: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    let mut server = Server::start_with(runtime, &["-c", "mailbox", maildir.to_str().unwrap()]);
    let port = server.port;
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let acked = acked.clone();
            std::thread::spawn(move || {
                for n in 0..EACH {
                    let id = format!("msg-{c}-{n}");
                    match try_deliver(port, &id) {
                        Ok(true) => acked.lock().unwrap().push(id),
                        Ok(false) => {}
                        Err(_) => return, // the server is gone
                    }
                }
            })
        })
        .collect();
    // Kill it when about half the messages were acknowledged (at most 60 s).
    for _ in 0..6000 {
        if acked.lock().unwrap().len() >= CLIENTS * EACH / 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    for client in clients {
        client.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= CLIENTS * EACH / 2 && acked.len() < CLIENTS * EACH,
        "{} acknowledged",
        acked.len()
    );
    let mut stored = std::collections::HashMap::new();
    for entry in std::fs::read_dir(maildir.join("new")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .expect("a Subject")
            .to_owned();
        // Complete: the whole body, in the Maildir's LF line endings.
        let body = numbered_body(&id).replace("\r\n", "\n");
        let body = body.split_once("\n\n").unwrap().1;
        assert!(text.ends_with(body), "{id} in new/ is not complete");
        stored.insert(id, ());
    }
    for id in &acked {
        assert!(stored.contains_key(id), "{id} got 250 but is not in new/");
    }
}

fn graceful_stop(runtime: &str) {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    let mut server = Server::start_with(
        runtime,
        &[
            "-c",
            "mailbox",
            maildir.to_str().unwrap(),
            "--shutdown-timeout",
            "20",
        ],
    );
    let idle: Vec<Client> = (0..5)
        .map(|_| {
            let mut c = server.connect();
            c.greeting();
            assert_eq!(c.cmd("EHLO client.example"), "250 HELP");
            c
        })
        .collect();
    let mut sending: Vec<Client> = (0..5)
        .map(|i| {
            let mut c = server.connect();
            c.greeting();
            assert_eq!(c.cmd("EHLO client.example"), "250 HELP");
            assert_eq!(c.cmd("MAIL FROM:<a@example.com>"), "250 OK");
            assert_eq!(c.cmd("RCPT TO:<b@example.com>"), "250 OK");
            assert_eq!(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
            c.send(format!("Subject: in flight {i}\r\n\r\nfirst half\r\n").as_bytes());
            c
        })
        .collect();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let goodbye =
        |line: &str| line.starts_with("421 4.3.2 ") && line.ends_with(" Service shutting down");
    for mut c in idle {
        let line = c.try_line().unwrap();
        assert!(goodbye(&line), "an idle session gets {line:?}");
    }
    for c in &mut sending {
        c.send(b"second half\r\n.\r\n");
        assert_eq!(
            c.try_line().unwrap(),
            "250 OK",
            "the message in progress is delivered"
        );
        let line = c.try_line().unwrap();
        assert!(goodbye(&line), "then {line:?}");
    }
    let mut exit = None;
    for _ in 0..1000 {
        if let Some(status) = server.child.try_wait().unwrap() {
            exit = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let exit = exit.expect("the server exits once the sessions are done");
    assert!(exit.success(), "{exit:?}: {}", server.stderr());
    assert_eq!(count_files(&maildir.join("new")), 5, "every 250 is in new/");
    assert_eq!(count_files(&maildir.join("tmp")), 0);
}

#[test]
#[cfg(feature = "runtime-tokio")]
fn graceful_stop_on_tokio() {
    graceful_stop("tokio");
}

#[test]
#[cfg(feature = "runtime-smol")]
fn graceful_stop_on_smol() {
    graceful_stop("smol");
}

#[test]
#[cfg(feature = "runtime-async-std")]
fn graceful_stop_on_async_std() {
    graceful_stop("async-std");
}

#[test]
#[cfg(feature = "runtime-tokio")]
fn killed_during_deliveries_on_tokio() {
    killed_during_deliveries("tokio");
}

#[test]
#[cfg(feature = "runtime-smol")]
fn killed_during_deliveries_on_smol() {
    killed_during_deliveries("smol");
}

#[test]
#[cfg(feature = "runtime-async-std")]
fn killed_during_deliveries_on_async_std() {
    killed_during_deliveries("async-std");
}

#[test]
#[cfg(feature = "runtime-tokio")]
fn concurrent_deliveries_on_tokio() {
    concurrent_deliveries("tokio");
}

#[test]
#[cfg(feature = "runtime-smol")]
fn concurrent_deliveries_on_smol() {
    concurrent_deliveries("smol");
}

#[test]
#[cfg(feature = "runtime-async-std")]
fn concurrent_deliveries_on_async_std() {
    concurrent_deliveries("async-std");
}

#[test]
#[cfg(feature = "runtime-tokio")]
fn disk_full_on_tokio() {
    disk_full("tokio");
}

#[test]
#[cfg(feature = "runtime-smol")]
fn disk_full_on_smol() {
    disk_full("smol");
}

#[test]
#[cfg(feature = "runtime-async-std")]
fn disk_full_on_async_std() {
    disk_full("async-std");
}
