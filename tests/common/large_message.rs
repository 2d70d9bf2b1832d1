//! Helpers of the in-process large-message tests (`tests/streaming_example.rs`,
//! `tests/proxy_large.rs`): this process's memory, and a blocking reply reader.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;

/// A `/proc/self/status` field in KiB (`VmRSS:`, `VmHWM:`).
pub fn status_kib(field: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("a /proc/self/status field")
}

/// The last line of the next reply, without CRLF.
pub fn reply(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.trim_end().to_owned();
        }
    }
}
