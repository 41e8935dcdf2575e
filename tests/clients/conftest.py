"""Fixtures for the Alcove Python client tests.

Run with:  ALCOVE_BIN=/path/to/alcove pytest tests/clients
(scripts/install-deps.sh installs the clients into /var/tmp/alcove-venv).

With ALCOVE_CLIENT_UFS=s3 the `bucket` and `make_bucket` fixtures (and the module-scoped buckets
made with `new_bucket`) are S3 mounts: each bucket is created on a session-wide remote (a second
Alcove worker) and mounted on the worker under test under the same name with `alcove mount add
--ufs-uri s3://NAME --option endpoint=...`. In that mode tests marked `local_only` are skipped, and
so are the tests that use none of those buckets (they do not depend on the mode and ran already
in the default mode). S3 mounts are read through the page cache; with ALCOVE_CLIENT_CACHE=small
as well, the shared worker's cache is much smaller than the data the suites move (a 4 MiB memory
tier and an 8 MiB disk tier), so reads keep evicting and refetching pages.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from alcove_helpers import ACCESS_KEY, BUCKET_DIRS, BUCKET_REMOTES, REGION, SECRET_KEY, Worker

UFS_MODE = os.environ.get("ALCOVE_CLIENT_UFS", "").strip().lower() or "local"
S3_MODE = UFS_MODE == "s3"
CACHE_MODE = os.environ.get("ALCOVE_CLIENT_CACHE", "").strip().lower() or "default"
# fixtures that give a test a bucket of the worker under test (an S3 mount in S3 mode)
BUCKET_FIXTURES = {"bucket", "make_bucket", "new_bucket"}

SIGV4_CONFIG = f"""
[auth]
mode = "sigv4"
allow_anonymous = false

