//! A folder on the local disk as a store whose writes are on disk when they return.
//!
//! Every write goes to a temporary file beside its key (`<key>#<n>`, which listings skip). The
//! file is flushed to disk, and only then linked into place (a create-only put: a hard link,
//! which fails when the key exists) or renamed into place (a replacing put); that change is
//! flushed too before the write returns. So a key never names bytes a power failure could
//! lose, and a write that returned is kept (docs/protocol.md, section 7).
//!
//! `object_store`'s folder store flushes each file and each folder it changes with its own
//! `fsync`. On a journalling file system every `fsync` is a journal commit of its own, and
//! the commits of concurrent writers do not overlap on a single disk. Where the operating
//! system allows it, a flush here is instead one `syncfs` of the file system that holds the
//! folder, shared by every write of the process to that file system waiting for a flush when
//! it starts (a group commit): one journal commit makes all of them durable. That needs:
//!
//! - Linux 5.8 or later, where `syncfs` reports a failed write-back (before, it returned
//!   success regardless);
//! - a local file system whose `syncfs` writes back data and metadata and waits for them:
//!   ext4, XFS, Btrfs, F2FS (and tmpfs, where nothing survives a restart anyway). A network
//!   or layered file system (NFS, SMB, FUSE, overlayfs) keeps the per-file `fsync`;
//! - little else waiting to be written: `syncfs` also writes back what other programs left
//!   in memory on that file system. While [`UNWRITTEN_LIMIT`] or more of the machine's
//!   memory waits to be written (`Dirty` + `Writeback` in `/proc/meminfo`), writes use the
//!   per-file `fsync`, so that a commit does not wait for someone else's gigabytes.
//!
//! With shared flushes, a file that only files written after it name (an object, a chunk, an
//! Iceberg file derived from one: [`layout::is_named_only_later`]) is
//! linked into place without a flush of its own after the link. Every write starts with a
//! flush (of its own bytes) that comes after that link: so the link is on disk before
//! anything that names it is linked, in the order the protocol requires (docs/protocol.md,
//! section 6), at one flush per such file instead of two. Every other write (a
//! ref's record, the working state, a view's metadata and hint) is flushed after its link or
//! rename before it returns, so what Strata acknowledges is on disk. A write that does not
//! share flushes first flushes any link still waiting for one.
//!
//! Everything but puts (reads, listings, deletes, copies, multipart uploads) is
//! `object_store`'s folder store with its `fsync`, unchanged (after the same flush of links
//! waiting for one).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::store::layout;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// While this much of the machine's memory or more waits to be written to disk, a flush
/// is a per-file `fsync` rather than a `syncfs` (which would write all of it back first).
pub const UNWRITTEN_LIMIT: u64 = 32 << 20;

/// How long a reading of the machine's unwritten memory is used before it is read again.
const UNWRITTEN_RECHECK: Duration = Duration::from_millis(50);

/// How a folder store makes its writes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// `fsync` of each file and folder a write changes (`object_store`'s own way).
    EachFile,
    /// One `syncfs` of the file system, shared by concurrent writes, where the system
    /// allows it (see the module documentation); otherwise [`Flush::EachFile`].
    Shared,
}

/// A folder on the local disk as an [`ObjectStore`] (see the module documentation).
pub struct Folder {
    inner: LocalFileSystem,
    flusher: Option<Arc<Flusher>>,
}

impl Folder {
    /// The folder `dir` as a store that flushes as `flush` says.
    pub fn new(dir: &FsPath, flush: Flush) -> object_store::Result<Self> {
        let inner = LocalFileSystem::new_with_prefix(dir)?.with_fsync(true);
        let flusher = match flush {
            Flush::EachFile => None,
            Flush::Shared => Flusher::shared_for_folder(dir),
        };
        Ok(Folder { inner, flusher })
    }

    /// As [`Folder::new`] with [`Flush::Shared`], with a flusher of its own rather than the
    /// process's one for that file system (for tests that count flushes while others run).
    #[cfg(test)]
    fn with_own_flusher(dir: &FsPath) -> object_store::Result<Self> {
        let inner = LocalFileSystem::new_with_prefix(dir)?.with_fsync(true);
        let flusher =
            Flusher::open_syncfs(dir).map(|(device, root)| Arc::new(Flusher::syncfs(root, device)));
        Ok(Folder { inner, flusher })
    }

