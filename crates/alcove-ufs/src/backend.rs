//! The contract every backend keeps, whatever holds the bytes: what a write is checked against
//! ([`PutChecks`], [`Precondition`], [`BodyCheck`]), and what a read gets back ([`OpenObject`]:
//! the object's description and a way to its bytes, pinned to that version).
//!
//! The local-disk and remote backends implement it; the store and the cache above them use
//! only this. It knows no backend.

use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};

use crate::meta::ObjectInfo;
use crate::{UfsError, UfsResult};

/// Checks a writer asks for on the received body.
#[derive(Debug, Clone, Default)]
pub struct PutChecks {
    /// Decoded `Content-MD5`.
    pub content_md5: Option<[u8; 16]>,
    /// The announced length of the (decoded) body.
    pub expected_len: Option<u64>,
    /// Conditional write: checked atomically with the publishing rename.
    pub precondition: Option<Precondition>,
}

/// A conditional write (`If-None-Match: *` or `If-Match: etag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Create only: fail if the key exists.
    IfNoneMatchAny,
    /// Replace only this version (hex ETag, unquoted): fail if it changed; `NoSuchKey` if absent.
    IfMatch(String),
}

/// A streamed object body.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// Reads spans of one version of one object: the version it was made for, or an error if the
/// object changed since (a changed object is never read as a mix of two versions).
pub trait ObjectReader: Send + Sync {
    /// The bytes of `span`, which lies inside the object.
    fn read(&self, span: Range<u64>) -> BoxFuture<'static, UfsResult<ByteStream>>;
}

/// An opened object: what it is, and its bytes.
pub struct OpenObject {
    pub info: ObjectInfo,
    body: Body,
}

/// Where an opened object's bytes are.
enum Body {
    /// A folder object, or an object of 0 bytes.
    Empty,
    /// The whole content of a small object, read in the same trip as the open, so a small GET
    /// costs no further call.
    Whole(Bytes),
    /// Read when the body is asked for.
    Reader(Arc<dyn ObjectReader>),
}

impl fmt::Debug for OpenObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = match &self.body {
            Body::Empty => "empty",
            Body::Whole(_) => "in memory",
            Body::Reader(_) => "reader",
        };
        f.debug_struct("OpenObject").field("info", &self.info).field("body", &body).finish()
    }
}

impl OpenObject {
    /// An object without bytes to read.
    pub fn empty(info: ObjectInfo) -> Self {
        Self { info, body: Body::Empty }
    }

    /// An object whose whole content is at hand.
    pub fn whole(info: ObjectInfo, content: Bytes) -> Self {
        Self { info, body: Body::Whole(content) }
    }

    /// An object read through `reader` when its body is asked for.
    pub fn with_reader(info: ObjectInfo, reader: Arc<dyn ObjectReader>) -> Self {
        Self { info, body: Body::Reader(reader) }
    }

    /// The reader of this version, to read more spans of it later (`None` when there are no
    /// bytes to read or they are all at hand).
    pub fn reader(&self) -> Option<Arc<dyn ObjectReader>> {
        match &self.body {
            Body::Reader(r) => Some(Arc::clone(r)),
            Body::Empty | Body::Whole(_) => None,
        }
    }

    /// The bytes of `span` (everything when `None`; it must lie inside the object).
    pub async fn into_stream(self, span: Option<Range<u64>>) -> UfsResult<ByteStream> {
        let span = span.unwrap_or(0..self.info.size);
        if span.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        match self.body {
            Body::Empty => Ok(futures::stream::empty().boxed()),
            Body::Whole(bytes) => {
                let chunk = bytes.slice(span.start as usize..span.end as usize);
                Ok(futures::stream::once(async move { Ok(chunk) }).boxed())
            }
            Body::Reader(reader) => reader.read(span).await,
        }
    }
}

/// The checks every backend makes on a received body: its announced length and its MD5.
pub struct BodyCheck<'a> {
    checks: &'a PutChecks,
    md5: Md5,
    size: u64,
}

impl<'a> BodyCheck<'a> {
    pub fn new(checks: &'a PutChecks) -> Self {
        Self { checks, md5: Md5::new(), size: 0 }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> UfsResult<()> {
        self.size += chunk.len() as u64;
        if let Some(expected) = self.checks.expected_len.filter(|&n| self.size > n) {
            return Err(UfsError::BodyTooLong { expected });
        }
        self.md5.update(chunk);
        Ok(())
    }

    /// The MD5 and size of a complete body, or why it is not acceptable.
    pub fn finish(self) -> UfsResult<([u8; 16], u64)> {
        if let Some(expected) = self.checks.expected_len.filter(|&n| self.size < n) {
            return Err(UfsError::IncompleteBody { expected, got: self.size });
        }
        let digest: [u8; 16] = self.md5.finalize().into();
        if self.checks.content_md5.is_some_and(|want| want != digest) {
            return Err(UfsError::BadDigest);
        }
        Ok((digest, self.size))
    }
}

/// A folder object holds no bytes: reads the body and refuses a non-empty one.
pub async fn drain_empty_body<S, E>(body: &mut S) -> UfsResult<()>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| UfsError::Body(e.into()))?;
        if !chunk.is_empty() {
            return Err(UfsError::InvalidRequest(
                "a key ending in '/' is a folder on this mount and cannot hold data; send an empty body".into(),
            ));
        }
    }
    Ok(())
}
