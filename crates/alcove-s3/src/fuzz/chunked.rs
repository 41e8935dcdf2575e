//! aws-chunked framing and trailers ([`crate::chunked::AwsChunkedDecoder`]), against a plain
//! reference decoder that reads the whole body at once: the streaming decoder must reach the same
//! outcome (the payload, or the same kind of error) however the network cuts the body into
//! reads, must never wait for input it already has, and must hold at most one line plus one read.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use proptest::prelude::*;

use crate::checksum::ChecksumAlgorithm;
use crate::chunked::{AwsChunkedDecoder, MAX_LINE, MAX_TRAILERS};
use crate::BodyError;

/// What became of a body, as far as a client can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Payload(Vec<u8>),
    Malformed,
    LengthMismatch,
    ChecksumMismatch,
    MissingTrailer,
}

fn kind(e: &BodyError) -> Outcome {
    match e {
        BodyError::Malformed(_) => Outcome::Malformed,
        BodyError::LengthMismatch => Outcome::LengthMismatch,
        BodyError::ChecksumMismatch { .. } => Outcome::ChecksumMismatch,
        BodyError::MissingTrailer(_) => Outcome::MissingTrailer,
        other => panic!("the decoder invented an error of another kind: {other:?}"),
    }
}

/// The grammar the decoder implements, read the simple way: `size[;ext]\r\n data \r\n` until a
/// zero size, then `name:value\r\n` trailers up to a blank line (or the end of the body), and
/// nothing after that. Lines longer than `MAX_LINE` and trailers beyond `MAX_TRAILERS` bytes are
/// refused; the decoded length and the announced trailer checksum are checked at the end.
fn reference(wire: &[u8], decoded_len: Option<u64>, trailer: Option<ChecksumAlgorithm>) -> Outcome {
    let mut pos = 0;
    let mut out = Vec::new();
    let line = |pos: &mut usize| -> Option<&[u8]> {
        let at = wire[*pos..].windows(2).position(|w| w == b"\r\n")?;
        let line = &wire[*pos..*pos + at];
        *pos += at + 2;
        Some(line)
    };
    loop {
        let Some(header) = line(&mut pos) else { return Outcome::Malformed };
        if header.len() > MAX_LINE {
            return Outcome::Malformed;
        }
        let Some(size) = reference_size(header) else { return Outcome::Malformed };
        if size == 0 {
            break;
        }
        let take = size.min((wire.len() - pos) as u64) as usize;
        if decoded_len.is_some_and(|n| (out.len() + take) as u64 > n) {
            return Outcome::LengthMismatch;
        }
        out.extend_from_slice(&wire[pos..pos + take]);
        pos += take;
        if (take as u64) < size || wire.len() - pos < 2 || &wire[pos..pos + 2] != b"\r\n" {
            return Outcome::Malformed;
        }
        pos += 2;
    }
    let mut seen = 0;
    let mut value = None;
    loop {
        if pos == wire.len() {
            break; // the body may end right after a trailer line
        }
        let Some(trailer_line) = line(&mut pos) else { return Outcome::Malformed };
        if trailer_line.len() > MAX_LINE {
            return Outcome::Malformed;
        }
        if trailer_line.is_empty() {
            if pos != wire.len() {
                return Outcome::Malformed;
            }
            break;
        }
        seen += trailer_line.len();
        if seen > MAX_TRAILERS {
            return Outcome::Malformed;
        }
        let Ok(text) = std::str::from_utf8(trailer_line) else { return Outcome::Malformed };
        let Some((name, v)) = text.split_once(':') else { return Outcome::Malformed };
        if trailer.is_some_and(|a| a.header_name().eq_ignore_ascii_case(name.trim())) {
            value = Some(v.trim().to_owned());
        }
    }
    if decoded_len.is_some_and(|n| n != out.len() as u64) {
        return Outcome::LengthMismatch;
    }
    if let Some(algorithm) = trailer {
        let Some(value) = value else { return Outcome::MissingTrailer };
        if checksum(algorithm, &out) != value {
            return Outcome::ChecksumMismatch;
        }
    }
    Outcome::Payload(out)
}

/// 1 to 16 hex digits before any `;`, with spaces or tabs around them.
fn reference_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|&b| b == b';').next()?;
    let text = std::str::from_utf8(digits).ok()?.trim_matches([' ', '\t']);
    if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

fn checksum(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
    let mut hasher = algorithm.hasher();
    hasher.update(data);
    algorithm.finish(hasher)
}