    /// Whether writes may be flushed with a shared `syncfs` on this folder's file system.
    pub fn shares_flushes(&self) -> bool {
        self.flusher.is_some()
    }

    /// This store, sharing flushes however much memory waits to be written (for tests, whose
    /// machine may have just written a build).
    /// This store, as if its folders were on a file system other than the one it flushes
    /// (for tests).
    #[cfg(test)]
    fn flushing_another_device(mut self) -> Self {
        if let Some(f) = self.flusher.take() {
            let mut f = Arc::into_inner(f).expect("a flusher of its own");
            f.device = Some(f.device.map_or(1, |d| d.wrapping_add(1)));
            self.flusher = Some(Arc::new(f));
        }
        self
    }

    #[cfg(test)]
    fn ignoring_unwritten(self) -> Self {
        self.set_unwritten_limit(u64::MAX);
        self
    }

    /// Makes this store flush per file while more than `limit` bytes wait to be written (for
    /// tests: 0 makes every later write flush per file).
    #[cfg(test)]
    fn set_unwritten_limit(&self, limit: u64) {
        if let Some(f) = &self.flusher {
            f.unwritten_limit.store(limit, Ordering::Relaxed);
            *lock(&f.unwritten) = None;
        }
    }

    /// How many file-system flushes this store has made (for tests).
    pub fn flushes(&self) -> u64 {
        self.flusher
            .as_ref()
            .map_or(0, |f| f.flushes.load(Ordering::Relaxed))
    }
}

impl fmt::Display for Folder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl fmt::Debug for Folder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Folder")
            .field("inner", &self.inner)
            .field("shares_flushes", &self.shares_flushes())
            .finish()
    }
}

#[async_trait]
impl ObjectStore for Folder {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let create = match opts.mode {
            PutMode::Create => true,
            PutMode::Overwrite => false,
            // Refused by the folder store, as it should be.
            PutMode::Update(_) => return self.inner.put_opts(location, payload, opts).await,
        };
        let flusher = match &self.flusher {
            Some(f) if opts.attributes.is_empty() && f.unwritten_is_small() => f.clone(),
            _ => {
                self.flush_waiting_links(location).await?;
                let put = self.inner.put_opts(location, payload, opts).await;
                if let (Err(object_store::Error::AlreadyExists { .. }), Some(_)) =
                    (&put, &self.flusher)
                {
                    // What is there may be another process's, linked and left for its next
                    // flush (see the module documentation): flushed here, it is as durable
                    // as this write would have been.
                    let path = self.inner.path_to_filesystem(location)?;
                    tokio::task::spawn_blocking(move || sync_file_and_folder(&path))
                        .await
                        .map_err(join_error)??;
                }
                return put;
            }
        };
        let path = self.inner.path_to_filesystem(location)?;
        let link_unflushed = create && layout::is_named_only_later(location);
        tokio::task::spawn_blocking(move || {
            write_flushed(&flusher, &path, &payload, create, link_unflushed)
        })
        .await
        .map_err(join_error)?
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.flush_waiting_links(location).await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.flush_waiting_links(to).await?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.flush_waiting_links(to).await?;
        self.inner.rename_opts(from, to, options).await
    }
}

impl Folder {
    /// Before a write that does not share flushes: flushes the links of files named by
    /// their object that no flush has covered yet (see the module documentation).
    async fn flush_waiting_links(&self, location: &Path) -> object_store::Result<()> {
        let Some(flusher) = self.flusher.clone() else {
            return Ok(());
        };
        if !flusher.links_wait() {
            return Ok(());
        }
        let path = self.inner.path_to_filesystem(location)?;
        tokio::task::spawn_blocking(move || {
            flusher
                .flush_waiting_links()
                .map_err(|e| io_error("flush to disk before writing", &path, e))
        })
        .await
        .map_err(join_error)?
    }
}

fn join_error(e: tokio::task::JoinError) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(e),
    }
}

/// A local I/O failure at `path`, as `object_store` reports one (its kind kept, so that a
/// refusal is told from a failure worth retrying).
fn io_error(what: &str, path: &FsPath, e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(std::io::Error::new(
            e.kind(),
            format!("cannot {what} {}: {e}", path.display()),
        )),
    }
}

