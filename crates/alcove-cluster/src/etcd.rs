//! etcd membership and the cluster's mount table store.
//!
//! Each worker registers itself at `{prefix}/workers/{id}` under a lease it keeps alive, and
//! watches `{prefix}/workers/`: the registered workers are the live members, so a worker that
//! leaves revokes its lease and one that dies drops out when its lease expires. The mount table
//! lives beside them at `{prefix}/mounts/{bucket}`. While etcd is unreachable the last known view
//! and mount table stay published, and everything is re-read once it answers again.
//!
//! It publishes views and stores mount entries; it may not route requests or touch storage. Mount
//! entries are opaque JSON bytes here: their shape belongs to `alcove-ufs`, which this crate may
//! not depend on.
//!
//! Client crate: `etcdv3client` ships its generated protobuf code, so a plain `cargo build` needs no
//! system package; `etcd-client` runs `protoc` in its build script and fails without Debian's
//! `protobuf-compiler`. Only its raw request methods are used: its convenience builders return
//! futures that are not `Send`, so they cannot run in spawned tasks.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use etcdv3client::pb::{self, compare, request_op, response_op, watch_request};
use etcdv3client::EtcdClient;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::{sleep, timeout, Instant};

use crate::view::{log_change, ClusterView, Member};

/// How a worker reaches etcd and how quickly its death is noticed.
#[derive(Debug, Clone)]
pub struct EtcdSettings {
    /// Client URLs, e.g. `http://10.0.0.9:2379` (`host:port` means `http://host:port`).
    pub endpoints: Vec<String>,
    /// The key prefix all of this cluster's keys live under, e.g. `/alcove/prod`.
    pub prefix: String,
    /// How long a worker stays registered after its last keep-alive: the time to notice a death.
    /// Whole seconds; etcd raises a TTL below its own minimum (2 s with its default timing).
    pub lease_ttl: Duration,
}

/// Why an etcd operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("no etcd endpoints are configured")]
    NoEndpoints,
    #[error("the etcd lease TTL must be at least 1 s (etcd counts in whole seconds), not {0:?}")]
    LeaseTtl(Duration),
    #[error("a mount needs a bucket name")]
    EmptyBucket,
    #[error("cannot connect to etcd at {endpoints}: {source}")]
    Connect { endpoints: String, source: etcdv3client::Error },
    #[error("etcd at {endpoints}: {op} failed: {source}")]
    Request { endpoints: String, op: &'static str, source: etcdv3client::Error },
    #[error("etcd at {endpoints}: {op} got no answer within {after:?}")]
    Timeout { endpoints: String, op: &'static str, after: Duration },
    #[error("etcd at {endpoints}: {op} was refused: {reason}")]
    Refused { endpoints: String, op: &'static str, reason: String },
    #[error(
        "worker id {id:?} is already registered in etcd at {endpoints} by another live process \
         (lease {lease:x}); every worker needs its own id"
    )]
    DuplicateId { id: String, endpoints: String, lease: i64 },
    #[error("cannot encode worker {id:?} for etcd: {source}")]
    Encode { id: String, source: serde_json::Error },
}

/// The handle of this worker's etcd membership and of the mount table store. Clones share one
/// registration; when the last clone is dropped the keep-alives and watches stop without revoking
/// the lease (as if the process had died), so hold one for as long as the worker runs.
#[derive(Clone)]
pub struct EtcdMembership {
    inner: Arc<Inner>,
}

