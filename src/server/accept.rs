//! The accept loop: takes connections from one or more listeners, spawns a driver
//! for each, and on shutdown closes the listeners and lets connections say `421`.

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::busy_poll::Spinner;
use super::driver::serve_connection;
use super::handler::Handler;
use super::runtime::{BoxStream, Listener, Runtime};
use super::settings::{Limits, Shared};
use super::shutdown::Stop;
use crate::proto::Peer;

/// How long a stopping server waits for its connections to send `421` and close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Open connections, in all and per client address.
#[derive(Default)]
struct Counts {
    all: Arc<AtomicUsize>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// The accept loop, when it busy-polls: woken as the last connection
    /// closes, so it can spin for the next one.
    acceptor: Mutex<Option<Waker>>,
}

/// One open connection; uncounted when dropped.
struct Live {
    counts: Arc<Counts>,
    ip: Option<IpAddr>,
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.counts.all.fetch_sub(1, Ordering::SeqCst) == 1
            && let Ok(mut acceptor) = self.counts.acceptor.lock()
            && let Some(waker) = acceptor.take()
        {
            waker.wake();
        }
        if let (Some(ip), Ok(mut map)) = (self.ip, self.counts.per_ip.lock())
            && let Some(n) = map.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// Counts a new connection; true when it is over a configured limit.
fn admit(counts: &Arc<Counts>, limits: &Limits, peer: &Peer) -> (Live, bool) {
    let all = counts.all.fetch_add(1, Ordering::SeqCst) + 1;
    // Per-address counts only when a per-address limit is set.
    let ip = match peer {
        Peer::Tcp(addr) if limits.max_connections_per_ip.is_some() => Some(addr.ip()),
        _ => None,
    };
    let mut over = limits.max_connections.is_some_and(|max| all > max);
    if let Some(ip) = ip
        && let Ok(mut map) = counts.per_ip.lock()
    {
        let n = map.entry(ip).or_insert(0);
        *n += 1;
        over |= limits.max_connections_per_ip.is_some_and(|max| *n > max);
    }
    (
        Live {
            counts: counts.clone(),
            ip,
        },
        over,
    )
}

/// Accepts from the first listener with a connection waiting, without the
/// event loop; `None` when no listener can.
fn accept_now(listeners: &mut [Box<dyn Listener>]) -> Option<std::io::Result<(BoxStream, Peer)>> {
    let mut can = false;
    for l in listeners.iter_mut() {
        match l.accept_now() {
            None => {}
            Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => can = true,
            Some(accepted) => return Some(accepted),
        }
    }
    can.then(|| Err(std::io::ErrorKind::WouldBlock.into()))
}

/// Serves `listeners` until `shutdown` fires; returns once the listeners are closed
/// and every connection has ended (or [`DRAIN_TIMEOUT`] passed). `busy_poll`:
/// the busy-polling window of a connection that is alone on the server (only
/// for a server that owns its thread; see `busy_poll`).
pub(crate) async fn accept_loop<H: Handler>(
    runtime: Arc<dyn Runtime>,
    mut listeners: Vec<Box<dyn Listener>>,
    shared: Arc<Shared<H>>,
    stops: Stop,
    busy_poll: Option<Duration>,
) {
    let counts = Arc::new(Counts::default());
    let shutdown = stops.hard.clone();
    let mut stop = shutdown.wait();
    let mut graceful = stops.graceful.wait();
    let mut backoff = runtime.new_timer(Instant::now());
    let mut backing_off = false;
    let mut spinner = Spinner::for_accept(busy_poll, counts.all.clone());
    loop {
        let accepted = poll_fn(|cx| {
            if spinner.enabled()
                && let Ok(mut acceptor) = counts.acceptor.lock()
                && !acceptor.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
            {
                *acceptor = Some(cx.waker().clone());
            }
            if stop.poll_fired(cx).is_ready() || graceful.poll_fired(cx).is_ready() {
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
            // No connection open: meet the next one as it arrives.
            match spinner.read(|| accept_now(&mut listeners)) {
                Some(r) => Poll::Ready(Some(r)),
                None => Poll::Pending,
            }
        })
        .await;
        match accepted {
            None => break,
            Some(Ok((stream, peer))) => {
                let (guard, refuse) = admit(&counts, &shared.limits, &peer);
                if refuse {
                    tracing::warn!(%peer, "connection limit reached; refusing");
                }
                let (rt, shared, stops) = (runtime.clone(), shared.clone(), stops.clone());
                let spinner = Spinner::new(busy_poll, counts.all.clone());
                runtime.spawn(Box::pin(async move {
                    serve_connection(&*rt, shared, stream, peer, &stops, refuse, spinner).await;
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
    if stops.graceful.is_fired() && !shutdown.is_fired() {
        // Graceful: the messages in progress finish, until the deadline.
        let deadline = Instant::now() + stops.grace();
        while counts.all.load(Ordering::SeqCst) > 0
            && Instant::now() < deadline
            && !shutdown.is_fired()
        {
            let mut t = runtime.new_timer(Instant::now() + Duration::from_millis(5));
            poll_fn(|cx| t.as_mut().poll(cx)).await;
        }
        stops.abandon.fire();
        shutdown.fire();
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while counts.all.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        let mut t = runtime.new_timer(Instant::now() + Duration::from_millis(5));
        poll_fn(|cx| t.as_mut().poll(cx)).await;
    }
}
