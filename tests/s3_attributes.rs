//! ListBuckets paging (`max-buckets`, continuation tokens, `prefix`) and
//! GetObjectAttributes (ETag, checksum, ObjectParts with part checksums and
//! paging, storage class, size) through aws-sdk-s3, with raw checks of what
//! the SDK hides (the unquoted ETag, the errors).

use alcove_tests::aws_sdk_s3::types::{ChecksumType, CompletedMultipartUpload, CompletedPart, ObjectAttributes};
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;

const B: &str = "attrs";

fn all_attributes() -> Vec<ObjectAttributes> {
    vec![
        ObjectAttributes::Etag,
        ObjectAttributes::Checksum,
        ObjectAttributes::ObjectParts,
        ObjectAttributes::StorageClass,
        ObjectAttributes::ObjectSize,
    ]
}

/// A completed CRC32 (composite) upload of `parts`.
async fn crc32_upload(client: &Client, key: &str, parts: &[&[u8]]) {
    let req = create_upload_request(client, B, key).checksum_algorithm(Alg::Crc32.sdk());
    let created = req.send().await.or_panic("create");
    let upload = Upload::new(client, B, key, created.upload_id().unwrap());
    let mut completed = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = upload.part_request(n, data).checksum_algorithm(Alg::Crc32.sdk()).send().await.or_panic("part");
        let part =
            CompletedPart::builder().part_number(n).e_tag(out.e_tag().unwrap()).checksum_crc32(Alg::Crc32.b64(data));
        completed.push(part.build());
    }
    let body = CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
    upload.complete_request_with(body).send().await.or_panic("complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_buckets_pages_with_tokens() {
    let server = Server::start().await;
    let client = server.client();
    let mut made: Vec<String> = (0..5).map(|i| format!("page-{i}")).collect();
    made.push("other".into());
    for name in &made {
        server.create_bucket(name).await;
    }
    let mut seen = Vec::new();
    let mut token = None;
    for page in 0.. {
        let out = client.list_buckets().prefix("page-").max_buckets(2).set_continuation_token(token).send().await;
        let out = out.or_panic("list buckets page");
        assert_eq!(out.prefix(), Some("page-"));
        seen.extend(out.buckets().iter().map(|b| b.name().unwrap().to_owned()));
        token = out.continuation_token().map(str::to_owned);
        if token.is_none() {
            assert_eq!(page, 2, "five buckets in pages of two");
            break;
        }
    }
    assert_eq!(seen, made[..5]);

    let everything = client.list_buckets().send().await.or_panic("list buckets");
    assert_eq!(everything.buckets().len(), 6, "no paging parameter: all at once");
    assert_eq!(everything.continuation_token(), None);

    let mut checks = ShapeChecks::default();
    for query in ["max-buckets=0", "max-buckets=10001", "continuation-token=cGFnZS0w%2F"] {
        let r = server.raw("GET", &format!("/?{query}"), &[], b"").await;
        checks.check(query, &r, 400, "InvalidArgument");
    }
    checks.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_attributes_of_single_and_multipart_objects() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let small = b"small object".to_vec();
    put_request(&client, B, "small", &small).checksum_algorithm(Alg::Crc32.sdk()).send().await.or_panic("put");
    let out = client.get_object_attributes().bucket(B).key("small").set_object_attributes(Some(all_attributes()));
    let out = out.send().await.or_panic("attributes of small");
    assert_eq!(out.e_tag(), Some(md5_hex(&small).as_str()), "unquoted");
    assert_eq!(out.object_size(), Some(small.len() as i64));
    assert_eq!(out.storage_class().map(|s| s.as_str()), Some("STANDARD"));
    let checksum = out.checksum().expect("checksum");
    assert_eq!(checksum.checksum_crc32(), Some(Alg::Crc32.b64(&small).as_str()));
    assert_eq!(checksum.checksum_type(), Some(&ChecksumType::FullObject));
    assert!(out.object_parts().is_none());
    assert!(out.last_modified().is_some());

    let parts: [&[u8]; 3] = [&pseudo_random_bytes(1, MIB5), &pseudo_random_bytes(2, MIB5), b"tail"];
    crc32_upload(&client, "big", &parts).await;
    let req = client.get_object_attributes().bucket(B).key("big").set_object_attributes(Some(all_attributes()));
    let out = req.max_parts(2).send().await.or_panic("attributes of big");
    assert_eq!(out.e_tag(), Some(multipart_etag(&parts).trim_matches('"')));
    let composite = Alg::Crc32.composite(&parts);
    let checksum = out.checksum().expect("checksum");
    assert_eq!(checksum.checksum_crc32(), composite.strip_suffix("-3"), "no part count");
    assert_eq!(checksum.checksum_type(), Some(&ChecksumType::Composite));
    let op = out.object_parts().expect("parts");
    assert_eq!((op.total_parts_count(), op.max_parts(), op.is_truncated()), (Some(3), Some(2), Some(true)));
    let listed: Vec<(Option<i32>, Option<i64>, Option<&str>)> =
        op.parts().iter().map(|p| (p.part_number(), p.size(), p.checksum_crc32())).collect();
    let b64s: Vec<String> = parts.iter().map(|p| Alg::Crc32.b64(p)).collect();
    assert_eq!(
        listed,
        [(Some(1), Some(MIB5 as i64), Some(b64s[0].as_str())), (Some(2), Some(MIB5 as i64), Some(b64s[1].as_str()))]
    );
    let next = op.next_part_number_marker().expect("next marker").to_owned();
    let req = client.get_object_attributes().bucket(B).key("big").object_attributes(ObjectAttributes::ObjectParts);
    let out = req.part_number_marker(next).send().await.or_panic("second page");
    let op = out.object_parts().expect("parts");
    assert_eq!(op.parts().iter().map(|p| p.part_number()).collect::<Vec<_>>(), [Some(3)]);
    assert_eq!(op.is_truncated(), Some(false));

    let missing = client.get_object_attributes().bucket(B).key("missing").object_attributes(ObjectAttributes::Etag);
    assert_sdk_err(missing.send().await, 404, "NoSuchKey");
    let versioned = client.get_object_attributes().bucket(B).key("small").version_id("v1");
    assert_sdk_err(versioned.object_attributes(ObjectAttributes::Etag).send().await, 404, "NoSuchVersion");

    // Raw: the ETag element unquoted, Last-Modified as a header, unknown names refused.
    let r = server.raw("GET", &format!("/{B}/small?attributes"), &[("x-amz-object-attributes", "ETag")], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(xml_top(&r.text(), "ETag"), Some(md5_hex(&small)));
    assert!(r.header("last-modified").is_some());
    let r =
        server.raw("GET", &format!("/{B}/small?attributes"), &[("x-amz-object-attributes", "ETag,Size")], b"").await;
    r.assert_error(400, "InvalidArgument");
}
