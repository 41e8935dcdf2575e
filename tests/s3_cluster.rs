//! Three workers in one cluster (static membership, and etcd) over a shared remote, driven with aws-sdk-s3
//! and raw HTTP: every worker serves every key, each key from its one owner (proxy mode: the
//! request is forwarded, SigV4 checked by the owner); writes, copies and DeleteObjects reach the
//! owner's cache; multipart uploads and mounts span the cluster; redirect mode answers 307 to the
//! owner; the peer port refuses strangers; and a worker killed under load loses no acknowledged
//! write, then rejoins and takes its keys back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alcove_tests::aws_sdk_s3::types::{CorsConfiguration, CorsRule, Delete, ObjectIdentifier, Tag, Tagging};
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn body(key: &str, version: u64) -> Vec<u8> {
    pseudo_random_bytes(version ^ (key.len() as u64 * 7919), 10_000 + key.len() * 100)
}

async fn get_or_status(client: &alcove_tests::aws_sdk_s3::Client, key: &str) -> Result<Vec<u8>, String> {
    match client.get_object().bucket(SHARED).key(key).send().await {
        Ok(out) => Ok(out.body.collect().await.map_err(|e| e.to_string())?.into_bytes().to_vec()),
        Err(e) => Err(format!("{:?}", e.raw_response().map(|r| r.status().as_u16()))),
    }
}

