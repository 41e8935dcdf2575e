//! Listing parameters ([`crate::list::Collector`]): for any keys, prefix, delimiter and page
//! size, the pages a client gets by following each page's last name as its start-after add up
//! to exactly the listing a plain model computes (objects, and common prefixes each once).

use proptest::prelude::*;

use crate::list::tests::info;
use crate::list::{Collector, Flow, ListItem, ListQuery};

/// Keys over a small alphabet, so prefixes and delimiters collide often.
fn keys() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::btree_set("[ab/.é-]{1,6}", 0..40).prop_map(|s| s.into_iter().collect())
}

/// The listing S3 describes: each key under the prefix is an object, unless the rest of it
/// holds the delimiter, in which case it is the common prefix up to and including the first
/// delimiter — listed once.
fn model(keys: &[String], prefix: &str, delimiter: Option<&str>) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = Vec::new();
    for key in keys.iter().filter(|k| k.starts_with(prefix)) {
        let rest = &key[prefix.len()..];
        let item = match delimiter.filter(|d| !d.is_empty()).and_then(|d| rest.find(d).map(|at| at + d.len())) {
            Some(end) => (true, key[..prefix.len() + end].to_owned()),
            None => (false, key.clone()),
        };
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn page(keys: &[String], query: ListQuery) -> (Vec<(bool, String)>, bool) {
    let mut c = Collector::new(query);
    for k in keys {
        if c.offer(k, info) == Flow::Stop {
            break;
        }
    }
    let page = c.finish();
    let items = page.items.iter().map(|i| (matches!(i, ListItem::CommonPrefix(_)), i.name().to_owned())).collect();
    (items, page.truncated)
}

proptest! {
    #![proptest_config(super::config(8192))]

    #[test]
    fn pages_add_up_to_the_listing(
        keys in keys(),
        prefix in "[ab/é]{0,2}",
        delimiter in proptest::option::of(prop_oneof![Just("/".to_owned()), Just("".to_owned()), "[ab/.é-]{1,2}"]),
        max_keys in 1usize..6,
    ) {
        let want = model(&keys, &prefix, delimiter.as_deref());
        let mut got = Vec::new();
        let mut start_after = None;
        for _ in 0..=keys.len() + 1 {
            let query = ListQuery { prefix: prefix.clone(), delimiter: delimiter.clone(), start_after: start_after.clone(), max_keys };
            let (items, truncated) = page(&keys, query);
            prop_assert!(items.len() <= max_keys);
            prop_assert!(!truncated || items.len() == max_keys);
            start_after = items.last().map(|(_, name)| name.clone());
            got.extend(items);
            if !truncated {
                break;
            }
        }
        prop_assert_eq!(got, want);
    }

    /// Any start-after a client sends: the page holds only names after it, in order.
    #[test]
    fn any_start_after(keys in keys(), prefix in "[ab/]{0,2}", start_after in prop_oneof!["[ab/.é-]{0,6}", any::<String>()], delimiter in proptest::option::of("[/a]{1,2}")) {
        let query = ListQuery { prefix, delimiter, start_after: Some(start_after.clone()), max_keys: 1000 };
        let (items, _) = page(&keys, query);
        let names: Vec<&str> = items.iter().map(|(_, n)| n.as_str()).collect();
        prop_assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        for (is_prefix, name) in &items {
            prop_assert!(*is_prefix || name.as_str() > start_after.as_str(), "{name} listed after {start_after}");
        }
    }
}
