"""s3torchconnectorclient (Mountpoint S3 client / AWS CRT) against an Alcove worker.

Credentials come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
set by conftest.py); the client is path-style with an explicit endpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import pytest
from s3torchconnectorclient._mountpoint_s3_client import MountpointS3Client, S3Exception

from alcove_helpers import md5hex


def mk(w) -> MountpointS3Client:
    return MountpointS3Client("us-east-1", "alcove-tests", endpoint=w.endpoint, force_path_style=True)


@pytest.fixture(scope="module")
def mp(worker):
    return mk(worker)


def read_all(stream) -> bytes:
    return b"".join(stream)


def list_all(client, bucket, prefix="", delimiter="", max_keys=1000):
    keys, prefixes, pages = [], [], 0
    for page in client.list_objects(bucket, prefix, delimiter, max_keys):
        pages += 1
        keys += [o.key for o in page.object_info]
        prefixes += list(page.common_prefixes)
    return keys, prefixes, pages


def test_get_object_small_and_large(mp, s3, bucket):
    small = b"hello mountpoint"
    s3.put_object(Bucket=bucket, Key="small.txt", Body=small)
    assert read_all(mp.get_object(bucket, "small.txt")) == small
    # several 8 MiB ranged GETs in parallel
    big = os.urandom(19 * 1024 * 1024 + 321)
    s3.put_object(Bucket=bucket, Key="dir/big.bin", Body=big)
    got = read_all(mp.get_object(bucket, "dir/big.bin"))
    assert len(got) == len(big) and md5hex(got) == md5hex(big)


def test_get_empty_object(mp, s3, bucket):
    """The CRT asks for bytes=0-8388607 first; for an empty object S3 answers
    416 InvalidRange with <ActualObjectSize>0</ActualObjectSize>, which the
    CRT recognises as 'empty object'."""
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert read_all(mp.get_object(bucket, "empty")) == b""


def test_get_object_missing(mp, bucket):
    with pytest.raises(S3Exception) as ei:
        read_all(mp.get_object(bucket, "missing"))
    assert "NoSuchKey" in str(ei.value) or "does not exist" in str(ei.value).lower(), str(ei.value)
    with pytest.raises(S3Exception) as ei:
        read_all(mp.get_object(f"nob-{uuid.uuid4().hex[:8]}", "k"))
    assert "NoSuchBucket" in str(ei.value) or "does not exist" in str(ei.value).lower(), str(ei.value)


def test_head_object(mp, s3, bucket):
    data = b"x" * 1234
    s3.put_object(Bucket=bucket, Key="h/x", Body=data)
    info = mp.head_object(bucket, "h/x")
    assert info.size == 1234
    assert info.etag.strip('"') == md5hex(data)
    with pytest.raises(S3Exception):
        mp.head_object(bucket, "h/missing")


def test_list_objects(mp, s3, bucket):
    keys = ["a/b/c", "a/d", "e", "sp ace+", "\u00fc/x"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    full = sorted(keys, key=lambda k: k.encode())
    got, prefixes, pages = list_all(mp, bucket)
    assert got == full and prefixes == [] and pages == 1
    got, prefixes, pages = list_all(mp, bucket, max_keys=2)
    assert got == full and pages == (len(full) + 1) // 2
    got, prefixes, _ = list_all(mp, bucket, delimiter="/")
    assert got == ["e", "sp ace+"] and prefixes == ["a/", "\u00fc/"]
    got, prefixes, _ = list_all(mp, bucket, prefix="a/", delimiter="/")
    assert got == ["a/d"] and prefixes == ["a/b/"]
    page = next(iter(mp.list_objects(bucket, "e", "", 10)))
    assert [(o.key, o.size, o.etag.strip('"')) for o in page.object_info] == [("e", 1, md5hex(b"e"))]


def test_list_missing_bucket(mp):
    with pytest.raises(S3Exception) as ei:
        list_all(mp, f"nob-{uuid.uuid4().hex[:8]}")
    assert "NoSuchBucket" in str(ei.value) or "does not exist" in str(ei.value).lower(), str(ei.value)


def test_delete_object(mp, s3, bucket):
    s3.put_object(Bucket=bucket, Key="del/me", Body=b"1")
    mp.delete_object(bucket, "del/me")
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    mp.delete_object(bucket, "del/me")  # idempotent


def test_put_object_small(mp, s3, bucket):
    """Mountpoint uploads through multipart upload (CreateMultipartUpload /
    UploadPart / CompleteMultipartUpload), even for small objects."""
    stream = mp.put_object(bucket, "up/small.bin")
    stream.write(b"written by ")
    stream.write(b"s3torch")
    stream.close()
    r = s3.get_object(Bucket=bucket, Key="up/small.bin")
    assert r["Body"].read() == b"written by s3torch"


def test_sigv4(sigv4_worker):
    c = sigv4_worker.client()
    name = f"torchsig-{uuid.uuid4().hex[:8]}"
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="x y+z", Body=b"signed torch")
    good = mk(sigv4_worker)
    assert read_all(good.get_object(name, "x y+z")) == b"signed torch"
    assert list_all(good, name)[0] == ["x y+z"]
    # wrong secret: the CRT reads credentials from the environment, so use a child process
    code = textwrap.dedent(f"""
        from s3torchconnectorclient._mountpoint_s3_client import MountpointS3Client, S3Exception
        c = MountpointS3Client("us-east-1", "alcove-tests", endpoint={sigv4_worker.endpoint!r}, force_path_style=True)
        try:
            b"".join(c.get_object({name!r}, "x y+z"))
            print("UNEXPECTED SUCCESS")
        except S3Exception as e:
            print("ERR", e)
    """)
    env = dict(os.environ, AWS_SECRET_ACCESS_KEY="wrong-secret")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.stdout.startswith("ERR"), r.stdout + r.stderr
    assert "403" in r.stdout or "SignatureDoesNotMatch" in r.stdout or "Forbidden" in r.stdout, r.stdout


def test_second_pass_over_samples_is_served_by_the_cache(counted_mount, s3, worker):
    """A folder of samples read twice with the PyTorch connector's client: the second pass reads
    no object from the remote."""
    samples = {f"samples/{i:03d}.bin": os.urandom(100_000 + i) for i in range(20)}
    for key, data in samples.items():
        s3.put_object(Bucket=counted_mount.name, Key=key, Body=data)
    client = mk(worker)

    def one_pass():
        for key, data in samples.items():
            assert read_all(client.get_object(counted_mount.name, key)) == data

    one_pass()
    gets_after_first = counted_mount.object_gets()
    assert gets_after_first >= len(samples)
    one_pass()
    assert counted_mount.object_gets() == gets_after_first, "the second pass read every byte from the cache"
