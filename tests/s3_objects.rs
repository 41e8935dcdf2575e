//! Object operations: PutObject, GetObject (ranges), HeadObject,
//! DeleteObject, DeleteObjects, ETag / Last-Modified, Content-MD5,
//! aws-chunked uploads, folder objects, and a large streamed round trip.

use std::time::{SystemTime, UNIX_EPOCH};

use alcove_tests::aws_sdk_s3::primitives::ByteStream;
use alcove_tests::aws_sdk_s3::types::{Delete, ObjectIdentifier};
use alcove_tests::*;
use md5::{Digest as _, Md5};

const B: &str = "objs";

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_head_round_trip() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let data = pseudo_random_bytes(1, 100_000);
    let before = now_secs();
    let put = client
        .put_object()
        .bucket(B)
        .key("docs/report.bin")
        .content_type("application/x-alcove-test")
        .body(data.clone().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let etag = etag_of(&data);
    assert_eq!(put.e_tag(), Some(etag.as_str()), "PUT ETag is the quoted MD5");

    let got = client.get_object().bucket(B).key("docs/report.bin").send().await.unwrap();
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.content_type(), Some("application/x-alcove-test"));
    assert_eq!(got.content_length(), Some(data.len() as i64));
    let lm = got.last_modified().expect("GET Last-Modified").secs();
    assert!((before - 5..=now_secs() + 5).contains(&lm), "Last-Modified {lm} within seconds of now {before}");
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.as_ref(), data.as_slice(), "GET returns exactly what was PUT");

    let head = client.head_object().bucket(B).key("docs/report.bin").send().await.unwrap();
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(head.content_type(), Some("application/x-alcove-test"));
    assert_eq!(head.content_length(), Some(data.len() as i64));
    assert_eq!(head.last_modified().map(|d| d.secs()), Some(lm));

    // The object is a plain file under the bucket folder.
    assert_eq!(std::fs::read(server.bucket_dir(B).join("docs/report.bin")).unwrap(), data);

    // Raw GET: headers as on the wire.
    let r = server.raw("GET", &format!("/{B}/docs/report.bin"), &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(r.header("content-length"), Some("100000"));
    assert!(r.header("last-modified").is_some_and(|v| v.ends_with("GMT")));
    assert!(r.header("x-amz-request-id").is_some());
    assert_eq!(r.body, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_object_and_overwrite() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let etag = put_bytes(&client, B, "empty", b"").await;
    assert_eq!(etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    assert_eq!(get_bytes(&client, B, "empty").await, b"");
    let head = client.head_object().bucket(B).key("empty").send().await.unwrap();
    assert_eq!(head.content_length(), Some(0));

    let e1 = put_bytes(&client, B, "over", b"first version").await;
    let e2 = put_bytes(&client, B, "over", b"second").await;
    assert_ne!(e1, e2);
    assert_eq!(e2, etag_of(b"second"));
    assert_eq!(get_bytes(&client, B, "over").await, b"second");
    let head = client.head_object().bucket(B).key("over").send().await.unwrap();
    assert_eq!(head.e_tag(), Some(e2.as_str()));
    assert_eq!(head.content_length(), Some(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_is_stable_and_matches_listing() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let plain = server.client_plain_put();
    let mut expected = Vec::new();
    for (i, size) in [0usize, 1, 4096, 300_000].into_iter().enumerate() {
        let data = pseudo_random_bytes(10 + i as u64, size);
        let key = format!("e/{i}");
        // Alternate between aws-chunked (SDK default) and plain uploads.
        let c = if i % 2 == 0 { &client } else { &plain };
        let etag = put_bytes(c, B, &key, &data).await;
        assert_eq!(etag, etag_of(&data), "PUT ETag of {key}");
        expected.push((key, etag));
    }
    for _round in 0..2 {
        for (key, etag) in &expected {
            let h = client.head_object().bucket(B).key(key).send().await.unwrap();
            assert_eq!(h.e_tag(), Some(etag.as_str()), "HEAD {key}");
            let g = client.get_object().bucket(B).key(key).send().await.unwrap();
            assert_eq!(g.e_tag(), Some(etag.as_str()), "GET {key}");
        }
    }
    let v2 = client.list_objects_v2().bucket(B).prefix("e/").send().await.unwrap();
    let v1 = client.list_objects().bucket(B).prefix("e/").send().await.unwrap();
    let vs = client.list_object_versions().bucket(B).prefix("e/").send().await.unwrap();
    for (key, etag) in &expected {
        let o = v2.contents().iter().find(|o| o.key() == Some(key)).expect("key in v2");
        assert_eq!(o.e_tag(), Some(etag.as_str()), "v2 listing ETag of {key}");
        let o = v1.contents().iter().find(|o| o.key() == Some(key)).expect("key in v1");
        assert_eq!(o.e_tag(), Some(etag.as_str()), "v1 listing ETag of {key}");
        let o = vs.versions().iter().find(|o| o.key() == Some(key)).expect("key in versions");
        assert_eq!(o.e_tag(), Some(etag.as_str()), "versions listing ETag of {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_md5_checked() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client_plain_put();
    let data = b"content md5 payload".to_vec();

    // Correct digest: accepted.
    client
        .put_object()
        .bucket(B)
        .key("good")
        .content_md5(md5_b64(&data))
        .body(data.clone().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert_eq!(get_bytes(&client, B, "good").await, data);

    // Well-formed but wrong digest: BadDigest, nothing stored.
    assert_sdk_err(
        client
            .put_object()
            .bucket(B)
            .key("bad")
            .content_md5(md5_b64(b"something else"))
            .body(data.clone().into())
            .send()
            .await,
        400,
        "BadDigest",
    );
    assert!(!object_exists(&client, B, "bad").await);
    assert!(!server.bucket_dir(B).join("bad").exists());

    // Wrong digest on an existing key leaves the old content.
    let r = server.raw("PUT", &format!("/{B}/good"), &[("Content-MD5", &md5_b64(b"nope"))], b"replacement").await;
    r.assert_error(400, "BadDigest");
    assert_eq!(get_bytes(&client, B, "good").await, data);

    // Malformed digests: InvalidDigest.
    for bad in ["not-base64!!", "AAAA", "dGVzdA=="] {
        let r = server.raw("PUT", &format!("/{B}/malformed"), &[("Content-MD5", bad)], &data).await;
        r.assert_error(400, "InvalidDigest");
    }
    assert!(!object_exists(&client, B, "malformed").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_requests() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let data = pseudo_random_bytes(7, 1000);
    put_bytes(&client, B, "r", &data).await;

    let cases: &[(&str, usize, usize)] = &[
        ("bytes=0-9", 0, 9),
        ("bytes=100-199", 100, 199),
        ("bytes=990-", 990, 999),
        ("bytes=0-", 0, 999),
        ("bytes=-10", 990, 999),
        ("bytes=-5000", 0, 999),      // suffix longer than the object: whole object
        ("bytes=995-2000", 995, 999), // end past the object: clipped
        ("bytes=999-999", 999, 999),
    ];
    for (range, start, end) in cases {
        let out = client
            .get_object()
            .bucket(B)
            .key("r")
            .range(*range)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{range}: {}", err_text(&e)));
        let want_cr = format!("bytes {start}-{end}/1000");
        assert_eq!(out.content_range(), Some(want_cr.as_str()), "{range}");
        assert_eq!(out.content_length(), Some((end - start + 1) as i64), "{range}");
        assert_eq!(out.e_tag(), Some(etag_of(&data).as_str()), "{range}: ETag of whole object");
        let body = out.body.collect().await.unwrap().into_bytes();
        assert_eq!(body.as_ref(), &data[*start..=*end], "{range}");

        let r = server.raw("GET", &format!("/{B}/r"), &[("Range", range)], b"").await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.header("content-range"), Some(want_cr.as_str()));
        assert_eq!(r.body, &data[*start..=*end]);
    }

    for range in ["bytes=1000-", "bytes=1000-1005", "bytes=5000-6000"] {
        assert_sdk_err(client.get_object().bucket(B).key("r").range(range).send().await, 416, "InvalidRange");
        let r = server.raw("GET", &format!("/{B}/r"), &[("Range", range)], b"").await;
        r.assert_error(416, "InvalidRange");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_keys() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    assert_sdk_err(client.get_object().bucket(B).key("nope").send().await, 404, "NoSuchKey");
    assert_sdk_status(client.head_object().bucket(B).key("nope").send().await, 404);

    let r = server.raw("GET", &format!("/{B}/dir/nope"), &[], b"").await;
    r.assert_error(404, "NoSuchKey");
    let resource = xml_top(&r.text(), "Resource").unwrap();
    assert!(resource.contains("dir/nope"), "Resource {resource:?} names the key");
    assert!(!xml_top(&r.text(), "Message").unwrap().is_empty());

    let r = server.raw("HEAD", &format!("/{B}/dir/nope"), &[], b"").await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty(), "HEAD 404 must have an empty body, got {:?}", r.text());
    assert!(r.header("x-amz-request-id").is_some_and(|v| !v.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_object_is_idempotent() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    put_bytes(&client, B, "d/x", b"1").await;
    client.delete_object().bucket(B).key("d/x").send().await.unwrap();
    assert!(!object_exists(&client, B, "d/x").await);
    assert!(!server.bucket_dir(B).join("d/x").exists());
    // Again, and a key that never existed: still 204.
    for key in ["d/x", "never/was"] {
        let r = server.raw("DELETE", &format!("/{B}/{key}"), &[], b"").await;
        assert_eq!(r.status, 204, "DELETE {key}: {}", r.text());
        assert!(r.header("x-amz-request-id").is_some());
        client.delete_object().bucket(B).key(key).send().await.unwrap();
    }
}

fn ids(keys: &[&str]) -> Vec<ObjectIdentifier> {
    keys.iter().map(|k| ObjectIdentifier::builder().key(*k).build().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_verbose_quiet_and_per_key_errors() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    for k in ["m/1", "m/2", "m/3", "q/1", "q/2"] {
        put_bytes(&client, B, k, k.as_bytes()).await;
    }
    let too_long = "x".repeat(1100);

    // Verbose: every key reported, missing keys count as deleted.
    let out = client
        .delete_objects()
        .bucket(B)
        .delete(
            Delete::builder()
                .set_objects(Some(ids(&["m/1", "m/2", "m/missing", "../escape", &too_long])))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let mut deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(deleted, vec!["m/1", "m/2", "m/missing"]);
    let mut errs: Vec<(&str, &str)> =
        out.errors().iter().map(|e| (e.key().unwrap_or(""), e.code().unwrap_or(""))).collect();
    errs.sort();
    assert_eq!(errs.len(), 2, "per-key errors: {errs:?}");
    assert_eq!(errs[0], ("../escape", "InvalidArgument"));
    assert_eq!(errs[1], (too_long.as_str(), "KeyTooLongError"));
    assert!(!object_exists(&client, B, "m/1").await);
    assert!(!object_exists(&client, B, "m/2").await);
    assert!(object_exists(&client, B, "m/3").await, "unlisted key untouched");

    // Quiet: successes are not reported, errors still are.
    let out = client
        .delete_objects()
        .bucket(B)
        .delete(Delete::builder().set_objects(Some(ids(&["q/1", "q/2", "q/./x"]))).quiet(true).build().unwrap())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert!(out.deleted().is_empty(), "quiet mode: {:?}", out.deleted());
    assert_eq!(out.errors().len(), 1, "{:?}", out.errors());
    assert_eq!(out.errors()[0].key(), Some("q/./x"));
    assert_eq!(out.errors()[0].code(), Some("InvalidArgument"));
    assert!(!object_exists(&client, B, "q/1").await);
    assert!(!object_exists(&client, B, "q/2").await);
    assert_eq!(list_all_keys(&client, B, "q").await, Vec::<String>::new());
}

fn delete_xml(keys: &[&str], quiet: bool) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    if quiet {
        s.push_str("<Quiet>true</Quiet>");
    }
    for k in keys {
        s.push_str(&format!("<Object><Key>{k}</Key></Object>"));
    }
    s.push_str("</Delete>");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_integrity_headers() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    for k in ["a", "b", "c", "d", "e"] {
        put_bytes(&client, B, k, b"v").await;
    }
    let target = format!("/{B}?delete");

    // Content-MD5.
    let body = delete_xml(&["a"], false);
    let r = server.raw("POST", &target, &[("Content-MD5", &md5_b64(body.as_bytes()))], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(xml_list(&r.text(), "Deleted", "Key"), vec!["a"]);

    // x-amz-checksum-crc32 instead of Content-MD5.
    let body = delete_xml(&["b"], false);
    let r =
        server.raw("POST", &target, &[("x-amz-checksum-crc32", &crc32_b64(body.as_bytes()))], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(xml_list(&r.text(), "Deleted", "Key"), vec!["b"]);

    // x-amz-checksum-sha256.
    let body = delete_xml(&["c"], true);
    let sha = b64(&hex::decode(sha256_hex(body.as_bytes())).unwrap());
    let r = server.raw("POST", &target, &[("x-amz-checksum-sha256", &sha)], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(xml_count(&r.text(), "Deleted"), 0, "quiet: {}", r.text());

    // Neither: MissingContentMD5, nothing deleted.
    let body = delete_xml(&["d"], false);
    let r = server.raw("POST", &target, &[], body.as_bytes()).await;
    r.assert_error(400, "MissingContentMD5");

    // Wrong Content-MD5: BadDigest, nothing deleted.
    let r = server.raw("POST", &target, &[("Content-MD5", &md5_b64(b"other"))], body.as_bytes()).await;
    r.assert_error(400, "BadDigest");

    let left = list_all_keys(&client, B, "").await;
    assert_eq!(left, vec!["d", "e"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_chunked_unsigned_trailer_upload() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let data = pseudo_random_bytes(3, 200_000);
    let enc = unsigned_chunked_body(&data, 65536, &format!("x-amz-checksum-crc32:{}", crc32_b64(&data)));
    let len = data.len().to_string();
    let headers = [
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("x-amz-decoded-content-length", len.as_str()),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ];
    let r = server.raw("PUT", &format!("/{B}/chunked"), &headers, &enc).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("etag"), Some(etag_of(&data).as_str()));
    assert_eq!(get_bytes(&client, B, "chunked").await, data, "exactly the payload is stored");
    assert_eq!(std::fs::read(server.bucket_dir(B).join("chunked")).unwrap(), data);

    // Same upload with a wrong trailing checksum: rejected, nothing left behind.
    let enc = unsigned_chunked_body(&data, 65536, &format!("x-amz-checksum-crc32:{}", crc32_b64(b"wrong data")));
    let r = server.raw("PUT", &format!("/{B}/chunked-bad"), &headers, &enc).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let code = r.error_code().unwrap_or_default();
    assert!(code == "BadDigest" || code == "XAmzContentChecksumMismatch", "wrong trailer code: {code:?} {}", r.text());
    assert!(!object_exists(&client, B, "chunked-bad").await);
    assert_eq!(list_all_keys(&client, B, "").await, vec!["chunked"]);
    let on_disk = visible_tree(&server.bucket_dir(B));
    assert_eq!(
        on_disk.len(),
        1,
        "no temp file left in the bucket folder: {:?}",
        on_disk.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );

    assert_eq!(private_files(&server.bucket_dir(B)), Vec::<String>::new(), "no leftover temporary file");

    // A wrong trailer on an existing key keeps the old content.
    let r = server.raw("PUT", &format!("/{B}/chunked"), &headers, &enc).await;
    assert_eq!(r.status, 400);
    assert_eq!(get_bytes(&client, B, "chunked").await, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_and_implicit_folder_objects() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();

    // Explicit folder object: PUT "x/" with an empty body.
    let etag = put_bytes(&client, B, "x/", b"").await;
    assert_eq!(etag, etag_of(b""));
    assert!(server.bucket_dir(B).join("x").is_dir(), "folder object is a directory");
    let h = client.head_object().bucket(B).key("x/").send().await.unwrap();
    assert_eq!(h.content_length(), Some(0));
    assert_eq!(get_bytes(&client, B, "x/").await, b"");

    put_bytes(&client, B, "x/child", b"c").await;
    client.delete_object().bucket(B).key("x/child").send().await.unwrap();
    assert!(object_exists(&client, B, "x/").await, "explicit folder stays until deleted");
    assert_eq!(list_all_keys(&client, B, "x").await, vec!["x/"]);
    client.delete_object().bucket(B).key("x/").send().await.unwrap();
    assert!(!object_exists(&client, B, "x/").await);
    assert_eq!(list_all_keys(&client, B, "x").await, Vec::<String>::new());

    // Implicit folders are no objects (as on AWS) and vanish with their last child.
    put_bytes(&client, B, "a/b/c", b"deep").await;
    for k in ["a/", "a/b/"] {
        assert!(!object_exists(&client, B, k).await, "{k} was never written");
    }
    assert_eq!(list_all_keys(&client, B, "").await, vec!["a/b/c"]);
    client.delete_object().bucket(B).key("a/b/c").send().await.unwrap();
    assert_eq!(list_all_keys(&client, B, "").await, Vec::<String>::new());
    assert!(!server.bucket_dir(B).join("a").exists(), "empty implicit folders removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_folders_are_objects_with_folder_objects_on() {
    let server = Server::start_with_config("[s3]\nfolder_objects = true\n").await;
    server.create_bucket(B).await;
    let client = server.client();
    put_bytes(&client, B, "a/b/c", b"deep").await;
    for k in ["a/", "a/b/"] {
        let h =
            client.head_object().bucket(B).key(k).send().await.unwrap_or_else(|e| panic!("HEAD {k}: {}", err_text(&e)));
        assert_eq!(h.content_length(), Some(0), "{k}");
    }
    assert_eq!(list_all_keys(&client, B, "").await, vec!["a/", "a/b/", "a/b/c"]);
    client.delete_object().bucket(B).key("a/b/c").send().await.unwrap();
    assert!(!object_exists(&client, B, "a/b/").await);
    assert!(!object_exists(&client, B, "a/").await);
    assert_eq!(list_all_keys(&client, B, "").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_file_is_served() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    std::fs::create_dir_all(server.bucket_dir(B).join("hand/made")).unwrap();
    std::fs::write(server.bucket_dir(B).join("hand/made/file.txt"), b"by hand").unwrap();
    assert_eq!(get_bytes(&client, B, "hand/made/file.txt").await, b"by hand");
    let h = client.head_object().bucket(B).key("hand/made/file.txt").send().await.unwrap();
    assert_eq!(h.e_tag(), Some(etag_of(b"by hand").as_str()));
    assert_eq!(list_all_keys(&client, B, "").await, vec!["hand/made/file.txt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_streamed_object_round_trip() {
    const SIZE: usize = 64 << 20;
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let src = server.work_dir().join("big.src");
    let md5 = write_random_file(&src, 64, SIZE);

    let put = client
        .put_object()
        .bucket(B)
        .key("big/blob")
        .body(ByteStream::from_path(&src).await.unwrap())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert_eq!(put.e_tag(), Some(format!("\"{md5}\"").as_str()));

    // Stream the object back without buffering it whole, hashing as we go.
    let mut out = client.get_object().bucket(B).key("big/blob").send().await.unwrap();
    assert_eq!(out.content_length(), Some(SIZE as i64));
    assert_eq!(out.e_tag(), Some(format!("\"{md5}\"").as_str()));
    let mut hasher = Md5::new();
    let mut total = 0usize;
    let mut chunks = 0usize;
    while let Some(chunk) = out.body.try_next().await.unwrap() {
        hasher.update(&chunk);
        total += chunk.len();
        chunks += 1;
    }
    assert_eq!(total, SIZE);
    assert!(chunks > 1, "body arrived in several chunks");
    assert_eq!(hex::encode(hasher.finalize()), md5, "content round trip");

    // The stored file equals the source, and a range in the middle is right.
    let stored = std::fs::read(server.bucket_dir(B).join("big/blob")).unwrap();
    let source = std::fs::read(&src).unwrap();
    assert!(stored == source, "stored bytes equal the source bytes");
    let start = 33 * 1024 * 1024 + 17;
    let r = client
        .get_object()
        .bucket(B)
        .key("big/blob")
        .range(format!("bytes={start}-{}", start + 99_999))
        .send()
        .await
        .unwrap();
    let body = r.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == &source[start..start + 100_000], "range inside the large object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_body_framing() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    put_bytes(&client, B, "kept", b"old").await;
    let target = format!("/{B}/kept");

    // Neither Content-Length nor chunked framing: HTTP reads no body, so it is refused.
    let r = server.raw_unframed("PUT", &target, &[], b"").await;
    r.assert_error(411, "MissingContentLength");
    // Chunked transfer encoding (curl -T -, streaming clients): stored whole.
    let chunked = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    let r = server.raw_unframed("PUT", &format!("/{B}/streamed"), &[("Transfer-Encoding", "chunked")], chunked).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("etag"), Some(etag_of(b"hello, world").as_str()));
    assert_eq!(get_bytes(&client, B, "streamed").await, b"hello, world");
    // An empty Content-MD5 is not a missing one.
    let r = server.raw("PUT", &target, &[("Content-MD5", "")], b"new").await;
    r.assert_error(400, "InvalidDigest");
    // Broken chunked framing, on an object and on an XML body (which s3s reads itself).
    let broken = b"5\r\nhello\r\nZZ\r\nxx\r\n0\r\n\r\n";
    let r = server.raw_unframed("PUT", &target, &[("Transfer-Encoding", "chunked")], broken).await;
    r.assert_error(400, "IncompleteBody");
    let tagging = format!("{target}?tagging");
    let r = server.raw_unframed("PUT", &tagging, &[("Transfer-Encoding", "chunked")], b"8\r\n<Tagging\r\nQ\r\n").await;
    r.assert_error(400, "IncompleteBody");
    // None of it changed anything.
    assert_eq!(get_bytes(&client, B, "kept").await, b"old");
    assert!(object_tags(&client, B, "kept").await.is_empty());
    assert_eq!(private_files(&server.bucket_dir(B)), Vec::<String>::new(), "no temp file left");
}
