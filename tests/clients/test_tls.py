"""HTTPS on the S3 port: boto3 (`verify=<CA file>`), the AWS CLI (`--ca-bundle`) and minio-py
(`secure=True` with a urllib3 PoolManager trusting the CA), in simple and sigv4 auth mode, and
`s3.https_only` refusing plain HTTP.

The CA and the worker's certificate (for 127.0.0.1 and localhost) are made at test time with the
`cryptography` package; nothing is read from or trusted on the machine. Over HTTPS boto3 and the
CLI send uploads aws-chunked with `x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER` and a
CRC32 trailer: the tests check that they did, and that the worker stored the bytes (not the
framing) and the checksum.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import urllib3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError, SSLError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from minio import Minio

from alcove_helpers import ACCESS_KEY, REGION, SECRET_KEY, MiB, Worker, crc32b64, make_client, pattern_bytes
from conftest import SIGV4_CONFIG, _ALL_WORKERS

AWS = str(Path(sys.executable).with_name("aws"))


@dataclass
class Pki:
    """A CA's certificate file and a server certificate (with its key) it signed."""
    ca: Path
    cert: Path
    key: Path

    def tls_section(self) -> str:
        return f'[tls]\ncert = "{self.cert}"\nkey = "{self.key}"\n'


def make_pki(folder: Path, ca_name: str = "alcove test CA") -> Pki:
    """A CA (P-256) and a certificate for 127.0.0.1 and localhost signed by it, as PEM files."""
    import ipaddress

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name_x509 = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name_x509).issuer_name(ca_name_x509)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alcove test server")]))
            .issuer_name(ca_name_x509)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki = Pki(ca=folder / "ca.pem", cert=folder / "cert.pem", key=folder / "key.pem")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def start_tls_worker(alcove_bin, base: Path, config: str) -> Worker:
    w = Worker(alcove_bin, base, config=config, https=True)
    _ALL_WORKERS.append(w)
    return w.start()


@pytest.fixture(scope="module", params=["simple", "sigv4"])
def tls_worker(request, alcove_bin, tmp_path_factory, pki):
    config = pki.tls_section() + (SIGV4_CONFIG if request.param == "sigv4" else "")
    w = start_tls_worker(alcove_bin, tmp_path_factory.mktemp(f"tls-{request.param}"), config)
    yield w
    w.stop()


def https_client(w: Worker, ca: Path, **cfg):
    """boto3 for the worker's HTTPS port, trusting the CA file `ca` (boto3's own defaults)."""
    conf = dict(region_name=REGION, signature_version="s3v4", s3={"addressing_style": "path"},
                retries={"total_max_attempts": 1})
    conf.update(cfg)
    return boto3.session.Session().client(
        "s3", endpoint_url=w.https_endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name=REGION, verify=str(ca), config=Config(**conf))


def record_headers(client, operation: str) -> list[dict]:
    """The headers of every `operation` request `client` sends from now on."""
    sent: list[dict] = []

    def keep(request, **_):
        sent.append({k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()})

    client.meta.events.register(f"before-send.s3.{operation}", keep)
    return sent


def assert_unsigned_trailer(headers: dict):
    assert headers.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", headers
    assert "aws-chunked" in headers.get("content-encoding", ""), headers
    assert headers.get("x-amz-trailer") == "x-amz-checksum-crc32", headers


def new_bucket(client) -> str:
    name = f"tls-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    return name


