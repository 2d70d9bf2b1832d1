//! Authentication: the async [`Authenticator`] trait, custom SASL mechanisms
//! ([`SaslMechanism`]), the [`Authenticated`] wrapper that adds both to any
//! handler, and [`FileAuthenticator`] (the CLI's `--auth-file`).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::handler::{Handler, HandlerError, HookResult};
use crate::proto::{AuthResult, Envelope, Reply, Session};

/// Decides `AUTH PLAIN` and `AUTH LOGIN` credentials (aiosmtpd's
/// `authenticator`, async). It can accept, refuse with a custom reply (e.g.
/// `454 4.7.0 Temporary authentication failure`) and attach data to the session
/// (`session.auth_data`).
///
/// ```
/// use smtpkit::proto::{AuthResult, Session};
/// use smtpkit::server::Authenticator;
///
/// struct OnlyAlice;
///
/// impl Authenticator for OnlyAlice {
///     async fn authenticate(&self, _: &mut Session, _mechanism: &str, login: &[u8], password: &[u8]) -> AuthResult {
///         if login == b"alice" && password == b"wonderland" {
///             AuthResult::Success(None)
///         } else {
///             AuthResult::Failure(None)
///         }
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// Checks `login`/`password` sent with `mechanism` (`PLAIN` or `LOGIN`).
    fn authenticate(
        &self,
        session: &mut Session,
        mechanism: &str,
        login: &[u8],
        password: &[u8],
    ) -> impl Future<Output = AuthResult> + Send;
}

/// A custom SASL mechanism: a challenge/response state machine run one step per
/// client response (RFC 4954). Names are matched case-insensitively.
pub trait SaslMechanism: Send + Sync + 'static {
    /// The mechanism's name, e.g. `X-TWO-ROUNDS`.
    fn name(&self) -> &str;

    /// One step: `step` 0 is the AUTH command (`response` = the initial response,
    /// if any), then one per client response; `state` is kept across the steps of
    /// one exchange. Return a challenge to continue, or success or failure.
    fn step(
        &self,
        session: &mut Session,
        step: u32,
        response: Option<&[u8]>,
        state: &mut Vec<u8>,
    ) -> AuthResult;
}

/// A handler with an [`Authenticator`] for PLAIN/LOGIN and any number of custom
/// [`SaslMechanism`]s; every other hook goes to the inner handler.
///
/// ```no_run
/// use smtpkit::handlers::Sink;
/// use smtpkit::server::{Authenticated, FileAuthenticator};
///
/// let users = FileAuthenticator::load("users.txt").unwrap();
/// let mut controller = smtpkit::tokio::Controller::new(Authenticated::new(Sink, users));
/// ```
pub struct Authenticated<H, A> {
    inner: H,
    authenticator: A,
    mechanisms: Vec<Box<dyn SaslMechanism>>,
}

impl<H: Handler, A: Authenticator> Authenticated<H, A> {
    /// `inner` with `authenticator` deciding PLAIN and LOGIN.
    pub fn new(inner: H, authenticator: A) -> Self {
        Authenticated {
            inner,
            authenticator,
            mechanisms: Vec::new(),
        }
    }

    /// Adds a custom mechanism (advertised in EHLO's AUTH line).
    pub fn with_mechanism(mut self, mechanism: impl SaslMechanism) -> Self {
        self.mechanisms.push(Box::new(mechanism));
        self
    }

    /// The inner handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

impl<H: Handler, A: Authenticator> Handler for Authenticated<H, A> {
    fn handle_helo(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        hostname: &str,
    ) -> impl Future<Output = HookResult> + Send {
        self.inner.handle_helo(session, envelope, hostname)
    }

    fn handle_ehlo(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        hostname: &str,
        extensions: &mut Vec<String>,
    ) -> impl Future<Output = HookResult> + Send {
        self.inner
            .handle_ehlo(session, envelope, hostname, extensions)
    }

    fn handle_mail(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        address: &str,
        options: &[String],
    ) -> impl Future<Output = HookResult> + Send {
        self.inner.handle_mail(session, envelope, address, options)
    }

    fn handle_rcpt(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        address: &str,
        options: &[String],
    ) -> impl Future<Output = HookResult> + Send {
        self.inner.handle_rcpt(session, envelope, address, options)
    }

    fn handle_data_chunk(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        chunk: &[u8],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        self.inner.handle_data_chunk(session, envelope, chunk)
    }

