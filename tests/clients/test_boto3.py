"""boto3 (plus raw HTTP) against an Alcove worker: the most thorough suite.

Covers every action and error path of the contract: buckets, objects, ranges,
checksums (Content-MD5, aws-chunked trailers), DeleteObjects, listings v1/v2/
versions incl. pagination over ~2500 keys and encoding-type=url, folder
objects, key corner cases and conflicts, path escapes (checked on the
filesystem), crash safety, mounts via the CLI, sigv4 mode and anonymous access.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import botocore.httpchecksum
import pytest
from botocore.exceptions import ClientError

from alcove_helpers import (
    bucket_dir,
    fs_key_rules,
    is_s3_mounted,
    ACCESS_KEY,
    SECRET_KEY,
    crc32b64,
    etag_of,
    key_path,
    md5b64,
    md5hex,
    now_utc,
    parse_error,
    sign_v4,
    streaming_len,
    streaming_signed_body,
    tree,
    unsigned_trailer_body,
    wait_until,
    xml_find_all,
    xml_text,
)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def err(excinfo) -> tuple[str, int]:
    e = excinfo.value
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


def expect_error(code: str, status: int, fn, *a, **kw):
    with pytest.raises(ClientError) as ei:
        fn(*a, **kw)
    got = err(ei)
    assert got == (code, status), f"expected {code}/{status}, got {got}: {ei.value.response}"
    return ei.value.response


def payload(n: int, seed: int = 0) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}-{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def list_v2_all(s3, bucket, **kw) -> tuple[list[str], list[str], list[dict]]:
    keys, prefixes, pages = [], [], []
    token = None
    while True:
        args = dict(Bucket=bucket, **kw)
        if token:
            args["ContinuationToken"] = token
        r = s3.list_objects_v2(**args)
        pages.append(r)
        keys += [o["Key"] for o in r.get("Contents", [])]
        prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        if not r["IsTruncated"]:
            assert "NextContinuationToken" not in r
            break
        token = r["NextContinuationToken"]
        assert token
        assert len(pages) < 1000, "pagination does not terminate"
    return keys, prefixes, pages


def list_v1_all(s3, bucket, **kw):
    keys, prefixes, pages = [], [], []
    marker = None
    while True:
        args = dict(Bucket=bucket, **kw)
        if marker is not None:
            args["Marker"] = marker
        r = s3.list_objects(**args)
        pages.append(r)
        page_keys = [o["Key"] for o in r.get("Contents", [])]
        page_prefixes = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        keys += page_keys
        prefixes += page_prefixes
        if not r["IsTruncated"]:
            break
        if "Delimiter" in kw:
            assert r.get("NextMarker"), "NextMarker must be returned when truncated with a delimiter"
            marker = r["NextMarker"]
        else:
            marker = r.get("NextMarker") or page_keys[-1]
            assert marker == page_keys[-1]
        assert len(pages) < 1000, "pagination does not terminate"
    return keys, prefixes, pages


def list_versions_all(s3, bucket, **kw):
    versions, prefixes, pages = [], [], []
    km = vm = None
    while True:
        args = dict(Bucket=bucket, **kw)
        if km is not None:
            args["KeyMarker"] = km
            if vm:
                args["VersionIdMarker"] = vm
        r = s3.list_object_versions(**args)
        pages.append(r)
        versions += r.get("Versions", [])
        prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        assert not r.get("DeleteMarkers")
        if not r["IsTruncated"]:
            break
        km = r["NextKeyMarker"]
        vm = r.get("NextVersionIdMarker")
        assert len(pages) < 1000, "pagination does not terminate"
    return versions, prefixes, pages


def utf8_sorted(keys):
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def listed(keys):
    """What a listing shows: the objects written, nothing more (AWS; no implicit folders)."""
    return utf8_sorted(set(keys))


def assert_no_dupes(seq):
    seen = set()
    for x in seq:
        assert x not in seen, f"{x!r} returned twice"
        seen.add(x)


def put_many(s3, bucket, keys, body=lambda k: k.encode()):
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=body(k)), keys))


# --------------------------------------------------------------------------
# buckets
# --------------------------------------------------------------------------


def test_list_buckets_shows_created_bucket_not_sys(s3, bucket, worker):
    r = s3.list_buckets()
    names = [b["Name"] for b in r["Buckets"]]
    assert bucket in names
    assert ".alcove.sys" not in names
    assert (worker.root / ".alcove.sys").is_dir(), "worker state dir should exist"
    b = next(b for b in r["Buckets"] if b["Name"] == bucket)
    assert abs((b["CreationDate"] - now_utc()).total_seconds()) < 120


@pytest.mark.local_only("CreateBucket semantics of a root folder")
def test_create_bucket_makes_folder_and_existing_conflicts(s3, bucket, worker):
    assert (bucket_dir(worker, bucket)).is_dir()
    expect_error("BucketAlreadyOwnedByYou", 409, s3.create_bucket, Bucket=bucket)


def test_hand_made_folder_is_a_bucket(s3, worker):
    name = f"handmade-{uuid.uuid4().hex[:10]}"
    (worker.root / name / "sub").mkdir(parents=True)
    (worker.root / name / "sub" / "f.txt").write_bytes(b"made by hand")
    try:
        assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        s3.head_bucket(Bucket=name)
        r = s3.get_object(Bucket=name, Key="sub/f.txt")
        assert r["Body"].read() == b"made by hand"
        assert r["ETag"] == etag_of(b"made by hand")
        keys, _, _ = list_v2_all(s3, name)
        assert keys == ["sub/f.txt"]
    finally:
        shutil.rmtree(worker.root / name, ignore_errors=True)


def test_head_bucket(s3, bucket, worker):
    r = s3.head_bucket(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as ei:
        s3.head_bucket(Bucket=f"missing-{uuid.uuid4().hex[:8]}")
    assert err(ei) == ("404", 404)
    raw = worker.raw("HEAD", f"/missing-{uuid.uuid4().hex[:8]}")
    assert raw.status == 404 and raw.body == b""
    assert raw.headers.get("x-amz-request-id")


def test_delete_bucket(s3, worker):
    name = f"del-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="x/y", Body=b"1")
    expect_error("BucketNotEmpty", 409, s3.delete_bucket, Bucket=name)
    assert (worker.root / name / "x" / "y").read_bytes() == b"1"
    s3.delete_object(Bucket=name, Key="x/y")
    r = s3.delete_bucket(Bucket=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert not (worker.root / name).exists()
    expect_error("NoSuchBucket", 404, s3.delete_bucket, Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_delete_bucket_with_explicit_folder_object_is_not_empty(s3, worker):
    name = f"delf-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="keep/", Body=b"")
    expect_error("BucketNotEmpty", 409, s3.delete_bucket, Bucket=name)
    s3.delete_object(Bucket=name, Key="keep/")
    s3.delete_bucket(Bucket=name)
    assert not (worker.root / name).exists()


def test_reserved_sys_bucket_is_not_accessible(s3, worker):
    sysdir = worker.root / ".alcove.sys"
    before = tree(worker.root, skip=())
    r = worker.raw("PUT", "/.alcove.sys")
    assert r.status == 400, r
    assert r.code in ("InvalidBucketName", "InvalidArgument"), r
    r = worker.raw("GET", "/.alcove.sys?list-type=2")
    assert r.status in (400, 404), r
    assert b"<Contents>" not in r.body
    r = worker.raw("PUT", "/.alcove.sys/evil", body=b"EVIL")
    assert r.status in (400, 404), r
    r = worker.raw("DELETE", "/.alcove.sys")
    assert r.status in (400, 404), r
    assert sysdir.is_dir()
    after = tree(worker.root, skip=())
    assert {k: v for k, v in after.items() if v == b"EVIL"} == {}
    assert ".alcove.sys" in before


def test_get_bucket_versioning_has_no_status(s3, bucket):
    r = s3.get_bucket_versioning(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "Status" not in r
    assert "MFADelete" not in r


def test_no_such_bucket_everywhere(s3):
    b = f"nobucket-{uuid.uuid4().hex[:8]}"
    expect_error("NoSuchBucket", 404, s3.get_object, Bucket=b, Key="k")
    expect_error("NoSuchBucket", 404, s3.put_object, Bucket=b, Key="k", Body=b"x")
    expect_error("NoSuchBucket", 404, s3.list_objects_v2, Bucket=b)
    expect_error("NoSuchBucket", 404, s3.list_objects, Bucket=b)
    expect_error("NoSuchBucket", 404, s3.list_object_versions, Bucket=b)
    expect_error("NoSuchBucket", 404, s3.get_bucket_versioning, Bucket=b)
    expect_error("NoSuchBucket", 404, s3.delete_object, Bucket=b, Key="k")
    expect_error("NoSuchBucket", 404, s3.delete_objects, Bucket=b, Delete={"Objects": [{"Key": "k"}]})


# --------------------------------------------------------------------------
# objects
# --------------------------------------------------------------------------


def test_put_get_head_roundtrip(s3, bucket, worker):
    data = payload(300_000, seed=1)
    r = s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=data, ContentType="application/x-alcove-test")
    assert r["ETag"] == etag_of(data)
    g = s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert g["Body"].read() == data
    assert g["ContentLength"] == len(data)
    assert g["ContentType"] == "application/x-alcove-test"
    assert g["ETag"] == etag_of(data)
    h = s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert h["ContentLength"] == len(data)
    assert h["ContentType"] == "application/x-alcove-test"
    assert h["ETag"] == etag_of(data)
    assert h["LastModified"] == g["LastModified"]
    assert abs((h["LastModified"] - now_utc()).total_seconds()) < 30
    lst = s3.list_objects_v2(Bucket=bucket, Prefix="dir/obj")["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in lst] == [("dir/obj.bin", len(data), etag_of(data))]
    assert abs((lst[0]["LastModified"] - h["LastModified"]).total_seconds()) <= 1
    # stored as a plain file under the bucket folder
    assert (bucket_dir(worker, bucket) / "dir" / "obj.bin").read_bytes() == data


def test_etag_stable_and_changes_with_content(s3, bucket):
    a, b = b"first content", b"second content!"
    e1 = s3.put_object(Bucket=bucket, Key="k", Body=a)["ETag"]
    assert e1 == etag_of(a)
    for _ in range(3):
        assert s3.head_object(Bucket=bucket, Key="k")["ETag"] == e1
        assert s3.get_object(Bucket=bucket, Key="k")["ETag"] == e1
        assert s3.list_objects(Bucket=bucket)["Contents"][0]["ETag"] == e1
        assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["ETag"] == e1
        assert s3.list_object_versions(Bucket=bucket)["Versions"][0]["ETag"] == e1
    assert s3.put_object(Bucket=bucket, Key="k", Body=a)["ETag"] == e1
    e2 = s3.put_object(Bucket=bucket, Key="k", Body=b)["ETag"]
    assert e2 == etag_of(b) != e1
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b
    assert s3.head_object(Bucket=bucket, Key="k")["ETag"] == e2


def test_content_type_is_stored_per_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a.json", Body=b"{}", ContentType="application/json")
    s3.put_object(Bucket=bucket, Key="b.txt", Body=b"hi", ContentType="text/plain; charset=utf-8")
    assert s3.head_object(Bucket=bucket, Key="a.json")["ContentType"] == "application/json"
    assert s3.get_object(Bucket=bucket, Key="b.txt")["ContentType"] == "text/plain; charset=utf-8"
    s3.put_object(Bucket=bucket, Key="a.json", Body=b"[]", ContentType="application/x-other")
    assert s3.head_object(Bucket=bucket, Key="a.json")["ContentType"] == "application/x-other"


def test_empty_object(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert r["ETag"] == etag_of(b"")
    g = s3.get_object(Bucket=bucket, Key="empty")
    assert g["Body"].read() == b"" and g["ContentLength"] == 0


def test_large_single_put(s3, bucket):
    data = payload(6 * 1024 * 1024 + 123, seed=7)
    assert s3.put_object(Bucket=bucket, Key="big", Body=data)["ETag"] == etag_of(data)
    got = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
    assert md5hex(got) == md5hex(data)


def test_get_missing_key_error_document(s3, bucket, worker):
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="nope")
    r = worker.raw("GET", f"/{bucket}/nope")
    assert r.status == 404
    e = r.error()
    assert e["_tag"] == "Error"
    assert e["Code"] == "NoSuchKey"
    for field in ("Message", "Resource", "RequestId"):
        assert field in e, f"error XML lacks {field}: {r.body!r}"
    assert r.headers.get("x-amz-request-id")
    assert "xml" in r.headers.get("content-type", "")


def test_head_missing_is_404_with_empty_body(s3, bucket, worker):
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="nope")
    assert err(ei) == ("404", 404)
    r = worker.raw("HEAD", f"/{bucket}/nope")
    assert r.status == 404 and r.body == b""
    assert r.headers.get("x-amz-request-id")


def test_request_id_on_every_response(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    for method, target in [("GET", f"/{bucket}/k"), ("HEAD", f"/{bucket}/k"), ("GET", f"/{bucket}?list-type=2"),
                           ("GET", "/"), ("GET", f"/{bucket}/missing"), ("GET", "/nosuchbucket-xyz/k"),
                           ("GET", f"/{bucket}/a//b"), ("HEAD", f"/{bucket}")]:
        r = worker.raw(method, target)
        assert r.headers.get("x-amz-request-id"), f"{method} {target} -> {r}"


def test_delete_object_idempotent(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="d/x", Body=b"1")
    r = s3.delete_object(Bucket=bucket, Key="d/x")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert not (bucket_dir(worker, bucket) / "d" / "x").exists()
    for _ in range(2):
        r = s3.delete_object(Bucket=bucket, Key="d/x")
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    r = s3.delete_object(Bucket=bucket, Key="never/existed")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="d/x")


# --------------------------------------------------------------------------
# ranges
# --------------------------------------------------------------------------

DATA100 = bytes(range(100))


@pytest.mark.parametrize("rng,start,end", [
    ("bytes=0-9", 0, 9),
    ("bytes=10-", 10, 99),
    ("bytes=-5", 95, 99),
    ("bytes=5-5", 5, 5),
    ("bytes=0-0", 0, 0),
    ("bytes=99-", 99, 99),
    ("bytes=90-200", 90, 99),
    ("bytes=-200", 0, 99),
    ("bytes=0-99", 0, 99),
])
def test_range_get(s3, bucket, rng, start, end):
    s3.put_object(Bucket=bucket, Key="r", Body=DATA100)
    g = s3.get_object(Bucket=bucket, Key="r", Range=rng)
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert g["Body"].read() == DATA100[start:end + 1]
    assert g["ContentLength"] == end - start + 1
    assert g["ContentRange"] == f"bytes {start}-{end}/100"
    assert g["ETag"] == etag_of(DATA100)


@pytest.mark.parametrize("rng", ["bytes=100-", "bytes=150-200", "bytes=100-100"])
def test_range_unsatisfiable(s3, bucket, worker, rng):
    s3.put_object(Bucket=bucket, Key="r", Body=DATA100)
    expect_error("InvalidRange", 416, s3.get_object, Bucket=bucket, Key="r", Range=rng)
    r = worker.raw("GET", f"/{bucket}/r", {"Range": rng})
    assert r.status == 416 and r.code == "InvalidRange"


def test_invalid_range_reports_actual_size(s3, bucket, worker):
    """AWS puts RangeRequested and ActualObjectSize into the InvalidRange
    error; CRT-based clients rely on ActualObjectSize=0 to read empty objects."""
    s3.put_object(Bucket=bucket, Key="r", Body=DATA100)
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    r = worker.raw("GET", f"/{bucket}/r", {"Range": "bytes=100-"})
    assert r.status == 416 and r.error().get("ActualObjectSize") == "100", r
    r = worker.raw("GET", f"/{bucket}/empty", {"Range": "bytes=0-8388607"})
    assert r.status == 416 and r.code == "InvalidRange", r
    assert r.error().get("ActualObjectSize") == "0", r
    assert r.error().get("RangeRequested") == "bytes=0-8388607", r


def test_range_raw_headers(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="r", Body=DATA100)
    r = worker.raw("GET", f"/{bucket}/r", {"Range": "bytes=-10"})
    assert r.status == 206
    assert r.body == DATA100[90:]
    assert r.headers["content-range"] == "bytes 90-99/100"
    assert r.headers["content-length"] == "10"
    assert r.headers.get("accept-ranges") == "bytes"
    full = worker.raw("GET", f"/{bucket}/r")
    assert full.status == 200 and full.body == DATA100
    assert full.headers["etag"] == etag_of(DATA100)


# --------------------------------------------------------------------------
# checksums
# --------------------------------------------------------------------------


def test_content_md5_ok(s3, bucket):
    data = b"checked body"
    r = s3.put_object(Bucket=bucket, Key="ok", Body=data, ContentMD5=md5b64(data))
    assert r["ETag"] == etag_of(data)
    assert s3.get_object(Bucket=bucket, Key="ok")["Body"].read() == data


def test_content_md5_wrong_is_bad_digest(s3, bucket, worker):
    expect_error("BadDigest", 400, s3.put_object, Bucket=bucket, Key="bad", Body=b"real body",
                 ContentMD5=md5b64(b"other body"))
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="bad")
    assert tree(bucket_dir(worker, bucket)) == {}
    # the raw way, and an overwrite attempt must keep the old content
    s3.put_object(Bucket=bucket, Key="keep", Body=b"old")
    r = worker.raw("PUT", f"/{bucket}/keep", {"Content-MD5": md5b64(b"xxx")}, b"new")
    assert r.status == 400 and r.code == "BadDigest", r
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"old"


@pytest.mark.parametrize("md5", ["not base64!!", "AAAA", "c2hvcnQ="])
def test_content_md5_malformed_is_invalid_digest(s3, bucket, worker, md5):
    r = worker.raw("PUT", f"/{bucket}/m", {"Content-MD5": md5}, b"body")
    assert r.status == 400 and r.code == "InvalidDigest", r
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="m")
    assert tree(bucket_dir(worker, bucket)) == {}


def test_content_md5_malformed_via_boto3(s3, bucket):
    expect_error("InvalidDigest", 400, s3.put_object, Bucket=bucket, Key="m", Body=b"x", ContentMD5="zzz")


def test_header_checksum_mismatch_rejected(s3, bucket, worker):
    r = worker.raw("PUT", f"/{bucket}/c", {"x-amz-checksum-crc32": crc32b64(b"other")}, b"payload")
    assert r.status == 400, r
    assert r.code in ("BadDigest", "XAmzContentChecksumMismatch", "InvalidRequest"), r
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="c")
    ok = worker.raw("PUT", f"/{bucket}/c", {"x-amz-checksum-crc32": crc32b64(b"payload")}, b"payload")
    assert ok.status == 200, ok
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"payload"


def test_boto3_default_checksum_header_put(s3, bucket):
    seen = {}

    def grab(request, **_):
        seen.update({k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})

    s3.meta.events.register("before-send.s3.PutObject", grab)
    try:
        data = payload(50_000, seed=3)
        s3.put_object(Bucket=bucket, Key="h", Body=data)
    finally:
        s3.meta.events.unregister("before-send.s3.PutObject", grab)
    assert seen.get("x-amz-checksum-crc32") == crc32b64(data)
    assert s3.get_object(Bucket=bucket, Key="h")["Body"].read() == data


def _force_trailer(monkeypatch):
    """boto3 only uses aws-chunked CRC32 trailers over https; pretend the
    endpoint is https while resolving the checksum location (the request
    itself still goes to http://127.0.0.1)."""
    real = botocore.httpchecksum.urlparse

    def fake(url, *a, **kw):
        u = real(url, *a, **kw)
        return u._replace(scheme="https") if u.scheme == "http" else u

    monkeypatch.setattr(botocore.httpchecksum, "urlparse", fake)


@pytest.mark.parametrize("size", [0, 1, 70_000, 1_100_000])
def test_aws_chunked_crc32_trailer_upload(s3, bucket, worker, monkeypatch, size):
    _force_trailer(monkeypatch)
    client = worker.client(request_checksum_calculation="when_supported")
    seen = {}

    def grab(request, **_):
        seen.update({k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})

    client.meta.events.register("before-send.s3.PutObject", grab)
    data = payload(size, seed=size)
    r = client.put_object(Bucket=bucket, Key=f"chunked-{size}", Body=data)
    assert seen.get("content-encoding") == "aws-chunked"
    assert seen.get("x-amz-trailer") == "x-amz-checksum-crc32"
    assert seen.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert r["ETag"] == etag_of(data)
    got = s3.get_object(Bucket=bucket, Key=f"chunked-{size}")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert (bucket_dir(worker, bucket) / f"chunked-{size}").read_bytes() == data


def _trailer_put(worker, bucket, key, data, checksum, transfer_chunked=False):
    body = unsigned_trailer_body(data, "x-amz-checksum-crc32", checksum, chunk_size=4096)
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-trailer": "x-amz-checksum-crc32",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-sdk-checksum-algorithm": "CRC32",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDALCOVETEST/20250101/us-east-1/s3/aws4_request, "
                         "SignedHeaders=host, Signature=" + "0" * 64,
    }
    conn = http.client.HTTPConnection("127.0.0.1", worker.s3_port, timeout=30)
    try:
        if transfer_chunked:
            headers["Transfer-Encoding"] = "chunked"
            conn.request("PUT", key_path(bucket, key), body=iter([body[i:i + 1000] for i in range(0, len(body), 1000)]),
                         headers=headers, encode_chunked=True)
        else:
            conn.request("PUT", key_path(bucket, key), body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("transfer_chunked", [False, True])
def test_raw_trailer_checksum_good_and_wrong(s3, bucket, worker, transfer_chunked):
    data = payload(20_000, seed=11)
    status, body = _trailer_put(worker, bucket, "good", data, crc32b64(data), transfer_chunked)
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == data
    before = tree(bucket_dir(worker, bucket))
    status, body = _trailer_put(worker, bucket, "wrong", data, crc32b64(data + b"x"), transfer_chunked)
    assert status == 400, body
    assert parse_error(body).get("Code") in ("BadDigest", "XAmzContentChecksumMismatch"), body
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="wrong")
    assert tree(bucket_dir(worker, bucket)) == before, "a rejected upload left something behind"
    # overwrite with a wrong trailer keeps the old object
    status, body = _trailer_put(worker, bucket, "good", b"replacement", crc32b64(b"nope"), transfer_chunked)
    assert status == 400
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == data


