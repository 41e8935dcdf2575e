//! Object keys ([`crate::key::ObjectKey`]): every accepted key maps to a relative path of plain
//! components that cannot leave the mount root, the mapping is one to one, and the keys refused
//! are exactly those a plain model of the rules refuses.

use std::path::{Component, Path};

use proptest::prelude::*;

use crate::key::{ObjectKey, MAX_COMPONENT_BYTES, MAX_KEY_BYTES, STATE_DIR};
use crate::UfsError;

/// Keys built from the components that matter for path safety, joined by `/` (sometimes with
/// a leading or trailing one), and arbitrary text.
fn key() -> impl Strategy<Value = String> {
    let component = prop_oneof![
        4 => "[a-zA-Z0-9 ._~+%-]{1,12}",
        1 => proptest::sample::select(&["..", ".", "", ".alcove.sys", "...", "%2e%2e", "a\\b", "\\", "a\0", "é", "..\\..", ". ", " .."][..]).prop_map(str::to_owned),
        1 => (1usize..300).prop_map(|n| "x".repeat(n)),
        1 => any::<String>(),
    ];
    prop_oneof![
        4 => (any::<bool>(), proptest::collection::vec(component, 1..8), any::<bool>()).prop_map(|(lead, parts, trail)| {
            format!("{}{}{}", if lead { "/" } else { "" }, parts.join("/"), if trail { "/" } else { "" })
        }),
        1 => any::<String>(),
        1 => (1usize..1100).prop_map(|n| "a/".repeat(n / 2)),
    ]
}

/// The rules, read plainly: a key is refused when empty, over 1024 bytes, absolute, holding
/// NUL or `\`, or when (its final `/` aside) a component is empty, `.`, `..`, the state
/// folder, or over 255 bytes.
fn model_accepts(key: &str) -> bool {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.starts_with('/') || key.contains(['\0', '\\']) {
        return false;
    }
    let body = key.strip_suffix('/').unwrap_or(key);
    body.split('/').all(|c| !c.is_empty() && c != "." && c != ".." && c != STATE_DIR && c.len() <= MAX_COMPONENT_BYTES)
}

proptest! {
    #![proptest_config(super::config(32768))]

    #[test]
    fn keys_stay_inside_their_mount(key in key()) {
        let parsed = ObjectKey::parse(&key);
        prop_assert_eq!(parsed.is_ok(), model_accepts(&key), "{:?}: {:?}", key, parsed);
        match parsed {
            Ok(k) => {
                // One to one: the key is its components joined back, and the folder flag.
                prop_assert_eq!(k.to_string(), key.clone());
                prop_assert_eq!(k.is_folder(), key.ends_with('/'));
                // Every component is one plain path component: joined onto any root, the path
                // has the root's components and then exactly these, so it stays under the root.
                let root = Path::new("/srv/mount");
                let joined = root.join(k.relative_path());
                prop_assert!(joined.starts_with(root));
                let below: Vec<_> = joined.strip_prefix(root).expect("under the root").components().collect();
                prop_assert_eq!(below.len(), k.components().len());
                for (c, name) in below.iter().zip(k.components()) {
                    prop_assert_eq!(c, &Component::Normal(name.as_ref()));
                }
            }
            Err(UfsError::InvalidKey(m)) | Err(UfsError::KeyTooLong(m)) => prop_assert!(!m.is_empty()),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    /// Two different keys never name the same object.
    #[test]
    fn different_keys_differ(a in key(), b in key()) {
        if let (Ok(ka), Ok(kb)) = (ObjectKey::parse(&a), ObjectKey::parse(&b)) {
            if a != b {
                prop_assert!((ka.relative_path(), ka.is_folder()) != (kb.relative_path(), kb.is_folder()));
            }
        }
    }
}
