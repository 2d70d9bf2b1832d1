//! The async-std runtime (feature `runtime-async-std`, not on by default): the
//! [`Runtime`] trait for async-std and the controller family over it. The names
//! match `smtpkit::tokio`.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052, which recommends smol);
//! smtpkit supports it for programs that still use it.
//!
//! ```no_run
//! use smtpkit::handlers::Sink;
//! use smtpkit::async_std::Controller;
//!
//! let mut controller = Controller::new(Sink).with_hostname("127.0.0.1").with_port(0);
//! controller.start().unwrap();
//! controller.stop().unwrap();
//! ```

use std::io;
use std::pin::Pin;
use std::time::Instant;

use super::async_io as glue;
use crate::server::{AsyncTimer, BoxFuture, Listener, Runtime};

/// The async-std [`Runtime`].
#[derive(Debug, Default, Clone, Copy)]
pub struct AsyncStdRuntime;

impl Runtime for AsyncStdRuntime {
    fn spawn(&self, future: BoxFuture) {
        drop(::async_std::task::spawn(future));
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        glue::new_timer(deadline)
    }

    fn wrap_tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Box<dyn Listener>> {
        glue::wrap_tcp(listener)
    }

    #[cfg(unix)]
    fn wrap_unix_listener(
        &self,
        listener: std::os::unix::net::UnixListener,
    ) -> io::Result<Box<dyn Listener>> {
        glue::wrap_unix(listener)
    }

    /// async-std's global executor serves the connections; its size comes from
    /// the `ASYNC_STD_THREAD_COUNT` environment variable, not from `workers`.
    fn block_on(&self, future: BoxFuture, workers: usize) -> io::Result<()> {
        let _ = workers;
        ::async_std::task::block_on(future);
        Ok(())
    }
}

crate::server::runtime_names!(AsyncStdRuntime, "async-std");
