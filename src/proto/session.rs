//! What the engine knows about a connection ([`Session`]) and a mail transaction
//! ([`Envelope`]), with aiosmtpd's field names.

use std::fmt;
use std::net::SocketAddr;

/// The connecting peer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A peer on a Unix domain socket (aiosmtpd reports `""`).
    Unix,
    /// No peer address is known (in-memory tests).
    Unknown,
}

impl Peer {
    /// The peer as Python's `repr()` of aiosmtpd's `session.peer`:
    /// `('127.0.0.1', 1234)`, `('::1', 1234, 0, 0)`, or `''` for Unix sockets.
    /// aiosmtpd's handlers print it in `X-Peer` headers.
    pub fn python_repr(&self) -> String {
        match self {
            Peer::Tcp(SocketAddr::V4(a)) => format!("('{}', {})", a.ip(), a.port()),
            Peer::Tcp(SocketAddr::V6(a)) => format!(
                "('{}', {}, {}, {})",
                a.ip(),
                a.port(),
                a.flowinfo(),
                a.scope_id()
            ),
            Peer::Unix | Peer::Unknown => "''".to_string(),
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(a) => write!(f, "{a}"),
            Peer::Unix => f.write_str("unix"),
            Peer::Unknown => f.write_str("unknown"),
        }
    }
}

/// What a handler may want to know about the TLS layer of a connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// The negotiated protocol version, e.g. `TLSv1_3`.
    pub protocol_version: String,
    /// The negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The server name the client asked for (SNI), if any.
    pub sni: Option<String>,
    /// The client's certificate chain (DER), when it sent one.
    pub peer_certificates: Vec<Vec<u8>>,
}

/// Data an authenticator attaches to the session (aiosmtpd's `auth_data`).
#[derive(Clone)]
pub struct AuthData(pub std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl AuthData {
    /// Wraps `value`.
    pub fn new<T: std::any::Any + Send + Sync>(value: T) -> Self {
        AuthData(std::sync::Arc::new(value))
    }

    /// The value, if it is a `T`.
    pub fn downcast_ref<T: std::any::Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for AuthData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthData(..)")
    }
}

/// One per connection, as aiosmtpd's `Session` (renewed after STARTTLS).
#[derive(Clone, Debug)]
pub struct Session {
    /// The connecting peer.
    pub peer: Peer,
    /// The HELO/EHLO argument, once a greeting was accepted.
    pub host_name: Option<String>,
    /// True after EHLO (ESMTP), false after HELO.
    pub extended_smtp: bool,
    /// True once the client authenticated.
    pub authenticated: bool,
    /// The mechanism the client authenticated with (`PLAIN`, `LOGIN`, ...).
    pub auth_mechanism: Option<String>,
    /// The login the client authenticated as (PLAIN/LOGIN; lossy UTF-8).
    pub auth_identity: Option<String>,
    /// Data the authenticator attached.
    pub auth_data: Option<AuthData>,
    /// The TLS layer, after STARTTLS or on an implicit-TLS listener.
    pub tls: Option<TlsInfo>,
    /// The PROXY protocol header the connection started with (kept across
    /// STARTTLS, unlike aiosmtpd #287). `peer` stays the proxy's address.
    pub proxy_data: Option<super::ProxyData>,
}

impl Session {
    /// A fresh session for `peer`.
    pub fn new(peer: Peer) -> Self {
        Session {
            peer,
            host_name: None,
            extended_smtp: false,
            authenticated: false,
            auth_mechanism: None,
            auth_identity: None,
            auth_data: None,
            tls: None,
            proxy_data: None,
        }
    }
}

