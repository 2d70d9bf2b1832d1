//! The PROXY protocol header (HAProxy's v1 text and v2 binary forms), parsed the way
//! aiosmtpd 1.4.6 (`aiosmtpd/proxy_protocol.py`, `get_proxy`) parses it: the same
//! acceptance rules, the same error messages, the same [`ProxyData`] fields.
//!
//! Sans-IO: offer everything received so far to [`parse_proxy_header`] until it
//! answers [`ProxyParse::Done`]; the bytes after `consumed` belong to SMTP. If the
//! peer closes first, the connection closes silently, as aiosmtpd's does.
//!
//! Like aiosmtpd, the parser needs 5 bytes before it decides anything, a v1 header
//! is a line ending in LF, and a v2 header is a 16-byte prefix plus the length it
//! declares. Unlike aiosmtpd's reader (which reads up to 1001 bytes looking for the
//! LF), a v1 line that has no LF within its first 107 bytes is rejected as soon as
//! its 108th byte arrives ("PROXYv1 header too long"), so nothing more is buffered.
//! CRC32C TLVs are never verified, as in aiosmtpd.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use memchr::memchr;

/// The 12-byte signature that starts a PROXY v2 header.
pub const PROXY_V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\x00\r\nQUIT\n";

/// Longest acceptable v1 header, CRLF included.
pub const PROXY_V1_MAX_LEN: usize = 107;

const V1_SIGNATURE: &[u8; 5] = b"PROXY";

/// What [`parse_proxy_header`] needs or found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyParse {
    /// Not enough bytes yet: call again with more.
    Partial,
    /// A complete header (valid, or invalid with `data.error` set) spanning the first
    /// `consumed` input bytes.
    Done {
        /// What was found.
        data: ProxyData,
        /// Header length; the bytes after it are the start of the SMTP stream.
        consumed: usize,
    },
}

/// The v2 command (aiosmtpd's `V2_CMD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyCommand {
    /// 0: a connection made by the proxy itself (health checks); still accepted.
    Local = 0,
    /// 1: a relayed connection.
    Proxy = 1,
}

/// The address family (aiosmtpd's `AF`); v1 `UNKNOWN` maps to `Unspec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyFamily {
    /// 0: unknown / unspecified.
    Unspec = 0,
    /// 1: IPv4.
    Inet = 1,
    /// 2: IPv6.
    Inet6 = 2,
    /// 3: Unix socket (v2 only).
    Unix = 3,
}

/// The transport protocol (aiosmtpd's `PROTO`); v1 `UNKNOWN` maps to `Unspec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyProtocol {
    /// 0: unknown / unspecified.
    Unspec = 0,
    /// 1: stream (TCP).
    Stream = 1,
    /// 2: datagram (UDP, v2 only).
    Dgram = 2,
}

impl ProxyCommand {
    /// The command for a v2 command nibble, `None` when aiosmtpd rejects it.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Local),
            1 => Some(Self::Proxy),
            _ => None,
        }
    }

    /// The numeric value (aiosmtpd's `int(V2_CMD)`).
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl ProxyFamily {
    /// The family for a v2 family nibble, `None` when aiosmtpd rejects it.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Unspec),
            1 => Some(Self::Inet),
            2 => Some(Self::Inet6),
            3 => Some(Self::Unix),
            _ => None,
        }
    }

    /// The numeric value (aiosmtpd's `int(AF)`).
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl ProxyProtocol {
    /// The protocol for a v2 protocol nibble, `None` when aiosmtpd rejects it.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Unspec),
            1 => Some(Self::Stream),
            2 => Some(Self::Dgram),
            _ => None,
        }
    }

    /// The numeric value (aiosmtpd's `int(PROTO)`).
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// An endpoint address as carried by the header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProxyAddr {
    /// An IPv4 or IPv6 address (v1 TCP4/TCP6, v2 INET/INET6).
    Ip(IpAddr),
    /// A v2 UNIX address: the raw 108 bytes, NUL padding included (as aiosmtpd).
    Unix(Vec<u8>),
}

impl ProxyAddr {
    /// The IP address, if this is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Ip(ip) => Some(*ip),
            Self::Unix(_) => None,
        }
    }
}

/// What the header said: aiosmtpd's `ProxyData`, field for field.
///
/// On an error the fields keep what aiosmtpd had filled in before it stopped; a
/// "PROXY exception: ..." error (aiosmtpd caught a Python exception) leaves every
/// other field empty. aiosmtpd stores an out-of-range v2 command/family/protocol
/// number before rejecting it; here that field is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyData {
    /// 1 or 2; `None` when the signature was not recognised (or on an exception).
    pub version: Option<u8>,
    /// v2 only.
    pub command: Option<ProxyCommand>,
    /// `None` until determined (aiosmtpd's default `None`).
    pub family: Option<ProxyFamily>,
    /// `None` when unknown or invalid; a header without a protocol is never valid.
    pub protocol: Option<ProxyProtocol>,
    /// Source address (IP for TCP4/TCP6/INET/INET6, raw bytes for UNIX).
    pub src_addr: Option<ProxyAddr>,
    /// Destination address.
    pub dst_addr: Option<ProxyAddr>,
    /// Source port (not for UNIX).
    pub src_port: Option<u16>,
    /// Destination port (not for UNIX).
    pub dst_port: Option<u16>,
    /// v1 `UNKNOWN`: the text after `UNKNOWN` (leading space included, CRLF not);
    /// v2: the bytes after the address block (raw TLVs), or the whole tail for
    /// families/protocols without addresses.
    pub rest: Vec<u8>,
    /// The header as received. v1: the whole line (only its first 108 bytes when too
    /// long); v2: signature, header and tail, empty when the header was rejected
    /// before its tail was read (as aiosmtpd).
    pub whole_raw: Vec<u8>,
    /// v2: offset of the first TLV in `whole_raw`, when there are bytes after the
    /// address block.
    pub tlv_start: Option<usize>,
    /// aiosmtpd's error message; `None` is aiosmtpd's `""`.
    pub error: Option<String>,
}

impl ProxyData {
    fn new(version: Option<u8>) -> Self {
        Self {
            version,
            ..Self::default()
        }
    }

    fn failed(mut self, msg: &str) -> Self {
        self.error = Some(msg.to_owned());
        self
    }

    /// aiosmtpd's `ProxyData(version=None).with_error(f"PROXY exception: {e}")`.
    fn exception(msg: &str) -> Self {
        Self::new(None).failed(&format!("PROXY exception: {msg}"))
    }

    /// aiosmtpd's `valid`: no error, and both version and protocol known.
    pub fn is_valid(&self) -> bool {
        self.error.is_none() && self.version.is_some() && self.protocol.is_some()
    }

    /// aiosmtpd's `tlv`: the TLVs in [`rest`](Self::rest), `None` when `rest` is
    /// empty or not a well-formed TLV sequence.
    pub fn tlvs(&self) -> Option<ProxyTlvs> {
        ProxyTlvs::from_raw(&self.rest)
    }
}

/// Parses the start of a connection's byte stream; `input` is everything received
/// so far (offer it again, grown, after a [`ProxyParse::Partial`]).
pub fn parse_proxy_header(input: &[u8]) -> ProxyParse {
    let Some(signature) = input.get(..V1_SIGNATURE.len()) else {
        return ProxyParse::Partial;
    };
    if signature == V1_SIGNATURE {
        parse_v1(input)
    } else if Some(signature) == PROXY_V2_SIGNATURE.get(..V1_SIGNATURE.len()) {
        parse_v2(input)
    } else {
        ProxyParse::Done {
            data: ProxyData::new(None).failed("PROXY unrecognized signature"),
            consumed: V1_SIGNATURE.len(),
        }
    }
}

// ---------------------------------------------------------------------------
// Version 1
// ---------------------------------------------------------------------------

fn parse_v1(input: &[u8]) -> ProxyParse {
    let window = input
        .get(..input.len().min(PROXY_V1_MAX_LEN))
        .unwrap_or(input);
    let after_sig = window.get(V1_SIGNATURE.len()..).unwrap_or_default();
    match memchr(b'\n', after_sig) {
        Some(pos) => {
            let consumed = V1_SIGNATURE.len() + pos + 1;
            let line = input.get(..consumed).unwrap_or(input);
            ProxyParse::Done {
                data: parse_v1_line(line),
                consumed,
            }
        }
        None if input.len() > PROXY_V1_MAX_LEN => {
            let consumed = PROXY_V1_MAX_LEN + 1;
            let mut data = ProxyData::new(Some(1));
            data.whole_raw = input.get(..consumed).unwrap_or(input).to_vec();
            ProxyParse::Done {
                data: data.failed("PROXYv1 header too long"),
                consumed,
            }
        }
        None => ProxyParse::Partial,
    }
}

