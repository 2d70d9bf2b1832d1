//! The smol runtime (feature `runtime-smol`): the [`Runtime`] trait for smol and
//! the controller family over it. The names match `smtpkit::tokio`.
//!
//! ```no_run
//! use smtpkit::handlers::Sink;
//! use smtpkit::smol::Controller;
//!
//! let mut controller = Controller::new(Sink).with_hostname("127.0.0.1").with_port(0);
//! controller.start().unwrap();
//! println!("listening on {}", controller.local_addr().unwrap());
//! controller.stop().unwrap();
//! ```

use std::io;
use std::pin::Pin;
use std::time::Instant;

use super::async_io as glue;
use crate::server::{AsyncTimer, BoxFuture, Listener, Runtime};

/// The smol [`Runtime`] (tasks on smol's global executor).
#[derive(Debug, Default, Clone, Copy)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    fn spawn(&self, future: BoxFuture) {
        ::smol::spawn(future).detach();
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

    /// smol's global executor serves the connections; its size comes from the
    /// `SMOL_THREADS` environment variable, not from `workers`.
    fn block_on(&self, future: BoxFuture, workers: usize) -> io::Result<()> {
        let _ = workers;
        ::smol::block_on(future);
        Ok(())
    }
}

crate::server::runtime_names!(SmolRuntime, "smol");
