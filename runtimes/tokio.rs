//! The tokio runtime (feature `runtime-tokio`, on by default): the [`Runtime`]
//! trait for tokio and the controller family over it.
//!
//! ```no_run
//! use smtpkit::handlers::Sink;
//! use smtpkit::tokio::Controller;
//!
//! let mut controller = Controller::new(Sink).with_hostname("127.0.0.1").with_port(0);
//! controller.start().unwrap();
//! println!("listening on {}", controller.local_addr().unwrap());
//! controller.stop().unwrap();
//! ```

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use ::tokio::net;
use ::tokio::time::Sleep;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::proto::Peer;
use crate::server::{AsyncTimer, BoxFuture, BoxStream, Listener, Runtime, Stream};

/// The tokio [`Runtime`].
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioRuntime;

impl AsyncTimer for Sleep {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        Sleep::reset(self, deadline.into());
    }
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Future::poll(self, cx)
    }
}

/// Reads the socket under a tokio stream directly: tokio's own reads first
/// consult its cached readiness, which says "not ready" until the event loop
/// has run.
fn read_socket(socket: socket2::SockRef<'_>, buf: &mut [u8]) -> Option<io::Result<usize>> {
    Some(io::Read::read(&mut &*socket, buf))
}

impl Stream for Compat<net::TcpStream> {
    fn read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        read_socket(socket2::SockRef::from(self.get_ref()), buf)
    }
}

#[cfg(unix)]
impl Stream for Compat<net::UnixStream> {
    fn read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        read_socket(socket2::SockRef::from(self.get_ref()), buf)
    }
}

struct TcpAcceptor(net::TcpListener);

impl Listener for TcpAcceptor {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(BoxStream, Peer)>> {
        self.0.poll_accept(cx).map_ok(|(stream, addr)| {
            let _ = stream.set_nodelay(true);
            (Box::new(stream.compat()) as BoxStream, Peer::Tcp(addr))
        })
    }

    fn accept_now(&mut self) -> Option<io::Result<(BoxStream, Peer)>> {
        let accepted = socket2::SockRef::from(&self.0).accept();
        Some(accepted.and_then(|(socket, addr)| {
            let addr = addr
                .as_socket()
                .ok_or_else(|| io::Error::other("accepted a non-IP socket"))?;
            socket.set_nonblocking(true)?;
            let _ = socket.set_tcp_nodelay(true);
            let stream = net::TcpStream::from_std(socket.into())?;
            Ok((Box::new(stream.compat()) as BoxStream, Peer::Tcp(addr)))
        }))
    }
}

#[cfg(unix)]
struct UnixAcceptor(net::UnixListener);

#[cfg(unix)]
impl Listener for UnixAcceptor {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(BoxStream, Peer)>> {
        self.0
            .poll_accept(cx)
            .map_ok(|(stream, _)| (Box::new(stream.compat()) as BoxStream, Peer::Unix))
    }

    fn accept_now(&mut self) -> Option<io::Result<(BoxStream, Peer)>> {
        let accepted = socket2::SockRef::from(&self.0).accept();
        Some(accepted.and_then(|(socket, _)| {
            socket.set_nonblocking(true)?;
            let stream = net::UnixStream::from_std(socket.into())?;
            Ok((Box::new(stream.compat()) as BoxStream, Peer::Unix))
        }))
    }
}

impl Runtime for TokioRuntime {
    fn spawn(&self, future: BoxFuture) {
        ::tokio::spawn(future);
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(::tokio::time::sleep_until(deadline.into()))
    }

    fn wrap_tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Box<dyn Listener>> {
        Ok(Box::new(TcpAcceptor(net::TcpListener::from_std(listener)?)))
    }

    #[cfg(unix)]
    fn wrap_unix_listener(
        &self,
        listener: std::os::unix::net::UnixListener,
    ) -> io::Result<Box<dyn Listener>> {
        Ok(Box::new(UnixAcceptor(net::UnixListener::from_std(
            listener,
        )?)))
    }

    /// The threaded controllers' runtime: a current-thread runtime for one
    /// worker (no cross-thread wake-ups: the least CPU per connection), else a
    /// multi-threaded one with `workers` threads (0: one per core).
    fn block_on(&self, future: BoxFuture, workers: usize) -> io::Result<()> {
        let runtime = if workers == 1 {
            ::tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        } else {
            let mut builder = ::tokio::runtime::Builder::new_multi_thread();
            if workers > 1 {
                builder.worker_threads(workers);
            }
            let runtime = builder.thread_name("smtpkit-worker").enable_all().build()?;
            // The accept loop runs on a worker, so the connections it spawns
            // start in that worker's queue instead of crossing threads.
            let task = runtime.spawn(future);
            let _ = runtime.block_on(task);
            return Ok(());
        };
        runtime.block_on(future);
        Ok(())
    }
}

crate::server::runtime_names!(TokioRuntime, "tokio");
