//! The recorded dialogs: loading `aiosmtpd/golden/<group>/<dialog>.json`, with
//! the full client bytes of abbreviated sends from `aiosmtpd/payloads.json`.
//! Anything missing is a panic, never a skip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

/// The groups and how many dialogs each holds (the recording's counts: fewer
/// files means the data is incomplete).
pub const GROUPS: &[(&str, usize)] = &[
    ("plain", 104),
    ("auth", 40),
    ("proxy", 38),
    ("starttls", 16),
    ("sized", 13),
    ("lmtp", 11),
    ("authreq", 9),
    ("smtps", 6),
    ("tlsreq", 6),
    ("unix", 3),
];

/// What the client did or saw, as recorded.
#[derive(Debug)]
pub enum Event {
    /// Bytes the client sent.
    C(Vec<u8>),
    /// One reply, its lines masked.
    S(Vec<String>),
    /// A connection event: EOF, QUIET, CLOSED, RECONNECT, TLS-OK, SMTPLIB-...
    X(String),
}

/// One recorded dialog.
#[derive(Debug)]
pub struct Dialog {
    pub group: String,
    pub name: String,
    /// Reply texts are compared, not only codes.
    pub text: bool,
    /// On the implicit-TLS port, the client speaks plain TCP.
    pub plain_tcp: bool,
    pub events: Vec<Event>,
    /// aiosmtpd's sequence of reply codes and events.
    pub codes: Vec<String>,
}

impl Dialog {
    /// `group/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.name)
    }
}

/// The data folder.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/aiosmtpd")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (the recorded aiosmtpd answers belong in the repository)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every dialog of every group, sorted by group and name.
pub fn load_all() -> Vec<Dialog> {
    let dir = data_dir();
    let payloads = load_payloads(&dir.join("payloads.json"));
    let flags = read_json(&dir.join("dialogs.json"));
    let mut all = Vec::new();
    for (group, count) in GROUPS {
        let folder = dir.join("golden").join(group);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", folder.display()))
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        assert_eq!(
            files.len(),
            *count,
            "{} holds {} dialogs, the recording {count}: the data is incomplete",
            folder.display(),
            files.len()
        );
        for path in files {
            all.push(load(&path, &payloads, &flags));
        }
    }
    all
}

fn load(path: &Path, payloads: &HashMap<String, Vec<u8>>, flags: &Value) -> Dialog {
    let json = read_json(path);
    let field = |name: &str| {
        json[name]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no {name}", path.display()))
            .to_owned()
    };
    let (group, name) = (field("group"), field("name"));
    let events = json["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no events", path.display()))
        .iter()
        .map(|e| {
            if let Some(c) = e["C"].as_str() {
                let bytes = match payloads.get(c) {
                    Some(full) => full.clone(),
                    None if c.contains(" ...[") => {
                        panic!(
                            "{}: no payload for the abbreviated send {c:.80}",
                            path.display()
                        )
                    }
                    None => c.as_bytes().to_vec(),
                };
                Event::C(bytes)
            } else if let Some(lines) = e["S"].as_array() {
                Event::S(
                    lines
                        .iter()
                        .map(|l| l.as_str().expect("a reply line").to_owned())
                        .collect(),
                )
            } else if let Some(x) = e["X"].as_str() {
                Event::X(x.to_owned())
            } else {
                panic!("{}: unknown event {e}", path.display())
            }
        })
        .collect();
    let codes = json["codes"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no codes", path.display()))
        .iter()
        .map(|c| c.as_str().expect("a code").to_owned())
        .collect();
    let key = format!("{group}/{name}");
    Dialog {
        text: json["text"].as_bool().unwrap_or(false),
        plain_tcp: flags[&key]["plain_tcp"].as_bool().unwrap_or(false),
        group,
        name,
        events,
        codes,
    }
}

/// `payloads.json`: recorded (abbreviated or not valid UTF-8) send -> its bytes,
/// as runs of `{"text" | "b64", "times"}`.
fn load_payloads(path: &Path) -> HashMap<String, Vec<u8>> {
    let json = read_json(path);
    let map = json.as_object().expect("payloads.json is an object");
    map.iter()
        .map(|(shown, runs)| {
            let mut bytes = Vec::new();
            for run in runs.as_array().expect("a list of runs") {
                let piece = match (run["text"].as_str(), run["b64"].as_str()) {
                    (Some(text), _) => text.as_bytes().to_vec(),
                    (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .expect("base64"),
                    _ => panic!("{}: a run without text or b64", path.display()),
                };
                let times = run["times"].as_u64().expect("times") as usize;
                bytes.extend(piece.repeat(times));
            }
            (shown.clone(), bytes)
        })
        .collect()
}

/// `servers.json`: the smtpkit command line per group (`{port}`, `{sock}`,
/// `{harness}` = the data folder, `{certs}`).
pub fn servers() -> HashMap<String, String> {
    let json = read_json(&data_dir().join("servers.json"));
    json.as_object()
        .expect("servers.json is an object")
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.as_str().expect("a command line").to_owned()))
        .collect()
}
