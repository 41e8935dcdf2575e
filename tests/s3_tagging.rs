//! Object and bucket tagging: Put/Get/DeleteObjectTagging,
//! Put/Get/DeleteBucketTagging, `x-amz-tagging` on PutObject and
//! CreateMultipartUpload, `x-amz-tagging-count` on GetObject, AWS's limits
//! (InvalidTag), the `tagging_restrictions = false` switch, and tags
//! surviving a restart.

use alcove_tests::aws_sdk_s3::error::ProvideErrorMetadata;
use alcove_tests::aws_sdk_s3::types::{Tag, Tagging};
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;

const B: &str = "tags";

fn tagging(pairs: &[(String, String)]) -> Tagging {
    Tagging::builder()
        .set_tag_set(Some(pairs.iter().map(|(k, v)| Tag::builder().key(k).value(v).build().unwrap()).collect()))
        .build()
        .unwrap()
}

fn numbered(n: usize) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = (0..n).map(|i| (format!("key{i:02}"), format!("value{i}"))).collect();
    v.sort();
    v
}

/// `x-amz-tagging` form of a tag set.
fn header(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", aws_uri_encode(k, false), aws_uri_encode(v, false)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `Ok(())`, or the error as `"<status> <code>"`.
fn outcome<T, E: ProvideErrorMetadata>(r: SdkResult<T, E>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| {
        let (s, c) = err_status_code(&e);
        format!("{s} {c}")
    })
}

async fn put_object_tags(client: &Client, key: &str, pairs: &[(String, String)]) -> Result<(), String> {
    outcome(client.put_object_tagging().bucket(B).key(key).tagging(tagging(pairs)).send().await)
}

