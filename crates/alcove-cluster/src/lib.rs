//! Cluster membership and ownership for Alcove: which workers are live (a static list, or etcd,
//! which also stores the cluster's mount table), which of them owns each object key (rendezvous
//! hashing), how a request that lands on a non-owner is handed on (proxy or redirect), and how
//! workers call each other (a signed, pooled peer client).
//!
//! A worker alone (the embedded default) is a cluster of one that owns every key. This crate may
//! not parse S3 requests beyond the bucket and key of a path, and may not touch storage.

pub mod client;
pub mod etcd;
#[cfg(test)]
mod fuzz;
pub mod gate;
pub mod membership;
pub mod peer_auth;
pub mod ring;
pub mod router;
pub mod view;

pub use client::{PeerBody, PeerClient, PeerError, FORWARDED_BY_HEADER};
pub use etcd::{EtcdError, EtcdMembership, EtcdSettings};
pub use gate::{Gate, GateBody, GateCounters, Passage, TargetOf};
pub use membership::{start_static, HEALTH_PATH};
pub use peer_auth::{ClusterSecret, PeerAuthError, PEER_HEADER};
pub use ring::Ring;
pub use router::{route, Handoff, Route, Target};
pub use view::{leaving_aware, ClusterView, Member, Owner};
