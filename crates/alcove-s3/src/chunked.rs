//! Decoder for `aws-chunked` request bodies in simple auth mode.
//!
//! s3s decodes aws-chunked framing only inside its signature verification, which simple mode
//! skips (the client's secret is unknown). So this decoder removes the framing itself
//! (`hex-size[;chunk-signature=…]\r\n data \r\n … 0\r\n trailers \r\n`), ignores chunk
//! signatures, checks the decoded length, and verifies the trailing `x-amz-checksum-*` value.
//! It streams: memory is bounded by one network read plus one chunk header, and the outcome does
//! not depend on how the network cut the body into reads (the `fuzz::chunked` targets check both
//! against a plain reference decoder).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use s3s::checksum::ChecksumHasher;

use crate::checksum::ChecksumAlgorithm;
use crate::BodyError;

/// Longest chunk header or trailer line accepted.
pub(crate) const MAX_LINE: usize = 8 * 1024;
/// Most trailer bytes accepted.
pub(crate) const MAX_TRAILERS: usize = 16 * 1024;

enum State {
    Header,
    Data { remaining: u64 },
    DataEnd,
    Trailers { seen: usize },
    Done,
}

/// Nothing may follow the blank line that ends the trailers.
const AFTER_END: &str = "bytes follow the end of the aws-chunked body";

/// Streams the payload out of an aws-chunked body.
pub struct AwsChunkedDecoder<S> {
    inner: S,
    inner_done: bool,
    buf: BytesMut,
    /// How much of `buf` is known to hold no CRLF (so a line trickling in is scanned once).
    scanned: usize,
    state: State,
    decoded: u64,
    decoded_len: Option<u64>,
    trailer: Option<(ChecksumAlgorithm, ChecksumHasher)>,
    trailer_value: Option<String>,
}

impl<S> AwsChunkedDecoder<S> {
    /// `decoded_len` is `x-amz-decoded-content-length`; `trailer` the algorithm named by
    /// `x-amz-trailer`, whose value must then arrive and match.
    pub fn new(inner: S, decoded_len: Option<u64>, trailer: Option<ChecksumAlgorithm>) -> Self {
        Self {
            inner,
            inner_done: false,
            buf: BytesMut::new(),
            scanned: 0,
            state: State::Header,
            decoded: 0,
            decoded_len,
            trailer: trailer.map(|a| (a, a.hasher())),
            trailer_value: None,
        }
    }

    /// Bytes held between reads (the fuzz targets check that they stay bounded).
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes one `\r\n`-terminated line from the buffer, if complete. A line longer than
    /// [`MAX_LINE`] is refused whether it arrived in one read or trickled in.
    fn take_line(&mut self) -> Result<Option<Bytes>, BodyError> {
        let from = self.scanned.saturating_sub(1);
        match memchr_crlf(&self.buf[from..]).map(|at| from + at) {
            Some(at) if at > MAX_LINE => Err(line_too_long()),
            Some(at) => {
                let line = self.buf.split_to(at).freeze();
                self.buf.advance(2);
                self.scanned = 0;
                Ok(Some(line))
            }
            // The buffer may end in the line's '\r'; anything longer is too long already.
            None if self.buf.len() > MAX_LINE + 1 => Err(line_too_long()),
            None => {
                self.scanned = self.buf.len();
                Ok(None)
            }
        }
    }

