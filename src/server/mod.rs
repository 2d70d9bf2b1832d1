//! The async layer over the engine, written once over futures-io for every
//! runtime. Which file holds what:
//!
//! - `handler.rs`: the [`Handler`] trait, one method per aiosmtpd hook;
//! - `hooks.rs`: the hook table, which method answers each engine [`Ask`]
//!   (the one place the server names every hook);
//! - `auth.rs`: [`Authenticator`] and [`SaslMechanism`], held beside the
//!   handler in [`Authentication`], and [`FileAuthenticator`];
//! - `settings.rs`: [`Settings`] (the engine's [`Config`], the server's
//!   [`Limits`], TLS, authentication);
//! - `driver.rs`: a `Driver` per connection (the engine and the loop) and its
//!   `Io` side, with one method per engine [`Action`];
//! - `accept.rs`: the accept loop and connection limits; `busy_poll.rs`;
//!   `shutdown.rs`; `tls.rs`;
//! - `controller.rs`: aiosmtpd's threaded and unthreaded controllers, generic
//!   over the runtime;
//! - `runtime.rs`: the small [`Runtime`] trait through which tokio, smol and
//!   async-std enter, and `runtime_names.rs`: the names each runtime module
//!   exports, generated.
//!
//! [`Ask`]: crate::proto::Ask
//! [`Action`]: crate::proto::Action
//! [`Config`]: crate::proto::Config

mod accept;
mod auth;
mod busy_poll;
mod controller;
mod driver;
mod handler;
mod hooks;
mod runtime;
mod runtime_names;
mod settings;
mod shutdown;
mod tls;

pub use auth::{AuthFileError, Authentication, Authenticator, FileAuthenticator, SaslMechanism};
pub use controller::{
    BindTarget, DEFAULT_BUSY_POLL, DEFAULT_READY_TIMEOUT, READY_TIMEOUT_ENV, ServerError, Tcp,
    ThreadedController, Unix, UnthreadedController, controller_config, default_server_hostname,
    get_localhost,
};
pub use handler::{Handler, HandlerError, HookResult};
pub use runtime::{AsyncTimer, BoxFuture, BoxStream, Listener, Runtime, Stream};
pub(crate) use runtime_names::runtime_names;
pub use settings::{Limits, Settings};
pub use shutdown::{Signal, Wait};
pub use tls::{TlsError, TlsSettings, server_config_from_pem};

use std::sync::Arc;

/// Serves `listener` on a fresh `R` until `shutdown` completes, then closes the
/// listener, gives open connections `421` and returns once they end. Call it on
/// `R`'s runtime; the runtime modules' `serve` functions are this with `R` fixed.
pub async fn serve<R: Runtime + Default, H: Handler>(
    listener: std::net::TcpListener,
    handler: H,
    settings: impl Into<Settings>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = R::default();
    let listener = runtime.wrap_tcp_listener(listener)?;
    let signal = Signal::new();
    let fire = signal.clone();
    runtime.spawn(Box::pin(async move {
        shutdown.await;
        fire.fire();
    }));
    let shared = settings.into().share(Arc::new(handler));
    // The caller's runtime may have other work: never spin on it.
    let stops = shutdown::Stop::hard_only(signal);
    accept::accept_loop(Arc::new(runtime), vec![listener], shared, stops, None).await;
    Ok(())
}
