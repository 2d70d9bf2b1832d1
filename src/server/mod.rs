//! The async layer over the engine: the [`Handler`] trait, the connection driver
//! (written once over futures-io), the accept loop and the controller logic, and
//! the small [`Runtime`] trait through which tokio, smol and async-std enter.

mod accept;
mod auth;
mod busy_poll;
mod controller;
mod driver;
mod handler;
mod runtime;
mod shutdown;
mod tls;

pub use auth::{AuthFileError, Authenticated, Authenticator, FileAuthenticator, SaslMechanism};
pub use controller::{
    BindTarget, DEFAULT_BUSY_POLL, DEFAULT_READY_TIMEOUT, LocalController, READY_TIMEOUT_ENV,
    ServerError, Tcp, ThreadedController, Unix, controller_config, default_server_hostname,
    get_localhost,
};
pub use handler::{Handler, HandlerError, HookResult};
pub use runtime::{AsyncTimer, BoxFuture, BoxStream, Listener, Runtime, Stream};
pub use shutdown::{Signal, Wait};
pub use tls::{TlsError, TlsSettings, server_config_from_pem};

use std::sync::Arc;

use crate::proto::Config;

/// Serves already-wrapped `listeners` with `handler` until `shutdown` fires, then
/// closes the listeners, gives open connections `421` and returns once they end.
/// The runtime modules' `serve` functions call this.
pub async fn serve_listeners<H: Handler>(
    runtime: Arc<dyn Runtime>,
    listeners: Vec<Box<dyn Listener>>,
    handler: Arc<H>,
    config: Config,
    tls: TlsSettings,
    shutdown: Signal,
) {
    let config = effective_config(config, &tls, &*handler);
    accept::accept_loop(
        runtime,
        listeners,
        handler,
        Arc::new(config),
        Arc::new(tls),
        shutdown,
        // The caller's runtime may have other work: never spin on it.
        None,
    )
    .await
}

/// The engine configuration a server runs with: STARTTLS offered exactly when a
/// STARTTLS certificate is configured, and the handler's extra SASL mechanisms
/// added to the AUTH list.
pub(crate) fn effective_config<H: Handler>(
    mut config: Config,
    tls: &TlsSettings,
    handler: &H,
) -> Config {
    config.starttls = tls.starttls.is_some();
    if !config.starttls {
        config.require_starttls = false;
    }
    for name in handler.auth_mechanisms() {
        let name = name.to_ascii_uppercase();
        if !config.auth_mechanisms.contains(&name) {
            config.auth_mechanisms.push(name);
        }
    }
    config
}

/// Serves `listener` on `runtime` until `shutdown` completes (see
/// [`serve_listeners`]); the runtime modules' `serve` functions call this.
pub async fn serve_until<R: Runtime, H: Handler>(
    runtime: R,
    listener: Box<dyn Listener>,
    handler: H,
    config: Config,
    tls: TlsSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let signal = Signal::new();
    let fire = signal.clone();
    runtime.spawn(Box::pin(async move {
        shutdown.await;
        fire.fire();
    }));
    serve_listeners(
        Arc::new(runtime),
        vec![listener],
        Arc::new(handler),
        config,
        tls,
        signal,
    )
    .await
}
