//! Tests of the page store through its public interface (plus two test hooks: a disk tier's
//! injected I/O failure and where a page's bytes sit in the slab file). They may touch only
//! temporary folders of their own (and mount a small tmpfs on one, where root may).

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use bytes::Bytes;
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::disk::FILE_NAME;
use crate::{DiskTierConfig, ObjectVersion, PageKey, PageStore, PageStoreConfig, PageStoreError, Source};

const PAGE: u64 = 64 << 10;

fn key(path: &str, index: u64) -> PageKey {
    PageKey { mount: "m".into(), path: path.into(), version: ObjectVersion::ETag("v1".into()), index }
}

/// A page whose bytes depend on `seed`, so that a page served for the wrong key shows.
fn page(seed: u64, len: usize) -> Bytes {
    (0..len).map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 / 7) % 251) as u8).collect::<Vec<_>>().into()
}

fn config(memory_size: u64, dirs: &[(&Path, u64)]) -> PageStoreConfig {
    PageStoreConfig {
        page_size: PAGE,
        memory_size,
        dirs: dirs.iter().map(|(path, size)| DiskTierConfig { path: path.to_path_buf(), size: *size }).collect(),
    }
}

async fn open(memory_size: u64, dirs: &[(&Path, u64)]) -> PageStore {
    match PageStore::open(config(memory_size, dirs)).await {
        Ok(store) => store,
        Err(e) => panic!("open: {e}"),
    }
}

/// A fetch that must not run.
async fn no_fetch() -> Result<Bytes, String> {
    Err("fetched, but the page should have been cached".into())
}

/// Apparent and allocated bytes of every file under `dir`.
fn disk_usage(dir: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let meta = entry.expect("entry").metadata().expect("metadata");
        if meta.is_file() {
            total.0 += meta.len();
            total.1 += meta.blocks() * 512;
        }
    }
    total
}

// --- log capture: a global subscriber that keeps every event's level and fields ---

static LOGS: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

struct Capture;

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        LOGS.lock().unwrap_or_else(|p| p.into_inner()).push((*event.metadata().level(), fields.0));
    }
}

fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture));
    });
}

/// Warnings and errors logged about `dir` (events carry their folder, so parallel tests do not
/// see each other's).
fn alarms_about(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    LOGS.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(level, fields)| (*level == Level::WARN || *level == Level::ERROR) && fields.contains(&dir))
        .map(|(_, fields)| fields.clone())
        .collect()
}

// --- tiers ---

#[tokio::test]
async fn memory_tier_hits_and_misses() {
    let store = open(16 * PAGE, &[]).await;
    assert_eq!(store.get(&key("a", 0)).await, None);
    store.insert(key("a", 0), page(1, PAGE as usize));
    let got = store.get(&key("a", 0)).await.expect("a memory hit");
    assert_eq!(got, page(1, PAGE as usize));
    let (again, source) = store.get_or_fetch(&key("a", 0), no_fetch).await.expect("hit");
    assert_eq!((again, source), (got, Source::Memory));
    let stats = store.stats();
    assert_eq!((stats.memory.hits, stats.misses, stats.fetches), (2, 1, 0));
    assert_eq!(stats.memory.bytes_served, 2 * PAGE);
    assert!(stats.disks.is_empty());
}

#[tokio::test]
async fn a_memory_hit_shares_the_cached_buffer() {
    let store = open(16 * PAGE, &[]).await;
    store.insert(key("a", 0), page(1, 100));
    let first = store.get(&key("a", 0)).await.expect("hit");
    let second = store.get(&key("a", 0)).await.expect("hit");
    assert_eq!(first.as_ptr(), second.as_ptr(), "a hit is a reference, not a copy");
}

#[tokio::test]
async fn a_disk_only_store_serves_from_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(0, &[(dir.path(), 64 * PAGE)]).await;
    // The last page of an object may be shorter than a page.
    store.insert(key("a", 0), page(1, PAGE as usize));
    store.insert(key("a", 1), page(2, 1000));
    store.flush().await;
    let (got, source) = store.get_or_fetch(&key("a", 1), no_fetch).await.expect("disk hit");
    assert_eq!((got, source), (page(2, 1000), Source::Disk));
    assert_eq!(store.get(&key("a", 0)).await, Some(page(1, PAGE as usize)));
    let stats = store.stats();
    assert_eq!(stats.memory.pages, 0);
    assert_eq!((stats.disks[0].hits, stats.disks[0].pages, stats.disks[0].insertions), (2, 2, 2));
    assert_eq!(stats.disks[0].bytes_served, PAGE + 1000);
}

