//! Helpers shared by the suite: runtime-independent blocking clients (raw sockets
//! and lettre's `SmtpTransport`), a recording handler and controller shortcuts.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lettre::message::header::ContentType;
use lettre::{Message, SmtpTransport};
use smtpkit::{Config, Envelope, Handler, HookResult, Outcome, Peer, Session};

use crate::rt;

/// Read/write timeout of every raw client; also the bound of every wait.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The server name the suite's controllers announce.
pub const HOST: &str = "smtpkit.test";

/// aiosmtpd's controller configuration with [`HOST`] as the server name.
pub fn config() -> Config {
    Config::new(HOST).with_smtputf8(true)
}

/// A stopped TCP controller on 127.0.0.1, any free port, named [`HOST`].
pub fn tcp_controller<H: Handler>(handler: H) -> rt::Controller<H> {
    rt::Controller::new(handler)
        .with_hostname("127.0.0.1")
        .with_port(0)
        .with_server_hostname(HOST)
}

/// [`tcp_controller`], started.
pub fn started<H: Handler>(handler: H) -> rt::Controller<H> {
    let mut controller = tcp_controller(handler);
    controller.start().expect("controller starts");
    controller
}

/// The address a started controller listens on.
pub fn addr_of<H: Handler>(controller: &rt::Controller<H>) -> SocketAddr {
    controller
        .local_addr()
        .expect("a running controller reports its address")
}

/// The greeting a controller named [`HOST`] sends, up to the ident.
pub fn greeting_prefix() -> String {
    format!("220 {HOST} ")
}

// ---------------------------------------------------------------------------
// Raw clients
// ---------------------------------------------------------------------------

/// A blocking line-oriented SMTP client over a raw stream.
pub struct Client<S> {
    stream: S,
    buf: Vec<u8>,
}

impl Client<TcpStream> {
    /// Connects over TCP with [`IO_TIMEOUT`] read/write timeouts.
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// The client's own address (the server's `session.peer`).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// The underlying socket (for raw writes from tests).
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

impl Client<UnixStream> {
    /// Connects to a Unix domain socket with [`IO_TIMEOUT`] read/write timeouts.
    pub fn connect_unix(path: &Path) -> Self {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }
}

impl<S: Read + Write> Client<S> {
    /// Writes `data` as is.
    pub fn send(&mut self, data: &[u8]) {
        self.stream.write_all(data).expect("write to the server");
        self.stream.flush().expect("flush");
    }

    /// Reads one line (without CRLF); `None` at EOF with no partial line.
    pub fn line(&mut self) -> Option<String> {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                return Some(String::from_utf8(line).expect("reply is UTF-8"));
            }
            assert!(
                Instant::now() < deadline,
                "no complete line within {IO_TIMEOUT:?}; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    assert!(
                        self.buf.is_empty(),
                        "connection closed inside a line: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return None;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!(
                    "reading a line: {e}; got so far {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Reads one complete (possibly multi-line) reply, its lines without CRLF.
    pub fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..1000 {
            let line = self
                .line()
                .unwrap_or_else(|| panic!("connection closed before a reply; got {lines:?}"));
            assert!(
                line.len() >= 3 && line.as_bytes()[..3].iter().all(u8::is_ascii_digit),
                "not a reply line: {line:?}"
            );
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines;
            }
        }
        panic!("reply longer than 1000 lines")
    }

    /// Reads a reply that must be a single line.
    pub fn reply1(&mut self) -> String {
        let mut lines = self.reply();
        assert_eq!(lines.len(), 1, "expected a one-line reply, got {lines:?}");
        lines.pop().unwrap()
    }

