"""Alcove clusters driven by real clients, directly and through the load balancers of deploy/.

Three clusters, each started once for the module: three workers (static membership) over a shared
remote (a further Alcove worker; every member mounts its bucket as `shared`, read through the
page cache, metadata never re-checked, so an owner that missed a change would serve stale data):

- `proxy_cluster`: proxy mode (a worker forwards a request for another worker's key to its owner);
- `redirect_cluster`: redirect mode (a worker answers 307 with the owner's S3 endpoint);
- `sigv4_cluster`: proxy mode with `auth.mode = "sigv4"`, to prove a load balancer passes the
  signed Host header unchanged.

Every worker logs every request it serves, which tells which worker served a key: the owner.

The load balancers are HAProxy and nginx run from deploy/haproxy.cfg and deploy/nginx.conf with
their @TOKEN@ placeholders replaced (Pattern A: the redirect frontend; Pattern B: the proxy one),
on loopback ports, each in a temporary directory of its own, stopped by pid.

No test here uses the `bucket` fixtures, so with ALCOVE_CLIENT_UFS=s3 (the second and third
passes of scripts/test.sh) conftest.py skips them all: they run once, in the first pass.
"""

from __future__ import annotations

import filecmp
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from minio import Minio
from minio.error import S3Error

from alcove_helpers import (ACCESS_KEY, REGION, SECRET_KEY, Worker, free_ports, make_client, raw_http, sign_v4,
                            wait_until)
from conftest import _ALL_WORKERS, SIGV4_CONFIG
from remotes import terminate
from test_awscli import aws

SHARED = "shared"
CLUSTER_SECRET = "test-cluster-secret"
SIZE = 3
REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MiB = 1024 * 1024


# --------------------------------------------------------------------------
# clusters
# --------------------------------------------------------------------------


class Cluster:
    """SIZE workers in one cluster, all mounting `remote_bucket` of `remote` as bucket `shared`."""

    def __init__(self, alcove_bin: str, base: Path, remote: Worker, remote_bucket: str, s3: str = "",
                 extra: str = ""):
        self.remote, self.remote_bucket = remote, remote_bucket
        ports = free_ports(3 * SIZE)
        members = "".join(
            f'[[cluster.workers]]\nid = "w{i + 1}"\ns3 = "http://127.0.0.1:{ports[3 * i]}"\n'
            f'peer = "127.0.0.1:{ports[3 * i + 2]}"\n'
            for i in range(SIZE))
        self.workers: list[Worker] = []
        for i in range(SIZE):
            config = (
                f"{extra}\n[s3]\naccess_log = true\n{s3}\n[cache]\nmetadata_sync_interval = -1\n"
                f'[cluster]\nid = "w{i + 1}"\nsecret = "{CLUSTER_SECRET}"\nmembership = "static"\n'
                f'failure_timeout = "2s"\n{members}\n'
                f'[[mounts]]\npath = "/{SHARED}"\nufs = "s3://{remote_bucket}"\n[mounts.options]\n'
                f'endpoint = "{remote.endpoint}"\naccess_key_id = "ak"\nsecret_access_key = "sk"\n'
            )
            w = Worker(alcove_bin, base / f"w{i + 1}", config=config)
            w.s3_port, w.admin_port, w.peer_port = ports[3 * i:3 * i + 3]
            self.workers.append(w)

    def start(self) -> "Cluster":
        for w in self.workers:
            _ALL_WORKERS.append(w)
            wanted = (w.s3_port, w.admin_port, w.peer_port)
            w.start(keep_ports=True)
            assert (w.s3_port, w.admin_port, w.peer_port) == wanted, \
                f"worker {w.base.name} moved to other ports than the cluster config names:\n{w.log_tail()}"
        for w in self.workers:
            live = wait_until(lambda: cluster_status(w).get("live") == SIZE, timeout=15, interval=0.1)
            assert live, f"worker {w.base.name} does not see {SIZE} live members: {cluster_status(w)}\n{w.log_tail()}"
        return self

    def stop(self):
        for w in self.workers:
            w.stop()

    def client(self, i: int, **kw):
        return self.workers[i].client(**kw)

    def served(self, method: str, key: str) -> list[int]:
        """Indexes of the workers whose access log shows `method` on `key` of `shared`."""
        needle = f'bucket="{SHARED}" key="{key}"'
        out = []
        for i, w in enumerate(self.workers):
            for line in w.log_text().splitlines():
                if line.startswith("access ") and f" method={method} " in line + " " and needle in line:
                    out.append(i)
                    break
        return out

    def served_once(self, method: str, key: str, timeout: float = 3.0) -> int:
        """The one worker that served `method` on `key` (the access line is written when the
        response body is done, so it is waited for)."""
        got = wait_until(lambda: self.served(method, key), timeout=timeout)
        assert len(got) == 1, f"{method} {key} served by workers {got}, expected exactly one"
        return got[0]

    def index_of_endpoint(self, url: str) -> int:
        for i, w in enumerate(self.workers):
            if url.startswith(w.endpoint + "/"):
                return i
        raise AssertionError(f"{url} is at none of the workers {[w.endpoint for w in self.workers]}")