# --------------------------------------------------------------------------
# DeleteObjects
# --------------------------------------------------------------------------


def test_delete_objects_verbose(s3, bucket, worker):
    for k in ("a", "b/c", "b/d/e"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in ("a", "b/c", "b/d/e", "missing")]})
    assert sorted(d["Key"] for d in r.get("Deleted", [])) == ["a", "b/c", "b/d/e", "missing"]
    assert not r.get("Errors")
    assert list_v2_all(s3, bucket)[0] == []
    assert tree(bucket_dir(worker, bucket)) == {}


def test_delete_objects_quiet(s3, bucket):
    put_many(s3, bucket, [f"q/{i}" for i in range(20)])
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"q/{i}"} for i in range(20)], "Quiet": True})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert not r.get("Deleted")
    assert not r.get("Errors")
    assert list_v2_all(s3, bucket)[0] == []


@pytest.mark.parametrize("quiet", [False, True])
def test_delete_objects_per_key_errors(s3, bucket, worker, quiet):
    s3.put_object(Bucket=bucket, Key="ok1", Body=b"1")
    s3.put_object(Bucket=bucket, Key="ok2", Body=b"2")
    bad = ["../escape", "a//b", ".alcove.sys/x"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in ["ok1", *bad, "ok2"]], "Quiet": quiet})
    errors = {e["Key"]: e["Code"] for e in r.get("Errors", [])}
    assert set(errors) == set(bad), r
    assert all(c == "InvalidArgument" for c in errors.values()), errors
    deleted = sorted(d["Key"] for d in r.get("Deleted", []))
    assert deleted == ([] if quiet else ["ok1", "ok2"])
    assert list_v2_all(s3, bucket)[0] == []
    assert (worker.root / ".alcove.sys").is_dir()


