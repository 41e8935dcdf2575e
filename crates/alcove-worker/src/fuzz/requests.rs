//! Whole S3 requests, in process, through the same layers a worker runs them through: the front
//! end (limits, SIMPLE-mode pre-layer, signing times, DeleteObjects integrity, CORS, error
//! documents), s3s (routing, path and header parsing, XML bodies) and the gateway over a real
//! root on disk. Each case is a short sequence of requests built from S3's own vocabulary
//! (methods, buckets, escaping keys, sub-resources, headers, XML and aws-chunked bodies), where a
//! later request may use the upload id and ETag an earlier one got.
//!
//! What must hold for every request: an answer within seconds, never a 500 (a client's input
//! is never the server's error; 501 for what is not implemented is fine), an S3 error document
//! for every error, and nothing changed outside the buckets the requests name: a file beside
//! the root and a bucket no request names stay as they were.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alcove_cache::ObjectService;
use alcove_s3::AuthMode;
use alcove_ufs::MountTable;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use crate::config::Config;
use crate::front::S3Front;

const SECRET: &[u8] = b"never touched";
/// The XML body cap of the fuzzed stack.
const XML_CAP: usize = 64 << 10;
/// How many cases run before the fuzzed bucket is emptied (so a long run does not fill a disk).
const RESET_EVERY: u64 = 2000;

/// A worker's S3 stack over a temporary root holding the bucket the requests aim at (`fuzz`),
/// another they may name (`other`), a bucket they never name (`vault`), and a file beside the
/// root (`outside/secret.txt`).
struct Stack {
    dir: tempfile::TempDir,
    front: Arc<S3Front>,
    runtime: tokio::runtime::Runtime,
    cases: std::cell::Cell<u64>,
}

impl Stack {
    fn new(mode: AuthMode) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        for folder in ["root/fuzz", "root/other", "root/vault", "outside"] {
            std::fs::create_dir_all(dir.path().join(folder)).expect("folder");
        }
        std::fs::write(dir.path().join("root/vault/secret"), SECRET).expect("vault");
        std::fs::write(dir.path().join("outside/secret.txt"), SECRET).expect("outside");
        // A small XML cap, so bodies over it are cheap to make.
        let mut config = Config::default();
        config.s3.max_xml_size = crate::config::ByteSize(XML_CAP as u64);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        let front = runtime.block_on(async {
            let mounts =
                Arc::new(MountTable::open(&root, vec![], config.mount_defaults().expect("defaults")).expect("mounts"));
            let objects = Arc::new(ObjectService::new(mounts, None));
            if mode == AuthMode::Sigv4 {
                config.auth.mode = "sigv4".into();
                config.auth.credentials =
                    vec![crate::config::Credential { access_key: "AKIDFUZZ".into(), secret_key: "fuzz-secret".into() }];
            }
            let auth = config.auth_settings().expect("auth");
            let live = crate::LiveSettings::new(&config, &auth);
            let metrics = Arc::new(crate::metrics::Metrics::default());
            Arc::new(crate::s3_front(&config, &auth, &live, &objects, &metrics, None).expect("front"))
        });
        Self { dir, front, runtime, cases: Default::default() }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Runs one case and checks what must hold.
    fn check(&self, case: &[Call]) -> Result<(), TestCaseError> {
        let n = self.cases.get() + 1;
        self.cases.set(n);
        if n.is_multiple_of(RESET_EVERY) {
            for bucket in ["root/fuzz", "root/other"] {
                let _ = std::fs::remove_dir_all(self.path(bucket));
                std::fs::create_dir_all(self.path(bucket)).expect("bucket");
            }
        }
        let mut learned = Learned::default();
        for call in case {
            let Some(req) = call.request(&learned) else { continue };
            let described = format!("{} {}", req.method(), req.uri());
            let head = req.method() == http::Method::HEAD;
            let front = Arc::clone(&self.front);
            let remote = SocketAddr::from(([127, 0, 0, 1], 1));
            let answered = self.runtime.block_on(async move {
                tokio::time::timeout(Duration::from_secs(20), async move {
                    let resp = front.handle(req, remote).await;
                    let (parts, body) = resp.into_parts();
                    let body = body.collect().await.map(|b| b.to_bytes());
                    (parts, body)
                })
                .await
            });
            let Ok((parts, body)) = answered else {
                return Err(TestCaseError::fail(format!("{described}: no answer within 20 s")));
            };
            let body = body.map_err(|e| TestCaseError::fail(format!("{described}: the answer's body failed: {e}")))?;
            let status = parts.status.as_u16();
            let text = String::from_utf8_lossy(&body);
            prop_assert!(status < 500 || status == 501, "{} answered {}: {}", described, status, text);
            if status >= 400 && !head {
                prop_assert!(
                    text.contains("<Error>") && text.contains("<Code>"),
                    "{} answered {} without an S3 error: {:?}",
                    described,
                    status,
                    text
                );
            }
            learned.learn(&parts.headers, &text);
        }
        self.untouched()
    }