    /// Advances the state machine over buffered bytes. `Ok(Some)` is payload to yield,
    /// `Ok(None)` means more input is needed (or the body is done).
    fn step(&mut self) -> Result<Option<Bytes>, BodyError> {
        loop {
            match self.state {
                State::Header => {
                    let Some(line) = self.take_line()? else { return Ok(None) };
                    let size = parse_chunk_size(&line)?;
                    self.state = if size == 0 { State::Trailers { seen: 0 } } else { State::Data { remaining: size } };
                }
                State::Data { remaining } => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let take = remaining.min(self.buf.len() as u64) as usize;
                    let data = self.buf.split_to(take).freeze();
                    let remaining = remaining - take as u64;
                    self.state = if remaining == 0 { State::DataEnd } else { State::Data { remaining } };
                    self.decoded += take as u64;
                    if self.decoded_len.is_some_and(|n| self.decoded > n) {
                        return Err(BodyError::LengthMismatch);
                    }
                    if let Some((_, hasher)) = &mut self.trailer {
                        hasher.update(&data);
                    }
                    return Ok(Some(data));
                }
                State::DataEnd => {
                    if self.buf.len() < 2 {
                        return Ok(None);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(malformed("chunk data is not followed by CRLF"));
                    }
                    self.buf.advance(2);
                    self.state = State::Header;
                }
                State::Trailers { seen } => {
                    let Some(line) = self.take_line()? else { return Ok(None) };
                    if line.is_empty() {
                        self.state = State::Done;
                        continue;
                    }
                    let seen = seen + line.len();
                    if seen > MAX_TRAILERS {
                        return Err(malformed("the trailers are too large"));
                    }
                    self.state = State::Trailers { seen };
                    self.read_trailer(&line)?;
                }
                State::Done if self.buf.is_empty() => return Ok(None),
                State::Done => return Err(malformed(AFTER_END)),
            }
        }
    }

    fn read_trailer(&mut self, line: &[u8]) -> Result<(), BodyError> {
        let line = std::str::from_utf8(line).map_err(|_| malformed("a trailer is not UTF-8"))?;
        let (name, value) = line.split_once(':').ok_or_else(|| malformed("a trailer has no ':'"))?;
        if let Some((algorithm, _)) = &self.trailer {
            if algorithm.header_name().eq_ignore_ascii_case(name.trim()) {
                self.trailer_value = Some(value.trim().to_owned());
            }
        }
        Ok(())
    }

    /// Called at the end of input: every announced byte and trailer must have arrived.
    fn finish(&mut self) -> Result<(), BodyError> {
        match self.state {
            State::Done => {}
            // Some clients end the body right after the trailer lines, without the blank line.
            State::Trailers { .. } if self.buf.is_empty() => {}
            _ => return Err(malformed("the body ended inside a chunk")),
        }
        if self.decoded_len.is_some_and(|n| n != self.decoded) {
            return Err(BodyError::LengthMismatch);
        }
        if let Some((algorithm, hasher)) = self.trailer.take() {
            algorithm.verify_hasher(hasher, self.trailer_value.as_deref())?;
        }
        self.state = State::Done;
        Ok(())
    }
}

