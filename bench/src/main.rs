//! `alcove-bench`: a closed-loop load generator for Alcove and other S3
//! servers (and, with `--http-get`, for plain HTTP servers such as nginx).
//!
//! Every run prints exactly one JSON line on standard output; progress and
//! error samples go to standard error. Data is deterministic per key (see
//! `content`), every GET is verified (length and CRC32), PUT and HEAD check
//! the ETag, listings check order, sizes and count. Errors are counted and
//! reported, never retried or hidden. Exit status: 0 when the run had no
//! errors, 3 when it had some (the JSON line is printed either way), 2 when
//! the run could not start (bad arguments, preparation failed).

mod cluster;
mod content;
mod cpu;
mod driver;
mod http;
mod s3;
mod shape;
mod stats;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

use crate::content::{key_for, object_bytes, Expected};
use crate::driver::{Limits, Outcome, Totals};
use crate::stats::Latencies;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// PUT objects (keys round-robin over --objects; bodies kept in memory).
    Put,
    /// GET objects, verifying every body.
    Get,
    /// HEAD objects, verifying Content-Length and ETag.
    Head,
    /// GETs and PUTs of the same keys (--get-ratio of the ops are GETs).
    Mixed,
    /// Full ListObjectsV2 paginations of the bucket under --prefix.
    List,
    /// Write the objects as files into --dir (no server involved).
    FillDir,
    /// Print N (--objects) free TCP ports on 127.0.0.1 and exit.
    FreePorts,
    /// Proxy TCP from --listen to --upstream like a slow link (--delay-ms each way, --rate-mb
    /// per second each way, shared by all connections) until SIGINT/SIGTERM.
    Shape,
    /// The cluster ring's figures for --workers workers (w1..wN) over --objects keys: balance,
    /// keys moved when one leaves and when one joins (no server involved).
    Ring,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::Head => "head",
            Workload::Mixed => "mixed",
            Workload::List => "list",
            Workload::FillDir => "fill-dir",
            Workload::FreePorts => "free-ports",
            Workload::Shape => "shape",
            Workload::Ring => "ring",
        }
    }
}

#[derive(Parser, Debug)]
#[command(name = "alcove-bench", version, about = "Load generator for Alcove, S3 servers and nginx")]
struct Args {
    /// What to run.
    #[arg(value_enum)]
    workload: Workload,

