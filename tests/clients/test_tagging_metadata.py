"""Object metadata, response header overrides and tagging through boto3, the AWS CLI, minio-py
and s3cmd.

Metadata: x-amz-meta-* and Content-Type/Encoding/Disposition/Language, Cache-Control and
Expires round-trip through GET and HEAD; more than 2 KB of user metadata is MetadataTooLarge.
Overrides: response-content-type, -content-disposition, -cache-control, -expires,
-content-language and -content-encoding on GET (signed and presigned).
Tagging: object and bucket tag sets, Tagging on PutObject, TagCount on GetObject, NoSuchTagSet,
AWS's limits (InvalidTag) and their switch `s3.tagging_restrictions = false`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import json
import urllib.request

import pytest
from minio.commonconfig import Tags

from alcove_helpers import etag_of
from test_awscli import aws, aws_fail, aws_json
from test_boto3 import expect_error
from test_minio import mk, s3err
from test_s3cmd import S3CMD, s3cmd, write_cfg

EXPIRES = dt.datetime(2032, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
SYSTEM = dict(
    ContentType="text/x-meta; charset=utf-8",
    ContentEncoding="x-custom-coding",
    ContentDisposition='attachment; filename="report 1.txt"',
    ContentLanguage="fr-CA",
    CacheControl="private, max-age=600",
    Expires=EXPIRES,
)


def system_of(r: dict) -> dict:
    return {k: r.get(k) for k in SYSTEM}


def tagset(d: dict) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in d.items()]


def tags_of(s3, bucket, key) -> dict:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def bucket_tags_of(s3, bucket) -> dict:
    return {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}


def cli_fail(w, code, *args):
    return aws_fail(w, code, *args, env={"AWS_MAX_ATTEMPTS": "1"})


def no_proxy_get(url: str):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as r:
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


# --------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------


def test_metadata_roundtrip_get_head(s3, bucket, worker):
    user = {"Color": "Blue", "multi-word-key": "a value with  spaces", "empty": "", "n": "42"}
    r = s3.put_object(Bucket=bucket, Key="meta.txt", Body=b"metadata body", Metadata=user, **SYSTEM)
    assert r["ETag"] == etag_of(b"metadata body")
    want_user = {k.lower(): v for k, v in user.items()}
    h = s3.head_object(Bucket=bucket, Key="meta.txt")
    g = s3.get_object(Bucket=bucket, Key="meta.txt")
    assert g["Body"].read() == b"metadata body"
    for resp in (h, g):
        assert system_of(resp) == SYSTEM
        assert resp["Metadata"] == want_user
    # raw: the headers as sent on the wire
    raw = worker.raw("HEAD", f"/{bucket}/meta.txt", {"Authorization": "AWS AKIDALCOVETEST:x"})
    assert raw.headers["x-amz-meta-color"] == "Blue"
    assert email.utils.parsedate_to_datetime(raw.headers["expires"]) == EXPIRES
    # an overwrite replaces all of it
    s3.put_object(Bucket=bucket, Key="meta.txt", Body=b"plain")
    h = s3.head_object(Bucket=bucket, Key="meta.txt")
    assert h["Metadata"] == {} and h["ContentType"] == "binary/octet-stream"
    assert all(h.get(k) is None for k in SYSTEM if k != "ContentType")


def test_metadata_too_large(s3, bucket):
    s3.put_object(Bucket=bucket, Key="fits", Body=b"1", Metadata={"k": "v" * 2047})  # 1 + 2047 = 2048 bytes
    assert s3.head_object(Bucket=bucket, Key="fits")["Metadata"] == {"k": "v" * 2047}
    expect_error("MetadataTooLarge", 400, s3.put_object, Bucket=bucket, Key="big", Body=b"1",
                 Metadata={"k": "v" * 2048})
    expect_error("MetadataTooLarge", 400, s3.put_object, Bucket=bucket, Key="big", Body=b"1",
                 Metadata={f"key{i:02d}": "x" * 95 for i in range(21)})  # 21 * 100 bytes
    expect_error("MetadataTooLarge", 400, s3.create_multipart_upload, Bucket=bucket, Key="big",
                 Metadata={"k": "v" * 3000})
    expect_error("MetadataTooLarge", 400, s3.put_object, Bucket=bucket, Key="fits", Body=b"2",
                 Metadata={"k": "v" * 2100})
    assert s3.get_object(Bucket=bucket, Key="fits")["Body"].read() == b"1"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["fits"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_cli_metadata(worker, s3, bucket, tmp_path):
    f = tmp_path / "f.txt"
    f.write_bytes(b"cli metadata")
    aws(worker, "s3", "cp", "--no-progress", str(f), f"s3://{bucket}/cli.txt", "--content-type", "text/x-cli",
        "--content-encoding", "x-cli-coding", "--content-disposition", "inline", "--content-language", "it",
        "--cache-control", "max-age=5", "--expires", "2032-05-06T07:08:09Z", "--metadata", "Alpha=1,beta=two")
    out = aws_json(worker, "s3api", "head-object", "--bucket", bucket, "--key", "cli.txt")
    assert out["ContentType"] == "text/x-cli" and out["ContentEncoding"] == "x-cli-coding"
    assert out["ContentDisposition"] == "inline" and out["ContentLanguage"] == "it"
    assert out["CacheControl"] == "max-age=5" and out["Metadata"] == {"alpha": "1", "beta": "two"}
    h = s3.get_object(Bucket=bucket, Key="cli.txt")
    assert h["Expires"] == EXPIRES and h["Body"].read() == b"cli metadata"
    cli_fail(worker, "MetadataTooLarge", "s3api", "put-object", "--bucket", bucket, "--key", "too-big",
             "--body", str(f), "--metadata", json.dumps({"big": "x" * 2100}))
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="too-big")


def test_minio_metadata(worker, s3, bucket):
    mc = mk(worker)
    data = b"minio metadata"
    mc.put_object(bucket, "m.txt", io.BytesIO(data), len(data), content_type="text/x-minio",
                  metadata={"x-amz-meta-Project": "alcove", "Cache-Control": "no-store",
                            "Content-Disposition": "inline; filename=m.txt", "Content-Language": "nl",
                            "Content-Encoding": "x-minio-coding"})
    st = mc.stat_object(bucket, "m.txt")
    assert st.content_type == "text/x-minio"
    assert st.metadata["x-amz-meta-project"] == "alcove"
    assert st.metadata["Cache-Control"] == "no-store"
    assert st.metadata["Content-Disposition"] == "inline; filename=m.txt"
    assert st.metadata["Content-Language"] == "nl"
    assert st.metadata["Content-Encoding"] == "x-minio-coding"
    h = s3.head_object(Bucket=bucket, Key="m.txt")
    assert h["Metadata"] == {"project": "alcove"} and h["CacheControl"] == "no-store"
    s3err("MetadataTooLarge", mc.put_object, bucket, "big.txt", io.BytesIO(data), len(data),
          metadata={"x-amz-meta-big": "y" * 2100})
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="big.txt")


def test_s3cmd_metadata(worker, s3, bucket, tmp_path):
    assert S3CMD, "s3cmd not found: run scripts/install-deps.sh"
    cfg = write_cfg(tmp_path / "s3cfg", worker)
    f = tmp_path / "s.txt"
    f.write_bytes(b"s3cmd metadata")
    s3cmd(cfg, "put", "--mime-type=text/x-s3cmd", "--add-header=Cache-Control:max-age=99",
          "--add-header=Content-Language:sv", "--add-header=x-amz-meta-origin:s3cmd", str(f), f"s3://{bucket}/s.txt")
    h = s3.head_object(Bucket=bucket, Key="s.txt")
    assert h["ContentType"] == "text/x-s3cmd" and h["CacheControl"] == "max-age=99"
    assert h["ContentLanguage"] == "sv" and h["Metadata"]["origin"] == "s3cmd"
    info = s3cmd(cfg, "info", f"s3://{bucket}/s.txt").stdout
    assert "text/x-s3cmd" in info and "x-amz-meta-origin: s3cmd" in info, info


# --------------------------------------------------------------------------
# response header overrides
# --------------------------------------------------------------------------

OVERRIDES = {
    "ResponseContentType": "application/x-override",
    "ResponseContentDisposition": 'attachment; filename="o v.bin"',
    "ResponseCacheControl": "no-cache, no-store",
    "ResponseContentLanguage": "pt-BR",
    "ResponseContentEncoding": "x-override-coding",
}
OVERRIDE_HEADERS = {
    "response-content-type": ("content-type", OVERRIDES["ResponseContentType"]),
    "response-content-disposition": ("content-disposition", OVERRIDES["ResponseContentDisposition"]),
    "response-cache-control": ("cache-control", OVERRIDES["ResponseCacheControl"]),
    "response-content-language": ("content-language", OVERRIDES["ResponseContentLanguage"]),
    "response-content-encoding": ("content-encoding", OVERRIDES["ResponseContentEncoding"]),
    "response-expires": ("expires", "Thu, 01 Jan 2037 00:00:00 GMT"),
}
OVERRIDE_EXPIRES = dt.datetime(2037, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def stored(s3, bucket):
    s3.put_object(Bucket=bucket, Key="ov.txt", Body=b"override me", Metadata={"m": "1"}, **SYSTEM)
    return bucket, "ov.txt"


def test_response_overrides_boto3(s3, stored):
    bucket, key = stored
    g = s3.get_object(Bucket=bucket, Key=key, ResponseExpires=OVERRIDE_EXPIRES, **OVERRIDES)
    assert g["Body"].read() == b"override me"
    assert g["ContentType"] == OVERRIDES["ResponseContentType"]
    assert g["ContentDisposition"] == OVERRIDES["ResponseContentDisposition"]
    assert g["CacheControl"] == OVERRIDES["ResponseCacheControl"]
    assert g["ContentLanguage"] == OVERRIDES["ResponseContentLanguage"]
    assert g["ContentEncoding"] == OVERRIDES["ResponseContentEncoding"]
    assert g["Expires"] == OVERRIDE_EXPIRES
    assert g["Metadata"] == {"m": "1"}
    # one override alone leaves the other stored headers as they are
    g = s3.get_object(Bucket=bucket, Key=key, ResponseContentType="text/only-this")
    assert g["ContentType"] == "text/only-this" and g["CacheControl"] == SYSTEM["CacheControl"]
    assert g["ContentDisposition"] == SYSTEM["ContentDisposition"]
    # nothing was stored
    assert system_of(s3.head_object(Bucket=bucket, Key=key)) == SYSTEM
    # presigned GET with overrides
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key, **OVERRIDES}, ExpiresIn=300)
    status, headers, body = no_proxy_get(url)
    assert status == 200 and body == b"override me"
    for name, (header, value) in OVERRIDE_HEADERS.items():
        if name != "response-expires":
            assert headers[header] == value, (header, headers)


def test_response_overrides_need_a_signed_request(worker, stored):
    """AWS refuses response-* overrides on anonymous GETs (InvalidRequest): a public link must not
    be able to make the server send, say, text/html for an object."""
    bucket, key = stored
    r = worker.raw("GET", f"/{bucket}/{key}?response-content-type=text%2Fhtml")
    assert r.status == 400 and r.code == "InvalidRequest", r
    r = worker.raw("GET", f"/{bucket}/{key}", {})
    assert r.status == 200 and r.body == b"override me", "anonymous reads are allowed in simple mode"


def test_response_overrides_minio(worker, s3, stored):
    bucket, key = stored
    mc = mk(worker)
    params = {name: value for name, (_, value) in OVERRIDE_HEADERS.items()}
    resp = mc.get_object(bucket, key, extra_query_params=dict(params))
    try:
        assert resp.read() == b"override me"
        for name, (header, value) in OVERRIDE_HEADERS.items():
            got = resp.headers[header]
            if header == "expires":
                assert email.utils.parsedate_to_datetime(got) == OVERRIDE_EXPIRES, got
            else:
                assert got == value, (header, got)
    finally:
        resp.close()
        resp.release_conn()
    url = mc.presigned_get_object(bucket, key, response_headers=dict(params))
    status, headers, body = no_proxy_get(url)
    assert status == 200 and body == b"override me"
    assert headers["content-type"] == OVERRIDES["ResponseContentType"]
    assert headers["content-disposition"] == OVERRIDES["ResponseContentDisposition"]
    assert headers["cache-control"] == OVERRIDES["ResponseCacheControl"]
    assert email.utils.parsedate_to_datetime(headers["expires"]) == OVERRIDE_EXPIRES
    assert system_of(s3.head_object(Bucket=bucket, Key=key)) == SYSTEM


# --------------------------------------------------------------------------
# object tagging
# --------------------------------------------------------------------------


def test_object_tagging_boto3(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="t", Body=b"tagged", Tagging="a=1&b=two%20words&sym=%2B-%3D._%3A%2F%40")
    assert r["ETag"] == etag_of(b"tagged")
    assert tags_of(s3, bucket, "t") == {"a": "1", "b": "two words", "sym": "+-=._:/@"}
    g = s3.get_object(Bucket=bucket, Key="t")
    assert g["TagCount"] == 3 and g["Body"].read() == b"tagged"
    new = {"env": "prod", "\u00fcnicode key": "\u65e5\u672c", "empty": "", "x+y": "a=b.c_d:/@"}
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": tagset(new)})
    assert tags_of(s3, bucket, "t") == new
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 4
    h = s3.head_object(Bucket=bucket, Key="t")
    assert h["ETag"] == etag_of(b"tagged"), "tagging does not change the object"
    r = s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="t")
    # an overwrite without Tagging drops the tags
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": tagset({"k": "v"})})
    s3.put_object(Bucket=bucket, Key="t", Body=b"rewritten")
    assert tags_of(s3, bucket, "t") == {}
    for fn, kw in ((s3.get_object_tagging, {}), (s3.delete_object_tagging, {}),
                   (s3.put_object_tagging, {"Tagging": {"TagSet": tagset({"k": "v"})}})):
        expect_error("NoSuchKey", 404, fn, Bucket=bucket, Key="missing", **kw)
    expect_error("NoSuchBucket", 404, s3.get_object_tagging, Bucket=bucket + "-nope", Key="t")


def test_object_tag_limits(s3, bucket):
    s3.put_object(Bucket=bucket, Key="lim", Body=b"x", Tagging="orig=1")
    ten = {f"k{i}": f"v{i}" for i in range(10)}
    eleven = {f"k{i}": f"v{i}" for i in range(11)}
    s3.put_object_tagging(Bucket=bucket, Key="lim", Tagging={"TagSet": tagset(ten)})
    assert tags_of(s3, bucket, "lim") == ten
    edge = {"k" * 128: "v" * 256, "\u00fc" * 128: "\u00e9" * 256}  # characters, not bytes
    s3.put_object_tagging(Bucket=bucket, Key="lim", Tagging={"TagSet": tagset(edge)})
    assert tags_of(s3, bucket, "lim") == edge
    bad_sets = [
        tagset(eleven),
        tagset({"k" * 129: "v"}),
        tagset({"k": "v" * 257}),
        [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}],
        tagset({"aws:reserved": "1"}),
    ]
    for ts in bad_sets:
        expect_error("InvalidTag", 400, s3.put_object_tagging, Bucket=bucket, Key="lim", Tagging={"TagSet": ts})
    assert tags_of(s3, bucket, "lim") == edge, "a refused tag set changes nothing"
    expect_error("InvalidTag", 400, s3.put_object, Bucket=bucket, Key="new", Body=b"x",
                 Tagging="&".join(f"{k}={v}" for k, v in eleven.items()))
    expect_error("InvalidTag", 400, s3.put_object, Bucket=bucket, Key="new", Body=b"x", Tagging="aws:x=1")
    expect_error("InvalidTag", 400, s3.put_object, Bucket=bucket, Key="new", Body=b"x", Tagging="a=1&a=2")
    expect_error("InvalidTag", 400, s3.put_object, Bucket=bucket, Key="new", Body=b"x", Tagging="k=" + "v" * 257)
    expect_error("InvalidTag", 400, s3.create_multipart_upload, Bucket=bucket, Key="new",
                 Tagging="&".join(f"{k}={v}" for k, v in eleven.items()))
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["lim"]


def test_bucket_tagging_boto3(s3, bucket):
    expect_error("NoSuchTagSet", 404, s3.get_bucket_tagging, Bucket=bucket)
    tags = {"team": "storage", "cost center": "42", "\u00fc": "\u00e9"}
    r = s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tagset(tags)})
    assert r["ResponseMetadata"]["HTTPStatusCode"] in (200, 204)
    assert bucket_tags_of(s3, bucket) == tags
    fifty = {f"t{i:02d}": str(i) for i in range(50)}
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tagset(fifty)})
    assert bucket_tags_of(s3, bucket) == fifty
    fifty_one = dict(fifty, extra="1")
    for ts in (tagset(fifty_one), tagset({"aws:x": "1"}), tagset({"k" * 129: "v"}), tagset({"k": "v" * 257}),
               [{"Key": "d", "Value": "1"}, {"Key": "d", "Value": "1"}]):
        expect_error("InvalidTag", 400, s3.put_bucket_tagging, Bucket=bucket, Tagging={"TagSet": ts})
    assert bucket_tags_of(s3, bucket) == fifty
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0, "bucket tags are not objects"
    r = s3.delete_bucket_tagging(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error("NoSuchTagSet", 404, s3.get_bucket_tagging, Bucket=bucket)
    s3.delete_bucket_tagging(Bucket=bucket)  # idempotent
    expect_error("NoSuchBucket", 404, s3.get_bucket_tagging, Bucket=bucket + "-nope")
    expect_error("NoSuchBucket", 404, s3.put_bucket_tagging, Bucket=bucket + "-nope",
                 Tagging={"TagSet": tagset({"a": "b"})})


def test_tagging_restrictions_off(start_worker):
    w = start_worker(config="[s3]\ntagging_restrictions = false\n", name="notaglimits")
    c = w.client()
    c.create_bucket(Bucket="free")
    eleven = {f"k{i}": f"v{i}" for i in range(11)}
    c.put_object(Bucket="free", Key="o", Body=b"x", Tagging="&".join(f"{k}={v}" for k, v in eleven.items()))
    assert tags_of(c, "free", "o") == eleven
    assert c.get_object(Bucket="free", Key="o")["TagCount"] == 11
    long = {"k" * 200: "v" * 300, **{f"t{i}": "x" for i in range(15)}}
    c.put_object_tagging(Bucket="free", Key="o", Tagging={"TagSet": tagset(long)})
    assert tags_of(c, "free", "o") == long
    many = {f"b{i:02d}": str(i) for i in range(60)}
    c.put_bucket_tagging(Bucket="free", Tagging={"TagSet": tagset(many)})
    assert bucket_tags_of(c, "free") == many
    # duplicates and the aws: prefix stay invalid
    expect_error("InvalidTag", 400, c.put_object_tagging, Bucket="free", Key="o",
                 Tagging={"TagSet": [{"Key": "d", "Value": "1"}, {"Key": "d", "Value": "2"}]})
    expect_error("InvalidTag", 400, c.put_object_tagging, Bucket="free", Key="o",
                 Tagging={"TagSet": tagset({"aws:k": "v"})})
    assert tags_of(c, "free", "o") == long


def test_cli_tagging(worker, s3, bucket, tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"cli tags")
    aws_json(worker, "s3api", "put-object", "--bucket", bucket, "--key", "o", "--body", str(f),
             "--tagging", "a=1&b=two%20words")
    out = aws_json(worker, "s3api", "get-object-tagging", "--bucket", bucket, "--key", "o")
    assert sorted((t["Key"], t["Value"]) for t in out["TagSet"]) == [("a", "1"), ("b", "two words")]
    aws(worker, "s3api", "put-object-tagging", "--bucket", bucket, "--key", "o", "--tagging",
        json.dumps({"TagSet": tagset({"x": "y", "z": ""})}))
    assert tags_of(s3, bucket, "o") == {"x": "y", "z": ""}
    out = aws_json(worker, "s3api", "get-object", "--bucket", bucket, "--key", "o", str(tmp_path / "out"))
    assert out["TagCount"] == 2
    aws(worker, "s3api", "delete-object-tagging", "--bucket", bucket, "--key", "o")
    assert tags_of(s3, bucket, "o") == {}
    cli_fail(worker, "InvalidTag", "s3api", "put-object-tagging", "--bucket", bucket, "--key", "o", "--tagging",
             json.dumps({"TagSet": tagset({f"k{i}": "v" for i in range(11)})}))
    cli_fail(worker, "NoSuchTagSet", "s3api", "get-bucket-tagging", "--bucket", bucket)
    aws(worker, "s3api", "put-bucket-tagging", "--bucket", bucket, "--tagging",
        json.dumps({"TagSet": tagset({"owner": "cli"})}))
    out = aws_json(worker, "s3api", "get-bucket-tagging", "--bucket", bucket)
    assert out["TagSet"] == [{"Key": "owner", "Value": "cli"}]
    cli_fail(worker, "InvalidTag", "s3api", "put-bucket-tagging", "--bucket", bucket, "--tagging",
             json.dumps({"TagSet": tagset({"aws:owner": "cli"})}))
    aws(worker, "s3api", "delete-bucket-tagging", "--bucket", bucket)
    expect_error("NoSuchTagSet", 404, s3.get_bucket_tagging, Bucket=bucket)


def test_minio_tagging(worker, s3, bucket):
    mc = mk(worker)
    tags = Tags.new_object_tags()
    tags["project"] = "alcove"
    tags["stage"] = "test run"
    mc.put_object(bucket, "m", io.BytesIO(b"minio tags"), 10, tags=tags)
    assert dict(mc.get_object_tags(bucket, "m")) == {"project": "alcove", "stage": "test run"}
    new = Tags.new_object_tags()
    new["only"] = "one"
    mc.set_object_tags(bucket, "m", new)
    assert dict(mc.get_object_tags(bucket, "m")) == {"only": "one"}
    assert tags_of(s3, bucket, "m") == {"only": "one"}
    mc.delete_object_tags(bucket, "m")
    assert not mc.get_object_tags(bucket, "m")
    # limits are the server's: minio's bucket-sized Tags lets 11 through, and aws: keys
    eleven = Tags.new_bucket_tags()
    for i in range(11):
        eleven[f"k{i}"] = "v"
    e = s3err("InvalidTag", mc.set_object_tags, bucket, "m", eleven)
    assert e.response.status == 400
    reserved = Tags.new_object_tags()
    reserved["aws:k"] = "v"
    s3err("InvalidTag", mc.set_object_tags, bucket, "m", reserved)
    s3err("NoSuchKey", mc.set_object_tags, bucket, "missing", new)
    # bucket tags
    assert mc.get_bucket_tags(bucket) is None  # minio maps NoSuchTagSet to None
    bt = Tags.new_bucket_tags()
    for i in range(50):
        bt[f"b{i:02d}"] = str(i)
    mc.set_bucket_tags(bucket, bt)
    assert dict(mc.get_bucket_tags(bucket)) == dict(bt)
    assert bucket_tags_of(s3, bucket) == dict(bt)
    bad = Tags.new_bucket_tags()
    bad["aws:x"] = "1"
    s3err("InvalidTag", mc.set_bucket_tags, bucket, bad)
    mc.delete_bucket_tags(bucket)
    assert mc.get_bucket_tags(bucket) is None
    expect_error("NoSuchTagSet", 404, s3.get_bucket_tagging, Bucket=bucket)