/// Runs the streaming decoder over `wire` cut into reads of the given sizes (cycled), polling
/// it by hand: every read is ready at once, so `Pending` would be a hang.
fn stream_decode(
    wire: &[u8],
    reads: &[usize],
    decoded_len: Option<u64>,
    trailer: Option<ChecksumAlgorithm>,
) -> Outcome {
    let mut pieces = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < wire.len() {
        let n = reads[i % reads.len()].clamp(1, wire.len() - at);
        pieces.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(&wire[at..at + n])));
        at += n;
        i += 1;
    }
    let largest_read = reads.iter().copied().max().unwrap_or(1);
    let mut decoder = AwsChunkedDecoder::new(futures::stream::iter(pieces), decoded_len, trailer);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut out = Vec::new();
    loop {
        let polled = Pin::new(&mut decoder).poll_next(&mut cx);
        assert!(
            decoder.buffered() <= MAX_LINE + 1 + largest_read,
            "the decoder holds {} bytes: more than a line and a read",
            decoder.buffered()
        );
        match polled {
            Poll::Pending => panic!("the decoder waits although all its input is ready"),
            Poll::Ready(None) => return Outcome::Payload(out),
            Poll::Ready(Some(Ok(data))) => out.extend_from_slice(&data),
            Poll::Ready(Some(Err(e))) => {
                let after = Pin::new(&mut decoder).poll_next(&mut cx);
                assert!(matches!(after, Poll::Ready(None)), "the stream goes on after an error: {after:?}");
                return kind(&e);
            }
        }
    }
}

/// A well-formed body: the payload cut into chunks, optionally signed chunk headers, an
/// optional trailer (right or wrong), with or without the closing blank line.
#[derive(Debug, Clone)]
struct Framed {
    payload: Vec<u8>,
    chunk_sizes: Vec<usize>,
    signed: bool,
    trailer: Option<(ChecksumAlgorithm, bool)>,
    blank_line: bool,
}

impl Framed {
    fn wire(&self) -> Vec<u8> {
        let mut wire = Vec::new();
        let signature = if self.signed { format!(";chunk-signature={}", "0".repeat(64)) } else { String::new() };
        let (mut at, mut i) = (0, 0);
        while at < self.payload.len() {
            let n = self.chunk_sizes[i % self.chunk_sizes.len()].clamp(1, self.payload.len() - at);
            wire.extend_from_slice(format!("{n:x}{signature}\r\n").as_bytes());
            wire.extend_from_slice(&self.payload[at..at + n]);
            wire.extend_from_slice(b"\r\n");
            at += n;
            i += 1;
        }
        wire.extend_from_slice(format!("0{signature}\r\n").as_bytes());
        if let Some((algorithm, right)) = self.trailer {
            let value = if right { checksum(algorithm, &self.payload) } else { checksum(algorithm, b"other") };
            wire.extend_from_slice(format!("{}:{value}\r\n", algorithm.header_name()).as_bytes());
        }
        if self.blank_line || self.trailer.is_none() {
            wire.extend_from_slice(b"\r\n");
        }
        wire
    }
}

fn algorithm() -> impl Strategy<Value = ChecksumAlgorithm> {
    proptest::sample::select(&ChecksumAlgorithm::ALL[..])
}

fn framed() -> impl Strategy<Value = Framed> {
    (
        proptest::collection::vec(any::<u8>(), 0..2048),
        proptest::collection::vec(1usize..600, 1..6),
        any::<bool>(),
        proptest::option::of((algorithm(), proptest::bool::weighted(0.8))),
        any::<bool>(),
    )
        .prop_map(|(payload, chunk_sizes, signed, trailer, blank_line)| Framed {
            payload,
            chunk_sizes,
            signed,
            trailer,
            blank_line,
        })
}

/// How the network cuts a body: read sizes, cycled.
fn reads() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        Just(vec![1]),
        proptest::collection::vec(1usize..16, 1..8),
        proptest::collection::vec(1usize..5000, 1..4),
        Just(vec![1 << 20]),
    ]
}

/// Byte strings that matter to the framing, inserted by mutations.
const MUTATION_TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"0\r\n",
    b"0\r\n\r\n",
    b"ffffffffffffffff\r\n",
    b"10000000000000000\r\n",
    b";chunk-signature=",
    b"x-amz-checksum-crc32:",
    b"x-amz-checksum-sha256:AAAA\r\n",
    b"+5\r\n",
    b" 5 \r\n",
    b"\xc3\xa9",
];

