"""Remote stores for the remote-mount tests, all on 127.0.0.1 and stopped by pid.

- MotoServer: moto's S3 emulation (`python -m moto.server`, from the test venv); any credentials.
- S3sFs: the `s3s-fs` Rust server over a directory (binary from env S3S_FS_BIN); fixed credentials.
- a second Alcove worker: alcove_helpers.Worker, nothing extra needed.
- Azurite: the Azure Storage emulator's blob service (Node; its directory from env AZURITE_DIR),
  the well-known development account; for azblob:// mounts.
- GcsEmulator: gcp-storage-emulator (the GCS JSON API, from the test venv), no authentication;
  for gs:// mounts.
- TcpProxy: a thread-based TCP forwarder in front of a remote that can be switched to delay
  every chunk of bytes by N seconds (a slow remote) or to refuse connections (a dead one).

Every remote's `client()` answers the few boto3 S3 calls the tests make of a remote (put, get,
head, list, delete, create/delete bucket) with boto3's shapes and ClientError, so one test body
checks what landed on any of them; for Azure and GCS these are small plain-HTTP clients here.

Plus `mount_remote` / `unmount`, which run `alcove mount add/remove` with the remote's options.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from email.utils import formatdate
from pathlib import Path

from botocore.exceptions import ClientError

from alcove_helpers import REGION, Worker, free_ports, make_client

READY_TIMEOUT = 30.0


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_ok(port: int, path: str = "/") -> bool:
    """True when something answers HTTP on the port (any status)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", path)
        c.getresponse().read()
        c.close()
        return True
    except Exception:
        return False



def terminate(proc: subprocess.Popen | None) -> None:
    """Stops a process this suite started: SIGTERM, up to 10 s, then SIGKILL; reaps it."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)

class _Process:
    """A server process started on a free loopback port, its output in a log file."""

    name = "server"
    access_key = "testing"
    secret_key = "testing"

    def __init__(self, base: Path):
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.log = self.base / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def env(self) -> dict:
        return dict(os.environ)

    def start(self, keep_port: bool = False):
        last = ""
        for attempt in range(3):
            if not (keep_port and self.port):
                (self.port,) = free_ports(1)
            with open(self.log, "ab") as logf:
                cmd = self.command()
                logf.write(f"\n==== start: {' '.join(cmd)}\n".encode())
                logf.flush()
                self.proc = subprocess.Popen(cmd, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                                             env=self.env(), start_new_session=True)
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last = f"exited with status {self.proc.returncode}"
                    break
                if _port_open(self.port) and _http_ok(self.port):
                    return self
                time.sleep(0.1)
            else:
                last = f"not ready after {READY_TIMEOUT}s"
                self.stop()
            self.proc = None
            if keep_port:
                time.sleep(0.5)  # the old listener may still be closing
        raise RuntimeError(f"{self.name} did not start: {last}\n--- log tail ---\n{self.log_tail()}")

    def stop(self):
        terminate(self.proc)
        self.proc = None

    def kill(self):
        """SIGKILL: the remote dies without closing anything gracefully."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.kill()
            p.wait(10)
        self.proc = None

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except FileNotFoundError:
            return ""

    def client(self, **cfg):
        return make_client(self.endpoint, self.access_key, self.secret_key, **cfg)

    def create_bucket(self, name: str):
        self.client().create_bucket(Bucket=name)


