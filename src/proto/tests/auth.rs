//! AUTH (RFC 4954): PLAIN, LOGIN, custom mechanisms, AUTH required.

use super::harness::*;
use super::tls_harness::*;
use crate::proto::replies::{
    ALREADY_AUTHENTICATED, AUTH_ABORTED, AUTH_BAD_BASE64, AUTH_CANNOT_SPLIT, AUTH_CHALLENGE,
    AUTH_INVALID, AUTH_NOT_ENOUGH_VALUES, AUTH_NOT_RECOGNIZED, AUTH_REQUIRED, AUTH_SUCCESS,
    AUTH_TOO_MANY_VALUES, AUTH_UNKNOWN_MECHANISM, CANNOT_VRFY, COMMAND_TOO_LONG,
    ENCRYPTION_REQUIRED, LOGIN_PASSWORD_CHALLENGE, LOGIN_USERNAME_CHALLENGE, NOT_RECOGNIZED, OK,
    PLAIN_CHALLENGE, SEND_EHLO_FIRST, SEND_HELO_FIRST,
};
use crate::proto::{Ask, AuthResult, Decision, HookFailure, Outcome, Reply};

#[test]
fn auth_plain_with_initial_response() {
    let good = format!("AUTH PLAIN {}", plain_good());
    let bad = format!("AUTH PLAIN {}", b64(b"\0goodlogin\0badpasswd"));
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            &bad,
            &bad,
            &good,
            "MAIL FROM:<anne@example.com>",
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                AUTH_INVALID.line,
                AUTH_INVALID.line,
                AUTH_SUCCESS.line,
                OK.line,
            ],
        ),
    );
    let wrong = (
        "PLAIN".to_owned(),
        "goodlogin".to_owned(),
        "badpasswd".to_owned(),
    );
    let right = (
        "PLAIN".to_owned(),
        "goodlogin".to_owned(),
        "goodpasswd".to_owned(),
    );
    assert_eq!(auth_asks(&trace), [wrong.clone(), wrong, right]);

    // The session records who authenticated how; the authzid is ignored.
    let mut driver = Driver::with_responder(auth_config(), auth_responder());
    driver.feed(b"EHLO example.com\r\n");
    assert!(!driver.conn.session().authenticated);
    let with_authzid = format!("AUTH PLAIN {}\r\n", b64(b"admin\0goodlogin\0goodpasswd"));
    driver.feed(with_authzid.as_bytes());
    let session = driver.conn.session();
    assert!(session.authenticated);
    assert_eq!(session.auth_mechanism.as_deref(), Some("PLAIN"));
    assert_eq!(session.auth_identity.as_deref(), Some("goodlogin"));
    assert!(session.auth_data.is_none());
}

#[test]
fn auth_plain_with_challenge() {
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH PLAIN",
            &b64(b"\0goodlogin\0wrong"),
            "AUTH PLAIN",
            &plain_good(),
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                PLAIN_CHALLENGE.line,
                AUTH_INVALID.line,
                PLAIN_CHALLENGE.line,
                AUTH_SUCCESS.line,
            ],
        ),
    );
    assert_eq!(auth_asks(&trace).len(), 2);
}

#[test]
fn auth_login_both_forms() {
    let user = b64(b"goodlogin");
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH LOGIN",
            &user,
            &b64(b"badpasswd"),
            &format!("AUTH LOGIN {user}"),
            &b64(b"goodpasswd"),
            "NOOP",
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                LOGIN_USERNAME_CHALLENGE.line,
                LOGIN_PASSWORD_CHALLENGE.line,
                AUTH_INVALID.line,
                LOGIN_PASSWORD_CHALLENGE.line,
                AUTH_SUCCESS.line,
                OK.line,
            ],
        ),
    );
    let asks = auth_asks(&trace);
    assert_eq!(asks.len(), 2);
    assert_eq!(
        asks[1],
        (
            "LOGIN".to_owned(),
            "goodlogin".to_owned(),
            "goodpasswd".to_owned()
        )
    );

    let mut driver = Driver::with_responder(auth_config(), auth_responder());
    driver.feed(&crlf(&[
        "EHLO example.com",
        &format!("AUTH LOGIN {user}"),
        &b64(b"goodpasswd"),
    ]));
    assert_eq!(
        driver.conn.session().auth_mechanism.as_deref(),
        Some("LOGIN")
    );
    assert_eq!(
        driver.conn.session().auth_identity.as_deref(),
        Some("goodlogin")
    );
}

