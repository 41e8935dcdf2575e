//! HTTPS on the S3 port (rustls) with certificates made at test time: aws-sdk-s3 over HTTPS in
//! simple and sigv4 mode (uploads the SDK sends aws-chunked with an unsigned checksum trailer,
//! multipart uploads), the plain-HTTP port beside it and `s3.https_only` refusing it, start-up
//! errors for HTTPS without a usable certificate, SIGHUP reloading the certificate while a
//! kept-alive connection goes on, and a two-worker cluster whose peers speak TLS.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alcove_cluster::{ClusterSecret, Member, PeerClient, HEALTH_PATH};
use alcove_tests::aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use alcove_tests::aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use alcove_tests::aws_sdk_s3::error::BoxError;
use alcove_tests::aws_sdk_s3::primitives::{ByteStream, Length};
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The headers of each request an SDK client sent: (method, x-amz-content-sha256,
/// content-encoding, x-amz-trailer).
#[derive(Debug, Default, Clone)]
struct SentHeaders(Arc<Mutex<Vec<[Option<String>; 4]>>>);

impl Intercept for SentHeaders {
    fn name(&self) -> &'static str {
        "SentHeaders"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request();
        let header = |name: &str| req.headers().get(name).map(str::to_owned);
        let sent = [
            Some(req.method().to_owned()),
            header("x-amz-content-sha256"),
            header("content-encoding"),
            header("x-amz-trailer"),
        ];
        self.0.lock().expect("sent headers").push(sent);
        Ok(())
    }
}

impl SentHeaders {
    /// The headers of the PUT requests sent so far.
    fn puts(&self) -> Vec<[Option<String>; 4]> {
        self.0.lock().expect("sent headers").iter().filter(|h| h[0].as_deref() == Some("PUT")).cloned().collect()
    }
}

fn sigv4_config() -> String {
    format!(
        "[auth]\nmode = \"sigv4\"\nallow_anonymous = false\n[[auth.credentials]]\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n"
    )
}

/// A body read from `len` bytes of a file at `offset`: a stream, which the SDK sends
/// aws-chunked with its checksum in a trailer (an in-memory body gets a checksum header instead).
async fn file_body(path: &Path, offset: u64, len: u64) -> ByteStream {
    ByteStream::read_from().path(path).offset(offset).length(Length::Exact(len)).build().await.expect("file body")
}

