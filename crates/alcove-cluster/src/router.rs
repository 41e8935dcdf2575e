//! The ownership router, in front of S3 parsing: given the bucket and the key a request names
//! (from its path, or its `Host` in virtual-hosted style: the worker tells), it asks the view for
//! the key's owner, and says whether the request is served here, forwarded to the owner's peer
//! port (proxy mode), or answered with a redirect to the owner's S3 endpoint (redirect mode).
//! Requests without one key (listings, bucket actions) are served where they land.
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

/// What a request names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Percent-decoded; empty for a request of the service.
    pub bucket: String,
    /// Percent-decoded; empty for a request of a bucket.
    pub key: String,
    /// The bucket was named by the `Host` header (virtual-hosted style), not the path.
    pub in_host: bool,
}

impl Target {
    /// The target of a path-style request path (percent-encoded, as sent).
    pub fn of_path(path: &str) -> Self {
        let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
        let (bucket, key) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        Self { bucket: bucket.to_owned(), key: key.to_owned(), in_host: false }
    }
}

/// The route of a request naming `target`, sent as `path_and_query` (percent-encoded).
pub fn route<'a>(view: &'a ClusterView, handoff: Handoff, target: &Target, path_and_query: &str) -> Route<'a> {
    if target.bucket.is_empty() || target.key.is_empty() {
        return Route::Local;
    }
    match view.owner(&target.bucket, &target.key) {
        Owner::Me => Route::Local,
        Owner::Peer(member) => match handoff {
            Handoff::Proxy => Route::Forward(member),
            Handoff::Redirect => {
                // The owner's endpoint is an address, not a bucket's host name: name the bucket in
                // the path.
                let bucket = if target.in_host { format!("/{}", target.bucket) } else { String::new() };
                let location = format!("{}{bucket}{path_and_query}", member.s3.trim_end_matches('/'));
                Route::Redirect { owner: member, location }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> Member {
        Member { id: id.into(), s3: format!("http://{id}.test:29998/"), peer: format!("{id}.test:29999") }
    }

    fn path_route<'a>(view: &'a ClusterView, handoff: Handoff, path_and_query: &str) -> Route<'a> {
        let path = path_and_query.split('?').next().unwrap_or_default();
        route(view, handoff, &Target::of_path(path), path_and_query)
    }

    #[test]
    fn keys_go_to_their_owner_and_the_rest_stays() {
        let view = ClusterView::new("a", [member("a"), member("b")], ["a".into(), "b".into()]);
        let theirs = (0..100)
            .map(|i| format!("/bkt/k{i}"))
            .find(|p| path_route(&view, Handoff::Proxy, p) != Route::Local)
            .unwrap();
        assert!(matches!(path_route(&view, Handoff::Proxy, &theirs), Route::Forward(m) if m.id == "b"));
        let with_query = format!("{theirs}?uploadId=x&partNumber=2");
        assert!(matches!(
            path_route(&view, Handoff::Redirect, &with_query),
            Route::Redirect { owner, location } if owner.id == "b" && location == format!("http://b.test:29998{with_query}")
        ));
        for bucket_level in ["/", "/bkt", "/bkt/", "/bkt?list-type=2", "/bkt?delete"] {
            assert_eq!(path_route(&view, Handoff::Proxy, bucket_level), Route::Local, "{bucket_level}");
        }
        assert_eq!(Target::of_path("/b/a%20b/c"), Target { bucket: "b".into(), key: "a b/c".into(), in_host: false });
        // Virtual-hosted: the redirect names the bucket in the path.
        let key = theirs.trim_start_matches("/bkt");
        let target = Target { bucket: "bkt".into(), key: key.trim_start_matches('/').into(), in_host: true };
        assert!(matches!(
            route(&view, Handoff::Redirect, &target, key),
            Route::Redirect { location, .. } if location == format!("http://b.test:29998/bkt{key}")
        ));
    }
}
