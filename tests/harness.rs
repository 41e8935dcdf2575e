//! Test harness for the Alcove end-to-end tests.
//!
//! Starts a real `alcove serve` worker process on free 127.0.0.1 ports with a
//! fresh temporary root, waits for `/readyz`, and stops it by pid (SIGTERM,
//! then SIGKILL after 10 s) when dropped. It also offers an `aws-sdk-s3`
//! client bound to the worker, a raw HTTP/1.1 client for requests that normal
//! clients refuse to send (path escapes, malformed bodies), a small SigV4
//! signer for hand-built signed requests, and a few XML / hashing helpers.
//!
//! The binary comes from `ALCOVE_BIN`, else `$CARGO_TARGET_DIR/debug/alcove`
//! with `CARGO_TARGET_DIR` defaulting to `/var/tmp/alcove-target`.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::Sha256;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use aws_sdk_s3;

/// Credentials configured by the sigv4 tests (they write them into the config file).
pub const ACCESS_KEY: &str = "AKIDALCOVETEST";
/// Secret matching [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "alcove-test-secret";
/// Region used everywhere.
pub const REGION: &str = "us-east-1";

/// How long to wait for `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERM'd worker may take before it is SIGKILLed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Path of the alcove binary under test.
pub fn alcove_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ALCOVE_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/alcove-target"));
    target.join("debug").join("alcove")
}

/// Picks `n` distinct free ports on 127.0.0.1 (all listeners are held until
/// every port has been chosen, so the ports differ).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")).collect();
    listeners.iter().map(|l| l.local_addr().expect("local_addr").port()).collect()
}

/// A running (or stopped) alcove worker.
pub struct Server {
    work: TempDir,
    root: PathBuf,
    config_path: Option<PathBuf>,
    log_path: PathBuf,
    /// S3 API address.
    pub s3_addr: SocketAddr,
    /// Admin API address (`/readyz`, mounts).
    pub admin_addr: SocketAddr,
    /// Peer (cluster) address.
    pub peer_addr: SocketAddr,
    child: Option<Child>,
}

impl Server {
    /// Starts a worker with no config file (embedded defaults: simple auth,
    /// anonymous allowed, access log for failed requests only).
    pub async fn start() -> Server {
        Self::start_inner(None).await
    }

    /// Starts a worker with the given TOML written to a config file.
    pub async fn start_with_config(toml: &str) -> Server {
        Self::start_inner(Some(toml)).await
    }

