//! Static membership: the workers listed in the config file, each probed on its peer port; a
//! worker that has not answered for `failure_timeout` leaves the ring, and joins it again when it
//! answers. Every worker probes on its own, so the live sets agree within a probe or two.
//!
//! It publishes views; it may not route requests or look into them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use tokio::sync::watch;

use crate::client::PeerClient;
use crate::view::{ClusterView, Member};

/// The peer API path every worker answers probes on.
pub const HEALTH_PATH: &str = "/_alcove/health";

/// Starts probing `members` (this worker included) and returns the view, updated as members come
/// and go. The probes stop when every receiver is dropped.
pub fn start_static(
    me: &str,
    members: Vec<Member>,
    client: PeerClient,
    failure_timeout: Duration,
) -> watch::Receiver<Arc<ClusterView>> {
    let initial = Arc::new(ClusterView::new(me, members.clone(), [me.to_owned()]));
    let (publish, view) = watch::channel(initial);
    let interval = (failure_timeout / 4).clamp(Duration::from_millis(100), Duration::from_millis(500));
    let me = me.to_owned();
    tokio::spawn(async move {
        let peers: Vec<Member> = members.iter().filter(|m| m.id != me).cloned().collect();
        let mut last_answer: HashMap<String, Instant> = HashMap::new();
        loop {
            let probes = peers.iter().map(|peer| probe(&client, peer, interval.max(Duration::from_secs(1))));
            for (peer, alive) in peers.iter().zip(futures::future::join_all(probes).await) {
                if alive {
                    last_answer.insert(peer.id.clone(), Instant::now());
                }
            }
            let live = peers
                .iter()
                .filter(|p| last_answer.get(&p.id).is_some_and(|t| t.elapsed() < failure_timeout))
                .map(|p| p.id.clone());
            let next = ClusterView::new(&me, members.clone(), live);
            if next.live != publish.borrow().live {
                log_change(&publish.borrow(), &next);
                if publish.send(Arc::new(next)).is_err() {
                    return;
                }
            }
            if publish.is_closed() {
                return;
            }
            tokio::time::sleep(interval).await;
        }
    });
    view
}

/// True when `peer` answered a probe as the member it is configured as.
async fn probe(client: &PeerClient, peer: &Member, timeout: Duration) -> bool {
    match client.call(peer, Method::GET, HEALTH_PATH, Bytes::new(), timeout).await {
        Ok(body) => {
            let id = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned));
            if id.as_deref() != Some(peer.id.as_str()) {
                tracing::warn!(peer = %peer.id, answered = ?id, "a peer port answers as another worker; check cluster.workers");
                return false;
            }
            true
        }
        Err(e) => {
            tracing::debug!(peer = %peer.id, error = %e, "probe failed");
            false
        }
    }
}

fn log_change(before: &ClusterView, after: &ClusterView) {
    for id in after.live.difference(&before.live) {
        tracing::info!(worker = %id, members = after.live.len(), "worker joined the ring");
    }
    for id in before.live.difference(&after.live) {
        tracing::warn!(worker = %id, members = after.live.len(), "worker left the ring (no answer)");
    }
}
