//! S3's limits on what clients attach to objects: user metadata size and tags. The seed system's
//! `tagging.restrictions.enabled` and `header.metadata.max.size` switch and size them.

use std::collections::BTreeMap;

use s3s::{S3Error, S3ErrorCode, S3Result};

/// The limits in force on a worker.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest total of user-metadata names and values, in bytes (AWS: 2 KB).
    pub metadata_max_size: usize,
    /// Enforce AWS's tag count and length limits.
    pub tagging_restrictions: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self { metadata_max_size: 2048, tagging_restrictions: true }
    }
}

/// Tags per object and per bucket, as AWS allows.
pub const MAX_OBJECT_TAGS: usize = 10;
pub const MAX_BUCKET_TAGS: usize = 50;
const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;

fn invalid_tag(message: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidTag, message)
}

impl Limits {
    /// Refuses user metadata larger than the limit (`MetadataTooLarge`).
    pub fn check_user_metadata(&self, user: &BTreeMap<String, String>) -> S3Result<()> {
        let size: usize = user.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > self.metadata_max_size {
            return Err(S3Error::with_message(
                S3ErrorCode::MetadataTooLarge,
                format!(
                    "Your metadata headers exceed the maximum allowed metadata size: {size} bytes, the limit is {}.",
                    self.metadata_max_size
                ),
            ));
        }
        Ok(())
    }

    /// Checks a tag set (`InvalidTag`): unique keys, no `aws:` prefix, and — when restrictions
    /// are on — at most `max_count` tags of bounded length.
    pub fn check_tags(&self, tags: &[(String, String)], max_count: usize) -> S3Result<BTreeMap<String, String>> {
        let mut set = BTreeMap::new();
        for (key, value) in tags {
            if key.is_empty() {
                return Err(invalid_tag("The TagKey you have provided is invalid: it is empty.".into()));
            }
            if key.to_ascii_lowercase().starts_with("aws:") {
                return Err(invalid_tag(format!("Your TagKey cannot be prefixed with aws: ({key}).")));
            }
            if self.tagging_restrictions {
                if key.chars().count() > MAX_TAG_KEY_CHARS {
                    return Err(invalid_tag(format!(
                        "The TagKey you have provided is too long, max {MAX_TAG_KEY_CHARS}."
                    )));
                }
                if value.chars().count() > MAX_TAG_VALUE_CHARS {
                    return Err(invalid_tag(format!(
                        "The TagValue you have provided is too long, max {MAX_TAG_VALUE_CHARS}."
                    )));
                }
            }
            if set.insert(key.clone(), value.clone()).is_some() {
                return Err(invalid_tag(format!("Cannot provide multiple Tags with the same key ({key}).")));
            }
        }
        if self.tagging_restrictions && set.len() > max_count {
            return Err(invalid_tag(format!(
                "The number of tags ({}) exceeds the limit of {max_count} tags.",
                set.len()
            )));
        }
        Ok(set)
    }

    /// Parses `x-amz-tagging` (`k1=v1&k2=v2`, URL-encoded) into a checked object tag set.
    pub fn parse_tagging_header(&self, header: &str) -> S3Result<BTreeMap<String, String>> {
        let pairs: Vec<(String, String)> = header
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(k), form_decode(v))
            })
            .collect();
        self.check_tags(&pairs, MAX_OBJECT_TAGS)
    }
}

fn form_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// Encodes a tag set as `x-amz-tagging` does.
pub fn encode_tagging_header(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{}={}", crate::urlencode::encode(k), crate::urlencode::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_limit() {
        let limits = Limits::default();
        let mut user = BTreeMap::new();
        user.insert("k".to_owned(), "v".repeat(2047));
        limits.check_user_metadata(&user).unwrap();
        user.insert("k2".to_owned(), "v".into());
        assert_eq!(*limits.check_user_metadata(&user).unwrap_err().code(), S3ErrorCode::MetadataTooLarge);
    }

    #[test]
    fn tag_limits_and_switch() {
        let limits = Limits::default();
        let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(*limits.check_tags(&eleven, MAX_OBJECT_TAGS).unwrap_err().code(), S3ErrorCode::InvalidTag);
        let off = Limits { tagging_restrictions: false, ..limits };
        assert_eq!(off.check_tags(&eleven, MAX_OBJECT_TAGS).unwrap().len(), 11);
        let long = vec![("k".repeat(129), "v".into())];
        assert!(limits.check_tags(&long, 10).is_err());
        let dup = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
        assert!(off.check_tags(&dup, 10).is_err(), "duplicates are refused even without restrictions");
        assert!(off.check_tags(&[("aws:x".into(), "1".into())], 10).is_err());
    }

    #[test]
    fn tagging_header_round_trip() {
        let limits = Limits::default();
        let tags = limits.parse_tagging_header("a=1&b%20c=d+e&empty=").unwrap();
        assert_eq!(tags.get("b c").map(String::as_str), Some("d e"));
        assert_eq!(tags.get("empty").map(String::as_str), Some(""));
        assert_eq!(limits.parse_tagging_header(&encode_tagging_header(&tags)).unwrap(), tags);
    }
}
