//! [`Mailbox`]: delivers every message into a Maildir, as aiosmtpd's `Mailbox`.

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::proto::{Envelope, Session};
use crate::server::{Handler, HookResult};
use crate::{HandlerError, Outcome};

use super::blocking::BlockingPool;
use super::message::{PrepareStream, prepare_message};

/// Stores each received message in a [Maildir] and accepts it with `250 OK`,
/// as aiosmtpd's `Mailbox(mail_dir)` handler (a `Message` handler whose
/// `handle_message` is Python's `mailbox.Maildir(mail_dir).add(message)`).
///
/// The stored file is [`prepare_message`]'s output: the message as received,
/// with `X-Peer`, `X-MailFrom` and `X-RcptTo` headers appended to its header
/// block and LF line endings — the bytes aiosmtpd stores.
///
/// Delivery streams and is crash-safe: the message is written to
/// `tmp/<unique>` as it arrives (the file is created when the body begins,
/// and written in 64 KiB pieces, so memory does not grow with the message),
/// then fsynced, renamed to `new/<unique>` and the `new` directory is fsynced
/// before the client gets its `250 OK`. A half-written message is never
/// visible in `new/`, an acknowledged message survives a crash, and a message
/// that is abandoned (RSET, QUIT, a timeout, the client going away), refused
/// or fails part-way leaves no file in `tmp/`. Unique names follow
/// Python's `Maildir`: `<seconds>.M<microseconds>P<pid>Q<counter>.<hostname>`.
///
/// The blocking file I/O runs on a bounded [`BlockingPool`] (the process-wide
/// [`BlockingPool::shared`] unless [`Mailbox::with_pool`] gives another), which
/// the hook awaits without blocking the async runtime; any runtime works. If the
/// file system fails, the client gets a temporary reply and retries: `452 4.3.1`
/// when the disk or quota is full, `451 4.3.0` for other I/O errors (permissions,
/// a missing directory) and when the pool is full. Nothing is left behind in
/// `tmp/`.
///
/// ```no_run
/// use smtpkit::{handlers::Mailbox, tokio::Controller};
///
/// let mut controller = Controller::new(Mailbox::new("/var/mail/catchall")?).with_port(8025);
/// controller.start().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Storing a message directly:
///
/// ```
/// use smtpkit::handlers::Mailbox;
///
/// let dir = std::env::temp_dir().join(format!("smtpkit-doc-{}", std::process::id()));
/// let mailbox = Mailbox::new(&dir)?;
/// let path = mailbox.add(b"Subject: hi\n\nHello\n")?;
/// assert_eq!(std::fs::read(&path)?, b"Subject: hi\n\nHello\n");
/// assert!(path.starts_with(dir.join("new")));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// [Maildir]: https://cr.yp.to/proto/maildir.html
#[derive(Clone, Debug)]
pub struct Mailbox {
    dir: PathBuf,
    pool: BlockingPool,
}

impl Mailbox {
    /// Opens the Maildir at `dir`, creating `dir`, `dir/tmp`, `dir/new` and
    /// `dir/cur` (mode `0700`, as Python's `Maildir`) where they are missing.
    ///
    /// # Errors
    ///
    /// The I/O error when a directory cannot be created (or `dir` is a file).
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Mailbox> {
        let dir = dir.into();
        create_dir(&dir, true)?;
        for sub in ["tmp", "new", "cur"] {
            create_dir(&dir.join(sub), false)?;
        }
        Ok(Mailbox {
            dir,
            pool: BlockingPool::shared(),
        })
    }

    /// Writes messages on `pool` instead of the process-wide
    /// [`BlockingPool::shared`] (the command line's `--blocking-threads` and
    /// `--blocking-queue`).
    #[must_use]
    pub fn with_pool(mut self, pool: BlockingPool) -> Self {
        self.pool = pool;
        self
    }

    /// The pool messages are written on.
    pub fn pool(&self) -> &BlockingPool {
        &self.pool
    }

    /// The handler for the command line's `-c Mailbox <maildir>`.
    ///
    /// # Errors
    ///
    /// aiosmtpd's usage errors `The directory for the maildir is required` and
    /// `Too many arguments for Mailbox handler`, or a message naming the
    /// directory when it cannot be created.
    pub fn from_cli_args(args: &[String]) -> Result<Self, String> {
        match args {
            [] => Err("The directory for the maildir is required".to_owned()),
            [dir] => Mailbox::new(dir).map_err(|e| format!("Cannot create the maildir {dir}: {e}")),
            _ => Err("Too many arguments for Mailbox handler".to_owned()),
        }
    }

