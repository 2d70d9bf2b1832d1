//! The controller logic, written once for every runtime: binding, the threaded
//! start/stop contract, and the unthreaded begin/end/finalize contract.
//! `runtimes/*.rs` expose it as `Controller`, `UnixSocketController`,
//! `UnthreadedController` and `UnixSocketUnthreadedController`.

use std::io;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::accept::accept_loop;
use super::auth::{Authenticator, SaslMechanism};
use super::handler::Handler;
use super::runtime::{Listener, Runtime};
use super::settings::{Limits, Settings};
use super::shutdown::{Signal, Stop};
use crate::proto::Config;

/// aiosmtpd's `DEFAULT_READY_TIMEOUT`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// Environment variable that overrides `ready_timeout` (seconds, may be fractional).
pub const READY_TIMEOUT_ENV: &str = "SMTPKIT_CONTROLLER_TIMEOUT";

/// Why a server could not start or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The address could not be bound.
    #[error("error while attempting to bind on address {addr}: {source}")]
    Bind {
        /// The address or socket path.
        addr: String,
        /// The OS error.
        source: io::Error,
    },
    /// The server did not report ready within `ready_timeout`.
    #[error(
        "SMTP server failed to start within {0:?}. This might happen if the system is too busy. Try increasing the `ready_timeout` parameter."
    )]
    Timeout(Duration),
    /// `start()` or `begin()` on a running controller.
    #[error("SMTP server already running")]
    AlreadyRunning,
    /// `stop()` or `end()` on a controller that is not running.
    #[error("SMTP server not running")]
    NotRunning,
    /// The server thread panicked.
    #[error("the SMTP server thread panicked")]
    Panicked,
    /// Any other I/O error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// `::1` where IPv6 works, else `127.0.0.1` (aiosmtpd's `get_localhost()`).
pub fn get_localhost() -> IpAddr {
    match TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => IpAddr::V6(Ipv6Addr::LOCALHOST),
        Err(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// This machine's host name (for the greeting), without a DNS lookup.
pub fn default_server_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The configuration a controller starts with: aiosmtpd's defaults, SMTPUTF8 on
/// (as aiosmtpd's controllers do) and this machine's host name.
pub fn controller_config() -> Config {
    Config::new(default_server_hostname()).with_smtputf8(true)
}

/// The threaded controllers' default busy-polling window.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(200);

fn ready_timeout_from_env(default: Duration) -> Duration {
    std::env::var(READY_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(default)
}

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindTarget {
    /// TCP: `host` `None` → [`get_localhost`]; `"localhost"` → `::1` and
    /// `127.0.0.1`; `""` → every interface (IPv6 and IPv4). Port 0 picks a free port.
    Tcp {
        /// Host name or address.
        host: Option<String>,
        /// Port (0: any free port).
        port: u16,
    },
    /// A Unix domain socket at this path.
    Unix(PathBuf),
}

enum StdListener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener),
}

/// Sockets bound on the caller's thread, so bind errors surface at once.
struct Bound {
    listeners: Vec<StdListener>,
    addrs: Vec<SocketAddr>,
}

fn resolve(host: Option<&str>, port: u16) -> io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs;
    Ok(match host {
        None => vec![SocketAddr::new(get_localhost(), port)],
        Some("") => vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ],
        Some(h) => {
            let h = h.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = h.parse::<IpAddr>() {
                vec![SocketAddr::new(ip, port)]
            } else {
                let mut v: Vec<SocketAddr> = (h, port).to_socket_addrs()?.collect();
                v.sort_by_key(|a| a.is_ipv4());
                v.dedup();
                v
            }
        }
    })
}