/// Checks that a PUT went up aws-chunked with an unsigned CRC32 trailer, as SDKs send over TLS.
fn assert_unsigned_trailer(put: &[Option<String>; 4]) {
    assert_eq!(put[1].as_deref(), Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"), "what the SDK sends over TLS: {put:?}");
    assert!(put[2].as_deref().is_some_and(|e| e.contains("aws-chunked")), "{put:?}");
    assert_eq!(put[3].as_deref(), Some("x-amz-checksum-crc32"), "{put:?}");
}

/// Uploads through `client` (whose requests `sent` records) over HTTPS and checks what the SDK
/// sent and what the worker stored: a streamed PUT and the parts of a multipart upload, each
/// aws-chunked with an unsigned CRC32 trailer, and a PUT from memory (a checksum header).
async fn uploads_over_https(server: &Server, client: &Client, sent: &SentHeaders, bucket: &str) {
    let data = pseudo_random_bytes(7, 300_000);
    let path = server.work_dir().join(format!("{bucket}-upload.bin"));
    std::fs::write(&path, &data).unwrap();
    let put = client.put_object().bucket(bucket).key("dir/one.bin").body(file_body(&path, 0, 300_000).await);
    put.send().await.or_panic("streamed PUT over HTTPS");
    assert_unsigned_trailer(&sent.puts().pop().expect("a PUT was sent"));
    let stored = std::fs::read(server.bucket_dir(bucket).join("dir/one.bin")).expect("the object's file");
    assert!(stored == data, "the file holds the object's bytes, without the aws-chunked framing");
    let head = head_with_checksums(client, bucket, "dir/one.bin").await;
    assert_eq!(head.checksum_crc32(), Some(crc32_b64(&data).as_str()), "the trailer's checksum is stored");
    assert!(get_bytes(client, bucket, "dir/one.bin").await == data);

    let big = pseudo_random_bytes(8, MIB5 + 70_000);
    std::fs::write(&path, &big).unwrap();
    let upload = Upload::create(client, bucket, "big.bin").await;
    let mut done = Vec::new();
    for (n, offset, len) in [(1, 0, MIB5), (2, MIB5, 70_000)] {
        let body = file_body(&path, offset as u64, len as u64).await;
        let part = client.upload_part().bucket(bucket).key("big.bin").upload_id(&upload.id).part_number(n);
        let out = part.body(body).send().await.or_panic("UploadPart over HTTPS");
        assert_unsigned_trailer(&sent.puts().pop().expect("the part's PUT"));
        assert_eq!(out.e_tag(), Some(etag_of(&big[offset..offset + len]).as_str()));
        done.push((n, out.e_tag().unwrap_or_default().to_owned()));
    }
    let etag = upload.complete(&done).await.e_tag().expect("ETag").to_owned();
    assert_eq!(etag, multipart_etag(&[&big[..MIB5], &big[MIB5..]]));
    assert!(get_bytes(client, bucket, "big.bin").await == big);

    put_bytes(client, bucket, "small.txt", b"from memory").await;
    let put = sent.puts().pop().expect("a PUT was sent");
    assert_eq!(put[1].as_deref(), Some(sha256_hex(b"from memory").as_str()), "{put:?}");
    assert_eq!(get_bytes(client, bucket, "small.txt").await, b"from memory");
}

#[tokio::test]
async fn sdk_over_https_in_simple_mode_beside_plain_http() {
    let pki = TestPki::new();
    let server = Server::start_https(&pki.toml()).await;
    let https_addr = server.https_addr.expect("https port");
    let sent = SentHeaders::default();
    let client = Client::from_conf(
        server.https_config_builder(&pki, "AKIDANYTHING", "any-secret").interceptor(sent.clone()).build(),
    );
    client.create_bucket().bucket("secure").send().await.or_panic("CreateBucket over HTTPS");
    uploads_over_https(&server, &client, &sent, "secure").await;

    // The plain-HTTP port stays open and serves the same buckets.
    let plain = server.client();
    assert_eq!(get_bytes(&plain, "secure", "dir/one.bin").await, get_bytes(&client, "secure", "dir/one.bin").await);
    put_bytes(&plain, "secure", "plain.txt", b"over http").await;
    assert_eq!(get_bytes(&client, "secure", "plain.txt").await, b"over http");

    // The ready line and the status name the HTTPS port.
    assert!(server.log().contains(&format!("https={https_addr} ")), "{}", server.log());
    let status = http_client().get(format!("{}/status", server.admin_url())).send().await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&status.text().await.unwrap()).unwrap();
    assert_eq!(status["s3_https_addr"], https_addr.to_string());
    assert_eq!(status["https_only"], false);
    let out = server.cli(&["status", "--admin", &server.admin_url()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("https    {https_addr}\n")), "{text}");
}

#[tokio::test]
async fn sdk_over_https_with_sigv4() {
    let pki = TestPki::new();
    let server = Server::start_https(&format!("{}{}", pki.toml(), sigv4_config())).await;
    let sent = SentHeaders::default();
    let client =
        Client::from_conf(server.https_config_builder(&pki, ACCESS_KEY, SECRET_KEY).interceptor(sent.clone()).build());
    client.create_bucket().bucket("signed").send().await.or_panic("CreateBucket over HTTPS");
    uploads_over_https(&server, &client, &sent, "signed").await;

    let wrong = server.https_client_with(&pki, ACCESS_KEY, "not-the-secret");
    let r = wrong.put_object().bucket("signed").key("x").body(b"x".to_vec().into()).send().await;
    assert_sdk_err(r, 403, "SignatureDoesNotMatch");
    let r = wrong.get_object().bucket("signed").key("dir/one.bin").send().await;
    assert_sdk_err(r, 403, "SignatureDoesNotMatch");
    assert!(!server.bucket_dir("signed").join("x").exists());
}