    /// Server URL (plain HTTP on loopback).
    #[arg(long, default_value = "http://127.0.0.1:29998")]
    endpoint: String,
    /// Bucket (with --http-get: the first URL path component).
    #[arg(long, default_value = "bench")]
    bucket: String,
    /// Key prefix of the objects (keys are PREFIX k00000000, k00000001, ...).
    #[arg(long, default_value = "")]
    prefix: String,
    /// Object size: bytes or with a unit (4KiB, 1MiB, 64MiB, 1GiB; K/M/G also mean KiB/MiB/GiB).
    #[arg(long, default_value = "4KiB", value_parser = parse_size)]
    size: u64,
    /// Number of distinct objects (keys) the workload cycles through.
    #[arg(long, default_value_t = 100)]
    objects: u64,
    /// Operations in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds of measured load (no new operation starts after it).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many operations (list: full listings) even before --duration.
    #[arg(long)]
    ops: Option<u64>,
    /// Seconds of unmeasured load first (opens connections, warms caches).
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// mixed: fraction of operations that are GETs.
    #[arg(long, default_value_t = 0.9)]
    get_ratio: f64,
    /// Seed of the object contents.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// S3 requests without credentials or signature (anonymous).
    #[arg(long)]
    unsigned: bool,
    /// Plain HTTP GET (or HEAD) of /BUCKET/KEY with a hyper client instead of S3.
    #[arg(long)]
    http_get: bool,
    /// Access key for signed requests.
    #[arg(long, env = "ALCOVE_BENCH_ACCESS_KEY", default_value = "alcove-bench")]
    access_key: String,
    /// Secret key for signed requests.
    #[arg(long, env = "ALCOVE_BENCH_SECRET_KEY", default_value = "alcove-bench-secret", hide_env_values = true)]
    secret_key: String,
    /// Region of the signature.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Do not create the bucket or upload the objects first: they exist
    /// already (expected contents are computed locally from the seed).
    #[arg(long)]
    no_prepare: bool,
    /// Create the bucket and upload the objects, then stop (no measured run).
    #[arg(long)]
    prepare_only: bool,
    /// Only send/validate checksums an operation requires (default: the SDK's defaults).
    #[arg(long)]
    checksums_when_required: bool,
    /// list: keys per page.
    #[arg(long, default_value_t = 1000)]
    max_keys: i32,
    /// Seconds after which a single request counts as failed.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// fill-dir: the bucket's directory to write the objects into.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Free-form label copied into the JSON line (e.g. the server's name).
    #[arg(long, default_value = "")]
    label: String,
    /// A server process (repeatable) whose CPU time (user + system, with its child processes,
    /// from /proc/PID/stat) is read at the start and the end of the measured run: the JSON line
    /// then has server_cpu_s, server_cpu_ms_per_op and server_cpu_ms_per_mib.
    #[arg(long = "cpu-pid")]
    cpu_pid: Vec<u32>,
    /// shape: address to accept connections on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// shape: the server behind the link (HOST:PORT).
    #[arg(long)]
    upstream: Option<String>,
    /// shape: one-way delay in milliseconds (the round trip is twice this).
    #[arg(long, default_value_t = 10.0)]
    delay_ms: f64,
    /// shape: bandwidth of each direction in MB/s (10^6 bytes), shared by all connections.
    #[arg(long, default_value_t = 100.0)]
    rate_mb: f64,
    /// shape: bytes in flight per connection and direction (like a TCP receive window).
    #[arg(long, default_value = "4MiB", value_parser = parse_size)]
    window: u64,
    /// shape: also answer HTTP requests on this address with the totals so far (JSON).
    #[arg(long)]
    stats_addr: Option<String>,
    /// Only keys this cluster worker owns (with --members): the key set is the first --objects
    /// keys PREFIX k00000000, k00000001, ... whose owner on the ring of --members is this id
    /// (bucket --bucket, as the cluster's router hashes it). get, head, put, mixed, fill-dir.
    #[arg(long, requires = "members")]
    owned_by: Option<String>,
    /// The cluster's worker ids, comma-separated (for --owned-by).
    #[arg(long, value_delimiter = ',')]
    members: Vec<String>,
    /// ring: number of workers (ids w1..wN).
    #[arg(long, default_value_t = 3)]
    workers: usize,
}

/// Parses `4096`, `4KiB`, `4k`, `1MiB`, `64M`, `1GiB`.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("bad size unit in {s:?}")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size {s:?} too large"))
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Splitmix-style hash of the op number: decides GET or PUT in mixed runs,
/// the same way whatever the concurrency.
fn op_fraction(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Expectations of all keys, computed locally on all cores.
fn compute_expected(seed: u64, keys: &[String], size: u64, with_md5: bool) -> Vec<Expected> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(keys.len().max(1));
    let per = keys.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(per)
            .map(|chunk| {
                s.spawn(move || {
                    chunk.iter().map(|k| Expected::compute_with(seed, k, size, with_md5)).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("expectation thread")).collect()
    })
}

/// Everything a workload's operations read.
struct Ctx {
    bucket: String,
    keys: Vec<String>,
    expected: Vec<Expected>,
    /// PUT bodies (put and mixed only).
    bodies: Vec<Bytes>,
    get_ratio: f64,
    endpoint: String,
}

fn mode_name(a: &Args) -> &'static str {
    if a.http_get {
        "http"
    } else if a.unsigned {
        "s3-unsigned"
    } else {
        "s3-signed"
    }
}

fn base_json(a: &Args) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("workload".into(), json!(a.workload.name()));
    m.insert("mode".into(), json!(mode_name(a)));
    m.insert("label".into(), json!(a.label));
    m.insert("endpoint".into(), json!(a.endpoint));
    m.insert("size".into(), json!(a.size));
    m.insert("objects".into(), json!(a.objects));
    m.insert("concurrency".into(), json!(a.concurrency));
    m
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn opt_ms(v: Option<f64>) -> Value {
    v.map(|x| json!(round3(x))).unwrap_or(Value::Null)
}

