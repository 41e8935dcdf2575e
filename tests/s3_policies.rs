//! Authorization policies (`[[auth.policies]]`): users get read, write and list on buckets and
//! key prefixes and nothing else (`AccessDenied`, logged with the user); ListBuckets shows the
//! buckets a user has grants in; a bucket open to `*` is readable without credentials; CopyObject
//! and UploadPartCopy need read on the source; DeleteObjects answers key by key; and the same
//! holds through a cluster, where requests are forwarded to their key's owner.

use alcove_tests::aws_sdk_s3::types::{Delete, ObjectIdentifier};
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;

const ADMIN: (&str, &str) = ("admin", "admin-secret");
const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");

/// The grants every test here uses (in `mode`, with each user's credentials in sigv4 mode).
fn config(mode: &str) -> String {
    let credentials: String = [ADMIN, ALICE, BOB]
        .iter()
        .map(|(ak, sk)| format!("[[auth.credentials]]\naccess_key = \"{ak}\"\nsecret_key = \"{sk}\"\n"))
        .collect();
    format!(
        r#"[s3]
access_log = true

[auth]
mode = "{mode}"

{credentials}
[[auth.policies]]
users = ["admin"]
actions = ["read", "write", "list"]
resources = ["*"]

[[auth.policies]]
users = ["alice"]
actions = ["read", "list"]
resources = ["photos"]

[[auth.policies]]
users = ["alice"]
actions = ["write"]
resources = ["photos/alice/*"]

[[auth.policies]]
users = ["bob"]
actions = ["read", "write", "list"]
resources = ["inbox"]

[[auth.policies]]
users = ["bob"]
actions = ["read", "list"]
resources = ["photos/public/*"]

[[auth.policies]]
users = ["*"]
actions = ["read", "list"]
resources = ["public"]
"#
    )
}

fn client(server: &Server, (ak, sk): (&str, &str)) -> Client {
    server.client_with(ak, sk)
}

