//! The accept loop: takes connections from one or more listeners, spawns a driver
//! for each, and on shutdown closes the listeners and lets connections say `421`.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use super::driver::drive;
use super::handler::Handler;
use super::runtime::{Listener, Runtime};
use super::shutdown::Signal;
use super::tls::TlsSettings;
use crate::proto::Config;

/// How long a stopping server waits for its connections to send `421` and close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves `listeners` until `shutdown` fires; returns once the listeners are closed
/// and every connection has ended (or [`DRAIN_TIMEOUT`] passed).
pub(crate) async fn accept_loop<H: Handler>(
    runtime: Arc<dyn Runtime>,
    mut listeners: Vec<Box<dyn Listener>>,
    handler: Arc<H>,
    config: Arc<Config>,
    tls: Arc<TlsSettings>,
    shutdown: Signal,
) {
    let live = Arc::new(AtomicUsize::new(0));
    let mut stop = shutdown.wait();
    let mut backoff = runtime.new_timer(Instant::now());
    let mut backing_off = false;
    loop {
        let accepted = poll_fn(|cx| {
            if stop.poll_fired(cx).is_ready() {
                return Poll::Ready(None);
            }
            if backing_off {
                if backoff.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                backing_off = false;
            }
            for l in listeners.iter_mut() {
                if let Poll::Ready(r) = l.poll_accept(cx) {
                    return Poll::Ready(Some(r));
                }
            }
            Poll::Pending
        })
        .await;
        match accepted {
            None => break,
            Some(Ok((stream, peer))) => {
                live.fetch_add(1, Ordering::SeqCst);
                let guard = Live(live.clone());
                let fut = drive(
                    runtime.clone(),
                    handler.clone(),
                    config.clone(),
                    tls.clone(),
                    stream,
                    peer,
                    shutdown.clone(),
                );
                runtime.spawn(Box::pin(async move {
                    fut.await;
                    drop(guard);
                }));
            }
            Some(Err(e)) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                backoff
                    .as_mut()
                    .reset(Instant::now() + Duration::from_millis(50));
                backing_off = true;
            }
        }
    }
    drop(listeners);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while live.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        let mut t = runtime.new_timer(Instant::now() + Duration::from_millis(5));
        poll_fn(|cx| t.as_mut().poll(cx)).await;
    }
}