def cluster_status(w: Worker) -> dict:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{w.admin}/status", timeout=2) as r:
            return json.loads(r.read()).get("cluster") or {}
    except Exception:
        return {}


def owned_keys(cluster: Cluster, prefix: str, per_owner: int = 1) -> dict[int, list[str]]:
    """`per_owner` fresh key names owned by each worker of a proxy-mode cluster: found by a HEAD
    of candidate names through worker 0 (a 404, forwarded to and logged by the owner only)."""
    c = cluster.client(0)
    found: dict[int, list[str]] = {i: [] for i in range(SIZE)}
    for n in range(200):
        if all(len(v) >= per_owner for v in found.values()):
            return found
        key = f"{prefix}k{n}"
        with pytest.raises(ClientError) as ei:
            c.head_object(Bucket=SHARED, Key=key)
        assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404, ei.value.response
        owner = cluster.served_once("HEAD", key)
        if len(found[owner]) < per_owner:
            found[owner].append(key)
    raise AssertionError(f"no {per_owner} keys per worker among 200 names: {found}")


def redirect_owner(cluster: Cluster, key: str, landing: int = 0) -> int:
    """The owner of `key` in a redirect-mode cluster: where `landing` sends a GET (itself when it
    answers without a 307)."""
    r = raw_get(cluster.workers[landing].s3_port, f"/{SHARED}/{urllib.parse.quote(key)}")
    if r.status == 307:
        return cluster.index_of_endpoint(r.getheader("Location"))
    return landing


def redirected_keys(cluster: Cluster, prefix: str, landing: int = 0) -> dict[int, str]:
    """A fresh key owned by each worker of a redirect-mode cluster."""
    found: dict[int, str] = {}
    for n in range(200):
        key = f"{prefix}k{n}"
        found.setdefault(redirect_owner(cluster, key, landing), key)
        if len(found) == SIZE:
            return found
    raise AssertionError(f"no key per worker among 200 names: {found}")


class _Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def getheader(self, name):
        return self.headers.get(name.lower())