/// Writes `payload` to `path` through a temporary file: flushed, linked (`create`) or renamed
/// into place, flushed again, unless `link_unflushed` (a file named by its object: the next
/// flush covers the link, see the module documentation).
fn write_flushed(
    flusher: &Flusher,
    path: &FsPath,
    payload: &PutPayload,
    create: bool,
    link_unflushed: bool,
) -> object_store::Result<PutResult> {
    // A flush that fails from now on may have been this write's (a failed write-back is
    // reported once, to whichever flush comes first): it fails this write too.
    let since = flusher.next_number();
    let (mut file, staging) = staged_file(path)?;
    let written = (|| {
        for part in payload.iter() {
            file.write_all(part)
                .map_err(|e| io_error("write", &staging, e))?;
        }
        let metadata = file
            .metadata()
            .map_err(|e| io_error("read the metadata of", &staging, e))?;
        // A folder on another file system (a link or a mount below the root) is flushed
        // file by file, as the folder store does.
        let shared = flusher.holds(&metadata);
        let flush = |at: &FsPath| {
            flusher
                .flush_since(since)
                .map_err(|e| io_error("flush to disk", at, e))
        };
        // The bytes are on disk before any key names them (and, shared, so is every link
        // made before: see the module documentation).
        if shared {
            drop(file);
            flush(&staging)?;
        } else {
            file.sync_all()
                .map_err(|e| io_error("flush to disk", &staging, e))?;
            drop(file);
        }
        let link_unflushed = shared && link_unflushed;
        if create {
            match std::fs::hard_link(&staging, path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // What is there may be another writer's, linked but not yet flushed: a
                    // flush makes it as durable as this write would have been.
                    if link_unflushed {
                        flusher.link_waits();
                    } else if shared {
                        flush(path)?;
                    } else {
                        sync_file_and_folder(path)?;
                    }
                    return Err(object_store::Error::AlreadyExists {
                        path: path.display().to_string(),
                        source: Box::new(e),
                    });
                }
                Err(e) => return Err(io_error("link", path, e)),
            }
            let _ = std::fs::remove_file(&staging);
        } else {
            std::fs::rename(&staging, path).map_err(|e| io_error("rename", path, e))?;
        }
        // The key is on disk before the write returns, unless the next flush covers it.
        if link_unflushed {
            flusher.link_waits();
        } else if shared {
            flush(path)?;
        } else {
            sync_folder_of(path)?;
        }
        Ok(PutResult {
            e_tag: Some(e_tag(&metadata)),
            version: None,
            extensions: Default::default(),
        })
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    written
}

/// Flushes the file `path` and its folder to disk, one `fsync` each.
fn sync_file_and_folder(path: &FsPath) -> object_store::Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error("flush to disk", path, e))?;
    sync_folder_of(path)
}

