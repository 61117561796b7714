//! Store wrappers for tests: fault injection and request counting. Each wraps any
//! `ObjectStore` and is one itself, so push, fetch and the conformance suite run on top.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// What a [`FaultStore`] does to the call it targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fail the call without performing it.
    Fail,
    /// Perform the call, then report an error (the response was lost).
    LoseResponse,
    /// Report an error at once and keep the write, to be performed later (after the client
    /// gave up): [`FaultStore::apply_late`] performs it. Other calls fail as [`Fault::Fail`].
    ApplyLater,
    /// Answer a write the way object_store reports S3's `409 ConditionalRequestConflict`
    /// (another request for the key in flight): "already exists", without writing. Other
    /// calls fail as [`Fault::Fail`].
    Conflict,
    /// Store only the first half of the bytes of an object (`objects/`, `chunks/`), then
    /// report an error: a file cut short by a power failure, or a write torn on a store without
    /// atomic puts. Other calls fail as [`Fault::Fail`] (ref and lock records are created
    /// atomically on every supported store).
    Torn,
}

/// A write kept by [`Fault::ApplyLater`].
type Late = (Path, PutPayload, PutOptions);

/// Which storage calls a [`FaultStore`] counts towards its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    /// Every call.
    All,
    /// Writes only: puts (multipart too), deletes and copies.
    Writes,
}

impl Fault {
    /// The calls at which this fault does something that [`Fault::Fail`] does not. At a read
    /// or a listing every kind acts as `Fail` does: the caller gets an error and the store is
    /// as it was (a lost or late answer to a read changes nothing). So a matrix that runs
    /// `Fail` at every call needs each other kind at the writes only.
    pub fn calls(self) -> Calls {
        match self {
            Fault::Fail => Calls::All,
            _ => Calls::Writes,
        }
    }
}

impl Calls {
    /// The calls of `counts` that this selection numbers.
    pub fn of(self, counts: &Counts) -> u64 {
        match self {
            Calls::All => counts.requests(),
            Calls::Writes => {
                counts.puts.load(Ordering::SeqCst) + counts.deletes.load(Ordering::SeqCst)
            }
        }
    }
}

/// Which calls a fault matrix faults, numbered as the fault numbers them ([`Fault::calls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every call, one run each, and two past the last (where nothing fires).
    EveryCall,
    /// The first and the last write of each kind, and one past the last write: for the
    /// servers, where what differs from memory and folders is how the server answers a write
    /// (see `Counts::first_and_last_writes_of_each_kind`). Faults that number writes only.
    EachKindOfWrite,
}

impl Reach {
    /// The calls to fault, one run each, from a fault-free run's counts.
    pub fn calls(self, fault: Fault, counts: &Counts) -> Vec<u64> {
        let calls = fault.calls().of(counts);
        match self {
            Reach::EveryCall => (1..=calls + 2).collect(),
            Reach::EachKindOfWrite => {
                assert_eq!(
                    fault.calls(),
                    Calls::Writes,
                    "{fault:?} is numbered over every call, not over the writes"
                );
                let mut picked = counts.first_and_last_writes_of_each_kind();
                assert!(picked.len() > 2, "a fault-free run records its writes");
                picked.push(calls + 1);
                picked
            }
        }
    }
}

/// Fails, or loses the response of, the `k`-th storage call (1-based), once.
#[derive(Debug)]
pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<FaultState>,
}

#[derive(Debug)]
struct FaultState {
    target: u64,
    fault: Fault,
    numbered: Calls,
    calls: AtomicU64,
    /// Calls of the kind `numbered` selects.
    counted: AtomicU64,
    /// Set once the fault has fired: which call it hit.
    fired: Mutex<Option<String>>,
    late: Mutex<Option<Late>>,
}

impl FaultState {
    /// Whether this call is the targeted one (and so what to do).
    fn next(&self, what: &str, path: &Path) -> Option<Fault> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let write = matches!(what, "put" | "put_multipart" | "delete" | "copy");
        if self.numbered == Calls::Writes && !write {
            return None;
        }
        let n = self.counted.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.target {
            if let Ok(mut f) = self.fired.lock() {
                *f = Some(format!("{what} {path}"));
            }
            Some(self.fault)
        } else {
            None
        }
    }
}

