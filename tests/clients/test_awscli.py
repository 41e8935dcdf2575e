"""AWS CLI v1 (`aws s3 ...`, `aws s3api ...`) against an Alcove worker.

The CLI gets the endpoint from --endpoint-url, credentials from the
environment and path-style addressing from AWS_CONFIG_FILE (a temporary
config written by conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from alcove_helpers import bucket_dir, etag_of, fs_key_rules, md5b64, tree

AWS = str(Path(sys.executable).with_name("aws"))


def aws(w, *args, env=None, check=True, timeout=120) -> subprocess.CompletedProcess:
    cmd = [AWS, "--endpoint-url", w.endpoint, "--region", "us-east-1", "--output", "json", *args]
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def aws_json(w, *args, **kw):
    out = aws(w, *args, **kw).stdout.strip()
    return json.loads(out) if out else {}


def aws_fail(w, code: str, *args, **kw) -> subprocess.CompletedProcess:
    r = aws(w, *args, check=False, **kw)
    assert r.returncode != 0, f"{args} unexpectedly succeeded: {r.stdout}"
    assert f"({code})" in r.stderr or code in r.stderr, f"{args}: expected {code}, got: {r.stderr}"
    return r


@pytest.fixture(autouse=True)
def _aws_config_is_path_style():
    cfg = Path(os.environ["AWS_CONFIG_FILE"]).read_text()
    assert "addressing_style = path" in cfg


def keys_of(s3, bucket, prefix=""):
    r = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in r.get("Contents", [])]


# --------------------------------------------------------------------------
# aws s3
# --------------------------------------------------------------------------


def test_s3_mb_ls_rb(worker, s3):
    name = f"cli-{uuid.uuid4().hex[:10]}"
    r = aws(worker, "s3", "mb", f"s3://{name}")
    assert f"make_bucket: {name}" in r.stdout
    assert (worker.root / name).is_dir()
    assert name in aws(worker, "s3", "ls").stdout.split()
    aws_fail(worker, "BucketAlreadyOwnedByYou", "s3", "mb", f"s3://{name}")
    s3.put_object(Bucket=name, Key="x", Body=b"1")
    aws_fail(worker, "BucketNotEmpty", "s3", "rb", f"s3://{name}")
    r = aws(worker, "s3", "rb", f"s3://{name}", "--force")
    assert f"remove_bucket: {name}" in r.stdout
    assert not (worker.root / name).exists()
    aws_fail(worker, "NoSuchBucket", "s3", "rb", f"s3://{name}")


def test_s3_cp_roundtrip(worker, s3, bucket, tmp_path):
    data = os.urandom(300_000)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    r = aws(worker, "s3", "cp", "--no-progress", "--content-type", "application/x-cli-test", str(src),
            f"s3://{bucket}/dir/file.bin")
    assert "upload:" in r.stdout
    h = s3.head_object(Bucket=bucket, Key="dir/file.bin")
    assert h["ETag"] == etag_of(data) and h["ContentType"] == "application/x-cli-test"
    dst = tmp_path / "dst.bin"
    aws(worker, "s3", "cp", "--no-progress", f"s3://{bucket}/dir/file.bin", str(dst))
    assert dst.read_bytes() == data
    ls = aws(worker, "s3", "ls", f"s3://{bucket}/dir/").stdout
    assert any(line.split()[-2:] == ["300000", "file.bin"] for line in ls.splitlines()), ls
    # stdin / stdout streaming
    r = subprocess.run([AWS, "--endpoint-url", worker.endpoint, "s3", "cp", "-", f"s3://{bucket}/piped.txt"],
                       input=b"piped content", capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([AWS, "--endpoint-url", worker.endpoint, "s3", "cp", f"s3://{bucket}/piped.txt", "-"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == b"piped content"


def test_s3_cp_missing(worker, bucket, tmp_path):
    r = aws(worker, "s3", "cp", f"s3://{bucket}/does-not-exist", str(tmp_path / "x"), check=False)
    assert r.returncode != 0
    assert "404" in r.stderr or "Not Found" in r.stderr, r.stderr
    assert not (tmp_path / "x").exists()
    r = aws(worker, "s3", "ls", f"s3://nobucket-{uuid.uuid4().hex[:8]}/", check=False)
    assert r.returncode != 0 and "NoSuchBucket" in r.stderr, r.stderr


def test_s3_ls_lists_objects_and_prefixes(worker, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a/b/c", Body=b"abc")
    s3.put_object(Bucket=bucket, Key="top", Body=b"t")
    out = aws(worker, "s3", "ls", "--recursive", f"s3://{bucket}/").stdout
    assert [line.split()[-1] for line in out.splitlines()] == ["a/b/c", "top"], "no invented folder objects"
    out = aws(worker, "s3", "ls", f"s3://{bucket}/").stdout
    lines = [line.split() for line in out.splitlines()]
    assert ["PRE", "a/"] in lines
    assert lines[-1][-2:] == ["1", "top"]
    out = aws(worker, "s3", "ls", f"s3://{bucket}/a/").stdout
    lines = [line.split() for line in out.splitlines()]
    assert ["PRE", "b/"] in lines


def _write_tree(base: Path, files: dict):
    for rel, data in files.items():
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def _read_files(base: Path) -> dict:
    return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}


def test_s3_sync_up_down_delete(worker, s3, bucket, tmp_path):
    files = {
        "one.txt": b"one",
        "sub/two.txt": b"two" * 100,
        "sub/deeper/three.bin": os.urandom(70_000),
        "with space/plus+amp&.txt": b"special",
        "\u00fcnic\u00f8de/\u65e5\u672c.txt": "unicode".encode(),
    }
    src = tmp_path / "src"
    _write_tree(src, files)
    # sync compares sizes and times; make the local files clearly older than
    # the uploads (S3 times have one-second resolution)
    past = time.time() - 120
    for p in src.rglob("*"):
        os.utime(p, (past, past))
    r = aws(worker, "s3", "sync", "--no-progress", str(src), f"s3://{bucket}/p/")
    assert r.stdout.count("upload:") == len(files)
    remote = {k[2:] for k in keys_of(s3, bucket, "p/") if not k.endswith("/")}
    assert remote == set(files)
    for rel, data in files.items():
        assert (bucket_dir(worker, bucket) / "p" / rel).read_bytes() == data
    # nothing changed -> nothing uploaded
    r = aws(worker, "s3", "sync", "--no-progress", str(src), f"s3://{bucket}/p/")
    assert "upload:" not in r.stdout, r.stdout
    (src / "sub" / "two.txt").write_bytes(b"changed size")
    r = aws(worker, "s3", "sync", "--no-progress", str(src), f"s3://{bucket}/p/")
    assert r.stdout.count("upload:") == 1 and "sub/two.txt" in r.stdout
    # download into a fresh directory
    dst = tmp_path / "dst"
    aws(worker, "s3", "sync", "--no-progress", f"s3://{bucket}/p/", str(dst))
    assert _read_files(dst) == _read_files(src)
    # --delete removes remote files that are gone locally, implicit folders vanish
    (src / "sub" / "deeper" / "three.bin").unlink()
    r = aws(worker, "s3", "sync", "--no-progress", "--delete", str(src), f"s3://{bucket}/p/")
    assert "delete:" in r.stdout and "three.bin" in r.stdout
    keys = keys_of(s3, bucket, "p/")
    assert "p/sub/deeper/three.bin" not in keys and "p/sub/deeper/" not in keys
    assert "p/sub/two.txt" in keys


def test_s3_upload_empty_file_then_more(worker, s3, bucket, tmp_path):
    """An empty upload followed by more uploads on the same keep-alive
    connection. The CLI sends `Expect: 100-continue` even for an empty body;
    S3 answers `100 Continue` first. A server that answers the empty PUT with
    its final response straight away (allowed by RFC 9110) trips a bug in the
    CLI's bundled botocore: the connection keeps the early status line and
    the next response on it is misparsed, so the CLI hangs until its read
    timeout."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a-empty").write_bytes(b"")
    for name in ("b.txt", "c.txt", "d.txt"):
        (src / name).write_bytes(name.encode() * 10)
    cfg = tmp_path / "aws-config"
    cfg.write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"
                   "    max_concurrent_requests = 1\n")
    t0 = time.monotonic()
    r = aws(worker, "--cli-read-timeout", "10", "s3", "cp", "--recursive", "--no-progress", str(src),
            f"s3://{bucket}/e/", env={"AWS_CONFIG_FILE": str(cfg), "AWS_MAX_ATTEMPTS": "1"}, check=False)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, f"upload failed after {elapsed:.1f}s:\n{r.stdout}\n{r.stderr[-1500:]}"
    assert elapsed < 8, f"uploads stalled ({elapsed:.1f}s)"
    assert sorted(keys_of(s3, bucket, "e/")) == ["e/a-empty", "e/b.txt", "e/c.txt", "e/d.txt"]
    assert s3.get_object(Bucket=bucket, Key="e/a-empty")["ContentLength"] == 0


