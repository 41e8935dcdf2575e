//! Listing semantics shared by every backend: prefix, delimiter roll-up into common prefixes,
//! start-after markers and `max-keys` pagination, applied to keys visited in UTF-8 binary order.
//!
//! A backend walks its keys in order and feeds them to a [`Collector`]; the collector decides what
//! the page holds and tells the walker which subtrees it may skip. It knows nothing of files.

use crate::meta::ObjectInfo;

/// What a client asked to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    /// `None` or empty: list recursively.
    pub delimiter: Option<String>,
    /// Only keys (and common prefixes) strictly after this one are returned.
    pub start_after: Option<String>,
    pub max_keys: usize,
}

/// One entry of a page, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListItem {
    Object { key: String, info: Box<ObjectInfo> },
    CommonPrefix(String),
}

impl ListItem {
    /// The key or prefix, which is also the marker to resume after this item.
    pub fn name(&self) -> &str {
        match self {
            ListItem::Object { key, .. } => key,
            ListItem::CommonPrefix(p) => p,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub items: Vec<ListItem>,
    /// True when more items follow; resume after the last item's name.
    pub truncated: bool,
}

/// What the walker should do after offering a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Builds one page from keys offered in ascending order.
#[derive(Debug)]
pub struct Collector {
    query: ListQuery,
    /// When resuming after a common prefix, every key under it was already reported.
    resumed_prefix: Option<String>,
    last_prefix: Option<String>,
    page: ListPage,
}

impl Collector {
    pub fn new(query: ListQuery) -> Self {
        let resumed_prefix =
            query.start_after.as_deref().and_then(|marker| rolled_up(&query, marker)).map(str::to_owned);
        Self { query, resumed_prefix, last_prefix: None, page: ListPage::default() }
    }

    /// The common prefix `key` rolls up into under this query's delimiter, if any.
    pub fn common_prefix_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        rolled_up(&self.query, key)
    }

    fn rolled_up<'k>(&self, key: &'k str) -> Option<&'k str> {
        rolled_up(&self.query, key)
    }

    fn before_start(&self, key: &str) -> bool {
        let after_marker = self.query.start_after.as_deref().is_none_or(|m| key > m);
        let under_resumed = self.resumed_prefix.as_deref().is_some_and(|p| key.starts_with(p));
        !after_marker || under_resumed
    }

    /// Whether the subtree of keys that all start with `dir_key` can hold anything for this page.
    /// `dir_key` itself is offered separately (as a folder object) by the walker.
    pub fn wants_subtree(&self, dir_key: &str) -> bool {
        let prefix = self.query.prefix.as_str();
        if !(dir_key.starts_with(prefix) || prefix.starts_with(dir_key)) {
            return false;
        }
        if let Some(marker) = self.query.start_after.as_deref() {
            // Every key under dir_key sorts before the marker unless dir_key is a prefix of it.
            if dir_key < marker && !marker.starts_with(dir_key) {
                return false;
            }
        }
        if self.resumed_prefix.as_deref().is_some_and(|p| dir_key.starts_with(p)) {
            return false;
        }
        // The whole subtree rolls up into the common prefix the folder key itself rolls into.
        self.rolled_up(dir_key).is_none()
    }

    /// Offers the next key in order; `describe` is called only for keys that land on the page.
    pub fn offer(&mut self, key: &str, describe: impl FnOnce() -> Option<ObjectInfo>) -> Flow {
        self.take(key, || true, describe)
    }

    /// Offers a folder whose whole subtree rolls up into one common prefix (see
    /// [`Collector::rolls_up`]); `holds_objects` is asked only when that prefix would be new on
    /// this page, so walkers look into the folder at most once.
    pub fn offer_rolled_subtree(&mut self, dir_key: &str, holds_objects: impl FnOnce() -> bool) -> Flow {
        self.take(dir_key, holds_objects, || None)
    }

    fn take(
        &mut self,
        key: &str,
        keep_prefix: impl FnOnce() -> bool,
        describe: impl FnOnce() -> Option<ObjectInfo>,
    ) -> Flow {
        if !key.starts_with(self.query.prefix.as_str()) || self.before_start(key) {
            return Flow::Continue;
        }
        let item = match self.rolled_up(key) {
            Some(prefix) if self.last_prefix.as_deref() == Some(prefix) => return Flow::Continue,
            Some(prefix) if keep_prefix() => ListItem::CommonPrefix(prefix.to_owned()),
            Some(_) => return Flow::Continue,
            None => match describe() {
                Some(info) => ListItem::Object { key: key.to_owned(), info: Box::new(info) },
                // Vanished between the walk and the look, or not an object: not listed.
                None => return Flow::Continue,
            },
        };
        if self.page.items.len() >= self.query.max_keys {
            self.page.truncated = true;
            return Flow::Stop;
        }
        if let ListItem::CommonPrefix(p) = &item {
            self.last_prefix = Some(p.clone());
        }
        self.page.items.push(item);
        Flow::Continue
    }

    /// True when every key under the folder `dir_key` rolls up into the common prefix the folder
    /// key itself rolls into.
    pub fn rolls_up(&self, dir_key: &str) -> bool {
        self.rolled_up(dir_key).is_some()
    }

    pub fn finish(self) -> ListPage {
        self.page
    }
}

