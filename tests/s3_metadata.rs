//! Object metadata and checksums: user metadata (`x-amz-meta-*`, returned
//! lowercased) and the system headers stored and returned by GET and HEAD,
//! the 2 KB user-metadata limit, `response-*` overrides, and the stored
//! `x-amz-checksum-*` of PutObject for all five algorithms (BadDigest on a
//! wrong value, nothing stored).

use alcove_tests::aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use alcove_tests::aws_sdk_s3::types::ChecksumType;
use alcove_tests::*;

const B: &str = "meta";

/// 2030-01-02 03:04:05 UTC.
const EXPIRES: i64 = 1_893_553_445;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_and_user_metadata_round_trip() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let data = pseudo_random_bytes(1, 3000);
    put_request(&client, B, "doc.csv", &data)
        .content_type("text/csv; charset=utf-8")
        .content_encoding("gzip")
        .content_disposition("attachment; filename=\"data.csv\"")
        .cache_control("no-cache, max-age=0")
        .content_language("fr-CA")
        .expires(sdk_time(EXPIRES))
        .metadata("Mixed-Case", "Value With Spaces")
        .metadata("plain", "x")
        .metadata("empty-ish", "-")
        .send()
        .await
        .or_panic("put with metadata");

    let head = client.head_object().bucket(B).key("doc.csv").send().await.unwrap();
    let get = client.get_object().bucket(B).key("doc.csv").send().await.unwrap();
    macro_rules! check {
        ($o:expr, $what:literal) => {{
            let o = &$o;
            assert_eq!(o.content_type(), Some("text/csv; charset=utf-8"), $what);
            assert_eq!(o.content_encoding(), Some("gzip"), "{}: aws-chunked is not part of the stored encoding", $what);
            assert_eq!(o.content_disposition(), Some("attachment; filename=\"data.csv\""), $what);
            assert_eq!(o.cache_control(), Some("no-cache, max-age=0"), $what);
            assert_eq!(o.content_language(), Some("fr-CA"), $what);
            assert_eq!(o.expires_string(), Some(http_date(EXPIRES).as_str()), $what);
            let meta = o.metadata().cloned().unwrap_or_default();
            let mut keys: Vec<&String> = meta.keys().collect();
            keys.sort();
            assert_eq!(keys, vec!["empty-ish", "mixed-case", "plain"], "{}: names lowercased", $what);
            assert_eq!(meta.get("mixed-case").map(String::as_str), Some("Value With Spaces"), $what);
            assert_eq!(meta.get("plain").map(String::as_str), Some("x"), $what);
            assert_eq!(o.e_tag(), Some(etag_of(&data).as_str()), $what);
        }};
    }
    check!(head, "HEAD");
    check!(get, "GET");
    assert_eq!(get.body.collect().await.unwrap().into_bytes().as_ref(), data.as_slice());

    // On the wire.
    for method in ["GET", "HEAD"] {
        let r = server.raw(method, &format!("/{B}/doc.csv"), &[], b"").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-amz-meta-mixed-case"), Some("Value With Spaces"), "{method}");
        assert_eq!(r.header("x-amz-meta-plain"), Some("x"), "{method}");
        assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"), "{method}");
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{method}");
        assert_eq!(r.header("expires"), Some(http_date(EXPIRES).as_str()), "{method}");
        assert_eq!(r.header("content-language"), Some("fr-CA"), "{method}");
    }

    // A raw PUT with upper-case names: stored and returned lowercased.
    let r = server
        .raw(
            "PUT",
            &format!("/{B}/raw"),
            &[("X-Amz-Meta-UPPER", "Shout"), ("x-amz-meta-Camel-Name", "v"), ("Content-Type", "image/png")],
            b"png-ish",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let h = client.head_object().bucket(B).key("raw").send().await.unwrap();
    let meta = h.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("upper").map(String::as_str), Some("Shout"), "{meta:?}");
    assert_eq!(meta.get("camel-name").map(String::as_str), Some("v"), "{meta:?}");
    assert_eq!(h.content_type(), Some("image/png"));

    // Overwriting without metadata leaves none of the old.
    put_bytes(&client, B, "doc.csv", b"plain now").await;
    let h = client.head_object().bucket(B).key("doc.csv").send().await.unwrap();
    assert!(h.metadata().is_none_or(|m| m.is_empty()), "{:?}", h.metadata());
    assert_eq!(h.content_disposition(), None);
    assert_eq!(h.cache_control(), None);
    assert_eq!(h.content_language(), None);
    assert_eq!(h.content_encoding(), None);
    assert_eq!(h.expires_string(), None);

    // Metadata survives a restart.
    let mut server = server;
    server.restart().await;
    let h = server.client().head_object().bucket(B).key("raw").send().await.unwrap();
    assert_eq!(h.metadata().and_then(|m| m.get("upper")).map(String::as_str), Some("Shout"));
    assert_eq!(h.content_type(), Some("image/png"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_metadata_limit() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();

    // Exactly 2048 bytes of names and values: accepted.
    let at_limit = put_request(&client, B, "at-limit", b"ok").metadata("k", "v".repeat(2047));
    at_limit.send().await.or_panic("2048 bytes of metadata");
    let h = client.head_object().bucket(B).key("at-limit").send().await.unwrap();
    assert_eq!(h.metadata().and_then(|m| m.get("k")).map(String::len), Some(2047));

    // One more byte: MetadataTooLarge, nothing stored.
    let over_limit = put_request(&client, B, "over-limit", b"no").metadata("k", "v".repeat(2048));
    assert_sdk_err(over_limit.send().await, 400, "MetadataTooLarge");
    // Several entries adding up to more than 2 KB.
    let mut req = put_request(&client, B, "over-limit", b"no");
    for i in 0..3 {
        req = req.metadata(format!("name-{i}"), "x".repeat(700));
    }
    assert_sdk_err(req.send().await, 400, "MetadataTooLarge");
    assert!(!object_exists(&client, B, "over-limit").await, "nothing stored");
    assert!(!server.bucket_dir(B).join("over-limit").exists());

    // Over the limit on an existing key keeps the old object.
    let etag = put_bytes(&client, B, "keep", b"original").await;
    let big = "y".repeat(3000);
    let r = server.raw("PUT", &format!("/{B}/keep"), &[("x-amz-meta-big", &big)], b"replacement").await;
    r.assert_error(400, "MetadataTooLarge");
    assert_eq!(get_bytes(&client, B, "keep").await, b"original");
    assert_eq!(client.head_object().bucket(B).key("keep").send().await.unwrap().e_tag(), Some(etag.as_str()));

    // CreateMultipartUpload checks it too.
    assert_sdk_err(
        create_upload_request(&client, B, "mp-over").metadata("k", "v".repeat(2048)).send().await,
        400,
        "MetadataTooLarge",
    );
    assert!(client.list_multipart_uploads().bucket(B).send().await.unwrap().uploads().is_empty());
    assert_eq!(list_all_keys(&client, B, "").await, vec!["at-limit", "keep"]);
    assert_eq!(private_files(&server.bucket_dir(B)).iter().filter(|p| p.contains("uploads")).count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_overrides_change_only_the_response() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    put_request(&client, B, "ov", b"override me")
        .content_type("text/plain")
        .cache_control("max-age=1")
        .content_disposition("inline")
        .content_language("en")
        .send()
        .await
        .unwrap();

    let got = client
        .get_object()
        .bucket(B)
        .key("ov")
        .response_content_type("application/json")
        .response_content_disposition("attachment; filename=\"x.json\"")
        .response_cache_control("no-store")
        .response_content_language("de")
        .response_content_encoding("identity")
        .response_expires(sdk_time(EXPIRES))
        .send()
        .await
        .or_panic("GET with response overrides");
    assert_eq!(got.content_type(), Some("application/json"));
    assert_eq!(got.content_disposition(), Some("attachment; filename=\"x.json\""));
    assert_eq!(got.cache_control(), Some("no-store"));
    assert_eq!(got.content_language(), Some("de"));
    assert_eq!(got.content_encoding(), Some("identity"));
    assert_eq!(got.expires_string(), Some(http_date(EXPIRES).as_str()));
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"override me");

    // Raw GET with query parameters: refused when anonymous (as AWS does), served when the
    // request names a user (simple mode does not check the signature).
    let target = format!("/{B}/ov?response-content-type=image%2Fgif&response-content-disposition=attachment");
    let anonymous = server.raw("GET", &target, &[], b"").await;
    assert_eq!(anonymous.status, 400, "{}", anonymous.text());
    assert!(anonymous.text().contains("<Code>InvalidRequest</Code>"), "{}", anonymous.text());
    let auth =
        "AWS4-HMAC-SHA256 Credential=tester/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";
    let r = server.raw("GET", &target, &[("authorization", auth)], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/gif"));
    assert_eq!(r.header("content-disposition"), Some("attachment"));
    assert_eq!(r.header("cache-control"), Some("max-age=1"), "not overridden: stored value");

    // Nothing stored changed.
    for _ in 0..2 {
        let h = client.head_object().bucket(B).key("ov").send().await.unwrap();
        assert_eq!(h.content_type(), Some("text/plain"));
        assert_eq!(h.cache_control(), Some("max-age=1"));
        assert_eq!(h.content_disposition(), Some("inline"));
        assert_eq!(h.content_language(), Some("en"));
        assert_eq!(h.content_encoding(), None);
        assert_eq!(h.expires_string(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_honours_response_overrides() {
    // HeadObject takes the same response-* parameters as GetObject.
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let put = put_request(&client, B, "ov", b"override me").content_type("text/plain").cache_control("max-age=1");
    put.send().await.unwrap();
    let head = client
        .head_object()
        .bucket(B)
        .key("ov")
        .response_content_type("application/x-head")
        .response_cache_control("private")
        .response_content_disposition("attachment")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/x-head"), "HEAD response-content-type");
    assert_eq!(head.cache_control(), Some("private"), "HEAD response-cache-control");
    assert_eq!(head.content_disposition(), Some("attachment"), "HEAD response-content-disposition");
    let h = client.head_object().bucket(B).key("ov").send().await.unwrap();
    assert_eq!(h.content_type(), Some("text/plain"), "stored value unchanged");
}

/// Sets the `x-amz-checksum-<alg>` value of a PutObject request.
fn with_checksum(req: PutObjectFluentBuilder, alg: Alg, value: String) -> PutObjectFluentBuilder {
    match alg {
        Alg::Crc32 => req.checksum_crc32(value),
        Alg::Crc32c => req.checksum_crc32_c(value),
        Alg::Crc64Nvme => req.checksum_crc64_nvme(value),
        Alg::Sha1 => req.checksum_sha1(value),
        Alg::Sha256 => req.checksum_sha256(value),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_checksums_are_stored_and_returned() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let plain = server.client_plain_put();
    for (i, alg) in Alg::ALL.into_iter().enumerate() {
        let data = pseudo_random_bytes(200 + i as u64, 150_000 + i);
        let want = alg.b64(&data);

        // The SDK computes the checksum (aws-chunked trailer).
        let key = format!("sum/{alg:?}");
        let req = put_request(&client, B, &key, &data).checksum_algorithm(alg.sdk());
        let put = req.send().await.or_panic(&format!("{alg:?}"));
        assert_eq!(checksum_of!(put, alg), Some(want.clone()), "{alg:?}: PutObject response checksum");
        assert_eq!(put.e_tag(), Some(etag_of(&data).as_str()));

        let head = head_with_checksums(&client, B, &key).await;
        assert_eq!(checksum_of!(head, alg), Some(want.clone()), "{alg:?}: HEAD checksum");
        assert_eq!(head.checksum_type(), Some(&ChecksumType::FullObject), "{alg:?}");
        let got = get_with_checksums(&client, B, &key).await;
        assert_eq!(checksum_of!(got, alg), Some(want.clone()), "{alg:?}: GET checksum");
        assert_eq!(got.checksum_type(), Some(&ChecksumType::FullObject));
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), data.as_slice());

        // On the wire: only with x-amz-checksum-mode: ENABLED, and not for a range.
        let r = server.raw("HEAD", &format!("/{B}/{key}"), &[], b"").await;
        assert_eq!(r.header(alg.header()), None, "{alg:?}: no checksum without checksum mode");
        let r = server.raw("GET", &format!("/{B}/{key}"), &[("x-amz-checksum-mode", "ENABLED")], b"").await;
        assert_eq!(r.header(alg.header()), Some(want.as_str()), "{alg:?}");
        assert_eq!(r.header("x-amz-checksum-type"), Some("FULL_OBJECT"), "{alg:?}");
        assert_eq!(r.body, data);
        let r = server
            .raw("GET", &format!("/{B}/{key}"), &[("x-amz-checksum-mode", "ENABLED"), ("Range", "bytes=0-99")], b"")
            .await;
        assert_eq!(r.status, 206);
        assert_eq!(r.header(alg.header()), None, "{alg:?}: a range read carries no whole-object checksum");

        // A plain (non-chunked) upload with the value in a header.
        let key2 = format!("sum-header/{alg:?}");
        let req = with_checksum(put_request(&plain, B, &key2, &data), alg, want.clone());
        let put = req.send().await.or_panic(&format!("{alg:?} header"));
        assert_eq!(checksum_of!(put, alg), Some(want.clone()));
        let head = head_with_checksums(&client, B, &key2).await;
        assert_eq!(checksum_of!(head, alg), Some(want.clone()), "{alg:?}: header checksum stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_checksum_is_bad_digest_and_stores_nothing() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let plain = server.client_plain_put();
    let data = pseudo_random_bytes(300, 70_000);
    let old = put_bytes(&client, B, "existing", b"old content").await;
    for alg in Alg::ALL {
        let wrong = alg.b64(b"not the body");
        for (label, c) in [("sdk", &client), ("plain", &plain)] {
            let key = format!("bad/{alg:?}-{label}");
            let req = with_checksum(put_request(c, B, &key, &data), alg, wrong.clone());
            assert_sdk_err(req.send().await, 400, "BadDigest");
            assert!(!object_exists(&client, B, &key).await, "{key}: nothing stored");
        }
        // On an existing key the old object stays.
        let req = with_checksum(put_request(&plain, B, "existing", &data), alg, wrong.clone());
        assert_sdk_err(req.send().await, 400, "BadDigest");
        let r = server.raw("PUT", &format!("/{B}/bad-raw"), &[(alg.header(), &wrong)], &data).await;
        r.assert_error(400, "BadDigest");
    }
    assert_eq!(get_bytes(&client, B, "existing").await, b"old content");
    assert_eq!(client.head_object().bucket(B).key("existing").send().await.unwrap().e_tag(), Some(old.as_str()));
    assert_eq!(list_all_keys(&client, B, "").await, vec!["existing"]);
    assert_eq!(visible_tree(&server.bucket_dir(B)).len(), 1, "only the existing object in the bucket folder");
    assert_eq!(private_files(&server.bucket_dir(B)), Vec::<String>::new(), "no leftover temporary file");
}