fn bind_tcp(host: Option<&str>, port: u16) -> Result<Bound, ServerError> {
    let shown = format!("{}:{}", host.unwrap_or("localhost"), port);
    let addrs = resolve(host, port).map_err(|source| ServerError::Bind {
        addr: shown.clone(),
        source,
    })?;
    let mut bound = Bound {
        listeners: Vec::new(),
        addrs: Vec::new(),
    };
    let mut first_err = None;
    let mut port = port;
    for addr in addrs {
        let addr = SocketAddr::new(addr.ip(), port);
        match bind_one_tcp(addr) {
            Ok(l) => {
                let local = l.local_addr()?;
                // With port 0, every further address takes the port the first got.
                port = local.port();
                bound.addrs.push(local);
                bound.listeners.push(StdListener::Tcp(l));
            }
            Err(e) => {
                first_err.get_or_insert(ServerError::Bind {
                    addr: addr.to_string(),
                    source: e,
                });
            }
        }
    }
    if bound.listeners.is_empty() {
        return Err(first_err.unwrap_or(ServerError::Bind {
            addr: shown,
            source: io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to bind"),
        }));
    }
    Ok(bound)
}

/// The listen backlog: connections the kernel completes before the accept loop
/// takes them (std's bind uses 128, too few for a burst of clients; the kernel
/// caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: i32 = 1024;

fn bind_one_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As std's bind: SO_REUSEADDR on Unix, so a restarted server can rebind at once.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(unix)]
fn bind_unix(path: &Path) -> Result<Bound, ServerError> {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
    let l = unix_listener(path).map_err(|source| ServerError::Bind {
        addr: path.display().to_string(),
        source,
    })?;
    Ok(Bound {
        listeners: vec![StdListener::Unix(l)],
        addrs: Vec::new(),
    })
}

#[cfg(unix)]
fn unix_listener(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn bind(target: &BindTarget) -> Result<Bound, ServerError> {
    match target {
        BindTarget::Tcp { host, port } => bind_tcp(host.as_deref(), *port),
        #[cfg(unix)]
        BindTarget::Unix(path) => bind_unix(path),
        #[cfg(not(unix))]
        BindTarget::Unix(_) => Err(ServerError::Io(io::Error::new(
            io::ErrorKind::Unsupported,
            "Unix sockets are not supported here",
        ))),
    }
}

fn wrap(runtime: &dyn Runtime, listeners: Vec<StdListener>) -> io::Result<Vec<Box<dyn Listener>>> {
    listeners
        .into_iter()
        .map(|l| match l {
            StdListener::Tcp(l) => runtime.wrap_tcp_listener(l),
            #[cfg(unix)]
            StdListener::Unix(l) => runtime.wrap_unix_listener(l),
        })
        .collect()
}

fn fired_signal() -> Signal {
    let s = Signal::new();
    s.fire();
    s
}

/// Marker: a controller listening on TCP.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tcp;
/// Marker: a controller listening on a Unix domain socket.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unix;

/// A running threaded server.
struct Threaded {
    shutdown: Signal,
    stops: Stop,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Threaded {
    fn stop(self) -> Result<(), ServerError> {
        self.shutdown.fire();
        self.join()
    }

    fn stop_gracefully(self, deadline: Duration) -> Result<(), ServerError> {
        self.stops.begin_graceful(deadline);
        self.join()
    }

    fn join(mut self) -> Result<(), ServerError> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r.map_err(ServerError::Io),
            Some(Err(_)) => Err(ServerError::Panicked),
            None => Ok(()),
        }
    }
}