#[test]
fn auth_cancelled_at_every_step() {
    let user = b64(b"goodlogin");
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH PLAIN",
            "*",
            "AUTH LOGIN",
            "*",
            "AUTH LOGIN",
            &user,
            "*",
            &format!("AUTH LOGIN {user}"),
            "*",
            "AUTH X-TWO-ROUNDS",
            "*",
            // Back in command mode, not authenticated.
            "NOOP",
            &format!("AUTH PLAIN {}", plain_good()),
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                PLAIN_CHALLENGE.line,
                AUTH_ABORTED.line,
                LOGIN_USERNAME_CHALLENGE.line,
                AUTH_ABORTED.line,
                LOGIN_USERNAME_CHALLENGE.line,
                LOGIN_PASSWORD_CHALLENGE.line,
                AUTH_ABORTED.line,
                LOGIN_PASSWORD_CHALLENGE.line,
                AUTH_ABORTED.line,
                // X-TWO-ROUNDS is not configured here; `*` is then a command.
                AUTH_UNKNOWN_MECHANISM.line,
                &NOT_RECOGNIZED.line("*"),
                OK.line,
                AUTH_SUCCESS.line,
            ],
        ),
    );
    assert_eq!(
        auth_asks(&trace).len(),
        1,
        "only the last AUTH reached the hook"
    );
}

#[test]
fn auth_bad_base64() {
    auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH PLAIN not-b64!",
            "AUTH PLAIN YQ",
            "AUTH LOGIN @@@@",
            "AUTH PLAIN",
            "ab@%",
            "AUTH LOGIN",
            "not base64",
            "AUTH LOGIN",
            &b64(b"goodlogin"),
            "Z29vZHBhc3N3ZA", // missing padding
            // A lone `=` is an empty initial response, but not an empty reply line.
            "AUTH PLAIN",
            "=",
            "NOOP",
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                AUTH_BAD_BASE64.line,
                AUTH_BAD_BASE64.line,
                AUTH_BAD_BASE64.line,
                PLAIN_CHALLENGE.line,
                AUTH_BAD_BASE64.line,
                LOGIN_USERNAME_CHALLENGE.line,
                AUTH_BAD_BASE64.line,
                LOGIN_USERNAME_CHALLENGE.line,
                LOGIN_PASSWORD_CHALLENGE.line,
                AUTH_BAD_BASE64.line,
                PLAIN_CHALLENGE.line,
                AUTH_BAD_BASE64.line,
                OK.line,
            ],
        ),
    );
}

#[test]
fn auth_plain_split_errors_and_empty_responses() {
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            &format!("AUTH PLAIN {}", b64(b"\0onlylogin")),
            &format!("AUTH PLAIN {}", b64(b"a\0b\0c\0d")),
            &format!("AUTH PLAIN {}", b64(b"no separators")),
            // RFC 4954: `=` is an empty initial response (aiosmtpd: bad base64),
            // which PLAIN cannot split.
            "AUTH PLAIN =",
            // An empty reply line is an empty response.
            "AUTH PLAIN",
            "",
            // LOGIN with an empty user name: passed on as is.
            "AUTH LOGIN =",
            &b64(b"goodpasswd"),
            "AUTH LOGIN",
            "",
            "",
            // Empty login and password in PLAIN reach the authenticator too.
            &format!("AUTH PLAIN {}", b64(b"\0\0")),
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                AUTH_CANNOT_SPLIT.line,
                AUTH_CANNOT_SPLIT.line,
                AUTH_CANNOT_SPLIT.line,
                AUTH_CANNOT_SPLIT.line,
                PLAIN_CHALLENGE.line,
                AUTH_CANNOT_SPLIT.line,
                LOGIN_PASSWORD_CHALLENGE.line,
                AUTH_INVALID.line,
                LOGIN_USERNAME_CHALLENGE.line,
                LOGIN_PASSWORD_CHALLENGE.line,
                AUTH_INVALID.line,
                AUTH_INVALID.line,
            ],
        ),
    );
    let empty = |m: &str, p: &str| (m.to_owned(), String::new(), p.to_owned());
    assert_eq!(
        auth_asks(&trace),
        [
            empty("LOGIN", "goodpasswd"),
            empty("LOGIN", ""),
            empty("PLAIN", "")
        ]
    );
}

