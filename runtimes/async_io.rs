//! Glue shared by the smol and async-std adapters, which both run on async-io:
//! listeners over `Async<std::net::TcpListener>` and `async_io::Timer`.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_io::{Async, Timer};

use crate::proto::Peer;
use crate::server::{AsyncTimer, BoxStream, Listener, Stream};

impl Stream for Async<TcpStream> {
    fn read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        Some(io::Read::read(&mut self.get_ref(), buf))
    }
}

#[cfg(unix)]
impl Stream for Async<std::os::unix::net::UnixStream> {
    fn read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        Some(io::Read::read(&mut self.get_ref(), buf))
    }
}

impl AsyncTimer for Timer {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.get_mut().set_at(deadline);
    }
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        std::future::Future::poll(self, cx).map(|_| ())
    }
}

/// A listener on the async-io reactor.
pub(crate) struct AsyncListener<L>(pub(crate) Async<L>);

/// Calls `accept` until it stops saying "would block", waiting for readiness.
fn poll_accept_with<L, S, A>(
    listener: &Async<L>,
    cx: &mut Context<'_>,
    accept: impl Fn(&L) -> io::Result<(S, A)>,
) -> Poll<io::Result<(S, A)>> {
    loop {
        match accept(listener.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready!(listener.poll_readable(cx))?;
            }
            other => return Poll::Ready(other),
        }
    }
}

/// An accepted TCP connection on the async-io reactor.
fn tcp_client(stream: TcpStream, addr: std::net::SocketAddr) -> io::Result<(BoxStream, Peer)> {
    let _ = stream.set_nodelay(true);
    let stream: Async<TcpStream> = Async::new(stream)?;
    Ok((Box::new(stream), Peer::Tcp(addr)))
}

impl Listener for AsyncListener<TcpListener> {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(BoxStream, Peer)>> {
        let (stream, addr) = ready!(poll_accept_with(&self.0, cx, TcpListener::accept))?;
        Poll::Ready(tcp_client(stream, addr))
    }

    fn accept_now(&mut self) -> Option<io::Result<(BoxStream, Peer)>> {
        Some(
            self.0
                .get_ref()
                .accept()
                .and_then(|(stream, addr)| tcp_client(stream, addr)),
        )
    }
}

#[cfg(unix)]
impl Listener for AsyncListener<std::os::unix::net::UnixListener> {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(BoxStream, Peer)>> {
        let (stream, _) = ready!(poll_accept_with(
            &self.0,
            cx,
            std::os::unix::net::UnixListener::accept
        ))?;
        Poll::Ready(Ok((Box::new(Async::new(stream)?), Peer::Unix)))
    }

    fn accept_now(&mut self) -> Option<io::Result<(BoxStream, Peer)>> {
        let accepted = self.0.get_ref().accept();
        Some(
            accepted.and_then(|(stream, _)| {
                Ok((Box::new(Async::new(stream)?) as BoxStream, Peer::Unix))
            }),
        )
    }
}

pub(crate) fn new_timer(deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
    Box::pin(Timer::at(deadline))
}

pub(crate) fn wrap_tcp(listener: TcpListener) -> io::Result<Box<dyn Listener>> {
    Ok(Box::new(AsyncListener(Async::new(listener)?)))
}

#[cfg(unix)]
pub(crate) fn wrap_unix(
    listener: std::os::unix::net::UnixListener,
) -> io::Result<Box<dyn Listener>> {
    Ok(Box::new(AsyncListener(Async::new(listener)?)))
}