    /// Sends `line` + CRLF and reads a one-line reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply1()
    }

    /// Sends `line` + CRLF and reads a (possibly multi-line) reply.
    pub fn cmd_multi(&mut self, line: &str) -> Vec<String> {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Reads the greeting and checks it is `220 HOST ...`.
    pub fn greeting(&mut self) -> String {
        let g = self.reply1();
        assert!(
            g.starts_with(&greeting_prefix()),
            "unexpected greeting {g:?}"
        );
        g
    }

    /// Asserts that the server closed the connection: nothing more to read and
    /// EOF (or a reset) within [`IO_TIMEOUT`].
    pub fn expect_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unexpected data before close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let mut chunk = [0u8; 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => panic!(
                    "expected the server to close, got {:?}",
                    String::from_utf8_lossy(&chunk[..n])
                ),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("expected the server to close within {IO_TIMEOUT:?}: {e}"),
            }
        }
    }

    /// HELO, MAIL, RCPT (each), DATA with `body` (which must end with CRLF and is
    /// sent as is, so dot-stuff it yourself), checking every reply up to DATA;
    /// returns the final reply to the message.
    pub fn send_mail(&mut self, from: &str, to: &[&str], body: &str) -> String {
        assert_eq!(self.cmd(&format!("MAIL FROM:<{from}>")), "250 OK");
        for rcpt in to {
            assert_eq!(self.cmd(&format!("RCPT TO:<{rcpt}>")), "250 OK");
        }
        assert_eq!(self.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
        self.send(body.as_bytes());
        self.send(b".\r\n");
        self.reply1()
    }
}

/// `connect` to `addr` must be refused (nothing listens there any more).
pub fn assert_refused(addr: SocketAddr) {
    match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
        Ok(_) => panic!("connection to {addr} succeeded; the server still listens"),
        Err(e) => assert_eq!(
            e.kind(),
            io::ErrorKind::ConnectionRefused,
            "connecting to {addr}: {e}"
        ),
    }
}

// ---------------------------------------------------------------------------
// lettre
// ---------------------------------------------------------------------------

/// A blocking lettre transport to 127.0.0.1:`port` (plain text, no pool).
pub fn mailer(port: u16) -> SmtpTransport {
    SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(IO_TIMEOUT))
        .build()
}

/// A plain-text message.
pub fn message(from: &str, to: &[&str], subject: &str, body: &str) -> Message {
    let mut builder = Message::builder()
        .from(from.parse().expect("from address"))
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for t in to {
        builder = builder.to(t.parse().expect("to address"));
    }
    builder.body(body.to_owned()).expect("build the message")
}

/// What the server receives for `message` sent by lettre: lettre writes the
/// formatted message followed by `CRLF . CRLF`, so the content (after the server
/// removes the dot-stuffing lettre added) is the formatted message plus CRLF.
pub fn expected_content(message: &Message) -> Vec<u8> {
    let mut v = message.formatted();
    v.extend_from_slice(b"\r\n");
    v
}

/// The numeric code of a lettre error (`None` for non-SMTP errors).
pub fn error_code(e: &lettre::transport::smtp::Error) -> Option<u16> {
    e.status().map(u16::from)
}

// ---------------------------------------------------------------------------
// Recording handler
// ---------------------------------------------------------------------------

/// One message as a handler saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub peer: Peer,
    pub host_name: Option<String>,
    pub mail_from: Option<String>,
    pub rcpt_tos: Vec<String>,
    pub content: Vec<u8>,
}

impl Received {
    pub fn from(session: &Session, envelope: &Envelope) -> Self {
        Received {
            peer: session.peer.clone(),
            host_name: session.host_name.clone(),
            mail_from: envelope.mail_from.clone(),
            rcpt_tos: envelope.rcpt_tos.clone(),
            content: envelope.content.clone(),
        }
    }

    pub fn content_str(&self) -> &str {
        std::str::from_utf8(&self.content).expect("content is UTF-8")
    }
}

/// Messages shared between a handler and the test.
pub type Inbox = Arc<Mutex<Vec<Received>>>;

/// A snapshot of the inbox.
pub fn messages(inbox: &Inbox) -> Vec<Received> {
    inbox.lock().unwrap().clone()
}

/// Records every message (default replies otherwise).
#[derive(Clone, Default)]
pub struct Recorder {
    pub inbox: Inbox,
}

impl Handler for Recorder {
    async fn handle_data(&self, session: &mut Session, envelope: &mut Envelope) -> HookResult {
        self.inbox
            .lock()
            .unwrap()
            .push(Received::from(session, envelope));
        Ok(Outcome::Default)
    }
}

