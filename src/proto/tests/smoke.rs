//! A no-panic smoke test on random input and random hook answers.

use super::harness::*;
use crate::proto::{Ask, CallLimits, Decision, Error, HookFailure, Outcome, Reply};

/// xorshift64: a small deterministic PRNG.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"HELO ",
    b"EHLO ",
    b"MAIL FROM:",
    b"RCPT TO:",
    b"DATA",
    b"RSET",
    b"NOOP",
    b"QUIT",
    b"VRFY ",
    b"EXPN ",
    b"HELP ",
    b"STARTTLS",
    b"AUTH PLAIN",
    b"helo ",
    b"mail from:",
    b"rcpt to:",
    b"data",
    b"<",
    b">",
    b"<>",
    b"@",
    b".",
    b":",
    b" ",
    b"  ",
    b"\r\n",
    b"\r\n",
    b"\r\n",
    b"\r",
    b"\n",
    b"\x00",
    b"\t",
    b"example.com",
    b"a@b.c",
    b"<anne@example.com>",
    b"SIZE=",
    b"100",
    b"99999999999999999999999",
    b"BODY=8BITMIME",
    b"BODY=",
    b"SMTPUTF8",
    b"=",
    b"\r\n.\r\n",
    b".\r\n",
    b"..",
    b"\xff",
    b"\xc3\xa9",
    b"\"q\"",
    b"(c)",
    b"[127.0.0.1]",
    b"FOO",
    b"#$%",
    b"\r\n.\n",
    b"\n.\r\n",
];

fn random_input(rng: &mut XorShift) -> Vec<u8> {
    let mut input = Vec::new();
    if rng.below(3) == 0 {
        input.extend_from_slice(b"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
    }
    for _ in 0..rng.below(40) {
        match rng.below(12) {
            0..=7 => input.extend_from_slice(TOKENS[rng.below(TOKENS.len())]),
            8 => input.push(rng.next() as u8),
            9 => {
                let byte = [b'x', b'.', b' ', b'\r', b'\n'][rng.below(5)];
                input.extend(std::iter::repeat_n(byte, rng.below(1200)));
            }
            _ => input.extend_from_slice(b"\r\n"),
        }
    }
    input
}

fn random_responder(seed: u64) -> Responder {
    let mut rng = XorShift(seed | 1);
    Box::new(move |ask, session, envelope| match rng.below(10) {
        0..=4 => Decision::Outcome(Outcome::Default),
        5 => {
            let code = [250, 251, 421, 450, 550, 554, 999, 100][rng.below(8)];
            Decision::Outcome(Outcome::reply(code, "hook says so"))
        }
        6 => Decision::Outcome(Outcome::accept(250, "accepted\nsecond line")),
        7 => Decision::Failed(HookFailure::new("RuntimeError", "boom\nline two")),
        8 => {
            // A hook that edits state the way aiosmtpd hooks may.
            if let Ask::Ehlo { extensions, .. } = ask {
                extensions.clear();
            }
            session.host_name = Some("h".into());
            envelope.rcpt_tos.push("x@y".into());
            Decision::Outcome(Outcome::Reply(Reply::new(252, "")))
        }
        _ => Decision::Outcome(Outcome::Default),
    })
}

/// Every CRLF-terminated piece starts with three digits and a space or dash.
/// (Echoed command words may hold a bare CR or NUL, so lines are only split at CRLF.)
fn check_wire(out: &[u8], context: &dyn Fn() -> String) {
    assert!(
        out.ends_with(b"\r\n"),
        "output must end with CRLF: {}",
        context()
    );
    let mut rest = out;
    while !rest.is_empty() {
        let end = find(rest, b"\r\n").expect("CRLF-terminated");
        let line = &rest[..end];
        let ok = line.len() >= 4
            && line[..3].iter().all(u8::is_ascii_digit)
            && matches!(line[3], b' ' | b'-');
        assert!(ok, "bad reply line {}: {}", show(line, 100), context());
        rest = &rest[end + 2..];
    }
}

#[test]
fn smoke_random_input_never_panics() {
    let tiny = {
        let mut c = sized()
            .with_data_size_limit(Some(64))
            .with_call_limits(Some(CallLimits::uniform(4)));
        c.line_length_limit = 40;
        c.data_line_length_limit = Some(40);
        c.command_size_limit = 30;
        c.local_part_limit = Some(3);
        c.bogus_limit = 2;
        c
    };
    let configs = [plain(), sized(), library_defaults(), tiny];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for case in 0..3000 {
        let config = configs[rng.below(configs.len())].clone();
        let input = random_input(&mut rng);
        let mut driver = Driver::with_responder(config, random_responder(rng.next()));
        let mut cuts: Vec<usize> = (0..rng.below(5))
            .map(|_| rng.below(input.len() + 1))
            .collect();
        cuts.sort_unstable();
        let mut start = 0;
        for cut in cuts.into_iter().chain([input.len()]) {
            driver.feed(&input[start..cut]);
            start = cut;
        }
        match rng.below(4) {
            0 => driver.peer_closed(),
            1 => {
                if let Some(deadline) = driver.conn.poll_timeout() {
                    driver.timeout(deadline);
                }
            }
            2 => {
                driver.conn.handle_shutdown(driver.now);
                driver.drain();
            }
            _ => {}
        }
        check_wire(&driver.trace.out, &|| {
            format!("case {case}, input {}", show(&input, 400))
        });
        if driver.trace.closed {
            assert_eq!(
                driver.conn.handle_input(driver.now, b"NOOP\r\n"),
                Err(Error::Closed)
            );
        }
    }
}