    async fn start_inner(toml: Option<&str>) -> Server {
        let bin = alcove_bin();
        assert!(
            bin.is_file(),
            "alcove binary not found at {} (build it with `cargo build -p alcove` or set ALCOVE_BIN)",
            bin.display()
        );
        let work = tempfile::Builder::new().prefix("alcove-test-").tempdir().expect("create temp dir");
        let root = work.path().join("root");
        fs::create_dir(&root).expect("create root");
        let config_path = toml.map(|t| {
            let p = work.path().join("alcove.toml");
            fs::write(&p, t).expect("write config");
            p
        });
        let log_path = work.path().join("alcove.stderr.log");
        let ports = free_ports(3);
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let mut server = Server {
            work,
            root,
            config_path,
            log_path,
            s3_addr: addr(ports[0]),
            admin_addr: addr(ports[1]),
            peer_addr: addr(ports[2]),
            child: None,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        self.spawn_once();
        self.wait_ready().await;
    }

    fn spawn_once(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let log = OpenOptions::new().create(true).append(true).open(&self.log_path).expect("open log file");
        let mut cmd = Command::new(alcove_bin());
        cmd.arg("serve")
            .arg("--root")
            .arg(&self.root)
            .arg("--s3-addr")
            .arg(self.s3_addr.to_string())
            .arg("--admin-addr")
            .arg(self.admin_addr.to_string())
            .arg("--peer-addr")
            .arg(self.peer_addr.to_string());
        if let Some(cfg) = &self.config_path {
            cmd.arg("--config").arg(cfg);
        }
        // The worker reads ALCOVE_* overrides from its environment; the test
        // decides everything through flags and its own config file.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ALCOVE_") {
                cmd.env_remove(&k);
            }
        }
        cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("dup log")).stderr(log);
        let child = cmd.spawn().expect("spawn alcove serve");
        self.child = Some(child);
    }

    /// Spawns, and retries a few times if the process exits before it is
    /// ready (e.g. a port released a moment ago is still being freed).
    async fn spawn_retrying(&mut self) {
        for _ in 0..4 {
            self.spawn_once();
            match self.wait_ready_inner().await {
                Ok(()) => return,
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        self.spawn().await;
    }

    async fn wait_ready(&mut self) {
        if let Err(msg) = self.wait_ready_inner().await {
            panic!("{msg}");
        }
    }

    async fn wait_ready_inner(&mut self) -> Result<(), String> {
        let url = format!("{}/readyz", self.admin_url());
        let http = http_client();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().expect("child").try_wait().expect("try_wait") {
                self.child = None;
                return Err(format!("alcove serve exited before it was ready ({status}); log:\n{}", self.log()));
            }
            if let Ok(resp) = http.get(&url).send().await {
                if resp.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let log = self.log();
                self.stop();
                panic!("alcove serve not ready after {READY_TIMEOUT:?}; log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the worker (SIGTERM, wait, SIGKILL after 10 s) and starts it again
    /// on the same root, config and ports.
    pub async fn restart(&mut self) {
        self.stop();
        // The ports were just released by our own process; rebinding them is
        // normally immediate, but retry briefly just in case.
        self.spawn_retrying().await;
    }

    /// Process id of the running worker.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
    }

    /// Waits up to `timeout` for the worker to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Some(st) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the worker: SIGTERM, wait up to 10 s, then SIGKILL. Returns the
    /// exit status (None if it was not running).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child.as_ref()?;
        self.sigterm();
        if let Some(st) = self.wait_exit(STOP_TIMEOUT) {
            return Some(st);
        }
        let mut child = self.child.take().expect("child");
        let _ = child.kill();
        Some(child.wait().expect("wait after SIGKILL"))
    }

    /// Whether the worker process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => c.try_wait().expect("try_wait").is_none(),
        }
    }

    /// Everything the worker wrote to stdout/stderr so far (all runs).
    pub fn log(&self) -> String {
        fs::read(&self.log_path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// The `--root` directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A scratch directory next to (outside of) the root.
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// Path of a bucket's folder in the root.
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join(bucket)
    }

    /// `http://127.0.0.1:PORT` of the S3 API.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.s3_addr)
    }

    /// `http://127.0.0.1:PORT` of the admin API.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// An S3 client with arbitrary credentials (accepted in simple mode).
    pub fn client(&self) -> Client {
        self.client_with("AKIDANYTHING", "any-secret")
    }

    /// An S3 client with the given static credentials.
    pub fn client_with(&self, access_key: &str, secret_key: &str) -> Client {
        Client::from_conf(self.config_builder(access_key, secret_key).build())
    }

    /// An S3 client that only sends checksums when an operation requires one
    /// (so PutObject is a plain, non-aws-chunked upload).
    pub fn client_plain_put(&self) -> Client {
        Client::from_conf(
            self.config_builder("AKIDANYTHING", "any-secret")
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .build(),
        )
    }

    /// Config builder for clients of this worker (path style, us-east-1, no
    /// retries so error responses surface directly, plain HTTP connector).
    pub fn config_builder(&self, access_key: &str, secret_key: &str) -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .credentials_provider(Credentials::new(access_key, secret_key, None, None, "alcove-tests"))
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
    }

    /// Runs the alcove CLI with the given arguments (e.g. `mount list --admin URL`).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(alcove_bin());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ALCOVE_") {
                cmd.env_remove(&k);
            }
        }
        cmd.args(args).stdin(Stdio::null()).output().expect("run alcove CLI")
    }

    /// Creates a bucket through the S3 API and asserts success.
    pub async fn create_bucket(&self, name: &str) {
        self.client()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {name}: {}", err_text(&e)));
    }

    /// Sends a raw HTTP/1.1 request to the S3 port.
    pub async fn raw(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
        raw_request(self.s3_addr, method, target, headers, body).await
    }

    /// Access log lines of the worker: lines that start with `access ` (or,
    /// leniently, carry an ` access ` record after a log-framework prefix).
    pub fn access_log_lines(&self) -> Vec<String> {
        self.log().lines().filter(|l| l.starts_with("access ") || l.contains(" access ")).map(str::to_owned).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `tok` occurs in `line` as a whole word (not preceded or followed
/// by an alphanumeric character).
pub fn has_token(line: &str, tok: &str) -> bool {
    line.match_indices(tok).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + tok.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric()) && !after.is_some_and(|c| c.is_alphanumeric())
    })
}

/// A reqwest client (plain HTTP, no proxy).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().expect("reqwest client")
}

// ---------------------------------------------------------------------------
// SDK error helpers
// ---------------------------------------------------------------------------

