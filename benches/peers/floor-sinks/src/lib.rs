//! The protocol of both floor sinks: just enough SMTP for `smtp-source`.
//!
//! A reply per command line (`250 OK`, `354` after DATA, `221` after QUIT), the
//! body skipped up to a line that is a single dot. No syntax checks, no state
//! beyond "in DATA or not", nothing kept: the least work a server can do per
//! message, so what is left is the kernel's.

/// Sent on every new connection.
pub const GREETING: &[u8] = b"220 floor ESMTP\r\n";

/// One connection's protocol state.
#[derive(Default)]
pub struct Session {
    in_data: bool,
    /// An unfinished line carried over from the previous read.
    partial: Vec<u8>,
    /// QUIT was answered: close once the reply is out.
    pub quit: bool,
}

impl Session {
    /// Consumes bytes read from the client and appends the replies to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while let Some(nl) = input.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.line(&input[..=nl], out);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&input[..=nl]);
                self.line(&line, out);
                line.clear();
                self.partial = line;
            }
            input = &input[nl + 1..];
        }
        self.partial.extend_from_slice(input);
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if self.in_data {
            if line == b".\r\n" || line == b".\n" {
                self.in_data = false;
                out.extend_from_slice(b"250 OK\r\n");
            }
            return;
        }
        let verb = &line[..line.len().min(4)];
        if verb.eq_ignore_ascii_case(b"DATA") {
            self.in_data = true;
            out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
        } else if verb.eq_ignore_ascii_case(b"QUIT") {
            self.quit = true;
            out.extend_from_slice(b"221 Bye\r\n");
        } else if verb.eq_ignore_ascii_case(b"EHLO") {
            out.extend_from_slice(b"250-floor\r\n250 PIPELINING\r\n");
        } else {
            out.extend_from_slice(b"250 OK\r\n");
        }
    }
}

/// The listening address from the command line.
pub fn listen() -> std::net::TcpListener {
    let addr = std::env::args().nth(1).expect("usage: <sink> ADDRESS:PORT");
    std::net::TcpListener::bind(addr).expect("bind")
}

/// Sets TCP_NODELAY, as every server in the benchmark does.
pub fn nodelay(fd: i32) {
    let one: libc::c_int = 1;
    // SAFETY: a valid pointer to an int of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
