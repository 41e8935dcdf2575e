//! Fuzz targets for every parser of this crate that reads client bytes, written as property
//! tests (proptest) because cargo-fuzz needs a nightly toolchain. Each target feeds a parser
//! both arbitrary bytes and structure-aware inputs (valid requests with mutations), and checks
//! what can be checked: no panic, no hang, bounded memory, and an oracle where one exists (a
//! round trip, or agreement with a plain reference model).
//!
//! `cargo test` runs each target for a few seconds; `PROPTEST_CASES=1000000` (see
//! `scripts/fuzz-long.sh`) runs the long campaign. A failing input is shrunk and saved under
//! `proptest-regressions/`, and replayed first on every later run.

mod auth;
mod chunked;
mod cors;
mod host;
mod limits;
mod s3s_parsers;
mod signing_time;
mod xml;

use proptest::prelude::*;

/// The cases of one target: `PROPTEST_CASES` when set (the long campaign), else `default`,
/// chosen so the target takes a few seconds in a debug build.
pub(crate) fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// Text a client could send where a header value or query goes: mostly the given words, joined
/// by separators, with arbitrary characters mixed in.
pub(crate) fn words(dictionary: &'static [&'static str]) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => proptest::sample::select(dictionary).prop_map(str::to_owned),
        2 => proptest::sample::select(&["=", "&", "/", ",", " ", ";", ":", "%", "%2F", "%00", "\t"][..]).prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
        1 => "[0-9]{1,20}",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}