// ---------------------------------------------------------------------------
// Runtime glue for the unthreaded controllers
// ---------------------------------------------------------------------------

/// Awaits a client thread without blocking the runtime that serves it (polls
/// with short async sleeps, at most 10 s), re-raising its panic.
pub async fn join_thread<T>(handle: JoinHandle<T>) -> T {
    for _ in 0..1000 {
        if handle.is_finished() {
            break;
        }
        crate::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        handle.is_finished(),
        "client thread still running after 10 s"
    );
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Waits (at most [`IO_TIMEOUT`]) for `signal` to fire, without blocking the runtime.
pub async fn wait_fired(signal: &smtpkit::server::Signal) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !signal.is_fired() && Instant::now() < deadline {
        crate::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        signal.is_fired(),
        "signal did not fire within {IO_TIMEOUT:?}"
    );
}

/// Runs `f` on its own thread and fails if it takes longer than `limit` (a
/// watchdog for tests that await futures without a bound of their own).
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = handle.join();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread sends before returning"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("test body did not finish within {limit:?}")
        }
    }
}

// ---------------------------------------------------------------------------
// TLS and AUTH
// ---------------------------------------------------------------------------

/// A raw client speaking TLS (after STARTTLS, or on an implicit-TLS port).
pub type TlsClient = Client<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

/// The name the suite's certificate is for, and the SNI its TLS clients send.
pub const TLS_NAME: &str = "localhost";

/// A server configuration with a self-signed certificate for [`TLS_NAME`],
/// generated once per test binary with rcgen, written as PEM to a temporary
/// directory and loaded with `server_config_from_pem` (no key is ever stored).
pub fn tls_config() -> Arc<rustls::ServerConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ServerConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let certified = rcgen::generate_simple_self_signed(vec![TLS_NAME.to_owned()])
                .expect("generate a self-signed certificate");
            let dir = tempfile::tempdir().expect("temporary directory");
            let cert = dir.path().join("cert.pem");
            let key = dir.path().join("key.pem");
            std::fs::write(&cert, certified.cert.pem()).expect("write the certificate");
            std::fs::write(&key, certified.key_pair.serialize_pem()).expect("write the key");
            smtpkit::server::server_config_from_pem(&cert, &key).expect("load the PEM files")
        })
        .clone()
}

#[path = "../common/tls_client.rs"]
mod tls_client;
use tls_client::tls_client_config;

impl Client<TcpStream> {
    /// Runs the client side of a TLS handshake (SNI [`TLS_NAME`]) on this
    /// connection. Nothing may have been received past the last reply read: after
    /// `220 Ready to start TLS` the server must not send plaintext.
    pub fn upgrade(self) -> TlsClient {
        assert!(
            self.buf.is_empty(),
            "plaintext received after the last reply: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let name = rustls::pki_types::ServerName::try_from(TLS_NAME).expect("a DNS name");
        let mut conn =
            rustls::ClientConnection::new(tls_client_config(), name).expect("a TLS client");
        let mut sock = self.stream;
        for _ in 0..100 {
            if !conn.is_handshaking() {
                break;
            }
            conn.complete_io(&mut sock).expect("TLS handshake");
        }
        assert!(!conn.is_handshaking(), "TLS handshake did not complete");
        Client {
            stream: rustls::StreamOwned::new(conn, sock),
            buf: Vec::new(),
        }
    }

    /// `STARTTLS` (must get `220 Ready to start TLS`), then the handshake.
    pub fn starttls(mut self) -> TlsClient {
        assert_eq!(self.cmd("STARTTLS"), "220 Ready to start TLS");
        self.upgrade()
    }

    /// Connects to an implicit-TLS port and runs the handshake.
    pub fn connect_tls(addr: SocketAddr) -> TlsClient {
        Client::connect(addr).upgrade()
    }
}

impl TlsClient {
    /// The TLS version the client negotiated.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.stream.conn.protocol_version()
    }
}

