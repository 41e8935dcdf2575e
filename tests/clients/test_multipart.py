"""Multipart uploads and flexible checksums, through boto3, the AWS CLI, minio-py, rclone and s3cmd.

Multipart: CreateMultipartUpload, UploadPart, UploadPartCopy (x-amz-copy-source-range),
CompleteMultipartUpload and its errors (InvalidPart, InvalidPartOrder, EntityTooSmall,
NoSuchUpload), AbortMultipartUpload, ListParts and ListMultipartUploads with their markers, the
multipart ETag (md5 of the binary part MD5s, -N, computed here), partNumber reads, staged parts
never listed, uploads surviving a worker restart, and the clients' own large uploads (a 1 GiB
`aws s3 cp`, minio, rclone and s3cmd with small parts).

Checksums: CRC32, CRC32C, CRC64NVME, SHA1 and SHA256 on PutObject and UploadPart (stored,
returned with ChecksumMode=ENABLED, BadDigest when wrong), COMPOSITE multipart checksums checked
against our own computation, and FULL_OBJECT ones against the whole content.
"""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from minio.commonconfig import ComposeSource
from minio.datatypes import Part

from alcove_helpers import (
    bucket_dir,
    is_s3_mounted,
    CHECKSUM_ALGORITHMS,
    MiB,
    checksum_b64,
    composite_checksum,
    crc32c_py,
    crc64nvme_py,
    etag_of,
    file_digests,
    file_md5,
    md5hex,
    multipart_etag,
    pattern_bytes,
    tree,
    wrong_checksum_b64,
    xml_find_all,
    xml_text,
)
from test_awscli import aws, aws_fail, aws_json
from test_boto3 import _force_trailer, expect_error
from test_minio import mk, s3err
from test_rclone import RCLONE, rc, rclone_env
from test_s3cmd import S3CMD, s3cmd, s3cmd_fail, write_cfg

PART = 5 * MiB  # AWS's smallest non-last part


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def cli_fail(w, code, *args):
    """An AWS CLI call that must fail with `code`, without the legacy retries (BadDigest is retried)."""
    return aws_fail(w, code, *args, env={"AWS_MAX_ATTEMPTS": "1"})


def uploads_of(s3, bucket, **kw) -> list[tuple[str, str]]:
    r = s3.list_multipart_uploads(Bucket=bucket, **kw)
    return [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]


def abort_all(s3, bucket):
    try:
        for key, uid in uploads_of(s3, bucket):
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)
    except ClientError:
        pass


@pytest.fixture(autouse=True)
def _abort_leftover_uploads(request):
    """Uploads a test leaves behind are aborted, so its bucket can be removed."""
    if "bucket" not in request.fixturenames:
        yield
        return
    # set up here, so the bucket is torn down after this fixture
    client, name = request.getfixturevalue("s3"), request.getfixturevalue("bucket")
    yield
    abort_all(client, name)


def upload_parts(s3, bucket, key, parts: list[bytes], **create_kw) -> tuple[str, list[dict]]:
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, **create_kw)["UploadId"]
    done = []
    for i, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i, Body=data)
        assert r["ETag"] == etag_of(data)
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    return uid, done


def multipart_object(s3, bucket, key, parts: list[bytes], **create_kw) -> dict:
    uid, done = upload_parts(s3, bucket, key, parts, **create_kw)
    r = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": done})
    assert r["ETag"] == multipart_etag(parts, at=(bucket, key)), r
    return r


def listed_keys(s3, bucket) -> list[str]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    keys_v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket).get("Contents", [])]
    versions = [v["Key"] for v in s3.list_object_versions(Bucket=bucket).get("Versions", [])]
    assert keys == keys_v1 == versions
    return keys


def checksum_fields(d: dict) -> dict:
    return {k: v for k, v in d.items() if k.startswith("Checksum") and k != "ChecksumAlgorithm"}


# --------------------------------------------------------------------------
# boto3: the multipart API
# --------------------------------------------------------------------------


def test_multipart_roundtrip_etag_metadata_and_invisible_parts(s3, bucket, worker):
    p1, p2_old, p2, p3 = pattern_bytes(PART, 1), pattern_bytes(PART, 2), pattern_bytes(PART, 3), b"tail" * 300
    key = "dir/big object.bin"
    s3.put_object(Bucket=bucket, Key="visible", Body=b"v")
    c = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-mp",
                                   Metadata={"Origin": "boto3"}, CacheControl="max-age=60",
                                   ContentDisposition='attachment; filename="big.bin"', Tagging="stage=mp&k=v")
    assert c["Bucket"] == bucket and c["Key"] == key
    uid = c["UploadId"]
    assert uid
    etags = {}
    for n, data in ((2, p2_old), (1, p1), (3, p3), (2, p2)):  # out of order; part 2 re-sent
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=data)
        assert r["ETag"] == etag_of(data)
        etags[n] = r["ETag"]

    # staged parts are in no listing, no HEAD, no file in the bucket's folder
    assert listed_keys(s3, bucket) == ["visible"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="dir/")["KeyCount"] == 0
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["visible"] and "CommonPrefixes" not in r, r
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key=key)
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key=key)
    assert set(tree(bucket_dir(worker, bucket))) == {"visible"}
    assert uploads_of(s3, bucket) == [(key, uid)]

    lp = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in lp["Parts"]] == [
        (1, etag_of(p1), PART), (2, etag_of(p2), PART), (3, etag_of(p3), len(p3))]
    assert lp["IsTruncated"] is False and lp["UploadId"] == uid and lp["Key"] == key

    parts = [p1, p2, p3]
    r = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]})
    assert r["ETag"] == multipart_etag(parts, at=(bucket, key))
    assert r["Bucket"] == bucket and r["Key"] == key
    data = b"".join(parts)
    h = s3.head_object(Bucket=bucket, Key=key)
    assert h["ETag"] == multipart_etag(parts, at=(bucket, key)) and h["ContentLength"] == len(data)
    assert h["ContentType"] == "application/x-mp" and h["Metadata"] == {"origin": "boto3"}
    assert h["CacheControl"] == "max-age=60" and h["ContentDisposition"] == 'attachment; filename="big.bin"'
    g = s3.get_object(Bucket=bucket, Key=key)
    assert g["Body"].read() == data
    assert g["ETag"] == multipart_etag(parts, at=(bucket, key)) and g["TagCount"] == 2
    assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [
        {"Key": "k", "Value": "v"}, {"Key": "stage", "Value": "mp"}]
    listing = {o["Key"]: o for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listing[key]["ETag"] == multipart_etag(parts, at=(bucket, key)) and listing[key]["Size"] == len(data)
    assert (bucket_dir(worker, bucket) / "dir" / "big object.bin").read_bytes() == data
    # the upload is over
    assert uploads_of(s3, bucket) == []
    expect_error("NoSuchUpload", 404, s3.list_parts, Bucket=bucket, Key=key, UploadId=uid)
    expect_error("NoSuchUpload", 404, s3.upload_part, Bucket=bucket, Key=key, UploadId=uid, PartNumber=4,
                 Body=b"x")
    assert set(tree(bucket_dir(worker, bucket))) == {"visible", "dir", "dir/big object.bin"}


def test_list_parts_pagination_and_part_numbers(s3, bucket):
    key = "parts"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    numbers = [1, 2, 3, 5, 8, 10000]
    for n in numbers:
        s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=f"part {n}".encode())
    for bad in (0, 10001):
        expect_error("InvalidArgument", 400, s3.upload_part, Bucket=bucket, Key=key, UploadId=uid, PartNumber=bad,
                     Body=b"x")
    seen, marker, pages = [], None, 0
    while True:
        kw = {"PartNumberMarker": marker} if marker is not None else {}
        r = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid, MaxParts=2, **kw)
        pages += 1
        assert r["MaxParts"] == 2
        got = [p["PartNumber"] for p in r["Parts"]]
        assert len(got) <= 2
        seen += got
        if not r["IsTruncated"]:
            break
        assert r["NextPartNumberMarker"] == got[-1]
        marker = r["NextPartNumberMarker"]
    assert seen == numbers and pages == 3
    r = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid, PartNumberMarker=5)
    assert [p["PartNumber"] for p in r["Parts"]] == [8, 10000] and not r["IsTruncated"]
    pag = s3.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=uid,
                                                   PaginationConfig={"PageSize": 4})
    pages = list(pag)
    assert [p["PartNumber"] for page in pages for p in page["Parts"]] == numbers and len(pages) == 2
    for p in s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]:
        assert p["ETag"] == etag_of(f"part {p['PartNumber']}".encode())
    # the upload id belongs to its key
    expect_error("NoSuchUpload", 404, s3.list_parts, Bucket=bucket, Key="other", UploadId=uid)
    expect_error("NoSuchUpload", 404, s3.list_parts, Bucket=bucket, Key=key, UploadId="0" * 32)
    expect_error("NoSuchUpload", 404, s3.list_parts, Bucket=bucket, Key=key, UploadId="../../x")


