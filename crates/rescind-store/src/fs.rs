//! [`Fs`]: the file operations checkpoints need, behind a trait so tests can
//! fail any of them ([`FaultyFs`]) and the simulator can keep files in memory
//! ([`MemFs`]).

use std::collections::BTreeMap;
use std::io::{self, Cursor, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// A file being written.
pub trait FsFile: Write + Send {
    /// Make what was written durable (fsync).
    fn sync(&mut self) -> io::Result<()>;
}

/// A file being read.
pub trait FsRead: Read + Seek + Send {}
impl<T: Read + Seek + Send> FsRead for T {}

/// File operations on one directory tree.
pub trait Fs: Send + Sync + std::fmt::Debug {
    /// Create (or truncate) a file for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Open a file for reading.
    fn open(&self, path: &Path) -> io::Result<Box<dyn FsRead>>;
    /// Atomically replace `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Delete a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Make renames and deletions in `dir` durable (fsync the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Names of the files in `dir` (empty when it does not exist).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Create `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// A file's length in bytes.
    fn len(&self, path: &Path) -> io::Result<u64>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl FsFile for std::fs::File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}

impl Fs for RealFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        Ok(Box::new(std::fs::File::create(path)?))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn FsRead>> {
        Ok(Box::new(std::fs::File::open(path)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
}

/// Files in memory (for the simulator and tests); shared by clones.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    files: Arc<Mutex<BTreeMap<PathBuf, Arc<Vec<u8>>>>>,
}

struct MemFile {
    path: PathBuf,
    buf: Vec<u8>,
    files: Arc<Mutex<BTreeMap<PathBuf, Arc<Vec<u8>>>>>,
}

impl Write for MemFile {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FsFile for MemFile {
    fn sync(&mut self) -> io::Result<()> {
        self.files
            .lock()
            .insert(self.path.clone(), Arc::new(self.buf.clone()));
        Ok(())
    }
}

/// Reads a shared buffer.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl MemFs {
    /// Overwrite a file's bytes (tests damage checkpoints with it).
    pub fn put(&self, path: &Path, bytes: Vec<u8>) {
        self.files.lock().insert(path.to_owned(), Arc::new(bytes));
    }

    /// A file's bytes.
    pub fn get(&self, path: &Path) -> Option<Vec<u8>> {
        self.files.lock().get(path).map(|b| b.to_vec())
    }
}

impl Fs for MemFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.files.lock().insert(path.to_owned(), Arc::new(Vec::new()));
        Ok(Box::new(MemFile {
            path: path.to_owned(),
            buf: Vec::new(),
            files: self.files.clone(),
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn FsRead>> {
        let bytes = self
            .files
            .lock()
            .get(path)
            .cloned()
            .ok_or(io::ErrorKind::NotFound)?;
        Ok(Box::new(Cursor::new(SharedBytes(bytes))))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut files = self.files.lock();
        let bytes = files.remove(from).ok_or(io::ErrorKind::NotFound)?;
        files.insert(to.to_owned(), bytes);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.files
            .lock()
            .remove(path)
            .map(drop)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        Ok(self
            .files
            .lock()
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        let files = self.files.lock();
        Ok(files.get(path).ok_or(io::ErrorKind::NotFound)?.len() as u64)
    }
}

/// Which operation [`FaultyFs`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Creating a file.
    Create,
    /// A write into a file.
    Write,
    /// fsync of a file.
    Sync,
    /// A rename.
    Rename,
    /// fsync of a directory.
    SyncDir,
    /// A deletion.
    Remove,
}

impl Fault {
    /// Every kind, for tests that fail each in turn.
    pub const ALL: [Fault; 6] = [
        Fault::Create,
        Fault::Write,
        Fault::Sync,
        Fault::Rename,
        Fault::SyncDir,
        Fault::Remove,
    ];
}

/// Wraps another [`Fs`] and fails the `n`-th operation of one kind (counted
/// from 0 after [`FaultyFs::arm`]), once: for crash-safety tests.
#[derive(Debug, Clone)]
pub struct FaultyFs<F> {
    inner: F,
    plan: Arc<Mutex<Option<(Fault, usize)>>>,
    seen: Arc<AtomicUsize>,
}

impl<F: Fs> FaultyFs<F> {
    /// Pass everything through until armed.
    pub fn new(inner: F) -> Self {
        Self {
            inner,
            plan: Arc::default(),
            seen: Arc::default(),
        }
    }

    /// Fail the `nth` operation of kind `fault` from now on.
    pub fn arm(&self, fault: Fault, nth: usize) {
        self.seen.store(0, Ordering::SeqCst);
        *self.plan.lock() = Some((fault, nth));
    }

    /// True while an armed fault has not fired yet.
    pub fn armed(&self) -> bool {
        self.plan.lock().is_some()
    }

    fn hit(plan: &Mutex<Option<(Fault, usize)>>, seen: &AtomicUsize, kind: Fault) -> io::Result<()> {
        let mut plan = plan.lock();
        if let Some((fault, nth)) = *plan
            && fault == kind
            && seen.fetch_add(1, Ordering::SeqCst) == nth
        {
            *plan = None;
            return Err(io::Error::other(format!("injected {kind:?} failure")));
        }
        Ok(())
    }

    fn check(&self, kind: Fault) -> io::Result<()> {
        Self::hit(&self.plan, &self.seen, kind)
    }
}

struct FaultyFile {
    inner: Box<dyn FsFile>,
    plan: Arc<Mutex<Option<(Fault, usize)>>>,
    seen: Arc<AtomicUsize>,
}

impl Write for FaultyFile {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        FaultyFs::<RealFs>::hit(&self.plan, &self.seen, Fault::Write)?;
        self.inner.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl FsFile for FaultyFile {
    fn sync(&mut self) -> io::Result<()> {
        FaultyFs::<RealFs>::hit(&self.plan, &self.seen, Fault::Sync)?;
        self.inner.sync()
    }
}

impl<F: Fs> Fs for FaultyFs<F> {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.check(Fault::Create)?;
        Ok(Box::new(FaultyFile {
            inner: self.inner.create(path)?,
            plan: self.plan.clone(),
            seen: self.seen.clone(),
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn FsRead>> {
        self.inner.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Fault::Rename)?;
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check(Fault::Remove)?;
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Fault::SyncDir)?;
        self.inner.sync_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        self.inner.len(path)
    }
}