struct Inner {
    etcd: Etcd,
    me: String,
    mounts_prefix: String,
    /// The lease this worker is registered under; the keep-alive task replaces it after expiry.
    lease: Arc<AtomicI64>,
    mount_table: watch::Receiver<Arc<BTreeMap<String, Bytes>>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// Why a registered worker is gone from the ring, for the log.
const LEFT_BECAUSE: &str = "its etcd registration is gone (left, or its lease expired)";
/// The longest pause between retries while etcd does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl EtcdMembership {
    /// Connects, registers `me` (serde JSON of [`Member`]) at `{prefix}/workers/{id}` under a lease
    /// of `lease_ttl`, keeps the lease alive (every ttl/3), watches `{prefix}/workers/` and
    /// publishes a new [`ClusterView`] (members = live = the registered workers, plus `me`) on
    /// every change.
    ///
    /// If `{prefix}/workers/{id}` is held by another live lease, it waits up to `lease_ttl` + 1 s
    /// for that lease to expire (it may be this worker's previous, crashed run) and then fails with
    /// [`EtcdError::DuplicateId`]: a holder that outlives that is another process with this id.
    pub async fn join(
        settings: EtcdSettings,
        me: Member,
    ) -> Result<(Self, watch::Receiver<Arc<ClusterView>>), EtcdError> {
        let ttl_secs = lease_ttl_secs(settings.lease_ttl)?;
        let etcd = Etcd::connect(&settings).await?;
        let keys = Keys::new(&settings.prefix, &me.id);
        let value = serde_json::to_vec(&me).map_err(|source| EtcdError::Encode { id: me.id.clone(), source })?;
        let registration = Registration { id: me.id.clone(), key: keys.me.clone(), value, ttl_secs };
        let patience = settings.lease_ttl + Duration::from_secs(1);
        let lease = etcd.register(&registration, Instant::now() + patience).await?;
        match Self::start(etcd.clone(), keys, me, registration, lease, settings.lease_ttl).await {
            Ok(joined) => Ok(joined),
            Err(e) => {
                // A retry with this id must not wait for a registration nobody keeps alive.
                let _ = etcd.revoke(lease).await;
                Err(e)
            }
        }
    }

    /// Reads the current workers and mount table, then starts the tasks that follow them and the
    /// one that keeps the lease alive.
    async fn start(
        etcd: Etcd,
        keys: Keys,
        me: Member,
        registration: Registration,
        lease: i64,
        lease_ttl: Duration,
    ) -> Result<(Self, watch::Receiver<Arc<ClusterView>>), EtcdError> {
        let workers = etcd.read_prefix(&keys.workers).await?;
        let mounts = etcd.read_prefix(&keys.mounts).await?;

        let view = view_of(&me, &workers.entries);
        log_change(&ClusterView::single(me.clone()), &view, LEFT_BECAUSE);
        tracing::info!(worker = %me.id, endpoints = %etcd.endpoints, members = view.live.len(), "joined the cluster through etcd");
        let (views, view_rx) = watch::channel(Arc::new(view));
        let (tables, table_rx) = watch::channel(Arc::new(mounts.entries.clone()));

        let health = Arc::new(Health::new(etcd.endpoints.clone()));
        let lease = Arc::new(AtomicI64::new(lease));
        let progress_every = lease_ttl.clamp(Duration::from_secs(1), Duration::from_secs(10));
        let workers_mirror =
            Mirror { etcd: etcd.clone(), prefix: keys.workers, health: health.clone(), progress_every };
        let mounts_mirror =
            Mirror { etcd: etcd.clone(), prefix: keys.mounts.clone(), health: health.clone(), progress_every };
        let keeper = Keeper { etcd: etcd.clone(), registration, lease: lease.clone(), health, tick: lease_ttl / 3 };
        let tasks = vec![
            tokio::spawn(workers_mirror.run(workers, publish_view(me.clone(), views))).abort_handle(),
            tokio::spawn(mounts_mirror.run(mounts, publish_table(tables))).abort_handle(),
            tokio::spawn(keeper.run()).abort_handle(),
        ];
        let inner = Inner {
            etcd,
            me: me.id,
            mounts_prefix: keys.mounts,
            lease,
            mount_table: table_rx,
            tasks: Mutex::new(tasks),
        };
        Ok((Self { inner: Arc::new(inner) }, view_rx))
    }

    /// The mount table stored at `{prefix}/mounts/{bucket}`: bucket -> JSON bytes, read from etcd.
    pub async fn mounts(&self) -> Result<BTreeMap<String, Bytes>, EtcdError> {
        Ok(self.inner.etcd.read_prefix(&self.inner.mounts_prefix).await?.entries)
    }

