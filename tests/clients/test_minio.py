"""minio-py against an Alcove worker."""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
import uuid

import pytest
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from alcove_helpers import ACCESS_KEY, SECRET_KEY, bucket_dir, md5hex, now_utc, tree


def mk(w, access_key=ACCESS_KEY, secret_key=SECRET_KEY) -> Minio:
    return Minio(f"127.0.0.1:{w.s3_port}", access_key=access_key, secret_key=secret_key, secure=False,
                 region="us-east-1")


@pytest.fixture(scope="module")
def mc(worker):
    return mk(worker)


def s3err(code, fn, *a, **kw) -> S3Error:
    with pytest.raises(S3Error) as ei:
        fn(*a, **kw)
    assert ei.value.code == code, f"expected {code}, got {ei.value.code}: {ei.value}"
    return ei.value


def put(mc, bucket, key, data: bytes, **kw):
    return mc.put_object(bucket, key, io.BytesIO(data), len(data), **kw)


def get(mc, bucket, key, **kw) -> bytes:
    r = mc.get_object(bucket, key, **kw)
    try:
        return r.read()
    finally:
        r.close()
        r.release_conn()


def test_buckets(mc, worker, s3):
    name = f"minio-{uuid.uuid4().hex[:10]}"
    assert not mc.bucket_exists(name)
    mc.make_bucket(name)
    assert (worker.root / name).is_dir()
    assert mc.bucket_exists(name)
    assert name in [b.name for b in mc.list_buckets()]
    assert ".alcove.sys" not in [b.name for b in mc.list_buckets()]
    s3err("BucketAlreadyOwnedByYou", mc.make_bucket, name)
    put(mc, name, "k", b"v")
    e = s3err("BucketNotEmpty", mc.remove_bucket, name)
    assert e.response.status == 409
    mc.remove_object(name, "k")
    mc.remove_bucket(name)
    assert not mc.bucket_exists(name)
    e = s3err("NoSuchBucket", mc.remove_bucket, name)
    assert e.response.status == 404


def test_put_get_stat(mc, bucket):
    data = os.urandom(123_456)
    r = put(mc, bucket, "dir/obj", data, content_type="application/x-minio")
    assert r.etag == md5hex(data)
    assert get(mc, bucket, "dir/obj") == data
    st = mc.stat_object(bucket, "dir/obj")
    assert st.size == len(data) and st.etag == md5hex(data)
    assert st.content_type == "application/x-minio"
    assert abs((st.last_modified - now_utc()).total_seconds()) < 30
    r = put(mc, bucket, "dir/obj", b"new")
    assert r.etag == md5hex(b"new")
    assert get(mc, bucket, "dir/obj") == b"new"


def test_ranges(mc, bucket):
    data = bytes(range(256)) * 4
    put(mc, bucket, "r", data)
    assert get(mc, bucket, "r", offset=10, length=5) == data[10:15]
    assert get(mc, bucket, "r", offset=1000) == data[1000:]
    assert get(mc, bucket, "r", offset=0, length=1) == data[:1]
    assert get(mc, bucket, "r", offset=1020, length=100) == data[1020:]
    e = s3err("InvalidRange", get, mc, bucket, "r", offset=1024)
    assert e.response.status == 416
    e = s3err("InvalidRange", get, mc, bucket, "r", offset=5000, length=10)
    assert e.response.status == 416


def test_missing(mc, bucket):
    e = s3err("NoSuchKey", get, mc, bucket, "nope")
    assert e.response.status == 404
    e = s3err("NoSuchKey", mc.stat_object, bucket, "nope")
    assert e.response.status == 404
    nob = f"nob-{uuid.uuid4().hex[:8]}"
    e = s3err("NoSuchBucket", get, mc, nob, "k")
    assert e.response.status == 404
    s3err("NoSuchBucket", lambda: list(mc.list_objects(nob)))
    s3err("NoSuchBucket", put, mc, nob, "k", b"x")


def test_list_objects(mc, s3, bucket):
    keys = ["a/b/c", "a/d", "e", "f g+h", "\u00fc/x"]
    for k in keys:
        put(mc, bucket, k, k.encode())
    full = sorted(keys, key=lambda k: k.encode())
    for v1 in (False, True):
        objs = list(mc.list_objects(bucket, recursive=True, use_api_v1=v1))
        assert [o.object_name for o in objs] == full, "only what was written"
        by = {o.object_name: o for o in objs}
        assert by["e"].size == 1 and by["e"].etag == md5hex(b"e")
        # minio yields a page's Contents first, then its CommonPrefixes
        top = list(mc.list_objects(bucket, use_api_v1=v1))
        assert sorted((o.object_name, o.is_dir) for o in top) == [
            ("a/", True), ("e", False), ("f g+h", False), ("\u00fc/", True)]
        sub = list(mc.list_objects(bucket, prefix="a/", use_api_v1=v1))
        assert sorted((o.object_name, o.is_dir) for o in sub) == [("a/b/", True), ("a/d", False)]
    after = list(mc.list_objects(bucket, recursive=True, start_after="a/d"))
    assert [o.object_name for o in after] == [k for k in full if k.encode() > b"a/d"]
    vers = list(mc.list_objects(bucket, recursive=True, include_version=True))
    assert [o.object_name for o in vers] == full
    assert all(o.version_id == "null" and o.is_latest == "true" for o in vers)
    owned = list(mc.list_objects(bucket, recursive=True, fetch_owner=True))
    assert all(o.owner_id for o in owned)


