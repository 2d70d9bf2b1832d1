//! aiosmtpd conformance, inside the repository: aiosmtpd 1.4.6's recorded
//! answers (`tests/conformance/aiosmtpd/`, see its README) replayed against
//! smtpkit, at two levels:
//!
//! - **engine**: every dialog of the groups that need no TLS, straight into a
//!   `smtpkit::proto::Connection` with the configuration the CLI builds for the
//!   group, on a virtual clock (timeouts fire at once), each send whole and
//!   again one byte at a time;
//! - **cli**: every dialog of every group against the `smtpkit` binary started
//!   with the group's command line (`servers.json`), over loopback, a Unix
//!   socket, STARTTLS and implicit TLS, once per runtime compiled in (tokio,
//!   smol, async-std).
//!
//! A dialog passes when its reply codes and connection events match aiosmtpd's
//! (and, for dialogs recorded with `text`, the masked reply texts). The
//! deliberate differences are listed, with their reasons, in `differences.rs`:
//! those dialogs must differ, every other one must match. Missing or incomplete
//! data fails the test; nothing is skipped.

mod cli;
mod dialog;
mod differences;
mod engine;
mod masking;
mod replay;

use dialog::Dialog;
use differences::Level;

/// Checks every verdict against the differences list; panics with every
/// unexpected one.
fn judge(level: Level, label: &str, results: Vec<(&Dialog, Result<(), String>)>) {
    let mut wrong = Vec::new();
    let (mut same, mut differ) = (0, 0);
    for (dialog, verdict) in results {
        let key = dialog.key();
        let deliberate = differences::reason(level, &key);
        match (verdict, deliberate) {
            (Ok(()), None) => same += 1,
            (Err(_), Some(_)) => differ += 1,
            (Err(why), None) => wrong.push(format!("{key}: {why}")),
            (Ok(()), Some(reason)) => wrong.push(format!(
                "{key}: now answers as aiosmtpd, but is listed as a deliberate difference ({reason}); \
                 take it off the list in tests/conformance/differences.rs"
            )),
        }
    }
    println!(
        "{label}: {same} dialogues as aiosmtpd, {differ} deliberate differences, {} unexpected",
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "{label}: {} dialogues differ from aiosmtpd unexpectedly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn engine_answers_as_aiosmtpd() {
    let dialogs = dialog::load_all();
    let results = dialogs
        .iter()
        .filter(|d| engine::replays(&d.group))
        .map(|d| (d, engine::replay(d, None)))
        .collect();
    judge(Level::Engine, "engine", results);
}

/// The same dialogs with every send fed to the engine one byte at a time.
#[test]
fn engine_answers_the_same_whatever_the_split() {
    let dialogs = dialog::load_all();
    let results = dialogs
        .iter()
        .filter(|d| engine::replays(&d.group))
        .map(|d| (d, engine::replay(d, Some(1))))
        .collect();
    judge(Level::Engine, "engine, one byte per read", results);
}

#[cfg(feature = "runtime-tokio")]
#[test]
fn cli_on_tokio_answers_as_aiosmtpd() {
    let dialogs = dialog::load_all();
    judge(
        Level::Cli,
        "cli on tokio",
        cli::replay_all(&dialogs, "tokio"),
    );
}

#[cfg(feature = "runtime-smol")]
#[test]
fn cli_on_smol_answers_as_aiosmtpd() {
    let dialogs = dialog::load_all();
    judge(Level::Cli, "cli on smol", cli::replay_all(&dialogs, "smol"));
}

#[cfg(feature = "runtime-async-std")]
#[test]
fn cli_on_async_std_answers_as_aiosmtpd() {
    let dialogs = dialog::load_all();
    judge(
        Level::Cli,
        "cli on async-std",
        cli::replay_all(&dialogs, "async-std"),
    );
}
