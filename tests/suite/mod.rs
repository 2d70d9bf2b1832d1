//! The integration suite, shared by every runtime's entry file (`tests/<rt>.rs`),
//! which provides `rt` (the controller aliases), `block_on` and `sleep`.

mod auth;
mod busy_poll;
mod concurrency;
mod dialogue;
mod example;
mod extensions;
mod handlers;
mod haproxy;
mod hostile;
mod lifecycle;
mod lmtp;
mod streaming;
mod tls;
mod unix;
mod unthreaded;
mod util;
