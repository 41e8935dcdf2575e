//! Path safety: the one place where an S3 object key becomes a relative file-system path.
//!
//! A key may only ever name a location *inside* its mount. Every backend that maps keys to paths
//! goes through [`ObjectKey::parse`]; nothing else joins client-controlled text onto a path.

use std::path::PathBuf;

use crate::UfsError;

/// Name of the per-mount folder that holds the worker's own state (temp files, mount table).
/// A key that uses it as a component is refused, so state can never be listed, read or overwritten.
pub const STATE_DIR: &str = ".alcove.sys";

/// AWS limit on the UTF-8 length of a key.
pub const MAX_KEY_BYTES: usize = 1024;

/// File-system limit on one path component (`NAME_MAX` on Linux file systems).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// A validated object key: a list of safe path components, and whether it names a folder
/// (the key ends in `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    components: Vec<String>,
    folder: bool,
}

impl ObjectKey {
    /// Validates `key` and splits it into components.
    ///
    /// Refused: empty keys, keys over 1024 bytes or with a component over 255 bytes
    /// (`KeyTooLong`), absolute keys, empty components (`//`), `.` and `..`, backslashes, NUL,
    /// and the reserved state folder name. Percent-encoded forms arrive here already decoded by
    /// the protocol layer, so `%2e%2e` is seen (and refused) as `..`.
    pub fn parse(key: &str) -> Result<Self, UfsError> {
        if key.is_empty() {
            return Err(unsafe_key(key, "the key is empty"));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(UfsError::KeyTooLong(format!(
                "the key is {} bytes long; the limit is {MAX_KEY_BYTES}",
                key.len()
            )));
        }
        if key.starts_with('/') {
            return Err(unsafe_key(key, "an absolute path (leading '/') is not allowed"));
        }
        if key.contains('\0') {
            return Err(unsafe_key(key, "NUL characters are not allowed"));
        }
        if key.contains('\\') {
            return Err(unsafe_key(key, "backslashes are not allowed"));
        }
        let (body, folder) = match key.strip_suffix('/') {
            Some(body) => (body, true),
            None => (key, false),
        };
        let mut components = Vec::new();
        for part in body.split('/') {
            match part {
                "" => return Err(unsafe_key(key, "empty path components ('//') are not allowed")),
                "." | ".." => return Err(unsafe_key(key, "'.' and '..' path components are not allowed")),
                STATE_DIR => return Err(unsafe_key(key, "the component '.alcove.sys' is reserved by Alcove")),
                _ if part.len() > MAX_COMPONENT_BYTES => {
                    return Err(UfsError::KeyTooLong(format!(
                        "the path component '{}…' is {} bytes long; a file system allows {MAX_COMPONENT_BYTES}",
                        truncate(part, 32),
                        part.len()
                    )))
                }
                _ => components.push(part.to_owned()),
            }
        }
        Ok(Self { components, folder })
    }

    /// True when the key ends in `/` (a folder object).
    pub fn is_folder(&self) -> bool {
        self.folder
    }

    /// The components, all safe to join onto a mount root.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The path relative to the mount root.
    pub fn relative_path(&self) -> PathBuf {
        self.components.iter().collect()
    }
}

/// The key as the client wrote it (components joined by `/`, and the final `/` of a folder).
impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.components.join("/"))?;
        if self.folder {
            f.write_str("/")?;
        }
        Ok(())
    }
}

fn unsafe_key(key: &str, why: &str) -> UfsError {
    UfsError::InvalidKey(format!("object key '{}' is not allowed: {why}", truncate(key, 200).escape_debug()))
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(key: &str) -> ObjectKey {
        ObjectKey::parse(key).unwrap_or_else(|e| panic!("{key:?} refused: {e}"))
    }

    fn refused(key: &str) -> UfsError {
        match ObjectKey::parse(key) {
            Ok(k) => panic!("{key:?} accepted as {k:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn ordinary_keys_are_split_into_components() {
        let k = ok("photos/2024/cat 1+2&x%y.jpg");
        assert_eq!(k.components(), ["photos", "2024", "cat 1+2&x%y.jpg"]);
        assert!(!k.is_folder());
        assert_eq!(k.relative_path(), PathBuf::from("photos/2024/cat 1+2&x%y.jpg"));
    }

    #[test]
    fn trailing_slash_is_a_folder() {
        let k = ok("a/b/");
        assert!(k.is_folder());
        assert_eq!(k.components(), ["a", "b"]);
    }

    #[test]
    fn unicode_and_dots_inside_names_are_fine() {
        ok("données/日本語/..hidden");
        ok("a/.../b");
        ok("a/.b/c.");
        ok("%2e%2e/literal-percent");
    }

    #[test]
    fn escapes_are_refused() {
        for key in [
            "..",
            "../x",
            "a/../../etc/passwd",
            "a/..",
            "./a",
            "a/./b",
            "a//b",
            "/etc/passwd",
            "//x",
            "a\\..\\b",
            "a\0b",
            "/",
            "",
            "a/b//",
        ] {
            assert!(matches!(refused(key), UfsError::InvalidKey(_)), "{key:?}");
        }
    }

    #[test]
    fn state_dir_is_reserved_at_any_depth() {
        assert!(matches!(refused(".alcove.sys/mounts.json"), UfsError::InvalidKey(_)));
        assert!(matches!(refused("a/.alcove.sys/x"), UfsError::InvalidKey(_)));
        ok("a/.alcove.sysx");
    }

    #[test]
    fn length_limits() {
        let long_component = "x".repeat(256);
        assert!(matches!(refused(&long_component), UfsError::KeyTooLong(_)));
        ok(&"x".repeat(255));
        let y = "y".repeat(255);
        let max_key = format!("{y}/{y}/{y}/{}/z", "y".repeat(254));
        assert_eq!(max_key.len(), 1024);
        ok(&max_key);
        ok(&format!("{y}/{y}/{y}/{y}/"));
        assert!(matches!(refused(&format!("{max_key}z")), UfsError::KeyTooLong(_)));
    }

    #[test]
    fn long_unicode_component_message_does_not_split_a_char() {
        let key = "é".repeat(200);
        assert!(matches!(refused(&key), UfsError::KeyTooLong(_)));
    }
}
