//! [`Sink`]: accepts everything and keeps nothing.

use std::future::Future;

use crate::proto::{Envelope, Session};
use crate::server::{Handler, HandlerError};

/// Accepts every message and discards it (aiosmtpd's `Sink`): every hook has its
/// default behaviour, except that body chunks are dropped as they arrive instead
/// of being collected in `envelope.content`, so a sink holds no message in
/// memory whatever its size (aiosmtpd's collects the whole body first).
///
/// ```no_run
/// use smtpkit::{handlers::Sink, tokio::Controller};
/// let mut controller = Controller::new(Sink).with_port(0);
/// controller.start().unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Sink;

impl Handler for Sink {
    /// Drops the chunk: nothing reads a sink's `envelope.content`.
    fn handle_data_chunk(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        chunk: &[u8],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let _ = (session, envelope, chunk);
        async { Ok(()) }
    }
}
