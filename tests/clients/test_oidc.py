"""OIDC mode: bearer tokens and STS AssumeRoleWithWebIdentity.

An identity provider runs in the test process on a loopback port: it serves a discovery document
and a JWKS (RSA and EC P-256 keys made at test time, with `cryptography`) and counts the fetches;
the tests sign tokens themselves with PyJWT. A worker in `auth.mode = "oidc"` accepts
`Authorization: Bearer <JWT>` when signature (RS256, ES256), issuer, audience and expiry check out,
and exchanges a token for temporary credentials on STS's `AssumeRoleWithWebIdentity` — which boto3
then uses unmodified. The policies apply to the token's user and groups.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import jwt
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from alcove_helpers import REGION, Worker, make_client, parse_error

AUDIENCE = "alcove"
STS_KEY = "sts-key-of-the-oidc-tests"
ROLE = "arn:aws:iam::000000000000:role/alcove"


class IdentityProvider:
    """A discovery document and a JWKS on a loopback port; keys can be added (a rotation)."""

    def __init__(self):
        self.private: dict[str, object] = {}
        self.published: list[dict] = []
        self.jwks_fetches = 0
        self.lock = threading.Lock()
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": idp.issuer, "jwks_uri": f"{idp.issuer}/keys"}
                elif self.path == "/keys":
                    with idp.lock:
                        idp.jwks_fetches += 1
                        body = {"keys": list(idp.published)}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.add_key("rsa-1", "RS256")
        self.add_key("ec-1", "ES256")

    def add_key(self, kid: str, alg: str, publish: bool = True):
        if alg == "RS256":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk.update({"kid": kid, "alg": alg, "use": "sig"})
        self.private[kid] = (key, alg)
        if publish:
            self.publish(kid, jwk)
        return jwk

    def publish(self, kid: str, jwk: dict):
        with self.lock:
            self.published.append(jwk)

    def token(self, user: str, *, kid: str = "rsa-1", groups=None, lifetime: int = 300, issuer=None,
              audience=AUDIENCE, **extra) -> str:
        key, alg = self.private[kid]
        now = int(time.time())
        claims = {"sub": user, "iss": issuer or self.issuer, "aud": audience, "iat": now, "exp": now + lifetime}
        if groups is not None:
            claims["groups"] = groups
        claims.update(extra)
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})

    def fetches(self) -> int:
        with self.lock:
            return self.jwks_fetches

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def config(issuer: str) -> str:
    return f"""
[s3]
access_log = true

[auth]
mode = "oidc"
allow_anonymous = true
sts_key = "{STS_KEY}"

[auth.oidc]
issuer = "{issuer}"
audience = "{AUDIENCE}"
groups_claim = "groups"
refetch_interval = "1s"

[[auth.credentials]]
access_key = "admin"
secret_key = "admin-secret"

[[auth.policies]]
users = ["admin"]
actions = ["read", "write", "list"]
resources = ["*"]

[[auth.policies]]
users = ["alice"]
actions = ["read", "write", "list"]
resources = ["alice-data"]

[[auth.policies]]
groups = ["readers"]
actions = ["read", "list"]
resources = ["shared"]

[[auth.policies]]
groups = ["writers"]
actions = ["write"]
resources = ["shared/uploads/*"]

