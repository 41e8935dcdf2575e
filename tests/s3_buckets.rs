//! Bucket operations: ListBuckets, HeadBucket, CreateBucket, DeleteBucket,
//! GetBucketVersioning, and the shape of error responses.

use alcove_tests::*;

async fn bucket_names(server: &Server) -> Vec<String> {
    let out = server.client().list_buckets().send().await.unwrap_or_else(|e| panic!("list buckets: {}", err_text(&e)));
    out.buckets().iter().map(|b| b.name().unwrap_or("").to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_buckets_shows_created_and_hand_made_folders_but_not_system_dir() {
    let server = Server::start().await;
    // The worker keeps its state in ROOT/.alcove.sys; it must never be a bucket.
    assert_eq!(bucket_names(&server).await, Vec::<String>::new());

    server.create_bucket("zeta").await;
    server.create_bucket("alpha").await;
    assert!(server.bucket_dir("alpha").is_dir(), "CreateBucket makes a folder in the root");
    assert!(server.bucket_dir("zeta").is_dir());

    // mkdir by hand also makes a bucket.
    std::fs::create_dir(server.root().join("handmade")).unwrap();
    // A plain file at the top level is not a bucket.
    std::fs::write(server.root().join("not-a-bucket.txt"), b"x").unwrap();

    let mut names = bucket_names(&server).await;
    names.sort();
    assert_eq!(names, vec!["alpha", "handmade", "zeta"]);

    let out = server.client().list_buckets().send().await.unwrap();
    for b in out.buckets() {
        assert!(b.creation_date().is_some(), "bucket {:?} has a CreationDate", b.name());
    }

    // Hand-made bucket is fully usable.
    let client = server.client();
    client.head_bucket().bucket("handmade").send().await.unwrap();
    put_bytes(&client, "handmade", "k", b"hello").await;
    assert_eq!(
        std::fs::read(server.root().join("handmade/k")).unwrap(),
        b"hello",
        "objects are plain files under the bucket folder"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_existing_bucket_conflicts() {
    let server = Server::start().await;
    let client = server.client();
    server.create_bucket("dup").await;
    assert_sdk_err(client.create_bucket().bucket("dup").send().await, 409, "BucketAlreadyOwnedByYou");
    let r = server.raw("PUT", "/dup", &[], b"").await;
    r.assert_error(409, "BucketAlreadyOwnedByYou");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_bucket_existing_and_missing() {
    let server = Server::start().await;
    let client = server.client();
    server.create_bucket("present").await;
    client.head_bucket().bucket("present").send().await.unwrap();
    assert_sdk_status(client.head_bucket().bucket("absent").send().await, 404);

    let r = server.raw("HEAD", "/absent", &[], b"").await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty(), "HEAD response must have no body: {:?}", r.text());
    assert!(r.header("x-amz-request-id").is_some(), "x-amz-request-id on HEAD 404");
    let r = server.raw("HEAD", "/present", &[], b"").await;
    assert_eq!(r.status, 200);
    assert!(r.header("x-amz-request-id").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_bucket_paths() {
    let server = Server::start().await;
    let client = server.client();

    // Missing bucket.
    assert_sdk_err(client.delete_bucket().bucket("nope").send().await, 404, "NoSuchBucket");

    // Non-empty bucket.
    server.create_bucket("full").await;
    put_bytes(&client, "full", "dir/obj", b"data").await;
    assert_sdk_err(client.delete_bucket().bucket("full").send().await, 409, "BucketNotEmpty");
    assert!(server.bucket_dir("full").join("dir/obj").is_file(), "nothing deleted");
    assert_eq!(get_bytes(&client, "full", "dir/obj").await, b"data");

    // Empty it, then the delete works (raw request to check the 204).
    client.delete_object().bucket("full").key("dir/obj").send().await.unwrap();
    let r = server.raw("DELETE", "/full", &[], b"").await;
    assert_eq!(r.status, 204, "DeleteBucket status; body {}", r.text());
    assert!(r.header("x-amz-request-id").is_some());
    assert!(!server.bucket_dir("full").exists(), "bucket folder removed");
    assert_sdk_status(client.head_bucket().bucket("full").send().await, 404);
    assert!(!bucket_names(&server).await.contains(&"full".to_owned()));

    // Deleting it again: NoSuchBucket.
    let r = server.raw("DELETE", "/full", &[], b"").await;
    r.assert_error(404, "NoSuchBucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_versioning_has_no_status() {
    let server = Server::start_with_bucket("ver").await;
    let out = server
        .client()
        .get_bucket_versioning()
        .bucket("ver")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert!(out.status().is_none(), "versioning never enabled: {:?}", out.status());
    assert!(out.mfa_delete().is_none());

    let r = server.raw("GET", "/ver?versioning", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = r.text();
    assert!(doc.contains("VersioningConfiguration"), "{doc}");
    assert_eq!(xml_top(&doc, "Status"), None, "{doc}");

    assert_sdk_err(server.client().get_bucket_versioning().bucket("missing").send().await, 404, "NoSuchBucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_bucket_is_no_such_bucket_everywhere() {
    let server = Server::start().await;
    let client = server.client();
    assert_sdk_err(client.list_objects_v2().bucket("ghost").send().await, 404, "NoSuchBucket");
    assert_sdk_err(client.list_objects().bucket("ghost").send().await, 404, "NoSuchBucket");
    assert_sdk_err(
        client.put_object().bucket("ghost").key("k").body(b"x".to_vec().into()).send().await,
        404,
        "NoSuchBucket",
    );
    assert_sdk_err(client.get_object().bucket("ghost").key("k").send().await, 404, "NoSuchBucket");
    assert!(!server.root().join("ghost").exists(), "PUT must not create the bucket");

    for (method, target) in [
        ("GET", "/ghost"),
        ("GET", "/ghost?list-type=2"),
        ("GET", "/ghost/key"),
        ("PUT", "/ghost/key"),
        ("DELETE", "/ghost/key"),
    ] {
        let r = server.raw(method, target, &[], b"").await;
        r.assert_error(404, "NoSuchBucket");
        let resource = xml_top(&r.text(), "Resource").unwrap();
        assert!(resource.contains("ghost"), "{method} {target}: Resource {resource:?} names the bucket");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_dir_is_never_a_bucket() {
    let server = Server::start().await;
    // Worker state lives in ROOT/.alcove.sys (make sure it exists even if the
    // worker has not needed it yet).
    std::fs::create_dir_all(server.root().join(".alcove.sys")).unwrap();
    let before =
        snapshot_tree(&server.root().join(".alcove.sys"), &|_| false).into_iter().map(|(p, _)| p).collect::<Vec<_>>();
    for (method, target) in [
        ("GET", "/.alcove.sys"),
        ("GET", "/.alcove.sys/"),
        ("HEAD", "/.alcove.sys"),
        ("PUT", "/.alcove.sys/evil"),
        ("DELETE", "/.alcove.sys"),
    ] {
        let r = server.raw(method, target, &[], body_for(method, b"pwned")).await;
        assert!((400..500).contains(&r.status), "{method} {target} must be refused, got {} {}", r.status, r.text());
        assert!(r.header("x-amz-request-id").is_some());
    }
    assert!(!server.root().join(".alcove.sys/evil").exists());
    assert!(server.root().join(".alcove.sys").is_dir(), "system dir still there");
    let after =
        snapshot_tree(&server.root().join(".alcove.sys"), &|_| false).into_iter().map(|(p, _)| p).collect::<Vec<_>>();
    assert!(
        after.iter().all(|p| !p.contains("evil")),
        "nothing written into the system dir: {after:?} (before {before:?})"
    );
    assert!(bucket_names(&server).await.is_empty());
    assert_sdk_status(server.client().create_bucket().bucket(".alcove.sys").send().await, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_header_on_success_and_errors() {
    let server = Server::start_with_bucket("rid").await;
    let mut ids = std::collections::HashSet::new();
    for (method, target, status) in [
        ("GET", "/", 200u16),
        ("HEAD", "/rid", 200),
        ("PUT", "/rid/obj", 200),
        ("GET", "/rid/obj", 200),
        ("HEAD", "/rid/obj", 200),
        ("GET", "/rid?list-type=2", 200),
        ("GET", "/rid/missing", 404),
        ("HEAD", "/rid/missing", 404),
        ("DELETE", "/rid/obj", 204),
        ("GET", "/nobucket", 404),
    ] {
        let r = server.raw(method, target, &[], b"").await;
        assert_eq!(r.status, status, "{method} {target}: {}", r.text());
        let id =
            r.header("x-amz-request-id").unwrap_or_else(|| panic!("{method} {target}: no x-amz-request-id")).to_owned();
        assert!(!id.is_empty());
        assert!(ids.insert(id.clone()), "request ids are unique, {id} repeated");
        if status >= 400 && method != "HEAD" {
            assert_error_shape(&r);
        }
    }
}