#[tokio::test]
async fn https_only_refuses_plain_http_s3_requests() {
    let pki = TestPki::new();
    let server = Server::start_https(&format!("[s3]\nhttps_only = true\naccess_log = true\n{}", pki.toml())).await;
    let https_port = server.https_addr.expect("https port").port();
    let client = server.https_client_with(&pki, "AKIDANYTHING", "any-secret");
    client.create_bucket().bucket("only").send().await.or_panic("CreateBucket over HTTPS");
    put_bytes(&client, "only", "k", b"secret").await;

    let plain = server.client();
    assert_sdk_err(plain.get_object().bucket("only").key("k").send().await, 403, "AccessDenied");
    assert_sdk_err(plain.list_objects_v2().bucket("only").send().await, 403, "AccessDenied");
    assert_sdk_err(plain.list_buckets().send().await, 403, "AccessDenied");

    let r = server.raw("GET", "/only/k", &[], b"").await;
    r.assert_error(403, "AccessDenied");
    let https_url = format!("https://127.0.0.1:{https_port}");
    assert!(r.text().contains(&https_url) && r.text().contains("HTTPS"), "{}", r.text());
    assert!(!r.text().contains("secret"));
    let r = server.raw("PUT", "/only/new", &[], b"data").await;
    r.assert_error(403, "AccessDenied");
    let r = server.raw("DELETE", "/only/k", &[], b"").await;
    r.assert_error(403, "AccessDenied");
    assert!(!server.bucket_dir("only").join("new").exists(), "a refused PUT writes nothing");
    assert_eq!(get_bytes(&client, "only", "k").await, b"secret", "a refused DELETE deletes nothing");
    let r = server.raw("HEAD", "/only/k", &[], b"").await;
    assert_eq!((r.status, r.body.len()), (403, 0));
    assert!(
        server.access_log_lines().iter().any(|l| l.contains("method=PUT") && l.contains("status=403")),
        "refusals are logged"
    );

    // Health, metrics and status stay on the admin port.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let resp = http_client().get(format!("{}{path}", server.admin_url())).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
    let out = server.cli(&["status", "--admin", &server.admin_url()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(https only: plain-HTTP S3 requests are refused)"), "{text}");
}

/// Runs `alcove serve` with `args` (and a config file holding `config`), which must exit with
/// an error within 20 s; returns what it wrote to stderr.
fn serve_fails(config: Option<&str>, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(3);
    let mut cmd = Command::new(alcove_bin());
    cmd.arg("serve").arg("--root").arg(dir.path());
    for (flag, port) in [("--s3-addr", ports[0]), ("--admin-addr", ports[1]), ("--peer-addr", ports[2])] {
        cmd.arg(flag).arg(format!("127.0.0.1:{port}"));
    }
    if let Some(config) = config {
        let path = dir.path().join("alcove.toml");
        std::fs::write(&path, config).unwrap();
        cmd.arg("--config").arg(path);
    }
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ALCOVE_") {
            cmd.env_remove(&k);
        }
    }
    let mut child = cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            assert!(!status.success(), "started: {stderr}");
            return stderr;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("alcove serve {args:?} did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn https_without_a_usable_certificate_does_not_start() {
    let https = format!("127.0.0.1:{}", free_ports(1)[0]);
    let e = serve_fails(None, &["--https-addr", &https]);
    assert!(e.contains("needs a certificate") && e.contains("[tls] cert and key"), "{e}");
    let e = serve_fails(Some("[s3]\nhttps_only = true\n"), &[]);
    assert!(e.contains("s3.https_only") && e.contains("[tls]"), "{e}");
    let e = serve_fails(Some("[peer]\ntls = true\n"), &[]);
    assert!(e.contains("peer.tls"), "{e}");

    let pki = TestPki::new();
    let missing = pki.dir().join("missing.pem");
    let config =
        format!("[tls]\ncert = {:?}\nkey = {:?}\n", missing.display().to_string(), pki.key_path.display().to_string());
    let e = serve_fails(Some(&config), &["--https-addr", &https]);
    assert!(e.contains("missing.pem") && e.contains("certificate"), "{e}");

    let other = pki.issue(2);
    let other_key = pki.dir().join("other-key.pem");
    std::fs::write(&other_key, &other.key_pem).unwrap();
    let config = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n",
        pki.cert_path.display().to_string(),
        other_key.display().to_string()
    );
    let e = serve_fails(Some(&config), &["--https-addr", &https]);
    assert!(e.contains("does not belong to the certificate"), "{e}");

    let garbage = pki.dir().join("garbage.pem");
    std::fs::write(&garbage, "not PEM at all").unwrap();
    let config =
        format!("[tls]\ncert = {:?}\nkey = {:?}\n", garbage.display().to_string(), pki.key_path.display().to_string());
    let e = serve_fails(Some(&config), &["--https-addr", &https]);
    assert!(e.contains("no PEM certificate"), "{e}");
}