    /// Creates a mount entry only if absent; `Ok(false)` when one already exists.
    pub async fn put_mount_if_absent(&self, bucket: &str, entry: Bytes) -> Result<bool, EtcdError> {
        let key = self.mount_key(bucket)?;
        self.inner.etcd.create(&key, &entry, 0).await
    }

    /// Deletes a mount entry; `Ok(false)` if there was none.
    pub async fn delete_mount(&self, bucket: &str) -> Result<bool, EtcdError> {
        let key = self.mount_key(bucket)?;
        self.inner.etcd.delete(&key).await
    }

    /// The whole mount table, a new map every time any entry changes; its first value is the table
    /// as last seen when it is called.
    pub fn mount_table(&self) -> watch::Receiver<Arc<BTreeMap<String, Bytes>>> {
        let mut table = self.inner.mount_table.clone();
        // A clone inherits what the original has seen; this one has seen the table it starts with.
        table.borrow_and_update();
        table
    }

    /// Leaves the cluster gracefully: stops renewing and watching, and revokes the lease so the
    /// others drop this worker at once rather than after its lease expires.
    pub async fn leave(&self) {
        self.stop();
        let lease = self.inner.lease.load(Ordering::SeqCst);
        match self.inner.etcd.revoke(lease).await {
            Ok(()) => tracing::info!(worker = %self.inner.me, "left the cluster (etcd lease revoked)"),
            Err(e) => tracing::warn!(
                worker = %self.inner.me,
                error = %e,
                "could not revoke the etcd lease; the others drop this worker when it expires"
            ),
        }
    }

    /// Stops the keep-alives and watches without revoking the lease: what the others see is a
    /// crash, and the published view and mount table stay as they are. `leave` is the graceful way.
    pub fn stop(&self) {
        self.inner.stop();
    }

    fn mount_key(&self, bucket: &str) -> Result<String, EtcdError> {
        if bucket.is_empty() {
            return Err(EtcdError::EmptyBucket);
        }
        Ok(format!("{}{bucket}", self.inner.mounts_prefix))
    }
}

