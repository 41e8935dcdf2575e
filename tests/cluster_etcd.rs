//! etcd membership and the mount table store of alcove-cluster against a real etcd: each test
//! starts its own server (the harness's `EtcdServer`) and kills it when done.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alcove_cluster::{ClusterView, EtcdError, EtcdMembership, EtcdSettings, Member};
use alcove_tests::{free_ports, EtcdServer};
use bytes::Bytes;
use tokio::sync::watch;

type MountTable = BTreeMap<String, Bytes>;

const TTL: Duration = Duration::from_secs(2);
const PREFIX: &str = "/alcove/test";

fn member(id: &str) -> Member {
    Member { id: id.into(), s3: format!("http://{id}.test:29998"), peer: format!("{id}.test:29999") }
}

fn settings(etcd: &EtcdServer) -> EtcdSettings {
    EtcdSettings { endpoints: vec![etcd.endpoint()], prefix: PREFIX.into(), lease_ttl: TTL }
}

async fn join(etcd: &EtcdServer, id: &str) -> (EtcdMembership, watch::Receiver<Arc<ClusterView>>) {
    EtcdMembership::join(settings(etcd), member(id)).await.unwrap_or_else(|e| panic!("{id} cannot join: {e}"))
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Waits until `view` shows exactly the live members `want`.
async fn until_live(view: &mut watch::Receiver<Arc<ClusterView>>, want: &[&str], within: Duration) -> Duration {
    let want = ids(want);
    let started = Instant::now();
    // A bool, not the `Ref` the wait yields: that would hold the channel's lock.
    let seen = matches!(tokio::time::timeout(within, view.wait_for(|v| v.live == want)).await, Ok(Ok(_)));
    let last = view.borrow().live.clone();
    assert!(seen, "{}: wanted live {want:?} within {within:?}, still {last:?}", view.borrow().me);
    started.elapsed()
}

/// Waits until the mount table satisfies `want`; false if it does not within 5 s.
async fn until_table(table: &mut watch::Receiver<Arc<MountTable>>, want: impl FnMut(&Arc<MountTable>) -> bool) -> bool {
    matches!(tokio::time::timeout(Duration::from_secs(5), table.wait_for(want)).await, Ok(Ok(_)))
}

fn init_log() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("alcove_cluster=debug").try_init();
}

#[tokio::test]
async fn members_see_each_other_on_the_same_ring() {
    init_log();
    let etcd = EtcdServer::start();
    let (_w1, mut v1) = join(&etcd, "w1").await;
    let (_w2, mut v2) = join(&etcd, "w2").await;
    let (_w3, mut v3) = join(&etcd, "w3").await;
    for view in [&mut v1, &mut v2, &mut v3] {
        until_live(view, &["w1", "w2", "w3"], Duration::from_secs(5)).await;
    }
    let (a, b, c) = (v1.borrow().clone(), v2.borrow().clone(), v3.borrow().clone());
    assert_eq!(a.ring, b.ring);
    assert_eq!(a.ring, c.ring);
    assert_eq!(a.members, c.members, "every member is known by the address it registered");
    assert_eq!(a.members.get("w2"), Some(&member("w2")));
    for i in 0..200 {
        let key = format!("k{i}");
        assert_eq!(a.ring.owner("b", &key), c.ring.owner("b", &key));
    }
}

#[tokio::test]
async fn a_member_that_leaves_disappears_at_once() {
    init_log();
    let etcd = EtcdServer::start();
    let (_w1, mut v1) = join(&etcd, "w1").await;
    let (w2, _v2) = join(&etcd, "w2").await;
    until_live(&mut v1, &["w1", "w2"], Duration::from_secs(5)).await;
    w2.leave().await;
    let took = until_live(&mut v1, &["w1"], TTL).await;
    assert!(took < TTL / 2, "a revoked lease goes at once, not at expiry ({took:?})");
}

