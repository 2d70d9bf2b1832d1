//! The integration suite, shared by every runtime's entry file (`tests/<rt>.rs`),
//! which provides `rt` (the controller aliases), `block_on` and `sleep`.

mod concurrency;
mod dialogue;
mod example;
mod handlers;
mod lifecycle;
mod unix;
mod unthreaded;
mod util;
