//! The five S3 checksum algorithms, computed here independently of the server.

use sha2::Sha256;

use crate::b64;

// ---------------------------------------------------------------------------
// Checksums (computed here, independently of the server)
// ---------------------------------------------------------------------------

/// The five S3 checksum algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// CRC32 (ISO-HDLC).
    Crc32,
    /// CRC32C (Castagnoli).
    Crc32c,
    /// CRC64NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl Alg {
    /// All five, in S3's order.
    pub const ALL: [Alg; 5] = [Alg::Crc32, Alg::Crc32c, Alg::Crc64Nvme, Alg::Sha1, Alg::Sha256];

    /// The raw (binary, big-endian for CRCs) checksum of `data`.
    pub fn raw(self, data: &[u8]) -> Vec<u8> {
        match self {
            Alg::Crc32 => crc32fast::hash(data).to_be_bytes().to_vec(),
            Alg::Crc32c => crc32c(data).to_be_bytes().to_vec(),
            Alg::Crc64Nvme => crc64nvme(data).to_be_bytes().to_vec(),
            Alg::Sha1 => <sha1::Sha1 as sha1::Digest>::digest(data).to_vec(),
            Alg::Sha256 => <Sha256 as sha2::Digest>::digest(data).to_vec(),
        }
    }

    /// The base64 checksum of `data` (the value of `x-amz-checksum-*`).
    pub fn b64(self, data: &[u8]) -> String {
        b64(&self.raw(data))
    }

    /// The composite (multipart) checksum: the checksum of the concatenated
    /// binary part checksums, base64, then `-N`.
    pub fn composite(self, parts: &[&[u8]]) -> String {
        let joined: Vec<u8> = parts.iter().flat_map(|p| self.raw(p)).collect();
        format!("{}-{}", self.b64(&joined), parts.len())
    }

    /// The SDK's enum value.
    pub fn sdk(self) -> aws_sdk_s3::types::ChecksumAlgorithm {
        use aws_sdk_s3::types::ChecksumAlgorithm as A;
        match self {
            Alg::Crc32 => A::Crc32,
            Alg::Crc32c => A::Crc32C,
            Alg::Crc64Nvme => A::Crc64Nvme,
            Alg::Sha1 => A::Sha1,
            Alg::Sha256 => A::Sha256,
        }
    }

    /// `x-amz-checksum-…` header name.
    pub fn header(self) -> &'static str {
        match self {
            Alg::Crc32 => "x-amz-checksum-crc32",
            Alg::Crc32c => "x-amz-checksum-crc32c",
            Alg::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Alg::Sha1 => "x-amz-checksum-sha1",
            Alg::Sha256 => "x-amz-checksum-sha256",
        }
    }
}

/// The `checksum_<alg>()` value of any SDK output that has the five getters,
/// as an `Option<String>`: `checksum_of!(out, Alg::Crc32)`.
#[macro_export]
macro_rules! checksum_of {
    ($out:expr, $alg:expr) => {{
        let out = &$out;
        match $alg {
            $crate::Alg::Crc32 => out.checksum_crc32().map(str::to_owned),
            $crate::Alg::Crc32c => out.checksum_crc32_c().map(str::to_owned),
            $crate::Alg::Crc64Nvme => out.checksum_crc64_nvme().map(str::to_owned),
            $crate::Alg::Sha1 => out.checksum_sha1().map(str::to_owned),
            $crate::Alg::Sha256 => out.checksum_sha256().map(str::to_owned),
        }
    }};
}

/// Bitwise reflected CRC with a 256-entry table, for CRC32C and CRC64NVME.
fn crc_table64(poly: u64) -> [u64; 256] {
    let mut t = [0u64; 256];
    for (i, e) in t.iter_mut().enumerate() {
        let mut c = i as u64;
        for _ in 0..8 {
            c = if c & 1 == 1 { (c >> 1) ^ poly } else { c >> 1 };
        }
        *e = c;
    }
    t
}

/// CRC-32C (Castagnoli, reflected 0x82F63B78).
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| crc_table64(0x82F6_3B78));
    let mut c: u64 = 0xFFFF_FFFF;
    for &b in data {
        c = t[((c ^ b as u64) & 0xFF) as usize] ^ (c >> 8);
    }
    (c ^ 0xFFFF_FFFF) as u32
}

/// CRC-64/NVME (reflected 0x9A6C9329AC4BC9B5, init and xorout all ones).
pub fn crc64nvme(data: &[u8]) -> u64 {
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| crc_table64(0x9A6C_9329_AC4B_C9B5));
    let mut c: u64 = u64::MAX;
    for &b in data {
        c = t[((c ^ b as u64) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ u64::MAX
}
