//! Authentication: simple mode (any credentials, anonymous allowed or not)
//! and sigv4 mode (wrong secret, unknown key, clock skew, presigned URLs,
//! signed aws-chunked uploads).

use std::time::{Duration, SystemTime};

use alcove_tests::aws_sdk_s3::config::RequestChecksumCalculation;
use alcove_tests::aws_sdk_s3::presigning::PresigningConfig;
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;

const B: &str = "authb";

fn sigv4_config(allow_anonymous: bool) -> String {
    format!(
        r#"
[auth]
mode = "sigv4"
allow_anonymous = {allow_anonymous}

[[auth.credentials]]
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"

[[auth.credentials]]
access_key = "AKIDSECONDUSER"
secret_key = "second-secret"
"#
    )
}

fn good_client(server: &Server) -> Client {
    server.client_with(ACCESS_KEY, SECRET_KEY)
}

/// A sigv4 client that does not add checksums (for presigning).
fn presign_client(server: &Server, access: &str, secret: &str) -> Client {
    Client::from_conf(
        server
            .config_builder(access, secret)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build(),
    )
}

/// Sends a request signed by our own signer.
async fn signed_raw(
    server: &Server,
    signer: &SigV4,
    method: &str,
    path: &str,
    body: &[u8],
    when: time::OffsetDateTime,
) -> RawResponse {
    let host = server.s3_addr.to_string();
    let hash = sha256_hex(body);
    let req = ToSign { method, host: &host, path, query: &[], headers: &[], payload_hash: &hash };
    let signed = signer.sign(&req, when);
    let headers: Vec<(&str, &str)> = signed.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    server.raw(method, path, &headers, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_mode_accepts_any_credentials_and_anonymous() {
    let server = Server::start_with_bucket(B).await;
    for (ak, sk) in [("AKIDONE", "secret-one"), ("whatever", "x"), (ACCESS_KEY, "not-the-secret")] {
        let c = server.client_with(ak, sk);
        put_bytes(&c, B, ak, sk.as_bytes()).await;
        assert_eq!(get_bytes(&c, B, ak).await, sk.as_bytes());
    }
    // Anonymous requests are allowed by default.
    let r = server.raw("PUT", &format!("/{B}/anon"), &[], b"anonymous").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = server.raw("GET", &format!("/{B}/anon"), &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"anonymous");
    // A hand-signed request with a made-up secret is accepted too.
    let r = signed_raw(
        &server,
        &SigV4::new("AKIDMADEUP", "made-up"),
        "GET",
        &format!("/{B}/anon"),
        b"",
        time::OffsetDateTime::now_utc(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"anonymous");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_streaming_upload_in_simple_mode() {
    let server = Server::start_with_bucket(B).await;
    let signer = SigV4::new("AKIDSTREAM", "stream-secret");
    let data = pseudo_random_bytes(5, 150_000);
    let r = streaming_put(&server, &signer, "streamed", &data, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("etag"), Some(etag_of(&data).as_str()));
    assert_eq!(get_bytes(&server.client(), B, "streamed").await, data);
    assert_eq!(std::fs::read(server.bucket_dir(B).join("streamed")).unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_denied_when_disallowed() {
    let mut shapes = ShapeChecks::default();
    let server = Server::start_with_config("[auth]\nallow_anonymous = false\n").await;
    let client = server.client();
    client.create_bucket().bucket(B).send().await.unwrap();
    put_bytes(&client, B, "obj", b"private").await;
    for (method, target) in [
        ("GET", "/".to_owned()),
        ("GET", format!("/{B}")),
        ("GET", format!("/{B}/obj")),
        ("PUT", format!("/{B}/anon")),
        ("DELETE", format!("/{B}/obj")),
        ("PUT", "/newbucket".to_owned()),
    ] {
        let r = server.raw(method, &target, &[], body_for(method, b"data")).await;
        shapes.check(&format!("anonymous {method} {target}"), &r, 403, "AccessDenied");
        assert!(!r.text().contains("private"));
    }
    let r = server.raw("HEAD", &format!("/{B}/obj"), &[], b"").await;
    assert_eq!(r.status, 403);
    assert!(!object_exists(&client, B, "anon").await);
    assert!(!server.root().join("newbucket").exists());
    assert_eq!(get_bytes(&client, B, "obj").await, b"private", "signed requests still work");
    shapes.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_credentials_checked() {
    let mut shapes = ShapeChecks::default();
    let server = Server::start_with_config(&sigv4_config(false)).await;
    let good = good_client(&server);
    good.create_bucket().bucket(B).send().await.unwrap_or_else(|e| panic!("{}", err_text(&e)));
    put_bytes(&good, B, "obj", b"secret data").await;
    assert_eq!(get_bytes(&good, B, "obj").await, b"secret data");
    // A second configured user works as well.
    let second = server.client_with("AKIDSECONDUSER", "second-secret");
    assert_eq!(get_bytes(&second, B, "obj").await, b"secret data");
    assert_eq!(list_all_keys(&second, B, "").await, vec!["obj"]);

    // Wrong secret.
    let wrong = server.client_with(ACCESS_KEY, "wrong-secret");
    assert_sdk_err(wrong.get_object().bucket(B).key("obj").send().await, 403, "SignatureDoesNotMatch");
    assert_sdk_err(
        wrong.put_object().bucket(B).key("w").body(b"x".to_vec().into()).send().await,
        403,
        "SignatureDoesNotMatch",
    );
    assert_sdk_err(wrong.list_objects_v2().bucket(B).send().await, 403, "SignatureDoesNotMatch");
    assert_sdk_err(wrong.list_buckets().send().await, 403, "SignatureDoesNotMatch");
    assert_sdk_err(wrong.delete_object().bucket(B).key("obj").send().await, 403, "SignatureDoesNotMatch");
    // Another user's secret with this user's key is wrong too.
    let swapped = server.client_with(ACCESS_KEY, "second-secret");
    assert_sdk_err(swapped.get_object().bucket(B).key("obj").send().await, 403, "SignatureDoesNotMatch");

    // Unknown access key.
    let unknown = server.client_with("AKIDUNKNOWN", SECRET_KEY);
    assert_sdk_err(unknown.get_object().bucket(B).key("obj").send().await, 403, "InvalidAccessKeyId");
    assert_sdk_err(
        unknown.put_object().bucket(B).key("u").body(b"x".to_vec().into()).send().await,
        403,
        "InvalidAccessKeyId",
    );
    assert_sdk_err(unknown.create_bucket().bucket("newb").send().await, 403, "InvalidAccessKeyId");

    // Anonymous.
    let r = server.raw("GET", &format!("/{B}/obj"), &[], b"").await;
    shapes.check("anonymous GET", &r, 403, "AccessDenied");

    // Nothing was changed by the rejected requests.
    assert_eq!(list_all_keys(&good, B, "").await, vec!["obj"]);
    assert_eq!(get_bytes(&good, B, "obj").await, b"secret data");
    assert!(!server.root().join("newb").exists());

    // Raw errors carry the full error shape.
    for (what, signer, code) in [
        ("raw wrong secret", SigV4::new(ACCESS_KEY, "nope"), "SignatureDoesNotMatch"),
        ("raw unknown key", SigV4::new("AKIDNOBODY", SECRET_KEY), "InvalidAccessKeyId"),
    ] {
        let r = signed_raw(&server, &signer, "GET", &format!("/{B}/obj"), b"", time::OffsetDateTime::now_utc()).await;
        shapes.check(what, &r, 403, code);
    }
    shapes.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_clock_skew() {
    let mut shapes = ShapeChecks::default();
    let server = Server::start_with_config(&sigv4_config(false)).await;
    good_client(&server).create_bucket().bucket(B).send().await.unwrap();
    put_bytes(&good_client(&server), B, "obj", b"skew").await;
    let signer = SigV4::new(ACCESS_KEY, SECRET_KEY);
    let now = time::OffsetDateTime::now_utc();
    let path = format!("/{B}/obj");

    // Our signer is right: a current signature works, and so does a small skew.
    for offset in [0i64, -5 * 60, 5 * 60] {
        let r = signed_raw(&server, &signer, "GET", &path, b"", now + time::Duration::seconds(offset)).await;
        assert_eq!(r.status, 200, "skew {offset}s: {}", r.text());
        assert_eq!(r.body, b"skew");
    }
    for offset in [-20 * 60i64, 20 * 60, -24 * 3600] {
        let r = signed_raw(&server, &signer, "GET", &path, b"", now + time::Duration::seconds(offset)).await;
        shapes.check(&format!("skew {offset}s"), &r, 403, "RequestTimeTooSkewed");
    }
    let r =
        signed_raw(&server, &signer, "PUT", &format!("/{B}/late"), b"late", now - time::Duration::minutes(30)).await;
    shapes.check("skewed PUT", &r, 403, "RequestTimeTooSkewed");
    assert!(!server.bucket_dir(B).join("late").exists());
    shapes.finish();
}

async fn send_presigned(
    http: &reqwest::Client,
    req: &alcove_tests::aws_sdk_s3::presigning::PresignedRequest,
    body: Option<Vec<u8>>,
) -> (u16, Vec<u8>) {
    let method = reqwest::Method::from_bytes(req.method().as_bytes()).unwrap();
    let mut rb = http.request(method, req.uri());
    for (k, v) in req.headers() {
        rb = rb.header(k, v);
    }
    if let Some(b) = body {
        rb = rb.body(b);
    }
    let resp = rb.send().await.expect("send presigned request");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

fn xml_code(body: &[u8]) -> Option<String> {
    xml_top(&String::from_utf8_lossy(body), "Code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_presigned_urls() {
    let server = Server::start_with_config(&sigv4_config(false)).await;
    let good = good_client(&server);
    good.create_bucket().bucket(B).send().await.unwrap();
    put_bytes(&good, B, "dir/file.txt", b"presigned content").await;
    let http = http_client();
    let pc = presign_client(&server, ACCESS_KEY, SECRET_KEY);
    let valid = || PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let expired = || {
        PresigningConfig::builder()
            .start_time(SystemTime::now() - Duration::from_secs(3600))
            .expires_in(Duration::from_secs(60))
            .build()
            .unwrap()
    };

    // Valid GET.
    let req = pc.get_object().bucket(B).key("dir/file.txt").presigned(valid()).await.unwrap();
    assert!(req.uri().contains("X-Amz-Signature="), "{}", req.uri());
    assert!(req.uri().starts_with(&server.endpoint()));
    let (status, body) = send_presigned(&http, &req, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"presigned content");

    // Valid PUT.
    let req = pc.put_object().bucket(B).key("up/loaded.bin").presigned(valid()).await.unwrap();
    let data = pseudo_random_bytes(8, 50_000);
    let (status, body) = send_presigned(&http, &req, Some(data.clone())).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(get_bytes(&good, B, "up/loaded.bin").await, data);

    // Expired GET and PUT.
    let req = pc.get_object().bucket(B).key("dir/file.txt").presigned(expired()).await.unwrap();
    let (status, body) = send_presigned(&http, &req, None).await;
    assert_eq!((status, xml_code(&body).as_deref()), (403, Some("AccessDenied")));
    assert!(!String::from_utf8_lossy(&body).contains("presigned content"));
    let req = pc.put_object().bucket(B).key("expired-put").presigned(expired()).await.unwrap();
    let (status, body) = send_presigned(&http, &req, Some(b"late".to_vec())).await;
    assert_eq!((status, xml_code(&body).as_deref()), (403, Some("AccessDenied")));
    assert!(!object_exists(&good, B, "expired-put").await);

    // Wrong secret / unknown key in a presigned URL.
    let bad = presign_client(&server, ACCESS_KEY, "wrong");
    let req = bad.get_object().bucket(B).key("dir/file.txt").presigned(valid()).await.unwrap();
    let (status, body) = send_presigned(&http, &req, None).await;
    assert_eq!((status, xml_code(&body).as_deref()), (403, Some("SignatureDoesNotMatch")));
    let bad = presign_client(&server, "AKIDUNKNOWN", SECRET_KEY);
    let req = bad.get_object().bucket(B).key("dir/file.txt").presigned(valid()).await.unwrap();
    let (status, body) = send_presigned(&http, &req, None).await;
    assert_eq!((status, xml_code(&body).as_deref()), (403, Some("InvalidAccessKeyId")));

    // A valid URL altered to point at another key.
    put_bytes(&good, B, "dir/other.txt", b"OTHER-CONTENT").await;
    let req = pc.get_object().bucket(B).key("dir/file.txt").presigned(valid()).await.unwrap();
    let tampered = req.uri().replace("dir/file.txt", "dir/other.txt");
    assert_ne!(tampered, req.uri());
    let resp = http.get(&tampered).send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap();
    assert_eq!((status, xml_code(&body).as_deref()), (403, Some("SignatureDoesNotMatch")));
    assert!(!String::from_utf8_lossy(&body).contains("OTHER-CONTENT"));
}

/// PUT with STREAMING-AWS4-HMAC-SHA256-PAYLOAD; `tamper` flips a payload byte
/// after signing.
async fn streaming_put(server: &Server, signer: &SigV4, key: &str, data: &[u8], tamper: bool) -> RawResponse {
    let host = server.s3_addr.to_string();
    let path = format!("/{B}/{key}");
    let chunk = 64 * 1024;
    let n_chunks = data.len().div_ceil(chunk);
    let mut enc_len = 0usize;
    for i in 0..n_chunks {
        let l = (data.len() - i * chunk).min(chunk);
        enc_len += format!("{l:x}").len() + ";chunk-signature=".len() + 64 + 2 + l + 2;
    }
    enc_len += 1 + ";chunk-signature=".len() + 64 + 4;
    let decoded = data.len().to_string();
    let enc_len_s = enc_len.to_string();
    let extra = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", decoded.as_str()),
        ("content-length", enc_len_s.as_str()),
    ];
    let req = ToSign {
        method: "PUT",
        host: &host,
        path: &path,
        query: &[],
        headers: &extra,
        payload_hash: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    };
    let signed = signer.sign(&req, time::OffsetDateTime::now_utc());
    let mut body = signer.chunked_body(&signed, data, chunk);
    assert_eq!(body.len(), enc_len);
    if tamper {
        // Flip a byte of the second chunk's data.
        let pos = body.len() / 2;
        body[pos] ^= 0x55;
    }
    let headers: Vec<(&str, &str)> = signed.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    server.raw("PUT", &path, &headers, &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_signed_streaming_upload() {
    let mut shapes = ShapeChecks::default();
    let server = Server::start_with_config(&sigv4_config(false)).await;
    let good = good_client(&server);
    good.create_bucket().bucket(B).send().await.unwrap();
    let signer = SigV4::new(ACCESS_KEY, SECRET_KEY);
    let data = pseudo_random_bytes(6, 200_000);

    let r = streaming_put(&server, &signer, "chunky", &data, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get_bytes(&good, B, "chunky").await, data, "exactly the payload is stored");

    // A chunk whose data does not match its signature.
    let r = streaming_put(&server, &signer, "tampered", &data, true).await;
    shapes.check("tampered chunk", &r, 403, "SignatureDoesNotMatch");
    assert!(!object_exists(&good, B, "tampered").await);

    // Wrong secret on the seed signature.
    let r = streaming_put(&server, &SigV4::new(ACCESS_KEY, "wrong"), "wrongseed", &data, false).await;
    shapes.check("wrong seed signature", &r, 403, "SignatureDoesNotMatch");
    assert!(!object_exists(&good, B, "wrongseed").await);
    assert_eq!(list_all_keys(&good, B, "").await, vec!["chunky"]);

    // The SDK's own default upload (aws-chunked with a CRC32 trailer) works.
    let big = pseudo_random_bytes(7, 3 << 20);
    put_bytes(&good, B, "sdk-default", &big).await;
    assert_eq!(get_bytes(&good, B, "sdk-default").await, big);
    shapes.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_dates_and_presigned_expiry_limits() {
    let server = Server::start_with_config(&sigv4_config(false)).await;
    let good = good_client(&server);
    good.create_bucket().bucket(B).send().await.unwrap();
    put_bytes(&good, B, "obj", b"dated").await;
    let signer = SigV4::new(ACCESS_KEY, SECRET_KEY);
    let host = server.s3_addr.to_string();
    let path = format!("/{B}/obj");
    let hash = sha256_hex(b"");

    // X-Amz-Date is the request's time; a Date beside it (empty, old, unparsable) does not matter.
    for date in ["", "Mon, 01 Jan 2001 00:00:00 GMT", "not a date"] {
        let req = ToSign { method: "GET", host: &host, path: &path, query: &[], headers: &[], payload_hash: &hash };
        let signed = signer.sign(&req, time::OffsetDateTime::now_utc());
        let mut headers: Vec<(&str, &str)> = signed.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        headers.push(("Date", date));
        let r = server.raw("GET", &path, &headers, b"").await;
        assert_eq!((r.status, r.body.as_slice()), (200, b"dated".as_slice()), "Date: {date:?}: {}", r.text());
    }

    // X-Amz-Expires: at most a week, never negative, a number; checked before the signature.
    let pc = presign_client(&server, ACCESS_KEY, SECRET_KEY);
    let config = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let url = pc.get_object().bucket(B).key("obj").presigned(config).await.unwrap().uri().to_owned();
    assert!(url.contains("X-Amz-Expires=300"), "{url}");
    let http = http_client();
    for (expires, why) in [("604801", "less than a week"), ("-1", "non-negative"), ("soon", "number")] {
        let resp =
            http.get(url.replace("X-Amz-Expires=300", &format!("X-Amz-Expires={expires}"))).send().await.unwrap();
        let status = resp.status().as_u16();
        let body = String::from_utf8_lossy(&resp.bytes().await.unwrap()).into_owned();
        assert_eq!(
            (status, xml_top(&body, "Code").as_deref()),
            (400, Some("AuthorizationQueryParametersError")),
            "{expires}"
        );
        assert!(body.contains(why), "{expires}: {body}");
    }
    // The week itself is allowed (the signature then decides: this URL was signed for 300 s).
    let resp = http.get(url.replace("X-Amz-Expires=300", "X-Amz-Expires=604800")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
}
