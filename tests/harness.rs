//! Test harness for the Alcove end-to-end tests.
//!
//! Starts a real `alcove serve` worker process on free 127.0.0.1 ports with a
//! fresh temporary root, waits for `/readyz`, and stops it by pid (SIGTERM,
//! then SIGKILL after 10 s) when dropped (`Server::start_with_bucket` also
//! creates a bucket). It also offers an `aws-sdk-s3` client bound to the
//! worker, and, in its modules (all re-exported here):
//!
//! - `sdk`: steps through that client, so a test reads as the behaviour it
//!   checks: `or_panic` and `assert_sdk_err` on results, requests to add
//!   headers to (`put_request`, `create_upload_request`), whole-object reads
//!   and writes, checksum-mode reads, tag sets, listings, and `Upload` for
//!   every step of a multipart upload;
//! - `raw`: a raw HTTP/1.1 client for requests that normal clients refuse to
//!   send (path escapes, malformed bodies), error-shape checks and XML helpers;
//! - `sigv4`: a small SigV4 signer for hand-built signed requests;
//! - `checksums`: the five S3 checksum algorithms;
//! - `cluster`: several workers forming one cluster over a shared remote;
//! - `etcd`: a real etcd server on loopback ports;
//! - `tls`: a CA and server certificates made at test time, HTTPS clients trusting them, and
//!   raw TLS connections (the certificate a port presents, a kept-alive connection);
//! - `data`: hashes, deterministic test bytes, folder snapshots, HTTP dates
//!   and URL encodings.
//!
//! The binary comes from `ALCOVE_BIN`, else `$CARGO_TARGET_DIR/debug/alcove`
//! with `CARGO_TARGET_DIR` defaulting to `/var/tmp/alcove-target`.

use std::fs::{self, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::Client;
use tempfile::TempDir;

pub use aws_sdk_s3;

#[path = "harness/checksums.rs"]
mod checksums;
#[path = "harness/cluster.rs"]
mod cluster;
#[path = "harness/data.rs"]
mod data;
#[path = "harness/etcd.rs"]
mod etcd;
#[path = "harness/raw.rs"]
mod raw;
#[path = "harness/sdk.rs"]
mod sdk;
#[path = "harness/sigv4.rs"]
mod sigv4;
#[path = "harness/tls.rs"]
mod tls;

pub use checksums::*;
pub use cluster::*;
pub use data::*;
pub use etcd::*;
pub use raw::*;
pub use sdk::*;
pub use sigv4::*;
pub use tls::*;

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
    /// The HTTPS port (`--https-addr`), for workers started with a certificate.
    pub https_addr: Option<SocketAddr>,
    /// Bind the admin port on every address (`0.0.0.0`), not loopback; `admin_addr` stays the
    /// loopback address the tests reach it at.
    admin_wide: bool,
    child: Option<Child>,
}

