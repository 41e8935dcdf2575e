//! One Alcove worker: reads the configuration, opens the mount table, and serves the S3 port
//! (through [`front`] and the s3s service over the [`gateway`]; over HTTPS too, see [`tls`]) and
//! the admin port.
//!
//! It wires the lower crates together and owns process-level concerns (ports, shutdown, logs,
//! metrics); it may not reach into a backend's files except through alcove-ufs.

pub mod admin;
mod attributes_etag;
pub mod cluster;
pub mod config;
pub mod config_reference;
pub mod cors;
pub mod front;
#[cfg(test)]
mod fuzz;
pub mod gateway;
pub mod limits;
pub mod metrics;
pub mod preload;
pub mod recent;
pub mod server;
pub mod status_page;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alcove_cache::{CachedReads, ObjectService, PageStore, PageStoreError};
use alcove_cluster::Passage;
use alcove_s3::auth::CredentialStore;
use alcove_s3::oidc::OidcVerifier;
use alcove_s3::policy::PolicyAccess;
use alcove_s3::sts::{Sts, StsKeys};
use alcove_s3::AuthSettings;
use alcove_ufs::{MountTable, UfsError};
use http_body_util::Either;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use config::{Config, ConfigError};

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the mount table: {0}")]
    Mounts(#[from] UfsError),
    #[error("cannot open the page cache: {0}")]
    Cache(#[from] PageStoreError),
    #[error("cannot join the cluster: {0}")]
    Cluster(#[from] alcove_cluster::EtcdError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot set up OIDC: {0}")]
    Oidc(#[from] alcove_s3::oidc::TokenError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
}

/// A running worker.
pub struct Worker {
    pub s3_addr: Option<SocketAddr>,
    /// The S3 API's HTTPS port, when a certificate is configured.
    pub https_addr: Option<SocketAddr>,
    /// The peer port, in a cluster.
    pub peer_addr: Option<SocketAddr>,
    pub admin_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    cluster: Option<Arc<cluster::ClusterLink>>,
    admin: Arc<admin::Admin>,
    drain: Duration,
    /// What SIGHUP may change while the worker runs.
    live: LiveSettings,
    /// The configuration the worker runs with, to tell what a reload would change.
    running: Config,
    /// What SIGHUP reloads.
    certificates: Option<Arc<tls::CertificateStore>>,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, WorkerError> {
    TcpListener::bind(addr).await.map_err(|source| WorkerError::Bind { what, addr, source })
}

impl Worker {
    /// Opens storage, binds the ports and starts serving.
    pub async fn start(config: Config) -> Result<Self, WorkerError> {
        let auth = config.auth_settings()?;
        let live = LiveSettings::new(&config, &auth);
        let admin_token = config.admin_token()?;
        let tls_settings = config.tls_settings()?;
        let certificates = match &tls_settings {
            Some(t) => Some(tls::CertificateStore::load(&t.cert, &t.key)?),
            None => None,
        };
        let acceptor = certificates.clone().map(tls::Acceptor::new).transpose()?;
        let peer_tls = match &tls_settings {
            Some(t) if t.peer => Some(tls::peer_client_config(t.ca.as_deref())?),
            _ => None,
        };
        let mounts = Arc::new(MountTable::open(&config.root, config.mount_entries(), config.mount_defaults()?)?);
        for store in mounts.all_stores() {
            match store.clean_temp_files() {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(bucket = %store.root().display(), removed = n, "removed temp files of interrupted writes")
                }
                Err(e) => tracing::warn!(bucket = %store.root().display(), error = %e, "could not clean temp files"),
            }
        }
        let pages = PageStore::open(config.page_store()?).await?;
        let cache = CachedReads::new(pages, config.read_settings());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let grace = Duration::from_secs(config.s3.shutdown_grace);

        // The peer port is bound before membership starts, so the others find this worker at once.
        let cluster_settings = config.cluster_settings()?;
        let peer_listener = match &cluster_settings {
            Some(_) => Some(bind("peer", config.peer.addr).await?),
            None => None,
        };
        let cluster = match &cluster_settings {
            Some(settings) => Some(cluster::ClusterLink::start(settings, config.addressing()?, peer_tls).await?),
            None => None,
        };
        let mut objects = ObjectService::new(Arc::clone(&mounts), Some(Arc::clone(&cache)));
        if let Some(link) = &cluster {
            objects = objects.with_observer(Arc::clone(link) as Arc<dyn alcove_cache::ChangeObserver>);
        }
        let objects = Arc::new(objects);
        let connections = Arc::new(limits::ConnectionLimit::new(config.s3.max_connections));
        let mut metrics = metrics::Metrics::default()
            .with_cache(Arc::clone(&cache))
            .with_mounts(Arc::clone(&mounts))
            .with_connections(Arc::clone(&connections));
        if let Some(link) = &cluster {
            metrics = metrics.with_cluster(Arc::clone(link));
        }
        let metrics = Arc::new(metrics);
        if let Some(link) = &cluster {
            link.adopt_mounts(Arc::clone(&mounts), shutdown_rx.clone()).await;
            let settle = cluster_settings.as_ref().map_or(Duration::ZERO, |c| c.failure_timeout);
            // A worker that (re)joins settles too: the others learn of it within a probe or two.
            cache.forget_all_metadata_settling(settle);
            tasks.spawn(forget_metadata_on_ring_changes(link.watch(), cache, settle, shutdown_rx.clone()));
        }

        let mut s3_addr = None;
        let mut https_addr = None;
        let mut peer_addr = None;
        if config.s3.enabled {
            let front = Arc::new(s3_front(&config, &auth, &live, &objects, &metrics, cluster.as_ref())?);
            let listener = bind("S3", config.s3.addr).await?;
            s3_addr = listener.local_addr().ok();
            let settings = server::HttpSettings {
                keep_alive: config.s3.keep_alive,
                idle_timeout: Some(live.header_timeout.clone()),
                grace,
                head_limits: Some(config.hyper_head_limits()),
                connections: Some(connections),
            };
            // Peer connections are pooled by the other workers for up to 90 s: the peer port
            // waits longer than that for headers, so it never closes one a peer is about to use.
            let peer_settings = server::HttpSettings {
                idle_timeout: Some(limits::LiveDuration::new(
                    config.header_read_timeout().max(Duration::from_secs(120)),
                )),
                connections: None,
                ..settings.clone()
            };
            let rx = shutdown_rx.clone();
            if let (Some(link), Some(listener)) = (&cluster, peer_listener) {
                peer_addr = listener.local_addr().ok();
                let port = Arc::new(cluster::PeerPort {
                    link: Arc::clone(link),
                    front: Arc::clone(&front),
                    objects: Arc::clone(&objects),
                    mounts: Arc::clone(&mounts),
                });
                let peer_acceptor = acceptor.clone().filter(|_| config.peer.tls);
                tasks.spawn(server::serve(listener, peer_acceptor, peer_settings, rx.clone(), move |req, remote| {
                    Arc::clone(&port).handle(req, remote)
                }));
            }
            // The HTTP and HTTPS ports serve the same front end; under `s3.https_only` the HTTP
            // port's requests are marked for refusal, before the cluster could forward them.
            let handler = |https_required: Option<tls::HttpsRequired>| {
                let (front, gate) = (Arc::clone(&front), cluster.clone());
                move |mut req: hyper::Request<hyper::body::Incoming>, remote| {
                    let (front, gate) = (Arc::clone(&front), gate.clone());
                    async move {
                        if let Some(required) = https_required {
                            req.extensions_mut().insert(required);
                            return front.handle(req, remote).await.map(Either::Left);
                        }
                        let req = match &gate {
                            Some(link) => match link.gate.pass(req).await {
                                Passage::Here(req) => req,
                                Passage::Answered(answer) => return answer.map(Either::Right),
                            },
                            None => req,
                        };
                        front.handle(req, remote).await.map(Either::Left)
                    }
                }
            };
            if let (Some(t), Some(acceptor)) = (&tls_settings, &acceptor) {
                let https = bind("HTTPS", t.https_addr).await?;
                https_addr = https.local_addr().ok();
                tasks.spawn(server::serve(https, Some(acceptor.clone()), settings.clone(), rx.clone(), handler(None)));
            }
            let https_required = match (&tls_settings, https_addr) {
                (Some(t), Some(https_addr)) if t.https_only => Some(tls::HttpsRequired { https_addr }),
                _ => None,
            };
            tasks.spawn(server::serve(listener, None, settings, rx, handler(https_required)));
        }

        let admin = Arc::new(admin::Admin {
            mounts,
            objects,
            metrics,
            ready: Default::default(),
            draining: Default::default(),
            started: Instant::now(),
            s3_addr,
            https_addr,
            https_only: config.s3.https_only,
            auth_mode: config.auth.mode.to_ascii_lowercase(),
            cluster: cluster.clone(),
            token: admin_token,
        });
        let listener = bind("admin", config.admin.addr).await?;
        let admin_addr = listener.local_addr().map_err(|source| WorkerError::Bind {
            what: "admin",
            addr: config.admin.addr,
            source,
        })?;
        let settings = server::HttpSettings {
            keep_alive: true,
            idle_timeout: Some(limits::LiveDuration::new(Duration::from_secs(60))),
            grace: Duration::from_secs(1),
            head_limits: None,
            connections: None,
        };
        let handler_admin = Arc::clone(&admin);
        tasks.spawn(server::serve(listener, None, settings, shutdown_rx, move |req, remote| {
            Arc::clone(&handler_admin).handle(req, remote)
        }));
        admin.ready.store(true, Ordering::Release);
        let admin_locked = admin.token.is_some();
        let shown = |addr: Option<SocketAddr>| addr.map_or_else(|| "off".to_owned(), |a| a.to_string());
        tracing::info!(s3 = %shown(s3_addr), https = %shown(https_addr), peer = %shown(peer_addr), peer_tls = config.peer.tls, admin = %admin_addr, admin_token = admin_locked, root = %config.root.display(), auth = %config.auth.mode, "worker ready");
        let drain = config.s3.shutdown_drain.map_or(Duration::ZERO, |d| d.0);
        Ok(Self {
            s3_addr,
            https_addr,
            peer_addr,
            admin_addr,
            shutdown,
            tasks,
            cluster,
            certificates,
            admin,
            drain,
            live,
            running: config,
        })
    }

    /// Applies what can change while the worker runs (SIGHUP): `s3.access_log`, the timeouts
    /// (`s3.header_timeout`, `s3.idle_timeout`, `s3.body_idle_timeout`: for connections and
    /// bodies that start after the reload), the authorization policies (`[[auth.policies]]`) and
    /// the TLS certificate and key. A
    /// configuration that does not check out changes nothing; other changed keys are named in the
    /// log as needing a restart.
    pub fn reload(&mut self, config: Config) {
        let policies = match config.auth_settings() {
            Ok(auth) => auth.policies,
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: the configuration does not check out; nothing changed");
                return;
            }
        };
        self.live.access_log.store(config.s3.access_log, Ordering::Relaxed);
        self.live.policies.store(policies);
        self.live.header_timeout.set(config.header_read_timeout());
        self.live.body_idle_timeout.set(config.s3.body_idle_timeout.0);
        self.reload_tls();
        let restart = needs_restart(&self.running, &config);
        let (was, now) = (&self.running.s3, &config.s3);
        let live_changes = [
            ("s3.access_log", was.access_log != now.access_log),
            ("auth.policies", !same(&self.running.auth.policies, &config.auth.policies)),
            ("s3.header_timeout", was.header_timeout != now.header_timeout),
            ("s3.idle_timeout", was.idle_timeout != now.idle_timeout),
            ("s3.body_idle_timeout", was.body_idle_timeout != now.body_idle_timeout),
        ];
        let applied: Vec<&str> = live_changes.iter().filter(|(_, changed)| *changed).map(|(key, _)| *key).collect();
        tracing::info!(applied = ?applied, "SIGHUP: reloaded the configuration");
        if !restart.is_empty() {
            tracing::warn!(keys = ?restart, "SIGHUP: these changes take effect at the next start");
        }
        let running = &mut self.running;
        running.s3.access_log = config.s3.access_log;
        running.s3.header_timeout = config.s3.header_timeout;
        running.s3.idle_timeout = config.s3.idle_timeout;
        running.s3.body_idle_timeout = config.s3.body_idle_timeout;
        running.auth.policies = config.auth.policies;
    }

    /// Reads the `[tls]` certificate and key again (SIGHUP): new handshakes present the new
    /// certificate, open connections keep going. A file that cannot be used is logged and the
    /// current certificate stays. Without `[tls]` there is nothing to reload.
    pub fn reload_tls(&self) {
        let Some(certificates) = &self.certificates else {
            tracing::info!("SIGHUP: no [tls] certificate to reload");
            return;
        };
        match certificates.reload() {
            Ok(()) => {
                tracing::info!(cert = %certificates.cert_path().display(), "SIGHUP: reloaded the TLS certificate")
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: the TLS certificate was not reloaded; the current one stays")
            }
        }
    }

    /// Leaves the ring and turns `/readyz` to 503 while still serving, keeps serving for the drain
    /// period (`s3.shutdown_drain`) so that load balancers and peers stop sending, then stops
    /// accepting, lets in-flight requests finish (up to the grace period), and returns.
    pub async fn shutdown(mut self) {
        self.admin.draining.store(true, Ordering::Release);
        if let Some(link) = &self.cluster {
            link.leave().await;
        }
        if !self.drain.is_zero() {
            tracing::info!(drain = ?self.drain, "draining: serving on while load balancers and peers stop sending");
            tokio::time::sleep(self.drain).await;
        }
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// oidc mode: the token verifier (for bearer tokens) and the STS endpoint with its keys.
fn oidc_and_sts(auth: &AuthSettings) -> Result<(Option<Arc<OidcVerifier>>, Option<Sts>), WorkerError> {
    let Some(settings) = &auth.oidc else { return Ok((None, None)) };
    let oidc = Arc::new(OidcVerifier::new(settings.clone())?);
    let keys = match &auth.sts_secret {
        Some(secret) => StsKeys::new(secret.as_bytes()),
        None => {
            tracing::warn!(
                "no auth.sts_key and no cluster secret: STS credentials are signed with a key of this process and \
                 end when it does"
            );
            StsKeys::random()
        }
    };
    let sts = Sts { oidc: Arc::clone(&oidc), keys: Arc::new(keys) };
    Ok((Some(oidc), Some(sts)))
}

/// The S3 front end over `objects`: s3s with the gateway, the auth mode and the policies, and
/// the front end's own settings. (The in-process request fuzzer builds its front end here too.)
pub(crate) fn s3_front(
    config: &Config,
    auth: &AuthSettings,
    live: &LiveSettings,
    objects: &Arc<ObjectService>,
    metrics: &Arc<metrics::Metrics>,
    cluster: Option<&Arc<cluster::ClusterLink>>,
) -> Result<front::S3Front, WorkerError> {
    let mut builder =
        S3ServiceBuilder::new(gateway::Gateway::new(Arc::clone(objects), config.limits(), cluster.cloned()));
    let addressing = config.addressing()?;
    if addressing.is_virtual_host_enabled() {
        builder.set_host(addressing.clone());
    }
    // s3s runs the access check (policies, and learning each request's S3 action for the log and
    // metrics) only with an auth provider. Simple mode hands s3s unsigned requests, so its
    // provider, with no keys, is never asked for a secret.
    let (oidc, sts) = oidc_and_sts(auth)?;
    let store = Arc::new(CredentialStore {
        keys: if auth.mode.verifies_signatures() { auth.credentials.clone() } else { Default::default() },
        sts: sts.as_ref().map(|s| Arc::clone(&s.keys)),
    });
    builder.set_auth(CredentialStore::clone(&store));
    builder.set_access(PolicyAccess {
        policies: Arc::clone(&live.policies),
        allow_anonymous: auth.allow_anonymous,
        keys: store,
    });
    let mut s3s_config = s3s::config::S3Config::default();
    s3s_config.xml_max_body_size = config.max_xml_size();
    builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(s3s_config))));
    Ok(front::S3Front {
        service: builder.build(),
        addressing,
        auth: auth.clone(),
        oidc,
        sts,
        access_log_all: Arc::clone(&live.access_log),
        metrics: Arc::clone(metrics),
        cors: cors::FrontCors::new(Arc::clone(objects)),
        log_format: config.log.format,
        worker_id: cluster.map(|c| Arc::from(c.me.id.as_str())),
        limits: crate::limits::RequestLimits {
            body_idle_timeout: live.body_idle_timeout.clone(),
            ..config.request_limits()?
        },
        max_xml_size: config.max_xml_size(),
    })
}

/// What SIGHUP changes in a running worker.
pub(crate) struct LiveSettings {
    access_log: Arc<std::sync::atomic::AtomicBool>,
    policies: alcove_s3::policy::LivePolicies,
    /// hyper's header read timeout on the S3 ports (`s3.header_timeout`, `s3.idle_timeout`).
    header_timeout: limits::LiveDuration,
    body_idle_timeout: limits::LiveDuration,
}

impl LiveSettings {
    pub(crate) fn new(config: &Config, auth: &AuthSettings) -> Self {
        LiveSettings {
            access_log: Arc::new(std::sync::atomic::AtomicBool::new(config.s3.access_log)),
            policies: alcove_s3::policy::live_policies(Arc::clone(&auth.policies)),
            header_timeout: limits::LiveDuration::new(config.header_read_timeout()),
            body_idle_timeout: limits::LiveDuration::new(config.s3.body_idle_timeout.0),
        }
    }
}

fn same<T: serde::Serialize>(a: &T, b: &T) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

/// The keys (`section.key`) whose value differs between `running` and `wanted`, except those a
/// reload applies; the TLS certificate's files are read again anyway.
fn needs_restart(running: &Config, wanted: &Config) -> Vec<String> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(running), serde_json::to_value(wanted)) else { return Vec::new() };
    let mut changed = Vec::new();
    diff_keys("", &a, &b, &mut changed);
    let live = ["s3.access_log", "s3.header_timeout", "s3.idle_timeout", "s3.body_idle_timeout", "tls.cert", "tls.key"];
    changed.retain(|key| !live.contains(&key.as_str()) && !key.starts_with("auth.policies"));
    changed
}

fn diff_keys(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let null = serde_json::Value::Null;
                let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                diff_keys(&at, x.get(key).unwrap_or(&null), y.get(key).unwrap_or(&null), out);
            }
        }
        _ if a != b => out.push(path.to_owned()),
        _ => {}
    }
}

/// When this worker's share of the keys changes, what it remembers of objects may be stale: a
/// key it takes over may have been written through its previous owner. Until every worker routes
/// by the new ring (`settle`: the failure timeout bounds how long the others take to notice),
/// a key may still be written through another worker, so nothing is remembered meanwhile.
async fn forget_metadata_on_ring_changes(
    mut view: watch::Receiver<Arc<alcove_cluster::ClusterView>>,
    cache: Arc<CachedReads>,
    settle: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = view.changed() => {
                if changed.is_err() {
                    return;
                }
                cache.forget_all_metadata_settling(settle);
            }
            _ = shutdown.changed() => return,
        }
    }
}
