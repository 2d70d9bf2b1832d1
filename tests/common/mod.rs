//! Helpers shared by the test crates that run the `smtpkit` binary
//! (`tests/cli.rs`, `tests/memory.rs`, `tests/hardening.rs`).

pub mod server;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
