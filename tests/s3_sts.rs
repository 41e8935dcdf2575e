//! Temporary (STS) credentials with aws-sdk-s3: an oidc-mode worker verifies them statelessly
//! from its STS key, so the test makes them itself with that key, the way a worker's STS does
//! (tests/clients/test_oidc.py gets them from STS with real tokens): signed and aws-chunked
//! uploads, multipart, presigned URLs, the policies of the user behind them, and the refusals
//! for expired credentials and missing or foreign session tokens.

use alcove_tests::aws_sdk_s3::config::Credentials;
use alcove_tests::aws_sdk_s3::presigning::PresigningConfig;
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const STS_KEY: &str = "the-sts-key-of-s3-sts-tests";

fn config() -> String {
    format!(
        r#"[s3]
access_log = true

[auth]
mode = "oidc"
sts_key = "{STS_KEY}"
allow_anonymous = false

[auth.oidc]
issuer = "http://127.0.0.1:9"
audience = "alcove"

[[auth.credentials]]
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"

[[auth.policies]]
users = ["{ACCESS_KEY}"]
actions = ["read", "write", "list"]
resources = ["*"]

[[auth.policies]]
users = ["alice"]
actions = ["read", "write", "list"]
resources = ["alice"]
"#
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Access key, secret and session token for `user`, expiring at `expires` (seconds since 1970),
/// made with `sts_key` as a worker's STS makes them.
fn temporary(sts_key: &str, user: &str, expires: i64, seed: u64) -> (String, String, String) {
    let key = hmac(sts_key.as_bytes(), b"alcove sts key v1");
    let access_key = format!("ASIA{:016X}", Prng::new(seed).next_u64());
    let secret = STANDARD.encode(&hmac(&key, format!("secret\n{access_key}").as_bytes())[..30]);
    let session = serde_json::json!({"k": access_key, "u": user, "g": [], "e": expires});
    let payload = URL_SAFE_NO_PAD.encode(session.to_string());
    let mac = URL_SAFE_NO_PAD.encode(hmac(&key, format!("token\n{payload}").as_bytes()));
    (access_key, secret, format!("alcove1.{payload}.{mac}"))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn client_with_token(server: &Server, (ak, sk, token): &(String, String, String)) -> Client {
    let credentials = Credentials::new(ak, sk, Some(token.clone()), None, "sts-test");
    Client::from_conf(server.config_builder(ak, sk).credentials_provider(credentials).build())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_credentials_sign_every_kind_of_request() {
    let server = Server::start_with_config(&config()).await;
    let admin = server.client_with(ACCESS_KEY, SECRET_KEY);
    for b in ["alice", "other"] {
        admin.create_bucket().bucket(b).send().await.or_panic(&format!("create {b}"));
    }
    let creds = temporary(STS_KEY, "alice", now() + 600, 1);
    let alice = client_with_token(&server, &creds);
    // aws-sdk-s3 sends PutObject aws-chunked with a CRC trailer by default.
    let data = pseudo_random_bytes(7, 300_000);
    put_bytes(&alice, "alice", "chunked", &data).await;
    assert_eq!(get_bytes(&alice, "alice", "chunked").await, data);
    let parts: [&[u8]; 2] = [&[b'a'; 5 << 20], b"tail"];
    let etag = multipart_put(&alice, "alice", "multi", &parts).await;
    assert_eq!(etag, multipart_etag(&parts));
    assert_eq!(list_all_keys(&alice, "alice", "").await, ["chunked", "multi"]);
    assert_sdk_err(put_request(&alice, "other", "k", b"x").send().await, 403, "AccessDenied");

    let presigned = alice
        .get_object()
        .bucket("alice")
        .key("chunked")
        .presigned(PresigningConfig::expires_in(std::time::Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    assert!(presigned.uri().contains("X-Amz-Security-Token="));
    let body = http_client().get(presigned.uri()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), data.as_slice());
    let log = server.access_log_lines();
    assert!(log.iter().any(|l| l.contains("key=\"multi\"") && l.contains("user=\"alice\"")), "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_temporary_credentials_are_refused() {
    let server = Server::start_with_config(&config()).await;
    server.client_with(ACCESS_KEY, SECRET_KEY).create_bucket().bucket("alice").send().await.or_panic("create");
    let get = |c: Client| async move { c.list_objects_v2().bucket("alice").send().await };

    let expired = temporary(STS_KEY, "alice", now() - 1, 2);
    assert_sdk_err(get(client_with_token(&server, &expired)).await, 400, "ExpiredToken");
    let (ak, sk, _) = temporary(STS_KEY, "alice", now() + 600, 3);
    assert_sdk_err(get(server.client_with(&ak, &sk)).await, 403, "InvalidAccessKeyId");
    let (_, _, someone_elses) = temporary(STS_KEY, "alice", now() + 600, 4);
    assert_sdk_err(get(client_with_token(&server, &(ak.clone(), sk, someone_elses))).await, 400, "InvalidToken");
    let foreign = temporary("a-key-of-another-cluster", "alice", now() + 600, 5);
    assert_sdk_err(get(client_with_token(&server, &foreign)).await, 403, "SignatureDoesNotMatch");
    // Anonymous access is off here: unsigned requests are refused before any policy.
    server.raw("GET", "/alice", &[], b"").await.assert_error(403, "AccessDenied");
}
