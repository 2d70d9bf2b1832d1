//! Every reply text the engine sends, in one catalogue: aiosmtpd 1.4.6's wording,
//! and smtpkit's own where it goes further (`421` on an idle timeout, a refused
//! connection, a handler that timed out; `554` to a second STARTTLS).
//!
//! Fixed replies are [`Canned`] constants; replies that carry a value (the host
//! name, the command the client sent) are [`Template`]s with one slot. The engine
//! writes them without allocating; tests and handlers can compare against the same
//! names:
//!
//! ```
//! use smtpkit::proto::replies;
//! assert_eq!(replies::OK.line, "250 OK");
//! assert_eq!(replies::OK.code, 250);
//! assert_eq!(
//!     replies::TIMEOUT.line("mx.example"),
//!     "421 4.4.2 mx.example Error: timeout exceeded"
//! );
//! ```
//!
//! The HELP lists and syntax texts are the command table's, in `command.rs`; the
//! texts of Python exceptions that aiosmtpd echoes for unparsable addresses live
//! with the address parser.

use std::fmt;

use super::reply::{encode_lines, push_line};
use super::{FailureClass, Reply};

/// A fixed reply: its code, its text and the whole line (without CRLF).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Canned {
    /// The three-digit code.
    pub code: u16,
    /// The text after the code.
    pub text: &'static str,
    /// `code SP text`, as sent (without the CRLF).
    pub line: &'static str,
}

impl Canned {
    /// The reply as a [`Reply`], e.g. for a handler that answers with the
    /// engine's own wording.
    pub fn reply(self) -> Reply {
        Reply::new(self.code, self.text)
    }

    /// Appends the wire form (`line` CRLF).
    pub(crate) fn push(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

impl fmt::Display for Canned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.line)
    }
}

/// A reply with one slot: `code SP before VALUE after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Template {
    /// The three-digit code.
    pub code: u16,
    /// The text before the value.
    pub before: &'static str,
    /// The text after the value.
    pub after: &'static str,
}

impl Template {
    /// The line sent for `value` (without the CRLF).
    pub fn line(self, value: &str) -> String {
        format!("{} {}{value}{}", self.code, self.before, self.after)
    }

    /// Appends the wire form for `value` (which may be client bytes, echoed as
    /// aiosmtpd echoes them).
    pub(crate) fn push(self, value: &[u8], out: &mut Vec<u8>) {
        push_line(
            self.code,
            b' ',
            &[self.before.as_bytes(), value, self.after.as_bytes()],
            out,
        );
    }
}