/// (HTTP status, S3 error code) of an SDK error. Status 0 when there was no response.
pub fn err_status_code<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> (u16, String)
where
    E: ProvideErrorMetadata,
{
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = e.code().unwrap_or("").to_owned();
    (status, code)
}

/// Human readable description of an SDK error, for panics.
pub fn err_text<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (status, code) = err_status_code(e);
    format!("status={status} code={code:?} message={:?} ({})", e.message(), aws_sdk_s3::error::DisplayErrorContext(e))
}

/// Asserts that an SDK call failed with the given status and error code.
#[track_caller]
pub fn assert_sdk_err<T: std::fmt::Debug, E>(
    r: Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    status: u16,
    code: &str,
) where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match r {
        Ok(v) => panic!("expected {status} {code}, got success: {v:?}"),
        Err(e) => {
            let (s, c) = err_status_code(&e);
            assert_eq!((s, c.as_str()), (status, code), "unexpected error: {}", err_text(&e));
        }
    }
}

/// Asserts that an SDK call failed with the given HTTP status (code not checked,
/// e.g. for HEAD requests which carry no body).
#[track_caller]
pub fn assert_sdk_status<T: std::fmt::Debug, E>(
    r: Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    status: u16,
) where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match r {
        Ok(v) => panic!("expected HTTP {status}, got success: {v:?}"),
        Err(e) => {
            let (s, _) = err_status_code(&e);
            assert_eq!(s, status, "unexpected error: {}", err_text(&e));
        }
    }
}

/// Reads an object fully through the SDK.
pub async fn get_bytes(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {}", err_text(&e)));
    out.body.collect().await.expect("read object body").into_bytes().to_vec()
}

/// Puts an object through the SDK and returns its ETag.
pub async fn put_bytes(client: &Client, bucket: &str, key: &str, data: &[u8]) -> String {
    let out = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(data.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {}", err_text(&e)));
    out.e_tag().expect("PUT response has an ETag").to_owned()
}

/// Whether HEAD finds the object (404 → false, other errors panic).
pub async fn object_exists(client: &Client, bucket: &str, key: &str) -> bool {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) => {
            let (s, _) = err_status_code(&e);
            assert_eq!(s, 404, "HEAD {bucket}/{key}: {}", err_text(&e));
            false
        }
    }
}

/// All keys of a bucket (recursive ListObjectsV2, following continuation tokens).
pub async fn list_all_keys(client: &Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100_000 {
        let out = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("list {bucket}: {}", err_text(&e)));
        keys.extend(out.contents().iter().map(|o| o.key().unwrap_or("").to_owned()));
        if out.is_truncated() == Some(true) {
            token = Some(out.next_continuation_token().expect("truncated listing has a continuation token").to_owned());
        } else {
            return keys;
        }
    }
    panic!("listing never ended");
}

// ---------------------------------------------------------------------------
// Data helpers
// ---------------------------------------------------------------------------

/// Hex MD5.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// Base64 MD5 (for Content-MD5).
pub fn md5_b64(data: &[u8]) -> String {
    b64(&Md5::digest(data))
}

/// Quoted hex MD5, the expected ETag.
pub fn etag_of(data: &[u8]) -> String {
    format!("\"{}\"", md5_hex(data))
}

/// Standard base64.
pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Base64 of the big-endian CRC32 (value of `x-amz-checksum-crc32`).
pub fn crc32_b64(data: &[u8]) -> String {
    b64(&crc32fast::hash(data).to_be_bytes())
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(<Sha256 as sha2::Digest>::digest(data))
}

/// Deterministic pseudo-random bytes (xorshift64*), so content checks are real.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut gen = Prng::new(seed);
    while out.len() < len {
        let v = gen.next_u64().to_le_bytes();
        let n = (len - out.len()).min(8);
        out.extend_from_slice(&v[..n]);
    }
    out
}

/// Small deterministic generator.
pub struct Prng(u64);

