//! The connection driver: a `Driver` per connection (the engine and the loop)
//! and its `Io` side, which feeds the stream's bytes to the engine and carries
//! out what the engine asks, one method per [`Action`] — write a reply, hand over a
//! body chunk, answer a hook, switch to TLS, close — with the idle timer and the
//! shutdown signal around them. Written once over futures-io for every runtime.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use futures_lite::{AsyncRead, AsyncWriteExt};

use super::busy_poll::Spinner;
use super::handler::Handler;
use super::hooks::{self, HookState};
use super::runtime::{AsyncTimer, BoxStream, Runtime};
use super::settings::Shared;
use super::shutdown::{Stop, Wait};
use super::tls;
use crate::proto::{Action, BodyChunk, Connection, Decision, HookCall, Peer, TlsInfo};

/// Size of the read buffer each worker thread shares among its connections.
const READ_BUF: usize = 64 * 1024;

thread_local! {
    /// Bytes are read here and handed to the engine at once (the engine keeps
    /// only an unfinished line), so an idle connection holds no read buffer.
    static READ_BUFFER: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_BUF].into_boxed_slice());
}

/// What woke the driver while it waited for the client.
enum Event {
    /// Bytes were read and given to the engine (`false`: the engine refused them).
    Input(bool),
    /// End of stream or a read error.
    Closed,
    Timeout,
    Shutdown,
    GracefulShutdown,
}

/// How a hook call ended.
enum HookEnd {
    Decided(Decision),
    /// It outlived the hook timeout.
    TimedOut,
    /// A graceful stop's deadline passed.
    Shutdown,
}

/// The connection is gone (a write failed, the engine refused input, a TLS
/// handshake failed): the driver stops.
struct Gone;

/// Serves one accepted connection until it closes (`refuse`: with `421` only).
pub(crate) async fn serve_connection<H: Handler>(
    runtime: &dyn Runtime,
    shared: Arc<Shared<H>>,
    stream: BoxStream,
    peer: Peer,
    stops: &Stop,
    refuse: bool,
    spinner: Spinner,
) {
    use tracing::Instrument as _;
    // One span per session, with an id that ties its lines together; TLS and
    // the authenticated identity are recorded as they become known.
    static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let span = tracing::info_span!("session", id, %peer, tls = tracing::field::Empty, auth = tracing::field::Empty);
    serve(runtime, shared, stream, peer, stops, refuse, spinner)
        .instrument(span)
        .await
}

async fn serve<H: Handler>(
    runtime: &dyn Runtime,
    shared: Arc<Shared<H>>,
    stream: BoxStream,
    peer: Peer,
    stops: &Stop,
    refuse: bool,
    spinner: Spinner,
) {
    tracing::debug!("connection opened");
    let now = Instant::now();
    let io = Io {
        stream,
        tls_active: false,
        timer: runtime.new_timer(now),
        armed: None,
        last_input: now,
        shutdown: stops.hard.wait(),
        graceful: Some(stops.graceful.wait()),
        abandon: stops.abandon.wait(),
        auth_recorded: false,
        hooks: HookState::default(),
        spinner,
        shared,
    };
    if let Ok(mut driver) = Driver::open(io, peer, refuse).await {
        let _ = driver.run().await;
    }
}

/// One connection: the engine, and the I/O side that carries out its actions.
/// The two are separate fields so an action (which borrows the engine) can be
/// carried out by the I/O side.
struct Driver<H> {
    conn: Connection,
    io: Io<H>,
}

/// The I/O side of a connection: the stream, the timer, the shutdown signal and
/// the hooks.
struct Io<H> {
    shared: Arc<Shared<H>>,
    stream: BoxStream,
    /// TLS needs its close_notify on close; plain TCP only the close itself.
    tls_active: bool,
    timer: Pin<Box<dyn AsyncTimer>>,
    /// The deadline the timer is armed for (`None`: not armed for the engine's).
    armed: Option<Instant>,
    /// When the last bytes were read.
    last_input: Instant,
    shutdown: Wait,
    /// The graceful stop, until it fired.
    graceful: Option<Wait>,
    /// A graceful stop's deadline: a hook still running is abandoned.
    abandon: Wait,
    /// The session span has its `auth` field.
    auth_recorded: bool,
    hooks: HookState,
    spinner: Spinner,
}

