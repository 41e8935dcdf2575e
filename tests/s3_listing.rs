//! Listings: ListObjects v1, ListObjectsV2, ListObjectVersions over a few
//! thousand keys, checked against a model of the expected result (UTF-8
//! binary order, delimiter roll-up, pagination where max-keys counts keys +
//! common prefixes) in both listing modes — AWS's (only written objects) and
//! the seed's (`folder_objects = true`: implicit folders as objects) — plus
//! encoding-type=url.

use std::collections::BTreeSet;

use alcove_tests::aws_sdk_s3::types::{CommonPrefix, Object};
use alcove_tests::aws_sdk_s3::Client;
use alcove_tests::*;
use futures::StreamExt as _;

const B: &str = "listing";
/// The same folder mounted with `folder_objects=true`.
const SEED: &str = "listing-seed";

/// One listing entry: an object key or a common prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    Key(String),
    Prefix(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Key(s) | Entry::Prefix(s) => s,
        }
    }
}

/// The entries of one listing page, keys and common prefixes together, in name order.
fn page_entries(contents: &[Object], prefixes: &[CommonPrefix]) -> Vec<Entry> {
    let mut page: Vec<Entry> = contents
        .iter()
        .map(|o| Entry::Key(o.key().unwrap().to_owned()))
        .chain(prefixes.iter().map(|p| Entry::Prefix(p.prefix().unwrap().to_owned())))
        .collect();
    page.sort_by(|a, b| a.name().cmp(b.name()));
    page
}

/// All keys a recursive listing shows: every object plus every parent folder.
fn with_folders(keys: &[String]) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for k in keys {
        all.insert(k.clone());
        for (i, _) in k.match_indices('/') {
            all.insert(k[..=i].to_owned());
        }
    }
    all
}

/// Expected entries for prefix/delimiter, in UTF-8 binary order (Rust's
/// `String` ordering is byte-wise, which is exactly that).
fn expected(all: &BTreeSet<String>, prefix: &str, delimiter: Option<&str>, after: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for k in all.iter().filter(|k| k.starts_with(prefix) && k.as_str() > after) {
        let rest = &k[prefix.len()..];
        let e = match delimiter.and_then(|d| rest.find(d).map(|i| (i, d))) {
            Some((i, d)) => Entry::Prefix(format!("{prefix}{}", &rest[..i + d.len()])),
            None => Entry::Key(k.clone()),
        };
        if out.last() != Some(&e) {
            out.push(e);
        }
    }
    out.sort_by(|a, b| a.name().cmp(b.name()));
    out.dedup();
    out
}

fn key_set() -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..1500 {
        keys.push(format!("many/{i:04}"));
    }
    for d in 0..100 {
        for f in 0..8 {
            keys.push(format!("tree/d{d:02}/f{f}"));
        }
    }
    let chars = ["a", "A", "z", "0", "9", "-", ".", "_", "~", "!", "é", "ß", "中", "😀", " ", "+", "%"];
    for c1 in chars {
        for c2 in chars {
            let name = format!("{c1}{c2}");
            if name == ".." {
                continue;
            }
            keys.push(format!("mix/{name}"));
        }
        if c1 != "." {
            keys.push(format!("mix/{c1}/nested"));
        }
    }
    keys.push("top-level".into());
    keys
}

