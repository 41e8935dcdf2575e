//! Deterministic object content and its verification.
//!
//! Every object's bytes are a pure function of `(seed, key, size)`: a
//! splitmix64 stream started from a hash of the seed and the key. So the
//! benchmark never has to remember what it wrote: any run (or another tool
//! that wrote the same files on disk) can recompute the expected length, CRC32
//! and MD5 of a key, and every GET is checked against them while it streams.

use md5::{Digest as _, Md5};

/// Bytes generated per step when content is streamed (expectations, files).
const CHUNK: usize = 64 * 1024;

/// The object key for index `i` under `prefix` (zero-padded, so the byte
/// order of keys is their numeric order).
pub fn key_for(prefix: &str, i: u64) -> String {
    format!("{prefix}k{i:08}")
}

/// 64-bit FNV-1a, used to turn `(seed, key)` into a generator state.
fn fnv1a(seed: u64, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(key.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// splitmix64 step.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stream of the content of one object, produced in chunks.
pub struct Generator {
    state: u64,
    remaining: u64,
}

impl Generator {
    /// Generator for the object `key` of `size` bytes under `seed`.
    pub fn new(seed: u64, key: &str, size: u64) -> Generator {
        Generator { state: fnv1a(seed, key), remaining: size }
    }

    /// Fills `buf` with the next bytes (at most `buf.len()`, fewer only at the
    /// end) and returns how many were written. Chunk boundaries that are not
    /// multiples of 8 are not supported (callers use multiples of 8).
    pub fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let mut words = buf[..n].chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&splitmix(&mut self.state).to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let v = splitmix(&mut self.state).to_le_bytes();
            let len = tail.len();
            tail.copy_from_slice(&v[..len]);
        }
        self.remaining -= n as u64;
        n
    }
}

/// The whole content of an object.
pub fn object_bytes(seed: u64, key: &str, size: u64) -> Vec<u8> {
    let mut v = vec![0u8; usize::try_from(size).expect("object size fits in memory")];
    let mut g = Generator::new(seed, key, size);
    let mut off = 0;
    while off < v.len() {
        let end = (off + CHUNK).min(v.len());
        off += g.fill(&mut v[off..end]);
    }
    v
}

/// What a correct read of an object returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Length in bytes.
    pub len: u64,
    /// CRC32 (IEEE) of the content.
    pub crc32: u32,
    /// Lower-case hex MD5 of the content (the ETag of a single-part PUT).
    pub md5_hex: String,
}

impl Expected {
    /// Expectations of a buffer.
    pub fn of(data: &[u8]) -> Expected {
        Expected { len: data.len() as u64, crc32: crc32fast::hash(data), md5_hex: hex::encode(Md5::digest(data)) }
    }

    /// Expectations of `key` computed by streaming the generator (no
    /// allocation of the whole object).
    #[cfg(test)]
    pub fn compute(seed: u64, key: &str, size: u64) -> Expected {
        Self::compute_with(seed, key, size, true)
    }

    /// Like [`Expected::compute`]; without `with_md5` the MD5 is skipped (it
    /// is the slow part, and GETs only check length and CRC32) and left empty,
    /// so an ETag comparison fails loudly instead of passing.
    pub fn compute_with(seed: u64, key: &str, size: u64, with_md5: bool) -> Expected {
        let mut g = Generator::new(seed, key, size);
        let mut buf = vec![0u8; CHUNK];
        let mut crc = crc32fast::Hasher::new();
        let mut md5 = with_md5.then(Md5::new);
        loop {
            let n = g.fill(&mut buf);
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
            if let Some(m) = md5.as_mut() {
                m.update(&buf[..n]);
            }
        }
        Expected {
            len: size,
            crc32: crc.finalize(),
            md5_hex: md5.map(|m| hex::encode(m.finalize())).unwrap_or_default(),
        }
    }

    /// Whether an ETag (quoted or not) is this content's MD5.
    pub fn etag_matches(&self, etag: &str) -> bool {
        !self.md5_hex.is_empty() && etag.trim_matches('"').eq_ignore_ascii_case(&self.md5_hex)
    }
}