[[auth.credentials]]
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"
"""

_STATE: dict = {}


def pytest_configure(config):
    if UFS_MODE not in ("local", "s3"):
        raise pytest.UsageError(f"ALCOVE_CLIENT_UFS={UFS_MODE!r}: expected 's3' or unset")
    if CACHE_MODE not in ("default", "small"):
        raise pytest.UsageError(f"ALCOVE_CLIENT_CACHE={CACHE_MODE!r}: expected 'small' or unset")
    # Isolate every AWS-flavoured client from the machine's own settings and
    # make sure no traffic leaves the loopback interface.
    d = tempfile.mkdtemp(prefix="alcove-clients-env-")
    _STATE["envdir"] = d
    cfg = Path(d) / "aws-config"
    cfg.write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
    creds = Path(d) / "aws-credentials"
    creds.write_text("")
    for k in list(os.environ):
        if k.upper() in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                         "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                         "AWS_CA_BUNDLE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
            del os.environ[k]
    os.environ.update({
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(cfg),
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    if not os.environ.get("ALCOVE_BIN") and not config.option.collectonly:
        raise pytest.UsageError(
            "ALCOVE_BIN is not set. Build the server with "
            "`CARGO_TARGET_DIR=/var/tmp/alcove-target cargo build -p alcove` and run e.g. "
            "`ALCOVE_BIN=/var/tmp/alcove-target/debug/alcove pytest tests/clients`."
        )


def pytest_report_header(config):
    return f"alcove client suites: ALCOVE_CLIENT_UFS={UFS_MODE} (buckets are " + \
        ("S3 mounts of a second Alcove worker)" if S3_MODE else "folders of the worker's root)") + \
        (", ALCOVE_CLIENT_CACHE=small (a 4 MiB + 8 MiB page cache)" if CACHE_MODE == "small" else "")


def pytest_collection_modifyitems(config, items):
    if not S3_MODE:
        return
    for item in items:
        m = item.get_closest_marker("local_only")
        if m is not None:
            why = m.kwargs.get("reason") or (m.args[0] if m.args else "needs a local-folder bucket")
            item.add_marker(pytest.mark.skip(reason=f"local_only: {why}"))
        elif not BUCKET_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.skip(
                reason="ALCOVE_CLIENT_UFS=s3 runs only tests on mounted buckets; this one ran in the default mode"))


def pytest_unconfigure(config):
    d = _STATE.pop("envdir", None)
    if d:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def alcove_bin() -> str:
    b = os.environ.get("ALCOVE_BIN", "")
    if not b:
        pytest.fail("ALCOVE_BIN is not set (path of the alcove binary)", pytrace=False)
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail(f"ALCOVE_BIN={b} is not an executable file", pytrace=False)
    return b


@pytest.fixture(scope="session")
def aws_config_file() -> str:
    return os.environ["AWS_CONFIG_FILE"]


_ALL_WORKERS: list[Worker] = []


# The shared worker trusts what it cached of a remote object for a second (default 10 s), so the
# tests that change a remote behind Alcove's back see the change quickly.
SHARED_CONFIG = """
[cache]
metadata_sync_interval = "1s"
"""


@pytest.fixture(scope="session")
def worker(alcove_bin, tmp_path_factory):
    """The shared worker: embedded defaults (simple auth, anonymous allowed), but remote metadata
    re-checked after a second."""
    base = tmp_path_factory.mktemp("simple")
    config = SHARED_CONFIG
    if CACHE_MODE == "small":
        config += f'memory_size = "4MiB"\n[[cache.dirs]]\npath = "{base / "cache"}"\nsize = "8MiB"\n'
    w = Worker(alcove_bin, base, config=config)
    _ALL_WORKERS.append(w)
    w.start()
    yield w
    w.stop()


@pytest.fixture(scope="session")
def sigv4_worker(alcove_bin, tmp_path_factory):
    """A worker in sigv4 mode with one credential pair (AKIDALCOVETEST / alcove-test-secret)."""
    w = Worker(alcove_bin, tmp_path_factory.mktemp("sigv4"), config=SIGV4_CONFIG)
    _ALL_WORKERS.append(w)
    w.start()
    yield w
    w.stop()


@pytest.fixture
def start_worker(alcove_bin, tmp_path_factory):
    """Factory for extra workers (stopped by pid at the end of the test)."""
    started: list[Worker] = []

    def _start(config: str | None = None, root: Path | None = None, name: str = "extra") -> Worker:
        w = Worker(alcove_bin, tmp_path_factory.mktemp(name), config=config, root=root)
        started.append(w)
        _ALL_WORKERS.append(w)
        return w.start()

    yield _start
    for w in started:
        w.stop()


@pytest.fixture(scope="session")
def s3(worker):
    """boto3 client for the shared worker."""
    return worker.client()


@pytest.fixture(autouse=True)
def _no_server_panics(request):
    """Fails a test during which any running worker logged a Rust panic."""
    before = {id(w): len(w.log_text()) for w in _ALL_WORKERS}
    yield
    for w in list(_ALL_WORKERS):
        text = w.log_text()
        new = text[before.get(id(w), 0):]
        if "panicked at" in new:
            i = new.index("panicked at")
            pytest.fail(f"alcove worker ({w.log}) panicked during this test:\n{new[max(0, i - 300):i + 1500]}",
                        pytrace=False)


_counter = itertools.count()


def unique_bucket_name(hint: str = "b") -> str:
    hint = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[:30] or "b"
    return f"{hint}-{next(_counter)}-{uuid.uuid4().hex[:8]}"


def empty_and_delete(client, name: str):
    """Best-effort cleanup: delete every object, then the bucket."""
    try:
        token = None
        while True:
            kw = {"Bucket": name}
            if token:
                kw["ContinuationToken"] = token
            r = client.list_objects_v2(**kw)
            keys = [o["Key"] for o in r.get("Contents", [])]
            # deepest keys first so folder markers go after their children
            keys.sort(key=lambda k: (-k.count("/"), k))
            for i in range(0, len(keys), 1000):
                client.delete_objects(Bucket=name, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                            "Quiet": True})
            if not r.get("IsTruncated"):
                break
            token = r.get("NextContinuationToken")
            if not token:
                break
        client.delete_bucket(Bucket=name)
    except Exception:
        pass


class BucketMaker:
    """Makes the test buckets of the worker under test: CreateBucket (default mode), or a bucket
    on the remote Alcove worker mounted under the same name (ALCOVE_CLIENT_UFS=s3)."""

    def __init__(self, worker: Worker, s3, remote: Worker | None):
        self.worker, self.s3, self.remote = worker, s3, remote
        self.remote_s3 = remote.client() if remote else None

    def make(self, hint: str) -> str:
        name = unique_bucket_name(hint)
        if self.remote is None:
            self.s3.create_bucket(Bucket=name)
            return name
        self.remote_s3.create_bucket(Bucket=name)
        opts = {"endpoint": self.remote.endpoint, "region": REGION,
                "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}
        args = []
        for k, v in opts.items():
            args += ["--option", f"{k}={v}"]
        self.worker.alcove("mount", "add", "--admin", self.worker.admin, "--path", f"/{name}",
                           "--ufs-uri", f"s3://{name}", *args)
        BUCKET_DIRS[name] = self.remote.root / name
        BUCKET_REMOTES[name] = (self.remote_s3, name)
        return name

    def destroy(self, name: str):
        if self.remote is None:
            empty_and_delete(self.s3, name)
            return
        # abort what a test left open, so the worker drops its staged parts
        try:
            for u in self.s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
                self.s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
        except Exception:
            pass
        self.worker.alcove("mount", "remove", "--admin", self.worker.admin, "--path", f"/{name}", check=False)
        BUCKET_DIRS.pop(name, None)
        BUCKET_REMOTES.pop(name, None)
        empty_and_delete(self.remote_s3, name)
        shutil.rmtree(self.remote.root / name, ignore_errors=True)


@pytest.fixture(scope="session")
def ufs_remote(alcove_bin, tmp_path_factory):
    """S3 mode only: the second Alcove worker that holds the mounted buckets' data."""
    if not S3_MODE:
        yield None
        return
    # The suites test Alcove's own limits (2 KB of x-amz-meta-*, 10 tags of 128/256 characters);
    # on a mount, Alcove also keeps tags and checksums in the remote's user metadata, so the remote
    # gets room for both (and a header section that holds them). A remote with S3's 2 KB budget is
    # tested in test_remote_ufs.py.
    w = Worker(alcove_bin, tmp_path_factory.mktemp("ufs-remote"),
               config='[s3]\nmetadata_max_size = 16384\nmax_header_size = "32KiB"\n')
    _ALL_WORKERS.append(w)
    w.start()
    yield w
    w.stop()


