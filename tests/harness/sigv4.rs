//! A small SigV4 signer for hand-built signed (and aws-chunked) requests.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{aws_uri_encode, sha256_hex, REGION};

// ---------------------------------------------------------------------------
// SigV4
// ---------------------------------------------------------------------------

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("hmac key");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A minimal SigV4 signer for hand-built requests.
#[derive(Clone, Debug)]
pub struct SigV4 {
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

/// A request to sign.
#[derive(Clone, Copy, Debug)]
pub struct ToSign<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Host header value (`127.0.0.1:PORT`).
    pub host: &'a str,
    /// The encoded path exactly as sent.
    pub path: &'a str,
    /// Decoded (name, value) query pairs.
    pub query: &'a [(&'a str, &'a str)],
    /// Extra headers to sign (host, x-amz-date and x-amz-content-sha256 are added).
    pub headers: &'a [(&'a str, &'a str)],
    /// Value of x-amz-content-sha256.
    pub payload_hash: &'a str,
}

/// The parts of a signed request needed to continue a streaming signature.
#[derive(Clone, Debug)]
pub struct Signed {
    /// Headers to send (includes host, x-amz-date, x-amz-content-sha256, authorization).
    pub headers: Vec<(String, String)>,
    /// The request signature (seed for chunk signatures).
    pub signature: String,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// `YYYYMMDD/us-east-1/s3/aws4_request`.
    pub scope: String,
}

impl SigV4 {
    /// Signer with the given credentials.
    pub fn new(access_key: &str, secret_key: &str) -> SigV4 {
        SigV4 { access_key: access_key.to_owned(), secret_key: secret_key.to_owned() }
    }

    fn signing_key(&self, date: &str) -> Vec<u8> {
        let k = hmac(format!("AWS4{}", self.secret_key).as_bytes(), date.as_bytes());
        let k = hmac(&k, REGION.as_bytes());
        let k = hmac(&k, b"s3");
        hmac(&k, b"aws4_request")
    }

    /// Signs a request (see [`ToSign`]) as of `when`.
    pub fn sign(&self, req: &ToSign<'_>, when: time::OffsetDateTime) -> Signed {
        let ToSign { method, host, path, query, headers, payload_hash } = *req;
        let amz_date = amz_date(when);
        let date = &amz_date[..8];
        let scope = format!("{date}/{REGION}/s3/aws4_request");
        let mut hs: Vec<(String, String)> = vec![
            ("host".into(), host.into()),
            ("x-amz-date".into(), amz_date.clone()),
            ("x-amz-content-sha256".into(), payload_hash.into()),
        ];
        for (k, v) in headers {
            hs.push((k.to_ascii_lowercase(), v.trim().to_owned()));
        }
        hs.sort();
        let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed_headers = hs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
        let mut q: Vec<(String, String)> =
            query.iter().map(|(k, v)| (aws_uri_encode(k, false), aws_uri_encode(v, false))).collect();
        q.sort();
        let canonical_query = q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        let canonical =
            format!("{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
        let sts = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical.as_bytes()));
        let signature = hex::encode(hmac(&self.signing_key(date), sts.as_bytes()));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key
        );
        hs.push(("authorization".into(), auth));
        Signed { headers: hs, signature, amz_date, scope }
    }

    /// Builds an aws-chunked body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) with
    /// per-chunk signatures chained from `seed`.
    pub fn chunked_body(&self, signed: &Signed, data: &[u8], chunk_size: usize) -> Vec<u8> {
        let key = self.signing_key(&signed.amz_date[..8]);
        let empty_hash = sha256_hex(b"");
        let mut prev = signed.signature.clone();
        let mut out = Vec::new();
        let mut chunks: Vec<&[u8]> = data.chunks(chunk_size).collect();
        chunks.push(&[]);
        for c in chunks {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{empty_hash}\n{}",
                signed.amz_date,
                signed.scope,
                sha256_hex(c)
            );
            let sig = hex::encode(hmac(&key, sts.as_bytes()));
            out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
            prev = sig;
        }
        out
    }
}

/// `YYYYMMDDTHHMMSSZ` for a time.
pub fn amz_date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// An aws-chunked body with unsigned chunks and a trailer: `size\r\ndata\r\n...0\r\n<trailer>\r\n\r\n`.
pub fn unsigned_chunked_body(data: &[u8], chunk_size: usize, trailer: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(chunk_size) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    out.extend_from_slice(trailer.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}
