//! TLS for the server: loading PEM files into a rustls `ServerConfig`, the TLS
//! settings of a server, and the handshake (through futures-rustls, so it works
//! on every runtime).

use std::future::poll_fn;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use futures_lite::FutureExt as _;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::runtime::{AsyncTimer, BoxStream, Stream};
use super::shutdown::Wait;
use crate::proto::TlsInfo;

/// Why a certificate or key file could not be used. The message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file holds no PEM certificate.
    #[error("no PEM certificate in {0}")]
    NoCertificate(PathBuf),
    /// The file holds no PEM private key.
    #[error("no PEM private key in {0}")]
    NoKey(PathBuf),
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("cannot use {cert} with {key}: {source}")]
    Rustls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' error.
        source: rustls::Error,
    },
}

/// A rustls server configuration from a PEM certificate chain and a PEM private
/// key (PKCS#8, PKCS#1 or SEC1), with no client authentication.
pub fn server_config_from_pem(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey(key.to_owned()))?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key_der))
            .map_err(|source| TlsError::Rustls {
                cert: cert.to_owned(),
                key: key.to_owned(),
                source,
            })?;
    Ok(Arc::new(config))
}

/// How a server uses TLS.
#[derive(Clone, Default)]
pub struct TlsSettings {
    /// Offer STARTTLS with this configuration.
    pub starttls: Option<Arc<ServerConfig>>,
    /// Speak TLS from the first byte (implicit TLS, "SMTPS") with this configuration.
    pub implicit: Option<Arc<ServerConfig>>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("starttls", &self.starttls.is_some())
            .field("implicit", &self.implicit.is_some())
            .finish()
    }
}

/// Runs the server side of a TLS handshake on `stream`, bounded by `deadline` and
/// the shutdown signal. On success returns the encrypted stream and its facts.
pub(crate) async fn accept(
    config: Arc<ServerConfig>,
    stream: BoxStream,
    timer: &mut Pin<Box<dyn AsyncTimer>>,
    deadline: Instant,
    shutdown: &mut Wait,
) -> io::Result<(BoxStream, TlsInfo)> {
    timer.as_mut().reset(deadline);
    let mut handshake = futures_rustls::TlsAcceptor::from(config).accept(stream);
    let tls = poll_fn(|cx| {
        if shutdown.poll_fired(cx).is_ready() {
            return Poll::Ready(Err(io::Error::other("server shutting down")));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )));
        }
        handshake.poll(cx)
    })
    .await?;
    let (_, conn) = tls.get_ref();
    let info = TlsInfo {
        protocol_version: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        sni: conn.server_name().map(str::to_owned),
        peer_certificates: conn
            .peer_certificates()
            .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
            .unwrap_or_default(),
    };
    Ok((Box::new(tls), info))
}

/// A TLS stream is read through rustls, never directly: no busy polling.
impl Stream for futures_rustls::server::TlsStream<BoxStream> {}
