//! A request body that fails to arrive is the client's error, never the server's. s3s answers
//! InternalError when it cannot read an XML body in full (a connection that ended early, broken
//! chunked framing, a payload hash that does not match), so the front end watches the body it
//! hands to s3s, keeps the first error it yields, and answers with what that error means.
//!
//! It sees only the byte stream; it may not look into what the bytes say.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{S3Error, StdError};

use crate::error::stream_error;

/// The first failure of a request's body, once it has been read.
#[derive(Clone, Default)]
pub struct BodyWatch {
    failure: Arc<Mutex<Option<S3Error>>>,
}

impl BodyWatch {
    /// Wraps the request's body so its first error is kept.
    pub fn install(req: &mut http::Request<s3s::Body>) -> Self {
        let watch = Self::default();
        let inner = std::mem::take(req.body_mut());
        let watched = Watched { inner, failure: Arc::clone(&watch.failure) };
        *req.body_mut() = s3s::Body::from(Box::pin(watched) as s3s::stream::DynByteStream);
        watch
    }

    /// The client error the body's failure was, if it failed.
    pub fn failure(&self) -> Option<S3Error> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

struct Watched {
    inner: s3s::Body,
    failure: Arc<Mutex<Option<S3Error>>>,
}

impl Stream for Watched {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Err(e))) = &polled {
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            failure.get_or_insert_with(|| stream_error(e.as_ref()));
        }
        polled
    }
}

impl ByteStream for Watched {
    fn remaining_length(&self) -> RemainingLength {
        self.inner.remaining_length()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;
    use s3s::S3ErrorCode;

    fn request(body: s3s::Body) -> http::Request<s3s::Body> {
        http::Request::builder().uri("/b/k").body(body).unwrap()
    }

    /// Yields some bytes, then fails as a dropped connection does.
    struct Dropped(bool);

    impl Stream for Dropped {
        type Item = Result<Bytes, StdError>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let first = std::mem::replace(&mut self.0, false);
            Poll::Ready(Some(match first {
                true => Ok(Bytes::from_static(b"<Delete>")),
                false => Err(Box::new(std::io::Error::other("connection reset")) as StdError),
            }))
        }
    }

    impl ByteStream for Dropped {}

    #[tokio::test]
    async fn a_body_that_breaks_is_an_incomplete_body() {
        let mut req = request(s3s::Body::from(Box::pin(Dropped(true)) as s3s::stream::DynByteStream));
        let watch = BodyWatch::install(&mut req);
        let mut body = std::mem::take(req.body_mut());
        while let Some(Ok(_)) = body.next().await {}
        let e = watch.failure().expect("the failure is kept");
        assert_eq!(*e.code(), S3ErrorCode::IncompleteBody);
        assert!(watch.failure().is_none(), "taken once");
    }

    #[tokio::test]
    async fn a_body_that_arrives_leaves_nothing() {
        let mut req = request(s3s::Body::from(String::from("hello")));
        let watch = BodyWatch::install(&mut req);
        let mut body = std::mem::take(req.body_mut());
        assert_eq!(body.remaining_length().exact(), Some(5), "the length is still known");
        while body.next().await.is_some() {}
        assert!(watch.failure().is_none());
    }
}