async fn every_worker_serves_every_key_from_its_one_owner(membership: Membership) {
    let cluster = TestCluster::start(3, ClusterSetup { membership, ..Default::default() }).await;
    let keys: Vec<String> = (0..30).map(|i| format!("spread/k{i:02}")).collect();
    for (i, key) in keys.iter().enumerate() {
        put_bytes(&cluster.worker(i % 3).client(), SHARED, key, &body(key, 1)).await;
    }
    let mut owners = BTreeMap::new();
    for key in &keys {
        for w in &cluster.workers {
            assert_eq!(get_bytes(&w.client(), SHARED, key).await, body(key, 1), "{key}");
            w.client().head_object().bucket(SHARED).key(key).send().await.or_panic("HEAD");
        }
        let writers = cluster.served_by("PUT", key);
        let readers = cluster.served_by("GET", key);
        assert_eq!(writers.len(), 1, "{key} written by one worker: {writers:?}");
        assert_eq!(readers, writers, "{key} read where it was written");
        *owners.entry(writers[0].clone()).or_insert(0) += 1;
    }
    assert_eq!(owners.len(), 3, "every worker owns some of 30 keys: {owners:?}");
    for w in &cluster.workers {
        assert_eq!(list_all_keys(&w.client(), SHARED, "spread/").await, keys, "listings are served where they land");
    }
    let status = cluster_status(cluster.worker(0)).await.expect("status");
    let mode = format!("{membership:?}").to_lowercase();
    assert_eq!(status["membership"], mode.as_str());
    let members = status["members"].as_array().expect("members");
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|m| m["state"] == "live" && (m["share"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9));
    let mut forwarded = 0.0;
    for w in &cluster.workers {
        assert_eq!(w.metric("alcove_s3_cluster_live_members").await, 3.0);
        forwarded += w.metric("alcove_s3_cluster_forwarded_total").await;
    }
    assert!(
        forwarded >= 120.0,
        "of each key's 3 GETs and 3 HEADs, the 4 landing elsewhere than the owner are forwarded: {forwarded}"
    );
    let out = cluster.worker(1).cli(&["status", "--admin", &cluster.worker(1).admin_url()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{mode} membership, 3 of 3 live, this worker: w2")), "{text}");
    assert!(text.contains("w2 (this)  live   33.3%"), "{text}");
}

async fn changes_through_any_worker_reach_the_owners_cache(membership: Membership) {
    // Metadata is never re-checked with the remote: an owner that missed a change would serve
    // the old object from its cache.
    let cluster = TestCluster::start(3, ClusterSetup { membership, ..Default::default() }).await;
    let clients: Vec<_> = cluster.workers.iter().map(Server::client).collect();
    let keys: Vec<String> = (0..12).map(|i| format!("coherent/k{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        put_bytes(&clients[i % 3], SHARED, key, &body(key, 1)).await;
        assert_eq!(get_bytes(&clients[(i + 1) % 3], SHARED, key).await, body(key, 1), "cached at the owner");
        put_bytes(&clients[(i + 2) % 3], SHARED, key, &body(key, 2)).await;
        for c in &clients {
            assert_eq!(get_bytes(c, SHARED, key).await, body(key, 2), "{key} after an overwrite elsewhere");
        }
    }
    // A copy onto a cached key, landing on each worker in turn.
    for (i, key) in keys.iter().take(3).enumerate() {
        let source = format!("{SHARED}/{}", keys[11 - i]);
        clients[i].copy_object().bucket(SHARED).key(key).copy_source(&source).send().await.or_panic("copy");
        for c in &clients {
            assert_eq!(get_bytes(c, SHARED, key).await, body(&keys[11 - i], 2), "{key} after a copy");
        }
    }
    // One DeleteObjects naming keys of every owner, plus a key that does not exist.
    let mut objects: Vec<ObjectIdentifier> =
        keys.iter().map(|k| ObjectIdentifier::builder().key(k).build().unwrap()).collect();
    objects.push(ObjectIdentifier::builder().key("coherent/never-written").build().unwrap());
    let delete = Delete::builder().set_objects(Some(objects)).build().unwrap();
    let out = clients[1].delete_objects().bucket(SHARED).delete(delete).send().await.or_panic("DeleteObjects");
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    assert_eq!(out.deleted().len(), keys.len() + 1);
    for key in &keys {
        for c in &clients {
            assert_eq!(get_or_status(c, key).await, Err("Some(404)".into()), "{key} deleted everywhere");
        }
    }
}

async fn multipart_uploads_and_mounts_span_the_cluster(membership: Membership) {
    let mut cluster = TestCluster::start(3, ClusterSetup { membership, ..Default::default() }).await;
    let clients: Vec<_> = cluster.workers.iter().map(Server::client).collect();
    let key = "mp/assembled";
    let part = |n: u8| vec![n; 5 << 20];
    let upload = Upload::create(&clients[0], SHARED, key).await;
    let mut parts = Vec::new();
    for n in 1..=3 {
        let on = Upload::new(&clients[n as usize % 3], SHARED, key, &upload.id);
        parts.push((n as i32, on.part(n as i32, &part(n)).await));
    }
    for c in &clients {
        let listed = c.list_multipart_uploads().bucket(SHARED).send().await.or_panic("list uploads");
        let ids: Vec<&str> = listed.uploads().iter().filter_map(|u| u.upload_id()).collect();
        assert_eq!(
            ids,
            [upload.id.as_str()],
            "every worker lists the one upload: {}",
            cluster.workers.iter().map(|w| w.log()).collect::<Vec<_>>().join("\n----\n")
        );
    }
    Upload::new(&clients[2], SHARED, key, &upload.id).complete(&parts).await;
    let whole: Vec<u8> = (1..=3).flat_map(part).collect();
    for c in &clients {
        assert_eq!(md5_hex(&get_bytes(c, SHARED, key).await), md5_hex(&whole));
    }

    // Bucket settings changed through one worker hold on every worker.
    let tags = Tagging::builder().tag_set(Tag::builder().key("team").value("lake").build().unwrap()).build().unwrap();
    clients[0].put_bucket_tagging().bucket(SHARED).tagging(tags).send().await.or_panic("PutBucketTagging");
    let rule = CorsRule::builder().allowed_methods("GET").allowed_origins("https://app.example").build().unwrap();
    let cors = CorsConfiguration::builder().cors_rules(rule).build().unwrap();
    clients[1].put_bucket_cors().bucket(SHARED).cors_configuration(cors).send().await.or_panic("PutBucketCors");
    for c in &clients {
        assert_eq!(bucket_tags(c, SHARED).await, [("team".to_owned(), "lake".to_owned())]);
        let rules = c.get_bucket_cors().bucket(SHARED).send().await.or_panic("GetBucketCors");
        assert_eq!(rules.cors_rules()[0].allowed_origins(), ["https://app.example"]);
    }
    clients[2].delete_bucket_tagging().bucket(SHARED).send().await.or_panic("DeleteBucketTagging");
    for c in &clients {
        assert_sdk_err(c.get_bucket_tagging().bucket(SHARED).send().await, 404, "NoSuchTagSet");
    }

    // A mount added on one worker is served by all; removed while a worker is down, it is gone
    // there too once that worker is back.
    let endpoint = format!("endpoint={}", cluster.remote.endpoint());
    let admin = cluster.worker(0).admin_url();
    let add = [
        "mount",
        "add",
        "--admin",
        &admin,
        "--path",
        "/extra",
        "--ufs-uri",
        "s3://shared/extra",
        "--option",
        &endpoint,
        "--option",
        "access_key_id=ak",
        "--option",
        "secret_access_key=sk",
    ];
    let out = cluster.worker(0).cli(&add);
    assert!(out.status.success(), "mount add: {}", String::from_utf8_lossy(&out.stderr));
    for (i, c) in clients.iter().enumerate() {
        put_bytes(c, "extra", &format!("from-w{i}"), b"x").await;
    }
    assert_eq!(list_all_keys(&clients[2], SHARED, "extra/").await, ["extra/from-w0", "extra/from-w1", "extra/from-w2"]);
    cluster.workers[2].stop();
    cluster.wait_live(0, 2).await;
    let out = cluster.worker(0).cli(&["mount", "remove", "--admin", &admin, "--path", "/extra"]);
    assert!(out.status.success(), "mount remove: {}", String::from_utf8_lossy(&out.stderr));
    cluster.workers[2].start_again().await;
    cluster.wait_live(2, 3).await;
    let gone = cluster.worker(2).client().head_bucket().bucket("extra").send().await;
    assert_sdk_status(gone, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signatures_are_checked_by_the_owner_through_the_hop() {
    let auth = format!("[auth]\nmode = \"sigv4\"\n[[auth.credentials]]\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n");
    let cluster = TestCluster::start(3, ClusterSetup { extra: &auth, ..Default::default() }).await;
    let signed: Vec<_> = cluster.workers.iter().map(|w| w.client_with(ACCESS_KEY, SECRET_KEY)).collect();
    let forged: Vec<_> = cluster.workers.iter().map(|w| w.client_with(ACCESS_KEY, "not-the-secret")).collect();
    for i in 0..9 {
        let key = format!("signed/k{i}");
        put_bytes(&signed[i % 3], SHARED, &key, &body(&key, 1)).await;
        for c in &signed {
            assert_eq!(get_bytes(c, SHARED, &key).await, body(&key, 1));
        }
        for c in &forged {
            let refused = c.get_object().bucket(SHARED).key(&key).send().await;
            assert_sdk_err(refused, 403, "SignatureDoesNotMatch");
        }
    }
}

/// `count` keys whose GET on `landing` is redirected, with the owner's S3 endpoint each time.
async fn redirected_keys(landing: &Server, count: usize) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for i in 0..200 {
        let key = format!("redirect/k{i}");
        let r = landing.raw("GET", &format!("/{SHARED}/{key}"), &[], b"").await;
        if r.status == 307 {
            found.push((key, r.header("location").expect("Location").to_owned()));
            if found.len() == count {
                break;
            }
        } else {
            assert_eq!(r.status, 404, "the owner itself answers: {}", r.text());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redirect_mode_sends_clients_to_the_owner() {
    let mut cluster = TestCluster::start(3, ClusterSetup { s3: "redirect.enabled = true", ..Default::default() }).await;
    let landing = cluster.worker(0);
    let redirected = redirected_keys(landing, 6).await;
    assert_eq!(redirected.len(), 6);
    let http = http_client();
    let endpoints: Vec<String> = cluster.workers.iter().map(Server::endpoint).collect();
    for (key, location) in &redirected {
        let owner = cluster.workers.iter().find(|w| location.starts_with(&format!("{}/", w.endpoint()))).unwrap();
        assert_eq!(location, &format!("{}/{SHARED}/{key}", owner.endpoint()));
        assert_ne!(owner.endpoint(), endpoints[0], "never to itself");
        let put = http.put(location).body(body(key, 1)).send().await.expect("PUT at the owner");
        assert_eq!(put.status().as_u16(), 200);
        let again = landing.raw("GET", &format!("/{SHARED}/{key}?x-id=GetObject"), &[], b"").await;
        assert_eq!(again.status, 307);
        assert_eq!(again.header("location"), Some(format!("{location}?x-id=GetObject").as_str()), "query kept");
        assert_eq!(again.error_code().as_deref(), Some("TemporaryRedirect"));
        let direct = owner.raw("GET", &format!("/{SHARED}/{key}"), &[], b"").await;
        assert_eq!((direct.status, direct.body.clone()), (200, body(key, 1)), "the owner serves, never redirects");
    }
    // The owner of the first key dies: once its last good health check is a second old, the
    // landing worker checks again, finds it down and serves the key itself — before membership
    // (2 s in these tests) has dropped the owner.
    let (key, location) = &redirected[0];
    let owner = cluster.workers.iter().position(|w| location.starts_with(&format!("{}/", w.endpoint()))).unwrap();
    cluster.workers[owner].kill();
    let started = Instant::now();
    let served = loop {
        let r = cluster.worker(0).raw("GET", &format!("/{SHARED}/{key}"), &[], b"").await;
        if r.status != 307 || started.elapsed() > Duration::from_secs(5) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((served.status, served.body), (200, body(key, 1)));
    assert!(started.elapsed() < Duration::from_millis(1500), "served after {:?}", started.elapsed());
    assert!(cluster.worker(0).metric("alcove_s3_cluster_redirects_total").await >= 12.0);
    assert!(cluster.worker(0).metric("alcove_s3_cluster_served_for_down_owner_total").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_peer_port_refuses_strangers() {
    let cluster = TestCluster::start(2, ClusterSetup::default()).await;
    let w = cluster.worker(0);
    put_bytes(&w.client(), SHARED, "secret-object", b"inside").await;
    let sign = |secret: &str, path: &str| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{now}\nGET\n{path}").as_bytes());
        format!("{now}:{}", hex::encode(mac.finalize().into_bytes()))
    };
    for path in ["/_alcove/health", "/_alcove/mounts", &format!("/{SHARED}/secret-object")] {
        let none = raw_request(w.peer_addr, "GET", path, &[], b"").await;
        assert_eq!(none.status, 403, "{path} without a signature");
        let wrong = sign("another-cluster-secret", path);
        let refused = raw_request(w.peer_addr, "GET", path, &[("x-alcove-peer", &wrong)], b"").await;
        assert_eq!(refused.status, 403, "{path} signed with another secret");
        assert!(!refused.text().contains("inside"));
        let right = sign(CLUSTER_SECRET, path);
        let accepted = raw_request(w.peer_addr, "GET", path, &[("x-alcove-peer", &right)], b"").await;
        assert_eq!(accepted.status, 200, "{path} signed with the cluster secret: {}", accepted.text());
    }
    assert!(w.log().contains("refused a peer request"), "refusals are logged");
}

/// What the load saw while a worker died.
#[derive(Default)]
struct LoadTally {
    /// Every key a PUT got a 200 for (each key is written once).
    acknowledged: Mutex<Vec<String>>,
    failed_writes: AtomicUsize,
    good_reads: AtomicUsize,
    failed_reads: AtomicUsize,
    wrong_reads: AtomicUsize,
}

/// Writes new keys and reads acknowledged ones back through the workers still `alive`, until
/// `until`.
async fn mixed_load(id: usize, clients: Vec<Client>, alive: Arc<AtomicUsize>, tally: Arc<LoadTally>, until: Instant) {
    let mut n = 0usize;
    while Instant::now() < until {
        let client = &clients[n % alive.load(Ordering::SeqCst)];
        let key = format!("load/{id}/{n}");
        match client.put_object().bucket(SHARED).key(&key).body(body(&key, 1).into()).send().await {
            Ok(_) => tally.acknowledged.lock().unwrap().push(key),
            Err(_) => {
                tally.failed_writes.fetch_add(1, Ordering::SeqCst);
            }
        }
        let earlier = {
            let acked = tally.acknowledged.lock().unwrap();
            (!acked.is_empty()).then(|| acked[(n * 7919) % acked.len()].clone())
        };
        if let Some(key) = earlier {
            let reader = &clients[(n + 1) % alive.load(Ordering::SeqCst)];
            let counter = match get_or_status(reader, &key).await {
                Ok(bytes) if bytes == body(&key, 1) => &tally.good_reads,
                Ok(_) => &tally.wrong_reads,
                Err(_) => &tally.failed_reads,
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }
        n += 1;
    }
}

async fn a_killed_worker_loses_no_acknowledged_write_and_comes_back(membership: Membership) {
    let mut cluster = TestCluster::start(3, ClusterSetup { membership, ..Default::default() }).await;
    let clients: Vec<Client> = cluster.workers.iter().map(Server::client).collect();
    // A multipart upload staged on w3, the owner of its key.
    let mut staged_key = None;
    for i in 0..100 {
        let key = format!("staged/k{i}");
        put_bytes(&clients[0], SHARED, &key, b"probe").await;
        if cluster.served_by("PUT", &key) == ["w3"] {
            staged_key = Some(key);
            break;
        }
    }
    let staged_key = staged_key.expect("w3 owns one of 100 keys");
    let staged = Upload::create(&clients[0], SHARED, &staged_key).await;
    staged.part(1, &[1u8; 1000]).await;

    // Four clients write and read for 2 s, w3 is killed, they go on for 6 s through w1 and w2.
    let alive = Arc::new(AtomicUsize::new(3));
    let tally = Arc::new(LoadTally::default());
    let until = Instant::now() + Duration::from_secs(8);
    let load: Vec<_> = (0..4)
        .map(|id| tokio::spawn(mixed_load(id, clients.clone(), Arc::clone(&alive), Arc::clone(&tally), until)))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    alive.store(2, Ordering::SeqCst);
    cluster.workers[2].kill();
    let killed = Instant::now();
    // Until the ring drops it, a request for a key of the dead worker gets a prompt 503.
    let orphan = cluster.worker(0).raw("GET", &format!("/{SHARED}/{staged_key}"), &[], b"").await;
    assert_eq!(orphan.status, 503, "{}", orphan.text());
    assert_eq!(orphan.header("retry-after"), Some("1"));
    assert_eq!(orphan.error_code().as_deref(), Some("ServiceUnavailable"));
    assert!(killed.elapsed() < Duration::from_secs(1), "at once, not after a timeout");
    cluster.wait_live(0, 2).await;
    cluster.wait_live(1, 2).await;
    let noticed = killed.elapsed();
    for task in load {
        task.await.expect("load task");
    }
    let acknowledged = tally.acknowledged.lock().unwrap().clone();
    eprintln!(
        "kill -9 under load: dropped after {noticed:?}; {} writes acknowledged, {} failed; reads: {} good, {} failed, {} wrong",
        acknowledged.len(),
        tally.failed_writes.load(Ordering::SeqCst),
        tally.good_reads.load(Ordering::SeqCst),
        tally.failed_reads.load(Ordering::SeqCst),
        tally.wrong_reads.load(Ordering::SeqCst),
    );
    assert!(noticed < Duration::from_secs(5), "the others drop a dead worker within the failure timeout");
    assert_eq!(tally.wrong_reads.load(Ordering::SeqCst), 0, "no read returns wrong bytes");
    assert!(acknowledged.len() > 20, "the load kept going");
    for key in &acknowledged {
        for c in &clients[..2] {
            assert_eq!(get_or_status(c, key).await, Ok(body(key, 1)), "{key} acknowledged, read from a survivor");
        }
    }
    let started = Instant::now();
    let lost = Upload::new(&clients[0], SHARED, &staged_key, &staged.id).part_request(2, &[2u8; 1000]).send().await;
    assert_sdk_err(lost, 404, "NoSuchUpload");
    assert!(started.elapsed() < Duration::from_secs(5), "and says so at once");

    // w3 comes back, rejoins every ring and serves its keys again.
    let gets_before = cluster.worker(2).access_log_lines().len();
    cluster.workers[2].start_again().await;
    for i in 0..3 {
        cluster.wait_live(i, 3).await;
    }
    let clients: Vec<Client> = cluster.workers.iter().map(Server::client).collect();
    for key in &acknowledged {
        assert_eq!(get_or_status(&clients[2], key).await, Ok(body(key, 1)), "{key} read through the restarted w3");
    }
    assert!(cluster.worker(2).access_log_lines().len() > gets_before, "w3 owns keys again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_worker_serves_every_key_from_its_one_owner_static() {
    every_worker_serves_every_key_from_its_one_owner(Membership::Static).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_worker_serves_every_key_from_its_one_owner_etcd() {
    every_worker_serves_every_key_from_its_one_owner(Membership::Etcd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_through_any_worker_reach_the_owners_cache_static() {
    changes_through_any_worker_reach_the_owners_cache(Membership::Static).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_through_any_worker_reach_the_owners_cache_etcd() {
    changes_through_any_worker_reach_the_owners_cache(Membership::Etcd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multipart_uploads_and_mounts_span_the_cluster_static() {
    multipart_uploads_and_mounts_span_the_cluster(Membership::Static).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multipart_uploads_and_mounts_span_the_cluster_etcd() {
    multipart_uploads_and_mounts_span_the_cluster(Membership::Etcd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_worker_loses_no_acknowledged_write_and_comes_back_static() {
    a_killed_worker_loses_no_acknowledged_write_and_comes_back(Membership::Static).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_worker_loses_no_acknowledged_write_and_comes_back_etcd() {
    a_killed_worker_loses_no_acknowledged_write_and_comes_back(Membership::Etcd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_alone_opens_no_peer_port_and_never_redirects() {
    let alone = Server::start_with_config("[s3]\nredirect.enabled = true\n").await;
    assert!(std::net::TcpStream::connect(alone.peer_addr).is_err(), "no [cluster]: no peer port");
    alone.create_bucket("solo").await;
    for i in 0..20 {
        let key = format!("k{i}");
        put_bytes(&alone.client(), "solo", &key, b"x").await;
        let r = alone.raw("GET", &format!("/solo/{key}"), &[], b"").await;
        assert_eq!(r.status, 200, "a cluster of one serves every key itself");
    }
    let status = cluster_status(&alone).await.expect("status");
    assert!(status.is_null(), "no cluster section: {status}");
}