impl Prng {
    /// New generator; any seed works.
    pub fn new(seed: u64) -> Prng {
        Prng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Fills a buffer.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Writes `len` pseudo-random bytes to `path` in 1 MiB blocks; returns the hex MD5.
pub fn write_random_file(path: &Path, seed: u64, len: usize) -> String {
    let mut f = File::create(path).expect("create data file");
    let mut gen = Prng::new(seed);
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        gen.fill(&mut buf[..n]);
        md5.update(&buf[..n]);
        f.write_all(&buf[..n]).expect("write data file");
        left -= n;
    }
    f.sync_all().ok();
    hex::encode(md5.finalize())
}

/// Every path (relative, with a trailing `/` for directories) under `dir`,
/// sorted, skipping entries for which `skip` returns true.
pub fn snapshot_tree(dir: &Path, skip: &dyn Fn(&Path) -> bool) -> Vec<(String, Option<Vec<u8>>)> {
    fn walk(base: &Path, dir: &Path, skip: &dyn Fn(&Path) -> bool, out: &mut Vec<(String, Option<Vec<u8>>)>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let e = e.expect("read_dir entry");
            let p = e.path();
            if skip(&p) {
                continue;
            }
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let ft = e.file_type().expect("file_type");
            if ft.is_dir() {
                out.push((format!("{rel}/"), None));
                walk(base, &p, skip, out);
            } else {
                out.push((rel, Some(fs::read(&p).unwrap_or_default())));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, skip, &mut out);
    out.sort();
    out
}

/// Snapshot of a bucket folder as S3 users and other UFS users see it: the
/// worker's private `.alcove.sys` folders are left out.
pub fn visible_tree(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    snapshot_tree(dir, &|p: &Path| p.file_name().is_some_and(|n| n == ".alcove.sys"))
}

/// Regular files inside any `.alcove.sys` folder under `dir` (e.g. leftover
/// temporary files of failed uploads).
pub fn private_files(dir: &Path) -> Vec<String> {
    snapshot_tree(dir, &|_| false)
        .into_iter()
        .filter(|(p, content)| content.is_some() && p.split('/').any(|c| c == ".alcove.sys"))
        .map(|(p, _)| p)
        .collect()
}

// ---------------------------------------------------------------------------
// Checksums (computed here, independently of the server)
// ---------------------------------------------------------------------------

/// The five S3 checksum algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// CRC32 (ISO-HDLC).
    Crc32,
    /// CRC32C (Castagnoli).
    Crc32c,
    /// CRC64NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl Alg {
    /// All five, in S3's order.
    pub const ALL: [Alg; 5] = [Alg::Crc32, Alg::Crc32c, Alg::Crc64Nvme, Alg::Sha1, Alg::Sha256];

    /// The raw (binary, big-endian for CRCs) checksum of `data`.
    pub fn raw(self, data: &[u8]) -> Vec<u8> {
        match self {
            Alg::Crc32 => crc32fast::hash(data).to_be_bytes().to_vec(),
            Alg::Crc32c => crc32c(data).to_be_bytes().to_vec(),
            Alg::Crc64Nvme => crc64nvme(data).to_be_bytes().to_vec(),
            Alg::Sha1 => <sha1::Sha1 as sha1::Digest>::digest(data).to_vec(),
            Alg::Sha256 => <Sha256 as sha2::Digest>::digest(data).to_vec(),
        }
    }

    /// The base64 checksum of `data` (the value of `x-amz-checksum-*`).
    pub fn b64(self, data: &[u8]) -> String {
        b64(&self.raw(data))
    }

    /// The composite (multipart) checksum: the checksum of the concatenated
    /// binary part checksums, base64, then `-N`.
    pub fn composite(self, parts: &[&[u8]]) -> String {
        let joined: Vec<u8> = parts.iter().flat_map(|p| self.raw(p)).collect();
        format!("{}-{}", self.b64(&joined), parts.len())
    }

    /// The SDK's enum value.
    pub fn sdk(self) -> aws_sdk_s3::types::ChecksumAlgorithm {
        use aws_sdk_s3::types::ChecksumAlgorithm as A;
        match self {
            Alg::Crc32 => A::Crc32,
            Alg::Crc32c => A::Crc32C,
            Alg::Crc64Nvme => A::Crc64Nvme,
            Alg::Sha1 => A::Sha1,
            Alg::Sha256 => A::Sha256,
        }
    }

    /// `x-amz-checksum-…` header name.
    pub fn header(self) -> &'static str {
        match self {
            Alg::Crc32 => "x-amz-checksum-crc32",
            Alg::Crc32c => "x-amz-checksum-crc32c",
            Alg::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Alg::Sha1 => "x-amz-checksum-sha1",
            Alg::Sha256 => "x-amz-checksum-sha256",
        }
    }
}

/// The `checksum_<alg>()` value of any SDK output that has the five getters,
/// as an `Option<String>`: `checksum_of!(out, Alg::Crc32)`.
#[macro_export]
macro_rules! checksum_of {
    ($out:expr, $alg:expr) => {{
        let out = &$out;
        match $alg {
            $crate::Alg::Crc32 => out.checksum_crc32().map(str::to_owned),
            $crate::Alg::Crc32c => out.checksum_crc32_c().map(str::to_owned),
            $crate::Alg::Crc64Nvme => out.checksum_crc64_nvme().map(str::to_owned),
            $crate::Alg::Sha1 => out.checksum_sha1().map(str::to_owned),
            $crate::Alg::Sha256 => out.checksum_sha256().map(str::to_owned),
        }
    }};
}

