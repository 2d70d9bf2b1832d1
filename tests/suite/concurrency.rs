//! Many clients at once.

use std::collections::BTreeMap;

use lettre::Transport;

use super::util::*;

const THREADS: usize = 20;
const PER_THREAD: usize = 5;

#[test]
fn concurrent_clients_each_message_recorded_once() {
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = started(recorder);
    let port = addr_of(&controller).port();

    let clients: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mailer = mailer(port);
                for m in 0..PER_THREAD {
                    let msg = message(
                        &format!("sender{t}@example.com"),
                        &[&format!("rcpt{t}-{m}@example.com")],
                        &format!("msg {t}-{m}"),
                        &format!("thread {t} message {m}\r\n"),
                    );
                    let resp = mailer
                        .send(&msg)
                        .unwrap_or_else(|e| panic!("thread {t} message {m}: {e}"));
                    assert_eq!(u16::from(resp.code()), 250);
                }
            })
        })
        .collect();
    for c in clients {
        if let Err(panic) = c.join() {
            std::panic::resume_unwind(panic);
        }
    }

    let got = messages(&inbox);
    assert_eq!(got.len(), THREADS * PER_THREAD);
    let mut seen: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for r in &got {
        let content = r.content_str();
        let (t, m) = (0..THREADS)
            .flat_map(|t| (0..PER_THREAD).map(move |m| (t, m)))
            .find(|(t, m)| content.contains(&format!("Subject: msg {t}-{m}\r\n")))
            .unwrap_or_else(|| panic!("unknown message {content:?}"));
        assert!(
            content.ends_with(&format!("\r\n\r\nthread {t} message {m}\r\n\r\n")),
            "{content:?}"
        );
        assert_eq!(r.mail_from, Some(format!("sender{t}@example.com")));
        assert_eq!(r.rcpt_tos, [format!("rcpt{t}-{m}@example.com")]);
        *seen.entry((t, m)).or_default() += 1;
    }
    assert_eq!(seen.len(), THREADS * PER_THREAD, "every message arrived");
    assert!(seen.values().all(|&n| n == 1), "no duplicates: {seen:?}");
    controller.stop().unwrap();
}
