//! What a worker knows of its cluster at one moment: every configured or registered member, which
//! of them are live, and the ring of the live ones that names each key's owner.
//!
//! A view is immutable; membership publishes a new one whenever something changes, and readers
//! take the latest with a cheap clone of an `Arc`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::watch;

use serde::{Deserialize, Serialize};

use crate::Ring;

/// One worker, as the others reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    /// The S3 endpoint clients are redirected to, e.g. `http://10.0.0.5:29998`.
    pub s3: String,
    /// The peer port, `host:port`.
    pub peer: String,
}

/// Relays `views` to the receiver it returns, each one [`ClusterView::without_me`] once `leaving`
/// turns true: what a worker routes by while it shuts down. The relay ends with its source.
pub fn leaving_aware(
    mut views: watch::Receiver<Arc<ClusterView>>,
    mut leaving: watch::Receiver<bool>,
) -> watch::Receiver<Arc<ClusterView>> {
    let current = |views: &watch::Receiver<Arc<ClusterView>>, leaving: &watch::Receiver<bool>| {
        let view = Arc::clone(&views.borrow());
        if *leaving.borrow() {
            Arc::new(view.without_me())
        } else {
            view
        }
    };
    let (publish, relayed) = watch::channel(current(&views, &leaving));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = views.changed() => if changed.is_err() { return },
                changed = leaving.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    tracing::info!("leaving the ring: the other workers serve every key from now on");
                }
                _ = publish.closed() => return,
            }
            if publish.send(current(&views, &leaving)).is_err() {
                return;
            }
        }
    });
    relayed
}

/// Who serves a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    Me,
    Peer(&'a Member),
}

/// The cluster as one worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// This worker's id.
    pub me: String,
    /// Every member known, live or not (this worker included).
    pub members: BTreeMap<String, Member>,
    /// The ids of the live members (this worker too, unless it is leaving).
    pub live: BTreeSet<String>,
    /// The ring of the live members.
    pub ring: Ring,
}

impl ClusterView {
    pub fn new(me: &str, members: impl IntoIterator<Item = Member>, live: impl IntoIterator<Item = String>) -> Self {
        let members: BTreeMap<String, Member> = members.into_iter().map(|m| (m.id.clone(), m)).collect();
        let mut live: BTreeSet<String> = live.into_iter().filter(|id| members.contains_key(id)).collect();
        live.insert(me.to_owned());
        let ring = Ring::new(live.iter().cloned());
        Self { me: me.to_owned(), members, live, ring }
    }

    /// This view as a leaving worker routes by: every key goes to the other live members (with
    /// none left, the worker keeps serving everything itself).
    pub fn without_me(&self) -> Self {
        let live: BTreeSet<String> = self.live.iter().filter(|id| **id != self.me).cloned().collect();
        if live.is_empty() {
            return self.clone();
        }
        let ring = Ring::new(live.iter().cloned());
        Self { me: self.me.clone(), members: self.members.clone(), live, ring }
    }

    /// A cluster of one: this worker owns everything.
    pub fn single(me: Member) -> Self {
        let id = me.id.clone();
        Self::new(&id.clone(), [me], [id])
    }

    /// The owner of `bucket/key` among the live members.
    pub fn owner(&self, bucket: &str, key: &str) -> Owner<'_> {
        match self.ring.owner(bucket, key) {
            Some(id) if id != self.me => self.members.get(id).map_or(Owner::Me, Owner::Peer),
            _ => Owner::Me,
        }
    }

    /// The live members other than this worker.
    pub fn live_peers(&self) -> impl Iterator<Item = &Member> {
        self.live.iter().filter(|id| **id != self.me).filter_map(|id| self.members.get(id))
    }
}

/// Logs the members that joined or left the ring between two views; `left_because` says how this
/// membership tells a member has gone (every kind of membership logs alike, so one grep follows a
/// cluster whichever kind it runs).
pub(crate) fn log_change(before: &ClusterView, after: &ClusterView, left_because: &str) {
    for id in after.live.difference(&before.live) {
        tracing::info!(worker = %id, members = after.live.len(), "worker joined the ring");
    }
    for id in before.live.difference(&after.live) {
        tracing::warn!(worker = %id, members = after.live.len(), reason = left_because, "worker left the ring");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> Member {
        Member { id: id.into(), s3: format!("http://{id}:29998"), peer: format!("{id}:29999") }
    }

    #[test]
    fn owners_come_from_the_live_members_only() {
        let all =
            ClusterView::new("w1", [member("w1"), member("w2"), member("w3")], ["w1".into(), "w2".into(), "w3".into()]);
        let without_w2 = ClusterView::new("w1", [member("w1"), member("w2"), member("w3")], ["w1".into(), "w3".into()]);
        let mut w2_keys = 0;
        for i in 0..300 {
            let key = format!("k{i}");
            match (all.owner("b", &key), without_w2.owner("b", &key)) {
                (Owner::Peer(m), after) if m.id == "w2" => {
                    w2_keys += 1;
                    assert!(!matches!(after, Owner::Peer(p) if p.id == "w2"));
                }
                (before, after) => assert_eq!(before, after, "only w2's keys move"),
            }
        }
        assert!(w2_keys > 50);
        assert_eq!(without_w2.live_peers().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["w3"]);
        let single = ClusterView::single(member("solo"));
        assert_eq!(single.owner("b", "k"), Owner::Me);
    }
}
