//! The worker in its cluster: it starts membership, keeps the gate that hands requests for other
//! workers' keys on (see `alcove_cluster::gate`), serves the peer port, and makes the calls the
//! gateway and the admin API need of the other workers — their multipart uploads, deletes of the
//! keys they own, and the mount table every worker shares.
//!
//! The peer port answers signed requests only: the peer API (`/_alcove/…`) and S3 requests
//! forwarded by other workers, which go straight to the local S3 layer (a forwarded request is
//! never forwarded again). It may not reach storage except through the object service and the
//! mount table.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alcove_cache::{ChangeObserver, ObjectService};
use alcove_cluster::{
    leaving_aware, start_static, ClusterSecret, ClusterView, EtcdError, EtcdMembership, EtcdSettings, Gate, Handoff,
    Member, Owner, PeerClient, PeerError, Target, TargetOf, FORWARDED_BY_HEADER, HEALTH_PATH,
};
use alcove_s3::{Addressed, Addressing};
use alcove_ufs::{CorsRule, MountEntry, MountTable, ObjectKey, UfsError, UploadInfo};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::Either;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::admin::{json_error, json_response, read_json, ufs_error, AdminResponse};
use crate::config::{ClusterSettings, MembershipMode};
use crate::front::{ForwardedBy, LoggedBody, S3Front};
use crate::gateway::{delete_keys, error_parts};

const MOUNTS_PATH: &str = "/_alcove/mounts";
const UPLOADS_PATH: &str = "/_alcove/uploads";
const DELETE_PATH: &str = "/_alcove/delete";
const BUCKET_SETTING_PATH: &str = "/_alcove/bucket-setting";
const FORGET_PATH: &str = "/_alcove/forget";
/// How long a key's owner gets to forget a changed object before the change is answered anyway.
const FORGET_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a worker's own call to a peer may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// This worker's place in its cluster.
pub struct ClusterLink {
    pub gate: Gate,
    pub me: Member,
    pub mode: MembershipMode,
    /// etcd membership: the registration, and the store of the mount table.
    etcd: Option<EtcdMembership>,
    /// True once the worker shuts down: its health answer says so and it routes every key to
    /// the others.
    leaving: watch::Sender<bool>,
    /// The view before the last change of the ring, and when it changed: for `settle` after a
    /// change, the owner a key had then may still be serving it (the others learn of a change
    /// within a probe or two), so it is told of changes too.
    previous: Arc<Mutex<(Arc<ClusterView>, Instant)>>,
    settle: Duration,
}

/// Why a mount change could not be shared with the cluster (it is then undone here).
#[derive(Debug, thiserror::Error)]
pub enum MountShareError {
    #[error("a mount named '{0}' already exists in the cluster")]
    Exists(String),
    #[error("the cluster's mount table in etcd cannot be changed: {0}")]
    Etcd(#[from] EtcdError),
}

/// One upload in progress, as the peer API sends it (the id travels apart: the staged record
/// does not hold it, its folder's name does).
#[derive(Serialize, Deserialize)]
struct PeerUpload {
    upload_id: String,
    info: UploadInfo,
}

/// `POST /_alcove/delete?bucket=…`.
#[derive(Serialize, Deserialize)]
struct DeleteRequest {
    keys: Vec<String>,
}

/// A bucket setting changed through one worker, which every worker applies: the settings of a
/// remote mount's bucket live in each worker's own state folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketSetting {
    Tags(Option<BTreeMap<String, String>>),
    Cors(Option<Vec<CorsRule>>),
}

/// The outcome of deleting one key on its owner: `None` when it went, else the S3 error code
/// and message.
pub type DeleteOutcome = Option<(String, String)>;