def test_complete_errors_keep_the_upload(s3, bucket, worker):
    key = "errs"
    small1, small2, big = b"a" * 1000, b"b" * 1000, pattern_bytes(PART, 7)
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=small1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=2, Body=small2)["ETag"]

    def complete(parts, upload_id=uid):
        return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                            MultipartUpload={"Parts": parts})

    expect_error("InvalidPartOrder", 400, complete, [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}])
    expect_error("InvalidPartOrder", 400, complete, [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 1, "ETag": e1}])
    expect_error("InvalidPart", 400, complete, [{"PartNumber": 1, "ETag": etag_of(b"something else")}])
    expect_error("InvalidPart", 400, complete, [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}])
    expect_error("InvalidPart", 400, complete, [{"PartNumber": 1, "ETag": e2}])
    expect_error("EntityTooSmall", 400, complete, [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}])
    expect_error("NoSuchUpload", 404, complete, [{"PartNumber": 1, "ETag": e1}], "f" * 32)
    expect_error("NoSuchUpload", 404, complete, [{"PartNumber": 1, "ETag": e1}], "not-an-upload-id")
    # nothing was published and the upload is intact
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key=key)
    assert listed_keys(s3, bucket) == []
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]] == [1, 2]
    # a big first part makes 1+2 acceptable; the small part 2 is the last
    e1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=big)["ETag"]
    r = complete([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}])
    assert r["ETag"] == multipart_etag([big, small2], at=(bucket, key))
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == big + small2
    # a gap in the part numbers is fine, and a single small part is a valid (last) part
    uid2 = s3.create_multipart_upload(Bucket=bucket, Key="gap")["UploadId"]
    ea = s3.upload_part(Bucket=bucket, Key="gap", UploadId=uid2, PartNumber=3, Body=big)["ETag"]
    eb = s3.upload_part(Bucket=bucket, Key="gap", UploadId=uid2, PartNumber=7, Body=b"z")["ETag"]
    r = s3.complete_multipart_upload(Bucket=bucket, Key="gap", UploadId=uid2, MultipartUpload={
        "Parts": [{"PartNumber": 3, "ETag": ea}, {"PartNumber": 7, "ETag": eb}]})
    assert r["ETag"] == multipart_etag([big, b"z"], at=(bucket, "gap"))
    h = s3.head_object(Bucket=bucket, Key="gap", PartNumber=2)
    assert h["ContentLength"] == 1 and h["PartsCount"] == 2
    assert s3.get_object(Bucket=bucket, Key="gap")["Body"].read() == big + b"z"


def test_repeated_complete_gets_the_same_answer(s3, bucket):
    """An SDK repeats CompleteMultipartUpload when the first answer was lost; the repeat must
    succeed with the same result, not NoSuchUpload."""
    key = "retried/object"
    big, tail = pattern_bytes(PART, 41), b"tail"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32")["UploadId"]
    parts = []
    for n, data in ((1, big), (2, tail)):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=data, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})

    def complete(listed):
        return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": listed})

    first = complete(parts)
    again = complete(parts)
    for field in ("ETag", "ChecksumCRC32", "ChecksumType", "Key", "Bucket"):
        assert again.get(field) == first.get(field), field
    expect_error("NoSuchUpload", 404, complete, parts[:1])
    expect_error("NoSuchUpload", 404, s3.list_parts, Bucket=bucket, Key=key, UploadId=uid)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == big + tail


