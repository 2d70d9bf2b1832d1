//! Real SMTP clients (Python's smtplib, swaks, curl, Postfix's smtp-source) send
//! mail to `smtpkit -c mailbox DIR`; each message must land in the Maildir byte for
//! byte: the client's message with aiosmtpd's X-Peer, X-MailFrom and X-RcptTo
//! headers appended to the header block, in the Maildir's LF line endings (what
//! aiosmtpd's Mailbox stores).
//!
//! A client that is not installed is skipped with a note, unless the environment
//! sets `SMTPKIT_REQUIRE_CLIENTS=1` (CI does, after installing them), in which case
//! its absence fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smtpkit");

const MESSAGE: &str = "From: Anne Person <anne@example.com>\r\n\
To: Bart Person <bart@example.com>\r\n\
Subject: a test from a real client\r\n\
Message-ID: <clients-test@example.com>\r\n\
\r\n\
Hi Bart, this is Anne.\r\n\
.a line that starts with a dot\r\n\
..and one with two\r\n\
.\tdot tab\r\n\
\r\n\
Bye.\r\n";

struct Server {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(BIN)
            .args(["-n", "-l", &format!("127.0.0.1:{port}"), "-c", "mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "smtpkit did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            port,
            maildir,
            _dir: dir,
        }
    }

    fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.maildir.join("new"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(
            std::fs::read_dir(self.maildir.join("tmp"))
                .unwrap()
                .next()
                .is_none(),
            "tmp/ must be empty"
        );
        files
            .iter()
            .map(|f| String::from_utf8(std::fs::read(f).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        || Path::new("/usr/sbin").join(tool).exists();
    if !found {
        assert!(
            std::env::var_os("SMTPKIT_REQUIRE_CLIENTS").is_none(),
            "{tool} is required (SMTPKIT_REQUIRE_CLIENTS is set) but not installed"
        );
        eprintln!("note: {tool} not installed; skipping it");
    }
    found
}

/// What the Maildir must hold for MESSAGE sent from 127.0.0.1.
fn expected() -> String {
    let lf = MESSAGE.replace("\r\n", "\n");
    let (headers, body) = lf.split_once("\n\n").unwrap();
    format!(
        "{headers}\nX-Peer: ('127.0.0.1', PORT)\nX-MailFrom: anne@example.com\nX-RcptTo: bart@example.com\n\n{body}"
    )
}

/// Masks the client port in `X-Peer`.
fn mask_port(stored: &str) -> String {
    stored
        .lines()
        .map(|l| match l.strip_prefix("X-Peer: ('127.0.0.1', ") {
            Some(_) => "X-Peer: ('127.0.0.1', PORT)".to_owned(),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if stored.ends_with('\n') { "\n" } else { "" }
}

fn message_file(dir: &Path) -> PathBuf {
    let path = dir.join("message.eml");
    std::fs::write(&path, MESSAGE).unwrap();
    path
}

fn assert_one_message_exact(server: &Server, client: &str) {
    let stored = server.messages();
    assert_eq!(stored.len(), 1, "{client}: one message expected");
    assert_eq!(
        mask_port(&stored[0]),
        expected(),
        "{client}: stored message differs"
    );
}

#[test]
fn python_smtplib() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let status = Command::new("python3")
        .args([
            "-c",
            "import smtplib, sys\n\
             s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)\n\
             refused = s.sendmail('anne@example.com', ['bart@example.com'], sys.argv[2].encode())\n\
             assert not refused, refused\n\
             s.quit()",
            &server.port.to_string(),
            MESSAGE,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    assert_one_message_exact(&server, "smtplib");
}

#[test]
fn swaks() {
    if !have("swaks") {
        return;
    }
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    // swaks ends the data with CRLF "." CRLF after the file's last line, so the
    // file's own final CRLF would become an extra empty line: leave it out.
    let file = dir.path().join("message.eml");
    std::fs::write(&file, MESSAGE.strip_suffix("\r\n").unwrap()).unwrap();
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &server.port.to_string()])
        .args(["--from", "anne@example.com", "--to", "bart@example.com"])
        .args(["--helo", "client.example", "--timeout", "10"])
        .arg("--data")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_one_message_exact(&server, "swaks");
}

#[test]
fn curl() {
    if !have("curl") {
        return;
    }
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = message_file(dir.path());
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("smtp://127.0.0.1:{}/client.example", server.port))
        .args([
            "--mail-from",
            "anne@example.com",
            "--mail-rcpt",
            "bart@example.com",
        ])
        .arg("--upload-file")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_one_message_exact(&server, "curl");
}

#[test]
fn postfix_smtp_source() {
    if !have("smtp-source") {
        return;
    }
    let tool = if Path::new("/usr/sbin/smtp-source").exists() {
        "/usr/sbin/smtp-source"
    } else {
        "smtp-source"
    };
    let server = Server::start();
    // 20 messages of 300 bytes over 2 parallel sessions.
    let status = Command::new(tool)
        .args(["-s", "2", "-m", "20", "-l", "300"])
        .args(["-f", "anne@example.com", "-t", "bart@example.com"])
        .arg(format!("127.0.0.1:{}", server.port))
        .status()
        .unwrap();
    assert!(status.success());
    let stored = server.messages();
    assert_eq!(stored.len(), 20);
    for m in &stored {
        let (headers, body) = m.split_once("\n\n").expect("header block");
        let names: Vec<&str> = headers
            .lines()
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "From",
                "To",
                "Date",
                "Message-Id",
                "X-Peer",
                "X-MailFrom",
                "X-RcptTo"
            ]
        );
        assert!(headers.ends_with("X-MailFrom: anne@example.com\nX-RcptTo: bart@example.com"));
        // smtp-source's body: about 300 bytes of numbered X lines.
        let flat: String = body.lines().collect();
        assert!((280..=300).contains(&flat.len()), "{body:?}");
        assert!(flat.starts_with("1XXXX"));
        assert!(flat.chars().all(|c| c == 'X' || c.is_ascii_digit()));
    }
}

/// Postfix's `smtp-source -L` (LMTP) delivers 1,000 messages with 3 recipients each
/// over 5 sessions; it checks one reply per recipient after each message (RFC 2033),
/// and every message reaches the handler.
#[test]
fn postfix_smtp_source_lmtp() {
    if !have("smtp-source") {
        return;
    }
    let tool = if Path::new("/usr/sbin/smtp-source").exists() {
        "/usr/sbin/smtp-source"
    } else {
        "smtp-source"
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "-n",
            "--lmtp",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "debugging",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the handler's output while it runs: a full pipe would stall it.
    let mut stdout_pipe = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout_pipe, &mut text).unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "smtpkit did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new(tool)
        .args(["-L", "-s", "5", "-m", "1000", "-r", "3", "-l", "200"])
        .args(["-f", "anne@example.com", "-t", "bart@example.com"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let stdout = reader.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout
            .matches("---------- MESSAGE FOLLOWS ----------")
            .count(),
        1000
    );
}
