//! Test data and its fingerprints: hashes, deterministic bytes, snapshots of
//! folders, HTTP dates and URL encodings.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::Path;

use md5::{Digest as _, Md5};
use sha2::Sha256;

// ---------------------------------------------------------------------------
// Data helpers
// ---------------------------------------------------------------------------

/// Hex MD5.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// Base64 MD5 (for Content-MD5).
pub fn md5_b64(data: &[u8]) -> String {
    b64(&Md5::digest(data))
}

/// Quoted hex MD5, the expected ETag.
pub fn etag_of(data: &[u8]) -> String {
    format!("\"{}\"", md5_hex(data))
}

/// Standard base64.
pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Base64 of the big-endian CRC32 (value of `x-amz-checksum-crc32`).
pub fn crc32_b64(data: &[u8]) -> String {
    b64(&crc32fast::hash(data).to_be_bytes())
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(<Sha256 as sha2::Digest>::digest(data))
}

/// Deterministic pseudo-random bytes (xorshift64*), so content checks are real.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut gen = Prng::new(seed);
    while out.len() < len {
        let v = gen.next_u64().to_le_bytes();
        let n = (len - out.len()).min(8);
        out.extend_from_slice(&v[..n]);
    }
    out
}

/// Small deterministic generator.
pub struct Prng(u64);

impl Prng {
    /// New generator; any seed works.
    pub fn new(seed: u64) -> Prng {
        Prng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Fills a buffer.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Writes `len` pseudo-random bytes to `path` in 1 MiB blocks; returns the hex MD5.
pub fn write_random_file(path: &Path, seed: u64, len: usize) -> String {
    let mut f = File::create(path).expect("create data file");
    let mut gen = Prng::new(seed);
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        gen.fill(&mut buf[..n]);
        md5.update(&buf[..n]);
        f.write_all(&buf[..n]).expect("write data file");
        left -= n;
    }
    f.sync_all().ok();
    hex::encode(md5.finalize())
}

/// Every path (relative, with a trailing `/` for directories) under `dir`,
/// sorted, skipping entries for which `skip` returns true.
pub fn snapshot_tree(dir: &Path, skip: &dyn Fn(&Path) -> bool) -> Vec<(String, Option<Vec<u8>>)> {
    fn walk(base: &Path, dir: &Path, skip: &dyn Fn(&Path) -> bool, out: &mut Vec<(String, Option<Vec<u8>>)>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let e = e.expect("read_dir entry");
            let p = e.path();
            if skip(&p) {
                continue;
            }
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let ft = e.file_type().expect("file_type");
            if ft.is_dir() {
                out.push((format!("{rel}/"), None));
                walk(base, &p, skip, out);
            } else {
                out.push((rel, Some(fs::read(&p).unwrap_or_default())));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, skip, &mut out);
    out.sort();
    out
}

/// Snapshot of a bucket folder as S3 users and other UFS users see it: the
/// worker's private `.alcove.sys` folders are left out.
pub fn visible_tree(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    snapshot_tree(dir, &|p: &Path| p.file_name().is_some_and(|n| n == ".alcove.sys"))
}

/// Regular files inside any `.alcove.sys` folder under `dir` (e.g. leftover
/// temporary files of failed uploads), except the records of completed
/// multipart uploads, which the worker keeps on purpose (to answer a repeated
/// Complete).
pub fn private_files(dir: &Path) -> Vec<String> {
    snapshot_tree(dir, &|_| false)
        .into_iter()
        .filter(|(p, content)| content.is_some() && p.split('/').any(|c| c == ".alcove.sys"))
        .filter(|(p, _)| !p.contains(".alcove.sys/completed/"))
        .map(|(p, _)| p)
        .collect()
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) of a unix time, for raw
/// conditional headers.
pub fn http_date(unix_secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_secs).expect("valid unix time");
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&fmt).expect("format HTTP date")
}

/// An SDK `DateTime` from unix seconds.
pub fn sdk_time(unix_secs: i64) -> aws_sdk_s3::primitives::DateTime {
    aws_sdk_s3::primitives::DateTime::from_secs(unix_secs)
}

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

/// AWS URI encoding (RFC 3986 unreserved kept). `/` kept when `keep_slash`.
pub fn aws_uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~') || (keep_slash && c == '/') {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` and `+` (as a space), like `unquote_plus`.
pub fn url_decode_plus(s: &str) -> String {
    let replaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&replaced).decode_utf8().expect("percent-decoded value is UTF-8").into_owned()
}