async fn upload_all(client: &Client, keys: &[String]) {
    let results: Vec<Result<(), String>> = futures::stream::iter(keys.iter().cloned())
        .map(|k| {
            let client = client.clone();
            async move {
                let put = put_request(&client, B, &k, k.as_bytes()).send().await;
                put.map(|_| ()).map_err(|e| format!("{k}: {}", err_text(&e)))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let errs: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(errs.is_empty(), "{} uploads failed, e.g. {:?}", errs.len(), &errs[..errs.len().min(5)]);
}

/// Pages through ListObjectsV2, checking per-page invariants; returns all
/// entries in page order and the number of pages.
async fn list_v2(
    client: &Client,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<&str>,
    max_keys: i32,
) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 10_000, "pagination does not end");
        let req = client.list_objects_v2().bucket(bucket).prefix(prefix).set_delimiter(delimiter.map(str::to_owned));
        let req = req.set_start_after(start_after.map(str::to_owned)).max_keys(max_keys);
        let out = req.set_continuation_token(token.clone()).send().await.or_panic("list v2");
        let page = page_entries(out.contents(), out.common_prefixes());
        let n = page.len() as i32;
        assert_eq!(out.key_count(), Some(n), "KeyCount = keys + common prefixes");
        assert_eq!(out.max_keys(), Some(max_keys));
        assert_eq!(out.prefix().unwrap_or(""), prefix);
        assert_eq!(out.continuation_token(), token.as_deref());
        let truncated = out.is_truncated() == Some(true);
        if truncated {
            assert_eq!(n, max_keys, "a truncated page is full (page {pages})");
        } else {
            assert!(n <= max_keys);
            assert!(out.next_continuation_token().is_none());
        }
        // Within a page, Contents are sorted, and so are CommonPrefixes.
        let keys: Vec<&str> = out.contents().iter().map(|o| o.key().unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "Contents sorted: {keys:?}");
        for o in out.contents() {
            assert_eq!(o.e_tag(), Some(etag_of(stored_body(o.key().unwrap()).as_bytes()).as_str()));
            assert!(o.last_modified().is_some());
            assert!(o.owner().is_none(), "no Owner without fetch-owner");
        }
        entries.extend(page);
        if !truncated {
            return (entries, pages);
        }
        token = Some(out.next_continuation_token().expect("continuation token").to_owned());
    }
}

/// What upload_all stored for a key (folder objects are empty).
fn stored_body(key: &str) -> String {
    if key.ends_with('/') {
        String::new()
    } else {
        key.to_owned()
    }
}

/// Pages through ListObjects v1.
async fn list_v1(
    client: &Client,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: i32,
) -> (Vec<Entry>, usize) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 10_000, "pagination does not end");
        let req = client.list_objects().bucket(bucket).prefix(prefix).set_delimiter(delimiter.map(str::to_owned));
        let out = req.set_marker(marker.clone()).max_keys(max_keys).send().await.or_panic("list v1");
        let page = page_entries(out.contents(), out.common_prefixes());
        assert_eq!(out.marker().unwrap_or(""), marker.as_deref().unwrap_or(""));
        let truncated = out.is_truncated() == Some(true);
        if truncated {
            assert_eq!(page.len() as i32, max_keys, "a truncated page is full");
        }
        let last = page.last().map(|e| e.name().to_owned());
        entries.extend(page);
        if !truncated {
            return (entries, pages);
        }
        marker = match out.next_marker() {
            Some(m) => {
                assert_eq!(Some(m), last.as_deref(), "NextMarker is the last entry of the page");
                Some(m.to_owned())
            }
            None => {
                assert!(delimiter.is_none(), "NextMarker is required when a delimiter is given");
                Some(last.expect("truncated page is not empty"))
            }
        };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_over_thousands_of_keys() {
    let server = Server::start_with_bucket(B).await;
    let keys = key_set();
    assert!(keys.len() > 2500, "{} keys", keys.len());
    upload_all(&server.client_plain_put(), &keys).await;
    let uri = format!("file://{}", server.bucket_dir(B).display());
    let out = server.cli(&[
        "mount",
        "add",
        "--admin",
        &server.admin_url(),
        "--path",
        &format!("/{SEED}"),
        "--ufs-uri",
        &uri,
        "--option",
        "folder_objects=true",
    ]);
    assert!(out.status.success(), "mount add: {}", String::from_utf8_lossy(&out.stderr));
    let client = server.client();
    check_listings(&client, B, &keys.iter().cloned().collect()).await;
    check_listings(&client, SEED, &with_folders(&keys)).await;
}