#[tokio::test]
async fn a_disk_hit_is_promoted_to_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Room for two pages in memory, sixty-four on disk.
    let store = open(2 * PAGE + 1024, &[(dir.path(), 64 * PAGE)]).await;
    for i in 0..8 {
        store.insert(key("a", i), page(i, PAGE as usize));
    }
    store.flush().await;
    let (got, source) = store.get_or_fetch(&key("a", 0), no_fetch).await.expect("hit");
    assert_eq!((got, source), (page(0, PAGE as usize), Source::Disk));
    let (_, source) = store.get_or_fetch(&key("a", 0), no_fetch).await.expect("hit");
    assert_eq!(source, Source::Memory);
    let stats = store.stats();
    assert_eq!((stats.memory.hits, stats.disks[0].hits, stats.misses), (1, 1, 0));
    assert!(stats.memory.evictions >= 6);
}

// --- capacity ---

#[tokio::test]
async fn memory_capacity_holds_under_four_times_the_data() {
    let capacity = 10 * PAGE;
    let store = open(capacity, &[]).await;
    for i in 0..40 {
        // Pages of mixed sizes, many small ones: overhead must be charged too.
        let len = if i % 3 == 0 { 10 } else { PAGE as usize - i as usize };
        store.insert(key(&format!("object-{i}"), 0), page(i, len));
        let stats = store.stats();
        assert!(stats.memory.used_bytes <= capacity, "{} > {capacity}", stats.memory.used_bytes);
    }
    let stats = store.stats();
    assert!(stats.memory.evictions > 0);
    assert!(stats.memory.used_bytes > capacity / 2, "the tier is used, not emptied");
}

#[tokio::test]
async fn disk_capacity_holds_under_four_times_the_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let capacity = 20 * PAGE + 100_000;
    let store = open(0, &[(dir.path(), capacity)]).await;
    let mut written = 0;
    let len = |i: u64| if i.is_multiple_of(10) { 5000 } else { PAGE as usize };
    for i in 0..110 {
        store.insert(key("big", i), page(i, len(i)));
        written += len(i) as u64;
        if i % 8 == 7 {
            store.flush().await;
        }
    }
    store.flush().await;
    assert!(written >= 4 * capacity);
    let (apparent, allocated) = disk_usage(dir.path());
    assert!(apparent <= capacity, "file size {apparent} > {capacity}");
    assert!(allocated <= capacity, "allocated {allocated} > {capacity}");
    let stats = store.stats();
    assert!(stats.disks[0].used_bytes <= capacity);
    assert!(stats.disks[0].evictions > 0);
    // What is still held reads back intact.
    let mut held = 0;
    for i in 0..110 {
        if let Some(got) = store.get(&key("big", i)).await {
            assert_eq!(got, page(i, len(i)));
            held += 1;
        }
    }
    assert!(held >= 10, "{held} pages held");
}

// --- restart ---

#[tokio::test]
async fn a_reopened_store_serves_its_disk_pages_without_fetching() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = [(dir.path(), 64 * PAGE)];
    {
        let store = open(4 * PAGE, &dirs).await;
        for i in 0..20 {
            store.insert(key("kept", i), page(i, PAGE as usize - i as usize));
        }
        store.flush().await;
    }
    let store = open(4 * PAGE, &dirs).await;
    assert_eq!(store.stats().disks[0].pages, 20);
    for i in 0..20 {
        let (got, source) = store.get_or_fetch(&key("kept", i), no_fetch).await.expect("recovered");
        assert_eq!((got, source), (page(i, PAGE as usize - i as usize), Source::Disk));
    }
    assert_eq!(store.stats().fetches, 0);
}

