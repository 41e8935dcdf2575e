//! What PutObject, CreateMultipartUpload and CopyObject (REPLACE) share: turning request headers
//! into stored object metadata (within the limits), and metadata back into GET/HEAD headers;
//! and the `x-amz-checksum-*` plumbing shared by PutObject and UploadPart.

use std::collections::BTreeMap;

use alcove_s3::auth::VerifiedTrailer;
use alcove_s3::checksum::{ChecksumAlgorithm, ChecksumSlot, Expected, VerifyingStream};
use alcove_s3::limits::Limits;
use alcove_ufs::{ObjectMeta, StoredChecksum};
use futures::stream::{BoxStream, StreamExt};
use s3s::dto::{Metadata, Timestamp};
use s3s::{s3_error, S3Result, StdError};

/// A request body as the storage layer takes it.
pub type Body = BoxStream<'static, Result<bytes::Bytes, StdError>>;

/// The metadata headers a writing request carries.
pub struct WriteHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<Timestamp>,
    pub metadata: Option<Metadata>,
    pub tagging: Option<String>,
}

/// Takes the metadata headers out of any input that has them (they share field names).
macro_rules! write_headers {
    ($input:expr) => {
        $crate::gateway::object_meta::WriteHeaders {
            content_type: $input.content_type.take(),
            content_encoding: $input.content_encoding.take(),
            content_disposition: $input.content_disposition.take(),
            content_language: $input.content_language.take(),
            cache_control: $input.cache_control.take(),
            expires: $input.expires.take(),
            metadata: $input.metadata.take(),
            tagging: $input.tagging.take(),
        }
    };
}
pub(crate) use write_headers;

impl WriteHeaders {
    /// Checks the limits and builds what will be stored. `aws-chunked` is a transfer detail,
    /// not the object's encoding.
    pub fn into_meta(self, limits: &Limits) -> S3Result<ObjectMeta> {
        let user: BTreeMap<String, String> =
            self.metadata.unwrap_or_default().into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        limits.check_user_metadata(&user)?;
        let tags = match self.tagging.as_deref() {
            Some(header) => limits.parse_tagging_header(header)?,
            None => BTreeMap::new(),
        };
        let content_encoding = self.content_encoding.and_then(|e| {
            let kept: Vec<&str> = e
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
                .collect();
            (!kept.is_empty()).then(|| kept.join(", "))
        });
        Ok(ObjectMeta {
            content_type: self.content_type,
            content_encoding,
            content_disposition: self.content_disposition,
            content_language: self.content_language,
            cache_control: self.cache_control,
            expires: self.expires.map(|t| time::OffsetDateTime::from(t).unix_timestamp()),
            user,
            tags,
            ..Default::default()
        })
    }
}

/// Fills the metadata headers of a GetObjectOutput or HeadObjectOutput.
macro_rules! fill_read_headers {
    ($output:expr, $meta:expr) => {{
        let meta = $meta;
        $output.content_type = Some(meta.content_type.clone().unwrap_or_else(|| "binary/octet-stream".into()));
        $output.content_encoding = meta.content_encoding.clone();
        $output.content_disposition = meta.content_disposition.clone();
        $output.content_language = meta.content_language.clone();
        $output.cache_control = meta.cache_control.clone();
        $output.expires =
            meta.expires.and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok()).map(s3s::dto::Timestamp::from);
        $output.metadata =
            (!meta.user.is_empty()).then(|| meta.user.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    }};
}
pub(crate) use fill_read_headers;

/// Sets one `checksum_*` field of any output that has the five of them.
macro_rules! set_checksum {
    ($output:expr, $algorithm:expr, $value:expr) => {{
        use alcove_s3::checksum::ChecksumAlgorithm as A;
        let value: Option<String> = $value;
        match $algorithm {
            A::Crc32 => $output.checksum_crc32 = value,
            A::Crc32c => $output.checksum_crc32c = value,
            A::Crc64Nvme => $output.checksum_crc64nvme = value,
            A::Sha1 => $output.checksum_sha1 = value,
            A::Sha256 => $output.checksum_sha256 = value,
        }
    }};
}
pub(crate) use set_checksum;

/// Reports a stored checksum (value and type) on any output with the checksum fields.
macro_rules! report_checksum {
    ($output:expr, $checksum:expr) => {{
        let checksum: Option<&alcove_ufs::StoredChecksum> = $checksum;
        if let Some(c) = checksum {
            if let Some(a) = alcove_s3::checksum::ChecksumAlgorithm::from_name(&c.algorithm) {
                $crate::gateway::object_meta::set_checksum!($output, a, Some(c.value.clone()));
                $output.checksum_type = Some(s3s::dto::ChecksumType::from(c.kind.clone()));
            }
        }
    }};
}
pub(crate) use report_checksum;

