//! S3 mounts: a bucket whose data lives in another S3 server (here a second Alcove worker, which
//! needs nothing installed), driven with aws-sdk-s3 through the front worker: data, metadata,
//! tags, listings, copies, multipart uploads, objects written to the remote by someone else, and
//! what a client sees when the remote fails, is slow or refuses the mount's credentials.

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
