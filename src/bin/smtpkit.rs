//! `smtpkit`: the command-line SMTP server, mirroring `python -m aiosmtpd`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use smtpkit::Config;
use smtpkit::handlers::blocking::BlockingPool;
use smtpkit::handlers::{Debugging, Mailbox, Sink};
use smtpkit::proto::Extensions;
use std::sync::Arc;

use smtpkit::server::{
    FileAuthenticator, Handler, Runtime, Tcp, ThreadedController, Unix, default_server_hostname,
    server_config_from_pem,
};

const DEFAULT_HOST: &str = "localhost";
const DEFAULT_PORT: u16 = 8025;

/// An RFC 5321 SMTP server with extensions.
#[derive(Parser, Debug)]
#[command(
    name = "smtpkit",
    version,
    about = "An RFC 5321 SMTP server with extensions."
)]
struct Args {
    /// Do not setuid to `nobody` (which needs root); without this flag smtpkit
    /// switches to `nobody` after binding, as aiosmtpd does.
    #[arg(short = 'n', long = "nosetuid")]
    nosetuid: bool,

    /// Handler for received mail: `sink`, `debugging` (default), `mailbox DIR` or
    /// `proxy HOST PORT`
    /// (aiosmtpd class paths such as `aiosmtpd.handlers.Sink` work too).
    #[arg(
        short = 'c',
        long = "class",
        value_name = "HANDLER",
        default_value = "debugging"
    )]
    class: String,

    /// Restrict messages to SIZE bytes (RFC 1870 SIZE; 0: no limit). Default: no
    /// limit, as aiosmtpd's CLI; 33554432 (aiosmtpd's library default) with
    /// --unix, --auth-file or --lmtp, which aiosmtpd offers only through its library.
    #[arg(short = 's', long = "size", value_name = "SIZE")]
    size: Option<usize>,

    /// Enable the SMTPUTF8 extension (RFC 6531).
    #[arg(short = 'u', long = "smtputf8")]
    smtputf8: bool,

    /// Increase debugging output (repeatable: -d info, -dd debug, -ddd trace).
    #[arg(short = 'd', long = "debug", action = clap::ArgAction::Count)]
    debug: u8,

    /// Host and port to listen on: `HOST:PORT`, `HOST`, `:PORT` (default localhost:8025).
    #[arg(short = 'l', long = "listen", value_name = "[HOST][:PORT]", num_args = 0..=1)]
    listen: Option<Option<String>>,

    /// Listen on this Unix domain socket instead of TCP.
    #[arg(long = "unix", value_name = "PATH", conflicts_with = "listen")]
    unix: Option<PathBuf>,

    /// Name in the greeting and HELO/EHLO replies (default: this machine's name).
    #[arg(long = "hostname", value_name = "NAME")]
    hostname: Option<String>,

    /// Certificate file (PEM) for STARTTLS; needs --tlskey. STARTTLS is then
    /// required before mail unless --no-requiretls.
    #[arg(long = "tlscert", value_name = "CERTFILE")]
    tlscert: Option<PathBuf>,

    /// Key file (PEM) for STARTTLS; needs --tlscert.
    #[arg(long = "tlskey", value_name = "KEYFILE")]
    tlskey: Option<PathBuf>,

    /// Offer STARTTLS without requiring it.
    #[arg(long = "no-requiretls")]
    no_requiretls: bool,

    /// Certificate file (PEM) for implicit TLS (SMTPS); needs --smtpskey.
    #[arg(long = "smtpscert", value_name = "CERTFILE")]
    smtpscert: Option<PathBuf>,

    /// Key file (PEM) for implicit TLS (SMTPS); needs --smtpscert.
    #[arg(long = "smtpskey", value_name = "KEYFILE")]
    smtpskey: Option<PathBuf>,

    /// Enable AUTH PLAIN and LOGIN against this file (one `user:password` per line).
    #[arg(long = "auth-file", value_name = "FILE")]
    auth_file: Option<PathBuf>,

    /// Require AUTH before MAIL, RCPT, DATA, VRFY and HELP.
    #[arg(long = "auth-required")]
    auth_required: bool,

    /// Allow AUTH before TLS (by default AUTH is offered only over TLS).
    #[arg(long = "no-auth-require-tls")]
    no_auth_require_tls: bool,

    /// Expect a PROXY protocol header (v1 or v2) within SECONDS before the
    /// greeting; every valid header is accepted.
    #[arg(long = "proxy-protocol-timeout", value_name = "SECONDS")]
    proxy_protocol_timeout: Option<f64>,

    /// Speak LMTP (RFC 2033) instead of SMTP.
    #[arg(long = "lmtp")]
    lmtp: bool,

    /// The async runtime to serve on: tokio (default), smol or async-std (the
    /// latter two when built with features runtime-smol / runtime-async-std);
    /// the environment variable SMTPKIT_RUNTIME sets the default.
    #[arg(long = "runtime", value_name = "RUNTIME", default_value = "tokio", env = "SMTPKIT_RUNTIME",
          value_parser = ["tokio", "smol", "async-std"])]
    runtime: String,

    /// Threads serving connections (tokio): 1 runs one event loop, as aiosmtpd
    /// does, with the least CPU per connection; more help CPU-heavy handlers;
    /// 0 means one per core.
    #[arg(
        long = "workers",
        value_name = "N",
        default_value_t = 1,
        env = "SMTPKIT_WORKERS"
    )]
    workers: usize,

    /// Busy-polling window in microseconds (0: off): while a connection is the
    /// only one open, the server keeps reading its socket this long after each
    /// reply (and, with none open, accepting) instead of sleeping, which
    /// shortens the round trip to a fast local client; it backs off by itself
    /// for slow clients and never runs beside other connections.
    #[arg(
        long = "busy-poll",
        value_name = "MICROSECONDS",
        default_value_t = 200,
        env = "SMTPKIT_BUSY_POLL"
    )]
    busy_poll: u64,

    /// Threads for blocking work (Maildir writes, the proxy's relay): at most
    /// this many run at once, whatever the number of clients.
    #[arg(long = "blocking-threads", value_name = "N",
          default_value_t = BlockingPool::DEFAULT_THREADS as u32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    blocking_threads: u32,

    /// Blocking work that may wait for a thread; beyond it a client gets a
    /// temporary `451 4.3.0` and retries.
    #[arg(long = "blocking-queue", value_name = "N", default_value_t = BlockingPool::DEFAULT_QUEUE)]
    blocking_queue: usize,

    /// Refuse MAIL and RCPT addresses holding a control character (NUL, CR,
    /// LF, TAB, DEL...) with `501 5.1.7` / `501 5.1.3` (aiosmtpd accepts them).
    #[arg(long = "refuse-control-characters")]
    refuse_control_characters: bool,

    /// Seconds a client may be idle before it gets `421 4.4.2` and is
    /// disconnected (aiosmtpd's 300).
    #[arg(long = "timeout", value_name = "SECONDS", default_value_t = 300.0,
          value_parser = parse_seconds)]
    timeout: f64,

    /// Seconds a handler hook may take before the client gets `421` and is
    /// disconnected (default: no limit, as aiosmtpd).
    #[arg(long = "hook-timeout", value_name = "SECONDS", value_parser = parse_seconds)]
    hook_timeout: Option<f64>,

    /// Most connections served at once; further ones get `421 4.7.0` and are
    /// closed (default: no limit, as aiosmtpd).
    #[arg(long = "max-connections", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,

    /// Most connections served at once from one client address (default: no
    /// limit, as aiosmtpd).
    #[arg(long = "max-connections-per-ip", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    max_connections_per_ip: Option<u64>,

    /// Most messages per connection; the next MAIL gets `421 4.7.0` and the
    /// connection closes (default: no limit).
    #[arg(long = "max-messages-per-connection", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    max_messages_per_connection: Option<u32>,

    /// Failed AUTH attempts per connection before `421 4.7.0` and a close
    /// (default: no limit, as aiosmtpd).
    #[arg(long = "max-auth-failures", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    max_auth_failures: Option<u32>,

    /// Seconds a stop (SIGTERM, SIGINT) waits for the messages in progress
    /// to finish: sessions between commands get `421` at once, the others
    /// after their message; at the deadline, everything left gets `421`. A
    /// second signal stops at once.
    #[arg(long = "shutdown-timeout", value_name = "SECONDS", default_value_t = 30.0,
          value_parser = parse_seconds)]
    shutdown_timeout: f64,

    /// ESMTP extensions beyond aiosmtpd's dialogue, comma-separated:
    /// pipelining, chunking, binarymime, enhancedstatuscodes, dsn, requiretls,
    /// limits, or all. Default: none (aiosmtpd's replies byte for byte).
    #[arg(long = "extensions", value_name = "LIST", default_value = "",
          value_parser = parse_extensions)]
    extensions: Extensions,

    /// Longest DATA line in octets, CRLF included: a message with a longer
    /// one gets `500 Line too long`. Default 1001 (aiosmtpd's fixed limit);
    /// 0: no limit (real mail breaks it).
    #[arg(long = "max-line-length", value_name = "N", default_value_t = 1001)]
    max_line_length: usize,

    /// Most recipients per transaction: RCPT past it gets `452 4.5.3`
    /// (LIMITS advertises it as RCPTMAX). Default: no limit, as aiosmtpd.
    #[arg(long = "max-recipients", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    max_recipients: Option<u64>,

    /// Additional arguments for the handler (e.g. the Maildir for `mailbox`).
    #[arg(value_name = "CLASSARGS")]
    classargs: Vec<String>,
}

