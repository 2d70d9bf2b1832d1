//! The `Proxy` handler relays a 50 MiB message in bounded memory: it spools
//! past its threshold (1 MiB) into a temporary file and relays from there.
//! The upstream is `examples/hash_stream.rs` (it hashes as it streams); the
//! digest must be the one of the message with aiosmtpd's `X-Peer` header, and
//! the process's peak memory (client, proxy and upstream) grows by less than
//! 16 MiB. Alone in its test binary, so no other test's memory counts.
#![cfg(all(feature = "runtime-tokio", feature = "proxy-handler"))]

#[allow(dead_code)]
#[path = "../examples/hash_stream.rs"]
mod hash_stream;

#[path = "common/large_message.rs"]
mod large_message;

use large_message::{reply, status_kib};

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use hash_stream::{Fnv1a, Hasher};
use smtpkit::handlers::Proxy;
use smtpkit::tokio::Controller;

#[test]
fn a_50_mib_message_is_relayed_from_a_spool_file_in_bounded_memory() {
    const BLOCKS: usize = 800; // of 64,000 bytes: 51.2 MB
    let upstream = Hasher::default();
    let config = smtpkit::Config::new("upstream.example").with_data_size_limit(None);
    let mut upstream_controller = Controller::new(upstream.clone())
        .with_hostname("127.0.0.1")
        .with_port(0)
        .with_config(config.clone());
    upstream_controller.start().unwrap();
    let spool_dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::new(
        "127.0.0.1",
        upstream_controller.local_addr().unwrap().port(),
    )
    .with_spool(1 << 20, spool_dir.path());
    let mut proxy_controller = Controller::new(proxy)
        .with_hostname("127.0.0.1")
        .with_port(0)
        .with_config(config);
    proxy_controller.start().unwrap();

    let stream = TcpStream::connect(proxy_controller.local_addr().unwrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    assert!(reply(&mut reader).starts_with("220 "));
    writer
        .write_all(b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
        .unwrap();
    for want in [
        "250 HELP",
        "250 OK",
        "250 OK",
        "354 End data with <CR><LF>.<CR><LF>",
    ] {
        assert_eq!(reply(&mut reader), want);
    }
    let before = status_kib("VmRSS:");
    // What the upstream must receive: the X-Peer line before the empty line.
    let mut expected = Fnv1a::default();
    expected.update(b"Subject: big\r\nX-Peer: 127.0.0.1\r\n\r\n");
    writer.write_all(b"Subject: big\r\n\r\n").unwrap();
    let block = [b"p".repeat(998).as_slice(), b"\r\n"].concat().repeat(64);
    for _ in 0..BLOCKS {
        writer.write_all(&block).unwrap();
        expected.update(&block);
    }
    writer.write_all(b".\r\n").unwrap();
    assert_eq!(reply(&mut reader), "250 OK");
    let growth = status_kib("VmHWM:").saturating_sub(before);
    let seen = upstream.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].1, expected.0,
        "the upstream got the message byte for byte"
    );
    assert!(
        growth < 16 << 10,
        "peak memory grew by {growth} KiB for a 50 MiB message"
    );
    assert_eq!(
        std::fs::read_dir(spool_dir.path()).unwrap().count(),
        0,
        "the spool file is gone"
    );
    proxy_controller.stop().unwrap();
    upstream_controller.stop().unwrap();
}