DELETE_XML = (b'<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
              b'<Object><Key>x1</Key></Object><Object><Key>x2</Key></Object></Delete>')


def test_delete_objects_checksum_headers(s3, bucket, worker):
    def seed():
        s3.put_object(Bucket=bucket, Key="x1", Body=b"1")
        s3.put_object(Bucket=bucket, Key="x2", Body=b"2")

    seed()
    r = worker.raw("POST", f"/{bucket}?delete", {"Content-Type": "application/xml"}, DELETE_XML)
    assert r.status == 400 and r.code == "MissingContentMD5", r
    assert s3.head_object(Bucket=bucket, Key="x1")["ContentLength"] == 1
    r = worker.raw("POST", f"/{bucket}?delete", {"Content-MD5": md5b64(b"other")}, DELETE_XML)
    assert r.status == 400 and r.code == "BadDigest", r
    assert s3.head_object(Bucket=bucket, Key="x2")["ContentLength"] == 1
    for headers in ({"Content-MD5": md5b64(DELETE_XML)},
                    {"x-amz-checksum-crc32": crc32b64(DELETE_XML)},
                    {"x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(DELETE_XML).digest()).decode()}):
        seed()
        r = worker.raw("POST", f"/{bucket}?delete", headers, DELETE_XML)
        assert r.status == 200, (headers, r)
        root = ET.fromstring(r.body)
        assert sorted(x.text for x in xml_find_all(root, "Deleted/Key")) == ["x1", "x2"]
        assert list_v2_all(s3, bucket)[0] == []


# --------------------------------------------------------------------------
# listings (small)
# --------------------------------------------------------------------------

SMALL_KEYS = ["a/b/c", "a/d", "e", "f/", "g h", "plus+key", "\u00fc/x", "amp&x", "pct%20x", "zz", "Z-upper",
              "lt<gt>", "a-dash", "a0"]


@pytest.fixture
def small(s3, bucket):
    put_many(s3, bucket, SMALL_KEYS, body=lambda k: b"" if k.endswith("/") else k.encode())
    return bucket


def test_list_v2_recursive_order_and_meta(s3, small):
    keys, prefixes, pages = list_v2_all(s3, small)
    assert keys == listed(SMALL_KEYS)
    assert prefixes == []
    assert len(pages) == 1 and pages[0]["KeyCount"] == len(keys)
    for o in pages[0]["Contents"]:
        if o["Key"].endswith("/"):
            assert o["Size"] == 0
        else:
            assert o["Size"] == len(o["Key"].encode())
            assert o["ETag"] == etag_of(o["Key"].encode())


def test_list_v2_delimiter(s3, small):
    keys, prefixes, pages = list_v2_all(s3, small, Delimiter="/")
    top = [k for k in SMALL_KEYS if "/" not in k]
    assert keys == utf8_sorted(top)
    assert prefixes == utf8_sorted(["a/", "f/", "\u00fc/"])
    assert pages[0]["KeyCount"] == len(keys) + len(prefixes)
    assert pages[0]["Delimiter"] == "/"
    keys, prefixes, _ = list_v2_all(s3, small, Delimiter="/", Prefix="a/")
    assert keys == ["a/d"], "no invented a/ folder object"
    assert prefixes == ["a/b/"]
    keys, prefixes, _ = list_v2_all(s3, small, Delimiter="/", Prefix="a/b/")
    assert keys == ["a/b/c"] and prefixes == []
    keys, prefixes, _ = list_v2_all(s3, small, Prefix="a")
    assert keys == utf8_sorted(["a/b/c", "a/d", "a-dash", "a0", "amp&x"])
    keys, prefixes, _ = list_v2_all(s3, small, Prefix="nothing-here")
    assert keys == [] and prefixes == []


def test_list_v2_max_keys_counts_prefixes(s3, small):
    expected_keys = utf8_sorted([k for k in SMALL_KEYS if "/" not in k])
    expected_prefixes = utf8_sorted(["a/", "f/", "\u00fc/"])
    for mk in (1, 2, 3, 5):
        keys, prefixes, pages = list_v2_all(s3, small, Delimiter="/", MaxKeys=mk)
        assert keys == expected_keys and prefixes == expected_prefixes, mk
        for p in pages:
            n = len(p.get("Contents", [])) + len(p.get("CommonPrefixes", []))
            assert p["KeyCount"] == n and p["MaxKeys"] == mk
            if p["IsTruncated"]:
                assert n == mk
            else:
                assert n <= mk


def test_list_v2_start_after_and_fetch_owner(s3, small):
    full = listed(SMALL_KEYS)
    keys, _, _ = list_v2_all(s3, small, StartAfter="e")
    assert keys == [k for k in full if k.encode() > b"e"]
    keys, _, pages = list_v2_all(s3, small, StartAfter="a/b/c", MaxKeys=3)
    assert keys == [k for k in full if k.encode() > b"a/b/c"]
    assert pages[0]["StartAfter"] == "a/b/c"
    r = s3.list_objects_v2(Bucket=small, FetchOwner=True)
    assert r["Contents"] and all("Owner" in o and o["Owner"].get("ID") for o in r["Contents"])


def test_list_v1(s3, small):
    keys, prefixes, pages = list_v1_all(s3, small)
    assert keys == listed(SMALL_KEYS) and prefixes == []
    keys, prefixes, pages = list_v1_all(s3, small, Delimiter="/", MaxKeys=2)
    assert keys == utf8_sorted([k for k in SMALL_KEYS if "/" not in k])
    assert prefixes == utf8_sorted(["a/", "f/", "\u00fc/"])
    assert_no_dupes(prefixes)
    keys, prefixes, _ = list_v1_all(s3, small, Delimiter="/", Prefix="a/")
    assert keys == ["a/d"] and prefixes == ["a/b/"]
    r = s3.list_objects(Bucket=small, Marker="e", MaxKeys=3)
    assert [o["Key"] for o in r["Contents"]] == [k for k in listed(SMALL_KEYS) if k.encode() > b"e"][:3]
    assert r["IsTruncated"] and r["Marker"] == "e" and r["MaxKeys"] == 3


def test_list_versions(s3, small):
    versions, prefixes, pages = list_versions_all(s3, small)
    assert [v["Key"] for v in versions] == listed(SMALL_KEYS)
    assert all(v["VersionId"] == "null" and v["IsLatest"] is True for v in versions)
    by_key = {v["Key"]: v for v in versions}
    assert by_key["e"]["ETag"] == etag_of(b"e") and by_key["e"]["Size"] == 1
    versions, prefixes, _ = list_versions_all(s3, small, Delimiter="/", MaxKeys=2)
    assert [v["Key"] for v in versions] == utf8_sorted([k for k in SMALL_KEYS if "/" not in k])
    assert prefixes == utf8_sorted(["a/", "f/", "\u00fc/"])
    versions, _, _ = list_versions_all(s3, small, Prefix="a/")
    assert [v["Key"] for v in versions] == ["a/b/c", "a/d"]


def test_boto3_paginators(s3, small):
    full = listed(SMALL_KEYS)
    for op, item in (("list_objects_v2", "Contents"), ("list_objects", "Contents"),
                     ("list_object_versions", "Versions")):
        keys = []
        for page in s3.get_paginator(op).paginate(Bucket=small, PaginationConfig={"PageSize": 4}):
            keys += [o["Key"] for o in page.get(item, [])]
        assert keys == full, op


# --------------------------------------------------------------------------
# pagination over ~2500 keys
# --------------------------------------------------------------------------

BIG = [f"big/{i:04d}" for i in range(2000)] + [f"dirs/d{j:03d}/f" for j in range(200)] + \
      [f"t{k:03d}" for k in range(100)]


@pytest.fixture(scope="module")
def big_bucket(worker, s3, new_bucket):
    """~2500 objects, written straight into the bucket's folder as files (fast; in S3 mode the
    folder of the remote Alcove worker)."""
    name = new_bucket("bigpage")
    base = bucket_dir(worker, name)
    for k in BIG:
        p = base / k
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(k.encode())
    yield name
    shutil.rmtree(base, ignore_errors=True)
    new_bucket.destroy(name)


def test_big_list_v2(s3, big_bucket):
    expected = listed(BIG)
    assert len(expected) == 2300
    keys, prefixes, pages = list_v2_all(s3, big_bucket)
    assert len(pages) == 3
    assert keys == expected
    for p in pages:
        assert p["KeyCount"] == len(p.get("Contents", []))
    assert [p["KeyCount"] for p in pages] == [1000, 1000, 300]
    keys, _, pages = list_v2_all(s3, big_bucket, MaxKeys=333)
    assert keys == expected
    assert len(pages) == 7
    h = s3.head_object(Bucket=big_bucket, Key="big/1234")
    assert h["ETag"] == etag_of(b"big/1234") and h["ContentLength"] == 8


def test_big_list_v2_delimiter_prefix(s3, big_bucket):
    keys, prefixes, pages = list_v2_all(s3, big_bucket, Prefix="dirs/", Delimiter="/", MaxKeys=17)
    assert keys == []
    assert prefixes == [f"dirs/d{j:03d}/" for j in range(200)]
    assert_no_dupes(prefixes)
    for p in pages[:-1]:
        assert p["KeyCount"] == 17 == len(p.get("Contents", [])) + len(p.get("CommonPrefixes", []))
    keys, prefixes, pages = list_v2_all(s3, big_bucket, Delimiter="/", MaxKeys=7)
    assert keys == [f"t{k:03d}" for k in range(100)]
    assert prefixes == ["big/", "dirs/"]
    keys, prefixes, pages = list_v2_all(s3, big_bucket, Delimiter="/")
    assert len(pages) == 1 and len(keys) == 100 and prefixes == ["big/", "dirs/"]


def test_big_list_v1(s3, big_bucket):
    expected = listed(BIG)
    keys, _, pages = list_v1_all(s3, big_bucket)
    assert keys == expected and len(pages) == 3
    keys, prefixes, pages = list_v1_all(s3, big_bucket, Prefix="dirs/", Delimiter="/", MaxKeys=50)
    assert keys == [] and prefixes == [f"dirs/d{j:03d}/" for j in range(200)]
    assert_no_dupes(prefixes)
    keys, _, _ = list_v1_all(s3, big_bucket, Prefix="big/", MaxKeys=700)
    assert keys == [f"big/{i:04d}" for i in range(2000)]


def test_big_list_versions(s3, big_bucket):
    versions, _, pages = list_versions_all(s3, big_bucket)
    assert [v["Key"] for v in versions] == listed(BIG)
    assert len(pages) == 3
    assert all(v["VersionId"] == "null" and v["IsLatest"] for v in versions)
    versions, prefixes, pages = list_versions_all(s3, big_bucket, Prefix="dirs/", Delimiter="/", MaxKeys=33)
    assert [v["Key"] for v in versions] == []
    assert prefixes == [f"dirs/d{j:03d}/" for j in range(200)]


def test_big_start_after(s3, big_bucket):
    keys, _, _ = list_v2_all(s3, big_bucket, StartAfter="big/1499")
    expected = listed(BIG)
    assert keys == expected[expected.index("big/1499") + 1:]


# --------------------------------------------------------------------------
# encoding-type=url
# --------------------------------------------------------------------------

ENC_KEYS = ["plus+key", "sp ace", "amp&x", "\u00fcn\u00ef/x", "pct%41x", "lt<gt>", "q?m#h", "t\u00e9/s p/+"]


def _decoded(s):
    return urllib.parse.unquote_plus(s)


def _is_encoded_form(s):
    # '+' may stand for a space (form encoding); a literal '+' must be %2B,
    # which the unquote_plus() round trip checks.
    return all(c not in s for c in " &<>?#") and s.isascii()


def test_encoding_type_url_raw_v2(s3, bucket, worker):
    put_many(s3, bucket, ENC_KEYS)
    r = worker.raw("GET", f"/{bucket}?list-type=2&encoding-type=url")
    assert r.status == 200, r
    root = ET.fromstring(r.body)
    assert xml_text(root, "EncodingType") == "url"
    raw_keys = [k.text for k in xml_find_all(root, "Contents/Key")]
    assert all(_is_encoded_form(k) for k in raw_keys), raw_keys
    assert [_decoded(k) for k in raw_keys] == listed(ENC_KEYS)
    assert "plus%2Bkey" in raw_keys
    # Prefix, Delimiter, StartAfter and CommonPrefixes are encoded too
    q = urllib.parse.urlencode({"list-type": "2", "encoding-type": "url", "prefix": "t\u00e9/",
                                "delimiter": " ", "start-after": "t\u00e9/"}, quote_via=urllib.parse.quote)
    r = worker.raw("GET", f"/{bucket}?{q}")
    assert r.status == 200, r
    root = ET.fromstring(r.body)
    for field, want in (("Prefix", "t\u00e9/"), ("Delimiter", " "), ("StartAfter", "t\u00e9/")):
        got = xml_text(root, field)
        assert got is not None and _is_encoded_form(got) and _decoded(got) == want, (field, got)
    cps = [p.text for p in xml_find_all(root, "CommonPrefixes/Prefix")]
    assert [_decoded(p) for p in cps] == ["t\u00e9/s "]
    assert all(_is_encoded_form(p) for p in cps)
    keys = [k.text for k in xml_find_all(root, "Contents/Key")]
    assert [_decoded(k) for k in keys] == []  # "té/" is <= start-after


def test_encoding_type_url_raw_v1_and_versions(s3, bucket, worker):
    put_many(s3, bucket, ENC_KEYS)
    for query in ("encoding-type=url", "versions&encoding-type=url"):
        r = worker.raw("GET", f"/{bucket}?{query}&delimiter=%2F")
        assert r.status == 200, r
        root = ET.fromstring(r.body)
        tag = "Version" if "versions" in query else "Contents"
        raw_keys = [k.text for k in xml_find_all(root, f"{tag}/Key")]
        assert all(_is_encoded_form(k) for k in raw_keys), raw_keys
        assert sorted(_decoded(k) for k in raw_keys) == utf8_sorted([k for k in ENC_KEYS if "/" not in k])
        cps = [p.text for p in xml_find_all(root, "CommonPrefixes/Prefix")]
        assert all(_is_encoded_form(p) for p in cps)
        assert [_decoded(p) for p in cps] == utf8_sorted(["\u00fcn\u00ef/", "t\u00e9/"])


def test_encoding_type_continuation_token_roundtrip(s3, bucket, worker):
    put_many(s3, bucket, ENC_KEYS)
    got, token, n = [], None, 0
    while True:
        q = "list-type=2&encoding-type=url&max-keys=2"
        if token is not None:
            q += "&continuation-token=" + urllib.parse.quote(token, safe="")
        r = worker.raw("GET", f"/{bucket}?{q}")
        assert r.status == 200, r
        root = ET.fromstring(r.body)
        got += [_decoded(k.text) for k in xml_find_all(root, "Contents/Key")]
        if token is not None:
            assert xml_text(root, "ContinuationToken") == token, "continuation token must be echoed verbatim"
        if xml_text(root, "IsTruncated") != "true":
            break
        token = xml_text(root, "NextContinuationToken")
        n += 1
        assert n < 50
    assert got == listed(ENC_KEYS)


def test_boto3_decodes_special_keys(s3, bucket):
    put_many(s3, bucket, ENC_KEYS)
    assert list_v2_all(s3, bucket)[0] == listed(ENC_KEYS)
    assert list_v1_all(s3, bucket)[0] == listed(ENC_KEYS)
    assert [v["Key"] for v in list_versions_all(s3, bucket)[0]] == listed(ENC_KEYS)
    # without encoding-type the XML carries the keys escaped as XML text
    r = s3.list_objects_v2(Bucket=bucket, Prefix="plus+")
    assert [o["Key"] for o in r["Contents"]] == ["plus+key"]


def test_list_without_encoding_is_valid_xml(s3, bucket, worker):
    put_many(s3, bucket, ENC_KEYS)
    r = worker.raw("GET", f"/{bucket}?list-type=2")
    assert r.status == 200
    root = ET.fromstring(r.body)
    assert [k.text for k in xml_find_all(root, "Contents/Key")] == listed(ENC_KEYS)


# --------------------------------------------------------------------------
# folder objects
# --------------------------------------------------------------------------


def test_implicit_folders_are_not_objects(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="a/b/c", Body=b"deep")
    keys, _, _ = list_v2_all(s3, bucket)
    assert keys == ["a/b/c"]
    keys, prefixes, _ = list_v2_all(s3, bucket, Prefix="a/", Delimiter="/")
    assert keys == [] and prefixes == ["a/b/"]
    keys, prefixes, _ = list_v2_all(s3, bucket, Delimiter="/")
    assert keys == [] and prefixes == ["a/"]
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="a/b/")
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="a/")
    s3.delete_object(Bucket=bucket, Key="a/b/c")
    assert list_v2_all(s3, bucket)[0] == []
    assert list_v2_all(s3, bucket, Delimiter="/")[1] == []
    assert tree(bucket_dir(worker, bucket)) == {}, "empty implicit folders should be removed"


