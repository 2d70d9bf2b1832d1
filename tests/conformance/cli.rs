//! The CLI-level replay: the `smtpkit` binary started with each group's command
//! line from `aiosmtpd/servers.json` (once per group, as the harness does), and
//! the group's dialogs replayed over loopback TCP, a Unix socket, STARTTLS and
//! implicit TLS. The groups run in parallel, each on its own server.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dialog::{Dialog, GROUPS, data_dir};
use crate::replay::{self, Connector, Fill, Wire};

#[path = "../common/tls_client.rs"]
mod tls_client;
use tls_client::tls_client_config;

const BIN: &str = env!("CARGO_BIN_EXE_smtpkit");
/// How long a server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Replays every dialog against the binary on `runtime`; one verdict per dialog.
pub fn replay_all<'a>(
    dialogs: &'a [Dialog],
    runtime: &str,
) -> Vec<(&'a Dialog, Result<(), String>)> {
    let servers = crate::dialog::servers();
    let work = tempfile::tempdir().expect("a temporary directory");
    let mut results = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = GROUPS
            .iter()
            .map(|(group, _)| {
                let template = servers
                    .get(*group)
                    .unwrap_or_else(|| panic!("servers.json has no command line for {group}"))
                    .clone();
                let members: Vec<&Dialog> = dialogs.iter().filter(|d| d.group == *group).collect();
                let work = work.path().to_owned();
                scope.spawn(move || {
                    let server = Server::start(group, &template, runtime, &work);
                    members
                        .into_iter()
                        .map(|d| {
                            let verdict = match &server {
                                Ok(s) => replay::replay(d, s, *group == "smtps"),
                                Err(e) => Err(e.clone()),
                            };
                            (d, verdict)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            results.extend(h.join().expect("a replay thread"));
        }
    });
    results
}

/// A running `smtpkit`, killed on drop.
struct Server {
    child: Child,
    target: Target,
    tls: Arc<rustls::ClientConfig>,
}

#[derive(Clone)]
enum Target {
    Tcp(u16),
    Unix(PathBuf),
}

impl Server {
    /// Starts the group's server; a port that another socket took meanwhile (a
    /// client's ephemeral port, say) makes the server exit, and it is started
    /// again on another.
    fn start(group: &str, template: &str, runtime: &str, work: &Path) -> Result<Server, String> {
        let mut last = String::new();
        for _attempt in 0..5 {
            match Server::start_once(group, template, runtime, work) {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start_once(
        group: &str,
        template: &str,
        runtime: &str,
        work: &Path,
    ) -> Result<Server, String> {
        let data = data_dir();
        let port = free_port();
        let sock = work.join(format!("{group}.sock"));
        let mut words = template.split_whitespace();
        let program = words.next().expect("a command line");
        assert!(program.ends_with("smtpkit"), "{group}: {template}");
        let args: Vec<String> = words
            .map(|w| {
                w.replace("{port}", &port.to_string())
                    .replace("{sock}", &sock.display().to_string())
                    .replace("{harness}", &data.display().to_string())
                    .replace("{certs}", &data.join("certs").display().to_string())
            })
            .collect();
        let target = if template.contains("{sock}") {
            Target::Unix(sock)
        } else {
            Target::Tcp(port)
        };
        let child = Command::new(BIN)
            .args(&args)
            .args(["--runtime", runtime])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {BIN}: {e}"))?;
        let mut server = Server {
            child,
            target,
            tls: tls_client_config(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{group}: smtpkit {args:?} exited with {status}"));
            }
            if server.target.listening() {
                // Listening, and still running (not a server that bound
                // nothing and is exiting).
                std::thread::sleep(Duration::from_millis(20));
                if let Ok(None) = server.child.try_wait() {
                    return Ok(server);
                }
                continue;
            }
            if Instant::now() > deadline {
                return Err(format!("{group}: smtpkit {args:?} did not listen"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that no other
/// server of this process was given (the runtimes' replays run at once).
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..100 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no fresh free port in 100 tries");
}

/// A plain socket of either kind.
enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Target {
    /// A server accepts there (a TCP connection to a port nobody listens on
    /// can connect to itself on loopback: that one does not count).
    fn listening(&self) -> bool {
        match self.connect() {
            Ok(Sock::Tcp(ref s)) => s.local_addr().ok() != s.peer_addr().ok(),
            Ok(Sock::Unix(_)) => true,
            Err(_) => false,
        }
    }

    fn connect(&self) -> std::io::Result<Sock> {
        Ok(match self {
            Target::Tcp(port) => {
                let s = TcpStream::connect(("127.0.0.1", *port))?;
                s.set_nodelay(true)?;
                Sock::Tcp(s)
            }
            Target::Unix(path) => Sock::Unix(UnixStream::connect(path)?),
        })
    }
}

impl Sock {
    fn set_read_timeout(&self, t: Duration) {
        let t = Some(t.max(Duration::from_millis(1)));
        let _ = match self {
            Sock::Tcp(s) => s.set_read_timeout(t),
            Sock::Unix(s) => s.set_read_timeout(t),
        };
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        let _ = match self {
            Sock::Tcp(s) => s.shutdown(Shutdown::Both),
            Sock::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

/// A client connection, plain or TLS.
enum SocketWire {
    Plain(Sock, Arc<rustls::ClientConfig>),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Sock>>),
    Gone,
}

impl Connector for Server {
    fn connect(&self, tls: bool) -> Result<Box<dyn Wire>, String> {
        let sock = self.target.connect().map_err(|e| format!("connect: {e}"))?;
        let mut wire = SocketWire::Plain(sock, self.tls.clone());
        if tls {
            wire.start_tls()?;
        }
        Ok(Box::new(wire))
    }
}

impl Wire for SocketWire {
    fn send(&mut self, data: &[u8]) {
        let _ = match self {
            SocketWire::Plain(s, _) => s.write_all(data),
            SocketWire::Tls(s) => s.write_all(data).and_then(|()| s.flush()),
            SocketWire::Gone => Ok(()),
        };
    }

    fn fill(&mut self, timeout: Duration) -> Fill {
        let mut buf = vec![0; 65536];
        let read = match self {
            SocketWire::Plain(s, _) => {
                s.set_read_timeout(timeout);
                s.read(&mut buf)
            }
            SocketWire::Tls(s) => {
                s.sock.set_read_timeout(timeout);
                s.read(&mut buf)
            }
            SocketWire::Gone => Ok(0),
        };
        match read {
            Ok(0) => Fill::Eof,
            Ok(n) => Fill::Data(buf[..n].to_vec()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Fill::Timeout
            }
            Err(_) => Fill::Eof,
        }
    }

    fn start_tls(&mut self) -> Result<(), String> {
        let SocketWire::Plain(mut sock, config) = std::mem::replace(self, SocketWire::Gone) else {
            return Err("already TLS".into());
        };
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
        let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Duration::from_secs(5));
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
        }
        *self = SocketWire::Tls(Box::new(rustls::StreamOwned::new(conn, sock)));
        Ok(())
    }

    fn pause(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}