/// Bitwise reflected CRC with a 256-entry table, for CRC32C and CRC64NVME.
fn crc_table64(poly: u64) -> [u64; 256] {
    let mut t = [0u64; 256];
    for (i, e) in t.iter_mut().enumerate() {
        let mut c = i as u64;
        for _ in 0..8 {
            c = if c & 1 == 1 { (c >> 1) ^ poly } else { c >> 1 };
        }
        *e = c;
    }
    t
}

/// CRC-32C (Castagnoli, reflected 0x82F63B78).
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| crc_table64(0x82F6_3B78));
    let mut c: u64 = 0xFFFF_FFFF;
    for &b in data {
        c = t[((c ^ b as u64) & 0xFF) as usize] ^ (c >> 8);
    }
    (c ^ 0xFFFF_FFFF) as u32
}

/// CRC-64/NVME (reflected 0x9A6C9329AC4BC9B5, init and xorout all ones).
pub fn crc64nvme(data: &[u8]) -> u64 {
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| crc_table64(0x9A6C_9329_AC4B_C9B5));
    let mut c: u64 = u64::MAX;
    for &b in data {
        c = t[((c ^ b as u64) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ u64::MAX
}

// ---------------------------------------------------------------------------
// Multipart helpers
// ---------------------------------------------------------------------------

/// AWS's minimum size of every part but the last.
pub const MIB5: usize = 5 * 1024 * 1024;

/// Expected ETag of a multipart object: quoted hex MD5 of the concatenated
/// binary part MD5s, then `-N`.
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut all = Md5::new();
    for p in parts {
        all.update(Md5::digest(p));
    }
    format!("\"{}-{}\"", hex::encode(all.finalize()), parts.len())
}

/// A CompleteMultipartUpload body from (part number, ETag) pairs.
pub fn completed_upload(parts: &[(i32, String)]) -> aws_sdk_s3::types::CompletedMultipartUpload {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts.iter().map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(e.clone()).build()).collect(),
        ))
        .build()
}

/// Creates an upload for `key`, uploads `parts` (numbered from 1) and returns
/// (upload id, [(part number, ETag)]) without completing.
pub async fn upload_parts(client: &Client, bucket: &str, key: &str, parts: &[&[u8]]) -> (String, Vec<(i32, String)>) {
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create upload {bucket}/{key}: {}", err_text(&e)));
    let id = created.upload_id().expect("upload id").to_owned();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(p.to_vec().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload part {n} of {bucket}/{key}: {}", err_text(&e)));
        let etag = out.e_tag().expect("part ETag").to_owned();
        assert_eq!(etag, etag_of(p), "part {n} ETag is the quoted MD5 of the part");
        done.push((n, etag));
    }
    (id, done)
}

/// Uploads `parts` as a multipart object and completes it; returns the ETag.
pub async fn multipart_put(client: &Client, bucket: &str, key: &str, parts: &[&[u8]]) -> String {
    let (id, done) = upload_parts(client, bucket, key, parts).await;
    let out = client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(completed_upload(&done))
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete {bucket}/{key}: {}", err_text(&e)));
    out.e_tag().expect("complete ETag").to_owned()
}

impl Server {
    /// Where a bucket's multipart uploads are staged (`<bucket>/.alcove.sys/uploads`).
    pub fn uploads_dir(&self, bucket: &str) -> PathBuf {
        self.bucket_dir(bucket).join(".alcove.sys").join("uploads")
    }

    /// Entries of [`Self::uploads_dir`] (empty when the folder does not exist).
    pub fn staged_uploads(&self, bucket: &str) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(self.uploads_dir(bucket)) {
            Ok(rd) => rd.map(|e| e.expect("read_dir entry").file_name().to_string_lossy().into_owned()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("reading the uploads folder: {e}"),
        };
        names.sort();
        names
    }
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) of a unix time, for raw
/// conditional headers.
pub fn http_date(unix_secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_secs).expect("valid unix time");
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&fmt).expect("format HTTP date")
}

/// An SDK `DateTime` from unix seconds.
pub fn sdk_time(unix_secs: i64) -> aws_sdk_s3::primitives::DateTime {
    aws_sdk_s3::primitives::DateTime::from_secs(unix_secs)
}

// ---------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------

