//! Several workers forming one cluster (static or etcd membership) on loopback, sharing one remote: a
//! worker of its own that every member mounts as the bucket [`SHARED`] (`s3://shared` with the
//! remote as endpoint), read through each member's page cache, whose metadata is never re-checked
//! (`metadata_sync_interval = -1`) — so a change that did not reach a key's owner would show as
//! stale reads. Every member logs every request it serves, which tells who served what.

use std::time::Duration;

use crate::{free_ports, http_client, EtcdServer, Server};

/// The bucket every member serves.
pub const SHARED: &str = "shared";
/// The cluster secret of test clusters.
pub const CLUSTER_SECRET: &str = "test-cluster-secret";

/// How the members of a test cluster find each other.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Membership {
    /// `[[cluster.workers]]`, failure timeout 2 s.
    #[default]
    Static,
    /// A real etcd started for the cluster, leases of 2 s.
    Etcd,
}

/// How a test cluster is configured beyond the defaults.
#[derive(Default, Clone, Copy)]
pub struct ClusterSetup<'a> {
    pub membership: Membership,
    /// Lines added to every member's `[s3]` section (e.g. `redirect.enabled = true`).
    pub s3: &'a str,
    /// Further sections of every member's config (e.g. `[auth]`).
    pub extra: &'a str,
    /// Give every member an HTTPS port of its own (for configs with a `[tls]` certificate, whose
    /// default HTTPS port the members could not share).
    pub https: bool,
}

/// A running cluster and its remote.
pub struct TestCluster {
    pub workers: Vec<Server>,
    pub remote: Server,
    /// The etcd of an etcd-membership cluster.
    pub etcd: Option<EtcdServer>,
}

impl TestCluster {
    /// Starts a remote and `size` members, one after the other, and waits until every member
    /// sees every other live.
    pub async fn start(size: usize, setup: ClusterSetup<'_>) -> TestCluster {
        let remote = Server::start_with_config("[s3]\naccess_log = true\n").await;
        remote.create_bucket(SHARED).await;
        let ports = free_ports(3 * size);
        let port_set = |i: usize| [ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]];
        let etcd = (setup.membership == Membership::Etcd).then(EtcdServer::start);
        let members: String = match &etcd {
            Some(etcd) => format!(
                "membership = \"etcd\"\n[cluster.etcd]\nendpoints = [\"{}\"]\nprefix = \"/alcove-test\"\nlease_ttl = 2\n",
                etcd.endpoint()
            ),
            None => (0..size)
                .map(|i| {
                    let [s3, _, peer] = port_set(i);
                    format!(
                        "[[cluster.workers]]\nid = \"w{}\"\ns3 = \"http://127.0.0.1:{s3}\"\npeer = \"127.0.0.1:{peer}\"\n",
                        i + 1
                    )
                })
                .collect(),
        };
        let mut workers = Vec::new();
        for i in 0..size {
            let config = format!(
                "{extra}\n[s3]\naccess_log = true\n{s3}\n[cache]\nmetadata_sync_interval = -1\n\
                 [cluster]\nid = \"w{id}\"\nsecret = \"{CLUSTER_SECRET}\"\nfailure_timeout = \"2s\"\n{members}\n\
                 [[mounts]]\npath = \"/{SHARED}\"\nufs = \"s3://{SHARED}\"\n[mounts.options]\nendpoint = \"{endpoint}\"\n\
                 access_key_id = \"ak\"\nsecret_access_key = \"sk\"\n",
                extra = setup.extra,
                s3 = setup.s3,
                id = i + 1,
                endpoint = remote.endpoint(),
            );
            workers.push(if setup.https {
                Server::start_at_https(&config, port_set(i)).await
            } else {
                Server::start_at(&config, port_set(i)).await
            });
        }
        let cluster = TestCluster { workers, remote, etcd };
        for i in 0..size {
            cluster.wait_live(i, size).await;
        }
        cluster
    }

    /// The member at `index`.
    pub fn worker(&self, index: usize) -> &Server {
        &self.workers[index]
    }

    /// Waits (up to 15 s) until member `index` sees `live` live members; panics otherwise.
    pub async fn wait_live(&self, index: usize, live: usize) {
        for _ in 0..150 {
            if self.live_count(index).await == Some(live) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("worker w{} does not see {live} live members; its log:\n{}", index + 1, self.workers[index].log());
    }

    /// How many live members member `index` sees (`None` when it does not answer).
    pub async fn live_count(&self, index: usize) -> Option<usize> {
        let status = cluster_status(&self.workers[index]).await?;
        status["live"].as_u64().map(|n| n as usize)
    }

    /// The ids of the members that logged serving `method` on `key` of [`SHARED`].
    pub fn served_by(&self, method: &str, key: &str) -> Vec<String> {
        let method = format!("method={method}");
        let key = format!("bucket=\"{SHARED}\" key=\"{key}\"");
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.access_log_lines().iter().any(|l| crate::has_token(l, &method) && l.contains(&key)))
            .map(|(i, _)| format!("w{}", i + 1))
            .collect()
    }
}

/// The `cluster` section of a worker's `/status`.
pub async fn cluster_status(worker: &Server) -> Option<serde_json::Value> {
    let resp = http_client().get(format!("{}/status", worker.admin_url())).send().await.ok()?;
    let status: serde_json::Value = serde_json::from_str(&resp.text().await.ok()?).ok()?;
    Some(status["cluster"].clone())
}