    /// Nothing outside the named buckets changed.
    fn untouched(&self) -> Result<(), TestCaseError> {
        let names = |dir: &Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        prop_assert_eq!(names(self.dir.path()), vec!["outside".to_owned(), "root".to_owned()]);
        prop_assert_eq!(names(&self.path("outside")), vec!["secret.txt".to_owned()]);
        prop_assert_eq!(std::fs::read(self.path("outside/secret.txt")).ok(), Some(SECRET.to_vec()));
        prop_assert_eq!(names(&self.path("root/vault")), vec!["secret".to_owned()]);
        prop_assert_eq!(std::fs::read(self.path("root/vault/secret")).ok(), Some(SECRET.to_vec()));
        Ok(())
    }
}

/// What earlier answers of a case told: the last upload id and ETag.
#[derive(Default)]
struct Learned {
    upload_id: Option<String>,
    etag: Option<String>,
}

impl Learned {
    fn learn(&mut self, headers: &http::HeaderMap, body: &str) {
        if let Some(id) = body.split("<UploadId>").nth(1).and_then(|r| r.split("</UploadId>").next()) {
            self.upload_id = Some(id.to_owned());
        }
        if let Some(etag) = headers.get(http::header::ETAG).and_then(|v| v.to_str().ok()) {
            self.etag = Some(etag.trim_matches('"').to_owned());
        }
    }

    /// Replaces the placeholders `UPLOADID` and `ETAG` with what was learned.
    fn fill(&self, text: &str) -> String {
        let text = text.replace("UPLOADID", self.upload_id.as_deref().unwrap_or("0"));
        text.replace("ETAG", self.etag.as_deref().unwrap_or("d41d8cd98f00b204e9800998ecf8427e"))
    }
}

/// How a request frames its body.
#[derive(Debug, Clone)]
enum Length {
    Right,
    Missing,
    Wrong(u64),
    Chunked,
}

/// One request of a case, as text (placeholders filled when it is sent).
#[derive(Debug, Clone)]
struct Call {
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
    length: Length,
    /// The size of the reads the body arrives in.
    read_size: usize,
}

/// A request body arriving in reads, with its length known (as hyper's is, from Content-Length).
struct StreamBody {
    inner: futures::stream::Iter<std::vec::IntoIter<Result<Bytes, std::io::Error>>>,
    length: usize,
}

impl futures::Stream for StreamBody {
    type Item = Result<Bytes, s3s::StdError>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::pin::Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|item| item.map(|r| r.inspect(|b| self.length -= b.len()).map_err(|e| Box::new(e) as s3s::StdError)))
    }
}

impl s3s::stream::ByteStream for StreamBody {
    fn remaining_length(&self) -> s3s::stream::RemainingLength {
        s3s::stream::RemainingLength::new_exact(self.length)
    }
}

