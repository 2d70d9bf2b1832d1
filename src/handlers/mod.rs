//! Built-in handlers, as aiosmtpd's `aiosmtpd.handlers`.

pub mod blocking;
mod debugging;
mod mailbox;
mod message;
#[cfg(feature = "proxy-handler")]
mod proxy;
mod sink;
#[cfg(feature = "proxy-handler")]
mod spool;

pub use debugging::Debugging;
pub use mailbox::Mailbox;
pub use message::prepare_message;
#[cfg(feature = "message-handler")]
pub use message::{AsyncMessage, Message, ReceivedMessage};
#[cfg(feature = "proxy-handler")]
pub use proxy::{Proxy, Refusal, RelayReport};
pub use sink::Sink;
#[cfg(feature = "proxy-handler")]
pub use spool::DEFAULT_SPOOL_THRESHOLD;

/// The mail-parser crate: [`Message`]'s callback receives a parsed
/// `mail_parser::Message`, [`AsyncMessage`]'s one in a [`ReceivedMessage`].
#[cfg(feature = "message-handler")]
pub use mail_parser;