@pytest.mark.local_only("a folder made by another tool")
def test_empty_folders_made_by_other_tools_are_not_listed(s3, bucket, worker):
    (bucket_dir(worker, bucket) / "empty" / "deeper").mkdir(parents=True)
    s3.put_object(Bucket=bucket, Key="full/x", Body=b"1")
    keys, prefixes, _ = list_v2_all(s3, bucket, Delimiter="/")
    assert keys == [] and prefixes == ["full/"]
    assert list_v2_all(s3, bucket)[0] == ["full/x"]


def test_implicit_folders_pruned_only_up_to_nonempty(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="p/q/r/s", Body=b"1")
    s3.put_object(Bucket=bucket, Key="p/other", Body=b"2")
    s3.delete_object(Bucket=bucket, Key="p/q/r/s")
    assert list_v2_all(s3, bucket)[0] == ["p/other"]
    assert tree(bucket_dir(worker, bucket)) == {"p": "DIR", "p/other": b"2"}


def test_explicit_folder_object_persists(s3, bucket, worker):
    r = s3.put_object(Bucket=bucket, Key="x/", Body=b"")
    assert r["ETag"] == etag_of(b"")
    assert list_v2_all(s3, bucket)[0] == ["x/"]
    s3.put_object(Bucket=bucket, Key="x/y", Body=b"child")
    assert list_v2_all(s3, bucket)[0] == ["x/", "x/y"]
    s3.delete_object(Bucket=bucket, Key="x/y")
    assert list_v2_all(s3, bucket)[0] == ["x/"], "explicit folder must survive deleting its last child"
    assert (bucket_dir(worker, bucket) / "x").is_dir()
    s3.head_object(Bucket=bucket, Key="x/")
    s3.delete_object(Bucket=bucket, Key="x/")
    assert list_v2_all(s3, bucket)[0] == []
    assert not (bucket_dir(worker, bucket) / "x").exists()