/// A `[ufs]` section allowing `file://` mounts of `dirs` (TOML, for a worker's config file).
pub fn local_roots_config(dirs: &[&Path]) -> String {
    let quoted: Vec<String> = dirs
        .iter()
        .map(|d| format!("\"{}\"", d.display().to_string().replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("[ufs]\nlocal_roots = [{}]\n", quoted.join(", "))
}

impl Server {
    /// Starts a worker with no config file (embedded defaults: simple auth,
    /// anonymous allowed, access log for failed requests only).
    pub async fn start() -> Server {
        Self::start_inner(None, None).await
    }

    /// Starts a worker with the given TOML written to a config file.
    pub async fn start_with_config(toml: &str) -> Server {
        Self::start_inner(Some(toml), None).await
    }

    /// Starts a worker with the given config on chosen ports: S3, admin, peer (a cluster's
    /// config names every worker's ports before any starts).
    pub async fn start_at(toml: &str, ports: [u16; 3]) -> Server {
        Self::start_inner(Some(toml), Some(ports)).await
    }

    /// Starts a worker with no config file and one bucket, `bucket`.
    pub async fn start_with_bucket(bucket: &str) -> Server {
        let server = Self::start().await;
        server.create_bucket(bucket).await;
        server
    }

    /// Starts a worker with the given config whose admin port listens on `0.0.0.0`.
    pub async fn start_admin_wide(toml: &str) -> Server {
        Self::start_full(Some(toml), None, false, true).await
    }

    /// Starts a worker with the given config (which holds a `[tls]` section) and an HTTPS port of
    /// its own (`--https-addr`), besides the HTTP one.
    pub async fn start_https(toml: &str) -> Server {
        Self::start_full(Some(toml), None, true, false).await
    }

    /// [`Self::start_at`] with an HTTPS port of its own as well.
    pub async fn start_at_https(toml: &str, ports: [u16; 3]) -> Server {
        Self::start_full(Some(toml), Some(ports), true, false).await
    }

    async fn start_inner(toml: Option<&str>, ports: Option<[u16; 3]>) -> Server {
        Self::start_full(toml, ports, false, false).await
    }

    async fn start_full(toml: Option<&str>, ports: Option<[u16; 3]>, https: bool, admin_wide: bool) -> Server {
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
        let ports = ports.map_or_else(|| free_ports(3), Vec::from);
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let mut server = Server {
            work,
            root,
            config_path,
            log_path,
            s3_addr: addr(ports[0]),
            admin_addr: addr(ports[1]),
            peer_addr: addr(ports[2]),
            https_addr: https.then(|| addr(free_ports(1)[0])),
            admin_wide,
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
            .arg(if self.admin_wide {
                SocketAddr::from(([0, 0, 0, 0], self.admin_addr.port())).to_string()
            } else {
                self.admin_addr.to_string()
            })
            .arg("--peer-addr")
            .arg(self.peer_addr.to_string());
        if let Some(addr) = self.https_addr {
            cmd.arg("--https-addr").arg(addr.to_string());
        }
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

    /// Kills the worker with SIGKILL (no chance to finish anything) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped or killed worker again on the same root, config and ports.
    pub async fn start_again(&mut self) {
        self.spawn_retrying().await;
    }

    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`) to the worker.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({signal}) failed");
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

    /// `http://127.0.0.1:PORT` of the S3 API.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.s3_addr)
    }

    /// `https://127.0.0.1:PORT` of the S3 API's HTTPS port.
    pub fn https_endpoint(&self) -> String {
        format!("https://{}", self.https_addr.expect("a worker started with an HTTPS port"))
    }

    /// An S3 client of the HTTPS port trusting `pki`'s CA, with the given credentials (SDK
    /// defaults otherwise: over HTTPS, uploads are aws-chunked with an unsigned checksum trailer).
    pub fn https_client_with(&self, pki: &TestPki, access_key: &str, secret_key: &str) -> Client {
        Client::from_conf(self.https_config_builder(pki, access_key, secret_key).build())
    }

    /// [`Self::config_builder`] for the HTTPS port, trusting `pki`'s CA.
    pub fn https_config_builder(
        &self,
        pki: &TestPki,
        access_key: &str,
        secret_key: &str,
    ) -> aws_sdk_s3::config::Builder {
        self.config_builder(access_key, secret_key)
            .endpoint_url(self.https_endpoint())
            .http_client(pki.sdk_http_client())
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
        self.client().create_bucket().bucket(name).send().await.or_panic(&format!("create bucket {name}"));
    }

    /// Sends a raw HTTP/1.1 request to the S3 port.
    pub async fn raw(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
        raw_request(self.s3_addr, method, target, headers, body).await
    }

    /// A raw request whose body is framed only as `headers` say (see [`raw_request_unframed`]).
    pub async fn raw_unframed(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
        raw_request_unframed(self.s3_addr, method, target, headers, body).await
    }

    /// The sum of the worker's `/metrics` samples whose series starts with `series` (a name, or
    /// a name with labels: `alcove_s3_cache_pages{tier="memory"}`; counters end in `_total`).
    pub async fn metric(&self, series: &str) -> f64 {
        let url = format!("{}/metrics", self.admin_url());
        let text = http_client().get(url).send().await.expect("GET /metrics").text().await.expect("metrics text");
        text.lines()
            .filter(|l| l.starts_with(series))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum()
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

#[cfg(test)]
mod tests {
    use md5::{Digest as _, Md5};

    use super::*;

    fn t2013() -> time::OffsetDateTime {
        time::macros::datetime!(2013-05-24 00:00:00 UTC)
    }

    /// Signs one of the AWS SigV4 documentation's example requests (no query)
    /// with its example credentials, as of its date.
    fn sign_documented(
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        payload_hash: &str,
    ) -> (SigV4, Signed) {
        let signer = SigV4::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let signed = signer.sign(&ToSign { method, host, path, query: &[], headers, payload_hash }, t2013());
        (signer, signed)
    }

    /// The "GET Object" example of the AWS SigV4 (header auth) documentation.
    #[test]
    fn sigv4_matches_aws_documentation_example() {
        let range = [("Range", "bytes=0-9")];
        let (_, signed) =
            sign_documented("GET", "examplebucket.s3.amazonaws.com", "/test.txt", &range, &sha256_hex(b""));
        assert_eq!(signed.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
        let auth = &signed.headers.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(auth.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"));
    }

    /// The chunked upload example of the AWS SigV4 streaming documentation.
    #[test]
    fn chunk_signatures_match_aws_documentation_example() {
        let headers = [
            ("content-encoding", "aws-chunked"),
            ("content-length", "66824"),
            ("x-amz-decoded-content-length", "66560"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ];
        let payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
        let (signer, signed) =
            sign_documented("PUT", "s3.amazonaws.com", "/examplebucket/chunkObject.txt", &headers, payload_hash);
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
