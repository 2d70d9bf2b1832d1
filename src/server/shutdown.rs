//! A one-shot, cloneable signal that any number of tasks can await, on any runtime.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct Inner {
    fired: AtomicBool,
    next_id: AtomicU64,
    wakers: Mutex<HashMap<u64, Waker>>,
}

/// Fires once; every [`Signal::wait`] future then completes.
#[derive(Clone, Debug, Default)]
pub struct Signal {
    inner: Arc<Inner>,
}

impl Signal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Signal::default()
    }

    /// Fires the signal and wakes every waiter.
    pub fn fire(&self) {
        self.inner.fired.store(true, Ordering::SeqCst);
        let wakers: Vec<Waker> = match self.inner.wakers.lock() {
            Ok(mut w) => w.drain().map(|(_, w)| w).collect(),
            Err(_) => Vec::new(),
        };
        for w in wakers {
            w.wake();
        }
    }

    /// True once fired.
    pub fn is_fired(&self) -> bool {
        self.inner.fired.load(Ordering::SeqCst)
    }

    /// A future that completes when the signal fires.
    pub fn wait(&self) -> Wait {
        Wait {
            inner: self.inner.clone(),
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            registered: None,
        }
    }
}

/// Completes when its [`Signal`] fires.
#[derive(Debug)]
pub struct Wait {
    inner: Arc<Inner>,
    id: u64,
    /// The waker last registered (not registered again while it would wake
    /// the same task).
    registered: Option<Waker>,
}

impl Wait {
    /// Polls without pinning (the future is `Unpin`).
    pub fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.fired.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            // Registered before `fired` was checked: `fire` will wake it.
            return Poll::Pending;
        }
        if let Ok(mut w) = self.inner.wakers.lock() {
            w.insert(self.id, cx.waker().clone());
        }
        self.registered = Some(cx.waker().clone());
        if self.inner.fired.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Future for Wait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().poll_fired(cx)
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if self.registered.is_none() {
            return;
        }
        if let Ok(mut w) = self.inner.wakers.lock() {
            w.remove(&self.id);
        }
    }
}

/// How a server is told to stop: `hard` (every connection gets `421` now)
/// or `graceful` (stop accepting; sessions between commands get `421`, one in
/// the middle of a message finishes it first), with the time a graceful stop
/// may take before it turns hard.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stop {
    /// Stop now.
    pub(crate) hard: Signal,
    /// Stop once the messages in progress are done, or at the deadline.
    pub(crate) graceful: Signal,
    /// The graceful stop's deadline passed: hooks still running are abandoned
    /// (a plain hard stop lets them run during its drain, as before).
    pub(crate) abandon: Signal,
    /// How long a graceful stop may take.
    pub(crate) grace: Arc<Mutex<std::time::Duration>>,
}

impl Stop {
    /// Stops that only `hard` can trigger.
    pub(crate) fn hard_only(hard: Signal) -> Self {
        Stop {
            hard,
            ..Stop::default()
        }
    }

    /// Starts a graceful stop that turns hard after `deadline`.
    pub(crate) fn begin_graceful(&self, deadline: std::time::Duration) {
        if let Ok(mut grace) = self.grace.lock() {
            *grace = deadline;
        }
        self.graceful.fire();
    }

    /// The deadline of the graceful stop.
    pub(crate) fn grace(&self) -> std::time::Duration {
        self.grace.lock().map(|g| *g).unwrap_or_default()
    }
}