/// The five `x-amz-checksum-*` values of any input that has them.
macro_rules! checksum_values {
    ($input:expr) => {{
        use alcove_s3::checksum::ChecksumAlgorithm as A;
        [
            (A::Crc32, $input.checksum_crc32.clone()),
            (A::Crc32c, $input.checksum_crc32c.clone()),
            (A::Crc64Nvme, $input.checksum_crc64nvme.clone()),
            (A::Sha1, $input.checksum_sha1.clone()),
            (A::Sha256, $input.checksum_sha256.clone()),
        ]
    }};
}
pub(crate) use checksum_values;

/// What a writing request says about checksums.
pub struct ChecksumRequest<'a> {
    /// The `x-amz-checksum-*` header values.
    pub values: [(ChecksumAlgorithm, Option<String>); 5],
    /// `x-amz-sdk-checksum-algorithm`, or the upload's algorithm for a part.
    pub algorithm: Option<ChecksumAlgorithm>,
    pub headers: &'a http::HeaderMap,
    pub extensions: &'a http::Extensions,
    pub trailing_headers: Option<s3s::TrailingHeaders>,
}

/// A body being checksummed, and where the result will be.
pub struct Checksummed {
    pub body: Body,
    pub algorithm: Option<ChecksumAlgorithm>,
    slot: Option<ChecksumSlot>,
    /// The value sent in a header: known before the body arrives (a body that does not match
    /// it fails, so nothing is stored with a wrong value).
    pub announced: Option<String>,
}

impl Checksummed {
    /// The verified value, once the body has been consumed.
    pub fn value(slot: &Option<ChecksumSlot>) -> Option<String> {
        slot.as_ref().and_then(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    pub fn slot(&self) -> Option<ChecksumSlot> {
        self.slot.clone()
    }
}

/// Parses an algorithm name given by a client (`InvalidRequest` when unknown).
pub fn algorithm_named(name: &str) -> S3Result<ChecksumAlgorithm> {
    ChecksumAlgorithm::from_name(name)
        .ok_or_else(|| s3_error!(InvalidRequest, "Checksum algorithm '{name}' is not supported."))
}

impl ChecksumRequest<'_> {
    /// Wraps `body` so the requested checksum is computed and, where a value was sent, verified.
    pub fn apply(self, body: Body) -> S3Result<Checksummed> {
        let mut given = self.values.into_iter().filter_map(|(a, v)| v.map(|v| (a, v)));
        let plan = if let Some((algorithm, value)) = given.next() {
            if given.next().is_some() {
                return Err(s3_error!(
                    InvalidRequest,
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
                ));
            }
            Some((algorithm, Expected::Known(value)))
        } else if let Some(VerifiedTrailer(algorithm)) = self.extensions.get::<VerifiedTrailer>() {
            Some((*algorithm, Expected::Unchecked))
        } else if let Some(name) = self.headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
            let algorithm = ChecksumAlgorithm::from_header_name(name)
                .ok_or_else(|| s3_error!(InvalidRequest, "The x-amz-trailer header names no supported checksum."))?;
            let trailers = self.trailing_headers.clone();
            let header = algorithm.header_name();
            let read =
                move || trailers?.read(|h| h.get(header).and_then(|v| v.to_str().ok()).map(str::to_owned)).flatten();
            Some((algorithm, Expected::Later(Box::new(read))))
        } else {
            self.algorithm.map(|a| (a, Expected::Unchecked))
        };
        Ok(match plan {
            None => Checksummed { body, algorithm: None, slot: None, announced: None },
            Some((algorithm, expected)) => {
                let announced = match &expected {
                    Expected::Known(value) => Some(value.clone()),
                    _ => None,
                };
                let stream = VerifyingStream::new(body, algorithm, expected);
                let slot = Some(stream.slot());
                let body = stream.map(|r| r.map_err(|e| Box::new(e) as StdError)).boxed();
                Checksummed { body, algorithm: Some(algorithm), slot, announced }
            }
        })
    }
}

/// The stored form of a full-object checksum.
pub fn full_object(algorithm: ChecksumAlgorithm, value: String) -> StoredChecksum {
    StoredChecksum { algorithm: algorithm.display_name().to_owned(), value, kind: "FULL_OBJECT".to_owned() }
}
