//! The errors the page store can return. Only opening can fail: once open, a failing disk
//! degrades to "not cached" and is reported through stats and one log line, never as an error.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PageStoreError {
    #[error("cache page size {0} is out of range (1 byte to 1 GiB)")]
    PageSize(u64),
    #[error("cache folder {} is listed twice", .0.display())]
    DuplicateDir(PathBuf),
    #[error("cache folder {} is in use by another page store (its page file is locked)", .0.display())]
    DirInUse(PathBuf),
}