/// Checks every listing shape of `bucket` against the model of what it holds (`all`).
async fn check_listings(client: &Client, bucket: &str, all: &BTreeSet<String>) {
    let folders = all.contains("tree/");
    // Full recursive listing with the default page size.
    let (got, pages) = list_v2(client, bucket, "", None, None, 1000).await;
    assert_eq!(got, expected(all, "", None, ""), "recursive listing");
    assert_eq!(pages, all.len().div_ceil(1000));

    // Small pages over everything.
    let (got, pages) = list_v2(client, bucket, "", None, None, 97).await;
    assert_eq!(got.len(), all.len());
    assert_eq!(got, expected(all, "", None, ""), "recursive listing, 97 per page");
    assert_eq!(pages, all.len().div_ceil(97));

    // Top level with a delimiter: prefixes roll up.
    let (got, _) = list_v2(client, bucket, "", Some("/"), None, 2).await;
    assert_eq!(
        got,
        vec![
            Entry::Prefix("many/".into()),
            Entry::Prefix("mix/".into()),
            Entry::Key("top-level".into()),
            Entry::Prefix("tree/".into()),
        ]
    );

    // 100 common prefixes, 7 per page: no prefix repeated across pages; with
    // folder objects the folder "tree/" itself is in Contents.
    let (got, pages) = list_v2(client, bucket, "tree/", Some("/"), None, 7).await;
    let want = expected(all, "tree/", Some("/"), "");
    assert_eq!(want.len(), if folders { 101 } else { 100 });
    assert_eq!(want[0] == Entry::Key("tree/".into()), folders);
    assert_eq!(got, want);
    assert_eq!(pages, want.len().div_ceil(7));

    // Mixed characters: binary order with '/'-nested folders in between.
    for page in [1, 10, 1000] {
        let (got, _) = list_v2(client, bucket, "mix/", Some("/"), None, page).await;
        assert_eq!(got, expected(all, "mix/", Some("/"), ""), "mix/ with max-keys {page}");
        let (got, _) = list_v2(client, bucket, "mix/", None, None, page).await;
        assert_eq!(got, expected(all, "mix/", None, ""), "mix/ recursive, max-keys {page}");
    }

    // start-after.
    let (got, _) = list_v2(client, bucket, "many/", None, Some("many/0999"), 250).await;
    assert_eq!(got, expected(all, "many/", None, "many/0999"));
    assert_eq!(got.len(), 500);
    let (got, _) = list_v2(client, bucket, "", Some("/"), Some("mix/"), 10).await;
    assert_eq!(
        got,
        vec![Entry::Key("top-level".into()), Entry::Prefix("tree/".into())],
        "start-after equal to a common prefix skips that prefix"
    );

    // Nothing matches.
    let (got, pages) = list_v2(client, bucket, "nothing/", None, None, 10).await;
    assert!(got.is_empty());
    assert_eq!(pages, 1);

    // ListObjects v1.
    let (got, pages) = list_v1(client, bucket, "", None, 333).await;
    assert_eq!(got, expected(all, "", None, ""), "v1 recursive");
    assert_eq!(pages, all.len().div_ceil(333));
    let (got, _) = list_v1(client, bucket, "tree/", Some("/"), 9).await;
    assert_eq!(got, expected(all, "tree/", Some("/"), ""), "v1 with delimiter");
    let (got, _) = list_v1(client, bucket, "mix/", Some("/"), 4).await;
    assert_eq!(got, expected(all, "mix/", Some("/"), ""), "v1 mix/");

    // ListObjectVersions: one version per object, "null", latest.
    let mut versions = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut vid_marker: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 1000);
        let req = client.list_object_versions().bucket(bucket).max_keys(211).set_key_marker(key_marker.clone());
        let out = req.set_version_id_marker(vid_marker.clone()).send().await.or_panic("list versions");
        assert!(out.delete_markers().is_empty());
        for v in out.versions() {
            assert_eq!(v.version_id(), Some("null"), "{:?}", v.key());
            assert_eq!(v.is_latest(), Some(true), "{:?}", v.key());
            assert_eq!(v.e_tag(), Some(etag_of(stored_body(v.key().unwrap()).as_bytes()).as_str()));
            versions.push(v.key().unwrap().to_owned());
        }
        if out.is_truncated() != Some(true) {
            break;
        }
        assert_eq!(out.versions().len(), 211, "truncated versions page is full");
        key_marker = Some(out.next_key_marker().expect("NextKeyMarker").to_owned());
        vid_marker = out.next_version_id_marker().map(str::to_owned);
    }
    assert_eq!(versions, all.iter().cloned().collect::<Vec<_>>(), "versions listing");
    assert_eq!(pages, all.len().div_ceil(211));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_marker_and_common_prefix() {
    for folder_objects in [false, true] {
        let server = Server::start_with_config(&format!("[s3]\nfolder_objects = {folder_objects}\n")).await;
        server.create_bucket(B).await;
        let client = server.client();
        put_bytes(&client, B, "a/b/c", b"x").await;

        let all = list_all_keys(&client, B, "").await;
        let out = client.list_objects_v2().bucket(B).prefix("a/").delimiter("/").send().await.unwrap();
        let keys: Vec<&str> = out.contents().iter().map(|o| o.key().unwrap()).collect();
        let prefixes: Vec<&str> = out.common_prefixes().iter().map(|p| p.prefix().unwrap()).collect();
        assert_eq!(prefixes, vec!["a/b/"]);
        if folder_objects {
            assert_eq!(all, vec!["a/", "a/b/", "a/b/c"]);
            assert_eq!(keys, vec!["a/"], "the prefix's own folder object comes first");
            assert_eq!(out.key_count(), Some(2));
            let folder = &out.contents()[0];
            assert_eq!(folder.size(), Some(0));
            assert_eq!(folder.e_tag(), Some(etag_of(b"").as_str()));
        } else {
            assert_eq!(all, vec!["a/b/c"], "AWS lists only what was written");
            assert!(keys.is_empty(), "no invented a/ object: {keys:?}");
            assert_eq!(out.key_count(), Some(1));
        }

        // Deleting the last object removes the implicit folders.
        client.delete_object().bucket(B).key("a/b/c").send().await.unwrap();
        assert_eq!(list_all_keys(&client, B, "").await, Vec::<String>::new());
        let out = client.list_objects_v2().bucket(B).delimiter("/").send().await.unwrap();
        assert!(out.common_prefixes().is_empty());

        // An explicit folder object stays, in both modes.
        put_bytes(&client, B, "keep/", b"").await;
        put_bytes(&client, B, "keep/sub/x", b"x").await;
        let expected: &[&str] =
            if folder_objects { &["keep/", "keep/sub/", "keep/sub/x"] } else { &["keep/", "keep/sub/x"] };
        assert_eq!(list_all_keys(&client, B, "").await, expected);
        client.delete_object().bucket(B).key("keep/sub/x").send().await.unwrap();
        assert_eq!(list_all_keys(&client, B, "").await, vec!["keep/"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_owner() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    put_bytes(&client, B, "o1", b"1").await;
    put_bytes(&client, B, "o2", b"2").await;
    let out = client.list_objects_v2().bucket(B).fetch_owner(true).send().await.unwrap();
    assert_eq!(out.contents().len(), 2);
    for o in out.contents() {
        let owner = o.owner().expect("Owner with fetch-owner=true");
        assert!(owner.id().is_some_and(|s| !s.is_empty()), "Owner ID: {owner:?}");
    }
    let out = client.list_objects_v2().bucket(B).send().await.unwrap();
    assert!(out.contents().iter().all(|o| o.owner().is_none()));
}

/// Raw listing GET; `query` is already encoded.
async fn raw_list(server: &Server, query: &str) -> String {
    let r = server.raw("GET", &format!("/{B}?{query}"), &[], b"").await;
    assert_eq!(r.status, 200, "GET ?{query}: {}", r.text());
    r.text()
}

fn enc(s: &str) -> String {
    aws_uri_encode(s, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoding_type_url() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    let keys = [
        "enc/amp&er",
        "enc/dir one/x",
        "enc/per%cent",
        "enc/plus+sign",
        "enc/sp ace",
        "enc/ünï/cødé",
        "enc/中文",
        "enc/lt<gt>",
    ];
    for k in keys {
        put_bytes(&client, B, k, b"v").await;
    }

    // V2 with delimiter: Key, Prefix, Delimiter, CommonPrefixes encoded.
    let xml =
        raw_list(&server, &format!("list-type=2&encoding-type=url&prefix={}&delimiter={}", enc("enc/"), enc("/")))
            .await;
    assert_eq!(xml_top(&xml, "EncodingType").as_deref(), Some("url"), "{xml}");
    let raw_keys = xml_list(&xml, "Contents", "Key");
    let raw_prefixes = xml_list(&xml, "CommonPrefixes", "Prefix");
    for v in raw_keys.iter().chain(&raw_prefixes) {
        assert!(v.is_ascii(), "encoded values are ASCII: {v:?}");
        assert!(!v.contains(' ') && !v.contains('&') && !v.contains('<'), "{v:?} is encoded");
    }
    let keys_dec: Vec<String> = raw_keys.iter().map(|k| url_decode_plus(k)).collect();
    let prefixes_dec: Vec<String> = raw_prefixes.iter().map(|k| url_decode_plus(k)).collect();
    assert_eq!(keys_dec, vec!["enc/amp&er", "enc/lt<gt>", "enc/per%cent", "enc/plus+sign", "enc/sp ace", "enc/中文"]);
    assert_eq!(prefixes_dec, vec!["enc/dir one/", "enc/ünï/"]);
    let plus = raw_keys.iter().find(|k| k.contains("plus")).unwrap();
    assert!(plus.contains("%2B"), "'+' survives as %2B: {plus}");
    assert_eq!(url_decode_plus(&xml_top(&xml, "Prefix").unwrap()), "enc/");
    assert_eq!(url_decode_plus(&xml_top(&xml, "Delimiter").unwrap()), "/");

    // A prefix that needs encoding.
    let xml = raw_list(&server, &format!("list-type=2&encoding-type=url&prefix={}", enc("enc/sp "))).await;
    let p = xml_top(&xml, "Prefix").unwrap();
    assert_ne!(p, "enc/sp ", "Prefix is encoded: {xml}");
    assert_eq!(url_decode_plus(&p), "enc/sp ");
    assert_eq!(
        xml_list(&xml, "Contents", "Key").iter().map(|k| url_decode_plus(k)).collect::<Vec<_>>(),
        vec!["enc/sp ace"]
    );

    // StartAfter encoded; continuation token passed through unencoded.
    let mut token: Option<String> = None;
    let mut all = Vec::new();
    for _ in 0..100 {
        let mut q = format!("list-type=2&encoding-type=url&max-keys=2&start-after={}", enc("enc/amp&er"));
        if let Some(t) = &token {
            q.push_str(&format!("&continuation-token={}", enc(t)));
        }
        let xml = raw_list(&server, &q).await;
        let sa = xml_top(&xml, "StartAfter").expect("StartAfter echoed");
        assert_ne!(sa, "enc/amp&er", "StartAfter is encoded");
        assert_eq!(url_decode_plus(&sa), "enc/amp&er");
        if let Some(t) = &token {
            assert_eq!(xml_top(&xml, "ContinuationToken").as_deref(), Some(t.as_str()));
        }
        all.extend(xml_list(&xml, "Contents", "Key").iter().map(|k| url_decode_plus(k)));
        if xml_top(&xml, "IsTruncated").as_deref() == Some("true") {
            token = Some(xml_top(&xml, "NextContinuationToken").expect("token"));
        } else {
            token = None;
            break;
        }
    }
    assert!(token.is_none(), "pagination ended");
    assert_eq!(
        all,
        vec!["enc/dir one/x", "enc/lt<gt>", "enc/per%cent", "enc/plus+sign", "enc/sp ace", "enc/ünï/cødé", "enc/中文",]
    );

    // V1: Marker / NextMarker / Prefix / Delimiter encoded too.
    let mut marker = String::new();
    let mut seen = Vec::new();
    for _ in 0..100 {
        let xml = raw_list(
            &server,
            &format!(
                "encoding-type=url&prefix={}&delimiter={}&max-keys=3&marker={}",
                enc("enc/"),
                enc("/"),
                enc(&marker)
            ),
        )
        .await;
        assert_eq!(xml_top(&xml, "EncodingType").as_deref(), Some("url"));
        assert_eq!(url_decode_plus(&xml_top(&xml, "Marker").unwrap_or_default()), marker);
        seen.extend(xml_list(&xml, "Contents", "Key").iter().map(|k| url_decode_plus(k)));
        seen.extend(xml_list(&xml, "CommonPrefixes", "Prefix").iter().map(|k| url_decode_plus(k)));
        if xml_top(&xml, "IsTruncated").as_deref() != Some("true") {
            marker.clear();
            break;
        }
        let nm = xml_top(&xml, "NextMarker").expect("NextMarker with delimiter");
        assert!(nm.is_ascii());
        marker = url_decode_plus(&nm);
    }
    assert!(marker.is_empty(), "v1 pagination ended");
    seen.sort();
    let mut want: Vec<String> = [
        "enc/amp&er",
        "enc/dir one/",
        "enc/lt<gt>",
        "enc/per%cent",
        "enc/plus+sign",
        "enc/sp ace",
        "enc/ünï/",
        "enc/中文",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    want.sort();
    assert_eq!(seen, want);

    // Without encoding-type the XML carries the raw (XML-escaped) keys.
    let xml = raw_list(&server, &format!("list-type=2&prefix={}", enc("enc/"))).await;
    assert_eq!(xml_top(&xml, "EncodingType"), None);
    let raw_keys = xml_list(&xml, "Contents", "Key");
    assert!(raw_keys.contains(&"enc/plus+sign".to_owned()), "{raw_keys:?}");
    assert!(raw_keys.contains(&"enc/lt<gt>".to_owned()));
    assert!(raw_keys.contains(&"enc/中文".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_buckets_and_objects_raw_fields() {
    let server = Server::start_with_bucket(B).await;
    let client = server.client();
    for k in ["p/1", "p/2", "p/3"] {
        put_bytes(&client, B, k, b"x").await;
    }
    let xml = raw_list(&server, "list-type=2&prefix=p%2F&max-keys=2").await;
    assert_eq!(xml_top(&xml, "Name").as_deref(), Some(B));
    assert_eq!(xml_top(&xml, "Prefix").as_deref(), Some("p/"));
    assert_eq!(xml_top(&xml, "KeyCount").as_deref(), Some("2"));
    assert_eq!(xml_top(&xml, "MaxKeys").as_deref(), Some("2"));
    assert_eq!(xml_top(&xml, "IsTruncated").as_deref(), Some("true"));
    assert!(xml_top(&xml, "NextContinuationToken").is_some_and(|t| !t.is_empty()));
    assert_eq!(xml_list(&xml, "Contents", "Key"), vec!["p/1", "p/2"]);
    assert_eq!(xml_list(&xml, "Contents", "Size"), vec!["1", "1"]);
    assert_eq!(xml_list(&xml, "Contents", "ETag")[1], etag_of(b"x"));
    assert_eq!(xml_list(&xml, "Contents", "StorageClass").len(), 2);

    // max-keys=0: nothing, not an error.
    let xml = raw_list(&server, "list-type=2&max-keys=0").await;
    assert_eq!(xml_top(&xml, "KeyCount").as_deref(), Some("0"));
    assert_eq!(xml_count(&xml, "Contents"), 0);

    // Versions raw fields.
    let xml = raw_list(&server, "versions&prefix=p%2F1").await;
    assert_eq!(xml_list(&xml, "Version", "Key"), vec!["p/1"]);
    assert_eq!(xml_list(&xml, "Version", "VersionId"), vec!["null"]);
    assert_eq!(xml_list(&xml, "Version", "IsLatest"), vec!["true"]);
}