/// `--hook-timeout`, `--max-connections`, `--max-connections-per-ip`.
fn limits(args: &Args) -> smtpkit::server::Limits {
    smtpkit::server::Limits {
        hook_timeout: args.hook_timeout.map(std::time::Duration::from_secs_f64),
        max_connections: args.max_connections.map(|n| n as usize),
        max_connections_per_ip: args.max_connections_per_ip.map(|n| n as usize),
    }
}

/// A non-negative number of seconds.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..1e9).contains(&s) => Ok(s),
        _ => Err(format!("not a number of seconds: {text}")),
    }
}

/// `--extensions LIST`.
fn parse_extensions(list: &str) -> Result<Extensions, String> {
    list.parse()
        .map_err(|e: smtpkit::proto::UnknownExtension| e.to_string())
}

/// The pool of `--blocking-threads` and `--blocking-queue`.
fn blocking_pool(args: &Args) -> BlockingPool {
    BlockingPool::new(args.blocking_threads as usize, args.blocking_queue)
}

/// The `--busy-poll` window (`None` when 0).
fn busy_poll(args: &Args) -> Option<std::time::Duration> {
    (args.busy_poll > 0).then(|| std::time::Duration::from_micros(args.busy_poll))
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("smtpkit: error: {msg}");
    ExitCode::from(2)
}

