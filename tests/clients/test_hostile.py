"""Hostile input: a seeded random mix of malformed requests (wrong or missing lengths, broken
chunked and aws-chunked framing, bad digests and hashes, odd headers and queries, unknown methods)
sent over raw sockets. Whatever arrives, the worker answers with a client error (or a 501 for an
operation it does not implement) and never with 500, and it keeps serving afterwards.
"""

from __future__ import annotations

import random
import socket
from collections import Counter

import pytest

REQUESTS_PER_SEED = 700
SEEDS = (1, 2, 3)

XML_BODY = b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>"
METHODS = [b"PUT", b"GET", b"POST", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH"]
EXTRA_HEADERS = [
    b"",
    b"Content-MD5: ",
    b"Content-MD5: not-base64",
    b"x-amz-checksum-crc32: AAAAAA==",
    b"x-amz-content-sha256: " + b"a" * 64,
    b"Range: bytes=5-1",
    b"x-amz-copy-source: /{bucket}/../x",
    b"Expect: 100-continue",
    b"x-amz-tagging: a=%zz",
    b"If-Match: *",
]


def _targets(bucket: str) -> list[bytes]:
    b = bucket.encode()
    return [
        b"/" + b + b"/k",
        b"/" + b + b"/a/b",
        b"/" + b + b"/k?uploads",
        b"/" + b + b"?delete",
        b"/" + b + b"/k?tagging",
        b"/" + b + b"/k?partNumber=1&uploadId=x",
        b"/" + b + b"/k?uploadId=" + b"0" * 32,
        b"/" + b + b"?list-type=2&max-keys=-1",
        b"/" + b + b"/%ff%fe",
        b"/" + b,
        b"/",
    ]


def _damage(rng: random.Random, framed: bytes) -> bytes:
    """Cuts the framed body short, or changes one byte of it."""
    at = rng.randrange(len(framed))
    if rng.random() < 0.5:
        return framed[:at]
    return framed[:at] + bytes([rng.randrange(256)]) + framed[at + 1:]


def _chunks(rng: random.Random, body: bytes, signature: bytes = b"") -> bytes:
    out, i = [], 0
    while i < len(body):
        n = rng.randint(1, len(body) - i)
        out.append(b"%x%s\r\n%s\r\n" % (n, signature, body[i:i + n]))
        i += n
    out.append(b"0%s\r\n\r\n" % signature)
    return b"".join(out)


def _request(rng: random.Random, bucket: str) -> bytes:
    body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    if rng.random() < 0.3:
        body = XML_BODY[:rng.randint(0, len(XML_BODY))]
    headers = [b"Host: alcove.test"]
    framing = rng.choice(["length", "wrong-length", "chunked", "aws-chunked", "none"])
    broken = rng.random() < 0.5
    if framing == "length":
        headers.append(b"Content-Length: %d" % len(body))
        payload = body
    elif framing == "wrong-length":
        headers.append(b"Content-Length: %d" % (len(body) + rng.randint(1, 10)))
        payload = body
    elif framing == "chunked":
        headers.append(b"Transfer-Encoding: chunked")
        payload = _chunks(rng, body)
        payload = _damage(rng, payload) if broken else payload
    elif framing == "aws-chunked":
        payload = _chunks(rng, body, b";chunk-signature=" + b"0" * 64)
        payload = _damage(rng, payload) if broken else payload
        headers += [b"Content-Encoding: aws-chunked", b"x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                    b"x-amz-decoded-content-length: %d" % len(body), b"Content-Length: %d" % len(payload)]
    else:
        payload = b""
    extra = rng.choice(EXTRA_HEADERS).replace(b"{bucket}", bucket.encode())
    if extra:
        headers.append(extra)
    line = rng.choice(METHODS) + b" " + rng.choice(_targets(bucket)) + b" HTTP/1.1\r\n"
    return line + b"\r\n".join(headers) + b"\r\nConnection: close\r\n\r\n" + payload


def _send(port: int, request: bytes) -> bytes:
    """Sends the request, ends the write side (a body cut short ends there), reads the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        out = b""
        try:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(65536):
                out += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass  # answered before the rest of the body was read: what arrived counts
        return out


@pytest.mark.parametrize("seed", SEEDS)
def test_hostile_requests_never_get_an_internal_error(worker, s3, bucket, seed):
    rng = random.Random(seed)
    # No request below names this key, so the bucket is never empty and the object never changes.
    s3.put_object(Bucket=bucket, Key="untouched/x", Body=b"kept")
    statuses: Counter = Counter()
    failures = []
    for _ in range(REQUESTS_PER_SEED):
        request = _request(rng, bucket)
        answer = _send(worker.s3_port, request)
        status = answer[9:12].decode(errors="replace")
        statuses[status] += 1
        if status.startswith("5") and status != "501":
            failures.append((request[:200], answer[:400]))
    assert not failures, f"{len(failures)} server errors ({statuses}); first: {failures[0]}"
    assert statuses["400"] > 0 and statuses["200"] > 0, statuses
    # Still serving, and nothing was touched that no request named.
    assert s3.get_object(Bucket=bucket, Key="untouched/x")["Body"].read() == b"kept"
    s3.put_object(Bucket=bucket, Key="after", Body=b"fine")
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"fine"


def test_sdk_sees_the_limits_as_s3_errors(s3, bucket):
    """boto3 reads the limits' answers as the S3 errors they are, and nothing is written."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="wide", Body=b"x", ContentDisposition="attachment; " + "x" * 9000)
    assert e.value.response["Error"]["Code"] == "RequestHeaderSectionTooLarge"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["Error"].get("MaxSizeAllowed") == "8192"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="wide")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    s3.put_object(Bucket=bucket, Key="k/0001", Body=b"kept")
    objects = [{"Key": f"k/{i:04}"} for i in range(1001)]
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
    assert e.value.response["Error"]["Code"] == "MalformedXML"
    assert s3.get_object(Bucket=bucket, Key="k/0001")["Body"].read() == b"kept"