impl<H: Handler> Driver<H> {
    /// The implicit TLS handshake when the server speaks TLS from the first
    /// byte, then the engine.
    async fn open(mut io: Io<H>, peer: Peer, refuse: bool) -> Result<Self, Gone> {
        let implicit_tls = match io.shared.tls.implicit.clone() {
            Some(server_config) => Some(io.handshake(server_config, "TLS handshake failed").await?),
            None => None,
        };
        let config = io.shared.config.clone();
        let now = Instant::now();
        let mut conn = if refuse {
            Connection::refused(config, peer, now)
        } else {
            Connection::new(config, peer, now)
        };
        if let Some(info) = implicit_tls {
            tracing::Span::current().record("tls", tracing::field::display(&info.protocol_version));
            conn = conn.with_tls(info);
        }
        Ok(Driver { conn, io })
    }

    /// Carries out the engine's actions, then waits for the client, until the
    /// engine says close.
    async fn run(&mut self) -> Result<(), Gone> {
        loop {
            while let Some(action) = self.conn.poll_action() {
                match action {
                    Action::Send(bytes) => self.io.send(bytes).await?,
                    Action::MessageAbort(abort) => {
                        hooks::data_abort(&*self.io.shared.handler, &mut self.io.hooks, abort).await
                    }
                    Action::MessageStart(start) => {
                        hooks::data_start(&*self.io.shared.handler, &mut self.io.hooks, start).await
                    }
                    Action::Body(body) => self.io.body(body).await,
                    Action::Hook(call) => {
                        let end = self.io.hook(call).await?;
                        let now = Instant::now();
                        match end {
                            HookEnd::Decided(d) => {
                                self.conn.handle_decision(now, d).map_err(|_| Gone)?;
                                let session = self.conn.session();
                                if session.authenticated && !self.io.auth_recorded {
                                    // The mechanism only: who logged in stays out of the logs.
                                    self.io.auth_recorded = true;
                                    let mechanism = session.auth_mechanism.as_deref().unwrap_or("");
                                    tracing::Span::current()
                                        .record("auth", tracing::field::display(mechanism));
                                }
                            }
                            HookEnd::TimedOut => {
                                tracing::warn!("handler hook timed out");
                                self.conn.handle_hook_timeout(now);
                            }
                            HookEnd::Shutdown => {
                                tracing::warn!("handler hook abandoned at shutdown");
                                self.conn.handle_shutdown(now);
                            }
                        }
                    }
                    Action::StartTls => {
                        let info = self.io.start_tls().await?;
                        tracing::Span::current()
                            .record("tls", tracing::field::display(&info.protocol_version));
                        self.conn
                            .handle_tls_established(Instant::now(), info)
                            .map_err(|_| Gone)?;
                    }
                    Action::Close => {
                        self.io.close().await;
                        return Ok(());
                    }
                }
            }
            // The engine already has the time of an input; the rarer events
            // read it here (a clock read per command saved).
            match self.io.wait(&mut self.conn).await {
                Event::Input(true) => {}
                Event::Input(false) => return Err(Gone),
                Event::Closed => self.conn.handle_peer_closed(Instant::now()),
                Event::Timeout => {
                    self.io.armed = None;
                    self.conn.handle_timeout(Instant::now());
                }
                Event::Shutdown => self.conn.handle_shutdown(Instant::now()),
                Event::GracefulShutdown => {
                    self.io.graceful = None;
                    self.conn.handle_graceful_shutdown(Instant::now());
                }
            }
        }
    }
}

/// Writes replies and flushes them.
async fn write_replies(stream: &mut BoxStream, bytes: &[u8]) -> Result<(), Gone> {
    // Reply codes only: a text may echo what an authenticator or handler
    // said, and credentials must never reach the logs.
    if tracing::enabled!(tracing::Level::TRACE) {
        tracing::trace!(codes = %reply_codes(bytes), "<<");
    }
    if stream.write_all(bytes).await.is_err() || stream.flush().await.is_err() {
        return Err(Gone);
    }
    Ok(())
}

impl<H: Handler> Io<H> {
    /// [`Action::Send`]: writes a reply.
    async fn send(&mut self, bytes: &[u8]) -> Result<(), Gone> {
        write_replies(&mut self.stream, bytes).await
    }