class MotoServer(_Process):
    """moto's standalone server (S3 and everything else) from this Python's environment."""

    name = "moto"
    access_key = "testing"
    secret_key = "testing"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def env(self) -> dict:
        env = dict(os.environ)
        env.update({"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                    "AWS_DEFAULT_REGION": REGION, "MOTO_ALLOW_NONEXISTENT_REGION": "true"})
        return env


def s3s_fs_binary() -> str | None:
    b = os.environ.get("S3S_FS_BIN", "")
    return b if b and os.path.isfile(b) and os.access(b, os.X_OK) else None


class S3sFs(_Process):
    """`s3s-fs`: an S3 server over a directory (top-level folders are buckets)."""

    name = "s3s-fs"
    access_key = "S3SFSACCESSKEY"
    secret_key = "s3s-fs-secret-key"

    def __init__(self, base: Path, binary: str):
        super().__init__(base)
        self.binary = binary
        self.root = self.base / "data"
        self.root.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [self.binary, "--host", "127.0.0.1", "--port", str(self.port),
                "--access-key", self.access_key, "--secret-key", self.secret_key, str(self.root)]

    def env(self) -> dict:
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        return env


class AlcoveRemote:
    """A second Alcove worker used as the remote S3 server (simple auth: any credentials)."""

    name = "alcove"
    access_key = "AKIDREMOTEALCOVE"
    secret_key = "remote-alcove-secret"

    def __init__(self, binary: str, base: Path, config: str | None = None):
        self.worker = Worker(binary, base, config=config)

    @property
    def port(self) -> int:
        return self.worker.s3_port

    @property
    def endpoint(self) -> str:
        return self.worker.endpoint

    @property
    def root(self) -> Path:
        return self.worker.root

    @property
    def pid(self):
        return self.worker.pid

    @property
    def log(self):
        return self.worker.log

    def start(self, keep_port: bool = False):
        self.worker.start(keep_ports=keep_port)
        return self

    def stop(self):
        self.worker.stop()

    def kill(self):
        p = self.worker.proc
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(10)
        self.worker.proc = None

    def log_tail(self, n: int = 3000) -> str:
        return self.worker.log_tail(n)

    def client(self, **cfg):
        return make_client(self.endpoint, self.access_key, self.secret_key, **cfg)

    def create_bucket(self, name: str):
        self.client().create_bucket(Bucket=name)


# --------------------------------------------------------------------------
# Azure Blob (Azurite) and GCS (gcp-storage-emulator)
# --------------------------------------------------------------------------


class _HttpStore:
    """A minimal HTTP client for one store on 127.0.0.1 that fails like boto3 (ClientError)."""

    def __init__(self, port: int):
        self.port = port

    def _send(self, method: str, target: str, headers: dict | None = None, body: bytes = b"",
              op: str = "Request", ok=(200, 201, 202, 204, 206)):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request(method, target, body=body or None, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()
        if r.status not in ok:
            code = self._error_code(r.status, hdrs, data)
            raise ClientError({"Error": {"Code": code, "Message": data[:300].decode("utf-8", "replace")},
                               "ResponseMetadata": {"HTTPStatusCode": r.status, "HTTPHeaders": hdrs}}, op)
        return r.status, hdrs, data

    def _error_code(self, status: int, headers: dict, body: bytes) -> str:
        return str(status)

    def delete_objects(self, Bucket: str, Delete: dict):
        for o in Delete.get("Objects", []):
            self.delete_object(Bucket=Bucket, Key=o["Key"])
        return {}


class AzureBlobClient(_HttpStore):
    """Azure Blob REST calls signed with the account's shared key (path-style emulator URLs)."""

    VERSION = "2021-12-02"

    def __init__(self, port: int, account: str, key: str):
        super().__init__(port)
        self.account, self.key = account, key

    def _error_code(self, status, headers, body):
        return headers.get("x-ms-error-code") or str(status)

    def _call(self, method: str, container: str, blob: str | None = None, query: dict | None = None,
              headers: dict | None = None, body: bytes = b"", op: str = "Request", ok=(200, 201, 202, 206)):
        path = f"/{self.account}/{container}" + (f"/{urllib.parse.quote(blob, safe='/')}" if blob is not None else "")
        query = query or {}
        h = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": self.VERSION}
        h.update(headers or {})
        if method in ("PUT", "POST") or body:
            h["Content-Length"] = str(len(body))
        lower = {k.lower(): v for k, v in h.items()}
        length = lower.get("content-length", "")
        standard = [method, lower.get("content-encoding", ""), lower.get("content-language", ""),
                    "" if length == "0" else length, lower.get("content-md5", ""),
                    lower.get("content-type", ""), "", lower.get("if-modified-since", ""),
                    lower.get("if-match", ""), lower.get("if-none-match", ""),
                    lower.get("if-unmodified-since", ""), lower.get("range", "")]
        canon_headers = "".join(f"{k}:{lower[k].strip()}\n" for k in sorted(lower) if k.startswith("x-ms-"))
        canon_resource = f"/{self.account}{path}" + "".join(
            f"\n{k.lower()}:{query[k]}" for k in sorted(query, key=str.lower))
        to_sign = "\n".join(standard) + "\n" + canon_headers + canon_resource
        sig = base64.b64encode(hmac.new(base64.b64decode(self.key), to_sign.encode(), hashlib.sha256).digest()).decode()
        h["Authorization"] = f"SharedKey {self.account}:{sig}"
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        return self._send(method, target, h, body, op, ok)

    def create_bucket(self, Bucket: str):
        self._call("PUT", Bucket, query={"restype": "container"}, op="CreateBucket")

    def delete_bucket(self, Bucket: str):
        self._call("DELETE", Bucket, query={"restype": "container"}, op="DeleteBucket")

    def put_object(self, Bucket: str, Key: str, Body: bytes = b"", Metadata: dict | None = None,
                   ContentType: str | None = None):
        h = {"x-ms-blob-type": "BlockBlob"}
        if ContentType:
            h["x-ms-blob-content-type"] = ContentType
        for k, v in (Metadata or {}).items():
            h[f"x-ms-meta-{k}"] = v
        _, hdrs, _ = self._call("PUT", Bucket, Key, headers=h, body=Body, op="PutObject")
        return {"ETag": hdrs.get("etag")}

    @staticmethod
    def _describe(hdrs: dict) -> dict:
        out = {"ETag": hdrs.get("etag"), "ContentLength": int(hdrs.get("content-length", "0")),
               "Metadata": {k[len("x-ms-meta-"):]: v for k, v in hdrs.items() if k.startswith("x-ms-meta-")}}
        for field, header in (("ContentType", "content-type"), ("ContentDisposition", "content-disposition"),
                              ("ContentEncoding", "content-encoding"), ("CacheControl", "cache-control")):
            if header in hdrs:
                out[field] = hdrs[header]
        return out

    def head_object(self, Bucket: str, Key: str):
        _, hdrs, _ = self._call("HEAD", Bucket, Key, op="HeadObject")
        return self._describe(hdrs)

    def get_object(self, Bucket: str, Key: str):
        _, hdrs, data = self._call("GET", Bucket, Key, op="GetObject")
        return {**self._describe(hdrs), "Body": io.BytesIO(data)}

    def delete_object(self, Bucket: str, Key: str):
        self._call("DELETE", Bucket, Key, op="DeleteObject", ok=(202, 404))
        return {}

    def list_objects_v2(self, Bucket: str, Prefix: str | None = None, ContinuationToken: str | None = None,
                        **_):
        q = {"restype": "container", "comp": "list"}
        if Prefix:
            q["prefix"] = Prefix
        if ContinuationToken:
            q["marker"] = ContinuationToken
        _, _, data = self._call("GET", Bucket, query=q, op="ListObjectsV2")
        root = ET.fromstring(data)
        contents = [{"Key": b.findtext("Name"), "Size": int(b.findtext("Properties/Content-Length") or 0)}
                    for b in root.iter("Blob")]
        marker = root.findtext("NextMarker") or ""
        out = {"Contents": contents, "IsTruncated": bool(marker)}
        if marker:
            out["NextContinuationToken"] = marker
        return out


class Azurite(_Process):
    """Azurite's blob service (path-style URLs: http://127.0.0.1:port/<account>/<container>)."""

    name = "azurite"
    scheme = "azblob"
    # Azurite's built-in development account and its published key (not a secret).
    access_key = "devstoreaccount1"
    secret_key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

    def __init__(self, base: Path, directory: str):
        super().__init__(base)
        self.directory = directory
        self.root = self.base / "data"
        self.root.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        main = os.path.join(self.directory, "node_modules", "azurite", "dist", "src", "blob", "main.js")
        return ["node", main, "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                "--location", str(self.root), "--silent", "--disableTelemetry"]

    def env(self) -> dict:
        env = dict(os.environ)
        env.pop("AZURITE_ACCOUNTS", None)  # only the development account
        return env

    def account_endpoint(self, endpoint: str | None = None) -> str:
        return f"{endpoint or self.endpoint}/{self.access_key}"

    def client(self, **_):
        return AzureBlobClient(self.port, self.access_key, self.secret_key)

    def create_bucket(self, name: str):
        self.client().create_bucket(Bucket=name)


def azurite_dir() -> str | None:
    d = os.environ.get("AZURITE_DIR", "")
    main = os.path.join(d, "node_modules", "azurite", "dist", "src", "blob", "main.js")
    return d if d and os.path.isfile(main) else None


class GcsClient(_HttpStore):
    """GCS JSON API calls without authentication (the emulator checks none)."""

    def _error_code(self, status, headers, body):
        return {404: "NoSuchKey", 403: "AccessDenied", 409: "Conflict", 412: "PreconditionFailed"}.get(
            status, str(status))

    @staticmethod
    def _o(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    def create_bucket(self, Bucket: str):
        self._send("POST", "/storage/v1/b?project=alcove-test", {"Content-Type": "application/json"},
                   json.dumps({"name": Bucket}).encode(), "CreateBucket")

    def delete_bucket(self, Bucket: str):
        self._send("DELETE", f"/storage/v1/b/{Bucket}", op="DeleteBucket")

    def put_object(self, Bucket: str, Key: str, Body: bytes = b"", Metadata: dict | None = None,
                   ContentType: str | None = None):
        resource = {"name": Key, "metadata": Metadata or {}}
        if ContentType:
            resource["contentType"] = ContentType
        boundary = "alcove-" + uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
                f"{json.dumps(resource)}\r\n--{boundary}\r\n"
                f"Content-Type: {ContentType or 'application/octet-stream'}\r\n\r\n").encode() \
            + Body + f"\r\n--{boundary}--\r\n".encode()
        _, _, data = self._send("POST", f"/upload/storage/v1/b/{Bucket}/o?uploadType=multipart",
                                {"Content-Type": f"multipart/related; boundary={boundary}"}, body, "PutObject")
        return {"ETag": f'"{json.loads(data)["etag"]}"'}

    def head_object(self, Bucket: str, Key: str):
        _, _, data = self._send("GET", f"/storage/v1/b/{Bucket}/o/{self._o(Key)}", op="HeadObject")
        r = json.loads(data)
        out = {"ETag": f'"{r.get("etag")}"', "ContentLength": int(r.get("size") or 0),
               "Metadata": dict(r.get("metadata") or {})}
        for field, name in (("ContentType", "contentType"), ("ContentDisposition", "contentDisposition"),
                            ("ContentEncoding", "contentEncoding"), ("CacheControl", "cacheControl")):
            if r.get(name):
                out[field] = r[name]
        return out

    def get_object(self, Bucket: str, Key: str):
        out = self.head_object(Bucket, Key)
        _, _, data = self._send("GET", f"/storage/v1/b/{Bucket}/o/{self._o(Key)}?alt=media", op="GetObject")
        return {**out, "Body": io.BytesIO(data)}

    def delete_object(self, Bucket: str, Key: str):
        self._send("DELETE", f"/storage/v1/b/{Bucket}/o/{self._o(Key)}", op="DeleteObject", ok=(200, 204, 404))
        return {}

    def list_objects_v2(self, Bucket: str, Prefix: str | None = None, ContinuationToken: str | None = None,
                        **_):
        q = {}
        if Prefix:
            q["prefix"] = Prefix
        if ContinuationToken:
            q["pageToken"] = ContinuationToken
        target = f"/storage/v1/b/{Bucket}/o" + ("?" + urllib.parse.urlencode(q) if q else "")
        _, _, data = self._send("GET", target, op="ListObjectsV2")
        r = json.loads(data)
        out = {"Contents": [{"Key": o["name"], "Size": int(o.get("size") or 0)} for o in r.get("items") or []],
               "IsTruncated": bool(r.get("nextPageToken"))}
        if r.get("nextPageToken"):
            out["NextContinuationToken"] = r["nextPageToken"]
        return out


class GcsEmulator(_Process):
    """gcp-storage-emulator from this Python's environment, its data in a directory."""

    name = "gcs"
    scheme = "gs"

    def __init__(self, base: Path):
        super().__init__(base)
        self.root = self.base / "data"
        self.root.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gcp_storage_emulator", "-d", str(self.root), "start",
                "--host", "127.0.0.1", "--port", str(self.port)]

    def client(self, **_):
        return GcsClient(self.port)

    def create_bucket(self, name: str):
        self.client().create_bucket(Bucket=name)


# --------------------------------------------------------------------------
# mounting
# --------------------------------------------------------------------------


def mount_options(remote, access_key: str | None = None, secret_key: str | None = None,
                  endpoint: str | None = None, **extra) -> list[str]:
    """`--option` arguments that mount a bucket of `remote` (its credentials unless given)."""
    scheme = getattr(remote, "scheme", "s3")
    access_key = access_key if access_key is not None else remote.access_key
    secret_key = secret_key if secret_key is not None else remote.secret_key
    if scheme == "azblob":
        opts = {"endpoint": remote.account_endpoint(endpoint), "account_name": access_key,
                "account_key": secret_key}
    elif scheme == "gs":
        # the emulator checks no credentials: sign nothing, look for none on this machine
        opts = {"endpoint": endpoint or remote.endpoint, "allow_anonymous": "true"}
    else:
        opts = {"endpoint": endpoint or remote.endpoint, "region": REGION, "access_key_id": access_key,
                "secret_access_key": secret_key}
    opts.update({k: str(v) for k, v in extra.items()})
    out = []
    for k, v in opts.items():
        out += ["--option", f"{k}={v}"]
    return out


def mount_remote(worker: Worker, name: str, remote, remote_bucket: str | None = None, prefix: str = "",
                 check: bool = True, **kw):
    """`alcove mount add --path /name --ufs-uri <scheme>://remote_bucket[/prefix] --option ...`."""
    scheme = getattr(remote, "scheme", "s3")
    uri = f"{scheme}://{remote_bucket or name}" + (f"/{prefix.strip('/')}" if prefix else "")
    return worker.alcove("mount", "add", "--admin", worker.admin, "--path", f"/{name}", "--ufs-uri", uri,
                         *mount_options(remote, **kw), check=check)


def unmount(worker: Worker, name: str, check: bool = False):
    return worker.alcove("mount", "remove", "--admin", worker.admin, "--path", f"/{name}", check=check)


# --------------------------------------------------------------------------
# TCP proxy
# --------------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:target_port, one thread per direction and connection.

    mode "pass": plain forwarding; "delay": every chunk (in both directions) waits `delay`
    seconds before it is forwarded; "refuse": new connections are accepted and closed at once
    (and set_mode("refuse") also closes the open ones)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.mode = "pass"
        self.delay = 0.0
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._stop = threading.Event()
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(64)
        self._lsock.settimeout(0.2)
        self.port = self._lsock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name=f"tcpproxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str, delay: float = 0.0):
        assert mode in ("pass", "delay", "refuse"), mode
        self.mode, self.delay = mode, delay
        if mode == "refuse":
            self.close_connections()

    def close_connections(self):
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for s in conns:
            _close(s)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        _close(self._lsock)
        self.close_connections()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                client, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.mode == "refuse":
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _close(client)
                continue
            for s in (client, upstream):
                s.settimeout(None)
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket):
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if self.mode == "delay":
                    time.sleep(self.delay)
                if self.mode == "refuse":
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with self._lock:
                    self._conns.discard(s)
                _close(s)


def _close(s: socket.socket):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
