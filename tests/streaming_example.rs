//! `examples/hash_stream.rs` against a 50 MiB message: the digest it answers
//! is the one of the bytes sent, and the process's peak memory grows by less
//! than 16 MiB (the message is never held whole: not by the server, not by
//! this client, which sends it from one small block). Alone in its test
//! binary, so no other test's memory counts.
#![cfg(feature = "runtime-tokio")]

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

#[test]
fn a_50_mib_message_streams_through_the_hashing_example_in_bounded_memory() {
    const LINES: usize = 50 << 10; // 1,000-byte lines: 50 MiB and a bit
    let handler = Hasher::default();
    let mut controller = smtpkit::tokio::Controller::new(handler.clone())
        .with_hostname("127.0.0.1")
        .with_port(0)
        .with_config(smtpkit::Config::new("hash.example").with_data_size_limit(None));
    controller.start().unwrap();
    let stream = TcpStream::connect(controller.local_addr().unwrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
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
    let line = [b"h".repeat(998).as_slice(), b"\r\n"].concat();
    let block = line.repeat(64);
    let mut expected = Fnv1a::default();
    for _ in 0..LINES / 64 {
        writer.write_all(&block).unwrap();
        expected.update(&block);
    }
    writer.write_all(b".\r\n").unwrap();
    let size = LINES * 1000;
    assert_eq!(
        reply(&mut reader),
        format!("250 2.0.0 OK: {size} octets, FNV-1a {:016x}", expected.0)
    );
    let growth = status_kib("VmHWM:").saturating_sub(before);
    assert!(
        growth < 16 << 10,
        "peak memory grew by {growth} KiB for a 50 MiB message"
    );
    assert_eq!(
        handler.seen.lock().unwrap().as_slice(),
        [(size, expected.0)]
    );
    controller.stop().unwrap();
}