impl std::fmt::Debug for EtcdMembership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdMembership")
            .field("me", &self.inner.me)
            .field("endpoints", &self.inner.etcd.endpoints)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn stop(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for task in tasks {
            task.abort();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// etcd counts lease TTLs in whole seconds; a fraction is rounded up so a worker never expires
/// sooner than configured.
fn lease_ttl_secs(ttl: Duration) -> Result<i64, EtcdError> {
    if ttl < Duration::from_secs(1) {
        return Err(EtcdError::LeaseTtl(ttl));
    }
    Ok(ttl.as_secs_f64().ceil() as i64)
}

/// The keys of one cluster under its prefix.
struct Keys {
    workers: String,
    mounts: String,
    me: String,
}

impl Keys {
    fn new(prefix: &str, me: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        let workers = format!("{prefix}/workers/");
        Self { me: format!("{workers}{me}"), workers, mounts: format!("{prefix}/mounts/") }
    }
}

/// What this worker writes to be a member.
struct Registration {
    id: String,
    key: String,
    value: Vec<u8>,
    ttl_secs: i64,
}

/// The view of the registered workers: the well-formed entries, plus this worker whatever etcd says
/// (it is serving, and its own registration may be on its way back after an outage).
fn view_of(me: &Member, registered: &BTreeMap<String, Bytes>) -> ClusterView {
    let mut members: BTreeMap<String, Member> =
        registered.iter().filter_map(|(id, json)| parse_member(id, json)).map(|m| (m.id.clone(), m)).collect();
    members.insert(me.id.clone(), me.clone());
    let live: Vec<String> = members.keys().cloned().collect();
    ClusterView::new(&me.id, members.into_values(), live)
}

/// A worker entry as another worker wrote it; anything else is skipped, since one bad entry must
/// not take the ring down.
fn parse_member(key: &str, json: &[u8]) -> Option<Member> {
    match serde_json::from_slice::<Member>(json) {
        Ok(m) if m.id == key => Some(m),
        Ok(m) => {
            tracing::warn!(key, id = %m.id, "an etcd worker entry names another worker id; skipped");
            None
        }
        Err(e) => {
            tracing::warn!(key, error = %e, "an etcd worker entry is not a worker description; skipped");
            None
        }
    }
}

fn publish_view(me: Member, views: watch::Sender<Arc<ClusterView>>) -> impl FnMut(&BTreeMap<String, Bytes>) + Send {
    move |registered| {
        let next = view_of(&me, registered);
        views.send_if_modified(|current| {
            if **current == next {
                return false;
            }
            log_change(current, &next, LEFT_BECAUSE);
            *current = Arc::new(next);
            true
        });
    }
}

fn publish_table(tables: watch::Sender<Arc<BTreeMap<String, Bytes>>>) -> impl FnMut(&BTreeMap<String, Bytes>) + Send {
    move |table| {
        tables.send_if_modified(|current| {
            if **current == *table {
                return false;
            }
            *current = Arc::new(table.clone());
            true
        });
    }
}

/// Logs an etcd outage once when it starts and once when it ends, however many tasks notice it.
struct Health {
    endpoints: Arc<str>,
    down: AtomicBool,
}

impl Health {
    fn new(endpoints: Arc<str>) -> Self {
        Self { endpoints, down: AtomicBool::new(false) }
    }

    fn failed(&self, error: &EtcdError) {
        if self.down.swap(true, Ordering::SeqCst) {
            tracing::debug!(error = %error, "etcd still unreachable");
        } else {
            tracing::warn!(
                endpoints = %self.endpoints,
                error = %error,
                "etcd is unreachable; keeping the last known cluster view and mount table while retrying"
            );
        }
    }

    fn ok(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            tracing::info!(endpoints = %self.endpoints, "etcd answers again");
        }
    }
}

/// Retry pauses: short at first so a blip costs little, at most [`MAX_BACKOFF`].
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);

    fn new() -> Self {
        Self(Self::FIRST)
    }

    fn next(&mut self) -> Duration {
        let pause = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        pause
    }

    fn reset(&mut self) {
        self.0 = Self::FIRST;
    }
}

/// Keeps this worker registered: renews the lease every ttl/3 and, once it has expired (etcd was
/// away too long, or lost its data), registers again under a new one.
struct Keeper {
    etcd: Etcd,
    registration: Registration,
    lease: Arc<AtomicI64>,
    health: Arc<Health>,
    tick: Duration,
}

impl Keeper {
    async fn run(self) {
        let mut backoff = Backoff::new();
        let mut duplicate_reported = false;
        let mut pause = self.tick;
        loop {
            sleep(pause).await;
            pause = match self.renew().await {
                Ok(()) => {
                    self.health.ok();
                    backoff.reset();
                    duplicate_reported = false;
                    self.tick
                }
                Err(e @ EtcdError::DuplicateId { .. }) => {
                    // etcd answers, but another process took this id while this worker was away.
                    self.health.ok();
                    if !std::mem::replace(&mut duplicate_reported, true) {
                        tracing::error!(error = %e, "cannot register again; retrying until the other process leaves");
                    }
                    MAX_BACKOFF
                }
                Err(e) => {
                    self.health.failed(&e);
                    backoff.next()
                }
            };
        }
    }

    async fn renew(&self) -> Result<(), EtcdError> {
        let lease = self.lease.load(Ordering::SeqCst);
        if self.etcd.keep_alive(lease).await? {
            return Ok(());
        }
        tracing::warn!(worker = %self.registration.id, "this worker's etcd lease expired; registering again");
        let lease = self.etcd.register(&self.registration, Instant::now()).await?;
        self.lease.store(lease, Ordering::SeqCst);
        tracing::info!(worker = %self.registration.id, "registered in etcd again");
        Ok(())
    }
}

