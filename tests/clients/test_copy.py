"""CopyObject through boto3, the AWS CLI (`aws s3 cp s3://… s3://…`, `aws s3api copy-object`),
minio-py (`copy_object`), rclone (server-side copyto/moveto) and s3cmd (cp, mv, modify).

URL-encoded source keys (spaces, unicode, '+', '%'), copies across buckets, the metadata and
tagging directives (COPY / REPLACE), Content-Type on REPLACE, the x-amz-copy-source-if-* headers
(412 PreconditionFailed), and a copy onto itself (REPLACE updates the metadata; without it:
InvalidRequest).
"""

from __future__ import annotations

import datetime as dt
import io
import re

from minio.commonconfig import COPY, REPLACE, CopySource, Tags

from alcove_helpers import MiB, etag_of, is_s3_mounted, md5hex, multipart_etag, pattern_bytes
from test_awscli import aws, aws_fail, aws_json
from test_boto3 import expect_error
from test_minio import mk, s3err
from test_rclone import RCLONE, rc, rclone_env
from test_s3cmd import S3CMD, s3cmd, s3cmd_fail, write_cfg

ODD_KEYS = [
    "sp ace/file name.txt",
    "\u00fcn\u00efc\u00f8de/\u65e5\u672c\u8a9e \u0444\u0430\u0439\u043b.txt",
    "plus+sign+and=equals&amp.txt",
    "pct%20literal%2Bnot-decoded.txt",
    "q?mark#hash;semi,comma.txt",
    "tilde~star*paren(1)'quote'.txt",
]

FULL_META = dict(
    ContentType="text/x-source",
    ContentEncoding="identity",
    ContentDisposition='attachment; filename="src.txt"',
    ContentLanguage="de-CH",
    CacheControl="max-age=42",
    Expires=dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
    Metadata={"color": "blue", "shape": "round"},
)


def meta_of(h: dict) -> dict:
    return {k: h.get(k) for k in ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage",
                                  "CacheControl", "Expires", "Metadata")}


def tags_of(s3, bucket, key) -> dict:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def cli_fail(w, code, *args):
    return aws_fail(w, code, *args, env={"AWS_MAX_ATTEMPTS": "1"})


# --------------------------------------------------------------------------
# boto3
# --------------------------------------------------------------------------


def test_copy_encoded_keys_across_buckets(s3, bucket, make_bucket):
    other = make_bucket("copy-dst")
    for i, key in enumerate(ODD_KEYS):
        body = f"body of {key}".encode()
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        r = s3.copy_object(Bucket=other, Key="copied/" + key, CopySource={"Bucket": bucket, "Key": key})
        assert r["CopyObjectResult"]["ETag"] == etag_of(body)
        assert r["CopyObjectResult"]["LastModified"]
        # the string form, with and without a leading slash (botocore percent-encodes it)
        src = f"/{bucket}/{key}" if i % 2 else f"{bucket}/{key}"
        s3.copy_object(Bucket=other, Key=f"str/{i}", CopySource=src)
        assert s3.get_object(Bucket=other, Key="copied/" + key)["Body"].read() == body
        assert s3.get_object(Bucket=other, Key=f"str/{i}")["Body"].read() == body
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, "the source stays"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=other, Prefix="copied/")["Contents"])
    assert set("copied/" + k for k in ODD_KEYS) <= set(keys)
    # '+' is a plus and '%2B' is a plus: no form decoding of the copy source
    s3.put_object(Bucket=bucket, Key="a b", Body=b"space")
    s3.put_object(Bucket=bucket, Key="a+b", Body=b"plus")
    s3.copy_object(Bucket=other, Key="which", CopySource={"Bucket": bucket, "Key": "a+b"})
    assert s3.get_object(Bucket=other, Key="which")["Body"].read() == b"plus"
    s3.copy_object(Bucket=other, Key="which", CopySource={"Bucket": bucket, "Key": "a b"})
    assert s3.get_object(Bucket=other, Key="which")["Body"].read() == b"space"


