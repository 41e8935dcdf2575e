//! Process lifecycle: data and ETags survive a restart, SIGTERM lets an
//! in-flight GET finish, and the access log.

use std::time::{Duration, Instant};

use alcove_tests::*;
use md5::{Digest as _, Md5};

const B: &str = "life";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_and_etags_survive_restart() {
    let mut server = Server::start_with_bucket(B).await;
    let client = server.client();
    let mut objs = Vec::new();
    for i in 0..5u64 {
        let data = pseudo_random_bytes(i, 10_000 * (i as usize + 1));
        let key = format!("p/{i}");
        let etag = put_bytes(&client, B, &key, &data).await;
        let lm = client.head_object().bucket(B).key(&key).send().await.unwrap().last_modified().unwrap().secs();
        objs.push((key, data, etag, lm));
    }
    let pid = server.pid();
    server.restart().await;
    assert_ne!(server.pid(), pid, "a new process");
    let client = server.client();
    for (key, data, etag, lm) in &objs {
        let h = client.head_object().bucket(B).key(key).send().await.unwrap();
        assert_eq!(h.e_tag(), Some(etag.as_str()), "ETag of {key} stable across restart");
        assert_eq!(h.last_modified().unwrap().secs(), *lm, "Last-Modified of {key} stable");
        assert_eq!(&get_bytes(&client, B, key).await, data);
    }
    assert_eq!(list_all_keys(&client, B, "").await, vec!["p/0", "p/1", "p/2", "p/3", "p/4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_get_finish() {
    const SIZE: usize = 64 << 20;
    let mut server = Server::start_with_bucket(B).await;
    let path = server.bucket_dir(B).join("big");
    let md5 = write_random_file(&path, 4242, SIZE);

    let http = http_client();
    let url = format!("{}/{B}/big", server.endpoint());
    let mut resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut hasher = Md5::new();
    let mut total = 0usize;
    // Read a little, so the response is certainly in flight.
    let first = resp.chunk().await.unwrap().expect("first chunk");
    hasher.update(&first);
    total += first.len();
    assert!(total < SIZE);

    let t0 = Instant::now();
    server.sigterm();
    // Stall a moment so the server reaches its shutdown path while the body
    // is still far from sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Some(c) = resp.chunk().await.expect("body continues after SIGTERM") {
        hasher.update(&c);
        total += c.len();
    }
    assert_eq!(total, SIZE, "the in-flight GET got the whole object");
    assert_eq!(hex::encode(hasher.finalize()), md5);

    // And then the worker exits by itself, cleanly, within the grace period.
    let status = server.wait_exit(Duration::from_secs(10)).expect("worker exits after SIGTERM once the GET is done");
    assert!(status.success(), "clean exit after SIGTERM: {status}");
    assert!(t0.elapsed() < Duration::from_secs(15));

    // New connections are refused now.
    assert!(tokio::net::TcpStream::connect(server.s3_addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_idle_worker_exits_promptly() {
    let mut server = Server::start_with_bucket(B).await;
    let t0 = Instant::now();
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(10)).expect("exits within 10 s");
    assert!(status.success(), "{status}");
    assert!(t0.elapsed() < Duration::from_secs(5), "idle shutdown took {:?}", t0.elapsed());
    // Restart on the same root works and the bucket is still there.
    server.restart().await;
    server.client().head_bucket().bucket(B).send().await.unwrap();
}

/// Finds the access line that mentions this request id.
fn line_for(lines: &[String], request_id: &str) -> String {
    let found: Vec<&String> = lines.iter().filter(|l| l.contains(request_id)).collect();
    assert_eq!(found.len(), 1, "exactly one access line for {request_id}: {lines:#?}");
    found[0].clone()
}

fn assert_line(line: &str, method: &str, bucket: &str, key: &str, status: u16) {
    assert!(has_token(line, "access"), "{line}");
    assert!(has_token(line, method), "method {method} in {line}");
    assert!(has_token(line, bucket), "bucket {bucket} in {line}");
    assert!(line.contains(key), "key {key} in {line}");
    assert!(has_token(line, &status.to_string()), "status {status} in {line}");
}

async fn wait_for_log(server: &Server, ids: &[String]) -> Vec<String> {
    for _ in 0..50 {
        let lines = server.access_log_lines();
        if ids.iter().all(|id| lines.iter().any(|l| l.contains(id.as_str()))) {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.access_log_lines()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_every_request() {
    let server = Server::start_with_config("[s3]\naccess_log = true\n").await;
    server.create_bucket("logb").await;
    let mut reqs = Vec::new();
    for (method, key, status) in [
        ("PUT", "dir/logged-object", 200u16),
        ("GET", "dir/logged-object", 200),
        ("HEAD", "dir/logged-object", 200),
        ("GET", "dir/absent-object", 404),
        ("DELETE", "dir/logged-object", 204),
    ] {
        let r = server.raw(method, &format!("/logb/{key}"), &[], body_for(method, b"payload")).await;
        assert_eq!(r.status, status, "{method} {key}");
        let id = r.header("x-amz-request-id").expect("request id").to_owned();
        reqs.push((method, key, status, id));
    }
    let ids: Vec<String> = reqs.iter().map(|r| r.3.clone()).collect();
    let lines = wait_for_log(&server, &ids).await;
    for (method, key, status, id) in &reqs {
        let line = line_for(&lines, id);
        assert_line(&line, method, "logb", key, *status);
    }
    // Bucket-level requests are logged as well.
    let r = server.raw("GET", "/logb?list-type=2", &[], b"").await;
    let id = r.header("x-amz-request-id").unwrap().to_owned();
    let lines = wait_for_log(&server, std::slice::from_ref(&id)).await;
    let line = line_for(&lines, &id);
    assert!(has_token(&line, "GET") && has_token(&line, "logb") && has_token(&line, "200"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_lines_start_with_access() {
    let server = Server::start_with_config("[s3]\naccess_log = true\n").await;
    let r = server.raw("GET", "/format-check-bucket/some-key", &[], b"").await;
    assert_eq!(r.status, 404);
    let id = r.header("x-amz-request-id").unwrap().to_owned();
    let lines = wait_for_log(&server, std::slice::from_ref(&id)).await;
    let line = line_for(&lines, &id);
    assert!(line.starts_with("access "), "access log lines start with \"access \" (contract): {line:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_failed_requests_only_by_default() {
    let server = Server::start_with_bucket("quiet").await;
    let ok = server.raw("PUT", "/quiet/fine-object", &[], b"data").await;
    assert_eq!(ok.status, 200);
    let ok_get = server.raw("GET", "/quiet/fine-object", &[], b"").await;
    assert_eq!(ok_get.status, 200);
    let miss = server.raw("GET", "/quiet/missing-object", &[], b"").await;
    assert_eq!(miss.status, 404);
    let nob = server.raw("GET", "/no-such-bucket-here/k", &[], b"").await;
    assert_eq!(nob.status, 404);
    let miss_id = miss.header("x-amz-request-id").unwrap().to_owned();
    let nob_id = nob.header("x-amz-request-id").unwrap().to_owned();
    let lines = wait_for_log(&server, &[miss_id.clone(), nob_id.clone()]).await;
    assert_line(&line_for(&lines, &miss_id), "GET", "quiet", "missing-object", 404);
    assert_line(&line_for(&lines, &nob_id), "GET", "no-such-bucket-here", "k", 404);
    for r in [&ok, &ok_get] {
        let id = r.header("x-amz-request-id").unwrap();
        assert!(lines.iter().all(|l| !l.contains(id)), "successful request {id} must not be logged: {lines:#?}");
    }
    assert!(lines.iter().all(|l| !l.contains("fine-object")), "no access line for successful requests: {lines:#?}");
}

/// Reads one HTTP/1.1 response (Content-Length framed) from a kept-alive
/// connection. None when the server closed the connection first.
async fn read_response(s: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            assert!(buf.is_empty(), "connection closed mid-response: {:?}", String::from_utf8_lossy(&buf));
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("Content-Length framed response");
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut tmp).await.unwrap();
        assert!(n > 0, "connection closed mid-body");
        body.extend_from_slice(&tmp[..n]);
    }
    Some((head, body))
}

async fn send_get(s: &mut tokio::net::TcpStream, server: &Server, target: &str) {
    use tokio::io::AsyncWriteExt as _;
    let req = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n\r\n", server.s3_addr);
    s.write_all(req.as_bytes()).await.unwrap();
}

/// GETs `kab/obj` on the connection: the response head (lower-cased) and body;
/// `what` names the response in the panic when none comes.
async fn get_kab_obj(s: &mut tokio::net::TcpStream, server: &Server, what: &str) -> (String, Vec<u8>) {
    send_get(s, server, "/kab/obj").await;
    read_response(s).await.expect(what)
}

/// Whether the server closes the (idle) connection within `within`.
async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut b = [0u8; 1];
    match tokio::time::timeout(within, s.read(&mut b)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("unexpected bytes on an idle connection"),
        Err(_) => false,
    }
}

/// A worker (with `config`, if any) holding `kab/obj` = `body`, and a connection to its S3 port.
async fn connection_to_object(config: Option<&str>, body: &[u8]) -> (Server, tokio::net::TcpStream) {
    let server = match config {
        Some(toml) => Server::start_with_config(toml).await,
        None => Server::start().await,
    };
    server.create_bucket("kab").await;
    put_bytes(&server.client(), "kab", "obj", body).await;
    let s = tokio::net::TcpStream::connect(server.s3_addr).await.unwrap();
    (server, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_by_default_without_idle_timeout() {
    let (server, mut s) = connection_to_object(None, b"kept alive").await;
    for round in 0..3 {
        let (head, body) = get_kab_obj(&mut s, &server, "response on the same connection").await;
        assert!(head.starts_with("http/1.1 200"), "round {round}: {head}");
        assert_eq!(body, b"kept alive");
        assert!(!head.contains("connection: close"), "{head}");
    }
    // idle_timeout = 0: an idle connection stays open.
    assert!(!closed_within(&mut s, Duration::from_millis(2500)).await, "idle connection kept");
    let (head, body) = get_kab_obj(&mut s, &server, "still usable after idling").await;
    assert!(head.starts_with("http/1.1 200"));
    assert_eq!(body, b"kept alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_disabled_closes_after_each_response() {
    let (server, mut s) = connection_to_object(Some("[s3]\nkeep_alive = false\n"), b"one shot").await;
    let (head, body) = get_kab_obj(&mut s, &server, "first response").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, b"one shot");
    assert!(head.contains("connection: close"), "keep_alive=false announces close: {head}");
    assert!(closed_within(&mut s, Duration::from_secs(5)).await, "server closes the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_idle_connections() {
    let (server, mut s) = connection_to_object(Some("[s3]\nidle_timeout = 1\n"), b"idle").await;
    let (head, body) = get_kab_obj(&mut s, &server, "response").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, b"idle");
    let t0 = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(6)).await, "idle connection closed");
    assert!(t0.elapsed() >= Duration::from_millis(500), "not closed right away: {:?}", t0.elapsed());
    // A fresh connection works.
    assert_eq!(get_bytes(&server.client(), "kab", "obj").await, b"idle");
}

/// Invariants 1, 2 and 5: a worker killed (SIGKILL) in the middle of an overwrite loses nothing
/// that was acknowledged, shows no partial object, and removes the interrupted write's temp file
/// when it starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_put_keeps_the_old_object_and_cleans_up_on_restart() {
    use tokio::io::AsyncWriteExt as _;
    let mut server = Server::start_with_bucket(B).await;
    let client = server.client();
    let old = pseudo_random_bytes(1, 300_000);
    put_bytes(&client, B, "precious", &old).await;

    let mut s = tokio::net::TcpStream::connect(server.s3_addr).await.unwrap();
    let head =
        format!("PUT /{B}/precious HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n", server.s3_addr, 16 << 20);
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&pseudo_random_bytes(2, 4 << 20)).await.unwrap();
    s.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bucket_dir = server.bucket_dir(B);
    assert!(!private_files(&bucket_dir).is_empty(), "the interrupted write is in a temp file");

    // SAFETY: kill(2) on the pid of the worker this test spawned.
    let rc = unsafe { libc::kill(server.pid() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0);
    drop(s);
    server.restart().await;

    let client = server.client();
    assert_eq!(get_bytes(&client, B, "precious").await, old, "the acknowledged object is intact");
    assert_eq!(list_all_keys(&client, B, "").await, vec!["precious".to_owned()]);
    assert!(private_files(&bucket_dir).is_empty(), "temp files are removed at start: {:?}", private_files(&bucket_dir));
}

/// Invariant 2: concurrent writers of one key and concurrent readers — every read returns one
/// writer's complete body, never a mix or a prefix; the final object is one writer's body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_never_produce_torn_reads() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    const LEN: usize = 512 * 1024;
    let body_of = |writer: u8| vec![writer; LEN];
    put_bytes(&client, B, "contended", &body_of(0)).await;

    let mut tasks = Vec::new();
    for writer in 1..=6u8 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..4 {
                put_bytes(&client, B, "contended", &vec![writer; LEN]).await;
            }
            0usize
        }));
    }
    for _ in 0..3 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut reads = 0;
            for _ in 0..15 {
                let data = get_bytes(&client, B, "contended").await;
                assert_eq!(data.len(), LEN, "a read saw a partial object");
                assert!(data.iter().all(|&b| b == data[0]), "a read saw a mix of two writes");
                reads += 1;
            }
            reads
        }));
    }
    let mut reads = 0;
    for t in tasks {
        reads += t.await.unwrap();
    }
    assert_eq!(reads, 45);
    let last = get_bytes(&client, B, "contended").await;
    assert!((1..=6).any(|w| last == body_of(w)), "the final object is one writer's complete body");
    assert!(private_files(&server.bucket_dir(B)).is_empty(), "no temp file left behind");
}