    /// The Maildir's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Stores `message` (stored as given: no headers are added) and returns
    /// the path of the new file in `new/`: Python's `Maildir.add`. This
    /// blocks on file I/O, including two fsyncs; the [`Handler`] hook runs it
    /// on the mailbox's [`BlockingPool`].
    ///
    /// # Errors
    ///
    /// Any I/O error; the temporary file is removed again and nothing is left
    /// in `new/`.
    pub fn add(&self, message: &[u8]) -> io::Result<PathBuf> {
        let tmp_dir = self.dir.join("tmp");
        let (name, tmp_path, file) = create_unique(&tmp_dir)?;
        let new_dir = self.dir.join("new");
        let new_path = new_dir.join(&name);
        if let Err(e) = write_and_sync(file, message) {
            let _ = fs::remove_file(&tmp_path);
            return Err(e);
        }
        if let Err(e) = fs::rename(&tmp_path, &new_path) {
            let _ = fs::remove_file(&tmp_path);
            return Err(e);
        }
        if let Err(e) = sync_dir(&new_dir) {
            // The client is told that delivery failed and will retry: do not
            // keep a copy that may or may not survive a crash.
            let _ = fs::remove_file(&new_path);
            return Err(e);
        }
        Ok(new_path)
    }

    /// Deletes every message in `new/` and `cur/` (aiosmtpd's `reset()`,
    /// Python's `Maildir.clear()`).
    ///
    /// # Errors
    ///
    /// The first I/O error met (a missing file is not one).
    pub fn reset(&self) -> io::Result<()> {
        for sub in ["new", "cur"] {
            for entry in fs::read_dir(self.dir.join(sub))? {
                let entry = entry?;
                if !entry.file_type()?.is_dir() {
                    match fs::remove_file(entry.path()) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs [`Mailbox::add`] on the blocking pool and waits for it without
    /// blocking the caller's executor. A full pool is a temporary error.
    fn add_in_background(
        &self,
        message: Vec<u8>,
    ) -> impl Future<Output = io::Result<PathBuf>> + Send + 'static {
        let mailbox = self.clone();
        let delivery = self.pool.run(move || mailbox.add(&message));
        async move {
            delivery
                .await
                .map_err(io::Error::from)
                .and_then(|stored| stored)
        }
    }
}

impl Mailbox {
    /// Runs `work` on the pool, as an `io::Result`.
    fn on_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> impl Future<Output = io::Result<T>> + Send + 'static {
        let run = self.pool.run(work);
        async move { run.await.map_err(io::Error::from).and_then(|done| done) }
    }

    fn failed(&self, error: io::Error) -> HandlerError {
        tracing::error!(maildir = %self.dir.display(), %error, "maildir delivery failed");
        HandlerError::from(error)
    }
}

/// A message being written to `tmp/`: the file, the prepared bytes not
/// written yet, and the preparer. Kept in `Envelope::spool` between chunks.
struct Delivery {
    file: TmpFile,
    prepare: PrepareStream,
    pending: Vec<u8>,
}

/// Bytes collected before they are written (one write per this much).
const WRITE_AT: usize = 64 << 10;

/// A file in `tmp/`, removed when dropped unless it was moved into `new/`:
/// a message abandoned, refused or failed part-way leaves nothing behind,
/// whatever ends it (RSET, an error, a panic, the client going away).
struct TmpFile {
    file: File,
    name: String,
    path: PathBuf,
    delivered: bool,
}

impl TmpFile {
    fn create(tmp_dir: &Path) -> io::Result<TmpFile> {
        let (name, path, file) = create_unique(tmp_dir)?;
        Ok(TmpFile {
            file,
            name,
            path,
            delivered: false,
        })
    }

    /// Writes the rest, fsyncs, renames into `new/` and fsyncs `new/`.
    fn deliver(mut self, rest: &[u8], new_dir: &Path) -> io::Result<PathBuf> {
        self.file.write_all(rest)?;
        self.file.sync_all()?;
        let new_path = new_dir.join(&self.name);
        fs::rename(&self.path, &new_path)?;
        self.delivered = true;
        if let Err(e) = sync_dir(new_dir) {
            // The client is told that delivery failed and will retry: do not
            // keep a copy that may or may not survive a crash.
            let _ = fs::remove_file(&new_path);
            return Err(e);
        }
        Ok(new_path)
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if !self.delivered {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Streams each message into `tmp/` as it arrives (memory per connection:
/// one write buffer, whatever the message size), and delivers it into `new/`
/// before the `250`.
impl Handler for Mailbox {
    async fn handle_data_start(
        &self,
        session: &mut Session,
        envelope: &mut Envelope,
    ) -> Result<(), HandlerError> {
        let tmp_dir = self.dir.join("tmp");
        let file = self
            .on_pool(move || TmpFile::create(&tmp_dir))
            .await
            .map_err(|e| self.failed(e))?;
        envelope.spool.set(Delivery {
            file,
            prepare: PrepareStream::new(session, envelope),
            pending: Vec::with_capacity(WRITE_AT),
        });
        Ok(())
    }

    async fn handle_data_chunk(
        &self,
        _: &mut Session,
        envelope: &mut Envelope,
        chunk: &[u8],
    ) -> Result<(), HandlerError> {
        let Some(mut delivery) = envelope.spool.take::<Delivery>() else {
            // No start (the handler is driven by hand): buffer as aiosmtpd.
            envelope.content.extend_from_slice(chunk);
            return Ok(());
        };
        delivery.prepare.feed(chunk, &mut delivery.pending);
        if delivery.pending.len() >= WRITE_AT {
            // On error the delivery is dropped on the pool: its file is removed.
            delivery = self
                .on_pool(move || {
                    delivery.file.file.write_all(&delivery.pending)?;
                    delivery.pending.clear();
                    Ok(delivery)
                })
                .await
                .map_err(|e| self.failed(e))?;
        }
        envelope.spool.set(delivery);
        Ok(())
    }

    async fn handle_data(&self, session: &mut Session, envelope: &mut Envelope) -> HookResult {
        let stored = match envelope.spool.take::<Delivery>() {
            Some(mut delivery) => {
                delivery.prepare.finish(&mut delivery.pending);
                let new_dir = self.dir.join("new");
                self.on_pool(move || {
                    let Delivery { file, pending, .. } = delivery;
                    file.deliver(&pending, &new_dir)
                })
                .await
            }
            // Driven by hand with the content in the envelope.
            None => {
                self.add_in_background(prepare_message(session, envelope))
                    .await
            }
        };
        match stored {
            Ok(_) => Ok(Outcome::Default),
            Err(error) => Err(self.failed(error)),
        }
    }
}

/// Creates `dir` (with its parents when `parents`) unless it is already a
/// directory.
fn create_dir(dir: &Path, parents: bool) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(parents);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        // Created concurrently by someone else.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        result => result,
    }
}

/// Creates a new file with a unique name in `tmp_dir`.
fn create_unique(tmp_dir: &Path) -> io::Result<(String, PathBuf, File)> {
    let mut attempts = 0;
    loop {
        let name = unique_name();
        let path = tmp_dir.join(&name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((name, path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 10 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

fn write_and_sync(mut file: File, message: &[u8]) -> io::Result<()> {
    file.write_all(message)?;
    file.sync_all()
}

/// Makes a rename into `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Python's `Maildir` name: `<seconds>.M<microseconds>P<pid>Q<counter>.<hostname>`.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        hostname()
    )
}

/// The host name, with `/` and `:` escaped as Python's `Maildir` does.
fn hostname() -> &'static str {
    static HOSTNAME: OnceLock<String> = OnceLock::new();
    HOSTNAME.get_or_init(|| {
        let name = ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|path| fs::read_to_string(path).ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
            .unwrap_or_else(|| "localhost".to_owned());
        name.replace('/', "\\057").replace(':', "\\072")
    })
}

#[cfg(test)]
mod tests {
    use futures_lite::future::block_on;

    use super::*;
    use crate::Peer;

    fn listing(dir: &Path) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        paths
    }

    fn envelope(content: &[u8], rcpt_tos: &[&str]) -> Envelope {
        Envelope {
            mail_from: Some("anne@example.com".into()),
            rcpt_tos: rcpt_tos.iter().map(|s| (*s).to_owned()).collect(),
            content: content.to_vec(),
            ..Envelope::default()
        }
    }

    #[test]
    fn delivers_messages() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("maildir");
        let mailbox = Mailbox::new(&dir).unwrap();
        for sub in ["tmp", "new", "cur"] {
            assert!(dir.join(sub).is_dir());
        }
        let mut session = Session::new(Peer::Tcp("127.0.0.1:1234".parse().unwrap()));

        let mut first = envelope(
            b"From: anne@example.com\r\nSubject: one\r\n\r\nHello\r\n.dot\r\n",
            &["bart@example.com", "cate@example.com"],
        );
        let mut second = envelope(b"no headers\r\n\xff\xfe 8-bit", &["bart@example.com"]);
        for env in [&mut first, &mut second] {
            let outcome = block_on(mailbox.handle_data(&mut session, env)).unwrap();
            assert_eq!(outcome, Outcome::Default);
        }

        assert!(listing(&dir.join("tmp")).is_empty());
        assert!(listing(&dir.join("cur")).is_empty());
        let mut stored: Vec<Vec<u8>> = listing(&dir.join("new"))
            .iter()
            .map(|p| fs::read(p).unwrap())
            .collect();
        stored.sort();
        let mut expected = vec![
            b"From: anne@example.com\n\
              Subject: one\n\
              X-Peer: ('127.0.0.1', 1234)\n\
              X-MailFrom: anne@example.com\n\
              X-RcptTo: bart@example.com, cate@example.com\n\
              \n\
              Hello\n\
              .dot\n"
                .to_vec(),
            b"X-Peer: ('127.0.0.1', 1234)\n\
              X-MailFrom: anne@example.com\n\
              X-RcptTo: bart@example.com\n\
              \n\
              no headers\n\
              \xff\xfe 8-bit"
                .to_vec(),
        ];
        expected.sort();
        assert_eq!(stored, expected);

        // Names are unique and Python-like.
        let names: Vec<String> = listing(&dir.join("new"))
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_ne!(names[0], names[1]);
        for name in &names {
            let mut parts = name.splitn(3, '.');
            assert!(parts.next().unwrap().parse::<u64>().is_ok(), "{name}");
            assert!(parts.next().unwrap().starts_with('M'), "{name}");
            assert!(!parts.next().unwrap().is_empty(), "{name}");
        }

        mailbox.reset().unwrap();
        assert!(listing(&dir.join("new")).is_empty());
    }

    #[test]
    fn existing_maildir_is_reused() {
        let root = tempfile::tempdir().unwrap();
        let first = Mailbox::new(root.path()).unwrap();
        first.add(b"one\n").unwrap();
        let again = Mailbox::new(root.path()).unwrap();
        again.add(b"two\n").unwrap();
        assert_eq!(listing(&root.path().join("new")).len(), 2);
        assert_eq!(again.path(), root.path());
    }

    #[test]
    fn errors_are_returned() {
        let root = tempfile::tempdir().unwrap();
        let mailbox = Mailbox::new(root.path()).unwrap();
        // Works even as root, unlike a read-only directory: tmp is a file.
        fs::remove_dir(root.path().join("tmp")).unwrap();
        fs::write(root.path().join("tmp"), b"").unwrap();
        let mut session = Session::new(Peer::Unknown);
        let mut env = envelope(b"Subject: x\r\n\r\nbody\r\n", &["bart@example.com"]);
        let error = block_on(mailbox.handle_data(&mut session, &mut env)).unwrap_err();
        assert_eq!(error.kind(), "io::Error");
        assert!(listing(&root.path().join("new")).is_empty());

        // `new` missing: the temporary file is removed again.
        fs::remove_file(root.path().join("tmp")).unwrap();
        fs::create_dir(root.path().join("tmp")).unwrap();
        fs::remove_dir(root.path().join("new")).unwrap();
        assert!(block_on(mailbox.handle_data(&mut session, &mut env)).is_err());
        assert!(listing(&root.path().join("tmp")).is_empty());

        // A Maildir that cannot be created.
        let file = root.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(Mailbox::new(file.join("maildir")).is_err());
        assert!(Mailbox::new(&file).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn read_only_directory() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let mailbox = Mailbox::new(root.path()).unwrap();
        let tmp = root.path().join("tmp");
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o500)).unwrap();
        // Root ignores permissions; only check when they apply.
        let writable = File::create(tmp.join("probe")).is_ok();
        let result = block_on(mailbox.add_in_background(b"x\n".to_vec()));
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o700)).unwrap();
        if !writable {
            assert_eq!(result.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        }
    }

    #[cfg(unix)]
    #[test]
    fn created_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("b");
        Mailbox::new(&dir).unwrap();
        for path in [
            dir.clone(),
            dir.join("tmp"),
            dir.join("new"),
            dir.join("cur"),
        ] {
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
    }

    #[test]
    fn cli_args() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            Mailbox::from_cli_args(&args(&[])).unwrap_err(),
            "The directory for the maildir is required"
        );
        assert_eq!(
            Mailbox::from_cli_args(&args(&["a", "b"])).unwrap_err(),
            "Too many arguments for Mailbox handler"
        );
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("md");
        let mailbox = Mailbox::from_cli_args(&[dir.to_str().unwrap().to_owned()]).unwrap();
        assert_eq!(mailbox.path(), dir);
        assert!(dir.join("new").is_dir());
    }

    #[test]
    fn hostname_is_safe() {
        let name = hostname();
        assert!(!name.is_empty());
        assert!(!name.contains('/') && !name.contains(':'));
    }
}