#[tokio::test]
async fn a_restart_recovers_a_folder_of_many_slots() {
    // Enough slots for the header scan to run on several threads.
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = [(dir.path(), 1000 * (PAGE + 4096))];
    {
        let store = open(0, &dirs).await;
        for i in 0..700 {
            store.insert(key("many", i), page(i, 100 + i as usize));
            if i % 50 == 49 {
                store.flush().await;
            }
        }
        store.flush().await;
        assert_eq!(store.stats().disks[0].pages, 700);
    }
    let store = open(0, &dirs).await;
    assert_eq!(store.stats().disks[0].pages, 700);
    for i in (0..700).step_by(7) {
        assert_eq!(store.get(&key("many", i)).await, Some(page(i, 100 + i as usize)));
    }
}

#[tokio::test]
async fn a_folder_is_used_by_one_store_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = open(0, &[(dir.path(), 16 * PAGE)]).await;
    let second = PageStore::open(config(0, &[(dir.path(), 16 * PAGE)])).await;
    assert!(matches!(second, Err(PageStoreError::DirInUse(_))));
}

#[tokio::test]
async fn another_page_size_starts_the_folder_afresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(0, &[(dir.path(), 16 * PAGE)]).await;
        store.insert(key("a", 0), page(1, 10));
        store.flush().await;
    }
    let mut other = config(0, &[(dir.path(), 16 * PAGE)]);
    other.page_size = 2 * PAGE;
    let store = PageStore::open(other).await.expect("opens");
    assert_eq!(store.stats().disks[0].pages, 0);
    assert_eq!(store.get(&key("a", 0)).await, None);
}

// --- corruption ---

fn flip_byte(dir: &Path, offset: u64) {
    let file = OpenOptions::new().read(true).write(true).open(dir.join(FILE_NAME)).expect("open slab");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).expect("read");
    byte[0] ^= 0x55;
    file.write_all_at(&byte, offset).expect("write");
}

#[tokio::test]
async fn a_flipped_byte_is_a_miss_then_a_refetch() {
    capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(0, &[(dir.path(), 16 * PAGE)]).await;
    store.insert(key("a", 0), page(1, PAGE as usize));
    store.insert(key("a", 1), page(2, PAGE as usize));
    store.flush().await;
    let offset = store.disk_tier(0).data_offset(&key("a", 0)).expect("on disk");
    flip_byte(dir.path(), offset + 1234);
    assert_eq!(store.get(&key("a", 0)).await, None, "a corrupt page is never returned");
    assert_eq!(store.stats().disks[0].corrupt_pages, 1);
    assert_eq!(store.stats().disks[0].pages, 1, "dropped from the index");
    assert_eq!(store.get(&key("a", 1)).await, Some(page(2, PAGE as usize)), "its neighbour is fine");
    let (got, source) = store
        .get_or_fetch(&key("a", 0), || async { Ok::<_, String>(page(1, PAGE as usize)) })
        .await
        .expect("refetched");
    assert_eq!((got, source), (page(1, PAGE as usize), Source::Fetched));
    store.flush().await;
    assert_eq!(store.get(&key("a", 0)).await, Some(page(1, PAGE as usize)), "cached again");
    assert_eq!(alarms_about(dir.path()).len(), 1, "{:?}", alarms_about(dir.path()));
}

#[tokio::test]
async fn corruption_found_after_a_restart_is_dropped_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = [(dir.path(), 16 * PAGE)];
    let offset = {
        let store = open(0, &dirs).await;
        store.insert(key("a", 0), page(1, PAGE as usize));
        store.flush().await;
        store.disk_tier(0).data_offset(&key("a", 0)).expect("on disk")
    };
    flip_byte(dir.path(), offset + PAGE - 1);
    let store = open(0, &dirs).await;
    assert_eq!(store.get(&key("a", 0)).await, None);
    drop(store);
    // The dropped page's header was zeroed: the next start does not index it.
    let store = open(0, &dirs).await;
    assert_eq!(store.stats().disks[0].pages, 0);
}