impl FaultStore {
    pub fn new(inner: Arc<dyn ObjectStore>, target: u64, fault: Fault) -> Self {
        Self::numbering(inner, target, fault, Calls::All)
    }

    /// Faults the `k`-th (1-based) of the calls where `fault` does something a plain failure
    /// does not ([`Fault::calls`]), once: how the fault matrices number their runs.
    pub fn at_distinct_call(inner: Arc<dyn ObjectStore>, target: u64, fault: Fault) -> Self {
        Self::numbering(inner, target, fault, fault.calls())
    }

    fn numbering(inner: Arc<dyn ObjectStore>, target: u64, fault: Fault, numbered: Calls) -> Self {
        FaultStore {
            inner,
            state: Arc::new(FaultState {
                target,
                fault,
                numbered,
                calls: AtomicU64::new(0),
                counted: AtomicU64::new(0),
                fired: Mutex::new(None),
                late: Mutex::new(None),
            }),
        }
    }

    /// Performs the write that [`Fault::ApplyLater`] kept, if any; returns its outcome.
    pub async fn apply_late(&self) -> Option<Result<PutResult>> {
        let late = self.state.late.lock().ok().and_then(|mut l| l.take());
        match late {
            Some((path, payload, opts)) => Some(self.inner.put_opts(&path, payload, opts).await),
            None => None,
        }
    }

    /// Calls seen so far.
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn has_fired(&self) -> bool {
        self.fired().is_some()
    }

    /// The call the fault hit, once it has fired.
    pub fn fired(&self) -> Option<String> {
        self.state.fired.lock().ok().and_then(|f| f.clone())
    }

    fn next(&self, what: &str, path: &Path) -> Option<Fault> {
        self.state.next(what, path)
    }