def test_abort_multipart_upload(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="k", Body=b"old body")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=1, Body=b"new")["ETag"]
    assert uploads_of(s3, bucket) == [("k", uid)]
    r = s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=uid)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert uploads_of(s3, bucket) == []
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"old body"
    expect_error("NoSuchUpload", 404, s3.abort_multipart_upload, Bucket=bucket, Key="k", UploadId=uid)
    expect_error("NoSuchUpload", 404, s3.upload_part, Bucket=bucket, Key="k", UploadId=uid, PartNumber=2, Body=b"x")
    expect_error("NoSuchUpload", 404, s3.list_parts, Bucket=bucket, Key="k", UploadId=uid)
    expect_error("NoSuchUpload", 404, s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=uid,
                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"old body"
    assert set(tree(bucket_dir(worker, bucket))) == {"k"}
    expect_error("NoSuchBucket", 404, s3.create_multipart_upload, Bucket=bucket + "-missing", Key="k")


def test_upload_part_copy_with_ranges(s3, bucket, make_bucket):
    other = make_bucket("mpcopy-src")
    src = pattern_bytes(7 * MiB, 11)
    src_key = "src dir/\u00fc+n\u00efcode & more.bin"
    s3.put_object(Bucket=other, Key=src_key, Body=src)
    src_etag = etag_of(src)
    key = "assembled"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    cs = {"Bucket": other, "Key": src_key}
    r1 = s3.upload_part_copy(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, CopySource=cs,
                             CopySourceRange=f"bytes=0-{PART - 1}")
    assert r1["CopyPartResult"]["ETag"] == etag_of(src[:PART])
    assert r1["CopyPartResult"]["LastModified"]
    own = pattern_bytes(PART, 12)
    r2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=2, Body=own)
    r3 = s3.upload_part_copy(Bucket=bucket, Key=key, UploadId=uid, PartNumber=3, CopySource=cs,
                             CopySourceRange=f"bytes={6 * MiB}-{7 * MiB - 1}", CopySourceIfMatch=src_etag)
    assert r3["CopyPartResult"]["ETag"] == etag_of(src[6 * MiB:])
    # errors: malformed ranges, failed source conditions, missing source
    for bad in ("bytes=5-", "bytes=10-2", "items=0-1"):
        with pytest.raises(ClientError) as ei:
            s3.upload_part_copy(Bucket=bucket, Key=key, UploadId=uid, PartNumber=4, CopySource=cs,
                                CopySourceRange=bad)
        assert ei.value.response["Error"]["Code"] in ("InvalidArgument", "InvalidRange"), (bad, ei.value.response)
    expect_error("PreconditionFailed", 412, s3.upload_part_copy, Bucket=bucket, Key=key, UploadId=uid,
                 PartNumber=4, CopySource=cs, CopySourceIfMatch=etag_of(b"nope"))
    expect_error("PreconditionFailed", 412, s3.upload_part_copy, Bucket=bucket, Key=key, UploadId=uid,
                 PartNumber=4, CopySource=cs, CopySourceIfNoneMatch=src_etag)
    expect_error("NoSuchKey", 404, s3.upload_part_copy, Bucket=bucket, Key=key, UploadId=uid, PartNumber=4,
                 CopySource={"Bucket": other, "Key": "missing"})
    expect_error("NoSuchUpload", 404, s3.upload_part_copy, Bucket=bucket, Key=key, UploadId="a" * 32, PartNumber=1,
                 CopySource=cs)
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]] == [1, 2, 3]
    r = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": r2["ETag"]},
        {"PartNumber": 3, "ETag": r3["CopyPartResult"]["ETag"]}]})
    parts = [src[:PART], own, src[6 * MiB:]]
    assert r["ETag"] == multipart_etag(parts, at=(bucket, key))
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(parts)
    # a whole-object part copy (no range)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="whole")["UploadId"]
    rw = s3.upload_part_copy(Bucket=bucket, Key="whole", UploadId=uid, PartNumber=1, CopySource=cs)
    assert rw["CopyPartResult"]["ETag"] == src_etag
    r = s3.complete_multipart_upload(Bucket=bucket, Key="whole", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": src_etag}]})
    assert r["ETag"] == multipart_etag([src], at=(bucket, "whole"))
    assert s3.get_object(Bucket=bucket, Key="whole")["Body"].read() == src


def test_list_multipart_uploads_markers_prefix_delimiter(s3, bucket, make_bucket):
    keys = ["a/one", "a/one", "a/two", "b", "c/d/e", "\u00fcber key"]
    created = [(k, s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]) for k in keys]
    other = make_bucket("mpu-other")
    s3.create_multipart_upload(Bucket=other, Key="a/one")
    full = s3.list_multipart_uploads(Bucket=bucket)
    expected = [(u["Key"], u["UploadId"]) for u in full["Uploads"]]
    # by key (UTF-8 order), then initiation; only this bucket's uploads
    assert [k for k, _ in expected] == sorted(keys, key=str.encode)
    assert sorted(expected) == sorted(created)
    assert full["IsTruncated"] is False
    theirs = uploads_of(s3, other)
    assert len(theirs) == 1 and not set(theirs) & set(created)
    for u in full["Uploads"]:
        assert u["Initiated"] and u["StorageClass"] == "STANDARD"
    # pages of 2, following both markers
    seen, km, im, pages = [], None, None, 0
    while True:
        kw = {}
        if km is not None:
            kw["KeyMarker"] = km
            if im:
                kw["UploadIdMarker"] = im
        r = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2, **kw)
        pages += 1
        page = [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]
        assert len(page) <= 2
        seen += page
        if not r["IsTruncated"]:
            break
        assert (r["NextKeyMarker"], r["NextUploadIdMarker"]) == page[-1]
        km, im = r["NextKeyMarker"], r["NextUploadIdMarker"]
        assert pages < 10
    assert seen == expected and pages == 3
    # the first a/one upload as markers: the other one comes next
    r = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="a/one", UploadIdMarker=expected[0][1])
    assert [(u["Key"], u["UploadId"]) for u in r["Uploads"]] == expected[1:]
    # a key marker alone skips every upload of that key
    r = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="a/one")
    assert [u["Key"] for u in r["Uploads"]] == ["a/two", "b", "c/d/e", "\u00fcber key"]
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")
    assert [(u["Key"], u["UploadId"]) for u in r["Uploads"]] == expected[:3]
    r = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in r["Uploads"]] == ["b", "\u00fcber key"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "c/"]
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="c/", Delimiter="/")
    assert r.get("Uploads", []) == [] and [p["Prefix"] for p in r["CommonPrefixes"]] == ["c/d/"]
    pages = list(s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket,
                                                                     PaginationConfig={"PageSize": 1}))
    assert [(u["Key"], u["UploadId"]) for p in pages for u in p.get("Uploads", [])] == expected
    assert len(pages) == len(expected)
    # none of them is an object
    assert listed_keys(s3, bucket) == []
    abort_all(s3, other)


def test_list_multipart_uploads_same_key_in_initiation_order(s3, bucket):
    """AWS sorts the uploads of one key by initiation time (not by upload id), also within a second."""
    ids = [s3.create_multipart_upload(Bucket=bucket, Key="same")["UploadId"] for _ in range(5)]
    r = s3.list_multipart_uploads(Bucket=bucket)
    assert [u["UploadId"] for u in r["Uploads"]] == ids
    times = [u["Initiated"] for u in r["Uploads"]]
    assert times == sorted(times)
    # and the markers follow that order
    r = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="same", UploadIdMarker=ids[1])
    assert [u["UploadId"] for u in r["Uploads"]] == ids[2:]


def test_list_multipart_uploads_encoding_type_url(s3, bucket, worker):
    key = "sp ace/\u00fc+&<x>.bin"
    s3.create_multipart_upload(Bucket=bucket, Key=key)
    assert [k for k, _ in uploads_of(s3, bucket)] == [key]  # boto3 asks for no encoding
    assert [u.object_name for u in mk(worker)._list_multipart_uploads(bucket).uploads] == [key]  # minio does
    r = worker.raw("GET", f"/{bucket}?uploads&encoding-type=url", {"Authorization": "AWS AKIDALCOVETEST:x"})
    assert r.status == 200, r
    root = ET.fromstring(r.body)
    assert xml_text(root, "EncodingType") == "url", r.body
    (enc,) = [n.text for n in xml_find_all(root, "Upload/Key")]
    assert enc != key and urllib.parse.unquote_plus(enc) == key, enc