impl ClusterLink {
    /// Starts membership and waits for its first view.
    /// Peers are called over TLS with `peer_tls`.
    pub async fn start(
        settings: &ClusterSettings,
        addressing: Addressing,
        peer_tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Arc<Self>, EtcdError> {
        let client = PeerClient::new(ClusterSecret::new(settings.secret.clone()), &settings.me.id, peer_tls);
        let (view, etcd) = match settings.mode {
            MembershipMode::Static => {
                let members = settings.workers.clone();
                (start_static(&settings.me.id, members, client.clone(), settings.failure_timeout).await, None)
            }
            MembershipMode::Etcd => {
                let etcd_settings = EtcdSettings {
                    endpoints: settings.etcd.endpoints.clone(),
                    prefix: settings.etcd.prefix.clone(),
                    lease_ttl: Duration::from_secs(settings.etcd.lease_ttl),
                };
                let (membership, view) = EtcdMembership::join(etcd_settings, settings.me.clone()).await?;
                (view, Some(membership))
            }
        };
        let handoff = if settings.redirect { Handoff::Redirect } else { Handoff::Proxy };
        let target_of: TargetOf = Box::new(move |req| {
            let Addressed { bucket, key, in_host } = addressing.target(req);
            Target { bucket, key, in_host }
        });
        let (leaving, leaving_seen) = watch::channel(false);
        let gate = Gate::new(leaving_aware(view, leaving_seen), target_of, client, handoff, settings.health_check);
        // A starting worker takes its keys from the owners they had without it.
        let previous = Arc::new(Mutex::new((Arc::new(gate.view().without_me()), Instant::now())));
        tokio::spawn(remember_previous_views(gate.watch(), Arc::clone(&previous)));
        let settle = settings.failure_timeout;
        Ok(Arc::new(Self { gate, me: settings.me.clone(), mode: settings.mode, etcd, leaving, previous, settle }))
    }

    /// Leaves the cluster on shutdown, while still serving: from now on this worker forwards every
    /// request to the key's next owner and answers health probes as leaving, so the others drop
    /// it at their next probe (static) or at once (etcd, where its registration is deleted).
    pub async fn leave(&self) {
        self.leaving.send_replace(true);
        if let Some(etcd) = &self.etcd {
            etcd.leave().await;
        }
    }

    pub fn is_leaving(&self) -> bool {
        *self.leaving.borrow()
    }

    pub fn view(&self) -> Arc<ClusterView> {
        self.gate.view()
    }

    /// A receiver of every new view (to act when the ring changes).
    pub fn watch(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.gate.watch()
    }

    /// The worker that owns `bucket/key`, when it is not this one.
    pub fn owner_elsewhere(&self, bucket: &str, key: &str) -> Option<Member> {
        match self.view().owner(bucket, key) {
            Owner::Me => None,
            Owner::Peer(m) => Some(m.clone()),
        }
    }

    /// The multipart uploads of `bucket` staged on the other live workers. A worker that does not
    /// answer is left out (its uploads end with it).
    pub async fn peer_uploads(&self, bucket: &str) -> Vec<UploadInfo> {
        let view = self.view();
        let path = format!("{UPLOADS_PATH}?bucket={}", query_value(bucket));
        let calls = view.live_peers().map(|peer| {
            let path = path.clone();
            async move { (peer, self.call_json::<Vec<PeerUpload>>(peer, Method::GET, &path, Bytes::new()).await) }
        });
        let mut uploads = Vec::new();
        for (peer, answer) in futures::future::join_all(calls).await {
            match answer {
                Ok(list) => uploads.extend(list.into_iter().map(|u| UploadInfo { upload_id: u.upload_id, ..u.info })),
                Err(e) => tracing::warn!(peer = %peer.id, error = %e, "a worker's uploads are missing from a listing"),
            }
        }
        uploads
    }

    /// Deletes `keys` of `bucket` on their owner.
    pub async fn delete_at(
        &self,
        owner: &Member,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<Vec<DeleteOutcome>, PeerError> {
        let path = format!("{DELETE_PATH}?bucket={}", query_value(bucket));
        let body = serde_json::to_vec(&DeleteRequest { keys }).map(Bytes::from).unwrap_or_default();
        self.call_json(owner, Method::POST, &path, body).await
    }

    /// Tells the owner of `bucket/key`, when it is another worker, to forget what its cache knows
    /// of the object: it was changed here. That happens while the ring changes (this worker and
    /// the client's entry point disagreed on the owner, or this one is leaving), and without it
    /// the owner could serve the old version until its next metadata check.
    async fn tell_owner_of_change(&self, bucket: &str, key: &str) {
        let path = format!("{FORGET_PATH}?bucket={}&key={}", query_value(bucket), query_value(key));
        let calls = self.owners_to_tell(bucket, key).into_iter().map(|owner| {
            let path = path.clone();
            async move {
                if let Err(e) = self.gate.client().call(&owner, Method::POST, &path, Bytes::new(), FORGET_TIMEOUT).await {
                    tracing::warn!(owner = %owner.id, bucket, key, error = %e, "could not tell the owner of a key that it changed here");
                }
            }
        });
        futures::future::join_all(calls).await;
    }

    /// The other workers that may serve `bucket/key` from their cache: its owner, and while the
    /// ring settles after a change, its owner before the change.
    fn owners_to_tell(&self, bucket: &str, key: &str) -> Vec<Member> {
        let mut owners: Vec<Member> = self.owner_elsewhere(bucket, key).into_iter().collect();
        let (before, changed) = {
            let previous = self.previous.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            (Arc::clone(&previous.0), previous.1)
        };
        if changed.elapsed() < self.settle {
            if let Owner::Peer(m) = before.owner(bucket, key) {
                if !owners.contains(m) {
                    owners.push(m.clone());
                }
            }
        }
        owners
    }

    /// Tells every live worker of a bucket setting changed here (a worker that cannot be told
    /// keeps its own until the setting is changed again).
    pub async fn bucket_setting_changed(&self, bucket: &str, setting: &BucketSetting) {
        let body = serde_json::to_vec(setting).map(Bytes::from).unwrap_or_default();
        let path = format!("{BUCKET_SETTING_PATH}?bucket={}", query_value(bucket));
        self.tell_peers(Method::PUT, path, body).await;
    }

    /// Shares a mount added here with the cluster: in etcd's table, or told to every live worker
    /// (answering those that could not be told).
    pub async fn mount_added(&self, entry: &MountEntry) -> Result<Vec<String>, MountShareError> {
        let body = serde_json::to_vec(entry).map(Bytes::from).unwrap_or_default();
        match &self.etcd {
            Some(etcd) => {
                let bucket = entry.path.trim_start_matches('/');
                if etcd.put_mount_if_absent(bucket, body).await? {
                    Ok(Vec::new())
                } else {
                    Err(MountShareError::Exists(bucket.to_owned()))
                }
            }
            None => Ok(self.tell_peers(Method::POST, MOUNTS_PATH.to_owned(), body).await),
        }
    }

    /// Shares the removal of a mount with the cluster, like [`Self::mount_added`].
    pub async fn mount_removed(&self, path: &str) -> Result<Vec<String>, MountShareError> {
        match &self.etcd {
            Some(etcd) => {
                etcd.delete_mount(path.trim_start_matches('/')).await?;
                Ok(Vec::new())
            }
            None => {
                let path = format!("{MOUNTS_PATH}?path={}", query_value(path));
                Ok(self.tell_peers(Method::DELETE, path, Bytes::new()).await)
            }
        }
    }

    /// Joins the cluster's mount table: with etcd, the table there, followed as it changes (until
    /// `shutdown`); with static membership, the table of a live worker, if there is one.
    pub async fn adopt_mounts(&self, mounts: Arc<MountTable>, shutdown: watch::Receiver<bool>) {
        match &self.etcd {
            Some(etcd) => {
                let mut table = etcd.mount_table();
                apply_mount_table(&mounts, &table.borrow_and_update());
                tokio::spawn(follow_mount_table(table, mounts, shutdown));
            }
            None => self.take_mounts_of_a_peer(&mounts).await,
        }
    }

    async fn take_mounts_of_a_peer(&self, mounts: &MountTable) {
        let view = self.view();
        for peer in view.live_peers() {
            match self.call_json::<Vec<MountEntry>>(peer, Method::GET, MOUNTS_PATH, Bytes::new()).await {
                Ok(entries) => {
                    let count = entries.len();
                    report_mount_failures(mounts.reconcile(entries));
                    tracing::info!(from = %peer.id, mounts = count, "took the cluster's mount table");
                    return;
                }
                Err(e) => tracing::warn!(peer = %peer.id, error = %e, "could not read a worker's mount table"),
            }
        }
    }

    async fn tell_peers(&self, method: Method, path: String, body: Bytes) -> Vec<String> {
        let view = self.view();
        let calls = view.live_peers().map(|peer| {
            let (method, path, body) = (method.clone(), path.clone(), body.clone());
            async move { (peer, self.gate.client().call(peer, method, &path, body, CALL_TIMEOUT).await) }
        });
        let mut failed = Vec::new();
        for (peer, answer) in futures::future::join_all(calls).await {
            if let Err(e) = answer {
                tracing::warn!(peer = %peer.id, error = %e, "a worker could not be told of a mount change");
                failed.push(format!("{}: {e}", peer.id));
            }
        }
        failed
    }

    async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        peer: &Member,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<T, PeerError> {
        let answer = self.gate.client().call(peer, method, path, body, CALL_TIMEOUT).await?;
        serde_json::from_slice(&answer).map_err(|e| PeerError::Refused {
            peer: peer.id.clone(),
            status: StatusCode::OK,
            message: format!("an answer that is not the expected JSON: {e}"),
        })
    }
}

/// Keeps the view before each change, with the time of the change.
async fn remember_previous_views(
    mut views: watch::Receiver<Arc<ClusterView>>,
    previous: Arc<Mutex<(Arc<ClusterView>, Instant)>>,
) {
    let mut current = Arc::clone(&views.borrow());
    while views.changed().await.is_ok() {
        let next = Arc::clone(&views.borrow());
        if next.live != current.live {
            *previous.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = (current, Instant::now());
        }
        current = next;
    }
}

impl ChangeObserver for ClusterLink {
    fn changed<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.tell_owner_of_change(bucket, key))
    }
}