/// One per mail transaction, as aiosmtpd's `Envelope`; reset by HELO, EHLO, RSET
/// and after each DATA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The MAIL FROM address (`"<>"` for the null reverse path, as aiosmtpd stores it).
    pub mail_from: Option<String>,
    /// MAIL parameters, uppercased (`SIZE=123`, `BODY=8BITMIME`, ...).
    pub mail_options: Vec<String>,
    /// True when MAIL carried `SMTPUTF8`.
    pub smtp_utf8: bool,
    /// The accepted RCPT TO addresses, in order.
    pub rcpt_tos: Vec<String>,
    /// RCPT parameters, uppercased.
    pub rcpt_options: Vec<String>,
    /// `BODY=` on MAIL, if given.
    pub body_type: Option<BodyType>,
    /// With REQUIRETLS on ([`Extensions::requiretls`](super::Extensions)): MAIL
    /// carried `REQUIRETLS` (RFC 8689), so the message must travel on over TLS
    /// only, or bounce.
    pub require_tls: bool,
    /// With DSN on: MAIL's `RET` and `ENVID` (RFC 3461).
    ///
    /// ```
    /// # use smtpkit::proto::{DsnReturn, Envelope};
    /// # let envelope = Envelope::default();
    /// if envelope.dsn.ret == Some(DsnReturn::Headers) { /* bounce with headers only */ }
    /// ```
    pub dsn: super::MailDsn,
    /// With DSN on: each accepted recipient's `NOTIFY` and `ORCPT`, in the
    /// order of `rcpt_tos` (one entry per recipient, empty when it had none).
    ///
    /// ```
    /// # use smtpkit::proto::Envelope;
    /// # let envelope = Envelope::default();
    /// for (rcpt, dsn) in envelope.rcpt_tos.iter().zip(&envelope.rcpt_dsn) {
    ///     let wants_success = dsn.notify.is_some_and(|n| n.success);
    ///     let original = dsn.orcpt.as_ref().map_or(rcpt.as_str(), |o| o.address.as_str());
    ///     # let _ = (wants_success, original);
    /// }
    /// ```
    pub rcpt_dsn: Vec<super::RcptDsn>,
    /// What a streaming handler keeps for this message (an open file, an
    /// upstream connection): set in `Handler::handle_data_start`, used by
    /// its chunks and at the end; dropped when the transaction ends or is
    /// abandoned, so a `Drop` of the stored value cleans up on every path.
    pub spool: Spool,
    /// The message body after dot-unstuffing, with its line endings as received
    /// (empty until DATA completes). The body arrives through
    /// `Handler::handle_data_chunk`, whose default appends here.
    pub content: Vec<u8>,
}

/// A value of any type kept for one message ([`Envelope::spool`]). It is not
/// part of the envelope's value: a clone is empty and any two compare equal.
///
/// ```
/// use smtpkit::proto::Spool;
/// let mut spool = Spool::default();
/// spool.set(vec![1u8, 2, 3]);
/// spool.get_mut::<Vec<u8>>().unwrap().push(4);
/// assert_eq!(spool.take::<Vec<u8>>(), Some(vec![1, 2, 3, 4]));
/// assert!(spool.is_empty());
/// ```
#[derive(Default)]
pub struct Spool(Option<Box<dyn std::any::Any + Send + Sync>>);

impl Spool {
    /// Keeps `value` (dropping what was kept before).
    pub fn set<T: std::any::Any + Send + Sync>(&mut self, value: T) {
        self.0 = Some(Box::new(value));
    }

    /// The kept value, if it is a `T`.
    pub fn get_mut<T: std::any::Any>(&mut self) -> Option<&mut T> {
        self.0.as_mut()?.downcast_mut()
    }

    /// Takes the kept value out, if it is a `T`.
    pub fn take<T: std::any::Any>(&mut self) -> Option<T> {
        match self.0.take()?.downcast::<T>() {
            Ok(value) => Some(*value),
            Err(other) => {
                self.0 = Some(other);
                None
            }
        }
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Drops what is kept.
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

impl Clone for Spool {
    /// Empty: what a handler keeps (a file, a connection) is not copied.
    fn clone(&self) -> Self {
        Spool(None)
    }
}

impl PartialEq for Spool {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Spool {}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Spool(..)"
        } else {
            "Spool(empty)"
        })
    }
}

/// MAIL's `BODY=` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyType {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME` (RFC 6152).
    EightBitMime,
    /// `BODY=BINARYMIME` (RFC 3030, with CHUNKING and BINARYMIME on): the body
    /// comes by BDAT only, and NUL, bare CR and bare LF arrive unchanged.
    BinaryMime,
}

impl Envelope {
    /// aiosmtpd's `original_content`: the received bytes after dot-unstuffing. In
    /// aiosmtpd it differs from `content` only when `decode_data` turns `content`
    /// into a `str`; here both are the same bytes.
    pub fn original_content(&self) -> &[u8] {
        &self.content
    }

    /// The content as text, with invalid UTF-8 replaced (for printing).
    pub fn content_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_repr() {
        assert_eq!(
            Peer::Tcp("127.0.0.1:1234".parse().unwrap()).python_repr(),
            "('127.0.0.1', 1234)"
        );
        assert_eq!(
            Peer::Tcp("[::1]:25".parse().unwrap()).python_repr(),
            "('::1', 25, 0, 0)"
        );
        assert_eq!(Peer::Unix.python_repr(), "''");
    }
}
