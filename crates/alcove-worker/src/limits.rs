//! What one client may cost the S3 port: the size and count of a request's header section, how
//! long a request body may stall, and how many connections are served at once. Each limit
//! answers with the S3 error AWS sends for it (`RequestHeaderSectionTooLarge`, `RequestTimeout`,
//! `SlowDown`); the XML body cap is s3s's (`MaxMessageLengthExceeded`), set from the same config.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use alcove_s3::error::with_detail;
use alcove_s3::BodyError;
use bytes::Bytes;
use futures::Stream;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{S3Error, S3ErrorCode, StdError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A time limit that SIGHUP may change while connections and requests read it.
#[derive(Debug, Clone)]
pub struct LiveDuration(Arc<AtomicU64>);

impl LiveDuration {
    pub fn new(limit: Duration) -> Self {
        LiveDuration(Arc::new(AtomicU64::new(limit.as_millis() as u64)))
    }

    pub fn get(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed))
    }

    pub fn set(&self, limit: Duration) {
        self.0.store(limit.as_millis() as u64, Ordering::Relaxed);
    }
}

/// The per-request limits of the S3 front end.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Largest header section: every header's name and value (plus `: ` and CRLF) and the query.
    pub max_header_bytes: usize,
    /// Most header lines.
    pub max_headers: usize,
    /// Longest a request body may send nothing while it is being read (live: SIGHUP).
    pub body_idle_timeout: LiveDuration,
}

impl RequestLimits {
    /// Refuses a request whose header section is larger, or has more lines, than allowed.
    pub fn check_header_section<B>(&self, req: &Request<B>) -> Result<(), S3Error> {
        let headers = req.headers();
        if headers.len() > self.max_headers {
            return Err(header_section_too_large(
                format!(
                    "Your request has {} header lines; this server accepts at most {} (s3.max_headers).",
                    headers.len(),
                    self.max_headers
                ),
                self.max_header_bytes,
            ));
        }
        let query = req.uri().query().map_or(0, str::len);
        let bytes = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>() + query;
        if bytes > self.max_header_bytes {
            return Err(header_section_too_large(
                format!(
                    "Your request header section exceeds the maximum allowed size: {bytes} bytes of headers and query, the limit is {} (s3.max_header_size).",
                    self.max_header_bytes
                ),
                self.max_header_bytes,
            ));
        }
        Ok(())
    }

    /// Makes the request's body fail with `RequestTimeout` when the client sends nothing for
    /// [`Self::body_idle_timeout`] while the body is being read. The clock runs only while the
    /// worker waits for the client, never while the client waits for the worker (a slow
    /// under-storage does not count against it).
    pub fn watch_body(&self, req: &mut Request<s3s::Body>) {
        let inner = std::mem::take(req.body_mut());
        let watched = IdleTimeout { inner, limit: self.body_idle_timeout.get(), timer: None, expired: false };
        *req.body_mut() = s3s::Body::from(Box::pin(watched) as s3s::stream::DynByteStream);
    }
}

/// Makes a request body fail with `MaxMessageLengthExceeded` once more than `limit` bytes
/// have arrived. s3s caps the XML bodies it reads too, but calls a streamed body over its cap
/// an internal error; this error reaches the client instead (the front end's body watch keeps it).
pub fn cap_body(req: &mut Request<s3s::Body>, limit: usize) {
    let inner = std::mem::take(req.body_mut());
    let capped = Capped { inner, left: limit, limit };
    *req.body_mut() = s3s::Body::from(Box::pin(capped) as s3s::stream::DynByteStream);
}

struct Capped {
    inner: s3s::Body,
    left: usize,
    limit: usize,
}

impl Stream for Capped {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(data))) if data.len() > this.left => {
                this.left = 0;
                Poll::Ready(Some(Err(Box::new(BodyError::TooLarge { limit: this.limit }))))
            }
            Poll::Ready(Some(Ok(data))) => {
                this.left -= data.len();
                Poll::Ready(Some(Ok(data)))
            }
            other => other,
        }
    }
}

impl ByteStream for Capped {
    fn remaining_length(&self) -> RemainingLength {
        self.inner.remaining_length()
    }
}

/// `RequestHeaderSectionTooLarge` (400) with AWS's `MaxSizeAllowed` element.
fn header_section_too_large(message: String, max: usize) -> S3Error {
    let e = S3Error::with_message(S3ErrorCode::RequestHeaderSectionTooLarge, message);
    with_detail(e, "MaxSizeAllowed", &max.to_string())
}

/// A request body that fails once it has sent nothing for `limit` while being read.
struct IdleTimeout {
    inner: s3s::Body,
    limit: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: bool,
}

