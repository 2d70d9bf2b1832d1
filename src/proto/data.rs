//! The DATA decoder: finds the end of data (`CRLF.CRLF` only), removes stuffing
//! dots and enforces the size and line-length limits as bytes arrive.
//!
//! Only CRLF ends a line: a bare LF or bare CR is message content, so `\n.\n`,
//! `\n.\r\n` and `\r.\r\n` never end the data (SMTP smuggling, aiosmtpd's
//! CVE-2024-27305). Every line starting with `.` loses that dot, as aiosmtpd does.

/// Why a message was refused; the first error wins, as in aiosmtpd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataError {
    /// A line longer than the line-length limit (`500 Line too long`).
    LineTooLong,
    /// More bytes than the size limit (`552 Error: Too much mail data`).
    TooMuchData,
}

/// What one call of [`DataDecoder::decode`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes consumed; the rest must be offered again with more input.
    pub consumed: usize,
    /// The end-of-data line was consumed.
    pub finished: bool,
}

/// Streaming decoder for one message body.
#[derive(Clone, Debug)]
pub struct DataDecoder {
    at_line_start: bool,
    line_len: usize,
    total: usize,
    size_limit: Option<usize>,
    line_limit: usize,
    error: Option<DataError>,
    lines: u64,
}

impl DataDecoder {
    /// A decoder for a body of at most `size_limit` wire bytes with lines of at most
    /// `line_limit` bytes including CRLF.
    pub fn new(size_limit: Option<usize>, line_limit: usize) -> Self {
        DataDecoder {
            at_line_start: true,
            line_len: 0,
            total: 0,
            size_limit,
            line_limit,
            error: None,
            lines: 0,
        }
    }

    /// The first limit that was exceeded, if any.
    pub fn error(&self) -> Option<DataError> {
        self.error
    }

    /// Complete lines received so far (progress that re-arms the idle timer: a
    /// client trickling bytes without ever finishing a line makes none).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Wire bytes counted so far (stuffing dots and CRLFs included, the final
    /// `.CRLF` excluded).
    pub fn total(&self) -> usize {
        self.total
    }

    /// Decodes from `input`, appending unstuffed content to `out` while no limit is
    /// exceeded. Bytes that cannot be classified yet (a trailing CR, a line start
    /// of `.` or `.\r`) are left unconsumed.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Progress {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            if self.at_line_start {
                if rest[0] == b'.' {
                    if rest.len() < 3 && (rest.len() == 1 || rest[1] == b'\r') {
                        break; // could still be ".\r\n"
                    }
                    if rest.starts_with(b".\r\n") {
                        return Progress {
                            consumed: pos + 3,
                            finished: true,
                        };
                    }
                    // A stuffed (or lone leading) dot: counted, not kept.
                    self.count(1, out);
                    pos += 1;
                }
                self.at_line_start = false;
                continue;
            }
            match find_crlf(rest) {
                Some(i) => {
                    let seg = &rest[..i + 2];
                    self.count(seg.len(), out);
                    if self.error.is_none() {
                        out.extend_from_slice(seg);
                    }
                    pos += seg.len();
                    self.line_len = 0;
                    self.lines += 1;
                    self.at_line_start = true;
                }
                None => {
                    let n = if rest.last() == Some(&b'\r') {
                        rest.len() - 1
                    } else {
                        rest.len()
                    };
                    if n == 0 {
                        break;
                    }
                    let seg = &rest[..n];
                    self.count(n, out);
                    if self.error.is_none() {
                        out.extend_from_slice(seg);
                    }
                    pos += n;
                }
            }
        }
        Progress {
            consumed: pos,
            finished: false,
        }
    }

    fn count(&mut self, n: usize, out: &mut Vec<u8>) {
        if self.error.is_none() {
            // The byte (1-based, within these n) at which each limit is crossed; the
            // earlier one wins, so the verdict never depends on how reads were split.
            let size_at = self
                .size_limit
                .filter(|&limit| self.total.saturating_add(n) > limit)
                .map(|limit| limit.saturating_sub(self.total) + 1);
            let line_at = (self.line_len.saturating_add(n) > self.line_limit)
                .then(|| self.line_limit.saturating_sub(self.line_len) + 1);
            let error = match (size_at, line_at) {
                (Some(s), Some(l)) if l < s => Some(DataError::LineTooLong),
                (Some(_), _) => Some(DataError::TooMuchData),
                (None, Some(_)) => Some(DataError::LineTooLong),
                (None, None) => None,
            };
            if error.is_some() {
                self.error = error;
                out.clear();
            }
        }
        self.total = self.total.saturating_add(n);
        self.line_len = self.line_len.saturating_add(n);
    }
}

/// The index of the first CRLF in `bytes`: memchr for LF, then a look back for CR
/// (bare LFs are skipped as content). Cheaper than building a substring searcher
/// for every line.
fn find_crlf(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(j) = memchr::memchr(b'\n', &bytes[from..]) {
        let lf = from + j;
        if lf > 0 && bytes[lf - 1] == b'\r' {
            return Some(lf - 1);
        }
        from = lf + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], size: Option<usize>) -> (Vec<u8>, Option<DataError>, usize) {
        // Feed byte by byte to exercise every split.
        let mut d = DataDecoder::new(size, 1001);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for (i, &b) in input.iter().enumerate() {
            buf.push(b);
            let p = d.decode(&buf, &mut out);
            buf.drain(..p.consumed);
            if p.finished {
                return (out, d.error(), i + 1);
            }
        }
        panic!("not finished");
    }

    #[test]
    fn unstuffing_and_end() {
        let (out, err, used) = decode_all(b"a\r\n..b\r\n.c\r\n\r\n.\r\nNEXT", None);
        assert_eq!(out, b"a\r\n.b\r\nc\r\n\r\n");
        assert_eq!(err, None);
        assert_eq!(used, 17);
    }

    #[test]
    fn smuggling_variants_do_not_end_data() {
        let (out, _, _) = decode_all(b"x\n.\ny\n.\r\nz\r.\r\nw\r\n.\r\n", None);
        assert_eq!(out, b"x\n.\ny\n.\r\nz\r.\r\nw\r\n");
    }

    #[test]
    fn empty_message() {
        let (out, err, _) = decode_all(b".\r\n", None);
        assert!(out.is_empty());
        assert_eq!(err, None);
    }

    #[test]
    fn limits() {
        let (_, err, _) = decode_all(b"0123456789\r\n.\r\n", Some(11));
        assert_eq!(err, Some(DataError::TooMuchData));
        let (out, err, _) = decode_all(b"0123456789\r\n.\r\n", Some(12));
        assert_eq!(err, None);
        assert_eq!(out.len(), 12);
        let mut long = vec![b'a'; 999];
        long.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(decode_all(&long, None).1, None);
        let mut long = vec![b'a'; 1000];
        long.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(decode_all(&long, None).1, Some(DataError::LineTooLong));
    }
}