#[test]
fn auth_argument_counts() {
    auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH",
            "AUTH ",
            "AUTH PLAIN a b",
            "AUTH LOGIN Z29vZGxvZ2lu Z29vZHBhc3N3ZA== extra",
            "NOOP",
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                AUTH_NOT_ENOUGH_VALUES.line,
                AUTH_NOT_ENOUGH_VALUES.line,
                AUTH_TOO_MANY_VALUES.line,
                AUTH_TOO_MANY_VALUES.line,
                OK.line,
            ],
        ),
    );
}

#[test]
fn auth_needs_ehlo_and_only_once() {
    let good = format!("AUTH PLAIN {}", plain_good());
    let mut replies = vec![
        SEND_EHLO_FIRST.line,
        "250 mx.example",
        AUTH_NOT_RECOGNIZED.line,
    ];
    replies.extend(EHLO_AUTH);
    replies.extend([
        AUTH_SUCCESS.line,
        ALREADY_AUTHENTICATED.line,
        ALREADY_AUTHENTICATED.line,
        ALREADY_AUTHENTICATED.line,
        OK.line,
    ]);
    replies.extend(EHLO_AUTH);
    replies.push(ALREADY_AUTHENTICATED.line);
    auth_session(
        auth_config(),
        &[
            &good,
            "HELO example.com",
            &good,
            "EHLO example.com",
            &good,
            &good,
            "AUTH LOGIN",
            "AUTH BOGUS",
            // RSET and EHLO keep the authentication (aiosmtpd).
            "RSET",
            "EHLO example.com",
            &good,
        ],
        &replies,
    );
}

#[test]
fn auth_requires_tls_by_default() {
    // Plaintext with the default auth_require_tls: not offered, 538 (before the
    // mechanism is even looked at).
    let config = plain();
    assert!(config.auth_require_tls);
    auth_session(
        config.clone(),
        &[
            "EHLO example.com",
            &format!("AUTH PLAIN {}", plain_good()),
            "AUTH LOGIN",
            "AUTH CRAM-MD5",
            "AUTH",
        ],
        &with_ehlo(
            &EHLO_PLAIN,
            &[
                ENCRYPTION_REQUIRED.line,
                ENCRYPTION_REQUIRED.line,
                ENCRYPTION_REQUIRED.line,
                ENCRYPTION_REQUIRED.line,
            ],
        ),
    );
    // Implicit TLS counts as TLS (aiosmtpd #274/#281 fixed).
    let after = crlf(&["EHLO example.com", &format!("AUTH PLAIN {}", plain_good())]);
    TlsScript::implicit(config).transcript(
        b"",
        &after,
        &with_ehlo(&EHLO_AUTH, &[AUTH_SUCCESS.line]),
    );
}

#[test]
fn auth_mechanism_names() {
    let trace = auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            // RFC 4954: case-insensitive (aiosmtpd: `AUTH plain` gets 504, #305).
            &format!("auth plain {}", plain_good()),
        ],
        &with_ehlo(&EHLO_AUTH, &[AUTH_SUCCESS.line]),
    );
    assert_eq!(
        auth_asks(&trace)[0].0,
        "PLAIN",
        "the hook sees the canonical name"
    );
    auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH LoGiN",
            "*",
            "AUTH CRAM-MD5",
            "AUTH PLAINX",
            "AUTH X-TWO-ROUNDS",
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                LOGIN_USERNAME_CHALLENGE.line,
                AUTH_ABORTED.line,
                AUTH_UNKNOWN_MECHANISM.line,
                AUTH_UNKNOWN_MECHANISM.line,
                AUTH_UNKNOWN_MECHANISM.line,
            ],
        ),
    );
    // Only the configured mechanisms are offered and accepted.
    let mut only_plain = auth_config();
    only_plain.auth_mechanisms = vec!["PLAIN".to_owned()];
    auth_session(
        only_plain,
        &["EHLO example.com", "AUTH LOGIN", "AUTH PLAIN"],
        &[
            "250-mx.example",
            "250-8BITMIME",
            "250-AUTH PLAIN",
            "250 HELP",
            AUTH_UNKNOWN_MECHANISM.line,
            PLAIN_CHALLENGE.line,
        ],
    );
}

