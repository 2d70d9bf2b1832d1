//! Postfix's own SMTP client relays into smtpkit with every extension on: a
//! private Postfix instance (its own configuration and queue in a temporary
//! directory, no listener of its own, `relayhost` = smtpkit) takes a message
//! from `sendmail -N success,delay,failure -V ENVID -R hdrs` and delivers it.
//! Between the two, a recording relay shows Postfix pipelining (MAIL, RCPT and
//! DATA or BDAT in one read, RFC 2920) and the handler sees the DSN
//! parameters on the envelope (RFC 3461).
//!
//! Needs root (Postfix's master) and Debian's `postfix`; skipped with a note
//! otherwise, unless `SMTPKIT_REQUIRE_CLIENTS=1` (CI) makes a missing Postfix
//! a failure.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtpkit::proto::{DsnReturn, Extensions, Notify};
use smtpkit::tokio::Controller;
use smtpkit::{Config, Envelope, Handler, HookResult, Outcome, Session};

/// Keeps every message's envelope.
#[derive(Clone, Default)]
struct Envelopes(Arc<Mutex<Vec<Envelope>>>);

impl Handler for Envelopes {
    async fn handle_data(&self, _: &mut Session, envelope: &mut Envelope) -> HookResult {
        self.0.lock().unwrap().push(envelope.clone());
        Ok(Outcome::Default)
    }
}

fn postfix_available() -> bool {
    let installed =
        Path::new("/usr/sbin/postfix").exists() && Path::new("/usr/sbin/sendmail").exists();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if installed && root {
        return true;
    }
    let why = if installed {
        "not running as root"
    } else {
        "postfix not installed"
    };
    if std::env::var_os("SMTPKIT_REQUIRE_CLIENTS").is_some() && !installed {
        panic!("postfix is required (SMTPKIT_REQUIRE_CLIENTS is set) but not installed");
    }
    eprintln!("note: {why}; skipping the Postfix relay test");
    false
}

/// A private Postfix instance; stopped when dropped.
struct Postfix {
    config: PathBuf,
}

impl Postfix {
    fn start(dir: &Path, relay: SocketAddr) -> Postfix {
        let config = dir.join("etc");
        let data = dir.join("data");
        for d in [&config, &dir.join("queue"), &data] {
            std::fs::create_dir_all(d).unwrap();
        }
        let status = Command::new("chown")
            .arg("postfix")
            .arg(&data)
            .status()
            .unwrap();
        assert!(status.success(), "chown postfix {data:?}");
        let master = std::fs::read_to_string("/etc/postfix/master.cf").unwrap();
        // No listener of its own: only the delivery side runs.
        let master: String = master
            .lines()
            .filter(|l| !l.starts_with("smtp ") || !l.contains(" inet "))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(config.join("master.cf"), master).unwrap();
        let d = dir.display();
        std::fs::write(
            config.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {d}/queue\ndata_directory = {d}/data\n\
                 mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = loopback-only\n\
                 inet_protocols = ipv4\nmyhostname = client.test\nmydomain = client.test\n\
                 myorigin = client.test\nmydestination =\nrelayhost = [{}]:{}\n\
                 smtp_tls_security_level = none\nsmtp_host_lookup = native\n\
                 smtp_dns_support_level = disabled\nmaillog_file_prefixes = {d}\n\
                 maillog_file = {d}/maillog\n",
                relay.ip(),
                relay.port()
            ),
        )
        .unwrap();
        let out = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&config)
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "postfix start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Postfix { config }
    }

    fn sendmail(&self, args: &[&str], message: &[u8]) {
        let mut child = Command::new("/usr/sbin/sendmail")
            .arg("-C")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(message).unwrap();
        assert!(child.wait().unwrap().success(), "sendmail");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.config.parent().unwrap().join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Forwards one connection to `server`, recording each read from the client.
fn recording_relay(server: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reads = Arc::new(Mutex::new(Vec::new()));
    let seen = reads.clone();
    std::thread::spawn(move || {
        let Ok((mut client, _)) = listener.accept() else {
            return;
        };
        let mut upstream = TcpStream::connect(server).unwrap();
        let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut u2, &mut c2);
            let _ = c2.shutdown(Shutdown::Write);
        });
        let mut buf = vec![0; 64 << 10];
        for _ in 0..100_000 {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.lock().unwrap().push(buf[..n].to_vec());
                    if upstream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = upstream.shutdown(Shutdown::Write);
    });
    (addr, reads)
}

#[test]
fn postfix_pipelines_and_carries_dsn_parameters() {
    if !postfix_available() {
        return;
    }
    let handler = Envelopes::default();
    let mut controller = Controller::new(handler.clone())
        .with_hostname("127.0.0.1")
        .with_port(0)
        .with_config(Config::new("smtpkit.test").with_extensions(Extensions::all()));
    controller.start().unwrap();
    let (relay, reads) = recording_relay(controller.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let postfix = Postfix::start(dir.path(), relay);
    let body = b"Subject: relayed by Postfix\r\n\r\nHello from Postfix.\r\n.leading dot\r\n";
    postfix.sendmail(
        &[
            "-N",
            "success,delay,failure",
            "-V",
            "Env-Id.42",
            "-R",
            "hdrs",
            "-f",
            "anne@example.com",
            "bart@example.com",
        ],
        body,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while handler.0.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "Postfix did not deliver; its log:\n{}",
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let envelope = handler.0.lock().unwrap()[0].clone();
    assert_eq!(envelope.mail_from.as_deref(), Some("anne@example.com"));
    assert_eq!(envelope.rcpt_tos, ["bart@example.com"]);
    assert_eq!(
        envelope.dsn.envid.as_deref(),
        Some("Env-Id.42"),
        "ENVID keeps its case"
    );
    assert_eq!(envelope.dsn.ret, Some(DsnReturn::Headers));
    let rcpt = &envelope.rcpt_dsn[0];
    assert_eq!(
        rcpt.notify,
        Some(Notify {
            success: true,
            failure: true,
            delay: true
        })
    );
    let orcpt = rcpt.orcpt.as_ref().expect("Postfix sends ORCPT");
    assert_eq!(orcpt.address, "bart@example.com");
    let content = String::from_utf8_lossy(&envelope.content);
    assert!(
        content.ends_with("Hello from Postfix.\r\n.leading dot\r\n"),
        "{content:?}"
    );

    // One read held MAIL, RCPT and the message command: Postfix pipelined them.
    let reads = reads.lock().unwrap().clone();
    let pipelined = reads.iter().any(|r| {
        let text = String::from_utf8_lossy(r);
        text.contains("MAIL FROM:")
            && text.contains("RCPT TO:")
            && (text.contains("\r\nDATA\r\n") || text.contains("\r\nBDAT "))
    });
    let shown: Vec<String> = reads
        .iter()
        .map(|r| format!("{:?}", String::from_utf8_lossy(&r[..r.len().min(300)])))
        .collect();
    assert!(
        pipelined,
        "no read held MAIL, RCPT and DATA/BDAT:\n{}",
        shown.join("\n")
    );
    eprintln!("Postfix's reads:\n{}", shown.join("\n"));
    drop(postfix);
    controller.stop().unwrap();
}
