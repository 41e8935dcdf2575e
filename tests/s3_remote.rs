//! S3 mounts: a bucket whose data lives in another S3 server (here a second Alcove worker, which
//! needs nothing installed), driven with aws-sdk-s3 through the front worker: data, metadata,
//! tags, listings, copies, multipart uploads, objects written to the remote by someone else, and
//! what a client sees when the remote fails, is slow or refuses the mount's credentials. Also
//! `alcove load` and `alcove free` of a prefix of such a mount (the page cache filled and emptied,
//! reads then served without the remote, failures reported), through the CLI and the admin API.

use std::time::{Duration, Instant};

use alcove_tests::*;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Tag, Tagging};

const SECRET: &str = "remote-secret-value";

/// The remote's config: sigv4 with one credential pair, so wrong credentials are refused.
fn remote_config() -> String {
    format!("[auth]\nmode = \"sigv4\"\nallow_anonymous = false\n[[auth.credentials]]\naccess_key = \"remote-ak\"\nsecret_key = \"{SECRET}\"\n")
}

/// Mounts `s3://remote_bucket/prefix` of `remote` (reached at `endpoint`) on `front` as `/name`.
fn mount(front: &Server, name: &str, uri: &str, endpoint: &str, secret: &str, extra: &[&str]) {
    let admin = front.admin_url();
    let (ep, sk) = (format!("endpoint={endpoint}"), format!("secret_access_key={secret}"));
    let mut args = vec!["mount", "add", "--admin", &admin, "--path", name, "--ufs-uri", uri];
    for opt in [ep.as_str(), "access_key_id=remote-ak", sk.as_str()].into_iter().chain(extra.iter().copied()) {
        args.extend(["--option", opt]);
    }
    let out = front.cli(&args);
    assert!(out.status.success(), "mount add failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A front worker with `uri` of `remote` mounted as `/near`, with the right
/// credentials and the `extra` mount options.
async fn front_mounting(remote: &Server, uri: &str, extra: &[&str]) -> Server {
    let front = Server::start().await;
    mount(&front, "/near", uri, &remote.endpoint(), SECRET, extra);
    front
}

async fn remote_with_bucket(bucket: &str) -> Server {
    let remote = Server::start_with_config(&remote_config()).await;
    remote
        .client_with("remote-ak", SECRET)
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create remote bucket: {}", err_text(&e)));
    remote
}

#[tokio::test]
async fn objects_metadata_tags_and_listings_live_on_the_remote() {
    let remote = remote_with_bucket("far").await;
    let front = front_mounting(&remote, "s3://far/base", &[]).await;
    let c = front.client();
    let direct = remote.client_with("remote-ak", SECRET);

    c.put_object()
        .bucket("near")
        .key("docs/a.txt")
        .body(ByteStream::from_static(b"hello remote"))
        .content_type("text/plain")
        .content_language("fr")
        .metadata("color", "blue")
        .tagging("team=storage")
        .send()
        .await
        .unwrap();
    // Stored under the mount's prefix, with the remote's own metadata.
    let there = direct.head_object().bucket("far").key("base/docs/a.txt").send().await.unwrap();
    assert_eq!(there.content_type(), Some("text/plain"));
    assert_eq!(there.metadata().and_then(|m| m.get("color")).map(String::as_str), Some("blue"));

    let head = c.head_object().bucket("near").key("docs/a.txt").send().await.unwrap();
    assert_eq!(head.e_tag(), Some(etag_of(b"hello remote").as_str()));
    assert_eq!(head.content_length(), Some(12));
    assert_eq!(head.content_language(), Some("fr"));
    assert_eq!(head.metadata().map(|m| m.len()), Some(1), "Alcove's own fields are not user metadata");
    let ranged = c.get_object().bucket("near").key("docs/a.txt").range("bytes=6-11").send().await.unwrap();
    assert_eq!(ranged.body.collect().await.unwrap().into_bytes().as_ref(), b"remote");

    let tags = c.get_object_tagging().bucket("near").key("docs/a.txt").send().await.unwrap();
    assert_eq!(tags.tag_set()[0].key(), "team");
    let new_tags =
        Tagging::builder().tag_set(Tag::builder().key("env").value("prod").build().unwrap()).build().unwrap();
    c.put_object_tagging().bucket("near").key("docs/a.txt").tagging(new_tags).send().await.unwrap();
    let tags = c.get_object_tagging().bucket("near").key("docs/a.txt").send().await.unwrap();
    assert_eq!((tags.tag_set()[0].key(), tags.tag_set()[0].value()), ("env", "prod"));
    assert_eq!(get_bytes(&c, "near", "docs/a.txt").await, b"hello remote", "retagging keeps the bytes");

    // Written by someone else, straight into the remote: visible through the mount.
    direct.put_object().bucket("far").key("base/docs/b.txt").body(ByteStream::from_static(b"b")).send().await.unwrap();
    direct.put_object().bucket("far").key("elsewhere.txt").body(ByteStream::from_static(b"x")).send().await.unwrap();
    for i in 0..5 {
        put_bytes(&c, "near", &format!("logs/{i}"), b"l").await;
    }
    let page = c.list_objects_v2().bucket("near").delimiter("/").send().await.unwrap();
    let prefixes: Vec<&str> = page.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(prefixes, ["docs/", "logs/"]);
    assert!(page.contents().is_empty(), "keys outside the mount's prefix are not listed: {:?}", page.contents());
    let docs = list_all_keys(&c, "near", "docs/").await;
    let objects: Vec<&str> = docs.iter().map(String::as_str).filter(|k| !k.ends_with('/')).collect();
    assert_eq!(objects, ["docs/a.txt", "docs/b.txt"], "{docs:?}");
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket("near")
            .prefix("logs/")
            .max_keys(2)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(keys.iter().filter(|k| !k.ends_with('/')).count(), 5, "{keys:?}");

    // Copies: within the mount (server-side on the remote) and from the mount to a local bucket.
    c.copy_object().bucket("near").key("copy.txt").copy_source("near/docs/a.txt").send().await.unwrap();
    assert_eq!(get_bytes(&c, "near", "copy.txt").await, b"hello remote");
    front.create_bucket("local-side").await;
    c.copy_object().bucket("local-side").key("x").copy_source("near/docs/a.txt").send().await.unwrap();
    assert_eq!(get_bytes(&c, "local-side", "x").await, b"hello remote");

    // Missing keys stay NoSuchKey; deletes reach the remote.
    let missing = c.get_object().bucket("near").key("nope").send().await;
    assert_eq!(err_status_code(&missing.unwrap_err()), (404, "NoSuchKey".to_owned()));
    c.delete_object().bucket("near").key("copy.txt").send().await.unwrap();
    assert!(!object_exists(&direct, "far", "base/copy.txt").await);
}

#[tokio::test]
async fn multipart_uploads_complete_on_the_remote() {
    let remote = remote_with_bucket("far").await;
    let front = front_mounting(&remote, "s3://far", &[]).await;
    let c = front.client();
    let created = c
        .create_multipart_upload()
        .bucket("near")
        .key("big.bin")
        .content_type("application/x-test")
        .send()
        .await
        .unwrap();
    let id = created.upload_id().unwrap();
    let parts: Vec<Vec<u8>> = vec![vec![1u8; 5 << 20], vec![2u8; 5 << 20], vec![3u8; 1234]];
    let mut done = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let up = c
            .upload_part()
            .bucket("near")
            .key("big.bin")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        done.push(CompletedPart::builder().part_number(n).e_tag(up.e_tag().unwrap()).build());
    }
    let listed = c.list_parts().bucket("near").key("big.bin").upload_id(id).send().await.unwrap();
    assert_eq!(listed.parts().len(), 3);
    c.complete_multipart_upload()
        .bucket("near")
        .key("big.bin")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .unwrap();
    let whole: Vec<u8> = parts.concat();
    assert_eq!(get_bytes(&c, "near", "big.bin").await, whole);
    let direct = remote.client_with("remote-ak", SECRET);
    assert_eq!(get_bytes(&direct, "far", "big.bin").await, whole, "the remote holds the assembled object");
    let head = c.head_object().bucket("near").key("big.bin").part_number(2).send().await.unwrap();
    assert_eq!((head.parts_count(), head.content_length()), (Some(3), Some(5 << 20)));
    assert_eq!(head.content_type(), Some("application/x-test"));
    let uploads = c.list_multipart_uploads().bucket("near").send().await.unwrap();
    assert!(uploads.uploads().is_empty());
}

#[tokio::test]
async fn a_dead_remote_is_a_quick_503_and_service_resumes() {
    let mut remote = remote_with_bucket("far").await;
    let mut front = front_mounting(&remote, "s3://far", &["timeout=5"]).await;
    let c = front.client();
    put_bytes(&c, "near", "k", b"v").await;
    remote.stop();
    for target in ["/near/k", "/near?list-type=2"] {
        let started = Instant::now();
        let resp = front.raw("GET", target, &[], b"").await;
        assert_eq!(resp.status, 503, "{target}: {}", resp.text());
        assert!(resp.text().contains("<Code>ServiceUnavailable</Code>"), "{}", resp.text());
        assert!(resp.header("retry-after").is_some(), "a retry hint");
        assert!(started.elapsed() < Duration::from_secs(5), "no hang: {:?}", started.elapsed());
    }
    let put = c.put_object().bucket("near").key("k2").body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(err_status_code(&put.unwrap_err()).0, 503);
    assert!(front.is_running());
    remote.restart().await;
    assert_eq!(get_bytes(&c, "near", "k").await, b"v");
}

#[tokio::test]
async fn a_slow_remote_times_out_as_503() {
    // A listener that accepts connections and never answers: the slowest remote there is.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let front = Server::start().await;
    mount(&front, "/near", "s3://far", &format!("http://{addr}"), SECRET, &["timeout=1"]);
    let started = Instant::now();
    let resp = front.raw("GET", "/near/k", &[], b"").await;
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert!(started.elapsed() < Duration::from_secs(10), "answered within the timeout: {:?}", started.elapsed());
    hold.abort();
}

#[tokio::test]
async fn refused_credentials_are_access_denied_and_logged_once() {
    let remote = remote_with_bucket("far").await;
    let front = Server::start().await;
    mount(&front, "/near", "s3://far", &remote.endpoint(), "wrong-secret", &[]);
    for _ in 0..3 {
        let resp = front.raw("GET", "/near/k", &[], b"").await;
        assert_eq!(resp.status, 403, "{}", resp.text());
        assert!(resp.text().contains("<Code>AccessDenied</Code>"), "{}", resp.text());
    }
    let log = front.log();
    let reports = log.lines().filter(|l| l.contains("refused Alcove's credentials")).count();
    assert_eq!(reports, 1, "one report per mount:\n{log}");
    assert!(log.lines().any(|l| l.contains("refused Alcove's credentials") && l.contains("/near")));
}

#[tokio::test]
async fn secrets_are_not_shown_or_logged() {
    let remote = remote_with_bucket("far").await;
    let front = Server::start_with_config("[s3]\naccess_log = true\n").await;
    mount(&front, "/near", "s3://far", &remote.endpoint(), SECRET, &[]);
    let admin = front.admin_url();
    let listed = front.cli(&["mount", "list", "--admin", &admin]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("secret_access_key=<redacted>") && listed.contains("access_key_id=remote-ak"), "{listed}");
    put_bytes(&front.client(), "near", "k", b"v").await;
    let status = front.raw("GET", "/near/missing", &[], b"").await;
    assert_eq!(status.status, 404);
    assert!(!listed.contains(SECRET) && !front.log().contains(SECRET), "the secret leaked");
    // Bad options are refused up front, with the known ones named.
    let bad = front.cli(&[
        "mount",
        "add",
        "--admin",
        &admin,
        "--path",
        "/other",
        "--ufs-uri",
        "s3://far",
        "--option",
        "endpiont=x",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("known options"), "{}", String::from_utf8_lossy(&bad.stderr));
}

/// The remote's config with its access log on, to count the object reads that reach it.
fn logged_remote_config() -> String {
    format!("{}[s3]\naccess_log = true\n", remote_config())
}

/// GETs of objects (not listings) the remote has logged, once its log has settled: a line is
/// written when its response body ends, which may be a moment after the client had all of it.
async fn object_gets(remote: &Server) -> usize {
    let count =
        || remote.access_log_lines().iter().filter(|l| l.contains(" method=GET ") && !l.contains(" key=\"\" ")).count();
    let mut last = count();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Pages the cache holds, over its tiers.
async fn cached_pages(server: &Server) -> u64 {
    (server.metric("alcove_s3_cache_pages{tier=\"memory\"}").await
        + server.metric("alcove_s3_cache_pages{tier=\"disk0\"}").await) as u64
}

/// Runs `alcove ARGS --admin URL` against `server`: exit success, stdout, stderr.
fn cli_on(server: &Server, args: &[&str]) -> (bool, String, String) {
    let admin = server.admin_url();
    let mut all = args.to_vec();
    all.extend(["--admin", &admin]);
    let out = server.cli(&all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn load_fills_the_cache_so_reads_skip_the_remote_and_free_empties_it() {
    let remote = Server::start_with_config(&logged_remote_config()).await;
    let direct = remote.client_with("remote-ak", SECRET);
    direct.create_bucket().bucket("far").send().await.unwrap();
    // 1 MiB pages: 2 + 1 + 3 pages; an empty object and a folder object need nothing.
    let objects = [
        ("set/a.bin", pseudo_random_bytes(1, (1 << 20) + 500_000)),
        ("set/b.bin", pseudo_random_bytes(2, 300_000)),
        ("set/deep/c.bin", pseudo_random_bytes(3, (2 << 20) + 1)),
        ("set/empty", Vec::new()),
        ("set/folder/", Vec::new()),
        ("setx/not-this", b"outside the folder".to_vec()),
    ];
    for (key, data) in &objects {
        put_bytes(&direct, "far", &format!("base/{key}"), data).await;
    }
    let front = front_mounting(&remote, "s3://far/base", &[]).await;

    let (ok, out, err) = cli_on(&front, &["load", "s3://near/set/", "--parallel", "2"]);
    assert!(ok, "load failed:\n{out}\n{err}");
    let total = (1 << 20) + 500_000 + 300_000 + (2 << 20) + 1;
    assert!(
        out.contains("loading s3://near/set/: 3 objects (3.8 MiB), 2 folder or empty objects with nothing to load"),
        "{out}"
    );
    assert!(out.contains("load: 3/3 objects, 3.8 MiB/3.8 MiB"), "a plain progress line off a terminal:\n{out}");
    assert!(out.contains("loaded 3 objects (3.8 MiB) of s3://near/set/ in "), "{out}");
    assert!(out.contains("; 3.8 MiB read from the under-storage"), "{out}");
    assert!(out.contains("skipped 2 folder or empty objects (nothing to load)"), "{out}");
    assert!(!out.contains("not-this") && !out.contains("failed"), "{out}");
    assert_eq!(front.metric("alcove_s3_cache_pages{tier=\"memory\"}").await, 6.0);
    assert!(front.metric("alcove_s3_cache_used_bytes{tier=\"memory\"}").await >= total as f64);
    assert_eq!(front.metric("alcove_s3_cache_served_bytes_total{tier=\"ufs\"}").await, total as f64);

    // Every byte now comes from the cache: the remote sees no object read.
    let before = object_gets(&remote).await;
    assert_eq!(before, 6, "one ranged GET per page");
    let c = front.client();
    for (key, data) in &objects[..3] {
        assert_eq!(&get_bytes(&c, "near", key).await, data, "{key}");
    }
    assert_eq!(object_gets(&remote).await, before, "reads after a load reached the remote");

    // A second load is idempotent: it lists again but reads nothing.
    let (ok, out, err) = cli_on(&front, &["load", "s3://near/set/"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("loaded 3 objects (3.8 MiB)") && out.contains("; 0 B read from the under-storage"), "{out}");
    assert_eq!(object_gets(&remote).await, before);

    // Free drops every page; the next read goes to the remote again. A prefix is a key prefix,
    // as in listings: `set` also takes `setx/…` (which had no pages).
    let (ok, out, err) = cli_on(&front, &["free", "s3://near/set"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("freed 4 objects (3.8 MiB, "), "{out}");
    assert_eq!(cached_pages(&front).await, 0, "{out}");
    assert_eq!(&get_bytes(&c, "near", "set/b.bin").await, &objects[1].1);
    assert_eq!(object_gets(&remote).await, before + 1);
    // Freeing again is no error: nothing is left to drop but that one page.
    let (ok, out, _) = cli_on(&front, &["free", "s3://near/set/"]);
    assert!(ok && out.contains("freed 3 objects"), "{out}");
    assert_eq!(cached_pages(&front).await, 0);
}

#[tokio::test]
async fn a_failed_object_is_reported_and_the_load_goes_on() {
    let remote = remote_with_bucket("far").await;
    let direct = remote.client_with("remote-ak", SECRET);
    for key in ["f/1", "f/2", "f/3"] {
        put_bytes(&direct, "far", key, key.as_bytes()).await;
    }
    // The front trusts what it learnt of an object until Alcove itself changes it...
    let front = Server::start_with_config("[cache]\nmetadata_sync_interval = -1\n").await;
    mount(&front, "/near", "s3://far", &remote.endpoint(), SECRET, &[]);
    front.client().head_object().bucket("near").key("f/2").send().await.unwrap();
    // ...so once another writer replaces it on the remote, reading the version it knows fails.
    put_bytes(&direct, "far", "f/2", b"a newer and longer version").await;

    let (ok, out, err) = cli_on(&front, &["load", "s3://near/f/"]);
    assert!(!ok, "a failed object fails the command:\n{out}");
    assert!(out.contains("\nfailed: f/2: "), "reported as it happens:\n{out}");
    assert!(out.contains("loaded 2 objects (6 B)") && out.contains("1 object failed:\n  f/2: "), "{out}");
    assert!(err.contains("alcove: 1 object failed"), "{err}");
    assert_eq!(front.metric("alcove_s3_cache_pages{tier=\"memory\"}").await, 2.0, "the two loaded objects' pages");

    // Free forgets what the front knew of each object too, so loading again reads the new version.
    let (ok, out, err) = cli_on(&front, &["free", "s3://near/f/"]);
    assert!(ok, "{out}\n{err}");
    let (ok, out, err) = cli_on(&front, &["load", "s3://near/f/"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("loaded 3 objects (32 B)"), "{out}");
    assert_eq!(get_bytes(&front.client(), "near", "f/2").await, b"a newer and longer version");
}

#[tokio::test]
async fn load_and_free_refuse_what_they_cannot_do() {
    let mut remote = remote_with_bucket("far").await;
    let front = front_mounting(&remote, "s3://far", &[]).await;
    front.create_bucket("local").await;
    let (ok, _, err) = cli_on(&front, &["load", "s3://local/x"]);
    assert!(!ok && err.contains("the bucket local is not cached; mount it with cache=on"), "{err}");
    let (ok, _, err) = cli_on(&front, &["free", "s3://nothing-here"]);
    assert!(!ok && err.contains("no bucket named 'nothing-here'"), "{err}");
    for uri in ["near/x", "s3:///x"] {
        let (ok, out, err) = cli_on(&front, &["load", uri]);
        assert!(!ok && err.contains("expected s3://BUCKET[/PREFIX]") && out.is_empty(), "{uri}: {err}");
    }
    let (ok, _, err) = cli_on(&front, &["load", "s3://near", "--parallel", "0"]);
    assert!(!ok && err.contains("--parallel"), "{err}");

    // The admin API itself: refusals are JSON errors with their status...
    let http = http_client();
    let post = |what: &str, body: &str| {
        http.post(format!("{}/api/v1/cache/{what}", front.admin_url())).body(body.to_owned()).send()
    };
    for (what, body, status) in [
        ("load", r#"{"bucket": "nothing-here"}"#, 404),
        ("free", r#"{"bucket": "local"}"#, 400),
        ("load", r#"{"bucket": "near", "parallel": 1000}"#, 400),
        ("load", r#"{"prefix": "x"}"#, 400),
        ("load", "not json", 400),
    ] {
        let resp = post(what, body).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{what} {body}");
        assert!(resp.text().await.unwrap().starts_with(r#"{"error":"#));
    }
    // ...and a job is JSON lines: totals, one line per object, the summary.
    put_bytes(&front.client(), "near", "p/k", b"v").await;
    let resp = post("load", r#"{"bucket": "near", "prefix": "p/", "parallel": 1}"#).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/x-ndjson"));
    let text = resp.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], r#"{"type":"totals","objects":1,"bytes":1,"skipped":0}"#);
    assert_eq!(lines[1], r#"{"type":"object","key":"p/k","bytes":1}"#);
    assert!(
        lines[2].starts_with(r#"{"type":"summary","objects":1,"bytes":1,"failed":0,"skipped":0,"ufs_read_bytes":"#),
        "{text}"
    );
    let resp = post("free", r#"{"bucket": "near", "prefix": "p/"}"#).await.unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.contains(r#"{"type":"object","key":"p/k","bytes":1,"pages":"#), "{text}");
    assert!(
        text.lines().last().is_some_and(
            |l| l.starts_with(r#"{"type":"summary","objects":1,"bytes":1,"failed":0,"skipped":0,"pages":"#)
        ),
        "{text}"
    );

    // A listing that fails ends the job with the reason in its summary.
    remote.stop();
    let (ok, out, err) = cli_on(&front, &["load", "s3://near"]);
    assert!(!ok && out.contains("stopped before the end of s3://near: the under-storage of"), "{out}");
    assert!(err.contains("alcove: stopped early: "), "{err}");
}