    fn error(path: &Path) -> object_store::Error {
        object_store::Error::Generic {
            store: "fault",
            source: format!("injected fault at {path}").into(),
        }
    }
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        match self.next("put", location) {
            Some(Fault::Fail) => Err(Self::error(location)),
            Some(Fault::LoseResponse) => {
                self.inner.put_opts(location, payload, opts).await?;
                Err(Self::error(location))
            }
            Some(Fault::ApplyLater) => {
                if let Ok(mut l) = self.state.late.lock() {
                    *l = Some((location.clone(), payload, opts));
                }
                Err(object_store::Error::Generic {
                    store: "fault",
                    source: format!("timed out writing {location} (it may still be applied)")
                        .into(),
                })
            }
            Some(Fault::Conflict) => Err(object_store::Error::AlreadyExists {
                path: location.to_string(),
                source: "409 Conflict: ConditionalRequestConflict (injected)".into(),
            }),
            Some(Fault::Torn)
                if !(location.as_ref().starts_with("objects/")
                    || location.as_ref().starts_with("chunks/")) =>
            {
                Err(Self::error(location))
            }
            Some(Fault::Torn) => {
                let bytes: Bytes = payload.into();
                let half = bytes.slice(0..bytes.len() / 2);
                self.inner.put(location, half.into()).await?;
                Err(Self::error(location))
            }
            None => self.inner.put_opts(location, payload, opts).await,
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        match self.next("put_multipart", location) {
            Some(_) => Err(Self::error(location)),
            None => self.inner.put_multipart_opts(location, opts).await,
        }
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        match self.next("get", location) {
            Some(_) => Err(Self::error(location)),
            None => self.inner.get_opts(location, options).await,
        }
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        match self.next("get_ranges", location) {
            Some(_) => Err(Self::error(location)),
            None => self.inner.get_ranges(location, ranges).await,
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let inner = self.inner.clone();
        let state = self.state.clone();
        Box::pin(locations.then(move |path| {
            let inner = inner.clone();
            let state = state.clone();
            async move {
                let path = path?;
                let fault = state.next("delete", &path);
                if fault == Some(Fault::Fail) {
                    return Err(Self::error(&path));
                }
                inner.delete(&path).await?;
                match fault {
                    Some(_) => Err(Self::error(&path)),
                    None => Ok(path),
                }
            }
        }))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let p = prefix.cloned().unwrap_or_default();
        match self.next("list", &p) {
            Some(_) => Box::pin(futures::stream::once(async move { Err(Self::error(&p)) })),
            None => self.inner.list(prefix),
        }
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let p = prefix.cloned().unwrap_or_default();
        match self.next("list", &p) {
            Some(_) => Box::pin(futures::stream::once(async move { Err(Self::error(&p)) })),
            None => self.inner.list_with_offset(prefix, offset),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let p = prefix.cloned().unwrap_or_default();
        match self.next("list_with_delimiter", &p) {
            Some(_) => Err(Self::error(&p)),
            None => self.inner.list_with_delimiter(prefix).await,
        }
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        match self.next("copy", to) {
            Some(_) => Err(Self::error(to)),
            None => self.inner.copy_opts(from, to, options).await,
        }
    }
}

/// Counts requests by kind, and bytes written and read.
#[derive(Debug, Default)]
pub struct Counts {
    pub puts: AtomicU64,
    pub gets: AtomicU64,
    pub heads: AtomicU64,
    pub lists: AtomicU64,
    pub deletes: AtomicU64,
    pub bytes_put: AtomicU64,
    pub bytes_got: AtomicU64,
    /// Every write, in the order made: `put PATH`, `delete PATH`, `copy PATH`.
    pub writes: Mutex<Vec<String>>,
}

impl Counts {
    pub fn requests(&self) -> u64 {
        self.puts.load(Ordering::SeqCst)
            + self.gets.load(Ordering::SeqCst)
            + self.heads.load(Ordering::SeqCst)
            + self.lists.load(Ordering::SeqCst)
            + self.deletes.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        for c in [
            &self.puts,
            &self.gets,
            &self.heads,
            &self.lists,
            &self.deletes,
            &self.bytes_put,
            &self.bytes_got,
        ] {
            c.store(0, Ordering::SeqCst);
        }
        if let Ok(mut w) = self.writes.lock() {
            w.clear();
        }
    }

    fn wrote(&self, what: &str, path: &Path) {
        if let Ok(mut w) = self.writes.lock() {
            w.push(format!("{what} {path}"));
        }
    }

    /// The writes (numbered from 1 in the order they were made, as [`Calls::Writes`] numbers
    /// them) that are the first or the last of their kind. A kind is the operation and the
    /// top folder of the path (`put chunks`, `delete objects`, `put leases`); each write to a
    /// ref or lock record (`refs/`, `gc/`) is a kind of its own. A matrix that runs on a slow
    /// server faults these only: the bulk of a push is content-addressed puts made by one
    /// code path, which the memory and folder matrices fault one by one.
    pub fn first_and_last_writes_of_each_kind(&self) -> Vec<u64> {
        let writes = match self.writes.lock() {
            Ok(w) => w.clone(),
            Err(_) => return Vec::new(),
        };
        let kinds: Vec<String> = writes.iter().map(|w| kind_of_write(w)).collect();
        let mut picked = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let first = !kinds[..i].contains(kind);
            let last = !kinds[i + 1..].contains(kind);
            if first || last {
                picked.push(i as u64 + 1);
            }
        }
        picked
    }

    pub fn summary(&self) -> String {
        format!(
            "{} requests ({} PUT, {} GET, {} HEAD, {} LIST, {} DELETE), {} bytes up, {} bytes down",
            self.requests(),
            self.puts.load(Ordering::SeqCst),
            self.gets.load(Ordering::SeqCst),
            self.heads.load(Ordering::SeqCst),
            self.lists.load(Ordering::SeqCst),
            self.deletes.load(Ordering::SeqCst),
            self.bytes_put.load(Ordering::SeqCst),
            self.bytes_got.load(Ordering::SeqCst)
        )
    }
}

/// The kind of a recorded write (`put chunks/ab/...` → `put chunks`); see
/// [`Counts::first_and_last_writes_of_each_kind`].
fn kind_of_write(write: &str) -> String {
    let (op, path) = write.split_once(' ').unwrap_or((write, ""));
    if path.starts_with("refs/") || path.starts_with("gc/") {
        return write.to_string();
    }
    let top = path.split('/').next().unwrap_or(path);
    format!("{op} {top}")
}

/// Counts the requests made through it.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    pub counts: Arc<Counts>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        CountingStore {
            inner,
            counts: Arc::new(Counts::default()),
        }
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountingStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.counts.puts.fetch_add(1, Ordering::SeqCst);
        self.counts.wrote("put", location);
        self.counts
            .bytes_put
            .fetch_add(payload.content_length() as u64, Ordering::SeqCst);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.counts.puts.fetch_add(1, Ordering::SeqCst);
        self.counts.wrote("put_multipart", location);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if options.head {
            self.counts.heads.fetch_add(1, Ordering::SeqCst);
        } else {
            self.counts.gets.fetch_add(1, Ordering::SeqCst);
        }
        let result = self.inner.get_opts(location, options).await?;
        self.counts
            .bytes_got
            .fetch_add(result.meta.size, Ordering::SeqCst);
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let counts = self.counts.clone();
        self.inner
            .delete_stream(Box::pin(locations.inspect(move |path| {
                counts.deletes.fetch_add(1, Ordering::SeqCst);
                if let Ok(path) = path {
                    counts.wrote("delete", path);
                }
            })))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counts.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counts.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.counts.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.counts.puts.fetch_add(1, Ordering::SeqCst);
        self.counts.wrote("copy", to);
        self.inner.copy_opts(from, to, options).await
    }
}