def test_nested_explicit_folders(s3, bucket):
    s3.put_object(Bucket=bucket, Key="m/", Body=b"")
    s3.put_object(Bucket=bucket, Key="m/n/", Body=b"")
    assert list_v2_all(s3, bucket)[0] == ["m/", "m/n/"]
    keys, prefixes, _ = list_v2_all(s3, bucket, Prefix="m/", Delimiter="/")
    assert keys == ["m/"] and prefixes == ["m/n/"]
    s3.delete_object(Bucket=bucket, Key="m/n/")
    assert list_v2_all(s3, bucket)[0] == ["m/"]


# --------------------------------------------------------------------------
# keys
# --------------------------------------------------------------------------

CORNER_KEYS = [
    "with space", "two  spaces", "100%", "%41%42", "a+b", "a&b", "\u00fcn\u00efc\u00f8d\u00e9/\u65e5\u672c\u8a9e",
    "emoji-\U0001F600", "semi;colon", "q?mark", "hash#tag", "eq=sign", "tilde~", "quote'\"", "<angle>",
    "comma,dollar$@:", "brackets[]{}", "star*excl!", "caret^pipe|", "back`tick", "dot.file", ".hidden",
    "..double-dot-prefix", "trailing.", "x/...", "tab\there", "ends-with-space ",
]


@pytest.mark.parametrize("key", CORNER_KEYS, ids=lambda k: k.encode("unicode_escape").decode()[:30])
def test_corner_case_keys(s3, bucket, worker, key):
    data = ("value of " + key).encode()
    if is_s3_mounted(bucket) and key != key.strip():
        # OpenDAL trims white space around paths, which would merge "k " into "k": refused instead.
        with pytest.raises(ClientError) as ei:
            s3.put_object(Bucket=bucket, Key=key, Body=data)
        assert ei.value.response["Error"]["Code"] == "InvalidArgument", ei.value.response
        assert "white space" in ei.value.response["Error"]["Message"]
        assert list_v2_all(s3, bucket)[0] == []
        return
    r = s3.put_object(Bucket=bucket, Key=key, Body=data)
    assert r["ETag"] == etag_of(data)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(data)
    keys = list_v2_all(s3, bucket)[0]
    assert keys == listed([key])
    assert (bucket_dir(worker, bucket) / key).read_bytes() == data
    s3.delete_object(Bucket=bucket, Key=key)
    assert list_v2_all(s3, bucket)[0] == []


def _long_key(total: int) -> str:
    parts, left = [], total
    while left > 0:
        n = min(255, left)
        if left - n == 1:  # leave room for a separator plus at least one byte
            n -= 2
        parts.append("k" * n)
        left -= n + 1
    k = "/".join(parts)
    assert len(k.encode()) == total, len(k.encode())
    return k


def test_key_1024_bytes_ok(s3, bucket):
    key = _long_key(1024)
    s3.put_object(Bucket=bucket, Key=key, Body=b"long")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"long"
    assert key in list_v2_all(s3, bucket)[0]
    ukey = "\u00e9" * 127 + "/" + "\u65e5" * 85  # components of 254 and 255 bytes
    s3.put_object(Bucket=bucket, Key=ukey, Body=b"u")
    assert s3.get_object(Bucket=bucket, Key=ukey)["Body"].read() == b"u"


def test_key_too_long(s3, bucket, worker):
    expect_error("KeyTooLongError", 400, s3.put_object, Bucket=bucket, Key=_long_key(1025), Body=b"x")
    if fs_key_rules(bucket):  # a component over 255 bytes is a fine key on S3
        expect_error("KeyTooLongError", 400, s3.put_object, Bucket=bucket, Key="a/" + "c" * 256, Body=b"x")
        expect_error("KeyTooLongError", 400, s3.put_object, Bucket=bucket, Key="\u65e5" * 86, Body=b"x")  # 258 B
    assert tree(bucket_dir(worker, bucket)) == {}


def test_key_ending_in_slash_roundtrip(s3, bucket):
    s3.put_object(Bucket=bucket, Key="only/folder/", Body=b"")
    assert s3.get_object(Bucket=bucket, Key="only/folder/")["Body"].read() == b""
    assert list_v2_all(s3, bucket)[0] == ["only/folder/"]


@pytest.mark.parametrize("key", [".alcove.sys", ".alcove.sys/x", "a/.alcove.sys/x", "a/.alcove.sys"])
def test_reserved_key_component(s3, bucket, worker, key):
    expect_error("InvalidArgument", 400, s3.put_object, Bucket=bucket, Key=key, Body=b"x")
    expect_error("InvalidArgument", 400, s3.get_object, Bucket=bucket, Key=key)
    assert tree(bucket_dir(worker, bucket), skip=()) == {}


@pytest.mark.local_only("a file-system conflict: an S3 bucket holds both keys")
def test_object_where_folder_is(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="a/x", Body=b"child")
    before = tree(bucket_dir(worker, bucket))
    expect_error("InvalidRequest", 400, s3.put_object, Bucket=bucket, Key="a", Body=b"file over dir")
    assert tree(bucket_dir(worker, bucket)) == before
    assert s3.get_object(Bucket=bucket, Key="a/x")["Body"].read() == b"child"
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="a")


