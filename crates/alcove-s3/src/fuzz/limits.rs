//! Small readers of client text: `x-amz-tagging` ([`crate::limits`]), `encoding-type=url`
//! ([`crate::urlencode`]), whole-body integrity headers ([`crate::integrity`]) and the error
//! document decoration that copies a client's key into XML ([`crate::error`]).

use base64::Engine as _;
use http::{HeaderMap, HeaderValue};
use md5::{Digest as _, Md5};
use proptest::prelude::*;

use crate::checksum::ChecksumAlgorithm;
use crate::error::decorate_error_body;
use crate::integrity::verify_whole_body;
use crate::limits::{encode_tagging_header, Limits, MAX_OBJECT_TAGS};

fn tag_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..=max).prop_map(|c| c.into_iter().collect())
}

proptest! {
    #![proptest_config(super::config(4096))]

    /// Any tag set within AWS's limits survives `x-amz-tagging`: parse(encode(tags)) == tags.
    #[test]
    fn tagging_header_round_trip(tags in proptest::collection::btree_map(
        // A key: not empty, and not `aws:…` (reserved); mapped rather than filtered.
        (any::<char>(), tag_text(127)).prop_map(|(first, rest)| {
            let first = if first.eq_ignore_ascii_case(&'a') { 'x' } else { first };
            format!("{first}{rest}")
        }),
        tag_text(256),
        0..=MAX_OBJECT_TAGS,
    )) {
        let limits = Limits::default();
        prop_assert_eq!(limits.parse_tagging_header(&encode_tagging_header(&tags)).unwrap(), tags);
    }

    /// Any header text: a checked tag set or `InvalidTag`, never a panic.
    #[test]
    fn arbitrary_tagging_headers(header in prop_oneof![
        any::<String>(),
        super::words(&["a", "=", "&", "%", "%2", "%zz", "%C3%A9", "%FF", "+", "aws:x", "k"]),
    ]) {
        let limits = Limits::default();
        match limits.parse_tagging_header(&header) {
            Ok(tags) => prop_assert!(tags.len() <= MAX_OBJECT_TAGS && tags.keys().all(|k| !k.is_empty())),
            Err(e) => prop_assert_eq!(e.code(), &s3s::S3ErrorCode::InvalidTag),
        }
    }

    /// `encoding-type=url`: only unreserved characters, '/' and %XX come out, and decoding
    /// gives the name back.
    #[test]
    fn url_encoding_round_trip(name in any::<String>()) {
        let encoded = crate::urlencode::encode(&name);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~/%".contains(&b)), "{encoded}");
        let decoded = percent_encoding::percent_decode_str(&encoded).decode_utf8().expect("UTF-8");
        prop_assert_eq!(decoded, name);
    }

    /// DeleteObjects' integrity check: the right Content-MD5 or checksum passes, anything else
    /// is refused with a client error.
    #[test]
    fn whole_body_integrity(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        md5 in prop_oneof![Just(None), Just(Some(None)), any::<String>().prop_map(|s| Some(Some(s)))],
        algorithm in proptest::option::of(proptest::sample::select(&ChecksumAlgorithm::ALL[..])),
        wrong_checksum in any::<bool>(),
    ) {
        let mut headers = HeaderMap::new();
        let right_md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
        match &md5 {
            Some(None) => { headers.insert("content-md5", HeaderValue::from_str(&right_md5).unwrap()); }
            Some(Some(text)) => match HeaderValue::from_str(text) {
                Ok(v) => { headers.insert("content-md5", v); }
                Err(_) => return Ok(()),
            },
            None => {}
        }
        if let Some(a) = algorithm {
            let mut h = a.hasher();
            h.update(if wrong_checksum { b"other" } else { &body });
            headers.insert(a.header_name(), HeaderValue::from_str(&a.finish(h)).unwrap());
        }
        let result = verify_whole_body(&headers, &body);
        let md5_ok = match &md5 {
            None | Some(None) => true,
            Some(Some(text)) => text.trim() == right_md5,
        };
        let should_pass = (md5.is_some() || algorithm.is_some()) && md5_ok && !(algorithm.is_some() && wrong_checksum);
        match result {
            Ok(()) => prop_assert!(should_pass),
            Err(e) => {
                prop_assert!(!should_pass, "refused: {e}");
                prop_assert!(e.status_code().is_none_or(|s| s.is_client_error()), "{e}");
            }
        }
    }

    /// Error documents: a client's resource text (its key) is escaped, so the decorated
    /// document stays one `<Error>` element with the resource in it.
    #[test]
    fn error_documents_escape_the_resource(resource in any::<String>(), code in "[A-Za-z]{1,20}", body in proptest::option::of(any::<Vec<u8>>())) {
        let document = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code></Error>");
        let out = decorate_error_body(document.as_bytes(), &resource, "ID", &[]).expect("an error document");
        let out = String::from_utf8(out).expect("UTF-8");
        let inner = &out[out.find("<Error>").unwrap() + 7..out.rfind("</Error>").unwrap()];
        prop_assert!(!inner.contains("<Error") && !inner.contains("</Error"), "{out}");
        let resource_element = inner.split("<Resource>").nth(1).and_then(|r| r.split("</Resource>").next()).unwrap_or_default();
        prop_assert!(!resource_element.contains('<') && !resource_element.contains('>'));
        if let Some(body) = body {
            let _ = decorate_error_body(&body, &resource, "ID", &[("Detail".into(), resource.clone())]);
        }
    }
}
