//! What the recording masked, done the same way to our replies (the harness's
//! `Masker` and `Recorder.reply`): the host name, the greeting's banner, queue
//! ids; invalid UTF-8 shown as `\xNN`; a bare LF marked.

/// Host names to mask: this machine's, and whatever a greeting named.
#[derive(Default)]
pub struct Masker {
    hosts: Vec<String>,
}

impl Masker {
    /// With this machine's host name.
    pub fn new() -> Self {
        let mut m = Masker::default();
        if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            m.learn(name.trim());
        }
        m
    }

    fn learn(&mut self, host: &str) {
        if !host.is_empty() && !self.hosts.iter().any(|h| h == host) {
            self.hosts.push(host.to_owned());
            self.hosts.sort_by_key(|h| std::cmp::Reverse(h.len()));
        }
    }

    /// One reply as the recording shows it (`raw`: lines with their line ends).
    pub fn reply(&mut self, raw: &[Vec<u8>], greeting: bool) -> Vec<String> {
        let mut lines = Vec::new();
        for line in raw {
            let bare_lf = line.ends_with(b"\n") && !line.ends_with(b"\r\n");
            let mut end = line.len();
            while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
                end -= 1;
            }
            let text = show_bytes(&line[..end]);
            if greeting && lines.is_empty() {
                self.learn_greeting(&text);
            }
            let mut text = self.line(&text, greeting);
            if bare_lf {
                text.push_str(" <bare-LF>");
            }
            lines.push(text);
        }
        lines
    }

    fn learn_greeting(&mut self, line: &str) {
        if let Some(host) = code_prefix(line).and_then(|rest| rest.split_whitespace().next())
            && !rest_starts_with_space(line)
            && !matches!(host, "ESMTP" | "SMTP" | "LMTP")
        {
            self.learn(host);
        }
    }

    fn line(&self, text: &str, greeting: bool) -> String {
        if greeting
            && let Some(rest) = code_prefix(text)
            && !rest_starts_with_space(text)
            && !rest.is_empty()
        {
            let host_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let banner = if rest[host_end..].trim().is_empty() {
                ""
            } else {
                " <BANNER>"
            };
            return format!("{}<HOST>{banner}", &text[..4]);
        }
        let head_len = head_len(text);
        let (head, rest) = text.split_at(head_len);
        let mut rest = rest.to_owned();
        for host in &self.hosts {
            rest = replace_host(&rest, host);
        }
        format!("{head}{}", mask_queue_id(&rest))
    }
}

/// `ddd ` or `ddd-` followed by the rest.
fn code_prefix(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    (b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && matches!(b[3], b' ' | b'-'))
        .then(|| &line[4..])
}

/// The greeting regex wants `\S+` right after the separator.
fn rest_starts_with_space(line: &str) -> bool {
    line[4..].starts_with(char::is_whitespace)
}

/// `^(\d{3}[ -]?)`: the code and its separator, if any.
fn head_len(text: &str) -> usize {
    let b = text.as_bytes();
    if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) {
        if matches!(b.get(3), Some(b' ' | b'-')) {
            4
        } else {
            3
        }
    } else {
        0
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `(?<![\w.-])HOST(?![\w-])` replaced by `<HOST>`.
fn replace_host(text: &str, host: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find(host) {
        let prev = rest[..at].chars().next_back().or(before);
        let next = rest[at + host.len()..].chars().next();
        let starts = !prev.is_some_and(|c| is_word(c) || c == '.' || c == '-');
        let ends = !next.is_some_and(|c| is_word(c) || c == '-');
        if starts && ends {
            out.push_str(&rest[..at]);
            out.push_str("<HOST>");
            before = Some('>');
            rest = &rest[at + host.len()..];
        } else {
            let step = at + rest[at..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..step]);
            before = rest[..step].chars().next_back();
            rest = &rest[step..];
        }
    }
    out.push_str(rest);
    out
}

/// `\b(queued as) \S+` -> `queued as <ID>`.
fn mask_queue_id(text: &str) -> String {
    match text.find("queued as ") {
        Some(at) => {
            let id_start = at + "queued as ".len();
            let id_end = text[id_start..]
                .find(char::is_whitespace)
                .map_or(text.len(), |e| id_start + e);
            if id_end == id_start {
                return text.to_owned();
            }
            format!("{}<ID>{}", &text[..id_start], &text[id_end..])
        }
        None => text.to_owned(),
    }
}

/// Python's `bytes.decode("utf-8", "backslashreplace")`.
pub fn show_bytes(mut bytes: &[u8]) -> String {
    let mut out = String::new();
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.push_str(std::str::from_utf8(&bytes[..good]).expect("valid prefix"));
                let bad = e.error_len().unwrap_or(bytes.len() - good);
                for b in &bytes[good..good + bad] {
                    out.push_str(&format!("\\x{b:02x}"));
                }
                bytes = &bytes[good + bad..];
            }
        }
    }
}

/// The harness's `reply_code`: the last line's code, or `GARBAGE`.
pub fn reply_code(lines: &[String]) -> String {
    let last = lines.last().map(String::as_str).unwrap_or("");
    match last.get(..3) {
        Some(code) if code.bytes().all(|b| b.is_ascii_digit()) => code.to_owned(),
        _ => "GARBAGE".to_owned(),
    }
}
