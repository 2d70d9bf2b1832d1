//! The public names every runtime module gives, generated from its [`Runtime`]
//! type so that a new runtime is its `Runtime` impl plus one
//! `runtime_names!` line.
//!
//! [`Runtime`]: super::Runtime

/// Declares, in the calling runtime module, aiosmtpd's four controllers
/// (`Controller`, `UnixSocketController`, `UnthreadedController`,
/// `UnixSocketUnthreadedController`) and `serve`, over `$runtime`; `$name`
/// names the runtime in their docs.
macro_rules! runtime_names {
    ($runtime:ty, $name:literal) => {
        #[doc = concat!("A TCP server on its own thread and ", $name, " runtime (aiosmtpd's `Controller`).")]
        pub type Controller<H> =
            $crate::server::ThreadedController<H, $runtime, $crate::server::Tcp>;

        #[doc = concat!("A Unix-socket server on its own thread and ", $name, " runtime (aiosmtpd's `UnixSocketController`).")]
        pub type UnixSocketController<H> =
            $crate::server::ThreadedController<H, $runtime, $crate::server::Unix>;

        #[doc = concat!("A TCP server on the caller's ", $name, " runtime (aiosmtpd's `UnthreadedController`).")]
        pub type UnthreadedController<H> =
            $crate::server::UnthreadedController<H, $runtime, $crate::server::Tcp>;

        #[doc = concat!("A Unix-socket server on the caller's ", $name, " runtime (aiosmtpd's `UnixSocketUnthreadedController`).")]
        pub type UnixSocketUnthreadedController<H> =
            $crate::server::UnthreadedController<H, $runtime, $crate::server::Unix>;

        #[doc = concat!("Serves `listener` with `handler` on ", $name, " (call it inside a ", $name, " context) until `shutdown` completes, then closes the listener, gives open connections `421` and returns once they end. `settings`: a [`Config`](crate::proto::Config), or [`Settings`](crate::server::Settings) with limits, TLS and an authenticator.")]
        pub async fn serve<H: $crate::server::Handler>(
            listener: ::std::net::TcpListener,
            handler: H,
            settings: impl Into<$crate::server::Settings>,
            shutdown: impl ::std::future::Future<Output = ()> + Send + 'static,
        ) -> ::std::io::Result<()> {
            $crate::server::serve::<$runtime, H>(listener, handler, settings, shutdown).await
        }
    };
}

pub(crate) use runtime_names;
