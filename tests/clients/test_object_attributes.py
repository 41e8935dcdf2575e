"""GetObjectAttributes through boto3, raw HTTP and the AWS CLI.

Single-part and multipart objects, with and without checksums: the ETag (unquoted, as AWS
answers this action), the checksum (a COMPOSITE one without its `-N`, a FULL_OBJECT one as is),
ObjectParts (the part count always; the parts with sizes and checksums when the upload had a
checksum algorithm, paged by MaxParts / PartNumberMarker), StorageClass, ObjectSize and
Last-Modified; the selection by `x-amz-object-attributes`; NoSuchKey, NoSuchVersion and unknown
attribute names.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from alcove_helpers import MiB, checksum_b64, composite_checksum, md5hex, multipart_etag, pattern_bytes, xml_text
from test_awscli import aws_json
from test_boto3 import expect_error

PART = 5 * MiB
ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def attributes(s3, bucket, key, names=ALL, **kw) -> dict:
    r = s3.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=names, **kw)
    r.pop("ResponseMetadata")
    return r


def complete_with_checksums(s3, bucket, key, parts, alg, **create_kw) -> dict:
    """A multipart upload of `parts` with checksum algorithm `alg`, completed."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=alg, **create_kw)["UploadId"]
    done = []
    for i, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i, Body=data, ChecksumAlgorithm=alg)
        done.append({"PartNumber": i, "ETag": r["ETag"], f"Checksum{alg}": r[f"Checksum{alg}"]})
    extra = {"ChecksumType": create_kw["ChecksumType"]} if "ChecksumType" in create_kw else {}
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": done}, **extra)


def test_single_part_object_without_checksum(s3, bucket, worker):
    body = b"plain attributes"
    # boto3 sends a CRC32 by default; this client sends none, so none is stored
    worker.client(request_checksum_calculation="when_required").put_object(Bucket=bucket, Key="plain", Body=body)
    head = s3.head_object(Bucket=bucket, Key="plain")
    a = attributes(s3, bucket, "plain")
    assert "Checksum" not in a
    assert a["ETag"] == md5hex(body), "unquoted, unlike HeadObject's"
    assert head["ETag"] == f'"{md5hex(body)}"'
    assert a["ObjectSize"] == len(body) and a["StorageClass"] == "STANDARD"
    assert a["LastModified"] == head["LastModified"]
    assert "ObjectParts" not in a, "a single-part object has no parts"


def test_single_part_object_with_checksums(s3, bucket):
    body = b"checksummed attributes" * 100
    s3.put_object(Bucket=bucket, Key="crc", Body=body, ChecksumCRC32=checksum_b64("CRC32", body))
    assert attributes(s3, bucket, "crc")["Checksum"] == {
        "ChecksumCRC32": checksum_b64("CRC32", body), "ChecksumType": "FULL_OBJECT"}
    s3.put_object(Bucket=bucket, Key="sha", Body=body, ChecksumSHA256=checksum_b64("SHA256", body))
    a = attributes(s3, bucket, "sha", ["Checksum"])
    assert a["Checksum"] == {"ChecksumSHA256": checksum_b64("SHA256", body), "ChecksumType": "FULL_OBJECT"}
    assert set(a) == {"Checksum", "LastModified"}, "only what was asked (and Last-Modified)"


def test_multipart_crc32_composite_parts_and_paging(s3, bucket):
    parts = [pattern_bytes(PART, 1), pattern_bytes(PART, 2), b"the third and last part"]
    sums = [checksum_b64("CRC32", p) for p in parts]
    done = complete_with_checksums(s3, bucket, "mp", parts, "CRC32")
    want = composite_checksum("CRC32", sums)
    assert done["ChecksumCRC32"] == want
    a = attributes(s3, bucket, "mp")
    assert a["ETag"] == multipart_etag(parts, at=(bucket, "mp")).strip('"')
    assert a["ObjectSize"] == sum(map(len, parts))
    assert a["Checksum"] == {"ChecksumCRC32": want.rsplit("-", 1)[0], "ChecksumType": "COMPOSITE"}
    op = a["ObjectParts"]
    assert op["TotalPartsCount"] == 3 and op["MaxParts"] == 1000 and op["IsTruncated"] is False
    assert op["Parts"] == [
        {"PartNumber": n, "Size": len(p), "ChecksumCRC32": c} for n, (p, c) in enumerate(zip(parts, sums), 1)]

    first = attributes(s3, bucket, "mp", ["ObjectParts"], MaxParts=2)["ObjectParts"]
    assert [p["PartNumber"] for p in first["Parts"]] == [1, 2]
    assert first["IsTruncated"] is True and first["MaxParts"] == 2
    rest = attributes(s3, bucket, "mp", ["ObjectParts"], MaxParts=2,
                      PartNumberMarker=first["NextPartNumberMarker"])["ObjectParts"]
    assert int(rest["PartNumberMarker"]) == 2
    assert [p["PartNumber"] for p in rest["Parts"]] == [3] and rest["IsTruncated"] is False
    assert rest["TotalPartsCount"] == 3

    # a copy is one new object: no parts, and no composite checksum
    s3.copy_object(Bucket=bucket, Key="mp-copy", CopySource={"Bucket": bucket, "Key": "mp"})
    copied = attributes(s3, bucket, "mp-copy")
    assert "ObjectParts" not in copied and "Checksum" not in copied