[[auth.policies]]
users = ["*"]
actions = ["read"]
resources = ["public"]
"""


@pytest.fixture(scope="module")
def idp():
    p = IdentityProvider()
    yield p
    p.close()


def start_oidc_worker(alcove_bin, base, idp: IdentityProvider, sts_key: str = STS_KEY) -> Worker:
    w = Worker(alcove_bin, base, config=config(idp.issuer).replace(STS_KEY, sts_key))
    return w.start()


@pytest.fixture(scope="module")
def oidc_worker(alcove_bin, tmp_path_factory, idp):
    w = start_oidc_worker(alcove_bin, tmp_path_factory.mktemp("oidc"), idp)
    admin = w.client("admin", "admin-secret")
    for b in ("alice-data", "shared", "public", "secret"):
        admin.create_bucket(Bucket=b)
    admin.put_object(Bucket="shared", Key="readme", Body=b"shared readme")
    admin.put_object(Bucket="public", Key="readme", Body=b"public readme")
    admin.put_object(Bucket="secret", Key="plans", Body=b"plans")
    yield w
    w.stop()


def bearer(w: Worker, method: str, target: str, token: str, body: bytes = b""):
    return w.raw(method, target, {"Authorization": f"Bearer {token}"}, body)


def error_of(r) -> tuple[int, str, str]:
    e = parse_error(r.body)
    return r.status, e.get("Code"), e.get("Message", "")


def sts_client(w: Worker):
    return boto3.session.Session().client(
        "sts", endpoint_url=w.endpoint, region_name=REGION, aws_access_key_id="unused",
        aws_secret_access_key="unused", config=Config(retries={"total_max_attempts": 1}))


def assume(w: Worker, token: str, **kw) -> dict:
    return sts_client(w).assume_role_with_web_identity(
        RoleArn=ROLE, RoleSessionName="tests", WebIdentityToken=token, **kw)


def session_client(w: Worker, creds: dict, signature_version: str = "s3v4"):
    """An S3 client built the ordinary way: boto3 with aws_session_token."""
    return boto3.session.Session().client(
        "s3", endpoint_url=w.endpoint, region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
                      signature_version=signature_version))


def code_of(excinfo) -> tuple[int, str]:
    r = excinfo.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


# --------------------------------------------------------------------------
# bearer tokens
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_bearer_tokens_of_both_algorithms(oidc_worker, idp, kid):
    token = idp.token("alice", kid=kid)
    key = f"/alice-data/{kid}.txt"
    r = bearer(oidc_worker, "PUT", key, token, b"by bearer")
    assert r.status == 200, r
    r = bearer(oidc_worker, "GET", key, token)
    assert (r.status, r.body) == (200, b"by bearer")
    assert error_of(bearer(oidc_worker, "PUT", "/secret/plans", token, b"no"))[:2] == (403, "AccessDenied")
    assert error_of(bearer(oidc_worker, "GET", "/shared/readme", token))[:2] == (403, "AccessDenied")
    line = [l for l in oidc_worker.log_text().splitlines() if l.startswith("access ") and f'key="{kid}.txt"' in l]
    assert line and all('user="alice"' in l for l in line), line


def test_groups_of_a_token_meet_the_group_policies(oidc_worker, idp):
    token = idp.token("carol", groups=["readers", "writers"], kid="ec-1")
    r = bearer(oidc_worker, "GET", "/shared/readme", token)
    assert (r.status, r.body) == (200, b"shared readme")
    assert bearer(oidc_worker, "PUT", "/shared/uploads/carol.txt", token, b"c").status == 200
    assert error_of(bearer(oidc_worker, "PUT", "/shared/readme", token, b"x"))[:2] == (403, "AccessDenied")
    only_readers = idp.token("dave", groups=["readers"])
    assert error_of(bearer(oidc_worker, "PUT", "/shared/uploads/d", only_readers, b"x"))[:2] == (403, "AccessDenied")


def test_bad_tokens_are_refused(oidc_worker, idp):
    good = idp.token("alice")
    header, payload, signature = good.split(".")
    forged_payload = base64.urlsafe_b64encode(json.dumps({
        "sub": "admin", "iss": idp.issuer, "aud": AUDIENCE, "exp": int(time.time()) + 300,
    }).encode()).rstrip(b"=").decode()
    unsigned_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    cases = {
        "expired": (idp.token("alice", lifetime=-3600), "ExpiredToken", "expired"),
        "wrong issuer": (idp.token("alice", issuer="http://127.0.0.1:1"), "InvalidToken", "not issued by"),
        "wrong audience": (idp.token("alice", audience="someone-else"), "InvalidToken", "audience"),
        "tampered payload": (f"{header}.{forged_payload}.{signature}", "InvalidToken", "signature"),
        "tampered signature": (f"{header}.{payload}.{flipped}", "InvalidToken", "signature"),
        "alg none": (f"{unsigned_header}.{payload}.", "InvalidToken", "JWT"),
        "not yet valid": (idp.token("alice", nbf=int(time.time()) + 3600), "InvalidToken", "nbf"),
        "garbage": ("not-a-jwt", "InvalidToken", "JWT"),
    }
    for what, (token, code, words) in cases.items():
        status, got, message = error_of(bearer(oidc_worker, "PUT", "/alice-data/refused", token, b"x"))
        assert (status, got) == (400, code), f"{what}: {status} {got} {message}"
        assert words in message, f"{what}: {message}"
    assert error_of(bearer(oidc_worker, "GET", "/secret/plans", f"{header}.{forged_payload}.{signature}"))[1] \
        == "InvalidToken"
    r = oidc_worker.client("admin", "admin-secret").list_objects_v2(Bucket="alice-data", Prefix="refused")
    assert r.get("KeyCount") == 0, "no refused token wrote anything"


def test_unknown_keys_refetch_the_jwks_at_a_limited_rate(oidc_worker, idp):
    # Keys the provider signs with but has not published yet.
    rotated = idp.add_key("rsa-2", "RS256", publish=False)
    token = idp.token("alice", kid="rsa-2")
    time.sleep(1.1)  # past the refetch interval of earlier fetches
    before = idp.fetches()
    assert error_of(bearer(oidc_worker, "GET", "/alice-data/rsa-1.txt", token))[:2] == (400, "InvalidToken")
    assert idp.fetches() == before + 1, "an unknown kid fetches the JWKS again"
    for _ in range(5):
        status, code, message = error_of(bearer(oidc_worker, "GET", "/alice-data/rsa-1.txt", token))
        assert (status, code) == (400, "InvalidToken") and "rsa-2" in message
    assert idp.fetches() == before + 1, "but not more often than refetch_interval"
    idp.publish("rsa-2", rotated)
    time.sleep(1.1)
    r = bearer(oidc_worker, "PUT", "/alice-data/rotated", token, b"new key")
    assert r.status == 200, r
    assert idp.fetches() == before + 2
    # The keys published before still work.
    assert bearer(oidc_worker, "GET", "/alice-data/rotated", idp.token("alice", kid="ec-1")).body == b"new key"


# --------------------------------------------------------------------------
# STS
# --------------------------------------------------------------------------


def test_sts_credentials_work_with_unmodified_boto3(oidc_worker, idp):
    before = time.time()
    resp = assume(oidc_worker, idp.token("alice"), DurationSeconds=900)
    creds = resp["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert resp["SubjectFromWebIdentityToken"] == "alice"
    assert resp["Audience"] == AUDIENCE and resp["Provider"] == idp.issuer
    assert resp["AssumedRoleUser"]["Arn"].endswith(":assumed-role/alcove/tests")
    assert 890 <= creds["Expiration"].timestamp() - before <= 910
    s3 = session_client(oidc_worker, creds)
    s3.put_object(Bucket="alice-data", Key="via-sts", Body=b"temporary")
    assert s3.get_object(Bucket="alice-data", Key="via-sts")["Body"].read() == b"temporary"
    s3.upload_fileobj(io.BytesIO(b"m" * (9 << 20)), "alice-data", "via-sts-multipart")
    assert s3.head_object(Bucket="alice-data", Key="via-sts-multipart")["ContentLength"] == 9 << 20
    assert "via-sts" in [o["Key"] for o in s3.list_objects_v2(Bucket="alice-data")["Contents"]]
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == ["alice-data", "public"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="secret", Key="plans", Body=b"no")
    assert code_of(e) == (403, "AccessDenied")
    # Presigned URLs carry the session token as a parameter: SigV4, and SigV2 (boto3's default).
    for version, param in (("s3v4", "X-Amz-Security-Token"), ("s3", "x-amz-security-token")):
        url = session_client(oidc_worker, creds, version).generate_presigned_url(
            "get_object", Params={"Bucket": "alice-data", "Key": "via-sts"}, ExpiresIn=60)
        assert param in url
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=10) as r:
            assert r.read() == b"temporary"
    line = [l for l in oidc_worker.log_text().splitlines() if l.startswith("access ") and 'key="via-sts"' in l]
    assert line and all('user="alice"' in l for l in line), line


def test_sts_credentials_carry_the_groups(oidc_worker, idp):
    creds = assume(oidc_worker, idp.token("erin", groups=["readers", "writers"]))["Credentials"]
    s3 = session_client(oidc_worker, creds)
    assert s3.get_object(Bucket="shared", Key="readme")["Body"].read() == b"shared readme"
    s3.put_object(Bucket="shared", Key="uploads/erin", Body=b"e")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="shared", Key="readme", Body=b"x")
    assert code_of(e) == (403, "AccessDenied")


def test_sts_refuses_bad_web_identity_tokens(oidc_worker, idp):
    cases = {
        "expired": (idp.token("alice", lifetime=-3600), "ExpiredTokenException"),
        "wrong audience": (idp.token("alice", audience="other"), "InvalidIdentityToken"),
        "wrong issuer": (idp.token("alice", issuer="http://127.0.0.1:1"), "InvalidIdentityToken"),
        "garbage": ("aaaa.bbbb.cccc", "InvalidIdentityToken"),
    }
    for what, (token, code) in cases.items():
        with pytest.raises(ClientError) as e:
            assume(oidc_worker, token)
        assert code_of(e) == (400, code), what
    # What boto3 would refuse to send: raw form posts.
    def post(fields):
        body = urllib.parse.urlencode(fields).encode()
        return oidc_worker.raw("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, body)
    base = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": ROLE,
            "RoleSessionName": "raw", "WebIdentityToken": idp.token("alice")}
    for fields, status, code in [
        ({**base, "DurationSeconds": "100"}, 400, "ValidationError"),
        ({k: v for k, v in base.items() if k != "WebIdentityToken"}, 400, "MissingParameter"),
        ({**base, "Action": "AssumeRole"}, 400, "InvalidAction"),
    ]:
        r = post(fields)
        assert r.status == status, r
        assert f"<Code>{code}</Code>".encode() in r.body and b"<ErrorResponse" in r.body, r
    r = post(base)
    assert r.status == 200 and b"<AccessKeyId>ASIA" in r.body, r
    # Also as query parameters, as STS accepts them.
    r = oidc_worker.raw("POST", "/?" + urllib.parse.urlencode(base), {}, b"")
    assert r.status == 200 and b"<SessionToken>" in r.body, r


def forged(sts_key: str, user: str, expires: int) -> dict:
    """Temporary credentials made the way a worker makes them, for a given expiry (the test knows
    the STS key; this is what lets it make credentials that have already expired)."""
    key = hmac.new(sts_key.encode(), b"alcove sts key v1", hashlib.sha256).digest()
    ak = "ASIA" + uuid.uuid4().hex[:16].upper()
    secret = base64.b64encode(hmac.new(key, f"secret\n{ak}".encode(), hashlib.sha256).digest()[:30]).decode()
    payload = base64.urlsafe_b64encode(json.dumps({"k": ak, "u": user, "g": [], "e": expires}).encode()) \
        .rstrip(b"=").decode()
    mac = base64.urlsafe_b64encode(hmac.new(key, f"token\n{payload}".encode(), hashlib.sha256).digest()) \
        .rstrip(b"=").decode()
    return {"AccessKeyId": ak, "SecretAccessKey": secret, "SessionToken": f"alcove1.{payload}.{mac}"}


def test_temporary_credentials_are_checked(oidc_worker, idp):
    creds = assume(oidc_worker, idp.token("alice"))["Credentials"]

    def refused(c, status, code):
        with pytest.raises(ClientError) as e:
            c.get_object(Bucket="alice-data", Key="rsa-1.txt")
        assert code_of(e) == (status, code)

    token = creds["SessionToken"]
    payload, mac = token.removeprefix("alcove1.").split(".")
    raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw["u"] = "admin"
    other_user = base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()
    refused(session_client(oidc_worker, {**creds, "SessionToken": f"alcove1.{other_user}.{mac}"}), 400,
            "InvalidToken")
    refused(session_client(oidc_worker, {**creds, "SessionToken": token[:-3] + "xyz"}), 400, "InvalidToken")
    other = assume(oidc_worker, idp.token("alice"))["Credentials"]
    refused(session_client(oidc_worker, {**creds, "SessionToken": other["SessionToken"]}), 400, "InvalidToken")
    refused(make_client(oidc_worker.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"]), 403,
            "InvalidAccessKeyId")
    refused(session_client(oidc_worker, {**creds, "SecretAccessKey": "wrong" + creds["SecretAccessKey"][5:]}), 403,
            "SignatureDoesNotMatch")
    # Made with the right key, but expired a minute ago.
    refused(session_client(oidc_worker, forged(STS_KEY, "alice", int(time.time()) - 60)), 400, "ExpiredToken")
    fresh = forged(STS_KEY, "alice", int(time.time()) + 60)
    assert session_client(oidc_worker, fresh).get_object(Bucket="alice-data", Key="rsa-1.txt")["Body"].read()
    refused(session_client(oidc_worker, forged("some-other-sts-key", "alice", int(time.time()) + 60)), 403,
            "SignatureDoesNotMatch")


def test_credentials_verify_on_any_worker_with_the_same_key(alcove_bin, tmp_path_factory, oidc_worker, idp):
    creds = assume(oidc_worker, idp.token("alice"))["Credentials"]
    same = start_oidc_worker(alcove_bin, tmp_path_factory.mktemp("oidc-same"), idp)
    other = start_oidc_worker(alcove_bin, tmp_path_factory.mktemp("oidc-other"), idp, sts_key="another-sts-key-123")
    try:
        for w in (same, other):
            w.client("admin", "admin-secret").create_bucket(Bucket="alice-data")
        session_client(same, creds).put_object(Bucket="alice-data", Key="k", Body=b"on another worker")
        assert session_client(same, creds).get_object(Bucket="alice-data", Key="k")["Body"].read() \
            == b"on another worker"
        with pytest.raises(ClientError) as e:
            session_client(other, creds).get_object(Bucket="alice-data", Key="k")
        assert code_of(e) == (403, "SignatureDoesNotMatch")
    finally:
        same.stop()
        other.stop()


def test_an_unreachable_provider_is_said_so(alcove_bin, tmp_path_factory):
    gone = IdentityProvider()
    token = gone.token("alice")
    gone.close()  # its port now refuses connections
    w = start_oidc_worker(alcove_bin, tmp_path_factory.mktemp("oidc-gone"), gone)
    try:
        status, code, message = error_of(bearer(w, "GET", "/alice-data/x", token))
        assert (status, code) == (503, "ServiceUnavailable") and "retry" in message, message
        with pytest.raises(ClientError) as e:
            assume(w, token)
        assert code_of(e) == (400, "IDPCommunicationError")
    finally:
        w.stop()


def test_static_credentials_and_anonymous_beside_oidc(oidc_worker):
    admin = oidc_worker.client("admin", "admin-secret")
    assert admin.get_object(Bucket="secret", Key="plans")["Body"].read() == b"plans"
    r = oidc_worker.raw("GET", "/public/readme", {}, b"")
    assert (r.status, r.body) == (200, b"public readme")
    assert error_of(oidc_worker.raw("PUT", "/public/readme", {}, b"x"))[:2] == (403, "AccessDenied")
    assert error_of(oidc_worker.raw("GET", "/secret/plans", {}, b""))[:2] == (403, "AccessDenied")
    with pytest.raises(ClientError) as e:
        oidc_worker.client("nobody", "x").list_buckets()
    assert code_of(e) == (403, "InvalidAccessKeyId")


def test_oidc_through_a_cluster(alcove_bin, tmp_path_factory, idp):
    """Three workers whose STS key is their cluster secret (no auth.sts_key): credentials from one
    verify on all, and requests for keys another worker owns are forwarded to it and checked there
    (signature, session token, policies), as are bearer tokens."""
    from alcove_helpers import ACCESS_KEY, SECRET_KEY
    from test_cluster import SHARED, Cluster, owned_keys

    extra = f"""