    /// [`Action::Body`]: hands a body chunk to the handler.
    async fn body(&mut self, body: BodyChunk<'_>) {
        hooks::data_chunk(&*self.shared.handler, &mut self.hooks, body).await
    }

    /// [`Action::Hook`]: the handler's decision, or `None` when the hook
    /// outlived the hook timeout (or the connection broke while the replies
    /// before it were sent).
    ///
    /// A hook that answers at once leaves the replies of a pipelined group to
    /// go out together; one that has to wait first sends the replies to the
    /// commands before it (RFC 2920), so that a slow hook never holds them back.
    async fn hook(&mut self, mut call: HookCall<'_>) -> Result<HookEnd, Gone> {
        let unsent = call.unsent_replies();
        let Io {
            shared,
            hooks,
            stream,
            timer,
            armed,
            abandon,
            ..
        } = self;
        let mut hook = std::pin::pin!(hooks::decide(shared, hooks, call));
        // A client gone while the replies before the hook were written: the
        // hook still runs to its end (it may be storing a message), then the
        // driver stops.
        let mut gone = false;
        if let Some(unsent) = unsent {
            let first = poll_fn(|cx| Poll::Ready(hook.as_mut().poll(cx))).await;
            if let Poll::Ready(decision) = first {
                return Ok(HookEnd::Decided(decision));
            }
            gone = write_replies(stream, unsent.bytes()).await.is_err();
            unsent.sent();
        }
        // The hook timeout, if any, and a graceful stop's deadline end a hook
        // that is still running.
        let limit = shared.limits.hook_timeout;
        if let Some(limit) = limit {
            timer.as_mut().reset(Instant::now() + limit);
            *armed = None;
        }
        let decision = poll_fn(|cx| {
            if let Poll::Ready(d) = hook.as_mut().poll(cx) {
                return Poll::Ready(HookEnd::Decided(d));
            }
            if abandon.poll_fired(cx).is_ready() {
                return Poll::Ready(HookEnd::Shutdown);
            }
            match limit {
                Some(_) => timer.as_mut().poll(cx).map(|()| HookEnd::TimedOut),
                None => Poll::Pending,
            }
        })
        .await;
        if gone {
            return Err(Gone);
        }
        Ok(decision)
    }

    /// [`Action::StartTls`]: the STARTTLS handshake.
    async fn start_tls(&mut self) -> Result<TlsInfo, Gone> {
        let server_config = self.shared.tls.starttls.clone().ok_or(Gone)?;
        self.handshake(server_config, "STARTTLS handshake failed")
            .await
    }

    /// A TLS handshake on the stream, bounded by the idle timeout and the
    /// shutdown signal; `failure` is what the log says when it fails.
    async fn handshake(
        &mut self,
        server_config: Arc<rustls::ServerConfig>,
        failure: &'static str,
    ) -> Result<TlsInfo, Gone> {
        let plain = std::mem::replace(&mut self.stream, Box::new(Detached));
        let deadline = Instant::now() + self.shared.config.timeout;
        match tls::accept(
            server_config,
            plain,
            &mut self.timer,
            deadline,
            &mut self.shutdown,
        )
        .await
        {
            Ok((tls_stream, info)) => {
                self.stream = tls_stream;
                self.tls_active = true;
                self.armed = None;
                Ok(info)
            }
            Err(e) => {
                tracing::debug!(error = %e, "{failure}");
                Err(Gone)
            }
        }
    }

    /// [`Action::Close`].
    async fn close(&mut self) {
        if self.tls_active {
            let _ = self.stream.close().await;
        }
        // Plain TCP: dropping the stream closes the socket, which sends the FIN
        // after the replies already written (a shutdown(2) first would only
        // cost a system call).
        tracing::debug!("connection closed");
    }

