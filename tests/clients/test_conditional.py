"""Conditional requests through boto3, minio-py and the AWS CLI.

Reads: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since on GetObject and HeadObject
(412 / 304; a 412 wins over a 304). Writes: PutObject and CompleteMultipartUpload with
If-None-Match: * and If-Match: <etag>, and races proving that the check and the write are one
atomic step (exactly one of 16 concurrent conditional writers wins).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from minio.error import MinioException

from alcove_helpers import etag_of, md5hex, pattern_bytes
from test_awscli import aws_fail, aws_json
from test_boto3 import expect_error
from test_minio import mk, s3err
from test_multipart import _abort_leftover_uploads  # noqa: F401  (autouse: aborts what a test leaves)

DAY = dt.timedelta(days=1)
OTHER = etag_of(b"some other content")


def cli_fail(w, code, *args):
    return aws_fail(w, code, *args, env={"AWS_MAX_ATTEMPTS": "1"})


@pytest.fixture
def obj(s3, bucket):
    s3.put_object(Bucket=bucket, Key="c.txt", Body=b"conditional body")
    h = s3.head_object(Bucket=bucket, Key="c.txt")
    return bucket, "c.txt", h["ETag"], h["LastModified"]


def read_cases(etag, lm):
    """(conditions, expected status) as AWS evaluates them."""
    return [
        (dict(IfMatch=etag), 200),
        (dict(IfMatch=OTHER), 412),
        (dict(IfNoneMatch=OTHER), 200),
        (dict(IfNoneMatch=etag), 304),
        (dict(IfModifiedSince=lm - DAY), 200),
        (dict(IfModifiedSince=lm), 304),
        (dict(IfUnmodifiedSince=lm), 200),
        (dict(IfUnmodifiedSince=lm + DAY), 200),
        (dict(IfUnmodifiedSince=lm - DAY), 412),
        # a 412 wins over a 304
        (dict(IfMatch=OTHER, IfNoneMatch=etag), 412),
        (dict(IfUnmodifiedSince=lm - DAY, IfModifiedSince=lm), 412),
        (dict(IfMatch=OTHER, IfModifiedSince=lm), 412),
        # If-Match true makes If-Unmodified-Since irrelevant (AWS, RFC 9110)
        (dict(IfMatch=etag, IfUnmodifiedSince=lm - DAY), 200),
        # If-None-Match decides over If-Modified-Since
        (dict(IfNoneMatch=etag, IfModifiedSince=lm - DAY), 304),
        (dict(IfNoneMatch=OTHER, IfModifiedSince=lm), 200),
        (dict(IfMatch=etag, IfNoneMatch=etag), 304),
        (dict(IfMatch=etag, IfNoneMatch=OTHER, IfModifiedSince=lm - DAY, IfUnmodifiedSince=lm), 200),
    ]


def status_of(fn, **kw) -> int:
    try:
        r = fn(**kw)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]
    if "Body" in r:
        r["Body"].read()
    return r["ResponseMetadata"]["HTTPStatusCode"]


# --------------------------------------------------------------------------
# reads
# --------------------------------------------------------------------------


def test_get_head_conditions_boto3(s3, obj):
    bucket, key, etag, lm = obj
    failures = []
    for conds, want in read_cases(etag, lm):
        for fn in (s3.get_object, s3.head_object):
            got = status_of(fn, Bucket=bucket, Key=key, **conds)
            if got != want:
                failures.append((fn.__name__, conds, want, got))
    assert not failures, failures
    r = expect_error("PreconditionFailed", 412, s3.get_object, Bucket=bucket, Key=key, IfMatch=OTHER)
    assert r["Error"]["Message"]
    g = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag, Range="bytes=0-10")
    assert g["Body"].read() == b"conditional" and g["ResponseMetadata"]["HTTPStatusCode"] == 206
    # conditions never turn a missing key into anything but 404
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="missing", IfMatch=etag)
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="missing", IfNoneMatch=etag)


def test_conditional_raw_wire_format(worker, obj):
    bucket, key, etag, lm = obj
    auth = {"Authorization": "AWS AKIDALCOVETEST:x"}
    r = worker.raw("GET", f"/{bucket}/{key}", {**auth, "If-None-Match": etag})
    assert r.status == 304 and r.body == b""
    assert r.headers["etag"] == etag and "last-modified" in r.headers
    r = worker.raw("GET", f"/{bucket}/{key}", {**auth, "If-Match": OTHER})
    assert r.status == 412 and r.code == "PreconditionFailed"
    # an unquoted entity tag is the same tag
    r = worker.raw("GET", f"/{bucket}/{key}", {**auth, "If-Match": etag.strip('"')})
    assert r.status == 200 and r.body == b"conditional body", r
    r = worker.raw("HEAD", f"/{bucket}/{key}", {**auth, "If-None-Match": etag.strip('"')})
    assert r.status == 304, r


def test_get_head_conditions_minio(worker, obj):
    bucket, key, etag, lm = obj
    mc = mk(worker)
    bare = etag.strip('"')

    def get(headers):
        resp = mc.get_object(bucket, key, request_headers=headers)
        try:
            return resp.status, resp.read()
        finally:
            resp.close()
            resp.release_conn()

    assert get({"If-Match": etag}) == (200, b"conditional body")
    assert get({"If-None-Match": OTHER, "If-Modified-Since": _http_date(lm - DAY)}) == (200, b"conditional body")
    s3err("PreconditionFailed", mc.get_object, bucket, key, request_headers={"If-Match": OTHER})
    s3err("PreconditionFailed", mc.get_object, bucket, key,
          request_headers={"If-Unmodified-Since": _http_date(lm - DAY)})
    s3err("PreconditionFailed", mc.get_object, bucket, key,
          request_headers={"If-Match": OTHER, "If-None-Match": etag})
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": _http_date(lm)}):
        with pytest.raises(MinioException) as ei:
            mc.get_object(bucket, key, request_headers=headers)
        assert "304" in str(ei.value), (headers, ei.value)
    st = mc.stat_object(bucket, key, extra_headers={"If-Match": etag})
    assert st.etag == bare
    with pytest.raises(MinioException) as ei:  # a HEAD error has no body: minio reports the status
        mc.stat_object(bucket, key, extra_headers={"If-Match": OTHER})
    assert "412" in str(ei.value), ei.value
    with pytest.raises(MinioException) as ei:
        mc.stat_object(bucket, key, extra_headers={"If-None-Match": etag})
    assert "304" in str(ei.value) or getattr(getattr(ei.value, "response", None), "status", None) == 304


def _http_date(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def test_get_head_conditions_cli(worker, obj, tmp_path):
    bucket, key, etag, lm = obj
    out = tmp_path / "out"
    r = aws_json(worker, "s3api", "get-object", "--bucket", bucket, "--key", key, "--if-match", etag, str(out))
    assert r["ETag"] == etag and out.read_bytes() == b"conditional body"
    cli_fail(worker, "PreconditionFailed", "s3api", "get-object", "--bucket", bucket, "--key", key,
             "--if-match", OTHER, str(out))
    cli_fail(worker, "304", "s3api", "get-object", "--bucket", bucket, "--key", key, "--if-none-match", etag,
             str(out))
    cli_fail(worker, "304", "s3api", "head-object", "--bucket", bucket, "--key", key,
             "--if-modified-since", lm.isoformat())
    cli_fail(worker, "412", "s3api", "head-object", "--bucket", bucket, "--key", key,
             "--if-unmodified-since", (lm - DAY).isoformat(), "--if-modified-since", lm.isoformat())
    r = aws_json(worker, "s3api", "head-object", "--bucket", bucket, "--key", key,
                 "--if-modified-since", (lm - DAY).isoformat())
    assert r["ETag"] == etag


# --------------------------------------------------------------------------
# conditional writes
# --------------------------------------------------------------------------


def test_conditional_put_boto3(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")
    assert r["ETag"] == etag_of(b"first")
    expect_error("PreconditionFailed", 412, s3.put_object, Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"
    expect_error("PreconditionFailed", 412, s3.put_object, Bucket=bucket, Key="k", Body=b"second", IfMatch=OTHER)
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfMatch=etag_of(b"first"))
    assert r["ETag"] == etag_of(b"second")
    expect_error("PreconditionFailed", 412, s3.put_object, Bucket=bucket, Key="k", Body=b"third",
                 IfMatch=etag_of(b"first"))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"
    expect_error("NoSuchKey", 404, s3.put_object, Bucket=bucket, Key="absent", Body=b"x", IfMatch=etag_of(b"x"))
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    # after a delete the key can be created again
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="k", Body=b"again", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"again"


def test_conditional_put_cli(worker, s3, bucket, tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"cli first")
    out = aws_json(worker, "s3api", "put-object", "--bucket", bucket, "--key", "k", "--body", str(f),
                   "--if-none-match", "*")
    assert out["ETag"] == etag_of(b"cli first")
    f.write_bytes(b"cli second")
    cli_fail(worker, "PreconditionFailed", "s3api", "put-object", "--bucket", bucket, "--key", "k", "--body", str(f),
             "--if-none-match", "*")
    cli_fail(worker, "PreconditionFailed", "s3api", "put-object", "--bucket", bucket, "--key", "k", "--body", str(f),
             "--if-match", OTHER)
    aws_json(worker, "s3api", "put-object", "--bucket", bucket, "--key", "k", "--body", str(f),
             "--if-match", etag_of(b"cli first"))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"cli second"


def _upload(s3, bucket, key, data=b"mp body"):
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    e = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=data)["ETag"]
    return uid, {"Parts": [{"PartNumber": 1, "ETag": e}]}


def test_conditional_complete_multipart_boto3(s3, bucket):
    uid, parts = _upload(s3, bucket, "new", b"created by complete")
    r = s3.complete_multipart_upload(Bucket=bucket, Key="new", UploadId=uid, MultipartUpload=parts,
                                     IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b"created by complete"
    existing = r["ETag"]
    uid, parts = _upload(s3, bucket, "new", b"should not land")
    expect_error("PreconditionFailed", 412, s3.complete_multipart_upload, Bucket=bucket, Key="new", UploadId=uid,
                 MultipartUpload=parts, IfNoneMatch="*")
    expect_error("PreconditionFailed", 412, s3.complete_multipart_upload, Bucket=bucket, Key="new", UploadId=uid,
                 MultipartUpload=parts, IfMatch=OTHER)
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b"created by complete"
    uid, parts = _upload(s3, bucket, "new", b"replaces with if-match")
    r = s3.complete_multipart_upload(Bucket=bucket, Key="new", UploadId=uid, MultipartUpload=parts,
                                     IfMatch=existing)
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b"replaces with if-match"
    uid, parts = _upload(s3, bucket, "absent")
    expect_error("NoSuchKey", 404, s3.complete_multipart_upload, Bucket=bucket, Key="absent", UploadId=uid,
                 MultipartUpload=parts, IfMatch=existing)
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="absent")


def test_conditional_complete_multipart_cli(worker, s3, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="taken", Body=b"already here")
    uid, parts = _upload(s3, bucket, "taken", b"cli mp")
    pf = tmp_path / "parts.json"
    pf.write_text(json.dumps(parts))
    cli_fail(worker, "PreconditionFailed", "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", "taken",
             "--upload-id", uid, "--multipart-upload", f"file://{pf}", "--if-none-match", "*")
    assert s3.get_object(Bucket=bucket, Key="taken")["Body"].read() == b"already here"
    aws_json(worker, "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", "taken", "--upload-id", uid,
             "--multipart-upload", f"file://{pf}", "--if-match", etag_of(b"already here"))
    assert s3.get_object(Bucket=bucket, Key="taken")["Body"].read() == b"cli mp"


# --------------------------------------------------------------------------
# races
# --------------------------------------------------------------------------

RACERS = 16


def _race(fn, n=RACERS):
    """Runs fn(i) in n threads released together; returns [(i, result or ClientError)]."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait(timeout=30)
        try:
            return i, fn(i)
        except ClientError as e:
            return i, e

    with ThreadPoolExecutor(n) as ex:
        return list(ex.map(run, range(n)))