fn report(a: &Args, mut t: Totals, warmup: Option<&Totals>, extra: &[(String, Value)]) -> ExitCode {
    let secs = t.elapsed.as_secs_f64().max(1e-9);
    let mut m = base_json(a);
    m.insert("ops".into(), json!(t.ops));
    m.insert("elapsed_s".into(), json!(round3(secs)));
    m.insert("ops_per_s".into(), json!(round3(t.ops as f64 / secs)));
    m.insert("mib_per_s".into(), json!(round3(t.bytes as f64 / secs / (1024.0 * 1024.0))));
    m.insert("samples".into(), json!(t.latencies.len()));
    m.insert("p50_ms".into(), opt_ms(t.latencies.percentile_ms(50.0)));
    m.insert("p90_ms".into(), opt_ms(t.latencies.percentile_ms(90.0)));
    m.insert("p99_ms".into(), opt_ms(t.latencies.percentile_ms(99.0)));
    m.insert("p999_ms".into(), opt_ms(t.latencies.percentile_ms(99.9)));
    m.insert("max_ms".into(), opt_ms(t.latencies.max_ms()));
    m.insert("mean_ms".into(), opt_ms(t.latencies.mean_ms()));
    m.insert("errors".into(), json!(t.errors));
    m.insert("verified".into(), json!(t.verified));
    m.insert("warmup_ops".into(), json!(warmup.map_or(0, |w| w.ops)));
    m.insert("warmup_errors".into(), json!(warmup.map_or(0, |w| w.errors)));
    for (k, v) in extra {
        m.insert(k.clone(), v.clone());
    }
    let mut first = t.first_errors.clone();
    if let Some(w) = warmup {
        first.extend(w.first_errors.iter().map(|e| format!("warmup: {e}")));
    }
    m.insert("first_error".into(), first.first().map(|e| json!(e)).unwrap_or(Value::Null));
    println!("{}", Value::Object(m));
    let failed = t.errors > 0 || warmup.is_some_and(|w| w.errors > 0);
    if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("alcove-bench: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(msg) = validate(&args) {
        return fail(msg);
    }
    match args.workload {
        Workload::FreePorts => free_ports(&args),
        Workload::FillDir => fill_dir(&args),
        Workload::Ring => cluster::ring_figures(&args.bucket, &args.prefix, args.workers, args.objects),
        Workload::Shape => {
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return fail(format!("cannot start the runtime: {e}")),
            };
            rt.block_on(run_shape(args))
        }
        _ => {
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return fail(format!("cannot start the runtime: {e}")),
            };
            rt.block_on(run(args))
        }
    }
}

fn validate(a: &Args) -> Result<(), String> {
    if a.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    if a.objects == 0 && !matches!(a.workload, Workload::List) {
        return Err("--objects must be at least 1".into());
    }
    let positive = |x: f64| x > 0.0 && x.is_finite();
    if !positive(a.duration) || !positive(a.timeout) {
        return Err("--duration and --timeout must be positive".into());
    }
    if !(0.0..=1.0).contains(&a.get_ratio) {
        return Err("--get-ratio must be within 0..=1".into());
    }
    if a.prepare_only && (a.no_prepare || a.http_get) {
        return Err("--prepare-only uploads through S3: not with --no-prepare or --http-get".into());
    }
    if a.http_get && !matches!(a.workload, Workload::Get | Workload::Head) {
        return Err("--http-get supports the get and head workloads only".into());
    }
    if a.workload == Workload::Shape {
        if a.upstream.is_none() {
            return Err("shape needs --upstream HOST:PORT".into());
        }
        let delay_ok = a.delay_ms >= 0.0 && a.delay_ms.is_finite();
        if !positive(a.rate_mb) || !delay_ok || a.window == 0 {
            return Err("shape: --rate-mb and --window must be positive, --delay-ms not negative".into());
        }
        if a.window > u32::MAX as u64 {
            return Err("shape: --window must be below 4 GiB".into());
        }
    }
    if a.owned_by.is_some()
        && matches!(a.workload, Workload::List | Workload::FreePorts | Workload::Shape | Workload::Ring)
    {
        return Err("--owned-by selects object keys: get, head, put, mixed and fill-dir only".into());
    }
    if a.workload == Workload::Ring && a.workers < 2 {
        return Err("ring: --workers must be at least 2 (one leaves)".into());
    }
    if !a.endpoint.starts_with("http://")
        && !matches!(a.workload, Workload::FillDir | Workload::FreePorts | Workload::Shape | Workload::Ring)
    {
        return Err("--endpoint must be a plain http:// URL".into());
    }
    Ok(())
}

