"""Virtual-hosted-style requests (`bucket.<domain>/key`) with boto3's `addressing_style="virtual"`.

No resolver knows `*.s3.alcove.test`, so boto3 reaches the worker through an HTTP proxy setting
that names the worker itself: boto3 then sends absolute-form requests
(`GET http://photos.s3.alcove.test:PORT/key`) whose Host header names the bucket, which is what a
client resolving the name would send. Path style keeps working beside it.
"""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from alcove_helpers import Worker, make_client, raw_http
from conftest import SIGV4_CONFIG

DOMAIN = "s3.alcove.test"
SIGV4 = f'[s3]\ndomains = ["{DOMAIN}"]\n' + SIGV4_CONFIG


def virtual_client(worker, **cfg):
    """boto3 with virtual-hosted addressing against `http://<domain>:PORT`, through the worker."""
    return make_client(f"http://{DOMAIN}:{worker.s3_port}", s3={"addressing_style": "virtual"},
                       proxies={"http": worker.endpoint}, **cfg)


@pytest.fixture(scope="module", params=["simple", "sigv4"])
def vhost_worker(request, alcove_bin, tmp_path_factory):
    config = f'[s3]\ndomains = ["{DOMAIN}"]\n' if request.param == "simple" else SIGV4
    w = Worker(alcove_bin, tmp_path_factory.mktemp(f"vhost-{request.param}"), config=config)
    w.start()
    yield w
    w.stop()


def test_objects_through_the_host_name(vhost_worker):
    s3 = virtual_client(vhost_worker)
    bucket = f"vh-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/a b+c.txt", Body=b"virtual")
    assert s3.get_object(Bucket=bucket, Key="dir/a b+c.txt")["Body"].read() == b"virtual"
    assert s3.head_object(Bucket=bucket, Key="dir/a b+c.txt")["ContentLength"] == 7
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/a b+c.txt"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=b"p" * (5 << 20))
    s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.head_object(Bucket=bucket, Key="big")["ContentLength"] == 5 << 20
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "dir/a b+c.txt"}, {"Key": "big"}]})
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    # Path style beside it, on the same worker and bucket.
    path = make_client(vhost_worker.endpoint)
    path.put_object(Bucket=bucket, Key="by-path", Body=b"p")
    assert s3.get_object(Bucket=bucket, Key="by-path")["Body"].read() == b"p"
    s3.delete_object(Bucket=bucket, Key="by-path")
    s3.delete_bucket(Bucket=bucket)


def test_errors_name_the_bucket_of_the_host(vhost_worker):
    s3 = virtual_client(vhost_worker)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="no-such-bucket-here", Key="k")
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
    r = raw_http(vhost_worker.s3_port, "GET", "/k", {"Host": f"no-such-bucket-here.{DOMAIN}"})
    assert r.status in (403, 404)  # 403 in sigv4 mode: the request is anonymous
    if r.status == 404:
        assert b"<Resource>/no-such-bucket-here/k</Resource>" in r.body


def test_a_wrong_secret_is_refused_in_sigv4_mode(vhost_worker, request):
    if "sigv4" not in request.node.callspec.id:
        pytest.skip("simple mode checks no signature")
    forged = make_client(f"http://{DOMAIN}:{vhost_worker.s3_port}", secret_key="not-the-secret",
                         s3={"addressing_style": "virtual"}, proxies={"http": vhost_worker.endpoint})
    with pytest.raises(ClientError) as e:
        forged.list_objects_v2(Bucket="whatever")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