#[test]
fn auth_custom_mechanism_steps() {
    let mut config = auth_config();
    config.auth_mechanisms.push("X-TWO-ROUNDS".to_owned());
    let ehlo = [
        "250-mx.example",
        "250-8BITMIME",
        "250-AUTH LOGIN PLAIN X-TWO-ROUNDS",
        "250 HELP",
    ];
    let trace = auth_session(
        config.clone(),
        &[
            "EHLO example.com",
            // An initial response is passed to step 0 (here: refused).
            &format!("AUTH X-TWO-ROUNDS {}", b64(b"one")),
            "AUTH X-TWO-ROUNDS",
            &b64(b"wrong"),
            "auth x-two-rounds",
            &b64(b"one"),
            &b64(b"two"),
            "AUTH X-TWO-ROUNDS",
        ],
        &with_ehlo(
            &ehlo,
            &[
                AUTH_INVALID.line,
                &AUTH_CHALLENGE.line("Zmlyc3Q="),
                AUTH_INVALID.line,
                &AUTH_CHALLENGE.line("Zmlyc3Q="),
                &AUTH_CHALLENGE.line("c2Vjb25k"),
                AUTH_SUCCESS.line,
                ALREADY_AUTHENTICATED.line,
            ],
        ),
    );
    let step = |step: u32, response: Option<&[u8]>| Ask::AuthStep {
        mechanism: "X-TWO-ROUNDS".to_owned(),
        step,
        response: response.map(<[u8]>::to_vec),
    };
    let steps: Vec<&Ask> = trace
        .asks
        .iter()
        .filter(|a| matches!(a, Ask::AuthStep { .. }))
        .collect();
    assert_eq!(
        steps,
        [
            &step(0, Some(b"one")),
            &step(0, None),
            &step(1, Some(b"wrong")),
            &step(0, None),
            &step(1, Some(b"one")),
            &step(2, Some(b"two")),
        ]
    );
    assert!(
        auth_asks(&trace).is_empty(),
        "no Ask::Auth for custom mechanisms"
    );

    let mut driver = Driver::with_responder(config, auth_responder());
    driver.feed(&crlf(&[
        "EHLO example.com",
        "AUTH X-TWO-ROUNDS",
        &b64(b"one"),
        &b64(b"two"),
    ]));
    let session = driver.conn.session();
    assert!(session.authenticated);
    assert_eq!(session.auth_mechanism.as_deref(), Some("X-TWO-ROUNDS"));
    assert_eq!(
        session.auth_identity, None,
        "no login for custom mechanisms"
    );
}

#[test]
fn auth_decisions_of_every_kind() {
    // Each Ask::Auth answer, in order, and what the client gets.
    let answers: Vec<(Decision, &str)> = vec![
        (
            AuthResult::Challenge(b"x".to_vec()).into(),
            AUTH_INVALID.line,
        ),
        (
            AuthResult::Failure(Some(Reply::new(
                454,
                "4.7.0 Temporary authentication failure",
            )))
            .into(),
            "454 4.7.0 Temporary authentication failure",
        ),
        (Outcome::Default.into(), AUTH_INVALID.line),
        (Outcome::reply(535, "5.7.8 No").into(), "535 5.7.8 No"),
        (
            HookFailure::new("LookupError", "db down").into(),
            "500 Error: (LookupError) db down",
        ),
        (
            Outcome::accept(235, "2.7.0 Welcome").into(),
            "235 2.7.0 Welcome",
        ),
    ];
    let decisions: Vec<Decision> = answers.iter().map(|(d, _)| d.clone()).collect();
    let make = move || -> Responder {
        let mut queue = decisions.clone();
        queue.reverse();
        Box::new(move |ask, _, _| match ask {
            Ask::Auth { .. } => queue.pop().expect("one decision per AUTH"),
            _ => Decision::Outcome(Outcome::Default),
        })
    };
    let good = format!("AUTH PLAIN {}", plain_good());
    let mut commands = vec!["EHLO example.com"];
    commands.extend(std::iter::repeat_n(good.as_str(), answers.len()));
    commands.push("MAIL FROM:<a@example.com>");
    let input = crlf(&commands);
    let mut replies = with_ehlo(
        &EHLO_AUTH,
        &answers.iter().map(|(_, r)| *r).collect::<Vec<_>>(),
    );
    replies.push(OK.line);
    let mut script = Script::new(auth_config());
    script.responder = &make;
    script.transcript(&[&input], &replies);

    let mut driver = Driver::with_responder(auth_config(), make());
    driver.feed(&input);
    let session = driver.conn.session();
    assert!(session.authenticated);
    assert_eq!(session.auth_identity.as_deref(), Some("goodlogin"));
}