impl Drop for Threaded {
    fn drop(&mut self) {
        self.shutdown.fire();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A server on its own thread and runtime (aiosmtpd's threaded controllers),
/// generic over the runtime. Use it through a runtime module's aliases, e.g.
/// `smtpkit::tokio::Controller`.
pub struct ThreadedController<H: Handler, R: Runtime + Default, K = Tcp> {
    handler: Arc<H>,
    settings: Settings,
    target: BindTarget,
    ready_timeout: Duration,
    workers: usize,
    busy_poll: Option<Duration>,
    addrs: Vec<SocketAddr>,
    running: Option<Threaded>,
    _runtime: PhantomData<fn() -> (R, K)>,
}

impl<H: Handler, R: Runtime + Default, K> ThreadedController<H, R, K> {
    /// A controller that will serve `handler` on `target`.
    fn with_target(handler: H, target: BindTarget) -> Self {
        ThreadedController {
            handler: Arc::new(handler),
            settings: Settings::new(controller_config()),
            target,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            workers: 1,
            busy_poll: Some(DEFAULT_BUSY_POLL),
            addrs: Vec::new(),
            running: None,
            _runtime: PhantomData,
        }
    }

    /// The number of threads serving connections (tokio; smol and async-std
    /// size their global executors from `SMOL_THREADS` / `ASYNC_STD_THREAD_COUNT`).
    /// 1, the default, serves everything on the controller's own thread, as
    /// aiosmtpd's single event loop does, and costs the least CPU per
    /// connection; more threads help when hooks do CPU-heavy work. 0 means one
    /// per core.
    ///
    /// ```no_run
    /// use smtpkit::{handlers::Sink, tokio::Controller};
    /// let mut controller = Controller::new(Sink).with_port(0).with_workers(4);
    /// controller.start().unwrap();
    /// ```
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Busy polling (default 200 µs): while a connection is the only one open,
    /// after each reply the server keeps reading its socket for up to this long
    /// before sleeping in the event loop, so a client that answers quickly
    /// (loopback, a fast LAN) is met without the wake-up of an idle CPU; with
    /// no connection open, it keeps accepting for as long after the last one
    /// closes. It backs off by itself when the client is slower than the
    /// window (about one window of CPU per 64 waits then), never runs while
    /// other connections are open, and never on TLS streams. `None` or zero
    /// turns it off. Unthreaded controllers never spin: the runtime is the
    /// caller's.
    ///
    /// ```no_run
    /// use smtpkit::{handlers::Sink, tokio::Controller};
    /// let mut controller = Controller::new(Sink).with_port(0).with_busy_poll(None);
    /// controller.start().unwrap();
    /// ```
    pub fn with_busy_poll(mut self, window: Option<std::time::Duration>) -> Self {
        self.busy_poll = window;
        self
    }

    /// How long `start()` waits for the server (default 5 s; the environment
    /// variable `SMTPKIT_CONTROLLER_TIMEOUT` overrides it).
    pub fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// True between `start()` and `stop()`.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Starts the server thread; returns once it accepts connections, or fails with
    /// the bind error or [`ServerError::Timeout`] within the ready timeout.
    pub fn start(&mut self) -> Result<(), ServerError> {
        if self.running.is_some() {
            return Err(ServerError::AlreadyRunning);
        }
        let bound = bind(&self.target)?;
        let addrs = bound.addrs;
        let listeners = bound.listeners;
        let runtime: Arc<dyn Runtime> = Arc::new(R::default());
        let shared = self.settings.share(self.handler.clone());
        let shutdown = Signal::new();
        let stops = Stop::hard_only(shutdown.clone());
        let stop = stops.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let workers = self.workers;
        let busy_poll = self.busy_poll;
        let thread = std::thread::Builder::new()
            .name("smtpkit-controller".into())
            .spawn(move || {
                let rt = runtime.clone();
                runtime.block_on(
                    Box::pin(async move {
                        let listeners = match wrap(&*rt, listeners) {
                            Ok(l) => l,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                        let _ = ready_tx.send(Ok(()));
                        accept_loop(rt, listeners, shared, stop, busy_poll).await;
                    }),
                    workers,
                )
            })?;
        let running = Threaded {
            shutdown,
            stops,
            thread: Some(thread),
        };
        let timeout = ready_timeout_from_env(self.ready_timeout);
        match ready_rx.recv_timeout(timeout) {
            Ok(Ok(())) => {
                self.addrs = addrs;
                self.running = Some(running);
                Ok(())
            }
            Ok(Err(e)) => {
                let _ = running.stop();
                Err(ServerError::Io(e))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                drop(running);
                Err(ServerError::Timeout(timeout))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match running.stop() {
                Err(e) => Err(e),
                Ok(()) => Err(ServerError::Panicked),
            },
        }
    }

    /// Stops the server: returns once the listener is closed, the port released and
    /// the thread ended. Open connections get `421` first. The controller can be
    /// started again.
    pub fn stop(&mut self) -> Result<(), ServerError> {
        self.stop_with(Threaded::stop)
    }

    /// Stops the server gracefully: it stops accepting at once; a session
    /// between commands gets `421 4.3.2 <host> Service shutting down` and
    /// closes; one in the middle of a message finishes it (its reply is sent,
    /// its message delivered) and then gets the 421; at `deadline` whatever
    /// is left gets `421` and closes, a handler still running included.
    /// Returns once every connection ended and the port is released.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let mut controller = smtpkit::tokio::Controller::new(smtpkit::handlers::Sink);
    /// controller.start()?;
    /// // ... on SIGTERM:
    /// controller.stop_gracefully(Duration::from_secs(30))?;
    /// # Ok::<(), smtpkit::ServerError>(())
    /// ```
    pub fn stop_gracefully(&mut self, deadline: Duration) -> Result<(), ServerError> {
        self.stop_with(|running| running.stop_gracefully(deadline))
    }

    /// The signal that stops the running server at once (as [`Self::stop`],
    /// from another thread: e.g. a second SIGTERM while
    /// [`Self::stop_gracefully`] waits). `None` when not running.
    pub fn stop_signal(&self) -> Option<Signal> {
        self.running.as_ref().map(|r| r.shutdown.clone())
    }

    fn stop_with(
        &mut self,
        stop: impl FnOnce(Threaded) -> Result<(), ServerError>,
    ) -> Result<(), ServerError> {
        let running = self.running.take().ok_or(ServerError::NotRunning)?;
        self.addrs.clear();
        let r = stop(running);
        if let BindTarget::Unix(path) = &self.target {
            let _ = std::fs::remove_file(path);
        }
        r
    }
}

impl<H: Handler, R: Runtime + Default, K> Drop for ThreadedController<H, R, K> {
    fn drop(&mut self) {
        if self.running.is_some() {
            let _ = self.stop();
        }
    }
}

/// A server on the caller's runtime (aiosmtpd's unthreaded controllers): `begin()`
/// from inside the runtime, `end()` or `finalize().await` to stop. Use it through
/// a runtime module's aliases, e.g. `smtpkit::tokio::UnthreadedController`.
pub struct UnthreadedController<H: Handler, R: Runtime + Default, K = Tcp> {
    handler: Arc<H>,
    settings: Settings,
    target: BindTarget,
    addrs: Vec<SocketAddr>,
    shutdown: Option<Signal>,
    /// How the running server is stopped gracefully.
    stops: Stop,
    ended: Signal,
    _runtime: PhantomData<fn() -> (R, K)>,
}

impl<H: Handler, R: Runtime + Default, K> UnthreadedController<H, R, K> {
    /// A controller that will serve `handler` on `target`.
    fn with_target(handler: H, target: BindTarget) -> Self {
        UnthreadedController {
            handler: Arc::new(handler),
            settings: Settings::new(controller_config()),
            target,
            addrs: Vec::new(),
            shutdown: None,
            ended: fired_signal(),
            stops: Stop::default(),
            _runtime: PhantomData,
        }
    }

    /// Binds and starts serving on the current runtime. Call from inside it.
    pub fn begin(&mut self) -> Result<(), ServerError> {
        if self.shutdown.is_some() {
            return Err(ServerError::AlreadyRunning);
        }
        let bound = bind(&self.target)?;
        let runtime: Arc<dyn Runtime> = Arc::new(R::default());
        let listeners = wrap(&*runtime, bound.listeners)?;
        let shutdown = Signal::new();
        let ended = Signal::new();
        self.ended = ended.clone();
        self.stops = Stop::hard_only(shutdown.clone());
        let fut = accept_loop(
            runtime.clone(),
            listeners,
            self.settings.share(self.handler.clone()),
            self.stops.clone(),
            // The caller's runtime may have other work: never spin on it.
            None,
        );
        let unix_path = match &self.target {
            BindTarget::Unix(p) => Some(p.clone()),
            BindTarget::Tcp { .. } => None,
        };
        runtime.spawn(Box::pin(async move {
            fut.await;
            if let Some(p) = unix_path {
                let _ = std::fs::remove_file(p);
            }
            ended.fire();
        }));
        self.addrs = bound.addrs;
        self.shutdown = Some(shutdown);
        Ok(())
    }

    /// Asks the server to stop; [`Self::ended`] fires once it has.
    pub fn end(&mut self) -> Result<(), ServerError> {
        let s = self.shutdown.take().ok_or(ServerError::NotRunning)?;
        self.addrs.clear();
        s.fire();
        Ok(())
    }

    /// Asks the server to stop gracefully, as
    /// [`ThreadedController::stop_gracefully`] does: it stops accepting; sessions
    /// between commands get `421 4.3.2` now, the others after their message,
    /// and whatever is left at `deadline` gets `421`. [`Self::ended`] fires once
    /// it has stopped (await it, or [`Self::finalize`]).
    pub fn end_gracefully(&mut self, deadline: Duration) -> Result<(), ServerError> {
        if self.shutdown.is_none() {
            return Err(ServerError::NotRunning);
        }
        self.addrs.clear();
        self.stops.begin_graceful(deadline);
        Ok(())
    }

    /// Stops the server and waits until the listener is closed and connections ended.
    /// After [`Self::end_gracefully`], waits for the graceful stop instead.
    pub async fn finalize(&mut self) {
        if let Some(s) = self.shutdown.take() {
            self.addrs.clear();
            if !self.stops.graceful.is_fired() {
                s.fire();
            }
        }
        self.ended.wait().await;
    }

    /// Fires when the server has ended.
    pub fn ended(&self) -> Signal {
        self.ended.clone()
    }
}

impl<H: Handler, R: Runtime + Default, K> Drop for UnthreadedController<H, R, K> {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            s.fire();
        }
    }
}

/// The builder methods and getters every controller shares (written once here
/// for the threaded and the unthreaded family).
macro_rules! controller_common {
    ($name:ident) => {
        impl<H: Handler, R: Runtime + Default, K> $name<H, R, K> {
            /// Replaces the engine configuration (protocol limits, greeting name, ...).
            pub fn with_config(mut self, config: Config) -> Self {
                self.settings.config = config;
                self
            }

            /// Replaces every setting: engine configuration, limits, TLS and
            /// authentication.
            pub fn with_settings(mut self, settings: Settings) -> Self {
                self.settings = settings;
                self
            }

            /// Switches on ESMTP extensions beyond aiosmtpd's dialogue
            /// (PIPELINING, CHUNKING, DSN...; see [`Extensions`](crate::proto::Extensions)).
            /// Default: none, aiosmtpd's dialogue.
            pub fn with_extensions(mut self, extensions: crate::proto::Extensions) -> Self {
                self.settings.config.extensions = extensions;
                self
            }

            /// Sets the server's [`Limits`] (hook timeout, connection limits).
            pub fn with_limits(mut self, limits: Limits) -> Self {
                self.settings.limits = limits;
                self
            }

            /// Decides `AUTH PLAIN` and `AUTH LOGIN` with `authenticator`
            /// (aiosmtpd's `authenticator`), beside the handler: the handler's
            /// `handle_auth` is then not called.
            pub fn with_authenticator(mut self, authenticator: impl Authenticator) -> Self {
                self.settings.auth.set_authenticator(authenticator);
                self
            }

            /// Offers a custom SASL mechanism (advertised in EHLO's AUTH line).
            pub fn with_mechanism(mut self, mechanism: impl SaslMechanism) -> Self {
                self.settings.auth.add_mechanism(mechanism);
                self
            }

            /// The name in the greeting and HELO/EHLO replies (aiosmtpd's `server_hostname`).
            pub fn with_server_hostname(mut self, name: impl Into<String>) -> Self {
                self.settings.config.hostname = name.into();
                self
            }

            /// Offers STARTTLS with this rustls configuration (aiosmtpd's `tls_context`).
            pub fn with_starttls(
                mut self,
                server_config: std::sync::Arc<rustls::ServerConfig>,
            ) -> Self {
                self.settings.tls.starttls = Some(server_config);
                self
            }

            /// Requires STARTTLS before anything but NOOP, EHLO, STARTTLS and QUIT
            /// (aiosmtpd's `require_starttls`; only with [`Self::with_starttls`]).
            pub fn with_require_starttls(mut self, require: bool) -> Self {
                self.settings.config.require_starttls = require;
                self
            }

            /// Speaks TLS from the first byte (implicit TLS, "SMTPS"; aiosmtpd's
            /// `ssl_context`). TLS then counts for AUTH (aiosmtpd #274/#281 fixed).
            pub fn with_implicit_tls(
                mut self,
                server_config: std::sync::Arc<rustls::ServerConfig>,
            ) -> Self {
                self.settings.tls.implicit = Some(server_config);
                self
            }

            /// The engine configuration, to change before `start()`.
            pub fn config_mut(&mut self) -> &mut Config {
                &mut self.settings.config
            }

            /// The server's limits, to change before `start()`.
            pub fn limits_mut(&mut self) -> &mut Limits {
                &mut self.settings.limits
            }

            /// The handler.
            pub fn handler(&self) -> &Arc<H> {
                &self.handler
            }

            /// The bound TCP addresses while running (several for `"localhost"` or `""`).
            pub fn local_addrs(&self) -> &[SocketAddr] {
                &self.addrs
            }

            /// The first bound TCP address while running.
            pub fn local_addr(&self) -> Option<SocketAddr> {
                self.addrs.first().copied()
            }
        }

        impl<H: Handler, R: Runtime + Default> $name<H, R, Tcp> {
            /// A stopped controller serving `handler` on [`get_localhost`] port 8025
            /// (aiosmtpd's default).
            pub fn new(handler: H) -> Self {
                Self::with_target(
                    handler,
                    BindTarget::Tcp {
                        host: None,
                        port: 8025,
                    },
                )
            }

            /// Listens on `host` (see [`BindTarget::Tcp`]).
            pub fn with_hostname(mut self, host: impl Into<String>) -> Self {
                if let BindTarget::Tcp { host: h, .. } = &mut self.target {
                    *h = Some(host.into());
                }
                self
            }

            /// Listens on `port` (0: a free port, see [`Self::local_addr`] after `start`).
            pub fn with_port(mut self, port: u16) -> Self {
                if let BindTarget::Tcp { port: p, .. } = &mut self.target {
                    *p = port;
                }
                self
            }
        }

        impl<H: Handler, R: Runtime + Default> $name<H, R, Unix> {
            /// A controller serving `handler` on the Unix domain socket `path` (a stale
            /// socket file there is replaced; the file is removed on stop).
            pub fn new(handler: H, path: impl Into<PathBuf>) -> Self {
                Self::with_target(handler, BindTarget::Unix(path.into()))
            }

            /// The socket path.
            pub fn path(&self) -> &Path {
                match &self.target {
                    BindTarget::Unix(p) => p,
                    BindTarget::Tcp { .. } => Path::new(""),
                }
            }
        }
    };
}

controller_common!(ThreadedController);
controller_common!(UnthreadedController);