impl Stream for IdleTimeout {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                this.timer = None;
                Poll::Ready(item)
            }
            Poll::Pending => {
                let limit = this.limit;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.expired = true;
                        Poll::Ready(Some(Err(Box::new(BodyError::IdleTimeout))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl ByteStream for IdleTimeout {
    fn remaining_length(&self) -> RemainingLength {
        self.inner.remaining_length()
    }
}

/// At most `max` connections served at once on a port. One more is answered
/// `503 SlowDown` (with `Retry-After`) and closed; SDKs retry those with back-off. A bounded
/// number of such refusals run at once; past that, extra connections are closed unanswered.
#[derive(Debug)]
pub struct ConnectionLimit {
    max: usize,
    slots: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    refused: AtomicU64,
}

/// What to do with a connection just accepted.
pub enum Admission {
    /// Serve it; the slot is free again when the permit is dropped.
    Serve(OwnedSemaphorePermit),
    /// Answer `503 SlowDown` and close it.
    Refuse(OwnedSemaphorePermit),
    /// Close it at once: too many refusals are under way already.
    Close,
}

/// How long a refused connection may take to send its request head.
pub const REFUSAL_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

impl ConnectionLimit {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            slots: Arc::new(Semaphore::new(max)),
            refusing: Arc::new(Semaphore::new(max.clamp(16, 1024))),
            refused: AtomicU64::new(0),
        }
    }

    pub fn admit(&self) -> Admission {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Admission::Serve(permit);
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        match Arc::clone(&self.refusing).try_acquire_owned() {
            Ok(permit) => Admission::Refuse(permit),
            Err(_) => Admission::Close,
        }
    }

    /// Connections being served now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections refused since the start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The answer to every request of a refused connection.
    pub fn refusal(&self) -> Response<Full<Bytes>> {
        let request_id = format!("{:016X}", uuid::Uuid::new_v4().as_u64_pair().0);
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate: this worker is serving its limit of {} connections (s3.max_connections).</Message><Resource>/</Resource><RequestId>{request_id}</RequestId></Error>",
            self.max
        );
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let headers = resp.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert("x-amz-request-id", v);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;

    fn limits() -> RequestLimits {
        RequestLimits {
            max_header_bytes: 100,
            max_headers: 3,
            body_idle_timeout: LiveDuration::new(Duration::from_millis(50)),
        }
    }

    #[test]
    fn header_sections_are_measured() {
        let req = |headers: &[(&str, &str)], uri: &str| {
            let mut b = Request::builder().uri(uri);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.body(()).unwrap()
        };
        assert!(limits().check_header_section(&req(&[("host", "h"), ("a", "b")], "/b/k")).is_ok());
        let many = req(&[("a", "1"), ("a", "2"), ("b", "3"), ("c", "4")], "/");
        let e = limits().check_header_section(&many).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::RequestHeaderSectionTooLarge);
        assert!(e.message().unwrap().contains("4 header lines"));
        // 90 bytes of header ("x: " + 86 + CRLF = 92) fit; the query tips it over.
        let value = "v".repeat(86);
        assert!(limits().check_header_section(&req(&[("x", &value)], "/b/k")).is_ok());
        let e = limits().check_header_section(&req(&[("x", &value)], "/b/k?abcdefghij")).unwrap_err();
        assert_eq!(e.status_code(), Some(StatusCode::BAD_REQUEST));
        assert_eq!(e.headers().and_then(|h| h.get("x-alcove-detail-maxsizeallowed")).unwrap(), "100");
    }

    #[tokio::test]
    async fn a_stalled_body_times_out_and_a_slow_one_does_not() {
        // Chunks every 20 ms: never 50 ms of silence.
        let slow = futures::stream::iter(0..5)
            .then(|i| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, std::io::Error>(Bytes::from(vec![i; 3]))
            })
            .boxed();
        let mut req = Request::new(s3s::Body::from(
            Box::pin(SyncBody(sync_wrapper::SyncStream::new(slow))) as s3s::stream::DynByteStream
        ));
        limits().watch_body(&mut req);
        let mut body = std::mem::take(req.body_mut());
        let mut got = 0;
        while let Some(chunk) = body.next().await {
            got += chunk.unwrap().len();
        }
        assert_eq!(got, 15);

        let stalled = futures::stream::pending::<Result<Bytes, std::io::Error>>().boxed();
        let mut req = Request::new(s3s::Body::from(
            Box::pin(SyncBody(sync_wrapper::SyncStream::new(stalled))) as s3s::stream::DynByteStream
        ));
        limits().watch_body(&mut req);
        let mut body = std::mem::take(req.body_mut());
        let e = body.next().await.unwrap().unwrap_err();
        assert!(matches!(e.downcast_ref::<BodyError>(), Some(BodyError::IdleTimeout)));
        assert!(body.next().await.is_none(), "the body ends after its timeout");
        assert_eq!(*alcove_s3::error::stream_error(e.as_ref()).code(), S3ErrorCode::RequestTimeout);
    }

    /// A test body stream (s3s wants Sync streams; SyncStream makes a Send one Sync).
    struct SyncBody(sync_wrapper::SyncStream<futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>>);
    impl Stream for SyncBody {
        type Item = Result<Bytes, StdError>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Pin::new(&mut self.0).poll_next(cx).map(|o| o.map(|r| r.map_err(|e| Box::new(e) as StdError)))
        }
    }
    impl ByteStream for SyncBody {}

    #[test]
    fn connections_beyond_the_limit_are_refused_then_admitted_again() {
        let limit = ConnectionLimit::new(2);
        let a = limit.admit();
        let b = limit.admit();
        assert!(matches!((&a, &b), (Admission::Serve(_), Admission::Serve(_))));
        assert_eq!(limit.open(), 2);
        assert!(matches!(limit.admit(), Admission::Refuse(_)));
        assert_eq!(limit.refused(), 1);
        drop(a);
        assert!(matches!(limit.admit(), Admission::Serve(_)));
        let r = limit.refusal();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[http::header::RETRY_AFTER], "1");
        drop(b);
    }
}
