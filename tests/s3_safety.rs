//! Safety: path escapes never touch anything outside the bucket folder (the
//! filesystem is checked), and a PUT whose connection drops mid-body leaves
//! no object and no visible temporary file.

use std::path::Path;
use std::time::Duration;

use alcove_tests::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const B: &str = "safe";
const SECRET: &[u8] = b"TOP-SECRET-CONTENT";
const OUTSIDE: &[u8] = b"OUTSIDE-THE-ROOT";
const INSIDE: &[u8] = b"INSIDE-CONTENT";

/// A server with bucket `safe`, another bucket `other` holding a secret, a
/// file at the root level and a file outside the root.
async fn setup() -> Server {
    let server = Server::start_with_bucket(B).await;
    server.create_bucket("other").await;
    std::fs::write(server.root().join("other/secret.txt"), SECRET).unwrap();
    std::fs::write(server.root().join("top.txt"), SECRET).unwrap();
    std::fs::write(server.work_dir().join("outside.txt"), OUTSIDE).unwrap();
    std::fs::create_dir(server.bucket_dir(B).join("a")).unwrap();
    std::fs::write(server.bucket_dir(B).join("a/inside.txt"), INSIDE).unwrap();
    server
}

/// Everything under the work dir (root, files outside it), except the log
/// and the worker's private `.alcove.sys` folders.
fn world(server: &Server) -> Vec<(String, Option<Vec<u8>>)> {
    let log = server.work_dir().join("alcove.stderr.log");
    snapshot_tree(server.work_dir(), &move |p: &Path| p == log || p.file_name().is_some_and(|n| n == ".alcove.sys"))
}

