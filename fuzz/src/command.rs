//! `command`: one command line, either through [`parse_path`] (arbitrary UTF-8:
//! no panic, the remainder is a suffix of the argument, the same answer twice) or
//! through the whole engine, after a short session prefix and before `QUIT`, with
//! every hook answered by default. The engine's transcript (bytes written and hook
//! calls) must not depend on how the input is split: whole, in two at an
//! input-chosen point, and byte by byte give the same.
//!
//! Input layout: a mode byte (even: `parse_path`), then for the engine a config
//! selector, config tweaks and a prefix selector, then the line.

use smtpkit::proto::{
    Ask, AuthResult, Decision, Outcome, ParsedPath, Peer, parse_path, parse_plain_path,
};

use super::harness::{Harness, config};

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let arg = String::from_utf8_lossy(rest);
        check_path(&arg);
    } else {
        engine(mode, rest);
    }
}

/// `parse_path` on one argument.
pub fn check_path(arg: &str) {
    let parsed = parse_path(arg);
    assert_eq!(parse_path(arg), parsed, "parse_path is not deterministic");
    if let Some((addr, rest)) = parse_plain_path(arg) {
        let want = ParsedPath::Address {
            addr: addr.to_owned(),
            rest,
        };
        assert_eq!(parsed, want, "the fast path disagrees on {arg:?}");
    }
    match &parsed {
        ParsedPath::Empty => assert!(arg.is_empty(), "Empty for {arg:?}"),
        ParsedPath::Malformed => {}
        ParsedPath::Address { addr, rest } => {
            assert!(
                arg.ends_with(rest),
                "rest {rest:?} is not a suffix of {arg:?}"
            );
            assert!(rest.len() < arg.len(), "an address from nothing in {arg:?}");
            // The remainder parses on its own without panicking.
            let _ = parse_path(rest);
            let _ = parse_path(addr);
        }
    }
}

/// The session prefixes: commands before the fuzzed line.
const PREFIXES: [&[u8]; 8] = [
    b"",
    b"EHLO client.example\r\n",
    b"HELO client.example\r\n",
    b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n",
    b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n",
    b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
    b"EHLO client.example\r\nAUTH PLAIN AHVzZXIAcGFzcw==\r\n",
    b"EHLO client.example\r\nAUTH LOGIN\r\n",
];

fn engine(mode: u8, rest: &[u8]) {
    let [selector, tweaks, prefix, line @ ..] = rest else {
        return;
    };
    let config = config(*selector, *tweaks);
    let mut script = Vec::new();
    if config.proxy_protocol_timeout.is_some() {
        script.extend_from_slice(b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 25\r\n");
    }
    let mut prefix = PREFIXES[usize::from(*prefix) % PREFIXES.len()].to_vec();
    if config.lmtp {
        // LMTP greets with LHLO.
        for i in 0..prefix.len().saturating_sub(3) {
            if &prefix[i..i + 4] == b"EHLO" || &prefix[i..i + 4] == b"HELO" {
                prefix[i..i + 4].copy_from_slice(b"LHLO");
            }
        }
    }
    script.extend_from_slice(&prefix);
    script.extend_from_slice(line);
    script.extend_from_slice(b"\r\nQUIT\r\n");

    let reference = transcript(&config, &[&script]);
    let at = usize::from(mode >> 1) * script.len() / 128;
    let split = transcript(&config, &[&script[..at], &script[at..]]);
    same(&split, &reference, &format!("split at {at}"), &script);
    if script.len() <= 2048 {
        let bytes: Vec<&[u8]> = script.chunks(1).collect();
        let by_byte = transcript(&config, &bytes);
        same(&by_byte, &reference, "byte by byte", &script);
    }
}

type Transcript = (Vec<u8>, Vec<Ask>);

#[track_caller]
fn same(got: &Transcript, reference: &Transcript, label: &str, script: &[u8]) {
    let show = |t: &Transcript| String::from_utf8_lossy(&t.0).into_owned();
    let (got_wire, ref_wire) = (show(got), show(reference));
    assert!(
        got == reference,
        "{label} differs from whole input\n  input: {:?}\n  whole:\n{ref_wire}\n  {label}:\n{got_wire}\n  whole asks: {:?}\n  {label} asks: {:?}",
        String::from_utf8_lossy(script),
        reference.1,
        got.1,
    );
}

/// Feeds the pieces (answering hooks by default), then the peer closes; returns the bytes written and the hook calls.
fn transcript(config: &smtpkit::proto::Config, pieces: &[&[u8]]) -> Transcript {
    let mut h = Harness::new(config.clone(), Peer::Unknown, false, false);
    let answer = |ask: &Ask| match ask {
        Ask::Auth { .. } | Ask::AuthStep { .. } => Decision::Auth(AuthResult::Success(None)),
        _ => Decision::Outcome(Outcome::Default),
    };
    for piece in pieces {
        h.input(piece);
        // Answer everything the piece asked for before the next one arrives.
        // TLS is only established at the end: bytes after STARTTLS are dropped
        // however they arrive.
        while let Some(ask) = h.pending.clone() {
            h.decide(answer(&ask));
        }
    }
    h.finish(answer);
    (h.out, h.asks)
}
