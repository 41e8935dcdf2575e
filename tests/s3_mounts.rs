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
    let mut server = Server::start().await;
    let ufs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ufs.path().join("albums/2024")).unwrap();
    std::fs::write(ufs.path().join("albums/2024/beach.jpg"), b"JPEGDATA").unwrap();
    std::fs::write(ufs.path().join("readme.txt"), b"hello ufs").unwrap();
    let ufs2 = tempfile::tempdir().unwrap();
    std::fs::write(ufs2.path().join("x.bin"), b"second").unwrap();
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
    let server = Server::start_with_bucket("local").await;
    let ufs = tempfile::tempdir().unwrap();
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
    let cfg = format!("[[mounts]]\npath = \"/configured\"\nufs = \"{}\"\n", file_uri(ufs.path()));
    let server = Server::start_with_config(&cfg).await;
    assert!(bucket_names(&server).await.contains(&"configured".to_owned()));
    let client = server.client();
    assert_eq!(get_bytes(&client, "configured", "from-config.txt").await, b"configured");
    put_bytes(&client, "configured", "written.txt", b"w").await;
    assert_eq!(std::fs::read(ufs.path().join("written.txt")).unwrap(), b"w");
    let listed = mount_list(&server);
    assert!(listed.contains(&("/configured".to_owned(), file_uri(ufs.path()))), "config mounts are listed: {listed:?}");
}