fn free_ports(a: &Args) -> ExitCode {
    let n = a.objects.clamp(1, 64);
    let listeners: Result<Vec<TcpListener>, _> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect();
    match listeners {
        Ok(ls) => {
            let ports: Vec<String> =
                ls.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.port().to_string()).collect();
            println!("{}", ports.join(" "));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot bind 127.0.0.1:0: {e}")),
    }
}

fn fill_dir(a: &Args) -> ExitCode {
    let Some(dir) = &a.dir else {
        return fail("fill-dir needs --dir (the bucket's directory)");
    };
    let started = Instant::now();
    let keys = match key_set(a) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let per = keys.len().div_ceil(threads).max(1);
    let result: Result<(), String> = std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(per)
            .map(|chunk| {
                s.spawn(move || -> Result<(), String> {
                    for k in chunk {
                        let path = dir.join(k);
                        if let Some(parent) = path.parent() {
                            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
                        }
                        std::fs::write(&path, object_bytes(a.seed, k, a.size))
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("fill thread"))
    });
    if let Err(e) = result {
        return fail(format!("fill-dir: {e}"));
    }
    let line = json!({
        "workload": a.workload.name(),
        "dir": dir.display().to_string(),
        "prefix": a.prefix,
        "size": a.size,
        "objects": a.objects,
        "elapsed_s": round3(started.elapsed().as_secs_f64()),
        "errors": 0,
    });
    println!("{line}");
    ExitCode::SUCCESS
}

/// The workload's keys: PREFIX k00000000 ... (--objects of them), or with --owned-by the first
/// --objects of those keys that the worker owns.
fn key_set(a: &Args) -> Result<Vec<String>, String> {
    match &a.owned_by {
        None => Ok((0..a.objects).map(|i| key_for(&a.prefix, i)).collect()),
        Some(id) => cluster::owned_keys(&a.members, id, &a.bucket, &a.prefix, a.objects),
    }
}

fn limits(a: &Args, duration: f64, max_ops: Option<u64>) -> Limits {
    Limits { concurrency: a.concurrency, duration: secs(duration), max_ops, op_timeout: secs(a.timeout) }
}

async fn run(a: Args) -> ExitCode {
    let s3c = s3::client(&s3::ClientOptions {
        endpoint: &a.endpoint,
        region: &a.region,
        access_key: &a.access_key,
        secret_key: &a.secret_key,
        unsigned: a.unsigned,
        checksums_when_required: a.checksums_when_required,
    });
    if a.workload == Workload::List {
        return run_list(&a, s3c).await;
    }

    let keys = match key_set(&a) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let needs_bodies = matches!(a.workload, Workload::Put | Workload::Mixed) || (!a.no_prepare && !a.http_get);
    let prep_started = Instant::now();
    let (bodies, expected) = if needs_bodies {
        let seed = a.seed;
        let size = a.size;
        let keys2 = keys.clone();
        let bodies: Vec<Bytes> = match tokio::task::spawn_blocking(move || {
            keys2.iter().map(|k| Bytes::from(object_bytes(seed, k, size))).collect::<Vec<_>>()
        })
        .await
        {
            Ok(b) => b,
            Err(e) => return fail(format!("generating bodies: {e}")),
        };
        let expected = bodies.iter().map(|b| Expected::of(b)).collect();
        (bodies, expected)
    } else {
        let seed = a.seed;
        let size = a.size;
        let keys2 = keys.clone();
        // ETags are only compared by HEAD here (PUT and mixed have bodies).
        let with_md5 = a.workload == Workload::Head;
        match tokio::task::spawn_blocking(move || compute_expected(seed, &keys2, size, with_md5)).await {
            Ok(e) => (Vec::new(), e),
            Err(e) => return fail(format!("computing expectations: {e}")),
        }
    };

    // Preparation: the bucket, and the objects the reads need.
    if !a.no_prepare && !a.http_get {
        if let Err(e) = s3::ensure_bucket(&s3c, &a.bucket).await {
            return fail(format!("preparing: {e}"));
        }
        if a.workload != Workload::Put || a.prepare_only {
            let n = keys.len() as u64;
            let ctx = Arc::new((s3c.clone(), a.bucket.clone(), keys.clone(), bodies.clone(), expected.clone()));
            let prep_limits = Limits {
                concurrency: a.concurrency.min(16),
                duration: secs(a.timeout * 10.0 + 600.0),
                max_ops: Some(n),
                op_timeout: secs(a.timeout),
            };
            let t = driver::run(prep_limits, move |i| {
                let ctx = Arc::clone(&ctx);
                async move {
                    let (c, bucket, keys, bodies, expected) = &*ctx;
                    let j = i as usize;
                    s3::put(c, bucket, &keys[j], bodies[j].clone(), &expected[j]).await
                }
            })
            .await;
            if t.errors > 0 || t.ops != n {
                return fail(format!(
                    "preparing: {} of {n} uploads failed ({} done); first: {}",
                    t.errors,
                    t.ops,
                    t.first_errors.first().map(String::as_str).unwrap_or("-")
                ));
            }
        }
        eprintln!(
            "alcove-bench: prepared {} objects of {} bytes in {:.1?}",
            keys.len(),
            a.size,
            prep_started.elapsed()
        );
    }
    if a.prepare_only {
        let mut m = base_json(&a);
        m.insert("prepared".into(), json!(keys.len()));
        m.insert("elapsed_s".into(), json!(round3(prep_started.elapsed().as_secs_f64())));
        m.insert("errors".into(), json!(0));
        println!("{}", Value::Object(m));
        return ExitCode::SUCCESS;
    }
    let bodies = if matches!(a.workload, Workload::Put | Workload::Mixed) { bodies } else { Vec::new() };

    let ctx = Arc::new(Ctx {
        bucket: a.bucket.clone(),
        keys,
        expected,
        bodies,
        get_ratio: a.get_ratio,
        endpoint: a.endpoint.clone(),
    });
    let op = make_op(&a, ctx, s3c);
    let warmup = if a.warmup > 0.0 { Some(driver::run(limits(&a, a.warmup, None), op.clone()).await) } else { None };
    let cpu_before = cpu_reading(&a);
    let totals = driver::run(limits(&a, a.duration, a.ops), op).await;
    let extra = cpu_fields(&a, cpu_before, &totals);
    report(&a, totals, warmup.as_ref(), &extra)
}

/// The servers' CPU seconds so far: all of them together (None without --cpu-pid or if one is
/// gone) and, with several --cpu-pid, each one's tree alone.
#[derive(Clone)]
struct CpuReading {
    total: Option<f64>,
    each: Vec<Option<f64>>,
}

fn cpu_reading(a: &Args) -> CpuReading {
    if a.cpu_pid.is_empty() {
        return CpuReading { total: None, each: Vec::new() };
    }
    let each =
        if a.cpu_pid.len() > 1 { a.cpu_pid.iter().map(|p| cpu::tree_seconds(&[*p])).collect() } else { Vec::new() };
    CpuReading { total: cpu::tree_seconds(&a.cpu_pid), each }
}

/// server_cpu_s, server_cpu_ms_per_op and server_cpu_ms_per_mib of the measured run (null when
/// a reading failed; per MiB only when the run moved payload). With several --cpu-pid, the same
/// three per process too, suffixed _1, _2, ... in the order of the --cpu-pid options.
fn cpu_fields(a: &Args, before: CpuReading, t: &Totals) -> Vec<(String, Value)> {
    if a.cpu_pid.is_empty() {
        return Vec::new();
    }
    let after = cpu_reading(a);
    let mib = t.bytes as f64 / (1024.0 * 1024.0);
    let figures = |b: Option<f64>, e: Option<f64>, suffix: &str| {
        let used = b.zip(e).map(|(b, e)| (e - b).max(0.0));
        let per = |d: f64| match used {
            Some(u) if d > 0.0 => json!((u * 1000.0 / d * 10_000.0).round() / 10_000.0),
            _ => Value::Null,
        };
        vec![
            (format!("server_cpu_s{suffix}"), used.map(|u| json!(round3(u))).unwrap_or(Value::Null)),
            (format!("server_cpu_ms_per_op{suffix}"), per(t.ops as f64)),
            (format!("server_cpu_ms_per_mib{suffix}"), per(mib)),
        ]
    };
    let mut out = vec![("server_cpu_pids".to_owned(), json!(a.cpu_pid))];
    out.extend(figures(before.total, after.total, ""));
    for (i, (b, e)) in before.each.iter().zip(&after.each).enumerate() {
        out.extend(figures(*b, *e, &format!("_{}", i + 1)));
    }
    out
}

/// `shape`: the link proxy, until SIGINT or SIGTERM; then its totals as the JSON line.
async fn run_shape(a: Args) -> ExitCode {
    let upstream = a.upstream.as_deref().unwrap_or_default();
    let upstream: std::net::SocketAddr = match tokio::net::lookup_host(upstream).await.map(|mut i| i.next()) {
        Ok(Some(addr)) => addr,
        _ => return fail(format!("shape: cannot resolve --upstream {upstream}")),
    };
    let listener = match tokio::net::TcpListener::bind(&a.listen).await {
        Ok(l) => l,
        Err(e) => return fail(format!("shape: cannot listen on {}: {e}", a.listen)),
    };
    let spec = shape::LinkSpec { delay: secs(a.delay_ms / 1000.0), rate: a.rate_mb * 1e6, window: a.window as usize };
    let shaper = shape::Shaper::new(spec, upstream);
    if let Some(addr) = &a.stats_addr {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tokio::spawn(shape::serve_stats(Arc::clone(&shaper), l));
            }
            Err(e) => return fail(format!("shape: cannot listen on {addr}: {e}")),
        }
    }
    if let Ok(local) = listener.local_addr() {
        eprintln!("alcove-bench shape: {local} -> {upstream}, {} ms each way, {} MB/s each way", a.delay_ms, a.rate_mb);
    }
    tokio::spawn(Arc::clone(&shaper).serve(listener));
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => return fail(format!("shape: cannot watch SIGTERM: {e}")),
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("{}", shaper.stats());
    ExitCode::SUCCESS
}

type OpFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>>;

/// The operation of a workload, as a cloneable closure over shared state.
fn make_op(a: &Args, ctx: Arc<Ctx>, s3c: aws_sdk_s3::Client) -> impl Fn(u64) -> OpFuture + Clone + Send + Sync {
    let workload = a.workload;
    let http_client = if a.http_get { Some(http::client(a.concurrency)) } else { None };
    let n = ctx.keys.len() as u64;
    move |i: u64| -> OpFuture {
        let ctx = Arc::clone(&ctx);
        let s3c = s3c.clone();
        let http_client = http_client.clone();
        Box::pin(async move {
            let j = (i % n) as usize;
            let key = &ctx.keys[j];
            let exp = &ctx.expected[j];
            if let Some(hc) = &http_client {
                let uri = match http::url(&ctx.endpoint, &ctx.bucket, key) {
                    Ok(u) => u,
                    Err(e) => return Outcome::error(e),
                };
                return if workload == Workload::Head {
                    http::head(hc, uri, exp).await
                } else {
                    http::get(hc, uri, exp).await
                };
            }
            match workload {
                Workload::Get => s3::get(&s3c, &ctx.bucket, key, exp).await,
                Workload::Head => s3::head(&s3c, &ctx.bucket, key, exp).await,
                Workload::Put => s3::put(&s3c, &ctx.bucket, key, ctx.bodies[j].clone(), exp).await,
                Workload::Mixed => {
                    if op_fraction(i) < ctx.get_ratio {
                        s3::get(&s3c, &ctx.bucket, key, exp).await
                    } else {
                        s3::put(&s3c, &ctx.bucket, key, ctx.bodies[j].clone(), exp).await
                    }
                }
                Workload::List | Workload::FillDir | Workload::FreePorts | Workload::Shape | Workload::Ring => {
                    Outcome::error("not an object workload")
                }
            }
        })
    }
}

