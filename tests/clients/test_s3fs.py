"""s3fs (fsspec, async aiobotocore) against an Alcove worker."""

from __future__ import annotations

import errno
import os
import uuid

import pytest
import s3fs

from alcove_helpers import ACCESS_KEY, SECRET_KEY, bucket_dir, md5hex, tree


def mkfs(w, **kw) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(
        key=kw.pop("key", ACCESS_KEY),
        secret=kw.pop("secret", SECRET_KEY),
        endpoint_url=w.endpoint,
        client_kwargs={"region_name": "us-east-1"},
        config_kwargs={"s3": {"addressing_style": "path"}, "retries": {"total_max_attempts": 1}},
        use_listings_cache=False,
        skip_instance_cache=True,
        **kw,
    )


@pytest.fixture(scope="module")
def fs(worker):
    return mkfs(worker)


def files_only(paths):
    return sorted(p for p in paths if not p.endswith("/"))


def test_pipe_cat_info(fs, s3, bucket):
    data = os.urandom(200_000)
    fs.pipe(f"{bucket}/dir/blob", data)
    assert fs.cat(f"{bucket}/dir/blob") == data
    assert s3.get_object(Bucket=bucket, Key="dir/blob")["Body"].read() == data
    info = fs.info(f"{bucket}/dir/blob")
    assert info["type"] == "file" and info["size"] == len(data)
    assert info["ETag"] == f'"{md5hex(data)}"'
    assert fs.cat_file(f"{bucket}/dir/blob", start=10, end=20) == data[10:20]
    assert fs.cat_file(f"{bucket}/dir/blob", start=199_990) == data[199_990:]
    assert fs.size(f"{bucket}/dir/blob") == len(data)
    assert fs.checksum(f"{bucket}/dir/blob")


def test_open_read_seek_write(fs, bucket):
    data = os.urandom(3 * 1024 * 1024 + 17)
    with fs.open(f"{bucket}/seek.bin", "wb") as f:  # < block size: single PutObject at close
        f.write(data)
    with fs.open(f"{bucket}/seek.bin", "rb", block_size=256 * 1024) as f:
        assert f.read(100) == data[:100]
        f.seek(2_000_000)
        assert f.read(70_000) == data[2_000_000:2_070_000]
        f.seek(-10, 2)
        assert f.read() == data[-10:]
        f.seek(5)
        assert f.read(5) == data[5:10]
    with fs.open(f"{bucket}/text.txt", "w") as f:
        f.write("h\u00e9llo\n")
    with fs.open(f"{bucket}/text.txt", "r") as f:
        assert f.read() == "h\u00e9llo\n"


def test_listing_and_folders(fs, s3, bucket):
    for k in ("a/b/c", "a/d", "e"):
        fs.pipe(f"{bucket}/{k}", k.encode())
    assert files_only(fs.find(bucket)) == [f"{bucket}/a/b/c", f"{bucket}/a/d", f"{bucket}/e"]
    top = fs.ls(bucket, detail=True)
    assert {(o["name"], o["type"]) for o in top} == {(f"{bucket}/a", "directory"), (f"{bucket}/e", "file")}
    sub = fs.ls(f"{bucket}/a", detail=True)
    real = {(o["name"], o["type"]) for o in sub if not o["name"].endswith("/")}
    assert real == {(f"{bucket}/a/b", "directory"), (f"{bucket}/a/d", "file")}
    # a folder object may show up as a 0-byte placeholder
    assert all(o["size"] == 0 for o in sub if o["name"].endswith("/"))
    assert fs.isdir(f"{bucket}/a") and fs.isdir(f"{bucket}/a/b")
    assert fs.isfile(f"{bucket}/a/d") and not fs.isfile(f"{bucket}/a")
    assert fs.exists(f"{bucket}/a/b/c") and not fs.exists(f"{bucket}/zzz")
    # s3fs reports a folder object inside its own folder as a file named ''
    walked = {root: sorted(f for f in files if f) for root, _dirs, files in fs.walk(bucket)}
    assert walked[bucket] == ["e"] and walked[f"{bucket}/a"] == ["d"] and walked[f"{bucket}/a/b"] == ["c"]
    assert fs.du(bucket) == len(b"a/b/c") + len(b"a/d") + len(b"e")
    assert sorted(fs.glob(f"{bucket}/a/*")) == [f"{bucket}/a/b", f"{bucket}/a/d"]


