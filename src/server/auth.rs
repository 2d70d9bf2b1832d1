//! Authentication beside the handler: the async [`Authenticator`] trait, custom
//! SASL mechanisms ([`SaslMechanism`]), the [`Authentication`] a server holds
//! them in, and [`FileAuthenticator`] (the CLI's `--auth-file`).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use crate::proto::{AuthResult, Session};

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

/// The object-safe form of [`Authenticator`], so settings can hold any one.
trait DynAuthenticator: Send + Sync + 'static {
    fn authenticate_boxed<'a>(
        &'a self,
        session: &'a mut Session,
        mechanism: &'a str,
        login: &'a [u8],
        password: &'a [u8],
    ) -> Pin<Box<dyn Future<Output = AuthResult> + Send + 'a>>;
}

impl<A: Authenticator> DynAuthenticator for A {
    fn authenticate_boxed<'a>(
        &'a self,
        session: &'a mut Session,
        mechanism: &'a str,
        login: &'a [u8],
        password: &'a [u8],
    ) -> Pin<Box<dyn Future<Output = AuthResult> + Send + 'a>> {
        Box::pin(self.authenticate(session, mechanism, login, password))
    }
}

/// How a server authenticates, beside its handler: an optional
/// [`Authenticator`] for PLAIN and LOGIN (without one, the handler's
/// `handle_auth` decides) and custom [`SaslMechanism`]s (tried before the
/// handler's `handle_auth_step`). Set through [`super::Settings`] or a
/// controller's `with_authenticator` / `with_mechanism`.
///
/// ```no_run
/// use smtpkit::handlers::Sink;
/// use smtpkit::server::FileAuthenticator;
///
/// let users = FileAuthenticator::load("users.txt").unwrap();
/// let mut controller = smtpkit::tokio::Controller::new(Sink).with_authenticator(users);
/// ```
#[derive(Clone, Default)]
pub struct Authentication {
    authenticator: Option<Arc<dyn DynAuthenticator>>,
    mechanisms: Vec<Arc<dyn SaslMechanism>>,
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authentication")
            .field("authenticator", &self.authenticator.is_some())
            .field("mechanisms", &self.mechanism_names().collect::<Vec<_>>())
            .finish()
    }
}

impl Authentication {
    /// PLAIN and LOGIN go to `authenticator` instead of the handler.
    pub fn set_authenticator(&mut self, authenticator: impl Authenticator) {
        self.authenticator = Some(Arc::new(authenticator));
    }

    /// Adds a custom mechanism.
    pub fn add_mechanism(&mut self, mechanism: impl SaslMechanism) {
        self.mechanisms.push(Arc::new(mechanism));
    }

    /// The custom mechanisms' names, uppercase.
    pub(crate) fn mechanism_names(&self) -> impl Iterator<Item = String> + '_ {
        self.mechanisms
            .iter()
            .map(|m| m.name().to_ascii_uppercase())
    }

    /// Checks PLAIN/LOGIN credentials with the authenticator; `None` when there
    /// is none (the handler decides).
    pub(crate) async fn authenticate(
        &self,
        session: &mut Session,
        mechanism: &str,
        login: &[u8],
        password: &[u8],
    ) -> Option<AuthResult> {
        let authenticator = self.authenticator.as_ref()?;
        Some(
            authenticator
                .authenticate_boxed(session, mechanism, login, password)
                .await,
        )
    }

    /// The custom mechanism called `name` (case-insensitive), if any.
    pub(crate) fn mechanism(&self, name: &str) -> Option<&dyn SaslMechanism> {
        self.mechanisms
            .iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
            .map(|m| &**m)
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