#[tokio::test]
async fn a_member_that_stops_renewing_disappears_within_its_ttl() {
    init_log();
    let etcd = EtcdServer::start();
    let (_w1, mut v1) = join(&etcd, "w1").await;
    let (w2, v2) = join(&etcd, "w2").await;
    until_live(&mut v1, &["w1", "w2"], Duration::from_secs(5)).await;
    // Dropping every handle is what a crash looks like to the others: no revoke, no more renewals.
    drop((w2, v2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(v1.borrow().live.contains("w2"), "w2 stays until its lease expires");
    until_live(&mut v1, &["w1"], TTL + Duration::from_secs(1)).await;
}

#[tokio::test]
async fn mounts_are_created_once_deleted_and_watched_by_every_member() {
    init_log();
    let etcd = EtcdServer::start();
    let (w1, _v1) = join(&etcd, "w1").await;
    let entry = Bytes::from_static(br#"{"ufs":"file:///data/a"}"#);
    assert!(w1.put_mount_if_absent("a", entry.clone()).await.expect("put a"));
    assert!(!w1.put_mount_if_absent("a", Bytes::from_static(b"{}")).await.expect("put a again"));

    // A member joining later starts from the table as it is.
    let (w2, _v2) = join(&etcd, "w2").await;
    let mut table2 = w2.mount_table();
    assert_eq!(table2.borrow().get("a"), Some(&entry), "the duplicate did not overwrite");
    assert_eq!(w2.mounts().await.expect("mounts").get("a"), Some(&entry));

    let mut table1 = w1.mount_table();
    assert!(w2.put_mount_if_absent("b", Bytes::from_static(b"{}")).await.expect("put b"));
    let seen = until_table(&mut table1, |t| t.contains_key("b")).await;
    assert!(seen, "w1 sees the mount w2 created");

    let fresh = w1.mount_table();
    assert!(fresh.borrow().contains_key("b"));
    assert!(!fresh.has_changed().unwrap_or(true), "a new subscription starts at the current table");

    assert!(w1.delete_mount("a").await.expect("delete a"));
    assert!(!w1.delete_mount("a").await.expect("delete a again"));
    let seen = until_table(&mut table2, |t| !t.contains_key("a")).await;
    assert!(seen, "w2 sees the mount w1 deleted");
    let keys: Vec<String> = w2.mounts().await.expect("mounts").into_keys().collect();
    assert_eq!(keys, ["b"]);
    assert!(matches!(w1.put_mount_if_absent("", Bytes::new()).await, Err(EtcdError::EmptyBucket)));
}

#[tokio::test]
async fn views_recover_after_etcd_restarts() {
    init_log();
    let mut etcd = EtcdServer::start();
    let (w1, mut v1) = join(&etcd, "w1").await;
    let (w2, mut v2) = join(&etcd, "w2").await;
    until_live(&mut v1, &["w1", "w2"], Duration::from_secs(5)).await;

    etcd.kill();
    tokio::time::sleep(TTL).await;
    assert_eq!(v1.borrow().live, ids(&["w1", "w2"]), "the last known view stays while etcd is away");
    let during = w1.mounts().await;
    assert!(matches!(during, Err(EtcdError::Request { .. } | EtcdError::Timeout { .. })), "{during:?}");
    if let Err(e) = during {
        assert!(e.to_string().contains(&etcd.endpoint()), "the error names the endpoint: {e}");
    }

    etcd.restart(true);
    // Watches are back: a newcomer is seen by both, and a crashed member is dropped by both.
    let (_w3, mut v3) = join(&etcd, "w3").await;
    until_live(&mut v1, &["w1", "w2", "w3"], Duration::from_secs(5)).await;
    until_live(&mut v2, &["w1", "w2", "w3"], Duration::from_secs(5)).await;
    w2.stop();
    until_live(&mut v1, &["w1", "w3"], TTL + Duration::from_secs(1)).await;
    until_live(&mut v3, &["w1", "w3"], TTL + Duration::from_secs(1)).await;
    // w1's registration survived the restart and is still renewed.
    tokio::time::sleep(TTL * 2).await;
    assert_eq!(v3.borrow().live, ids(&["w1", "w3"]));
    assert!(w1.put_mount_if_absent("after", Bytes::from_static(b"{}")).await.expect("put after restart"));
}

#[tokio::test]
async fn members_register_again_when_etcd_lost_its_data() {
    init_log();
    let mut etcd = EtcdServer::start();
    let (w1, mut v1) = join(&etcd, "w1").await;
    let (_w2, mut v2) = join(&etcd, "w2").await;
    until_live(&mut v1, &["w1", "w2"], Duration::from_secs(5)).await;
    assert!(w1.put_mount_if_absent("lost", Bytes::from_static(b"{}")).await.expect("put"));
    let mut table = w1.mount_table();

    etcd.restart(false);
    // The leases are gone with the data: both register again, and a newcomer sees them.
    let (_w3, mut v3) = join(&etcd, "w3").await;
    until_live(&mut v3, &["w1", "w2", "w3"], Duration::from_secs(5)).await;
    until_live(&mut v1, &["w1", "w2", "w3"], Duration::from_secs(5)).await;
    until_live(&mut v2, &["w1", "w2", "w3"], Duration::from_secs(5)).await;
    // The fresh read after the broken watch shows the table as etcd now has it.
    let seen = until_table(&mut table, |t| t.is_empty()).await;
    assert!(seen, "the mount table follows etcd's");
}

#[tokio::test]
async fn a_duplicate_worker_id_is_refused() {
    init_log();
    let etcd = EtcdServer::start();
    let (_w1, mut v1) = join(&etcd, "w1").await;
    let impostor = Member { s3: "http://elsewhere:29998".into(), ..member("w1") };
    let (_w2, mut v2) = join(&etcd, "w2").await;
    let refused = EtcdMembership::join(settings(&etcd), impostor).await;
    match refused {
        Err(e @ EtcdError::DuplicateId { .. }) => {
            let message = e.to_string();
            assert!(message.contains("\"w1\"") && message.contains(&etcd.endpoint()), "{message}");
        }
        other => panic!("a second w1 must be refused, got {:?}", other.map(|(m, _)| m)),
    }
    until_live(&mut v1, &["w1", "w2"], Duration::from_secs(5)).await;
    until_live(&mut v2, &["w1", "w2"], Duration::from_secs(1)).await;
    assert_eq!(v2.borrow().members.get("w1"), Some(&member("w1")), "the first w1 keeps its registration");
}

#[tokio::test]
async fn a_restarted_worker_takes_its_id_back_once_the_old_lease_expires() {
    init_log();
    let etcd = EtcdServer::start();
    let (_w1, mut v1) = join(&etcd, "w1").await;
    let (w2, _v2) = join(&etcd, "w2").await;
    w2.stop();
    drop(w2);
    let (_w2, mut v2) = join(&etcd, "w2").await;
    until_live(&mut v2, &["w1", "w2"], Duration::from_secs(5)).await;
    // The new registration is renewed: w2 outlives the first run's lease.
    tokio::time::sleep(TTL * 2).await;
    until_live(&mut v1, &["w1", "w2"], Duration::from_secs(1)).await;
}

#[tokio::test]
async fn garbage_under_the_workers_prefix_is_skipped() {
    init_log();
    let etcd = EtcdServer::start();
    let mut raw = etcdv3client::EtcdClient::new(vec![etcd.endpoint()], None).await.expect("raw client");
    raw.put(format!("{PREFIX}/workers/bad"), b"{not json".to_vec()).await.expect("put garbage");
    let impostor = serde_json::to_vec(&member("w9")).expect("json");
    raw.put(format!("{PREFIX}/workers/w8"), impostor).await.expect("put impostor");
    let (_w1, mut v1) = join(&etcd, "w1").await;
    let (_w2, _v2) = join(&etcd, "w2").await;
    until_live(&mut v1, &["w1", "w2"], Duration::from_secs(5)).await;
    raw.put(format!("{PREFIX}/workers/worse"), vec![0xff, 0xfe]).await.expect("put more garbage");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(v1.borrow().live, ids(&["w1", "w2"]));
}

#[tokio::test]
async fn an_unreachable_etcd_is_named_in_the_error() {
    let endpoint = format!("http://127.0.0.1:{}", free_ports(1)[0]);
    let settings = EtcdSettings { endpoints: vec![endpoint.clone()], prefix: PREFIX.into(), lease_ttl: TTL };
    let error = EtcdMembership::join(settings, member("w1")).await.expect_err("nothing listens there");
    assert!(error.to_string().contains(&endpoint), "{error}");
}
