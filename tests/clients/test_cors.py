"""Bucket CORS: Put/Get/DeleteBucketCors through boto3 (round trip, AWS's limits, nothing changed
by a refused configuration), and raw HTTP for what browsers do: OPTIONS preflights allowed and
denied (wildcard origins, methods, requested headers), and the Access-Control-* headers on the
answers to requests that carry Origin.
"""

from __future__ import annotations

import pytest

from alcove_helpers import ACCESS_KEY, SECRET_KEY
from test_boto3 import expect_error

VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
DENIED = ("CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
          "request method / Access-Control-Request-Method or Access-Control-Request-Headerss are not whitelisted "
          "by the resource's CORS spec.")

RULES = [
    {"ID": "app", "AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET", "PUT", "HEAD"],
     "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag", "x-amz-request-id"],
     "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
]


def put_rules(s3, bucket, rules=RULES):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})


def preflight(worker, path, origin=None, method=None, headers=None):
    h = {}
    if origin is not None:
        h["Origin"] = origin
    if method is not None:
        h["Access-Control-Request-Method"] = method
    if headers is not None:
        h["Access-Control-Request-Headers"] = headers
    return worker.raw("OPTIONS", path, headers=h)


def test_put_get_delete_round_trip(s3, bucket):
    expect_error("NoSuchCORSConfiguration", 404, s3.get_bucket_cors, Bucket=bucket)
    put_rules(s3, bucket)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0, "kept by the worker, not as an object"
    replacement = [{"AllowedOrigins": ["https://only.example.org"], "AllowedMethods": ["POST", "DELETE"]}]
    put_rules(s3, bucket, replacement)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == replacement, "a put replaces the whole set"
    s3.delete_bucket_cors(Bucket=bucket)
    expect_error("NoSuchCORSConfiguration", 404, s3.get_bucket_cors, Bucket=bucket)
    s3.delete_bucket_cors(Bucket=bucket)  # nothing to delete is fine
    expect_error("NoSuchBucket", 404, s3.get_bucket_cors, Bucket="no-such-cors-bucket")


@pytest.mark.parametrize("rules,message", [
    ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "PATCH"]}],
     "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"),
    ([{"AllowedOrigins": ["https://*.*.example.com"], "AllowedMethods": ["GET"]}],
     'AllowedOrigin "https://*.*.example.com" can not have more than one wildcard.'),
    ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": ["x-*-*"]}],
     'AllowedHeader "x-*-*" can not have more than one wildcard.'),
    ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "ExposeHeaders": ["x-amz-*"]}],
     'ExposeHeader "x-amz-*" contains wildcard. We currently do not support wildcard for ExposeHeader.'),
    ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101,
     "The number of CORS rules should not exceed allowed limit of 100 rules."),
], ids=["method", "origin-wildcards", "header-wildcards", "expose-wildcard", "101-rules"])
def test_refused_configurations_change_nothing(s3, bucket, rules, message):
    put_rules(s3, bucket)
    r = expect_error("InvalidRequest", 400, s3.put_bucket_cors, Bucket=bucket,
                     CORSConfiguration={"CORSRules": rules})
    assert r["Error"]["Message"] == message
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES


def test_one_hundred_rules_are_fine(s3, bucket):
    rules = [{"ID": f"r{i}", "AllowedOrigins": [f"https://{i}.example.com"], "AllowedMethods": ["GET"]}
             for i in range(100)]
    put_rules(s3, bucket, rules)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == rules


@pytest.mark.parametrize("body", [
    b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod>",
    b"<CORSConfiguration></CORSConfiguration>",
    b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
    b"not xml at all",
], ids=["truncated", "no-rules", "no-origin", "garbage"])
def test_malformed_configurations(s3, bucket, worker, body):
    put_rules(s3, bucket)
    r = worker.raw("PUT", f"/{bucket}?cors", body=body)
    assert (r.status, r.code) == (400, "MalformedXML"), r
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES


def test_preflight_allowed(s3, bucket, worker):
    put_rules(s3, bucket)
    r = preflight(worker, f"/{bucket}/some/key", "https://app.example.com", "PUT", "Content-Type, X-Amz-Date")
    assert r.status == 200 and r.body == b"", r
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-allow-methods"] == "GET, PUT, HEAD"
    assert r.headers["access-control-allow-headers"] == "Content-Type, X-Amz-Date"
    assert r.headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert r.headers["access-control-max-age"] == "600"
    assert r.headers["vary"] == VARY
    assert r.headers.get("x-amz-request-id")
    # an origin only the open rule allows: `*` and no credentials
    r = preflight(worker, f"/{bucket}", "https://elsewhere.org", "GET")
    assert r.status == 200, r
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    assert r.headers["access-control-allow-methods"] == "GET"


