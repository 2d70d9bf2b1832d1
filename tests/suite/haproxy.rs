//! A real HAProxy (Debian's `haproxy`, on loopback) in front of smtpkit, once with
//! `send-proxy` (PROXY v1) and once with `send-proxy-v2`: mail sent through it
//! reaches the handler with the client's real address and port in
//! `Session::proxy_data`. The configuration is the one the README's "Scaling out"
//! section shows.
//!
//! HAProxy missing: the test is skipped with a note, unless
//! `SMTPKIT_REQUIRE_CLIENTS` is set (CI installs it and sets it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtpkit::proto::{ProxyAddr, ProxyData};
use smtpkit::{Envelope, Handler, HookResult, Outcome, Session};

use super::util::{Client, IO_TIMEOUT, config, tcp_controller};

/// What the handler saw: the PROXY data and the recipients of each message.
type Seen = Arc<Mutex<Vec<(ProxyData, Vec<String>)>>>;

#[derive(Clone, Default)]
struct ProxyRecorder {
    seen: Seen,
}

impl Handler for ProxyRecorder {
    async fn handle_data(&self, session: &mut Session, envelope: &mut Envelope) -> HookResult {
        let data = session
            .proxy_data
            .clone()
            .expect("PROXY data on the session");
        self.seen
            .lock()
            .unwrap()
            .push((data, envelope.rcpt_tos.clone()));
        Ok(Outcome::Default)
    }
}

fn haproxy_binary() -> Option<&'static str> {
    for candidate in ["/usr/sbin/haproxy", "/usr/bin/haproxy"] {
        if std::path::Path::new(candidate).exists() {
            return Some(candidate);
        }
    }
    assert!(
        std::env::var_os("SMTPKIT_REQUIRE_CLIENTS").is_none(),
        "haproxy is required (SMTPKIT_REQUIRE_CLIENTS is set) but not installed"
    );
    eprintln!("note: haproxy not installed; skipping the HAProxy test");
    None
}

struct HaProxy(Child);

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The README's configuration: TCP mode, PROXY header towards smtpkit.
fn haproxy_config(front: u16, back: SocketAddr, send_proxy: &str) -> String {
    format!(
        "global\n    maxconn 256\n\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\n\
         frontend smtp\n    bind 127.0.0.1:{front}\n    default_backend smtpkit\n\n\
         backend smtpkit\n    server smtpkit1 {back} {send_proxy}\n"
    )
}

fn through_haproxy(send_proxy: &str, expect_version: u8) {
    let Some(haproxy) = haproxy_binary() else {
        return;
    };
    let handler = ProxyRecorder::default();
    let seen = handler.seen.clone();
    let mut cfg = config();
    cfg.proxy_protocol_timeout = Some(Duration::from_secs(5));
    let mut controller = tcp_controller(handler).with_config(cfg);
    controller.start().unwrap();
    let back = controller.local_addr().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let front = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg_path = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg_path, haproxy_config(front, back, send_proxy)).unwrap();
    let _proxy = HaProxy(
        Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start haproxy"),
    );
    let front_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), front);
    let deadline = Instant::now() + IO_TIMEOUT * 2;
    while TcpStream::connect_timeout(&front_addr, IO_TIMEOUT).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut client = Client::connect(front_addr);
    let client_addr = client.local_addr();
    assert!(client.greeting().starts_with("220 "));
    assert_eq!(client.cmd("HELO client.example"), "250 smtpkit.test");
    let reply = client.send_mail(
        "anne@example.com",
        &["bart@example.com"],
        "Subject: via haproxy\r\n\r\nhello\r\n",
    );
    assert_eq!(reply, "250 OK");
    assert_eq!(client.cmd("QUIT"), "221 Bye");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (data, rcpts) = &seen[0];
    assert_eq!(rcpts, &["bart@example.com"]);
    assert!(data.is_valid(), "{data:?}");
    assert_eq!(data.version, Some(expect_version));
    assert_eq!(data.src_addr, Some(ProxyAddr::Ip(client_addr.ip())));
    assert_eq!(data.src_port, Some(client_addr.port()));
    assert_eq!(data.dst_addr, Some(ProxyAddr::Ip(front_addr.ip())));
    assert_eq!(data.dst_port, Some(front));
    controller.stop().unwrap();
}

#[test]
fn haproxy_send_proxy_v1() {
    through_haproxy("send-proxy", 1);
}

#[test]
fn haproxy_send_proxy_v2() {
    through_haproxy("send-proxy-v2", 2);
}
