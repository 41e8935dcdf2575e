//! CopyObject: across buckets, keys that need URL-encoding, the metadata and
//! tagging directives, `x-amz-copy-source-if-*` conditions, copying an object
//! onto itself, and missing sources.

use alcove_tests::aws_sdk_s3::types::{ChecksumMode, ChecksumType, MetadataDirective, TaggingDirective};
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;

const A: &str = "copy-a";
const Z: &str = "copy-z";

async fn server_with_buckets() -> Server {
    let server = Server::start().await;
    server.create_bucket(A).await;
    server.create_bucket(Z).await;
    server
}

/// `bucket/key` with the key URL-encoded, as x-amz-copy-source wants it.
fn source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", aws_uri_encode(key, true))
}

async fn tags(client: &Client, bucket: &str, key: &str) -> Vec<(String, String)> {
    let out = client
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get tagging {key}: {}", err_text(&e)));
    let mut v: Vec<(String, String)> =
        out.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    v.sort();
    v
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_across_buckets_with_encoded_keys() {
    let server = server_with_buckets().await;
    let client = server.client();
    let cases: &[(&str, &str)] = &[
        ("src/with space.txt", "dst/with space copy.txt"),
        ("ünïcödé/日本語 файл.bin", "dst/ü ✓ copy.bin"),
        ("plus+sign&and=eq.bin", "dst/a+b=c&d.bin"),
        ("percent%20literal", "dst/100% sure"),
        ("empty", "dst/empty copy"),
    ];
    for (i, (src_key, dst_key)) in cases.iter().enumerate() {
        let data = if *src_key == "empty" { Vec::new() } else { pseudo_random_bytes(i as u64, 10_000 + i * 999) };
        let etag = put_bytes(&client, A, src_key, &data).await;
        let out = client
            .copy_object()
            .bucket(Z)
            .key(*dst_key)
            .copy_source(source(A, src_key))
            .send()
            .await
            .unwrap_or_else(|e| panic!("copy {src_key:?} -> {dst_key:?}: {}", err_text(&e)));
        let result = out.copy_object_result().expect("CopyObjectResult");
        assert_eq!(result.e_tag(), Some(etag.as_str()), "{dst_key:?}: the copy has the source's content ETag");
        assert!(result.last_modified().is_some());
        assert_eq!(get_bytes(&client, Z, dst_key).await, data, "{dst_key:?}: content copied");
        assert_eq!(get_bytes(&client, A, src_key).await, data, "{src_key:?}: source untouched");
        let head = client.head_object().bucket(Z).key(*dst_key).send().await.unwrap();
        assert_eq!(head.e_tag(), Some(etag.as_str()));
        assert_eq!(std::fs::read(server.bucket_dir(Z).join(dst_key)).unwrap(), data, "a plain file at the decoded key");
    }
    let mut want: Vec<String> = cases.iter().map(|(_, d)| d.to_string()).collect();
    want.sort();
    assert_eq!(list_all_keys(&client, Z, "").await, want);

    // Copy over an existing object replaces it.
    let old = put_bytes(&client, Z, "over", b"old content").await;
    let out = client.copy_object().bucket(Z).key("over").copy_source(source(A, cases[0].0)).send().await.unwrap();
    let new = out.copy_object_result().unwrap().e_tag().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(get_bytes(&client, Z, "over").await, get_bytes(&client, A, cases[0].0).await);

    // Raw request: a leading slash on the source is allowed too.
    let raw_src = format!("/{}", source(A, cases[1].0));
    let r = server.raw("PUT", &format!("/{Z}/raw%20copy"), &[("x-amz-copy-source", &raw_src)], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(xml_top(&r.text(), "ETag").as_deref(), Some(etag_of(&pseudo_random_bytes(1, 10_999)).as_str()));
    assert_eq!(get_bytes(&client, Z, "raw copy").await, pseudo_random_bytes(1, 10_999));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_sources() {
    let server = server_with_buckets().await;
    let client = server.client();
    assert_sdk_err(
        client.copy_object().bucket(Z).key("dst").copy_source(source(A, "no such key")).send().await,
        404,
        "NoSuchKey",
    );
    assert_sdk_err(
        client.copy_object().bucket(Z).key("dst").copy_source("no-such-bucket/key").send().await,
        404,
        "NoSuchBucket",
    );
    assert!(!object_exists(&client, Z, "dst").await);
    assert_eq!(list_all_keys(&client, Z, "").await, Vec::<String>::new());
    let r = server.raw("PUT", &format!("/{Z}/dst"), &[("x-amz-copy-source", &format!("/{A}/missing"))], b"").await;
    r.assert_error(404, "NoSuchKey");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_directive_copy_and_replace() {
    let server = server_with_buckets().await;
    let client = server.client();
    let data = pseudo_random_bytes(5, 5000);
    let etag = etag_of(&data);
    client
        .put_object()
        .bucket(A)
        .key("src")
        .content_type("text/x-source")
        .content_disposition("attachment; filename=\"src.txt\"")
        .cache_control("max-age=60")
        .content_language("de-CH")
        .metadata("alpha", "1")
        .metadata("beta", "zwei")
        .body(data.clone().into())
        .send()
        .await
        .unwrap();

    // Default (COPY): everything carried.
    client.copy_object().bucket(Z).key("copied").copy_source(source(A, "src")).send().await.unwrap();
    // Explicit COPY: metadata headers on the request are ignored.
    client
        .copy_object()
        .bucket(Z)
        .key("copied-explicit")
        .copy_source(source(A, "src"))
        .metadata_directive(MetadataDirective::Copy)
        .metadata("ignored", "yes")
        .content_type("application/x-ignored")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    for key in ["copied", "copied-explicit"] {
        let h = client.head_object().bucket(Z).key(key).send().await.unwrap();
        assert_eq!(h.content_type(), Some("text/x-source"), "{key}");
        assert_eq!(h.content_disposition(), Some("attachment; filename=\"src.txt\""), "{key}");
        assert_eq!(h.cache_control(), Some("max-age=60"), "{key}");
        assert_eq!(h.content_language(), Some("de-CH"), "{key}");
        let meta = h.metadata().cloned().unwrap_or_default();
        assert_eq!(meta.len(), 2, "{key}: exactly the source's metadata: {meta:?}");
        assert_eq!(meta.get("alpha").map(String::as_str), Some("1"), "{key}");
        assert_eq!(meta.get("beta").map(String::as_str), Some("zwei"), "{key}");
        assert_eq!(h.e_tag(), Some(etag.as_str()), "{key}");
    }

    // REPLACE: only what the request says.
    client
        .copy_object()
        .bucket(Z)
        .key("replaced")
        .copy_source(source(A, "src"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/x-new")
        .metadata("gamma", "3")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let h = client.head_object().bucket(Z).key("replaced").send().await.unwrap();
    assert_eq!(h.content_type(), Some("application/x-new"));
    let meta = h.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.len(), 1, "only the new metadata: {meta:?}");
    assert_eq!(meta.get("gamma").map(String::as_str), Some("3"));
    assert_eq!(h.content_disposition(), None, "REPLACE drops what the request does not set");
    assert_eq!(h.cache_control(), None);
    assert_eq!(h.content_language(), None);
    assert_eq!(h.e_tag(), Some(etag.as_str()), "same bytes, same ETag");
    assert_eq!(get_bytes(&client, Z, "replaced").await, data);

    // The source is unchanged.
    let h = client.head_object().bucket(A).key("src").send().await.unwrap();
    assert_eq!(h.content_type(), Some("text/x-source"));
    assert_eq!(h.metadata().map(|m| m.len()), Some(2));

    // REPLACE with too much metadata: refused, nothing created.
    assert_sdk_err(
        client
            .copy_object()
            .bucket(Z)
            .key("too-big")
            .copy_source(source(A, "src"))
            .metadata_directive(MetadataDirective::Replace)
            .metadata("big", "x".repeat(2100))
            .send()
            .await,
        400,
        "MetadataTooLarge",
    );
    assert!(!object_exists(&client, Z, "too-big").await);

    // An unknown directive is refused.
    let r = server
        .raw(
            "PUT",
            &format!("/{Z}/bad-directive"),
            &[("x-amz-copy-source", &format!("/{A}/src")), ("x-amz-metadata-directive", "MERGE")],
            b"",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(!object_exists(&client, Z, "bad-directive").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_directive_copy_and_replace() {
    let server = server_with_buckets().await;
    let client = server.client();
    client
        .put_object()
        .bucket(A)
        .key("tagged")
        .tagging("k1=v1&k2=v%202")
        .body(b"tagged source".to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let src_tags = pairs(&[("k1", "v1"), ("k2", "v 2")]);
    assert_eq!(tags(&client, A, "tagged").await, src_tags);

    // Default: tags copied.
    client.copy_object().bucket(Z).key("t-default").copy_source(source(A, "tagged")).send().await.unwrap();
    assert_eq!(tags(&client, Z, "t-default").await, src_tags);
    // COPY with a tagging header: header ignored.
    client
        .copy_object()
        .bucket(Z)
        .key("t-copy")
        .copy_source(source(A, "tagged"))
        .tagging_directive(TaggingDirective::Copy)
        .tagging("ignored=1")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert_eq!(tags(&client, Z, "t-copy").await, src_tags);
    // REPLACE with new tags.
    client
        .copy_object()
        .bucket(Z)
        .key("t-replace")
        .copy_source(source(A, "tagged"))
        .tagging_directive(TaggingDirective::Replace)
        .tagging("new=tag&other=x%2By")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert_eq!(tags(&client, Z, "t-replace").await, pairs(&[("new", "tag"), ("other", "x+y")]));
    let g = client.get_object().bucket(Z).key("t-replace").send().await.unwrap();
    assert_eq!(g.tag_count(), Some(2));
    // REPLACE without tags: none.
    client
        .copy_object()
        .bucket(Z)
        .key("t-none")
        .copy_source(source(A, "tagged"))
        .tagging_directive(TaggingDirective::Replace)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert_eq!(tags(&client, Z, "t-none").await, vec![]);
    // Metadata REPLACE leaves the tagging directive at COPY.
    client
        .copy_object()
        .bucket(Z)
        .key("t-meta-replace")
        .copy_source(source(A, "tagged"))
        .metadata_directive(MetadataDirective::Replace)
        .metadata("m", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(tags(&client, Z, "t-meta-replace").await, src_tags);
    // Invalid replacement tags: refused, nothing created.
    let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
    assert_sdk_err(
        client
            .copy_object()
            .bucket(Z)
            .key("t-invalid")
            .copy_source(source(A, "tagged"))
            .tagging_directive(TaggingDirective::Replace)
            .tagging(eleven.join("&"))
            .send()
            .await,
        400,
        "InvalidTag",
    );
    assert!(!object_exists(&client, Z, "t-invalid").await);
    assert_eq!(tags(&client, A, "tagged").await, src_tags, "source tags untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_source_conditions() {
    let server = server_with_buckets().await;
    let client = server.client();
    let etag = put_bytes(&client, A, "cond", b"conditional source").await;
    let lm = client.head_object().bucket(A).key("cond").send().await.unwrap().last_modified().unwrap().secs();
    let other = etag_of(b"different");
    let copy = || client.copy_object().bucket(Z).copy_source(source(A, "cond"));

    // Each condition, holding and failing.
    let ok = [
        ("if-match", copy().key("ok1").copy_source_if_match(&etag).send().await),
        ("if-none-match", copy().key("ok2").copy_source_if_none_match(&other).send().await),
        ("if-modified-since", copy().key("ok3").copy_source_if_modified_since(sdk_time(lm - 3600)).send().await),
        ("if-unmodified-since", copy().key("ok4").copy_source_if_unmodified_since(sdk_time(lm)).send().await),
        (
            "if-unmodified-since later",
            copy().key("ok5").copy_source_if_unmodified_since(sdk_time(lm + 60)).send().await,
        ),
        // AWS: if-match true and if-unmodified-since false → copied.
        (
            "if-match + if-unmodified-since",
            copy()
                .key("ok6")
                .copy_source_if_match(&etag)
                .copy_source_if_unmodified_since(sdk_time(lm - 3600))
                .send()
                .await,
        ),
    ];
    for (what, r) in ok {
        let out = r.unwrap_or_else(|e| panic!("{what}: {}", err_text(&e)));
        assert_eq!(out.copy_object_result().and_then(|c| c.e_tag()), Some(etag.as_str()), "{what}");
    }
    for k in ["ok1", "ok2", "ok3", "ok4", "ok5", "ok6"] {
        assert_eq!(get_bytes(&client, Z, k).await, b"conditional source", "{k}");
    }

    let failing = [
        ("if-match", copy().key("f1").copy_source_if_match(&other).send().await),
        ("if-none-match", copy().key("f2").copy_source_if_none_match(&etag).send().await),
        ("if-modified-since", copy().key("f4").copy_source_if_modified_since(sdk_time(lm)).send().await),
        ("if-unmodified-since", copy().key("f5").copy_source_if_unmodified_since(sdk_time(lm - 3600)).send().await),
        // AWS: if-none-match false and if-modified-since true → 412.
        (
            "if-none-match + if-modified-since",
            copy()
                .key("f6")
                .copy_source_if_none_match(&etag)
                .copy_source_if_modified_since(sdk_time(lm - 3600))
                .send()
                .await,
        ),
    ];
    for (what, r) in failing {
        match r {
            Ok(v) => panic!("{what}: expected 412, got {v:?}"),
            Err(e) => {
                assert_eq!(err_status_code(&e), (412, "PreconditionFailed".to_owned()), "{what}: {}", err_text(&e))
            }
        }
    }
    for k in ["f1", "f2", "f4", "f5", "f6"] {
        assert!(!object_exists(&client, Z, k).await, "{k}: a failed copy creates nothing");
    }

    // The raw error shape.
    let r = server
        .raw(
            "PUT",
            &format!("/{Z}/f7"),
            &[("x-amz-copy-source", &format!("/{A}/cond")), ("x-amz-copy-source-if-match", &other)],
            b"",
        )
        .await;
    r.assert_error(412, "PreconditionFailed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_onto_itself() {
    let server = server_with_buckets().await;
    let client = server.client();
    let data = pseudo_random_bytes(9, 40_000);
    let put = client
        .put_object()
        .bucket(A)
        .key("self key")
        .content_type("text/x-before")
        .metadata("state", "before")
        .tagging("t=1")
        .body(data.clone().into())
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_owned();

    // Without REPLACE: illegal.
    assert_sdk_err(
        client.copy_object().bucket(A).key("self key").copy_source(source(A, "self key")).send().await,
        400,
        "InvalidRequest",
    );
    assert_sdk_err(
        client
            .copy_object()
            .bucket(A)
            .key("self key")
            .copy_source(source(A, "self key"))
            .metadata_directive(MetadataDirective::Copy)
            .metadata("state", "ignored")
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    let h = client.head_object().bucket(A).key("self key").send().await.unwrap();
    assert_eq!(h.metadata().and_then(|m| m.get("state")).map(String::as_str), Some("before"));

    // With REPLACE: metadata updated in place, same bytes and ETag.
    let out = client
        .copy_object()
        .bucket(A)
        .key("self key")
        .copy_source(source(A, "self key"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/x-after")
        .metadata("state", "after")
        .metadata("extra", "new")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert_eq!(out.copy_object_result().and_then(|r| r.e_tag()), Some(etag.as_str()));
    let h = client.head_object().bucket(A).key("self key").send().await.unwrap();
    assert_eq!(h.content_type(), Some("text/x-after"));
    let meta = h.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("state").map(String::as_str), Some("after"));
    assert_eq!(meta.get("extra").map(String::as_str), Some("new"));
    assert_eq!(meta.len(), 2);
    assert_eq!(h.e_tag(), Some(etag.as_str()), "ETag unchanged");
    assert_eq!(h.content_length(), Some(data.len() as i64));
    assert_eq!(get_bytes(&client, A, "self key").await, data, "data unchanged");
    assert_eq!(tags(&client, A, "self key").await, pairs(&[("t", "1")]), "tags kept (tagging directive COPY)");
    assert_eq!(list_all_keys(&client, A, "").await, vec!["self key"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_of_a_multipart_object() {
    let server = server_with_buckets().await;
    let client = server.client();
    let p1 = pseudo_random_bytes(100, MIB5);
    let p2 = pseudo_random_bytes(101, 1234);
    let src_etag = multipart_put(&client, A, "mp source", &[&p1, &p2]).await;
    assert_eq!(src_etag, multipart_etag(&[&p1, &p2]));
    let out = client.copy_object().bucket(Z).key("mp copy").copy_source(source(A, "mp source")).send().await.unwrap();
    let copy_etag = out.copy_object_result().and_then(|r| r.e_tag()).unwrap().to_owned();
    let whole = [p1.as_slice(), &p2].concat();
    assert!(get_bytes(&client, Z, "mp copy").await == whole, "the copy has the whole content");
    let h = client.head_object().bucket(Z).key("mp copy").send().await.unwrap();
    assert_eq!(h.e_tag(), Some(copy_etag.as_str()), "HEAD ETag equals the CopyObject ETag");
    assert_eq!(h.content_length(), Some(whole.len() as i64));
    let listed = client.list_objects_v2().bucket(Z).send().await.unwrap();
    assert_eq!(
        listed.contents().iter().find(|o| o.key() == Some("mp copy")).and_then(|o| o.e_tag()),
        Some(copy_etag.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_carries_the_checksum() {
    // AWS: "if the source object has a checksum, that checksum value will be
    // copied to the new object by default", and CopyObjectResult reports it.
    let server = server_with_buckets().await;
    let client = server.client();
    let data = pseudo_random_bytes(77, 20_000);
    let want = Alg::Sha256.b64(&data);
    client
        .put_object()
        .bucket(A)
        .key("summed")
        .checksum_algorithm(Alg::Sha256.sdk())
        .body(data.clone().into())
        .send()
        .await
        .unwrap();
    let out = client.copy_object().bucket(Z).key("summed copy").copy_source(source(A, "summed")).send().await.unwrap();
    let head =
        client.head_object().bucket(Z).key("summed copy").checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
    assert_eq!(head.checksum_sha256(), Some(want.as_str()), "the copy keeps the source's SHA256");
    assert_eq!(head.checksum_type(), Some(&ChecksumType::FullObject));
    assert_eq!(get_bytes(&client, Z, "summed copy").await, data);
    let result = out.copy_object_result().expect("CopyObjectResult");
    assert_eq!(result.checksum_sha256(), Some(want.as_str()), "CopyObjectResult reports the checksum");
}