impl<S, E> Stream for AwsChunkedDecoder<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match this.step() {
                Err(e) => {
                    this.state = State::Done;
                    this.buf.clear();
                    this.inner_done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(Some(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(None) if this.inner_done => return Poll::Ready(None),
                Ok(None) => {}
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => this.buf.extend_from_slice(&bytes),
                Poll::Ready(Some(Err(e))) => {
                    this.inner_done = true;
                    this.state = State::Done;
                    this.buf.clear();
                    return Poll::Ready(Some(Err(BodyError::from_transport(e.into()))));
                }
                Poll::Ready(None) => {
                    this.inner_done = true;
                    if let Err(e) = this.finish() {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
        }
    }
}

fn malformed(why: &str) -> BodyError {
    BodyError::Malformed(why.to_owned())
}

fn line_too_long() -> BodyError {
    malformed("a chunk header or trailer line is too long")
}

fn memchr_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// The hexadecimal size before any `;extension`: 1 to 16 hex digits with spaces or tabs around
/// them (`from_str_radix` alone would also take a sign, `+5`).
fn parse_chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let field = line.split(|&b| b == b';').next().unwrap_or_default();
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let start = field.iter().position(|b| !blank(b)).unwrap_or(field.len());
    let end = field.iter().rposition(|b| !blank(b)).map_or(start, |at| at + 1);
    let hex = &field[start..end];
    if hex.is_empty() || hex.len() > 16 {
        return Err(malformed("a chunk size is missing or too long"));
    }
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(malformed("a chunk size is not hexadecimal"));
    }
    // 16 hex digits always fit in a u64.
    Ok(hex.iter().fold(0u64, |n, &d| (n << 4) | u64::from((d as char).to_digit(16).unwrap_or(0))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{stream, StreamExt};

    async fn decode(
        wire: &[u8],
        split: usize,
        len: Option<u64>,
        trailer: Option<ChecksumAlgorithm>,
    ) -> Result<Vec<u8>, BodyError> {
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            wire.chunks(split).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let mut d = AwsChunkedDecoder::new(stream::iter(pieces), len, trailer);
        let mut out = Vec::new();
        while let Some(chunk) = d.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    const UNSIGNED: &[u8] = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";

    #[tokio::test]
    async fn decodes_unsigned_trailer_bodies_at_any_split() {
        for split in [1, 2, 3, 7, 64] {
            let out = decode(UNSIGNED, split, Some(11), Some(ChecksumAlgorithm::Crc32)).await.unwrap();
            assert_eq!(out, b"hello world", "split {split}");
        }
    }

    #[tokio::test]
    async fn decodes_signed_chunks() {
        let wire = b"b;chunk-signature=abc\r\nhello world\r\n0;chunk-signature=def\r\n\r\n";
        assert_eq!(decode(wire, 5, Some(11), None).await.unwrap(), b"hello world");
    }

    #[tokio::test]
    async fn wrong_or_missing_trailer_is_rejected() {
        let bad = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        let r = decode(bad, 4, Some(5), Some(ChecksumAlgorithm::Crc32)).await;
        assert!(matches!(r, Err(BodyError::ChecksumMismatch { .. })));
        let none = b"5\r\nhello\r\n0\r\n\r\n";
        let r = decode(none, 4, Some(5), Some(ChecksumAlgorithm::Crc32)).await;
        assert!(matches!(r, Err(BodyError::MissingTrailer(_))));
    }

    #[tokio::test]
    async fn framing_errors_are_rejected() {
        for wire in [&b"zz\r\nhello\r\n0\r\n\r\n"[..], b"5\r\nhelloXX0\r\n\r\n", b"5\r\nhel", b"5\r\nhello\r\n"] {
            let r = decode(wire, 3, None, None).await;
            assert!(matches!(r, Err(BodyError::Malformed(_))), "{:?}", String::from_utf8_lossy(wire));
        }
        let r = decode(b"5\r\nhello\r\n0\r\n\r\n", 3, Some(4), None).await;
        assert!(matches!(r, Err(BodyError::LengthMismatch)));
    }

    /// What the fuzz targets found (see docs/fuzzing.md), kept as plain regression tests.
    #[tokio::test]
    async fn fuzz_findings_stay_fixed() {
        // Bytes after the final blank line were ignored (and held until the body ended).
        for split in [1, 4, 64] {
            let r = decode(b"0\r\n\r\n\0", split, None, None).await;
            assert!(matches!(r, Err(BodyError::Malformed(_))), "split {split}: {r:?}");
        }
        // A chunk header over 8 KiB was accepted when it arrived in one read (and refused when
        // it trickled in): the outcome depended on the network.
        let long = format!("5;chunk-signature={}\r\nhello\r\n0\r\n\r\n", "0".repeat(MAX_LINE));
        for split in [1, 100, long.len()] {
            let r = decode(long.as_bytes(), split, Some(5), None).await;
            assert!(matches!(r, Err(BodyError::Malformed(_))), "split {split}: {r:?}");
        }
        // A line of exactly MAX_LINE bytes is fine however it arrives, even when a read ends
        // between its '\r' and '\n'.
        let pad = "0".repeat(MAX_LINE - "5;x=".len());
        let edge = format!("5;x={pad}\r\nhello\r\n0\r\n\r\n");
        for split in [1, MAX_LINE + 1, edge.len()] {
            assert_eq!(decode(edge.as_bytes(), split, Some(5), None).await.unwrap(), b"hello", "split {split}");
        }
        // A signed size: `from_str_radix` took "+5".
        let r = decode(b"+5\r\nhello\r\n0\r\n\r\n", 64, Some(5), None).await;
        assert!(matches!(r, Err(BodyError::Malformed(_))), "{r:?}");
        assert_eq!(decode(b" 5\t;a=b\r\nhello\r\n0\r\n\r\n", 64, Some(5), None).await.unwrap(), b"hello");
    }
}
