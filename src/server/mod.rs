//! The async layer over the engine: the [`Handler`] trait, the connection driver
//! (written once over futures-io), the accept loop and the controller logic, and
//! the small [`Runtime`] trait through which tokio, smol and async-std enter.

mod accept;
mod controller;
mod driver;
mod handler;
mod runtime;
mod shutdown;

pub use controller::{
    BindTarget, DEFAULT_READY_TIMEOUT, LocalController, READY_TIMEOUT_ENV, ServerError, Tcp,
    ThreadedController, Unix, controller_config, default_server_hostname, get_localhost,
};
pub use handler::{Handler, HandlerError, HookResult};
pub use runtime::{AsyncTimer, BoxFuture, BoxStream, Listener, Runtime, Stream};
pub use shutdown::{Signal, Wait};

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
    shutdown: Signal,
) {
    accept::accept_loop(runtime, listeners, handler, Arc::new(config), shutdown).await
}

/// Serves `listener` on `runtime` until `shutdown` completes (see
/// [`serve_listeners`]); the runtime modules' `serve` functions call this.
pub async fn serve_until<R: Runtime, H: Handler>(
    runtime: R,
    listener: Box<dyn Listener>,
    handler: H,
    config: Config,
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
        signal,
    )
    .await
}
