//! One Alcove worker: reads the configuration, opens the mount table, and serves the S3 port
//! (through [`front`] and the s3s service over the [`gateway`]) and the admin port.
//!
//! It wires the lower crates together and owns process-level concerns (ports, shutdown, logs,
//! metrics); it may not reach into a backend's files except through alcove-ufs.

pub mod admin;
mod attributes_etag;
pub mod cluster;
pub mod config;
pub mod cors;
pub mod front;
#[cfg(test)]
mod fuzz;
pub mod gateway;
pub mod limits;
pub mod metrics;
pub mod preload;
pub mod server;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alcove_cache::{CachedReads, ObjectService, PageStore, PageStoreError};
use alcove_cluster::Passage;
use alcove_s3::auth::{AnonymousPolicy, CredentialStore};
use alcove_s3::AuthMode;
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
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
}

/// A running worker.
pub struct Worker {
    pub s3_addr: Option<SocketAddr>,
    /// The peer port, in a cluster.
    pub peer_addr: Option<SocketAddr>,
    pub admin_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    cluster: Option<Arc<cluster::ClusterLink>>,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, WorkerError> {
    TcpListener::bind(addr).await.map_err(|source| WorkerError::Bind { what, addr, source })
}

impl Worker {
    /// Opens storage, binds the ports and starts serving.
    pub async fn start(config: Config) -> Result<Self, WorkerError> {
        let auth = config.auth_settings()?;
        let admin_token = config.admin_token()?;
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
        let objects = Arc::new(ObjectService::new(Arc::clone(&mounts), Some(Arc::clone(&cache))));
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
            Some(settings) => Some(cluster::ClusterLink::start(settings, config.addressing()?).await?),
            None => None,
        };
        let connections = Arc::new(limits::ConnectionLimit::new(config.s3.max_connections));
        let mut metrics =
            metrics::Metrics::default().with_cache(Arc::clone(&cache)).with_connections(Arc::clone(&connections));
        if let Some(link) = &cluster {
            metrics = metrics.with_cluster(Arc::clone(link));
        }
        let metrics = Arc::new(metrics);
        if let Some(link) = &cluster {
            link.adopt_mounts(Arc::clone(&mounts), shutdown_rx.clone()).await;
            tasks.spawn(forget_metadata_on_ring_changes(link.watch(), cache, shutdown_rx.clone()));
        }

        let mut s3_addr = None;
        let mut peer_addr = None;
        if config.s3.enabled {
            let mut builder =
                S3ServiceBuilder::new(gateway::Gateway::new(Arc::clone(&objects), config.limits(), cluster.clone()));
            let addressing = config.addressing()?;
            if addressing.is_virtual_host_enabled() {
                builder.set_host(addressing.clone());
            }
            if auth.mode == AuthMode::Sigv4 {
                builder.set_auth(CredentialStore(auth.credentials.clone()));
                builder.set_access(AnonymousPolicy { allow_anonymous: auth.allow_anonymous });
            }
            let mut s3s_config = s3s::config::S3Config::default();
            s3s_config.xml_max_body_size = config.max_xml_size();
            builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(s3s_config))));
            let front = Arc::new(front::S3Front {
                service: builder.build(),
                addressing,
                auth: auth.clone(),
                access_log_all: config.s3.access_log,
                metrics: Arc::clone(&metrics),
                cors: cors::FrontCors::new(Arc::clone(&objects)),
                limits: config.request_limits()?,
                max_xml_size: config.max_xml_size(),
            });
            let listener = bind("S3", config.s3.addr).await?;
            s3_addr = listener.local_addr().ok();
            let settings = server::HttpSettings {
                keep_alive: config.s3.keep_alive,
                idle_timeout: Some(config.header_read_timeout()),
                grace,
                head_limits: Some(config.hyper_head_limits()),
                connections: Some(connections),
            };
            // Peer connections are pooled by the other workers for up to 90 s: the peer port
            // waits longer than that for headers, so it never closes one a peer is about to use.
            let peer_settings = server::HttpSettings {
                idle_timeout: Some(config.header_read_timeout().max(Duration::from_secs(120))),
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
                tasks.spawn(server::serve(listener, peer_settings, rx.clone(), move |req, remote| {
                    Arc::clone(&port).handle(req, remote)
                }));
            }
            let gate = cluster.clone();
            tasks.spawn(server::serve(listener, settings, rx, move |req, remote| {
                let (front, gate) = (Arc::clone(&front), gate.clone());
                async move {
                    let req = match &gate {
                        Some(link) => match link.gate.pass(req).await {
                            Passage::Here(req) => req,
                            Passage::Answered(answer) => return answer.map(Either::Right),
                        },
                        None => req,
                    };
                    front.handle(req, remote).await.map(Either::Left)
                }
            }));
        }

        let admin = Arc::new(admin::Admin {
            mounts,
            objects,
            metrics,
            ready: Default::default(),
            started: Instant::now(),
            s3_addr,
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
            idle_timeout: Some(Duration::from_secs(60)),
            grace: Duration::from_secs(1),
            head_limits: None,
            connections: None,
        };
        let handler_admin = Arc::clone(&admin);
        tasks.spawn(server::serve(listener, settings, shutdown_rx, move |req, remote| {
            Arc::clone(&handler_admin).handle(req, remote)
        }));
        admin.ready.store(true, Ordering::Release);
        let admin_locked = admin.token.is_some();
        tracing::info!(s3 = ?s3_addr, peer = ?peer_addr, admin = %admin_addr, admin_token = admin_locked, root = %config.root.display(), auth = %config.auth.mode, "worker ready");
        Ok(Self { s3_addr, peer_addr, admin_addr, shutdown, tasks, cluster })
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace period), and returns.
    pub async fn shutdown(mut self) {
        if let Some(link) = &self.cluster {
            link.leave().await;
        }
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// When this worker's share of the keys changes, what it remembers of objects may be stale: a
/// key it takes over may have been written through its previous owner.
async fn forget_metadata_on_ring_changes(
    mut view: watch::Receiver<Arc<alcove_cluster::ClusterView>>,
    cache: Arc<CachedReads>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = view.changed() => {
                if changed.is_err() {
                    return;
                }
                cache.forget_all_metadata();
            }
            _ = shutdown.changed() => return,
        }
    }
}
