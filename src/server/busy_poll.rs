//! Busy polling: when a connection is the only one its server has open, the
//! driver keeps reading its socket for a short window after the reply instead
//! of going back to sleep in the event loop.
//!
//! On loopback and on a fast LAN the client's next command arrives a few tens
//! of microseconds after the reply. Sleeping in `epoll_wait` for it costs a
//! wake-up of an idle CPU, which on a virtual machine is the largest part of
//! the round trip; polling a non-blocking `recv` meets the command as it
//! lands. Between attempts the thread yields (`sched_yield`), so a client that
//! shares the CPU still runs. It only ever runs while no other connection could be starved (the
//! connection is alone on its server, and the server owns its thread: the
//! threaded controllers and the CLI), and it backs off by itself when the
//! client is slower than the window: after a window that saw nothing the next
//! 1, 2, 4 … 64 waits go straight to the event loop, so a remote client costs
//! about one window of CPU per 64 replies.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest run of waits skipped after a window that saw nothing.
const MAX_SKIP: u32 = 64;

/// Busy-polling state of one connection (or of the accept loop).
pub(crate) struct Spinner {
    window: Option<Duration>,
    /// Connections open on the server.
    open: Arc<AtomicUsize>,
    /// Spin only while `open` is this: 1 for a connection (itself), 0 for
    /// the accept loop.
    alone: usize,
    /// Waits left to skip.
    skip: u32,
    /// Waits to skip after the next empty window.
    backoff: u32,
}

impl Spinner {
    /// A spinner for a connection of a server that has `open` connections;
    /// `window: None` never spins.
    pub(crate) fn new(window: Option<Duration>, open: Arc<AtomicUsize>) -> Self {
        Self::alone_at(window, open, 1)
    }

    /// A spinner for the accept loop: spins only while no connection is open.
    pub(crate) fn for_accept(window: Option<Duration>, open: Arc<AtomicUsize>) -> Self {
        Self::alone_at(window, open, 0)
    }

    fn alone_at(window: Option<Duration>, open: Arc<AtomicUsize>, alone: usize) -> Self {
        Spinner {
            window: window.filter(|w| !w.is_zero()),
            open,
            alone,
            skip: 0,
            backoff: 1,
        }
    }

    /// True when a window is set (the accept loop then asks to be woken when
    /// the last connection closes).
    pub(crate) fn enabled(&self) -> bool {
        self.window.is_some()
    }

    /// Called when a read (or accept) would wait: calls `read_now` (a
    /// non-blocking attempt) until it returns something other than "would
    /// block", or the window ends. `None`: wait in the event loop (no window,
    /// not alone, backing off, the socket cannot be read directly, or nothing
    /// came).
    pub(crate) fn read<T>(
        &mut self,
        mut read_now: impl FnMut() -> Option<io::Result<T>>,
    ) -> Option<io::Result<T>> {
        let window = self.window?;
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        if self.open.load(Ordering::Relaxed) != self.alone {
            return None;
        }
        let deadline = Instant::now() + window;
        loop {
            match read_now()? {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                done => {
                    self.backoff = 1;
                    return Some(done);
                }
            }
            if Instant::now() >= deadline {
                self.skip = self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_SKIP);
                return None;
            }
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_loop_spins_only_without_connections() {
        let open = Arc::new(AtomicUsize::new(1));
        let mut s = Spinner::for_accept(Some(Duration::from_secs(5)), open.clone());
        assert!(s.read(no_read).is_none());
        open.store(0, Ordering::Relaxed);
        assert_eq!(s.read(|| Some(Ok(3))).unwrap().unwrap(), 3);
    }

    fn no_read() -> Option<io::Result<usize>> {
        panic!("this wait must not read")
    }

    fn would_block() -> Option<io::Result<usize>> {
        Some(Err(io::ErrorKind::WouldBlock.into()))
    }

    #[test]
    fn spins_until_data_arrives() {
        let mut s = Spinner::new(Some(Duration::from_secs(5)), Arc::new(AtomicUsize::new(1)));
        let mut calls = 0;
        let r = s.read(|| {
            calls += 1;
            if calls < 10 {
                would_block()
            } else {
                Some(Ok(7))
            }
        });
        assert_eq!(r.unwrap().unwrap(), 7);
        assert_eq!(calls, 10);
    }

    #[test]
    fn never_spins_without_a_window_or_beside_other_connections() {
        let open = Arc::new(AtomicUsize::new(1));
        let mut off = Spinner::new(None, open.clone());
        assert!(off.read(no_read).is_none());
        let mut zero = Spinner::new(Some(Duration::ZERO), open.clone());
        assert!(zero.read(no_read).is_none());
        open.store(2, Ordering::Relaxed);
        let mut crowded = Spinner::new(Some(Duration::from_secs(5)), open);
        assert!(crowded.read(no_read).is_none());
    }

    #[test]
    fn a_stream_that_cannot_be_read_directly_waits() {
        let mut s = Spinner::new(Some(Duration::from_secs(5)), Arc::new(AtomicUsize::new(1)));
        assert!(s.read(|| None::<io::Result<usize>>).is_none());
    }

    #[test]
    fn empty_windows_back_off_exponentially_and_data_resets() {
        let mut s = Spinner::new(
            Some(Duration::from_micros(1)),
            Arc::new(AtomicUsize::new(1)),
        );
        // Each empty window skips the next 1, 2, 4 ... 64 waits.
        for expected in [1, 2, 4, 8, 16, 32, 64, 64] {
            let mut reads = 0;
            assert!(
                s.read(|| {
                    reads += 1;
                    would_block()
                })
                .is_none()
            );
            assert!(reads > 0, "the wait after the skipped ones spins");
            for _ in 0..expected {
                assert!(s.read(no_read).is_none());
            }
        }
        // Data resets the backoff.
        assert_eq!(s.read(|| Some(Ok(1))).unwrap().unwrap(), 1);
        assert!(s.read(would_block).is_none());
        assert_eq!(s.skip, 1);
    }

    #[test]
    fn end_of_stream_and_errors_end_the_spin() {
        let mut s = Spinner::new(Some(Duration::from_secs(5)), Arc::new(AtomicUsize::new(1)));
        assert_eq!(s.read(|| Some(Ok(0))).unwrap().unwrap(), 0);
        let e = s
            .read(|| Some(Err::<usize, _>(io::ErrorKind::ConnectionReset.into())))
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }
}