/// aiosmtpd's `-l` parsing: `rpartition(":")`.
fn parse_listen(listen: Option<&str>) -> Result<(String, u16), String> {
    let Some(listen) = listen else {
        return Ok((DEFAULT_HOST.to_owned(), DEFAULT_PORT));
    };
    match listen.rsplit_once(':') {
        None => Ok((listen.to_owned(), DEFAULT_PORT)),
        Some((host, port)) => {
            let host = if host.is_empty() { DEFAULT_HOST } else { host };
            let port = if port.is_empty() {
                DEFAULT_PORT
            } else {
                port.parse()
                    .map_err(|_| format!("Invalid port number: {port}"))?
            };
            Ok((host.to_owned(), port))
        }
    }
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let text = e.to_string();
            let line = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            return usage_error(line);
        }
    };
    init_logging(args.debug);
    if let Err(e) = check_tls_args(&args) {
        return usage_error(&e);
    }
    if let Some(t) = args.proxy_protocol_timeout {
        if !(t > 0.0 && t.is_finite()) {
            return usage_error("proxy_protocol_timeout must be > 0");
        }
        if t < 3.0 {
            tracing::warn!("proxy_protocol_timeout < 3.0");
        }
    }
    let class = args
        .class
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match class.as_str() {
        "sink" => {
            if !args.classargs.is_empty() {
                return usage_error("Sink handler does not accept arguments");
            }
            with_auth(Sink, &args)
        }
        "debugging" => match Debugging::from_cli_args(&args.classargs) {
            Ok(h) => with_auth(h, &args),
            Err(e) => usage_error(&e),
        },
        #[cfg(feature = "proxy-handler")]
        "proxy" => match smtpkit::handlers::Proxy::from_cli_args(&args.classargs) {
            Ok(h) => with_auth(h.with_pool(blocking_pool(&args)), &args),
            Err(e) => usage_error(&e),
        },
        "mailbox" => match Mailbox::from_cli_args(&args.classargs) {
            Ok(h) => with_auth(h.with_pool(blocking_pool(&args)), &args),
            Err(e) => usage_error(&e),
        },
        _ => usage_error(&format!(
            "unknown handler {:?} (expected sink, debugging, mailbox or proxy)",
            args.class
        )),
    }
}