/// A store that pretends to support conditional writes: create-only puts overwrite (the way
/// some S3-compatible services silently ignore `If-None-Match`). The probe must refuse it.
#[derive(Debug)]
pub struct IgnoresConditionsStore {
    inner: Arc<dyn ObjectStore>,
}

impl IgnoresConditionsStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        IgnoresConditionsStore { inner }
    }
}

impl fmt::Display for IgnoresConditionsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IgnoresConditionsStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for IgnoresConditionsStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> Result<PutResult> {
        opts.mode = object_store::PutMode::Overwrite;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Records the keys of finished puts in the order they finished. Each put first waits a
/// few milliseconds, more or less by key, so that puts made side by side finish in an order
/// other than the one they were started in: a writer that does not wait for an object's
/// dependencies before storing it is caught storing it first.
pub struct OrderStore {
    inner: Arc<dyn ObjectStore>,
    finished: Mutex<Vec<String>>,
}

impl OrderStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        OrderStore {
            inner,
            finished: Mutex::new(Vec::new()),
        }
    }

    /// The keys of the puts that finished, in order.
    pub fn finished(&self) -> Vec<String> {
        self.finished.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

impl fmt::Debug for OrderStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderStore({})", self.inner)
    }
}

impl fmt::Display for OrderStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for OrderStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let spread = location
            .as_ref()
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        tokio::time::sleep(std::time::Duration::from_millis(spread % 4)).await;
        let r = self.inner.put_opts(location, payload, opts).await;
        if r.is_ok() {
            if let Ok(mut f) = self.finished.lock() {
                f.push(location.to_string());
            }
        }
        r
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Something to run before one store call.
pub type Hook = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

/// Runs a hook, once, just before the first put whose key starts with a prefix (for example:
/// a garbage collection between a push's uploads and its ref write).
pub struct HookStore {
    inner: Arc<dyn ObjectStore>,
    prefix: String,
    hook: Mutex<Option<Hook>>,
}

impl HookStore {
    pub fn new(inner: Arc<dyn ObjectStore>, prefix: &str, hook: Hook) -> Self {
        HookStore {
            inner,
            prefix: prefix.to_string(),
            hook: Mutex::new(Some(hook)),
        }
    }

    /// Whether the hook has run.
    pub fn has_run(&self) -> bool {
        self.hook.lock().map(|h| h.is_none()).unwrap_or(false)
    }
}

impl fmt::Debug for HookStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HookStore({}, {})", self.inner, self.prefix)
    }
}

