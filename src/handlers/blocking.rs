//! Runs blocking work on a thread of its own and awaits its result from any
//! async runtime (no runtime's `spawn_blocking` is needed): a one-shot channel
//! whose receiving end is a plain [`Future`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// Starts `work` on a new thread named `name` at once and returns a future for
/// its result. The future resolves to an error when the thread cannot be
/// spawned or `work` panics.
pub(crate) fn run_blocking<T, F>(
    name: &str,
    work: F,
) -> impl Future<Output = io::Result<T>> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (sender, receiver) = oneshot();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || sender.send(work()));
    let name = name.to_owned();
    async move {
        spawned?;
        receiver
            .await
            .ok_or_else(|| io::Error::other(format!("the {name} thread panicked")))
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
    use futures_lite::future::block_on;

    use super::*;

    #[test]
    fn returns_the_value() {
        let got = block_on(run_blocking("smtpkit-test", || 6 * 7)).unwrap();
        assert_eq!(got, 42);
    }

    #[test]
    fn a_panic_becomes_an_error() {
        let got = block_on(run_blocking("smtpkit-test", || -> u8 {
            panic!("boom");
        }));
        let error = got.unwrap_err();
        assert_eq!(error.to_string(), "the smtpkit-test thread panicked");
    }

    #[test]
    fn waits_for_slow_work() {
        let got = block_on(run_blocking("smtpkit-test", || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            "done"
        }))
        .unwrap();
        assert_eq!(got, "done");
    }
}
