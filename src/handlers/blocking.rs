//! A bounded pool of threads for blocking work (file writes, a blocking network
//! client), awaited from any async runtime: what [`Mailbox`](super::Mailbox)
//! writes its Maildir files on and [`Proxy`](super::Proxy) relays on, and what a
//! handler of yours can run its own blocking calls on.
//!
//! The pool has a fixed number of threads (started together the first time work
//! comes) and a bounded queue of waiting work beyond them. When both are full,
//! [`BlockingPool::run`] fails at once with [`BlockingError::Busy`]; when the
//! threads cannot be started (the process is out of threads or address space),
//! with [`BlockingError::Unavailable`], and the next call tries again. Neither
//! takes the process down, and both become a temporary `451 4.3.0` reply when a
//! hook returns them, so the sender retries.
//!
//! ```
//! use smtpkit::handlers::blocking::BlockingPool;
//!
//! let pool = BlockingPool::new(4, 100);
//! let sum = futures_lite::future::block_on(pool.run(|| (1..=10).sum::<u32>()));
//! assert_eq!(sum.unwrap(), 55);
//! ```

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

/// Why [`BlockingPool::run`] did not run the work.
#[derive(Debug, thiserror::Error)]
pub enum BlockingError {
    /// Every thread is busy and the queue is full: try again later.
    #[error("the blocking pool is full ({threads} threads busy, {queued} waiting)")]
    Busy {
        /// The pool's threads.
        threads: usize,
        /// The work waiting for a thread (the queue's bound).
        queued: usize,
    },
    /// The pool's threads could not be started (the process is out of threads
    /// or memory); the next call tries again.
    #[error("the blocking pool's threads could not be started: {0}")]
    Unavailable(String),
    /// The work panicked.
    #[error("the blocking work panicked")]
    Panicked,
}

impl From<BlockingError> for io::Error {
    /// `Busy` and `Unavailable` are temporary (`WouldBlock`, `OutOfMemory`);
    /// `Panicked` is `Other`.
    fn from(error: BlockingError) -> Self {
        let kind = match error {
            BlockingError::Busy { .. } => io::ErrorKind::WouldBlock,
            BlockingError::Unavailable(_) => io::ErrorKind::OutOfMemory,
            BlockingError::Panicked => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}

/// A bounded pool of threads for blocking work; cheap to clone (clones share the
/// pool). See the [module documentation](self).
#[derive(Clone)]
pub struct BlockingPool {
    inner: Arc<Inner>,
}

struct Inner {
    threads: usize,
    queue: usize,
    /// Work admitted and not finished (running or waiting).
    admitted: AtomicUsize,
    /// Started on first use; `None` again only if starting failed.
    pool: Mutex<Option<Arc<rayon_core::ThreadPool>>>,
}

impl BlockingPool {
    /// The threads of [`BlockingPool::shared`] (and the CLI's default).
    pub const DEFAULT_THREADS: usize = 64;
    /// The queue of [`BlockingPool::shared`] (and the CLI's default).
    pub const DEFAULT_QUEUE: usize = 4096;

    /// A pool of `threads` threads (at least one) with room for `queue` more
    /// pieces of work waiting. No thread starts before the first
    /// [`BlockingPool::run`].
    pub fn new(threads: usize, queue: usize) -> Self {
        BlockingPool {
            inner: Arc::new(Inner {
                threads: threads.max(1),
                queue,
                admitted: AtomicUsize::new(0),
                pool: Mutex::new(None),
            }),
        }
    }

    /// The process-wide pool the built-in handlers use unless given another:
    /// [`BlockingPool::DEFAULT_THREADS`] threads,
    /// [`BlockingPool::DEFAULT_QUEUE`] waiting.
    pub fn shared() -> BlockingPool {
        static SHARED: OnceLock<BlockingPool> = OnceLock::new();
        SHARED
            .get_or_init(|| BlockingPool::new(Self::DEFAULT_THREADS, Self::DEFAULT_QUEUE))
            .clone()
    }

    /// The pool's threads.
    pub fn threads(&self) -> usize {
        self.inner.threads
    }

    /// How much work may wait beyond the threads.
    pub fn queue(&self) -> usize {
        self.inner.queue
    }

    /// Work admitted and not finished yet (running or waiting).
    pub fn in_flight(&self) -> usize {
        self.inner.admitted.load(Ordering::Relaxed)
    }

    /// Runs `work` on one of the pool's threads (or queues it) and returns a
    /// future for its result. The work is admitted, or refused with
    /// [`BlockingError::Busy`] / [`BlockingError::Unavailable`], before this
    /// returns; once admitted it runs even if the future is dropped.
    pub fn run<T, F>(
        &self,
        work: F,
    ) -> impl Future<Output = Result<T, BlockingError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let submitted = self.submit(work);
        async move { submitted?.await.ok_or(BlockingError::Panicked) }
    }

    fn submit<T, F>(&self, work: F) -> Result<Receiver<T>, BlockingError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let inner = &self.inner;
        let bound = inner.threads.saturating_add(inner.queue);
        let admitted = inner
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < bound).then_some(n + 1)
            });
        if admitted.is_err() {
            return Err(BlockingError::Busy {
                threads: inner.threads,
                queued: inner.queue,
            });
        }
        let release = Admission(self.inner.clone());
        let pool = self.started()?;
        let (sender, receiver) = oneshot();
        pool.spawn(move || {
            let result = std::panic::catch_unwind(AssertUnwindSafe(work));
            // The slot is free before the awaiting task hears of the result.
            drop(release);
            if let Ok(value) = result {
                sender.send(value);
            }
        });
        Ok(receiver)
    }

    /// The running pool, started now if it is not yet.
    fn started(&self) -> Result<Arc<rayon_core::ThreadPool>, BlockingError> {
        let mut slot = self
            .inner
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(pool) = &*slot {
            return Ok(pool.clone());
        }
        let pool = rayon_core::ThreadPoolBuilder::new()
            .num_threads(self.inner.threads)
            .thread_name(|i| format!("smtpkit-blocking-{i}"))
            // Work panics are caught inside the job; never abort the process.
            .panic_handler(|_| {})
            .build()
            .map_err(|e| {
                tracing::error!(error = %e, "the blocking pool's threads could not be started");
                BlockingError::Unavailable(e.to_string())
            })?;
        let pool = Arc::new(pool);
        *slot = Some(pool.clone());
        Ok(pool)
    }
}