def test_copy_errors(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    expect_error("NoSuchKey", 404, s3.copy_object, Bucket=bucket, Key="dst",
                 CopySource={"Bucket": bucket, "Key": "missing"})
    expect_error("NoSuchBucket", 404, s3.copy_object, Bucket=bucket, Key="dst",
                 CopySource={"Bucket": bucket + "-nope", "Key": "src"})
    expect_error("NoSuchBucket", 404, s3.copy_object, Bucket=bucket + "-nope", Key="dst",
                 CopySource={"Bucket": bucket, "Key": "src"})
    expect_error("InvalidArgument", 400, s3.copy_object, Bucket=bucket, Key="dst",
                 CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="MERGE")
    expect_error("MetadataTooLarge", 400, s3.copy_object, Bucket=bucket, Key="dst",
                 CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="REPLACE",
                 Metadata={"big": "x" * 2100})
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["src"]


def test_copy_metadata_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"meta source", **FULL_META)
    src_meta = meta_of(s3.head_object(Bucket=bucket, Key="src"))
    assert src_meta == FULL_META
    # COPY (the default, and explicit): everything comes along, request metadata is ignored
    s3.copy_object(Bucket=bucket, Key="default", CopySource={"Bucket": bucket, "Key": "src"})
    assert meta_of(s3.head_object(Bucket=bucket, Key="default")) == FULL_META
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="COPY",
                   Metadata={"ignored": "yes"}, ContentType="text/ignored")
    g = s3.get_object(Bucket=bucket, Key="copy")
    assert meta_of(g) == FULL_META and g["Body"].read() == b"meta source"
    # REPLACE: only what the request says
    r = s3.copy_object(Bucket=bucket, Key="replace", CopySource={"Bucket": bucket, "Key": "src"},
                       MetadataDirective="REPLACE", Metadata={"New": "value"}, ContentType="application/x-new",
                       CacheControl="no-cache")
    assert r["CopyObjectResult"]["ETag"] == etag_of(b"meta source")
    h = s3.head_object(Bucket=bucket, Key="replace")
    assert h["Metadata"] == {"new": "value"}
    assert h["ContentType"] == "application/x-new" and h["CacheControl"] == "no-cache"
    for gone in ("ContentEncoding", "ContentDisposition", "ContentLanguage", "Expires"):
        assert gone not in h, (gone, h)
    g = s3.get_object(Bucket=bucket, Key="replace")
    assert g["Body"].read() == b"meta source" and g["ContentType"] == "application/x-new"
    # REPLACE without a Content-Type: the default type, not the source's
    s3.copy_object(Bucket=bucket, Key="bare", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE")
    h = s3.head_object(Bucket=bucket, Key="bare")
    assert h["Metadata"] == {} and h["ContentType"] == "binary/octet-stream"


def test_copy_tagging_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"tagged", Tagging="a=1&b=two%20words")
    assert tags_of(s3, bucket, "src") == {"a": "1", "b": "two words"}
    s3.copy_object(Bucket=bucket, Key="default", CopySource={"Bucket": bucket, "Key": "src"})
    assert tags_of(s3, bucket, "default") == {"a": "1", "b": "two words"}
    assert s3.get_object(Bucket=bucket, Key="default")["TagCount"] == 2
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"}, TaggingDirective="COPY")
    assert tags_of(s3, bucket, "copy") == {"a": "1", "b": "two words"}
    s3.copy_object(Bucket=bucket, Key="replace", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE", Tagging="c=3&d=%C3%BC")
    assert tags_of(s3, bucket, "replace") == {"c": "3", "d": "\u00fc"}
    s3.copy_object(Bucket=bucket, Key="none", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE")
    assert tags_of(s3, bucket, "none") == {}
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="none")
    # the metadata directive does not touch tags
    s3.copy_object(Bucket=bucket, Key="meta-only", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"m": "1"})
    assert tags_of(s3, bucket, "meta-only") == {"a": "1", "b": "two words"}
    expect_error("InvalidTag", 400, s3.copy_object, Bucket=bucket, Key="bad",
                 CopySource={"Bucket": bucket, "Key": "src"}, TaggingDirective="REPLACE",
                 Tagging="&".join(f"k{i}=v" for i in range(11)))
    expect_error("InvalidTag", 400, s3.copy_object, Bucket=bucket, Key="bad",
                 CopySource={"Bucket": bucket, "Key": "src"}, TaggingDirective="REPLACE", Tagging="aws:x=1")
    assert "bad" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]