def test_boto3_over_https_sends_unsigned_trailers(tls_worker, pki):
    s3 = https_client(tls_worker, pki.ca)
    bucket = new_bucket(s3)
    puts = record_headers(s3, "PutObject")
    data = pattern_bytes(300_000, seed=1)
    s3.put_object(Bucket=bucket, Key="dir/one.bin", Body=data)
    assert_unsigned_trailer(puts[-1])
    assert (tls_worker.root / bucket / "dir" / "one.bin").read_bytes() == data, "bytes, not aws-chunked framing"
    head = s3.head_object(Bucket=bucket, Key="dir/one.bin", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32b64(data)
    assert head["ContentLength"] == len(data)
    assert s3.get_object(Bucket=bucket, Key="dir/one.bin")["Body"].read() == data

    parts = record_headers(s3, "UploadPart")
    big = pattern_bytes(11 * MiB, seed=2)
    s3.upload_fileobj(io.BytesIO(big), bucket, "big.bin",
                      Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
    assert len(parts) == 3
    for headers in parts:
        assert_unsigned_trailer(headers)
    assert (tls_worker.root / bucket / "big.bin").read_bytes() == big
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ETag"].endswith('-3"')
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == ["big.bin", "dir/one.bin"]

    # The plain-HTTP port serves the same worker.
    plain = make_client(tls_worker.endpoint)
    assert plain.get_object(Bucket=bucket, Key="dir/one.bin")["Body"].read() == data


def test_boto3_refuses_a_certificate_of_another_ca(tls_worker, pki, tmp_path):
    stranger = make_pki(tmp_path / "other", ca_name="another test CA")
    with pytest.raises(SSLError):
        https_client(tls_worker, stranger.ca).list_buckets()
    assert "Buckets" in https_client(tls_worker, pki.ca).list_buckets()


def aws(w: Worker, endpoint: str, *args, ca: Path | None = None, check=True) -> subprocess.CompletedProcess:
    cmd = [AWS, "--endpoint-url", endpoint, "--region", REGION, "--output", "json"]
    if ca is not None:
        cmd += ["--ca-bundle", str(ca)]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120, env=dict(os.environ))
    if check and r.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def test_aws_cli_with_ca_bundle(tls_worker, pki, tmp_path):
    s3 = https_client(tls_worker, pki.ca)
    bucket = new_bucket(s3)
    src = tmp_path / "src.bin"
    data = pattern_bytes(2 * MiB + 17, seed=3)
    src.write_bytes(data)
    aws(tls_worker, tls_worker.https_endpoint, "s3", "cp", str(src), f"s3://{bucket}/cli/src.bin", ca=pki.ca)
    assert (tls_worker.root / bucket / "cli" / "src.bin").read_bytes() == data
    head = s3.head_object(Bucket=bucket, Key="cli/src.bin", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32b64(data), "the CLI's trailer checksum was stored"
    listing = aws(tls_worker, tls_worker.https_endpoint, "s3", "ls", f"s3://{bucket}/cli/", ca=pki.ca).stdout
    assert "src.bin" in listing
    back = tmp_path / "back.bin"
    aws(tls_worker, tls_worker.https_endpoint, "s3", "cp", f"s3://{bucket}/cli/src.bin", str(back), ca=pki.ca)
    assert back.read_bytes() == data
    # Without the CA bundle the CLI does not trust the worker.
    r = aws(tls_worker, tls_worker.https_endpoint, "s3", "ls", f"s3://{bucket}/", check=False)
    assert r.returncode != 0 and "SSL" in r.stderr, r.stderr


def test_minio_secure(tls_worker, pki):
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(pki.ca))
    mc = Minio(f"127.0.0.1:{tls_worker.https_port}", access_key=ACCESS_KEY, secret_key=SECRET_KEY,
               secure=True, region=REGION, http_client=http)
    bucket = f"tls-minio-{uuid.uuid4().hex[:8]}"
    mc.make_bucket(bucket)
    data = pattern_bytes(1 * MiB + 5, seed=4)
    mc.put_object(bucket, "m/obj.bin", io.BytesIO(data), len(data))
    assert (tls_worker.root / bucket / "m" / "obj.bin").read_bytes() == data
    r = mc.get_object(bucket, "m/obj.bin")
    try:
        assert r.read() == data
    finally:
        r.close()
        r.release_conn()
    assert mc.stat_object(bucket, "m/obj.bin").size == len(data)
    assert [o.object_name for o in mc.list_objects(bucket, prefix="m/")] == ["m/obj.bin"]
    mc.remove_object(bucket, "m/obj.bin")
    mc.remove_bucket(bucket)
    assert not mc.bucket_exists(bucket)


def test_https_only_refuses_plain_http(alcove_bin, tmp_path_factory, pki):
    config = "[s3]\nhttps_only = true\n" + pki.tls_section() + SIGV4_CONFIG
    w = start_tls_worker(alcove_bin, tmp_path_factory.mktemp("https-only"), config)
    try:
        secure = https_client(w, pki.ca)
        bucket = new_bucket(secure)
        secure.put_object(Bucket=bucket, Key="k", Body=b"kept")
        plain = make_client(w.endpoint)
        for call in (lambda: plain.get_object(Bucket=bucket, Key="k"),
                     lambda: plain.put_object(Bucket=bucket, Key="new", Body=b"x"),
                     lambda: plain.delete_object(Bucket=bucket, Key="k"),
                     lambda: plain.list_buckets()):
            with pytest.raises(ClientError) as e:
                call()
            err = e.value.response
            assert err["Error"]["Code"] == "AccessDenied", err
            assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
            assert f"https://127.0.0.1:{w.https_port}" in err["Error"]["Message"], err
        assert not (w.root / bucket / "new").exists()
        assert secure.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"
        r = aws(w, w.endpoint, "s3", "ls", f"s3://{bucket}/", check=False)
        assert r.returncode != 0 and "AccessDenied" in r.stderr, r.stderr
        assert "k" in aws(w, w.https_endpoint, "s3", "ls", f"s3://{bucket}/", ca=pki.ca).stdout
    finally:
        w.stop()
