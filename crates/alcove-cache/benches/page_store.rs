//! Page-store benchmark: Alcove's own page store against foyer's hybrid cache, in one run, on
//! the same pages and folders. Not part of any test; see PAGE-STORE.md for figures. It writes
//! only under `--dir` (two scratch folders it removes when done).
//!
//! ```text
//! cargo bench -p alcove-cache --features bench-foyer --bench page_store -- \
//!     [--dir SCRATCH] [--disk-pages 2048] [--memory-pages 512] [--runs 3]
//! ```
//!
//! Per run and store: put and get of 1 MiB pages in a memory-only store; puts into a disk store
//! (in batches of 32, each waited for, so that neither store drops pages on a full queue); reads
//! of every page in shuffled order with the OS page cache warm; restart (reopen) time with the
//! page cache warm and dropped; then reads again with the page cache dropped. The OS page cache
//! is dropped per file (fsync, then fadvise DONTNEED), which touches no other process's cache.
//! Reads run as 4 concurrent tasks on a 2-thread runtime.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alcove_cache::{DiskTierConfig, ObjectVersion, PageKey, PageStore, PageStoreConfig};
use bytes::Bytes;
use foyer::{BlockEngineConfig, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder, HybridCachePolicy};

const MIB: u64 = 1 << 20;
const BATCH: usize = 32;
const READERS: usize = 4;

struct Args {
    dir: PathBuf,
    disk_pages: u64,
    memory_pages: u64,
    runs: usize,
}

fn args() -> Args {
    let mut args = Args { dir: std::env::temp_dir(), disk_pages: 2048, memory_pages: 512, runs: 3 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => args.dir = PathBuf::from(value()),
            "--disk-pages" => args.disk_pages = value().parse().expect("a number"),
            "--memory-pages" => args.memory_pages = value().parse().expect("a number"),
            "--runs" => args.runs = value().parse().expect("a number"),
            // cargo bench passes --bench through.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn key(index: u64) -> PageKey {
    PageKey {
        mount: "bench".into(),
        path: format!("data/object-{}.bin", index / 64),
        version: ObjectVersion::ETag("\"9b2cf535f27731c974343645a3985328\"".into()),
        index: index % 64,
    }
}

fn page(index: u64) -> Bytes {
    let mut data = vec![0u8; MIB as usize];
    for (i, chunk) in data.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(index ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
    }
    data.into()
}

/// A fixed shuffle (xorshift), the same for both stores.
fn shuffled(n: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..n).collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// fsync and drop from the OS page cache every file under `dir`.
fn drop_os_cache(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            drop_os_cache(&path);
        } else if let Ok(file) = std::fs::File::open(&path) {
            let _ = file.sync_all();
            let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
        }
    }
}

/// What one store does for the benchmark.
trait Bench: Clone + Send + Sync + 'static {
    fn put(&self, index: u64, page: Bytes);
    fn settle(&self) -> impl Future<Output = ()> + Send;
    fn get(&self, index: u64) -> impl Future<Output = Option<Bytes>> + Send;
    fn close(self) -> impl Future<Output = ()> + Send;
}

#[derive(Clone)]
struct Own(PageStore);

impl Bench for Own {
    fn put(&self, index: u64, page: Bytes) {
        self.0.insert(key(index), page);
    }
    async fn settle(&self) {
        self.0.flush().await;
    }
    async fn get(&self, index: u64) -> Option<Bytes> {
        self.0.get(&key(index)).await
    }
    async fn close(self) {
        self.0.flush().await;
    }
}

#[derive(Clone)]
struct Foyer(HybridCache<String, Bytes>);

impl Bench for Foyer {
    fn put(&self, index: u64, page: Bytes) {
        self.0.insert(key(index).to_string(), page);
    }
    async fn settle(&self) {
        self.0.storage().wait().await;
    }
    async fn get(&self, index: u64) -> Option<Bytes> {
        self.0.get(&key(index).to_string()).await.ok().flatten().map(|e| e.value().clone())
    }
    async fn close(self) {
        let _ = self.0.close().await;
    }
}

async fn open_own(memory: u64, dir: Option<&Path>, pages: u64) -> Own {
    let dirs = dir
        .map(|d| vec![DiskTierConfig { path: d.to_path_buf(), size: 4096 + pages * (4096 + MIB) + 16 * MIB }])
        .unwrap_or_default();
    Own(PageStore::open(PageStoreConfig { page_size: MIB, memory_size: memory, dirs }).await.expect("open own"))
}

async fn open_foyer(memory: u64, dir: Option<&Path>, pages: u64) -> Foyer {
    let builder = HybridCacheBuilder::new()
        .with_policy(HybridCachePolicy::WriteOnInsertion)
        .memory(memory as usize)
        .with_weighter(|k: &String, v: &Bytes| k.len() + v.len())
        .storage();
    let builder = match dir {
        Some(dir) => {
            // Room for every page plus the blocks the block engine keeps clean for reclaiming.
            let device = FsDeviceBuilder::new(dir)
                .with_capacity(((pages * 5 / 4) * MIB + 256 * MIB) as usize)
                .build()
                .expect("foyer device");
            builder.with_engine_config(
                BlockEngineConfig::new(device)
                    .with_submit_queue_size_threshold(64 * MIB as usize)
                    .with_buffer_pool_size(64 * MIB as usize),
            )
        }
        None => builder,
    };
    Foyer(builder.build().await.expect("open foyer"))
}

fn mib_per_s(pages: u64, took: Duration) -> f64 {
    pages as f64 / took.as_secs_f64()
}