def _split(results):
    wins = [(i, r) for i, r in results if not isinstance(r, ClientError)]
    losses = [(i, r) for i, r in results if isinstance(r, ClientError)]
    return wins, losses


@pytest.fixture(scope="module")
def racing_client(worker):
    return worker.client(max_pool_connections=RACERS * 2)


def test_race_put_if_none_match(racing_client, bucket):
    s3 = racing_client
    for round_ in range(3):
        # the later rounds also race to create the key's folders
        key = f"race-{round_}" if round_ == 0 else f"fresh-{round_}/deep/er/race"
        bodies = [pattern_bytes(256 * 1024, 1000 * round_ + i) for i in range(RACERS)]
        results = _race(lambda i: s3.put_object(Bucket=bucket, Key=key, Body=bodies[i], IfNoneMatch="*"))
        wins, losses = _split(results)
        assert len(wins) == 1, [(i, r) for i, r in results]
        assert all(e.response["Error"]["Code"] == "PreconditionFailed" and
                   e.response["ResponseMetadata"]["HTTPStatusCode"] == 412 for _, e in losses), losses
        (winner, resp), = wins
        assert resp["ETag"] == etag_of(bodies[winner])
        g = s3.get_object(Bucket=bucket, Key=key)
        assert g["ETag"] == etag_of(bodies[winner])
        assert md5hex(g["Body"].read()) == md5hex(bodies[winner])