@pytest.mark.local_only("a file-system conflict: an S3 bucket holds both keys")
def test_folder_where_object_is(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="f", Body=b"plain file")
    before = tree(bucket_dir(worker, bucket))
    expect_error("InvalidRequest", 400, s3.put_object, Bucket=bucket, Key="f/x", Body=b"under a file")
    expect_error("InvalidRequest", 400, s3.put_object, Bucket=bucket, Key="f/deeper/x", Body=b"under a file")
    expect_error("InvalidRequest", 400, s3.put_object, Bucket=bucket, Key="f/", Body=b"")
    assert tree(bucket_dir(worker, bucket)) == before
    assert s3.get_object(Bucket=bucket, Key="f")["Body"].read() == b"plain file"
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="f/x")


# --------------------------------------------------------------------------
# path escapes
# --------------------------------------------------------------------------

ESCAPE_KEYS = ["../x", "a/../../x", "a/..", "..", ".", "./x", "a/./b", "a/.", "a//b", "/x", "//x", "a\\b",
               "..\\x", "a/\\../b", "x\x00y"]


@pytest.fixture
def escape_env(worker, s3, bucket, make_bucket):
    """A secret outside the root, and a victim bucket next to the tested bucket."""
    outside = worker.root.parent / "outside-secret.txt"
    outside.write_bytes(b"TOP-SECRET-OUTSIDE")
    victim = make_bucket("victim")
    s3.put_object(Bucket=victim, Key="victim.txt", Body=b"TOP-SECRET-VICTIM")
    s3.put_object(Bucket=bucket, Key="inside/file", Body=b"inside")
    snap = tree(worker.root.parent)
    yield bucket, victim, outside, snap


def _all_files_with(base: Path, content: bytes):
    return [p for p, v in tree(base, skip=()).items() if isinstance(v, bytes) and content in v]


@pytest.mark.parametrize("key", ESCAPE_KEYS, ids=lambda k: k.encode("unicode_escape").decode())
def test_path_escape_keys_boto3(s3, worker, escape_env, key):
    bucket, victim, outside, snap = escape_env
    expect_error("InvalidArgument", 400, s3.put_object, Bucket=bucket, Key=key, Body=b"PWNED")
    expect_error("InvalidArgument", 400, s3.get_object, Bucket=bucket, Key=key)
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key=key)
    assert err(ei) == ("400", 400)
    expect_error("InvalidArgument", 400, s3.delete_object, Bucket=bucket, Key=key)
    assert tree(worker.root.parent) == snap
    assert _all_files_with(worker.root.parent, b"PWNED") == []


RAW_ESCAPES = [
    "/{b}/../{v}/victim.txt",
    "/{b}/../../outside-secret.txt",
    "/{b}/inside/../../../outside-secret.txt",
    "/{b}/%2e%2e/%2e%2e/outside-secret.txt",
    "/{b}/%2E%2E/{v}/victim.txt",
    "/{b}/%2e%2e%2f%2e%2e%2foutside-secret.txt",
    "/{b}/..%2f{v}%2fvictim.txt",
    "/{b}/inside/%2e%2e/%2e%2e/{v}/victim.txt",
    "/{b}/.%2e/{v}/victim.txt",
    "/{b}/./inside/file",
    "/{b}/inside/./file",
    "/{b}/%2e/inside/file",
    "/{b}/inside//file",
    "/{b}//inside/file",
    "/{b}/%2finside/file",
    "/{b}/inside%2f%2ffile",
    "/{b}/inside%5c..%5c..%5coutside-secret.txt",
    "/{b}/inside\\..\\..\\outside-secret.txt",
    "/{b}/..\\{v}\\victim.txt",
    "/{b}/inside%00file",
    "/{b}/..",
    "/{b}/%2e%2e",
    "/{b}/inside/..",
    "/{b}/.alcove.sys/x",
    "/{b}/%2ealcove.sys/x",
]


@pytest.mark.parametrize("target", RAW_ESCAPES)
def test_path_escape_raw(worker, escape_env, target):
    bucket, victim, outside, snap = escape_env
    t = target.format(b=bucket, v=victim)
    for method, body in (("PUT", b"PWNED"), ("GET", b""), ("HEAD", b""), ("DELETE", b"")):
        r = worker.raw(method, t, body=body)
        assert r.status == 400, f"{method} {t}: {r}"
        if method != "HEAD":
            assert r.code == "InvalidArgument", f"{method} {t}: {r}"
        assert b"TOP-SECRET" not in r.body
        assert b"inside" != r.body
        assert r.headers.get("x-amz-request-id"), f"{method} {t}: {r}"
    assert tree(worker.root.parent) == snap, f"filesystem changed by {t}"
    assert _all_files_with(worker.root.parent, b"PWNED") == []


@pytest.mark.parametrize("target", [
    "/../outside-secret.txt", "/%2e%2e/outside-secret.txt", "/%2e%2e%2foutside-secret.txt",
    "/{b}%2f..%2f..%2foutside-secret.txt", "/./{b}/inside/file", "/{b}%00/inside/file", "/..", "/.",
    "/..%5coutside-secret.txt",
])
def test_path_escape_bucket_position(worker, escape_env, target):
    bucket, victim, outside, snap = escape_env
    t = target.format(b=bucket, v=victim)
    for method, body in (("PUT", b"PWNED"), ("GET", b""), ("DELETE", b"")):
        r = worker.raw(method, t, body=body)
        assert r.status in (400, 404), f"{method} {t}: {r}"
        assert b"TOP-SECRET" not in r.body
    assert tree(worker.root.parent) == snap
    assert outside.read_bytes() == b"TOP-SECRET-OUTSIDE"


def test_path_escape_raw_nul_byte(worker, escape_env):
    bucket, victim, outside, snap = escape_env
    r = worker.raw("PUT", f"/{bucket}/in\x00side".encode(), body=b"PWNED")
    assert r.status == 400
    assert tree(worker.root.parent) == snap


# --------------------------------------------------------------------------
# crash safety
# --------------------------------------------------------------------------


def test_dropped_upload_leaves_nothing(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="existing", Body=b"old")
    snap = tree(bucket_dir(worker, bucket))
    for key in ("dropped", "existing"):
        s = socket.create_connection(("127.0.0.1", worker.s3_port), timeout=10)
        head = (f"PUT {key_path(bucket, key)} HTTP/1.1\r\nHost: {worker.host}\r\n"
                f"Content-Length: 1000000\r\n\r\n").encode()
        s.sendall(head + b"P" * 300_000)
        time.sleep(0.2)
        s.close()
    ok = wait_until(lambda: tree(bucket_dir(worker, bucket)) == snap, timeout=10)
    assert ok, f"leftovers: {set(tree(bucket_dir(worker, bucket))) - set(snap)}"
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="dropped")
    assert s3.get_object(Bucket=bucket, Key="existing")["Body"].read() == b"old"
    assert list_v2_all(s3, bucket)[0] == ["existing"]
    # the worker is still healthy
    s3.put_object(Bucket=bucket, Key="after", Body=b"fine")
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"fine"


@pytest.mark.parametrize("expect", [True, False])
def test_early_error_keeps_or_closes_connection_cleanly(bucket, worker, expect):
    """A request rejected before its body was read: the server must either
    say `Connection: close` or keep serving the connection. Closing it
    silently makes keep-alive clients (urllib3/boto3) fail their next request
    with RemoteDisconnected."""
    s = socket.create_connection(("127.0.0.1", worker.s3_port), timeout=10)
    try:
        s.sendall((f"PUT /{bucket}/a//b HTTP/1.1\r\nHost: {worker.host}\r\nContent-Length: 5\r\n"
                   + ("Expect: 100-continue\r\n" if expect else "") + "\r\n").encode())
        resp = http.client.HTTPResponse(s, method="PUT")
        resp.begin()
        resp.read()
        assert resp.status == 400
        if (resp.getheader("connection") or "").lower() == "close":
            return
        # no close announced: the connection must still work (the body never came)
        s.sendall(f"GET /{bucket}?list-type=2 HTTP/1.1\r\nHost: {worker.host}\r\n\r\n".encode())
        resp2 = http.client.HTTPResponse(s, method="GET")
        try:
            resp2.begin()
        except (http.client.RemoteDisconnected, ConnectionResetError) as e:
            pytest.fail(f"server closed the connection after a 400 without sending 'Connection: close': {e!r}")
        assert resp2.status in (200, 400)
    finally:
        s.close()


# --------------------------------------------------------------------------
# file-system refusals: read-only mounts, folders the worker may not write, full disks
# --------------------------------------------------------------------------


def _run(*cmd) -> bool:
    return subprocess.run(cmd, capture_output=True).returncode == 0


@pytest.fixture
def fs_mount(worker, tmp_path):
    """Mounts a directory prepared by the test (a read-only bind mount, a small tmpfs) as a bucket;
    needs root to make it, and skips otherwise."""
    made, names = [], []

    def _mount(kind: str):
        target = tmp_path / f"{kind}-fs"
        target.mkdir()
        if kind == "readonly":
            source = tmp_path / "ro-source"
            (source / "dir").mkdir(parents=True)
            (source / "dir" / "there").write_bytes(b"already there")
            ok = _run("mount", "--bind", str(source), str(target)) and \
                _run("mount", "-o", "remount,bind,ro", str(target))
        else:
            ok = _run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target))
        if not ok:
            pytest.skip(f"cannot make a {kind} file system here (needs root and mount)")
        made.append(target)
        name = f"{kind}-{uuid.uuid4().hex[:8]}"
        worker.alcove("mount", "add", "--admin", worker.admin, "--path", f"/{name}", "--ufs-uri", target.as_uri())
        names.append(name)
        return name, target

    yield _mount
    for name in names:
        worker.alcove("mount", "remove", "--admin", worker.admin, "--path", f"/{name}", check=False)
    for target in made:
        _run("umount", str(target))


