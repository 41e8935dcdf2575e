//! Mounts: `alcove mount add/list/remove` against the admin API, mounts as
//! buckets, persistence across restart, and mounts from the config file.

use std::path::Path;

use alcove_tests::*;

fn file_uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn cli_ok(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args);
    assert!(
        out.status.success(),
        "alcove {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Mount lines as (path, uri) pairs.
fn mount_list(server: &Server) -> Vec<(String, String)> {
    let admin = server.admin_url();
    let out = cli_ok(server, &["mount", "list", "--admin", &admin]);
    let mut v: Vec<(String, String)> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (path, rest) = l.split_once("  ").unwrap_or_else(|| panic!("mount line is `path  uri`: {l:?}"));
            let mut parts = rest.split_whitespace();
            let uri = parts.next().unwrap_or("").to_owned();
            // Anything after the URI may only be an annotation like "(config file)".
            let tail = parts.collect::<Vec<_>>().join(" ");
            assert!(
                tail.is_empty() || (tail.starts_with('(') && tail.ends_with(')')),
                "unexpected text after the URI: {l:?}"
            );
            (path.to_owned(), uri)
        })
        .collect();
    v.sort();
    v
}

async fn bucket_names(server: &Server) -> Vec<String> {
    let mut v: Vec<String> = server
        .client()
        .list_buckets()
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)))
        .buckets()
        .iter()
        .map(|b| b.name().unwrap_or("").to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_add_list_remove_and_persist() {
    let ufs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ufs.path().join("albums/2024")).unwrap();
    std::fs::write(ufs.path().join("albums/2024/beach.jpg"), b"JPEGDATA").unwrap();
    std::fs::write(ufs.path().join("readme.txt"), b"hello ufs").unwrap();
    let ufs2 = tempfile::tempdir().unwrap();
    std::fs::write(ufs2.path().join("x.bin"), b"second").unwrap();
    let mut server = Server::start_with_config(&local_roots_config(&[ufs.path(), ufs2.path()])).await;
    let admin = server.admin_url();
    let uri = file_uri(ufs.path());
    let uri2 = file_uri(ufs2.path());

    assert!(mount_list(&server).is_empty(), "no mounts at first");
    cli_ok(&server, &["mount", "add", "--admin", &admin, "--path", "/photos", "--ufs-uri", &uri]);
    cli_ok(&server, &["mount", "add", "--admin", &admin, "--path", "/archive", "--ufs-uri", &uri2]);
    assert_eq!(mount_list(&server), vec![("/archive".to_owned(), uri2.clone()), ("/photos".to_owned(), uri.clone())]);
    // The exact line format: `/path  uri`.
    let raw = cli_ok(&server, &["mount", "list", "--admin", &admin]);
    assert!(raw.lines().any(|l| l == format!("/photos  {uri}")), "{raw:?}");

    // A mount's name is its bucket.
    assert_eq!(bucket_names(&server).await, vec!["archive", "photos"]);
    let client = server.client();
    client.head_bucket().bucket("photos").send().await.unwrap();
    assert_eq!(get_bytes(&client, "photos", "albums/2024/beach.jpg").await, b"JPEGDATA");
    assert_eq!(get_bytes(&client, "photos", "readme.txt").await, b"hello ufs");
    assert_eq!(get_bytes(&client, "archive", "x.bin").await, b"second");
    assert_eq!(list_all_keys(&client, "photos", "").await, vec!["albums/2024/beach.jpg", "readme.txt"]);

    // Writes land in the mounted directory, deletes remove files there.
    put_bytes(&client, "photos", "new/upload.txt", b"uploaded").await;
    assert_eq!(std::fs::read(ufs.path().join("new/upload.txt")).unwrap(), b"uploaded");
    client.delete_object().bucket("photos").key("readme.txt").send().await.unwrap();
    assert!(!ufs.path().join("readme.txt").exists());
    // Nothing of the mount leaks into the root.
    assert!(!server.root().join("photos").exists());

    // Duplicate mount path is refused.
    let out = server.cli(&["mount", "add", "--admin", &admin, "--path", "/photos", "--ufs-uri", &uri2]);
    assert!(!out.status.success(), "adding /photos twice must fail");
    assert_eq!(mount_list(&server).len(), 2);

    // Mounts persist across a restart on the same root.
    server.restart().await;
    let client = server.client();
    assert_eq!(mount_list(&server), vec![("/archive".to_owned(), uri2.clone()), ("/photos".to_owned(), uri.clone())]);
    assert_eq!(bucket_names(&server).await, vec!["archive", "photos"]);
    assert_eq!(get_bytes(&client, "photos", "new/upload.txt").await, b"uploaded");
    assert_eq!(get_bytes(&client, "photos", "albums/2024/beach.jpg").await, b"JPEGDATA");

    // Remove one; its files stay on the UFS, the bucket disappears.
    cli_ok(&server, &["mount", "remove", "--admin", &admin, "--path", "/archive"]);
    assert_eq!(mount_list(&server), vec![("/photos".to_owned(), uri.clone())]);
    assert_eq!(bucket_names(&server).await, vec!["photos"]);
    assert_sdk_status(client.head_bucket().bucket("archive").send().await, 404);
    assert_sdk_err(client.get_object().bucket("archive").key("x.bin").send().await, 404, "NoSuchBucket");
    assert_eq!(std::fs::read(ufs2.path().join("x.bin")).unwrap(), b"second");

    // Removal persists too.
    server.restart().await;
    assert_eq!(mount_list(&server), vec![("/photos".to_owned(), uri.clone())]);
    assert_eq!(bucket_names(&server).await, vec!["photos"]);

    // Removing a mount that does not exist fails.
    let out = server.cli(&["mount", "remove", "--admin", &admin, "--path", "/archive"]);
    assert!(!out.status.success(), "removing an unknown mount must fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_coexist_with_root_buckets() {
    let ufs = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(&local_roots_config(&[ufs.path()])).await;
    server.create_bucket("local").await;
    let admin = server.admin_url();
    cli_ok(&server, &["mount", "add", "--admin", &admin, "--path", "/remote", "--ufs-uri", &file_uri(ufs.path())]);
    assert_eq!(bucket_names(&server).await, vec!["local", "remote"]);
    let client = server.client();
    put_bytes(&client, "local", "k", b"local").await;
    put_bytes(&client, "remote", "k", b"remote").await;
    assert_eq!(std::fs::read(server.root().join("local/k")).unwrap(), b"local");
    assert_eq!(std::fs::read(ufs.path().join("k")).unwrap(), b"remote");
    assert_eq!(get_bytes(&client, "local", "k").await, b"local");
    assert_eq!(get_bytes(&client, "remote", "k").await, b"remote");

    // Path escapes through a mount stay inside the mount.
    let r = server.raw("GET", "/remote/../local/k", &[], b"").await;
    r.assert_error(400, "InvalidArgument");
    let r = server.raw("PUT", "/remote/..%2F..%2Fescaped", &[], b"x").await;
    r.assert_error(400, "InvalidArgument");
    assert!(!ufs.path().parent().unwrap().join("escaped").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_from_config_file() {
    let ufs = tempfile::tempdir().unwrap();
    std::fs::write(ufs.path().join("from-config.txt"), b"configured").unwrap();
    let cfg = format!(
        "{}[[mounts]]\npath = \"/configured\"\nufs = \"{}\"\n",
        local_roots_config(&[ufs.path()]),
        file_uri(ufs.path())
    );
    let server = Server::start_with_config(&cfg).await;
    assert!(bucket_names(&server).await.contains(&"configured".to_owned()));
    let client = server.client();
    assert_eq!(get_bytes(&client, "configured", "from-config.txt").await, b"configured");
    put_bytes(&client, "configured", "written.txt", b"w").await;
    assert_eq!(std::fs::read(ufs.path().join("written.txt")).unwrap(), b"w");
    let listed = mount_list(&server);
    assert!(listed.contains(&("/configured".to_owned(), file_uri(ufs.path()))), "config mounts are listed: {listed:?}");
}

const TOKEN: &str = "test-admin-token-0123456789";

/// Runs `alcove serve` expected to refuse to start; its stderr.
fn serve_refused(args: &[&str], config: Option<&str>) -> String {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let ports = free_ports(3);
    let mut cmd = std::process::Command::new(alcove_bin());
    cmd.arg("serve").arg("--root").arg(&root);
    cmd.args(["--s3-addr", &format!("127.0.0.1:{}", ports[0]), "--peer-addr", &format!("127.0.0.1:{}", ports[2])]);
    cmd.args(args);
    if let Some(config) = config {
        let path = work.path().join("alcove.toml");
        std::fs::write(&path, config).unwrap();
        cmd.arg("--config").arg(path);
    }
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ALCOVE_") {
            cmd.env_remove(&k);
        }
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().expect("run alcove serve");
    assert!(!out.status.success(), "alcove serve must refuse to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn cli_err(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args);
    assert!(!out.status.success(), "alcove {args:?} must fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_admin_port_asks_for_the_token() {
    let ufs = tempfile::tempdir().unwrap();
    let cfg = format!("{}[admin]\ntoken = \"{TOKEN}\"\n", local_roots_config(&[ufs.path()]));
    let server = Server::start_admin_wide(&cfg).await;
    let admin = server.admin_url();
    let http = http_client();
    for open in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(http.get(format!("{admin}{open}")).send().await.unwrap().status().as_u16(), 200, "{open}");
    }
    let body = format!(r#"{{"path": "/photos", "ufs": "{}"}}"#, file_uri(ufs.path()));
    let missing = http.post(format!("{admin}/api/v1/mounts")).body(body.clone()).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 401);
    assert!(missing.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let answer: serde_json::Value = serde_json::from_slice(&missing.bytes().await.unwrap()).unwrap();
    assert!(answer["error"].as_str().unwrap().contains("token"), "{answer}");
    let wrong = http
        .post(format!("{admin}/api/v1/mounts"))
        .header("authorization", "Bearer not-the-token-at-all")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 403);
    for (method, path) in [
        ("GET", "/status"),
        ("GET", "/api/v1/mounts"),
        ("DELETE", "/api/v1/mounts?path=/photos"),
        ("POST", "/api/v1/cache/load"),
        ("POST", "/api/v1/cache/free"),
    ] {
        let req = http.request(method.parse().unwrap(), format!("{admin}{path}")).body("{}");
        assert_eq!(req.send().await.unwrap().status().as_u16(), 401, "{method} {path}");
    }
    let right = http
        .post(format!("{admin}/api/v1/mounts"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 201);
    assert!(server.log().contains("admin request refused"), "refusals are logged");

    // The CLI: --admin-token, then the environment, and clear messages without or with a wrong one.
    let no_token = cli_err(&server, &["mount", "list", "--admin", &admin]);
    assert!(no_token.contains("needs a token") && no_token.contains("--admin-token"), "{no_token}");
    let wrong = cli_err(&server, &["status", "--admin", &admin, "--admin-token", "not-the-token-at-all"]);
    assert!(wrong.contains("refused the admin token"), "{wrong}");
    let listed = cli_ok(&server, &["mount", "list", "--admin", &admin, "--admin-token", TOKEN]);
    assert!(listed.contains("/photos"), "{listed}");
    cli_ok(&server, &["mount", "remove", "--admin", &admin, "--admin-token", TOKEN, "--path", "/photos"]);
    let out = std::process::Command::new(alcove_bin())
        .args(["mount", "add", "--admin", &admin, "--path", "/again", "--ufs-uri", &file_uri(ufs.path())])
        .env("ALCOVE_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = cli_ok(&server, &["mount", "list", "--admin", &admin, "--admin-token", TOKEN]);
    assert!(listed.contains("/again"), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_asked_on_loopback_too() {
    let server = Server::start_with_config(&format!("[admin]\ntoken = \"{TOKEN}\"\n")).await;
    let admin = server.admin_url();
    let http = http_client();
    let r = http.post(format!("{admin}/api/v1/cache/load")).body(r#"{"bucket": "x"}"#).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(http.get(format!("{admin}/healthz")).send().await.unwrap().status().as_u16(), 200);
    let err = cli_err(&server, &["load", "s3://nope/", "--admin", &admin]);
    assert!(err.contains("needs a token"), "{err}");
    let status = cli_ok(&server, &["status", "--admin", &admin, "--admin-token", TOKEN, "--json"]);
    assert!(status.contains("uptime_seconds"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_admin_port_without_a_token_does_not_start() {
    let port = free_ports(1)[0];
    let err = serve_refused(&["--admin-addr", &format!("0.0.0.0:{port}")], None);
    assert!(err.contains("beyond loopback") && err.contains("admin.token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_mounts_stay_inside_the_local_roots() {
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(allowed.path().join("inner")).unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), allowed.path().join("link-out")).unwrap();
    let server = Server::start_with_config(&local_roots_config(&[allowed.path()])).await;
    let admin = server.admin_url();
    let add =
        |path: &str, uri: String| server.cli(&["mount", "add", "--admin", &admin, "--path", path, "--ufs-uri", &uri]);
    let dots = format!(
        "file://{}/inner/../../{}",
        allowed.path().display(),
        outside.path().file_name().unwrap().to_string_lossy()
    );
    for (path, uri) in [
        ("/outside", file_uri(outside.path())),
        ("/dots", dots),
        ("/link", file_uri(&allowed.path().join("link-out"))),
        ("/etc", "file:///etc".to_owned()),
    ] {
        let out = add(path, uri.clone());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("outside the allowed local roots"), "{uri}: {err}");
    }
    let http = http_client();
    let r = http
        .post(format!("{admin}/api/v1/mounts"))
        .body(format!(r#"{{"path": "/outside", "ufs": "{}"}}"#, file_uri(outside.path())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(mount_list(&server).is_empty());
    assert!(add("/inner", file_uri(&allowed.path().join("inner"))).status.success());
    assert!(add("/whole", file_uri(allowed.path())).status.success());
    assert_eq!(mount_list(&server).len(), 2);

    // A config-file mount outside the roots stops the worker at start-up.
    let cfg = format!("[[mounts]]\npath = \"/outside\"\nufs = \"{}\"\n", file_uri(outside.path()));
    let err = serve_refused(&["--admin-addr", &format!("127.0.0.1:{}", free_ports(1)[0])], Some(&cfg));
    assert!(err.contains("outside the allowed local roots"), "{err}");
}