@pytest.fixture(scope="session")
def new_bucket(worker, s3, ufs_remote):
    """Session-wide factory for buckets of any fixture scope: new_bucket(hint) -> name, and
    new_bucket.destroy(name). A local folder bucket, or an S3 mount in S3 mode."""
    maker = BucketMaker(worker, s3, ufs_remote)

    class _Factory:
        def __call__(self, hint: str = "b") -> str:
            return maker.make(hint)

        def destroy(self, name: str):
            maker.destroy(name)

    return _Factory()


@pytest.fixture
def bucket(request, new_bucket):
    """A fresh bucket (CreateBucket with boto3, or an S3 mount); removed best-effort afterwards."""
    name = new_bucket(request.node.name)
    yield name
    new_bucket.destroy(name)


@pytest.fixture
def make_bucket(new_bucket):
    """Factory for additional fresh buckets on the shared worker."""
    made = []

    def _make(hint: str = "extra") -> str:
        name = new_bucket(hint)
        made.append(name)
        return name

    yield _make
    for name in made:
        new_bucket.destroy(name)


@pytest.fixture(scope="session")
def cli_env(worker):
    """Environment for command-line clients (creds from env, path-style config file)."""
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PAGER": "",
        "HOME": os.environ.get("HOME", "/root"),
    })
    return env


class CountedMount:
    """A bucket of the shared worker that is an S3 mount of a remote of its own, read through the
    page cache; the remote logs every request, so the object reads that reach it are counted."""

    def __init__(self, name: str, remote):
        self.name = name
        self.remote = remote

    def object_gets(self) -> int:
        """GETs of objects (not listings) the remote has served so far."""
        lines = self.remote.log.read_text(errors="replace").splitlines()
        return sum(1 for line in lines
                   if line.startswith("access ") and " method=GET " in line and ' key=""' not in line)


@pytest.fixture(scope="module")
def counted_mount(alcove_bin, tmp_path_factory, worker):
    from remotes import AlcoveRemote, mount_remote, unmount
    remote = AlcoveRemote(alcove_bin, tmp_path_factory.mktemp("counted-remote"), config="[s3]\naccess_log = true\n")
    remote.start()
    name = f"counted-{uuid.uuid4().hex[:8]}"
    remote.create_bucket(name)
    mount_remote(worker, name, remote)
    try:
        yield CountedMount(name, remote)
    finally:
        unmount(worker, name)
        remote.stop()