def test_copy_source_conditions(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"conditional")
    h = s3.head_object(Bucket=bucket, Key="src")
    etag, lm = h["ETag"], h["LastModified"]
    day = dt.timedelta(days=1)
    cs = {"Bucket": bucket, "Key": "src"}

    def copy(**kw):
        return s3.copy_object(Bucket=bucket, Key="dst", CopySource=cs, **kw)

    ok = [
        dict(CopySourceIfMatch=etag),
        dict(CopySourceIfNoneMatch=etag_of(b"other")),
        dict(CopySourceIfModifiedSince=lm - day),
        dict(CopySourceIfUnmodifiedSince=lm),
        dict(CopySourceIfUnmodifiedSince=lm + day),
        # AWS: If-Match true and If-Unmodified-Since false → the copy happens
        dict(CopySourceIfMatch=etag, CopySourceIfUnmodifiedSince=lm - day),
    ]
    failed = [
        dict(CopySourceIfMatch=etag_of(b"other")),
        dict(CopySourceIfNoneMatch=etag),
        dict(CopySourceIfModifiedSince=lm),
        dict(CopySourceIfModifiedSince=lm + day),
        dict(CopySourceIfUnmodifiedSince=lm - day),
        # AWS: If-None-Match false and If-Modified-Since true → 412
        dict(CopySourceIfNoneMatch=etag, CopySourceIfModifiedSince=lm - day),
        dict(CopySourceIfMatch=etag_of(b"other"), CopySourceIfNoneMatch=etag_of(b"x")),
    ]
    for kw in failed:
        expect_error("PreconditionFailed", 412, copy, **kw)
        assert "dst" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]], kw
    for kw in ok:
        r = copy(**kw)
        assert r["CopyObjectResult"]["ETag"] == etag, kw
        s3.delete_object(Bucket=bucket, Key="dst")


def test_copy_onto_itself(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"same bytes", ContentType="text/plain", Metadata={"v": "1"},
                  Tagging="keep=me")
    before = s3.head_object(Bucket=bucket, Key="self")
    cs = {"Bucket": bucket, "Key": "self"}
    expect_error("InvalidRequest", 400, s3.copy_object, Bucket=bucket, Key="self", CopySource=cs)
    expect_error("InvalidRequest", 400, s3.copy_object, Bucket=bucket, Key="self", CopySource=cs,
                 MetadataDirective="COPY", Metadata={"v": "2"})
    assert s3.head_object(Bucket=bucket, Key="self")["Metadata"] == {"v": "1"}
    r = s3.copy_object(Bucket=bucket, Key="self", CopySource=cs, MetadataDirective="REPLACE",
                       Metadata={"v": "2", "extra": "x"}, ContentType="application/x-updated",
                       ContentDisposition="inline")
    assert r["CopyObjectResult"]["ETag"] == before["ETag"]
    g = s3.get_object(Bucket=bucket, Key="self")
    assert g["Body"].read() == b"same bytes" and g["ETag"] == before["ETag"]
    assert g["Metadata"] == {"v": "2", "extra": "x"}
    assert g["ContentType"] == "application/x-updated" and g["ContentDisposition"] == "inline"
    assert g["LastModified"] >= before["LastModified"]
    assert tags_of(s3, bucket, "self") == {"keep": "me"}
    # the percent-encoded spelling of the same key is still the same object
    s3.put_object(Bucket=bucket, Key="sp ace+\u00fc", Body=b"odd")
    expect_error("InvalidRequest", 400, s3.copy_object, Bucket=bucket, Key="sp ace+\u00fc",
                 CopySource={"Bucket": bucket, "Key": "sp ace+\u00fc"})
    s3.copy_object(Bucket=bucket, Key="sp ace+\u00fc", CopySource={"Bucket": bucket, "Key": "sp ace+\u00fc"},
                   MetadataDirective="REPLACE", Metadata={"odd": "yes"})
    assert s3.head_object(Bucket=bucket, Key="sp ace+\u00fc")["Metadata"] == {"odd": "yes"}


