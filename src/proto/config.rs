//! The engine's configuration: protocol limits, the idle timeout and the
//! advertised features, with aiosmtpd's defaults. Only what the engine reads.

use std::collections::HashMap;
use std::time::Duration;

use super::Extensions;

/// aiosmtpd's `DATA_SIZE_DEFAULT`: 32 MiB.
pub const DATA_SIZE_DEFAULT: usize = 33_554_432;
/// aiosmtpd's `CALL_LIMIT_DEFAULT`.
pub const CALL_LIMIT_DEFAULT: u32 = 20;
/// aiosmtpd's `BOGUS_LIMIT`: the 5th unrecognised command closes the connection.
pub const BOGUS_LIMIT: u32 = 5;

/// How often each command may be sent on one connection (aiosmtpd's
/// `command_call_limit`). The call after the budget is spent gets
/// `421 4.7.0 {CMD} sent too many times` and the connection closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallLimits {
    /// Per command name (uppercase), e.g. `"NOOP" => 15`.
    pub per_command: HashMap<String, u32>,
    /// Budget of every command not in `per_command` (aiosmtpd: key `"*"`, else 20).
    pub default: u32,
}

impl CallLimits {
    /// The same budget for every command (aiosmtpd's `command_call_limit=int`).
    pub fn uniform(limit: u32) -> Self {
        CallLimits {
            per_command: HashMap::new(),
            default: limit,
        }
    }

    /// Budgets per command, with `"*"` as the default key (aiosmtpd's dict form).
    pub fn from_map<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = (S, u32)>,
        S: Into<String>,
    {
        let mut per_command = HashMap::new();
        let mut default = CALL_LIMIT_DEFAULT;
        for (name, limit) in entries {
            let name = name.into().to_ascii_uppercase();
            if name == "*" {
                default = limit;
            } else {
                per_command.insert(name, limit);
            }
        }
        CallLimits {
            per_command,
            default,
        }
    }

    pub(crate) fn limit_for(&self, command: &[u8]) -> u32 {
        std::str::from_utf8(command)
            .ok()
            .and_then(|c| self.per_command.get(c))
            .copied()
            .unwrap_or(self.default)
    }
}

/// What the engine reads: the configuration shared by every connection of a
/// server. Settings only the async server uses (hook timeout, connection
/// limits, TLS certificates, the authenticator) live in
/// `smtpkit::server::Settings`.
///
/// ```
/// use smtpkit::proto::Config;
/// let config = Config::new("mx.example.com").with_data_size_limit(Some(10 << 20));
/// assert_eq!(config.data_size_limit, Some(10 << 20));
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// Name in the greeting and in HELO/EHLO replies.
    pub hostname: String,
    /// Greeting suffix after the host name (aiosmtpd: `Python SMTP 1.4.6`).
    pub ident: String,
    /// Largest message in bytes, counted on the wire (`None`: no limit and no
    /// `SIZE` in EHLO). Default 33554432.
    pub data_size_limit: Option<usize>,
    /// Advertise SMTPUTF8, accept UTF-8 arguments and the `SMTPUTF8` MAIL parameter.
    /// Default false (the controllers turn it on, as aiosmtpd's do).
    pub enable_smtputf8: bool,
    /// Longest command line in octets, excluding CRLF. Default 512; MAIL gets +26
    /// when SIZE and +10 when SMTPUTF8 is advertised, per connection.
    pub command_size_limit: usize,
    /// Longest command or AUTH line in octets including CRLF: longer ones are
    /// discarded unbuffered (`500 Command line too long`). Default 1001. DATA
    /// lines have their own limit, [`Config::data_line_length_limit`].
    pub line_length_limit: usize,
    /// Longest DATA line in octets including CRLF: a message with a longer one
    /// gets `500 Line too long` at the end of DATA. `Some(1001)` by default
    /// (aiosmtpd's fixed limit); `None`: no limit (real mail breaks it;
    /// `--max-line-length 0`). Memory does not depend on it: the body streams.
    pub data_line_length_limit: Option<usize>,
    /// If set, addresses with a longer local part are malformed (`553`).
    pub local_part_limit: Option<usize>,
    /// Refuse a MAIL or RCPT address holding a control character (NUL, CR, LF,
    /// TAB, DEL...): `501 5.1.7` for the sender, `501 5.1.3` for a recipient.
    /// Default false: aiosmtpd accepts `RCPT TO:<a\0b@x>` with `250`; turn it
    /// on when addresses reach C code or a file system.
    pub refuse_control_characters: bool,
    /// Idle time after which the client gets `421` and the connection closes.
    /// Default 300 s.
    pub timeout: Duration,
    /// Per-command call limits (aiosmtpd's `command_call_limit`); `None` = no limit.
    pub command_call_limit: Option<CallLimits>,
    /// Unrecognised commands allowed before the connection is closed with `502`.
    pub bogus_limit: u32,
    /// Offer STARTTLS (the driver must be able to upgrade the stream).
    pub starttls: bool,
    /// Refuse everything but NOOP, EHLO, STARTTLS and QUIT before TLS with
    /// `530 Must issue a STARTTLS command first` (only with `starttls`).
    pub require_starttls: bool,
    /// AUTH mechanisms offered, uppercase, advertised sorted. `PLAIN` and `LOGIN`
    /// are built in; any other name is run step by step through the handler.
    /// Default: `LOGIN` and `PLAIN`, as aiosmtpd.
    pub auth_mechanisms: Vec<String>,
    /// Offer AUTH only over TLS (STARTTLS or implicit TLS). Default true.
    pub auth_require_tls: bool,
    /// Answer `530 5.7.0 Authentication required` to MAIL, RCPT, DATA, VRFY and
    /// HELP until the client authenticated. Default false.
    pub auth_required: bool,
    /// Speak LMTP (RFC 2033) instead of SMTP: LHLO instead of HELO/EHLO, and one
    /// reply per accepted recipient after the message.
    pub lmtp: bool,
    /// The opt-in ESMTP extensions ([`Extensions`]); default none, which is
    /// aiosmtpd's dialogue.
    pub extensions: Extensions,
    /// Most recipients per transaction: RCPT past it gets `452 4.5.3 Error:
    /// too many recipients` and LIMITS advertises it as `RCPTMAX`. Default
    /// `None`: no limit (aiosmtpd has none).
    pub recipient_limit: Option<usize>,
    /// Most messages per connection: once this many were answered, the next
    /// MAIL gets `421 4.7.0 <host> Too many messages on one connection` and
    /// the connection closes (the client reconnects). Default `None`.
    pub max_messages_per_connection: Option<u32>,
    /// Most failed AUTH attempts per connection: the one that reaches it gets
    /// its `535`, then `421 4.7.0 <host> Too many failed authentication
    /// attempts` and the connection closes. Default `None` (aiosmtpd has no
    /// limit).
    pub max_auth_failures: Option<u32>,
    /// Expect a PROXY protocol header (v1 or v2) within this time before the
    /// greeting (aiosmtpd's `proxy_protocol_timeout`); `None`: no PROXY protocol.
    pub proxy_protocol_timeout: Option<Duration>,
}

