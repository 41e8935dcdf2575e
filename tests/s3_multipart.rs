//! Multipart upload: Create / UploadPart / UploadPartCopy / Complete / Abort,
//! ListParts and ListMultipartUploads (with pagination), the multipart ETag
//! everywhere, reads by part number, staging under `.alcove.sys` (never
//! listed, cleaned up), uploads surviving a restart, and multipart checksums
//! (composite and full-object).

use alcove_tests::aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput;
use alcove_tests::aws_sdk_s3::operation::upload_part::UploadPartOutput;
use alcove_tests::aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart};
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;

const B: &str = "mpu";

/// Uploads part `n` with the SDK computing `alg`, and checks the checksum the server reports.
async fn checksummed_part(upload: &Upload, n: i32, data: &[u8], alg: Alg) -> UploadPartOutput {
    let req = upload.part_request(n, data).checksum_algorithm(alg.sdk());
    let out = req.send().await.or_panic(&format!("{alg:?} part {n}"));
    assert_eq!(checksum_of!(out, alg), Some(alg.b64(data)), "{alg:?}: UploadPart checksum of part {n}");
    out
}

/// One page of ListMultipartUploads of the bucket, after the given markers.
async fn uploads_page(
    client: &Client,
    delimiter: Option<&str>,
    max_uploads: i32,
    key_marker: Option<String>,
    upload_id_marker: Option<String>,
) -> ListMultipartUploadsOutput {
    let req = client.list_multipart_uploads().bucket(B).set_delimiter(delimiter.map(str::to_owned));
    let req = req.max_uploads(max_uploads).set_key_marker(key_marker).set_upload_id_marker(upload_id_marker);
    req.send().await.or_panic("ListMultipartUploads page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_round_trip_etag_and_part_reads() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let p1 = pseudo_random_bytes(1, MIB5);
    let p2 = pseudo_random_bytes(2, MIB5 + 123);
    let p3 = pseudo_random_bytes(3, 777);
    let key = "big/assembled.bin";

    let created = create_upload_request(&client, B, key)
        .content_type("application/x-parts")
        .metadata("origin", "multipart")
        .send()
        .await
        .or_panic("create");
    assert_eq!(created.bucket(), Some(B));
    assert_eq!(created.key(), Some(key));
    let id = created.upload_id().unwrap().to_owned();
    assert!(!id.is_empty());
    let upload = Upload::new(&client, B, key, &id);

    // Parts arrive in any order.
    let e3 = upload.part(3, &p3).await;
    let e1 = upload.part(1, &p1).await;
    let e2 = upload.part(2, &p2).await;
    assert_eq!(
        (e1.as_str(), e2.as_str(), e3.as_str()),
        (etag_of(&p1).as_str(), etag_of(&p2).as_str(), etag_of(&p3).as_str())
    );

    // Staged parts are invisible: no key, no listing entry, nothing in the bucket folder.
    assert!(!object_exists(&client, B, key).await, "no object before Complete");
    assert_eq!(list_all_keys(&client, B, "").await, Vec::<String>::new(), "staged parts are never listed");
    assert_eq!(visible_tree(&server.bucket_dir(B)), vec![], "nothing visible in the bucket folder");
    assert_eq!(server.staged_uploads(B).len(), 1, "the upload is staged under .alcove.sys/uploads");

    let done = upload.complete(&[(1, e1), (2, e2), (3, e3)]).await;
    let want_etag = multipart_etag(&[&p1, &p2, &p3]);
    assert_eq!(done.e_tag(), Some(want_etag.as_str()), "Complete ETag = md5(part md5s)-3");
    assert_eq!(done.bucket(), Some(B));
    assert_eq!(done.key(), Some(key));

    let whole: Vec<u8> = [p1.as_slice(), &p2, &p3].concat();
    let size = whole.len() as i64;
    let head = client.head_object().bucket(B).key(key).send().await.unwrap();
    assert_eq!(head.e_tag(), Some(want_etag.as_str()), "HEAD ETag");
    assert_eq!(head.content_length(), Some(size));
    assert_eq!(head.content_type(), Some("application/x-parts"), "metadata given at Create is kept");
    assert_eq!(head.metadata().and_then(|m| m.get("origin")).map(String::as_str), Some("multipart"));
    let got = client.get_object().bucket(B).key(key).send().await.unwrap();
    assert_eq!(got.e_tag(), Some(want_etag.as_str()), "GET ETag");
    let body = got.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == whole.as_slice(), "GET returns the parts concatenated in order");
    let listed = client.list_objects_v2().bucket(B).prefix("big/").send().await.unwrap();
    let o = listed.contents().iter().find(|o| o.key() == Some(key)).expect("object listed");
    assert_eq!(o.e_tag(), Some(want_etag.as_str()), "ListObjectsV2 ETag");
    assert_eq!(o.size(), Some(size));
    assert!(std::fs::read(server.bucket_dir(B).join(key)).unwrap() == whole, "a plain file on disk");

    // After Complete nothing of the upload remains.
    assert_eq!(server.staged_uploads(B), Vec::<String>::new(), "uploads folder empty after Complete");
    let uploads = client.list_multipart_uploads().bucket(B).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "no upload listed after Complete");
    assert_eq!(list_all_keys(&client, B, "").await, vec![key]);

    // Reads by part number.
    let bounds = [(0usize, p1.len()), (p1.len(), p1.len() + p2.len()), (p1.len() + p2.len(), whole.len())];
    for (i, (start, end)) in bounds.iter().copied().enumerate() {
        let n = i as i32 + 1;
        let want_range = format!("bytes {start}-{}/{size}", end - 1);
        let out = client.get_object().bucket(B).key(key).part_number(n).send().await.or_panic(&format!("GET part {n}"));
        assert_eq!(out.parts_count(), Some(3), "x-amz-mp-parts-count for part {n}");
        assert_eq!(out.content_range(), Some(want_range.as_str()), "Content-Range of part {n}");
        assert_eq!(out.content_length(), Some((end - start) as i64));
        assert_eq!(out.e_tag(), Some(want_etag.as_str()), "ETag of the whole object on a part read");
        let body = out.body.collect().await.unwrap().into_bytes();
        assert!(body.as_ref() == &whole[start..end], "bytes of part {n}");

        let h = client.head_object().bucket(B).key(key).part_number(n).send().await.unwrap();
        assert_eq!(h.parts_count(), Some(3));
        assert_eq!(h.content_length(), Some((end - start) as i64));
        assert_eq!(h.content_range(), Some(want_range.as_str()));
    }
    let r = server.raw("GET", &format!("/{B}/{key}?partNumber=3"), &[], b"").await;
    assert_eq!(r.status, 206, "a part read is a partial response: {}", r.text());
    assert_eq!(r.header("x-amz-mp-parts-count"), Some("3"));
    assert_eq!(r.header("content-range"), Some(format!("bytes {}-{}/{size}", bounds[2].0, size - 1).as_str()));
    assert_eq!(r.body, p3);

    // Beyond the part count: 416.
    assert_sdk_err(client.get_object().bucket(B).key(key).part_number(4).send().await, 416, "InvalidPartNumber");
    assert_sdk_status(client.head_object().bucket(B).key(key).part_number(4).send().await, 416);
    let r = server.raw("GET", &format!("/{B}/{key}?partNumber=9"), &[], b"").await;
    r.assert_error(416, "InvalidPartNumber");

    // A simple object is one part: partNumber=1 is the whole of it, 2 is beyond it.
    put_bytes(&client, B, "simple", b"single part object").await;
    let out = client.get_object().bucket(B).key("simple").part_number(1).send().await.unwrap();
    assert_eq!(out.body.collect().await.unwrap().into_bytes().as_ref(), b"single part object");
    assert_sdk_err(client.get_object().bucket(B).key("simple").part_number(2).send().await, 416, "InvalidPartNumber");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_and_part_details() {
    let server = Server::start_with_bucket(B).await;
    server.create_bucket("mpu-other").await;
    let client = server.client();
    let key = "details";
    let big = pseudo_random_bytes(90, MIB5);
    let upload = Upload::create(&client, B, key).await;
    let id = &upload.id;

    // UploadPart checks Content-MD5.
    let r = server
        .raw("PUT", &format!("/{B}/{key}?partNumber=1&uploadId={id}"), &[("Content-MD5", &md5_b64(b"other"))], &big)
        .await;
    r.assert_error(400, "BadDigest");
    assert!(upload.listed_part_numbers().await.is_empty());
    let r = server
        .raw("PUT", &format!("/{B}/{key}?partNumber=1&uploadId={id}"), &[("Content-MD5", &md5_b64(&big))], &big)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("etag"), Some(etag_of(&big).as_str()));
    let e2 = upload.part(2, b"end").await;

    // The upload id belongs to its bucket and key.
    assert_sdk_err(client.list_parts().bucket("mpu-other").key(key).upload_id(id).send().await, 404, "NoSuchUpload");
    assert_sdk_err(client.list_parts().bucket(B).key("details-2").upload_id(id).send().await, 404, "NoSuchUpload");
    assert_sdk_err(
        client.abort_multipart_upload().bucket("mpu-other").key(key).upload_id(id).send().await,
        404,
        "NoSuchUpload",
    );

    // The same part twice is not ascending.
    let e1 = etag_of(&big);
    let twice = [(1, e1.clone()), (1, e1.clone()), (2, e2.clone())];
    assert_sdk_err(upload.complete_request(&twice).send().await, 400, "InvalidPartOrder");

    // ETags in the Complete body may come without quotes.
    let body = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        e1.trim_matches('"'),
        e2.trim_matches('"')
    );
    let r = server.raw("POST", &format!("/{B}/{key}?uploadId={id}"), &[], body.as_bytes()).await;
    assert_eq!(r.status, 200, "unquoted ETags: {}", r.text());
    let want = multipart_etag(&[&big, b"end"]);
    assert_eq!(xml_top(&r.text(), "ETag").as_deref(), Some(want.as_str()), "{}", r.text());
    assert_eq!(xml_top(&r.text(), "Key").as_deref(), Some(key));
    assert!(get_bytes(&client, B, key).await == [big.as_slice(), b"end"].concat());
    assert_eq!(server.staged_uploads(B), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_errors_leave_the_upload_usable() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let key = "errs/obj";
    let small = pseudo_random_bytes(10, 1000);
    let big = pseudo_random_bytes(11, MIB5);
    let tail = pseudo_random_bytes(12, 100);
    let upload = Upload::create(&client, B, key).await;
    let id = &upload.id;
    let e1 = upload.part(1, &small).await;
    let e2 = upload.part(2, &big).await;
    // Part 3 is sent twice: the second upload replaces the first.
    let e3_old = upload.part(3, b"first version of part three").await;
    let e3 = upload.part(3, &tail).await;
    assert_ne!(e3_old, e3);
    assert_eq!(upload.listed_part_numbers().await, vec![1, 2, 3]);

    let complete = |parts: &[(i32, String)]| upload.complete_request(parts).send();

    // Unknown part number.
    assert_sdk_err(complete(&[(2, e2.clone()), (4, e3.clone())]).await, 400, "InvalidPart");
    // Known number, wrong ETag (also: the replaced ETag of part 3).
    assert_sdk_err(complete(&[(2, etag_of(b"something else"))]).await, 400, "InvalidPart");
    assert_sdk_err(complete(&[(2, e2.clone()), (3, e3_old.clone())]).await, 400, "InvalidPart");
    // Descending part numbers.
    assert_sdk_err(complete(&[(3, e3.clone()), (2, e2.clone())]).await, 400, "InvalidPartOrder");
    // A non-last part under 5 MiB.
    assert_sdk_err(complete(&[(1, e1.clone()), (2, e2.clone())]).await, 400, "EntityTooSmall");
    assert_sdk_err(complete(&[(1, e1.clone()), (2, e2.clone()), (3, e3.clone())]).await, 400, "EntityTooSmall");
    // No parts at all.
    let no_parts = CompletedMultipartUpload::builder().build();
    assert_sdk_err(upload.complete_request_with(no_parts).send().await, 400, "MalformedXML");
    // Unknown upload ids, and a real id used with another key.
    for bad in ["0123456789abcdef0123456789abcdef", "not-an-upload-id"] {
        let unknown = Upload::new(&client, B, key, bad);
        assert_sdk_err(unknown.complete_request(&[(2, e2.clone())]).send().await, 404, "NoSuchUpload");
        assert_sdk_err(unknown.part_request(1, b"x").send().await, 404, "NoSuchUpload");
    }
    let other_key = Upload::new(&client, B, "errs/other", id);
    assert_sdk_err(other_key.complete_request(&[(2, e2.clone())]).send().await, 404, "NoSuchUpload");

    // Nothing was published by the failures, and the upload is intact.
    assert!(!object_exists(&client, B, key).await);
    assert!(!object_exists(&client, B, "errs/other").await);
    assert_eq!(upload.listed_part_numbers().await, vec![1, 2, 3]);

    // Parts may be skipped: complete with 2 and 3 only.
    let out = complete(&[(2, e2.clone()), (3, e3.clone())]).await.or_panic("complete with parts 2 and 3");
    let want = multipart_etag(&[&big, &tail]);
    assert_eq!(out.e_tag(), Some(want.as_str()));
    assert!(get_bytes(&client, B, key).await == [big.as_slice(), &tail].concat());

    // The completed upload is gone: only a repeat of the same Complete still answers.
    assert_sdk_err(complete(&[(1, e1.clone()), (3, e3.clone())]).await, 404, "NoSuchUpload");
    assert_sdk_err(upload.abort_request().send().await, 404, "NoSuchUpload");
    assert_sdk_err(upload.list_parts_request().send().await, 404, "NoSuchUpload");
    assert_eq!(server.staged_uploads(B), Vec::<String>::new(), "uploads folder empty after Complete");

    // Raw error shape of one of them.
    let r = server
        .raw("POST", &format!("/{B}/{key}?uploadId={id}"), &[], b"<CompleteMultipartUpload></CompleteMultipartUpload>")
        .await;
    r.assert_error(404, "NoSuchUpload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_removes_everything() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let key = "aborted/obj";
    let upload = Upload::create(&client, B, key).await;
    let id = &upload.id;
    upload.part(1, &pseudo_random_bytes(20, 300_000)).await;
    upload.part(2, b"tail").await;
    assert_eq!(server.staged_uploads(B), vec![id.clone()], "staged under .alcove.sys/uploads/<id>");
    assert!(
        !private_files(&server.bucket_dir(B)).is_empty(),
        "the parts are files under .alcove.sys while the upload is open"
    );

    let r = server.raw("DELETE", &format!("/{B}/{key}?uploadId={id}"), &[], b"").await;
    assert_eq!(r.status, 204, "AbortMultipartUpload: {}", r.text());

    assert_eq!(server.staged_uploads(B), Vec::<String>::new(), "nothing of the upload remains after Abort");
    assert_eq!(private_files(&server.bucket_dir(B)), Vec::<String>::new(), "no staged file left anywhere");
    assert_sdk_err(upload.list_parts_request().send().await, 404, "NoSuchUpload");
    assert_sdk_err(upload.part_request(3, b"more").send().await, 404, "NoSuchUpload");
    assert_sdk_err(upload.complete_request(&[(2, etag_of(b"tail"))]).send().await, 404, "NoSuchUpload");
    assert_sdk_err(upload.abort_request().send().await, 404, "NoSuchUpload");
    assert!(!object_exists(&client, B, key).await);
    assert!(client.list_multipart_uploads().bucket(B).send().await.unwrap().uploads().is_empty());
    assert_eq!(list_all_keys(&client, B, "").await, Vec::<String>::new());
    assert_eq!(server.staged_uploads(B), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_numbers_outside_range_are_invalid() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let key = "numbers";
    let upload = Upload::create(&client, B, key).await;
    put_bytes(&client, B, "copy-src", b"source").await;
    for n in [0, -1, 10_001, 123_456] {
        assert_sdk_err(upload.part_request(n, b"x").send().await, 400, "InvalidArgument");
        assert_sdk_err(upload.part_copy_request(n, &format!("{B}/copy-src")).send().await, 400, "InvalidArgument");
    }
    assert!(upload.listed_part_numbers().await.is_empty(), "no part stored by the refused requests");
    // Both ends of the range are fine.
    upload.part(1, b"one").await;
    let e_max = upload.part(10_000, b"last").await;
    assert_eq!(upload.listed_part_numbers().await, vec![1, 10_000]);
    // Part 1 is small and could only be last: complete with part 10000 alone.
    let out = upload.complete(&[(10_000, e_max)]).await;
    assert_eq!(out.e_tag(), Some(multipart_etag(&[b"last"]).as_str()));
    assert_eq!(get_bytes(&client, B, key).await, b"last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_parts_pagination() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let key = "paged/parts";
    let upload = Upload::create(&client, B, key).await;
    let data: Vec<Vec<u8>> = (1..=5).map(|n| pseudo_random_bytes(30 + n, 1000 * n as usize)).collect();
    for n in [5, 3, 1, 4, 2] {
        upload.part(n, &data[n as usize - 1]).await;
    }

    let all = upload.list_parts_request().send().await.unwrap();
    assert_eq!(all.is_truncated(), Some(false));
    assert_eq!(all.upload_id(), Some(upload.id.as_str()));
    assert_eq!(all.key(), Some(key));
    let parts: Vec<(i32, String, i64)> = all
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap(), p.e_tag().unwrap().to_owned(), p.size().unwrap()))
        .collect();
    let want: Vec<(i32, String, i64)> =
        (1..=5).map(|n| (n, etag_of(&data[n as usize - 1]), data[n as usize - 1].len() as i64)).collect();
    assert_eq!(parts, want, "parts by number, with ETag and size");
    assert!(all.parts().iter().all(|p| p.last_modified().is_some()));

    // Pages of two.
    let page = |marker: Option<&str>| {
        let req = upload.list_parts_request().max_parts(2).set_part_number_marker(marker.map(str::to_owned));
        async move { req.send().await.or_panic("ListParts page") }
    };
    let nums = |o: &aws_sdk_s3::operation::list_parts::ListPartsOutput| -> Vec<i32> {
        o.parts().iter().map(|p| p.part_number().unwrap()).collect()
    };
    let p1 = page(None).await;
    assert_eq!(nums(&p1), vec![1, 2]);
    assert_eq!(p1.is_truncated(), Some(true));
    assert_eq!(p1.max_parts(), Some(2));
    assert_eq!(p1.next_part_number_marker(), Some("2"));
    let p2 = page(Some("2")).await;
    assert_eq!(nums(&p2), vec![3, 4]);
    assert_eq!(p2.is_truncated(), Some(true));
    assert_eq!(p2.part_number_marker(), Some("2"));
    assert_eq!(p2.next_part_number_marker(), Some("4"));
    let p3 = page(Some("4")).await;
    assert_eq!(nums(&p3), vec![5]);
    assert_eq!(p3.is_truncated(), Some(false));
    // A marker between numbers, and one past the end.
    let mid = upload.list_parts_request().part_number_marker("3").send().await.unwrap();
    assert_eq!(nums(&mid), vec![4, 5]);
    let end = upload.list_parts_request().part_number_marker("5").send().await.unwrap();
    assert!(end.parts().is_empty());
    assert_eq!(end.is_truncated(), Some(false));

    // Following NextPartNumberMarker with max-parts=1 visits each part once.
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..10 {
        let out = upload.list_parts_request().max_parts(1).set_part_number_marker(marker.clone()).send().await.unwrap();
        seen.extend(nums(&out));
        if out.is_truncated() != Some(true) {
            break;
        }
        marker = Some(out.next_part_number_marker().expect("NextPartNumberMarker on a truncated page").to_owned());
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    upload.abort().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_multipart_uploads_prefix_delimiter_pagination() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let mut ids: Vec<(String, String)> = Vec::new();
    for key in ["logs/a", "logs/b", "photos/2024/x", "photos/2024/y", "readme"] {
        ids.push((key.to_owned(), Upload::create(&client, B, key).await.id));
    }
    // A second upload of the same key, initiated later: listed after the first.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    ids.push(("readme".into(), Upload::create(&client, B, "readme").await.id));
    ids.push(("zeta".into(), Upload::create(&client, B, "zeta").await.id));
    let pairs = |o: &ListMultipartUploadsOutput| -> Vec<(String, String)> {
        o.uploads().iter().map(|u| (u.key().unwrap().to_owned(), u.upload_id().unwrap().to_owned())).collect()
    };
    let prefixes = |o: &ListMultipartUploadsOutput| -> Vec<String> {
        o.common_prefixes().iter().map(|p| p.prefix().unwrap().to_owned()).collect()
    };

    let all = client.list_multipart_uploads().bucket(B).send().await.unwrap();
    assert_eq!(pairs(&all), ids, "every upload, by key, then initiation time");
    assert_eq!(all.is_truncated(), Some(false));
    assert!(all.uploads().iter().all(|u| u.initiated().is_some()));

    let logs = client.list_multipart_uploads().bucket(B).prefix("logs/").send().await.unwrap();
    assert_eq!(pairs(&logs), ids[..2].to_vec());
    assert_eq!(logs.prefix(), Some("logs/"));

    let top = client.list_multipart_uploads().bucket(B).delimiter("/").send().await.unwrap();
    assert_eq!(prefixes(&top), vec!["logs/", "photos/"]);
    assert_eq!(pairs(&top), ids[4..].to_vec());
    let photos = client.list_multipart_uploads().bucket(B).prefix("photos/").delimiter("/").send().await.unwrap();
    assert_eq!(prefixes(&photos), vec!["photos/2024/"]);
    assert!(photos.uploads().is_empty());

    // Markers: after a key; after an upload of a key.
    let after_key = client.list_multipart_uploads().bucket(B).key_marker("readme").send().await.unwrap();
    assert_eq!(pairs(&after_key), ids[6..].to_vec());
    let after_id = client
        .list_multipart_uploads()
        .bucket(B)
        .key_marker("readme")
        .upload_id_marker(&ids[4].1)
        .send()
        .await
        .unwrap();
    assert_eq!(pairs(&after_id), ids[5..].to_vec());

    // Pages of two, following NextKeyMarker / NextUploadIdMarker.
    let mut seen = Vec::new();
    let (mut km, mut im): (Option<String>, Option<String>) = (None, None);
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 10, "pagination never ends");
        let out = uploads_page(&client, None, 2, km.clone(), im.clone()).await;
        assert_eq!(out.max_uploads(), Some(2));
        assert!(out.uploads().len() <= 2);
        seen.extend(pairs(&out));
        if out.is_truncated() != Some(true) {
            break;
        }
        km = Some(out.next_key_marker().expect("NextKeyMarker").to_owned());
        im = out.next_upload_id_marker().map(str::to_owned);
        assert!(im.is_some(), "NextUploadIdMarker on a page ending with an upload");
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, ids, "pages of two visit every upload once, in order");

    // Pages of one with a delimiter: prefixes and uploads interleaved, once each.
    let mut seen: Vec<String> = Vec::new();
    let (mut km, mut im): (Option<String>, Option<String>) = (None, None);
    for _ in 0..20 {
        let out = uploads_page(&client, Some("/"), 1, km.clone(), im.clone()).await;
        assert!(out.uploads().len() + out.common_prefixes().len() <= 1);
        seen.extend(prefixes(&out));
        seen.extend(pairs(&out).into_iter().map(|(k, i)| format!("{k}#{i}")));
        if out.is_truncated() != Some(true) {
            break;
        }
        km = out.next_key_marker().map(str::to_owned);
        im = out.next_upload_id_marker().map(str::to_owned);
    }
    let want: Vec<String> = ["logs/".to_owned(), "photos/".to_owned()]
        .into_iter()
        .chain(ids[4..].iter().map(|(k, i)| format!("{k}#{i}")))
        .collect();
    assert_eq!(seen, want);

    // Uploads are never objects.
    assert_eq!(list_all_keys(&client, B, "").await, Vec::<String>::new());
    for (key, id) in &ids {
        Upload::new(&client, B, key, id).abort().await;
    }
    assert!(client.list_multipart_uploads().bucket(B).send().await.unwrap().uploads().is_empty());
    assert_eq!(server.staged_uploads(B), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_survives_restart() {
    let mut server = Server::start_with_bucket(B).await;
    let client = server.client();
    let key = "restart/obj";
    let p1 = pseudo_random_bytes(40, MIB5);
    let p2 = pseudo_random_bytes(41, 4321);
    let created = create_upload_request(&client, B, key)
        .content_type("text/x-restart")
        .metadata("kept", "yes")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let id = created.upload_id().unwrap().to_owned();
    let e1 = Upload::new(&client, B, key, &id).part(1, &p1).await;

    let pid = server.pid();
    server.restart().await;
    assert_ne!(server.pid(), pid);
    let client = server.client();
    let upload = Upload::new(&client, B, key, &id);

    let listed = client.list_multipart_uploads().bucket(B).send().await.unwrap();
    let ups: Vec<(&str, &str)> = listed.uploads().iter().map(|u| (u.key().unwrap(), u.upload_id().unwrap())).collect();
    assert_eq!(ups, vec![(key, id.as_str())], "the upload is still listed after a restart");
    let parts = upload.list_parts_request().send().await.unwrap();
    assert_eq!(parts.parts().len(), 1);
    assert_eq!(parts.parts()[0].e_tag(), Some(e1.as_str()));
    assert_eq!(parts.parts()[0].size(), Some(MIB5 as i64));
    assert_eq!(parts.parts()[0].checksum_crc32(), Some(Alg::Crc32.b64(&p1).as_str()));
    assert_eq!(parts.checksum_algorithm(), Some(&ChecksumAlgorithm::Crc32));

    let e2 = upload.part(2, &p2).await;
    // A composite-checksum upload names each part's checksum on completion, as AWS requires.
    let named = |n: i32, etag: String, data: &[u8]| {
        CompletedPart::builder().part_number(n).e_tag(etag).checksum_crc32(Alg::Crc32.b64(data)).build()
    };
    let body = CompletedMultipartUpload::builder().parts(named(1, e1, &p1)).parts(named(2, e2, &p2)).build();
    let out = upload.complete_request_with(body).send().await.or_panic("complete after the restart");
    let want = multipart_etag(&[&p1, &p2]);
    assert_eq!(out.e_tag(), Some(want.as_str()));
    assert_eq!(
        out.checksum_crc32(),
        Some(Alg::Crc32.composite(&[&p1, &p2]).as_str()),
        "the upload's checksum algorithm survives the restart"
    );
    assert!(get_bytes(&client, B, key).await == [p1.as_slice(), &p2].concat());
    let head = client.head_object().bucket(B).key(key).send().await.unwrap();
    assert_eq!(head.e_tag(), Some(want.as_str()));
    assert_eq!(head.content_type(), Some("text/x-restart"));
    assert_eq!(head.metadata().and_then(|m| m.get("kept")).map(String::as_str), Some("yes"));
    assert_eq!(server.staged_uploads(B), Vec::<String>::new());

    // And the multipart ETag is stable across another restart.
    server.restart().await;
    let h = server.client().head_object().bucket(B).key(key).send().await.unwrap();
    assert_eq!(h.e_tag(), Some(want.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_with_ranges() {
    let server = Server::start_with_bucket(B).await;
    server.create_bucket("mpu-src").await;
    let client = server.client();
    let src_key = "dir with space/ünïcödé+plus.bin";
    let src = pseudo_random_bytes(50, MIB5 + 70_000);
    put_bytes(&client, "mpu-src", src_key, &src).await;
    let big_source = copy_source("mpu-src", src_key);
    let small_key = "small src";
    put_bytes(&client, B, small_key, b"whole small source").await;

    let key = "copied/target";
    let upload = Upload::create(&client, B, key).await;
    let copy = |n: i32, range: Option<String>, source: String| {
        upload.part_copy_request(n, &source).set_copy_source_range(range).send()
    };
    // Part 1: 5 MiB from an offset of the source.
    let c1 = copy(1, Some(format!("bytes=1000-{}", MIB5 + 999)), big_source.clone()).await.or_panic("copy part 1");
    let e1 = c1.copy_part_result().and_then(|r| r.e_tag()).expect("CopyPartResult ETag").to_owned();
    assert_eq!(e1, etag_of(&src[1000..MIB5 + 1000]), "ETag of a copied part is the MD5 of the copied range");
    assert!(c1.copy_part_result().unwrap().last_modified().is_some());
    // Part 2: without a range, the whole (small) source.
    let c2 = copy(2, None, copy_source(B, small_key)).await.or_panic("copy part 2");
    let e2 = c2.copy_part_result().and_then(|r| r.e_tag()).unwrap().to_owned();
    assert_eq!(e2, etag_of(b"whole small source"));
    // Part 3: the last bytes of the source, up to its very last byte.
    let last = src.len() - 1;
    let c3 = copy(3, Some(format!("bytes={}-{last}", MIB5 + 2000)), big_source.clone()).await.or_panic("copy part 3");
    let e3 = c3.copy_part_result().and_then(|r| r.e_tag()).unwrap().to_owned();
    assert_eq!(e3, etag_of(&src[MIB5 + 2000..]));

    // Bad ranges: S3 answers a range outside the source with 400 InvalidArgument
    // ("Range specified is not valid for source object of size: N").
    for range in [format!("bytes=0-{}", src.len()), format!("bytes={}-{}", src.len() + 10, src.len() + 20)] {
        assert_sdk_err(copy(4, Some(range), big_source.clone()).await, 400, "InvalidArgument");
    }
    for range in ["bytes=abc-def", "items=0-10", "bytes=5"] {
        assert_sdk_err(copy(4, Some(range.to_owned()), big_source.clone()).await, 400, "InvalidArgument");
    }
    // Missing source, and a copy condition that fails.
    assert_sdk_err(copy(4, None, "mpu-src/no-such-key".into()).await, 404, "NoSuchKey");
    let unless_changed = upload.part_copy_request(4, &big_source).copy_source_if_match(etag_of(b"not the source"));
    assert_sdk_err(unless_changed.send().await, 412, "PreconditionFailed");
    assert_eq!(upload.listed_part_numbers().await, vec![1, 2, 3], "failed copies store no part");

    let out = upload.complete(&[(1, e1), (3, e3)]).await;
    let parts: [&[u8]; 2] = [&src[1000..MIB5 + 1000], &src[MIB5 + 2000..]];
    let want = multipart_etag(&parts);
    assert_eq!(out.e_tag(), Some(want.as_str()));
    assert!(get_bytes(&client, B, key).await == parts.concat());
    assert_eq!(get_bytes(&client, "mpu-src", src_key).await.len(), src.len(), "source untouched");
    assert_eq!(server.staged_uploads(B), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_checksums() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let big = pseudo_random_bytes(60, MIB5);
    let tail = pseudo_random_bytes(61, 2500);
    for alg in [Alg::Crc32, Alg::Crc32c, Alg::Sha1, Alg::Sha256] {
        let key = format!("composite/{alg:?}");
        let req = create_upload_request(&client, B, &key).checksum_algorithm(alg.sdk());
        let created = req.send().await.or_panic(&format!("{alg:?}"));
        assert_eq!(created.checksum_algorithm(), Some(&alg.sdk()), "{alg:?}");
        assert_eq!(created.checksum_type(), Some(&ChecksumType::Composite), "{alg:?}: COMPOSITE is the default");
        let upload = Upload::new(&client, B, &key, created.upload_id().unwrap());
        let mut completed = Vec::new();
        for (n, data) in [(1, &big), (2, &tail)] {
            let out = checksummed_part(&upload, n, data, alg).await;
            let cp = CompletedPart::builder().part_number(n).e_tag(out.e_tag().unwrap());
            let cp = match alg {
                Alg::Crc32 => cp.checksum_crc32(alg.b64(data)),
                Alg::Crc32c => cp.checksum_crc32_c(alg.b64(data)),
                Alg::Sha1 => cp.checksum_sha1(alg.b64(data)),
                Alg::Sha256 => cp.checksum_sha256(alg.b64(data)),
                Alg::Crc64Nvme => unreachable!(),
            };
            completed.push(cp.build());
        }
        let listed = upload.list_parts_request().send().await.unwrap();
        for (p, data) in listed.parts().iter().zip([&big, &tail]) {
            assert_eq!(checksum_of!(p, alg), Some(alg.b64(data)), "{alg:?}: ListParts checksum");
        }
        let body = CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
        let out = upload.complete_request_with(body).send().await.or_panic(&format!("{alg:?} complete"));
        let want = alg.composite(&[&big, &tail]);
        assert_eq!(checksum_of!(out, alg), Some(want.clone()), "{alg:?}: composite checksum on Complete");
        assert_eq!(out.checksum_type(), Some(&ChecksumType::Composite));
        assert_eq!(out.e_tag(), Some(multipart_etag(&[&big, &tail]).as_str()));

        let head = head_with_checksums(&client, B, &key).await;
        assert_eq!(checksum_of!(head, alg), Some(want.clone()), "{alg:?}: HEAD checksum");
        assert_eq!(head.checksum_type(), Some(&ChecksumType::Composite), "{alg:?}: HEAD checksum type");
        let got = get_with_checksums(&client, B, &key).await;
        assert_eq!(checksum_of!(got, alg), Some(want.clone()), "{alg:?}: GET checksum");
        let body = got.body.collect().await.unwrap().into_bytes();
        assert!(body.as_ref() == [big.as_slice(), &tail].concat().as_slice());

        // Raw: only with x-amz-checksum-mode: ENABLED.
        let r = server.raw("HEAD", &format!("/{B}/{key}"), &[], b"").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header(alg.header()), None, "{alg:?}: no checksum without x-amz-checksum-mode");
        let r = server.raw("HEAD", &format!("/{B}/{key}"), &[("x-amz-checksum-mode", "ENABLED")], b"").await;
        assert_eq!(r.header(alg.header()), Some(want.as_str()));
        assert_eq!(r.header("x-amz-checksum-type"), Some("COMPOSITE"));
    }
    assert_eq!(server.staged_uploads(B), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_object_checksums() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let big = pseudo_random_bytes(70, MIB5);
    let tail = pseudo_random_bytes(71, 3333);
    let whole = [big.as_slice(), &tail].concat();
    for (alg, explicit_type) in
        [(Alg::Crc32, true), (Alg::Crc32c, true), (Alg::Crc64Nvme, false), (Alg::Crc64Nvme, true)]
    {
        let key = format!("full/{alg:?}-{explicit_type}");
        let mut req = create_upload_request(&client, B, &key).checksum_algorithm(alg.sdk());
        if explicit_type {
            req = req.checksum_type(ChecksumType::FullObject);
        }
        let created = req.send().await.or_panic(&format!("{alg:?}"));
        assert_eq!(created.checksum_type(), Some(&ChecksumType::FullObject), "{alg:?}");
        let upload = Upload::new(&client, B, &key, created.upload_id().unwrap());
        let mut done = Vec::new();
        for (n, data) in [(1, &big), (2, &tail)] {
            let out = checksummed_part(&upload, n, data, alg).await;
            done.push((n, out.e_tag().unwrap().to_owned()));
        }
        let mut complete = upload.complete_request(&done);
        if explicit_type {
            // The client may state the whole object's checksum on Complete.
            complete = complete.checksum_type(ChecksumType::FullObject);
            complete = match alg {
                Alg::Crc32 => complete.checksum_crc32(alg.b64(&whole)),
                Alg::Crc32c => complete.checksum_crc32_c(alg.b64(&whole)),
                _ => complete.checksum_crc64_nvme(alg.b64(&whole)),
            };
        }
        let out = complete.send().await.or_panic(&format!("{alg:?} complete"));
        let want = alg.b64(&whole);
        assert_eq!(checksum_of!(out, alg), Some(want.clone()), "{alg:?}: full-object checksum = checksum of content");
        assert_eq!(out.checksum_type(), Some(&ChecksumType::FullObject));
        let head = head_with_checksums(&client, B, &key).await;
        assert_eq!(checksum_of!(head, alg), Some(want.clone()), "{alg:?}: HEAD");
        assert_eq!(head.checksum_type(), Some(&ChecksumType::FullObject));
        // GET validates the body against the full-object checksum in the SDK.
        let got = get_with_checksums(&client, B, &key).await;
        assert_eq!(checksum_of!(got, alg), Some(want));
        assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == whole.as_slice());
    }

    // Algorithm / type combinations AWS refuses.
    for (alg, checksum_type) in
        [(ChecksumAlgorithm::Sha256, ChecksumType::FullObject), (ChecksumAlgorithm::Crc64Nvme, ChecksumType::Composite)]
    {
        let req = create_upload_request(&client, B, "bad-combo").checksum_algorithm(alg).checksum_type(checksum_type);
        assert_sdk_err(req.send().await, 400, "InvalidRequest");
    }
    assert!(client.list_multipart_uploads().bucket(B).send().await.unwrap().uploads().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_wrong_checksum_is_bad_digest() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let key = "badsum";
    let created =
        create_upload_request(&client, B, key).checksum_algorithm(ChecksumAlgorithm::Crc32C).send().await.unwrap();
    let upload = Upload::new(&client, B, key, created.upload_id().unwrap());
    let id = &upload.id;
    let data = pseudo_random_bytes(80, 10_000);
    let wrong = upload.part_request(1, &data).checksum_crc32_c(Alg::Crc32c.b64(b"other bytes"));
    assert_sdk_err(wrong.send().await, 400, "BadDigest");
    assert!(upload.listed_part_numbers().await.is_empty(), "a part with a wrong checksum is not stored");

    // The right value is accepted.
    let right = upload.part_request(1, &data).checksum_crc32_c(Alg::Crc32c.b64(&data));
    let out = right.send().await.or_panic("part with the right CRC32C");
    assert_eq!(out.checksum_crc32_c(), Some(Alg::Crc32c.b64(&data).as_str()));

    // A wrong value over raw HTTP on part 2: refused; part 1 unaffected.
    let r = server
        .raw(
            "PUT",
            &format!("/{B}/{key}?partNumber=2&uploadId={id}"),
            &[("x-amz-checksum-crc32c", &Alg::Crc32c.b64(b"nope"))],
            &data,
        )
        .await;
    r.assert_error(400, "BadDigest");
    assert_eq!(upload.listed_part_numbers().await, vec![1]);
    upload.abort().await;
    assert_eq!(server.staged_uploads(B), Vec::<String>::new());
    assert_eq!(private_files(&server.bucket_dir(B)), Vec::<String>::new(), "no temporary file left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_complete_answers_as_the_first() {
    let mut server = Server::start_with_bucket(B).await;
    let client = server.client();
    let (big, tail) = (pseudo_random_bytes(70, MIB5), pseudo_random_bytes(71, 100));
    let alg = Alg::Crc32;
    let created = create_upload_request(&client, B, "again").checksum_algorithm(alg.sdk()).send().await.unwrap();
    let upload = Upload::new(&client, B, "again", created.upload_id().unwrap());
    let mut completed = Vec::new();
    for (n, data) in [(1, &big), (2, &tail)] {
        let out = checksummed_part(&upload, n, data, alg).await;
        let cp = CompletedPart::builder().part_number(n).e_tag(out.e_tag().unwrap()).checksum_crc32(alg.b64(data));
        completed.push(cp.build());
    }
    let body = CompletedMultipartUpload::builder().set_parts(Some(completed.clone())).build();
    let first = upload.complete_request_with(body.clone()).send().await.or_panic("complete");
    let repeat = upload.complete_request_with(body.clone()).send().await.or_panic("repeated complete");
    assert_eq!(repeat.e_tag(), first.e_tag(), "the same ETag");
    assert_eq!(repeat.checksum_crc32(), first.checksum_crc32(), "the same checksum");
    assert_eq!(repeat.checksum_type(), Some(&ChecksumType::Composite));
    assert_eq!(repeat.location(), first.location());

    // Another parts list is not a repeat; neither is another key.
    let fewer = CompletedMultipartUpload::builder().parts(completed[0].clone()).build();
    assert_sdk_err(upload.complete_request_with(fewer).send().await, 404, "NoSuchUpload");
    let other = Upload::new(&client, B, "other-key", &upload.id);
    assert_sdk_err(other.complete_request_with(body.clone()).send().await, 404, "NoSuchUpload");
    // The upload itself is gone.
    assert_sdk_err(upload.list_parts_request().send().await, 404, "NoSuchUpload");
    assert_sdk_err(upload.abort_request().send().await, 404, "NoSuchUpload");
    assert!(server.staged_uploads(B).is_empty());

    // The answer survives a restart, and the object is the one completed.
    server.restart().await;
    let client = server.client();
    let upload = Upload::new(&client, B, "again", &upload.id);
    let after = upload.complete_request_with(body).send().await.or_panic("complete after restart");
    assert_eq!(after.e_tag(), first.e_tag());
    assert_eq!(get_bytes(&client, B, "again").await, [big.as_slice(), &tail].concat());
}
