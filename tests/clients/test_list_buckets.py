"""ListBuckets paging through boto3 and raw HTTP: max-buckets, the opaque continuation token,
prefix and bucket-region, boto3's list_buckets paginator, and the errors for bad values.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

from alcove_helpers import xml_find_all
from test_boto3 import expect_error


def family(make_bucket, n: int) -> tuple[str, list[str]]:
    """`n` new buckets sharing a prefix no other test uses, and that prefix."""
    tag = f"lb{uuid.uuid4().hex[:10]}"
    return tag, sorted(make_bucket(tag) for _ in range(n))


def test_paginator_pages_through_every_bucket(s3, make_bucket):
    tag, made = family(make_bucket, 7)
    pages = list(s3.get_paginator("list_buckets").paginate(Prefix=tag, PaginationConfig={"PageSize": 3}))
    assert [len(p["Buckets"]) for p in pages] == [3, 3, 1]
    assert [b["Name"] for p in pages for b in p["Buckets"]] == made
    assert all(p["Prefix"] == tag for p in pages)
    assert [("ContinuationToken" in p) for p in pages] == [True, True, False]
    token = pages[0]["ContinuationToken"]
    assert token != made[2] and made[2] not in token, "the token is opaque"

    # without a prefix: every bucket once, in name order, our seven among them
    everything = [b["Name"] for p in s3.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": 4})
                  for b in p["Buckets"]]
    assert everything == sorted(set(everything))
    assert [n for n in everything if n.startswith(tag)] == made


def test_without_paging_parameters_all_buckets_come_at_once(s3, make_bucket):
    tag, made = family(make_bucket, 3)
    r = s3.list_buckets()
    names = [b["Name"] for b in r["Buckets"]]
    assert set(made) <= set(names) and names == sorted(names)
    assert "ContinuationToken" not in r and "Prefix" not in r
    assert all("CreationDate" in b for b in r["Buckets"])


def test_prefix_and_region_filters(s3, make_bucket):
    tag, made = family(make_bucket, 2)
    r = s3.list_buckets(Prefix=tag, MaxBuckets=10)
    assert [b["Name"] for b in r["Buckets"]] == made and "ContinuationToken" not in r
    assert s3.list_buckets(Prefix=tag + "-none")["Buckets"] == []
    assert [b["Name"] for b in s3.list_buckets(Prefix=tag, BucketRegion="us-east-1")["Buckets"]] == made
    assert s3.list_buckets(Prefix=tag, BucketRegion="eu-west-1")["Buckets"] == [], "every bucket is in us-east-1"


def test_bad_max_buckets_and_tokens_are_invalid_argument(s3, worker, make_bucket):
    tag, made = family(make_bucket, 2)
    for query in ["max-buckets=0", "max-buckets=10001", "max-buckets=-1", "max-buckets=two",
                  "continuation-token=bm90IGEgYnVja2V0IG5hbWUh", "continuation-token=%25%25%25"]:
        r = worker.raw("GET", f"/?{query}")
        assert (r.status, r.code) == (400, "InvalidArgument"), (query, r)
    expect_error("InvalidArgument", 400, s3.list_buckets, ContinuationToken="Zm9vLw")
    r = worker.raw("GET", f"/?max-buckets=1&prefix={tag}")
    assert r.status == 200, r
    root = ET.fromstring(r.body)
    assert [n.text for n in xml_find_all(root, "Buckets/Bucket/Name")] == made[:1]
    token = xml_find_all(root, "ContinuationToken")[0].text
    r = worker.raw("GET", f"/?max-buckets=10000&prefix={tag}&continuation-token={token}")
    assert [n.text for n in xml_find_all(ET.fromstring(r.body), "Buckets/Bucket/Name")] == made[1:]
