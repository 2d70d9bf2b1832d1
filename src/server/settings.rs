//! What a server runs with besides its handler: the engine's [`Config`], the
//! server's own [`Limits`], TLS and authentication ([`Settings`]), and the
//! read-only bundle every connection of a running server shares.

use std::sync::Arc;
use std::time::Duration;

use super::auth::{Authentication, Authenticator, SaslMechanism};
use super::handler::Handler;
use super::tls::TlsSettings;
use crate::proto::Config;

/// Limits the server enforces around the engine. Every one is off by default,
/// as in aiosmtpd.
///
/// ```
/// use std::time::Duration;
/// use smtpkit::server::Limits;
///
/// let limits = Limits {
///     hook_timeout: Some(Duration::from_secs(30)),
///     max_connections: Some(1000),
///     ..Limits::default()
/// };
/// assert_eq!(limits.max_connections_per_ip, None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// How long a handler hook may take before the client gets `421` and the
    /// connection closes; `None`: no limit.
    pub hook_timeout: Option<Duration>,
    /// Most connections served at once; further ones get `421` and are closed.
    /// `None`: no limit.
    pub max_connections: Option<usize>,
    /// Most connections served at once from one client address; `None`: no limit.
    pub max_connections_per_ip: Option<usize>,
}

/// Everything a server is configured with besides the handler. A [`Config`]
/// converts into it (the other parts at their defaults), so the runtime
/// modules' `serve` functions take either.
///
/// ```
/// use smtpkit::Config;
/// use smtpkit::server::{FileAuthenticator, Limits, Settings};
///
/// let settings = Settings::new(Config::new("mx.example.com"))
///     .with_limits(Limits { max_connections: Some(100), ..Limits::default() })
///     .with_authenticator(FileAuthenticator::from_pairs([("alice", "wonderland")]));
/// assert_eq!(settings.limits.max_connections, Some(100));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// What the engine reads (limits, timeout, advertised features).
    pub config: Config,
    /// What the server enforces around the engine.
    pub limits: Limits,
    /// STARTTLS and implicit TLS.
    pub tls: TlsSettings,
    /// The authenticator and custom SASL mechanisms, beside the handler.
    pub auth: Authentication,
}

impl From<Config> for Settings {
    fn from(config: Config) -> Self {
        Settings::new(config)
    }
}

impl Settings {
    /// `config` with no limits, no TLS and no authenticator.
    pub fn new(config: Config) -> Self {
        Settings {
            config,
            limits: Limits::default(),
            tls: TlsSettings::default(),
            auth: Authentication::default(),
        }
    }

    /// Sets [`Settings::limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`Settings::tls`].
    pub fn with_tls(mut self, tls: TlsSettings) -> Self {
        self.tls = tls;
        self
    }

    /// Decides `AUTH PLAIN` and `AUTH LOGIN` with `authenticator` instead of the
    /// handler's `handle_auth`.
    pub fn with_authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.auth.set_authenticator(authenticator);
        self
    }

    /// Offers a custom SASL mechanism (advertised in EHLO's AUTH line).
    pub fn with_mechanism(mut self, mechanism: impl SaslMechanism) -> Self {
        self.auth.add_mechanism(mechanism);
        self
    }

    /// The engine configuration a server runs with: STARTTLS offered exactly
    /// when a STARTTLS certificate is configured, and the extra SASL mechanisms
    /// (the handler's and [`Settings::auth`]'s) added to the AUTH list.
    fn engine_config<H: Handler>(&self, handler: &H) -> Config {
        let mut config = self.config.clone();
        config.starttls = self.tls.starttls.is_some();
        if !config.starttls {
            config.require_starttls = false;
        }
        let handlers = handler.auth_mechanisms().into_iter();
        let names = handlers.map(|n| n.to_ascii_uppercase());
        // `mechanism_names` gives them uppercase already.
        for name in names.chain(self.auth.mechanism_names()) {
            if !config.auth_mechanisms.contains(&name) {
                config.auth_mechanisms.push(name);
            }
        }
        config
    }

    /// What the connections of a server starting now share.
    pub(crate) fn share<H: Handler>(&self, handler: Arc<H>) -> Arc<Shared<H>> {
        Arc::new(Shared {
            config: Arc::new(self.engine_config(&*handler)),
            handler,
            limits: self.limits.clone(),
            tls: self.tls.clone(),
            auth: self.auth.clone(),
        })
    }
}

/// What every connection of one running server reads: the handler beside the
/// authenticator, and the settings in force.
pub(crate) struct Shared<H> {
    pub(crate) handler: Arc<H>,
    /// The effective engine configuration (see `Settings::engine_config`).
    pub(crate) config: Arc<Config>,
    pub(crate) limits: Limits,
    pub(crate) tls: TlsSettings,
    pub(crate) auth: Authentication,
}
