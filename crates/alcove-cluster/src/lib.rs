//! Cluster membership and ownership for Alcove: the rendezvous-hash ring that names the owner of
//! each object key.
//!
//! Today a worker runs alone (static membership of one), so it owns every key; the ring is
//! already the one a cluster will use, so ownership never changes meaning. This crate may not
//! parse S3 requests or touch storage.

pub mod ring;

pub use ring::Ring;
