//! Limits against hostile or broken clients, on a real worker: the size and count of a request's
//! header section, XML body size, keys per DeleteObjects, parts per upload, clients that trickle
//! their headers or stall their body, and connections per worker. Each limit gets the S3 error
//! AWS sends for it, changes nothing, and leaves the worker serving everyone else.

use std::time::{Duration, Instant};

use alcove_tests::aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use alcove_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const B: &str = "lim";

async fn server_with(config: &str) -> Server {
    let server = Server::start_with_config(config).await;
    server.create_bucket(B).await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_sections_over_the_limit_are_refused() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let mut checks = ShapeChecks::default();

    // Just under 8 KiB of headers: served.
    let r = server.raw("PUT", "/lim/fits", &[("x-custom", &"v".repeat(7900))], b"fits").await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Over it, in one header, in the query, or in many lines: 400 RequestHeaderSectionTooLarge
    // with AWS's MaxSizeAllowed, and nothing written.
    let r = server.raw("PUT", "/lim/big", &[("x-custom", &"v".repeat(9000))], b"data").await;
    checks.check("9000-byte header", &r, 400, "RequestHeaderSectionTooLarge");
    assert_eq!(xml_top(&r.text(), "MaxSizeAllowed").as_deref(), Some("8192"), "{}", r.text());
    let r = server.raw("GET", &format!("/lim?list-type=2&prefix={}", "p".repeat(9000)), &[], b"").await;
    checks.check("9000-byte query", &r, 400, "RequestHeaderSectionTooLarge");
    let names: Vec<String> = (0..101).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let r = server.raw("PUT", "/lim/many", &many, b"data").await;
    checks.check("101 header lines", &r, 400, "RequestHeaderSectionTooLarge");
    assert!(r.text().contains("header lines"), "{}", r.text());

    // Far beyond (over four times the limit): hyper itself answers 431 and closes.
    let r = server.raw("PUT", "/lim/huge", &[("x-custom", &"v".repeat(100_000))], b"data").await;
    assert_eq!(r.status, 431, "{}", r.text());
    let lines: Vec<String> = (0..300).map(|i| format!("x-h{i}")).collect();
    let lots: Vec<(&str, &str)> = lines.iter().map(|n| (n.as_str(), "1")).collect();
    assert_eq!(server.raw("PUT", "/lim/lots", &lots, b"data").await.status, 431);

    for key in ["big", "many", "huge", "lots"] {
        assert!(!object_exists(&client, B, key).await, "{key} was written");
    }
    assert_eq!(get_bytes(&client, B, "fits").await, b"fits");
    checks.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_limits_follow_the_config() {
    let server = server_with("[s3]\nmax_header_size = \"16KiB\"\nmax_headers = 200\n").await;
    let r = server.raw("PUT", "/lim/k", &[("x-custom", &"v".repeat(12_000))], b"data").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let names: Vec<String> = (0..150).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    assert_eq!(server.raw("GET", "/lim/k", &many, b"").await.status, 200);
    let r = server.raw("PUT", "/lim/k2", &[("x-custom", &"v".repeat(17_000))], b"data").await;
    r.assert_error(400, "RequestHeaderSectionTooLarge");
    assert_eq!(xml_top(&r.text(), "MaxSizeAllowed").as_deref(), Some("16384"));
}

/// A body whose XML is `prefix`, padded with spaces to `size` bytes, then `suffix`.
fn padded_xml(prefix: &str, suffix: &str, size: usize) -> Vec<u8> {
    let mut body = prefix.as_bytes().to_vec();
    body.resize(size - suffix.len(), b' ');
    body.extend_from_slice(suffix.as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_bodies_over_the_limit_are_refused() {
    let server = server_with("[s3]\nmax_xml_size = 65536\n").await;
    let client = server.client();
    put_bytes(&client, B, "k", b"kept").await;
    let mut checks = ShapeChecks::default();
    let big = 70_000;

    let tagging = padded_xml("<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag>", "</TagSet></Tagging>", big);
    let r = server.raw("PUT", "/lim/k?tagging", &[], &tagging).await;
    checks.check("PutObjectTagging", &r, 400, "MaxMessageLengthExceeded");
    assert!(object_tags(&client, B, "k").await.is_empty(), "no tags were set");

    let delete = padded_xml("<Delete><Object><Key>k</Key></Object>", "</Delete>", big);
    let md5 = md5_b64(&delete);
    let r = server.raw("POST", "/lim?delete", &[("Content-MD5", &md5)], &delete).await;
    checks.check("DeleteObjects", &r, 400, "MaxMessageLengthExceeded");
    assert!(r.text().contains("s3.max_xml_size"), "{}", r.text());
    assert_eq!(get_bytes(&client, B, "k").await, b"kept", "nothing was deleted");

    let cors = padded_xml(
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>",
        "</CORSConfiguration>",
        big,
    );
    let r = server.raw("PUT", "/lim?cors", &[("Content-MD5", &md5_b64(&cors))], &cors).await;
    checks.check("PutBucketCors", &r, 400, "MaxMessageLengthExceeded");

    let (upload, parts) = upload_parts(&client, B, "mp", &[b"only part"]).await;
    let complete = padded_xml(
        &format!("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part>", parts[0].1),
        "</CompleteMultipartUpload>",
        big,
    );
    let r = server.raw("POST", &format!("/lim/mp?uploadId={}", upload.id), &[], &complete).await;
    checks.check("CompleteMultipartUpload", &r, 400, "MaxMessageLengthExceeded");
    // Found by fuzz::requests: a form content type took the body past the cap (a 500).
    let form = [("Content-Type", "multipart/form-data; boundary=x")];
    let form_body = padded_xml("--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n", "\r\n--x--\r\n", big);
    let r = server.raw("POST", &format!("/lim/mp?uploadId={}", upload.id), &form, &form_body).await;
    checks.check("CompleteMultipartUpload as a form", &r, 400, "MaxMessageLengthExceeded");
    // POST form uploads are not implemented; their bodies are not read past the cap either.
    let r = server.raw("POST", "/lim", &form, &form_body).await;
    checks.check("POST form upload", &r, 400, "MaxMessageLengthExceeded");
    assert!(!object_exists(&client, B, "mp").await);
    upload.complete(&parts).await;
    assert_eq!(get_bytes(&client, B, "mp").await, b"only part", "the upload survived the refusal");

    // Under the limit, the same requests work.
    let fits = padded_xml("<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag>", "</TagSet></Tagging>", 60_000);
    assert_eq!(server.raw("PUT", "/lim/k?tagging", &[], &fits).await.status, 200);
    assert_eq!(object_tags(&client, B, "k").await, tag_pairs(&[("a", "b")]));
    checks.finish();
}

fn identifiers(keys: impl IntoIterator<Item = String>) -> Delete {
    let objects = keys.into_iter().map(|k| ObjectIdentifier::builder().key(k).build().unwrap()).collect();
    Delete::builder().set_objects(Some(objects)).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_takes_at_most_1000_keys() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    for key in ["k/0000", "k/0500", "k/1000"] {
        put_bytes(&client, B, key, b"x").await;
    }
    let keys = |n: usize| (0..n).map(|i| format!("k/{i:04}"));
    let r = client.delete_objects().bucket(B).delete(identifiers(keys(1001))).send().await;
    assert_sdk_err(r, 400, "MalformedXML");
    assert_eq!(list_all_keys(&client, B, "k/").await, ["k/0000", "k/0500", "k/1000"], "nothing was deleted");

    let out = client.delete_objects().bucket(B).delete(identifiers(keys(1000))).send().await.or_panic("1000 keys");
    assert_eq!(out.deleted().len(), 1000);
    assert_eq!(list_all_keys(&client, B, "k/").await, ["k/1000"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_numbers_stay_within_1_to_10000() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let upload = Upload::create(&client, B, "parts").await;
    let mut checks = ShapeChecks::default();
    for number in ["0", "10001", "-1", "99999999999"] {
        let target = format!("/lim/parts?partNumber={number}&uploadId={}", upload.id);
        let r = server.raw("PUT", &target, &[], b"data").await;
        checks.check(&format!("UploadPart {number}"), &r, 400, "InvalidArgument");
    }
    let r = server.raw("PUT", &format!("/lim/parts?partNumber=abc&uploadId={}", upload.id), &[], b"data").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(upload.listed_part_numbers().await.is_empty(), "no part was stored");

    let etag = upload.part(1, b"one").await;
    // A list naming 10001 parts: the part beyond 10000 is InvalidArgument.
    let too_many: Vec<CompletedPart> =
        (1..=10_001).map(|n| CompletedPart::builder().part_number(n).e_tag(&etag).build()).collect();
    let body = CompletedMultipartUpload::builder().set_parts(Some(too_many)).build();
    assert_sdk_err(upload.complete_request_with(body).send().await, 400, "InvalidArgument");
    // A part named twice: InvalidPartOrder.
    assert_sdk_err(
        upload.complete_request(&[(1, etag.clone()), (1, etag.clone())]).send().await,
        400,
        "InvalidPartOrder",
    );
    assert!(!object_exists(&client, B, "parts").await);
    upload.complete(&[(1, etag)]).await;
    assert_eq!(get_bytes(&client, B, "parts").await, b"one", "the upload survived the refusals");
    checks.finish();
}

/// Reads until the peer closes the connection (or `limit` passes): what arrived, and when.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Some(started.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, None),
        }
    }
}

const SLOW: &str = "[s3]\nheader_timeout = \"1s\"\nbody_idle_timeout = \"1s\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_trickling_in_are_cut_off() {
    let server = server_with(SLOW).await;
    let client = server.client();
    put_bytes(&client, B, "k", b"still served").await;
    // Five connections sending a header byte every 200 ms.
    let request = format!("GET /lim/k HTTP/1.1\r\nHost: {}\r\nx-slow: {}\r\n\r\n", server.s3_addr, "z".repeat(100));
    let mut trickling = Vec::new();
    for _ in 0..5 {
        let request = request.clone().into_bytes();
        let addr = server.s3_addr;
        trickling.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let started = Instant::now();
            for byte in request {
                if s.write_all(&[byte]).await.is_err() {
                    break;
                }
                if started.elapsed() > Duration::from_secs(8) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let (answer, _) = read_until_closed(&mut s, Duration::from_secs(2)).await;
            (started.elapsed(), answer)
        }));
    }
    // Meanwhile everyone else is served at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    assert_eq!(get_bytes(&client, B, "k").await, b"still served");
    assert!(t.elapsed() < Duration::from_secs(1), "a normal request waited {:?}", t.elapsed());
    for task in trickling {
        let (lasted, answer) = task.await.unwrap();
        assert!(lasted < Duration::from_secs(5), "a trickling connection lasted {lasted:?}");
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.contains("still served"), "a trickled request was served: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_a_request_timeout() {
    let server = server_with(SLOW).await;
    let client = server.client();
    let before = visible_tree(&server.bucket_dir(B));
    let mut s = TcpStream::connect(server.s3_addr).await.unwrap();
    let head =
        format!("PUT /lim/stalled HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\n0123456789", server.s3_addr);
    s.write_all(head.as_bytes()).await.unwrap();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    let closed = closed.expect("the worker answers and closes the connection");
    assert!(closed >= Duration::from_millis(900) && closed < Duration::from_secs(5), "after {closed:?}");
    let r = parse_response(&answer, false);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("RequestTimeout"));
    assert!(r.text().contains("not read from or written to within the timeout period"), "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    assert!(!object_exists(&client, B, "stalled").await);
    assert_eq!(visible_tree(&server.bucket_dir(B)), before, "no partial object or temp file");

    // The same with chunked framing, and on an XML body (DeleteObjects).
    let mut s = TcpStream::connect(server.s3_addr).await.unwrap();
    let head = format!(
        "POST /lim?delete HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nContent-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==\r\n\r\n5\r\n<Dele",
        server.s3_addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    parse_response(&answer, false).assert_error(400, "RequestTimeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_steady_body_is_not_cut() {
    let server = server_with(SLOW).await;
    let mut s = TcpStream::connect(server.s3_addr).await.unwrap();
    let head = format!(
        "PUT /lim/steady HTTP/1.1\r\nHost: {}\r\nContent-Length: 8\r\nConnection: close\r\n\r\n",
        server.s3_addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // 8 bytes, one every 400 ms: 3.2 s in all, but never 1 s of silence.
    for byte in b"steadily" {
        tokio::time::sleep(Duration::from_millis(400)).await;
        s.write_all(&[*byte]).await.unwrap();
    }
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    let r = parse_response(&answer, false);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get_bytes(&server.client(), B, "steady").await, b"steadily");
}

/// Sends a GET on a kept-alive connection and reads its whole answer (which has a
/// Content-Length): the status.
async fn keep_alive_get(s: &mut TcpStream, server: &Server, target: &str) -> u16 {
    let request = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n\r\n", server.s3_addr);
    s.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.expect("an answer").unwrap();
        assert!(n > 0, "the connection closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let r = parse_response(&got[..end + 4], true);
            let length: usize = r.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            if got.len() >= end + 4 + length {
                return r.status;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_get_slow_down() {
    let server = server_with("[s3]\nmax_connections = 3\n").await;
    put_bytes(&server.client(), B, "k", b"x").await;
    // The SDK's pooled connection may still be open: wait until the worker counts none.
    let settle = |want: f64| {
        let server = &server;
        async move {
            for _ in 0..50 {
                if server.metric("alcove_s3_connections ").await == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the worker never counted {want} connections");
        }
    };
    settle(0.0).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.s3_addr).await.unwrap();
        assert_eq!(keep_alive_get(&mut s, &server, "/lim/k").await, 200);
        held.push(s);
    }
    settle(3.0).await;
    assert_eq!(server.metric("alcove_s3_max_connections ").await, 3.0);

    // One more: 503 SlowDown with Retry-After, at once.
    let t = Instant::now();
    let r = server.raw("GET", "/lim/k", &[], b"").await;
    assert!(t.elapsed() < Duration::from_secs(2), "the refusal took {:?}", t.elapsed());
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("SlowDown"));
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.text().contains("s3.max_connections"), "{}", r.text());
    assert!(server.metric("alcove_s3_refused_connections_total").await >= 1.0);

    // The connections held keep working, and a freed slot is taken again.
    assert_eq!(keep_alive_get(&mut held[0], &server, "/lim/k").await, 200);
    drop(held.pop());
    settle(2.0).await;
    assert_eq!(server.raw("GET", "/lim/k", &[], b"").await.status, 200);
    assert_eq!(get_bytes(&server.client(), B, "k").await, b"x");
}