/// The entries under one prefix at one revision.
struct Snapshot {
    /// Key (without the prefix) -> value.
    entries: BTreeMap<String, Bytes>,
    revision: i64,
}

/// Follows one prefix: watches from a snapshot's revision and, when the watch breaks, reads the
/// whole prefix again before watching anew, so no change is missed.
struct Mirror {
    etcd: Etcd,
    prefix: String,
    health: Arc<Health>,
    /// How often an idle watch asks for a progress report, so a silent etcd is noticed.
    progress_every: Duration,
}

impl Mirror {
    async fn run(self, mut snapshot: Snapshot, mut publish: impl FnMut(&BTreeMap<String, Bytes>) + Send) {
        let mut backoff = Backoff::new();
        loop {
            match self.follow(&mut snapshot, &mut publish, &mut backoff).await {
                // etcd answered, but ended the watch (a compaction, a server shutting down).
                ended @ EtcdError::Refused { .. } => {
                    tracing::info!(prefix = %self.prefix, error = %ended, "etcd ended a watch; reading again")
                }
                broken => self.health.failed(&broken),
            }
            loop {
                sleep(backoff.next()).await;
                match self.etcd.read_prefix(&self.prefix).await {
                    Ok(fresh) => {
                        snapshot = fresh;
                        publish(&snapshot.entries);
                        break;
                    }
                    Err(e) => self.health.failed(&e),
                }
            }
        }
    }

    /// Applies every change after `snapshot.revision` until the watch breaks; returns why it did.
    async fn follow(
        &self,
        snapshot: &mut Snapshot,
        publish: &mut impl FnMut(&BTreeMap<String, Bytes>),
        backoff: &mut Backoff,
    ) -> EtcdError {
        let mut answers = match self.etcd.watch(&self.prefix, snapshot.revision + 1, self.progress_every).await {
            Ok(answers) => answers,
            Err(e) => return e,
        };
        let idle_limit = self.progress_every * 3;
        loop {
            let answer = match timeout(idle_limit, answers.next()).await {
                Ok(Some(Ok(answer))) => answer,
                Ok(None) => return self.etcd.refused("watch", "the watch stream ended".into()),
                Ok(Some(Err(e))) => return self.etcd.failed("watch", e),
                Err(_) => return self.etcd.timed_out("watch", idle_limit),
            };
            if answer.canceled {
                let reason = format!("{} (compacted at {})", answer.cancel_reason, answer.compact_revision);
                return self.etcd.refused("watch", reason);
            }
            if answer.created {
                self.health.ok();
                backoff.reset();
            }
            if apply(&self.prefix, &mut snapshot.entries, &answer.events) {
                publish(&snapshot.entries);
            }
        }
    }
}

/// Applies watch events to the entries under `prefix`; true when anything changed.
fn apply(prefix: &str, entries: &mut BTreeMap<String, Bytes>, events: &[pb::Event]) -> bool {
    let mut changed = false;
    for event in events {
        let Some(kv) = &event.kv else { continue };
        let Some(name) = name_under(prefix, &kv.key) else { continue };
        changed |= if event.r#type == pb::event::EventType::Delete as i32 {
            entries.remove(&name).is_some()
        } else {
            let value = Bytes::copy_from_slice(&kv.value);
            entries.insert(name, value.clone()).is_none_or(|old| old != value)
        };
    }
    changed
}

/// The part of `key` after `prefix`, if it is UTF-8 (names are ids and bucket names).
fn name_under(prefix: &str, key: &[u8]) -> Option<String> {
    let name = key.strip_prefix(prefix.as_bytes())?;
    match std::str::from_utf8(name) {
        Ok(name) if !name.is_empty() => Some(name.to_owned()),
        Ok(_) => None,
        Err(_) => {
            tracing::warn!(key = %String::from_utf8_lossy(key), "an etcd key is not UTF-8; skipped");
            None
        }
    }
}

/// The end of the key range holding every key that starts with `prefix` (etcd's convention: the
/// prefix with its last byte below 0xff incremented).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): "every key from here on".
    vec![0]
}