/// A sigv4 worker with the buckets photos, inbox, public and secret, and a few objects.
async fn started(mode: &str) -> Server {
    let server = Server::start_with_config(&config(mode)).await;
    let admin = client(&server, ADMIN);
    for b in ["photos", "inbox", "public", "secret"] {
        admin.create_bucket().bucket(b).send().await.or_panic(&format!("admin creates {b}"));
    }
    for (b, k) in [("photos", "x.jpg"), ("photos", "public/a.jpg"), ("public", "readme"), ("secret", "plans")] {
        put_bytes(&admin, b, k, format!("{b}/{k}").as_bytes()).await;
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_get_what_they_are_granted_and_nothing_else() {
    let server = started("sigv4").await;
    let (alice, bob) = (client(&server, ALICE), client(&server, BOB));

    assert_eq!(get_bytes(&alice, "photos", "x.jpg").await, b"photos/x.jpg");
    assert_sdk_err(put_request(&alice, "photos", "x.jpg", b"overwritten").send().await, 403, "AccessDenied");
    assert_eq!(get_bytes(&alice, "photos", "x.jpg").await, b"photos/x.jpg", "a refused write changes nothing");
    assert_sdk_err(put_request(&alice, "photos", "new.jpg", b"n").send().await, 403, "AccessDenied");
    assert!(!server.bucket_dir("photos").join("new.jpg").exists());
    put_bytes(&alice, "photos", "alice/mine.jpg", b"mine").await;
    alice.delete_object().bucket("photos").key("alice/mine.jpg").send().await.or_panic("alice deletes her own");
    assert_sdk_err(alice.delete_object().bucket("photos").key("x.jpg").send().await, 403, "AccessDenied");
    assert_eq!(list_all_keys(&alice, "photos", "").await, ["public/a.jpg", "x.jpg"]);
    assert_sdk_err(alice.get_object().bucket("secret").key("plans").send().await, 403, "AccessDenied");
    assert_sdk_err(alice.list_objects_v2().bucket("secret").send().await, 403, "AccessDenied");
    assert_sdk_err(alice.create_bucket().bucket("alices").send().await, 403, "AccessDenied");
    assert!(!server.bucket_dir("alices").exists());
    alice.head_bucket().bucket("photos").send().await.or_panic("HEAD a bucket with grants in it");
    assert_sdk_status(alice.head_bucket().bucket("secret").send().await, 403);
    assert_sdk_status(alice.head_object().bucket("secret").key("plans").send().await, 403);

    // A prefix grant: those keys, and listings inside the prefix only.
    assert_eq!(get_bytes(&bob, "photos", "public/a.jpg").await, b"photos/public/a.jpg");
    assert_sdk_err(bob.get_object().bucket("photos").key("x.jpg").send().await, 403, "AccessDenied");
    assert_eq!(list_all_keys(&bob, "photos", "public/").await, ["public/a.jpg"]);
    assert_sdk_err(bob.list_objects_v2().bucket("photos").send().await, 403, "AccessDenied");
    assert_sdk_err(bob.list_objects_v2().bucket("photos").prefix("pub").send().await, 403, "AccessDenied");

    // Bucket settings need a grant on the bucket itself, not only on its keys.
    let tagging = alcove_tests::aws_sdk_s3::types::Tagging::builder()
        .tag_set(alcove_tests::aws_sdk_s3::types::Tag::builder().key("k").value("v").build().unwrap())
        .build()
        .unwrap();
    let r = alice.put_bucket_tagging().bucket("photos").tagging(tagging.clone()).send().await;
    assert_sdk_err(r, 403, "AccessDenied");
    bob.put_bucket_tagging().bucket("inbox").tagging(tagging).send().await.or_panic("bob tags his bucket");
    assert_sdk_err(bob.get_bucket_tagging().bucket("photos").send().await, 403, "AccessDenied");

    // Refusals name the user and what was refused, in the answer and in the log.
    let r = signed_get(&server, ALICE, "/secret/plans").await;
    r.assert_error(403, "AccessDenied");
    assert!(r.text().contains("alice") && r.text().contains("secret/plans"), "{}", r.text());
    let log = server.log();
    let denied: Vec<&str> = log.lines().filter(|l| l.contains("access denied")).collect();
    assert!(
        denied.iter().any(|l| l.contains("user=alice")
            && l.contains("action=write")
            && l.contains("bucket=\"photos\"")
            && l.contains("key=\"x.jpg\"")),
        "no log line for alice's refused write: {denied:#?}"
    );
    assert!(server.access_log_lines().iter().any(|l| l.contains("status=403") && l.contains("user=\"alice\"")));
}

async fn signed_get(server: &Server, (ak, sk): (&str, &str), path: &str) -> RawResponse {
    let host = server.s3_addr.to_string();
    let hash = sha256_hex(b"");
    let req = ToSign { method: "GET", host: &host, path, query: &[], headers: &[], payload_hash: &hash };
    let signed = SigV4::new(ak, sk).sign(&req, time::OffsetDateTime::now_utc());
    let headers: Vec<(&str, &str)> = signed.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    server.raw("GET", path, &headers, b"").await
}

async fn bucket_names(c: &Client) -> Vec<String> {
    let out = c.list_buckets().send().await.or_panic("ListBuckets");
    out.buckets().iter().filter_map(|b| b.name().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_buckets_shows_the_buckets_a_user_has_grants_in() {
    let server = started("sigv4").await;
    assert_eq!(bucket_names(&client(&server, ADMIN)).await, ["inbox", "photos", "public", "secret"]);
    assert_eq!(bucket_names(&client(&server, ALICE)).await, ["photos", "public"]);
    assert_eq!(bucket_names(&client(&server, BOB)).await, ["inbox", "photos", "public"]);
    let r = server.raw("GET", "/", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let names: Vec<&str> = text.split("<Name>").skip(1).filter_map(|s| s.split("</Name>").next()).collect();
    assert_eq!(names, ["public"], "anonymous: the bucket open to everyone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_open_to_everyone_is_readable_without_credentials() {
    for mode in ["sigv4", "simple"] {
        let server = started(mode).await;
        let r = server.raw("GET", "/public/readme", &[], b"").await;
        assert_eq!((r.status, r.body.as_slice()), (200, b"public/readme".as_slice()), "{mode}: {}", r.text());
        let r = server.raw("GET", "/public?list-type=2", &[], b"").await;
        assert_eq!(xml_list(&r.text(), "Contents", "Key"), ["readme"], "{mode}");
        let r = server.raw("PUT", "/public/readme", &[], b"defaced").await;
        r.assert_error(403, "AccessDenied");
        assert!(r.text().contains("anonymous"), "{}", r.text());
        assert_eq!(std::fs::read(server.bucket_dir("public").join("readme")).unwrap(), b"public/readme");
        server.raw("GET", "/photos/x.jpg", &[], b"").await.assert_error(403, "AccessDenied");
        server.raw("GET", "/photos", &[], b"").await.assert_error(403, "AccessDenied");
        // A named user gets the grants of `*` too.
        assert_eq!(get_bytes(&client(&server, ALICE), "public", "readme").await, b"public/readme");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_mode_takes_the_user_from_the_access_key() {
    let server = started("simple").await;
    // Any secret works in simple mode; the access key names the user the policies apply to.
    let alice = server.client_with("alice", "whatever");
    assert_eq!(get_bytes(&alice, "photos", "x.jpg").await, b"photos/x.jpg");
    assert_sdk_err(put_request(&alice, "photos", "x.jpg", b"no").send().await, 403, "AccessDenied");
    put_bytes(&alice, "photos", "alice/ok", b"ok").await;
    let stranger = server.client_with("mallory", "x");
    assert_sdk_err(stranger.get_object().bucket("photos").key("x.jpg").send().await, 403, "AccessDenied");
    assert_eq!(bucket_names(&stranger).await, ["public"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_need_read_on_the_source_and_write_on_the_destination() {
    let server = started("sigv4").await;
    let (alice, bob) = (client(&server, ALICE), client(&server, BOB));
    let copy = |c: &Client, src: (&str, &str), dst: (&str, &str)| {
        c.copy_object().copy_source(copy_source(src.0, src.1)).bucket(dst.0).key(dst.1).send()
    };
    copy(&alice, ("photos", "x.jpg"), ("photos", "alice/copy.jpg")).await.or_panic("alice copies into her prefix");
    assert_eq!(get_bytes(&alice, "photos", "alice/copy.jpg").await, b"photos/x.jpg");
    assert_sdk_err(copy(&alice, ("photos", "x.jpg"), ("inbox", "y")).await, 403, "AccessDenied");
    assert_sdk_err(copy(&bob, ("photos", "x.jpg"), ("inbox", "y")).await, 403, "AccessDenied");
    assert_sdk_err(copy(&bob, ("secret", "plans"), ("inbox", "y")).await, 403, "AccessDenied");
    assert!(!server.bucket_dir("inbox").join("y").exists(), "a refused copy writes nothing");
    copy(&bob, ("photos", "public/a.jpg"), ("inbox", "y")).await.or_panic("bob copies what he may read");
    assert_eq!(get_bytes(&bob, "inbox", "y").await, b"photos/public/a.jpg");

    let upload = Upload::create(&bob, "inbox", "assembled").await;
    assert_sdk_err(upload.part_copy_request(1, &copy_source("photos", "x.jpg")).send().await, 403, "AccessDenied");
    let part = upload.part_copy_request(1, &copy_source("photos", "public/a.jpg")).send().await.or_panic("part copy");
    let etag = part.copy_part_result().and_then(|p| p.e_tag()).unwrap().to_owned();
    upload.complete(&[(1, etag)]).await;
    assert_eq!(get_bytes(&bob, "inbox", "assembled").await, b"photos/public/a.jpg");
    // Someone else's upload in alice's bucket is not hers to finish or list.
    let theirs = Upload::create(&client(&server, ADMIN), "photos", "admins/big").await;
    let as_alice = Upload::new(&alice, "photos", "admins/big", &theirs.id);
    assert_sdk_err(as_alice.list_parts_request().send().await, 403, "AccessDenied");
    assert_sdk_err(as_alice.abort_request().send().await, 403, "AccessDenied");
    assert_sdk_err(as_alice.part_request(1, b"x").send().await, 403, "AccessDenied");
}

fn identifiers(keys: &[&str]) -> Delete {
    let objects = keys.iter().map(|k| ObjectIdentifier::builder().key(*k).build().unwrap()).collect();
    Delete::builder().set_objects(Some(objects)).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_refuses_key_by_key() {
    let server = started("sigv4").await;
    let alice = client(&server, ALICE);
    put_bytes(&alice, "photos", "alice/a", b"a").await;
    put_bytes(&alice, "photos", "alice/b", b"b").await;
    let out = alice
        .delete_objects()
        .bucket("photos")
        .delete(identifiers(&["alice/a", "x.jpg", "alice/missing", "public/a.jpg"]))
        .send()
        .await
        .or_panic("DeleteObjects");
    let mut deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(deleted, ["alice/a", "alice/missing"]);
    let mut refused: Vec<(&str, &str)> =
        out.errors().iter().map(|e| (e.key().unwrap_or(""), e.code().unwrap_or(""))).collect();
    refused.sort();
    assert_eq!(refused, [("public/a.jpg", "AccessDenied"), ("x.jpg", "AccessDenied")]);
    assert!(
        server.bucket_dir("photos").join("x.jpg").exists() && server.bucket_dir("photos").join("public/a.jpg").exists()
    );
    assert!(!server.bucket_dir("photos").join("alice/a").exists());

    // Quiet mode still reports the refusals.
    let mut quiet = identifiers(&["alice/b", "x.jpg"]);
    quiet.quiet = Some(true);
    let out = alice.delete_objects().bucket("photos").delete(quiet).send().await.or_panic("quiet DeleteObjects");
    assert!(out.deleted().is_empty());
    assert_eq!(out.errors().iter().filter_map(|e| e.key()).collect::<Vec<_>>(), ["x.jpg"]);
    assert!(!server.bucket_dir("photos").join("alice/b").exists());

    // Without any grant in the bucket, every key is refused and nothing goes.
    let out = client(&server, BOB)
        .delete_objects()
        .bucket("secret")
        .delete(identifiers(&["plans"]))
        .send()
        .await
        .or_panic("bob's DeleteObjects");
    assert_eq!(out.errors().iter().filter_map(|e| e.code()).collect::<Vec<_>>(), ["AccessDenied"]);
    assert!(server.bucket_dir("secret").join("plans").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_policies_keep_every_mode_open() {
    let sigv4 = format!(
        "[auth]\nmode = \"sigv4\"\n[[auth.credentials]]\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n"
    );
    let server = Server::start_with_config(&sigv4).await;
    let c = server.client_with(ACCESS_KEY, SECRET_KEY);
    c.create_bucket().bucket("open").send().await.or_panic("create");
    put_bytes(&c, "open", "k", b"v").await;
    let r = server.raw("PUT", "/open/anon", &[], b"anonymous").await;
    assert_eq!(r.status, 200, "anonymous writes, as before policies: {}", r.text());
    assert_eq!(bucket_names(&c).await, ["open"]);
}

/// In a cluster a request for another worker's key is forwarded to it verbatim; the owner
/// verifies the signature and applies the policies, and DeleteObjects refuses keys before they
/// are handed to their owners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_hold_through_a_cluster() {
    let extra = format!(
        "[auth]\nmode = \"sigv4\"\n\
         [[auth.credentials]]\naccess_key = \"{}\"\nsecret_key = \"{}\"\n\
         [[auth.credentials]]\naccess_key = \"{}\"\nsecret_key = \"{}\"\n\
         [[auth.policies]]\nusers = [\"admin\"]\nactions = [\"read\", \"write\", \"list\"]\nresources = [\"*\"]\n\
         [[auth.policies]]\nusers = [\"alice\"]\nactions = [\"read\", \"list\"]\nresources = [\"{SHARED}\"]\n\
         [[auth.policies]]\nusers = [\"alice\"]\nactions = [\"write\"]\nresources = [\"{SHARED}/alice/*\"]\n",
        ADMIN.0, ADMIN.1, ALICE.0, ALICE.1
    );
    let cluster = TestCluster::start(3, ClusterSetup { extra: &extra, ..Default::default() }).await;
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    let admin = cluster.worker(0).client_with(ADMIN.0, ADMIN.1);
    for k in &keys {
        put_bytes(&admin, SHARED, k, k.as_bytes()).await;
    }
    let mut forwarded = 0;
    for (i, w) in cluster.workers.iter().enumerate() {
        let alice = w.client_with(ALICE.0, ALICE.1);
        for k in &keys {
            assert_eq!(get_bytes(&alice, SHARED, k).await, k.as_bytes());
            let r = put_request(&alice, SHARED, k, b"overwritten").send().await;
            assert_sdk_err(r, 403, "AccessDenied");
            put_bytes(&alice, SHARED, &format!("alice/{k}-{i}"), b"mine").await;
        }
        forwarded += keys.iter().filter(|k| cluster.served_by("PUT", k) != [format!("w{}", i + 1)]).count();
    }
    assert!(forwarded > 0, "some refused writes were for keys another worker owns");
    for k in &keys {
        assert_eq!(get_bytes(&admin, SHARED, k).await, k.as_bytes(), "no refused write went through");
    }
    let mut all: Vec<&str> = keys.iter().map(String::as_str).collect();
    all.push("alice/k0-0");
    let out = cluster
        .worker(1)
        .client_with(ALICE.0, ALICE.1)
        .delete_objects()
        .bucket(SHARED)
        .delete(identifiers(&all))
        .send()
        .await
        .or_panic("DeleteObjects through a cluster");
    assert_eq!(out.deleted().iter().filter_map(|d| d.key()).collect::<Vec<_>>(), ["alice/k0-0"]);
    assert_eq!(out.errors().len(), keys.len());
    assert!(out.errors().iter().all(|e| e.code() == Some("AccessDenied")));
    for k in &keys {
        assert!(object_exists(&admin, SHARED, k).await, "{k} was refused, so it stays");
    }
    assert!(!object_exists(&admin, SHARED, "alice/k0-0").await);
}
