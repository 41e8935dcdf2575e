//! Key corner cases: special characters, unicode, length limits, trailing
//! slashes, object/folder conflicts and reserved names.

use alcove_tests::*;

const B: &str = "keys";

fn tree(server: &Server) -> Vec<(String, Option<Vec<u8>>)> {
    visible_tree(&server.bucket_dir(B))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_character_keys_round_trip() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let keys = [
        "with space",
        "dir with space/file name.txt",
        "100%",
        "percent%20literal",
        "plus+sign",
        "a+b c",
        "amp&ersand",
        "q?mark",
        "hash#tag",
        "eq=sign;semi,comma",
        "quote\"s'",
        "lt<gt>",
        "brackets[]{}()",
        "tilde~caret^pipe|back`tick",
        "dollar$at@bang!star*",
        "ünïcødé/файл/文件/😀",
        "Ω≈ç√",
        ".hidden",
        "..double-dot-prefix",
        "dots...in...name",
        "trailing.",
        "colon:name",
    ];
    for (i, k) in keys.iter().enumerate() {
        let data = format!("body of {k} #{i}").into_bytes();
        let etag = put_bytes(&client, B, k, &data).await;
        assert_eq!(etag, etag_of(&data), "{k}");
        assert_eq!(get_bytes(&client, B, k).await, data, "GET {k:?}");
        let h = client
            .head_object()
            .bucket(B)
            .key(*k)
            .send()
            .await
            .unwrap_or_else(|e| panic!("HEAD {k:?}: {}", err_text(&e)));
        assert_eq!(h.content_length(), Some(data.len() as i64));
        assert_eq!(std::fs::read(server.bucket_dir(B).join(k)).unwrap(), data, "{k:?} is stored under its own name");
    }
    let listed = list_all_keys(&client, B, "").await;
    for k in keys {
        assert!(listed.iter().any(|l| l == k), "{k:?} listed (got {listed:?})");
    }
    // '+' is not a space and '%20' is not decoded twice.
    assert_eq!(get_bytes(&client, B, "percent%20literal").await, b"body of percent%20literal #3");
    assert!(!object_exists(&client, B, "percent literal").await);
    assert!(!object_exists(&client, B, "plus sign").await);

    // Raw: '+' in the path is a literal plus.
    let r = server.raw("GET", &format!("/{B}/plus+sign"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"body of plus+sign #4");
    let r = server.raw("GET", &format!("/{B}/plus%2Bsign"), &[], b"").await;
    assert_eq!(r.status, 200);
    let r = server.raw("GET", &format!("/{B}/with%20space"), &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"body of with space #0");

    for k in keys {
        client.delete_object().bucket(B).key(k).send().await.unwrap();
    }
    assert_eq!(list_all_keys(&client, B, "").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_length_limits() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();

    // 1024 bytes in total, every component <= 255 bytes.
    let comp = "c".repeat(255);
    let key = format!("{comp}/{comp}/{comp}/{}/{}", "d".repeat(200), "e".repeat(55));
    assert_eq!(key.len(), 1024);
    put_bytes(&client, B, &key, b"max").await;
    assert_eq!(get_bytes(&client, B, &key).await, b"max");
    assert!(list_all_keys(&client, B, "").await.contains(&key));

    // A 255-byte multi-byte component (85 × 3-byte chars).
    let wide = "文".repeat(85);
    assert_eq!(wide.len(), 255);
    put_bytes(&client, B, &format!("u/{wide}"), b"wide").await;
    assert_eq!(get_bytes(&client, B, &format!("u/{wide}")).await, b"wide");

    // 1025 bytes: too long.
    let before = tree(&server);
    let long = format!("{comp}/{comp}/{comp}/{}/{}", "d".repeat(200), "e".repeat(56));
    assert_eq!(long.len(), 1025);
    assert_sdk_err(
        client.put_object().bucket(B).key(&long).body(b"x".to_vec().into()).send().await,
        400,
        "KeyTooLongError",
    );
    // A single component of 256 bytes: too long.
    for k in [
        "e".repeat(256),
        format!("dir/{}", "e".repeat(256)),
        format!("{}/x", "e".repeat(256)),
        format!("u/{}x", "文".repeat(85)),
    ] {
        assert_sdk_err(
            client.put_object().bucket(B).key(&k).body(b"x".to_vec().into()).send().await,
            400,
            "KeyTooLongError",
        );
        assert_sdk_err(client.get_object().bucket(B).key(&k).send().await, 400, "KeyTooLongError");
    }
    assert_eq!(tree(&server), before, "failed PUTs change nothing on disk");

    let r = server.raw("PUT", &format!("/{B}/{}", "z".repeat(2000)), &[], b"x").await;
    r.assert_error(400, "KeyTooLongError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_folder_conflicts() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    put_bytes(&client, B, "a/x", b"child").await;
    put_bytes(&client, B, "f", b"file").await;
    put_bytes(&client, B, "deep/er/leaf", b"leaf").await;
    let before = tree(&server);

    // An object where a folder is.
    for k in ["a", "deep/er", "deep"] {
        assert_sdk_err(
            client.put_object().bucket(B).key(k).body(b"clash".to_vec().into()).send().await,
            400,
            "InvalidRequest",
        );
    }
    // A folder (or object below) where an object is.
    for k in ["f/x", "f/y/z", "f/", "deep/er/leaf/sub", "deep/er/leaf/"] {
        let r = client.put_object().bucket(B).key(k).body(Vec::new().into()).send().await;
        assert_sdk_err(r, 400, "InvalidRequest");
    }
    let r = server.raw("PUT", &format!("/{B}/f/x"), &[], b"raw").await;
    r.assert_error(400, "InvalidRequest");
    assert_eq!(tree(&server), before, "tree unchanged after conflicting PUTs");
    assert_eq!(get_bytes(&client, B, "a/x").await, b"child");
    assert_eq!(get_bytes(&client, B, "f").await, b"file");
    assert_eq!(get_bytes(&client, B, "deep/er/leaf").await, b"leaf");
    assert_eq!(list_all_keys(&client, B, "").await, vec!["a/x", "deep/er/leaf", "f"]);

    // Once the clash is gone, the PUT works.
    client.delete_object().bucket(B).key("a/x").send().await.unwrap();
    put_bytes(&client, B, "a", b"now a file").await;
    assert_eq!(get_bytes(&client, B, "a").await, b"now a file");
    client.delete_object().bucket(B).key("f").send().await.unwrap();
    put_bytes(&client, B, "f/x", b"now nested").await;
    assert_eq!(get_bytes(&client, B, "f/x").await, b"now nested");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_ending_in_slash() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    put_bytes(&client, B, "folder/", b"").await;
    put_bytes(&client, B, "folder/sub/", b"").await;
    assert_eq!(list_all_keys(&client, B, "").await, vec!["folder/", "folder/sub/"]);
    assert!(server.bucket_dir(B).join("folder/sub").is_dir());
    // "folder" (no slash) is not an object.
    assert!(!object_exists(&client, B, "folder").await);
    assert_sdk_err(client.get_object().bucket(B).key("folder").send().await, 404, "NoSuchKey");
    // GET on a folder key that does not exist.
    assert_sdk_err(client.get_object().bucket(B).key("nofolder/").send().await, 404, "NoSuchKey");
    client.delete_object().bucket(B).key("folder/sub/").send().await.unwrap();
    assert_eq!(list_all_keys(&client, B, "").await, vec!["folder/"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_system_component() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let before = tree(&server);
    for k in [".alcove.sys", ".alcove.sys/x", "a/.alcove.sys", "a/.alcove.sys/b", "a/.alcove.sys/"] {
        assert_sdk_err(
            client.put_object().bucket(B).key(k).body(b"x".to_vec().into()).send().await,
            400,
            "InvalidArgument",
        );
        assert_sdk_err(client.get_object().bucket(B).key(k).send().await, 400, "InvalidArgument");
        assert_sdk_err(client.delete_object().bucket(B).key(k).send().await, 400, "InvalidArgument");
    }
    assert_eq!(tree(&server), before);
    // Similar but not reserved names are fine.
    for k in [".alcove.sysx", "x.alcove.sys", "a/.alcove.system"] {
        put_bytes(&client, B, k, b"ok").await;
        assert_eq!(get_bytes(&client, B, k).await, b"ok");
    }
}