/// A parsed raw HTTP response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// Body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `<Code>` of an S3 error body, if any.
    pub fn error_code(&self) -> Option<String> {
        xml_top(&self.text(), "Code")
    }

    /// Asserts an S3 error response: status, Code, and the presence of
    /// Message/Resource/RequestId plus a matching x-amz-request-id header.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status; body: {}", self.text());
        let body = self.text();
        assert_eq!(xml_top(&body, "Code").as_deref(), Some(code), "error code; body: {body}");
        assert_error_shape(self);
    }
}

/// Collects error responses whose XML shape is checked at the end of a test,
/// so that a missing field does not hide the outcome of later steps.
#[derive(Default)]
pub struct ShapeChecks(Vec<(String, RawResponse)>);

impl ShapeChecks {
    /// Asserts status and code now; remembers the response for [`Self::finish`].
    #[track_caller]
    pub fn check(&mut self, what: &str, r: &RawResponse, status: u16, code: &str) {
        assert_eq!(r.status, status, "{what}: status; body: {}", r.text());
        assert_eq!(r.error_code().as_deref(), Some(code), "{what}: code; body: {}", r.text());
        self.0.push((what.to_owned(), r.clone()));
    }

    /// Asserts the full error shape of every collected response.
    #[track_caller]
    pub fn finish(self) {
        let mut bad = Vec::new();
        for (what, r) in &self.0 {
            if let Err(e) = std::panic::catch_unwind(|| assert_error_shape(r)) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                bad.push(format!("{what}: {msg}"));
            }
        }
        assert!(bad.is_empty(), "error responses with a bad shape:\n{}", bad.join("\n"));
    }
}

/// Asserts that an error response has Message, Resource and RequestId and
/// that RequestId equals the x-amz-request-id header.
#[track_caller]
pub fn assert_error_shape(r: &RawResponse) {
    let body = r.text();
    let doc = roxmltree::Document::parse(&body).unwrap_or_else(|e| panic!("error body is not XML ({e}): {body:?}"));
    assert_eq!(doc.root_element().tag_name().name(), "Error", "root element; body: {body}");
    for f in ["Code", "Message", "Resource", "RequestId"] {
        assert!(doc.root_element().children().any(|c| c.tag_name().name() == f), "error XML lacks <{f}>: {body}");
    }
    let rid = xml_top(&body, "RequestId").unwrap_or_default();
    assert!(!rid.is_empty(), "empty RequestId: {body}");
    assert_eq!(r.header("x-amz-request-id"), Some(rid.as_str()), "x-amz-request-id header must equal <RequestId>");
}

/// Sends one HTTP/1.1 request (with `Connection: close`) and reads the full
/// response. `target` is sent verbatim, so it may contain `..`, `%2e` etc.
/// A `Host` header and `Content-Length` (for non-empty bodies, or PUT/POST)
/// are added unless given.
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut req = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("host") {
        req.extend_from_slice(format!("Host: {addr}\r\n").as_bytes());
    }
    if !has("content-length") && !has("transfer-encoding") && (!body.is_empty() || method == "PUT" || method == "POST")
    {
        req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    for (k, v) in headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    req.extend_from_slice(body);
    let fut = async {
        let mut s = TcpStream::connect(addr).await.expect("connect to S3 port");
        s.write_all(&req).await.expect("write request");
        let mut buf = Vec::new();
        // The server may close early (e.g. after an error); read what there is.
        let _ = s.read_to_end(&mut buf).await;
        buf
    };
    let buf = tokio::time::timeout(Duration::from_secs(60), fut).await.expect("raw request timed out");
    parse_response(&buf, method == "HEAD")
}

/// `body` for PUT/POST, nothing for other methods.
pub fn body_for<'a>(method: &str, body: &'a [u8]) -> &'a [u8] {
    if method == "PUT" || method == "POST" {
        body
    } else {
        b""
    }
}