/// `_get_v1` on one complete line (signature and LF included, at most 107 bytes).
fn parse_v1_line(line: &[u8]) -> ProxyData {
    const EMPTY_DEQUE: &str = "pop from an empty deque";
    let mut data = ProxyData::new(Some(1));
    data.whole_raw = line.to_vec();
    let after_sig = line.get(V1_SIGNATURE.len()..).unwrap_or_default();
    let Some(body) = after_sig.strip_suffix(b"\r\n") else {
        return data.failed("PROXYv1 malformed");
    };
    // Split on single spaces: two consecutive spaces make an empty field.
    let mut parts = body.split(|&b| b == b' ');
    if parts.next() != Some(&b""[..]) {
        return data.failed("PROXYv1 wrong signature");
    }
    let Some(proto) = parts.next() else {
        return ProxyData::exception(EMPTY_DEQUE);
    };
    if proto == b"UNKNOWN" {
        data.protocol = Some(ProxyProtocol::Unspec);
        data.family = Some(ProxyFamily::Unspec);
        // " " + b" ".join(remaining fields): the text after "UNKNOWN".
        data.rest = body.get(1 + proto.len()..).unwrap_or_default().to_vec();
        return data;
    }
    let family = if proto.ends_with(b"4") {
        ProxyFamily::Inet
    } else if proto.ends_with(b"6") {
        ProxyFamily::Inet6
    } else {
        return data.failed("PROXYv1 unrecognized family");
    };
    data.family = Some(family);
    if !proto.starts_with(b"TCP") {
        return data.failed("PROXYv1 unrecognized protocol");
    }
    data.protocol = Some(ProxyProtocol::Stream);

    let mut addrs = [None; 2];
    for slot in &mut addrs {
        let Some(field) = parts.next() else {
            return ProxyData::exception(EMPTY_DEQUE);
        };
        match py_ip_address(field) {
            Some(ip) => *slot = Some(ip),
            None => return data.failed("PROXYv1 address malformed"),
        }
    }
    let [Some(src), Some(dst)] = addrs else {
        return data.failed("PROXYv1 address malformed");
    };
    match family {
        ProxyFamily::Inet if !(src.is_ipv4() && dst.is_ipv4()) => {
            return data.failed("PROXYv1 address not IPv4");
        }
        ProxyFamily::Inet6 if !(src.is_ipv6() && dst.is_ipv6()) => {
            return data.failed("PROXYv1 address not IPv6");
        }
        _ => {}
    }
    data.src_addr = Some(ProxyAddr::Ip(src));
    data.dst_addr = Some(ProxyAddr::Ip(dst));

    // aiosmtpd stores each port as soon as `int()` accepts it and checks the bounds
    // afterwards; a `u16` cannot hold an out-of-bounds port, so that one stays `None`.
    let mut ports = [0u32; 2];
    for (index, slot) in ports.iter_mut().enumerate() {
        let Some(field) = parts.next() else {
            return ProxyData::exception(EMPTY_DEQUE);
        };
        let Some(port) = py_port(field) else {
            return data.failed("PROXYv1 port malformed");
        };
        *slot = port;
        let stored = if index == 0 {
            &mut data.src_port
        } else {
            &mut data.dst_port
        };
        *stored = u16::try_from(port).ok();
    }
    let [src_port, dst_port] = ports;
    if src_port > u32::from(u16::MAX) {
        return data.failed("PROXYv1 src port out of bounds");
    }
    if dst_port > u32::from(u16::MAX) {
        return data.failed("PROXYv1 dst port out of bounds");
    }
    if parts.next().is_some() {
        return data.failed("PROXYv1 unrecognized extraneous data");
    }
    data
}

/// aiosmtpd's address check: `^[0-9a-fA-F.:]+$`, then Python's
/// `ipaddress.ip_address()` (3.11: no leading zeros in IPv4 octets, at most four
/// hex digits per IPv6 group, `::` standing for at least one group, an IPv4 tail
/// only in last position). std's parsers follow the same rules on this alphabet.
fn py_ip_address(field: &[u8]) -> Option<IpAddr> {
    if field.is_empty()
        || !field
            .iter()
            .all(|&b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
    {
        return None;
    }
    let text = std::str::from_utf8(field).ok()?;
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// aiosmtpd's port check: `RE_PORT_NOLEADZERO.match(field)` — `^[1-9]\d{0,4}|0$`,
/// whose first branch only anchors the start — then Python's `int(field)`, which
/// allows trailing whitespace and single underscores between digits. Values too big
/// for a `u32` saturate (they are out of bounds either way).
fn py_port(field: &[u8]) -> Option<u32> {
    match field.first() {
        Some(b'1'..=b'9') => {}
        _ => return (field == b"0").then_some(0),
    }
    let end = field
        .iter()
        .rposition(|&b| !is_py_space(b))
        .map_or(0, |pos| pos + 1);
    let digits = field.get(..end)?;
    let mut value: u32 = 0;
    let mut after_underscore = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                value = value.saturating_mul(10).saturating_add(u32::from(b - b'0'));
                after_underscore = false;
            }
            b'_' if !after_underscore => after_underscore = true,
            _ => return None,
        }
    }
    (!after_underscore).then_some(value)
}

/// What Python's `int()` strips around digits, on a Latin-1 decoded byte: ASCII
/// whitespace as C's `isspace` sees it (not `\x1c`..`\x1f`), plus U+0085 and U+00A0.
fn is_py_space(b: u8) -> bool {
    matches!(b, 0x09..=0x0d | b' ' | 0x85 | 0xa0)
}

// ---------------------------------------------------------------------------
// Version 2
// ---------------------------------------------------------------------------

/// Signature plus the `!BBH` version/command, family/protocol and length header.
const V2_PREFIX_LEN: usize = 16;
const INET_BLOCK: usize = 12; // !4s4sHH
const INET6_BLOCK: usize = 36; // !16s16sHH
const UNIX_BLOCK: usize = 216; // 108s108s
const UNIX_ADDR: usize = 108;

fn parse_v2(input: &[u8]) -> ProxyParse {
    let mut data = ProxyData::new(Some(2));
    let Some(signature) = input.get(..PROXY_V2_SIGNATURE.len()) else {
        return ProxyParse::Partial;
    };
    if signature != PROXY_V2_SIGNATURE {
        return ProxyParse::Done {
            data: data.failed("PROXYv2 wrong signature"),
            consumed: PROXY_V2_SIGNATURE.len(),
        };
    }
    let Some(&[ver_cmd, fam_proto, len_hi, len_lo]) =
        input.get(PROXY_V2_SIGNATURE.len()..V2_PREFIX_LEN)
    else {
        return ProxyParse::Partial;
    };
    let reject = |data: ProxyData, msg: &str| ProxyParse::Done {
        data: data.failed(msg),
        consumed: V2_PREFIX_LEN,
    };
    if ver_cmd & 0xF0 != 0x20 {
        return reject(data, "PROXYv2 illegal version");
    }
    data.command = ProxyCommand::from_u8(ver_cmd & 0x0F);
    if data.command.is_none() {
        return reject(data, "PROXYv2 unsupported command");
    }
    data.family = ProxyFamily::from_u8(fam_proto >> 4);
    let Some(family) = data.family else {
        return reject(data, "PROXYv2 unsupported family");
    };
    data.protocol = ProxyProtocol::from_u8(fam_proto & 0x0F);
    let Some(protocol) = data.protocol else {
        return reject(data, "PROXYv2 unsupported protocol");
    };

    let total = V2_PREFIX_LEN + usize::from(u16::from_be_bytes([len_hi, len_lo]));
    let (Some(whole), Some(tail)) = (input.get(..total), input.get(V2_PREFIX_LEN..total)) else {
        return ProxyParse::Partial;
    };
    data.whole_raw = whole.to_vec();
    let done = |data: ProxyData| ProxyParse::Done {
        data,
        consumed: total,
    };

    let block_len = match (family, protocol) {
        (_, ProxyProtocol::Unspec) | (ProxyFamily::Unspec, _) => {
            data.rest = tail.to_vec();
            return done(data);
        }
        (ProxyFamily::Inet, _) => INET_BLOCK,
        (ProxyFamily::Inet6, _) => INET6_BLOCK,
        (ProxyFamily::Unix, _) => UNIX_BLOCK,
    };
    let (Some(block), Some(rest)) = (tail.get(..block_len), tail.get(block_len..)) else {
        return done(data.failed("PROXYv2 truncated address"));
    };
    match family {
        ProxyFamily::Inet | ProxyFamily::Inet6 => {
            let addr_len = (block_len - 4) / 2;
            let (src, dst) = match (block.get(..addr_len), block.get(addr_len..2 * addr_len)) {
                (Some(src), Some(dst)) => (ip_from_bytes(src), ip_from_bytes(dst)),
                _ => (None, None),
            };
            data.src_addr = src.map(ProxyAddr::Ip);
            data.dst_addr = dst.map(ProxyAddr::Ip);
            data.src_port = be_u16(block.get(2 * addr_len..2 * addr_len + 2));
            data.dst_port = be_u16(block.get(2 * addr_len + 2..));
        }
        _ => {
            data.src_addr = block.get(..UNIX_ADDR).map(|a| ProxyAddr::Unix(a.to_vec()));
            data.dst_addr = block.get(UNIX_ADDR..).map(|a| ProxyAddr::Unix(a.to_vec()));
        }
    }
    if !rest.is_empty() {
        data.tlv_start = Some(V2_PREFIX_LEN + block_len);
    }
    data.rest = rest.to_vec();
    done(data)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::from(v4))
    } else {
        <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
    }
}