/// The etcd client with the few operations used here, each bounded by a timeout so a silent etcd
/// cannot stall a task.
#[derive(Clone)]
struct Etcd {
    client: EtcdClient,
    endpoints: Arc<str>,
    rpc_timeout: Duration,
}

/// Where a key someone else created stands.
enum Claim {
    Done,
    /// Held under a live lease.
    Held {
        lease: i64,
    },
    /// Written without a lease (by hand, most likely): nobody keeps it, so it may be replaced.
    Stale {
        mod_revision: i64,
    },
    /// Deleted between the compare and the read.
    Vanished,
}

impl Etcd {
    async fn connect(settings: &EtcdSettings) -> Result<Self, EtcdError> {
        if settings.endpoints.is_empty() {
            return Err(EtcdError::NoEndpoints);
        }
        let urls: Vec<String> = settings.endpoints.iter().map(|e| with_scheme(e)).collect();
        let endpoints: Arc<str> = urls.join(",").into();
        let rpc_timeout = settings.lease_ttl.clamp(Duration::from_secs(1), Duration::from_secs(5));
        let client = match timeout(rpc_timeout, EtcdClient::new(urls, None)).await {
            Ok(Ok(client)) => client,
            Ok(Err(source)) => return Err(EtcdError::Connect { endpoints: endpoints.to_string(), source }),
            Err(_) => {
                return Err(EtcdError::Timeout { endpoints: endpoints.to_string(), op: "connect", after: rpc_timeout })
            }
        };
        Ok(Self { client, endpoints, rpc_timeout })
    }