impl<S: Read + Write> Client<S> {
    /// Reads until the server closes the connection (EOF, a reset, or a TLS
    /// stream ending without close_notify) and returns what came before, including
    /// bytes already buffered. Fails after [`IO_TIMEOUT`].
    pub fn read_until_closed(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut got = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        loop {
            assert!(
                Instant::now() < deadline,
                "the server did not close within {IO_TIMEOUT:?}; got {:?}",
                String::from_utf8_lossy(&got)
            );
            match self.stream.read(&mut chunk) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::BrokenPipe
                    ) =>
                {
                    return got;
                }
                Err(e) => panic!(
                    "expected the server to close within {IO_TIMEOUT:?}: {e}; got {:?}",
                    String::from_utf8_lossy(&got)
                ),
            }
        }
    }

    /// Sends `AUTH PLAIN` with `login`/`password` as initial response; returns the reply.
    pub fn auth_plain(&mut self, login: &str, password: &str) -> String {
        let blob = b64(format!("\0{login}\0{password}").as_bytes());
        self.cmd(&format!("AUTH PLAIN {blob}"))
    }
}

/// Standard base64 with padding (as SASL uses it).
pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The lines of an EHLO reply without their `250-`/`250 ` prefixes.
pub fn ehlo_keywords(reply: &[String]) -> Vec<&str> {
    reply.iter().map(|l| l.get(4..).unwrap_or("")).collect()
}

/// [`tcp_controller`] offering STARTTLS with [`tls_config`].
pub fn starttls_controller<H: Handler>(handler: H) -> rt::Controller<H> {
    tcp_controller(handler).with_starttls(tls_config())
}

/// [`tcp_controller`] speaking implicit TLS with [`tls_config`].
pub fn implicit_tls_controller<H: Handler>(handler: H) -> rt::Controller<H> {
    tcp_controller(handler).with_implicit_tls(tls_config())
}

/// lettre's TLS parameters for the suite's certificate (SNI [`TLS_NAME`], any
/// certificate accepted).
pub fn lettre_tls() -> lettre::transport::smtp::client::TlsParameters {
    lettre::transport::smtp::client::TlsParameters::builder(TLS_NAME.to_owned())
        .dangerous_accept_invalid_certs(true)
        .build_rustls()
        .expect("lettre TLS parameters")
}

/// A lettre transport to 127.0.0.1:`port` with `tls` and, if given, credentials
/// tried with `mechanism` only.
pub fn tls_mailer(
    port: u16,
    tls: lettre::transport::smtp::client::Tls,
    credentials: Option<(&str, &str)>,
    mechanism: lettre::transport::smtp::authentication::Mechanism,
) -> SmtpTransport {
    use lettre::transport::smtp::authentication::Credentials;
    let mut builder = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(IO_TIMEOUT))
        .tls(tls);
    if let Some((login, password)) = credentials {
        builder = builder
            .credentials(Credentials::new(login.to_owned(), password.to_owned()))
            .authentication(vec![mechanism]);
    }
    builder.build()
}

/// What a handler saw of the session and envelope at the end of DATA.
#[derive(Clone, Debug)]
pub struct SessionSeen {
    pub tls: Option<smtpkit::proto::TlsInfo>,
    pub host_name: Option<String>,
    pub authenticated: bool,
    pub auth_mechanism: Option<String>,
    pub auth_identity: Option<String>,
    pub auth_data: Option<smtpkit::proto::AuthData>,
    pub mail_from: Option<String>,
    pub rcpt_tos: Vec<String>,
    pub content: Vec<u8>,
}

/// Records the session (TLS, authentication) and envelope of every message.
#[derive(Clone, Default)]
pub struct SessionRecorder {
    pub seen: Arc<Mutex<Vec<SessionSeen>>>,
}