def raw_get(port: int, target: str, headers: dict | None = None) -> _Response:
    """One plain GET, redirects not followed."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", target, headers=headers or {})
        r = c.getresponse()
        return _Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        c.close()


@pytest.fixture(scope="module")
def cluster_remote(alcove_bin, tmp_path_factory):
    """The under-storage shared by the members of each cluster: an Alcove worker with one bucket
    per cluster."""
    w = Worker(alcove_bin, tmp_path_factory.mktemp("cluster-remote"), config="[s3]\naccess_log = true\n")
    _ALL_WORKERS.append(w)
    w.start()
    yield w
    w.stop()


def _cluster(alcove_bin, tmp_path_factory, remote, name, **kw):
    remote.client().create_bucket(Bucket=name)
    return Cluster(alcove_bin, tmp_path_factory.mktemp(name), remote, name, **kw)


@pytest.fixture(scope="module")
def proxy_cluster(alcove_bin, tmp_path_factory, cluster_remote):
    c = _cluster(alcove_bin, tmp_path_factory, cluster_remote, "proxy-cluster")
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def redirect_cluster(alcove_bin, tmp_path_factory, cluster_remote):
    c = _cluster(alcove_bin, tmp_path_factory, cluster_remote, "redirect-cluster", s3="redirect.enabled = true")
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def sigv4_cluster(alcove_bin, tmp_path_factory, cluster_remote):
    c = _cluster(alcove_bin, tmp_path_factory, cluster_remote, "sigv4-cluster", extra=SIGV4_CONFIG)
    try:
        yield c.start()
    finally:
        c.stop()


# --------------------------------------------------------------------------
# load balancers
# --------------------------------------------------------------------------


class Frontend:
    """One frontend of a load balancer: what the client helpers need of a server."""

    def __init__(self, port: int):
        self.s3_port = port
        self.host = f"127.0.0.1:{port}"
        self.endpoint = f"http://{self.host}"

    def client(self, **kw):
        return make_client(self.endpoint, **kw)


def _binary(name: str) -> str:
    b = shutil.which(name) or (f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None)
    if not b:
        pytest.fail(f"{name} is not installed (scripts/install-deps.sh installs it)", pytrace=False)
    return b


class LoadBalancer:
    """HAProxy or nginx running deploy/'s config with its placeholders replaced: Pattern A
    (`redirect`) in front of `redirect_cluster`, Pattern B (`proxy`) in front of `proxy_cluster`."""

    def __init__(self, kind: str, base: Path, proxy_cluster: Cluster, redirect_cluster: Cluster,
                 overrides: dict[str, str] | None = None):
        self.kind, self.base = kind, Path(base)
        self.overrides = overrides or {}
        (self.base / "logs").mkdir(parents=True, exist_ok=True)
        self.proxy_cluster, self.redirect_cluster = proxy_cluster, redirect_cluster
        self.proc: subprocess.Popen | None = None
        self.out = self.base / "logs" / "stdout.log"
        self.proxy = self.redirect = None

    def _render(self, template: Path, ports: tuple[int, int]) -> str:
        text = template.read_text()
        tokens = {"@LISTEN_PROXY@": f"127.0.0.1:{ports[0]}", "@LISTEN_REDIRECT@": f"127.0.0.1:{ports[1]}"}
        for name, cluster in (("PROXY", self.proxy_cluster), ("REDIRECT", self.redirect_cluster)):
            for i, w in enumerate(cluster.workers):
                tokens[f"@{name}_W{i + 1}_ADMIN_PORT@"] = str(w.admin_port)
                tokens[f"@{name}_W{i + 1}@"] = w.host
        tokens.update(self.overrides)
        for token in sorted(tokens, key=len, reverse=True):
            text = text.replace(token, tokens[token])
        left = sorted(set(re.findall(r"@[A-Z0-9_]+@", text)))
        assert not left, f"{template.name}: placeholders with no value: {left}"
        return text

    def start(self) -> "LoadBalancer":
        last = ""
        for _ in range(3):  # a port taken between choosing and binding: choose again
            ports = free_ports(2)
            if self.kind == "haproxy":
                conf = self.base / "haproxy.cfg"
                conf.write_text(self._render(DEPLOY / "haproxy.cfg", ports))
                cmd = [_binary("haproxy"), "-db", "-f", str(conf)]
            else:
                conf = self.base / "nginx.conf"
                conf.write_text(self._render(DEPLOY / "nginx.conf", ports))
                cmd = [_binary("nginx"), "-p", f"{self.base}/", "-c", str(conf),
                       "-e", str(self.base / "logs" / "error.log"),
                       "-g", f"daemon off; pid {self.base / 'nginx.pid'};"]
            with open(self.out, "ab") as out:
                self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             cwd=self.base)
            self.proxy, self.redirect = Frontend(ports[0]), Frontend(ports[1])
            if wait_until(lambda: self.proc.poll() is not None or self._answers(), timeout=15, interval=0.05) \
                    and self.proc.poll() is None:
                return self
            last = self.logs()
            self.stop()
        raise AssertionError(f"{self.kind} did not start:\n{last}")

    def _answers(self) -> bool:
        """Both frontends answer HTTP from a worker behind them (ListBuckets: 200, or 403 for an
        anonymous request in sigv4 mode; not the load balancer's own 502 or 503)."""
        for f in (self.proxy, self.redirect):
            try:
                if raw_get(f.s3_port, "/").status not in (200, 403):
                    return False
            except OSError:
                return False
        return True

    def stop(self):
        # SIGTERM: the fast stop of both (nginx's graceful SIGQUIT can wait on a half-sent upload)
        terminate(self.proc)
        self.proc = None

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted((self.base / "logs").glob("*.log")))

    def request_log(self) -> str:
        return (self.out if self.kind == "haproxy" else self.base / "logs" / "access.log").read_text(errors="replace")

    def backends_used(self, cluster: Cluster) -> set[int]:
        """The workers of `cluster` the load balancer sent requests to, from its request log."""
        text = self.request_log()
        used = set()
        for i, w in enumerate(cluster.workers):
            if self.kind == "haproxy":
                backend = "alcove_proxy" if cluster is self.proxy_cluster else "alcove_redirect"
                if f"{backend}/w{i + 1} " in text:
                    used.add(i)
            elif f"upstream={w.host} " in text:
                used.add(i)
        return used


@pytest.fixture(scope="module", params=["haproxy", "nginx"])
def lb(request, tmp_path_factory, proxy_cluster, redirect_cluster):
    b = LoadBalancer(request.param, tmp_path_factory.mktemp(request.param), proxy_cluster, redirect_cluster)
    try:
        yield b.start()
    finally:
        b.stop()


# --------------------------------------------------------------------------
# flows
# --------------------------------------------------------------------------


def data_for(key: str, size: int = 40_000) -> bytes:
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size] + os.urandom(64)


def md5_etag(b: bytes) -> str:
    return f'"{hashlib.md5(b).hexdigest()}"'


def status_of(e: ClientError) -> int:
    return e.response["ResponseMetadata"]["HTTPStatusCode"]


