//! The deliberate differences from aiosmtpd: the one list, with the reason for
//! each. A dialog listed here must differ from aiosmtpd's recording at that
//! level (if it starts to match, the test says so, so the list stays true).

/// Where a dialog is replayed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Level {
    /// Into the engine, with the test's own hook answers.
    Engine,
    /// Against the `smtpkit` binary.
    Cli,
}

/// `(group/dialog, levels, reason)`.
const DIFFERENCES: &[(&str, &[Level], &str)] = &[
    (
        "auth/auth_tempfail_454",
        &[Level::Cli],
        "aiosmtpd's recording used a test authenticator that answers 454 for `failme_with454`; \
         the CLI's --auth-file only accepts or refuses (535). The engine replay answers 454 \
         as that authenticator does, and matches",
    ),
    (
        "auth/auth_lowercase_mechanism",
        &[Level::Engine, Level::Cli],
        "SASL mechanism names are case-insensitive (RFC 4954 section 4); aiosmtpd refuses \
         `AUTH plain`, smtpkit accepts it",
    ),
    (
        "smtps/smtps_ehlo",
        &[Level::Cli],
        "implicit TLS counts as TLS, so EHLO offers AUTH (aiosmtpd #274/#281: it only counts STARTTLS)",
    ),
    (
        "smtps/smtps_starttls_refused",
        &[Level::Cli],
        "implicit TLS counts as TLS, so EHLO offers AUTH (aiosmtpd #274/#281: it only counts STARTTLS)",
    ),
    (
        "lmtp/lmtp_three_recipients",
        &[Level::Engine, Level::Cli],
        "LMTP answers DATA with one reply per accepted recipient (RFC 2033 section 4.2); \
         aiosmtpd sends one",
    ),
    (
        "lmtp/lmtp_mixed_recipients",
        &[Level::Engine, Level::Cli],
        "LMTP answers DATA with one reply per accepted recipient (RFC 2033 section 4.2); \
         aiosmtpd sends one",
    ),
];

/// Why `key` (`group/dialog`) differs from aiosmtpd at `level`, if it does so
/// deliberately.
pub fn reason(level: Level, key: &str) -> Option<&'static str> {
    DIFFERENCES
        .iter()
        .find(|(k, levels, _)| *k == key && levels.contains(&level))
        .map(|(_, _, why)| *why)
}