impl SessionRecorder {
    /// A snapshot of what was recorded.
    pub fn snapshot(&self) -> Vec<SessionSeen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Handler for SessionRecorder {
    async fn handle_data(&self, session: &mut Session, envelope: &mut Envelope) -> HookResult {
        self.seen.lock().unwrap().push(SessionSeen {
            tls: session.tls.clone(),
            host_name: session.host_name.clone(),
            authenticated: session.authenticated,
            auth_mechanism: session.auth_mechanism.clone(),
            auth_identity: session.auth_identity.clone(),
            auth_data: session.auth_data.clone(),
            mail_from: envelope.mail_from.clone(),
            rcpt_tos: envelope.rcpt_tos.clone(),
            content: envelope.content.clone(),
        });
        Ok(Outcome::Default)
    }
}

/// The suite's only user: `alice` / `wonderland`.
pub fn alice() -> smtpkit::server::FileAuthenticator {
    smtpkit::server::FileAuthenticator::from_pairs([("alice", "wonderland")])
}

/// Asserts that `tls` describes a real negotiated session with SNI [`TLS_NAME`].
#[track_caller]
pub fn assert_tls_info(tls: Option<&smtpkit::proto::TlsInfo>) {
    let tls = tls.expect("the handler sees the TLS layer");
    assert!(
        tls.protocol_version == "TLSv1_3" || tls.protocol_version == "TLSv1_2",
        "protocol {:?}",
        tls.protocol_version
    );
    assert!(!tls.cipher_suite.is_empty(), "cipher suite {tls:?}");
    assert_eq!(tls.sni.as_deref(), Some(TLS_NAME));
    assert!(tls.peer_certificates.is_empty(), "no client certificate");
}

// ---------------------------------------------------------------------------
// Hostile clients: resets, a TLS ClientHello, a well-behaved client in the background
// ---------------------------------------------------------------------------

/// Aborts `stream` with a TCP RST: SO_LINGER 0, then close.
pub fn reset_stream(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("set SO_LINGER 0");
    drop(stream);
}

impl Client<TcpStream> {
    /// Aborts the connection with a TCP RST (whatever the server has not read yet
    /// may be lost).
    pub fn reset(self) {
        reset_stream(self.stream);
    }
}

impl TlsClient {
    /// Aborts the TLS connection with a TCP RST (no close_notify).
    pub fn reset(self) {
        reset_stream(self.stream.sock);
    }
}

/// The bytes of a real TLS ClientHello (SNI [`TLS_NAME`]), as the suite's TLS
/// clients send it first.
pub fn client_hello() -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from(TLS_NAME).expect("a DNS name");
    let mut conn = rustls::ClientConnection::new(tls_client_config(), name).expect("a TLS client");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("write the ClientHello");
    }
    assert!(hello.len() > 50, "a ClientHello: {hello:?}");
    hello
}

/// Whether `bytes` hold anything that looks like an SMTP reply line start (three
/// digits and a space or dash).
pub fn has_smtp_reply(bytes: &[u8]) -> bool {
    bytes
        .windows(4)
        .any(|w| w[..3].iter().all(u8::is_ascii_digit) && (w[3] == b' ' || w[3] == b'-'))
}

/// The sender of every [`GoodTraffic`] message.
pub const GOOD_FROM: &str = "good@example.com";

/// The messages in `inbox` not sent by a well-behaved client ([`GOOD_FROM`]).
pub fn hostile_messages(inbox: &Inbox) -> Vec<Received> {
    messages(inbox)
        .into_iter()
        .filter(|m| m.mail_from.as_deref() != Some(GOOD_FROM))
        .collect()
}

/// How a [`GoodTraffic`] client reaches the server.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    /// Plaintext SMTP.
    Plain,
    /// STARTTLS first, then the transaction over TLS.
    StartTls,
    /// An implicit-TLS port.
    ImplicitTls,
}

/// A well-behaved client sending mail from its own thread while a test attacks
/// the server: one message per connection, one every [`GoodTraffic::PACE`],
/// until [`GoodTraffic::finish`] (at most [`GoodTraffic::MAX_DURING`] of them),
/// then one more after the attack.
pub struct GoodTraffic {
    id: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<JoinHandle<Vec<usize>>>,
}

impl GoodTraffic {
    /// Messages sent at most while the attack goes on.
    pub const MAX_DURING: usize = 40;
    /// The pause between two messages.
    pub const PACE: Duration = Duration::from_millis(20);
    /// How long the client keeps sending without being stopped.
    pub const RUN_LIMIT: Duration = Duration::from_secs(10);

