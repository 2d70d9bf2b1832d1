//! `dsn`: MAIL and RCPT parameters with DSN (and the other extensions) on,
//! against a model of RFC 3461's syntax and an independent xtext decoder. The
//! input is split into a MAIL and a RCPT parameter string (bytes mapped onto
//! an alphabet rich in `=`, `+`, `;`, `,` and the keywords); the engine must
//! answer each command with one reply, accept exactly what the model accepts,
//! and put the model's decoded values on the envelope.

use std::sync::Arc;
use std::time::Instant;

use smtpkit::proto::{
    Action, Ask, Config, Connection, Decision, DsnReturn, Envelope, Extensions, Notify, Outcome,
    Peer,
};

use super::harness::Source;

const WORDS: [&str; 24] = [
    "RET=", "ENVID=", "NOTIFY=", "ORCPT=", "FULL", "HDRS", "NEVER", "SUCCESS", "FAILURE", "DELAY",
    "rfc822;", "+2B", "+3d", "+", "=", ";", ",", " ", "a", "Z", "@", "+4", "ret=full", "SIZE=1",
];

/// Bytes of the input as a parameter string.
fn params(src: &mut Source<'_>) -> String {
    let mut s = String::new();
    for _ in 0..src.below(12) {
        let b = src.byte();
        if b < 200 {
            s.push_str(WORDS[usize::from(b) % WORDS.len()]);
        } else {
            // No parentheses, quotes, brackets or backslash: those belong to
            // the address's syntax (comments, quoting), not to parameters.
            const CHARS: &[u8] = b"aZ09+=;,.-_@!#$%&'*/?^`{|}~";
            s.push(char::from(CHARS[usize::from(b - 200) % CHARS.len()]));
        }
    }
    s
}

/// RFC 3461 xtext, decoded by the model.
fn xtext(s: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            b'=' => return None,
            33..=126 => out.push(b),
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// What the model makes of MAIL's parameters: `Ok((ret, envid))` or the reply code.
fn mail_model(p: &str) -> Result<(Option<DsnReturn>, Option<String>), u16> {
    let words: Vec<&str> = p.split_ascii_whitespace().collect();
    let (mut ret, mut envid) = (None, None);
    for w in &words {
        let (k, v) = match w.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (*w, None),
        };
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) || v == Some("") {
            return Err(501); // aiosmtpd's syntax check comes first
        }
    }
    fn split<'a>(w: &&'a str) -> (&'a str, Option<&'a str>) {
        w.split_once('=').map_or((*w, None), |(k, v)| (k, Some(v)))
    }
    // aiosmtpd's order: SIZE (its last occurrence), then ours (RET, ENVID),
    // then whatever is unknown.
    if let Some((_, v)) = words
        .iter()
        .map(split)
        .rfind(|(k, _)| k.eq_ignore_ascii_case("SIZE"))
        && !v.is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(501);
    }
    if let Some((_, Some(v))) = words
        .iter()
        .map(split)
        .rfind(|(k, _)| k.eq_ignore_ascii_case("SIZE"))
    {
        // The default limit, 33554432.
        let v = v.trim_start_matches('0');
        if v.len() > 8 || v.parse::<u64>().is_ok_and(|n| n > 33_554_432) {
            return Err(552);
        }
    }
    for (k, v) in words.iter().map(split) {
        match k.to_ascii_uppercase().as_str() {
            "RET" => {
                let r = match v.map(str::to_ascii_uppercase).as_deref() {
                    Some("FULL") => DsnReturn::Full,
                    Some("HDRS") => DsnReturn::Headers,
                    _ => return Err(501),
                };
                if ret.replace(r).is_some() {
                    return Err(501);
                }
            }
            "ENVID" => {
                let e = v.filter(|v| v.len() <= 100).and_then(xtext).ok_or(501u16)?;
                if envid.replace(e).is_some() {
                    return Err(501);
                }
            }
            _ => {}
        }
    }
    if words
        .iter()
        .map(split)
        .any(|(k, _)| !matches!(k.to_ascii_uppercase().as_str(), "SIZE" | "RET" | "ENVID"))
    {
        return Err(555);
    }
    Ok((ret, envid))
}

