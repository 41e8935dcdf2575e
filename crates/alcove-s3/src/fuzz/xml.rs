//! The XML bodies clients send — DeleteObjects (`Delete`), CompleteMultipartUpload
//! (`CompletedMultipartUpload`), Put*Tagging (`Tagging`) and PutBucketCors
//! (`CORSConfiguration`) — read by s3s's deserializer exactly as s3s reads a request body.
//! Documents are written here by hand, with every escape XML allows, so the round trip checks
//! s3s's reader against an independent writer.

use proptest::prelude::*;
use s3s::dto::{CORSConfiguration, CompletedMultipartUpload, Delete, Tagging};
use s3s::xml::{Deserialize, Deserializer};

/// What s3s does with a body: one document, nothing after it.
fn parse<T: for<'x> Deserialize<'x>>(bytes: &[u8]) -> Option<T> {
    let mut d = Deserializer::new(bytes);
    let value = T::deserialize(&mut d).ok()?;
    d.expect_eof().ok()?;
    Some(value)
}

fn parse_all(bytes: &[u8]) {
    let _ = parse::<Delete>(bytes);
    let _ = parse::<CompletedMultipartUpload>(bytes);
    let _ = parse::<Tagging>(bytes);
    let _ = parse::<CORSConfiguration>(bytes);
}

/// A character XML 1.0 allows in text: `\t \n \r`, U+20..U+D7FF, U+E000..U+FFFD and the
/// supplementary planes (built from the ranges; a filter rejects too often for long runs).
fn xml_char() -> impl Strategy<Value = char> {
    use proptest::char::range;
    prop_oneof![
        1 => proptest::sample::select(&['\t', '\n', '\r'][..]),
        6 => range('\u{20}', '\u{7E}'),
        6 => range('\u{7F}', '\u{D7FF}'),
        1 => range('\u{E000}', '\u{FFFD}'),
        2 => range('\u{10000}', '\u{10FFFF}'),
    ]
}

/// Text and one way of writing it: each character raw where XML allows, or as an entity or
/// a decimal or hex character reference.
fn text() -> impl Strategy<Value = (String, String)> {
    proptest::collection::vec((xml_char(), 0u8..4), 0..40).prop_map(|chars| {
        let mut plain = String::new();
        let mut written = String::new();
        for (c, how) in chars {
            plain.push(c);
            let entity = match c {
                '&' => Some("&amp;"),
                '<' => Some("&lt;"),
                '>' => Some("&gt;"),
                '"' => Some("&quot;"),
                '\'' => Some("&apos;"),
                _ => None,
            };
            // '&', '<' and '>' must be escaped; a raw CR would be read as a line end.
            let must_escape = matches!(c, '&' | '<' | '>' | '\r');
            // s3s 0.14 refuses character references to U+10000..=U+FFFFF (its range check reads
            // 0x10_0000 for 0x1_0000; see docs/fuzzing.md): those are written raw.
            let how = if ('\u{10000}'..='\u{FFFFF}').contains(&c) { 0 } else { how };
            match how {
                0 if !must_escape => written.push(c),
                0 | 1 if entity.is_some() => written.push_str(entity.unwrap_or_default()),
                1 if !must_escape => written.push(c),
                3 => written.push_str(&format!("&#x{:X};", c as u32)),
                _ => written.push_str(&format!("&#{};", c as u32)),
            }
        }
        (plain, written)
    })
}

/// Space and line ends between elements, as pretty-printing SDKs write them.
fn gap() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(&["", " ", "\n  ", "\r\n\t"][..])
}