impl fmt::Display for HookStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HookStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for HookStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let due = location.as_ref().starts_with(&self.prefix);
        let hook = if due {
            self.hook.lock().ok().and_then(|mut h| h.take())
        } else {
            None
        };
        if let Some(hook) = hook {
            hook().await;
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A store whose writes to keys under a prefix stall: the first is held and applied only when
/// the test says so ([`StallStore::apply_late`]), as a request the server applies after the
/// client gave up; further writes to those keys time out without effect until
/// [`StallStore::heal`]. Everything else passes through.
pub struct StallStore {
    inner: Arc<dyn ObjectStore>,
    prefix: String,
    late: Mutex<Option<Late>>,
    healed: std::sync::atomic::AtomicBool,
}

impl StallStore {
    pub fn new(inner: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        StallStore {
            inner,
            prefix: prefix.to_string(),
            late: Mutex::new(None),
            healed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Performs the held write, if any; returns its outcome.
    pub async fn apply_late(&self) -> Option<Result<PutResult>> {
        let late = self.late.lock().ok().and_then(|mut l| l.take());
        match late {
            Some((path, payload, opts)) => Some(self.inner.put_opts(&path, payload, opts).await),
            None => None,
        }
    }

    /// Lets writes through again.
    pub fn heal(&self) {
        self.healed.store(true, Ordering::SeqCst);
    }

    /// Whether a write is being held.
    pub fn holds_a_write(&self) -> bool {
        self.late.lock().map(|l| l.is_some()).unwrap_or(false)
    }
}

impl fmt::Debug for StallStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StallStore({}, {})", self.inner, self.prefix)
    }
}

impl fmt::Display for StallStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StallStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for StallStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if self.healed.load(Ordering::SeqCst) || !location.as_ref().starts_with(&self.prefix) {
            return self.inner.put_opts(location, payload, opts).await;
        }
        if let Ok(mut l) = self.late.lock() {
            if l.is_none() {
                *l = Some((location.clone(), payload, opts));
            }
        }
        Err(object_store::Error::Generic {
            store: "stall",
            source: format!("timed out writing {location}").into(),
        })
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A store on a case-insensitive file system (macOS, Windows, SMB shares): keys that differ
/// only by case are one key, stored and listed under the case first written.
pub struct CaseInsensitiveStore {
    inner: Arc<dyn ObjectStore>,
    /// Lower-cased key to the key as first written.
    names: Mutex<std::collections::HashMap<String, Path>>,
}

impl CaseInsensitiveStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        CaseInsensitiveStore {
            inner,
            names: Mutex::new(Default::default()),
        }
    }

    /// The key as stored: every component folded to the case it was first written with.
    fn fold(&self, p: &Path) -> Path {
        let Ok(mut names) = self.names.lock() else {
            return p.clone();
        };
        let mut out = Path::default();
        for part in p.parts() {
            let next = out.clone().join(part.as_ref());
            let key = next.as_ref().to_lowercase();
            let kept = names.entry(key).or_insert(next).clone();
            out = kept;
        }
        out
    }
}

impl fmt::Debug for CaseInsensitiveStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaseInsensitiveStore({})", self.inner)
    }
}