def test_upload_part_copy_range_outside_the_source(s3, bucket):
    """AWS answers a copy range past the source's end with 400 InvalidArgument ("Range specified is
    not valid for source object of size: N"), not a 416 as for a GET."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    expect_error("InvalidArgument", 400, s3.upload_part_copy, Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1,
                 CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange="bytes=5-10")
    r = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange="bytes=5-9")
    assert r["CopyPartResult"]["ETag"] == etag_of(b"56789")


@pytest.fixture(scope="module")
def mp_obj(worker, s3, new_bucket):
    """A bucket with a 2-part object (5 MiB + 300 B) and a plain one."""
    name = new_bucket("mpobj")
    parts = [pattern_bytes(PART, 21), pattern_bytes(300, 22)]
    multipart_object(s3, name, "mp", parts)
    s3.put_object(Bucket=name, Key="plain", Body=b"single")
    yield name, parts
    new_bucket.destroy(name)


def test_part_number_get_and_head(s3, mp_obj):
    bucket, parts = mp_obj
    total = sum(map(len, parts))
    g = s3.get_object(Bucket=bucket, Key="mp", PartNumber=1)
    assert g["Body"].read() == parts[0]
    assert g["PartsCount"] == 2 and g["ContentLength"] == PART
    assert g["ContentRange"] == f"bytes 0-{PART - 1}/{total}"
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert g["ETag"] == multipart_etag(parts, at=(bucket, "mp"))
    g = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert g["Body"].read() == parts[1] and g["PartsCount"] == 2
    assert g["ContentRange"] == f"bytes {PART}-{total - 1}/{total}"
    h = s3.head_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert h["ContentLength"] == 300 and h["PartsCount"] == 2 and h["ETag"] == multipart_etag(parts, at=(bucket, "mp"))
    h = s3.head_object(Bucket=bucket, Key="mp")
    assert h["ContentLength"] == total and "PartsCount" not in h
    expect_error("InvalidPartNumber", 416, s3.get_object, Bucket=bucket, Key="mp", PartNumber=3)
    expect_error("416", 416, s3.head_object, Bucket=bucket, Key="mp", PartNumber=3)
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=1, Range="bytes=0-1")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # a plain object is its own part 1
    g = s3.get_object(Bucket=bucket, Key="plain", PartNumber=1)
    assert g["Body"].read() == b"single" and g["ContentLength"] == 6
    expect_error("InvalidPartNumber", 416, s3.get_object, Bucket=bucket, Key="plain", PartNumber=2)


def test_upload_survives_worker_restart(start_worker):
    w = start_worker(name="mprestart")
    c = w.client()
    c.create_bucket(Bucket="mpr")
    p1, p2, p3 = pattern_bytes(PART, 31), pattern_bytes(PART, 32), b"last part"
    uid = c.create_multipart_upload(Bucket="mpr", Key="held/key", ContentType="text/x-held",
                                    Metadata={"m": "1"})["UploadId"]
    e1 = c.upload_part(Bucket="mpr", Key="held/key", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    old = w.pid
    w.restart()
    assert w.pid != old
    c = w.client()
    assert uploads_of(c, "mpr") == [("held/key", uid)]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in c.list_parts(Bucket="mpr", Key="held/key",
                                                                        UploadId=uid)["Parts"]] == [(1, e1, PART)]
    e2 = c.upload_part(Bucket="mpr", Key="held/key", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    # an abrupt end (SIGKILL) in the middle of a part loses nothing acknowledged, keeps nothing half-sent
    sock = socket.create_connection(("127.0.0.1", w.s3_port), timeout=10)
    sock.sendall((f"PUT /mpr/held/key?partNumber=3&uploadId={uid} HTTP/1.1\r\nHost: {w.host}\r\n"
                  f"Content-Length: {PART}\r\n\r\n").encode() + b"h" * MiB)
    time.sleep(0.3)
    w.proc.kill()
    w.proc.wait(10)
    w.proc = None
    sock.close()
    w.start(keep_ports=True)
    c = w.client()
    assert [p["PartNumber"] for p in c.list_parts(Bucket="mpr", Key="held/key", UploadId=uid)["Parts"]] == [1, 2]
    assert [o["Key"] for o in c.list_objects_v2(Bucket="mpr").get("Contents", [])] == []
    e3 = c.upload_part(Bucket="mpr", Key="held/key", UploadId=uid, PartNumber=3, Body=p3)["ETag"]
    r = c.complete_multipart_upload(Bucket="mpr", Key="held/key", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": e3}]})
    assert r["ETag"] == multipart_etag([p1, p2, p3])
    g = c.get_object(Bucket="mpr", Key="held/key")
    assert g["Body"].read() == p1 + p2 + p3
    assert g["ContentType"] == "text/x-held" and g["Metadata"] == {"m": "1"}
    assert uploads_of(c, "mpr") == []
    w.restart()
    assert w.client().head_object(Bucket="mpr", Key="held/key")["ETag"] == multipart_etag([p1, p2, p3])


def test_boto3_upload_file_multipart(s3, bucket, tmp_path):
    data = pattern_bytes(11 * MiB, 41)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=3)
    s3.upload_file(str(src), bucket, "transfer.bin", Config=cfg)
    parts = [data[:PART], data[PART:2 * PART], data[2 * PART:]]
    h = s3.head_object(Bucket=bucket, Key="transfer.bin", ChecksumMode="ENABLED")
    assert h["ETag"] == multipart_etag(parts, at=(bucket, "transfer.bin")) and h["ContentLength"] == len(data)
    # s3transfer asks for CRC32 by default; whatever type it chose, the value must be right
    assert h.get("ChecksumCRC32"), h
    if h.get("ChecksumType") == "FULL_OBJECT":
        assert h["ChecksumCRC32"] == checksum_b64("CRC32", data)
    else:
        assert h["ChecksumCRC32"] == composite_checksum("CRC32", [checksum_b64("CRC32", p) for p in parts])
    dst = tmp_path / "dst.bin"
    s3.download_file(bucket, "transfer.bin", str(dst), Config=cfg)
    assert dst.read_bytes() == data


# --------------------------------------------------------------------------
# checksums (boto3, AWS CLI)
# --------------------------------------------------------------------------


def test_checksum_reference_values():
    """Our own CRC32C and CRC64NVME (pure Python) give the catalogue's check values and agree with
    the AWS CRT, which the tests use for megabyte inputs."""
    from awscrt import checksums
    assert crc32c_py(b"123456789") == 0xE3069283
    assert crc64nvme_py(b"123456789") == 0xAE8B14860A799888
    data = pattern_bytes(5000, 5)
    assert crc32c_py(data) == checksums.crc32c(data)
    assert crc64nvme_py(data) == checksums.crc64nvme(data)


@pytest.mark.parametrize("alg", CHECKSUM_ALGORITHMS)
def test_put_object_checksum_stored_and_returned(s3, bucket, alg):
    data = pattern_bytes(70_000, 51)
    want = checksum_b64(alg, data)
    r = s3.put_object(Bucket=bucket, Key="obj", Body=data, ChecksumAlgorithm=alg)
    assert r[f"Checksum{alg}"] == want
    h = s3.head_object(Bucket=bucket, Key="obj")
    assert checksum_fields(h) == {}, "checksums only with ChecksumMode=ENABLED"
    h = s3.head_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert checksum_fields(h) == {f"Checksum{alg}": want, "ChecksumType": "FULL_OBJECT"}
    g = s3.get_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert g["Body"].read() == data  # boto3 also validates the body against the header here
    assert checksum_fields(g) == {f"Checksum{alg}": want, "ChecksumType": "FULL_OBJECT"}
    # an explicit value is verified: a wrong one is BadDigest and changes nothing
    expect_error("BadDigest", 400, s3.put_object, Bucket=bucket, Key="obj", Body=b"other body",
                 **{f"Checksum{alg}": wrong_checksum_b64(alg, b"other body")})
    expect_error("BadDigest", 400, s3.put_object, Bucket=bucket, Key="new", Body=b"other body",
                 **{f"Checksum{alg}": want})
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == data
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["obj"]
    r = s3.put_object(Bucket=bucket, Key="obj2", Body=b"other body", **{f"Checksum{alg}": checksum_b64(alg, b"other body")})
    assert r["ETag"] == etag_of(b"other body")
    h = s3.head_object(Bucket=bucket, Key="obj2", ChecksumMode="ENABLED")
    assert h[f"Checksum{alg}"] == checksum_b64(alg, b"other body")


def test_trailer_checksums_put_and_part(worker, bucket, monkeypatch):
    """The same algorithms sent as aws-chunked trailers (what boto3 does over https)."""
    _force_trailer(monkeypatch)
    c = worker.client(request_checksum_calculation="when_supported")
    seen = {}
    c.meta.events.register("before-send.s3.*", lambda request, **_: seen.update(
        {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}))
    data, part = pattern_bytes(30_000, 53), pattern_bytes(20_000, 54)
    for alg in CHECKSUM_ALGORITHMS:
        seen.clear()
        r = c.put_object(Bucket=bucket, Key=f"t-{alg}", Body=data, ChecksumAlgorithm=alg)
        assert seen.get("x-amz-trailer") == f"x-amz-checksum-{alg.lower()}"
        assert r[f"Checksum{alg}"] == checksum_b64(alg, data)
        h = c.head_object(Bucket=bucket, Key=f"t-{alg}", ChecksumMode="ENABLED")
        assert h[f"Checksum{alg}"] == checksum_b64(alg, data)
        uid = c.create_multipart_upload(Bucket=bucket, Key=f"tp-{alg}", ChecksumAlgorithm=alg)["UploadId"]
        seen.clear()
        p = c.upload_part(Bucket=bucket, Key=f"tp-{alg}", UploadId=uid, PartNumber=1, Body=part,
                          ChecksumAlgorithm=alg)
        assert seen.get("x-amz-trailer") == f"x-amz-checksum-{alg.lower()}"
        assert p[f"Checksum{alg}"] == checksum_b64(alg, part)
        r = c.complete_multipart_upload(Bucket=bucket, Key=f"tp-{alg}", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": p["ETag"], f"Checksum{alg}": p[f"Checksum{alg}"]}]})
        if alg == "CRC64NVME":  # full-object only
            assert (r[f"Checksum{alg}"], r["ChecksumType"]) == (checksum_b64(alg, part), "FULL_OBJECT")
        else:
            assert (r[f"Checksum{alg}"], r["ChecksumType"]) == (composite_checksum(alg, [checksum_b64(alg, part)]),
                                                                "COMPOSITE")


def test_cli_put_object_checksum_algorithms(worker, s3, bucket, tmp_path):
    data = pattern_bytes(40_000, 52)
    f = tmp_path / "body.bin"
    f.write_bytes(data)
    for alg in CHECKSUM_ALGORITHMS:
        out = aws_json(worker, "s3api", "put-object", "--bucket", bucket, "--key", f"cli-{alg}", "--body", str(f),
                       "--checksum-algorithm", alg)
        assert out[f"Checksum{alg}"] == checksum_b64(alg, data), out
        assert out["ETag"] == etag_of(data)
        h = s3.head_object(Bucket=bucket, Key=f"cli-{alg}", ChecksumMode="ENABLED")
        assert h[f"Checksum{alg}"] == checksum_b64(alg, data) and h["ChecksumType"] == "FULL_OBJECT"
    out = aws_json(worker, "s3api", "head-object", "--bucket", bucket, "--key", "cli-SHA256",
                   "--checksum-mode", "ENABLED")
    assert out["ChecksumSHA256"] == checksum_b64("SHA256", data)
    cli_fail(worker, "BadDigest", "s3api", "put-object", "--bucket", bucket, "--key", "cli-bad", "--body", str(f),
             "--checksum-sha256", wrong_checksum_b64("SHA256", data))
    cli_fail(worker, "BadDigest", "s3api", "put-object", "--bucket", bucket, "--key", "cli-bad", "--body", str(f),
             "--checksum-crc32", wrong_checksum_b64("CRC32", data))
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="cli-bad")


@pytest.mark.parametrize("alg", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_multipart_composite_checksum(s3, bucket, alg):
    parts = [pattern_bytes(PART, 61), pattern_bytes(4321, 62)]
    c = s3.create_multipart_upload(Bucket=bucket, Key="comp", ChecksumAlgorithm=alg)
    assert c["ChecksumAlgorithm"] == alg
    assert c.get("ChecksumType", "COMPOSITE") == "COMPOSITE"
    uid = c["UploadId"]
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="comp", UploadId=uid, PartNumber=i, Body=p, ChecksumAlgorithm=alg)
        assert r[f"Checksum{alg}"] == checksum_b64(alg, p)
        done.append({"PartNumber": i, "ETag": r["ETag"], f"Checksum{alg}": r[f"Checksum{alg}"]})
    lp = s3.list_parts(Bucket=bucket, Key="comp", UploadId=uid)
    assert [p[f"Checksum{alg}"] for p in lp["Parts"]] == [checksum_b64(alg, p) for p in parts]
    # a part with a wrong explicit checksum is refused and not stored
    expect_error("BadDigest", 400, s3.upload_part, Bucket=bucket, Key="comp", UploadId=uid, PartNumber=3,
                 Body=b"xyz", **{f"Checksum{alg}": wrong_checksum_b64(alg, b"xyz")})
    assert len(s3.list_parts(Bucket=bucket, Key="comp", UploadId=uid)["Parts"]) == 2
    want = composite_checksum(alg, [checksum_b64(alg, p) for p in parts])
    assert want.endswith("-2")
    r = s3.complete_multipart_upload(Bucket=bucket, Key="comp", UploadId=uid, MultipartUpload={"Parts": done})
    assert r[f"Checksum{alg}"] == want and r.get("ChecksumType") == "COMPOSITE"
    assert r["ETag"] == multipart_etag(parts, at=(bucket, "comp"))
    h = s3.head_object(Bucket=bucket, Key="comp", ChecksumMode="ENABLED")
    assert checksum_fields(h) == {f"Checksum{alg}": want, "ChecksumType": "COMPOSITE"}
    g = s3.get_object(Bucket=bucket, Key="comp", ChecksumMode="ENABLED")
    assert g["Body"].read() == b"".join(parts)
    assert g[f"Checksum{alg}"] == want


@pytest.mark.parametrize("case", ["wrong", "swapped", "missing"])
def test_complete_verifies_part_checksums(s3, bucket, case):
    """A COMPOSITE upload's Complete names each part's checksum, and it must be the stored one:
    a different one is InvalidPart (as for a wrong ETag), a missing one InvalidRequest."""
    alg = "SHA256"
    parts = [pattern_bytes(PART, 63), b"the last part"]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="ck", ChecksumAlgorithm=alg)["UploadId"]
    good = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="ck", UploadId=uid, PartNumber=i, Body=p, ChecksumAlgorithm=alg)
        good.append({"PartNumber": i, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    if case == "wrong":
        bad, code = [dict(good[0], ChecksumSHA256=wrong_checksum_b64(alg, parts[0])), good[1]], "InvalidPart"
    elif case == "swapped":
        bad, code = [dict(good[0], ChecksumSHA256=good[1]["ChecksumSHA256"]),
                     dict(good[1], ChecksumSHA256=good[0]["ChecksumSHA256"])], "InvalidPart"
    else:
        bad, code = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in good], "InvalidRequest"
    expect_error(code, 400, s3.complete_multipart_upload, Bucket=bucket, Key="ck", UploadId=uid,
                 MultipartUpload={"Parts": bad})
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="ck")
    r = s3.complete_multipart_upload(Bucket=bucket, Key="ck", UploadId=uid, MultipartUpload={"Parts": good})
    assert r["ChecksumSHA256"] == composite_checksum(alg, [p["ChecksumSHA256"] for p in good])


def test_cli_multipart_composite_checksum(worker, s3, bucket, tmp_path):
    alg = "CRC32"
    parts = [pattern_bytes(PART, 64), b"cli checksum tail"]
    uid = aws_json(worker, "s3api", "create-multipart-upload", "--bucket", bucket, "--key", "cli-ck",
                   "--checksum-algorithm", alg)["UploadId"]
    done = []
    for i, p in enumerate(parts, 1):
        f = tmp_path / f"p{i}"
        f.write_bytes(p)
        out = aws_json(worker, "s3api", "upload-part", "--bucket", bucket, "--key", "cli-ck", "--upload-id", uid,
                       "--part-number", str(i), "--body", str(f), "--checksum-algorithm", alg)
        assert out["ChecksumCRC32"] == checksum_b64(alg, p), out
        done.append({"PartNumber": i, "ETag": out["ETag"], "ChecksumCRC32": out["ChecksumCRC32"]})
    pf = tmp_path / "parts.json"
    pf.write_text(json.dumps({"Parts": done}))
    out = aws_json(worker, "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", "cli-ck",
                   "--upload-id", uid, "--multipart-upload", f"file://{pf}")
    want = composite_checksum(alg, [checksum_b64(alg, p) for p in parts])
    assert out["ChecksumCRC32"] == want and out["ChecksumType"] == "COMPOSITE", out
    assert out["ETag"] == multipart_etag(parts, at=(bucket, "cli-ck"))
    out = aws_json(worker, "s3api", "head-object", "--bucket", bucket, "--key", "cli-ck", "--checksum-mode", "ENABLED")
    assert out["ChecksumCRC32"] == want and out["ChecksumType"] == "COMPOSITE"
    # a part checksum in Complete that is not the uploaded one: InvalidPart
    uid = aws_json(worker, "s3api", "create-multipart-upload", "--bucket", bucket, "--key", "cli-ck2",
                   "--checksum-algorithm", alg)["UploadId"]
    out = aws_json(worker, "s3api", "upload-part", "--bucket", bucket, "--key", "cli-ck2", "--upload-id", uid,
                   "--part-number", "1", "--body", str(tmp_path / "p2"), "--checksum-algorithm", alg)
    pf.write_text(json.dumps({"Parts": [{"PartNumber": 1, "ETag": out["ETag"],
                                         "ChecksumCRC32": wrong_checksum_b64(alg, parts[1])}]}))
    cli_fail(worker, "InvalidPart", "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", "cli-ck2",
             "--upload-id", uid, "--multipart-upload", f"file://{pf}")


@pytest.mark.parametrize("alg", ["CRC32", "CRC32C", "CRC64NVME"])
def test_multipart_full_object_checksum(s3, bucket, alg):
    parts = [pattern_bytes(PART, 71), pattern_bytes(PART, 72), pattern_bytes(999, 73)]
    data = b"".join(parts)
    whole = checksum_b64(alg, data)
    c = s3.create_multipart_upload(Bucket=bucket, Key="full", ChecksumAlgorithm=alg, ChecksumType="FULL_OBJECT")
    assert c["ChecksumAlgorithm"] == alg and c["ChecksumType"] == "FULL_OBJECT"
    uid = c["UploadId"]
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="full", UploadId=uid, PartNumber=i, Body=p, ChecksumAlgorithm=alg)
        assert r[f"Checksum{alg}"] == checksum_b64(alg, p)
        done.append({"PartNumber": i, "ETag": r["ETag"], f"Checksum{alg}": r[f"Checksum{alg}"]})
    # a wrong whole-object value on Complete is BadDigest, and the upload stays
    expect_error("BadDigest", 400, s3.complete_multipart_upload, Bucket=bucket, Key="full", UploadId=uid,
                 MultipartUpload={"Parts": done}, ChecksumType="FULL_OBJECT",
                 **{f"Checksum{alg}": wrong_checksum_b64(alg, data)})
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="full")
    r = s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=uid, MultipartUpload={"Parts": done},
                                     ChecksumType="FULL_OBJECT", **{f"Checksum{alg}": whole})
    assert r[f"Checksum{alg}"] == whole and r["ChecksumType"] == "FULL_OBJECT"
    assert r["ETag"] == multipart_etag(parts, at=(bucket, "full"))
    h = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert checksum_fields(h) == {f"Checksum{alg}": whole, "ChecksumType": "FULL_OBJECT"}
    g = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert g["Body"].read() == data  # validated by boto3 against the full-object value
    # the same content in one PutObject: boto3 computes it, the server stores the same value
    single = s3.put_object(Bucket=bucket, Key="single", Body=data, ChecksumAlgorithm=alg)
    assert single[f"Checksum{alg}"] == whole
    assert s3.head_object(Bucket=bucket, Key="single", ChecksumMode="ENABLED")[f"Checksum{alg}"] == whole


# --------------------------------------------------------------------------
# AWS CLI
# --------------------------------------------------------------------------


def test_cli_cp_1gib_multipart(worker, s3, bucket, tmp_path):
    """`aws s3 cp` of 1 GiB: multipart with 8 MiB parts up, ranged GETs down."""
    src = tmp_path / "1g.bin"
    size = 1024 * MiB
    with open(src, "wb") as f:  # sparse, with a distinct marker in every MiB
        f.truncate(size)
        for i in range(0, size, MiB):
            f.seek(i)
            f.write(f"<MiB {i // MiB:05d}>".encode() * 4)
    want = file_digests(src, 8 * MiB)
    assert want["etag"].endswith('-128"')
    t0 = time.monotonic()
    r = aws(worker, "s3", "cp", "--no-progress", str(src), f"s3://{bucket}/big/1g.bin", timeout=300)
    up = time.monotonic() - t0
    assert "upload:" in r.stdout
    h = s3.head_object(Bucket=bucket, Key="big/1g.bin", ChecksumMode="ENABLED")
    assert h["ContentLength"] == size
    assert h["ETag"] == (multipart_etag([], at=(bucket, "big/1g.bin")) if is_s3_mounted(bucket) else want["etag"])
    # the CLI sends CRC32s with its parts (COMPOSITE unless it asks for FULL_OBJECT)
    if h.get("ChecksumType") == "FULL_OBJECT":
        assert h["ChecksumCRC32"] == want["crc32"]
    else:
        assert h["ChecksumCRC32"] == composite_checksum("CRC32", want["part_crc32s"]), h
    assert uploads_of(s3, bucket) == []
    dst = tmp_path / "down.bin"
    t0 = time.monotonic()
    aws(worker, "s3", "cp", "--no-progress", f"s3://{bucket}/big/1g.bin", str(dst), timeout=300)
    down = time.monotonic() - t0
    src.unlink()
    assert dst.stat().st_size == size
    assert file_md5(dst) == want["md5"]
    dst.unlink()
    assert up < 150 and down < 100, (up, down)


def test_cli_s3api_multipart(worker, s3, bucket, tmp_path):
    p1, p2 = pattern_bytes(PART, 81), b"cli tail part"
    (tmp_path / "p1").write_bytes(p1)
    (tmp_path / "p2").write_bytes(p2)
    key = "cli dir/mp+\u00e9.bin"
    out = aws_json(worker, "s3api", "create-multipart-upload", "--bucket", bucket, "--key", key,
                   "--content-type", "application/x-cli-mp", "--metadata", "via=cli")
    uid = out["UploadId"]
    assert out["Key"] == key and out["Bucket"] == bucket
    e1 = aws_json(worker, "s3api", "upload-part", "--bucket", bucket, "--key", key, "--upload-id", uid,
                  "--part-number", "1", "--body", str(tmp_path / "p1"))["ETag"]
    e2 = aws_json(worker, "s3api", "upload-part", "--bucket", bucket, "--key", key, "--upload-id", uid,
                  "--part-number", "2", "--body", str(tmp_path / "p2"))["ETag"]
    assert (e1, e2) == (etag_of(p1), etag_of(p2))
    # the CLI pages through ListParts by itself (PartNumberMarker)
    lp = aws_json(worker, "s3api", "list-parts", "--bucket", bucket, "--key", key, "--upload-id", uid,
                  "--page-size", "1")
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in lp["Parts"]] == [(1, e1, PART), (2, e2, len(p2))]
    other = [aws_json(worker, "s3api", "create-multipart-upload", "--bucket", bucket, "--key", k)["UploadId"]
             for k in ("zz-1", "zz-2")]
    lu = aws_json(worker, "s3api", "list-multipart-uploads", "--bucket", bucket, "--page-size", "1")
    assert [(u["Key"], u["UploadId"]) for u in lu["Uploads"]] == [(key, uid), ("zz-1", other[0]), ("zz-2", other[1])]
    ls = aws(worker, "s3", "ls", "--recursive", f"s3://{bucket}/").stdout
    assert ls.strip() == "", ls

    def parts_file(parts):
        f = tmp_path / "parts.json"
        f.write_text(json.dumps({"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]}))
        return f"file://{f}"

    cli_fail(worker, "InvalidPartOrder", "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", key,
             "--upload-id", uid, "--multipart-upload", parts_file([(2, e2), (1, e1)]))
    cli_fail(worker, "InvalidPart", "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", key,
             "--upload-id", uid, "--multipart-upload", parts_file([(1, e2), (2, e2)]))
    out = aws_json(worker, "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", key,
                   "--upload-id", uid, "--multipart-upload", parts_file([(1, e1), (2, e2)]))
    assert out["ETag"] == multipart_etag([p1, p2], at=(bucket, key)) and out["Key"] == key
    for k, u in zip(("zz-1", "zz-2"), other):
        aws(worker, "s3api", "abort-multipart-upload", "--bucket", bucket, "--key", k, "--upload-id", u)
    cli_fail(worker, "NoSuchUpload", "s3api", "abort-multipart-upload", "--bucket", bucket, "--key", "zz-1",
             "--upload-id", other[0])
    assert aws_json(worker, "s3api", "list-multipart-uploads", "--bucket", bucket).get("Uploads", []) == []
    out = aws_json(worker, "s3api", "get-object", "--bucket", bucket, "--key", key, "--part-number", "2",
                   str(tmp_path / "part2.out"))
    assert out["PartsCount"] == 2 and out["ContentLength"] == len(p2)
    assert (tmp_path / "part2.out").read_bytes() == p2
    out = aws_json(worker, "s3api", "head-object", "--bucket", bucket, "--key", key, "--part-number", "1")
    assert out["PartsCount"] == 2 and out["ContentLength"] == PART and out["ETag"] == multipart_etag([p1, p2], at=(bucket, key))
    assert out["ContentType"] == "application/x-cli-mp" and out["Metadata"] == {"via": "cli"}


def test_cli_entity_too_small(worker, s3, bucket, tmp_path):
    key = "small-parts"
    (tmp_path / "s").write_bytes(b"s" * 1024)
    uid = aws_json(worker, "s3api", "create-multipart-upload", "--bucket", bucket, "--key", key)["UploadId"]
    etags = [aws_json(worker, "s3api", "upload-part", "--bucket", bucket, "--key", key, "--upload-id", uid,
                      "--part-number", str(n), "--body", str(tmp_path / "s"))["ETag"] for n in (1, 2)]
    f = tmp_path / "parts.json"
    f.write_text(json.dumps({"Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags)]}))
    cli_fail(worker, "EntityTooSmall", "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", key,
             "--upload-id", uid, "--multipart-upload", f"file://{f}")
    assert uploads_of(s3, bucket) == [(key, uid)]


# --------------------------------------------------------------------------
# minio-py
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mc(worker):
    return mk(worker)


def test_minio_large_put_small_parts(mc, s3, bucket):
    data = pattern_bytes(42 * MiB, 91)
    r = mc.put_object(bucket, "minio/big.bin", io.BytesIO(data), len(data), part_size=PART,
                      content_type="application/x-minio-mp", metadata={"x-amz-meta-src": "minio"})
    parts = [data[i:i + PART] for i in range(0, len(data), PART)]
    assert len(parts) == 9
    assert f'"{r.etag}"' == multipart_etag(parts, at=(bucket, "minio/big.bin"))
    st = mc.stat_object(bucket, "minio/big.bin")
    assert st.size == len(data) and f'"{st.etag}"' == multipart_etag(parts, at=(bucket, "minio/big.bin"))
    assert st.content_type == "application/x-minio-mp" and st.metadata.get("x-amz-meta-src") == "minio"
    resp = mc.get_object(bucket, "minio/big.bin")
    try:
        assert md5hex(resp.read()) == md5hex(data)
    finally:
        resp.close()
        resp.release_conn()
    resp = mc.get_object(bucket, "minio/big.bin", extra_query_params={"partNumber": "9"})
    try:
        assert resp.read() == parts[-1]
        assert resp.headers["x-amz-mp-parts-count"] == "9"
    finally:
        resp.close()
        resp.release_conn()
    listed = {o.object_name: o.etag for o in mc.list_objects(bucket, prefix="minio/")}
    assert listed["minio/big.bin"] == multipart_etag(parts, at=(bucket, "minio/big.bin")).strip('"')
    assert uploads_of(s3, bucket) == []


def test_minio_low_level_multipart_and_errors(mc, s3, bucket):
    key = "minio/low"
    uid = mc._create_multipart_upload(bucket, key, {"Content-Type": "text/x-low"})
    uid2 = mc._create_multipart_upload(bucket, "minio/other", {})
    p1, p2 = pattern_bytes(PART, 92), b"minio tail"
    e1 = mc._upload_part(bucket, key, p1, None, uid, 1)
    e2 = mc._upload_part(bucket, key, p2, None, uid, 2)
    assert (e1, e2) == (md5hex(p1), md5hex(p2))
    lp = mc._list_parts(bucket, key, uid, max_parts=1)
    assert [p.part_number for p in lp.parts] == [1] and lp.is_truncated
    lp = mc._list_parts(bucket, key, uid, max_parts=1, part_number_marker=str(lp.next_part_number_marker))
    assert [(p.part_number, p.etag, p.size) for p in lp.parts] == [(2, md5hex(p2), len(p2))]
    lu = mc._list_multipart_uploads(bucket, max_uploads=1)
    assert [(u.object_name, u.upload_id) for u in lu.uploads] == [("minio/low", uid)] and lu.is_truncated
    lu = mc._list_multipart_uploads(bucket, max_uploads=1, key_marker=lu.next_key_marker,
                                    upload_id_marker=lu.next_upload_id_marker)
    assert [(u.object_name, u.upload_id) for u in lu.uploads] == [("minio/other", uid2)] and not lu.is_truncated
    s3err("InvalidPartOrder", mc._complete_multipart_upload, bucket, key, uid, [Part(2, e2), Part(1, e1)])
    s3err("InvalidPart", mc._complete_multipart_upload, bucket, key, uid, [Part(1, e2)])
    s3err("NoSuchUpload", mc._complete_multipart_upload, bucket, key, "0" * 32, [Part(1, e1)])
    res = mc._complete_multipart_upload(bucket, key, uid, [Part(1, e1), Part(2, e2)])
    assert f'"{res.etag}"' == multipart_etag([p1, p2], at=(bucket, key))
    assert mc.stat_object(bucket, key).content_type == "text/x-low"
    mc._abort_multipart_upload(bucket, "minio/other", uid2)
    e = s3err("NoSuchUpload", mc._abort_multipart_upload, bucket, "minio/other", uid2)
    assert e.response.status == 404
    assert uploads_of(s3, bucket) == []


def test_minio_compose_object_uses_part_copy(mc, s3, bucket):
    a, b = pattern_bytes(6 * MiB, 93), pattern_bytes(2 * MiB, 94)
    s3.put_object(Bucket=bucket, Key="src/a", Body=a)
    s3.put_object(Bucket=bucket, Key="src/b", Body=b)
    sources = [ComposeSource(bucket, "src/a", offset=MiB, length=PART),  # x-amz-copy-source-range
               ComposeSource(bucket, "src/b")]
    r = mc.compose_object(bucket, "composed", sources)
    parts = [a[MiB:MiB + PART], b]
    assert f'"{r.etag}"' == multipart_etag(parts, at=(bucket, "composed"))
    assert s3.get_object(Bucket=bucket, Key="composed")["Body"].read() == b"".join(parts)
    # a failing source condition fails the composition
    bad = [ComposeSource(bucket, "src/a", match_etag="0" * 32), ComposeSource(bucket, "src/b")]
    s3err("PreconditionFailed", mc.compose_object, bucket, "composed2", bad)
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="composed2")


# --------------------------------------------------------------------------
# rclone, s3cmd
# --------------------------------------------------------------------------


def test_rclone_multipart_upload(worker, s3, bucket, tmp_path):
    assert RCLONE, "rclone not found: run scripts/install-deps.sh"
    env = rclone_env(worker, tmp_path)
    src = tmp_path / "src" / "big.bin"
    src.parent.mkdir()
    data = pattern_bytes(48 * MiB + 12345, 101)
    src.write_bytes(data)
    rc(env, "copyto", str(src), f"alc:{bucket}/rclone/big.bin", "--s3-chunk-size", "5M", "--s3-upload-cutoff", "5M",
       "--s3-upload-concurrency", "4", "-vv")
    parts = [data[i:i + PART] for i in range(0, len(data), PART)]
    h = s3.head_object(Bucket=bucket, Key="rclone/big.bin")
    assert h["ETag"] == multipart_etag(parts, at=(bucket, "rclone/big.bin")) and h["ContentLength"] == len(data)
    if not is_s3_mounted(bucket):  # on an S3 mount the ETag is the remote's (its own part size)
        assert h["ETag"].endswith('-10"')
    # rclone keeps the MD5 of a multipart upload in metadata, and checks it
    out = rc(env, "md5sum", f"alc:{bucket}/rclone/big.bin").stdout.split()
    assert out[0] == md5hex(data)
    rc(env, "check", str(src.parent), f"alc:{bucket}/rclone")
    dst = tmp_path / "back" / "big.bin"
    rc(env, "copyto", f"alc:{bucket}/rclone/big.bin", str(dst))
    assert file_md5(dst) == md5hex(data)
    assert uploads_of(s3, bucket) == []


@pytest.fixture(scope="module")
def s3cmd_cfg(worker, tmp_path_factory):
    assert S3CMD, "s3cmd not found: run scripts/install-deps.sh"
    return write_cfg(tmp_path_factory.mktemp("s3cmd-mp") / "s3cfg", worker)


def test_s3cmd_multipart_put_get(s3cmd_cfg, s3, bucket, tmp_path):
    data = pattern_bytes(12 * MiB + 7, 111)
    src = tmp_path / "s3cmd.bin"
    src.write_bytes(data)
    s3cmd(s3cmd_cfg, "put", "--multipart-chunk-size-mb=5", str(src), f"s3://{bucket}/s3cmd/big.bin")
    parts = [data[:PART], data[PART:2 * PART], data[2 * PART:]]
    h = s3.head_object(Bucket=bucket, Key="s3cmd/big.bin")
    assert h["ETag"] == multipart_etag(parts, at=(bucket, "s3cmd/big.bin")) and h["ContentLength"] == len(data)
    dst = tmp_path / "back.bin"
    s3cmd(s3cmd_cfg, "get", f"s3://{bucket}/s3cmd/big.bin", str(dst))
    assert dst.read_bytes() == data
    info = s3cmd(s3cmd_cfg, "info", f"s3://{bucket}/s3cmd/big.bin").stdout
    assert md5hex(data) in info, info  # s3cmd stores the real MD5 in its attrs metadata


def test_s3cmd_multipart_list_and_abort(s3cmd_cfg, s3, bucket):
    key = "pending/obj"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=b"pending part")["ETag"]
    out = s3cmd(s3cmd_cfg, "multipart", f"s3://{bucket}").stdout
    assert uid in out and key in out, out
    out = s3cmd(s3cmd_cfg, "listmp", f"s3://{bucket}/{key}", uid).stdout
    assert e1.strip('"') in out and str(len(b"pending part")) in out, out
    s3cmd(s3cmd_cfg, "abortmp", f"s3://{bucket}/{key}", uid)
    assert uploads_of(s3, bucket) == []
    s3cmd_fail(s3cmd_cfg, "NoSuchUpload", "abortmp", f"s3://{bucket}/{key}", uid)
