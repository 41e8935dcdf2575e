//! Errors of the under-storage layer, one variant per outcome a client must be able to tell apart.

use std::io;

/// What went wrong in a mount or a backend. The S3 layer maps each variant to an AWS error code.
#[derive(Debug, thiserror::Error)]
pub enum UfsError {
    #[error("the specified key does not exist")]
    NoSuchKey,
    #[error("the specified multipart upload does not exist")]
    NoSuchUpload,
    #[error("{0}")]
    InvalidPart(String),
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    #[error("{0}")]
    EntityTooSmall(String),
    #[error("at least one of the preconditions you specified did not hold")]
    PreconditionFailed,
    /// The object became another version while it was being read.
    #[error("the object changed while it was being read")]
    Changed,
    #[error("the specified bucket does not exist: {0}")]
    NoSuchBucket(String),
    #[error("the bucket {0} already exists")]
    BucketExists(String),
    #[error("the bucket {0} is not empty")]
    BucketNotEmpty(String),
    #[error("{0}")]
    InvalidBucketName(String),
    #[error("{0}")]
    InvalidKey(String),
    #[error("{0}")]
    KeyTooLong(String),
    /// The key cannot coexist with an existing one on a file system (an object where a folder is,
    /// or the reverse).
    #[error("{0}")]
    Conflict(String),
    #[error("the Content-MD5 you specified did not match what we received")]
    BadDigest,
    #[error("the request body ended after {got} of {expected} bytes")]
    IncompleteBody { expected: u64, got: u64 },
    #[error("the request body was longer than the {expected} bytes announced")]
    BodyTooLong { expected: u64 },
    /// The client's body stream failed (connection dropped, framing or checksum error).
    #[error("reading the request body failed: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Unsupported(String),
    /// A remote store did not answer in time or could not be reached.
    #[error("the under-storage of {mount} is unavailable")]
    Unavailable { mount: String, retry_after: std::time::Duration },
    /// A remote store asked us to slow down.
    #[error("the under-storage of {mount} is throttling requests")]
    SlowDown { mount: String },
    /// The object's metadata is more than the store can keep.
    #[error("{0}")]
    MetadataTooLarge(String),
    /// The remote bucket (or container) a mount names does not exist.
    #[error("the remote bucket of {mount} does not exist")]
    RemoteBucketMissing { mount: String },
    /// A remote store refused a request for a reason of its own (not retryable).
    #[error("the under-storage of {mount} refused the request: {message}")]
    RemoteRefused { mount: String, message: String },
    /// A remote store refused the mount's credentials.
    #[error("the under-storage of {mount} refused the mount's credentials")]
    RemoteDenied { mount: String },
    /// The file system refused the worker (a read-only mount, a folder it may not write).
    #[error("{context}: {source}")]
    FsRefused {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The file system (or the worker's quota on it) is full.
    #[error("{context}: {source}")]
    NoSpace {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl UfsError {
    /// An error of the under-storage itself (unreachable, throttling, refusing, failing I/O), as
    /// opposed to an answer about the request (a missing key, a failed precondition, a bad body).
    pub fn is_store_failure(&self) -> bool {
        matches!(
            self,
            UfsError::Unavailable { .. }
                | UfsError::SlowDown { .. }
                | UfsError::RemoteRefused { .. }
                | UfsError::RemoteDenied { .. }
                | UfsError::RemoteBucketMissing { .. }
                | UfsError::FsRefused { .. }
                | UfsError::NoSpace { .. }
                | UfsError::Io { .. }
        )
    }
}

impl UfsError {
    /// Wraps an I/O error with what was being done, for the log. Refusals and a full disk are
    /// told apart: the client gets a different answer for each.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        let context = context.into();
        match source.raw_os_error() {
            Some(libc_errno::EACCES | libc_errno::EPERM | libc_errno::EROFS) => Self::FsRefused { context, source },
            Some(libc_errno::ENOSPC | libc_errno::EDQUOT) => Self::NoSpace { context, source },
            _ => Self::Io { context, source },
        }
    }
}

impl UfsError {
    /// An equal error for another waiter of a shared operation (errors are not `Clone`: their
    /// sources are not). What a client is told is kept; a wrapped source keeps its text.
    pub fn duplicate(&self) -> Self {
        let copy_io = |e: &io::Error| match e.raw_os_error() {
            Some(errno) => io::Error::from_raw_os_error(errno),
            None => io::Error::new(e.kind(), e.to_string()),
        };
        match self {
            Self::NoSuchKey => Self::NoSuchKey,
            Self::NoSuchUpload => Self::NoSuchUpload,
            Self::InvalidPart(m) => Self::InvalidPart(m.clone()),
            Self::InvalidPartOrder => Self::InvalidPartOrder,
            Self::EntityTooSmall(m) => Self::EntityTooSmall(m.clone()),
            Self::PreconditionFailed => Self::PreconditionFailed,
            Self::Changed => Self::Changed,
            Self::NoSuchBucket(b) => Self::NoSuchBucket(b.clone()),
            Self::BucketExists(b) => Self::BucketExists(b.clone()),
            Self::BucketNotEmpty(b) => Self::BucketNotEmpty(b.clone()),
            Self::InvalidBucketName(m) => Self::InvalidBucketName(m.clone()),
            Self::InvalidKey(m) => Self::InvalidKey(m.clone()),
            Self::KeyTooLong(m) => Self::KeyTooLong(m.clone()),
            Self::Conflict(m) => Self::Conflict(m.clone()),
            Self::BadDigest => Self::BadDigest,
            Self::IncompleteBody { expected, got } => Self::IncompleteBody { expected: *expected, got: *got },
            Self::BodyTooLong { expected } => Self::BodyTooLong { expected: *expected },
            Self::Body(e) => Self::Body(e.to_string().into()),
            Self::InvalidRequest(m) => Self::InvalidRequest(m.clone()),
            Self::Unsupported(m) => Self::Unsupported(m.clone()),
            Self::Unavailable { mount, retry_after } => {
                Self::Unavailable { mount: mount.clone(), retry_after: *retry_after }
            }
            Self::SlowDown { mount } => Self::SlowDown { mount: mount.clone() },
            Self::MetadataTooLarge(m) => Self::MetadataTooLarge(m.clone()),
            Self::RemoteBucketMissing { mount } => Self::RemoteBucketMissing { mount: mount.clone() },
            Self::RemoteRefused { mount, message } => {
                Self::RemoteRefused { mount: mount.clone(), message: message.clone() }
            }
            Self::RemoteDenied { mount } => Self::RemoteDenied { mount: mount.clone() },
            Self::FsRefused { context, source } => {
                Self::FsRefused { context: context.clone(), source: copy_io(source) }
            }
            Self::NoSpace { context, source } => Self::NoSpace { context: context.clone(), source: copy_io(source) },
            Self::Io { context, source } => Self::Io { context: context.clone(), source: copy_io(source) },
        }
    }
}

/// The Linux error numbers told apart above (std has no names for them).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const EACCES: i32 = 13;
    pub const ENOSPC: i32 = 28;
    pub const EROFS: i32 = 30;
    pub const EDQUOT: i32 = 122;
}

/// Shorthand for results of this crate.
pub type UfsResult<T> = Result<T, UfsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_full_disks_are_told_apart() {
        let of = |errno| UfsError::io("writing", io::Error::from_raw_os_error(errno));
        assert!(matches!(of(30), UfsError::FsRefused { .. }), "read-only file system");
        assert!(matches!(of(13), UfsError::FsRefused { .. }), "permission denied");
        assert!(matches!(of(28), UfsError::NoSpace { .. }));
        assert!(matches!(of(5), UfsError::Io { .. }), "EIO stays an internal error");
    }
}