    /// Waits for the client's next bytes (given to `conn` as they arrive), the
    /// engine's deadline or the shutdown signal.
    async fn wait(&mut self, conn: &mut Connection) -> Event {
        // The timer is re-armed only when the deadline comes earlier than the
        // armed one: every command moves the deadline later, and re-arming a
        // timer per command costs more than the rare early wake-up (the engine
        // ignores a timeout before its deadline, and the timer is then re-armed).
        let deadline = conn.poll_timeout();
        if let Some(d) = deadline
            && self.armed.is_none_or(|a| d < a)
        {
            self.timer.as_mut().reset(d);
            self.armed = Some(d);
        }
        // A client that keeps every read busy without finishing a line still
        // meets its deadline (the timer below is polled only when a read waits).
        let overdue = deadline.is_some_and(|d| self.last_input >= d);
        let Io {
            stream,
            timer,
            last_input,
            shutdown,
            graceful,
            spinner,
            ..
        } = self;
        poll_fn(|cx| {
            if shutdown.poll_fired(cx).is_ready() {
                return Poll::Ready(Event::Shutdown);
            }
            if let Some(graceful) = graceful
                && graceful.poll_fired(cx).is_ready()
            {
                return Poll::Ready(Event::GracefulShutdown);
            }
            if overdue {
                return Poll::Ready(Event::Timeout);
            }
            // The engine takes the bytes inside this poll, so the buffer is
            // never held across an await.
            let input = READ_BUFFER.with_borrow_mut(|buf| {
                let read = match Pin::new(&mut *stream).poll_read(cx, buf) {
                    Poll::Ready(read) => read,
                    // Alone on the server: meet the next command as it lands
                    // instead of sleeping until the event loop reports it.
                    Poll::Pending => match spinner.read(|| stream.read_now(buf)) {
                        Some(read) => read,
                        None => return Poll::Pending,
                    },
                };
                Poll::Ready(match read {
                    Ok(0) | Err(_) => Event::Closed,
                    Ok(n) => {
                        *last_input = Instant::now();
                        let fed = conn.handle_input(*last_input, &buf[..n]);
                        Event::Input(fed.is_ok())
                    }
                })
            });
            if input.is_ready() {
                return input;
            }
            // The timer only when the read waits (once per wait instead of
            // once per wake-up: a timer poll per command saved). A command
            // moves the deadline later anyway, and a timer that fired while
            // the task was busy is still ready here.
            if deadline.is_some() && timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Timeout);
            }
            Poll::Pending
        })
        .await
    }
}

/// Stands in for the stream while it is handed to the TLS handshake.
struct Detached;

impl super::runtime::Stream for Detached {}

impl AsyncRead for Detached {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(0))
    }
}

impl futures_lite::AsyncWrite for Detached {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The reply codes in `bytes` (`250 250 354`), for logs that must not carry texts.
fn reply_codes(bytes: &[u8]) -> String {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| l.len() >= 3)
        .map(|l| String::from_utf8_lossy(&l[..3]).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(all(test, feature = "runtime-tokio"))]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::proto::Config;
    use crate::server::Settings;

    /// aiosmtpd's default for every hook.
    struct Defaults;

    impl Handler for Defaults {}

    /// A client whose bytes are always there: every read returns a full
    /// buffer of `x` (never a line end) until `until`, then end of stream.
    struct Flood {
        until: Instant,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl super::super::runtime::Stream for Flood {}

    impl AsyncRead for Flood {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            if Instant::now() >= self.until {
                return Poll::Ready(Ok(0));
            }
            buf.fill(b'x');
            Poll::Ready(Ok(buf.len()))
        }
    }

    impl futures_lite::AsyncWrite for Flood {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bytes: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.written.lock().unwrap().extend_from_slice(bytes);
            Poll::Ready(Ok(bytes.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// The idle timer is polled only when a read waits; a client whose reads
    /// never wait (and never finish a line) must still get `421` at its
    /// deadline, not only when it stops sending.
    #[test]
    fn a_client_that_never_lets_the_read_wait_still_times_out() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let stream = Flood {
            // The deadline is 100 ms after the greeting; the flood lasts 5 s
            // (the bound of this test) and then ends the stream.
            until: Instant::now() + Duration::from_secs(5),
            written: written.clone(),
        };
        let config = Config::new("flood.test").with_timeout(Duration::from_millis(100));
        let rt = ::tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let shared = Settings::new(config).share(Arc::new(Defaults));
        rt.block_on(serve_connection(
            &crate::tokio::TokioRuntime,
            shared,
            Box::new(stream),
            Peer::Unix,
            &Stop::default(),
            false,
            Spinner::new(None, Arc::new(AtomicUsize::new(1))),
        ));
        let written = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        assert!(
            written.ends_with("421 4.4.2 flood.test Error: timeout exceeded\r\n"),
            "{written:?}"
        );
    }
}