/// aiosmtpd's pairing and existence checks for the certificate flags.
fn check_tls_args(args: &Args) -> Result<(), String> {
    for (cert, key, cname, kname) in [
        (&args.smtpscert, &args.smtpskey, "--smtpscert", "--smtpskey"),
        (&args.tlscert, &args.tlskey, "--tlscert", "--tlskey"),
    ] {
        if cert.is_some() != key.is_some() {
            return Err(format!("{cname} and {kname} must be specified together"));
        }
        if let Some(c) = cert
            && !c.exists()
        {
            return Err(format!("Cert file {} not found", c.display()));
        }
        if let Some(k) = key
            && !k.exists()
        {
            return Err(format!("Key file {} not found", k.display()));
        }
    }
    Ok(())
}

/// Loads the `--auth-file` authenticator, if any, and runs `handler` beside it.
fn with_auth<H: Handler>(handler: H, args: &Args) -> ExitCode {
    match args
        .auth_file
        .as_ref()
        .map(FileAuthenticator::load)
        .transpose()
    {
        Ok(users) => on_runtime(handler, users, args),
        Err(e) => usage_error(&e.to_string()),
    }
}

fn init_logging(debug: u8) {
    let level = match debug {
        0 => "error",
        1 => "smtpkit=info",
        2 => "smtpkit=debug",
        _ => "smtpkit=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMTPKIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn config(args: &Args) -> Config {
    let mut config = Config::new(
        args.hostname
            .clone()
            .unwrap_or_else(default_server_hostname),
    )
    .with_data_size_limit(args.size.or_else(|| default_size(args)))
    .with_smtputf8(args.smtputf8);
    config.auth_required = args.auth_required;
    config.lmtp = args.lmtp;
    config.refuse_control_characters = args.refuse_control_characters;
    config.extensions = args.extensions;
    config.timeout = std::time::Duration::from_secs_f64(args.timeout);
    config.max_messages_per_connection = args.max_messages_per_connection;
    config.max_auth_failures = args.max_auth_failures;
    config.data_line_length_limit = (args.max_line_length > 0).then_some(args.max_line_length);
    config.recipient_limit = args.max_recipients.map(|n| n as usize);
    config.proxy_protocol_timeout = args
        .proxy_protocol_timeout
        .map(std::time::Duration::from_secs_f64);
    config.auth_require_tls = !args.no_auth_require_tls;
    // aiosmtpd's CLI requires STARTTLS when given a certificate.
    config.require_starttls = !args.no_requiretls;
    config
}

/// The message size limit without `-s`. Used as `python -m aiosmtpd` (only flags
/// aiosmtpd's CLI has), smtpkit keeps that CLI's default: no limit. The
/// smtpkit-only features (`--unix`, `--auth-file`, `--lmtp`,
/// `--proxy-protocol-timeout`) are configurations aiosmtpd
/// offers only through its library (`Controller`, `SMTP`), whose default is
/// 33554432 bytes; with them smtpkit takes the library's default.
fn default_size(args: &Args) -> Option<usize> {
    let library_only = args.unix.is_some()
        || args.auth_file.is_some()
        || args.lmtp
        || args.proxy_protocol_timeout.is_some();
    library_only.then_some(smtpkit::proto::DATA_SIZE_DEFAULT)
}

/// The STARTTLS and implicit-TLS configurations from the certificate flags.
type TlsConfigs = (
    Option<Arc<rustls::ServerConfig>>,
    Option<Arc<rustls::ServerConfig>>,
);

fn tls_configs(args: &Args) -> Result<TlsConfigs, String> {
    let load = |cert: &Option<PathBuf>, key: &Option<PathBuf>| match (cert, key) {
        (Some(c), Some(k)) => server_config_from_pem(c, k)
            .map(Some)
            .map_err(|e| e.to_string()),
        _ => Ok(None),
    };
    Ok((
        load(&args.tlscert, &args.tlskey)?,
        load(&args.smtpscert, &args.smtpskey)?,
    ))
}

/// Runs the server on the runtime named by `--runtime`.
fn on_runtime<H: Handler>(handler: H, users: Option<FileAuthenticator>, args: &Args) -> ExitCode {
    match args.runtime.as_str() {
        #[cfg(feature = "runtime-tokio")]
        "tokio" => run::<H, smtpkit::tokio::TokioRuntime>(handler, users, args),
        #[cfg(feature = "runtime-smol")]
        "smol" => run::<H, smtpkit::smol::SmolRuntime>(handler, users, args),
        #[cfg(feature = "runtime-async-std")]
        "async-std" => run::<H, smtpkit::async_std::AsyncStdRuntime>(handler, users, args),
        other => {
            let _ = (handler, users);
            usage_error(&format!(
                "runtime {other} is not compiled in (rebuild with --features runtime-{other})"
            ))
        }
    }
}

enum Running<H: Handler, R: Runtime + Default> {
    Tcp(ThreadedController<H, R, Tcp>),
    Unix(ThreadedController<H, R, Unix>),
}

fn run<H: Handler, R: Runtime + Default>(
    handler: H,
    users: Option<FileAuthenticator>,
    args: &Args,
) -> ExitCode {
    let listen = match parse_listen(args.listen.as_ref().and_then(|l| l.as_deref())) {
        Ok(l) => l,
        Err(e) => return usage_error(&e),
    };
    let (starttls, implicit) = match tls_configs(args) {
        Ok(t) => t,
        Err(e) => return usage_error(&e),
    };
    // Catch SIGINT/SIGTERM from before the port opens, so a stop request is never lost.
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smtpkit: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let started = match &args.unix {
        Some(path) => {
            let mut c = ThreadedController::<H, R, Unix>::new(handler, path)
                .with_config(config(args))
                .with_limits(limits(args))
                .with_workers(args.workers)
                .with_busy_poll(busy_poll(args));
            if let Some(t) = starttls.clone() {
                c = c.with_starttls(t);
            }
            if let Some(t) = implicit.clone() {
                c = c.with_implicit_tls(t);
            }
            if let Some(u) = users.clone() {
                c = c.with_authenticator(u);
            }
            c.start().map(|()| {
                tracing::info!("Server is listening on {}", path.display());
                Running::Unix(c)
            })
        }
        None => {
            let mut c = ThreadedController::<H, R, Tcp>::new(handler)
                .with_hostname(listen.0.clone())
                .with_port(listen.1)
                .with_config(config(args))
                .with_limits(limits(args))
                .with_workers(args.workers)
                .with_busy_poll(busy_poll(args));
            if let Some(t) = starttls {
                c = c.with_starttls(t);
            }
            if let Some(t) = implicit {
                c = c.with_implicit_tls(t);
            }
            if let Some(u) = users {
                c = c.with_authenticator(u);
            }
            c.start().map(|()| {
                for a in c.local_addrs() {
                    tracing::info!("Server is listening on {}:{}", a.ip(), a.port());
                }
                Running::Tcp(c)
            })
        }
    };
    let mut running = match started {
        Ok(r) => r,
        Err(e) => {
            eprintln!("smtpkit: {e}");
            return ExitCode::from(1);
        }
    };
    if !args.nosetuid
        && let Err(msg) = setuid_nobody()
    {
        eprintln!("{msg}");
        return ExitCode::from(1);
    }
    // The first SIGTERM or SIGINT stops gracefully (the messages in progress
    // finish, until --shutdown-timeout); a second one stops at once.
    let _ = signals.forever().next();
    let now = match &running {
        Running::Tcp(c) => c.stop_signal(),
        Running::Unix(c) => c.stop_signal(),
    };
    std::thread::spawn(move || {
        if signals.forever().next().is_some()
            && let Some(now) = now
        {
            now.fire();
        }
    });
    let deadline = std::time::Duration::from_secs_f64(args.shutdown_timeout);
    let stopped = match &mut running {
        Running::Tcp(c) => c.stop_gracefully(deadline),
        Running::Unix(c) => c.stop_gracefully(deadline),
    };
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smtpkit: {e}");
            ExitCode::from(1)
        }
    }
}

fn setuid_nobody() -> Result<(), String> {
    let fail = || "Cannot setuid \"nobody\"; try running with -n option.".to_owned();
    let nobody = nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .ok_or_else(fail)?;
    nix::unistd::setuid(nobody.uid).map_err(|_| fail())
}