/// Makes the local mount table etcd's (entries that are not mount entries are skipped).
fn apply_mount_table(mounts: &MountTable, table: &BTreeMap<String, Bytes>) {
    let entries = table
        .iter()
        .filter_map(|(bucket, raw)| match serde_json::from_slice::<MountEntry>(raw) {
            Ok(entry) => Some(entry),
            Err(e) => {
                tracing::warn!(bucket = %bucket, error = %e, "skipping a mount in etcd that is not a mount entry");
                None
            }
        })
        .collect();
    report_mount_failures(mounts.reconcile(entries));
}

async fn follow_mount_table(
    mut table: watch::Receiver<Arc<BTreeMap<String, Bytes>>>,
    mounts: Arc<MountTable>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = table.changed() => {
                if changed.is_err() {
                    return;
                }
                let current = Arc::clone(&table.borrow_and_update());
                apply_mount_table(&mounts, &current);
            }
            _ = shutdown.changed() => return,
        }
    }
}

fn report_mount_failures(failures: Vec<(String, UfsError)>) {
    for (path, e) in failures {
        tracing::warn!(mount = %path, error = %e, "a mount of the cluster cannot be mounted here");
    }
}

/// The peer port of a worker.
pub struct PeerPort {
    pub link: Arc<ClusterLink>,
    pub front: Arc<S3Front>,
    pub objects: Arc<ObjectService>,
    pub mounts: Arc<MountTable>,
}