def test_copy_of_multipart_object(s3, bucket, make_bucket):
    other = make_bucket("copy-mp")
    parts = [pattern_bytes(5 * MiB, 1), b"tail"]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="text/x-mp")["UploadId"]
    done = [{"PartNumber": i, "ETag": s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=i,
                                                     Body=p)["ETag"]} for i, p in enumerate(parts, 1)]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": done})
    s3.copy_object(Bucket=other, Key="mp-copy", CopySource={"Bucket": bucket, "Key": "mp"})
    g = s3.get_object(Bucket=other, Key="mp-copy")
    assert g["Body"].read() == b"".join(parts) and g["ContentType"] == "text/x-mp"
    assert s3.head_object(Bucket=bucket, Key="mp")["ETag"] == multipart_etag(parts, at=(bucket, "mp"))


# --------------------------------------------------------------------------
# AWS CLI
# --------------------------------------------------------------------------


def test_cli_s3_cp_between_buckets(worker, s3, bucket, make_bucket):
    other = make_bucket("cli-copy")
    key = "dir with space/\u00fc+plus.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"cli copy", ContentType="text/x-cli", Metadata={"m": "1"})
    r = aws(worker, "s3", "cp", "--no-progress", f"s3://{bucket}/{key}", f"s3://{other}/copied/{key}")
    assert "copy:" in r.stdout
    h = s3.head_object(Bucket=other, Key=f"copied/{key}")
    assert h["ETag"] == etag_of(b"cli copy") and h["ContentType"] == "text/x-cli" and h["Metadata"] == {"m": "1"}
    aws(worker, "s3", "cp", "--no-progress", "--metadata-directive", "REPLACE", "--content-type", "text/x-new",
        "--metadata", "n=2", f"s3://{bucket}/{key}", f"s3://{other}/replaced")
    h = s3.head_object(Bucket=other, Key="replaced")
    assert h["ContentType"] == "text/x-new" and h["Metadata"] == {"n": "2"}
    # above the CLI's 8 MiB threshold the copy is multipart: UploadPartCopy with ranges
    big = pattern_bytes(20 * MiB, 7)
    s3.put_object(Bucket=bucket, Key="big.bin", Body=big, ContentType="application/x-big")
    aws(worker, "s3", "cp", "--no-progress", f"s3://{bucket}/big.bin", f"s3://{other}/big-copy.bin")
    h = s3.head_object(Bucket=other, Key="big-copy.bin")
    chunks = [big[i:i + 8 * MiB] for i in range(0, len(big), 8 * MiB)]
    assert h["ETag"] == multipart_etag(chunks, at=(other, "big-copy.bin")) and h["ContentLength"] == len(big)
    # (CLI v1 sends no Content-Type or metadata with a multipart copy's CreateMultipartUpload)
    assert s3.get_object(Bucket=other, Key="big-copy.bin")["Body"].read() == big
    assert s3.list_multipart_uploads(Bucket=other).get("Uploads", []) == []


