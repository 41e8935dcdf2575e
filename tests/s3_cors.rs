//! Bucket CORS: Put/Get/DeleteBucketCors through aws-sdk-s3 (round trip,
//! refused configurations change nothing, rules surviving a restart), and raw
//! HTTP for what browsers send: OPTIONS preflights and requests with `Origin`.

use alcove_tests::aws_sdk_s3::operation::put_bucket_cors::{PutBucketCorsError, PutBucketCorsOutput};
use alcove_tests::aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;

const B: &str = "cors";

fn rule(origins: &[&str], methods: &[&str]) -> CorsRule {
    let mut r = CorsRule::builder();
    for o in origins {
        r = r.allowed_origins(*o);
    }
    for m in methods {
        r = r.allowed_methods(*m);
    }
    r.allowed_headers("x-amz-*").expose_headers("ETag").max_age_seconds(300).build().unwrap()
}

async fn put_rules(client: &Client, rules: Vec<CorsRule>) -> SdkResult<PutBucketCorsOutput, PutBucketCorsError> {
    let config = CorsConfiguration::builder().set_cors_rules(Some(rules)).build().unwrap();
    client.put_bucket_cors().bucket(B).cors_configuration(config).send().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_configuration_round_trip_and_limits() {
    let mut server = Server::start_with_bucket(B).await;
    let client = server.client();
    assert_sdk_err(client.get_bucket_cors().bucket(B).send().await, 404, "NoSuchCORSConfiguration");
    let rules = vec![rule(&["https://*.example.com"], &["GET", "PUT"]), rule(&["*"], &["HEAD"])];
    put_rules(&client, rules.clone()).await.or_panic("put cors");
    let got = client.get_bucket_cors().bucket(B).send().await.or_panic("get cors");
    assert_eq!(got.cors_rules(), rules.as_slice());

    assert_sdk_err(put_rules(&client, vec![rule(&["*"], &["PATCH"])]).await, 400, "InvalidRequest");
    assert_sdk_err(put_rules(&client, vec![rule(&["https://*.*.org"], &["GET"])]).await, 400, "InvalidRequest");
    assert_sdk_err(put_rules(&client, vec![rule(&["*"], &["GET"]); 101]).await, 400, "InvalidRequest");
    let got = client.get_bucket_cors().bucket(B).send().await.or_panic("get cors after refusals");
    assert_eq!(got.cors_rules(), rules.as_slice(), "refused configurations change nothing");

    server.restart().await;
    let client = server.client();
    let got = client.get_bucket_cors().bucket(B).send().await.or_panic("get cors after restart");
    assert_eq!(got.cors_rules(), rules.as_slice());
    client.delete_bucket_cors().bucket(B).send().await.or_panic("delete cors");
    assert_sdk_err(client.get_bucket_cors().bucket(B).send().await, 404, "NoSuchCORSConfiguration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_and_origin_headers() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    put_bytes(&client, B, "k", b"hello").await;
    put_rules(&client, vec![rule(&["https://*.example.com"], &["GET", "PUT"])]).await.or_panic("put cors");

    let path = format!("/{B}/k");
    let ask = |origin: &'static str, method: &'static str, headers: &'static str| {
        let path = path.clone();
        let server = &server;
        async move {
            let mut h = vec![("Origin", origin), ("Access-Control-Request-Method", method)];
            if !headers.is_empty() {
                h.push(("Access-Control-Request-Headers", headers));
            }
            server.raw("OPTIONS", &path, &h, b"").await
        }
    };
    let r = ask("https://app.example.com", "PUT", "x-amz-date, x-amz-content-sha256").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example.com"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(r.header("access-control-allow-headers"), Some("x-amz-date, x-amz-content-sha256"));
    assert_eq!(r.header("access-control-max-age"), Some("300"));
    assert_eq!(r.header("access-control-expose-headers"), Some("ETag"));
    assert_eq!(r.header("vary"), Some("Origin, Access-Control-Request-Headers, Access-Control-Request-Method"));

    let mut checks = ShapeChecks::default();
    checks.check("other origin", &ask("https://example.org", "GET", "").await, 403, "AccessForbidden");
    checks.check("bare domain", &ask("https://example.com", "GET", "").await, 403, "AccessForbidden");
    checks.check("method", &ask("https://app.example.com", "DELETE", "").await, 403, "AccessForbidden");
    checks.check("header", &ask("https://app.example.com", "GET", "authorization").await, 403, "AccessForbidden");
    let r = server.raw("OPTIONS", &path, &[("Access-Control-Request-Method", "GET")], b"").await;
    checks.check("no origin", &r, 400, "BadRequest");
    checks.finish();

    let r = server.raw("GET", &path, &[("Origin", "https://app.example.com")], b"").await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example.com"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-expose-headers"), Some("ETag"));
    let r = server.raw("GET", &path, &[("Origin", "https://example.org")], b"").await;
    assert_eq!(r.header("access-control-allow-origin"), None, "no rule for this origin");
}