/// A forwarded request's answer from the S3 layer, or the peer API's own.
pub type PeerPortBody = Either<LoggedBody, UnsyncBoxBody<Bytes, Infallible>>;

impl PeerPort {
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, remote: SocketAddr) -> Response<PeerPortBody> {
        if let Err(e) = self.link.gate.client().secret().verify_request(&req) {
            tracing::warn!(%remote, path = %req.uri().path(), error = %e, "refused a peer request");
            return json_error(StatusCode::FORBIDDEN, &format!("not a request of this cluster: {e}"))
                .map(Either::Right);
        }
        let path = req.uri().path().to_owned();
        let answer = match (req.method().clone(), path.as_str()) {
            (Method::GET, HEALTH_PATH) => {
                json_response(StatusCode::OK, &json!({"id": self.link.me.id, "leaving": self.link.is_leaving()}))
            }
            (Method::GET, MOUNTS_PATH) => json_response(StatusCode::OK, &json!(self.mounts.shared_entries())),
            (Method::POST, MOUNTS_PATH) => self.add_mount(req).await,
            (Method::DELETE, MOUNTS_PATH) => self.remove_mount(&req),
            (Method::GET, UPLOADS_PATH) => self.uploads(&req).await,
            (Method::POST, DELETE_PATH) => self.delete(req).await,
            (Method::POST, FORGET_PATH) => self.forget(&req).await,
            (Method::PUT, BUCKET_SETTING_PATH) => self.set_bucket_setting(req).await,
            (_, p) if p.starts_with("/_alcove/") => json_error(StatusCode::NOT_FOUND, "no such peer endpoint"),
            _ => {
                let mut req = req;
                if let Some(from) = req.headers().get(FORWARDED_BY_HEADER).and_then(|v| v.to_str().ok()) {
                    let from = ForwardedBy(from.to_owned());
                    req.extensions_mut().insert(from);
                }
                return Arc::clone(&self.front).handle(req, remote).await.map(Either::Left);
            }
        };
        answer.map(Either::Right)
    }

    /// Another worker added a mount: add it here too (again is fine, another mount by that name
    /// is not).
    async fn add_mount(&self, req: Request<Incoming>) -> AdminResponse {
        let entry: MountEntry = match read_json(req, "a mount entry").await {
            Ok(e) => e,
            Err(answer) => return answer,
        };
        let same = self.mounts.shared_entries().contains(&entry);
        match self.mounts.add(entry) {
            Ok(()) => json_response(StatusCode::CREATED, &json!({"ok": true})),
            Err(UfsError::BucketExists(_)) if same => json_response(StatusCode::OK, &json!({"ok": true})),
            Err(e) => ufs_error(e),
        }
    }

    fn remove_mount(&self, req: &Request<Incoming>) -> AdminResponse {
        let Some(path) = query_param(req, "path") else { return json_error(StatusCode::BAD_REQUEST, "missing ?path=") };
        match self.mounts.remove(&path) {
            Ok(()) | Err(UfsError::NoSuchBucket(_)) => json_response(StatusCode::OK, &json!({"ok": true})),
            Err(e) => ufs_error(e),
        }
    }

    async fn uploads(&self, req: &Request<Incoming>) -> AdminResponse {
        let Some(name) = query_param(req, "bucket") else {
            return json_error(StatusCode::BAD_REQUEST, "missing ?bucket=");
        };
        let listed = match self.objects.bucket(&name) {
            Ok(bucket) => bucket.list_uploads().await,
            Err(e) => Err(e),
        };
        match listed {
            Ok(uploads) => {
                let uploads: Vec<PeerUpload> =
                    uploads.into_iter().map(|info| PeerUpload { upload_id: info.upload_id.clone(), info }).collect();
                json_response(StatusCode::OK, &json!(uploads))
            }
            Err(e) => ufs_error(e),
        }
    }

    async fn set_bucket_setting(&self, req: Request<Incoming>) -> AdminResponse {
        let Some(name) = query_param(&req, "bucket") else {
            return json_error(StatusCode::BAD_REQUEST, "missing ?bucket=");
        };
        let setting: BucketSetting = match read_json(req, r#"{"tags": …} or {"cors": …}"#).await {
            Ok(s) => s,
            Err(answer) => return answer,
        };
        let bucket = match self.objects.bucket(&name) {
            Ok(b) => b,
            Err(e) => return ufs_error(e),
        };
        let applied = match setting {
            BucketSetting::Tags(tags) => bucket.set_bucket_tags(tags).await,
            BucketSetting::Cors(rules) => bucket.set_bucket_cors(rules).await,
        };
        match applied {
            Ok(()) => json_response(StatusCode::OK, &json!({"ok": true})),
            Err(e) => ufs_error(e),
        }
    }

    async fn delete(&self, req: Request<Incoming>) -> AdminResponse {
        let Some(name) = query_param(&req, "bucket") else {
            return json_error(StatusCode::BAD_REQUEST, "missing ?bucket=");
        };
        let ask: DeleteRequest = match read_json(req, r#"{"keys": [...]}"#).await {
            Ok(a) => a,
            Err(answer) => return answer,
        };
        let bucket = match self.objects.bucket(&name) {
            Ok(b) => b,
            Err(e) => return ufs_error(e),
        };
        let outcomes: Vec<DeleteOutcome> =
            delete_keys(&bucket, &ask.keys).await.into_iter().map(|r| r.err().map(error_parts)).collect();
        json_response(StatusCode::OK, &json!(outcomes))
    }

    /// `POST /_alcove/forget?bucket=…&key=…`: another worker changed an object this one owns.
    async fn forget(&self, req: &Request<Incoming>) -> AdminResponse {
        let (Some(bucket), Some(key)) = (query_param(req, "bucket"), query_param(req, "key")) else {
            return json_error(StatusCode::BAD_REQUEST, "missing ?bucket=&key=");
        };
        let key = match ObjectKey::parse(&key) {
            Ok(k) => k,
            Err(e) => return ufs_error(e),
        };
        match self.objects.forget(&bucket, &key).await {
            Ok(()) => json_response(StatusCode::OK, &json!({"ok": true})),
            Err(e) => ufs_error(e),
        }
    }
}

/// A query parameter, percent-decoded.
fn query_param<B>(req: &Request<B>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

fn query_value(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}