def test_many_keys_paginate(mc, bucket, worker):
    base = bucket_dir(worker, bucket)
    for i in range(1205):
        (base / f"k{i:05d}").write_bytes(b"x")
    names = [o.object_name for o in mc.list_objects(bucket, recursive=True)]
    assert names == [f"k{i:05d}" for i in range(1205)]
    names = [o.object_name for o in mc.list_objects(bucket, recursive=True, use_api_v1=True)]
    assert len(names) == 1205 and len(set(names)) == 1205
    vers = list(mc.list_objects(bucket, include_version=True))
    assert len(vers) == 1205


def test_remove_objects(mc, s3, bucket, worker):
    for k in ("x1", "x2", "d/x3"):
        put(mc, bucket, k, b"1")
    mc.remove_object(bucket, "x1")
    mc.remove_object(bucket, "x1")  # idempotent
    errors = list(mc.remove_objects(bucket, [DeleteObject("x2"), DeleteObject("d/x3"), DeleteObject("nope")]))
    assert errors == []
    assert list(mc.list_objects(bucket, recursive=True)) == []
    assert tree(bucket_dir(worker, bucket)) == {}
    put(mc, bucket, "y", b"1")
    errors = list(mc.remove_objects(bucket, [DeleteObject("y"), DeleteObject("a//b"), DeleteObject("../up")]))
    assert sorted((e.name, e.code) for e in errors) == [("../up", "InvalidArgument"), ("a//b", "InvalidArgument")]
    assert list(mc.list_objects(bucket, recursive=True)) == []


def test_fput_fget(mc, bucket, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(2_000_000))
    r = mc.fput_object(bucket, "files/src.bin", str(src), content_type="application/x-fput")
    assert r.etag == md5hex(src.read_bytes())
    dst = tmp_path / "dst.bin"
    mc.fget_object(bucket, "files/src.bin", str(dst))
    assert dst.read_bytes() == src.read_bytes()
    assert mc.stat_object(bucket, "files/src.bin").content_type == "application/x-fput"


def test_versioning_off(mc, bucket):
    cfg = mc.get_bucket_versioning(bucket)
    assert cfg.status is None and cfg.mfa_delete is None
    assert cfg.status_string == "Off"


@pytest.mark.parametrize("key", ["sp ace", "pl+us", "am&p", "pct%25", "\u65e5\u672c/\u00e9", "q?x#y", "x/y/z/"])
def test_special_keys(mc, s3, bucket, key):
    data = b"" if key.endswith("/") else key.encode()
    put(mc, bucket, key, data)
    assert get(mc, bucket, key) == data
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    names = [o.object_name for o in mc.list_objects(bucket, recursive=True)]
    assert key in names


@pytest.mark.parametrize("key", ["a//b", "a\\b", "x/.alcove.sys/y"])
def test_invalid_keys(mc, bucket, worker, key):
    before = tree(worker.root.parent)
    e = s3err("InvalidArgument", put, mc, bucket, key, b"PWNED")
    assert e.response.status == 400
    s3err("InvalidArgument", get, mc, bucket, key)
    assert tree(worker.root.parent) == before


@pytest.mark.local_only("file-system key rules: an S3 bucket holds all these keys")
def test_key_conflicts_and_too_long(mc, bucket):
    put(mc, bucket, "f", b"file")
    s3err("InvalidRequest", put, mc, bucket, "f/x", b"under file")
    put(mc, bucket, "d/x", b"child")
    s3err("InvalidRequest", put, mc, bucket, "d", b"over folder")
    s3err("KeyTooLongError", put, mc, bucket, "z" * 256, b"x")
    assert get(mc, bucket, "f") == b"file" and get(mc, bucket, "d/x") == b"child"


# --------------------------------------------------------------------------
# sigv4 mode
# --------------------------------------------------------------------------


def test_sigv4(sigv4_worker):
    good = mk(sigv4_worker)
    name = f"minsig-{uuid.uuid4().hex[:8]}"
    good.make_bucket(name)
    put(good, name, "k k+", b"signed")
    assert get(good, name, "k k+") == b"signed"
    assert get(good, name, "k k+", offset=2, length=2) == b"gn"
    assert [o.object_name for o in good.list_objects(name, prefix="k k")] == ["k k+"]
    e = s3err("SignatureDoesNotMatch", get, mk(sigv4_worker, secret_key="wrong"), name, "k k+")
    assert e.response.status == 403
    s3err("SignatureDoesNotMatch", put, mk(sigv4_worker, secret_key="wrong"), name, "evil", b"x")
    s3err("InvalidAccessKeyId", get, mk(sigv4_worker, access_key="AKIDNOPE"), name, "k k+")
    s3err("NoSuchKey", good.stat_object, name, "evil")

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    import datetime as dt
    url = good.presigned_get_object(name, "k k+", expires=dt.timedelta(minutes=5))
    with opener.open(url, timeout=10) as r:
        assert r.read() == b"signed"
    url = good.presigned_put_object(name, "presigned", expires=dt.timedelta(minutes=5))
    with opener.open(urllib.request.Request(url, data=b"via presigned put", method="PUT"), timeout=10) as r:
        assert r.status == 200
    assert get(good, name, "presigned") == b"via presigned put"
    bad = mk(sigv4_worker, secret_key="wrong").presigned_get_object(name, "k k+")
    with pytest.raises(urllib.error.HTTPError) as ei:
        opener.open(bad, timeout=10)
    assert ei.value.code == 403 and b"SignatureDoesNotMatch" in ei.value.read()