    async fn call<T>(
        &self,
        op: &'static str,
        request: impl Future<Output = Result<T, etcdv3client::Error>>,
    ) -> Result<T, EtcdError> {
        match timeout(self.rpc_timeout, request).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(source)) => Err(self.failed(op, source)),
            Err(_) => Err(self.timed_out(op, self.rpc_timeout)),
        }
    }

    fn failed(&self, op: &'static str, source: etcdv3client::Error) -> EtcdError {
        EtcdError::Request { endpoints: self.endpoints.to_string(), op, source }
    }

    fn timed_out(&self, op: &'static str, after: Duration) -> EtcdError {
        EtcdError::Timeout { endpoints: self.endpoints.to_string(), op, after }
    }

    fn refused(&self, op: &'static str, reason: String) -> EtcdError {
        EtcdError::Refused { endpoints: self.endpoints.to_string(), op, reason }
    }

    async fn read_prefix(&self, prefix: &str) -> Result<Snapshot, EtcdError> {
        let request =
            pb::RangeRequest { key: prefix.as_bytes().to_vec(), range_end: prefix_end(prefix), ..Default::default() };
        let mut kv = self.client.kv.clone();
        let answer = self.call("read", kv.range(request)).await?;
        let entries = answer
            .kvs
            .into_iter()
            .filter_map(|kv| Some((name_under(prefix, &kv.key)?, Bytes::from(kv.value))))
            .collect();
        Ok(Snapshot { entries, revision: answer.header.map_or(0, |h| h.revision) })
    }

    /// Opens a watch of every key under `prefix` from `start_revision`. The request stream stays
    /// open, asking for a progress report every `progress_every`, so that even an idle watch hears
    /// from etcd regularly.
    async fn watch(
        &self,
        prefix: &str,
        start_revision: i64,
        progress_every: Duration,
    ) -> Result<impl futures::Stream<Item = Result<pb::WatchResponse, etcdv3client::Error>> + Send + Unpin, EtcdError>
    {
        let create = pb::WatchCreateRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: prefix_end(prefix),
            start_revision,
            ..Default::default()
        };
        let create = pb::WatchRequest { request_union: Some(watch_request::RequestUnion::CreateRequest(create)) };
        let progress = futures::stream::unfold((), move |()| async move {
            sleep(progress_every).await;
            let request = pb::WatchProgressRequest {};
            Some((pb::WatchRequest { request_union: Some(watch_request::RequestUnion::ProgressRequest(request)) }, ()))
        });
        let requests = futures::stream::iter([create]).chain(progress);
        let mut watch = self.client.watch.clone();
        let answers = self.call("watch", watch.watch(requests)).await?;
        Ok(answers.map(|answer| answer.map_err(etcdv3client::Error::from)))
    }

    async fn grant(&self, ttl_secs: i64) -> Result<i64, EtcdError> {
        let mut lease = self.client.lease.clone();
        let answer =
            self.call("lease grant", lease.lease_grant(pb::LeaseGrantRequest { ttl: ttl_secs, id: 0 })).await?;
        if !answer.error.is_empty() {
            return Err(self.refused("lease grant", answer.error));
        }
        if answer.ttl > ttl_secs {
            tracing::warn!(
                asked = ttl_secs,
                granted = answer.ttl,
                "etcd granted a longer lease than configured (its minimum); a dead worker is noticed that much later"
            );
        }
        Ok(answer.id)
    }

    async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        let mut client = self.client.lease.clone();
        self.call("lease revoke", client.lease_revoke(pb::LeaseRevokeRequest { id: lease })).await.map(drop)
    }

    /// One keep-alive round trip; false when the lease no longer exists.
    async fn keep_alive(&self, lease: i64) -> Result<bool, EtcdError> {
        let mut client = self.client.lease.clone();
        let request = futures::stream::iter([pb::LeaseKeepAliveRequest { id: lease }]);
        self.call("lease keep-alive", async move {
            let mut answers = client.lease_keep_alive(request).await?;
            let answer = answers.message().await?;
            Ok(answer.is_some_and(|a| a.ttl > 0))
        })
        .await
    }

    /// Grants a lease and claims the registration's key under it, waiting until `deadline` for
    /// another holder's lease to expire.
    async fn register(&self, registration: &Registration, deadline: Instant) -> Result<i64, EtcdError> {
        let lease = self.grant(registration.ttl_secs).await?;
        match self.claim_until(registration, lease, deadline).await {
            Ok(()) => Ok(lease),
            Err(e) => {
                let _ = self.revoke(lease).await;
                Err(e)
            }
        }
    }

    async fn claim_until(&self, registration: &Registration, lease: i64, deadline: Instant) -> Result<(), EtcdError> {
        let (key, value) = (&registration.key, &registration.value);
        loop {
            match self.claim(key, value, lease).await? {
                Claim::Done => return Ok(()),
                // A claim whose answer was lost and is now retried finds its own lease.
                Claim::Held { lease: holder } if holder == lease => return Ok(()),
                Claim::Held { lease: holder } => {
                    if Instant::now() >= deadline {
                        let id = registration.id.clone();
                        return Err(EtcdError::DuplicateId {
                            id,
                            endpoints: self.endpoints.to_string(),
                            lease: holder,
                        });
                    }
                    sleep(Duration::from_millis(200)).await;
                    // The wait may outlast our own lease's TTL.
                    if !self.keep_alive(lease).await? {
                        return Err(self.refused("register", format!("lease {lease:x} expired while waiting")));
                    }
                }
                Claim::Stale { mod_revision } => {
                    if self.replace(key, value, lease, mod_revision).await? {
                        return Ok(());
                    }
                }
                Claim::Vanished => {}
            }
        }
    }

    /// Puts `key` under `lease` if it does not exist; otherwise says who holds it.
    async fn claim(&self, key: &str, value: &[u8], lease: i64) -> Result<Claim, EtcdError> {
        let read = pb::RangeRequest { key: key.as_bytes().to_vec(), ..Default::default() };
        let txn = pb::TxnRequest {
            compare: vec![absent(key)],
            success: vec![put_op(key, value, lease)],
            failure: vec![pb::RequestOp { request: Some(request_op::Request::RequestRange(read)) }],
        };
        let answer = self.txn("register", txn).await?;
        if answer.succeeded {
            return Ok(Claim::Done);
        }
        let holder = answer.responses.into_iter().find_map(|r| match r.response {
            Some(response_op::Response::ResponseRange(range)) => range.kvs.into_iter().next(),
            _ => None,
        });
        Ok(match holder {
            None => Claim::Vanished,
            Some(kv) if kv.lease == 0 => Claim::Stale { mod_revision: kv.mod_revision },
            Some(kv) => Claim::Held { lease: kv.lease },
        })
    }

    /// Overwrites `key` if it has not changed since `mod_revision`.
    async fn replace(&self, key: &str, value: &[u8], lease: i64, mod_revision: i64) -> Result<bool, EtcdError> {
        let unchanged =
            pb::Compare::new(key, compare::CompareResult::Equal, compare::TargetUnion::ModRevision(mod_revision));
        let txn =
            pb::TxnRequest { compare: vec![unchanged], success: vec![put_op(key, value, lease)], failure: vec![] };
        Ok(self.txn("register", txn).await?.succeeded)
    }

    /// Puts `key` only if it does not exist; false when it does.
    async fn create(&self, key: &str, value: &[u8], lease: i64) -> Result<bool, EtcdError> {
        let txn =
            pb::TxnRequest { compare: vec![absent(key)], success: vec![put_op(key, value, lease)], failure: vec![] };
        Ok(self.txn("create", txn).await?.succeeded)
    }

    async fn delete(&self, key: &str) -> Result<bool, EtcdError> {
        let mut kv = self.client.kv.clone();
        let request = pb::DeleteRangeRequest { key: key.as_bytes().to_vec(), ..Default::default() };
        Ok(self.call("delete", kv.delete_range(request)).await?.deleted > 0)
    }

    async fn txn(&self, op: &'static str, txn: pb::TxnRequest) -> Result<pb::TxnResponse, EtcdError> {
        let mut kv = self.client.kv.clone();
        self.call(op, kv.txn(txn)).await
    }
}

