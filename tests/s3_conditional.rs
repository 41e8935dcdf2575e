//! Conditional requests: If-Match / If-None-Match / If-Modified-Since /
//! If-Unmodified-Since on GetObject and HeadObject (412 / 304, 412 first),
//! conditional writes (`If-None-Match: *`, `If-Match: <etag>`) on PutObject
//! and CompleteMultipartUpload, and their atomicity under concurrent writers.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use alcove_tests::aws_sdk_s3::error::ProvideErrorMetadata;
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;
use tokio::sync::Barrier;

const B: &str = "cond";

/// Sets the four conditional headers on a GetObject or HeadObject request
/// (both builders have the same setters).
macro_rules! with_conditions {
    ($req:expr, $if_match:expr, $if_none_match:expr, $if_modified_since:expr, $if_unmodified_since:expr) => {
        $req.set_if_match($if_match.map(str::to_owned))
            .set_if_none_match($if_none_match.map(str::to_owned))
            .set_if_modified_since($if_modified_since.map(sdk_time))
            .set_if_unmodified_since($if_unmodified_since.map(sdk_time))
    };
}

/// HTTP status of a GetObject with the given conditions (200 on success).
async fn get_status(
    client: &Client,
    key: &str,
    if_match: Option<&str>,
    if_none_match: Option<&str>,
    if_modified_since: Option<i64>,
    if_unmodified_since: Option<i64>,
) -> (u16, u16) {
    let get = client.get_object().bucket(B).key(key);
    let get = with_conditions!(get, if_match, if_none_match, if_modified_since, if_unmodified_since).send().await;
    let get = match get {
        Ok(out) => {
            let body = out.body.collect().await.unwrap().into_bytes();
            assert!(!body.is_empty(), "a successful conditional GET returns the object");
            200
        }
        Err(e) => err_status_code(&e).0,
    };
    let head = client.head_object().bucket(B).key(key);
    let head = with_conditions!(head, if_match, if_none_match, if_modified_since, if_unmodified_since).send().await;
    let head = match head {
        Ok(_) => 200,
        Err(e) => err_status_code(&e).0,
    };
    (get, head)
}

