//! Under-storage (UFS) for Alcove: the mount table, path safety, listing semantics and the
//! local-disk backend, plus the object metadata stored beside the data.
//!
//! This crate knows nothing of HTTP or the S3 wire format: it takes validated keys and streams of
//! bytes, and answers with [`UfsError`]s that the S3 layer maps to AWS error codes.

pub mod backend;
pub mod bucket_state;
mod dircache;
mod error;
#[cfg(test)]
mod fuzz;
pub mod key;
pub mod list;
pub mod local;
pub mod meta;
pub mod mount;
pub mod multipart;
mod nowait;
pub mod remote;
pub mod stats;
pub mod store;
pub mod uri;

pub use backend::{ByteStream, ObjectReader, OpenObject, Precondition, PutChecks};
pub use bucket_state::CorsRule;
pub use error::{UfsError, UfsResult};
pub use key::ObjectKey;
pub use list::{ListItem, ListPage, ListQuery};
pub use local::LocalFs;
pub use meta::{ObjectInfo, ObjectMeta, StoredChecksum};
pub use mount::{Bucket, BucketInfo, MountDefaults, MountEntry, MountTable};
pub use multipart::{parts_digest, CompletePart, CompletedUpload, PartInfo, UploadInfo};
pub use remote::{RemoteFs, RemoteTuning};
pub use stats::{UfsOp, UfsStats};
pub use store::Store;
pub use uri::{MountOptions, MountSpec, UfsUri};
