//! S3 protocol glue for Alcove, between the wire (handled by `s3s`) and the gateway:
//! the auth modes (simple mode's pre-layer, sigv4 credentials, OIDC tokens and STS), authorization policies, aws-chunked decoding for simple
//! mode, checksums, error mapping, `encoding-type=url` and bucket CORS rules.
//!
//! It may not touch storage: it sees requests, bodies and [`alcove_ufs::UfsError`]s only.

pub mod auth;
pub mod body_watch;
pub mod checksum;
pub mod chunked;
pub mod cors;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod host;
pub mod integrity;
pub mod limits;
pub mod oidc;
pub mod policy;
pub mod signing_time;
pub mod sts;
pub mod urlencode;

pub use auth::{AuthMode, AuthSettings, RequestUser};
pub use error::{decorate_error_body, s3_error_from};
pub use host::{Addressed, Addressing};

/// Why a request body could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("The {algorithm} you specified did not match the calculated checksum.")]
    ChecksumMismatch { algorithm: &'static str },
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    #[error("The aws-chunked body is malformed: {0}")]
    Malformed(String),
    #[error("The trailer {0} was announced in x-amz-trailer but not sent.")]
    MissingTrailer(String),
    #[error("The decoded body length does not match x-amz-decoded-content-length.")]
    LengthMismatch,
    #[error("The body could not be read: {0}")]
    Transport(Box<dyn std::error::Error + Send + Sync>),
    /// The client stopped sending the body for longer than the worker waits (`RequestTimeout`).
    #[error("Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.")]
    IdleTimeout,
    /// A body that is read whole (an XML document) is larger than the worker accepts.
    #[error("Your request was too big: XML bodies may have at most {limit} bytes (s3.max_xml_size).")]
    TooLarge { limit: usize },
}

impl BodyError {
    /// Wraps an error of the underlying stream, keeping a `BodyError` as it is.
    pub fn from_transport(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        match e.downcast::<BodyError>() {
            Ok(inner) => *inner,
            Err(other) => Self::Transport(other),
        }
    }
}
