//! CopyObject: across buckets, keys that need URL-encoding, the metadata and
//! tagging directives, `x-amz-copy-source-if-*` conditions, copying an object
//! onto itself, and missing sources.

use alcove_tests::aws_sdk_s3::operation::copy_object::builders::CopyObjectFluentBuilder;
use alcove_tests::aws_sdk_s3::types::{ChecksumType, MetadataDirective, TaggingDirective};
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;

const A: &str = "copy-a";
const Z: &str = "copy-z";

async fn server_with_buckets() -> Server {
    let server = Server::start_with_bucket(A).await;
    server.create_bucket(Z).await;
    server
}

/// A CopyObject request from `from` to `to` (each `(bucket, key)`): add
/// headers, then `.send()`.
fn copy(client: &Client, from: (&str, &str), to: (&str, &str)) -> CopyObjectFluentBuilder {
    client.copy_object().bucket(to.0).key(to.1).copy_source(copy_source(from.0, from.1))
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
        let out = copy(&client, (A, src_key), (Z, dst_key))
            .send()
            .await
            .or_panic(&format!("copy {src_key:?} -> {dst_key:?}"));
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
    let out = copy(&client, (A, cases[0].0), (Z, "over")).send().await.unwrap();
    let new = out.copy_object_result().unwrap().e_tag().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(get_bytes(&client, Z, "over").await, get_bytes(&client, A, cases[0].0).await);

    // Raw request: a leading slash on the source is allowed too.
    let raw_src = format!("/{}", copy_source(A, cases[1].0));
    let r = server.raw("PUT", &format!("/{Z}/raw%20copy"), &[("x-amz-copy-source", &raw_src)], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(xml_top(&r.text(), "ETag").as_deref(), Some(etag_of(&pseudo_random_bytes(1, 10_999)).as_str()));
    assert_eq!(get_bytes(&client, Z, "raw copy").await, pseudo_random_bytes(1, 10_999));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_sources() {
    let server = server_with_buckets().await;
    let client = server.client();
    assert_sdk_err(copy(&client, (A, "no such key"), (Z, "dst")).send().await, 404, "NoSuchKey");
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
    put_request(&client, A, "src", &data)
        .content_type("text/x-source")
        .content_disposition("attachment; filename=\"src.txt\"")
        .cache_control("max-age=60")
        .content_language("de-CH")
        .metadata("alpha", "1")
        .metadata("beta", "zwei")
        .send()
        .await
        .unwrap();

    // Default (COPY): everything carried.
    copy(&client, (A, "src"), (Z, "copied")).send().await.unwrap();
    // Explicit COPY: metadata headers on the request are ignored.
    copy(&client, (A, "src"), (Z, "copied-explicit"))
        .metadata_directive(MetadataDirective::Copy)
        .metadata("ignored", "yes")
        .content_type("application/x-ignored")
        .send()
        .await
        .or_panic("explicit COPY");
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
    copy(&client, (A, "src"), (Z, "replaced"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/x-new")
        .metadata("gamma", "3")
        .send()
        .await
        .or_panic("REPLACE");
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
    let too_big = copy(&client, (A, "src"), (Z, "too-big"))
        .metadata_directive(MetadataDirective::Replace)
        .metadata("big", "x".repeat(2100));
    assert_sdk_err(too_big.send().await, 400, "MetadataTooLarge");
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
    let put = put_request(&client, A, "tagged", b"tagged source").tagging("k1=v1&k2=v%202");
    put.send().await.or_panic("put with tags");
    let src_tags = tag_pairs(&[("k1", "v1"), ("k2", "v 2")]);
    assert_eq!(object_tags(&client, A, "tagged").await, src_tags);
    let from_tagged = |to: &str| copy(&client, (A, "tagged"), (Z, to));

    // Default: tags copied.
    from_tagged("t-default").send().await.unwrap();
    assert_eq!(object_tags(&client, Z, "t-default").await, src_tags);
    // COPY with a tagging header: header ignored.
    let req = from_tagged("t-copy").tagging_directive(TaggingDirective::Copy).tagging("ignored=1");
    req.send().await.or_panic("COPY with a tagging header");
    assert_eq!(object_tags(&client, Z, "t-copy").await, src_tags);
    // REPLACE with new tags.
    let req = from_tagged("t-replace").tagging_directive(TaggingDirective::Replace).tagging("new=tag&other=x%2By");
    req.send().await.or_panic("REPLACE with new tags");
    assert_eq!(object_tags(&client, Z, "t-replace").await, tag_pairs(&[("new", "tag"), ("other", "x+y")]));
    let g = client.get_object().bucket(Z).key("t-replace").send().await.unwrap();
    assert_eq!(g.tag_count(), Some(2));
    // REPLACE without tags: none.
    let req = from_tagged("t-none").tagging_directive(TaggingDirective::Replace);
    req.send().await.or_panic("REPLACE without tags");
    assert_eq!(object_tags(&client, Z, "t-none").await, vec![]);
    // Metadata REPLACE leaves the tagging directive at COPY.
    let req = from_tagged("t-meta-replace").metadata_directive(MetadataDirective::Replace).metadata("m", "1");
    req.send().await.unwrap();
    assert_eq!(object_tags(&client, Z, "t-meta-replace").await, src_tags);
    // Invalid replacement tags: refused, nothing created.
    let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
    let req = from_tagged("t-invalid").tagging_directive(TaggingDirective::Replace).tagging(eleven.join("&"));
    assert_sdk_err(req.send().await, 400, "InvalidTag");
    assert!(!object_exists(&client, Z, "t-invalid").await);
    assert_eq!(object_tags(&client, A, "tagged").await, src_tags, "source tags untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_source_conditions() {
    let server = server_with_buckets().await;
    let client = server.client();
    let etag = put_bytes(&client, A, "cond", b"conditional source").await;
    let lm = last_modified_secs(&client, A, "cond").await;
    let other = etag_of(b"different");
    let copy_to = |key: &str| copy(&client, (A, "cond"), (Z, key));

    // Each condition, holding and failing.
    let match_holds_unmodified_fails =
        copy_to("ok6").copy_source_if_match(&etag).copy_source_if_unmodified_since(sdk_time(lm - 3600));
    let ok = [
        ("if-match", copy_to("ok1").copy_source_if_match(&etag).send().await),
        ("if-none-match", copy_to("ok2").copy_source_if_none_match(&other).send().await),
        ("if-modified-since", copy_to("ok3").copy_source_if_modified_since(sdk_time(lm - 3600)).send().await),
        ("if-unmodified-since", copy_to("ok4").copy_source_if_unmodified_since(sdk_time(lm)).send().await),
        ("if-unmodified-since later", copy_to("ok5").copy_source_if_unmodified_since(sdk_time(lm + 60)).send().await),
        // AWS: if-match true and if-unmodified-since false → copied.
        ("if-match + if-unmodified-since", match_holds_unmodified_fails.send().await),
    ];
    for (what, r) in ok {
        let out = r.unwrap_or_else(|e| panic!("{what}: {}", err_text(&e)));
        assert_eq!(out.copy_object_result().and_then(|c| c.e_tag()), Some(etag.as_str()), "{what}");
    }
    for k in ["ok1", "ok2", "ok3", "ok4", "ok5", "ok6"] {
        assert_eq!(get_bytes(&client, Z, k).await, b"conditional source", "{k}");
    }

    let none_match_fails_modified_holds =
        copy_to("f6").copy_source_if_none_match(&etag).copy_source_if_modified_since(sdk_time(lm - 3600));
    let failing = [
        ("if-match", copy_to("f1").copy_source_if_match(&other).send().await),
        ("if-none-match", copy_to("f2").copy_source_if_none_match(&etag).send().await),
        ("if-modified-since", copy_to("f4").copy_source_if_modified_since(sdk_time(lm)).send().await),
        ("if-unmodified-since", copy_to("f5").copy_source_if_unmodified_since(sdk_time(lm - 3600)).send().await),
        // AWS: if-none-match false and if-modified-since true → 412.
        ("if-none-match + if-modified-since", none_match_fails_modified_holds.send().await),
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
    let put = put_request(&client, A, "self key", &data)
        .content_type("text/x-before")
        .metadata("state", "before")
        .tagging("t=1")
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_owned();
    let onto_itself = || copy(&client, (A, "self key"), (A, "self key"));

    // Without REPLACE: illegal.
    assert_sdk_err(onto_itself().send().await, 400, "InvalidRequest");
    let explicit_copy = onto_itself().metadata_directive(MetadataDirective::Copy).metadata("state", "ignored");
    assert_sdk_err(explicit_copy.send().await, 400, "InvalidRequest");
    let h = client.head_object().bucket(A).key("self key").send().await.unwrap();
    assert_eq!(h.metadata().and_then(|m| m.get("state")).map(String::as_str), Some("before"));

    // With REPLACE: metadata updated in place, same bytes and ETag.
    let out = onto_itself()
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/x-after")
        .metadata("state", "after")
        .metadata("extra", "new")
        .send()
        .await
        .or_panic("copy onto itself with REPLACE");
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
    assert_eq!(
        object_tags(&client, A, "self key").await,
        tag_pairs(&[("t", "1")]),
        "tags kept (tagging directive COPY)"
    );
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
    let out = copy(&client, (A, "mp source"), (Z, "mp copy")).send().await.unwrap();
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
    put_request(&client, A, "summed", &data).checksum_algorithm(Alg::Sha256.sdk()).send().await.unwrap();
    let out = copy(&client, (A, "summed"), (Z, "summed copy")).send().await.unwrap();
    let head = head_with_checksums(&client, Z, "summed copy").await;
    assert_eq!(head.checksum_sha256(), Some(want.as_str()), "the copy keeps the source's SHA256");
    assert_eq!(head.checksum_type(), Some(&ChecksumType::FullObject));
    assert_eq!(get_bytes(&client, Z, "summed copy").await, data);
    let result = out.copy_object_result().expect("CopyObjectResult");
    assert_eq!(result.checksum_sha256(), Some(want.as_str()), "CopyObjectResult reports the checksum");
}
