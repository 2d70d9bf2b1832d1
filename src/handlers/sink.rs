//! [`Sink`]: accepts everything and keeps nothing.

use crate::server::Handler;

/// Accepts every message and discards it (aiosmtpd's `Sink`): every hook has its
/// default behaviour.
///
/// ```no_run
/// use smtpkit::{handlers::Sink, tokio::Controller};
/// let mut controller = Controller::new(Sink).with_port(0);
/// controller.start().unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Sink;

impl Handler for Sink {}
