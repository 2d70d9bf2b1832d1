//! The shared integration suite (`tests/suite/`) on the tokio runtime.
//!
//! The suite names the runtime only through `crate::rt` (the controller aliases),
//! `crate::block_on` and `crate::sleep`, so the same files can be instantiated for
//! other runtimes by a sibling entry file.

use std::future::Future;
use std::time::Duration;

use smtpkit::tokio as rt;

#[path = "suite/mod.rs"]
mod suite;

/// Runs `future` to completion on a fresh current-thread tokio runtime (the
/// caller's runtime for the unthreaded controllers).
pub fn block_on<F: Future>(future: F) -> F::Output {
    ::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
        .block_on(future)
}

/// Sleeps on the runtime driving [`block_on`].
pub async fn sleep(duration: Duration) {
    ::tokio::time::sleep(duration).await
}