    /// Starts the client against `addr`, reaching it `via` plaintext or TLS. Returns
    /// once its first message was accepted, so the server serves it from the start.
    pub fn start(addr: SocketAddr, via: Via) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || {
            let stopped = || stopped.load(std::sync::atomic::Ordering::SeqCst);
            let deadline = Instant::now() + Self::RUN_LIMIT;
            let mut sent = Vec::new();
            while sent.len() < Self::MAX_DURING && !stopped() && Instant::now() < deadline {
                good_message(addr, via, id, sent.len());
                sent.push(sent.len());
                if sent.len() == 1 {
                    let _ = first_tx.send(());
                }
                std::thread::sleep(Self::PACE);
            }
            while !stopped() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            // Served after the attack too.
            good_message(addr, via, id, sent.len());
            sent.push(sent.len());
            sent
        });
        let mut traffic = GoodTraffic {
            id,
            stop,
            handle: Some(handle),
        };
        if first_rx.recv_timeout(IO_TIMEOUT * 3).is_err() {
            traffic.join(); // re-raises the client's panic
            panic!("the good client's first message was not accepted in time");
        }
        traffic
    }

    /// Stops the client after one last message and checks that it was served
    /// throughout: every message got `250 OK` (checked on its thread) and arrived
    /// exactly once, intact, in `inbox`. Returns how many it sent.
    pub fn finish(mut self, inbox: &Inbox) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let sent = self.join();
        assert!(
            sent.len() >= 2,
            "sent during and after the attack: {sent:?}"
        );
        let got = messages(inbox);
        for &n in &sent {
            let (subject, body) = good_subject_and_body(self.id, n);
            let copies: Vec<_> = got
                .iter()
                .filter(|m| {
                    m.content
                        .starts_with(format!("Subject: {subject}\r\n").as_bytes())
                })
                .collect();
            assert_eq!(copies.len(), 1, "good message {subject:?} arrived once");
            assert_eq!(copies[0].mail_from.as_deref(), Some(GOOD_FROM));
            assert_eq!(copies[0].rcpt_tos, ["rcpt@example.com"]);
            assert_eq!(
                copies[0].content_str(),
                format!("Subject: {subject}\r\n\r\n{body}")
            );
        }
        sent.len()
    }

    /// Joins the client thread (at most 30 s), re-raising its panic.
    fn join(&mut self) -> Vec<usize> {
        let handle = self.handle.take().expect("joined once");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(handle.is_finished(), "the good client hangs");
        match handle.join() {
            Ok(sent) => sent,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for GoodTraffic {
    fn drop(&mut self) {
        // A test that failed before `finish`: let the thread end on its own.
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn good_subject_and_body(id: usize, n: usize) -> (String, String) {
    (
        format!("good {id}-{n}"),
        format!("good message {id}-{n}\r\n"),
    )
}

/// One good message on its own connection: HELO, MAIL, RCPT, DATA, QUIT, each
/// reply checked.
fn good_message(addr: SocketAddr, via: Via, id: usize, n: usize) {
    fn transact<S: Read + Write>(c: &mut Client<S>, id: usize, n: usize) {
        let (subject, body) = good_subject_and_body(id, n);
        assert_eq!(c.cmd("HELO good.example"), format!("250 {HOST}"));
        let reply = c.send_mail(
            GOOD_FROM,
            &["rcpt@example.com"],
            &format!("Subject: {subject}\r\n\r\n{body}"),
        );
        assert_eq!(reply, "250 OK", "good message {subject:?}");
        assert_eq!(c.cmd("QUIT"), "221 Bye");
    }
    match via {
        Via::Plain => {
            let mut c = Client::connect(addr);
            c.greeting();
            transact(&mut c, id, n);
            c.expect_closed();
        }
        Via::StartTls => {
            let mut c = Client::connect(addr);
            c.greeting();
            let mut c = c.starttls();
            transact(&mut c, id, n);
            assert_eq!(c.read_until_closed(), b"");
        }
        Via::ImplicitTls => {
            let mut c = Client::connect_tls(addr);
            c.greeting();
            transact(&mut c, id, n);
            assert_eq!(c.read_until_closed(), b"");
        }
    }
}