async fn put_bucket_tags(client: &Client, bucket: &str, pairs: &[(String, String)]) -> Result<(), String> {
    outcome(client.put_bucket_tagging().bucket(bucket).tagging(tagging(pairs)).send().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_tagging_round_trip() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let data = pseudo_random_bytes(1, 5000);
    let put = put_request(&client, B, "obj", &data)
        .content_type("text/x-tagged")
        .metadata("m", "1")
        .tagging("project=alcove&team=storage%20core&empty=")
        .send()
        .await
        .or_panic("put with tags");
    let etag = put.e_tag().unwrap().to_owned();
    assert_eq!(
        object_tags(&client, B, "obj").await,
        tag_pairs(&[("project", "alcove"), ("team", "storage core"), ("empty", "")])
    );
    let g = client.get_object().bucket(B).key("obj").send().await.unwrap();
    assert_eq!(g.tag_count(), Some(3), "x-amz-tagging-count");
    let r = server.raw("GET", &format!("/{B}/obj"), &[], b"").await;
    assert_eq!(r.header("x-amz-tagging-count"), Some("3"));

    // PutObjectTagging replaces the whole set; the object is otherwise unchanged.
    let unicode = tag_pairs(&[("ключ", "значение ✓"), ("a", "1")]);
    put_object_tags(&client, "obj", &unicode).await.unwrap();
    assert_eq!(object_tags(&client, B, "obj").await, unicode);
    let g = client.get_object().bucket(B).key("obj").send().await.unwrap();
    assert_eq!(g.tag_count(), Some(2));
    assert_eq!(g.e_tag(), Some(etag.as_str()), "tagging does not change the ETag");
    assert_eq!(g.content_type(), Some("text/x-tagged"));
    assert_eq!(g.metadata().and_then(|m| m.get("m")).map(String::as_str), Some("1"));
    assert_eq!(g.body.collect().await.unwrap().into_bytes().as_ref(), data.as_slice());

    // DeleteObjectTagging: empty set, no count header.
    let r = server.raw("DELETE", &format!("/{B}/obj?tagging"), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(object_tags(&client, B, "obj").await, vec![]);
    let g = client.get_object().bucket(B).key("obj").send().await.unwrap();
    assert_eq!(g.tag_count(), None);
    assert_eq!(get_bytes(&client, B, "obj").await, data, "the object stays");

    // An overwrite without x-amz-tagging has no tags.
    put_object_tags(&client, "obj", &tag_pairs(&[("x", "y")])).await.unwrap();
    put_bytes(&client, B, "obj", b"new content").await;
    assert_eq!(object_tags(&client, B, "obj").await, vec![], "a new object starts without tags");

    // Missing keys.
    assert_sdk_err(client.get_object_tagging().bucket(B).key("nope").send().await, 404, "NoSuchKey");
    assert_sdk_err(
        client.put_object_tagging().bucket(B).key("nope").tagging(tagging(&tag_pairs(&[("a", "b")]))).send().await,
        404,
        "NoSuchKey",
    );
    assert_sdk_err(client.delete_object_tagging().bucket(B).key("nope").send().await, 404, "NoSuchKey");
    assert!(!object_exists(&client, B, "nope").await, "tagging never creates an object");

    // x-amz-tagging on CreateMultipartUpload reaches the completed object.
    let created =
        create_upload_request(&client, B, "mp").tagging("stage=multipart&n=2").send().await.or_panic("create");
    let upload = Upload::new(&client, B, "mp", created.upload_id().unwrap());
    let e1 = upload.part_request(1, b"x").send().await.unwrap().e_tag().unwrap().to_owned();
    upload.complete_request(&[(1, e1)]).send().await.unwrap();
    assert_eq!(object_tags(&client, B, "mp").await, tag_pairs(&[("stage", "multipart"), ("n", "2")]));
    assert_eq!(client.get_object().bucket(B).key("mp").send().await.unwrap().tag_count(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_tagging() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    assert_sdk_err(client.get_bucket_tagging().bucket(B).send().await, 404, "NoSuchTagSet");
    let r = server.raw("GET", &format!("/{B}?tagging"), &[], b"").await;
    r.assert_error(404, "NoSuchTagSet");

    let first = tag_pairs(&[("env", "prod"), ("owner", "team a")]);
    put_bucket_tags(&client, B, &first).await.unwrap();
    assert_eq!(bucket_tags(&client, B).await, first);
    let second = tag_pairs(&[("cost-center", "42")]);
    put_bucket_tags(&client, B, &second).await.unwrap();
    assert_eq!(bucket_tags(&client, B).await, second, "PutBucketTagging replaces the set");

    // Bucket tags are not object tags, and not objects.
    assert_eq!(list_all_keys(&client, B, "").await, Vec::<String>::new());

    let r = server.raw("DELETE", &format!("/{B}?tagging"), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_sdk_err(client.get_bucket_tagging().bucket(B).send().await, 404, "NoSuchTagSet");
    // Deleting again is fine.
    client.delete_bucket_tagging().bucket(B).send().await.unwrap();

    assert_sdk_err(client.get_bucket_tagging().bucket("no-such-bucket").send().await, 404, "NoSuchBucket");
    assert_eq!(
        put_bucket_tags(&client, "no-such-bucket", &first).await,
        Err("404 NoSuchBucket".to_owned()),
        "PutBucketTagging on a missing bucket"
    );

    // Each bucket has its own set.
    server.create_bucket("tags-other").await;
    put_bucket_tags(&client, "tags-other", &first).await.unwrap();
    assert_sdk_err(client.get_bucket_tagging().bucket(B).send().await, 404, "NoSuchTagSet");
    assert_eq!(bucket_tags(&client, "tags-other").await, first);

    // Tags do not keep an empty bucket from being deleted, nor outlive it.
    client.delete_bucket().bucket("tags-other").send().await.unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert!(!server.bucket_dir("tags-other").exists());
    server.create_bucket("tags-other").await;
    assert_sdk_err(client.get_bucket_tagging().bucket("tags-other").send().await, 404, "NoSuchTagSet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_limits_are_invalid_tag() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    put_bytes(&client, B, "obj", b"tagged").await;
    let good = tag_pairs(&[("keep", "me")]);
    put_object_tags(&client, "obj", &good).await.unwrap();
    put_bucket_tags(&client, B, &good).await.unwrap();

    let long_key = |n: usize| vec![("k".repeat(n), "v".to_owned())];
    let long_value = |n: usize| vec![("k".to_owned(), "v".repeat(n))];
    let dup = vec![("same".to_owned(), "1".to_owned()), ("same".to_owned(), "2".to_owned())];
    let aws = tag_pairs(&[("aws:reserved", "x")]);
    let aws_upper = tag_pairs(&[("AWS:Reserved", "x")]);

    // At the limits: accepted (lengths count characters, not bytes).
    let wide = vec![("é".repeat(128), "ü".repeat(256))];
    for (what, tags) in [
        ("10 tags", numbered(10)),
        ("128-char key", long_key(128)),
        ("256-char value", long_value(256)),
        ("multi-byte at the limits", wide.clone()),
    ] {
        put_object_tags(&client, "obj", &tags).await.unwrap_or_else(|e| panic!("object {what}: {e}"));
        assert_eq!(object_tags(&client, B, "obj").await, tags, "{what}");
    }
    put_bucket_tags(&client, B, &numbered(50)).await.unwrap_or_else(|e| panic!("50 bucket tags: {e}"));
    assert_eq!(bucket_tags(&client, B).await.len(), 50);
    put_object_tags(&client, "obj", &good).await.unwrap();
    put_bucket_tags(&client, B, &good).await.unwrap();

    // Over the limits: InvalidTag, and the previous set stays.
    let invalid_tag = Err("400 InvalidTag".to_owned());
    // `too_many` tags, then one set over each other limit.
    let over_limits = |too_many: usize| -> Vec<(String, Vec<(String, String)>)> {
        vec![
            (format!("{too_many} tags"), numbered(too_many)),
            ("129-char key".into(), long_key(129)),
            ("257-char value".into(), long_value(257)),
            ("duplicate keys".into(), dup.clone()),
            ("aws: prefix".into(), aws.clone()),
        ]
    };
    let mut object_sets = over_limits(11);
    object_sets.push(("AWS: prefix, any case".into(), aws_upper.clone()));
    for (what, tags) in object_sets {
        assert_eq!(put_object_tags(&client, "obj", &tags).await, invalid_tag, "object: {what}");
    }
    assert_eq!(object_tags(&client, B, "obj").await, good, "refused sets change nothing");
    for (what, tags) in over_limits(51) {
        assert_eq!(put_bucket_tags(&client, B, &tags).await, invalid_tag, "bucket: {what}");
    }
    assert_eq!(bucket_tags(&client, B).await, good);

    // x-amz-tagging on PutObject: the same checks, and nothing is stored.
    for (what, tags) in over_limits(11) {
        assert_sdk_err(put_request(&client, B, "refused", b"x").tagging(header(&tags)).send().await, 400, "InvalidTag");
        assert!(!object_exists(&client, B, "refused").await, "{what}: nothing stored");
    }
    // And on CreateMultipartUpload.
    assert_sdk_err(
        create_upload_request(&client, B, "refused").tagging(header(&numbered(11))).send().await,
        400,
        "InvalidTag",
    );
    assert!(client.list_multipart_uploads().bucket(B).send().await.unwrap().uploads().is_empty());
    let r = server.raw("PUT", &format!("/{B}/refused"), &[("x-amz-tagging", "aws:x=1")], b"data").await;
    r.assert_error(400, "InvalidTag");
    assert_eq!(list_all_keys(&client, B, "").await, vec!["obj"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_restrictions_can_be_switched_off() {
    let strict = Server::start_with_bucket(B).await;
    let relaxed = Server::start_with_config("[s3]\ntagging_restrictions = false\n").await;
    relaxed.create_bucket(B).await;
    let (sc, rc) = (strict.client(), relaxed.client());
    for c in [&sc, &rc] {
        put_bytes(c, B, "obj", b"x").await;
    }
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        ("11 tags", numbered(11)),
        ("40 tags", numbered(40)),
        ("200-char key", vec![("k".repeat(200), "v".into())]),
        ("1000-char value", vec![("k".into(), "v".repeat(1000))]),
    ];
    for (what, tags) in &cases {
        assert_eq!(put_object_tags(&sc, "obj", tags).await, Err("400 InvalidTag".into()), "strict: {what}");
        put_object_tags(&rc, "obj", tags).await.unwrap_or_else(|e| panic!("relaxed: {what}: {e}"));
        assert_eq!(object_tags(&rc, B, "obj").await, *tags, "relaxed: {what}");
    }
    // x-amz-tagging with 12 tags.
    let twelve = numbered(12);
    assert_sdk_err(put_request(&sc, B, "hdr", b"x").tagging(header(&twelve)).send().await, 400, "InvalidTag");
    put_request(&rc, B, "hdr", b"x").tagging(header(&twelve)).send().await.or_panic("relaxed x-amz-tagging");
    assert_eq!(object_tags(&rc, B, "hdr").await, twelve);
    assert_eq!(rc.get_object().bucket(B).key("hdr").send().await.unwrap().tag_count(), Some(12));
    // 60 bucket tags.
    assert_eq!(put_bucket_tags(&sc, B, &numbered(60)).await, Err("400 InvalidTag".into()));
    put_bucket_tags(&rc, B, &numbered(60)).await.unwrap_or_else(|e| panic!("relaxed 60 bucket tags: {e}"));
    assert_eq!(bucket_tags(&rc, B).await, numbered(60));

    // Duplicates and aws: stay refused either way.
    let dup = vec![("same".to_owned(), "1".to_owned()), ("same".to_owned(), "2".to_owned())];
    for c in [&sc, &rc] {
        assert_eq!(put_object_tags(c, "obj", &dup).await, Err("400 InvalidTag".into()));
        assert_eq!(put_object_tags(c, "obj", &tag_pairs(&[("aws:x", "1")])).await, Err("400 InvalidTag".into()));
        assert_eq!(put_bucket_tags(c, B, &tag_pairs(&[("aws:x", "1")])).await, Err("400 InvalidTag".into()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_survive_restart() {
    let mut server = Server::start_with_bucket(B).await;
    let client = server.client();
    put_request(&client, B, "via-header", b"one").tagging("h=1&space=a%20b").send().await.unwrap();
    put_bytes(&client, B, "via-api", b"two").await;
    let api_tags = tag_pairs(&[("api", "yes"), ("ключ", "значение")]);
    put_object_tags(&client, "via-api", &api_tags).await.unwrap();
    let btags = tag_pairs(&[("bucket", "tagged"), ("n", "1")]);
    put_bucket_tags(&client, B, &btags).await.unwrap();

    server.restart().await;
    let client = server.client();
    assert_eq!(object_tags(&client, B, "via-header").await, tag_pairs(&[("h", "1"), ("space", "a b")]));
    assert_eq!(object_tags(&client, B, "via-api").await, api_tags);
    assert_eq!(bucket_tags(&client, B).await, btags);
    assert_eq!(client.get_object().bucket(B).key("via-api").send().await.unwrap().tag_count(), Some(2));
    assert_eq!(get_bytes(&client, B, "via-api").await, b"two");
}
