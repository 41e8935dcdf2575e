"""Remote mounts: a bucket of the worker mounted onto a bucket (and prefix) of a remote store.

The remotes, all on 127.0.0.1: moto's S3 server (any credentials), s3s-fs (a Rust S3 server over a
directory, from env S3S_FS_BIN; its tests skip without it), a second Alcove worker, Azurite (the
Azure Storage emulator's blob service, for azblob:// mounts, from env AZURITE_DIR; its tests skip
without it) and gcp-storage-emulator (for gs:// mounts). Most tests run against all five; where an
emulator lacks a call, that test skips for it with the reason. Failure tests put a TcpProxy
(remotes.py) between the worker and the remote, or kill the remote, and expect a quick 503 with
Retry-After and recovery afterwards.

These tests do not depend on ALCOVE_CLIENT_UFS (they run in the default mode).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from alcove_helpers import ACCESS_KEY, SECRET_KEY, MiB, etag_of, free_ports, md5hex, pattern_bytes, wait_until
from conftest import SIGV4_CONFIG, _ALL_WORKERS, empty_and_delete
from remotes import (AlcoveRemote, Azurite, GcsEmulator, MotoServer, S3sFs, TcpProxy, azurite_dir, mount_remote,
                     s3s_fs_binary, unmount)

REMOTES = ["moto", "s3s-fs", "alcove", "azurite", "gcs"]
# Remotes whose ETag of a single PUT is the body's MD5 (S3's rule); Azure's and GCS's are opaque.
MD5_ETAGS = {"moto", "s3s-fs", "alcove"}
# Content headers OpenDAL 0.59 cannot set on the remote object (Alcove keeps them in its metadata).
CARRIED_HEADERS = {"azurite": {"ContentDisposition", "ContentEncoding"}, "gcs": {"ContentDisposition"}}
SECRET_MARK = "sEcReT-" + uuid.uuid4().hex  # a secret that must never show up anywhere


def _uid(hint: str) -> str:
    return f"{hint}-{uuid.uuid4().hex[:10]}"


def _start_remote(kind: str, base, alcove_bin: str, config: str | None = None):
    if kind == "moto":
        return MotoServer(base).start()
    if kind == "s3s-fs":
        b = s3s_fs_binary()
        if not b:
            pytest.skip("S3S_FS_BIN is not set (path of the s3s-fs binary; scripts/install-deps.sh installs it)")
        return S3sFs(base, b).start()
    if kind == "alcove":
        r = AlcoveRemote(alcove_bin, base, config=config).start()
        _ALL_WORKERS.append(r.worker)  # panics of the remote fail the test too
        return r
    if kind == "azurite":
        d = azurite_dir()
        if not d:
            pytest.skip("AZURITE_DIR is not set (where npm installed azurite; scripts/install-deps.sh installs it)")
        return Azurite(base, d).start()
    if kind == "gcs":
        pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator is not installed in this venv")
        return GcsEmulator(base).start()
    raise ValueError(kind)


@pytest.fixture
def fresh_remote(alcove_bin, tmp_path):
    """Factory for remotes of one test (stopped by pid at its end): fresh_remote(kind, config=None)."""
    started = []

    def _start(kind: str, config: str | None = None):
        r = _start_remote(kind, tmp_path / f"remote-{len(started)}-{kind}", alcove_bin, config=config)
        started.append(r)
        return r

    yield _start
    for r in started:
        r.stop()


@pytest.fixture(scope="module", params=REMOTES)
def remote(request, alcove_bin, tmp_path_factory):
    """One remote S3 server of each kind, shared by the module's tests."""
    r = _start_remote(request.param, tmp_path_factory.mktemp(f"remote-{request.param}"), alcove_bin)
    yield r
    r.stop()


