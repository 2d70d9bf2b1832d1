//! `proxy`: [`parse_proxy_header`] never panics, consumes at most what it was
//! given, and gives the same answer fed byte by byte (every prefix up to the
//! first `Done` is `Partial`, and that `Done` is the whole input's) as fed whole.
//! The TLV accessors and the `ProxyData` fields are checked for consistency too.
//!
//! Input layout: a selector byte; selectors 0..=2 prepend a v1 signature, a v2
//! signature or a v2 signature with a valid version/family byte pair so that
//! mutations reach deep into each parser; the rest is the header.

use smtpkit::proto::{
    PROXY_V1_MAX_LEN, PROXY_V2_SIGNATURE, ProxyData, ProxyParse, parse_proxy_header,
};

/// Prefixes up to this length are all parsed; longer inputs at a sample.
const EVERY_PREFIX_MAX: usize = 300;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut input = Vec::with_capacity(rest.len() + 16);
    match selector % 8 {
        0 => input.extend_from_slice(b"PROXY "),
        1 => input.extend_from_slice(&PROXY_V2_SIGNATURE),
        2 => {
            input.extend_from_slice(&PROXY_V2_SIGNATURE);
            input.push(0x20 | (selector >> 7));
            input.push([0x11, 0x21, 0x31, 0x00, 0x12, 0x22][usize::from(selector >> 3) % 6]);
        }
        _ => {}
    }
    input.extend_from_slice(rest);
    check(&input);
}

/// The checks on one header.
pub fn check(input: &[u8]) {
    let whole = parse_proxy_header(input);
    match &whole {
        ProxyParse::Partial => {}
        ProxyParse::Done { data, consumed } => {
            assert!(*consumed > 0, "Done consumed nothing");
            assert!(
                *consumed <= input.len(),
                "consumed {consumed} of {}",
                input.len()
            );
            check_data(data, &input[..*consumed]);
        }
    }
    // Byte by byte: the first Done is the whole input's answer.
    let n = input.len();
    let mut prefixes: Vec<usize> = if n <= EVERY_PREFIX_MAX {
        (0..=n).collect()
    } else {
        let mut v: Vec<usize> = (0..=EVERY_PREFIX_MAX).collect();
        v.extend((EVERY_PREFIX_MAX..=n).step_by(n / 64 + 1));
        v.push(n);
        if let ProxyParse::Done { consumed, .. } = &whole {
            v.extend([consumed.saturating_sub(1), *consumed, consumed + 1]);
        }
        v.retain(|&k| k <= n);
        v.sort_unstable();
        v.dedup();
        v
    };
    prefixes.dedup();
    for k in prefixes {
        let part = parse_proxy_header(&input[..k]);
        match (&whole, &part) {
            (_, ProxyParse::Partial) => {
                if let ProxyParse::Done { consumed, .. } = &whole {
                    assert!(
                        k < *consumed,
                        "Partial for {k} bytes though the header ends at {consumed}"
                    );
                }
            }
            (ProxyParse::Partial, ProxyParse::Done { consumed, .. }) => {
                panic!("Done after {k} bytes ({consumed} consumed) but Partial for all {n}")
            }
            (ProxyParse::Done { .. }, ProxyParse::Done { .. }) => {
                assert_eq!(&part, &whole, "a prefix of {k} bytes parses differently");
            }
        }
    }
}

fn check_data(data: &ProxyData, header: &[u8]) {
    if data.is_valid() {
        assert!(data.error.is_none() && data.version.is_some() && data.protocol.is_some());
    }
    if data.error.is_none() {
        assert!(data.version.is_some(), "no error and no version");
    }
    assert!(
        data.whole_raw.is_empty() || data.whole_raw == header,
        "whole_raw is not the header: {:?} vs {:?}",
        data.whole_raw,
        header
    );
    if data.version == Some(1) {
        assert!(
            header.len() <= PROXY_V1_MAX_LEN + 1,
            "an over-long v1 header"
        );
    }
    if let Some(start) = data.tlv_start {
        assert_eq!(
            data.whole_raw.get(start..),
            Some(&data.rest[..]),
            "tlv_start does not point at rest"
        );
        assert!(!data.rest.is_empty());
    }
    if let Some(tlvs) = data.tlvs() {
        assert!(!data.rest.is_empty());
        let mut count = 0;
        for (kind, value) in tlvs.iter() {
            count += 1;
            assert_eq!(tlvs.get(kind), Some(value), "get() disagrees with iter()");
            assert!(value.len() <= data.rest.len());
        }
        assert_eq!(count, tlvs.len());
        assert_eq!(tlvs.is_empty(), count == 0);
        // Accessors never panic.
        let _ = (
            tlvs.alpn(),
            tlvs.authority(),
            tlvs.crc32c(),
            tlvs.noop(),
            tlvs.unique_id(),
            tlvs.ssl(),
            tlvs.ssl_client(),
            tlvs.ssl_verify(),
            tlvs.ssl_version(),
            tlvs.ssl_cn(),
            tlvs.ssl_cipher(),
            tlvs.ssl_sig_alg(),
            tlvs.ssl_key_alg(),
            tlvs.netns(),
        );
    }
}