#[tokio::test]
async fn a_truncated_file_is_a_miss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = [(dir.path(), 16 * PAGE)];
    let store = open(0, &dirs).await;
    for i in 0..3 {
        store.insert(key("a", i), page(i, PAGE as usize));
    }
    store.flush().await;
    let last = store.disk_tier(0).data_offset(&key("a", 2)).expect("on disk");
    let file = OpenOptions::new().write(true).open(dir.path().join(FILE_NAME)).expect("open slab");
    file.set_len(last + PAGE / 2).expect("truncate");
    assert_eq!(store.get(&key("a", 2)).await, None, "cut short: a miss");
    assert_eq!(store.stats().disks[0].corrupt_pages, 1);
    assert_eq!(store.get(&key("a", 1)).await, Some(page(1, PAGE as usize)));
    drop(store);
    // After a restart the cut page is not indexed at all; the others are.
    file.set_len(last + PAGE / 2).expect("truncate again");
    let store = open(0, &dirs).await;
    assert_eq!(store.stats().disks[0].pages, 2);
    assert_eq!(store.get(&key("a", 0)).await, Some(page(0, PAGE as usize)));
}

// --- failing disks ---

#[tokio::test]
async fn a_failing_disk_degrades_to_not_cached_with_one_log_line() {
    capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(0, &[(dir.path(), 64 * PAGE)]).await;
    store.insert(key("a", 0), page(0, PAGE as usize));
    store.flush().await;
    store.disk_tier(0).fail_io.store(true, Ordering::Relaxed);
    for i in 1..20 {
        store.insert(key("a", i), page(i, PAGE as usize));
    }
    store.flush().await;
    // Reads fail too: a miss, not an error.
    assert_eq!(store.get(&key("a", 0)).await, None);
    for i in 0..20 {
        let fetched = store.get_or_fetch(&key("a", i), || async move { Ok::<_, String>(page(i, 10)) }).await;
        assert_eq!(fetched.map(|(p, _)| p), Ok(page(i, 10)), "the caller never sees the disk's error");
    }
    store.flush().await;
    let stats = store.stats();
    assert!(stats.disks[0].failing);
    assert!(stats.disks[0].errors >= 2, "{:?}", stats.disks[0]);
    assert!(stats.disks[0].dropped_writes >= 18, "{:?}", stats.disks[0]);
    assert_eq!(alarms_about(dir.path()).len(), 1, "{:?}", alarms_about(dir.path()));
}

#[tokio::test]
async fn an_unusable_folder_leaves_a_working_store() {
    capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").expect("write");
    let below_a_file = not_a_dir.join("cache");
    let store = open(4 * PAGE, &[(&below_a_file, 16 * PAGE)]).await;
    store.insert(key("a", 0), page(0, 10));
    store.flush().await;
    assert_eq!(store.get(&key("a", 0)).await, Some(page(0, 10)));
    assert!(store.stats().disks[0].failing);
    assert_eq!(alarms_about(&below_a_file).len(), 1);
}

/// A small tmpfs fills up under the tier (ENOSPC). Needs root and mount; skipped otherwise.
#[tokio::test]
async fn a_full_disk_degrades_to_not_cached_with_one_log_line() {
    capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .output()
        .is_ok_and(|out| out.status.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.path().to_path_buf());
    // The tier is told it has 64 pages; the file system has room for about 15.
    let store = open(0, &[(dir.path(), 64 * PAGE)]).await;
    for i in 0..40 {
        store.insert(key("a", i), page(i, PAGE as usize));
        store.flush().await;
    }
    let stats = store.stats();
    assert!(stats.disks[0].failing && stats.disks[0].errors >= 1, "{:?}", stats.disks[0]);
    assert!((5..30).contains(&stats.disks[0].pages), "{:?}", stats.disks[0]);
    for i in 0..40 {
        let fetched = store.get_or_fetch(&key("a", i), || async move { Ok::<_, String>(page(i, PAGE as usize)) }).await;
        assert_eq!(fetched.map(|(p, _)| p), Ok(page(i, PAGE as usize)));
    }
    assert_eq!(alarms_about(dir.path()).len(), 1, "{:?}", alarms_about(dir.path()));
    drop(store);
}

