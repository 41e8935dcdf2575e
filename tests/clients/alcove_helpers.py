"""Shared helpers for the Alcove Python client tests.

Everything here talks to 127.0.0.1 only: a worker process started from
ALCOVE_BIN, a raw HTTP/1.1 client for requests that normal clients refuse to
send (path escapes, broken checksums, dropped connections), a small SigV4
signer for hand-built signed requests, and XML helpers.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import http.client
import os
import tempfile
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

ACCESS_KEY = "AKIDALCOVETEST"
SECRET_KEY = "alcove-test-secret"
REGION = "us-east-1"
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


# --------------------------------------------------------------------------
# worker process
# --------------------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    """n distinct free ports on 127.0.0.1 (listeners held until all chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Worker:
    """One `alcove serve` process on free loopback ports (with `https=True` an HTTPS port of its own
    too, `--https-addr`; the config must then name a certificate in its `[tls]` section)."""

    def __init__(self, binary: str, base: Path, config: str | None = None, root: Path | None = None,
                 https: bool = False):
        self.binary = binary
        self.https = https
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.root = Path(root) if root else self.base / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = self.base / "alcove.toml"
            self.config_path.write_text(config)
        self.log = self.base / "alcove.log"
        self.proc: subprocess.Popen | None = None
        self.s3_port = self.admin_port = self.peer_port = self.https_port = 0

    # -- addresses
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def https_endpoint(self) -> str:
        assert self.https_port, "a worker started with https=True"
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.s3_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # -- lifecycle
    def start(self, keep_ports: bool = False) -> "Worker":
        last_err = None
        for attempt in range(3):
            if attempt > 0 or not (keep_ports and self.s3_port):
                ports = free_ports(4)
                self.s3_port, self.admin_port, self.peer_port = ports[:3]
                self.https_port = ports[3] if self.https else 0
            cmd = [
                self.binary, "serve",
                "--root", str(self.root),
                "--s3-addr", f"127.0.0.1:{self.s3_port}",
                "--admin-addr", f"127.0.0.1:{self.admin_port}",
                "--peer-addr", f"127.0.0.1:{self.peer_port}",
            ]
            if self.https:
                cmd += ["--https-addr", f"127.0.0.1:{self.https_port}"]
            if self.config_path is not None:
                cmd += ["--config", str(self.config_path)]
            logf = open(self.log, "ab")
            logf.write(f"\n==== start: {' '.join(cmd)}\n".encode())
            logf.flush()
            env = dict(os.environ)
            env.setdefault("RUST_BACKTRACE", "1")
            # file:// mounts of the tests' temp folders (pytest's tmp_path) besides the root.
            env.setdefault("ALCOVE_UFS_LOCAL_ROOTS", f"{self.root}:{tempfile.gettempdir()}")
            self.proc = subprocess.Popen(
                cmd, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, env=env,
            )
            logf.close()
            try:
                self._wait_ready()
                return self
            except _EarlyExit as e:
                last_err = e
                self.proc = None
                continue  # most likely a port race: pick new ports
        raise RuntimeError(f"alcove worker did not start: {last_err}\n--- log tail ---\n{self.log_tail()}")

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        url = f"{self.admin}/readyz"
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise _EarlyExit(f"exited with status {rc}")
            try:
                with _no_proxy_opener().open(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"alcove worker not ready after {READY_TIMEOUT}s\n--- log tail ---\n{self.log_tail()}")

    def stop(self):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start(keep_ports=True)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 4000) -> str:
        return self.log_text()[-n:]

    # -- clients
    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **cfg):
        return make_client(self.endpoint, access_key, secret_key, **cfg)

    def raw(self, method: str, target, headers=None, body: bytes = b"", **kw) -> "RawResponse":
        return raw_http(self.s3_port, method, target, headers or {}, body, **kw)

    def signed(self, method: str, target: str, headers=None, body: bytes = b"", payload_hash: str | None = None,
               access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, now=None, **kw) -> "RawResponse":
        h = sign_v4(method, self.host, target, headers or {}, body if payload_hash is None else None,
                    access_key, secret_key, payload_hash=payload_hash, now=now)
        return raw_http(self.s3_port, method, target, h, body, **kw)

    def alcove(self, *args, check=True, timeout=60) -> subprocess.CompletedProcess:
        """Runs the alcove CLI (e.g. `mount list --admin URL`)."""
        r = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"alcove {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r