/// `--ops` full listings (default 1), `--concurrency` of them at a time.
/// Ops, latencies and verification are per page; the JSON adds the number of
/// keys, keys/s and the time of the listings.
async fn run_list(a: &Args, s3c: aws_sdk_s3::Client) -> ExitCode {
    let listings = a.ops.unwrap_or(1).max(1);
    let check = Arc::new(s3::ListCheck {
        prefix: a.prefix.clone(),
        size: Some(a.size),
        objects: if a.objects > 0 { Some(a.objects) } else { None },
    });
    // A listing is bounded in pages (expected pages plus slack) and in time.
    let max_pages = a.objects / (a.max_keys.max(1) as u64) + 1000;
    let bucket = Arc::new(a.bucket.clone());
    let max_keys = a.max_keys;
    let list_limits = Limits {
        concurrency: a.concurrency.min(listings as usize),
        duration: secs(a.duration),
        max_ops: Some(listings),
        op_timeout: secs(a.timeout),
    };
    // Pages are the measured operations: collected from inside each listing.
    let pages = Arc::new(std::sync::Mutex::new((Latencies::new(), 0u64, 0u64, Vec::<String>::new())));
    let keys_total = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let folders_total = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let list_times = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let run_listing = {
        let pages = Arc::clone(&pages);
        let keys_total = Arc::clone(&keys_total);
        let folders_total = Arc::clone(&folders_total);
        let list_times = Arc::clone(&list_times);
        move |_i: u64| {
            let s3c = s3c.clone();
            let check = Arc::clone(&check);
            let bucket = Arc::clone(&bucket);
            let pages = Arc::clone(&pages);
            let keys_total = Arc::clone(&keys_total);
            let folders_total = Arc::clone(&folders_total);
            let list_times = Arc::clone(&list_times);
            async move {
                let began = Instant::now();
                let res = s3::list_all(&s3c, &bucket, max_keys, &check, max_pages, |lat, ok| {
                    let mut p = pages.lock().expect("pages");
                    p.0.record(lat);
                    match ok {
                        Ok(()) => p.1 += 1,
                        Err(e) => {
                            p.2 += 1;
                            if p.3.len() < 5 {
                                p.3.push(e);
                            }
                        }
                    }
                })
                .await;
                match res {
                    Ok(l) => {
                        list_times.lock().expect("times").push(began.elapsed().as_secs_f64());
                        keys_total.fetch_add(l.keys, std::sync::atomic::Ordering::Relaxed);
                        folders_total.fetch_add(l.folders, std::sync::atomic::Ordering::Relaxed);
                        Outcome::verified(0)
                    }
                    Err(e) => Outcome::error(e),
                }
            }
        }
    };
    let cpu_before = cpu_reading(a);
    let t = driver::run(list_limits, run_listing).await;
    let (page_lat, pages_ok, page_errors, mut page_first) = std::mem::take(&mut *pages.lock().expect("pages"));
    let secs_total = t.elapsed.as_secs_f64().max(1e-9);
    let keys = keys_total.load(std::sync::atomic::Ordering::Relaxed);
    let times = list_times.lock().expect("times").clone();
    // Errors: failed pages, plus failed listings whose pages all passed
    // (a wrong total count), each counted once.
    let listing_errors_beyond_pages = t.errors.saturating_sub(page_errors);
    page_first.extend(t.first_errors.iter().cloned());
    let page_totals = Totals {
        ops: pages_ok + page_errors,
        errors: page_errors + listing_errors_beyond_pages,
        verified: pages_ok,
        bytes: 0,
        elapsed: t.elapsed,
        latencies: page_lat,
        first_errors: page_first,
    };
    let mut extra = cpu_fields(a, cpu_before, &page_totals);
    extra.extend([
        ("concurrency".to_owned(), json!(list_limits.concurrency)),
        ("listings".to_owned(), json!(t.ops)),
        ("listings_ok".to_owned(), json!(t.verified)),
        ("keys".to_owned(), json!(keys)),
        ("folders".to_owned(), json!(folders_total.load(std::sync::atomic::Ordering::Relaxed))),
        ("keys_per_s".to_owned(), json!(round3(keys as f64 / secs_total))),
        ("total_s".to_owned(), json!(round3(secs_total))),
        ("listing_s".to_owned(), json!(times.iter().map(|x| round3(*x)).collect::<Vec<_>>())),
    ]);
    report(a, page_totals, None, &extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("4 parsecs").is_err());
        assert!(parse_size("KiB").is_err());
    }

    #[test]
    fn mixed_ratio_is_respected() {
        let n = 100_000;
        let gets = (0..n).filter(|&i| op_fraction(i) < 0.9).count();
        let frac = gets as f64 / n as f64;
        assert!((0.89..0.91).contains(&frac), "{frac}");
        assert_eq!((0..1000).filter(|&i| op_fraction(i) < 0.0).count(), 0);
        assert_eq!((0..1000).filter(|&i| op_fraction(i) < 1.0).count(), 1000);
    }

    #[test]
    fn expectations_in_parallel_match_sequential() {
        let keys: Vec<String> = (0..7).map(|i| key_for("p/", i)).collect();
        let par = compute_expected(9, &keys, 1000, true);
        let seq: Vec<Expected> = keys.iter().map(|k| Expected::compute(9, k, 1000)).collect();
        assert_eq!(par, seq);
    }
}