/// RCPT's: `Ok((notify, orcpt address))` or the reply code.
fn rcpt_model(p: &str) -> Result<(Option<Notify>, Option<String>), u16> {
    let words: Vec<&str> = p.split_ascii_whitespace().collect();
    for w in &words {
        let (k, v) = w.split_once('=').map_or((*w, None), |(k, v)| (k, Some(v)));
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) || v == Some("") {
            return Err(501);
        }
    }
    for w in &words {
        let k = w.split_once('=').map_or(*w, |(k, _)| k);
        if !matches!(k.to_ascii_uppercase().as_str(), "NOTIFY" | "ORCPT") {
            return Err(555);
        }
    }
    let (mut notify, mut orcpt) = (None, None);
    for w in &words {
        let (k, v) = w.split_once('=').map_or((*w, None), |(k, v)| (k, Some(v)));
        if k.eq_ignore_ascii_case("NOTIFY") {
            let v = v.ok_or(501u16)?;
            let mut n = Notify::default();
            if !v.eq_ignore_ascii_case("NEVER") {
                for item in v.split(',') {
                    let flag = match item.to_ascii_uppercase().as_str() {
                        "SUCCESS" => &mut n.success,
                        "FAILURE" => &mut n.failure,
                        "DELAY" => &mut n.delay,
                        _ => return Err(501),
                    };
                    if std::mem::replace(flag, true) {
                        return Err(501);
                    }
                }
            }
            if notify.replace(n).is_some() {
                return Err(501);
            }
        } else {
            let v = v.filter(|v| v.len() <= 500).ok_or(501u16)?;
            let (kind, x) = v.split_once(';').ok_or(501u16)?;
            let atom = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
            if kind.is_empty() || !kind.bytes().all(atom) || x.is_empty() {
                return Err(501);
            }
            if orcpt.replace(xtext(x).ok_or(501u16)?).is_some() {
                return Err(501);
            }
        }
    }
    Ok((notify, orcpt))
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut src = Source::new(data);
    let (mail_params, rcpt_params) = (params(&mut src), params(&mut src));
    let config = Config::new("mx.example").with_extensions(Extensions {
        dsn: true,
        ..Extensions::NONE
    });
    let now = Instant::now();
    let mut conn = Connection::new(Arc::new(config), Peer::Unknown, now);
    let input = format!(
        "EHLO x\r\nMAIL FROM:<a@b> {mail_params}\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d> {rcpt_params}\r\nDATA\r\n.\r\n"
    );
    conn.handle_input(now, input.as_bytes()).expect("open");
    let mut wire = Vec::new();
    let mut seen: Option<Envelope> = None;
    for _ in 0..1000 {
        match conn.poll_action() {
            None => break,
            Some(Action::Send(b)) => wire.extend_from_slice(b),
            Some(Action::Hook(call)) => {
                if matches!(call.ask, Ask::Data) {
                    seen = Some(call.envelope.clone());
                }
                conn.handle_decision(now, Decision::Outcome(Outcome::Default))
                    .expect("pending");
            }
            Some(Action::MessageStart(_) | Action::MessageAbort(_)) => {}
            Some(Action::Body(chunk)) => chunk.envelope.content.extend_from_slice(chunk.chunk),
            Some(other) => panic!("unexpected action {other:?}"),
        }
    }
    let wire = String::from_utf8(wire).expect("replies are UTF-8");
    let codes: Vec<&str> = wire
        .split_terminator("\r\n")
        .filter(|l| l.as_bytes().get(3) != Some(&b'-'))
        .map(|l| &l[..3])
        .collect();
    // greeting, EHLO, MAIL, second MAIL (503 if the first was accepted), RCPT, DATA...
    let mail = mail_model(&mail_params);
    let rcpt = rcpt_model(&rcpt_params);
    let mail_code = mail
        .as_ref()
        .map_or_else(|c| c.to_string(), |_| "250".into());
    assert_eq!(codes[2], mail_code, "MAIL {mail_params:?}: {wire}");
    assert_eq!(codes[3], if mail.is_ok() { "503" } else { "250" }, "{wire}");
    let rcpt_code = rcpt
        .as_ref()
        .map_or_else(|c| c.to_string(), |_| "250".into());
    assert_eq!(codes[4], rcpt_code, "RCPT {rcpt_params:?}: {wire}");
    if let (Ok((ret, envid)), Ok((notify, orcpt))) = (&mail, &rcpt) {
        let envelope = seen.expect("a message");
        assert_eq!(&envelope.dsn.ret, ret);
        assert_eq!(&envelope.dsn.envid, envid);
        assert_eq!(envelope.rcpt_dsn.len(), 1);
        assert_eq!(&envelope.rcpt_dsn[0].notify, notify);
        assert_eq!(
            &envelope.rcpt_dsn[0]
                .orcpt
                .as_ref()
                .map(|o| o.address.clone()),
            orcpt
        );
    }
}