def test_read_only_mount_refuses_writes_with_access_denied(s3, fs_mount):
    name, _ = fs_mount("readonly")
    assert s3.get_object(Bucket=name, Key="dir/there")["Body"].read() == b"already there"
    r = expect_error("AccessDenied", 403, s3.put_object, Bucket=name, Key="new", Body=b"x")
    assert "Read-only file system" in r["Error"]["Message"], r
    expect_error("AccessDenied", 403, s3.delete_object, Bucket=name, Key="dir/there")
    expect_error("AccessDenied", 403, s3.put_object, Bucket=name, Key="dir/there", Body=b"over")
    assert s3.get_object(Bucket=name, Key="dir/there")["Body"].read() == b"already there"


def test_full_disk_is_insufficient_storage_and_leaves_nothing(s3, fs_mount):
    name, target = fs_mount("small")
    r = expect_error("InsufficientStorage", 507, s3.put_object, Bucket=name, Key="big", Body=b"\0" * (2 << 20))
    assert "no space" in r["Error"]["Message"], r
    assert s3.list_objects_v2(Bucket=name).get("KeyCount") == 0
    leftovers = [p for p in target.rglob("*") if p.is_file()]
    assert leftovers == [], f"partial files left: {leftovers}"
    s3.put_object(Bucket=name, Key="small", Body=b"fits")
    assert s3.get_object(Bucket=name, Key="small")["Body"].read() == b"fits"


@pytest.mark.local_only("a folder of the worker's root")
def test_folder_the_worker_may_not_write_is_access_denied(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="locked/inside", Body=b"kept")
    folder = bucket_dir(worker, bucket) / "locked"
    if not _run("chattr", "+i", str(folder)):
        pytest.skip("chattr +i is not available on this file system")
    try:
        expect_error("AccessDenied", 403, s3.put_object, Bucket=bucket, Key="locked/new", Body=b"x")
        expect_error("AccessDenied", 403, s3.delete_object, Bucket=bucket, Key="locked/inside")
    finally:
        _run("chattr", "-i", str(folder))
    assert s3.get_object(Bucket=bucket, Key="locked/inside")["Body"].read() == b"kept"


# --------------------------------------------------------------------------
# mounts (alcove mount CLI)
# --------------------------------------------------------------------------


def _mount_lines(w):
    out = w.alcove("mount", "list", "--admin", w.admin).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def test_mount_add_list_remove(s3, worker, tmp_path):
    ext = tmp_path / "ext"
    (ext / "sub").mkdir(parents=True)
    (ext / "hello.txt").write_bytes(b"hello from ufs")
    (ext / "sub" / "deep.bin").write_bytes(b"\x00\x01deep")
    name = f"mnt-{uuid.uuid4().hex[:8]}"
    uri = ext.resolve().as_uri()
    worker.alcove("mount", "add", "--admin", worker.admin, "--path", f"/{name}", "--ufs-uri", uri)
    try:
        assert [f"/{name}", uri] in _mount_lines(worker)
        assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        s3.head_bucket(Bucket=name)
        assert list_v2_all(s3, name)[0] == ["hello.txt", "sub/deep.bin"]
        g = s3.get_object(Bucket=name, Key="hello.txt")
        assert g["Body"].read() == b"hello from ufs" and g["ETag"] == etag_of(b"hello from ufs")
        assert s3.get_object(Bucket=name, Key="sub/deep.bin", Range="bytes=2-")["Body"].read() == b"deep"
        s3.put_object(Bucket=name, Key="new/written.txt", Body=b"via s3")
        assert (ext / "new" / "written.txt").read_bytes() == b"via s3"
        s3.delete_object(Bucket=name, Key="new/written.txt")
        assert not (ext / "new").exists()
        expect_error("InvalidArgument", 400, s3.get_object, Bucket=name, Key="../outside")
    finally:
        worker.alcove("mount", "remove", "--admin", worker.admin, "--path", f"/{name}")
    assert [f"/{name}", uri] not in _mount_lines(worker)
    with pytest.raises(ClientError) as ei:
        s3.head_bucket(Bucket=name)
    assert err(ei) == ("404", 404)
    expect_error("NoSuchBucket", 404, s3.get_object, Bucket=name, Key="hello.txt")
    # the UFS data is untouched by removing the mount
    assert (ext / "hello.txt").read_bytes() == b"hello from ufs"
    assert (ext / "sub" / "deep.bin").read_bytes() == b"\x00\x01deep"


def test_mount_option_folder_objects_lists_folders(s3, worker, tmp_path):
    ext = tmp_path / "seedlike"
    (ext / "sub" / "deeper").mkdir(parents=True)
    (ext / "sub" / "deeper" / "f").write_bytes(b"f")
    name = f"seed-{uuid.uuid4().hex[:8]}"
    worker.alcove("mount", "add", "--admin", worker.admin, "--path", f"/{name}", "--ufs-uri",
                  ext.resolve().as_uri(), "--option", "folder_objects=true")
    try:
        assert list_v2_all(s3, name)[0] == ["sub/", "sub/deeper/", "sub/deeper/f"]
        keys, prefixes, _ = list_v2_all(s3, name, Prefix="sub/", Delimiter="/")
        assert keys == ["sub/"] and prefixes == ["sub/deeper/"]
        assert s3.head_object(Bucket=name, Key="sub/")["ContentLength"] == 0
    finally:
        worker.alcove("mount", "remove", "--admin", worker.admin, "--path", f"/{name}")
    r = worker.alcove("mount", "add", "--admin", worker.admin, "--path", f"/{name}", "--ufs-uri",
                      ext.resolve().as_uri(), "--option", "folder_objects=maybe", check=False)
    assert r.returncode != 0 and "true or false" in r.stderr, r


def test_mount_remove_unknown_fails(worker):
    name = f"/never-{uuid.uuid4().hex[:6]}"
    r = worker.alcove("mount", "remove", "--admin", worker.admin, "--path", name, check=False)
    assert r.returncode != 0, r
    assert all(line[:1] != [name] for line in _mount_lines(worker))


def test_mount_persists_across_restart(start_worker, tmp_path):
    w = start_worker(name="persist")
    ext = tmp_path / "persist-ext"
    ext.mkdir()
    (ext / "kept.txt").write_bytes(b"still here")
    uri = ext.resolve().as_uri()
    w.alcove("mount", "add", "--admin", w.admin, "--path", "/persisted", "--ufs-uri", uri)
    c = w.client()
    c.create_bucket(Bucket="plain")
    c.put_object(Bucket="plain", Key="p/q", Body=b"plain data")
    assert c.get_object(Bucket="persisted", Key="kept.txt")["Body"].read() == b"still here"
    old_pid = w.pid
    w.restart()
    assert w.pid != old_pid
    assert ["/persisted", uri] in _mount_lines(w)
    c = w.client()
    assert c.get_object(Bucket="persisted", Key="kept.txt")["Body"].read() == b"still here"
    assert c.get_object(Bucket="plain", Key="p/q")["Body"].read() == b"plain data"
    assert sorted(b["Name"] for b in c.list_buckets()["Buckets"]) == ["persisted", "plain"]
    w.alcove("mount", "remove", "--admin", w.admin, "--path", "/persisted")
    w.restart()
    assert ["/persisted", uri] not in _mount_lines(w)
    expect_error("NoSuchBucket", 404, w.client().get_object, Bucket="persisted", Key="kept.txt")


def test_mount_from_config_file(start_worker, tmp_path):
    ext = tmp_path / "cfg-ext"
    ext.mkdir()
    (ext / "c.txt").write_bytes(b"from config")
    w = start_worker(config=f'[[mounts]]\npath = "/photos"\nufs = "{ext.resolve().as_uri()}"\n', name="cfgmount")
    c = w.client()
    assert c.get_object(Bucket="photos", Key="c.txt")["Body"].read() == b"from config"
    assert any(line[:1] == ["/photos"] for line in _mount_lines(w))


# --------------------------------------------------------------------------
# auth: sigv4 mode, anonymous access
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v4(sigv4_worker):
    c = sigv4_worker.client()
    name = f"sig-{uuid.uuid4().hex[:8]}"
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="hello.txt", Body=b"signed hello")
    return sigv4_worker, c, name


def test_sigv4_good_credentials(v4):
    w, c, b = v4
    assert c.get_object(Bucket=b, Key="hello.txt")["Body"].read() == b"signed hello"
    key = "sp ace+plus&\u00fcn\u00ef/~x=y;z"
    c.put_object(Bucket=b, Key=key, Body=b"odd key")
    assert c.get_object(Bucket=b, Key=key)["Body"].read() == b"odd key"
    assert [o["Key"] for o in c.list_objects_v2(Bucket=b, Prefix="sp ace+")["Contents"]] == [key]
    r = c.list_objects(Bucket=b, Prefix="sp ace+", Delimiter="/")
    assert r.get("Contents", []) == []
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["sp ace+plus&\u00fcn\u00ef/"]
    assert c.get_object(Bucket=b, Key=key, Range="bytes=1-3")["Body"].read() == b"dd "
    c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": key}]})
    expect_error("NoSuchKey", 404, c.get_object, Bucket=b, Key=key)
    assert b in [x["Name"] for x in c.list_buckets()["Buckets"]]


