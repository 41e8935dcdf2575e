//! AWS answers GetObjectAttributes with its ETag unquoted, unlike every other action; s3s always
//! quotes ETags in XML, so the front end takes the quotes off that one element of that one
//! answer. This module may change nothing else of a response.

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Method, Request, Response, StatusCode};

/// Larger answers (a thousand parts with SHA-256 checksums are ~150 KB) are left as they are.
const MAX_BODY: usize = 4 << 20;

/// GetObjectAttributes: `GET /bucket/key?attributes`.
pub fn is_get_object_attributes<B>(req: &Request<B>) -> bool {
    let path = req.uri().path().trim_start_matches('/');
    req.method() == Method::GET
        && path.split_once('/').is_some_and(|(_, key)| !key.is_empty())
        && req.uri().query().is_some_and(|q| q.split('&').any(|p| p == "attributes" || p.starts_with("attributes=")))
}

/// The answer with `<ETag>"…"</ETag>` turned into `<ETag>…</ETag>`.
pub async fn unquote_etag(resp: Response<s3s::Body>) -> Response<s3s::Body> {
    if resp.status() != StatusCode::OK {
        return resp;
    }
    let (mut parts, mut body) = resp.into_parts();
    let bytes = match body.store_all_limited(MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::debug!(error = %e, "GetObjectAttributes answer left quoted");
            return Response::from_parts(parts, body);
        }
    };
    let bytes = unquoted(&bytes).map_or(bytes, Bytes::from);
    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Response::from_parts(parts, s3s::Body::from(bytes))
}

/// `None` when there is no quoted ETag element to change.
fn unquoted(xml: &[u8]) -> Option<Vec<u8>> {
    const OPEN: &[u8] = b"<ETag>\"";
    const CLOSE: &[u8] = b"\"</ETag>";
    let start = find(xml, OPEN)?;
    let end = start + OPEN.len() + find(&xml[start + OPEN.len()..], CLOSE)?;
    let mut out = Vec::with_capacity(xml.len() - 2);
    out.extend_from_slice(&xml[..start + OPEN.len() - 1]);
    out.extend_from_slice(&xml[start + OPEN.len()..end]);
    out.extend_from_slice(&xml[end + 1..]);
    Some(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_etag_loses_its_quotes() {
        let xml = br#"<GetObjectAttributesResponse><ETag>"abc-2"</ETag><ObjectSize>3</ObjectSize></GetObjectAttributesResponse>"#;
        let want = br#"<GetObjectAttributesResponse><ETag>abc-2</ETag><ObjectSize>3</ObjectSize></GetObjectAttributesResponse>"#;
        assert_eq!(unquoted(xml).as_deref(), Some(&want[..]));
        assert_eq!(unquoted(b"<ObjectSize>3</ObjectSize>"), None);
        assert_eq!(unquoted(b"<ETag>\"unterminated"), None);
    }

    #[test]
    fn the_action_is_recognised_by_its_query() {
        let req = |m: Method, uri: &str| Request::builder().method(m).uri(uri).body(()).unwrap();
        assert!(is_get_object_attributes(&req(Method::GET, "/b/k?attributes")));
        assert!(is_get_object_attributes(&req(Method::GET, "/b/a/k?versionId=null&attributes=")));
        assert!(!is_get_object_attributes(&req(Method::GET, "/b?attributes")), "needs a key");
        assert!(!is_get_object_attributes(&req(Method::HEAD, "/b/k?attributes")));
        assert!(!is_get_object_attributes(&req(Method::GET, "/b/k?attributesx")));
    }
}