fn absent(key: &str) -> pb::Compare {
    pb::Compare::new(key, compare::CompareResult::Equal, compare::TargetUnion::CreateRevision(0))
}

fn put_op(key: &str, value: &[u8], lease: i64) -> pb::RequestOp {
    let put = pb::PutRequest { key: key.as_bytes().to_vec(), value: value.to_vec(), lease, ..Default::default() };
    pb::RequestOp { request: Some(request_op::Request::RequestPut(put)) }
}

fn with_scheme(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_cover_exactly_the_prefix() {
        assert_eq!(prefix_end("/a/workers/"), b"/a/workers0".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }

    #[test]
    fn keys_ignore_a_trailing_slash() {
        let keys = Keys::new("/alcove/", "w1");
        assert_eq!(
            (keys.workers.as_str(), keys.mounts.as_str(), keys.me.as_str()),
            ("/alcove/workers/", "/alcove/mounts/", "/alcove/workers/w1")
        );
    }

    #[test]
    fn malformed_worker_entries_are_skipped() {
        let me = Member { id: "w1".into(), s3: "http://a:1".into(), peer: "a:2".into() };
        let w2 = Member { id: "w2".into(), s3: "http://b:1".into(), peer: "b:2".into() };
        let mut registered = BTreeMap::new();
        registered.insert("w2".to_owned(), Bytes::from(serde_json::to_vec(&w2).unwrap_or_default()));
        registered.insert("w3".to_owned(), Bytes::from_static(b"{not json"));
        registered.insert("w4".to_owned(), Bytes::from(serde_json::to_vec(&w2).unwrap_or_default()));
        let view = view_of(&me, &registered);
        assert_eq!(view.live.iter().map(String::as_str).collect::<Vec<_>>(), ["w1", "w2"]);
    }

    #[test]
    fn lease_ttls_round_up_to_whole_seconds() {
        assert_eq!(lease_ttl_secs(Duration::from_millis(1500)).ok(), Some(2));
        assert!(matches!(lease_ttl_secs(Duration::from_millis(500)), Err(EtcdError::LeaseTtl(_))));
    }
}