def test_race_put_if_match(racing_client, bucket):
    s3 = racing_client
    for round_ in range(3):
        key = f"race-match-{round_}"
        base = s3.put_object(Bucket=bucket, Key=key, Body=b"base version")["ETag"]
        bodies = [f"replacement {round_}/{i} ".encode() * 4096 for i in range(RACERS)]
        results = _race(lambda i: s3.put_object(Bucket=bucket, Key=key, Body=bodies[i], IfMatch=base))
        wins, losses = _split(results)
        assert len(wins) == 1, [(i, r) for i, r in results]
        assert all(e.response["Error"]["Code"] == "PreconditionFailed" for _, e in losses), losses
        (winner, resp), = wins
        g = s3.get_object(Bucket=bucket, Key=key)
        assert g["ETag"] == resp["ETag"] == etag_of(bodies[winner])
        assert g["Body"].read() == bodies[winner]


def test_race_complete_if_none_match(racing_client, bucket):
    s3 = racing_client
    n = 8
    uploads = [_upload(s3, bucket, "race-mp", f"upload {i}".encode() * 1000) for i in range(n)]
    results = _race(lambda i: s3.complete_multipart_upload(Bucket=bucket, Key="race-mp", UploadId=uploads[i][0],
                                                           MultipartUpload=uploads[i][1], IfNoneMatch="*"), n)
    wins, losses = _split(results)
    assert len(wins) == 1, results
    assert all(e.response["Error"]["Code"] == "PreconditionFailed" for _, e in losses), losses
    (winner, resp), = wins
    assert s3.get_object(Bucket=bucket, Key="race-mp")["Body"].read() == f"upload {winner}".encode() * 1000
    for i, (uid, _) in enumerate(uploads):
        if i != winner:
            s3.abort_multipart_upload(Bucket=bucket, Key="race-mp", UploadId=uid)