/// The folders `key` lies in (`a/`, `a/b/` for `a/b/c`) that sort after `after`: in a listing
/// in key order, those not offered yet.
pub(crate) fn implied_folders<'k>(key: &'k str, after: Option<&str>) -> impl Iterator<Item = &'k str> + 'k {
    let after = after.map(str::to_owned);
    key.match_indices('/')
        .map(move |(i, _)| &key[..=i])
        .filter(move |folder| folder.len() < key.len() && after.as_deref().is_none_or(|a| *folder > a))
}

fn rolled_up<'k>(query: &ListQuery, key: &'k str) -> Option<&'k str> {
    let delimiter = query.delimiter.as_deref().filter(|d| !d.is_empty())?;
    let rest = key.strip_prefix(query.prefix.as_str())?;
    let at = rest.find(delimiter)?;
    Some(&key[..query.prefix.len() + at + delimiter.len()])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The description of an empty object, for listings made in tests.
    pub(crate) fn info() -> Option<ObjectInfo> {
        Some(ObjectInfo {
            size: 0,
            last_modified: time::OffsetDateTime::UNIX_EPOCH,
            etag: String::new(),
            meta: Default::default(),
        })
    }

    fn run(keys: &[&str], query: ListQuery) -> (Vec<String>, bool) {
        let mut c = Collector::new(query);
        for k in keys {
            if c.offer(k, info) == Flow::Stop {
                break;
            }
        }
        let page = c.finish();
        (page.items.iter().map(|i| i.name().to_owned()).collect(), page.truncated)
    }

    fn q(prefix: &str, delimiter: Option<&str>, start_after: Option<&str>, max_keys: usize) -> ListQuery {
        ListQuery {
            prefix: prefix.into(),
            delimiter: delimiter.map(Into::into),
            start_after: start_after.map(Into::into),
            max_keys,
        }
    }

    const KEYS: &[&str] = &["a/", "a/b/", "a/b/c", "a/d", "b", "c/", "c/x", "c/y"];

    #[test]
    fn recursive_listing_returns_everything_in_order() {
        let (names, truncated) = run(KEYS, q("", None, None, 1000));
        assert_eq!(names, KEYS);
        assert!(!truncated);
    }

    #[test]
    fn delimiter_rolls_up_and_never_repeats() {
        let (names, _) = run(KEYS, q("", Some("/"), None, 1000));
        assert_eq!(names, ["a/", "b", "c/"]);
        let (names, _) = run(KEYS, q("a/", Some("/"), None, 1000));
        assert_eq!(names, ["a/", "a/b/", "a/d"]);
    }

    #[test]
    fn max_keys_counts_prefixes_and_keys_together() {
        let (names, truncated) = run(KEYS, q("", Some("/"), None, 2));
        assert_eq!(names, ["a/", "b"]);
        assert!(truncated);
        let (names, truncated) = run(KEYS, q("", Some("/"), Some("b"), 2));
        assert_eq!(names, ["c/"]);
        assert!(!truncated);
    }

    #[test]
    fn resuming_after_a_common_prefix_skips_its_keys() {
        let (names, _) = run(KEYS, q("", Some("/"), Some("a/"), 1000));
        assert_eq!(names, ["b", "c/"]);
    }

    #[test]
    fn exact_page_end_is_not_truncated() {
        let (names, truncated) = run(&["x", "y"], q("", None, None, 2));
        assert_eq!(names, ["x", "y"]);
        assert!(!truncated);
    }

    #[test]
    fn subtree_pruning() {
        let c = Collector::new(q("c/", Some("/"), None, 10));
        assert!(!c.wants_subtree("a/"));
        assert!(c.wants_subtree("c/"));
        assert!(!c.wants_subtree("c/x/"), "rolls up into one prefix");
        let c = Collector::new(q("", None, Some("b/z"), 10));
        assert!(!c.wants_subtree("a/"));
        assert!(c.wants_subtree("b/"));
        assert!(c.wants_subtree("c/"));
    }

    #[test]
    fn implied_folders_are_the_unseen_ancestors() {
        let all: Vec<&str> = implied_folders("a/b/c", None).collect();
        assert_eq!(all, ["a/", "a/b/"]);
        assert_eq!(implied_folders("a/b/", None).collect::<Vec<_>>(), ["a/"]);
        assert_eq!(implied_folders("a/b/c", Some("a/")).collect::<Vec<_>>(), ["a/b/"]);
        assert_eq!(implied_folders("a/b/d", Some("a/b/c")).count(), 0);
        assert_eq!(implied_folders("b/x", Some("a/z")).collect::<Vec<_>>(), ["b/"]);
        assert_eq!(implied_folders("plain", None).count(), 0);
    }

    #[test]
    fn rolled_subtrees_count_only_when_they_hold_objects() {
        let mut c = Collector::new(q("", Some("/"), None, 10));
        assert!(c.rolls_up("a/"));
        c.offer_rolled_subtree("a/", || false);
        c.offer_rolled_subtree("b/", || true);
        c.offer_rolled_subtree("b/", || panic!("b/ is already on the page"));
        c.offer("c", info);
        let names: Vec<String> = c.finish().items.iter().map(|i| i.name().to_owned()).collect();
        assert_eq!(names, ["b/", "c"]);
        let c = Collector::new(q("a/", Some("/"), None, 10));
        assert!(!c.rolls_up("a/"), "the prefix itself does not roll up");
    }

    #[test]
    fn multi_character_delimiter() {
        let (names, _) = run(&["x--1", "x--2", "y"], q("", Some("--"), None, 10));
        assert_eq!(names, ["x--", "y"]);
    }
}
