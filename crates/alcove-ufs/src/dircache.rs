//! Sorted directory listings, remembered between the pages of a listing.
//!
//! Without it every ListObjects page re-reads and re-sorts each directory it walks, so paging
//! through a folder of n keys costs O(n²). A remembered listing is reused while the directory's
//! mtime is unchanged. Only directories whose mtime is at least a second old are remembered: file
//! timestamps advance in coarse ticks, and a change within the tick of the remembered mtime would
//! otherwise go unseen. Any later change, by Alcove or another tool, moves the mtime on.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use crate::key::{ObjectKey, STATE_DIR};

/// A directory's listable children, sorted in key order: (`name` or `name/`, is a folder).
pub(crate) type Children = Arc<Vec<(String, bool)>>;

const MAX_DIRS: usize = 256;
const SETTLED: Duration = Duration::from_secs(1);

static CACHE: LazyLock<Mutex<HashMap<PathBuf, (SystemTime, Children)>>> = LazyLock::new(Default::default);

/// The sorted children of `dir`, from memory when the directory has not changed.
pub(crate) fn sorted_children(dir: &Path) -> io::Result<Children> {
    let mtime = fs::metadata(dir)?.modified()?;
    let lock = || CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((seen, children)) = lock().get(dir) {
        if *seen == mtime {
            return Ok(Arc::clone(children));
        }
    }
    let children: Children = Arc::new(read_sorted(dir)?);
    let settled = SystemTime::now().duration_since(mtime).is_ok_and(|age| age >= SETTLED);
    if settled {
        let mut cache = lock();
        if cache.len() >= MAX_DIRS {
            cache.clear();
        }
        cache.insert(dir.to_path_buf(), (mtime, Arc::clone(&children)));
    }
    Ok(children)
}

fn read_sorted(dir: &Path) -> io::Result<Vec<(String, bool)>> {
    let mut children = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            tracing::debug!(dir = %dir.display(), "skipping a name that is not UTF-8");
            continue;
        };
        if name == STATE_DIR || ObjectKey::parse(&name).is_err() {
            continue;
        }
        let file_type = entry.file_type()?;
        // Symlinks are not followed: they could lead outside the mount.
        if file_type.is_dir() {
            children.push((name + "/", true));
        } else if file_type.is_file() {
            children.push((name, false));
        }
    }
    children.sort_unstable();
    Ok(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_seen_and_settled_listings_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b"), b"").unwrap();
        fs::create_dir(dir.path().join("a")).unwrap();
        let first = sorted_children(dir.path()).unwrap();
        assert_eq!(*first, vec![("a/".to_owned(), true), ("b".to_owned(), false)]);
        // A fresh directory is not remembered: an immediate change is seen.
        fs::write(dir.path().join("c"), b"").unwrap();
        assert_eq!(sorted_children(dir.path()).unwrap().len(), 3);
        // Once settled, the same listing is shared until the directory changes.
        let old = SystemTime::now() - Duration::from_secs(10);
        fs::File::open(dir.path()).unwrap().set_modified(old).unwrap();
        let a = sorted_children(dir.path()).unwrap();
        let b = sorted_children(dir.path()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        fs::remove_file(dir.path().join("c")).unwrap();
        assert_eq!(sorted_children(dir.path()).unwrap().len(), 2);
    }
}