impl Call {
    /// The request, or `None` when HTTP itself could not carry it (an invalid URI or header).
    fn request(&self, learned: &Learned) -> Option<Request<s3s::Body>> {
        let target = learned.fill(&self.target);
        let mut req = Request::builder().method(self.method).uri(target).body(s3s::Body::empty()).ok()?;
        let headers = req.headers_mut();
        headers.insert(http::header::HOST, HeaderValue::from_static("127.0.0.1:29998"));
        for (name, value) in &self.headers {
            let value = learned.fill(&String::from_utf8_lossy(value));
            let value =
                if value.is_empty() { HeaderValue::from_static("") } else { HeaderValue::from_str(&value).ok()? };
            headers.append(HeaderName::from_static(name), value);
        }
        let body = Bytes::from(learned.fill(&String::from_utf8_lossy(&self.body)).into_bytes());
        let body = if self.body.is_ascii() { body } else { Bytes::from(self.body.clone()) };
        match self.length {
            Length::Right => {
                headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            }
            Length::Missing => {}
            Length::Wrong(n) => {
                headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
            }
            Length::Chunked => {
                headers.insert(http::header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            }
        }
        // As hyper hands bodies over: a stream of reads, not one buffer.
        let reads: Vec<Result<Bytes, std::io::Error>> =
            body.chunks(self.read_size.max(1)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let stream = StreamBody { inner: futures::stream::iter(reads), length: body.len() };
        *req.body_mut() = s3s::Body::from(Box::pin(stream) as s3s::stream::DynByteStream);
        Some(req)
    }
}

fn pick(options: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(options).prop_map(str::to_owned)
}

/// A key as it appears in a path: safe names, the components path safety is about (raw and
/// percent-encoded), and odd characters.
fn key() -> impl Strategy<Value = String> {
    let component = prop_oneof![
        6 => pick(&["a", "b", "dir", "kept", "x y", "é", "a+b", "k.txt"]),
        3 => pick(&["..", ".", "", "%2e%2e", "%2E", "%2F", "%5C", "%00", ".alcove.sys", "%2e%2e%2fvault", "..%2F..%2Foutside", "%FF", "%", "~"]),
        1 => "[a-zA-Z0-9%._-]{1,6}",
    ];
    proptest::collection::vec(component, 1..4).prop_map(|c| c.join("/"))
}

fn bucket() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("fuzz".to_owned()),
        2 => Just("other".to_owned()),
        1 => pick(&["..", "%2e%2e", "missing-bucket", "Bad_Name", "fuzz%2F..", "a", "new-bucket", "outside"]),
    ]
}

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => pick(&["", "1", "2", "0", "-1", "10001", "null", "url", "true", "UPLOADID", "a/", "/", "%2F", "%ZZ", "99999999999999999999"]),
        2 => key(),
        1 => any::<String>().prop_map(|s| percent_encoding::utf8_percent_encode(&s, percent_encoding::NON_ALPHANUMERIC).to_string()),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let flag = pick(&[
        "uploads",
        "tagging",
        "delete",
        "cors",
        "location",
        "versioning",
        "attributes",
        "acl",
        "versions",
        "policy",
        "lifecycle",
    ]);
    let named = (
        pick(&[
            "uploadId",
            "partNumber",
            "list-type",
            "prefix",
            "delimiter",
            "max-keys",
            "continuation-token",
            "start-after",
            "marker",
            "versionId",
            "encoding-type",
            "response-content-type",
            "response-expires",
            "x-id",
            "max-parts",
            "part-number-marker",
            "max-uploads",
            "upload-id-marker",
            "key-marker",
            "fetch-owner",
            "max-buckets",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-Signature",
            "AWSAccessKeyId",
            "Expires",
        ]),
        query_value(),
    )
        .prop_map(|(n, v)| format!("{n}={v}"));
    let params = proptest::collection::vec(prop_oneof![flag, named], 1..4).prop_map(|p| p.join("&"));
    prop_oneof![2 => Just(String::new()), 1 => pick(&["uploads", "tagging", "delete", "cors", "list-type=2", "uploadId=UPLOADID", "partNumber=1&uploadId=UPLOADID", "attributes", "uploadId=UPLOADID&part-number-marker=0"]), 2 => params]
}

