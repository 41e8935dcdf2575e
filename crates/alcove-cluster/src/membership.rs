//! Static membership: the workers listed in the config file, each probed on its peer port; a
//! worker that has not answered for `failure_timeout` leaves the ring, and joins it again when it
//! answers. A worker that answers that it is leaving (it is shutting down) leaves the ring at
//! once. Every worker probes on its own, so the live sets agree within a probe or two.
//!
//! It publishes views; it may not route requests or look into them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use tokio::sync::watch;

use crate::client::PeerClient;
use crate::view::{log_change, ClusterView, Member};

/// The peer API path every worker answers probes on.
pub const HEALTH_PATH: &str = "/_alcove/health";

/// Probes `members` (this worker included) once, then keeps probing them in the background, and
/// returns the view, updated as members come and go. The first view already holds the peers that
/// answered, so a starting worker does not take every key for itself. The probes stop when every
/// receiver is dropped.
pub async fn start_static(
    me: &str,
    members: Vec<Member>,
    client: PeerClient,
    failure_timeout: Duration,
) -> watch::Receiver<Arc<ClusterView>> {
    let interval = (failure_timeout / 4).clamp(Duration::from_millis(100), Duration::from_millis(500));
    let probe_timeout = interval.max(Duration::from_secs(1));
    let mut prober = Prober {
        me: me.to_owned(),
        peers: members.iter().filter(|m| m.id != me).cloned().collect(),
        members,
        client,
        failure_timeout,
        probe_timeout,
        last_answer: HashMap::new(),
    };
    let (publish, view) = watch::channel(Arc::new(prober.round().await));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let next = prober.round().await;
            if next.live != publish.borrow().live {
                log_change(&publish.borrow(), &next, "no answer, or leaving");
                if publish.send(Arc::new(next)).is_err() {
                    return;
                }
            }
            if publish.is_closed() {
                return;
            }
        }
    });
    view
}

/// The state of static membership's probing.
struct Prober {
    me: String,
    members: Vec<Member>,
    peers: Vec<Member>,
    client: PeerClient,
    failure_timeout: Duration,
    probe_timeout: Duration,
    last_answer: HashMap<String, Instant>,
}

impl Prober {
    /// Probes every peer at once and says who is live now.
    async fn round(&mut self) -> ClusterView {
        let probes = self.peers.iter().map(|peer| probe(&self.client, peer, self.probe_timeout));
        for (peer, answer) in self.peers.iter().zip(futures::future::join_all(probes).await) {
            match answer {
                Answer::Live => {
                    self.last_answer.insert(peer.id.clone(), Instant::now());
                }
                Answer::Leaving => {
                    self.last_answer.remove(&peer.id);
                }
                Answer::Silent => {}
            }
        }
        let live = self
            .peers
            .iter()
            .filter(|p| self.last_answer.get(&p.id).is_some_and(|t| t.elapsed() < self.failure_timeout))
            .map(|p| p.id.clone());
        ClusterView::new(&self.me, self.members.clone(), live)
    }
}

/// What a probe learnt of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// It answered as the member it is configured as.
    Live,
    /// It answered that it is shutting down: it leaves the ring now.
    Leaving,
    /// No answer, or not the expected member's.
    Silent,
}

async fn probe(client: &PeerClient, peer: &Member, timeout: Duration) -> Answer {
    match client.call(peer, Method::GET, HEALTH_PATH, Bytes::new(), timeout).await {
        Ok(body) => {
            let health = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
            let id = health["id"].as_str();
            if id != Some(peer.id.as_str()) {
                tracing::warn!(peer = %peer.id, answered = ?id, "a peer port answers as another worker; check cluster.workers");
                return Answer::Silent;
            }
            if health["leaving"].as_bool() == Some(true) {
                Answer::Leaving
            } else {
                Answer::Live
            }
        }
        Err(e) => {
            tracing::debug!(peer = %peer.id, error = %e, "probe failed");
            Answer::Silent
        }
    }
}