/// Parses a complete HTTP/1.1 response (read until EOF).
pub fn parse_response(buf: &[u8], head: bool) -> RawResponse {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response head in {:?}", String::from_utf8_lossy(buf)));
    let head_text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let rest = &buf[end + 4..];
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if head {
        // Keep whatever followed the head: a HEAD response must have none.
        rest.to_vec()
    } else if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    RawResponse { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&data[..pos]).into_owned();
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        data = &data[pos + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

// ---------------------------------------------------------------------------
// XML helpers
// ---------------------------------------------------------------------------

/// Text of the first direct child `<tag>` of the root element.
pub fn xml_top(xml: &str, tag: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    doc.root_element().children().find(|c| c.tag_name().name() == tag).map(|c| c.text().unwrap_or("").to_owned())
}

/// For every direct child `<parent>` of the root, the text of its `<child>`.
pub fn xml_list(xml: &str, parent: &str, child: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML ({e}): {xml:?}"));
    doc.root_element()
        .children()
        .filter(|c| c.tag_name().name() == parent)
        .filter_map(|p| p.children().find(|c| c.tag_name().name() == child).map(|c| c.text().unwrap_or("").to_owned()))
        .collect()
}

/// Number of direct children `<tag>` of the root element.
pub fn xml_count(xml: &str, tag: &str) -> usize {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML ({e}): {xml:?}"));
    doc.root_element().children().filter(|c| c.tag_name().name() == tag).count()
}

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

/// AWS URI encoding (RFC 3986 unreserved kept). `/` kept when `keep_slash`.
pub fn aws_uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~') || (keep_slash && c == '/') {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` and `+` (as a space), like `unquote_plus`.
pub fn url_decode_plus(s: &str) -> String {
    let replaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&replaced).decode_utf8().expect("percent-decoded value is UTF-8").into_owned()
}

// ---------------------------------------------------------------------------
// SigV4
// ---------------------------------------------------------------------------

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("hmac key");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A minimal SigV4 signer for hand-built requests.
#[derive(Clone, Debug)]
pub struct SigV4 {
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

/// A request to sign.
#[derive(Clone, Copy, Debug)]
pub struct ToSign<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Host header value (`127.0.0.1:PORT`).
    pub host: &'a str,
    /// The encoded path exactly as sent.
    pub path: &'a str,
    /// Decoded (name, value) query pairs.
    pub query: &'a [(&'a str, &'a str)],
    /// Extra headers to sign (host, x-amz-date and x-amz-content-sha256 are added).
    pub headers: &'a [(&'a str, &'a str)],
    /// Value of x-amz-content-sha256.
    pub payload_hash: &'a str,
}

/// The parts of a signed request needed to continue a streaming signature.
#[derive(Clone, Debug)]
pub struct Signed {
    /// Headers to send (includes host, x-amz-date, x-amz-content-sha256, authorization).
    pub headers: Vec<(String, String)>,
    /// The request signature (seed for chunk signatures).
    pub signature: String,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// `YYYYMMDD/us-east-1/s3/aws4_request`.
    pub scope: String,
}

impl SigV4 {
    /// Signer with the given credentials.
    pub fn new(access_key: &str, secret_key: &str) -> SigV4 {
        SigV4 { access_key: access_key.to_owned(), secret_key: secret_key.to_owned() }
    }

    fn signing_key(&self, date: &str) -> Vec<u8> {
        let k = hmac(format!("AWS4{}", self.secret_key).as_bytes(), date.as_bytes());
        let k = hmac(&k, REGION.as_bytes());
        let k = hmac(&k, b"s3");
        hmac(&k, b"aws4_request")
    }

    /// Signs a request (see [`ToSign`]) as of `when`.
    pub fn sign(&self, req: &ToSign<'_>, when: time::OffsetDateTime) -> Signed {
        let ToSign { method, host, path, query, headers, payload_hash } = *req;
        let amz_date = amz_date(when);
        let date = &amz_date[..8];
        let scope = format!("{date}/{REGION}/s3/aws4_request");
        let mut hs: Vec<(String, String)> = vec![
            ("host".into(), host.into()),
            ("x-amz-date".into(), amz_date.clone()),
            ("x-amz-content-sha256".into(), payload_hash.into()),
        ];
        for (k, v) in headers {
            hs.push((k.to_ascii_lowercase(), v.trim().to_owned()));
        }
        hs.sort();
        let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed_headers = hs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
        let mut q: Vec<(String, String)> =
            query.iter().map(|(k, v)| (aws_uri_encode(k, false), aws_uri_encode(v, false))).collect();
        q.sort();
        let canonical_query = q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        let canonical =
            format!("{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
        let sts = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical.as_bytes()));
        let signature = hex::encode(hmac(&self.signing_key(date), sts.as_bytes()));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key
        );
        hs.push(("authorization".into(), auth));
        Signed { headers: hs, signature, amz_date, scope }
    }

    /// Builds an aws-chunked body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) with
    /// per-chunk signatures chained from `seed`.
    pub fn chunked_body(&self, signed: &Signed, data: &[u8], chunk_size: usize) -> Vec<u8> {
        let key = self.signing_key(&signed.amz_date[..8]);
        let empty_hash = sha256_hex(b"");
        let mut prev = signed.signature.clone();
        let mut out = Vec::new();
        let mut chunks: Vec<&[u8]> = data.chunks(chunk_size).collect();
        chunks.push(&[]);
        for c in chunks {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{empty_hash}\n{}",
                signed.amz_date,
                signed.scope,
                sha256_hex(c)
            );
            let sig = hex::encode(hmac(&key, sts.as_bytes()));
            out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
            prev = sig;
        }
        out
    }
}

