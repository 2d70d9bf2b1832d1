//! A `smtpkit` process under test and a blocking client for it (the crates that
//! measure the binary from outside: `tests/memory.rs`, `tests/hardening.rs`).
//! Each crate uses part of it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_smtpkit");
/// How long a client waits for a reply.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes in a KiB.
pub const KIB: u64 = 1024;
/// Bytes in a MiB.
pub const MIB: u64 = 1024 * KIB;

/// A running `smtpkit -n -c sink` (or another handler) on 127.0.0.1, killed on
/// drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    stderr: tempfile::NamedTempFile,
}

impl Server {
    pub fn start(runtime: &str) -> Server {
        Server::start_with(runtime, &["-c", "sink"])
    }

    /// `smtpkit -n HANDLER_ARGS --runtime RUNTIME -l 127.0.0.1:PORT`.
    pub fn start_with(runtime: &str, handler: &[&str]) -> Server {
        Server::start_wrapped(&[], runtime, handler)
    }

    /// [`Server::start_with`] run by `WRAPPER... smtpkit ARGS...`: the wrapper
    /// (for example `sh -c 'ulimit -v N; exec "$0" "$@"'`) must `exec` the
    /// binary, so the child's pid is the server's. The server's stderr goes to a
    /// file ([`Server::stderr`]).
    pub fn start_wrapped(wrapper: &[&str], runtime: &str, handler: &[&str]) -> Server {
        // The port is found free, then bound by the server: retry if another
        // process took it in between.
        for _attempt in 0..3 {
            let port = free_port();
            let stderr = tempfile::NamedTempFile::new().expect("a file for stderr");
            let mut command = match wrapper.split_first() {
                Some((program, args)) => {
                    let mut c = Command::new(program);
                    c.args(args).arg(BIN);
                    c
                }
                None => Command::new(BIN),
            };
            let mut child = command
                .arg("-n")
                .args(handler)
                .args(["--runtime", runtime, "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr.reopen().expect("reopen the stderr file"))
                .spawn()
                .expect("spawn smtpkit");
            let deadline = Instant::now() + IO_TIMEOUT;
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    eprintln!(
                        "smtpkit exited with {status} (port {port} taken?): {}",
                        std::fs::read_to_string(stderr.path()).unwrap_or_default()
                    );
                    break;
                }
                // A connection to the server, not a loopback self-connect
                // (the client's ephemeral port can be the free port itself,
                // which then keeps the server from binding it).
                let up = TcpStream::connect(("127.0.0.1", port))
                    .is_ok_and(|s| s.local_addr().ok() != s.peer_addr().ok());
                if up {
                    return Server {
                        child,
                        port,
                        stderr,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("smtpkit --runtime {runtime} did not come up");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("smtpkit --runtime {runtime} could not bind a free port");
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// Whether the process is still running (it has not exited or been killed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A field of `/proc/<pid>/status` in bytes (the file gives kB).
    pub fn status(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in {path}"));
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unreadable {line:?}"));
        kib * KIB
    }

    pub fn rss(&self) -> u64 {
        self.status("VmRSS")
    }

    pub fn peak(&self) -> u64 {
        self.status("VmHWM")
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// A blocking SMTP client with line-buffered replies.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to smtpkit");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, data: &[u8]) {
        self.stream.write_all(data).expect("write to smtpkit");
    }

    /// One reply line, without CRLF (multi-line replies: call again).
    pub fn line(&mut self) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                return String::from_utf8(line).expect("a UTF-8 reply");
            }
            assert!(Instant::now() < deadline, "no reply line in time");
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!(
                    "smtpkit closed the connection; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("reading a reply: {e}"),
            }
        }
    }

    /// One reply line, or why there is none (closed, an I/O error, no reply in
    /// time) instead of a panic.
    pub fn try_line(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                return String::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"));
            }
            if Instant::now() >= deadline {
                return Err("no reply line in time".into());
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(format!(
                        "closed; got {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ));
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading a reply: {e}")),
            }
        }
    }

    /// The last line of a (possibly multi-line) reply.
    pub fn reply(&mut self) -> String {
        for _ in 0..100 {
            let line = self.line();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
        panic!("reply longer than 100 lines")
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    pub fn greeting(&mut self) {
        let g = self.reply();
        assert!(g.starts_with("220 "), "greeting {g:?}");
    }

    /// Writes `total` bytes of `fill` from another thread (so neither side's
    /// buffers fill up while this one reads), then `tail`, and returns the next
    /// reply.
    pub fn flood(&mut self, fill: u8, total: usize, tail: &'static [u8]) -> String {
        let mut writer = self.stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let chunk = vec![fill; 64 * 1024];
            for _ in 0..total / chunk.len() {
                writer.write_all(&chunk)?;
            }
            writer.write_all(tail)
        });
        let reply = self.reply();
        sender.join().unwrap().expect("the flood is taken in");
        reply
    }
}