class patched_env:
    """Sets (or, with None, removes) variables of os.environ for the block; Worker.start passes
    os.environ on to the worker."""

    def __init__(self, values: dict[str, str | None]):
        self.values, self.saved = values, {}

    def __enter__(self):
        for name, value in self.values.items():
            self.saved[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _EarlyExit(Exception):
    pass


# Where a bucket's objects live as plain files: the worker's root folder of that name, or (in the
# ALCOVE_CLIENT_UFS=s3 mode of conftest.py) the folder of the remote Alcove worker that holds the
# mounted bucket. conftest.py registers the mounted ones here.
BUCKET_DIRS: dict[str, Path] = {}


def bucket_dir(worker: "Worker", bucket: str) -> Path:
    """The folder holding `bucket`'s objects as files (see BUCKET_DIRS)."""
    return BUCKET_DIRS.get(bucket, worker.root / bucket)


# In the S3 mode of conftest.py: mounted bucket -> (boto3 client of the remote, remote bucket).
BUCKET_REMOTES: dict[str, tuple] = {}


def is_s3_mounted(bucket: str) -> bool:
    return bucket in BUCKET_REMOTES


def fs_key_rules(bucket: str) -> bool:
    """True when `bucket` is a folder of the worker's root, where the file system's rules refuse
    keys an S3 bucket accepts (an object where a folder is or the reverse: InvalidRequest; a key
    component over 255 bytes: KeyTooLongError). False for a mounted S3 bucket."""
    return bucket not in BUCKET_DIRS


def _no_proxy_opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def make_client(endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **cfg):
    conf = dict(
        region_name=REGION,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        # one retry, standard mode: covers a dropped keep-alive connection
        # (4xx answers are never retried, so error codes stay exact)
        retries={"total_max_attempts": 2, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    conf.update(cfg)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(**conf),
    )


# --------------------------------------------------------------------------
# raw HTTP
# --------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict  # lower-case name -> value (last wins)
    body: bytes
    header_list: list = field(default_factory=list)

    def error(self) -> dict:
        return parse_error(self.body)

    @property
    def code(self) -> str | None:
        return self.error().get("Code")

    def __repr__(self):
        return f"RawResponse({self.status}, {self.headers!r}, {self.body[:600]!r})"


def raw_http(port: int, method: str, target, headers, body: bytes = b"", *, timeout: float = 30,
             content_length: bool = True, chunks=None) -> RawResponse:
    """Sends one HTTP/1.1 request byte-for-byte (target may hold any bytes)."""
    if isinstance(target, str):
        target = target.encode("utf-8", "surrogateescape")
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    names = {k.lower() for k, _ in items}
    if "host" not in names:
        items.insert(0, ("Host", f"127.0.0.1:{port}"))
    if content_length and body is not None and "content-length" not in names \
            and "transfer-encoding" not in names and (body or method in ("PUT", "POST")):
        items.append(("Content-Length", str(len(body))))
    if "connection" not in names:
        items.append(("Connection", "close"))
    head = method.encode() + b" " + target + b" HTTP/1.1\r\n"
    for k, v in items:
        v = v if isinstance(v, bytes) else str(v).encode("utf-8")
        head += k.encode() + b": " + v + b"\r\n"
    head += b"\r\n"
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head + (body or b""))
        resp = http.client.HTTPResponse(s, method=method)
        resp.begin()
        data = resp.read()
        hl = resp.getheaders()
        return RawResponse(resp.status, {k.lower(): v for k, v in hl}, data, hl)
    finally:
        s.close()


def parse_error(body: bytes) -> dict:
    if not body:
        return {}
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return {}
    out = {"_tag": strip_ns(root.tag)}
    for child in root:
        out[strip_ns(child.tag)] = child.text or ""
    return out


def strip_ns(tag: str) -> str:
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def xml_find_all(root, path: str):
    """findall that ignores the S3 namespace: path like 'Contents/Key'."""
    parts = path.split("/")
    nodes = [root]
    for p in parts:
        nxt = []
        for n in nodes:
            nxt.extend(c for c in n if strip_ns(c.tag) == p)
        nodes = nxt
    return nodes


def xml_text(root, path: str):
    n = xml_find_all(root, path)
    return n[0].text if n else None


# --------------------------------------------------------------------------
# SigV4
# --------------------------------------------------------------------------

UNRESERVED = "-_.~"


def uri_encode(s: str, keep_slash: bool = True) -> str:
    return urllib.parse.quote(s, safe=UNRESERVED + ("/" if keep_slash else ""))


def key_path(bucket: str, key: str) -> str:
    """Path-style target for an object key, encoded the way SigV4 canonicalises it."""
    return f"/{bucket}/" + uri_encode(key)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str = REGION, service: str = "s3") -> bytes:
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def sha256hex(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def canonical_query(query: str) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    enc = sorted((uri_encode(k, False), uri_encode(v, False)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in enc)


def sign_v4(method: str, host: str, target: str, headers: dict, body: bytes | None, access_key: str,
            secret_key: str, payload_hash: str | None = None, now: _dt.datetime | None = None,
            region: str = REGION) -> dict:
    """Returns headers (incl. Authorization) for a SigV4 header-signed request.

    target must already be percent-encoded (it is used as the canonical URI
    verbatim, as S3 does not normalise paths)."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    if payload_hash is None:
        payload_hash = sha256hex(body or b"")
    path, _, query = target.partition("?")
    h = {k.lower(): str(v).strip() for k, v in headers.items()}
    h["host"] = host
    h["x-amz-date"] = amz_date
    h["x-amz-content-sha256"] = payload_hash
    signed = sorted(h)
    creq = "\n".join([
        method, path, canonical_query(query),
        "".join(f"{k}:{h[k]}\n" for k in signed), ";".join(signed), payload_hash,
    ])
    scope = f"{date}/{region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256hex(creq.encode())])
    sig = hmac.new(signing_key(secret_key, date, region), sts.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                          f"SignedHeaders={';'.join(signed)}, Signature={sig}")
    return h


def streaming_signed_body(data: bytes, chunk_size: int, seed_signature: str, amz_date: str, secret_key: str,
                          region: str = REGION, tamper_chunk: int | None = None) -> bytes:
    """aws-chunked body for STREAMING-AWS4-HMAC-SHA256-PAYLOAD (chunk signatures chained)."""
    date = amz_date[:8]
    scope = f"{date}/{region}/s3/aws4_request"
    key = signing_key(secret_key, date, region)
    prev = seed_signature
    out = b""
    chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for i, c in enumerate(chunks):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, sha256hex(b""), sha256hex(c)])
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        prev = sig
        if tamper_chunk == i:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        out += f"{len(c):x};chunk-signature={sig}\r\n".encode() + c + b"\r\n"
    return out


def streaming_len(n: int, chunk_size: int) -> int:
    total = 0
    sizes = [chunk_size] * (n // chunk_size) + ([n % chunk_size] if n % chunk_size else []) + [0]
    for s in sizes:
        total += len(f"{s:x};chunk-signature=".encode()) + 64 + 2 + s + 2
    return total


# --------------------------------------------------------------------------
# checksums
# --------------------------------------------------------------------------


def md5hex(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def etag_of(b: bytes) -> str:
    return f'"{md5hex(b)}"'


def md5b64(b: bytes) -> str:
    return base64.b64encode(hashlib.md5(b).digest()).decode()


def crc32b64(b: bytes) -> str:
    return base64.b64encode((zlib.crc32(b) & 0xFFFFFFFF).to_bytes(4, "big")).decode()


def unsigned_trailer_body(data: bytes, trailer_name: str, trailer_value: str, chunk_size: int = 8192) -> bytes:
    """aws-chunked body for STREAMING-UNSIGNED-PAYLOAD-TRAILER (as boto3 builds it)."""
    out = b""
    for i in range(0, len(data), chunk_size):
        c = data[i:i + chunk_size]
        out += f"{len(c):x}\r\n".encode() + c + b"\r\n"
    out += b"0\r\n" + f"{trailer_name}:{trailer_value}\r\n".encode() + b"\r\n"
    return out


# --------------------------------------------------------------------------
# filesystem helpers
# --------------------------------------------------------------------------


def tree(path: Path, skip=(".alcove.sys", "alcove.log")) -> dict:
    """{relative path: bytes or 'DIR'} of everything under path (skipping the
    worker state dir and log by default)."""
    out = {}
    path = Path(path)
    if not path.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if d not in skip]
        rel = Path(dirpath).relative_to(path)
        for d in dirnames:
            out[str(rel / d)] = "DIR"
        for f in filenames:
            if f in skip:
                continue
            p = Path(dirpath) / f
            try:
                out[str(rel / f)] = p.read_bytes()
            except OSError as e:  # pragma: no cover - diagnostic
                out[str(rel / f)] = f"ERR {e}"
    return out


def wait_until(pred, timeout: float = 5.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def rmtree_quiet(p: Path):
    shutil.rmtree(p, ignore_errors=True)


def now_utc() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


# --------------------------------------------------------------------------
# multipart ETags and flexible checksums (the issue 3 suites)
# --------------------------------------------------------------------------

MiB = 1024 * 1024
CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


def pattern_bytes(n: int, seed: int = 0) -> bytes:
    """n deterministic pseudo-random bytes (fast: no two parts of an upload look alike)."""
    import random
    return random.Random(seed).randbytes(n)


def multipart_etag(parts, at: tuple[str, str] | None = None) -> str:
    """AWS's multipart ETag: md5 of the concatenated binary part MD5s, then -N (quoted).

    With at=(bucket, key) and an S3-mounted bucket: the ETag the remote store shows for that object
    instead (Alcove stages the parts and writes the completed object to the remote, whose ETag
    it reports)."""
    if at is not None and at[0] in BUCKET_REMOTES:
        client, rbucket = BUCKET_REMOTES[at[0]]
        return client.head_object(Bucket=rbucket, Key=at[1])["ETag"]
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def file_digests(path, part_size: int) -> dict:
    """Reading a file once: its md5, its multipart ETag for `part_size` parts, its CRC32 and the
    CRC32 of each part (base64, as S3 shows them)."""
    whole, crc = hashlib.md5(), 0
    digests, part_crcs = [], []
    with open(path, "rb") as f:
        while True:
            chunk = f.read(part_size)
            if not chunk:
                break
            whole.update(chunk)
            crc = zlib.crc32(chunk, crc)
            digests.append(hashlib.md5(chunk).digest())
            part_crcs.append(crc32b64(chunk))
    return {
        "md5": whole.hexdigest(),
        "etag": f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"',
        "crc32": base64.b64encode((crc & 0xFFFFFFFF).to_bytes(4, "big")).decode(),
        "part_crc32s": part_crcs,
    }


def file_md5(path, bufsize: int = 8 * MiB) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while True:
            b = f.read(bufsize)
            if not b:
                return h.hexdigest()
            h.update(b)


def _reflected_table(poly: int, width: int) -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c & ((1 << width) - 1))
    return table


_CRC32C_TABLE = _reflected_table(0x82F63B78, 32)
_CRC64NVME_TABLE = _reflected_table(0x9A6C9329AC4BC9B5, 64)


def crc32c_py(data: bytes) -> int:
    """Pure-Python CRC-32C (Castagnoli), for small inputs: an implementation of our own."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def crc64nvme_py(data: bytes) -> int:
    """Pure-Python CRC-64/NVME, for small inputs."""
    c = 0xFFFFFFFFFFFFFFFF
    for b in data:
        c = _CRC64NVME_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFFFFFFFFFF


def checksum_raw(algorithm: str, data: bytes) -> bytes:
    """The binary checksum S3 would compute: zlib/hashlib, and the AWS CRT (not the server's
    Rust code) for CRC32C and CRC64NVME, which are too slow in pure Python for megabytes."""
    algorithm = algorithm.upper()
    if algorithm == "CRC32":
        return (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
    if algorithm == "SHA1":
        return hashlib.sha1(data).digest()
    if algorithm == "SHA256":
        return hashlib.sha256(data).digest()
    if algorithm == "CRC32C":
        if len(data) <= 65536:
            return crc32c_py(data).to_bytes(4, "big")
        from awscrt import checksums
        return checksums.crc32c(data).to_bytes(4, "big")
    if algorithm == "CRC64NVME":
        if len(data) <= 65536:
            return crc64nvme_py(data).to_bytes(8, "big")
        from awscrt import checksums
        return checksums.crc64nvme(data).to_bytes(8, "big")
    raise ValueError(algorithm)


def checksum_b64(algorithm: str, data: bytes) -> str:
    return base64.b64encode(checksum_raw(algorithm, data)).decode()


def composite_checksum(algorithm: str, part_checksums_b64) -> str:
    """S3's COMPOSITE checksum: the checksum of the concatenated binary part checksums, -N."""
    parts = list(part_checksums_b64)
    raw = b"".join(base64.b64decode(c) for c in parts)
    return f"{checksum_b64(algorithm, raw)}-{len(parts)}"


def wrong_checksum_b64(algorithm: str, data: bytes) -> str:
    """A well-formed checksum of the right length that does not match `data`."""
    raw = bytearray(checksum_raw(algorithm, data))
    raw[0] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode()
