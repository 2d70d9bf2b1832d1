//! SASL helpers for AUTH (RFC 4954): base64 as aiosmtpd decodes it and the
//! PLAIN message split. The challenge/response flow lives in the connection
//! (`connection/sasl.rs`), the challenges' texts in the reply catalogue.

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Strict base64 like Python's `b64decode(s, validate=True)`: only the standard
/// alphabet, padding required, trailing bits ignored.
const STRICT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decodes one client response. `None` when it is not valid base64.
pub(crate) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    STRICT.decode(text).ok()
}

/// Decodes an initial response on the AUTH line, where RFC 4954 section 4 reads
/// a lone `=` as an empty response (aiosmtpd rejects it as bad base64).
pub(crate) fn decode_initial(text: &[u8]) -> Option<Vec<u8>> {
    if text == b"=" {
        Some(Vec::new())
    } else {
        decode(text)
    }
}

/// Encodes a challenge.
pub(crate) fn encode(data: &[u8]) -> String {
    STRICT.encode(data)
}

/// Splits a PLAIN message `authzid NUL authcid NUL passwd` into (login, password);
/// `None` unless there are exactly three parts (aiosmtpd's rule).
pub(crate) fn split_plain(decoded: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut parts = decoded.split(|&b| b == 0);
    let _authzid = parts.next()?;
    let login = parts.next()?;
    let password = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    Some((login.to_vec(), password.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_like_base64() {
        assert_eq!(decode(b"Z29vZGxvZ2lu").as_deref(), Some(&b"goodlogin"[..]));
        assert_eq!(decode(b"").as_deref(), Some(&b""[..]));
        assert_eq!(decode(b"="), None);
        assert_eq!(decode(b"ab@%"), None);
        assert_eq!(decode(b"not-b64"), None);
        assert_eq!(decode(b"YQ"), None);
        assert_eq!(decode(b"PQ==").as_deref(), Some(&b"="[..]));
        assert_eq!(decode_initial(b"=").as_deref(), Some(&b""[..]));
        // The LOGIN challenges in the reply catalogue are these texts.
        use crate::proto::replies::{LOGIN_PASSWORD_CHALLENGE, LOGIN_USERNAME_CHALLENGE};
        assert_eq!(encode(b"User Name\0"), LOGIN_USERNAME_CHALLENGE.text);
        assert_eq!(encode(b"Password\0"), LOGIN_PASSWORD_CHALLENGE.text);
    }

    #[test]
    fn plain_split() {
        assert_eq!(
            split_plain(b"\0goodlogin\0goodpasswd"),
            Some((b"goodlogin".to_vec(), b"goodpasswd".to_vec()))
        );
        assert_eq!(split_plain(b"\0onlylogin"), None);
        assert_eq!(split_plain(b"a\0b\0c\0d"), None);
        assert_eq!(split_plain(b"="), None);
    }
}