// --- single flight ---

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_fetch_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(16 * PAGE, &[(dir.path(), 16 * PAGE)]).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, calls, barrier) = (store.clone(), calls.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .get_or_fetch(&key("hot", 0), || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<_, String>(page(7, PAGE as usize))
                    })
                    .await
            })
        })
        .collect();
    let mut sources = Vec::new();
    for task in tasks {
        let (got, source) = task.await.expect("task").expect("fetched");
        assert_eq!(got, page(7, PAGE as usize));
        sources.push(source);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(sources.iter().filter(|s| **s == Source::Fetched).count(), 1);
    assert_eq!(sources.iter().filter(|s| **s == Source::Joined).count(), 15);
    assert_eq!(store.stats().single_flight_joins, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_fetch_is_shared_but_not_cached() {
    let store = open(16 * PAGE, &[]).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, calls) = (store.clone(), calls.clone());
            tokio::spawn(async move {
                store
                    .get_or_fetch(&key("bad", 0), || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Err::<Bytes, _>("remote said no".to_string())
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task"), Err("remote said no".to_string()));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let (_, source) = store
        .get_or_fetch(&key("bad", 0), || async { Ok::<_, String>(page(1, 10)) })
        .await
        .expect("the error was not cached");
    assert_eq!(source, Source::Fetched);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_fetch_hands_over_to_a_waiting_caller() {
    let store = open(16 * PAGE, &[]).await;
    let leader = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .get_or_fetch(&key("slow", 0), || async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok::<_, String>(page(0, 10))
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let follower = {
        let store = store.clone();
        tokio::spawn(
            async move { store.get_or_fetch(&key("slow", 0), || async { Ok::<_, String>(page(1, 10)) }).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    let (got, source) = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the follower is not stranded")
        .expect("task")
        .expect("fetched");
    assert_eq!((got, source), (page(1, 10), Source::Fetched));
    assert_eq!(store.stats().single_flight_joins, 1);
}

// --- removal ---

#[tokio::test]
async fn remove_object_takes_one_version_from_every_tier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = [(dir.path(), 64 * PAGE)];
    let v1 = ObjectVersion::ETag("v1".into());
    let v2 = ObjectVersion::SizeMtime { size: 3 * PAGE, mtime_ns: 5 };
    let k = |path: &str, version: &ObjectVersion, index| PageKey {
        mount: "m".into(),
        path: path.into(),
        version: version.clone(),
        index,
    };
    let size = 2 * PAGE + 10;
    {
        let store = open(64 * PAGE, &dirs).await;
        for index in 0..3 {
            store.insert(k("obj", &v1, index), page(index, PAGE as usize));
            store.insert(k("obj", &v2, index), page(10 + index, PAGE as usize));
            store.insert(k("other", &v1, index), page(20 + index, PAGE as usize));
        }
        store.flush().await;
        assert_eq!(store.remove_object("m", "obj", &v1, size).await, 3);
        for index in 0..3 {
            assert_eq!(store.get(&k("obj", &v1, index)).await, None);
            assert!(store.get(&k("obj", &v2, index)).await.is_some());
        }
        assert!(store.remove(&k("other", &v1, 0)).await);
        assert!(!store.remove(&k("other", &v1, 0)).await);
        assert_eq!(store.stats().disks[0].removals, 4);
    }
    // Removal is durable: a restart does not bring the pages back.
    let store = open(64 * PAGE, &dirs).await;
    assert_eq!(store.get(&k("obj", &v1, 0)).await, None);
    assert_eq!(store.get(&k("other", &v1, 0)).await, None);
    assert_eq!(store.get(&k("other", &v1, 1)).await, Some(page(21, PAGE as usize)));
    assert_eq!(store.get(&k("obj", &v2, 2)).await, Some(page(12, PAGE as usize)));
    // Every version of a path at once.
    assert_eq!(store.remove_path("m", "obj").await, 3);
    assert_eq!(store.get(&k("obj", &v2, 0)).await, None);
    assert_eq!(store.stats().disks[0].pages, 2);
}

#[tokio::test]
async fn pages_spread_over_several_folders_and_come_back_from_each() {
    let (a, b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let dirs = [(a.path(), 64 * PAGE), (b.path(), 64 * PAGE)];
    {
        let store = open(0, &dirs).await;
        for i in 0..40 {
            store.insert(key("spread", i), page(i, 100));
        }
        store.flush().await;
        let stats = store.stats();
        assert!(stats.disks.iter().all(|d| d.pages >= 8), "{:?}", stats.disks);
        assert_eq!(stats.disks.iter().map(|d| d.pages).sum::<u64>(), 40);
    }
    let store = open(0, &dirs).await;
    for i in 0..40 {
        assert_eq!(store.get(&key("spread", i)).await, Some(page(i, 100)));
    }
}
