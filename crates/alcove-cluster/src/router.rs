//! The ownership router, in front of S3 parsing: it reads only the bucket and the key from a
//! request's path, asks the view for the key's owner, and says whether the request is served
//! here, forwarded to the owner's peer port (proxy mode), or answered with a redirect to the
//! owner's S3 endpoint (redirect mode). Requests without one key (listings, bucket actions) are
//! served where they land.
//!
//! It decides only; the worker carries the decision out.

use crate::view::{ClusterView, Member, Owner};

/// How a non-owner hands a request on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// Forward to the owner's peer port and stream the answer back (every client works).
    Proxy,
    /// Answer `307 Temporary Redirect` to the owner's S3 endpoint.
    Redirect,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    Local,
    Forward(&'a Member),
    /// A 307 to the owner, with its `Location`.
    Redirect {
        owner: &'a Member,
        location: String,
    },
}

/// The route of a request for `path_and_query` (as sent, percent-encoded).
pub fn route<'a>(view: &'a ClusterView, handoff: Handoff, path_and_query: &str) -> Route<'a> {
    let path = path_and_query.split('?').next().unwrap_or_default();
    let Some((bucket, key)) = bucket_and_key(path) else { return Route::Local };
    match view.owner(&bucket, &key) {
        Owner::Me => Route::Local,
        Owner::Peer(member) => match handoff {
            Handoff::Proxy => Route::Forward(member),
            Handoff::Redirect => Route::Redirect {
                owner: member,
                location: format!("{}{path_and_query}", member.s3.trim_end_matches('/')),
            },
        },
    }
}

/// Bucket and key of a path-style object request, percent-decoded; `None` when the path names
/// no key (the service, or a bucket).
pub fn bucket_and_key(path: &str) -> Option<(String, String)> {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let (bucket, key) = decoded.strip_prefix('/')?.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_owned(), key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> Member {
        Member { id: id.into(), s3: format!("http://{id}.test:29998/"), peer: format!("{id}.test:29999") }
    }

    #[test]
    fn keys_go_to_their_owner_and_the_rest_stays() {
        let view = ClusterView::new("a", [member("a"), member("b")], ["a".into(), "b".into()]);
        let theirs =
            (0..100).map(|i| format!("/bkt/k{i}")).find(|p| route(&view, Handoff::Proxy, p) != Route::Local).unwrap();
        assert!(matches!(route(&view, Handoff::Proxy, &theirs), Route::Forward(m) if m.id == "b"));
        let with_query = format!("{theirs}?uploadId=x&partNumber=2");
        assert!(matches!(
            route(&view, Handoff::Redirect, &with_query),
            Route::Redirect { owner, location } if owner.id == "b" && location == format!("http://b.test:29998{with_query}")
        ));
        for bucket_level in ["/", "/bkt", "/bkt/", "/bkt?list-type=2", "/bkt?delete"] {
            assert_eq!(route(&view, Handoff::Proxy, bucket_level), Route::Local, "{bucket_level}");
        }
        assert_eq!(bucket_and_key("/b/a%20b/c"), Some(("b".into(), "a b/c".into())));
    }
}