fn be_u16(bytes: Option<&[u8]>) -> Option<u16> {
    match bytes? {
        &[hi, lo] => Some(u16::from_be_bytes([hi, lo])),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// TLVs
// ---------------------------------------------------------------------------

/// TLV type numbers and aiosmtpd's names for them (`ProxyTLV.PP2_TYPENAME`).
const TLV_NAMES: [(u8, &str); 12] = [
    (0x01, "ALPN"),
    (0x02, "AUTHORITY"),
    (0x03, "CRC32C"),
    (0x04, "NOOP"),
    (0x05, "UNIQUE_ID"),
    (0x20, "SSL"),
    (0x21, "SSL_VERSION"),
    (0x22, "SSL_CN"),
    (0x23, "SSL_CIPHER"),
    (0x24, "SSL_SIG_ALG"),
    (0x25, "SSL_KEY_ALG"),
    (0x30, "NETNS"),
];

/// One TLV as stored in [`ProxyTlvs`]: where its value sits in the raw bytes.
#[derive(Clone, Debug)]
struct TlvEntry {
    kind: u8,
    value: Range<usize>,
    loc: usize,
}

/// The TLVs of a v2 header, as aiosmtpd's `ProxyTLV.from_raw(rest)` reads them
/// (non-strict: unknown types are kept by number). The sub-TLVs of an `SSL` TLV are
/// flattened in with the others; a type seen twice keeps its last value, in the
/// position it was first seen (Python dict semantics).
#[derive(Clone, Debug, Default)]
pub struct ProxyTlvs {
    raw: Vec<u8>,
    entries: Vec<TlvEntry>,
    ssl_client: Option<u8>,
    ssl_verify: Option<u32>,
}

/// Dict equality, as aiosmtpd's `ProxyTLV`: the same types with the same values, in
/// any order (locations and the raw `SSL` value are not compared).
impl PartialEq for ProxyTlvs {
    fn eq(&self, other: &Self) -> bool {
        self.ssl_client == other.ssl_client
            && self.ssl_verify == other.ssl_verify
            && self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .all(|e| e.kind == Self::SSL || other.get(e.kind) == self.get(e.kind))
    }
}

impl Eq for ProxyTlvs {}

impl ProxyTlvs {
    /// `PP2_TYPE_ALPN`.
    pub const ALPN: u8 = 0x01;
    /// `PP2_TYPE_AUTHORITY`.
    pub const AUTHORITY: u8 = 0x02;
    /// `PP2_TYPE_CRC32C` (never verified).
    pub const CRC32C: u8 = 0x03;
    /// `PP2_TYPE_NOOP`.
    pub const NOOP: u8 = 0x04;
    /// `PP2_TYPE_UNIQUE_ID`.
    pub const UNIQUE_ID: u8 = 0x05;
    /// `PP2_TYPE_SSL`: client byte, verify u32, then sub-TLVs.
    pub const SSL: u8 = 0x20;
    /// `PP2_SUBTYPE_SSL_VERSION`.
    pub const SSL_VERSION: u8 = 0x21;
    /// `PP2_SUBTYPE_SSL_CN`.
    pub const SSL_CN: u8 = 0x22;
    /// `PP2_SUBTYPE_SSL_CIPHER`.
    pub const SSL_CIPHER: u8 = 0x23;
    /// `PP2_SUBTYPE_SSL_SIG_ALG`.
    pub const SSL_SIG_ALG: u8 = 0x24;
    /// `PP2_SUBTYPE_SSL_KEY_ALG`.
    pub const SSL_KEY_ALG: u8 = 0x25;
    /// `PP2_TYPE_NETNS`.
    pub const NETNS: u8 = 0x30;

    /// Parses a TLV sequence: `None` when `raw` is empty or malformed (a value
    /// running past its container, or an `SSL` TLV without its client byte, which
    /// makes aiosmtpd raise `IndexError`). Like aiosmtpd, a final 1- or 2-byte
    /// fragment reads as a TLV with an empty value.
    pub fn from_raw(raw: &[u8]) -> Option<Self> {
        if raw.is_empty() {
            return None;
        }
        let mut tlvs = Self {
            raw: raw.to_vec(),
            ..Self::default()
        };
        // Containers as (start, end) in `raw`, the position reached in it and the
        // base of its `tlv_loc` offsets. A nested container goes on top, so this
        // walks in aiosmtpd's (recursive, pre-order) order, without recursion.
        let mut stack = vec![(0, raw.len(), 0, 0)];
        while let Some((start, end, pos, base)) = stack.pop() {
            let at = start + pos;
            let Some(item) = raw.get(at..end).filter(|item| !item.is_empty()) else {
                continue;
            };
            let kind = item.first().copied().unwrap_or_default();
            let len = item
                .get(1..item.len().min(3))
                .unwrap_or_default()
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
            // Python slicing: a short final fragment reads as an empty value.
            let value_start = (at + 3).min(end);
            if end - value_start < len {
                return None; // MalformedTLV
            }
            let value = value_start..value_start + len;
            stack.push((start, end, pos + 3 + len, base));
            // aiosmtpd's `tlv_loc`: `offset + i`, where a sub-TLV's offset is the
            // SSL TLV's position in its own container.
            tlvs.insert(kind, value.clone(), base + pos);
            if kind == Self::SSL {
                let (&client, after) = raw.get(value.clone())?.split_first()?;
                tlvs.ssl_client = Some(client);
                let verify = after.get(..after.len().min(4)).unwrap_or_default();
                tlvs.ssl_verify = Some(verify.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b)));
                stack.push(((value.start + 5).min(value.end), value.end, 0, pos));
            }
        }
        Some(tlvs)
    }

    fn insert(&mut self, kind: u8, value: Range<usize>, loc: usize) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.kind == kind) {
            entry.value = value;
            entry.loc = loc;
        } else {
            self.entries.push(TlvEntry { kind, value, loc });
        }
    }

    /// aiosmtpd's name for a TLV type (`"AUTHORITY"`, ...), `None` for unknown
    /// types (which aiosmtpd calls `"xNN"`).
    pub fn type_name(kind: u8) -> Option<&'static str> {
        TLV_NAMES
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|&(_, name)| name)
    }

    /// The value of the last TLV of this type. For `SSL` (0x20) that is its raw
    /// value (client byte, verify field and sub-TLVs); aiosmtpd keeps only
    /// [`ssl`](Self::ssl), [`ssl_client`](Self::ssl_client) and
    /// [`ssl_verify`](Self::ssl_verify) for it.
    pub fn get(&self, kind: u8) -> Option<&[u8]> {
        let entry = self.entries.iter().find(|e| e.kind == kind)?;
        self.raw.get(entry.value.clone())
    }

    /// aiosmtpd's `tlv_loc`: where this type's (last) TLV starts, relative to
    /// `rest` for top-level TLVs — add [`ProxyData::tlv_start`] for `whole_raw`.
    /// For sub-TLVs of `SSL` aiosmtpd adds the position inside the SSL value to
    /// the SSL TLV's own position, skipping its 8-byte head; kept as is.
    pub fn location(&self, kind: u8) -> Option<usize> {
        self.entries.iter().find(|e| e.kind == kind).map(|e| e.loc)
    }

    /// Every `(type, value)`, in the order the types were first seen.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &[u8])> {
        self.entries
            .iter()
            .map(|e| (e.kind, self.raw.get(e.value.clone()).unwrap_or_default()))
    }

    /// Number of distinct types.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Never true for a parsed value (an empty `rest` gives no `ProxyTlvs`).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `ALPN` (0x01).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.get(Self::ALPN)
    }

    /// `AUTHORITY` (0x02): the host name the client asked for (SNI).
    pub fn authority(&self) -> Option<&[u8]> {
        self.get(Self::AUTHORITY)
    }

    /// `CRC32C` (0x03), unverified.
    pub fn crc32c(&self) -> Option<&[u8]> {
        self.get(Self::CRC32C)
    }

    /// `NOOP` (0x04).
    pub fn noop(&self) -> Option<&[u8]> {
        self.get(Self::NOOP)
    }

    /// `UNIQUE_ID` (0x05).
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.get(Self::UNIQUE_ID)
    }

    /// aiosmtpd's `SSL` key: `Some(true)` when an `SSL` TLV was present.
    pub fn ssl(&self) -> Option<bool> {
        self.ssl_client.map(|_| true)
    }

    /// `SSL_CLIENT`: the `SSL` TLV's client flags byte.
    pub fn ssl_client(&self) -> Option<u8> {
        self.ssl_client
    }

    /// `SSL_VERIFY`: the `SSL` TLV's verify field (big-endian, from at most 4 bytes).
    pub fn ssl_verify(&self) -> Option<u32> {
        self.ssl_verify
    }

    /// `SSL_VERSION` (0x21).
    pub fn ssl_version(&self) -> Option<&[u8]> {
        self.get(Self::SSL_VERSION)
    }

    /// `SSL_CN` (0x22).
    pub fn ssl_cn(&self) -> Option<&[u8]> {
        self.get(Self::SSL_CN)
    }

    /// `SSL_CIPHER` (0x23).
    pub fn ssl_cipher(&self) -> Option<&[u8]> {
        self.get(Self::SSL_CIPHER)
    }

    /// `SSL_SIG_ALG` (0x24).
    pub fn ssl_sig_alg(&self) -> Option<&[u8]> {
        self.get(Self::SSL_SIG_ALG)
    }

    /// `SSL_KEY_ALG` (0x25).
    pub fn ssl_key_alg(&self) -> Option<&[u8]> {
        self.get(Self::SSL_KEY_ALG)
    }

    /// `NETNS` (0x30).
    pub fn netns(&self) -> Option<&[u8]> {
        self.get(Self::NETNS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- helpers -------------------------------------------------------------

    fn done(input: &[u8]) -> (ProxyData, usize) {
        match parse_proxy_header(input) {
            ProxyParse::Done { data, consumed } => (data, consumed),
            ProxyParse::Partial => panic!("Partial for {:?}", String::from_utf8_lossy(input)),
        }
    }

    fn data(input: &[u8]) -> ProxyData {
        let (data, consumed) = done(input);
        assert_eq!(consumed, input.len(), "consumed for {input:?}");
        data
    }

    fn error(input: &[u8]) -> String {
        let (data, _) = done(input);
        assert!(!data.is_valid(), "valid: {input:?}");
        data.error.unwrap_or_default()
    }

    fn ip(text: &str) -> Option<ProxyAddr> {
        Some(ProxyAddr::Ip(text.parse().unwrap()))
    }

    fn v2_raw(
        sig: &[u8],
        ver: u8,
        cmd: u8,
        fam: u8,
        proto: u8,
        len: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out = sig.to_vec();
        out.push(ver << 4 | cmd);
        out.push(fam << 4 | proto);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn v2(payload: &[u8], cmd: u8, fam: u8, proto: u8) -> Vec<u8> {
        let len = u16::try_from(payload.len()).unwrap();
        v2_raw(&PROXY_V2_SIGNATURE, 2, cmd, fam, proto, len, payload)
    }

    fn inet(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
        let octets = |text: &str| match text.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let mut out = octets(src);
        out.extend(octets(dst));
        out.extend(sport.to_be_bytes());
        out.extend(dport.to_be_bytes());
        out
    }

    fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend(u16::try_from(value.len()).unwrap().to_be_bytes());
        out.extend_from_slice(value);
        out
    }

    fn unix_addr(path: &[u8]) -> Vec<u8> {
        let mut out = path.to_vec();
        out.resize(UNIX_ADDR, 0);
        out
    }

    /// Fed one byte at a time, `input` gives `Partial` until the header is complete,
    /// then exactly what the whole input gives.
    fn assert_split(input: &[u8]) {
        let whole = parse_proxy_header(input);
        let end = match &whole {
            ProxyParse::Done { consumed, .. } => *consumed,
            ProxyParse::Partial => input.len() + 1,
        };
        for n in 0..=input.len() {
            let got = parse_proxy_header(&input[..n]);
            if n < end {
                assert_eq!(got, ProxyParse::Partial, "prefix {n} of {input:?}");
            } else {
                assert_eq!(got, whole, "prefix {n} of {input:?}");
            }
        }
    }

    // aiosmtpd's tests/test_proxyprotocol.py data.
    const TEST_TLV_DATA_1: &[u8] =
        b"\x03\x00\x04Z\xfd\xc6\xff\x02\x00\tAUTHORITI\x05\x00\tUNIKUE_ID\
        \x20\x00D\x01\x00\x00\x00\x00!\x00\x07TLSv1.3%\x00\x07RSA4096\
        $\x00\nRSA-SHA256#\x00\x1bECDHE-RSA-AES256-CBC-SHA384";
    const TEST_TLV_DATA_2: &[u8] =
        b"\x03\x00\x04Z\xfd\xc6\xff\x02\x00\tAUTHORIT2\x05\x00\tUNIQUEID2\
        \x20\x00D\x01\x00\x00\x00\x00!\x00\x07TLSv1.3%\x00\x07RSA4096\
        $\x00\nRSA-SHA256#\x00\x1bECDHE-RSA-AES256-CBC-SHA384\
        \x30\x00\x09something";
    const TEST_V2_DATA1_EXACT: &[u8] = b"\r\n\r\n\x00\r\nQUIT\n!\x11\x00r\x7f\x00\x00\x01\
        \x7f\x00\x00\x01\xb0Rb\xa5\x03\x00\x04T\xfd\xc6\xff\x02\x00\tAUTHORITY\x05\x00\tUNIQUE_ID\
        \x20\x00D\x01\x00\x00\x00\x00!\x00\x07TLSv1.2%\x00\x07RSA4096$\x00\nRSA-SHA256\
        #\x00\x1bECDHE-RSA-AES256-GCM-SHA384";
    const TEST_V2_XTRA_TAIL: &[u8] = b"Test data that is not part of PROXYv2.\n";
    const GOOD_V1_HANDSHAKE: &[u8] = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    const IP6_DEAD: &str = "2020:dead::0001";
    const IP6_CAFE: &str = "2021:cafe::0002";

    // ---- v1 ------------------------------------------------------------------

    #[test]
    fn v1_public_patterns() {
        let patterns = [
            "PROXY TCP4 222.222.22.222 111.11.11.111 33504 25",
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443",
            "PROXY TCP4 192.0.2.0 192.0.2.255 42300 443",
            "PROXY TCP6 2001:db8:: 2001:db8:ffff:ffff:ffff:ffff:ffff:ffff 42300 443",
            "PROXY TCP4 12.97.16.194 136.179.21.69 31646 80",
            "PROXY TCP4 192.0.2.1 198.51.100.1 15221 110",
        ];
        for line in patterns {
            let fields: Vec<&str> = line.split(' ').collect();
            let [_, _, src, dst, sport, dport] = fields[..] else {
                unreachable!()
            };
            let (sport, dport): (u16, u16) = (sport.parse().unwrap(), dport.parse().unwrap());
            let input = format!("{line}\r\n").into_bytes();
            let d = data(&input);
            assert!(d.is_valid(), "{d:?}");
            assert_eq!(d.error, None);
            assert_eq!(d.version, Some(1));
            assert_eq!(d.command, None);
            let family = if src.contains(':') {
                ProxyFamily::Inet6
            } else {
                ProxyFamily::Inet
            };
            assert_eq!(d.family, Some(family));
            assert_eq!(d.protocol, Some(ProxyProtocol::Stream));
            assert_eq!((d.src_addr, d.dst_addr), (ip(src), ip(dst)));
            assert_eq!((d.src_port, d.dst_port), (Some(sport), Some(dport)));
            assert_eq!(d.whole_raw, input);
            assert_eq!(d.rest, b"");
            assert_eq!(d.tlv_start, None);
        }
    }

    #[test]
    fn v1_valid_forms() {
        let d = data(GOOD_V1_HANDSHAKE);
        assert!(d.is_valid());
        assert_eq!((d.src_port, d.dst_port), (Some(65535), Some(65535)));
        assert_eq!(d.src_addr, ip("255.255.255.255"));

        // test_tcp4: ports 0 and 65535.
        let d = data(b"PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n");
        assert!(d.is_valid());
        assert_eq!((d.src_addr, d.dst_addr), (ip("1.2.3.4"), ip("5.6.7.8")));
        assert_eq!((d.src_port, d.dst_port), (Some(0), Some(65535)));

        // test_tcp6_shortened.
        let line = format!("PROXY TCP6 {IP6_DEAD} {IP6_CAFE} 8000 65535\r\n");
        let d = data(line.as_bytes());
        assert!(d.is_valid());
        assert_eq!(d.family, Some(ProxyFamily::Inet6));
        assert_eq!(
            (d.src_addr, d.dst_addr),
            (ip("2020:dead::1"), ip("2021:cafe::2"))
        );
        assert_eq!((d.src_port, d.dst_port), (Some(8000), Some(65535)));

        // test_tcp4_random / test_tcp6_random.
        let mut rng = XorShift(0x5eed_1234_abcd_0001);
        for _ in 0..200 {
            let src4 = format!(
                "{}.{}.{}.{}",
                rng.byte(),
                rng.byte(),
                rng.byte(),
                rng.byte()
            );
            let dst4 = format!(
                "{}.{}.{}.{}",
                rng.byte(),
                rng.byte(),
                rng.byte(),
                rng.byte()
            );
            let group = |rng: &mut XorShift| format!("{:04x}", rng.next() as u16);
            let src6 = (0..8)
                .map(|_| group(&mut rng))
                .collect::<Vec<_>>()
                .join(":");
            let dst6 = (0..8)
                .map(|_| group(&mut rng))
                .collect::<Vec<_>>()
                .join(":");
            let (sport, dport) = (rng.next() as u16, rng.next() as u16);
            for (fam, src, dst) in [("TCP4", &src4, &dst4), ("TCP6", &src6, &dst6)] {
                let line = format!("PROXY {fam} {src} {dst} {sport} {dport}\r\n");
                let d = data(line.as_bytes());
                assert!(d.is_valid(), "{line}");
                assert_eq!((d.src_addr, d.dst_addr), (ip(src), ip(dst)), "{line}");
                assert_eq!(
                    (d.src_port, d.dst_port),
                    (Some(sport), Some(dport)),
                    "{line}"
                );
            }
        }

        // The protocol token only needs to start with TCP and end in 4/6.
        let d = data(b"PROXY TCPX4 1.2.3.4 5.6.7.8 1 2\r\n");
        assert!(d.is_valid());
        assert_eq!(d.family, Some(ProxyFamily::Inet));
        let d = data(b"PROXY TCP46 ::1 ::2 1 2\r\n");
        assert!(d.is_valid());
        assert_eq!(d.family, Some(ProxyFamily::Inet6));

        // IPv6 spellings Python accepts, std's parser too.
        for addr in [
            "::",
            "::1",
            "1::",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7::",
            "ABCD::Ef",
        ] {
            let line = format!("PROXY TCP6 {addr} ::1 1 2\r\n");
            assert!(data(line.as_bytes()).is_valid(), "{line}");
        }
    }

    #[test]
    fn v1_python_int_ports() {
        // `^[1-9]\d{0,4}|0$` anchors only its first branch, then int() takes
        // underscores between digits and strips trailing whitespace.
        let cases: [(&[u8], Option<u16>); 11] = [
            (b"1_000", Some(1000)),
            (b"6_5_5_3_5", Some(65535)),
            (b"80\t", Some(80)),
            (b"80\x0b\x0c\r", Some(80)),
            (b"2\r", Some(2)),
            (b"80\xa0", Some(80)),
            (b"80\x85", Some(80)),
            (b"1__0", None),
            (b"10_", None),
            (b"80\x1c", None),
            (b"80\x00", None),
        ];
        for (port, want) in cases {
            let mut line = b"PROXY TCP4 1.2.3.4 5.6.7.8 ".to_vec();
            line.extend_from_slice(port);
            line.extend_from_slice(b" 25\r\n");
            let (d, _) = done(&line);
            match want {
                Some(p) => {
                    assert!(d.is_valid(), "{port:?}: {d:?}");
                    assert_eq!(d.src_port, Some(p));
                }
                None => assert_eq!(
                    d.error.as_deref(),
                    Some("PROXYv1 port malformed"),
                    "{port:?}"
                ),
            }
        }
        for port in ["00", "01", "-1", "+1", "0x10", "1.0", "", "a1"] {
            let line = format!("PROXY TCP4 1.2.3.4 5.6.7.8 {port} 25\r\n");
            assert_eq!(error(line.as_bytes()), "PROXYv1 port malformed", "{line}");
        }
        // Out of bounds, however long (saturating).
        for port in ["65536", "99999", "123456", "99999999999999999999999"] {
            let line = format!("PROXY TCP4 1.2.3.4 5.6.7.8 {port} 25\r\n");
            assert_eq!(
                error(line.as_bytes()),
                "PROXYv1 src port out of bounds",
                "{line}"
            );
        }
        // Each port is stored as soon as int() accepts it.
        let (d, _) = done(b"PROXY TCP4 1.2.3.4 5.6.7.8 80 x\r\n");
        assert_eq!((d.src_port, d.dst_port), (Some(80), None));
        let (d, _) = done(b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n");
        assert_eq!((d.src_port, d.dst_port), (None, Some(25)));
    }

    #[test]
    fn v1_unknown() {
        let d = data(b"PROXY UNKNOWN whatever\r\n");
        assert!(d.is_valid());
        assert_eq!(d.version, Some(1));
        assert_eq!(d.family, Some(ProxyFamily::Unspec));
        assert_eq!(d.protocol, Some(ProxyProtocol::Unspec));
        assert_eq!(d.rest, b" whatever");
        assert_eq!(d.src_addr, None);

        let d = data(b"PROXY UNKNOWN\r\n");
        assert!(d.is_valid());
        assert_eq!(d.rest, b"");

        let d = data(b"PROXY UNKNOWN  two  spaces \r\n");
        assert!(d.is_valid());
        assert_eq!(d.rest, b"  two  spaces ");
        // aiosmtpd reads `tlv` from `rest` even for v1; b" " (SSL, no value) would
        // raise IndexError there.
        assert_eq!(data(b"PROXY UNKNOWN \r\n").tlvs(), None);
    }

    #[test]
    fn v1_errors() {
        let too_long = format!("PROXY UNKNOWN {}\r\n", "*".repeat(100));
        let cases: [(&str, &[&str]); 14] = [
            (
                "PROXYv1 wrong signature",
                &[
                    "PROXY1 UNKNOWN whatevs\r\n",
                    "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
                ],
            ),
            (
                "PROXYv1 unrecognized family",
                &[
                    "PROXY TCP5 123.123.123.123 231.231.231.231 80 90\r\n",
                    "PROXY TCP 123.123.123.123 231.231.231.231 80 90\r\n",
                    "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
                ],
            ),
            (
                "PROXYv1 unrecognized protocol",
                &[
                    "PROXY UDP4 123.123.123.123 231.231.231.231 80 90\r\n",
                    "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
                ],
            ),
            ("PROXYv1 header too long", &[&too_long]),
            (
                "PROXYv1 malformed",
                &["PROXY UNKNOWN\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"],
            ),
            (
                "PROXY unrecognized signature",
                &[
                    "NOTPROX TCP4 1.2.3.4 5.6.7.8 65535 65535\r\n",
                    "PROXI TCP4 1.2.3.4 5.6.7.8 9 10\r\n",
                ],
            ),
            (
                "PROXYv1 address not IPv6",
                &[
                    "PROXY TCP6 1.2.3.4 5.6.7.8 65535 65535\r\n",
                    "PROXY TCP6 1.2.3.4 2021:cafe::0002 65535 65535\r\n",
                ],
            ),
            (
                "PROXYv1 address not IPv4",
                &["PROXY TCP4 2020:dead::0001 2021:cafe::0002 65535 65535\r\n"],
            ),
            (
                "PROXYv1 port malformed",
                &[
                    "PROXY TCP6 2020:dead::0001 2021:cafe::0002 02501 80\r\n",
                    "PROXY TCP6 2020:dead::0001 2021:cafe::0002  8080 80\r\n",
                    "PROXY TCP6 2020:dead::0001 2021:cafe::0002 80  0\r\n",
                    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\x00\r\n",
                ],
            ),
            (
                "PROXYv1 address malformed",
                &[
                    "PROXY TCP6  2020:dead::0001 2021:cafe::0002 1 80\r\n",
                    "PROXY TCP6 2020:dead::0001  2021:cafe::0002 1 80\r\n",
                    "PROXY TCP6 2020:dead::000g 2021:cafe::0002 1 80\r\n",
                    "PROXY TCP6 2020:dead::0001 2021:cafe::000h 1 80\r\n",
                    "PROXY TCP6 1.2.3.a 5.6.7.8 65535 65535\r\n",
                    // Python 3.11's ip_address(): no leading zeros in IPv4 octets, etc.
                    "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
                    "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
                    "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
                    "PROXY TCP6 1::2::3 ::1 1 2\r\n",
                    "PROXY TCP6 12345:: ::1 1 2\r\n",
                    "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
                    "PROXY TCP6 1::2:3:4:5:6:7:8 ::1 1 2\r\n",
                    "PROXY TCP6 ::1.02.3.4 ::1 1 2\r\n",
                    "PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n",
                    "PROXY TCP6 fe80::1%1 ::1 1 2\r\n",
                    "PROXY TCP6 [::1] ::1 1 2\r\n",
                    "PROXY TCP4 zzz\r\n",
                ],
            ),
            (
                "PROXYv1 unrecognized extraneous data",
                &[
                    "PROXY TCP6 2020:dead::0001 2021:cafe::0002 0 25 \r\n",
                    "PROXY TCP6 2020:dead::0001 2021:cafe::0002 0 25 text\r\n",
                ],
            ),
            (
                "PROXYv1 src port out of bounds",
                &["PROXY TCP4 1.2.3.4 5.6.7.8 65536 10200\r\n"],
            ),
            (
                "PROXYv1 dst port out of bounds",
                &["PROXY TCP6 2020:dead::0001 2021:cafe::0002 10000 65536\r\n"],
            ),
            // Missing fields: aiosmtpd's deque.popleft() raises IndexError.
            (
                "PROXY exception: pop from an empty deque",
                &[
                    "PROXY\r\n",
                    "PROXY TCP4\r\n",
                    "PROXY TCP4 1.2.3.4\r\n",
                    "PROXY TCP4 1.2.3.4 5.6.7.8\r\n",
                    "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
                ],
            ),
        ];
        for (want, lines) in cases {
            for line in lines {
                assert_eq!(error(line.as_bytes()), want, "{line:?}");
                assert_split(line.as_bytes());
            }
        }
    }

    #[test]
    fn v1_error_fields() {
        // What aiosmtpd has filled in when it stops.
        let (d, _) = done(b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n");
        assert_eq!(
            (d.version, d.family, d.protocol),
            (Some(1), Some(ProxyFamily::Inet), None)
        );
        let (d, _) = done(b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n");
        assert_eq!(d.protocol, Some(ProxyProtocol::Stream));
        assert_eq!(d.src_addr, None);
        let (d, _) = done(b"PROXY TCP4 1.2.3.4\r\n");
        assert_eq!(d, ProxyData::exception("pop from an empty deque"));
        assert_eq!(d.whole_raw, b"");
        let (d, consumed) = done(b"PROXY UNKNOWN\nEHLO x\r\n");
        assert_eq!(consumed, 14);
        assert_eq!(d.whole_raw, b"PROXY UNKNOWN\n");
    }

    #[test]
    fn v1_length_limit() {
        // 107 bytes with CRLF is fine, 108 is not.
        let mut ok = b"PROXY UNKNOWN ".to_vec();
        ok.resize(PROXY_V1_MAX_LEN - 2, b'*');
        ok.extend_from_slice(b"\r\n");
        assert_eq!(ok.len(), 107);
        assert!(data(&ok).is_valid());
        let mut long = ok.clone();
        long.insert(20, b'*');
        let (d, consumed) = done(&long);
        assert_eq!(d.error.as_deref(), Some("PROXYv1 header too long"));
        assert_eq!(consumed, 108);
        // Decided at the 108th byte when no LF came, without waiting for one.
        let stream = vec![b'x'; 108];
        let mut input = b"PROXY ".to_vec();
        input.extend_from_slice(&stream);
        assert_eq!(parse_proxy_header(&input[..107]), ProxyParse::Partial);
        let (d, consumed) = done(&input);
        assert_eq!(
            (d.error.as_deref(), consumed),
            (Some("PROXYv1 header too long"), 108)
        );
        assert_eq!(d.whole_raw.len(), 108);
        assert_eq!(d.version, Some(1));
        assert_split(&long);
        assert_split(&input);
    }

    // ---- v2 ------------------------------------------------------------------

    #[test]
    fn v2_with_tlvs_and_trailing_data() {
        let mut input = TEST_V2_DATA1_EXACT.to_vec();
        input.extend_from_slice(TEST_V2_XTRA_TAIL);
        let (d, consumed) = done(&input);
        assert_eq!(consumed, TEST_V2_DATA1_EXACT.len());
        assert!(d.is_valid());
        assert_eq!(d.version, Some(2));
        assert_eq!(d.command, Some(ProxyCommand::Proxy));
        assert_eq!(d.family, Some(ProxyFamily::Inet));
        assert_eq!(d.protocol, Some(ProxyProtocol::Stream));
        assert_eq!(
            (d.src_addr.clone(), d.dst_addr.clone()),
            (ip("127.0.0.1"), ip("127.0.0.1"))
        );
        assert_eq!((d.src_port, d.dst_port), (Some(45138), Some(25253)));
        assert_eq!(d.whole_raw, TEST_V2_DATA1_EXACT);
        assert_eq!(d.tlv_start, Some(28));
        assert_eq!(d.rest, &TEST_V2_DATA1_EXACT[28..]);
        let t = d.tlvs().unwrap();
        assert_eq!(t.authority(), Some(&b"AUTHORITY"[..]));
        assert_eq!(t.crc32c(), Some(&b"T\xfd\xc6\xff"[..]));
        assert_eq!(t.unique_id(), Some(&b"UNIQUE_ID"[..]));
        assert_eq!(t.ssl(), Some(true));
        assert_eq!((t.ssl_client(), t.ssl_verify()), (Some(1), Some(0)));
        assert_eq!(t.ssl_version(), Some(&b"TLSv1.2"[..]));
        assert_eq!(t.ssl_cipher(), Some(&b"ECDHE-RSA-AES256-GCM-SHA384"[..]));
        assert_eq!(t.ssl_sig_alg(), Some(&b"RSA-SHA256"[..]));
        assert_eq!(t.ssl_key_alg(), Some(&b"RSA4096"[..]));
        assert_eq!(
            (t.alpn(), t.ssl_cn(), t.netns(), t.noop()),
            (None, None, None, None)
        );
        // aiosmtpd's tlv_loc, quirk for sub-TLVs included; CRC32C sits at
        // tlv_start + 3 in whole_raw.
        let locs: Vec<_> = t.iter().map(|(k, _)| (k, t.location(k).unwrap())).collect();
        assert_eq!(
            locs,
            [
                (0x03, 0),
                (0x02, 7),
                (0x05, 19),
                (0x20, 31),
                (0x21, 31),
                (0x25, 41),
                (0x24, 51),
                (0x23, 64)
            ]
        );
        let crc_at = d.tlv_start.unwrap() + t.location(ProxyTlvs::CRC32C).unwrap() + 3;
        assert_eq!(&d.whole_raw[crc_at..crc_at + 4], b"T\xfd\xc6\xff");
        assert_split(&input);
    }

    #[test]
    fn v2_unspec_and_local() {
        for payload in [&b""[..], b"asdfghjkl"] {
            let input = v2(payload, 0, 0, 0);
            let d = data(&input);
            assert!(d.is_valid());
            assert_eq!((d.version, d.command), (Some(2), Some(ProxyCommand::Local)));
            assert_eq!(
                (d.family, d.protocol),
                (Some(ProxyFamily::Unspec), Some(ProxyProtocol::Unspec))
            );
            assert_eq!(d.rest, payload);
            assert_eq!(d.whole_raw, input);
            assert_eq!(d.tlv_start, None);
        }
        // test_fallback_UNSPEC: no address block for these combinations.
        for (fam, proto) in [(0, 1), (0, 2), (1, 0), (2, 0), (3, 0)] {
            let input = v2(b"whatever", 0, fam, proto);
            let d = data(&input);
            assert!(d.is_valid());
            assert_eq!(d.family.map(ProxyFamily::as_u8), Some(fam));
            assert_eq!(d.protocol.map(ProxyProtocol::as_u8), Some(proto));
            assert_eq!(
                (d.src_addr, d.dst_addr, d.src_port, d.dst_port),
                (None, None, None, None)
            );
            assert_eq!(d.rest, b"whatever");
        }
    }

    #[test]
    fn v2_address_blocks() {
        for proto in [1, 2] {
            for ttlv in [&b""[..], b"fake_tlv"] {
                for cmd in [0, 1] {
                    // INET
                    let mut payload = inet("10.212.4.33", "10.11.12.13", 0, 65535);
                    payload.extend_from_slice(ttlv);
                    let input = v2(&payload, cmd, 1, proto);
                    let d = data(&input);
                    assert!(d.is_valid());
                    assert_eq!(d.command.map(ProxyCommand::as_u8), Some(cmd));
                    assert_eq!(d.family, Some(ProxyFamily::Inet));
                    assert_eq!(d.protocol.map(ProxyProtocol::as_u8), Some(proto));
                    assert_eq!(
                        (d.src_addr.clone(), d.dst_addr.clone()),
                        (ip("10.212.4.33"), ip("10.11.12.13"))
                    );
                    assert_eq!((d.src_port, d.dst_port), (Some(0), Some(65535)));
                    assert_eq!(d.rest, ttlv);
                    assert_eq!(d.tlv_start, (!ttlv.is_empty()).then_some(28));
                    assert_eq!(d.tlvs(), None);
                    assert_eq!(d.whole_raw, input);

                    // INET6
                    let mut payload = inet(IP6_DEAD, "2021:cafe::0022", 65534, 8080);
                    payload.extend_from_slice(ttlv);
                    let d = data(&v2(&payload, cmd, 2, proto));
                    assert!(d.is_valid());
                    assert_eq!(d.family, Some(ProxyFamily::Inet6));
                    assert_eq!(
                        (d.src_addr.clone(), d.dst_addr.clone()),
                        (ip(IP6_DEAD), ip("2021:cafe::22"))
                    );
                    assert_eq!((d.src_port, d.dst_port), (Some(65534), Some(8080)));
                    assert_eq!(d.rest, ttlv);
                    assert_eq!(d.tlv_start, (!ttlv.is_empty()).then_some(52));
                    assert_eq!(d.tlvs(), None);

                    // UNIX
                    let (src, dst) = (unix_addr(b"/proc/source"), unix_addr(b"/proc/dest"));
                    let mut payload = src.clone();
                    payload.extend_from_slice(&dst);
                    payload.extend_from_slice(ttlv);
                    let d = data(&v2(&payload, cmd, 3, proto));
                    assert!(d.is_valid());
                    assert_eq!(d.family, Some(ProxyFamily::Unix));
                    assert_eq!(d.src_addr, Some(ProxyAddr::Unix(src)));
                    assert_eq!(d.dst_addr, Some(ProxyAddr::Unix(dst)));
                    assert_eq!((d.src_port, d.dst_port), (None, None));
                    assert_eq!(d.rest, ttlv);
                    assert_eq!(d.tlv_start, (!ttlv.is_empty()).then_some(232));
                    assert_eq!(d.tlvs(), None);
                }
            }
        }
    }

    #[test]
    fn v2_errors() {
        let cases: Vec<(Vec<u8>, &str, usize)> = vec![
            (
                v2_raw(b"\r\n\r\n\x00\r\nQUIP\n", 2, 0, 0, 0, 0, b""),
                "PROXYv2 wrong signature",
                12,
            ),
            (
                v2_raw(&PROXY_V2_SIGNATURE, 3, 0, 0, 0, 0, b""),
                "PROXYv2 illegal version",
                16,
            ),
            (
                v2_raw(&PROXY_V2_SIGNATURE, 1, 1, 1, 1, 0, b""),
                "PROXYv2 illegal version",
                16,
            ),
            (
                v2_raw(&PROXY_V2_SIGNATURE, 2, 2, 0, 0, 0, b""),
                "PROXYv2 unsupported command",
                16,
            ),
            (
                v2_raw(&PROXY_V2_SIGNATURE, 2, 0, 4, 0, 0, b""),
                "PROXYv2 unsupported family",
                16,
            ),
            (
                v2_raw(&PROXY_V2_SIGNATURE, 2, 0, 0, 3, 0, b""),
                "PROXYv2 unsupported protocol",
                16,
            ),
            // Decided without waiting for the declared tail.
            (
                v2_raw(&PROXY_V2_SIGNATURE, 2, 0, 0, 3, 500, b""),
                "PROXYv2 unsupported protocol",
                16,
            ),
            // test_wrong_proto_6shouldbe4.
            (
                v2(&inet("192.168.0.11", "172.16.0.22", 65534, 8080), 0, 2, 1),
                "PROXYv2 truncated address",
                28,
            ),
            (v2(&[0; 215], 1, 3, 2), "PROXYv2 truncated address", 231),
            (v2(b"", 1, 1, 1), "PROXYv2 truncated address", 16),
            (
                b"\r\n\r\n\x00HELLO\r\n".to_vec(),
                "PROXYv2 wrong signature",
                12,
            ),
        ];
        for (input, want, want_consumed) in &cases {
            let (d, consumed) = done(input);
            assert_eq!(d.error.as_deref(), Some(*want), "{input:?}");
            assert!(!d.is_valid());
            assert_eq!(consumed, *want_consumed, "{input:?}");
            assert_eq!(d.version, Some(2));
            assert_split(input);
        }
        // aiosmtpd sets whole_raw only once the tail is read.
        let (d, _) = done(&v2_raw(&PROXY_V2_SIGNATURE, 2, 2, 0, 0, 0, b""));
        assert_eq!(d.whole_raw, b"");
        assert_eq!(d.command, None);
        let (d, _) = done(&v2_raw(&PROXY_V2_SIGNATURE, 2, 1, 1, 5, 0, b""));
        assert_eq!(
            (d.command, d.family, d.protocol),
            (Some(ProxyCommand::Proxy), Some(ProxyFamily::Inet), None)
        );
        let input = v2(&inet("192.168.0.11", "172.16.0.22", 1, 2), 0, 2, 1);
        let (d, _) = done(&input);
        assert_eq!(d.whole_raw, input);
        assert_eq!((d.family, d.src_addr), (Some(ProxyFamily::Inet6), None));
    }

    #[test]
    fn v2_waits_for_declared_length() {
        let mut input = v2(&inet("10.0.0.1", "10.0.0.2", 1, 2), 1, 1, 1);
        input[15] = 100; // declares 100 bytes, carries 12
        assert_eq!(parse_proxy_header(&input), ProxyParse::Partial);
        input.resize(16 + 100, b'x');
        let (d, consumed) = done(&input);
        assert_eq!(consumed, 116);
        assert!(d.is_valid());
        assert_eq!(d.rest, vec![b'x'; 88]);
    }

    // ---- TLVs ----------------------------------------------------------------

    #[test]
    fn tlv_data_1_and_2() {
        let t = ProxyTlvs::from_raw(TEST_TLV_DATA_1).unwrap();
        assert_eq!(
            (t.alpn(), t.noop(), t.ssl_cn(), t.netns()),
            (None, None, None, None)
        );
        assert_eq!(t.authority(), Some(&b"AUTHORITI"[..]));
        assert_eq!(t.crc32c(), Some(&b"Z\xfd\xc6\xff"[..]));
        assert_eq!(t.unique_id(), Some(&b"UNIKUE_ID"[..]));
        assert_eq!(t.ssl(), Some(true));
        assert_eq!(t.ssl_version(), Some(&b"TLSv1.3"[..]));
        assert_eq!(t.ssl_cipher(), Some(&b"ECDHE-RSA-AES256-CBC-SHA384"[..]));
        assert_eq!(t.ssl_sig_alg(), Some(&b"RSA-SHA256"[..]));
        assert_eq!(t.ssl_key_alg(), Some(&b"RSA4096"[..]));
        // Through ProxyData::tlvs, as test_tlv_1.
        let d = ProxyData {
            rest: TEST_TLV_DATA_1.to_vec(),
            ..ProxyData::new(Some(2))
        };
        assert_eq!(d.tlvs(), Some(t));

        let t = ProxyTlvs::from_raw(TEST_TLV_DATA_2).unwrap();
        assert_eq!(t.authority(), Some(&b"AUTHORIT2"[..]));
        assert_eq!(t.unique_id(), Some(&b"UNIQUEID2"[..]));
        assert_eq!(t.netns(), Some(&b"something"[..]));
        assert_eq!(t.get(ProxyTlvs::NETNS), Some(&b"something"[..]));
        assert_eq!(t.ssl(), Some(true));
        assert_eq!(t.alpn(), None);
        assert_eq!(t.len(), 9);
        assert!(!t.is_empty());
    }

    #[test]
    fn tlv_edge_cases() {
        // test_tlv_none / test_tlv_fake.
        assert_eq!(ProxyData::new(Some(2)).tlvs(), None);
        let fake = ProxyData {
            rest: b"fake_tlv".to_vec(),
            ..ProxyData::new(Some(2))
        };
        assert_eq!(fake.tlvs(), None);
        // test_parse_partial's data is malformed for from_raw (partial_ok=False).
        assert_eq!(
            ProxyTlvs::from_raw(b"\x03\x00\x04Z\xfd\xc6\xff\x02\x00\tAUTHORITI\x05\x00\tUNIKUE_I"),
            None
        );
        // test_unknowntype_notstrict: kept by number ("xFF").
        let t = ProxyTlvs::from_raw(b"\xFF\x00\x04yeah").unwrap();
        assert_eq!(t.get(0xFF), Some(&b"yeah"[..]));
        assert_eq!(ProxyTlvs::type_name(0xFF), None);
        // test_malformed_ssl_*: a sub-TLV running past the SSL value.
        assert_eq!(
            ProxyTlvs::from_raw(
                b"\x20\x00\x17\x01\x02\x03\x04\x05\x21\x00\x07version\x22\x00\x09trunc"
            ),
            None
        );
        assert_eq!(
            ProxyTlvs::from_raw(
                b"\x20\x00\x0D\x01\x02\x03\x04\x05\x21\x00\x07version\x22\x00\x09trunc"
            ),
            None
        );
        // test_eq: dict equality ignores order.
        let a = ProxyTlvs::from_raw(b"\x03\x00\x04Z\xfd\xc6\xff\x02\x00\tAUTHORITI").unwrap();
        let b = ProxyTlvs::from_raw(b"\x02\x00\tAUTHORITI\x03\x00\x04Z\xfd\xc6\xff").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, ProxyTlvs::from_raw(b"\x02\x00\tAUTHORITI").unwrap());
        // Python slicing: a final 1- or 2-byte fragment is a TLV with an empty value.
        let t = ProxyTlvs::from_raw(b"\x02").unwrap();
        assert_eq!(t.authority(), Some(&b""[..]));
        let t = ProxyTlvs::from_raw(b"\x05\x00\x01X\x02\x00").unwrap();
        assert_eq!(
            (t.unique_id(), t.authority()),
            (Some(&b"X"[..]), Some(&b""[..]))
        );
        assert_eq!(ProxyTlvs::from_raw(b"\x02\x05"), None);
        // SSL: a value without the client byte makes aiosmtpd raise IndexError.
        assert_eq!(ProxyTlvs::from_raw(b"\x20\x00\x00"), None);
        // A short verify field, duplicates (last wins, first position kept), nesting.
        let mut raw = tlv(0x02, b"first");
        raw.extend(tlv(0x20, b"\x07\x01\x02"));
        raw.extend(tlv(0x02, b"second"));
        let t = ProxyTlvs::from_raw(&raw).unwrap();
        assert_eq!((t.ssl_client(), t.ssl_verify()), (Some(7), Some(0x0102)));
        assert_eq!(t.authority(), Some(&b"second"[..]));
        assert_eq!(t.iter().map(|(k, _)| k).collect::<Vec<_>>(), [0x02, 0x20]);
        let mut inner = b"\x02\x00\x00\x00\x03".to_vec();
        inner.extend(tlv(0x22, b"cn"));
        let mut outer = b"\x01\x00\x00\x00\x00".to_vec();
        outer.extend(tlv(0x20, &inner));
        let t = ProxyTlvs::from_raw(&tlv(0x20, &outer)).unwrap();
        assert_eq!(
            (t.ssl_client(), t.ssl_verify(), t.ssl_cn()),
            (Some(2), Some(3), Some(&b"cn"[..]))
        );
        // Deep nesting is walked without recursion.
        let mut deep = tlv(0x22, b"x");
        for _ in 0..5000 {
            let mut value = b"\x01\x00\x00\x00\x00".to_vec();
            value.extend(deep);
            deep = tlv(0x20, &value);
            if deep.len() > 60000 {
                break;
            }
        }
        assert_eq!(
            ProxyTlvs::from_raw(&deep).unwrap().ssl_cn(),
            Some(&b"x"[..])
        );
    }

    #[test]
    fn tlv_names() {
        let names = [
            (0x01, "ALPN"),
            (0x02, "AUTHORITY"),
            (0x03, "CRC32C"),
            (0x04, "NOOP"),
            (0x05, "UNIQUE_ID"),
            (0x20, "SSL"),
            (0x21, "SSL_VERSION"),
            (0x22, "SSL_CN"),
            (0x23, "SSL_CIPHER"),
            (0x24, "SSL_SIG_ALG"),
            (0x25, "SSL_KEY_ALG"),
            (0x30, "NETNS"),
        ];
        for (num, name) in names {
            assert_eq!(ProxyTlvs::type_name(num), Some(name));
        }
    }

    // ---- start of stream, EOF ------------------------------------------------

    #[test]
    fn needs_five_bytes() {
        for input in [&b""[..], b"P", b"HELO", b"\r\n\r\n"] {
            assert_eq!(parse_proxy_header(input), ProxyParse::Partial);
        }
        assert_eq!(
            error(b"HELO example.org\r\n"),
            "PROXY unrecognized signature"
        );
        let (d, consumed) = done(b"HELO ");
        assert_eq!((d.version, consumed), (None, 5));
        assert_eq!(d.family, None);
    }

    // ---- the recorded aiosmtpd dialogues (conformance group `proxy`) ---------

    enum Want {
        Valid(usize),
        Invalid(&'static str),
        Partial,
    }

    fn golden() -> Vec<(&'static str, Vec<u8>, Want)> {
        use Want::*;
        let v1_tcp4 = b"PROXY TCP4 192.0.2.1 198.51.100.1 15221 25\r\n".to_vec();
        let v2_tcp4 = v2(&inet("192.0.2.10", "198.51.100.20", 45138, 25), 1, 1, 1);
        let mut tlvs = inet("127.0.0.1", "127.0.0.1", 45138, 25253);
        tlvs.extend(tlv(0x02, b"mail.example.com"));
        tlvs.extend(tlv(0x05, b"UNIQUE_ID_1"));
        let mut ssl = b"\x01\x00\x00\x00\x00".to_vec();
        ssl.extend(tlv(0x21, b"TLSv1.3"));
        ssl.extend(tlv(0x23, b"TLS_AES_256_GCM_SHA384"));
        tlvs.extend(tlv(0x20, &ssl));
        let mut unix = unix_addr(b"/run/source");
        unix.extend(unix_addr(b"/run/dest"));
        let with_smtp = |header: &[u8]| [header, b"EHLO example.com\r\n"].concat();
        let mut too_long = b"PROXY UNKNOWN ".to_vec();
        too_long.extend([b'*'; 100]);
        too_long.extend(b"\r\n");
        let mut length_exceeds = v2(&inet("10.0.0.1", "10.0.0.2", 1, 2), 1, 1, 1);
        length_exceeds[15] = 100;
        vec![
            ("proxy_v1_tcp4", v1_tcp4.clone(), Valid(v1_tcp4.len())),
            (
                "proxy_v1_tcp6",
                b"PROXY TCP6 2001:db8::1 2001:db8:ffff::2 42300 25\r\n".to_vec(),
                Valid(50),
            ),
            (
                "proxy_v1_unknown",
                b"PROXY UNKNOWN whatever\r\n".to_vec(),
                Valid(24),
            ),
            (
                "proxy_v1_unknown_short",
                b"PROXY UNKNOWN\r\n".to_vec(),
                Valid(15),
            ),
            (
                "proxy_v1_max_values",
                GOOD_V1_HANDSHAKE.to_vec(),
                Valid(GOOD_V1_HANDSHAKE.len()),
            ),
            (
                "proxy_v1_split_writes",
                v1_tcp4.clone(),
                Valid(v1_tcp4.len()),
            ),
            (
                "proxy_v1_with_smtp_same_write",
                with_smtp(&v1_tcp4),
                Valid(v1_tcp4.len()),
            ),
            (
                "proxy_v1_bad_signature",
                b"PROXY1 UNKNOWN whatevs\r\n".to_vec(),
                Invalid("PROXYv1 wrong signature"),
            ),
            (
                "proxy_v1_bad_family",
                b"PROXY TCP5 123.123.123.123 231.231.231.231 80 90\r\n".to_vec(),
                Invalid("PROXYv1 unrecognized family"),
            ),
            (
                "proxy_v1_udp",
                b"PROXY UDP4 123.123.123.123 231.231.231.231 80 90\r\n".to_vec(),
                Invalid("PROXYv1 unrecognized protocol"),
            ),
            (
                "proxy_v1_too_long",
                too_long,
                Invalid("PROXYv1 header too long"),
            ),
            (
                "proxy_v1_lf_only",
                b"PROXY UNKNOWN\n".to_vec(),
                Invalid("PROXYv1 malformed"),
            ),
            (
                "proxy_v1_v4_in_tcp6",
                b"PROXY TCP6 1.2.3.4 5.6.7.8 65535 65535\r\n".to_vec(),
                Invalid("PROXYv1 address not IPv6"),
            ),
            (
                "proxy_v1_v6_in_tcp4",
                b"PROXY TCP4 2020:dead::1 2021:cafe::2 65535 65535\r\n".to_vec(),
                Invalid("PROXYv1 address not IPv4"),
            ),
            (
                "proxy_v1_port_out_of_range",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 10200\r\n".to_vec(),
                Invalid("PROXYv1 src port out of bounds"),
            ),
            (
                "proxy_v1_port_leading_zero",
                b"PROXY TCP6 2020:dead::1 2021:cafe::2 02501 25\r\n".to_vec(),
                Invalid("PROXYv1 port malformed"),
            ),
            (
                "proxy_v1_bad_address",
                b"PROXY TCP4 1.2.3.a 5.6.7.8 65535 65535\r\n".to_vec(),
                Invalid("PROXYv1 address malformed"),
            ),
            (
                "proxy_v1_extra_field",
                b"PROXY TCP6 2020:dead::1 2021:cafe::2 0 25 text\r\n".to_vec(),
                Invalid("PROXYv1 unrecognized extraneous data"),
            ),
            (
                "proxy_v1_truncated_timeout",
                b"PROXY TCP4 1.2.3.4".to_vec(),
                Partial,
            ),
            (
                "proxy_missing_smtp_first",
                b"HELO example.org\r\n".to_vec(),
                Invalid("PROXY unrecognized signature"),
            ),
            ("proxy_missing_silent_client", Vec::new(), Partial),
            ("proxy_v2_tcp4", v2_tcp4.clone(), Valid(28)),
            ("proxy_v2_tcp4_tlvs", v2(&tlvs, 1, 1, 1), Valid(104)),
            (
                "proxy_v2_tcp6",
                v2(&inet("2020:dead::1", "2021:cafe::22", 65534, 8080), 1, 2, 1),
                Valid(52),
            ),
            ("proxy_v2_unix", v2(&unix, 1, 3, 1), Valid(232)),
            ("proxy_v2_local_empty", v2(b"", 0, 0, 0), Valid(16)),
            (
                "proxy_v2_local_payload",
                v2(b"asdfghjkl", 0, 0, 0),
                Valid(25),
            ),
            (
                "proxy_v2_udp4",
                v2(&inet("10.0.0.1", "10.0.0.2", 0, 65535), 1, 1, 2),
                Valid(28),
            ),
            ("proxy_v2_split_writes", v2_tcp4.clone(), Valid(28)),
            (
                "proxy_v2_with_smtp_same_write",
                with_smtp(&v2_tcp4),
                Valid(28),
            ),
            (
                "proxy_v2_bad_signature",
                v2_raw(b"\r\n\r\n\x00\r\nQUIP\n", 2, 1, 1, 1, 0, b""),
                Invalid("PROXYv2 wrong signature"),
            ),
            (
                "proxy_v2_bad_version",
                v2_raw(&PROXY_V2_SIGNATURE, 3, 0, 0, 0, 0, b""),
                Invalid("PROXYv2 illegal version"),
            ),
            (
                "proxy_v2_bad_command",
                v2(b"", 2, 0, 0),
                Invalid("PROXYv2 unsupported command"),
            ),
            (
                "proxy_v2_bad_family",
                v2(b"", 0, 4, 0),
                Invalid("PROXYv2 unsupported family"),
            ),
            (
                "proxy_v2_bad_protocol",
                v2(b"", 0, 0, 3),
                Invalid("PROXYv2 unsupported protocol"),
            ),
            (
                "proxy_v2_truncated_address",
                v2(&inet("192.168.0.11", "172.16.0.22", 65534, 8080), 1, 2, 1),
                Invalid("PROXYv2 truncated address"),
            ),
            (
                "proxy_v2_truncated_timeout",
                v2_tcp4[..20].to_vec(),
                Partial,
            ),
            ("proxy_v2_length_exceeds_data", length_exceeds, Partial),
        ]
    }

    #[test]
    fn golden_dialogue_headers() {
        let all = golden();
        assert_eq!(all.len(), 38);
        for (name, input, want) in &all {
            match want {
                Want::Valid(len) => {
                    let (d, consumed) = done(input);
                    assert!(d.is_valid(), "{name}: {d:?}");
                    assert_eq!(consumed, *len, "{name}");
                    assert_eq!(d.whole_raw, &input[..*len], "{name}");
                }
                Want::Invalid(msg) => assert_eq!(error(input), *msg, "{name}"),
                Want::Partial => {
                    assert_eq!(parse_proxy_header(input), ProxyParse::Partial, "{name}")
                }
            }
            assert_split(input);
        }
        let find = |wanted: &str| {
            all.iter()
                .find(|(n, _, _)| *n == wanted)
                .map(|(_, i, _)| data_prefix(i))
                .unwrap()
        };
        let d = find("proxy_v1_tcp4");
        assert_eq!(
            (d.src_addr, d.dst_addr),
            (ip("192.0.2.1"), ip("198.51.100.1"))
        );
        assert_eq!((d.src_port, d.dst_port), (Some(15221), Some(25)));
        let d = find("proxy_v1_tcp6");
        assert_eq!(
            (d.src_addr, d.dst_addr),
            (ip("2001:db8::1"), ip("2001:db8:ffff::2"))
        );
        assert_eq!((d.src_port, d.dst_port), (Some(42300), Some(25)));
        let d = find("proxy_v2_tcp4");
        assert_eq!(
            (d.src_addr, d.dst_addr),
            (ip("192.0.2.10"), ip("198.51.100.20"))
        );
        assert_eq!((d.src_port, d.dst_port), (Some(45138), Some(25)));
        let d = find("proxy_v2_tcp6");
        assert_eq!(
            (d.src_addr, d.dst_addr),
            (ip("2020:dead::1"), ip("2021:cafe::22"))
        );
        assert_eq!((d.src_port, d.dst_port), (Some(65534), Some(8080)));
        let d = find("proxy_v2_udp4");
        assert_eq!(d.protocol, Some(ProxyProtocol::Dgram));
        assert_eq!((d.src_port, d.dst_port), (Some(0), Some(65535)));
        let d = find("proxy_v2_unix");
        assert_eq!(d.src_addr, Some(ProxyAddr::Unix(unix_addr(b"/run/source"))));
        assert_eq!(d.dst_addr.as_ref().and_then(ProxyAddr::ip), None);
        let t = find("proxy_v2_tcp4_tlvs").tlvs().unwrap();
        assert_eq!(t.authority(), Some(&b"mail.example.com"[..]));
        assert_eq!(t.unique_id(), Some(&b"UNIQUE_ID_1"[..]));
        assert_eq!(t.ssl_version(), Some(&b"TLSv1.3"[..]));
        assert_eq!(t.ssl_cipher(), Some(&b"TLS_AES_256_GCM_SHA384"[..]));
        assert_eq!(
            (t.ssl(), t.ssl_client(), t.ssl_verify()),
            (Some(true), Some(1), Some(0))
        );
        assert_eq!(find("proxy_v2_local_payload").rest, b"asdfghjkl");
        assert_eq!(find("proxy_v1_unknown").rest, b" whatever");
    }

    fn data_prefix(input: &[u8]) -> ProxyData {
        done(input).0
    }

    // ---- robustness ----------------------------------------------------------

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn byte(&mut self) -> u8 {
            self.next() as u8
        }
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let alphabet = b" TCP46UDPUNKOW0123456789abcdefABCDEF.:_\r\n\t";
        for round in 0..6000 {
            let mut input = match rng.below(4) {
                0 => b"PROXY".to_vec(),
                1 | 2 => PROXY_V2_SIGNATURE[..rng.below(13)].to_vec(),
                _ => Vec::new(),
            };
            if input.len() == PROXY_V2_SIGNATURE.len() && rng.below(4) != 0 {
                // A plausible v2 header: version, family/protocol, short length.
                input.push(0x20 | rng.below(3) as u8);
                input.push((rng.below(5) as u8) << 4 | rng.below(4) as u8);
                input.extend((rng.below(260) as u16).to_be_bytes());
            }
            let extra = rng.below(if round % 10 == 0 { 400 } else { 120 });
            for _ in 0..extra {
                let b = if input.starts_with(b"PROXY") && rng.below(4) != 0 {
                    alphabet[rng.below(alphabet.len())]
                } else {
                    rng.byte()
                };
                input.push(b);
            }
            let whole = parse_proxy_header(&input);
            if let ProxyParse::Done { data, consumed } = &whole {
                assert!(*consumed <= input.len());
                assert_eq!(parse_proxy_header(&input[..*consumed]), whole);
                if *consumed > 0 {
                    assert_eq!(
                        parse_proxy_header(&input[..consumed - 1]),
                        ProxyParse::Partial
                    );
                }
                if data.is_valid() {
                    assert!(data.error.is_none() && data.version.is_some());
                }
                let _ = data.tlvs();
            }
            let _ = ProxyTlvs::from_raw(&input);
            if let Some(rest) = input.get(16..) {
                let _ = ProxyTlvs::from_raw(rest);
            }
        }
    }
}
