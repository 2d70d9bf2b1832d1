//! Runs the `smtpkit` binary as a user would.

mod common;
use common::free_port;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smtpkit");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run smtpkit")
}

/// A running `smtpkit`, killed on drop.
struct Server {
    child: Child,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn smtpkit");
        Server { child }
    }

    fn terminate(mut self) -> Output {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "smtpkit did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = Vec::new();
        let mut err = Vec::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut err)
            .unwrap();
        let status = self.child.wait().unwrap();
        Output {
            status,
            stdout: out,
            stderr: err,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect_tcp(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                return s;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "server did not come up: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Sends each command and returns the first reply line after it.
fn dialogue<S: Read + Write>(stream: S, commands: &[&str]) -> Vec<String> {
    let mut reader = BufReader::new(stream);
    let mut replies = Vec::new();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    replies.push(line.trim_end().to_owned());
    for cmd in commands {
        reader.get_mut().write_all(cmd.as_bytes()).unwrap();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        replies.push(line.trim_end().to_owned());
    }
    replies
}

const MESSAGE: &[&str] = &[
    "EHLO client.example\r\n",
    "MAIL FROM:<anne@example.com>\r\n",
    "RCPT TO:<bart@example.com>\r\n",
    "DATA\r\n",
    "Subject: hello\r\n\r\nHi Bart.\r\n..dot\r\n.\r\n",
    "QUIT\r\n",
];

#[test]
fn version_and_help() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("smtpkit {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--nosetuid",
        "--class",
        "--size",
        "--smtputf8",
        "--debug",
        "--listen",
        "--unix",
        "--hostname",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for (args, expect) in [
        (&["--bogus"][..], "--bogus"),
        (
            &["-n", "-l", "127.0.0.1:foo"][..],
            "Invalid port number: foo",
        ),
        (
            &["-n", "-c", "mailbox"][..],
            "The directory for the maildir is required",
        ),
        (
            &["-n", "-c", "mailbox", "a", "b"][..],
            "Too many arguments for Mailbox handler",
        ),
        (
            &["-n", "-c", "sink", "x"][..],
            "Sink handler does not accept arguments",
        ),
        (
            &["-n", "-c", "debugging", "x"][..],
            "Debugging usage: [stdout|stderr]",
        ),
        (&["-n", "-c", "nosuch"][..], "unknown handler"),
        (&["-n", "-s", "big"][..], "big"),
        (&["-n", "--busy-poll", "soon"][..], "--busy-poll"),
        (&["-n", "--blocking-threads", "0"][..], "--blocking-threads"),
        (&["-n", "--blocking-queue", "many"][..], "--blocking-queue"),
        (
            &["-n", "--extensions", "pipelining,chunky"][..],
            "unknown extension \"chunky\" (known: pipelining, chunking, binarymime",
        ),
        (&["-n", "--max-recipients", "0"][..], "--max-recipients"),
        (
            &["-n", "--shutdown-timeout", "soon"][..],
            "--shutdown-timeout",
        ),
        (&["-n", "--timeout", "never"][..], "--timeout"),
        (&["-n", "--max-connections", "0"][..], "--max-connections"),
        (
            &["-n", "--max-messages-per-connection", "0"][..],
            "--max-messages-per-connection",
        ),
        (
            &["-n", "--max-auth-failures", "x"][..],
            "--max-auth-failures",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

#[test]
fn bind_failure_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = run(&["-n", "-c", "sink", "-l", &format!("127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bind"));
}

#[test]
fn sink_over_tcp_then_sigterm() {
    let port = free_port();
    let server = Server::start(&[
        "-n",
        "-c",
        "sink",
        "-l",
        &format!("127.0.0.1:{port}"),
        "--hostname",
        "mx.test",
    ]);
    let replies = dialogue(connect_tcp(port), MESSAGE);
    assert_eq!(
        replies,
        [
            format!("220 mx.test smtpkit {}", env!("CARGO_PKG_VERSION")),
            "250 HELP".to_owned(),
            "250 OK".to_owned(),
            "250 OK".to_owned(),
            "354 End data with <CR><LF>.<CR><LF>".to_owned(),
            "250 OK".to_owned(),
            "221 Bye".to_owned(),
        ]
    );
    let out = server.terminate();
    assert!(out.status.success(), "{out:?}");
    // The port is released.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn busy_polling_on_and_off() {
    // 0 turns it off; a long window makes the spinning path serve every
    // command and accept the second connection.
    for window in ["0", "20000"] {
        let port = free_port();
        let server = Server::start(&[
            "-n",
            "-c",
            "sink",
            "-l",
            &format!("127.0.0.1:{port}"),
            "--busy-poll",
            window,
        ]);
        for _ in 0..2 {
            let replies = dialogue(connect_tcp(port), MESSAGE);
            assert_eq!(replies.len(), 7, "--busy-poll {window}: {replies:?}");
            assert!(replies[0].starts_with("220 "), "{replies:?}");
            assert_eq!(replies[5], "250 OK", "--busy-poll {window}");
            assert_eq!(replies[6], "221 Bye", "--busy-poll {window}");
        }
        let out = server.terminate();
        assert!(out.status.success(), "{out:?}");
    }
}

#[test]
fn debugging_prints_messages_on_stdout_by_default() {
    let port = free_port();
    let server = Server::start(&["-n", "-l", &format!("127.0.0.1:{port}")]);
    let replies = dialogue(connect_tcp(port), MESSAGE);
    assert_eq!(replies[5], "250 OK");
    let out = server.terminate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("---------- MESSAGE FOLLOWS ----------"),
        "{stdout}"
    );
    assert!(stdout.contains("Subject: hello"), "{stdout}");
    assert!(stdout.contains("X-Peer: ('127.0.0.1', "), "{stdout}");
    assert!(stdout.contains(".dot"), "{stdout}");
    assert!(
        stdout.contains("------------ END MESSAGE ------------"),
        "{stdout}"
    );
}

#[test]
fn control_characters_in_addresses_are_refused_on_request() {
    let commands = [
        "EHLO client.example\r\n",
        "MAIL FROM:<an\u{1}ne@example.com>\r\n",
        "MAIL FROM:<anne@example.com>\r\n",
        "RCPT TO:<ba\u{0}rt@example.com>\r\n",
        "QUIT\r\n",
    ];
    // aiosmtpd's default: the bytes are part of the address.
    let port = free_port();
    let server = Server::start(&["-n", "-c", "sink", "-l", &format!("127.0.0.1:{port}")]);
    let replies = dialogue(connect_tcp(port), &commands);
    assert_eq!(
        replies[1..],
        [
            "250 HELP",
            "250 OK",
            "503 Error: nested MAIL command",
            "250 OK",
            "221 Bye"
        ]
    );
    server.terminate();

    let port = free_port();
    let server = Server::start(&[
        "-n",
        "-c",
        "sink",
        "--refuse-control-characters",
        "-l",
        &format!("127.0.0.1:{port}"),
    ]);
    let replies = dialogue(connect_tcp(port), &commands);
    assert_eq!(
        replies[1..],
        [
            "250 HELP",
            "501 5.1.7 Bad sender address syntax: control character",
            "250 OK",
            "501 5.1.3 Bad recipient address syntax: control character",
            "221 Bye"
        ]
    );
    server.terminate();
}

#[test]
fn connection_limits_and_the_idle_timeout_from_the_command_line() {
    let port = free_port();
    let server = Server::start(&[
        "-n",
        "-c",
        "sink",
        "--max-connections",
        "1",
        "--timeout",
        "0.5",
        "--hook-timeout",
        "5",
        "--max-messages-per-connection",
        "3",
        "--max-auth-failures",
        "2",
        "-l",
        &format!("127.0.0.1:{port}"),
    ]);
    let mut first = BufReader::new(connect_tcp(port));
    let mut line = String::new();
    first.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 "), "{line}");
    // A second connection while the first is open: 421 4.7.0 and closed.
    let mut second = String::new();
    connect_tcp(port).read_to_string(&mut second).unwrap();
    assert!(
        second.starts_with("421 4.7.0 ") && second.contains("Too many connections"),
        "{second}"
    );
    // The first is idle: 421 4.4.2 after --timeout.
    line.clear();
    first.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("421 4.4.2 ") && line.contains("timeout exceeded"),
        "{line}"
    );
    server.terminate();
}

#[test]
fn extensions_from_the_command_line() {
    let port = free_port();
    let server = Server::start(&[
        "-n",
        "-c",
        "sink",
        "--extensions",
        "pipelining,CHUNKING,enhancedstatuscodes,dsn,limits",
        "--max-recipients",
        "1",
        "-l",
        &format!("127.0.0.1:{port}"),
    ]);
    let mut stream = connect_tcp(port);
    stream
        .write_all(
            b"EHLO x\r\nMAIL FROM:<a@b> RET=HDRS\r\nRCPT TO:<c@d> NOTIFY=NEVER\r\n\
              RCPT TO:<e@f>\r\nBDAT 5 LAST\r\n\0\r\n.\nQUIT\r\n",
        )
        .unwrap();
    let mut wire = String::new();
    stream.read_to_string(&mut wire).unwrap();
    let lines: Vec<&str> = wire.lines().collect();
    assert!(lines[1].starts_with("250-"), "EHLO's first line: {wire}");
    assert_eq!(
        lines[2..],
        [
            "250-8BITMIME",
            "250-PIPELINING",
            "250-CHUNKING",
            "250-ENHANCEDSTATUSCODES",
            "250-DSN",
            "250-LIMITS RCPTMAX=1",
            "250 HELP",
            "250 2.1.0 OK",
            "250 2.1.5 OK",
            "452 4.5.3 Error: too many recipients",
            "250 2.0.0 OK",
            "221 2.0.0 Bye",
        ],
        "{wire}"
    );
    server.terminate();
}

#[test]
fn size_and_smtputf8_flags() {
    let port = free_port();
    let server = Server::start(&[
        "-n",
        "-c",
        "sink",
        "-u",
        "-s",
        "4096",
        "-l",
        &format!("127.0.0.1:{port}"),
    ]);
    let stream = connect_tcp(port);
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    reader.get_mut().write_all(b"EHLO x\r\n").unwrap();
    let mut lines = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        lines.push(line.trim_end().to_owned());
        if line.as_bytes()[3] == b' ' {
            break;
        }
    }
    assert_eq!(
        lines[1..],
        ["250-SIZE 4096", "250-8BITMIME", "250-SMTPUTF8", "250 HELP"]
    );
    drop(reader);
    server.terminate();
}

#[test]
fn mailbox_over_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("smtp.sock");
    let maildir = dir.path().join("Maildir");
    let server = Server::start(&[
        "-n",
        "--unix",
        sock.to_str().unwrap(),
        "-c",
        "mailbox",
        maildir.to_str().unwrap(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match std::os::unix::net::UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "no socket: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let replies = dialogue(stream, MESSAGE);
    assert_eq!(replies[5], "250 OK");
    let files = list(&maildir.join("new"));
    assert_eq!(files.len(), 1);
    let stored = std::fs::read_to_string(&files[0]).unwrap();
    assert!(stored.contains("Subject: hello"));
    assert!(stored.contains("X-MailFrom: anne@example.com"));
    assert!(stored.contains("X-RcptTo: bart@example.com"));
    assert!(stored.contains("Hi Bart."));
    assert!(stored.contains(".dot") && !stored.contains("..dot"));
    assert!(list(&maildir.join("tmp")).is_empty());
    let out = server.terminate();
    assert!(out.status.success());
    assert!(!sock.exists(), "the socket file is removed on stop");
}

fn list(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn every_compiled_runtime_serves_and_others_are_refused() {
    for (name, compiled) in [
        ("tokio", cfg!(feature = "runtime-tokio")),
        ("smol", cfg!(feature = "runtime-smol")),
        ("async-std", cfg!(feature = "runtime-async-std")),
    ] {
        if compiled {
            let port = free_port();
            let server = Server::start(&[
                "--runtime",
                name,
                "-n",
                "-c",
                "sink",
                "-l",
                &format!("127.0.0.1:{port}"),
            ]);
            let replies = dialogue(connect_tcp(port), MESSAGE);
            assert_eq!(replies[5], "250 OK", "{name}");
            assert_eq!(replies[6], "221 Bye", "{name}");
            assert!(server.terminate().status.success(), "{name}");
        } else {
            let out = run(&["--runtime", name, "-n", "-c", "sink"]);
            assert_eq!(out.status.code(), Some(2), "{name}");
            assert!(String::from_utf8_lossy(&out.stderr).contains("not compiled in"));
        }
    }
    let out = run(&["--runtime", "nosuch", "-n"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
#[cfg(feature = "proxy-handler")]
fn proxy_handler_relays_to_an_upstream() {
    let upstream_port = free_port();
    let upstream = Server::start(&["-n", "-l", &format!("127.0.0.1:{upstream_port}")]);
    connect_tcp(upstream_port);
    let port = free_port();
    let proxy = Server::start(&[
        "-n",
        "-l",
        &format!("127.0.0.1:{port}"),
        "-c",
        "proxy",
        "127.0.0.1",
        &upstream_port.to_string(),
    ]);
    let replies = dialogue(connect_tcp(port), MESSAGE);
    assert_eq!(replies[5], "250 OK");
    proxy.terminate();
    let out = upstream.terminate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("X-Peer: 127.0.0.1"), "{stdout}");
    assert!(stdout.contains("Subject: hello"), "{stdout}");
    let out = run(&["-n", "-c", "proxy", "onlyhost"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Writes a fresh self-signed certificate and key; returns (cert, key) paths.
fn cert_pair(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    (cert_path, key_path)
}

#[test]
fn certificate_and_auth_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair(dir.path(), "a");
    let (_, other_key) = cert_pair(dir.path(), "b");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let users_bad = dir.path().join("users-bad.txt");
    std::fs::write(&users_bad, "alice:wonderland\nno colon here\n").unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--tlscert".into(), s(&cert)],
            "--tlscert and --tlskey must be specified together".into(),
        ),
        (
            vec!["--smtpskey".into(), s(&key)],
            "--smtpscert and --smtpskey must be specified together".into(),
        ),
        (
            vec!["--tlscert".into(), s(&missing), "--tlskey".into(), s(&key)],
            format!("Cert file {} not found", missing.display()),
        ),
        (
            vec!["--tlscert".into(), s(&cert), "--tlskey".into(), s(&missing)],
            format!("Key file {} not found", missing.display()),
        ),
        (
            vec!["--tlscert".into(), s(&garbage), "--tlskey".into(), s(&key)],
            s(&garbage),
        ),
        (
            vec![
                "--smtpscert".into(),
                s(&cert),
                "--smtpskey".into(),
                s(&garbage),
            ],
            s(&garbage),
        ),
        (
            vec![
                "--tlscert".into(),
                s(&cert),
                "--tlskey".into(),
                s(&other_key),
            ],
            s(&other_key),
        ),
        (vec!["--auth-file".into(), s(&missing)], s(&missing)),
        (
            vec!["--auth-file".into(), s(&users_bad)],
            format!("{} line 2", users_bad.display()),
        ),
    ];
    for (args, expect) in cases {
        let mut all = vec![
            "-n".to_owned(),
            "-c".into(),
            "sink".into(),
            "-l".into(),
            "127.0.0.1:0".into(),
        ];
        all.extend(args.iter().cloned());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = run(&refs);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(&expect),
            "{args:?}: expected {expect:?} in {err}"
        );
    }
}

#[test]
fn starttls_and_auth_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair(dir.path(), "srv");
    let users = dir.path().join("users.txt");
    std::fs::write(&users, "alice:wonderland\n").unwrap();
    let port = free_port();
    let server = Server::start(&[
        "-n",
        "-c",
        "sink",
        "-l",
        &format!("127.0.0.1:{port}"),
        "--tlscert",
        cert.to_str().unwrap(),
        "--tlskey",
        key.to_str().unwrap(),
        "--auth-file",
        users.to_str().unwrap(),
        "--auth-required",
    ]);
    connect_tcp(port);
    // Python's smtplib: STARTTLS (required), AUTH, a message.
    let script = "import smtplib, ssl, sys\n\
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
        s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)\n\
        code, _ = s.mail('a@example.com'); assert code == 530, code\n\
        s.starttls(context=ctx); s.ehlo()\n\
        try:\n    s.login('alice', 'wrong'); raise SystemExit('wrong password accepted')\n\
        except smtplib.SMTPAuthenticationError as e:\n    assert e.smtp_code == 535\n\
        s.login('alice', 'wonderland')\n\
        assert not s.sendmail('a@example.com', ['b@example.com'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n\
        s.quit()\n";
    let status = Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(server.terminate().status.success());
}