/// Reads every page in `order` with `READERS` tasks; returns (hits, time).
async fn read_all<B: Bench>(store: &B, order: &[u64]) -> (u64, Duration) {
    let start = Instant::now();
    let chunks: Vec<Vec<u64>> = order.chunks(order.len().div_ceil(READERS)).map(<[u64]>::to_vec).collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut hits = 0;
                for index in chunk {
                    if let Some(page) = store.get(index).await {
                        assert_eq!(page.len() as u64, MIB);
                        hits += 1;
                    }
                }
                hits
            })
        })
        .collect();
    let mut hits = 0;
    for task in tasks {
        hits += task.await.expect("reader");
    }
    (hits, start.elapsed())
}

#[derive(Default, Clone)]
struct Figures {
    mem_put: f64,
    mem_get: f64,
    disk_put: f64,
    disk_get_hot: f64,
    reopen_hot_ms: f64,
    reopen_cold_ms: f64,
    disk_get_cold: f64,
    cold_hits: u64,
}

async fn run<B: Bench, O, F>(name: &str, open: O, args: &Args, pages: &[Bytes]) -> Figures
where
    O: Fn(u64, Option<PathBuf>, u64) -> F,
    F: Future<Output = B>,
{
    let mut fig = Figures::default();
    // Memory tier, in steady state: four times its capacity is put, so that puts evict.
    let m = args.memory_pages;
    let store = open(m * (MIB + 4096), None, 0).await;
    let start = Instant::now();
    for i in 0..4 * m {
        store.put(i, pages[i as usize % pages.len()].clone());
    }
    fig.mem_put = mib_per_s(4 * m, start.elapsed());
    // Gets of the last quarter put, many times over: most are held.
    let order: Vec<u64> = (0..50).flat_map(|_| shuffled(m).into_iter().map(|i| 3 * m + i)).collect();
    let (hits, took) = read_all(&store, &order).await;
    assert!(hits >= order.len() as u64 / 2, "{name}: memory tier held {hits} of {}", order.len());
    fig.mem_get = mib_per_s(hits, took);
    store.close().await;

    // Disk tier.
    let n = args.disk_pages;
    let dir = args.dir.join(format!("alcove-page-bench-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let memory = if name == "own" { 0 } else { 16 * MIB };
    let store = open(memory, Some(dir.clone()), n).await;
    let start = Instant::now();
    for batch in (0..n).collect::<Vec<_>>().chunks(BATCH) {
        for &i in batch {
            store.put(i, pages[i as usize % pages.len()].clone());
        }
        store.settle().await;
    }
    fig.disk_put = mib_per_s(n, start.elapsed());
    let order = shuffled(n);
    let (hits, took) = read_all(&store, &order).await;
    fig.disk_get_hot = mib_per_s(hits, took);
    if hits < n {
        println!("  {name}: {hits}/{n} pages held after the puts");
    }
    store.close().await;

    let start = Instant::now();
    let store = open(memory, Some(dir.clone()), n).await;
    fig.reopen_hot_ms = start.elapsed().as_secs_f64() * 1e3;
    store.close().await;

    drop_os_cache(&dir);
    let start = Instant::now();
    let store = open(memory, Some(dir.clone()), n).await;
    fig.reopen_cold_ms = start.elapsed().as_secs_f64() * 1e3;
    let (hits, took) = read_all(&store, &order).await;
    fig.disk_get_cold = mib_per_s(hits, took);
    fig.cold_hits = hits;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    fig
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn report(name: &str, runs: &[Figures], n: u64) {
    let col = |f: fn(&Figures) -> f64| median(runs.iter().map(f).collect());
    println!(
        "{name:>6} | {:>8.0} | {:>8.0} | {:>8.0} | {:>8.0} | {:>8.0} | {:>8.0} | {:>8.0} | {}/{n}",
        col(|f| f.mem_put),
        col(|f| f.mem_get),
        col(|f| f.disk_put),
        col(|f| f.disk_get_hot),
        col(|f| f.disk_get_cold),
        col(|f| f.reopen_hot_ms),
        col(|f| f.reopen_cold_ms),
        runs.iter().map(|f| f.cold_hits).min().unwrap_or(0),
    );
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let pages: Vec<Bytes> = (0..64).map(page).collect();
    let (mut own, mut foyer) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        for run_no in 0..args.runs {
            // Alternate which store goes first, so that neither always meets the noisier disk.
            let order = if run_no % 2 == 0 { ["own", "foyer"] } else { ["foyer", "own"] };
            for name in order {
                let fig = if name == "own" {
                    run("own", |m, d, p| async move { open_own(m, d.as_deref(), p).await }, &args, &pages).await
                } else {
                    run("foyer", |m, d, p| async move { open_foyer(m, d.as_deref(), p).await }, &args, &pages).await
                };
                println!(
                    "run {run_no} {name:>6}: mem put {:.0} get {:.0} MiB/s | disk put {:.0} get hot {:.0} cold {:.0} MiB/s | reopen hot {:.1} ms cold {:.1} ms | cold hits {}",
                    fig.mem_put, fig.mem_get, fig.disk_put, fig.disk_get_hot, fig.disk_get_cold,
                    fig.reopen_hot_ms, fig.reopen_cold_ms, fig.cold_hits
                );
                if name == "own" { own.push(fig) } else { foyer.push(fig) }
            }
        }
    });
    println!();
    println!(
        "medians of {} runs, 1 MiB pages, {} memory pages, {} disk pages (MiB/s; reopen in ms)",
        args.runs, args.memory_pages, args.disk_pages
    );
    println!(" store |  mem put |  mem get | disk put | get hot  | get cold | reopen h | reopen c | cold hits");
    report("own", &own, args.disk_pages);
    report("foyer", &foyer, args.disk_pages);
}
