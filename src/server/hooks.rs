//! The hook table: which [`Handler`] method (or, for AUTH, which authenticator
//! or SASL mechanism) answers each engine [`Ask`], and how errors and panics
//! become decisions. The one place the server names every hook: a new hook is
//! its `Ask` variant in the engine, its `Handler` method and its line here.

use std::panic::AssertUnwindSafe;

use futures_lite::FutureExt;

use super::handler::{Handler, HandlerError};
use super::settings::Shared;
use crate::proto::{
    Ask, AuthResult, BodyChunk, Decision, HookCall, MessageAbort, MessageStart, Outcome, Reply,
};

/// What one connection keeps between hook calls.
#[derive(Default)]
pub(crate) struct HookState {
    /// The first error of the message's `handle_data_chunk` calls; DATA answers
    /// with it instead of calling `handle_data`.
    chunk_error: Option<HandlerError>,
    /// A custom SASL mechanism's scratch space, kept across one exchange.
    auth_state: Vec<u8>,
}

/// A message begins: `handle_data_start` (its failure refuses the message).
pub(crate) async fn data_start<H: Handler>(
    handler: &H,
    state: &mut HookState,
    start: MessageStart<'_>,
) {
    state.chunk_error = None;
    let started = handler.handle_data_start(start.session, start.envelope);
    match AssertUnwindSafe(started).catch_unwind().await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => state.chunk_error = Some(e),
        Err(panic) => state.chunk_error = Some(HandlerError::from_panic(panic)),
    }
}

/// A message was abandoned: `handle_data_abort` (a panic there is logged).
pub(crate) async fn data_abort<H: Handler>(
    handler: &H,
    state: &mut HookState,
    abort: MessageAbort<'_>,
) {
    state.chunk_error = None;
    let aborted = handler.handle_data_abort(abort.session, abort.spool);
    if AssertUnwindSafe(aborted).catch_unwind().await.is_err() {
        tracing::warn!("handle_data_abort panicked");
    }
}

/// Hands a body chunk to `handle_data_chunk` (after the message's first
/// failure, the rest of the message is skipped).
pub(crate) async fn data_chunk<H: Handler>(
    handler: &H,
    state: &mut HookState,
    body: BodyChunk<'_>,
) {
    if state.chunk_error.is_some() {
        return;
    }
    let chunk = handler.handle_data_chunk(body.session, body.envelope, body.chunk);
    match AssertUnwindSafe(chunk).catch_unwind().await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => state.chunk_error = Some(e),
        Err(panic) => state.chunk_error = Some(HandlerError::from_panic(panic)),
    }
}

/// Answers `call` with the hook it names, turning errors and panics into
/// decisions (through `handle_exception`).
pub(crate) async fn decide<H: Handler>(
    shared: &Shared<H>,
    state: &mut HookState,
    call: HookCall<'_>,
) -> Decision {
    let is_auth = matches!(call.ask, Ask::Auth { .. } | Ask::AuthStep { .. });
    if matches!(call.ask, Ask::Mail { .. }) {
        // A new transaction: a chunk failure of one abandoned (RSET after a
        // BDAT chunk) is not this one's.
        state.chunk_error = None;
    }
    let handler = &*shared.handler;
    let error = match AssertUnwindSafe(dispatch(shared, state, call))
        .catch_unwind()
        .await
    {
        Ok(Ok(decision)) => return decision,
        // A refusal, not an exception: its reply as is.
        Ok(Err(e)) if e.reply().is_some() => {
            let reply = e.reply().cloned().unwrap_or_else(Reply::ok);
            return Decision::Outcome(Outcome::Reply(reply));
        }
        Ok(Err(e)) => e,
        Err(panic) => HandlerError::from_panic(panic),
    };
    if is_auth {
        // Never log what an authenticator said: it may echo credentials.
        tracing::warn!("authenticator failed");
    } else {
        tracing::warn!(error = %error, "handler hook failed");
    }
    match AssertUnwindSafe(handler.handle_exception(&error))
        .catch_unwind()
        .await
    {
        Ok(Some(reply)) => Decision::Outcome(Outcome::Reply(reply)),
        Ok(None) => Decision::Failed(error.to_failure()),
        Err(panic) => Decision::Failed(HandlerError::from_panic(panic).to_failure()),
    }
}

/// The table itself: one arm per [`Ask`].
async fn dispatch<H: Handler>(
    shared: &Shared<H>,
    state: &mut HookState,
    call: HookCall<'_>,
) -> Result<Decision, HandlerError> {
    let handler = &*shared.handler;
    let HookCall {
        ask,
        session,
        envelope,
        ..
    } = call;
    let outcome = match ask {
        Ask::Helo { hostname } => handler.handle_helo(session, envelope, hostname).await,
        Ask::Ehlo {
            hostname,
            extensions,
        } => {
            handler
                .handle_ehlo(session, envelope, hostname, extensions)
                .await
        }
        Ask::Mail { address, options } => {
            handler
                .handle_mail(session, envelope, address, options)
                .await
        }
        Ask::Rcpt { address, options } => {
            handler
                .handle_rcpt(session, envelope, address, options)
                .await
        }
        Ask::Data => match state.chunk_error.take() {
            Some(e) => Err(e),
            None => handler.handle_data(session, envelope).await,
        },
        Ask::LmtpData => {
            return match state.chunk_error.take() {
                Some(e) => Err(e),
                None => handler
                    .handle_lmtp_data(session, envelope)
                    .await
                    .map(Decision::Recipients),
            };
        }
        Ask::Proxy => handler.handle_proxy(session, envelope).await,
        Ask::Rset => handler.handle_rset(session, envelope).await,
        Ask::Noop { arg } => handler.handle_noop(session, envelope, arg.as_deref()).await,
        Ask::Quit => handler.handle_quit(session, envelope).await,
        Ask::Vrfy { address } => handler.handle_vrfy(session, envelope, address).await,
        Ask::Auth {
            mechanism,
            login,
            password,
        } => {
            let decided = match shared
                .auth
                .authenticate(session, mechanism, login, password)
                .await
            {
                Some(result) => result,
                None => {
                    handler
                        .handle_auth(session, envelope, mechanism, login, password)
                        .await?
                }
            };
            return Ok(Decision::Auth(decided));
        }
        Ask::AuthStep {
            mechanism,
            step,
            response,
        } => {
            if *step == 0 {
                state.auth_state.clear();
            }
            let response = response.as_deref();
            let decided: AuthResult = match shared.auth.mechanism(mechanism) {
                Some(m) => m.step(session, *step, response, &mut state.auth_state),
                None => {
                    handler
                        .handle_auth_step(
                            session,
                            mechanism,
                            *step,
                            response,
                            &mut state.auth_state,
                        )
                        .await?
                }
            };
            return Ok(Decision::Auth(decided));
        }
    };
    outcome.map(Decision::Outcome)
}
