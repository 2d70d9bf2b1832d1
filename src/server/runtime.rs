//! The small trait through which a runtime enters the server (modelled on quinn's
//! `runtime` module). Each adapter in `runtimes/` implements it in a few lines;
//! everything else is written once over futures-io.

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_lite::{AsyncRead, AsyncWrite};

use crate::proto::Peer;

/// A boxed `Send` future returning `()`.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A byte stream to a client. A stream type of your own needs only
/// `impl Stream for MyStream {}`; the runtime adapters' socket streams also
/// implement [`Stream::read_now`], which busy polling uses.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// Reads from the socket at once, without the event loop: `Err` with
    /// [`io::ErrorKind::WouldBlock`] when nothing is there. `None` (the
    /// default): the stream cannot be read this way (TLS, or not a socket).
    fn read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        let _ = buf;
        None
    }
}

/// A boxed client stream.
pub type BoxStream = Box<dyn Stream>;

/// A listening socket adapted to a runtime.
pub trait Listener: Send + 'static {
    /// Polls for the next connection.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(BoxStream, Peer)>>;

    /// Accepts at once, without the event loop: `Err` with
    /// [`io::ErrorKind::WouldBlock`] when no connection is waiting. `None`
    /// (the default): this listener cannot (busy polling then skips it).
    fn accept_now(&mut self) -> Option<io::Result<(BoxStream, Peer)>> {
        None
    }
}

/// A timer that can be re-armed.
pub trait AsyncTimer: Send + Debug + 'static {
    /// Re-arms the timer for `deadline`.
    fn reset(self: Pin<&mut Self>, deadline: Instant);
    /// Ready once the deadline has passed.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// An async runtime: spawn tasks, make timers, adapt std sockets, run a future.
pub trait Runtime: Send + Sync + Debug + 'static {
    /// Runs `future` in the background.
    fn spawn(&self, future: BoxFuture);
    /// A timer that fires at `deadline`.
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>>;
    /// Adapts a bound, listening, non-blocking TCP socket. Called on the runtime.
    fn wrap_tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Box<dyn Listener>>;
    /// Adapts a bound, listening, non-blocking Unix socket. Called on the runtime.
    #[cfg(unix)]
    fn wrap_unix_listener(
        &self,
        listener: std::os::unix::net::UnixListener,
    ) -> io::Result<Box<dyn Listener>>;
    /// Runs `future` to completion on a new runtime owned by the current thread
    /// (used by the threaded controllers). `workers` is the number of threads
    /// to serve on: 1 means this thread alone (a single event loop, as aiosmtpd
    /// runs), `n > 1` a multi-threaded runtime with `n` workers, 0 one worker
    /// per core. A runtime without its own thread pool may ignore it.
    fn block_on(&self, future: BoxFuture, workers: usize) -> io::Result<()>;
}