/// `YYYYMMDDTHHMMSSZ` for a time.
pub fn amz_date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// An aws-chunked body with unsigned chunks and a trailer: `size\r\ndata\r\n...0\r\n<trailer>\r\n\r\n`.
pub fn unsigned_chunked_body(data: &[u8], chunk_size: usize, trailer: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(chunk_size) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    out.extend_from_slice(trailer.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2013() -> time::OffsetDateTime {
        time::macros::datetime!(2013-05-24 00:00:00 UTC)
    }

    /// The "GET Object" example of the AWS SigV4 (header auth) documentation.
    #[test]
    fn sigv4_matches_aws_documentation_example() {
        let signer = SigV4::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let signed = signer.sign(
            &ToSign {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: "/test.txt",
                query: &[],
                headers: &[("Range", "bytes=0-9")],
                payload_hash: &sha256_hex(b""),
            },
            t2013(),
        );
        assert_eq!(signed.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
        let auth = &signed.headers.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(auth.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"));
    }

    /// The chunked upload example of the AWS SigV4 streaming documentation.
    #[test]
    fn chunk_signatures_match_aws_documentation_example() {
        let signer = SigV4::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let signed = signer.sign(
            &ToSign {
                method: "PUT",
                host: "s3.amazonaws.com",
                path: "/examplebucket/chunkObject.txt",
                query: &[],
                headers: &[
                    ("content-encoding", "aws-chunked"),
                    ("content-length", "66824"),
                    ("x-amz-decoded-content-length", "66560"),
                    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ],
                payload_hash: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            },
            t2013(),
        );
        assert_eq!(signed.signature, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
        let body = signer.chunked_body(&signed, &[b'a'; 66560], 65536);
        assert_eq!(body.len(), 66824);
        let text = String::from_utf8_lossy(&body);
        for sig in [
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ] {
            assert!(text.contains(&format!("chunk-signature={sig}")), "{sig}");
        }
    }

    #[test]
    fn raw_response_parsing() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Amz-Request-Id: abc\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            false,
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-amz-request-id"), Some("abc"));
        assert_eq!(r.body, b"abcde");
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\n", true);
        assert_eq!(r.status, 404);
        assert!(r.body.is_empty());
    }

    #[test]
    fn checksum_check_values() {
        // The standard "123456789" check values of each CRC.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc64nvme(b"123456789"), 0xAE8B_1486_0A79_9888);
        assert_eq!(Alg::Crc32.raw(b"123456789"), 0xCBF4_3926u32.to_be_bytes());
        assert_eq!(hex::encode(Alg::Sha1.raw(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(Alg::Crc32.b64(b"hello world"), crc32_b64(b"hello world"));
        let parts: [&[u8]; 2] = [b"ab", b"cd"];
        let mut joined = crc32fast::hash(b"ab").to_be_bytes().to_vec();
        joined.extend_from_slice(&crc32fast::hash(b"cd").to_be_bytes());
        assert_eq!(Alg::Crc32.composite(&parts), format!("{}-2", crc32_b64(&joined)));
        assert_eq!(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
        let mut m = Md5::new();
        m.update(Md5::digest(b"ab"));
        m.update(Md5::digest(b"cd"));
        assert_eq!(multipart_etag(&parts), format!("\"{}-2\"", hex::encode(m.finalize())));
    }

    #[test]
    fn helpers() {
        assert_eq!(etag_of(b""), "\"d41d8cd98f00b204e9800998ecf8427e\"");
        assert_eq!(crc32_b64(b"hello world"), "DUoRhQ==");
        assert_eq!(url_decode_plus("a+b%2Bc%20d"), "a b+c d");
        assert_eq!(aws_uri_encode("a b/ü+", false), "a%20b%2F%C3%BC%2B");
        assert_eq!(aws_uri_encode("a b/c", true), "a%20b/c");
        assert_eq!(pseudo_random_bytes(3, 100), pseudo_random_bytes(3, 100));
        assert_ne!(pseudo_random_bytes(3, 100), pseudo_random_bytes(4, 100));
        assert_eq!(amz_date(t2013()), "20130524T000000Z");
    }
}