#[test]
fn auth_required_refuses_transactions() {
    let mut config = auth_config();
    config.auth_required = true;
    auth_session(
        config,
        &[
            "MAIL FROM:<a@example.com>",
            "EHLO example.com",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "VRFY a@example.com",
            "HELP",
            "NOOP",
            "RSET",
            &format!("AUTH PLAIN {}", b64(b"\0goodlogin\0nope")),
            "MAIL FROM:<a@example.com>",
            &format!("AUTH PLAIN {}", plain_good()),
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "VRFY a@example.com",
        ],
        &with_ehlo(
            &[SEND_HELO_FIRST.line],
            &with_ehlo(
                &EHLO_AUTH,
                &[
                    AUTH_REQUIRED.line,
                    AUTH_REQUIRED.line,
                    AUTH_REQUIRED.line,
                    AUTH_REQUIRED.line,
                    AUTH_REQUIRED.line,
                    OK.line,
                    OK.line,
                    AUTH_INVALID.line,
                    AUTH_REQUIRED.line,
                    AUTH_SUCCESS.line,
                    OK.line,
                    OK.line,
                    CANNOT_VRFY.line,
                ],
            ),
        ),
    );
}

#[test]
fn auth_response_is_not_a_command() {
    // During an AUTH exchange every line is a response: STARTTLS, QUIT and a
    // command with base64-looking text are decoded, never executed.
    let mut config = starttls_config();
    config.auth_require_tls = false;
    let trace = TlsScript::new(config).transcript(
        &crlf(&["EHLO example.com", "AUTH LOGIN", "STARTTLS", "QUIT", "NOOP"]),
        b"",
        &with_ehlo(
            &[
                "250-mx.example",
                "250-8BITMIME",
                "250-STARTTLS",
                "250-AUTH LOGIN PLAIN",
                "250 HELP",
            ],
            &[
                LOGIN_USERNAME_CHALLENGE.line,
                LOGIN_PASSWORD_CHALLENGE.line,
                AUTH_INVALID.line,
                OK.line,
            ],
        ),
    );
    assert!(!trace.closed);
    assert_eq!(
        auth_asks(&trace),
        [(
            "LOGIN".to_owned(),
            String::from_utf8_lossy(&unb64("STARTTLS")).into_owned(),
            String::from_utf8_lossy(&unb64("QUIT")).into_owned(),
        )]
    );
}

#[test]
fn auth_overlong_response_line() {
    // A response line longer than the limit is refused like an over-long command
    // line, however the bytes arrive (the engine's split invariance): the exchange
    // ends with `500 Command line too long`, back in command mode. (The line is
    // also longer than RFC 4954's 12288 octets, so this holds whether the limit
    // is line_length_limit or that.) Today a line that arrives whole reaches the
    // authenticator, one cut after more than line_length_limit bytes gets 500.
    let long_password = "p".repeat(13_000);
    let response = b64(format!("\0goodlogin\0{long_password}").as_bytes());
    let trace = auth_session(
        auth_config(),
        &["EHLO example.com", "AUTH PLAIN", &response, "NOOP"],
        &with_ehlo(
            &EHLO_AUTH,
            &[PLAIN_CHALLENGE.line, COMMAND_TOO_LONG.line, OK.line],
        ),
    );
    assert!(auth_asks(&trace).is_empty(), "{:?}", trace.asks);
    auth_session(
        auth_config(),
        &[
            "EHLO example.com",
            "AUTH LOGIN",
            &b64(long_password.as_bytes()),
            "NOOP",
        ],
        &with_ehlo(
            &EHLO_AUTH,
            &[
                LOGIN_USERNAME_CHALLENGE.line,
                COMMAND_TOO_LONG.line,
                OK.line,
            ],
        ),
    );
}