@pytest.mark.parametrize("origin,method,headers", [
    ("https://example.com", "PUT", None),            # the wildcard needs a subdomain
    ("https://app.example.com.evil.org", "PUT", None),
    ("https://app.example.com", "DELETE", None),      # method not allowed
    ("https://app.example.com", "PUT", "authorization"),  # header not allowed
    ("https://elsewhere.org", "GET", "x-custom"),      # the open rule allows no headers
], ids=["bare-domain", "suffix-trick", "method", "header", "open-rule-header"])
def test_preflight_denied(s3, bucket, worker, origin, method, headers):
    put_rules(s3, bucket)
    r = preflight(worker, f"/{bucket}/k", origin, method, headers)
    assert (r.status, r.code) == (403, "AccessForbidden"), r
    assert r.error()["Message"] == DENIED
    assert "access-control-allow-origin" not in r.headers


def test_preflight_without_configuration_or_origin(s3, bucket, worker):
    r = preflight(worker, f"/{bucket}/k", "https://app.example.com", "GET")
    assert (r.status, r.code) == (403, "AccessForbidden"), "no configuration"
    put_rules(s3, bucket)
    r = preflight(worker, f"/{bucket}/k", None, "GET")
    assert (r.status, r.code) == (400, "BadRequest"), r
    r = preflight(worker, f"/{bucket}/k", "https://app.example.com", None)
    assert (r.status, r.code) == (400, "BadRequest"), r
    r = preflight(worker, "/no-such-cors-bucket/k", "https://app.example.com", "GET")
    assert (r.status, r.code) == (404, "NoSuchBucket"), r


def test_actual_requests_get_access_control_headers(s3, bucket, worker):
    s3.put_object(Bucket=bucket, Key="k", Body=b"cors body")
    r = worker.raw("GET", f"/{bucket}/k", headers={"Origin": "https://app.example.com"})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers, "no configuration yet"
    put_rules(s3, bucket)
    r = worker.raw("GET", f"/{bucket}/k", headers={"Origin": "https://app.example.com"})
    assert r.status == 200 and r.body == b"cors body"
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert r.headers["vary"] == VARY
    r = worker.raw("HEAD", f"/{bucket}/k", headers={"Origin": "https://cdn.example.com"})
    assert r.headers["access-control-allow-origin"] == "https://cdn.example.com"
    # an error answer carries them too, so the page can read it
    r = worker.raw("GET", f"/{bucket}/missing", headers={"Origin": "https://app.example.com"})
    assert r.status == 404 and r.headers["access-control-allow-origin"] == "https://app.example.com"
    # the open rule: `*`, no credentials
    r = worker.raw("GET", f"/{bucket}/k", headers={"Origin": "https://elsewhere.org"})
    assert r.headers["access-control-allow-origin"] == "*" and "access-control-allow-credentials" not in r.headers
    # no rule allows DELETE: no Access-Control-Allow-Origin, but the answer still varies by Origin
    r = worker.raw("DELETE", f"/{bucket}/k", headers={"Origin": "https://app.example.com"})
    assert r.status == 204 and "access-control-allow-origin" not in r.headers and r.headers["vary"] == VARY
    r = worker.raw("GET", f"/{bucket}/k")
    assert "access-control-allow-origin" not in r.headers and "vary" not in r.headers, "no Origin, no CORS"


def test_sigv4_worker_answers_unsigned_preflights(sigv4_worker):
    s3 = sigv4_worker.client(ACCESS_KEY, SECRET_KEY)
    s3.create_bucket(Bucket="cors-signed")
    put_rules(s3, "cors-signed")
    r = preflight(sigv4_worker, "/cors-signed/k", "https://app.example.com", "GET")
    assert r.status == 200 and r.headers["access-control-allow-origin"] == "https://app.example.com", r
    r = sigv4_worker.raw("GET", "/cors-signed/k", headers={"Origin": "https://app.example.com"})
    assert (r.status, r.code) == (403, "AccessDenied"), "an unsigned GET is still refused"
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
