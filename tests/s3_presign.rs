//! `alcove presign`: URLs printed by the CLI work against a worker in sigv4 mode, expire, break
//! when tampered with, and the command refuses bad lifetimes and missing credentials.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use alcove_tests::*;

const B: &str = "presignb";

const CONFIG: &str = r#"
[auth]
mode = "sigv4"
allow_anonymous = false

[[auth.credentials]]
access_key = "AKIDALCOVETEST"
secret_key = "alcove-test-secret"
"#;

/// Runs `alcove presign ARGS` with no AWS_* or ALCOVE_* variables but `env`.
fn presign(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(alcove_bin());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("ALCOVE_") || k.starts_with("AWS_") {
            cmd.env_remove(&k);
        }
    }
    cmd.envs(env.iter().copied()).arg("presign").args(args).stdin(Stdio::null()).output().expect("run alcove presign")
}

/// The URL `alcove presign` printed for `uri` with the test credentials, after `extra` flags.
fn url_for(server: &Server, uri: &str, extra: &[&str]) -> String {
    let endpoint = server.endpoint();
    let mut args = vec![uri, "--endpoint", &endpoint, "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY];
    args.extend_from_slice(extra);
    let out = presign(&args, &[]);
    assert!(out.status.success(), "presign {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).expect("utf-8 URL").trim_end().to_owned();
    assert!(!url.contains(char::is_whitespace), "{url}");
    url
}

async fn send(method: &str, url: &str, body: Option<&[u8]>) -> (u16, Vec<u8>) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = http_client().request(method, url);
    if let Some(b) = body {
        rb = rb.body(b.to_vec());
    }
    let resp = rb.send().await.expect("send presigned request");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

fn code(body: &[u8]) -> Option<String> {
    xml_top(&String::from_utf8_lossy(body), "Code")
}

async fn sigv4_server() -> (Server, alcove_tests::aws_sdk_s3::Client) {
    let server = Server::start_with_config(CONFIG).await;
    let good = server.client_with(ACCESS_KEY, SECRET_KEY);
    good.create_bucket().bucket(B).send().await.expect("create bucket");
    (server, good)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_get_put_head_delete() {
    let (server, good) = sigv4_server().await;
    put_bytes(&good, B, "dir/file.txt", b"presigned content").await;

    let url = url_for(&server, &format!("s3://{B}/dir/file.txt"), &[]);
    assert!(url.starts_with(&format!("{}/{B}/dir/file.txt?", server.endpoint())), "{url}");
    for part in [
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        &format!("X-Amz-Credential={ACCESS_KEY}%2F"),
        "X-Amz-Date=",
        "X-Amz-Expires=3600",
        "X-Amz-SignedHeaders=host",
        "X-Amz-Signature=",
    ] {
        assert!(url.contains(part), "{part} in {url}");
    }
    let (status, body) = send("GET", &url, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"presigned content");
    // Signed for GET, so not for PUT.
    let (status, body) = send("PUT", &url, Some(b"overwrite")).await;
    assert_eq!((status, code(&body).as_deref()), (403, Some("SignatureDoesNotMatch")));

    let data = pseudo_random_bytes(3, 100_000);
    let url = url_for(&server, &format!("s3://{B}/up/loaded.bin"), &["--method", "PUT", "--expires", "15m"]);
    assert!(url.contains("X-Amz-Expires=900"), "{url}");
    let (status, body) = send("PUT", &url, Some(&data)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(get_bytes(&good, B, "up/loaded.bin").await, data);

    let url = url_for(&server, &format!("s3://{B}/up/loaded.bin"), &["--method", "head"]);
    let (status, _) = send("HEAD", &url, None).await;
    assert_eq!(status, 200);

    let url = url_for(&server, &format!("s3://{B}/up/loaded.bin"), &["--method", "DELETE"]);
    let (status, body) = send("DELETE", &url, None).await;
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    assert!(!object_exists(&good, B, "up/loaded.bin").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_keys_round_trip() {
    let (server, good) = sigv4_server().await;
    for key in
        ["with space/a b.txt", "unicode/caf\u{e9} \u{65e5}\u{672c}.txt", "plus/a+b=c&d.txt", "tilde~/x;y,z!'()*@$"]
    {
        let uri = format!("s3://{B}/{key}");
        let put = url_for(&server, &uri, &["--method", "PUT"]);
        let (status, body) = send("PUT", &put, Some(key.as_bytes())).await;
        assert_eq!(status, 200, "PUT {key}: {}", String::from_utf8_lossy(&body));
        assert_eq!(get_bytes(&good, B, key).await, key.as_bytes(), "{key} stored under its own name");
        let (status, body) = send("GET", &url_for(&server, &uri, &[]), None).await;
        assert_eq!((status, body.as_slice()), (200, key.as_bytes()), "GET {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_tampered_urls_are_refused() {
    let (server, good) = sigv4_server().await;
    put_bytes(&good, B, "file.txt", b"secret content").await;
    put_bytes(&good, B, "other.txt", b"OTHER-CONTENT").await;

    let short = url_for(&server, &format!("s3://{B}/file.txt"), &["--expires", "1s"]);
    assert!(short.contains("X-Amz-Expires=1&") || short.ends_with("X-Amz-Expires=1"), "{short}");
    let url = url_for(&server, &format!("s3://{B}/file.txt"), &[]);

    // A changed signature character.
    let at = url.find("X-Amz-Signature=").expect("signature") + "X-Amz-Signature=".len();
    let flipped = if url.as_bytes()[at] == b'0' { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &url[..at], &url[at + 1..]);
    let (status, body) = send("GET", &tampered, None).await;
    assert_eq!((status, code(&body).as_deref()), (403, Some("SignatureDoesNotMatch")));
    // Another key.
    let tampered = url.replace("/file.txt?", "/other.txt?");
    assert_ne!(tampered, url);
    let (status, body) = send("GET", &tampered, None).await;
    assert_eq!((status, code(&body).as_deref()), (403, Some("SignatureDoesNotMatch")));
    assert!(!String::from_utf8_lossy(&body).contains("OTHER-CONTENT"));
    // A longer lifetime.
    let tampered = url.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200");
    let (status, body) = send("GET", &tampered, None).await;
    assert_eq!((status, code(&body).as_deref()), (403, Some("SignatureDoesNotMatch")));
    // Signed with the wrong secret.
    let endpoint = server.endpoint();
    let uri = format!("s3://{B}/file.txt");
    let out = presign(&[&uri, "--endpoint", &endpoint, "--access-key", ACCESS_KEY, "--secret-key", "wrong"], &[]);
    let wrong = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    let (status, body) = send("GET", &wrong, None).await;
    assert_eq!((status, code(&body).as_deref()), (403, Some("SignatureDoesNotMatch")));

    // The untampered URL still works; the 1-second one has expired.
    let (status, body) = send("GET", &url, None).await;
    assert_eq!((status, body.as_slice()), (200, &b"secret content"[..]));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = send("GET", &short, None).await;
    assert_eq!((status, code(&body).as_deref()), (403, Some("AccessDenied")));
    assert!(String::from_utf8_lossy(&body).contains("Request has expired"), "{}", String::from_utf8_lossy(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_the_environment_or_the_config() {
    let (server, good) = sigv4_server().await;
    put_bytes(&good, B, "k", b"value").await;
    let endpoint = server.endpoint();
    let uri = format!("s3://{B}/k");

    // The environment.
    let env = [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", SECRET_KEY)];
    let out = presign(&[&uri, "--endpoint", &endpoint], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, body) = send("GET", String::from_utf8_lossy(&out.stdout).trim_end(), None).await;
    assert_eq!((status, body.as_slice()), (200, &b"value"[..]));

    // The worker's config file: its first credential and, without --endpoint, its S3 address.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("alcove.toml");
    let toml = format!("{CONFIG}\n[s3]\naddr = \"{}\"\n", server.s3_addr);
    std::fs::write(&config, toml).expect("write config");
    let config = config.to_string_lossy().into_owned();
    let out = presign(&[&uri, "--config", &config], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    assert!(url.starts_with(&endpoint), "{url}");
    let (status, body) = send("GET", &url, None).await;
    assert_eq!((status, body.as_slice()), (200, &b"value"[..]));

    // The environment wins over the config.
    let env = [("AWS_ACCESS_KEY_ID", "AKIDOTHER"), ("AWS_SECRET_ACCESS_KEY", "other")];
    let out = presign(&[&uri, "--config", &config], &env);
    assert!(String::from_utf8_lossy(&out.stdout).contains("X-Amz-Credential=AKIDOTHER%2F"));
}

fn assert_refused(out: &Output, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    assert!(out.stdout.is_empty(), "no URL: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains(says), "'{says}' in: {stderr}");
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let keys = ["--access-key", "AKID", "--secret-key", "secret"];
    let with_keys = |extra: &[&str]| {
        let mut args = vec!["s3://b/k"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&keys);
        presign(&args, &[])
    };
    assert_refused(&with_keys(&["--expires", "8d"]), "at most 7 days");
    assert_refused(&with_keys(&["--expires", "604801"]), "at most 7 days");
    assert_refused(&with_keys(&["--expires", "0"]), "at least 1 second");
    assert_refused(&with_keys(&["--expires", "soon"]), "expected e.g. 30s, 15m, 1h or 7d");
    assert_refused(&with_keys(&["--expires=-5"]), "expected e.g. 30s");
    assert_refused(&with_keys(&["--method", "POST"]), "--method");
    assert_refused(&with_keys(&["--endpoint", "localhost:29998"]), "expected http://HOST[:PORT]");
    assert_refused(&presign(&["s3://b", "--access-key", "A", "--secret-key", "S"], &[]), "names no key");
    assert_refused(&presign(&["http://b/k", "--access-key", "A", "--secret-key", "S"], &[]), "not an s3:// URI");
    assert_refused(&presign(&["s3://b/k", "--access-key", "A"], &[]), "--secret-key");

    assert_refused(&presign(&["s3://b/k"], &[]), "no credentials");
    assert_refused(&presign(&["s3://b/k"], &[("AWS_ACCESS_KEY_ID", "A")]), "AWS_SECRET_ACCESS_KEY is not");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("alcove.toml");
    std::fs::write(&config, "[s3]\naddr = \"127.0.0.1:29998\"\n").expect("write config");
    let config = config.to_string_lossy().into_owned();
    assert_refused(&presign(&["s3://b/k", "--config", &config], &[]), "no [[auth.credentials]] entry");
    assert_refused(&presign(&["s3://b/k", "--config", "/nonexistent/alcove.toml"], &[]), "alcove.toml");
}
