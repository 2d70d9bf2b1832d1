//! The connection driver: the one loop that feeds a stream's bytes to the engine,
//! writes its replies, awaits the handler and arms the idle timer. Written once
//! over futures-io for every runtime.

use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use std::future::Future;

use futures_lite::{AsyncRead, AsyncWriteExt, FutureExt};

use super::busy_poll::Spinner;
use super::handler::{Handler, HandlerError};
use super::runtime::{BoxStream, Runtime};
use super::shutdown::Signal;
use super::tls::{self, TlsSettings};
use crate::proto::{Action, Ask, Config, Connection, Decision, HookCall, Outcome, Peer};

/// Size of the read buffer each worker thread shares among its connections.
const READ_BUF: usize = 64 * 1024;

thread_local! {
    /// Bytes are read here and handed to the engine at once (the engine keeps
    /// only an unfinished line), so an idle connection holds no read buffer.
    static READ_BUFFER: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_BUF].into_boxed_slice());
}

enum Event {
    /// Bytes were read and given to the engine (`false`: the engine refused them).
    Input(bool),
    /// End of stream or a read error.
    Closed,
    Timeout,
    Shutdown,
}

/// Serves one accepted connection until it closes (`refuse`: with `421` only).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive<H: Handler>(
    runtime: Arc<dyn Runtime>,
    handler: Arc<H>,
    config: Arc<Config>,
    tls_settings: Arc<TlsSettings>,
    mut stream: BoxStream,
    peer: Peer,
    shutdown: Signal,
    refuse: bool,
    mut spinner: Spinner,
) {
    tracing::debug!(%peer, "connection opened");
    let mut timer = runtime.new_timer(Instant::now());
    let mut shutdown_wait = shutdown.wait();
    let timeout = config.timeout;
    let mut implicit_tls = None;
    if let Some(server_config) = &tls_settings.implicit {
        let deadline = Instant::now() + timeout;
        match tls::accept(
            server_config.clone(),
            stream,
            &mut timer,
            deadline,
            &mut shutdown_wait,
        )
        .await
        {
            Ok((tls_stream, info)) => {
                stream = tls_stream;
                implicit_tls = Some(info);
            }
            Err(e) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
        }
    }
    let hook_timeout = config.hook_timeout;
    let mut conn = if refuse {
        Connection::refused(config, peer, Instant::now())
    } else {
        Connection::new(config, peer, Instant::now())
    };
    // TLS needs its close_notify on close; plain TCP only the close itself.
    let mut tls_active = implicit_tls.is_some();
    if let Some(info) = implicit_tls {
        conn = conn.with_tls(info);
    }
    let mut armed: Option<Instant> = None;
    // When the last bytes were read.
    let mut last_input = Instant::now();
    let mut chunk_error: Option<HandlerError> = None;
    let mut auth_state: Vec<u8> = Vec::new();
    loop {
        while let Some(action) = conn.poll_action() {
            match action {
                Action::Send(bytes) => {
                    // Reply codes only: a text may echo what an authenticator or
                    // handler said, and credentials must never reach the logs.
                    if tracing::enabled!(tracing::Level::TRACE) {
                        tracing::trace!(codes = %reply_codes(bytes), "<<");
                    }
                    if stream.write_all(bytes).await.is_err() || stream.flush().await.is_err() {
                        return;
                    }
                }
                Action::Body(body) => {
                    if body.offset == 0 {
                        chunk_error = None;
                    }
                    if chunk_error.is_none() {
                        let fut =
                            handler.handle_data_chunk(body.session, body.envelope, body.chunk);
                        match AssertUnwindSafe(fut).catch_unwind().await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => chunk_error = Some(e),
                            Err(panic) => chunk_error = Some(HandlerError::from_panic(panic)),
                        }
                    }
                }
                Action::Hook(call) => {
                    let decision = {
                        let hook = run_hook(&*handler, call, &mut chunk_error, &mut auth_state);
                        match hook_timeout {
                            None => Some(hook.await),
                            Some(limit) => {
                                timer.as_mut().reset(Instant::now() + limit);
                                armed = None;
                                let mut hook = std::pin::pin!(hook);
                                poll_fn(|cx| {
                                    if let Poll::Ready(d) = hook.as_mut().poll(cx) {
                                        return Poll::Ready(Some(d));
                                    }
                                    timer.as_mut().poll(cx).map(|()| None)
                                })
                                .await
                            }
                        }
                    };
                    let now = Instant::now();
                    match decision {
                        Some(d) => {
                            if conn.handle_decision(now, d).is_err() {
                                return;
                            }
                        }
                        None => {
                            tracing::warn!("handler hook timed out");
                            conn.handle_hook_timeout(now);
                        }
                    }
                }
                Action::StartTls => {
                    let Some(server_config) = tls_settings.starttls.clone() else {
                        return;
                    };
                    let plain = std::mem::replace(&mut stream, Box::new(Detached));
                    let deadline = Instant::now() + timeout;
                    match tls::accept(
                        server_config,
                        plain,
                        &mut timer,
                        deadline,
                        &mut shutdown_wait,
                    )
                    .await
                    {
                        Ok((tls_stream, info)) => {
                            stream = tls_stream;
                            tls_active = true;
                            armed = None;
                            if conn.handle_tls_established(Instant::now(), info).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "STARTTLS handshake failed");
                            return;
                        }
                    }
                }
                Action::Close => {
                    if tls_active {
                        let _ = stream.close().await;
                    }
                    // Plain TCP: dropping the stream closes the socket, which sends
                    // the FIN after the replies already written (a shutdown(2)
                    // first would only cost a system call).
                    tracing::debug!("connection closed");
                    return;
                }
            }
        }
        // The timer is re-armed only when the deadline comes earlier than the
        // armed one: every command moves the deadline later, and re-arming a
        // timer per command costs more than the rare early wake-up (the engine
        // ignores a timeout before its deadline, and the timer is then re-armed).
        let deadline = conn.poll_timeout();
        if let Some(d) = deadline
            && armed.is_none_or(|a| d < a)
        {
            timer.as_mut().reset(d);
            armed = Some(d);
        }
        // A client that keeps every read busy without finishing a line still
        // meets its deadline (the timer below is polled only when a read waits).
        let overdue = deadline.is_some_and(|d| last_input >= d);
        let event = poll_fn(|cx| {
            if shutdown_wait.poll_fired(cx).is_ready() {
                return Poll::Ready(Event::Shutdown);
            }
            if overdue {
                return Poll::Ready(Event::Timeout);
            }
            // The engine takes the bytes inside this poll, so the buffer is
            // never held across an await.
            let input = READ_BUFFER.with_borrow_mut(|buf| {
                let read = match std::pin::Pin::new(&mut stream).poll_read(cx, buf) {
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
                        last_input = Instant::now();
                        let fed = conn.handle_input(last_input, &buf[..n]);
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
        .await;
        // The engine already has the time of an input; the rarer events read it
        // here (a clock read per command saved).
        match event {
            Event::Closed => conn.handle_peer_closed(Instant::now()),
            Event::Input(fed) => {
                if !fed {
                    return;
                }
            }
            Event::Timeout => {
                armed = None;
                conn.handle_timeout(Instant::now());
            }
            Event::Shutdown => conn.handle_shutdown(Instant::now()),
        }
    }
}

/// Calls the handler hook for `call`, turning errors and panics into decisions
/// (through `handle_exception`).
async fn run_hook<H: Handler>(
    handler: &H,
    call: HookCall<'_>,
    chunk_error: &mut Option<HandlerError>,
    auth_state: &mut Vec<u8>,
) -> Decision {
    let is_auth = matches!(call.ask, Ask::Auth { .. } | Ask::AuthStep { .. });
    let HookCall {
        ask,
        session,
        envelope,
    } = call;
    let hook = async {
        let auth = match ask {
            Ask::Auth {
                mechanism,
                login,
                password,
            } => Some(
                handler
                    .handle_auth(session, envelope, mechanism, login, password)
                    .await,
            ),
            Ask::AuthStep {
                mechanism,
                step,
                response,
            } => {
                if *step == 0 {
                    auth_state.clear();
                }
                Some(
                    handler
                        .handle_auth_step(
                            session,
                            mechanism,
                            *step,
                            response.as_deref(),
                            auth_state,
                        )
                        .await,
                )
            }
            _ => None,
        };
        if let Some(result) = auth {
            return result.map(Decision::Auth);
        }
        let outcome = match ask {
            Ask::Helo { hostname } => handler.handle_helo(session, envelope, hostname).await,
            Ask::Ehlo {
                hostname,
                extensions,
            } => {
                handler
                    .handle_ehlo(session, envelope, hostname, extensions)
                    .await
            }
            Ask::Mail { address, options } => {
                handler
                    .handle_mail(session, envelope, address, options)
                    .await
            }
            Ask::Rcpt { address, options } => {
                handler
                    .handle_rcpt(session, envelope, address, options)
                    .await
            }
            Ask::Data => match chunk_error.take() {
                Some(e) => Err(e),
                None => handler.handle_data(session, envelope).await,
            },
            Ask::LmtpData => {
                return match chunk_error.take() {
                    Some(e) => Err(e),
                    None => handler
                        .handle_lmtp_data(session, envelope)
                        .await
                        .map(Decision::Recipients),
                };
            }
            Ask::Proxy => handler.handle_proxy(session, envelope).await,
            Ask::Rset => handler.handle_rset(session, envelope).await,
            Ask::Noop { arg } => handler.handle_noop(session, envelope, arg.as_deref()).await,
            Ask::Quit => handler.handle_quit(session, envelope).await,
            Ask::Vrfy { address } => handler.handle_vrfy(session, envelope, address).await,
            Ask::Auth { .. } | Ask::AuthStep { .. } => Ok(Outcome::Default),
        };
        outcome.map(Decision::Outcome)
    };
    let error = match AssertUnwindSafe(hook).catch_unwind().await {
        Ok(Ok(decision)) => return decision,
        Ok(Err(e)) => e,
        Err(panic) => HandlerError::from_panic(panic),
    };
    if is_auth {
        // Never log what an authenticator said: it may echo credentials.
        tracing::warn!("authenticator failed");
    } else {
        tracing::warn!(error = %error, "handler hook failed");
    }
    match AssertUnwindSafe(handler.handle_exception(&error))
        .catch_unwind()
        .await
    {
        Ok(Some(reply)) => Decision::Outcome(Outcome::Reply(reply)),
        Ok(None) => Decision::Failed(error.to_failure()),
        Err(panic) => Decision::Failed(HandlerError::from_panic(panic).to_failure()),
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
    use crate::handlers::Sink;

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
        let config = Arc::new(Config::new("flood.test").with_timeout(Duration::from_millis(100)));
        let rt = ::tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(drive(
            Arc::new(crate::tokio::TokioRuntime),
            Arc::new(Sink),
            config,
            Arc::new(TlsSettings::default()),
            Box::new(stream),
            Peer::Unix,
            Signal::new(),
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