fn header() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    let text = |s: &'static [&'static str]| pick(s).prop_map(String::into_bytes);
    prop_oneof![
        (Just("range"), text(&["bytes=0-0", "bytes=-1", "bytes=5-", "bytes=5-1", "bytes=0-99999999999", "bytes=-0", "bytes=a-b", "bytes=0-1,2-3", ""])),
        (Just("x-amz-copy-source"), prop_oneof![
            key().prop_map(|k| format!("/fuzz/{k}").into_bytes()),
            text(&["/vault/secret", "fuzz/kept", "/fuzz/../vault/secret", "/fuzz/%2e%2e/vault/secret", "/../outside/secret.txt", "arn:aws:s3:x", "/fuzz/kept?versionId=x", "", "/"]),
        ]),
        (Just("x-amz-copy-source-range"), text(&["bytes=0-0", "bytes=0-99", "bytes=+0-1", "bytes=1-0", "x"])),
        (Just("content-md5"), text(&["", "nope", "1B2M2Y8AsgTpgAmY7PhCfg==", "AAAAAAAAAAAAAAAAAAAAAA=="])),
        (Just("x-amz-checksum-crc32"), text(&["AAAAAA==", "", "!!"])),
        (Just("x-amz-checksum-sha256"), text(&["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "x"])),
        (Just("x-amz-sdk-checksum-algorithm"), text(&["CRC32", "SHA256", "MD5", ""])),
        (Just("x-amz-checksum-algorithm"), text(&["CRC32", "CRC64NVME", "bogus"])),
        (Just("x-amz-content-sha256"), text(&["UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "00", ""])),
        (Just("x-amz-decoded-content-length"), text(&["0", "5", "-1", "99999999999999999999", "x"])),
        (Just("x-amz-trailer"), text(&["x-amz-checksum-crc32", "x-amz-checksum-md5", ""])),
        (Just("content-encoding"), text(&["aws-chunked", "gzip", "aws-chunked,gzip"])),
        (Just("x-amz-meta-a"), prop_oneof![text(&["1", ""]), (0usize..3000).prop_map(|n| vec![b'v'; n])]),
        (Just("x-amz-tagging"), text(&["a=1", "a=1&a=2", "aws:x=1", "%zz=1", "k=v&k2=v2&k3=v3&k4=v4&k5=v5&k6=v6&k7=v7&k8=v8&k9=v9&k10=v10&k11=v11"])),
        (Just("x-amz-tagging-directive"), text(&["COPY", "REPLACE", "bogus"])),
        (Just("x-amz-metadata-directive"), text(&["COPY", "REPLACE", "bogus"])),
        (Just("if-match"), text(&["*", "\"ETAG\"", "\"nope\"", "", "W/\"x\""])),
        (Just("if-none-match"), text(&["*", "\"ETAG\"", "x"])),
        (Just("if-modified-since"), text(&["Mon, 01 Jan 2024 00:00:00 GMT", "yesterday", "Fri, 31 Dec 9999 23:59:59 GMT"])),
        (Just("x-amz-object-attributes"), text(&["ETag", "ETag,ObjectParts", "Checksum,StorageClass,ObjectSize", "Bogus", ""])),
        (Just("x-amz-max-parts"), text(&["1", "-1", "x"])),
        (Just("x-amz-checksum-mode"), text(&["ENABLED", "x"])),
        (Just("authorization"), text(&[
            "AWS4-HMAC-SHA256 Credential=AKIDFUZZ/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            "AWS alice:c2ln",
            "Bearer x",
            "",
            "AWS4-HMAC-SHA256 Credential=/x",
        ])),
        (Just("x-amz-date"), text(&["20260101T000000Z", "99991231T235959Z", "x"])),
        (Just("date"), text(&["Fri, 02 Jan 2026 03:04:05 GMT", "x"])),
        (Just("origin"), text(&["https://a.example.com", "null", ""])),
        (Just("access-control-request-method"), text(&["GET", "PUT", "x"])),
        (Just("content-type"), text(&["application/xml", "text/plain", "", "multipart/form-data; boundary=x"])),
        (Just("expect"), text(&["100-continue"])),
        (Just("x-amz-mp-object-size"), text(&["1", "x"])),
        (Just("x-amz-write-offset-bytes"), text(&["0"])),
        (Just("x-amz-expected-bucket-owner"), text(&["1", "x"])),
    ]
}

fn xml_key() -> impl Strategy<Value = String> {
    key().prop_map(|k| k.replace('&', "&amp;").replace('<', "&lt;"))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(Vec::new()),
        2 => proptest::collection::vec(any::<u8>(), 0..300),
        1 => proptest::collection::vec(xml_key(), 1..4).prop_map(|keys| {
            let objects: String = keys.iter().map(|k| format!("<Object><Key>{k}</Key></Object>")).collect();
            format!("<Delete><Quiet>false</Quiet>{objects}</Delete>").into_bytes()
        }),
        1 => (1i32..4, prop_oneof![Just("ETAG".to_owned()), "[0-9a-f]{32}"]).prop_map(|(n, etag)| {
            format!("<CompleteMultipartUpload><Part><PartNumber>{n}</PartNumber><ETag>\"{etag}\"</ETag></Part></CompleteMultipartUpload>").into_bytes()
        }),
        1 => proptest::collection::vec((xml_key(), "[a-z]{0,3}"), 0..12).prop_map(|tags| {
            let tags: String = tags.iter().map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>")).collect();
            format!("<Tagging><TagSet>{tags}</TagSet></Tagging>").into_bytes()
        }),
        1 => pick(&[
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
            "<CORSConfiguration><CORSRule><AllowedOrigin>**</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>",
            "<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>",
            "<Delete></Delete>",
            "<Delete><Object><Key>a</Key>",
        ]).prop_map(String::into_bytes),
        // Just over the XML cap: a tagging, delete, completion or CORS document padded out.
        1 => pick(&["<Tagging><TagSet>", "<Delete><Object><Key>a</Key></Object>", "<CompleteMultipartUpload>", "<CORSConfiguration>"])
            .prop_map(|start| {
                let mut doc = start.as_bytes().to_vec();
                doc.resize(XML_CAP + 10, b' ');
                doc
            }),
        1 => (proptest::collection::vec(any::<u8>(), 0..100), any::<bool>()).prop_map(|(payload, damaged)| {
            let mut wire = format!("{:x}\r\n", payload.len()).into_bytes();
            wire.extend_from_slice(&payload);
            wire.extend_from_slice(b"\r\n0\r\n\r\n");
            if damaged {
                wire.truncate(wire.len() / 2);
            }
            wire
        }),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    let method = prop_oneof![
        4 => Just("GET"),
        4 => Just("PUT"),
        2 => Just("HEAD"),
        2 => Just("POST"),
        2 => Just("DELETE"),
        1 => Just("OPTIONS"),
        1 => Just("PATCH"),
    ];
    let target = (0u8..10, bucket(), key(), query()).prop_map(|(shape, bucket, key, query)| {
        let path = match shape {
            0 => "/".to_owned(),
            1 | 2 => format!("/{bucket}"),
            _ => format!("/{bucket}/{key}"),
        };
        if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        }
    });
    let length = prop_oneof![6 => Just(Length::Right), 1 => Just(Length::Missing), 1 => (0u64..400).prop_map(Length::Wrong), 1 => Just(Length::Chunked)];
    let read_size = prop_oneof![Just(1 << 20), 1usize..64, 64usize..100_000];
    (method, target, proptest::collection::vec(header(), 0..5), body(), length, read_size).prop_map(
        |(method, target, headers, body, length, read_size)| Call { method, target, headers, body, length, read_size },
    )
}

fn case() -> impl Strategy<Value = Vec<Call>> {
    proptest::collection::vec(call(), 1..5)
}

/// Runs `cases` (see [`super::config`]) random cases against a fresh stack in `mode`.
fn run(mode: AuthMode, default_cases: u32) {
    let stack = Stack::new(mode);
    let mut config = super::config(default_cases);
    config.source_file = Some(file!());
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |case| stack.check(&case));
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// SIMPLE mode (the default): every request reaches the gateway.
#[test]
fn simple_mode_requests() {
    run(AuthMode::Simple, 2000);
}

/// sigv4 mode: s3s verifies what it can; everything else is refused, never a 500.
#[test]
fn sigv4_mode_requests() {
    run(AuthMode::Sigv4, 1000);
}
