//! The page cache, seen from outside: a front worker with an S3 mount of a second worker (the
//! remote, which logs every request it serves, so the reads that reach the under-storage are
//! counted there), driven with aws-sdk-s3. Repeat reads, restarts, ranged cold reads, single
//! flight, read-ahead, coherence with the metadata sync interval, the capacity bound, corrupted
//! cache files, and a remote that dies while its data is cached.

use std::time::Duration;

use alcove_tests::aws_sdk_s3::types::{Tag, Tagging};
use alcove_tests::*;

const MIB: usize = 1 << 20;
/// The remote's bucket and the prefix the front mounts.
const FAR: &str = "far";
/// The bucket name the front serves the remote under.
const NEAR: &str = "near";

/// A remote worker that logs every request, with the bucket `far`.
async fn remote() -> Server {
    let remote = Server::start_with_config("[s3]\naccess_log = true\n").await;
    remote.create_bucket(FAR).await;
    remote
}

/// A front worker with `[cache]` settings `cache` (TOML lines), mounting `s3://far/base` of
/// `remote` as `near` with the extra mount options.
async fn front(remote: &Server, cache: &str, options: &[&str]) -> Server {
    let front = Server::start_with_config(&format!("[cache]\n{cache}\n")).await;
    mount_remote(&front, remote, options);
    front
}

fn mount_remote(front: &Server, remote: &Server, options: &[&str]) {
    let admin = front.admin_url();
    let endpoint = format!("endpoint={}", remote.endpoint());
    let mut args = vec!["mount", "add", "--admin", &admin, "--path", "/near", "--ufs-uri", "s3://far/base"];
    for option in [endpoint.as_str(), "access_key_id=ak", "secret_access_key=sk"].iter().chain(options) {
        args.extend(["--option", option]);
    }
    let out = front.cli(&args);
    assert!(out.status.success(), "mount add: {}", String::from_utf8_lossy(&out.stderr));
}

/// GETs the remote served for `key` (under the mount's prefix) so far.
fn remote_gets(remote: &Server, key: &str) -> usize {
    remote_requests(remote, "GET", key)
}

/// Requests with `method` the remote served for `key` (under the mount's prefix) so far.
fn remote_requests(remote: &Server, method: &str, key: &str) -> usize {
    let (method, key) = (format!("method={method}"), format!("key=\"base/{key}\""));
    remote.access_log_lines().iter().filter(|l| has_token(l, &method) && l.contains(&key)).count()
}

/// Writes `data` as `key` straight into the remote (behind the front's back).
async fn put_on_remote(remote: &Server, key: &str, data: &[u8]) {
    put_bytes(&remote.client(), FAR, &format!("base/{key}"), data).await;
}

async fn get_range(client: &alcove_tests::aws_sdk_s3::Client, key: &str, range: &str) -> Vec<u8> {
    let out = client.get_object().bucket(NEAR).key(key).range(range).send().await.or_panic("ranged GET");
    out.body.collect().await.expect("ranged body").into_bytes().to_vec()
}

/// The `/status` cache section.
async fn cache_status(front: &Server) -> serde_json::Value {
    let text = http_client().get(format!("{}/status", front.admin_url())).send().await.unwrap().text().await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&text).expect("/status is JSON");
    status["cache"].clone()
}