def http_get(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as r:
        assert r.status == 200, f"GET {url}: {r.status}"
        return r.read()


def basic_flow(cluster: Cluster, clients: list, tag: str, check_owner: bool = True):
    """put/get/head/list/copy/delete/DeleteObjects/multipart/presigned GET on keys owned by each
    worker. `clients[0]` does the single requests; a multipart upload's parts go through
    clients[1] and clients[2] and it completes through clients[0]. With `check_owner`, each read
    is checked to have been served by the key's owner (the workers' access logs)."""
    c = clients[0]
    prefix = f"{tag}-{uuid.uuid4().hex[:8]}/"
    owned = owned_keys(cluster, prefix, per_owner=2)
    keys = [owned[i][0] for i in range(SIZE)]
    spare = [owned[i][1] for i in range(SIZE)]
    data = {k: data_for(k) for k in keys}

    for k in keys:
        r = c.put_object(Bucket=SHARED, Key=k, Body=data[k], ContentType="application/x-cluster-test",
                         Metadata={"origin": tag})
        assert r["ETag"] == md5_etag(data[k]), f"PUT {k}: ETag {r['ETag']}"
    for owner, k in enumerate(keys):
        got = c.get_object(Bucket=SHARED, Key=k)
        assert got["Body"].read() == data[k], f"GET {k} (owned by w{owner + 1}) returned other bytes"
        h = c.head_object(Bucket=SHARED, Key=k)
        assert (h["ContentLength"], h["ETag"], h["ContentType"], h["Metadata"]) == \
            (len(data[k]), md5_etag(data[k]), "application/x-cluster-test", {"origin": tag}), f"HEAD {k}: {h}"
        if check_owner:
            assert cluster.served_once("GET", k) == owner, f"GET {k} not served by its owner w{owner + 1}"
            assert cluster.served_once("PUT", k) == owner, f"PUT {k} not served by its owner w{owner + 1}"

    listed = [o["Key"] for o in c.list_objects_v2(Bucket=SHARED, Prefix=prefix).get("Contents", [])]
    assert listed == sorted(keys), f"listing of {prefix}: {listed}"

    # copy a key of w1 onto a key of w2 (and so on round the ring)
    for i in range(SIZE):
        src, dst = keys[i], spare[(i + 1) % SIZE]
        r = c.copy_object(Bucket=SHARED, Key=dst, CopySource={"Bucket": SHARED, "Key": src})
        assert r["CopyObjectResult"]["ETag"] == md5_etag(data[src]), f"copy {src} -> {dst}: {r}"
        assert c.get_object(Bucket=SHARED, Key=dst)["Body"].read() == data[src], f"copy {src} -> {dst} reads back"

    # presigned GET, fetched with a plain HTTP client
    for k in keys:
        url = c.generate_presigned_url("get_object", Params={"Bucket": SHARED, "Key": k}, ExpiresIn=300)
        assert http_get(url) == data[k], f"presigned GET of {k}"

    # multipart upload of a key of each worker in turn: parts through different workers
    mp_key = spare[0]
    part1, part2 = os.urandom(5 * MiB), os.urandom(123_456)
    up = c.create_multipart_upload(Bucket=SHARED, Key=mp_key)["UploadId"]
    e1 = clients[1 % len(clients)].upload_part(Bucket=SHARED, Key=mp_key, UploadId=up, PartNumber=1, Body=part1)["ETag"]
    e2 = clients[2 % len(clients)].upload_part(Bucket=SHARED, Key=mp_key, UploadId=up, PartNumber=2, Body=part2)["ETag"]
    listed_parts = clients[1 % len(clients)].list_parts(Bucket=SHARED, Key=mp_key, UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in listed_parts] == [(1, e1), (2, e2)], listed_parts
    r = c.complete_multipart_upload(Bucket=SHARED, Key=mp_key, UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    # `shared` is an S3 mount: the completed object is written to the remote, whose ETag it has
    remote_etag = cluster.remote.client().head_object(Bucket=cluster.remote_bucket, Key=mp_key)["ETag"]
    assert r["ETag"] == remote_etag, f"multipart ETag {r['ETag']}, the remote's {remote_etag}"
    for reader in clients:
        got = reader.get_object(Bucket=SHARED, Key=mp_key)
        assert (got["ETag"], got["Body"].read() == part1 + part2) == (remote_etag, True), \
            "multipart object reads back whole"
    if check_owner:
        assert cluster.served_once("POST", mp_key) == 0, "the upload's POSTs are served by its owner"

    # deletes: one DELETE, then a DeleteObjects naming keys of every worker
    c.delete_object(Bucket=SHARED, Key=keys[0])
    with pytest.raises(ClientError) as ei:
        c.head_object(Bucket=SHARED, Key=keys[0])
    assert status_of(ei.value) == 404, f"HEAD after DELETE: {ei.value.response}"
    rest = keys[1:] + spare
    r = c.delete_objects(Bucket=SHARED, Delete={"Objects": [{"Key": k} for k in rest]})
    assert not r.get("Errors"), f"DeleteObjects errors: {r.get('Errors')}"
    assert sorted(d["Key"] for d in r.get("Deleted", [])) == sorted(rest), r.get("Deleted")
    for reader in clients:
        left = reader.list_objects_v2(Bucket=SHARED, Prefix=prefix).get("KeyCount")
        assert left == 0, f"{left} objects left under {prefix} after the deletes"
        for k in rest:
            with pytest.raises(ClientError) as ei:
                reader.get_object(Bucket=SHARED, Key=k)
            assert status_of(ei.value) == 404, f"GET {k} after DeleteObjects: {ei.value.response}"


def cli_flow(cluster: Cluster, target, tmp_path: Path, tag: str):
    """The AWS CLI through `target` (a worker or a load balancer frontend): cp up and down (one
    object big enough for a multipart upload), ls, sync of a folder and back, and
    s3api list-multipart-uploads showing an upload started through another worker."""
    prefix = f"{tag}-{uuid.uuid4().hex[:8]}"
    small, big = os.urandom(300_000), os.urandom(9 * MiB)
    (tmp_path / "small.bin").write_bytes(small)
    (tmp_path / "big.bin").write_bytes(big)
    for name in ("small.bin", "big.bin"):
        r = aws(target, "s3", "cp", "--no-progress", str(tmp_path / name), f"s3://{SHARED}/{prefix}/{name}")
        assert "upload:" in r.stdout, r.stdout
        aws(target, "s3", "cp", "--no-progress", f"s3://{SHARED}/{prefix}/{name}", str(tmp_path / f"back-{name}"))
        assert (tmp_path / f"back-{name}").read_bytes() == (tmp_path / name).read_bytes(), f"{name} round trip"
    ls = aws(target, "s3", "ls", f"s3://{SHARED}/{prefix}/").stdout
    sizes = {line.split()[-1]: int(line.split()[-2]) for line in ls.splitlines() if line.strip()}
    assert sizes == {"small.bin": len(small), "big.bin": len(big)}, f"aws s3 ls:\n{ls}"

    src = tmp_path / "tree"
    files = {f"f{i}.txt": os.urandom(1000 + i) for i in range(6)}
    files.update({f"sub/dir/g{i}.bin": os.urandom(5000 + i) for i in range(3)})
    for rel, b in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(b)
    # sync compares sizes and times, and S3 times have one-second resolution: make the local
    # files clearly older than the uploads
    past = time.time() - 120
    for p in src.rglob("*"):
        os.utime(p, (past, past))
    r = aws(target, "s3", "sync", "--no-progress", str(src), f"s3://{SHARED}/{prefix}/tree")
    assert r.stdout.count("upload:") == len(files), f"sync up:\n{r.stdout}"
    again = aws(target, "s3", "sync", "--no-progress", str(src), f"s3://{SHARED}/{prefix}/tree")
    assert again.stdout.strip() == "", f"a second sync has nothing to do, got:\n{again.stdout}"
    dst = tmp_path / "tree-back"
    r = aws(target, "s3", "sync", "--no-progress", f"s3://{SHARED}/{prefix}/tree", str(dst))
    assert r.stdout.count("download:") == len(files), f"sync down:\n{r.stdout}"
    cmp = filecmp.dircmp(src, dst)
    assert not (cmp.left_only or cmp.right_only or cmp.diff_files), f"synced tree differs: {cmp.report()}"
    for rel, b in files.items():
        assert (dst / rel).read_bytes() == b, f"{rel} after sync up and down"
    owners = {cluster.served_once("PUT", f"{prefix}/tree/{rel}") for rel in files}
    assert len(owners) > 1, f"the {len(files)} synced keys all landed on one owner: {owners}"

    key = f"{prefix}/open-upload"
    other = cluster.client(1)
    up = other.create_multipart_upload(Bucket=SHARED, Key=key)["UploadId"]
    try:
        out = aws(target, "s3api", "list-multipart-uploads", "--bucket", SHARED, "--prefix", f"{prefix}/").stdout
        uploads = json.loads(out).get("Uploads", []) if out.strip() else []
        assert [(u["Key"], u["UploadId"]) for u in uploads] == [(key, up)], f"list-multipart-uploads:\n{out}"
    finally:
        other.abort_multipart_upload(Bucket=SHARED, Key=key, UploadId=up)
    aws(target, "s3", "rm", "--recursive", f"s3://{SHARED}/{prefix}/")
    assert cluster.client(2).list_objects_v2(Bucket=SHARED, Prefix=f"{prefix}/")["KeyCount"] == 0


def mk_minio(target) -> Minio:
    return Minio(f"127.0.0.1:{target.s3_port}", access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False,
                 region=REGION)


def minio_flow(cluster: Cluster, mc: Minio, keys: dict[int, str], check_owner: bool = True):
    """minio-py on keys owned by each worker of a redirect-mode cluster: put/get/stat/list/remove,
    following the 307s to the owners."""
    prefix = os.path.commonprefix(list(keys.values()))
    data = {k: data_for(k, 20_000) for k in keys.values()}
    for owner, k in keys.items():
        r = mc.put_object(SHARED, k, io.BytesIO(data[k]), len(data[k]), content_type="application/x-minio")
        assert r.etag == hashlib.md5(data[k]).hexdigest(), f"put {k}: etag {r.etag}"
        if check_owner:
            assert cluster.served_once("PUT", k) == owner, f"PUT {k} not served by its owner w{owner + 1}"
    for owner, k in keys.items():
        resp = mc.get_object(SHARED, k)
        try:
            assert resp.read() == data[k], f"get {k} (owned by w{owner + 1})"
        finally:
            resp.close()
            resp.release_conn()
        st = mc.stat_object(SHARED, k)
        assert (st.size, st.etag, st.content_type) == (len(data[k]), hashlib.md5(data[k]).hexdigest(),
                                                      "application/x-minio"), f"stat {k}: {st}"
        if check_owner:
            assert cluster.served_once("GET", k) == owner, f"GET {k} not served by its owner w{owner + 1}"
            assert cluster.served_once("HEAD", k) == owner, f"HEAD {k} not served by its owner w{owner + 1}"
    listed = sorted(o.object_name for o in mc.list_objects(SHARED, prefix=prefix, recursive=True))
    assert listed == sorted(keys.values()), f"list_objects {prefix}: {listed}"
    for k in keys.values():
        mc.remove_object(SHARED, k)
    for k in keys.values():
        with pytest.raises(S3Error) as ei:
            mc.stat_object(SHARED, k)
        assert (ei.value.code, ei.value.response.status) == ("NoSuchKey", 404), f"stat {k} after remove: {ei.value}"
    assert list(mc.list_objects(SHARED, prefix=prefix, recursive=True)) == [], "objects left after remove"


# --------------------------------------------------------------------------
# proxy mode, straight to the workers
# --------------------------------------------------------------------------


def test_cluster_status_lists_every_member(proxy_cluster):
    for w in proxy_cluster.workers:
        st = cluster_status(w)
        assert st.get("live") == SIZE, f"{w.base.name}: {st}"
        assert sorted((m["id"], m["state"]) for m in st["members"]) == \
            [("w1", "live"), ("w2", "live"), ("w3", "live")], st["members"]


@pytest.mark.parametrize("via", range(SIZE), ids=lambda i: f"w{i + 1}")
def test_boto3_flows_through_each_worker(proxy_cluster, via):
    clients = [proxy_cluster.client((via + j) % SIZE) for j in range(SIZE)]
    basic_flow(proxy_cluster, clients, f"boto3-w{via + 1}")


def test_awscli_through_one_worker(proxy_cluster, tmp_path):
    cli_flow(proxy_cluster, proxy_cluster.workers[0], tmp_path, "cli-w1")


# --------------------------------------------------------------------------
# redirect mode, straight to the workers
# --------------------------------------------------------------------------


def test_raw_get_is_redirected_to_the_owner(redirect_cluster):
    keys = redirected_keys(redirect_cluster, f"raw-{uuid.uuid4().hex[:8]}/")
    landing = redirect_cluster.workers[0]
    for owner, key in keys.items():
        path = f"/{SHARED}/{key}"
        r = raw_get(landing.s3_port, f"{path}?x-id=GetObject")
        if owner == 0:
            assert r.status == 404, f"the owner answers itself (no such key yet): {r.status} {r.headers}"
            continue
        assert r.status == 307, f"GET {key} on w1 (owner w{owner + 1}): {r.status} {r.body[:300]!r}"
        want = f"{redirect_cluster.workers[owner].endpoint}{path}?x-id=GetObject"
        assert r.getheader("Location") == want, f"Location {r.getheader('Location')}, expected {want}"
        assert b"TemporaryRedirect" in r.body, r.body
        direct = raw_get(redirect_cluster.workers[owner].s3_port, path)
        assert direct.status == 404, f"the owner never redirects: {direct.status} {direct.headers}"


def test_boto3_does_not_follow_redirects(redirect_cluster):
    """Why Pattern B exists: boto3 (and the AWS CLI on it) stops at the 307."""
    keys = redirected_keys(redirect_cluster, f"boto3-307-{uuid.uuid4().hex[:8]}/")
    owner = redirect_cluster.workers[1]
    with pytest.raises(ClientError) as ei:
        redirect_cluster.client(0).put_object(Bucket=SHARED, Key=keys[1], Body=b"x")
    err = ei.value.response
    assert (status_of(ei.value), err["Error"]["Code"], err["Error"].get("Endpoint")) == \
        (307, "TemporaryRedirect", owner.host), f"boto3 PUT on a non-owner: {err}"
    assert redirect_cluster.served("PUT", keys[1]) == [], "nothing was written"


def test_minio_follows_redirects_to_the_owners(redirect_cluster):
    keys = redirected_keys(redirect_cluster, f"minio-{uuid.uuid4().hex[:8]}/")
    minio_flow(redirect_cluster, mk_minio(redirect_cluster.workers[0]), keys)


# --------------------------------------------------------------------------
# load balancers (HAProxy, nginx): Pattern B (proxy mode) and Pattern A (redirect mode)
# --------------------------------------------------------------------------


def test_lb_pattern_b_boto3(lb, proxy_cluster):
    c = lb.proxy.client()
    basic_flow(proxy_cluster, [c, c, c], f"{lb.kind}-boto3")
    assert wait_until(lambda: lb.backends_used(proxy_cluster) == {0, 1, 2}), \
        f"{lb.kind} did not spread requests over the three workers:\n{lb.request_log()[-3000:]}"


def test_lb_pattern_b_awscli(lb, proxy_cluster, tmp_path):
    cli_flow(proxy_cluster, lb.proxy, tmp_path, f"{lb.kind}-cli")


def test_lb_pattern_a_minio(lb, redirect_cluster):
    keys = redirected_keys(redirect_cluster, f"{lb.kind}-minio-{uuid.uuid4().hex[:8]}/")
    minio_flow(redirect_cluster, mk_minio(lb.redirect), keys)
    assert wait_until(lambda: lb.backends_used(redirect_cluster) == {0, 1, 2}), \
        f"{lb.kind} did not spread requests over the three workers:\n{lb.request_log()[-3000:]}"


def test_lb_pattern_a_passes_the_307_unchanged(lb, redirect_cluster):
    keys = redirected_keys(redirect_cluster, f"{lb.kind}-raw-{uuid.uuid4().hex[:8]}/")
    for owner, key in keys.items():
        path = f"/{SHARED}/{key}?x-id=GetObject"
        want = f"{redirect_cluster.workers[owner].endpoint}{path}"
        seen = []
        # round robin: of SIZE requests, the SIZE - 1 landing on a non-owner are redirected
        for _ in range(SIZE):
            r = raw_get(lb.redirect.s3_port, path)
            seen.append((r.status, r.getheader("Location")))
        assert (307, want) in seen, f"no 307 to {want} through {lb.kind}: {seen}"
        assert all(s == (307, want) or s[0] == 404 for s in seen), \
            f"through {lb.kind} every answer is a 307 to the owner or the owner's own 404: {seen}"


def test_haproxy_leaves_out_a_worker_failing_its_readyz_check(tmp_path, proxy_cluster, redirect_cluster,
                                                              cluster_remote):
    """The health check of deploy/haproxy.cfg is `GET /readyz` on the admin port, expecting 200: here
    w3's "admin port" is an S3 port (GET /readyz there is a 404), so HAProxy takes w3 out and
    sends every request to w1 and w2."""
    b = LoadBalancer("haproxy", tmp_path / "haproxy", proxy_cluster, redirect_cluster,
                     overrides={"@PROXY_W3_ADMIN_PORT@": str(cluster_remote.s3_port)})
    b.start()
    try:
        down = "alcove_proxy/w3 is DOWN, reason: Layer7 wrong status"
        assert wait_until(lambda: down in b.request_log(), timeout=10), f"haproxy did not take w3 out:\n{b.logs()}"
        assert "alcove_proxy/w1 is DOWN" not in b.request_log(), f"w1 passes its check:\n{b.logs()}"
        mark = len(b.request_log())
        c = b.proxy.client()
        for _ in range(6):
            c.list_objects_v2(Bucket=SHARED, MaxKeys=1)
        wait_until(lambda: b.request_log()[mark:].count('"GET /shared') >= 6)
        new = b.request_log()[mark:]
        used = {n for n in ("w1", "w2", "w3") if f"alcove_proxy/{n} " in new}
        assert used == {"w1", "w2"}, f"requests went to {used}, expected w1 and w2 only:\n{new}"
    finally:
        b.stop()


@pytest.fixture(scope="module")
def sigv4_lbs(tmp_path_factory, sigv4_cluster, redirect_cluster):
    """HAProxy and nginx with Pattern B in front of the SigV4 cluster."""
    started = []
    try:
        for kind in ("haproxy", "nginx"):
            started.append(LoadBalancer(kind, tmp_path_factory.mktemp(f"{kind}-sigv4"), sigv4_cluster,
                                        redirect_cluster).start())
        yield {b.kind: b for b in started}
    finally:
        for b in started:
            b.stop()


@pytest.mark.parametrize("kind", ["haproxy", "nginx"])
def test_lb_pattern_b_keeps_sigv4_valid(sigv4_lbs, sigv4_cluster, kind):
    lb = sigv4_lbs[kind]
    c = lb.proxy.client()
    basic_flow(sigv4_cluster, [c, c, c], f"{kind}-sigv4")
    bad = lb.proxy.client(secret_key="not-the-secret")
    with pytest.raises(ClientError) as ei:
        bad.put_object(Bucket=SHARED, Key="sigv4-refused", Body=b"x")
    assert ei.value.response["Error"]["Code"] == "SignatureDoesNotMatch", ei.value.response
    # The signature covers Host: a request signed for the load balancer's address passes, the
    # same request with another Host is refused, so the flows above saw the Host unchanged.
    target = f"/{SHARED}/?list-type=2&prefix=sigv4-host"
    h = sign_v4("GET", lb.proxy.host, target, {}, b"", ACCESS_KEY, SECRET_KEY)
    ok = raw_http(lb.proxy.s3_port, "GET", target, h)
    assert ok.status == 200, f"signed ListObjectsV2 through {kind}: {ok}"
    h["host"] = "127.0.0.1:9"
    moved = raw_http(lb.proxy.s3_port, "GET", target, h)
    assert (moved.status, moved.code) == (403, "SignatureDoesNotMatch"), \
        f"a Host other than the signed one must be refused: {moved}"


# --------------------------------------------------------------------------
# rolling restart
# --------------------------------------------------------------------------

# How long a stopping worker serves on after leaving the ring: more than HAProxy's `inter 1s
# fall 2` needs to take it out of rotation.
ROLLING_DRAIN = "3s"


class Load:
    """boto3 readers and writers through one endpoint, with retries off so that every failed
    request counts. Writers put fresh keys, and overwrite hot keys of their own with rising
    versions; readers check that a fresh key reads back as written, and that a hot key is never
    older than the version acknowledged before the read began."""

    HOT = 4

    def __init__(self, endpoint: str, prefix: str):
        import threading
        self.prefix = prefix
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.written: dict[str, bytes] = {}
        self.hot_acked: dict[str, int] = {}
        self.failures: list[str] = []
        self.ops = 0
        self.threads = [threading.Thread(target=self._run, args=(endpoint, role, n), daemon=True)
                        for n, role in enumerate(["write", "write", "read", "read"])]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def _run(self, endpoint: str, role: str, n: int):
        import random
        s3 = make_client(endpoint, retries={"total_max_attempts": 1}, read_timeout=30)
        rng = random.Random(n)
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                if role == "write":
                    self._write(s3, n, i)
                else:
                    self._read(s3, rng)
                with self.lock:
                    self.ops += 1
            except Exception as e:  # every failure counts, whatever its kind
                with self.lock:
                    self.failures.append(f"{role} #{i}: {e!r}")

    def _write(self, s3, n: int, i: int):
        key = f"{self.prefix}/fresh/{n}-{i}"
        body = f"{key} {uuid.uuid4()}".encode() * 50
        s3.put_object(Bucket=SHARED, Key=key, Body=body)
        with self.lock:
            self.written[key] = body
        hot = f"{self.prefix}/hot/{n}-{i % self.HOT}"
        s3.put_object(Bucket=SHARED, Key=hot, Body=str(i).encode())
        with self.lock:
            self.hot_acked[hot] = i

    def _read(self, s3, rng):
        with self.lock:
            fresh = rng.choice(list(self.written)) if self.written else None
            hot = rng.choice(list(self.hot_acked)) if self.hot_acked else None
            hot_before = self.hot_acked.get(hot, 0)
        if fresh is None or hot is None:
            time.sleep(0.01)
            return
        got = s3.get_object(Bucket=SHARED, Key=fresh)["Body"].read()
        if got != self.written[fresh]:
            raise AssertionError(f"{fresh} read back {len(got)} bytes that differ from what was acknowledged")
        answer = s3.get_object(Bucket=SHARED, Key=hot)
        version = int(answer["Body"].read())
        if version < hot_before:
            raise AssertionError(f"{hot} read version {version}, older than the acknowledged {hot_before} "
                                 f"(request {answer['ResponseMetadata']['RequestId']})")


def test_rolling_restart_fails_no_request_and_loses_no_write(alcove_bin, tmp_path_factory, cluster_remote):
    """Each worker of three is restarted in turn (SIGTERM, then started again) behind HAProxy
    while boto3 readers and writers run with retries off: no request fails, and every
    acknowledged write reads back afterwards, through every worker."""
    cluster = _cluster(alcove_bin, tmp_path_factory, cluster_remote, "rolling-cluster",
                       s3=f'shutdown_drain = "{ROLLING_DRAIN}"')
    cluster.start()
    balancer = LoadBalancer("haproxy", tmp_path_factory.mktemp("rolling-haproxy"), cluster, cluster)
    try:
        balancer.start()
        with Load(balancer.proxy.endpoint, "rolling") as load:
            time.sleep(1)
            for i, w in enumerate(cluster.workers):
                w.stop()
                assert "draining" in w.log_text() and "leaving the ring" in w.log_text(), w.log_tail()
                w.start(keep_ports=True)
                assert wait_until(lambda: all(cluster_status(x).get("live") == SIZE for x in cluster.workers),
                                  timeout=15, interval=0.1), f"w{i + 1} did not rejoin"
                time.sleep(3)  # HAProxy's `rise 2` puts it back in rotation
            time.sleep(1)
        assert load.failures == [], f"{len(load.failures)} of {load.ops} requests failed:\n" + \
            "\n".join(load.failures[:20])
        assert load.ops > 100 and len(load.written) > 30, (load.ops, len(load.written))
        for w in cluster.workers:
            s3 = w.client()
            for key, body in load.written.items():
                assert s3.get_object(Bucket=SHARED, Key=key)["Body"].read() == body, f"{key} via {w.base.name}"
        print(f"rolling restart: {load.ops} requests, {len(load.written)} acknowledged writes, 0 failed, 0 lost")
    finally:
        balancer.stop()
        cluster.stop()