/// Sends SIGHUP and waits for the worker's log to say `what` once more than before.
async fn sighup(server: &Server, what: &str) {
    let before = server.log().matches(what).count();
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.log().matches(what).count() == before {
        assert!(Instant::now() < deadline, "no \"{what}\" after SIGHUP; log:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let mut pki = TestPki::new();
    let mut server = Server::start_https(&pki.toml()).await;
    let https = server.https_addr.expect("https port");
    let client = server.https_client_with(&pki, "AKIDANYTHING", "any-secret");
    client.create_bucket().bucket("reload").send().await.or_panic("CreateBucket");
    put_bytes(&client, "reload", "k", b"kept").await;
    let first = pki.current.clone();

    let mut open = pki.keep_alive(https).await;
    assert_eq!(open.presented, first);
    assert_eq!(open.get("/reload/k").await.unwrap(), (200, b"kept".to_vec()));

    let second = pki.issue(2);
    pki.install(&second);
    sighup(&server, "reloaded the TLS certificate").await;
    assert_eq!(open.get("/reload/k").await.unwrap(), (200, b"kept".to_vec()), "the open connection goes on");
    assert!(!open.is_closed());
    assert_eq!(pki.presented(https).await, second.der, "a new connection gets the new certificate (serial 2)");
    assert_ne!(second.der, first);
    assert_eq!(get_bytes(&client, "reload", "k").await, b"kept", "the SDK reconnects and trusts it (same CA)");

    // A reload that fails keeps the current certificate: a certificate without its key, then
    // files that are not PEM.
    let third = pki.issue(3);
    std::fs::write(&pki.cert_path, &third.cert_pem).unwrap();
    sighup(&server, "was not reloaded").await;
    assert!(server.log().contains("does not belong to the certificate"), "{}", server.log());
    assert_eq!(pki.presented(https).await, second.der);
    std::fs::write(&pki.cert_path, "garbage").unwrap();
    sighup(&server, "was not reloaded").await;
    assert_eq!(pki.presented(https).await, second.der);
    assert_eq!(open.get("/reload/k").await.unwrap(), (200, b"kept".to_vec()));
    assert!(server.is_running(), "a failed reload does not stop the worker");

    pki.install(&third);
    sighup(&server, "reloaded the TLS certificate").await;
    assert_eq!(pki.presented(https).await, third.der);
    assert_eq!(open.get("/reload/k").await.unwrap(), (200, b"kept".to_vec()), "still the same connection");

    // The worker restarts with the certificate in the files.
    server.restart().await;
    assert_eq!(pki.presented(https).await, third.der);
}

#[tokio::test]
async fn sighup_without_tls_is_harmless() {
    let mut server = Server::start_with_bucket("plain").await;
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("no [tls] certificate to reload") {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.is_running());
    put_bytes(&server.client(), "plain", "k", b"v").await;
}

#[tokio::test]
async fn peers_speak_tls_with_the_same_certificate() {
    let pki = TestPki::new();
    let extra = format!("{}[peer]\ntls = true\n", pki.toml());
    let cluster = TestCluster::start(2, ClusterSetup { extra: &extra, https: true, ..Default::default() }).await;

    // Every key through either worker, each served by its one owner over the TLS peer link.
    let keys: Vec<String> = (0..16).map(|i| format!("tls/k{i:02}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let body = pseudo_random_bytes(i as u64, 20_000 + i);
        put_bytes(&cluster.worker(i % 2).client(), SHARED, key, &body).await;
        for w in &cluster.workers {
            assert!(get_bytes(&w.client(), SHARED, key).await == body, "{key}");
        }
        let writers = cluster.served_by("PUT", key);
        assert_eq!(writers.len(), 1, "{key}: {writers:?}");
        assert_eq!(cluster.served_by("GET", key), writers);
    }
    let mut forwarded = 0.0;
    for w in &cluster.workers {
        forwarded += w.metric("alcove_s3_cluster_forwarded_total").await;
    }
    assert!(forwarded >= 16.0, "half the requests landed on a non-owner and were forwarded: {forwarded}");
    // HTTPS reaches the cluster too.
    let over_https = cluster.worker(1).https_client_with(&pki, "AKIDANYTHING", "any-secret");
    assert!(get_bytes(&over_https, SHARED, &keys[0]).await == pseudo_random_bytes(0, 20_000));

    // The peer port presents the certificate and answers nothing in plain text.
    let w1 = cluster.worker(0);
    assert_eq!(pki.presented(w1.peer_addr).await, pki.current);
    let mut tcp = tokio::net::TcpStream::connect(w1.peer_addr).await.unwrap();
    tcp.write_all(format!("GET {HEALTH_PATH} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"HTTP/"), "plain HTTP on a TLS peer port: {:?}", String::from_utf8_lossy(&answer));

    // A peer that trusts the CA gets in; one that trusts another CA, or speaks plain HTTP, does not.
    let member = Member { id: "w1".into(), s3: w1.endpoint(), peer: w1.peer_addr.to_string() };
    let secret = || ClusterSecret::new(CLUSTER_SECRET);
    let call = |client: PeerClient| {
        let member = member.clone();
        async move {
            client.call(&member, http::Method::GET, HEALTH_PATH, bytes::Bytes::new(), Duration::from_secs(5)).await
        }
    };
    call(PeerClient::new(secret(), "probe", Some(pki.client_config()))).await.expect("a peer trusting the CA");
    let stranger = TestPki::named("another test CA");
    let e = call(PeerClient::new(secret(), "probe", Some(stranger.client_config()))).await.unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    assert!(call(PeerClient::new(secret(), "probe", None)).await.is_err(), "plain HTTP to a TLS peer port");
}
