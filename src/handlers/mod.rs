//! Built-in handlers, as aiosmtpd's `aiosmtpd.handlers`.

mod debugging;
mod mailbox;
mod message;
mod sink;

pub use debugging::Debugging;
pub use mailbox::Mailbox;
pub use message::prepare_message;
pub use sink::Sink;