/// The pieces framing-like bytes are made of.
const FRAMING_TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"0",
    b"1",
    b"5",
    b"a",
    b"F",
    b";",
    b":",
    b"chunk-signature=",
    b"hello",
    b"x-amz-checksum-crc32",
    b"DUoRhQ==",
    b" ",
    b"\r",
    b"\n",
];

/// One change to a body on the wire.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, to: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
    Truncate { at: usize },
    Repeat { at: usize, len: usize, times: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = proptest::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            1 => proptest::sample::select(&b"\r\n;:0fF-+ x"[..]),
        ],
        0..8,
    );
    let tokens = proptest::sample::select(MUTATION_TOKENS).prop_map(<[u8]>::to_vec);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, to)| Mutation::Flip { at, to }),
        (any::<usize>(), prop_oneof![interesting, tokens]).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..32).prop_map(|(at, len)| Mutation::Remove { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), 1usize..64, 1usize..(3 * MAX_LINE / 64)).prop_map(|(at, len, times)| Mutation::Repeat {
            at,
            len,
            times
        }),
    ]
}

fn mutate(wire: &mut Vec<u8>, m: &Mutation) {
    let pick = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
    match m {
        Mutation::Flip { at, to } if !wire.is_empty() => {
            let at = at % wire.len();
            wire[at] = *to;
        }
        Mutation::Flip { .. } => {}
        Mutation::Insert { at, bytes } => {
            let at = pick(*at, wire.len());
            wire.splice(at..at, bytes.iter().copied());
        }
        Mutation::Remove { at, len } => {
            let at = pick(*at, wire.len());
            wire.drain(at..(at + len).min(wire.len()));
        }
        Mutation::Truncate { at } => wire.truncate(pick(*at, wire.len())),
        Mutation::Repeat { at, len, times } => {
            let at = pick(*at, wire.len());
            let piece: Vec<u8> = wire[at..(at + len).min(wire.len())].to_vec();
            let repeated: Vec<u8> = piece.iter().copied().cycle().take(piece.len() * times).collect();
            wire.splice(at..at, repeated);
        }
    }
}

/// Bytes that look like aws-chunked framing more often than random bytes do.
fn chunked_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 1..6),
        3 => proptest::sample::select(FRAMING_TOKENS)
        .prop_map(<[u8]>::to_vec),
    ];
    proptest::collection::vec(token, 0..64).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(super::config(2048))]

    /// decode(encode(payload)) == payload for any chunking and any network cuts; a wrong
    /// trailer checksum is `BadDigest`'s error; both agree with the reference decoder.
    #[test]
    fn round_trip(body in framed(), reads in reads()) {
        let wire = body.wire();
        let trailer = body.trailer.map(|(a, _)| a);
        let len = Some(body.payload.len() as u64);
        let want = match body.trailer {
            Some((_, false)) => Outcome::ChecksumMismatch,
            _ => Outcome::Payload(body.payload.clone()),
        };
        prop_assert_eq!(&reference(&wire, len, trailer), &want);
        prop_assert_eq!(stream_decode(&wire, &reads, len, trailer), want);
    }

    /// Damaged bodies (bytes changed, inserted, removed, repeated, the body cut short), with a
    /// right or wrong decoded length: the same outcome as the reference, at any cuts.
    #[test]
    fn mutated_bodies(
        body in framed(),
        mutations in proptest::collection::vec(mutation(), 1..4),
        length_delta in prop_oneof![3 => Just(0i64), 1 => -3i64..3],
        reads in reads(),
    ) {
        let mut wire = body.wire();
        for m in &mutations {
            mutate(&mut wire, m);
        }
        let trailer = body.trailer.map(|(a, _)| a);
        let len = (body.payload.len() as i64 + length_delta).max(0) as u64;
        let want = reference(&wire, Some(len), trailer);
        prop_assert_eq!(stream_decode(&wire, &reads, Some(len), trailer), want);
    }

    /// Arbitrary and framing-like bytes, with or without an announced length and trailer.
    #[test]
    fn arbitrary_bytes(
        wire in prop_oneof![proptest::collection::vec(any::<u8>(), 0..1024), chunked_like_bytes()],
        len in proptest::option::of(0u64..64),
        trailer in proptest::option::of(algorithm()),
        reads in reads(),
    ) {
        let want = reference(&wire, len, trailer);
        prop_assert_eq!(stream_decode(&wire, &reads, len, trailer), want);
    }
}
