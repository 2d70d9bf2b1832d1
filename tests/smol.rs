//! The shared integration suite (`tests/suite/`) on the smol runtime.
//!
//! The suite names the runtime only through `crate::rt` (the controller aliases),
//! `crate::block_on` and `crate::sleep`, so the same files can be instantiated for
//! other runtimes by a sibling entry file.

use std::future::Future;
use std::time::Duration;

use smtpkit::smol as rt;

#[path = "suite/mod.rs"]
mod suite;

/// Runs `future` to completion on the calling thread (the caller's executor for
/// the unthreaded controllers; their tasks run on smol's global executor).
pub fn block_on<F: Future>(future: F) -> F::Output {
    ::smol::block_on(future)
}

/// Sleeps (async-io timer).
pub async fn sleep(duration: Duration) {
    ::smol::Timer::after(duration).await;
}