/// Flushes the folder holding `path` to disk (its entries: a link or rename made in it).
fn sync_folder_of(path: &FsPath) -> object_store::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("flush to disk", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A new temporary file `<path>#<n>` beside `path` (creating its folders), as the folder store
/// names them, so that listings skip it.
fn staged_file(path: &FsPath) -> object_store::Result<(File, PathBuf)> {
    let mut n = 1u32;
    let mut made_folder = false;
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(format!("#{n}"));
        let staging = PathBuf::from(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
        {
            Ok(f) => return Ok((f, staging)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !made_folder => {
                let parent = path.parent().unwrap_or(path);
                std::fs::create_dir_all(parent)
                    .map_err(|e| io_error("create the folder", parent, e))?;
                made_folder = true;
            }
            Err(e) => return Err(io_error("create", &staging, e)),
        }
    }
}

/// The folder store's entity tag of a file: its inode, modification time and size.
fn e_tag(metadata: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(metadata);
    #[cfg(not(unix))]
    let inode = 0u64;
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    format!("\"{inode:x}-{mtime:x}-{:x}\"", metadata.len())
}

/// Flushes of one file system, each shared by every caller waiting when it starts.
struct Flusher {
    flush_fn: Box<dyn Fn() -> std::io::Result<()> + Send + Sync>,
    /// The device of the file system flushed (`None`: any, for tests).
    device: Option<u64>,
    state: Mutex<FlushState>,
    finished: Condvar,
    flushes: AtomicU64,
    /// When the machine's unwritten memory was last read, and whether it was small.
    unwritten: Mutex<Option<(Instant, bool)>>,
    /// From how many bytes of it on flushes are per file ([`UNWRITTEN_LIMIT`]; 0: always).
    unwritten_limit: AtomicU64,
}

#[derive(Default)]
struct FlushState {
    /// The number the next flush to start gets (flushes are numbered from 1).
    next: u64,
    /// Whether a flush is running (it is number `next - 1`).
    running: bool,
    /// The number of the newest flush that has finished.
    finished: u64,
    /// The newest flush that failed: its number and its error.
    failed: Option<(u64, std::io::ErrorKind, String)>,
    /// The number of the first flush that covers every link made without one (0: none).
    links_waiting_for: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Flusher {
    fn new(flush_fn: Box<dyn Fn() -> std::io::Result<()> + Send + Sync>) -> Self {
        Flusher {
            flush_fn,
            device: None,
            state: Mutex::new(FlushState {
                next: 1,
                ..Default::default()
            }),
            finished: Condvar::new(),
            flushes: AtomicU64::new(0),
            unwritten: Mutex::new(None),
            unwritten_limit: AtomicU64::new(UNWRITTEN_LIMIT),
        }
    }

    /// The process's flusher for the file system holding `dir`, if that file system and this
    /// system allow `syncfs` (see the module documentation). Every folder store of the process
    /// on one file system shares it: a write of any of them that flushes per file then first
    /// flushes the links any of them left waiting.
    fn shared_for_folder(dir: &FsPath) -> Option<Arc<Self>> {
        static FLUSHERS: Mutex<Vec<(u64, std::sync::Weak<Flusher>)>> = Mutex::new(Vec::new());
        let (device, root) = Flusher::open_syncfs(dir)?;
        let mut flushers = lock(&FLUSHERS);
        flushers.retain(|(_, f)| f.strong_count() > 0);
        if let Some(f) = flushers
            .iter()
            .find(|(d, _)| *d == device)
            .and_then(|(_, f)| f.upgrade())
        {
            return Some(f);
        }
        let flusher = Arc::new(Flusher::syncfs(root, device));
        flushers.push((device, Arc::downgrade(&flusher)));
        Some(flusher)
    }

    /// The folder `dir`, opened, and the device of its file system, if that file system and
    /// this system allow `syncfs`.
    #[cfg(target_os = "linux")]
    fn open_syncfs(dir: &FsPath) -> Option<(u64, File)> {
        use std::os::unix::fs::MetadataExt;
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        if !syncfs_reports_failures(&release) {
            return None;
        }
        let root = File::open(dir).ok()?;
        let stat = rustix::fs::fstatfs(&root).ok()?;
        if !syncfs_is_whole(i128::from(stat.f_type)) {
            return None;
        }
        let device = root.metadata().ok()?.dev();
        Some((device, root))
    }

    #[cfg(not(target_os = "linux"))]
    fn open_syncfs(_dir: &FsPath) -> Option<(u64, File)> {
        None
    }

    /// A flusher by `syncfs` of the file system (on `device`) holding the open folder `root`.
    #[cfg(target_os = "linux")]
    fn syncfs(root: File, device: u64) -> Self {
        let mut flusher = Flusher::new(Box::new(move || {
            rustix::fs::syncfs(&root).map_err(std::io::Error::from)
        }));
        flusher.device = Some(device);
        flusher
    }

    #[cfg(not(target_os = "linux"))]
    fn syncfs(_root: File, device: u64) -> Self {
        let mut flusher = Flusher::new(Box::new(|| Ok(())));
        flusher.device = Some(device);
        flusher
    }

    /// Whether a file of this `metadata` is on the file system this flusher flushes.
    fn holds(&self, metadata: &std::fs::Metadata) -> bool {
        #[cfg(unix)]
        {
            self.device
                .is_none_or(|d| std::os::unix::fs::MetadataExt::dev(metadata) == d)
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            self.device.is_none()
        }
    }

    /// The number the next flush to start will get.
    fn next_number(&self) -> u64 {
        lock(&self.state).next
    }

    /// Whether little enough of the machine's memory waits to be written for a `syncfs` to
    /// be quick (read again at most every [`UNWRITTEN_RECHECK`]).
    fn unwritten_is_small(&self) -> bool {
        let mut last = lock(&self.unwritten);
        if let Some((at, small)) = *last {
            if at.elapsed() < UNWRITTEN_RECHECK {
                return small;
            }
        }
        let small = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| unwritten_bytes(&text))
            .is_some_and(|bytes| bytes < self.unwritten_limit.load(Ordering::Relaxed));
        *last = Some((Instant::now(), small));
        small
    }

    /// Notes a link made without a flush: the next flush to start covers it.
    fn link_waits(&self) {
        let mut state = lock(&self.state);
        state.links_waiting_for = state.links_waiting_for.max(state.next);
    }

    /// Whether a link made without a flush may not be on disk yet.
    fn links_wait(&self) -> bool {
        let state = lock(&self.state);
        state.links_waiting_for > state.finished
    }

    /// Flushes if a link made without a flush may not be on disk yet.
    fn flush_waiting_links(&self) -> std::io::Result<()> {
        if self.links_wait() {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Returns once a flush that started after this call has finished: everything written
    /// before the call is then on disk. Callers that wait at the same time share one flush.
    fn flush(&self) -> std::io::Result<()> {
        self.flush_since(u64::MAX)
    }

    /// [`Flusher::flush`], failing also if any flush numbered `since` or later failed (one
    /// may have written back, and failed to write, what the caller wrote after `since` was
    /// [`Flusher::next_number`]).
    fn flush_since(&self, since: u64) -> std::io::Result<()> {
        let mut state = lock(&self.state);
        // A running flush may have started before this caller's writes: the one wanted is
        // the next to start.
        let wanted = state.next;
        let since = since.min(wanted);
        loop {
            if state.finished >= wanted {
                return match &state.failed {
                    // A flush since the caller's writes began failed: they may not be on
                    // disk (a later failure is reported too: an error never passes for
                    // success).
                    Some((n, kind, message)) if *n >= since => {
                        Err(std::io::Error::new(*kind, message.clone()))
                    }
                    _ => Ok(()),
                };
            }
            if !state.running {
                let number = state.next;
                state.next += 1;
                state.running = true;
                drop(state);
                let result = (self.flush_fn)();
                self.flushes.fetch_add(1, Ordering::Relaxed);
                state = lock(&self.state);
                state.running = false;
                state.finished = number;
                if let Err(e) = &result {
                    state.failed = Some((number, e.kind(), e.to_string()));
                }
                self.finished.notify_all();
                continue;
            }
            state = self
                .finished
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

impl Drop for Flusher {
    /// The last folder store of the file system is gone (the process is ending, say): a link
    /// still waiting for a flush gets one now, rather than whenever the system writes it back.
    fn drop(&mut self) {
        if self.links_wait() {
            let _ = (self.flush_fn)();
        }
    }
}

/// Whether a kernel of this release (`/proc/sys/kernel/osrelease`) reports write-back
/// failures from `syncfs`: Linux 5.8 and later.
fn syncfs_reports_failures(release: &str) -> bool {
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (5, 8),
        _ => false,
    }
}

/// Whether a file system of this `statfs` type writes back all data and metadata, and waits
/// for them, on `syncfs`: the local journalling or copy-on-write file systems (and tmpfs).
fn syncfs_is_whole(f_type: i128) -> bool {
    const EXT4: i128 = 0xEF53;
    const XFS: i128 = 0x5846_5342;
    const BTRFS: i128 = 0x9123_683E;
    const F2FS: i128 = 0xF2F5_2010;
    const TMPFS: i128 = 0x0102_1994;
    // A 32-bit `f_type` holds the larger magic numbers as negative numbers.
    let f_type = f_type & 0xFFFF_FFFF;
    matches!(f_type, EXT4 | XFS | BTRFS | F2FS | TMPFS)
}

/// The bytes of memory waiting to be written to disk, from `/proc/meminfo`'s text: `Dirty`
/// plus `Writeback`.
fn unwritten_bytes(meminfo: &str) -> Option<u64> {
    let field = |name: &str| {
        meminfo.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
            Some(kib * 1024)
        })
    };
    Some(field("Dirty")? + field("Writeback")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn kernels_from_5_8_report_syncfs_failures() {
        for (release, reports) in [
            ("6.18.44-fc-v1147", true),
            ("5.8.0", true),
            ("5.10.0-27-amd64\n", true),
            ("5.7.19", false),
            ("4.19.0-generic", false),
            ("", false),
            ("unknown", false),
        ] {
            assert_eq!(syncfs_reports_failures(release), reports, "{release:?}");
        }
    }

    #[test]
    fn only_local_file_systems_flush_whole() {
        for (f_type, whole) in [
            (0xEF53, true),                            // ext4 (and ext2, ext3)
            (0x5846_5342, true),                       // XFS
            (0x9123_683E, true),                       // Btrfs
            (i128::from(0x9123_683Eu32 as i32), true), // Btrfs in a 32-bit field
            (0x0102_1994, true),                       // tmpfs
            (0x6969, false),                           // NFS
            (0xFF53_4D42u32 as i128, false),           // SMB2
            (0x6573_5546, false),                      // FUSE
            (0x794C_7630, false),                      // overlayfs
        ] {
            assert_eq!(syncfs_is_whole(f_type), whole, "{f_type:#x}");
        }
    }

    #[test]
    fn unwritten_memory_is_dirty_plus_writeback() {
        let text = "MemTotal:       24000000 kB\nDirty:              1200 kB\nWriteback:            34 kB\nWritebackTmp:          0 kB\n";
        assert_eq!(unwritten_bytes(text), Some((1200 + 34) * 1024));
        assert_eq!(unwritten_bytes("MemTotal: 1 kB\n"), None);
    }

    /// A flusher whose flush counts itself, takes `pause`, and fails when `fail` says so.
    fn counting_flusher(
        started: Arc<AtomicU64>,
        finished_start: Arc<AtomicU64>,
        pause: Duration,
        fail: Arc<AtomicUsize>,
    ) -> Flusher {
        Flusher::new(Box::new(move || {
            let number = started.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::sleep(pause);
            finished_start.store(number, Ordering::SeqCst);
            if fail.load(Ordering::SeqCst) > 0 {
                fail.fetch_sub(1, Ordering::SeqCst);
                return Err(std::io::Error::other("the disk failed"));
            }
            Ok(())
        }))
    }

    #[test]
    fn every_caller_waits_for_a_flush_that_started_after_it_and_waiting_callers_share_one() {
        let started = Arc::new(AtomicU64::new(0));
        let finished_start = Arc::new(AtomicU64::new(0));
        let fail = Arc::new(AtomicUsize::new(0));
        let flusher = Arc::new(counting_flusher(
            started.clone(),
            finished_start.clone(),
            Duration::from_millis(2),
            fail,
        ));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (flusher, started, finished_start) =
                    (flusher.clone(), started.clone(), finished_start.clone());
                std::thread::spawn(move || {
                    for _ in 0..40 {
                        let before = started.load(Ordering::SeqCst);
                        flusher.flush().expect("flush");
                        // Flushes run one at a time, so the one that finished last started
                        // after every earlier one: it must have started after this call did.
                        assert!(
                            finished_start.load(Ordering::SeqCst) > before,
                            "a caller was answered by a flush that started before it"
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let flushes = flusher.flushes.load(Ordering::SeqCst);
        // 240 calls; one flush at a time, 2 ms each: waiting callers must have shared.
        assert!(flushes < 200, "{flushes} flushes for 240 calls");
        assert_eq!(flushes, started.load(Ordering::SeqCst));
    }

    /// A flusher whose first flush fails and whose later ones succeed.
    fn failing_once() -> Flusher {
        counting_flusher(
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Duration::ZERO,
            Arc::new(AtomicUsize::new(1)),
        )
    }

    #[test]
    fn a_write_fails_when_any_flush_since_it_began_failed_even_one_it_did_not_wait_for() {
        let flusher = failing_once();
        // A write begins; another caller's flush then writes its bytes back, and fails.
        let since = flusher.next_number();
        flusher.flush().expect_err("the other caller's flush fails");
        // The write's own flush succeeds, but the failure may have been its bytes'.
        let e = flusher.flush_since(since).expect_err("the write fails");
        assert!(e.to_string().contains("the disk failed"), "{e}");
        // A write that begins after the failure is not failed by it.
        let since = flusher.next_number();
        flusher.flush_since(since).expect("a later write succeeds");
    }

    #[test]
    fn callers_that_a_failed_flush_covered_get_its_error_and_later_ones_succeed() {
        let flusher = failing_once();
        let e = flusher.flush().expect_err("the first flush fails");
        assert!(e.to_string().contains("the disk failed"), "{e}");
        flusher.flush().expect("the next flush succeeds");
    }

    fn staging_files(dir: &FsPath) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for entry in std::fs::read_dir(&d).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    todo.push(path);
                } else if path.to_string_lossy().contains('#') {
                    found.push(path);
                }
            }
        }
        found
    }

    #[tokio::test]
    async fn puts_are_whole_and_create_only_puts_are_exclusive_either_way_of_flushing() {
        for flush in [Flush::Shared, Flush::EachFile] {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = match flush {
                Flush::Shared => Folder::with_own_flusher(dir.path()),
                Flush::EachFile => Folder::new(dir.path(), flush),
            }
            .expect("store")
            .ignoring_unwritten();
            let key = Path::from("objects/ab/cdef");
            let before = store.flushes();
            store
                .put_opts(
                    &key,
                    PutPayload::from_static(b"first"),
                    crate::store::create_only(),
                )
                .await
                .expect("create");
            if store.shares_flushes() {
                // The bytes before the link; the link with the next write's bytes.
                assert_eq!(store.flushes() - before, 1, "{flush:?}");
            } else {
                assert_eq!(store.flushes(), 0, "{flush:?}");
            }
            let again = store
                .put_opts(
                    &key,
                    PutPayload::from_static(b"other"),
                    crate::store::create_only(),
                )
                .await
                .expect_err("the key is taken");
            assert!(
                matches!(again, object_store::Error::AlreadyExists { .. }),
                "{again:?}"
            );
            let read = store
                .get(&key)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes");
            assert_eq!(&read[..], b"first");
            store
                .put(
                    &Path::from("local/WORKING"),
                    PutPayload::from_static(b"one"),
                )
                .await
                .expect("put");
            store
                .put(
                    &Path::from("local/WORKING"),
                    PutPayload::from_static(b"two"),
                )
                .await
                .expect("replace");
            let read = store
                .get(&Path::from("local/WORKING"))
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes");
            assert_eq!(&read[..], b"two");
            assert_eq!(
                staging_files(dir.path()),
                Vec::<PathBuf>::new(),
                "{flush:?}"
            );
            let listed: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(store.list(None))
                .await
                .expect("list")
                .into_iter()
                .map(|m| m.location.to_string())
                .collect();
            assert_eq!(listed.len(), 2, "{listed:?}");
        }
    }

    #[test]
    fn files_named_only_later_are_objects_chunks_and_the_views_derived_files() {
        use crate::id::ObjectId;
        use crate::store::RefKind;
        let id = ObjectId::of(b"x");
        for path in [
            layout::object(&id),
            layout::chunk(&id),
            layout::manifest_path(&id),
            layout::delete_manifest_path(&id),
            layout::deletes_path(&id, &id),
            layout::list_path(&id),
        ] {
            assert!(layout::is_named_only_later(&path), "{path}");
        }
        for path in [
            layout::marker(),
            layout::ref_record(RefKind::Branch, "main", 1),
            layout::ref_hint(RefKind::Branch, "main"),
            layout::local("WORKING"),
            layout::hint_path(RefKind::Branch, "main", "t"),
            layout::metadata_path(RefKind::Branch, "main", "t", 12),
            layout::gc_lock_record(1),
            layout::lease("l"),
            Path::from("iceberg/heads/manifests/t/metadata/version-hint.text"),
        ] {
            assert!(!layout::is_named_only_later(&path), "{path}");
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn an_objects_link_is_flushed_before_any_later_write_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Folder::with_own_flusher(dir.path())
            .expect("store")
            .ignoring_unwritten();
        let flusher = store.flusher.clone().expect(
            "the temporary folder shares flushes (Linux 5.8 or later; ext4, XFS, Btrfs, F2FS or tmpfs)",
        );
        let object = |n: u8| layout::object(&crate::id::ObjectId::of(&[n]));
        let create = |path: Path, bytes: &'static [u8]| {
            let store = &store;
            async move {
                store
                    .put_opts(
                        &path,
                        PutPayload::from_static(bytes),
                        crate::store::create_only(),
                    )
                    .await
                    .expect("create")
            }
        };
        create(object(1), b"one").await;
        assert_eq!((store.flushes(), flusher.links_wait()), (1, true));
        // Another object: its bytes' flush covers the first link, its own link waits.
        create(object(2), b"two").await;
        assert_eq!((store.flushes(), flusher.links_wait()), (2, true));
        // A ref's record: flushed before and after its link.
        create(
            layout::ref_record(crate::store::RefKind::Branch, "main", 1),
            b"r",
        )
        .await;
        assert_eq!((store.flushes(), flusher.links_wait()), (4, false));
        // A write that flushes per file first flushes the link still waiting.
        create(object(3), b"three").await;
        assert_eq!((store.flushes(), flusher.links_wait()), (5, true));
        store.set_unwritten_limit(0);
        store
            .put(&layout::local("WORKING"), PutPayload::from_static(b"w"))
            .await
            .expect("put");
        assert_eq!((store.flushes(), flusher.links_wait()), (6, false));
        // Nothing waits: a write per file flushes nothing more.
        store
            .put(&layout::local("WORKING"), PutPayload::from_static(b"x"))
            .await
            .expect("put");
        assert_eq!(store.flushes(), 6);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_folder_stores_of_one_file_system_share_a_flusher_and_its_waiting_links() {
        let (a, b) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let one = Folder::new(a.path(), Flush::Shared).expect("store");
        let other = Folder::new(b.path(), Flush::Shared).expect("store");
        let (Some(f1), Some(f2)) = (one.flusher.clone(), other.flusher.clone()) else {
            panic!("the temporary folder shares flushes (Linux 5.8 or later; ext4, XFS, Btrfs, F2FS or tmpfs)");
        };
        assert!(Arc::ptr_eq(&f1, &f2));
        one.put_opts(
            &layout::object(&crate::id::ObjectId::of(b"o")),
            PutPayload::from_static(b"o"),
            crate::store::create_only(),
        )
        .await
        .expect("create");
        // The other store's next write covers the first one's link, whichever way it
        // flushes (a write in another test of this process may have covered it already).
        other
            .put(&layout::local("WORKING"), PutPayload::from_static(b"w"))
            .await
            .expect("put");
        assert!(!f2.links_wait());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_folder_on_another_file_system_is_flushed_file_by_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Folder::with_own_flusher(dir.path())
            .expect("store")
            .ignoring_unwritten()
            .flushing_another_device();
        let flusher = store.flusher.clone().expect("shares flushes");
        let object = layout::object(&crate::id::ObjectId::of(b"o"));
        for _ in 0..2 {
            let put = store
                .put_opts(
                    &object,
                    PutPayload::from_static(b"o"),
                    crate::store::create_only(),
                )
                .await;
            assert!(
                matches!(put, Ok(_) | Err(object_store::Error::AlreadyExists { .. })),
                "{put:?}"
            );
        }
        store
            .put(&layout::local("WORKING"), PutPayload::from_static(b"w"))
            .await
            .expect("put");
        // Nothing went through the file-system flush, and nothing waits for one.
        assert_eq!(store.flushes(), 0);
        assert!(!flusher.links_wait());
        let read = store
            .get(&object)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(&read[..], b"o");
        assert_eq!(staging_files(dir.path()), Vec::<PathBuf>::new());
    }

    #[tokio::test]
    async fn concurrent_creates_of_one_key_leave_one_winner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            Folder::with_own_flusher(dir.path())
                .expect("store")
                .ignoring_unwritten(),
        );
        let key = Path::from("refs/heads/main/00000000000000000001");
        let tries: Vec<_> = (0..8u8)
            .map(|i| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move {
                    store
                        .put_opts(
                            &key,
                            PutPayload::from(vec![i; 100]),
                            crate::store::create_only(),
                        )
                        .await
                        .map(|_| i)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tries {
            match t.await.expect("task") {
                Ok(i) => winners.push(i),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        let read = store
            .get(&key)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(&read[..], &[winners[0]; 100][..]);
        assert_eq!(staging_files(dir.path()), Vec::<PathBuf>::new());
    }
}
