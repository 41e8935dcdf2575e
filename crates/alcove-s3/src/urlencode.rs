//! `encoding-type=url` for listings: AWS percent-encodes names so that any key survives XML.
//! Written by hand because the rule is S3's own: unreserved characters and `/` stay, everything
//! else (including `+` and space) is `%XX`, which both `unquote` and `unquote_plus` decode right.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// Encodes a key, prefix, delimiter or marker for a listing with `encoding-type=url`.
pub fn encode(name: &str) -> String {
    utf8_percent_encode(name, KEEP).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_like_s3() {
        assert_eq!(super::encode("a b+c/é&%.txt"), "a%20b%2Bc/%C3%A9%26%25.txt");
        assert_eq!(super::encode("plain-key_1.~/"), "plain-key_1.~/");
    }
}
