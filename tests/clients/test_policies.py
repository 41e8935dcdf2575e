"""Authorization policies with real clients: boto3 users in sigv4 mode get what `[[auth.policies]]`
grants them and `AccessDenied` for the rest; a bucket granted to `*` is read by an unsigned boto3
client (`botocore.UNSIGNED`), the AWS CLI with `--no-sign-request` and plain HTTP GETs (what
curl sends), none of which may write to it."""

from __future__ import annotations

import io
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from alcove_helpers import Worker, make_client

AWS = str(Path(sys.executable).with_name("aws"))

CONFIG = """
[auth]
mode = "sigv4"

[[auth.credentials]]
access_key = "admin"
secret_key = "admin-secret"

[[auth.credentials]]
access_key = "alice"
secret_key = "alice-secret"

[[auth.policies]]
users = ["admin"]
actions = ["read", "write", "list"]
resources = ["*"]

[[auth.policies]]
users = ["alice"]
actions = ["read", "list"]
resources = ["photos"]

[[auth.policies]]
users = ["alice"]
actions = ["write"]
resources = ["photos/alice/*"]

[[auth.policies]]
users = ["*"]
actions = ["read", "list"]
resources = ["public"]
"""


@pytest.fixture(scope="module")
def policy_worker(alcove_bin, tmp_path_factory):
    w = Worker(alcove_bin, tmp_path_factory.mktemp("policies"), config=CONFIG)
    w.start()
    admin = w.client("admin", "admin-secret")
    for b in ("photos", "public", "secret"):
        admin.create_bucket(Bucket=b)
    admin.put_object(Bucket="photos", Key="x.jpg", Body=b"photo")
    admin.put_object(Bucket="public", Key="docs/readme.txt", Body=b"hello, world")
    admin.put_object(Bucket="secret", Key="plans", Body=b"plans")
    yield w
    w.stop()


def code_of(excinfo) -> tuple[int, str]:
    e = excinfo.value.response
    return e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Code"]


def test_boto3_users_get_their_grants(policy_worker):
    alice = policy_worker.client("alice", "alice-secret")
    assert alice.get_object(Bucket="photos", Key="x.jpg")["Body"].read() == b"photo"
    with pytest.raises(ClientError) as e:
        alice.put_object(Bucket="photos", Key="x.jpg", Body=b"no")
    assert code_of(e) == (403, "AccessDenied")
    assert "alice" in e.value.response["Error"]["Message"]
    alice.upload_fileobj(io.BytesIO(b"a" * (9 << 20)), "photos", "alice/big.bin")
    assert alice.head_object(Bucket="photos", Key="alice/big.bin")["ContentLength"] == 9 << 20
    with pytest.raises(ClientError) as e:
        alice.get_object(Bucket="secret", Key="plans")
    assert code_of(e) == (403, "AccessDenied")
    assert sorted(b["Name"] for b in alice.list_buckets()["Buckets"]) == ["photos", "public"]
    r = alice.delete_objects(Bucket="photos", Delete={"Objects": [{"Key": "alice/big.bin"}, {"Key": "x.jpg"}]})
    assert [d["Key"] for d in r.get("Deleted", [])] == ["alice/big.bin"]
    assert [(x["Key"], x["Code"]) for x in r["Errors"]] == [("x.jpg", "AccessDenied")]
    assert alice.head_object(Bucket="photos", Key="x.jpg")["ContentLength"] == 5


def test_unsigned_boto3_reads_the_public_bucket(policy_worker):
    anon = make_client(policy_worker.endpoint, signature_version=UNSIGNED)
    assert anon.get_object(Bucket="public", Key="docs/readme.txt")["Body"].read() == b"hello, world"
    assert [o["Key"] for o in anon.list_objects_v2(Bucket="public")["Contents"]] == ["docs/readme.txt"]
    assert [b["Name"] for b in anon.list_buckets()["Buckets"]] == ["public"]
    for call in (lambda: anon.put_object(Bucket="public", Key="docs/readme.txt", Body=b"defaced"),
                 lambda: anon.delete_object(Bucket="public", Key="docs/readme.txt"),
                 lambda: anon.get_object(Bucket="photos", Key="x.jpg"),
                 lambda: anon.list_objects_v2(Bucket="secret")):
        with pytest.raises(ClientError) as e:
            call()
        assert code_of(e) == (403, "AccessDenied")
    admin = policy_worker.client("admin", "admin-secret")
    assert admin.get_object(Bucket="public", Key="docs/readme.txt")["Body"].read() == b"hello, world"


def test_plain_http_and_the_cli_without_signing(policy_worker):
    url = f"{policy_worker.endpoint}/public/docs/readme.txt"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as r:
        assert (r.status, r.read()) == (200, b"hello, world")
    put = urllib.request.Request(url, data=b"defaced", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(put, timeout=10)
    assert e.value.code == 403 and b"<Code>AccessDenied</Code>" in e.value.read()
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(f"{policy_worker.endpoint}/secret/plans", timeout=10)
    assert e.value.code == 403

    cli = [AWS, "--endpoint-url", policy_worker.endpoint, "--no-sign-request"]
    r = subprocess.run(cli + ["s3", "cp", "s3://public/docs/readme.txt", "-"], capture_output=True, timeout=120)
    assert r.returncode == 0 and r.stdout == b"hello, world", r.stderr
    r = subprocess.run(cli + ["s3", "ls", "s3://secret"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "AccessDenied" in r.stderr
    log = policy_worker.log_text()
    assert any("access denied" in line and "user=anonymous" in line for line in log.splitlines())