def test_sigv4_wrong_secret(v4):
    w, c, b = v4
    bad = w.client(secret_key="not-the-secret")
    expect_error("SignatureDoesNotMatch", 403, bad.get_object, Bucket=b, Key="hello.txt")
    expect_error("SignatureDoesNotMatch", 403, bad.list_buckets)
    expect_error("SignatureDoesNotMatch", 403, bad.put_object, Bucket=b, Key="evil", Body=b"x")
    expect_error("NoSuchKey", 404, c.get_object, Bucket=b, Key="evil")
    assert not (w.root / b / "evil").exists()


def test_sigv4_unknown_access_key(v4):
    w, c, b = v4
    bad = w.client(access_key="AKIDUNKNOWN", secret_key=SECRET_KEY)
    expect_error("InvalidAccessKeyId", 403, bad.get_object, Bucket=b, Key="hello.txt")
    expect_error("InvalidAccessKeyId", 403, bad.list_objects_v2, Bucket=b)


def test_sigv4_anonymous_denied(v4):
    w, c, b = v4
    r = w.raw("GET", f"/{b}/hello.txt")
    assert r.status == 403 and r.code == "AccessDenied", r
    r = w.raw("PUT", f"/{b}/anon", body=b"x")
    assert r.status == 403 and r.code == "AccessDenied", r
    assert not (w.root / b / "anon").exists()


def test_sigv4_raw_signer_and_clock_skew(v4):
    w, c, b = v4
    r = w.signed("GET", key_path(b, "hello.txt"))
    assert r.status == 200 and r.body == b"signed hello", r
    r = w.signed("GET", f"/{b}?list-type=2&prefix=hel&max-keys=5")
    assert r.status == 200 and b"hello.txt" in r.body, r
    for minutes in (20, -20):
        r = w.signed("GET", key_path(b, "hello.txt"), now=now_utc() - dt.timedelta(minutes=minutes))
        assert r.status == 403 and r.code == "RequestTimeTooSkewed", r
    r = w.signed("GET", key_path(b, "hello.txt"), now=now_utc() - dt.timedelta(minutes=5))
    assert r.status == 200, r


def test_sigv4_tampered_request(v4):
    w, c, b = v4
    h = sign_v4("GET", w.host, key_path(b, "hello.txt"), {}, b"", ACCESS_KEY, SECRET_KEY)
    r = w.raw("GET", key_path(b, "other.txt"), h)  # signature is for another path
    assert r.status == 403 and r.code == "SignatureDoesNotMatch", r
    # body does not match the signed payload hash
    h = sign_v4("PUT", w.host, key_path(b, "tampered"), {}, b"signed body", ACCESS_KEY, SECRET_KEY)
    r = w.raw("PUT", key_path(b, "tampered"), h, b"other body!")
    assert r.status in (400, 403), r
    assert r.code in ("XAmzContentSHA256Mismatch", "SignatureDoesNotMatch", "BadDigest"), r
    assert not (w.root / b / "tampered").exists()


def test_sigv4_presigned_get_put(v4):
    w, c, b = v4
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "hello.txt"}, ExpiresIn=300)
    assert "X-Amz-Signature=" in url
    with opener.open(url, timeout=10) as r:
        assert r.status == 200 and r.read() == b"signed hello"
    put_url = c.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "presigned-put"}, ExpiresIn=300)
    req = urllib.request.Request(put_url, data=b"uploaded via presigned url", method="PUT")
    with opener.open(req, timeout=10) as r:
        assert r.status == 200
    assert c.get_object(Bucket=b, Key="presigned-put")["Body"].read() == b"uploaded via presigned url"


def _http_error(url, method="GET", data=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request(method, u.path + ("?" + u.query if u.query else ""), body=data)
    r = conn.getresponse()
    out = r.status, r.read()
    conn.close()
    return out


def test_sigv4_presigned_errors(v4):
    w, c, b = v4
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "hello.txt"}, ExpiresIn=1)
    time.sleep(2.2)
    status, body = _http_error(url)
    assert status == 403 and parse_error(body).get("Code") == "AccessDenied", body
    put_url = c.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "late-put"}, ExpiresIn=1)
    time.sleep(2.2)
    status, body = _http_error(put_url, "PUT", b"too late")
    assert status == 403 and parse_error(body).get("Code") == "AccessDenied", body
    expect_error("NoSuchKey", 404, c.get_object, Bucket=b, Key="late-put")
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "hello.txt"}, ExpiresIn=300)
    sig = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Signature"][0]
    bad = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    status, body = _http_error(bad)
    assert status == 403 and parse_error(body).get("Code") == "SignatureDoesNotMatch", body
    other = url.replace("/hello.txt?", "/other.txt?")
    status, body = _http_error(other)
    assert status == 403 and parse_error(body).get("Code") == "SignatureDoesNotMatch", body
    wrong = w.client(secret_key="wrong-secret").generate_presigned_url(
        "get_object", Params={"Bucket": b, "Key": "hello.txt"}, ExpiresIn=300)
    status, body = _http_error(wrong)
    assert status == 403 and parse_error(body).get("Code") == "SignatureDoesNotMatch", body


def test_sigv4_request_signed_with_date_only(v4):
    """botocore signs with `Date` (no X-Amz-Date) when the caller sets one; AWS takes that as the
    request time."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    w, c, b = v4
    req = AWSRequest(method="GET", url=f"{w.endpoint}/{b}/hello.txt", headers={"Date": ""})
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    headers = dict(req.headers.items())
    assert "X-Amz-Date" not in headers and headers["Date"], headers
    r = w.raw("GET", key_path(b, "hello.txt"), headers)
    assert r.status == 200 and r.body == b"signed hello", r


def test_presigned_expiry_in_simple_mode(s3, bucket, worker):
    """A shared link stops working when it expires, even where signatures are not checked."""
    s3.put_object(Bucket=bucket, Key="shared", Body=b"for a while")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared"}, ExpiresIn=1)
    assert _http_error(url)[0] == 200
    time.sleep(2.2)
    status, body = _http_error(url)
    assert status == 403 and parse_error(body).get("Code") == "AccessDenied", body
    assert parse_error(body).get("Message") == "Request has expired"
    week = url.replace("X-Amz-Expires=1", "X-Amz-Expires=604801")
    status, body = _http_error(week)
    assert status == 400 and parse_error(body).get("Code") == "AuthorizationQueryParametersError", body


@pytest.mark.parametrize("tamper", [None, 0, 2])
def test_sigv4_streaming_signed_payload(v4, tamper):
    w, c, b = v4
    data = payload(150_000, seed=99)
    chunk = 65536
    key = f"streamed-{tamper}"
    enc_len = streaming_len(len(data), chunk)
    now = now_utc()
    h = sign_v4("PUT", w.host, key_path(b, key), {
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "content-length": str(enc_len),
    }, None, ACCESS_KEY, SECRET_KEY, payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD", now=now)
    seed = h["authorization"].rsplit("Signature=", 1)[1]
    body = streaming_signed_body(data, chunk, seed, h["x-amz-date"], SECRET_KEY, tamper_chunk=tamper)
    assert len(body) == enc_len
    r = w.raw("PUT", key_path(b, key), h, body)
    if tamper is None:
        assert r.status == 200, r
        assert r.headers["etag"] == etag_of(data)
        assert c.get_object(Bucket=b, Key=key)["Body"].read() == data
    else:
        assert r.status == 403 and r.code == "SignatureDoesNotMatch", r
        expect_error("NoSuchKey", 404, c.get_object, Bucket=b, Key=key)
        assert not (w.root / b / key).exists()


def test_sigv4_trailer_checksum_upload(v4, monkeypatch):
    w, c, b = v4
    _force_trailer(monkeypatch)
    client = w.client(request_checksum_calculation="when_supported")
    data = payload(80_000, seed=5)
    client.put_object(Bucket=b, Key="trailer-signed", Body=data)
    assert c.get_object(Bucket=b, Key="trailer-signed")["Body"].read() == data


def test_simple_mode_anonymous_disallowed(start_worker):
    w = start_worker(config="[auth]\nmode = \"simple\"\nallow_anonymous = false\n", name="noanon")
    r = w.raw("GET", "/")
    assert r.status == 403 and r.code == "AccessDenied", r
    r = w.raw("PUT", "/anon-bucket")
    assert r.status == 403 and r.code == "AccessDenied", r
    assert not (w.root / "anon-bucket").exists()
    # any credentials are accepted in simple mode
    c = w.client(access_key="whoever", secret_key="whatever")
    c.create_bucket(Bucket="named")
    c.put_object(Bucket="named", Key="k", Body=b"v")
    assert c.get_object(Bucket="named", Key="k")["Body"].read() == b"v"
    r = w.raw("GET", "/named/k")
    assert r.status == 403 and r.code == "AccessDenied"


def test_simple_mode_checks_payload_sha256(worker, s3, bucket):
    """Simple mode skips the signature, but x-amz-content-sha256 is an
    integrity check of the body (the only one minio-py sends over http):
    a body that does not match it must not be stored."""
    h = sign_v4("PUT", worker.host, key_path(bucket, "k"), {}, b"declared body", "any", "thing")
    r = worker.raw("PUT", key_path(bucket, "k"), h, b"another body!")
    assert r.status == 400 and r.code == "XAmzContentSHA256Mismatch", r
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="k")
    h = sign_v4("PUT", worker.host, key_path(bucket, "k"), {}, b"declared body", "any", "thing")
    r = worker.raw("PUT", key_path(bucket, "k"), h, b"declared body")
    assert r.status == 200, r
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"declared body"


def test_simple_mode_ignores_signature(worker, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    c = worker.client(access_key="random-key", secret_key="random-secret")
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    r = worker.raw("GET", f"/{bucket}/k")  # anonymous allowed by default
    assert r.status == 200 and r.body == b"v"