    fn handle_data(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> impl Future<Output = HookResult> + Send {
        self.inner.handle_data(session, envelope)
    }

    fn handle_lmtp_data(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> impl Future<Output = Result<Vec<crate::proto::Outcome>, HandlerError>> + Send {
        self.inner.handle_lmtp_data(session, envelope)
    }

    fn handle_proxy(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> impl Future<Output = HookResult> + Send {
        self.inner.handle_proxy(session, envelope)
    }

    fn handle_rset(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> impl Future<Output = HookResult> + Send {
        self.inner.handle_rset(session, envelope)
    }

    fn handle_noop(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        arg: Option<&str>,
    ) -> impl Future<Output = HookResult> + Send {
        self.inner.handle_noop(session, envelope, arg)
    }

    fn handle_quit(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> impl Future<Output = HookResult> + Send {
        self.inner.handle_quit(session, envelope)
    }

    fn handle_vrfy(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
        address: &str,
    ) -> impl Future<Output = HookResult> + Send {
        self.inner.handle_vrfy(session, envelope, address)
    }

    fn handle_exception(&self, error: &HandlerError) -> impl Future<Output = Option<Reply>> + Send {
        self.inner.handle_exception(error)
    }

    async fn handle_auth(
        &self,
        session: &mut Session,
        _envelope: &mut Envelope,
        mechanism: &str,
        login: &[u8],
        password: &[u8],
    ) -> Result<AuthResult, HandlerError> {
        Ok(self
            .authenticator
            .authenticate(session, mechanism, login, password)
            .await)
    }

    fn auth_mechanisms(&self) -> Vec<String> {
        let mut names = self.inner.auth_mechanisms();
        names.extend(
            self.mechanisms
                .iter()
                .map(|m| m.name().to_ascii_uppercase()),
        );
        names
    }

    async fn handle_auth_step(
        &self,
        session: &mut Session,
        mechanism: &str,
        step: u32,
        response: Option<&[u8]>,
        state: &mut Vec<u8>,
    ) -> Result<AuthResult, HandlerError> {
        match self
            .mechanisms
            .iter()
            .find(|m| m.name().eq_ignore_ascii_case(mechanism))
        {
            Some(m) => Ok(m.step(session, step, response, state)),
            None => {
                self.inner
                    .handle_auth_step(session, mechanism, step, response, state)
                    .await
            }
        }
    }
}

/// Why an auth file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFileError {
    /// The file could not be read.
    #[error("cannot read auth file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is not `user:password`.
    #[error("auth file {path} line {line}: expected user:password")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
    },
}

/// Users and passwords from a file, one `user:password` per line (blank lines and
/// lines starting with `#` ignored); the CLI's `--auth-file`.
#[derive(Clone)]
pub struct FileAuthenticator {
    users: Arc<HashMap<Vec<u8>, Vec<u8>>>,
}

impl std::fmt::Debug for FileAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileAuthenticator({} users)", self.users.len())
    }
}

impl FileAuthenticator {
    /// Reads `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, AuthFileError> {
        let path = path.as_ref();
        let text = std::fs::read(path).map_err(|source| AuthFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut users = HashMap::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(AuthFileError::Malformed {
                    path: path.to_owned(),
                    line: i + 1,
                });
            };
            if colon == 0 {
                return Err(AuthFileError::Malformed {
                    path: path.to_owned(),
                    line: i + 1,
                });
            }
            users.insert(line[..colon].to_vec(), line[colon + 1..].to_vec());
        }
        Ok(FileAuthenticator {
            users: Arc::new(users),
        })
    }

    /// From `(user, password)` pairs.
    pub fn from_pairs<I, U, P>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (U, P)>,
        U: Into<Vec<u8>>,
        P: Into<Vec<u8>>,
    {
        FileAuthenticator {
            users: Arc::new(
                pairs
                    .into_iter()
                    .map(|(u, p)| (u.into(), p.into()))
                    .collect(),
            ),
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator for FileAuthenticator {
    async fn authenticate(
        &self,
        _session: &mut Session,
        _mechanism: &str,
        login: &[u8],
        password: &[u8],
    ) -> AuthResult {
        match self.users.get(login) {
            Some(expected) if constant_time_eq(expected, password) => AuthResult::Success(None),
            _ => AuthResult::Failure(None),
        }
    }
}