def test_s3_rm(worker, s3, bucket):
    for k in ("r/a", "r/b/c", "r/b/d", "keep"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = aws(worker, "s3", "rm", f"s3://{bucket}/keep")
    assert "delete:" in r.stdout
    assert "keep" not in keys_of(s3, bucket)
    aws(worker, "s3", "rm", "--recursive", f"s3://{bucket}/r/")
    assert keys_of(s3, bucket) == []
    assert tree(bucket_dir(worker, bucket)) == {}


# --------------------------------------------------------------------------
# aws s3api
# --------------------------------------------------------------------------


def test_s3api_buckets(worker, s3):
    name = f"api-{uuid.uuid4().hex[:10]}"
    aws(worker, "s3api", "create-bucket", "--bucket", name)
    assert name in [b["Name"] for b in aws_json(worker, "s3api", "list-buckets")["Buckets"]]
    aws(worker, "s3api", "head-bucket", "--bucket", name)
    aws_fail(worker, "BucketAlreadyOwnedByYou", "s3api", "create-bucket", "--bucket", name)
    v = aws_json(worker, "s3api", "get-bucket-versioning", "--bucket", name)
    assert "Status" not in v
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    aws_fail(worker, "BucketNotEmpty", "s3api", "delete-bucket", "--bucket", name)
    s3.delete_object(Bucket=name, Key="k")
    aws(worker, "s3api", "delete-bucket", "--bucket", name)
    aws_fail(worker, "NoSuchBucket", "s3api", "delete-bucket", "--bucket", name)
    r = aws(worker, "s3api", "head-bucket", "--bucket", name, check=False)
    assert r.returncode != 0 and "404" in r.stderr, r.stderr


def test_s3api_put_get_head(worker, s3, bucket, tmp_path):
    data = b"0123456789" * 10
    f = tmp_path / "body"
    f.write_bytes(data)
    out = aws_json(worker, "s3api", "put-object", "--bucket", bucket, "--key", "obj", "--body", str(f),
                   "--content-type", "text/x-api", "--content-md5", md5b64(data))
    assert out["ETag"] == etag_of(data)
    h = aws_json(worker, "s3api", "head-object", "--bucket", bucket, "--key", "obj")
    assert h["ContentLength"] == 100 and h["ETag"] == etag_of(data) and h["ContentType"] == "text/x-api"
    dst = tmp_path / "out"
    g = aws_json(worker, "s3api", "get-object", "--bucket", bucket, "--key", "obj", "--range", "bytes=10-19",
                 str(dst))
    assert dst.read_bytes() == data[10:20]
    assert g["ContentRange"] == "bytes 10-19/100" and g["ContentLength"] == 10
    aws_json(worker, "s3api", "get-object", "--bucket", bucket, "--key", "obj", "--range", "bytes=-7", str(dst))
    assert dst.read_bytes() == data[-7:]
    aws_fail(worker, "InvalidRange", "s3api", "get-object", "--bucket", bucket, "--key", "obj",
             "--range", "bytes=100-", str(dst))


def test_s3api_errors(worker, s3, bucket, tmp_path):
    f = tmp_path / "body"
    f.write_bytes(b"real body")
    aws_fail(worker, "BadDigest", "s3api", "put-object", "--bucket", bucket, "--key", "bad", "--body", str(f),
             "--content-md5", md5b64(b"something else"))
    aws_fail(worker, "InvalidDigest", "s3api", "put-object", "--bucket", bucket, "--key", "bad", "--body", str(f),
             "--content-md5", "bm9wZQ==")
    assert keys_of(s3, bucket) == []
    aws_fail(worker, "NoSuchKey", "s3api", "get-object", "--bucket", bucket, "--key", "missing",
             str(tmp_path / "o"))
    r = aws(worker, "s3api", "head-object", "--bucket", bucket, "--key", "missing", check=False)
    assert r.returncode != 0 and "404" in r.stderr, r.stderr
    aws_fail(worker, "NoSuchBucket", "s3api", "get-object", "--bucket", f"nob-{uuid.uuid4().hex[:8]}",
             "--key", "k", str(tmp_path / "o"))
    if fs_key_rules(bucket):  # file-system limits: an S3 bucket takes these keys
        aws_fail(worker, "KeyTooLongError", "s3api", "put-object", "--bucket", bucket, "--key", "k" * 300,
                 "--body", str(f))
        s3.put_object(Bucket=bucket, Key="dir/child", Body=b"c")
        aws_fail(worker, "InvalidRequest", "s3api", "put-object", "--bucket", bucket, "--key", "dir",
                 "--body", str(f))
        assert (bucket_dir(worker, bucket) / "dir").is_dir()


@pytest.mark.parametrize("key", ["a/../../escaped", "../escaped", "a//b", "./x", "a\\..\\b"])
def test_s3api_path_escapes(worker, bucket, tmp_path, key):
    f = tmp_path / "body"
    f.write_bytes(b"PWNED")
    before = tree(worker.root.parent)
    aws_fail(worker, "InvalidArgument", "s3api", "put-object", "--bucket", bucket, "--key", key, "--body", str(f))
    aws_fail(worker, "InvalidArgument", "s3api", "get-object", "--bucket", bucket, "--key", key,
             str(tmp_path / "out"))
    assert tree(worker.root.parent) == before
    assert not (worker.root / "escaped").exists() and not (worker.root.parent / "escaped").exists()


def test_s3api_listings(worker, s3, bucket):
    keys = ["a/1", "a/2", "b/x/y", "c", "d+e f", "\u00e9t\u00e9"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    full = sorted(keys, key=lambda k: k.encode())
    v2 = aws_json(worker, "s3api", "list-objects-v2", "--bucket", bucket, "--page-size", "2")
    assert [o["Key"] for o in v2["Contents"]] == full
    v2 = aws_json(worker, "s3api", "list-objects-v2", "--bucket", bucket, "--max-items", "3")
    assert [o["Key"] for o in v2["Contents"]] == full[:3] and v2.get("NextToken")
    v2 = aws_json(worker, "s3api", "list-objects-v2", "--bucket", bucket, "--starting-token", v2["NextToken"])
    assert [o["Key"] for o in v2["Contents"]] == full[3:]
    v1 = aws_json(worker, "s3api", "list-objects", "--bucket", bucket, "--delimiter", "/", "--page-size", "1")
    assert [o["Key"] for o in v1["Contents"]] == ["c", "d+e f", "\u00e9t\u00e9"]
    assert [p["Prefix"] for p in v1["CommonPrefixes"]] == ["a/", "b/"]
    v1 = aws_json(worker, "s3api", "list-objects", "--bucket", bucket, "--prefix", "b/", "--delimiter", "/")
    assert "Contents" not in v1, "no invented b/ folder object"
    assert [p["Prefix"] for p in v1["CommonPrefixes"]] == ["b/x/"]
    vv = aws_json(worker, "s3api", "list-object-versions", "--bucket", bucket, "--page-size", "2")
    assert [v["Key"] for v in vv["Versions"]] == full
    assert all(v["VersionId"] == "null" and v["IsLatest"] for v in vv["Versions"])
    by = {v["Key"]: v for v in vv["Versions"]}
    assert by["c"]["ETag"] == etag_of(b"c") and by["c"]["Size"] == 1


def test_s3api_delete_objects(worker, s3, bucket):
    for k in ("x", "y/z", "w"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    out = aws_json(worker, "s3api", "delete-objects", "--bucket", bucket, "--delete",
                   json.dumps({"Objects": [{"Key": "x"}, {"Key": "y/z"}, {"Key": "nope"}]}))
    assert sorted(d["Key"] for d in out["Deleted"]) == ["nope", "x", "y/z"]
    out = aws_json(worker, "s3api", "delete-objects", "--bucket", bucket, "--delete",
                   json.dumps({"Objects": [{"Key": "w"}, {"Key": "a//b"}], "Quiet": True}))
    assert "Deleted" not in out
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("a//b", "InvalidArgument")]
    assert keys_of(s3, bucket) == []
    r = aws(worker, "s3api", "delete-object", "--bucket", bucket, "--key", "never-there")
    assert r.returncode == 0


# --------------------------------------------------------------------------
# sigv4 mode
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v4bucket(sigv4_worker):
    c = sigv4_worker.client()
    name = f"clisig-{uuid.uuid4().hex[:8]}"
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="file.txt", Body=b"signed content")
    return name


def test_sigv4_credentials(sigv4_worker, v4bucket, tmp_path):
    w = sigv4_worker
    out = aws(w, "s3", "ls", f"s3://{v4bucket}/").stdout
    assert "file.txt" in out
    f = tmp_path / "up"
    f.write_bytes(b"uploaded with sigv4 " * 1000)
    aws(w, "s3", "cp", "--no-progress", str(f), f"s3://{v4bucket}/dir/up name+x")
    assert w.client().get_object(Bucket=v4bucket, Key="dir/up name+x")["Body"].read() == f.read_bytes()
    aws_fail(w, "SignatureDoesNotMatch", "s3", "ls", f"s3://{v4bucket}/", env={"AWS_SECRET_ACCESS_KEY": "wrong"})
    aws_fail(w, "SignatureDoesNotMatch", "s3api", "put-object", "--bucket", v4bucket, "--key", "evil",
             "--body", str(f), env={"AWS_SECRET_ACCESS_KEY": "wrong"})
    aws_fail(w, "InvalidAccessKeyId", "s3api", "list-buckets", env={"AWS_ACCESS_KEY_ID": "AKIDNOPE"})
    assert not (w.root / v4bucket / "evil").exists()


def test_sigv4_presign(sigv4_worker, v4bucket):
    w = sigv4_worker
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = aws(w, "s3", "presign", f"s3://{v4bucket}/file.txt", "--expires-in", "300").stdout.strip()
    with opener.open(url, timeout=10) as r:
        assert r.read() == b"signed content"
    url = aws(w, "s3", "presign", f"s3://{v4bucket}/file.txt", "--expires-in", "1").stdout.strip()
    time.sleep(2.2)
    with pytest.raises(urllib.error.HTTPError) as ei:
        opener.open(url, timeout=10)
    assert ei.value.code == 403 and b"AccessDenied" in ei.value.read()