/// Streaming check of a response body against an [`Expected`].
pub struct Verifier<'a> {
    expected: &'a Expected,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<'a> Verifier<'a> {
    /// Starts checking a body that should be `expected`.
    pub fn new(expected: &'a Expected) -> Verifier<'a> {
        Verifier { expected, crc: crc32fast::Hasher::new(), len: 0 }
    }

    /// Feeds the next chunk of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        self.len += chunk.len() as u64;
        self.crc.update(chunk);
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Ok, or what was wrong with the body.
    pub fn finish(self) -> Result<u64, String> {
        if self.len != self.expected.len {
            return Err(format!("body length {} != expected {}", self.len, self.expected.len));
        }
        let crc = self.crc.finalize();
        if crc != self.expected.crc32 {
            return Err(format!("body crc32 {crc:08x} != expected {:08x}", self.expected.crc32));
        }
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically() {
        let a = key_for("p/", 9);
        let b = key_for("p/", 10);
        assert_eq!(a, "p/k00000009");
        assert!(a < b);
    }

    #[test]
    fn content_is_deterministic_and_key_dependent() {
        let a1 = object_bytes(1, "a", 1000);
        let a2 = object_bytes(1, "a", 1000);
        let b = object_bytes(1, "b", 1000);
        let a_seed2 = object_bytes(2, "a", 1000);
        assert_eq!(a1.len(), 1000);
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, a_seed2);
        // Not trivially constant.
        assert!(a1.iter().any(|&x| x != a1[0]));
    }

    #[test]
    fn shorter_object_is_prefix_of_longer() {
        let long = object_bytes(7, "k", 300_000);
        let short = object_bytes(7, "k", 1003);
        assert_eq!(&long[..1003], &short[..]);
    }

    #[test]
    fn streamed_expectations_equal_one_shot() {
        for size in [0u64, 1, 7, 8, 9, 4096, 65_536, 65_537, 200_003] {
            let data = object_bytes(3, "x/y", size);
            assert_eq!(Expected::compute(3, "x/y", size), Expected::of(&data), "size {size}");
        }
        // MD5 of the empty object.
        assert_eq!(Expected::compute(3, "e", 0).md5_hex, "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn etag_comparison() {
        let e = Expected::of(b"hello");
        assert!(e.etag_matches("\"5d41402abc4b2a76b9719d911017c592\""));
        assert!(e.etag_matches("5D41402ABC4B2A76B9719D911017C592"));
        assert!(!e.etag_matches("\"5d41402abc4b2a76b9719d911017c593\""));
        let crc_only = Expected::compute_with(1, "k", 10, false);
        assert_eq!(crc_only.crc32, Expected::compute(1, "k", 10).crc32);
        assert!(!crc_only.etag_matches("\"\""));
        assert!(!crc_only.etag_matches(""));
    }

    #[test]
    fn verifier_accepts_correct_body_in_any_chunking() {
        let data = object_bytes(5, "k", 10_000);
        let e = Expected::of(&data);
        for step in [1usize, 3, 4096, 10_000] {
            let mut v = Verifier::new(&e);
            for c in data.chunks(step) {
                v.update(c);
            }
            assert_eq!(v.finish(), Ok(10_000));
        }
    }

    #[test]
    fn verifier_rejects_wrong_bodies() {
        let data = object_bytes(5, "k", 10_000);
        let e = Expected::of(&data);

        let mut flipped = data.clone();
        flipped[5000] ^= 1;
        let mut v = Verifier::new(&e);
        v.update(&flipped);
        assert!(v.finish().unwrap_err().contains("crc32"));

        let mut v = Verifier::new(&e);
        v.update(&data[..9_999]);
        assert!(v.finish().unwrap_err().contains("length"));

        let mut v = Verifier::new(&e);
        v.update(&data);
        v.update(b"x");
        assert!(v.finish().unwrap_err().contains("length"));

        // Another key's content of the same length.
        let other = object_bytes(5, "j", 10_000);
        let mut v = Verifier::new(&e);
        v.update(&other);
        assert!(v.finish().is_err());
    }
}