impl std::fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingPool")
            .field("threads", &self.inner.threads)
            .field("queue", &self.inner.queue)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Default for BlockingPool {
    /// [`BlockingPool::shared`].
    fn default() -> Self {
        BlockingPool::shared()
    }
}

/// One admitted piece of work; its slot is given back when this drops (after
/// the work ran, or if it could not be queued).
struct Admission(Arc<Inner>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The state shared by the two ends of a [`oneshot`] channel.
enum Slot<T> {
    /// No value yet; the waker of the task awaiting it.
    Waiting(Option<Waker>),
    /// The value, or `None` if the sender was dropped without sending.
    Done(Option<T>),
    /// The receiver took the value.
    Taken,
}

/// A single-value channel: a thread sends, a future receives.
fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot::Waiting(None)));
    (Sender(Some(slot.clone())), Receiver(slot))
}

struct Sender<T>(Option<Arc<Mutex<Slot<T>>>>);

impl<T> Sender<T> {
    fn send(mut self, value: T) {
        self.complete(Some(value));
    }

    fn complete(&mut self, value: Option<T>) {
        if let Some(slot) = self.0.take() {
            let previous = std::mem::replace(
                &mut *slot.lock().unwrap_or_else(PoisonError::into_inner),
                Slot::Done(value),
            );
            if let Slot::Waiting(Some(waker)) = previous {
                waker.wake();
            }
        }
    }
}

impl<T> Drop for Sender<T> {
    /// Tells the receiver that no value will come (the sending thread panicked).
    fn drop(&mut self) {
        self.complete(None);
    }
}

struct Receiver<T>(Arc<Mutex<Slot<T>>>);

impl<T> Future for Receiver<T> {
    /// The value, or `None` if the sender was dropped without sending.
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *slot {
            Slot::Waiting(waker) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Slot::Done(value) => {
                let value = value.take();
                *slot = Slot::Taken;
                Poll::Ready(value)
            }
            Slot::Taken => panic!("Receiver polled after completion"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use futures_lite::future::block_on;

    use super::*;

    #[test]
    fn returns_the_value() {
        let pool = BlockingPool::new(2, 2);
        assert_eq!(block_on(pool.run(|| 6 * 7)).unwrap(), 42);
        assert_eq!(pool.in_flight(), 0);
    }

    #[test]
    fn a_panic_becomes_an_error_and_the_pool_goes_on() {
        let pool = BlockingPool::new(1, 0);
        let got = block_on(pool.run(|| -> u8 { panic!("boom") }));
        assert!(matches!(got, Err(BlockingError::Panicked)), "{got:?}");
        assert_eq!(block_on(pool.run(|| 7)).unwrap(), 7);
    }

    #[test]
    fn waits_for_slow_work() {
        let pool = BlockingPool::new(1, 1);
        let got = block_on(pool.run(|| {
            std::thread::sleep(Duration::from_millis(50));
            "done"
        }));
        assert_eq!(got.unwrap(), "done");
    }

    #[test]
    fn work_beyond_threads_and_queue_is_refused_at_once() {
        let pool = BlockingPool::new(1, 1);
        let (release, gate) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        let first = pool.run(move || {
            started.send(()).unwrap();
            gate.recv_timeout(Duration::from_secs(10)).unwrap();
            1
        });
        running.recv_timeout(Duration::from_secs(10)).unwrap();
        let queued = pool.run(|| 2);
        let refused = block_on(pool.run(|| 3));
        match refused {
            Err(BlockingError::Busy {
                threads: 1,
                queued: 1,
            }) => {}
            other => panic!("expected Busy, got {other:?}"),
        }
        let as_io = io::Error::from(BlockingError::Busy {
            threads: 1,
            queued: 1,
        });
        assert_eq!(as_io.kind(), io::ErrorKind::WouldBlock);
        release.send(()).unwrap();
        assert_eq!(block_on(first).unwrap(), 1);
        assert_eq!(block_on(queued).unwrap(), 2);
        // Slots come back once the work is done.
        assert_eq!(block_on(pool.run(|| 4)).unwrap(), 4);
        assert_eq!(pool.in_flight(), 0);
    }

    #[test]
    fn never_more_threads_than_the_bound() {
        let pool = BlockingPool::new(3, 100);
        let names = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let jobs: Vec<_> = (0..50)
            .map(|_| {
                let names = names.clone();
                pool.run(move || {
                    let name = std::thread::current().name().map(str::to_owned);
                    names.lock().unwrap().insert(name);
                    std::thread::sleep(Duration::from_millis(1));
                })
            })
            .collect();
        for job in jobs {
            block_on(job).unwrap();
        }
        assert!(
            names.lock().unwrap().len() <= 3,
            "{:?}",
            names.lock().unwrap()
        );
    }
}