impl Config {
    /// aiosmtpd's defaults with `hostname` as the server name.
    pub fn new(hostname: impl Into<String>) -> Self {
        Config {
            hostname: hostname.into(),
            ident: format!("smtpkit {}", env!("CARGO_PKG_VERSION")),
            data_size_limit: Some(DATA_SIZE_DEFAULT),
            enable_smtputf8: false,
            command_size_limit: 512,
            line_length_limit: 1001,
            data_line_length_limit: Some(1001),
            local_part_limit: None,
            refuse_control_characters: false,
            timeout: Duration::from_secs(300),
            command_call_limit: None,
            bogus_limit: BOGUS_LIMIT,
            starttls: false,
            require_starttls: false,
            auth_mechanisms: vec!["LOGIN".to_owned(), "PLAIN".to_owned()],
            auth_require_tls: true,
            auth_required: false,
            lmtp: false,
            extensions: Extensions::NONE,
            recipient_limit: None,
            max_messages_per_connection: None,
            max_auth_failures: None,
            proxy_protocol_timeout: None,
        }
    }

    /// Sets [`Config::data_size_limit`].
    pub fn with_data_size_limit(mut self, limit: Option<usize>) -> Self {
        self.data_size_limit = limit.filter(|&l| l > 0);
        self
    }

    /// Sets [`Config::enable_smtputf8`].
    pub fn with_smtputf8(mut self, enable: bool) -> Self {
        self.enable_smtputf8 = enable;
        self
    }

    /// Sets [`Config::timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`Config::extensions`].
    ///
    /// ```
    /// use smtpkit::proto::{Config, Extensions};
    /// let config = Config::new("mx.example").with_extensions(Extensions::all());
    /// assert!(config.extensions.chunking);
    /// ```
    pub fn with_extensions(mut self, extensions: Extensions) -> Self {
        self.extensions = extensions;
        self
    }

    /// Sets [`Config::recipient_limit`] (`Some(0)` is taken as no limit).
    pub fn with_recipient_limit(mut self, limit: Option<usize>) -> Self {
        self.recipient_limit = limit.filter(|&l| l > 0);
        self
    }

    /// The MAIL budget per connection, if [`Config::command_call_limit`] sets one.
    pub(crate) fn mail_limit(&self) -> Option<u32> {
        self.command_call_limit
            .as_ref()
            .map(|limits| limits.limit_for(b"MAIL"))
    }

    /// Sets [`Config::data_line_length_limit`] (`Some(0)` is taken as no limit).
    ///
    /// ```
    /// use smtpkit::proto::Config;
    /// let config = Config::new("mx.example").with_data_line_length_limit(None);
    /// assert_eq!(config.data_line_length_limit, None);
    /// ```
    pub fn with_data_line_length_limit(mut self, limit: Option<usize>) -> Self {
        self.data_line_length_limit = limit.filter(|&l| l > 0);
        self
    }

    /// Sets [`Config::command_call_limit`].
    pub fn with_call_limits(mut self, limits: Option<CallLimits>) -> Self {
        self.command_call_limit = limits;
        self
    }

    /// The MAIL command-line limit in an ESMTP session (512 + 26 + 10 by default).
    pub(crate) fn mail_command_limit(&self) -> usize {
        let mut limit = self.command_size_limit;
        if self.data_size_limit.is_some() {
            limit += 26;
        }
        if self.enable_smtputf8 {
            limit += 10;
        }
        limit
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new("localhost")
    }
}