/// Waits (up to 5 s) until `check` holds.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_come_from_the_cache_and_survive_a_restart() {
    let remote = remote().await;
    let cache_dir = tempfile::tempdir().unwrap();
    let config = format!(
        "memory_size = \"64MiB\"\n[[cache.dirs]]\npath = \"{}\"\nsize = \"256MiB\"",
        cache_dir.path().display()
    );
    let mut front = front(&remote, &config, &[]).await;
    let client = front.client();
    let data = pseudo_random_bytes(1, 3 * MIB + 5);
    put_bytes(&client, NEAR, "obj", &data).await;

    assert_eq!(get_bytes(&client, NEAR, "obj").await, data);
    assert_eq!(remote_gets(&remote, "obj"), 4, "one ranged read per page of a cold object");
    for _ in 0..3 {
        assert_eq!(get_bytes(&client, NEAR, "obj").await, data);
    }
    assert_eq!(remote_gets(&remote, "obj"), 4, "repeats never reach the remote");
    let cache = cache_status(&front).await;
    assert!(cache["hits"].as_u64().unwrap() >= 12, "{cache}");

    // A restarted worker serves what its disk tier held without reading it again.
    front.restart().await;
    let client = front.client();
    assert_eq!(get_bytes(&client, NEAR, "obj").await, data);
    assert_eq!(remote_gets(&remote, "obj"), 4, "the disk tier survived the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_ranged_reads_fetch_only_their_pages() {
    let remote = remote().await;
    let front = front(&remote, "memory_size = \"64MiB\"", &[]).await;
    let data = pseudo_random_bytes(2, 8 * MIB);
    put_on_remote(&remote, "big", &data).await;
    let client = front.client();

    let start = 3 * MIB + 10;
    assert_eq!(get_range(&client, "big", &format!("bytes={start}-{}", start + 9)).await, &data[start..start + 10]);
    assert_eq!(remote_gets(&remote, "big"), 1, "a range inside one page reads that page");
    let (from, to) = (5 * MIB - 3, 6 * MIB + 2);
    assert_eq!(get_range(&client, "big", &format!("bytes={from}-{to}")).await, &data[from..=to]);
    assert_eq!(remote_gets(&remote, "big"), 4, "a range over three pages reads those three");
    // A suffix range and a partNumber-less whole read reuse what is there.
    assert_eq!(get_range(&client, "big", "bytes=-5").await, &data[data.len() - 5..]);
    assert_eq!(remote_gets(&remote, "big"), 5);
    assert_eq!(get_bytes(&client, NEAR, "big").await, data);
    assert_eq!(remote_gets(&remote, "big"), 8, "the whole object: only the 3 pages not read yet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_read_each_page_once() {
    let remote = remote().await;
    let front = front(&remote, "memory_size = \"64MiB\"", &[]).await;
    let data = pseudo_random_bytes(3, 4 * MIB);
    put_on_remote(&remote, "hot", &data).await;
    let client = front.client();
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { get_bytes(&client, NEAR, "hot").await })
        })
        .collect();
    for reader in readers {
        assert!(reader.await.unwrap() == data, "every reader gets the object");
    }
    assert_eq!(remote_gets(&remote, "hot"), 4, "16 readers, one remote read per page");
    assert!(front.metric("alcove_s3_cache_single_flight_joins").await > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_readers_get_pages_read_ahead() {
    let remote = remote().await;
    let front = front(&remote, "memory_size = \"64MiB\"\nread_ahead = 3", &[]).await;
    let data = pseudo_random_bytes(4, 10 * MIB);
    put_on_remote(&remote, "seq", &data).await;
    let client = front.client();
    let page = |i: usize| format!("bytes={}-{}", i * MIB, (i + 1) * MIB - 1);

    assert_eq!(get_range(&client, "seq", &page(0)).await, &data[..MIB]);
    assert_eq!(remote_gets(&remote, "seq"), 1, "a first read is not yet sequential");
    assert_eq!(get_range(&client, "seq", &page(1)).await, &data[MIB..2 * MIB]);
    // Continuing where it stopped: pages 2, 3 and 4 are fetched ahead.
    eventually("read-ahead done", async || remote_gets(&remote, "seq") == 5).await;
    for i in 2..5 {
        assert_eq!(get_range(&client, "seq", &page(i)).await, &data[i * MIB..(i + 1) * MIB]);
    }
    eventually("read-ahead kept going", async || remote_gets(&remote, "seq") >= 8).await;
    assert!(remote_gets(&remote, "seq") <= 8, "never past read_ahead pages beyond the reader");
    assert!(front.metric("alcove_s3_cache_read_ahead_pages").await >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_objects_are_seen_after_the_sync_interval() {
    let remote = remote().await;
    let front = front(&remote, "metadata_sync_interval = \"1s\"", &[]).await;
    let client = front.client();
    put_on_remote(&remote, "doc", b"version one").await;
    assert_eq!(get_bytes(&client, NEAR, "doc").await, b"version one");
    put_on_remote(&remote, "doc", b"version two!").await;
    assert_eq!(get_bytes(&client, NEAR, "doc").await, b"version one", "within the interval: as known");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get_bytes(&client, NEAR, "doc").await, b"version two!", "re-checked: the new version");
    let head = client.head_object().bucket(NEAR).key("doc").send().await.unwrap();
    assert_eq!(head.e_tag(), Some(etag_of(b"version two!").as_str()));
    // Deleted behind Alcove's back: gone once re-checked.
    remote.client().delete_object().bucket(FAR).key("base/doc").send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!object_exists(&client, NEAR, "doc").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_read_often_are_rechecked_before_their_metadata_expires() {
    let remote = remote().await;
    let front = front(&remote, "metadata_sync_interval = \"1s\"", &[]).await;
    let client = front.client();
    put_on_remote(&remote, "hot", b"version one").await;
    assert_eq!(get_bytes(&client, NEAR, "hot").await, b"version one");
    let checks = remote_requests(&remote, "HEAD", "hot");
    put_on_remote(&remote, "hot", b"version two!").await;
    // In the interval's last quarter a read is answered as known and triggers a check of its own.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(get_bytes(&client, NEAR, "hot").await, b"version one", "still within the interval");
    eventually("the background check", async || remote_requests(&remote, "HEAD", "hot") > checks).await;
    // Past the first interval the reader finds what the background check learnt, without asking.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = remote_requests(&remote, "HEAD", "hot");
    assert_eq!(get_bytes(&client, NEAR, "hot").await, b"version two!");
    assert_eq!(remote_requests(&remote, "HEAD", "hot"), asked, "no check on the reader's time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sync_never_only_changes_through_alcove_are_seen() {
    let remote = remote().await;
    let front = front(&remote, "metadata_sync_interval = -1", &[]).await;
    let client = front.client();
    put_on_remote(&remote, "doc", b"old bytes").await;
    assert_eq!(get_bytes(&client, NEAR, "doc").await, b"old bytes");
    put_on_remote(&remote, "doc", b"new bytes").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get_bytes(&client, NEAR, "doc").await, b"old bytes", "-1: never asked again");
    // A write through Alcove is seen at once, and so is every other change made through it.
    put_bytes(&client, NEAR, "doc", b"through alcove").await;
    assert_eq!(get_bytes(&client, NEAR, "doc").await, b"through alcove");
    client
        .put_object_tagging()
        .bucket(NEAR)
        .key("doc")
        .tagging(Tagging::builder().tag_set(Tag::builder().key("k").value("v").build().unwrap()).build().unwrap())
        .send()
        .await
        .or_panic("tagging");
    assert_eq!(object_tags(&client, NEAR, "doc").await, tag_pairs(&[("k", "v")]));
    client.delete_object().bucket(NEAR).key("doc").send().await.unwrap();
    assert!(!object_exists(&client, NEAR, "doc").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_is_never_exceeded() {
    let remote = remote().await;
    let cache_dir = tempfile::tempdir().unwrap();
    let (memory, disk) = (4u64 << 20, 12u64 << 20);
    let config = format!(
        "memory_size = {memory}\nread_ahead = 1\n[[cache.dirs]]\npath = \"{}\"\nsize = {disk}",
        cache_dir.path().display()
    );
    let front = front(&remote, &config, &[]).await;
    let client = front.client();
    let objects: Vec<Vec<u8>> = (0..8).map(|i| pseudo_random_bytes(10 + i, 8 * MIB)).collect();
    for (i, data) in objects.iter().enumerate() {
        put_on_remote(&remote, &format!("set/{i}"), data).await;
    }
    // 64 MiB (4x the cache) through a 16 MiB cache, twice: every byte right, every tier within its size.
    for _ in 0..2 {
        for (i, data) in objects.iter().enumerate() {
            assert!(get_bytes(&client, NEAR, &format!("set/{i}")).await == *data, "object {i}");
        }
    }
    let cache = cache_status(&front).await;
    for tier in cache["tiers"].as_array().unwrap() {
        let (used, capacity) = (tier["used_bytes"].as_u64().unwrap(), tier["capacity_bytes"].as_u64().unwrap());
        assert!(used <= capacity, "{tier}");
        assert!(tier["evictions"].as_u64().unwrap() > 0, "the tier had to evict: {tier}");
    }
    let on_disk: u64 = std::fs::read_dir(cache_dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .map(|md| {
            use std::os::unix::fs::MetadataExt as _;
            md.len().max(md.blocks() * 512)
        })
        .sum();
    assert!(on_disk <= disk, "the disk tier's files take {on_disk} bytes of {disk}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_cache_file_is_never_served() {
    let remote = remote().await;
    let cache_dir = tempfile::tempdir().unwrap();
    let config =
        format!("memory_size = 0\n[[cache.dirs]]\npath = \"{}\"\nsize = \"64MiB\"", cache_dir.path().display());
    let mut front = front(&remote, &config, &[]).await;
    let data = pseudo_random_bytes(20, 2 * MIB);
    put_on_remote(&remote, "fragile", &data).await;
    assert_eq!(get_bytes(&front.client(), NEAR, "fragile").await, data);
    assert_eq!(remote_gets(&remote, "fragile"), 2);

    front.stop();
    let slab = std::fs::read_dir(cache_dir.path()).unwrap().map(|e| e.unwrap().path()).next().unwrap();
    let mut bytes = std::fs::read(&slab).unwrap();
    // Flip bytes all over the pages (past the file's first 4 KiB block).
    for at in (8192..bytes.len()).step_by(64 * 1024) {
        bytes[at] ^= 0xff;
    }
    std::fs::write(&slab, bytes).unwrap();
    front.restart().await;
    assert_eq!(get_bytes(&front.client(), NEAR, "fragile").await, data, "the right bytes, whatever the file says");
    assert_eq!(remote_gets(&remote, "fragile"), 4, "both damaged pages were read again");
    assert!(front.metric("alcove_s3_cache_corrupt_pages").await >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_data_is_served_while_the_remote_is_down() {
    let mut remote = remote().await;
    let front = front(&remote, "metadata_sync_interval = \"1s\"", &["timeout=2"]).await;
    let client = front.client();
    let data = pseudo_random_bytes(30, 2 * MIB + 1);
    put_on_remote(&remote, "kept", &data).await;
    put_on_remote(&remote, "never-read", b"x").await;
    assert_eq!(get_bytes(&client, NEAR, "kept").await, data);

    remote.stop();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get_bytes(&client, NEAR, "kept").await, data, "cached: served though the remote is gone");
    let range = get_range(&client, "kept", "bytes=1048570-1048580").await;
    assert_eq!(range, &data[1_048_570..=1_048_580]);
    let r = client.get_object().bucket(NEAR).key("never-read").send().await;
    assert_sdk_status(r, 503);
    assert!(front.metric("alcove_s3_cache_served_while_unavailable").await >= 1.0);
}