def test_rm(fs, s3, bucket, worker):
    for k in ("x/1", "x/2", "x/y/3", "keep"):
        fs.pipe(f"{bucket}/{k}", b"1")
    fs.rm(f"{bucket}/keep")
    assert not fs.exists(f"{bucket}/keep")
    fs.rm(f"{bucket}/x", recursive=True)  # DeleteObjects
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert tree(bucket_dir(worker, bucket)) == {}


def test_put_get_directories(fs, bucket, tmp_path):
    src = tmp_path / "src"
    (src / "n1" / "n2").mkdir(parents=True)
    files = {"top.txt": b"top", "n1/mid.bin": os.urandom(5000), "n1/n2/deep name+.txt": b"deep"}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    fs.put(str(src) + "/", f"{bucket}/up/", recursive=True)
    assert files_only(fs.find(f"{bucket}/up")) == sorted(f"{bucket}/up/{k}" for k in files)
    dst = tmp_path / "dst"
    fs.get(f"{bucket}/up/", str(dst) + "/", recursive=True)
    got = {str(p.relative_to(dst)): p.read_bytes() for p in dst.rglob("*") if p.is_file()}
    assert got == files


def test_missing(fs, bucket):
    with pytest.raises(FileNotFoundError):
        fs.cat(f"{bucket}/missing")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{bucket}/missing")
    with pytest.raises(FileNotFoundError):
        fs.open(f"{bucket}/missing", "rb")
    nob = f"nob-{uuid.uuid4().hex[:8]}"
    with pytest.raises(FileNotFoundError):
        fs.ls(nob)
    with pytest.raises(FileNotFoundError):
        fs.cat(f"{nob}/k")
    assert not fs.exists(nob)


def test_bucket_mkdir_rmdir(fs, worker, s3):
    name = f"s3fs-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    assert (worker.root / name).is_dir()
    s3.head_bucket(Bucket=name)
    assert name in [b.rstrip("/") for b in fs.ls("")]
    fs.pipe(f"{name}/f", b"1")
    fs.rm(f"{name}/f")
    fs.rmdir(name)
    assert not (worker.root / name).exists()


def test_touch_and_empty(fs, bucket):
    fs.touch(f"{bucket}/empty")
    assert fs.info(f"{bucket}/empty")["size"] == 0
    assert fs.cat(f"{bucket}/empty") == b""


def test_version_aware(worker, s3, bucket):
    vfs = mkfs(worker, version_aware=True)
    vfs.pipe(f"{bucket}/v/obj", b"versioned?")
    vers = vfs.object_version_info(f"{bucket}/v/obj")
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in vers] == [("v/obj", "null", True)]
    names = files_only(vfs.find(bucket))
    assert names == [f"{bucket}/v/obj"]


def test_special_keys(fs, s3, bucket):
    keys = ["sp ace/pl+us.txt", "\u00fcn\u00ef/\u65e5\u672c.txt", "amp&eq=.txt", "pct%41.txt"]
    for k in keys:
        fs.pipe(f"{bucket}/{k}", k.encode())
    assert files_only(fs.find(bucket)) == sorted(f"{bucket}/{k}" for k in keys)
    for k in keys:
        assert fs.cat(f"{bucket}/{k}") == k.encode()
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()


def test_invalid_key_rejected(fs, bucket, worker):
    before = tree(worker.root.parent)
    with pytest.raises(OSError) as ei:
        fs.pipe(f"{bucket}/x/.alcove.sys/y", b"PWNED")
    assert ei.value.errno == errno.EINVAL, repr(ei.value)  # s3fs maps InvalidArgument to EINVAL
    assert "reserved" in str(ei.value)
    with pytest.raises(OSError) as ei:
        fs.pipe(f"{bucket}/a//b", b"PWNED")
    assert ei.value.errno == errno.EINVAL, repr(ei.value)
    assert tree(worker.root.parent) == before


def test_sigv4(sigv4_worker):
    good = mkfs(sigv4_worker)
    name = f"s3fssig-{uuid.uuid4().hex[:8]}"
    good.mkdir(name)
    good.pipe(f"{name}/a b/c+d", b"signed")
    assert good.cat(f"{name}/a b/c+d") == b"signed"
    assert files_only(good.ls(f"{name}/a b")) == [f"{name}/a b/c+d"]
    bad = mkfs(sigv4_worker, secret="wrong")
    with pytest.raises((PermissionError, OSError)) as ei:
        bad.cat(f"{name}/a b/c+d")
    assert "SignatureDoesNotMatch" in repr(ei.value) or isinstance(ei.value, PermissionError), repr(ei.value)
    with pytest.raises((PermissionError, OSError)):
        bad.pipe(f"{name}/evil", b"x")
    assert not good.exists(f"{name}/evil")