/// Defines [`Canned`] constants with their whole line spelled once.
macro_rules! canned {
    ($($(#[$doc:meta])* $name:ident = $code:literal $text:literal;)*) => {
        $(
            $(#[$doc])*
            pub const $name: Canned = Canned {
                code: $code,
                text: $text,
                line: concat!($code, " ", $text),
            };
        )*
    };
}

/// Defines [`Template`] constants.
macro_rules! template {
    ($($(#[$doc:meta])* $name:ident = $code:literal $before:literal _ $after:literal;)*) => {
        $(
            $(#[$doc])*
            pub const $name: Template = Template {
                code: $code,
                before: $before,
                after: $after,
            };
        )*
    };
}

// ---------------------------------------------------------------------------
// Positive replies
// ---------------------------------------------------------------------------

canned! {
    /// MAIL, RCPT, DATA's end, RSET, NOOP (and every default acceptance).
    OK = 250 "OK";
    /// QUIT.
    BYE = 221 "Bye";
    /// VRFY of an address the handler did not answer for.
    CANNOT_VRFY = 252 "Cannot VRFY user, but will accept message and attempt delivery";
    /// DATA: the body may follow.
    START_DATA = 354 "End data with <CR><LF>.<CR><LF>";
    /// STARTTLS accepted: the handshake follows.
    READY_FOR_TLS = 220 "Ready to start TLS";
}

// ---------------------------------------------------------------------------
// Command lines
// ---------------------------------------------------------------------------

canned! {
    /// An empty line, or a command word that is not ASCII.
    BAD_SYNTAX = 500 "Error: bad syntax";
    /// A non-ASCII argument without SMTPUTF8.
    STRICT_ASCII = 500 "Error: strict ASCII mode";
    /// A command line over the length limit.
    COMMAND_TOO_LONG = 500 "Command line too long";
    /// The fifth unrecognised command (the connection closes).
    TOO_MANY_UNRECOGNIZED = 502 "5.5.1 Too many unrecognized commands, goodbye.";
    /// EXPN is never implemented.
    EXPN_NOT_IMPLEMENTED = 502 "EXPN not implemented";
}

template! {
    /// An unknown command (and HELO/EHLO in LMTP); the value is the command word.
    NOT_RECOGNIZED = 500 "Error: command \"" _ "\" not recognized";
    /// A command over its call limit (the connection closes); the value is the
    /// command word.
    SENT_TOO_MANY_TIMES = 421 "4.7.0 " _ " sent too many times";
    /// VRFY of something that is not an address; the value is the argument.
    COULD_NOT_VRFY = 502 "Could not VRFY " _ "";
}

// ---------------------------------------------------------------------------
// The transaction
// ---------------------------------------------------------------------------

canned! {
    /// MAIL, RCPT or DATA before HELO/EHLO.
    SEND_HELO_FIRST = 503 "Error: send HELO first";
    /// MAIL inside a transaction.
    NESTED_MAIL = 503 "Error: nested MAIL command";
    /// RCPT before MAIL.
    NEED_MAIL = 503 "Error: need MAIL command";
    /// DATA before RCPT.
    NEED_RCPT = 503 "Error: need RCPT command";
    /// An address that does not parse (or whose local part is too long).
    MALFORMED_ADDRESS = 553 "5.1.3 Error: malformed address";
    /// A MAIL address with a control character, with `refuse_control_characters`.
    CONTROL_IN_SENDER = 501 "5.1.7 Bad sender address syntax: control character";
    /// A RCPT address with a control character, with `refuse_control_characters`.
    CONTROL_IN_RECIPIENT = 501 "5.1.3 Bad recipient address syntax: control character";
    /// `BODY=` other than 7BIT or 8BITMIME.
    BAD_BODY = 501 "Error: BODY can only be one of 7BIT, 8BITMIME";
    /// `SMTPUTF8=value`.
    SMTPUTF8_ARGUMENT = 501 "Error: SMTPUTF8 takes no arguments";
    /// `SMTPUTF8` while it is not offered.
    SMTPUTF8_DISABLED = 501 "Error: SMTPUTF8 disabled";
    /// `SIZE=` over the limit.
    SIZE_EXCEEDED = 552 "Error: message size exceeds fixed maximum message size";
    /// An unknown MAIL parameter.
    MAIL_PARAMS_UNKNOWN = 555 "MAIL FROM parameters not recognized or not implemented";
    /// An unknown RCPT parameter.
    RCPT_PARAMS_UNKNOWN = 555 "RCPT TO parameters not recognized or not implemented";
    /// A body line over the line-length limit (answered at the end of DATA).
    LINE_TOO_LONG = 500 "Line too long (see RFC5321 4.5.3.1.6)";
    /// A body over the size limit (answered at the end of DATA).
    TOO_MUCH_DATA = 552 "Error: Too much mail data";
}

// ---------------------------------------------------------------------------
// The opt-in extensions (never sent with none on)
// ---------------------------------------------------------------------------

canned! {
    /// BDAT whose size is not a number (the connection closes: the chunk's
    /// end cannot be found, and its bytes must not be read as commands).
    BDAT_SYNTAX = 501 "5.5.4 Syntax: BDAT count [LAST]";
    /// DATA in a transaction that has sent BDAT chunks.
    DATA_AFTER_BDAT = 503 "5.5.1 Error: DATA after BDAT";
    /// DATA in a `BODY=BINARYMIME` transaction (RFC 3030 §3: BDAT only).
    BINARYMIME_NEEDS_BDAT = 503 "5.5.1 Error: BODY=BINARYMIME requires BDAT";
    /// `BODY=` other than 7BIT, 8BITMIME or BINARYMIME, with BINARYMIME on.
    BAD_BODY_BINARY = 501 "5.5.4 Error: BODY can only be one of 7BIT, 8BITMIME, BINARYMIME";
    /// `REQUIRETLS` on MAIL outside TLS (RFC 8689).
    REQUIRETLS_NEEDS_TLS = 530 "5.7.10 REQUIRETLS requires a TLS connection";
    /// RCPT past [`Config::recipient_limit`](super::Config::recipient_limit).
    TOO_MANY_RECIPIENTS = 452 "4.5.3 Error: too many recipients";
}

template! {
    /// A BDAT chunk that is not the last; the value is its size.
    CHUNK_RECEIVED = 250 "2.0.0 OK: " _ " octets received";
    /// A DSN parameter given twice; the value is its name.
    DSN_DUPLICATE = 501 "5.5.4 Error: duplicate " _ " parameter";
    /// A DSN parameter RFC 3461 does not allow; the value is its name.
    DSN_INVALID = 501 "5.5.4 Error: bad " _ " parameter syntax";
}

// ---------------------------------------------------------------------------
// STARTTLS
// ---------------------------------------------------------------------------

canned! {
    /// STARTTLS where no certificate is configured.
    TLS_NOT_AVAILABLE = 454 "TLS not available";
    /// A second STARTTLS (aiosmtpd answers 220 and breaks the connection).
    TLS_ALREADY_ACTIVE = 554 "5.5.1 Error: TLS already active";
    /// Anything but NOOP, EHLO, LHLO, STARTTLS and QUIT while STARTTLS is required.
    STARTTLS_FIRST = 530 "Must issue a STARTTLS command first";
}

// ---------------------------------------------------------------------------
// AUTH
// ---------------------------------------------------------------------------

canned! {
    /// MAIL, RCPT, DATA, VRFY or HELP before AUTH when AUTH is required.
    AUTH_REQUIRED = 530 "5.7.0 Authentication required";
    /// AUTH before any greeting.
    SEND_EHLO_FIRST = 503 "Error: send EHLO first";
    /// AUTH after HELO.
    AUTH_NOT_RECOGNIZED = 500 "Error: command 'AUTH' not recognized";
    /// AUTH without TLS while AUTH needs it.
    ENCRYPTION_REQUIRED = 538 "5.7.11 Encryption required for requested authentication mechanism";
    /// A second successful AUTH.
    ALREADY_AUTHENTICATED = 503 "Already authenticated";
    /// AUTH without a mechanism.
    AUTH_NOT_ENOUGH_VALUES = 501 "Not enough value";
    /// AUTH with more than a mechanism and an initial response.
    AUTH_TOO_MANY_VALUES = 501 "Too many values";
    /// A mechanism not offered.
    AUTH_UNKNOWN_MECHANISM = 504 "5.5.4 Unrecognized authentication type";
    /// A response that is not base64.
    AUTH_BAD_BASE64 = 501 "5.5.2 Can't decode base64";
    /// A PLAIN response that is not `authzid NUL authcid NUL passwd`.
    AUTH_CANNOT_SPLIT = 501 "5.5.2 Can't split auth value";
    /// The client answered a challenge with `*`.
    AUTH_ABORTED = 501 "5.7.0 Auth aborted";
    /// The authenticator accepted.
    AUTH_SUCCESS = 235 "2.7.0 Authentication successful";
    /// The authenticator refused.
    AUTH_INVALID = 535 "5.7.8 Authentication credentials invalid";
    /// PLAIN without an initial response: an empty challenge.
    PLAIN_CHALLENGE = 334 "";
    /// LOGIN's first challenge, `User Name\0` in base64.
    LOGIN_USERNAME_CHALLENGE = 334 "VXNlciBOYW1lAA==";
    /// LOGIN's second challenge, `Password\0` in base64.
    LOGIN_PASSWORD_CHALLENGE = 334 "UGFzc3dvcmQA";
}

template! {
    /// A challenge of a handler's mechanism; the value is the base64 text.
    AUTH_CHALLENGE = 334 "" _ "";
}

// ---------------------------------------------------------------------------
// Closing the connection (the value is the server's host name)
// ---------------------------------------------------------------------------

template! {
    /// The idle timeout passed (aiosmtpd closes silently).
    TIMEOUT = 421 "4.4.2 " _ " Error: timeout exceeded";
    /// Turned away by a connection limit, instead of the greeting.
    TOO_MANY_CONNECTIONS = 421 "4.7.0 " _ " Too many connections, try again later";
    /// A handler hook did not answer in time.
    HANDLER_TIMED_OUT = 421 "4.3.0 " _ " Error: handler timed out, closing transmission channel";
    /// The server is shutting down.
    SHUTTING_DOWN = 421 "" _ " Service not available, closing transmission channel";
    /// MAIL past [`Config::max_messages_per_connection`](super::Config::max_messages_per_connection).
    TOO_MANY_MESSAGES = 421 "4.7.0 " _ " Too many messages on one connection, closing";
    /// The AUTH failure that reaches [`Config::max_auth_failures`](super::Config::max_auth_failures).
    TOO_MANY_AUTH_FAILURES = 421 "4.7.0 " _ " Too many failed authentication attempts, closing";
    /// The server is shutting down gracefully: between commands at once,
    /// after the message in progress otherwise.
    SHUTTING_DOWN_GRACEFULLY = 421 "4.3.2 " _ " Service shutting down";
}

// ---------------------------------------------------------------------------
// Replies built from several values
// ---------------------------------------------------------------------------

/// The greeting, `220 {hostname} {ident}`.
pub(crate) fn push_greeting(hostname: &str, ident: &str, out: &mut Vec<u8>) {
    push_line(
        220,
        b' ',
        &[hostname.as_bytes(), b" ", ident.as_bytes()],
        out,
    );
}

/// A command's syntax (`501 Syntax: ...` after a bad argument, `250 Syntax: ...`
/// for HELP); `extension` is the ESMTP suffix, sent only in an EHLO session.
pub(crate) fn push_syntax(code: u16, syntax: &str, extension: &str, out: &mut Vec<u8>) {
    push_line(
        code,
        b' ',
        &[b"Syntax: ", syntax.as_bytes(), extension.as_bytes()],
        out,
    );
}

/// HELP's command list (`250`, or `501` after an unknown topic).
pub(crate) fn push_supported_commands(code: u16, list: &str, out: &mut Vec<u8>) {
    push_line(code, b' ', &[b"Supported commands: ", list.as_bytes()], out);
}

/// aiosmtpd's reply to a Python exception raised while it parsed an address:
/// `500 {exception text}`.
pub(crate) fn push_exception(text: &str, out: &mut Vec<u8>) {
    push_line(500, b' ', &[text.as_bytes()], out);
}

/// A hook that failed (several lines if the message has some): aiosmtpd's
/// reply to an exception, `500 Error: ({kind}) {message}`, for a permanent
/// failure; `451 4.3.0 Error: ({kind}) {message}` for a temporary one and
/// `452 4.3.1 Insufficient system storage: ({kind}) {message}` for a full disk.
pub(crate) fn push_hook_failure(class: FailureClass, kind: &str, message: &str, out: &mut Vec<u8>) {
    let (code, text) = match class {
        FailureClass::Permanent => (500, format!("Error: ({kind}) {message}")),
        FailureClass::Temporary => (451, format!("4.3.0 Error: ({kind}) {message}")),
        FailureClass::StorageFull => (
            452,
            format!("4.3.1 Insufficient system storage: ({kind}) {message}"),
        ),
    };
    encode_lines(code, &text, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_wire_forms() {
        assert_eq!(OK.line, "250 OK");
        assert_eq!(PLAIN_CHALLENGE.line, "334 ");
        let mut out = Vec::new();
        OK.push(&mut out);
        NOT_RECOGNIZED.push(b"FOO", &mut out);
        SHUTTING_DOWN.push(b"mx", &mut out);
        assert_eq!(
            out,
            b"250 OK\r\n500 Error: command \"FOO\" not recognized\r\n\
              421 mx Service not available, closing transmission channel\r\n"
        );
        assert_eq!(
            COULD_NOT_VRFY.line("x y"),
            "502 Could not VRFY x y",
            "a template's line is what push writes"
        );
        assert_eq!(OK.reply(), Reply::ok());
        assert_eq!(BYE.to_string(), "221 Bye");
    }
}