/// Targets (as sent on the wire) whose key escapes or is malformed.
const ESCAPES: &[&str] = &[
    "/safe/../other/secret.txt",
    "/safe/../../outside.txt",
    "/safe/../top.txt",
    "/safe/a/../../other/secret.txt",
    "/safe/a/../inside.txt",
    "/safe/./a/inside.txt",
    "/safe/a/./inside.txt",
    "/safe/a//inside.txt",
    "/safe//other/secret.txt",
    "/safe/..",
    "/safe/.",
    "/safe/a/..",
    "/safe/a/.",
    "/safe/%2e%2e/other/secret.txt",
    "/safe/%2E%2E/%2E%2E/outside.txt",
    "/safe/%2e%2e%2fother%2fsecret.txt",
    "/safe/..%2F..%2Foutside.txt",
    "/safe/a%2F..%2F..%2Fother%2Fsecret.txt",
    "/safe/%2e/a/inside.txt",
    "/safe/a%2F%2Finside.txt",
    "/safe/%2Fother%2Fsecret.txt",
    "/safe/%2F..%2Ftop.txt",
    "/safe/..%5Cother%5Csecret.txt",
    "/safe/a%5Cinside.txt",
    "/safe/a%00inside.txt",
    "/safe/a/inside.txt%00",
    "/safe/%00",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_escapes_are_rejected_and_touch_nothing() {
    let server = setup().await;
    let before = world(&server);
    let mut wrong = Vec::new();

    for target in ESCAPES {
        for method in ["GET", "HEAD", "PUT", "DELETE"] {
            let r = server.raw(method, target, &[], body_for(method, b"pwned")).await;
            let body = r.text();
            assert!(
                !body.contains("TOP-SECRET") && !body.contains("OUTSIDE-THE") && !body.contains("INSIDE-CONTENT"),
                "{method} {target} leaked file content: {body}"
            );
            // Wrong status/code is collected (to report every case at once);
            // a leak or a filesystem change fails right away.
            if method == "HEAD" {
                if r.status != 400 || !r.body.is_empty() {
                    wrong.push(format!("{method} {target}: {} {:?}", r.status, body));
                }
            } else if r.status != 400 || r.error_code().as_deref() != Some("InvalidArgument") {
                wrong.push(format!("{method} {target}: {} {:?}", r.status, body));
            } else {
                assert_error_shape(&r);
            }
        }
        assert_eq!(world(&server), before, "filesystem unchanged after {target}");
    }

    // Same through the SDK (which sends the key's characters percent-encoded
    // where needed).
    let client = server.client();
    for key in [
        "../other/secret.txt",
        "../../outside.txt",
        "a/../../top.txt",
        "./a/inside.txt",
        "a//inside.txt",
        "/other/secret.txt",
        "..",
        "a/..",
        "a\\..\\..\\top.txt",
        "a\0b",
        "%2e%2e/x",
    ] {
        let put = client.put_object().bucket(B).key(key).body(b"pwned".to_vec().into()).send().await;
        if key == "%2e%2e/x" {
            // A literal "%2e%2e" component is an ordinary name, not "..".
            put.unwrap_or_else(|e| panic!("{key}: {}", err_text(&e)));
            assert_eq!(std::fs::read(server.bucket_dir(B).join("%2e%2e/x")).unwrap(), b"pwned");
            client.delete_object().bucket(B).key(key).send().await.unwrap();
            continue;
        }
        assert_sdk_err(put, 400, "InvalidArgument");
        assert_sdk_err(client.get_object().bucket(B).key(key).send().await, 400, "InvalidArgument");
        assert_sdk_err(client.delete_object().bucket(B).key(key).send().await, 400, "InvalidArgument");
    }
    assert_eq!(world(&server), before, "filesystem unchanged after SDK escapes");

    // A raw backslash in the request target: refused one way or another.
    for target in ["/safe/..\\other\\secret.txt", "/safe/a\\inside.txt"] {
        let r = server.raw("GET", target, &[], b"").await;
        assert_eq!(r.status, 400, "GET {target}: {}", r.text());
        assert!(!r.text().contains("TOP-SECRET") && !r.text().contains("INSIDE-CONTENT"));
        let r = server.raw("PUT", target, &[], b"pwned").await;
        assert_eq!(r.status, 400, "PUT {target}");
    }
    assert_eq!(world(&server), before);

    // Listing with an escaping prefix never shows other buckets' files.
    for prefix in ["../", "..%2F", "../other/", "%2e%2e%2F"] {
        let r = server.raw("GET", &format!("/safe?list-type=2&prefix={prefix}"), &[], b"").await;
        let body = r.text();
        assert!(
            !body.contains("secret.txt") && !body.contains("outside.txt") && !body.contains("top.txt"),
            "listing with prefix {prefix} leaked: {body}"
        );
        if r.status == 200 {
            assert_eq!(xml_count(&body, "Contents"), 0, "{body}");
        } else {
            r.assert_error(400, "InvalidArgument");
        }
    }

    // Bucket names that try to escape.
    for target in ["/..", "/../outside.txt", "/%2e%2e/outside.txt", "/.", "/%2E%2E"] {
        let r = server.raw("GET", target, &[], b"").await;
        assert!((400..500).contains(&r.status), "GET {target}: {} {}", r.status, r.text());
        assert!(!r.text().contains("OUTSIDE-THE"));
        let r = server.raw("PUT", target, &[], b"pwned").await;
        assert!((400..500).contains(&r.status), "PUT {target}: {}", r.status);
    }
    assert_eq!(world(&server), before);

    // The legitimate objects are still fine.
    assert_eq!(get_bytes(&client, B, "a/inside.txt").await, INSIDE);
    assert_eq!(get_bytes(&client, "other", "secret.txt").await, SECRET);
    assert!(server.log().lines().all(|l| !l.contains("panicked")), "worker did not panic");
    assert!(wrong.is_empty(), "escapes not answered 400 InvalidArgument (with valid XML):\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_with_escaping_keys_touches_nothing() {
    let server = setup().await;
    let before = world(&server);
    let client = server.client();
    use alcove_tests::aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let keys = ["../other/secret.txt", "../../outside.txt", "a/../../top.txt", "/a/inside.txt", "a//inside.txt"];
    let out = client
        .delete_objects()
        .bucket(B)
        .delete(
            Delete::builder()
                .set_objects(Some(keys.iter().map(|k| ObjectIdentifier::builder().key(*k).build().unwrap()).collect()))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert!(out.deleted().is_empty(), "{:?}", out.deleted());
    let mut errs: Vec<(&str, &str)> =
        out.errors().iter().map(|e| (e.key().unwrap_or(""), e.code().unwrap_or(""))).collect();
    errs.sort();
    let mut want: Vec<(&str, &str)> = keys.iter().map(|k| (*k, "InvalidArgument")).collect();
    want.sort();
    assert_eq!(errs, want);
    assert_eq!(world(&server), before);
}

/// Sends a PUT whose body is cut off: headers announce `announced` bytes (or
/// chunked encoding), `sent` bytes go out, then the socket is closed.
async fn dropped_put(server: &Server, key: &str, chunked: bool, sent: usize) {
    let mut s = TcpStream::connect(server.s3_addr).await.unwrap();
    let head = if chunked {
        format!("PUT /{B}/{key} HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n", server.s3_addr)
    } else {
        format!("PUT /{B}/{key} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n", server.s3_addr, 16 << 20)
    };
    s.write_all(head.as_bytes()).await.unwrap();
    let data = pseudo_random_bytes(99, sent);
    if chunked {
        for c in data.chunks(64 * 1024) {
            s.write_all(format!("{:x}\r\n", c.len()).as_bytes()).await.unwrap();
            s.write_all(c).await.unwrap();
            s.write_all(b"\r\n").await.unwrap();
        }
    } else {
        s.write_all(&data).await.unwrap();
    }
    s.flush().await.unwrap();
    // Give the server time to consume what was sent, then drop the connection
    // without sending the rest (and without the final chunk).
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_dropped_connection_leaves_nothing() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    put_bytes(&client, B, "kept", b"original content").await;
    let before_bucket = visible_tree(&server.bucket_dir(B));

    dropped_put(&server, "dropped", false, 4 << 20).await;
    dropped_put(&server, "dir/dropped-chunked", true, 2 << 20).await;
    dropped_put(&server, "kept", false, 1 << 20).await;

    // Let the server notice the disconnects.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..3 {
        assert!(!object_exists(&client, B, "dropped").await);
        assert!(!object_exists(&client, B, "dir/dropped-chunked").await);
        assert!(!object_exists(&client, B, "dir/").await, "no folder left from the dropped PUT");
        assert_eq!(get_bytes(&client, B, "kept").await, b"original content");
        assert_eq!(list_all_keys(&client, B, "").await, vec!["kept"]);
        assert_eq!(
            visible_tree(&server.bucket_dir(B)),
            before_bucket,
            "no temp file or partial object visible in the bucket folder"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        private_files(&server.bucket_dir(B)),
        Vec::<String>::new(),
        "temporary files of the dropped uploads are cleaned up"
    );

    // Also after a restart (any cleanup on start must not resurrect data).
    let mut server = server;
    server.restart().await;
    let client = server.client();
    assert_eq!(list_all_keys(&client, B, "").await, vec!["kept"]);
    assert_eq!(get_bytes(&client, B, "kept").await, b"original content");
    assert_eq!(visible_tree(&server.bucket_dir(B)), before_bucket);

    // The worker is healthy: a normal PUT to the same keys works.
    put_bytes(&client, B, "dropped", b"complete").await;
    assert_eq!(get_bytes(&client, B, "dropped").await, b"complete");
}
