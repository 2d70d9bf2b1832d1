//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) and the saved findings
//! (`fuzz/artifacts-found/<target>/`, if any) through the fuzz targets' own logic,
//! on stable Rust and without libFuzzer. The targets live in `fuzz/src/`, which is
//! included here as a module; see `fuzz/README.md` for fuzzing itself.

#[path = "../fuzz/src/lib.rs"]
mod fuzz_logic;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Runs every file of `dir` through `run`; returns the failures' messages.
fn replay(dir: &Path, run: fn(&[u8])) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let files = files(dir);
    for path in &files {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}: {msg}", path.display()));
        }
    }
    (files.len(), failures)
}

fn target(name: &str) -> fn(&[u8]) {
    fuzz_logic::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, run)| *run)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
}

#[track_caller]
fn corpus(name: &str) {
    let dir = fuzz_dir().join("corpus").join(name);
    assert!(dir.is_dir(), "the corpus {} is missing", dir.display());
    let (count, failures) = replay(&dir, target(name));
    assert!(count > 0, "the corpus {} is empty", dir.display());
    assert!(
        failures.is_empty(),
        "{} of {count} inputs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_auth() {
    corpus("auth");
}

#[test]
fn corpus_bdat() {
    corpus("bdat");
}

#[test]
fn corpus_dsn() {
    corpus("dsn");
}

#[test]
fn corpus_command() {
    corpus("command");
}

#[test]
fn corpus_data() {
    corpus("data");
}

#[test]
fn corpus_proxy() {
    corpus("proxy");
}

#[test]
fn corpus_session() {
    corpus("session");
}

/// Every corpus directory belongs to a target and every target has one.
#[test]
fn corpus_directories_match_targets() {
    let mut dirs: Vec<String> = fs::read_dir(fuzz_dir().join("corpus"))
        .expect("fuzz/corpus")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    dirs.sort();
    let targets: Vec<&str> = fuzz_logic::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(dirs, targets);
}

/// Inputs that made a target fail, saved from `fuzz/artifacts/`: those listed in
/// `fuzz/artifacts-found/OPEN` must still fail (an open finding; delete the line
/// once it is fixed), all others must pass.
#[test]
fn artifacts_found() {
    let root = fuzz_dir().join("artifacts-found");
    if !root.is_dir() {
        return;
    }
    let open: Vec<String> = fs::read_to_string(root.join("OPEN"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (name, run) in fuzz_logic::TARGETS {
        let dir = root.join(name);
        if !dir.is_dir() {
            continue;
        }
        for path in files(&dir) {
            let rel = format!(
                "{name}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let failed = catch_unwind(AssertUnwindSafe(|| run(&data))).is_err();
            match (open.contains(&rel), failed) {
                (true, false) => problems.push(format!("{rel} passes now: delete it from OPEN")),
                (false, true) => problems.push(format!("{rel} fails")),
                _ => {}
            }
            seen.push(rel);
        }
    }
    for rel in &open {
        if !seen.contains(rel) {
            problems.push(format!("{rel} is listed in OPEN but missing"));
        }
    }
    assert!(
        problems.is_empty(),
        "fuzz/artifacts-found:\n{}",
        problems.join("\n")
    );
}