def test_cli_s3api_copy_object(worker, s3, bucket, tmp_path):
    key = "src key+\u00e9.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"s3api copy", Tagging="t=1")
    etag = etag_of(b"s3api copy")
    out = aws_json(worker, "s3api", "copy-object", "--bucket", bucket, "--key", "dst",
                   "--copy-source", f"{bucket}/{key}", "--metadata-directive", "REPLACE", "--metadata", "a=b",
                   "--content-type", "text/x-s3api", "--tagging-directive", "REPLACE", "--tagging", "n=2&o=3")
    assert out["CopyObjectResult"]["ETag"] == etag
    h = s3.head_object(Bucket=bucket, Key="dst")
    assert h["Metadata"] == {"a": "b"} and h["ContentType"] == "text/x-s3api"
    assert tags_of(s3, bucket, "dst") == {"n": "2", "o": "3"}
    out = aws_json(worker, "s3api", "copy-object", "--bucket", bucket, "--key", "dst2",
                   "--copy-source", f"{bucket}/{key}", "--copy-source-if-match", etag)
    assert out["CopyObjectResult"]["ETag"] == etag and tags_of(s3, bucket, "dst2") == {"t": "1"}
    cli_fail(worker, "PreconditionFailed", "s3api", "copy-object", "--bucket", bucket, "--key", "dst3",
             "--copy-source", f"{bucket}/{key}", "--copy-source-if-match", etag_of(b"x"))
    cli_fail(worker, "PreconditionFailed", "s3api", "copy-object", "--bucket", bucket, "--key", "dst3",
             "--copy-source", f"{bucket}/{key}", "--copy-source-if-none-match", etag)
    cli_fail(worker, "InvalidRequest", "s3api", "copy-object", "--bucket", bucket, "--key", key,
             "--copy-source", f"{bucket}/{key}")
    aws_json(worker, "s3api", "copy-object", "--bucket", bucket, "--key", key, "--copy-source", f"{bucket}/{key}",
             "--metadata-directive", "REPLACE", "--metadata", "self=1")
    assert s3.head_object(Bucket=bucket, Key=key)["Metadata"] == {"self": "1"}
    cli_fail(worker, "NoSuchKey", "s3api", "copy-object", "--bucket", bucket, "--key", "dst3",
             "--copy-source", f"{bucket}/missing")
    assert "dst3" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]


# --------------------------------------------------------------------------
# minio-py
# --------------------------------------------------------------------------


def test_minio_copy_object(worker, s3, bucket, make_bucket):
    mc = mk(worker)
    other = make_bucket("minio-copy")
    key = "m src/\u00fc+ber.txt"
    data = b"minio copy source"
    mc.put_object(bucket, key, io.BytesIO(data), len(data), content_type="text/x-minio",
                  metadata={"x-amz-meta-orig": "1"})
    st = mc.stat_object(bucket, key)
    r = mc.copy_object(other, "plain", CopySource(bucket, key))
    assert r.etag == md5hex(data)
    st2 = mc.stat_object(other, "plain")
    assert st2.content_type == "text/x-minio" and st2.metadata.get("x-amz-meta-orig") == "1"
    tags = Tags.new_object_tags()
    tags["project"] = "alcove"
    mc.copy_object(other, "replaced", CopySource(bucket, key), metadata={"x-amz-meta-new": "2"},
                   metadata_directive=REPLACE, tags=tags, tagging_directive=REPLACE)
    h = s3.head_object(Bucket=other, Key="replaced")
    assert h["Metadata"] == {"new": "2"}
    assert dict(mc.get_object_tags(other, "replaced")) == {"project": "alcove"}
    mc.copy_object(other, "copydir", CopySource(bucket, key), metadata_directive=COPY, tagging_directive=COPY)
    assert s3.head_object(Bucket=other, Key="copydir")["Metadata"] == {"orig": "1"}
    for src in (CopySource(bucket, key, match_etag="0" * 32),
                CopySource(bucket, key, not_match_etag=st.etag),
                CopySource(bucket, key, modified_since=st.last_modified),
                CopySource(bucket, key, unmodified_since=st.last_modified - dt.timedelta(days=1))):
        e = s3err("PreconditionFailed", mc.copy_object, other, "cond", src)
        assert e.response.status == 412
    r = mc.copy_object(other, "cond", CopySource(bucket, key, match_etag=st.etag,
                                                 unmodified_since=st.last_modified + dt.timedelta(days=1)))
    assert r.etag == md5hex(data)
    s3err("InvalidRequest", mc.copy_object, bucket, key, CopySource(bucket, key))
    mc.copy_object(bucket, key, CopySource(bucket, key), metadata={"x-amz-meta-self": "yes"},
                   metadata_directive=REPLACE)
    assert s3.head_object(Bucket=bucket, Key=key)["Metadata"] == {"self": "yes"}
    s3err("NoSuchKey", mc.copy_object, other, "x", CopySource(bucket, "missing"))