/// (what, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, expected status).
type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<i64>, Option<i64>, u16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_head_conditions() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let etag = put_bytes(&client, B, "obj", b"conditional object").await;
    let lm = last_modified_secs(&client, B, "obj").await;
    let other = etag_of(b"other");
    let e = Some(etag.as_str());
    let o = Some(other.as_str());
    let before = Some(lm - 3600);
    let at = Some(lm);

    let cases: Vec<Case> = vec![
        ("If-Match current", e, None, None, None, 200),
        ("If-Match other", o, None, None, None, 412),
        ("If-Match *", Some("*"), None, None, None, 200),
        ("If-None-Match other", None, o, None, None, 200),
        ("If-None-Match current", None, e, None, None, 304),
        ("If-None-Match *", None, Some("*"), None, None, 304),
        ("If-Modified-Since before", None, None, before, None, 200),
        ("If-Modified-Since at", None, None, at, None, 304),
        ("If-Unmodified-Since at", None, None, None, at, 200),
        ("If-Unmodified-Since before", None, None, None, before, 412),
        // 412 wins over 304.
        ("If-Unmodified-Since fails + If-None-Match matches", None, e, None, before, 412),
        ("If-Match fails + If-Modified-Since not modified", o, None, at, None, 412),
        ("If-Match fails + If-None-Match matches", o, e, None, None, 412),
        // AWS: If-Match true wins over If-Unmodified-Since false.
        ("If-Match holds + If-Unmodified-Since fails", e, None, None, before, 200),
        // AWS: If-None-Match false (ETag matches) + If-Modified-Since true → 304.
        ("If-None-Match matches + If-Modified-Since modified", None, e, before, None, 304),
        // RFC 9110: If-Modified-Since is ignored when If-None-Match is present.
        ("If-None-Match other + If-Modified-Since not modified", None, o, at, None, 200),
        ("all holding", e, o, before, at, 200),
    ];
    let mut wrong = Vec::new();
    for (what, im, inm, ims, ius, want) in &cases {
        let got = get_status(&client, "obj", *im, *inm, *ims, *ius).await;
        if got != (*want, *want) {
            wrong.push(format!("{what}: want {want} for GET and HEAD, got (GET, HEAD) = {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "conditional reads:\n{}", wrong.join("\n"));

    // On the wire: 304 has no body and still names the ETag; 412 is an S3 error.
    let r = server.raw("GET", &format!("/{B}/obj"), &[("If-None-Match", &etag)], b"").await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty(), "304 without a body: {:?}", r.text());
    let r = server.raw("GET", &format!("/{B}/obj"), &[("If-Modified-Since", &http_date(lm))], b"").await;
    assert_eq!(r.status, 304);
    let r = server.raw("GET", &format!("/{B}/obj"), &[("If-Modified-Since", &http_date(lm - 10))], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"conditional object");
    let r = server.raw("GET", &format!("/{B}/obj"), &[("If-Match", &other)], b"").await;
    r.assert_error(412, "PreconditionFailed");
    let r = server.raw("GET", &format!("/{B}/obj"), &[("If-Unmodified-Since", &http_date(lm - 10))], b"").await;
    r.assert_error(412, "PreconditionFailed");
    let r = server.raw("HEAD", &format!("/{B}/obj"), &[("If-Match", &other)], b"").await;
    assert_eq!(r.status, 412);
    assert!(r.body.is_empty());

    // A missing key is 404 whatever the conditions.
    assert_eq!(get_status(&client, "missing", o, None, None, None).await, (404, 404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_modified_carries_etag_and_last_modified() {
    // RFC 9110 §15.4.5: a 304 names the ETag it would have sent with a 200;
    // S3 also sends Last-Modified.
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let etag = put_bytes(&client, B, "obj", b"conditional object").await;
    let r200 = server.raw("GET", &format!("/{B}/obj"), &[], b"").await;
    let lm = r200.header("last-modified").expect("Last-Modified on 200").to_owned();
    for method in ["GET", "HEAD"] {
        let r = server.raw(method, &format!("/{B}/obj"), &[("If-None-Match", &etag)], b"").await;
        assert_eq!(r.status, 304, "{method}");
        assert!(r.body.is_empty(), "{method}: 304 without a body");
        assert_eq!(r.header("etag"), Some(etag.as_str()), "{method}: 304 carries the ETag");
        assert_eq!(r.header("last-modified"), Some(lm.as_str()), "{method}: 304 carries Last-Modified");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_put() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();

    // If-None-Match: * creates only.
    let put = put_request(&client, B, "once", b"first").if_none_match("*").send().await.or_panic("create only");
    let e1 = put.e_tag().unwrap().to_owned();
    assert_eq!(e1, etag_of(b"first"));
    assert_sdk_err(
        put_request(&client, B, "once", b"second").if_none_match("*").send().await,
        412,
        "PreconditionFailed",
    );
    assert_eq!(get_bytes(&client, B, "once").await, b"first", "the existing object is untouched");
    let r = server.raw("PUT", &format!("/{B}/once"), &[("If-None-Match", "*")], b"raw second").await;
    r.assert_error(412, "PreconditionFailed");
    assert_eq!(get_bytes(&client, B, "once").await, b"first");

    // If-Match: replace only the version we know.
    let put = put_request(&client, B, "once", b"second").if_match(&e1).send().await.or_panic("replace if it matches");
    let e2 = put.e_tag().unwrap().to_owned();
    assert_eq!(get_bytes(&client, B, "once").await, b"second");
    assert_sdk_err(put_request(&client, B, "once", b"stale").if_match(&e1).send().await, 412, "PreconditionFailed");
    assert_eq!(get_bytes(&client, B, "once").await, b"second");
    let head = client.head_object().bucket(B).key("once").send().await.unwrap();
    assert_eq!(head.e_tag(), Some(e2.as_str()));

    // If-Match on a missing key: NoSuchKey, nothing created.
    assert_sdk_err(put_request(&client, B, "absent", b"x").if_match(&e2).send().await, 404, "NoSuchKey");
    assert!(!object_exists(&client, B, "absent").await);
    let r = server.raw("PUT", &format!("/{B}/absent"), &[("If-Match", &e2)], b"x").await;
    r.assert_error(404, "NoSuchKey");
    assert!(!object_exists(&client, B, "absent").await);
    assert_eq!(list_all_keys(&client, B, "").await, vec!["once"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_complete_multipart_upload() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let existing = put_bytes(&client, B, "taken", b"already here").await;

    // If-None-Match: * on an existing key: 412, object untouched, upload kept.
    let (upload, parts) = upload_parts(&client, B, "taken", &[b"multipart body"]).await;
    assert_sdk_err(upload.complete_request(&parts).if_none_match("*").send().await, 412, "PreconditionFailed");
    assert_eq!(get_bytes(&client, B, "taken").await, b"already here");
    let listed = upload.list_parts_request().send().await;
    assert_eq!(listed.map(|o| o.parts().len()).ok(), Some(1), "a 412 on Complete keeps the upload");

    // If-Match with a wrong ETag: 412; with the right one: replaced.
    let wrong = upload.complete_request(&parts).if_match(etag_of(b"not it"));
    assert_sdk_err(wrong.send().await, 412, "PreconditionFailed");
    assert_eq!(get_bytes(&client, B, "taken").await, b"already here");
    let out = upload.complete_request(&parts).if_match(&existing).send().await.or_panic("complete if it matches");
    let mp_etag = multipart_etag(&[b"multipart body"]);
    assert_eq!(out.e_tag(), Some(mp_etag.as_str()));
    assert_eq!(get_bytes(&client, B, "taken").await, b"multipart body");
    // A multipart ETag works in If-Match like any other.
    assert_sdk_err(
        put_request(&client, B, "taken", b"stale").if_match(&existing).send().await,
        412,
        "PreconditionFailed",
    );
    let after = put_request(&client, B, "taken", b"after multipart").if_match(&mp_etag);
    after.send().await.or_panic("If-Match with a multipart ETag");
    assert_eq!(get_bytes(&client, B, "taken").await, b"after multipart");

    // If-None-Match: * on a free key: created.
    let (upload, parts) = upload_parts(&client, B, "free", &[b"fresh"]).await;
    upload.complete_request(&parts).if_none_match("*").send().await.or_panic("complete on a free key");
    assert_eq!(get_bytes(&client, B, "free").await, b"fresh");

    // If-Match on a missing key: NoSuchKey.
    let (upload, parts) = upload_parts(&client, B, "missing", &[b"nothing"]).await;
    assert_sdk_err(upload.complete_request(&parts).if_match(etag_of(b"anything")).send().await, 404, "NoSuchKey");
    assert!(!object_exists(&client, B, "missing").await);
    upload.abort().await;
    assert_eq!(server.staged_uploads(B), Vec::<String>::new());
    assert_eq!(list_all_keys(&client, B, "").await, vec!["free", "taken"]);
}

/// Outcome of one racing writer: (writer index, HTTP status, ETag on success,
/// when its request was sent and answered).
type Outcome = (usize, u16, Option<String>, (Instant, Instant));

/// Most writers in flight at one moment, so a race test cannot pass merely
/// because its requests happened to run one after another.
#[track_caller]
fn assert_overlapping(what: &str, outcomes: &[Outcome]) {
    let most = outcomes
        .iter()
        .map(|(_, _, _, (start, _))| outcomes.iter().filter(|(_, _, _, (s, e))| s <= start && start < e).count())
        .max()
        .unwrap_or(0);
    assert!(most >= outcomes.len() / 2, "{what}: only {most} of {} writers were in flight together", outcomes.len());
}

/// Exactly one 200, every other writer 412; returns the winner's index.
#[track_caller]
fn single_winner(what: &str, outcomes: &[Outcome]) -> usize {
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, s, _, _) in outcomes {
        *by_status.entry(*s).or_default() += 1;
    }
    let want: BTreeMap<u16, usize> = [(200, 1), (412, outcomes.len() - 1)].into_iter().collect();
    assert_eq!(by_status, want, "{what}: exactly one writer wins, the others get 412");
    assert_overlapping(what, outcomes);
    outcomes.iter().find(|(_, s, _, _)| *s == 200).unwrap().0
}

/// Runs `writers` writes at once: each task waits at a barrier until all are
/// ready, then runs `write(i)`, which answers (HTTP status, ETag on success).
async fn race<F, Fut>(writers: usize, write: F) -> Vec<Outcome>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = (u16, Option<String>)> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(writers));
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let barrier = barrier.clone();
            let write = write(i);
            tokio::spawn(async move {
                barrier.wait().await;
                let t0 = Instant::now();
                let (status, etag) = write.await;
                (i, status, etag, (t0, Instant::now()))
            })
        })
        .collect();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    outcomes
}

/// (200, ETag) of a successful write, (HTTP status, None) of a failed one.
fn status_and_etag<E: ProvideErrorMetadata>(r: SdkResult<Option<String>, E>) -> (u16, Option<String>) {
    match r {
        Ok(etag) => (200, etag),
        Err(e) => (err_status_code(&e).0, None),
    }
}

fn racer_body(round: usize, i: usize) -> Vec<u8> {
    // Large enough that the writers overlap while their bodies stream in.
    let mut body = format!("round {round} writer {i}\n").into_bytes();
    body.extend(pseudo_random_bytes((round * 1000 + i) as u64, 256 * 1024));
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_if_none_match_puts_have_one_winner() {
    const WRITERS: usize = 20;
    let server = Server::start_with_bucket(B).await;
    let plain = server.client_plain_put();
    for round in 0..3 {
        let key = format!("race/create-{round}");
        let bodies: Vec<Vec<u8>> = (0..WRITERS).map(|i| racer_body(round, i)).collect();
        let outcomes = race(WRITERS, |i| {
            let put = put_request(&plain, B, &key, &bodies[i]).if_none_match("*");
            async move {
                let r = put.send().await;
                if let Err(e) = &r {
                    let (s, c) = err_status_code(e);
                    assert!(s != 412 || c == "PreconditionFailed", "412 with code {c}");
                }
                status_and_etag(r.map(|out| out.e_tag().map(str::to_owned)))
            }
        })
        .await;
        let winner = single_winner(&key, &outcomes);
        let stored = get_bytes(&plain, B, &key).await;
        assert!(stored == bodies[winner], "{key}: the stored content is the winner's body");
        let won_etag = outcomes[winner].2.clone().unwrap();
        assert_eq!(won_etag, etag_of(&bodies[winner]));
        let head = plain.head_object().bucket(B).key(&key).send().await.unwrap();
        assert_eq!(head.e_tag(), Some(won_etag.as_str()));
    }
    assert_eq!(private_files(&server.bucket_dir(B)), Vec::<String>::new(), "no temp files left by the losers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_if_match_puts_have_one_winner() {
    const WRITERS: usize = 20;
    let server = Server::start_with_bucket(B).await;
    let plain = server.client_plain_put();
    let key = "race/replace";
    let mut current = put_bytes(&plain, B, key, b"version zero").await;
    for round in 0..3 {
        let bodies: Vec<Vec<u8>> = (0..WRITERS).map(|i| racer_body(round + 10, i)).collect();
        let outcomes = race(WRITERS, |i| {
            let put = put_request(&plain, B, key, &bodies[i]).if_match(current.clone());
            async move { status_and_etag(put.send().await.map(|out| out.e_tag().map(str::to_owned))) }
        })
        .await;
        let winner = single_winner(&format!("round {round}"), &outcomes);
        let stored = get_bytes(&plain, B, key).await;
        assert!(stored == bodies[winner], "round {round}: the stored content is the winner's body");
        current = outcomes[winner].2.clone().unwrap();
        assert_eq!(current, etag_of(&bodies[winner]));
    }
    assert_eq!(private_files(&server.bucket_dir(B)), Vec::<String>::new(), "no temp files left by the losers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_if_none_match_completes_have_one_winner() {
    const UPLOADS: usize = 16;
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let key = "race/multipart";
    let mut uploads = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..UPLOADS {
        let body = racer_body(99, i);
        uploads.push(upload_parts(&client, B, key, &[&body]).await);
        bodies.push(body);
    }
    let outcomes = race(UPLOADS, |i| {
        let (upload, parts) = &uploads[i];
        let complete = upload.complete_request(parts).if_none_match("*");
        async move { status_and_etag(complete.send().await.map(|out| out.e_tag().map(str::to_owned))) }
    })
    .await;
    let winner = single_winner("CompleteMultipartUpload", &outcomes);
    assert!(get_bytes(&client, B, key).await == bodies[winner], "the stored content is the winner's");
    assert_eq!(outcomes[winner].2.as_deref(), Some(multipart_etag(&[&bodies[winner]]).as_str()));
    // The losers' uploads are still there (a 412 keeps the upload); abort them.
    let left = client.list_multipart_uploads().bucket(B).send().await.unwrap();
    assert_eq!(left.uploads().len(), UPLOADS - 1);
    for u in left.uploads() {
        Upload::new(&client, B, key, u.upload_id().unwrap()).abort().await;
    }
    assert_eq!(server.staged_uploads(B), Vec::<String>::new());
    assert_eq!(private_files(&server.bucket_dir(B)), Vec::<String>::new(), "no temp files left by the losers");
}
