//! The ESMTP extensions smtpkit speaks beyond aiosmtpd, each off by default
//! ([`Extensions`]), and their names on the command line (`--extensions LIST`).

use std::fmt;
use std::str::FromStr;

/// The ESMTP extensions beyond aiosmtpd's dialogue, each opt-in: with none on
/// (the default) every reply is aiosmtpd's byte for byte.
///
/// ```
/// use smtpkit::proto::Extensions;
/// let ext: Extensions = "pipelining,chunking".parse().unwrap();
/// assert!(ext.pipelining && ext.chunking && !ext.dsn);
/// assert_eq!(Extensions::all().to_string(),
///     "pipelining,chunking,binarymime,enhancedstatuscodes,dsn,requiretls,limits");
/// assert!("pipelinig".parse::<Extensions>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Extensions {
    /// PIPELINING (RFC 2920): advertised. Replies to a group of commands go
    /// out together whether or not it is advertised.
    pub pipelining: bool,
    /// CHUNKING (RFC 3030): the `BDAT size [LAST]` command.
    pub chunking: bool,
    /// BINARYMIME (RFC 3030 §3): `BODY=BINARYMIME` on MAIL; only advertised and
    /// accepted together with [`Extensions::chunking`].
    pub binarymime: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034, RFC 3463): in an EHLO session every reply
    /// but the greeting, the EHLO reply and 3xx replies carries `class.subject.detail`.
    pub enhanced_status_codes: bool,
    /// DSN (RFC 3461): `RET` and `ENVID` on MAIL, `NOTIFY` and `ORCPT` on RCPT,
    /// validated and exposed on the [`Envelope`](super::Envelope).
    pub dsn: bool,
    /// REQUIRETLS (RFC 8689): advertised inside TLS; the `REQUIRETLS` MAIL
    /// parameter sets [`Envelope::require_tls`](super::Envelope::require_tls).
    pub requiretls: bool,
    /// LIMITS (RFC 9422): `LIMITS RCPTMAX=n MAILMAX=n` from
    /// [`Config::recipient_limit`](super::Config::recipient_limit) and the
    /// MAIL call limit, when either is set.
    pub limits: bool,
}

/// The names, in the order [`Extensions`] prints them.
const NAMES: [&str; 7] = [
    "pipelining",
    "chunking",
    "binarymime",
    "enhancedstatuscodes",
    "dsn",
    "requiretls",
    "limits",
];

impl Extensions {
    /// None: aiosmtpd's dialogue.
    pub const NONE: Extensions = Extensions {
        pipelining: false,
        chunking: false,
        binarymime: false,
        enhanced_status_codes: false,
        dsn: false,
        requiretls: false,
        limits: false,
    };

    /// Every extension.
    pub fn all() -> Self {
        Extensions {
            pipelining: true,
            chunking: true,
            binarymime: true,
            enhanced_status_codes: true,
            dsn: true,
            requiretls: true,
            limits: true,
        }
    }

    /// The names of the extensions, as [`FromStr`] accepts them.
    pub fn names() -> &'static [&'static str] {
        &NAMES
    }

    /// True when BINARYMIME is both on and usable (it needs CHUNKING).
    pub(crate) fn binary_mime(&self) -> bool {
        self.binarymime && self.chunking
    }

    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "pipelining" => &mut self.pipelining,
            "chunking" => &mut self.chunking,
            "binarymime" => &mut self.binarymime,
            "enhancedstatuscodes" => &mut self.enhanced_status_codes,
            "dsn" => &mut self.dsn,
            "requiretls" => &mut self.requiretls,
            "limits" => &mut self.limits,
            _ => return None,
        })
    }

    fn flags(&self) -> [bool; 7] {
        [
            self.pipelining,
            self.chunking,
            self.binarymime,
            self.enhanced_status_codes,
            self.dsn,
            self.requiretls,
            self.limits,
        ]
    }
}

/// An extension name that [`Extensions`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown extension {name:?} (known: {}, or all)", NAMES.join(", "))]
pub struct UnknownExtension {
    /// The name as given.
    pub name: String,
}

/// A comma-separated list of names (case-insensitive; `all` for every one;
/// empty items are ignored, so `""` is none).
impl FromStr for Extensions {
    type Err = UnknownExtension;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut ext = Extensions::NONE;
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let name = item.to_ascii_lowercase();
            if name == "all" {
                ext = Extensions::all();
                continue;
            }
            match ext.flag(&name) {
                Some(flag) => *flag = true,
                None => {
                    return Err(UnknownExtension {
                        name: item.to_owned(),
                    });
                }
            }
        }
        Ok(ext)
    }
}

/// The names of the extensions that are on, comma-separated.
impl fmt::Display for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, on) in NAMES.iter().zip(self.flags()) {
            if on {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        assert_eq!("".parse::<Extensions>(), Ok(Extensions::NONE));
        assert_eq!("ALL".parse::<Extensions>(), Ok(Extensions::all()));
        let e: Extensions = " dsn , Limits,".parse().unwrap();
        assert_eq!(e.to_string(), "dsn,limits");
        let err = "dsn,chunky".parse::<Extensions>().unwrap_err();
        assert_eq!(err.name, "chunky");
        assert!(err.to_string().contains("pipelining, chunking"), "{err}");
        for name in Extensions::names() {
            let e: Extensions = name.parse().unwrap();
            assert_eq!(e.to_string(), *name);
        }
        assert!(
            !Extensions {
                binarymime: true,
                ..Extensions::NONE
            }
            .binary_mime()
        );
    }
}