def test_multipart_crc64nvme_full_object(s3, bucket):
    parts = [pattern_bytes(PART, 3), pattern_bytes(777, 4)]
    done = complete_with_checksums(s3, bucket, "full", parts, "CRC64NVME", ChecksumType="FULL_OBJECT")
    whole = checksum_b64("CRC64NVME", b"".join(parts))
    assert done["ChecksumCRC64NVME"] == whole
    a = attributes(s3, bucket, "full")
    assert a["Checksum"] == {"ChecksumCRC64NVME": whole, "ChecksumType": "FULL_OBJECT"}
    assert a["ObjectParts"]["Parts"] == [
        {"PartNumber": n, "Size": len(p), "ChecksumCRC64NVME": checksum_b64("CRC64NVME", p)}
        for n, p in enumerate(parts, 1)]


def test_multipart_without_checksum_gives_only_the_part_count(s3, bucket):
    parts = [pattern_bytes(PART, 5), b"tail"]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="nosum")["UploadId"]
    done = [{"PartNumber": i, "ETag": s3.upload_part(Bucket=bucket, Key="nosum", UploadId=uid, PartNumber=i,
                                                      Body=p)["ETag"]} for i, p in enumerate(parts, 1)]
    s3.complete_multipart_upload(Bucket=bucket, Key="nosum", UploadId=uid, MultipartUpload={"Parts": done})
    a = attributes(s3, bucket, "nosum")
    assert a["ObjectParts"] == {"TotalPartsCount": 2}, "AWS lists parts only of checksummed uploads"
    assert "Checksum" not in a
    assert a["ETag"] == multipart_etag(parts, at=(bucket, "nosum")).strip('"')


def test_errors(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    expect_error("NoSuchKey", 404, s3.get_object_attributes, Bucket=bucket, Key="missing", ObjectAttributes=ALL)
    expect_error("NoSuchVersion", 404, s3.get_object_attributes, Bucket=bucket, Key="k", ObjectAttributes=ALL,
                 VersionId="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")
    assert attributes(s3, bucket, "k", VersionId="null")["ObjectSize"] == 1
    expect_error("InvalidArgument", 400, s3.get_object_attributes, Bucket=bucket, Key="k",
                 ObjectAttributes=["ETag", "Colour"])
    expect_error("NoSuchBucket", 404, s3.get_object_attributes, Bucket="no-such-bucket-here", Key="k",
                 ObjectAttributes=ALL)
    # raw: one header with comma-separated names, and the error document of a missing key
    r = worker.raw("GET", f"/{bucket}/k?attributes", headers={"x-amz-object-attributes": "ObjectSize,ETag"})
    assert r.status == 200, r
    root = ET.fromstring(r.body)
    assert xml_text(root, "ObjectSize") == "1" and xml_text(root, "ETag") == md5hex(b"x")
    r = worker.raw("GET", f"/{bucket}/nope?attributes", headers={"x-amz-object-attributes": "ETag"})
    assert r.status == 404 and r.code == "NoSuchKey"


def test_cli_get_object_attributes(worker, s3, bucket):
    parts = [pattern_bytes(PART, 6), b"cli attributes tail"]
    complete_with_checksums(s3, bucket, "cli", parts, "SHA256")
    out = aws_json(worker, "s3api", "get-object-attributes", "--bucket", bucket, "--key", "cli",
                   "--object-attributes", "ETag", "Checksum", "ObjectParts", "ObjectSize", "StorageClass")
    sums = [checksum_b64("SHA256", p) for p in parts]
    assert out["ETag"] == multipart_etag(parts, at=(bucket, "cli")).strip('"')
    assert out["Checksum"] == {"ChecksumSHA256": composite_checksum("SHA256", sums).rsplit("-", 1)[0],
                               "ChecksumType": "COMPOSITE"}
    assert [p["ChecksumSHA256"] for p in out["ObjectParts"]["Parts"]] == sums
    assert out["ObjectSize"] == sum(map(len, parts)) and out["StorageClass"] == "STANDARD"
    out = aws_json(worker, "s3api", "get-object-attributes", "--bucket", bucket, "--key", "cli",
                   "--object-attributes", "ObjectParts", "--max-parts", "1")
    assert out["ObjectParts"]["IsTruncated"] is True and len(out["ObjectParts"]["Parts"]) == 1


@pytest.mark.parametrize("names", [["ETag"], ["ObjectSize", "StorageClass"]])
def test_selection(s3, bucket, names):
    s3.put_object(Bucket=bucket, Key="sel", Body=b"select")
    got = set(attributes(s3, bucket, "sel", names)) - {"LastModified"}
    assert got == set(names)
