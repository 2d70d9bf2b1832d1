//! The shared integration suite (`tests/suite/`) on the async-std runtime.
//!
//! The suite names the runtime only through `crate::rt` (the controller aliases),
//! `crate::block_on` and `crate::sleep`, so the same files can be instantiated for
//! other runtimes by a sibling entry file.

use std::future::Future;
use std::time::Duration;

use smtpkit::async_std as rt;

#[path = "suite/mod.rs"]
mod suite;

/// Runs `future` to completion on async-std.
pub fn block_on<F: Future>(future: F) -> F::Output {
    ::async_std::task::block_on(future)
}

/// Sleeps on async-std.
pub async fn sleep(duration: Duration) {
    ::async_std::task::sleep(duration).await;
}