[auth]
mode = "oidc"
[auth.oidc]
issuer = "{idp.issuer}"
audience = "{AUDIENCE}"
[[auth.credentials]]
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"
[[auth.policies]]
users = ["{ACCESS_KEY}"]
actions = ["read", "write", "list"]
resources = ["*"]
[[auth.policies]]
users = ["alice"]
actions = ["read", "list"]
resources = ["{SHARED}"]
[[auth.policies]]
users = ["alice"]
actions = ["write"]
resources = ["{SHARED}/alice/*"]
"""
    remote = Worker(alcove_bin, tmp_path_factory.mktemp("oidc-cluster-remote")).start()
    cluster = None
    try:
        remote.client().create_bucket(Bucket="oidc-cluster")
        cluster = Cluster(alcove_bin, tmp_path_factory.mktemp("oidc-cluster"), remote, "oidc-cluster", extra=extra)
        cluster.start()
        creds = assume(cluster.workers[0], idp.token("alice"))["Credentials"]
        token = idp.token("alice", kid="ec-1")
        for owner, keys in owned_keys(cluster, "alice/", per_owner=1).items():
            key = keys[0]
            for j, w in enumerate(cluster.workers):
                s3 = session_client(w, creds)
                s3.put_object(Bucket=SHARED, Key=key, Body=f"from {j}".encode())
                assert s3.get_object(Bucket=SHARED, Key=key)["Body"].read() == f"from {j}".encode()
                r = bearer(w, "GET", f"/{SHARED}/{key}", token)
                assert (r.status, r.body) == (200, f"from {j}".encode()), r
                with pytest.raises(ClientError) as e:
                    s3.put_object(Bucket=SHARED, Key=key.replace("alice/", "other/"), Body=b"no")
                assert code_of(e) == (403, "AccessDenied")
            assert cluster.served("PUT", key) == [owner], "every write went to the key's owner"
    finally:
        if cluster is not None:
            cluster.stop()
        remote.stop()