impl fmt::Display for CaseInsensitiveStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaseInsensitiveStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CaseInsensitiveStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner
            .put_opts(&self.fold(location), payload, opts)
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner
            .put_multipart_opts(&self.fold(location), opts)
            .await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(&self.fold(location), options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let names: Vec<(String, Path)> = self
            .names
            .lock()
            .map(|n| n.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let map: std::collections::HashMap<String, Path> = names.into_iter().collect();
        let mapped = locations
            .map(move |p| p.map(|p| map.get(&p.as_ref().to_lowercase()).cloned().unwrap_or(p)));
        self.inner.delete_stream(Box::pin(mapped))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let p = prefix.map(|p| self.fold(p));
        self.inner.list(p.as_ref())
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let p = prefix.map(|p| self.fold(p));
        self.inner.list_with_offset(p.as_ref(), &self.fold(offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let p = prefix.map(|p| self.fold(p));
        self.inner.list_with_delimiter(p.as_ref()).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner
            .copy_opts(&self.fold(from), &self.fold(to), options)
            .await
    }
}

/// A store whose listings lag behind its writes, as a network file system's directory
/// cache does (NFS `acdirmax`, SMB `actimeo`): for `lag` after a key is written it is left
/// out of listings, and for `lag` after it is deleted it is still listed. Reads of a single
/// key are fresh.
pub struct StaleListingStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<StaleState>,
}

#[derive(Debug)]
struct StaleState {
    lag: std::time::Duration,
    /// Keys written or deleted lately: when, and for a delete the key as last listed.
    recent: Mutex<std::collections::HashMap<Path, (std::time::Instant, Option<ObjectMeta>)>>,
    /// The last listed (or written) metadata of each key, to list a deleted key as it was.
    known: Mutex<std::collections::HashMap<Path, ObjectMeta>>,
}

impl StaleState {
    fn written(&self, location: &Path, size: u64) {
        let now = std::time::Instant::now();
        if let Ok(mut r) = self.recent.lock() {
            r.insert(location.clone(), (now, None));
        }
        if let Ok(mut k) = self.known.lock() {
            k.insert(
                location.clone(),
                ObjectMeta {
                    location: location.clone(),
                    last_modified: chrono::Utc::now(),
                    size,
                    e_tag: None,
                    version: None,
                },
            );
        }
    }

    fn deleted(&self, location: &Path) {
        let meta = self
            .known
            .lock()
            .ok()
            .and_then(|k| k.get(location).cloned())
            .unwrap_or(ObjectMeta {
                location: location.clone(),
                last_modified: chrono::Utc::now(),
                size: 0,
                e_tag: None,
                version: None,
            });
        if let Ok(mut r) = self.recent.lock() {
            r.insert(location.clone(), (std::time::Instant::now(), Some(meta)));
        }
    }

    /// The listing as the lagging cache serves it.
    fn stale(
        &self,
        listed: Vec<ObjectMeta>,
        prefix: Option<&Path>,
        offset: Option<&Path>,
    ) -> Vec<ObjectMeta> {
        if let Ok(mut k) = self.known.lock() {
            for m in &listed {
                k.insert(m.location.clone(), m.clone());
            }
        }
        let Ok(recent) = self.recent.lock() else {
            return listed;
        };
        let fresh = |p: &Path| recent.get(p).is_some_and(|(at, _)| at.elapsed() < self.lag);
        let mut out: Vec<ObjectMeta> = listed.into_iter().filter(|m| !fresh(&m.location)).collect();
        for (p, (at, gone)) in recent.iter() {
            let Some(meta) = gone else { continue };
            let under = prefix.is_none_or(|pre| p.prefix_matches(pre));
            let after = offset.is_none_or(|o| p > o);
            if at.elapsed() < self.lag && under && after {
                out.push(meta.clone());
            }
        }
        out.sort_by(|a, b| a.location.cmp(&b.location));
        out
    }
}

impl StaleListingStore {
    pub fn new(inner: Arc<dyn ObjectStore>, lag: std::time::Duration) -> Self {
        StaleListingStore {
            inner,
            state: Arc::new(StaleState {
                lag,
                recent: Mutex::new(Default::default()),
                known: Mutex::new(Default::default()),
            }),
        }
    }

    fn listing(
        &self,
        inner: BoxStream<'static, Result<ObjectMeta>>,
        prefix: Option<&Path>,
        offset: Option<&Path>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        use futures::TryStreamExt;
        let state = self.state.clone();
        let prefix = prefix.cloned();
        let offset = offset.cloned();
        futures::stream::once(async move {
            let listed: Vec<ObjectMeta> = inner.try_collect().await?;
            let view = state.stale(listed, prefix.as_ref(), offset.as_ref());
            Ok::<_, object_store::Error>(futures::stream::iter(view.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }
}

impl fmt::Debug for StaleListingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StaleListingStore({})", self.inner)
    }
}

impl fmt::Display for StaleListingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StaleListingStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for StaleListingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let size = payload.content_length() as u64;
        let r = self.inner.put_opts(location, payload, opts).await?;
        self.state.written(location, size);
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.state.written(location, 0);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let state = self.state.clone();
        let noted = locations
            .map(move |p| {
                if let Ok(p) = &p {
                    state.deleted(p);
                }
                p
            })
            .boxed();
        self.inner.delete_stream(noted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.listing(self.inner.list(prefix), prefix, None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.listing(
            self.inner.list_with_offset(prefix, offset),
            prefix,
            Some(offset),
        )
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut r = self.inner.list_with_delimiter(prefix).await?;
        let depth = prefix.map_or(0, |p| p.parts().count()) + 1;
        let objects = std::mem::take(&mut r.objects);
        r.objects = self
            .state
            .stale(objects, prefix, None)
            .into_iter()
            .filter(|m| m.location.parts().count() == depth)
            .collect();
        Ok(r)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await?;
        self.state.written(to, 0);
        Ok(())
    }
}

/// Once a put whose key starts with `trigger` succeeded, every listing under `broken` fails
/// (a store whose listings start failing mid-operation, for longer than any retry).
pub struct ListingsFailAfterStore {
    inner: Arc<dyn ObjectStore>,
    trigger: String,
    broken: String,
    armed: std::sync::atomic::AtomicBool,
}

impl ListingsFailAfterStore {
    pub fn new(inner: Arc<dyn ObjectStore>, trigger: &str, broken: &str) -> Self {
        ListingsFailAfterStore {
            inner,
            trigger: trigger.to_string(),
            broken: broken.to_string(),
            armed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn fails(&self, prefix: Option<&Path>) -> bool {
        self.armed.load(Ordering::SeqCst)
            && prefix.is_some_and(|p| p.as_ref().starts_with(self.broken.trim_end_matches('/')))
    }

    fn error(prefix: Option<&Path>) -> object_store::Error {
        object_store::Error::Generic {
            store: "listings-fail",
            source: format!("listing {prefix:?} failed").into(),
        }
    }
}

impl fmt::Debug for ListingsFailAfterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ListingsFailAfterStore({})", self.inner)
    }
}

impl fmt::Display for ListingsFailAfterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ListingsFailAfterStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for ListingsFailAfterStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let r = self.inner.put_opts(location, payload, opts).await?;
        if location.as_ref().starts_with(&self.trigger) {
            self.armed.store(true, Ordering::SeqCst);
        }
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.fails(prefix) {
            return futures::stream::once(futures::future::ready(Err(Self::error(prefix)))).boxed();
        }
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.fails(prefix) {
            return futures::stream::once(futures::future::ready(Err(Self::error(prefix)))).boxed();
        }
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        if self.fails(prefix) {
            return Err(Self::error(prefix));
        }
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Stores that remotes of given URLs use instead of opening their URL, in this process.
static ROUTES: Mutex<Vec<(String, Arc<dyn ObjectStore>)>> = Mutex::new(Vec::new());

/// Makes every remote whose URL is `url` (as [`crate::url::Location::to_url`] writes it)
/// open `store` instead, in this process: how a test puts a fault-injecting store under the
/// library's own push, pull or clone. Routing the same URL again replaces the store.
pub fn route(url: &str, store: Arc<dyn ObjectStore>) {
    let mut routes = ROUTES.lock().unwrap_or_else(|e| e.into_inner());
    routes.retain(|(u, _)| u != url);
    routes.push((url.to_string(), store));
}

/// Ends a [`route`].
pub fn unroute(url: &str) {
    ROUTES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(u, _)| u != url);
}

/// The store routed for `url`, if any.
pub(crate) fn routed(url: &str) -> Option<Arc<dyn ObjectStore>> {
    ROUTES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(u, _)| u == url)
        .map(|(_, s)| s.clone())
}

/// Creates a bucket on fake-gcs-server, the Google Cloud Storage emulator the tests run on
/// (its JSON API at `endpoint`, such as `http://127.0.0.1:4443`); a bucket that exists
/// already is fine. Tests give each remote a bucket of its own there: the emulator keeps a
/// bucket's objects in one list that it searches from the start on every request, so with
/// one shared bucket each request cost more than the one before, all run long.
pub fn create_gcs_emulator_bucket(endpoint: &str, bucket: &str) -> std::io::Result<()> {
    use std::io::{Error, Read, Write};
    let authority = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| Error::other(format!("{endpoint}: expected an http:// endpoint")))?
        .trim_end_matches('/');
    let body = format!("{{\"name\":\"{bucket}\"}}");
    let request = format!(
        "POST /storage/v1/b?project=test HTTP/1.1\r\nHost: {authority}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(authority)?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).unwrap_or("");
    match status {
        "200" | "409" => Ok(()),
        _ => Err(Error::other(format!(
            "creating bucket {bucket} on {endpoint} answered: {}",
            response.lines().next().unwrap_or("nothing")
        ))),
    }
}
