//! A message body kept in memory up to a threshold and in a temporary file
//! past it (as Haraka's `spool_after`), so that a handler that must hold a
//! whole message (to relay it after the client finished) holds at most the
//! threshold in memory. The file is removed when the spool is dropped.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes kept in memory before a spool moves to a file (1 MiB).
pub const DEFAULT_SPOOL_THRESHOLD: usize = 1 << 20;

/// A body being collected: in memory, then in a file.
#[derive(Debug)]
pub(crate) struct SpoolFile {
    threshold: usize,
    dir: PathBuf,
    memory: Vec<u8>,
    file: Option<(File, PathBuf)>,
    len: usize,
}

impl SpoolFile {
    /// An empty spool that moves to a file in `dir` past `threshold` bytes.
    pub(crate) fn new(threshold: usize, dir: &Path) -> Self {
        SpoolFile {
            threshold,
            dir: dir.to_owned(),
            memory: Vec::new(),
            file: None,
            len: 0,
        }
    }

    /// Appends `bytes` (blocking file I/O once past the threshold).
    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.len += bytes.len();
        if self.file.is_none() && self.memory.len() + bytes.len() <= self.threshold {
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        if self.file.is_none() {
            let (file, path) = create_temp(&self.dir)?;
            self.file = Some((file, path));
            let memory = std::mem::take(&mut self.memory);
            self.file_mut().write_all(&memory)?;
        }
        self.file_mut().write_all(bytes)
    }

    fn file_mut(&mut self) -> &mut File {
        &mut self.file.as_mut().expect("a spool file").0
    }

    /// The bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when the body went to a file.
    pub(crate) fn in_file(&self) -> bool {
        self.file.is_some()
    }

    /// The body, when it stayed in memory.
    pub(crate) fn memory(&self) -> Option<&[u8]> {
        self.file.is_none().then_some(self.memory.as_slice())
    }

    /// Reads the spooled file from its start in blocks of `block` bytes.
    pub(crate) fn blocks(&mut self, block: usize) -> io::Result<Blocks<'_>> {
        let (file, _) = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("not spooled"))?;
        file.flush()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Blocks {
            file,
            buf: vec![0; block],
            error: None,
        })
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        if let Some((_, path)) = self.file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The blocks of a spooled file; a read error ends them and is kept.
pub(crate) struct Blocks<'a> {
    file: &'a mut File,
    buf: Vec<u8>,
    /// The read error that ended the blocks, if one did.
    pub(crate) error: Option<io::Error>,
}

impl Blocks<'_> {
    /// The next block (`None` at the end or after an error).
    pub(crate) fn next_block(&mut self) -> Option<&[u8]> {
        if self.error.is_some() {
            return None;
        }
        loop {
            match self.file.read(&mut self.buf) {
                Ok(0) => return None,
                Ok(n) => return Some(&self.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    return None;
                }
            }
        }
    }
}

/// A new file with a unique name in `dir`, readable and writable.
fn create_temp(dir: &Path) -> io::Result<(File, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for _ in 0..10 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("smtpkit-spool-{}-{n}", std::process::id()));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no unique spool file name",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_then_file_then_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = SpoolFile::new(10, dir.path());
        spool.write(b"12345").unwrap();
        assert_eq!(spool.memory(), Some(&b"12345"[..]));
        spool.write(b"678901").unwrap();
        assert!(spool.in_file());
        assert_eq!(spool.len(), 11);
        spool.write(b"xyz").unwrap();
        let mut read = Vec::new();
        let mut blocks = spool.blocks(4).unwrap();
        while let Some(b) = blocks.next_block() {
            read.extend_from_slice(b);
        }
        assert!(blocks.error.is_none());
        assert_eq!(read, b"12345678901xyz");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(spool);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "removed when dropped"
        );
    }
}