class Mounted:
    """A bucket `name` of the worker mounted on s3://rbucket/prefix of `remote`."""

    def __init__(self, worker, remote, name, rbucket, prefix):
        self.worker, self.remote, self.name, self.rbucket, self.prefix = worker, remote, name, rbucket, prefix
        self.rc = remote.client()

    def rkey(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def remote_keys(self) -> list[str]:
        out, token = [], None
        while True:
            kw = {"Bucket": self.rbucket}
            if self.prefix:
                kw["Prefix"] = self.prefix + "/"
            if token:
                kw["ContinuationToken"] = token
            r = self.rc.list_objects_v2(**kw)
            out += [o["Key"] for o in r.get("Contents", [])]
            if not r.get("IsTruncated"):
                return out
            token = r["NextContinuationToken"]


def _mount(worker, remote, prefix="", name=None, rbucket=None, **opts) -> Mounted:
    name = name or _uid("mnt")
    rbucket = rbucket or _uid("rb")
    remote.create_bucket(rbucket)
    try:
        mount_remote(worker, name, remote, remote_bucket=rbucket, prefix=prefix, **opts)
    except BaseException:
        try:
            remote.client().delete_bucket(Bucket=rbucket)
        except Exception:
            pass
        raise
    return Mounted(worker, remote, name, rbucket, prefix)


def _cleanup(m: Mounted):
    unmount(m.worker, m.name)
    try:
        empty_and_delete(m.rc, m.rbucket)
    except Exception:
        pass


@pytest.fixture
def mounted(worker, remote):
    """A fresh remote bucket, mounted with a two-level prefix."""
    m = _mount(worker, remote, prefix="pre/fix")
    yield m
    _cleanup(m)


@pytest.fixture
def local_bucket(s3):
    name = _uid("local")
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete(s3, name)


def _kind(remote) -> str:
    return remote.name


def _remote_user_meta(remote, meta: dict) -> dict:
    """The remote object's user metadata by the S3 names Alcove gave it. Azure allows only C#
    identifiers as names, so Alcove writes every other byte as `_` and two hex digits there."""
    if _kind(remote) != "azurite":
        return meta
    return {re.sub(r"_([0-9a-f]{2})", lambda g: chr(int(g.group(1), 16)), k): v for k, v in meta.items()}


def _etag(m: Mounted, key: str, data: bytes) -> str:
    """The ETag Alcove must show for `key` holding `data`: the MD5 on S3 remotes, otherwise the
    remote's own (Azure's and GCS's ETags are opaque)."""
    if _kind(m.remote) in MD5_ETAGS:
        return etag_of(data)
    return m.rc.head_object(Bucket=m.rbucket, Key=m.rkey(key))["ETag"]


def _err(e: ClientError):
    return e.response["Error"].get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"]


def expect_code(codes, status, fn, *a, **kw):
    with pytest.raises(ClientError) as ei:
        fn(*a, **kw)
    code, st = _err(ei.value)
    codes = (codes,) if isinstance(codes, str) else codes
    assert code in codes and st == status, (code, st, ei.value.response)
    return ei.value


def list_all(s3, bucket, **kw):
    keys, prefixes, token = [], [], None
    while True:
        args = dict(Bucket=bucket, **kw)
        if token:
            args["ContinuationToken"] = token
        r = s3.list_objects_v2(**args)
        keys += [o["Key"] for o in r.get("Contents", [])]
        prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        if not r.get("IsTruncated"):
            return keys, prefixes
        token = r["NextContinuationToken"]


def _only_real_keys(listed, expected):
    """Listed keys minus implicit folder entries (`dir/` of a prefix of an expected key), which a
    file-system remote (Alcove) shows and an object store does not."""
    extra = [k for k in listed if k not in expected]
    for k in extra:
        assert k.endswith("/") and any(e.startswith(k) for e in expected), f"unexpected key {k!r} in {listed}"
    return [k for k in listed if k in expected]


# --------------------------------------------------------------------------
# data path
# --------------------------------------------------------------------------


def test_put_get_head_range(s3, mounted):
    m = mounted
    data = pattern_bytes(300_000, 1)
    r = s3.put_object(Bucket=m.name, Key="dir/obj.bin", Body=data)
    etag = _etag(m, "dir/obj.bin", data)
    assert r["ETag"] == etag
    g = s3.get_object(Bucket=m.name, Key="dir/obj.bin")
    assert g["Body"].read() == data and g["ETag"] == etag and g["ContentLength"] == len(data)
    h = s3.head_object(Bucket=m.name, Key="dir/obj.bin")
    assert h["ContentLength"] == len(data) and h["ETag"] == etag
    rg = s3.get_object(Bucket=m.name, Key="dir/obj.bin", Range="bytes=1000-1999")
    assert rg["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert rg["Body"].read() == data[1000:2000] and rg["ContentRange"] == f"bytes 1000-1999/{len(data)}"
    assert s3.get_object(Bucket=m.name, Key="dir/obj.bin", Range="bytes=-10")["Body"].read() == data[-10:]
    # it really is on the remote, under the prefix
    rr = m.rc.get_object(Bucket=m.rbucket, Key=m.rkey("dir/obj.bin"))
    assert rr["Body"].read() == data and rr["ETag"] == etag
    # an empty object
    s3.put_object(Bucket=m.name, Key="empty", Body=b"")
    assert s3.get_object(Bucket=m.name, Key="empty")["Body"].read() == b""
    assert s3.head_object(Bucket=m.name, Key="empty")["ContentLength"] == 0


def test_remote_missing_key_is_no_such_key(s3, mounted):
    expect_code("NoSuchKey", 404, s3.get_object, Bucket=mounted.name, Key="nope/missing")
    expect_code(("404", "NoSuchKey"), 404, s3.head_object, Bucket=mounted.name, Key="missing")


def test_list_v2_prefix_delimiter_pagination(s3, mounted, remote):
    m = mounted
    keys = sorted([f"a/{i:02d}" for i in range(12)] + [f"b/c/{i}" for i in range(3)] + ["top1", "top2", "z/last"])
    for k in keys:
        s3.put_object(Bucket=m.name, Key=k, Body=k.encode())
    listed, _ = list_all(s3, m.name)
    assert _only_real_keys(listed, keys) == keys
    # pages of 5
    paged, _ = list_all(s3, m.name, MaxKeys=5)
    assert paged == listed
    # delimiter at the top
    top, prefixes = list_all(s3, m.name, Delimiter="/")
    assert top == ["top1", "top2"] and prefixes == ["a/", "b/", "z/"]
    # prefix and delimiter
    sub, sub_prefixes = list_all(s3, m.name, Prefix="b/", Delimiter="/")
    assert _only_real_keys(sub, keys) == [] and sub_prefixes == ["b/c/"]
    a_keys, _ = list_all(s3, m.name, Prefix="a/", MaxKeys=4)
    assert _only_real_keys(a_keys, keys) == [k for k in keys if k.startswith("a/")]
    # the listing shows the remote's objects, nothing outside the prefix
    assert sorted(k for k in m.remote_keys() if not k.endswith("/")) == [m.rkey(k) for k in keys]
    # sizes and ETags in the listing (the remote's: s3s-fs lists no ETags)
    r = s3.list_objects_v2(Bucket=m.name, Prefix="top")
    assert [(o["Key"], o["Size"]) for o in r["Contents"]] == [(k, len(k)) for k in ("top1", "top2")]
    if _kind(remote) != "s3s-fs":
        assert [o["ETag"] for o in r["Contents"]] == [_etag(m, k, k.encode()) for k in ("top1", "top2")]


def test_listing_rolls_up_a_large_common_prefix(s3, mounted):
    """A common prefix holding more keys than Alcove reads through (64) is skipped with a listing
    request that starts after it where the remote can start there (S3, GCS) and read through where
    it cannot (Azure Blob); either way every key and prefix is listed once, on every page size."""
    m = mounted
    big = [f"big/{i:03d}" for i in range(70)]
    for k in ["a0"] + big + ["c/x", "d1"]:
        m.rc.put_object(Bucket=m.rbucket, Key=m.rkey(k), Body=b"x")
    for page in (1000, 1, 2):
        assert list_all(s3, m.name, Delimiter="/", MaxKeys=page) == (["a0", "d1"], ["big/", "c/"]), page
    assert _only_real_keys(list_all(s3, m.name, Prefix="big/", MaxKeys=50)[0], big) == big


def test_folder_objects(s3, mounted, remote):
    if _kind(remote) == "s3s-fs":
        pytest.skip("s3s-fs keeps no zero-byte `dir/` objects (a PUT of `dir/` makes a directory it never lists)")
    if _kind(remote) == "gcs":
        pytest.skip("gcp-storage-emulator fails on a zero-byte uploadType=media upload (a TypeError, the "
                    "connection dropped), which is how OpenDAL writes a folder key")
    m = mounted
    s3.put_object(Bucket=m.name, Key="folder/", Body=b"")
    s3.put_object(Bucket=m.name, Key="folder/sub/", Body=b"")
    s3.put_object(Bucket=m.name, Key="folder/file", Body=b"f")
    h = s3.head_object(Bucket=m.name, Key="folder/")
    assert h["ContentLength"] == 0
    assert s3.get_object(Bucket=m.name, Key="folder/sub/")["Body"].read() == b""
    keys, prefixes = list_all(s3, m.name, Delimiter="/")
    assert keys == [] and prefixes == ["folder/"]
    keys, prefixes = list_all(s3, m.name, Prefix="folder/", Delimiter="/")
    assert keys == ["folder/", "folder/file"] and prefixes == ["folder/sub/"]
    keys, _ = list_all(s3, m.name)
    assert keys == ["folder/", "folder/file", "folder/sub/"]
    s3.delete_object(Bucket=m.name, Key="folder/sub/")
    expect_code(("404", "NoSuchKey"), 404, s3.head_object, Bucket=m.name, Key="folder/sub/")
    assert list_all(s3, m.name)[0] == ["folder/", "folder/file"]


def test_implied_folders_follow_the_folder_objects_option(s3, worker, remote):
    """AWS listings by default; `folder_objects=true` shows the folders keys imply, as the seed
    system does, and HEAD answers for them."""
    m = _mount(worker, remote)
    try:
        s3.put_object(Bucket=m.name, Key="d/e/f", Body=b"f")
        s3.put_object(Bucket=m.name, Key="top", Body=b"t")
        assert list_all(s3, m.name)[0] == ["d/e/f", "top"]
        expect_code(("404", "NoSuchKey"), 404, s3.head_object, Bucket=m.name, Key="d/")
        seed = _uid("seed")
        mount_remote(worker, seed, remote, remote_bucket=m.rbucket, folder_objects="true")
        try:
            assert list_all(s3, seed)[0] == ["d/", "d/e/", "d/e/f", "top"]
            assert list_all(s3, seed, Prefix="d/", Delimiter="/") == (["d/"], ["d/e/"])
            page = s3.list_objects_v2(Bucket=seed, MaxKeys=2)
            rest = s3.list_objects_v2(Bucket=seed, ContinuationToken=page["NextContinuationToken"])
            assert [o["Key"] for o in page["Contents"] + rest["Contents"]] == ["d/", "d/e/", "d/e/f", "top"]
            assert s3.head_object(Bucket=seed, Key="d/e/")["ContentLength"] == 0
            expect_code(("404", "NoSuchKey"), 404, s3.head_object, Bucket=seed, Key="x/")
        finally:
            unmount(worker, seed)
    finally:
        _cleanup(m)


def test_delete_and_delete_objects(s3, mounted):
    m = mounted
    for k in ("d/x", "d/y", "d/z", "keep"):
        s3.put_object(Bucket=m.name, Key=k, Body=b"1")
    s3.delete_object(Bucket=m.name, Key="d/x")
    s3.delete_object(Bucket=m.name, Key="d/x")  # idempotent
    s3.delete_object(Bucket=m.name, Key="never-there")
    expect_code("NoSuchKey", 404, s3.get_object, Bucket=m.name, Key="d/x")
    r = s3.delete_objects(Bucket=m.name, Delete={"Objects": [{"Key": "d/y"}, {"Key": "d/z"}, {"Key": "ghost"}]})
    assert sorted(d["Key"] for d in r.get("Deleted", [])) == ["d/y", "d/z", "ghost"], r
    assert not r.get("Errors"), r
    assert _only_real_keys(list_all(s3, m.name)[0], ["keep"]) == ["keep"]
    assert [k for k in m.remote_keys() if not k.endswith("/")] == [m.rkey("keep")]


def test_copy_object_within_and_across_mounts(s3, worker, remote, mounted, local_bucket):
    m = mounted
    data = pattern_bytes(70_000, 2)
    s3.put_object(Bucket=m.name, Key="src", Body=data, Metadata={"colour": "blue"}, ContentType="image/png")
    # same mount
    r = s3.copy_object(Bucket=m.name, Key="copies/dst", CopySource={"Bucket": m.name, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == _etag(m, "copies/dst", data)
    h = s3.head_object(Bucket=m.name, Key="copies/dst")
    assert h["Metadata"] == {"colour": "blue"} and h["ContentType"] == "image/png"
    assert m.rc.get_object(Bucket=m.rbucket, Key=m.rkey("copies/dst"))["Body"].read() == data
    # REPLACE directive
    s3.copy_object(Bucket=m.name, Key="copies/replaced", CopySource={"Bucket": m.name, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"colour": "red"}, ContentType="text/plain")
    h = s3.head_object(Bucket=m.name, Key="copies/replaced")
    assert h["Metadata"] == {"colour": "red"} and h["ContentType"] == "text/plain"
    # mount -> local bucket -> mount
    s3.copy_object(Bucket=local_bucket, Key="from-mount", CopySource={"Bucket": m.name, "Key": "src"})
    g = s3.get_object(Bucket=local_bucket, Key="from-mount")
    assert g["Body"].read() == data and g["Metadata"] == {"colour": "blue"}
    s3.put_object(Bucket=local_bucket, Key="local-src", Body=b"local data", Metadata={"origin": "local"})
    s3.copy_object(Bucket=m.name, Key="from-local", CopySource={"Bucket": local_bucket, "Key": "local-src"})
    g = s3.get_object(Bucket=m.name, Key="from-local")
    assert g["Body"].read() == b"local data" and g["Metadata"] == {"origin": "local"}
    # to a second mount of the same remote
    m2 = _mount(worker, remote)
    try:
        s3.copy_object(Bucket=m2.name, Key="other", CopySource={"Bucket": m.name, "Key": "src"})
        assert s3.get_object(Bucket=m2.name, Key="other")["Body"].read() == data
        assert m2.rc.get_object(Bucket=m2.rbucket, Key="other")["Body"].read() == data
    finally:
        _cleanup(m2)
    expect_code("NoSuchKey", 404, s3.copy_object, Bucket=m.name, Key="x",
                CopySource={"Bucket": m.name, "Key": "missing-src"})


def test_multipart_upload_file(s3, mounted, remote, tmp_path):
    if _kind(remote) == "gcs":
        pytest.skip("gcp-storage-emulator does not serve GCS's XML multipart upload (POST ?uploads), which "
                    "OpenDAL uses for objects larger than one part")
    m = mounted
    f = tmp_path / "big.bin"
    parts = [pattern_bytes(5 * MiB, 10 + i) for i in range(2)] + [pattern_bytes(3 * MiB + 17, 12)]
    f.write_bytes(b"".join(parts))
    whole_md5 = md5hex(f.read_bytes())
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=3)
    s3.upload_file(str(f), m.name, "mp/big.bin", Config=cfg, ExtraArgs={"Metadata": {"kind": "mp"}})
    h = s3.head_object(Bucket=m.name, Key="mp/big.bin")
    assert h["ContentLength"] == f.stat().st_size and h["Metadata"] == {"kind": "mp"}
    rh = m.rc.head_object(Bucket=m.rbucket, Key=m.rkey("mp/big.bin"))
    assert h["ETag"] == rh["ETag"], "the ETag shown is the remote's"
    out = tmp_path / "back.bin"
    s3.download_file(m.name, "mp/big.bin", str(out))
    assert md5hex(out.read_bytes()) == whole_md5
    remote_data = m.rc.get_object(Bucket=m.rbucket, Key=m.rkey("mp/big.bin"))["Body"].read()
    assert hashlib.md5(remote_data).hexdigest() == whole_md5
    assert s3.list_multipart_uploads(Bucket=m.name).get("Uploads", []) == []
    assert [k for k in m.remote_keys() if not k.endswith("/")] == [m.rkey("mp/big.bin")]


def test_multipart_low_level_and_abort(s3, mounted):
    m = mounted
    up = s3.create_multipart_upload(Bucket=m.name, Key="low")["UploadId"]
    p1, p2 = pattern_bytes(5 * MiB, 31), b"tail"
    e1 = s3.upload_part(Bucket=m.name, Key="low", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=m.name, Key="low", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=m.name, Key="low", UploadId=up)["Parts"]] == [1, 2]
    expect_code("NoSuchKey", 404, s3.get_object, Bucket=m.name, Key="low")  # parts are not visible yet
    s3.complete_multipart_upload(Bucket=m.name, Key="low", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert s3.get_object(Bucket=m.name, Key="low")["Body"].read() == p1 + p2
    up2 = s3.create_multipart_upload(Bucket=m.name, Key="aborted")["UploadId"]
    s3.upload_part(Bucket=m.name, Key="aborted", UploadId=up2, PartNumber=1, Body=b"zzz")
    s3.abort_multipart_upload(Bucket=m.name, Key="aborted", UploadId=up2)
    expect_code("NoSuchUpload", 404, s3.list_parts, Bucket=m.name, Key="aborted", UploadId=up2)
    expect_code("NoSuchKey", 404, s3.get_object, Bucket=m.name, Key="aborted")
    assert [k for k in m.remote_keys() if not k.endswith("/")] == [m.rkey("low")]


def test_metadata_and_content_headers_are_the_remote_objects(s3, mounted, remote):
    m = mounted
    s3.put_object(Bucket=m.name, Key="meta", Body=b"<p>hi</p>", Metadata={"owner": "alice", "n": "42"},
                  ContentType="text/html; charset=utf-8", ContentDisposition='attachment; filename="a.html"',
                  ContentEncoding="identity", CacheControl="max-age=60")
    for h in (s3.head_object(Bucket=m.name, Key="meta"), s3.get_object(Bucket=m.name, Key="meta")):
        assert h["Metadata"] == {"owner": "alice", "n": "42"}
        assert h["ContentType"] == "text/html; charset=utf-8"
        assert h["ContentDisposition"] == 'attachment; filename="a.html"'
        assert h["ContentEncoding"] == "identity"
        assert h["CacheControl"] == "max-age=60"
    rh = m.rc.head_object(Bucket=m.rbucket, Key=m.rkey("meta"))
    # The user's metadata is the remote's own; Alcove's fields (here boto3's default CRC32
    # checksum) ride along as x-amz-meta-alcove-*.
    remote_meta = _remote_user_meta(remote, rh["Metadata"])
    user = {k: v for k, v in remote_meta.items() if not k.startswith("alcove-")}
    assert user == {"owner": "alice", "n": "42"}
    assert remote_meta.get("alcove-checksum", "CRC32:").startswith("CRC32:")
    # A header OpenDAL cannot set on this remote rides along in Alcove's metadata instead.
    carried = CARRIED_HEADERS.get(_kind(remote), set())
    sent = {"ContentType": ("content-type", "text/html; charset=utf-8"),
            "CacheControl": ("cache-control", "max-age=60"),
            "ContentDisposition": ("content-disposition", 'attachment; filename="a.html"'),
            "ContentEncoding": ("content-encoding", "identity")}
    for field, (header, value) in sent.items():
        if field in carried:
            assert remote_meta.get(f"alcove-{header}") == value, (field, remote_meta)
        elif field != "ContentEncoding":  # not every S3 server keeps Content-Encoding: identity
            assert rh.get(field) == value, (field, rh)


def test_tags(s3, mounted, remote):
    m = mounted
    try:
        s3.put_object(Bucket=m.name, Key="t", Body=b"x", Tagging="a=1&b=two")
    except ClientError as e:
        if _kind(remote) == "s3s-fs" and _err(e) == ("NotImplemented", 501):
            pytest.skip("s3s-fs has no object tagging (and Alcove said NotImplemented, not 500)")
        raise
    assert sorted((t["Key"], t["Value"]) for t in s3.get_object_tagging(Bucket=m.name, Key="t")["TagSet"]) == \
        [("a", "1"), ("b", "two")]
    assert s3.head_object(Bucket=m.name, Key="t").get("ResponseMetadata", {}).get("HTTPHeaders", {}) \
        .get("x-amz-tagging-count") in (None, "2")
    s3.put_object_tagging(Bucket=m.name, Key="t", Tagging={"TagSet": [{"Key": "c", "Value": "3"}]})
    assert s3.get_object_tagging(Bucket=m.name, Key="t")["TagSet"] == [{"Key": "c", "Value": "3"}]
    assert s3.get_object(Bucket=m.name, Key="t")["Body"].read() == b"x"  # data untouched by tagging
    s3.delete_object_tagging(Bucket=m.name, Key="t")
    assert s3.get_object_tagging(Bucket=m.name, Key="t")["TagSet"] == []
    expect_code("NoSuchKey", 404, s3.get_object_tagging, Bucket=m.name, Key="missing")


def test_conditional_writes(s3, mounted, remote):
    """If-Match and If-None-Match: * on a PUT become the remote's own preconditions (S3's and
    Azure's headers; on GCS the ETag is checked and the write made conditional on the generation),
    so a write that lost a race fails on the remote too."""
    m = mounted
    e1 = s3.put_object(Bucket=m.name, Key="k", Body=b"one")["ETag"]
    expect_code("PreconditionFailed", 412, s3.put_object, Bucket=m.name, Key="k", Body=b"x", IfMatch='"0badc0de"')
    expect_code("NoSuchKey", 404, s3.put_object, Bucket=m.name, Key="missing", Body=b"x", IfMatch=e1)
    e2 = s3.put_object(Bucket=m.name, Key="k", Body=b"two", IfMatch=e1)["ETag"]
    assert s3.head_object(Bucket=m.name, Key="k")["ETag"] == e2 != e1
    s3.put_object(Bucket=m.name, Key="new", Body=b"n", IfNoneMatch="*")
    assert s3.get_object(Bucket=m.name, Key="new")["Body"].read() == b"n"
    # gcp-storage-emulator ignores GCS's ifGenerationMatch=0 (it overwrites where GCS refuses)
    if _kind(remote) != "gcs":
        expect_code("PreconditionFailed", 412, s3.put_object, Bucket=m.name, Key="k", Body=b"x", IfNoneMatch="*")
    assert s3.get_object(Bucket=m.name, Key="k")["Body"].read() == b"two"


def test_object_written_to_the_remote_directly(s3, mounted):
    m = mounted
    data = b"written by someone else"
    m.rc.put_object(Bucket=m.rbucket, Key=m.rkey("ext/file.txt"), Body=data, Metadata={"by": "other"},
                    ContentType="text/plain")
    rr = m.rc.head_object(Bucket=m.rbucket, Key=m.rkey("ext/file.txt"))
    g = s3.get_object(Bucket=m.name, Key="ext/file.txt")
    assert g["Body"].read() == data and g["ETag"] == rr["ETag"] == _etag(m, "ext/file.txt", data)
    h = s3.head_object(Bucket=m.name, Key="ext/file.txt")
    assert h["ContentLength"] == len(data) and h["Metadata"] == {"by": "other"} and h["ContentType"] == "text/plain"
    keys, prefixes = list_all(s3, m.name, Delimiter="/")
    assert prefixes == ["ext/"]
    assert _only_real_keys(list_all(s3, m.name, Prefix="ext/")[0], ["ext/file.txt"]) == ["ext/file.txt"]
    # changed on the remote: Alcove shows the new content once its metadata is re-checked (the
    # shared worker's interval is a second)
    m.rc.put_object(Bucket=m.rbucket, Key=m.rkey("ext/file.txt"), Body=b"v2")
    assert wait_until(lambda: s3.get_object(Bucket=m.name, Key="ext/file.txt")["Body"].read() == b"v2", 5)
    # deleted on the remote: gone, likewise
    m.rc.delete_object(Bucket=m.rbucket, Key=m.rkey("ext/file.txt"))
    assert wait_until(lambda: _get_or_none(s3, m.name, "ext/file.txt") is None, 5)


def test_mount_without_prefix_sees_the_whole_bucket(s3, worker, remote):
    m = _mount(worker, remote)
    try:
        m.rc.put_object(Bucket=m.rbucket, Key="root-level", Body=b"r")
        s3.put_object(Bucket=m.name, Key="via/alcove", Body=b"a")
        assert m.rc.get_object(Bucket=m.rbucket, Key="via/alcove")["Body"].read() == b"a"
        assert _only_real_keys(list_all(s3, m.name)[0], ["root-level", "via/alcove"]) == ["root-level", "via/alcove"]
    finally:
        _cleanup(m)


# --------------------------------------------------------------------------
# mount administration
# --------------------------------------------------------------------------


def _mount_list(worker) -> str:
    return worker.alcove("mount", "list", "--admin", worker.admin).stdout


def _mount_entry(out: str, name: str) -> str:
    """The lines `mount list` prints for /name: its line and any indented lines under it."""
    lines, block = out.splitlines(), []
    for i, ln in enumerate(lines):
        if f"/{name} " in ln + " " and not ln[:1].isspace():
            block = [ln]
            for nxt in lines[i + 1:]:
                if not nxt[:1].isspace() or not nxt.strip():
                    break
                block.append(nxt)
            break
    return "\n".join(block)


@pytest.fixture(scope="module")
def moto(tmp_path_factory, alcove_bin):
    r = MotoServer(tmp_path_factory.mktemp("moto-admin")).start()
    yield r
    r.stop()


def test_secrets_redacted_in_mount_list_and_log(s3, worker, moto):
    before = len(worker.log_text())
    m = _mount(worker, moto, secret_key=SECRET_MARK, access_key="AKIDVISIBLE", timeout=7)
    tok = _uid("tok")
    try:
        s3.put_object(Bucket=m.name, Key="k", Body=b"v")
        assert s3.get_object(Bucket=m.name, Key="k")["Body"].read() == b"v"
        expect_code("NoSuchKey", 404, s3.get_object, Bucket=m.name, Key="missing")
        out = _mount_list(worker)
        text = _mount_entry(out, m.name)
        assert text, out
        assert f"s3://{m.rbucket}" in text and "AKIDVISIBLE" in text and moto.endpoint in text, out
        assert "<redacted>" in text and SECRET_MARK not in out, out
        # a session token is a secret as well (a mount that is never used)
        mount_remote(worker, m.name + "-tok", moto, remote_bucket=m.rbucket, session_token=SECRET_MARK + tok)
        out = _mount_list(worker)
        assert SECRET_MARK not in out and tok not in out, out
        assert out.count("<redacted>") >= 3, out
    finally:
        unmount(worker, m.name + "-tok")
        _cleanup(m)
    log = worker.log_text()[before:]
    assert SECRET_MARK not in log and tok not in log


@pytest.mark.parametrize("uri, options", [
    ("s3://", []),
    ("s3:///prefix-without-bucket", []),
    ("s3://fine-bucket", ["--option", "no_such_option=1"]),
    ("s3://fine-bucket", ["--option", "timeout=abc"]),
    ("s3://fine-bucket", ["--option", "timeout=-3"]),
    ("s3://fine-bucket", ["--option", "virtual_host_style=maybe"]),
    ("s3://fine-bucket", ["--option", "endpoint=not a url"]),
    ("s3://fine-bucket", ["--option", "novalue"]),
    ("ftp://host/x", []),
])
def test_mount_add_refuses_bad_uri_and_options(worker, uri, options):
    name = _uid("bad")
    r = worker.alcove("mount", "add", "--admin", worker.admin, "--path", f"/{name}", "--ufs-uri", uri,
                      "--option", "region=us-east-1", *options, check=False)
    try:
        assert r.returncode != 0, (r.stdout, r.stderr)
        assert r.stderr.strip() or r.stdout.strip(), "no message"
        assert "panicked" not in r.stderr
        assert f"/{name}" not in _mount_list(worker)
    finally:
        if r.returncode == 0:
            unmount(worker, name)


def test_mount_add_does_not_contact_the_remote(s3, worker):
    (port,) = free_ports(1)  # nothing listens there
    name = _uid("offline")
    r = worker.alcove("mount", "add", "--admin", worker.admin, "--path", f"/{name}", "--ufs-uri", "s3://later/p",
                      "--option", f"endpoint=http://127.0.0.1:{port}", "--option", "region=us-east-1",
                      "--option", "access_key_id=a", "--option", "secret_access_key=b",
                      "--option", "timeout=2", "--option", "virtual_host_style=false", timeout=30)
    try:
        assert f"/{name}" in _mount_list(worker)
        t = time.monotonic()
        r = worker.raw("GET", f"/{name}/k", timeout=30)
        assert r.status == 503 and r.code in ("ServiceUnavailable", "SlowDown"), r
        assert "retry-after" in r.headers, r
        assert time.monotonic() - t < 12
    finally:
        unmount(worker, name)


def test_mount_from_config_file(start_worker, moto):
    rb = _uid("cfg")
    moto.create_bucket(rb)
    moto.client().put_object(Bucket=rb, Key="p/seeded", Body=b"from config")
    w = start_worker(config=f'''
[[mounts]]
path = "/cfgmount"
ufs = "s3://{rb}/p"

[mounts.options]
endpoint = "{moto.endpoint}"
region = "us-east-1"
access_key_id = "AKIDCONFIG"
secret_access_key = "{SECRET_MARK}"
timeout = "10"
virtual_host_style = "false"
''', name="s3cfg")
    c = w.client()
    assert c.get_object(Bucket="cfgmount", Key="seeded")["Body"].read() == b"from config"
    c.put_object(Bucket="cfgmount", Key="new", Body=b"n")
    assert moto.client().get_object(Bucket=rb, Key="p/new")["Body"].read() == b"n"
    out = _mount_list(w)
    assert "/cfgmount" in out and SECRET_MARK not in out and "<redacted>" in out, out
    assert SECRET_MARK not in w.log_text()


# --------------------------------------------------------------------------
# failures
# --------------------------------------------------------------------------


def _assert_unavailable(r, started: float, limit: float):
    took = time.monotonic() - started
    assert r.status == 503, (r, took)
    assert r.headers.get("retry-after", "").strip(), f"no Retry-After: {r}"
    if r.body:
        assert r.code in ("ServiceUnavailable", "SlowDown"), r
    assert took < limit, f"took {took:.1f}s (limit {limit}s)"


def _probe_all(worker, name: str, limit: float):
    """GET, HEAD, PUT and a listing of the mount all answer 503 + Retry-After within `limit` s."""
    for method, target, body in (("GET", f"/{name}/obj", b""), ("HEAD", f"/{name}/obj", b""),
                                 ("PUT", f"/{name}/new-while-down", b"data"),
                                 ("GET", f"/{name}?list-type=2", b"")):
        t = time.monotonic()
        r = worker.raw(method, target, body=body, timeout=limit + 30)
        _assert_unavailable(r, t, limit)


@pytest.mark.parametrize("kind", REMOTES)
def test_remote_killed_then_back(s3, worker, kind, fresh_remote):
    r = fresh_remote(kind)
    m = _mount(worker, r, prefix="k", timeout=5)
    try:
        s3.put_object(Bucket=m.name, Key="obj", Body=b"before")
        r.kill()
        _probe_all(worker, m.name, limit=15)
        assert worker.proc.poll() is None, "the worker died"
        # back on the same port (moto forgets everything, Azurite the last 5 s: it saves its blob
        # index every 5 s, and SIGKILL stops it before that; seed them again)
        r.start(keep_port=True)
        rc = r.client()
        if kind in ("moto", "azurite"):
            try:
                rc.create_bucket(Bucket=m.rbucket)
            except ClientError:
                pass  # Azurite kept the container
            rc.put_object(Bucket=m.rbucket, Key=m.rkey("obj"), Body=b"before")
        ok = wait_until(lambda: _get_or_none(s3, m.name, "obj") == b"before", timeout=20, interval=0.5)
        assert ok, f"no recovery; worker log tail:\n{worker.log_tail()}"
        s3.put_object(Bucket=m.name, Key="after", Body=b"after")
        assert rc.get_object(Bucket=m.rbucket, Key=m.rkey("after"))["Body"].read() == b"after"
    finally:
        unmount(worker, m.name)


def _get_or_none(s3, bucket, key):
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception:
        return None


@pytest.fixture(scope="module")
def alcove_remote(alcove_bin, tmp_path_factory):
    r = _start_remote("alcove", tmp_path_factory.mktemp("proxied-alcove"), alcove_bin)
    yield r
    r.stop()


@pytest.mark.parametrize("kind", ["moto", "alcove"])
def test_slow_remote_times_out_with_503(s3, worker, kind, moto, alcove_remote):
    r = moto if kind == "moto" else alcove_remote
    with TcpProxy(r.port) as proxy:
        m = _mount(worker, r, endpoint=proxy.endpoint, timeout=2)
        try:
            s3.put_object(Bucket=m.name, Key="obj", Body=b"fast")
            proxy.set_mode("delay", 20)
            _probe_all(worker, m.name, limit=10)
            assert worker.proc.poll() is None
            proxy.set_mode("pass")
            proxy.close_connections()
            ok = wait_until(lambda: _get_or_none(s3, m.name, "obj") == b"fast", timeout=15, interval=0.5)
            assert ok, f"no recovery after the remote got fast again; log tail:\n{worker.log_tail()}"
        finally:
            proxy.set_mode("pass")
            unmount(worker, m.name)
            empty_and_delete(m.rc, m.rbucket)


def test_refusing_remote_gives_503_then_recovers(s3, worker, moto):
    with TcpProxy(moto.port) as proxy:
        m = _mount(worker, moto, endpoint=proxy.endpoint, timeout=5)
        try:
            s3.put_object(Bucket=m.name, Key="obj", Body=b"ok")
            proxy.set_mode("refuse")
            _probe_all(worker, m.name, limit=12)
            proxy.set_mode("pass")
            ok = wait_until(lambda: _get_or_none(s3, m.name, "obj") == b"ok", timeout=15, interval=0.5)
            assert ok, f"no recovery; log tail:\n{worker.log_tail()}"
        finally:
            proxy.set_mode("pass")
            unmount(worker, m.name)
            empty_and_delete(m.rc, m.rbucket)


def _check_access_denied(s3, worker, mount_name):
    before = len(worker.log_text())
    for i in range(5):
        expect_code("AccessDenied", 403, s3.get_object, Bucket=mount_name, Key=f"k{i}")
    expect_code("AccessDenied", 403, s3.put_object, Bucket=mount_name, Key="w", Body=b"x")
    expect_code("AccessDenied", 403, s3.list_objects_v2, Bucket=mount_name)
    time.sleep(0.5)
    new = worker.log_text()[before:]
    lines = [ln for ln in new.splitlines() if f"/{mount_name}" in ln]
    assert len(lines) == 1, f"expected one log line naming /{mount_name}, got {len(lines)}:\n" + "\n".join(lines)


@pytest.mark.parametrize("kind", ["s3s-fs", "azurite"])
def test_bad_credentials(s3, worker, kind, fresh_remote):
    r = fresh_remote(kind)
    rb = _uid("creds")
    r.create_bucket(rb)
    name = _uid("denied")
    wrong = "wrong-" + SECRET_MARK
    if kind == "azurite":  # an account key is base64
        wrong = base64.b64encode(wrong.encode()).decode()
    try:
        mount_remote(worker, name, r, remote_bucket=rb, secret_key=wrong)
        _check_access_denied(s3, worker, name)
        assert SECRET_MARK not in worker.log_text() and wrong not in worker.log_text()
    finally:
        unmount(worker, name)


def test_abfs_mount_reaches_azurite_which_serves_no_dfs(s3, worker, fresh_remote):
    """ADLS Gen2 (abfs://) speaks Azure's DFS API, which Azurite does not serve (it answers Create
    File and List Paths with a bare 400): the mount's requests reach it, signed, and come back as
    clean errors naming the mount. Should Azurite learn DFS, this fails: run the data tests on it."""
    r = fresh_remote("azurite")
    fs = _uid("fs")
    r.create_bucket(fs)
    name = _uid("adls")
    try:
        worker.alcove("mount", "add", "--admin", worker.admin, "--path", f"/{name}", "--ufs-uri",
                      f"abfs://{fs}@{r.access_key}.dfs.core.windows.net/p",
                      "--option", f"endpoint={r.account_endpoint()}", "--option", f"account_key={r.secret_key}")
        for method, target, body in (("PUT", f"/{name}/k", b"data"), ("GET", f"/{name}?list-type=2", b"")):
            resp = worker.raw(method, target, body=body, timeout=30)
            assert (resp.status, resp.code) == (400, "InvalidRequest"), resp
            assert f"/{name}" in resp.error().get("Message", ""), resp
        assert worker.raw("GET", f"/{name}/k", timeout=30).status == 404
        assert r.client().list_objects_v2(Bucket=fs)["Contents"] == []
        assert worker.proc.poll() is None
    finally:
        unmount(worker, name)


def test_bad_credentials_sigv4_alcove(s3, worker, fresh_remote):
    r = fresh_remote("alcove", config=SIGV4_CONFIG)
    r.access_key, r.secret_key = ACCESS_KEY, SECRET_KEY  # the remote's one credential pair
    rb = _uid("creds")
    r.create_bucket(rb)
    name, ok = _uid("denied"), _uid("granted")
    try:
        mount_remote(worker, name, r, remote_bucket=rb, secret_key="wrong-" + SECRET_MARK)
        _check_access_denied(s3, worker, name)
        assert SECRET_MARK not in worker.log_text()
        # the right secret works
        mount_remote(worker, ok, r, remote_bucket=rb)
        s3.put_object(Bucket=ok, Key="k", Body=b"v")
        assert s3.get_object(Bucket=ok, Key="k")["Body"].read() == b"v"
    finally:
        unmount(worker, name)
        unmount(worker, ok)


@pytest.mark.parametrize("kind", REMOTES)
def test_missing_remote_bucket(s3, worker, kind, moto, alcove_remote, fresh_remote):
    r = {"moto": moto, "alcove": alcove_remote}.get(kind) or fresh_remote(kind)
    name = _uid("nobucket")
    try:
        mount_remote(worker, name, r, remote_bucket=_uid("never-created"), timeout=5)
        for method, target in (("GET", f"/{name}/k"), ("GET", f"/{name}?list-type=2"), ("HEAD", f"/{name}/k")):
            resp = worker.raw(method, target, timeout=30)
            assert resp.status in (404, 503), (method, target, resp)
            if resp.status == 404 and method == "GET" and resp.body:
                assert resp.code in ("NoSuchBucket", "NoSuchKey"), resp
            if resp.status == 503:
                assert resp.headers.get("retry-after"), resp
        if kind != "s3s-fs":  # s3s-fs takes a PUT into a bucket it does not have
            resp = worker.raw("PUT", f"/{name}/k", body=b"x", timeout=30)
            assert resp.status in (404, 503), resp
            if resp.status == 404:
                assert resp.code == "NoSuchBucket", resp
    finally:
        unmount(worker, name)


def test_metadata_budget_of_a_2kb_remote(s3, worker, fresh_remote):
    """Alcove keeps tags and checksums in the remote's user metadata: against a remote with S3's
    2 KB budget (a second Alcove with default limits, as AWS), a set that fits Alcove's own limits
    but not the remote's is refused with MetadataTooLarge, and nothing is changed."""
    r = fresh_remote("alcove")
    m = _mount(worker, r)
    try:
        s3.put_object(Bucket=m.name, Key="k", Body=b"v", Metadata={"note": "x" * 1500})
        big = [{"Key": f"{i}" + "k" * 120, "Value": "v" * 250} for i in range(3)]
        e = expect_code("MetadataTooLarge", 400, s3.put_object_tagging, Bucket=m.name, Key="k",
                        Tagging={"TagSet": big})
        assert "remote" in e.response["Error"]["Message"], e.response
        assert s3.get_object_tagging(Bucket=m.name, Key="k")["TagSet"] == []
        assert s3.head_object(Bucket=m.name, Key="k")["Metadata"] == {"note": "x" * 1500}
        assert s3.get_object(Bucket=m.name, Key="k")["Body"].read() == b"v"
    finally:
        _cleanup(m)