# --------------------------------------------------------------------------
# rclone, s3cmd
# --------------------------------------------------------------------------


def test_rclone_server_side_copy(worker, s3, bucket, make_bucket, tmp_path):
    assert RCLONE, "rclone not found: run scripts/install-deps.sh"
    env = rclone_env(worker, tmp_path)
    other = make_bucket("rclone-copy")
    key = "r dir/\u00fc+file.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"rclone server side")
    r = rc(env, "copyto", f"alc:{bucket}/{key}", f"alc:{other}/copied/{key}", "-vv")
    assert "server-side" in r.stderr.lower(), r.stderr
    assert not re.search(r"multipart upload starting|Uploading", r.stderr), r.stderr
    assert s3.get_object(Bucket=other, Key=f"copied/{key}")["Body"].read() == b"rclone server side"
    # above --s3-copy-cutoff rclone copies in parts: UploadPartCopy with ranges
    big = pattern_bytes(12 * MiB, 9)
    s3.put_object(Bucket=bucket, Key="big.bin", Body=big)
    rc(env, "copyto", f"alc:{bucket}/big.bin", f"alc:{other}/big.bin", "--s3-copy-cutoff", "5M", "-vv")
    h = s3.head_object(Bucket=other, Key="big.bin")
    assert h["ContentLength"] == len(big)
    if not is_s3_mounted(other):  # on an S3 mount the ETag is the remote's (its own part size)
        assert h["ETag"].endswith('-3"'), h["ETag"]
    assert h["ETag"] == multipart_etag([big[:5 * MiB], big[5 * MiB:10 * MiB], big[10 * MiB:]], at=(other, "big.bin"))
    assert md5hex(s3.get_object(Bucket=other, Key="big.bin")["Body"].read()) == md5hex(big)
    # moveto: a server-side copy, then a delete
    rc(env, "moveto", f"alc:{bucket}/{key}", f"alc:{bucket}/moved.txt")
    assert s3.get_object(Bucket=bucket, Key="moved.txt")["Body"].read() == b"rclone server side"
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key=key)


def test_s3cmd_cp_mv_modify(worker, s3, bucket, make_bucket, tmp_path):
    assert S3CMD, "s3cmd not found: run scripts/install-deps.sh"
    cfg = write_cfg(tmp_path / "s3cfg", worker)
    other = make_bucket("s3cmd-copy")
    key = "s dir/\u00fc+name.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"s3cmd copy", ContentType="text/x-s3cmd", Metadata={"k": "v"})
    r = s3cmd(cfg, "cp", f"s3://{bucket}/{key}", f"s3://{other}/copied/{key}")
    assert "copy:" in r.stdout.lower() or "->" in r.stdout, r.stdout
    h = s3.head_object(Bucket=other, Key=f"copied/{key}")
    assert h["ETag"] == etag_of(b"s3cmd copy") and h["ContentType"] == "text/x-s3cmd"
    assert h["Metadata"].get("k") == "v"
    # modify: a copy onto itself with REPLACE
    s3cmd(cfg, "modify", "--add-header=Cache-Control:max-age=7", f"s3://{other}/copied/{key}")
    h2 = s3.head_object(Bucket=other, Key=f"copied/{key}")
    assert h2["CacheControl"] == "max-age=7" and h2["ETag"] == h["ETag"]
    assert s3.get_object(Bucket=other, Key=f"copied/{key}")["Body"].read() == b"s3cmd copy"
    s3cmd(cfg, "mv", f"s3://{bucket}/{key}", f"s3://{other}/moved.txt")
    assert s3.get_object(Bucket=other, Key="moved.txt")["Body"].read() == b"s3cmd copy"
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key=key)
    s3cmd_fail(cfg, "not found", "cp", f"s3://{bucket}/missing", f"s3://{other}/x")