/// A DeleteObjects body: keys (with versions), Quiet before or after them, a declaration and
/// the S3 namespace or not.
fn delete_document() -> impl Strategy<Value = (Vec<String>, Option<bool>, String)> {
    (
        // s3s (as AWS) refuses a Delete without objects.
        proptest::collection::vec((text(), proptest::option::of("[a-zA-Z0-9._-]{1,10}"), gap()), 1..20),
        proptest::option::of(any::<bool>()),
        any::<bool>(),
        any::<bool>(),
        gap(),
    )
        .prop_map(|(objects, quiet, quiet_first, declared, g)| {
            let mut doc = String::new();
            if declared {
                doc.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            }
            doc.push_str("<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
            let quiet_element = quiet.map(|q| format!("{g}<Quiet>{q}</Quiet>")).unwrap_or_default();
            if quiet_first {
                doc.push_str(&quiet_element);
            }
            let mut keys = Vec::new();
            for ((plain, written), version, g) in objects {
                doc.push_str(&format!("{g}<Object>{g}<Key>{written}</Key>"));
                if let Some(v) = version {
                    doc.push_str(&format!("<VersionId>{v}</VersionId>"));
                }
                doc.push_str(&format!("{g}</Object>"));
                keys.push(plain);
            }
            if !quiet_first {
                doc.push_str(&quiet_element);
            }
            doc.push_str(&format!("{g}</Delete>{g}"));
            (keys, quiet, doc)
        })
}

fn complete_document() -> impl Strategy<Value = (Vec<(i32, String)>, String)> {
    proptest::collection::vec((1i32..=10_000, "[0-9a-f]{32}(-[0-9]{1,5})?", gap()), 0..30).prop_map(|parts| {
        let mut doc = String::from("<CompleteMultipartUpload>");
        for (n, etag, g) in &parts {
            doc.push_str(&format!(
                "{g}<Part>{g}<PartNumber>{n}</PartNumber>{g}<ETag>&quot;{etag}&quot;</ETag>{g}</Part>"
            ));
        }
        doc.push_str("</CompleteMultipartUpload>");
        (parts.into_iter().map(|(n, e, _)| (n, e)).collect(), doc)
    })
}

fn tagging_document() -> impl Strategy<Value = (Vec<(String, String)>, String)> {
    proptest::collection::vec((text(), text(), gap()), 0..12).prop_map(|tags| {
        let mut doc = String::from("<Tagging><TagSet>");
        let mut plain = Vec::new();
        for ((k, kw), (v, vw), g) in tags {
            doc.push_str(&format!("{g}<Tag><Key>{kw}</Key>{g}<Value>{vw}</Value></Tag>"));
            plain.push((k, v));
        }
        doc.push_str("</TagSet></Tagging>");
        (plain, doc)
    })
}

/// A body damaged the way a fuzzer damages one: bytes changed, inserted, removed, cut.
fn damaged(doc: String) -> impl Strategy<Value = Vec<u8>> {
    let len = doc.len();
    let tokens = proptest::sample::select(
        &[
            "<",
            ">",
            "</",
            "/>",
            "&",
            "&#",
            "&#x110000;",
            "&#0;",
            "&unknown;",
            "<![CDATA[",
            "]]>",
            "<!--",
            "<?",
            "\"",
            "\u{0}",
            "\u{FFFE}",
            "<Object>",
            "</Key>",
            "<Delete>",
            "xmlns:a=\"b\"",
            "<!DOCTYPE x [<!ENTITY e \"&e;&e;\">]>",
        ][..],
    );
    proptest::collection::vec(
        (
            0..=len,
            prop_oneof![tokens.prop_map(|t| t.as_bytes().to_vec()), proptest::collection::vec(any::<u8>(), 0..4)],
            0usize..4,
        ),
        1..5,
    )
    .prop_map(move |edits| {
        let mut bytes = doc.clone().into_bytes();
        for (at, insert, remove) in edits {
            let at = at.min(bytes.len());
            let end = (at + remove).min(bytes.len());
            bytes.splice(at..end, insert);
        }
        bytes
    })
}

proptest! {
    #![proptest_config(super::config(2048))]

    /// Every key of a DeleteObjects body comes out as written, whatever it holds and however it
    /// was escaped.
    #[test]
    fn delete_round_trip((keys, quiet, doc) in delete_document()) {
        let Some(delete) = parse::<Delete>(doc.as_bytes()) else {
            prop_assert!(false, "refused: {doc:?}");
            unreachable!()
        };
        let parsed: Vec<&str> = delete.objects.iter().map(|o| o.key.as_str()).collect();
        prop_assert_eq!(parsed, keys.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(delete.quiet, quiet);
    }

    #[test]
    fn complete_round_trip((parts, doc) in complete_document()) {
        let upload = parse::<CompletedMultipartUpload>(doc.as_bytes()).expect("a valid document");
        let parsed: Vec<(i32, String)> = upload
            .parts
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.part_number.unwrap_or(0), p.e_tag.map(|e| e.value().to_owned()).unwrap_or_default()))
            .collect();
        prop_assert_eq!(parsed, parts);
    }

    #[test]
    fn tagging_round_trip((tags, doc) in tagging_document()) {
        let tagging = parse::<Tagging>(doc.as_bytes()).expect("a valid document");
        let parsed: Vec<(String, String)> = tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect();
        prop_assert_eq!(parsed, tags);
    }

    /// Damaged documents of each kind: parsed or refused, never a panic or a hang.
    #[test]
    fn damaged_documents(bytes in prop_oneof![
        delete_document().prop_flat_map(|(_, _, doc)| damaged(doc)),
        complete_document().prop_flat_map(|(_, doc)| damaged(doc)),
        tagging_document().prop_flat_map(|(_, doc)| damaged(doc)),
        damaged("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>10</MaxAgeSeconds></CORSRule></CORSConfiguration>".into()),
    ]) {
        parse_all(&bytes);
    }

    /// Arbitrary bytes, and deep nesting: parsed or refused, never a panic.
    #[test]
    fn arbitrary_documents(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        (1usize..20_000).prop_map(|depth| format!("<Delete>{}", "<Object>".repeat(depth)).into_bytes()),
        // Unknown elements are skipped, however deep.
        (1usize..20_000).prop_map(|depth| {
            format!("<Delete><Object><Key>k</Key><Extra>{}{}</Extra></Object></Delete>", "<a>".repeat(depth), "</a>".repeat(depth))
                .into_bytes()
        }),
    ]) {
        parse_all(&bytes);
    }
}

/// The s3s limitation the generator above works around: a character reference to a code point
/// in U+10000..=U+FFFFF (emoji, for one) makes the body `MalformedXML`, while the same character
/// written as UTF-8 passes. When s3s fixes its range check this fails, and the workaround goes.
#[test]
fn s3s_refuses_references_to_supplementary_characters() {
    let written =
        |key: &str| format!("<Tagging><TagSet><Tag><Key>{key}</Key><Value>v</Value></Tag></TagSet></Tagging>");
    assert!(parse::<Tagging>(written("\u{1F600}").as_bytes()).is_some());
    assert!(parse::<Tagging>(written("&#x1F600;").as_bytes()).is_none());
    assert!(parse::<Tagging>(written("&#x10FFFD;").as_bytes()).is_some());
}
