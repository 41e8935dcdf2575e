"""Fixtures for the Alcove Python client tests.

Run with:  ALCOVE_BIN=/path/to/alcove pytest tests/clients
(scripts/install-deps.sh installs the clients into /var/tmp/alcove-venv).
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

from alcove_helpers import ACCESS_KEY, REGION, SECRET_KEY, Worker

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


@pytest.fixture(scope="session")
def worker(alcove_bin, tmp_path_factory):
    """The shared worker: embedded defaults (simple auth, anonymous allowed)."""
    w = Worker(alcove_bin, tmp_path_factory.mktemp("simple"))
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


@pytest.fixture
def bucket(request, worker, s3):
    """A fresh bucket created with CreateBucket (boto3); removed best-effort afterwards."""
    name = unique_bucket_name(request.node.name)
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete(s3, name)


@pytest.fixture
def make_bucket(worker, s3):
    """Factory for additional fresh buckets on the shared worker."""
    made = []

    def _make(hint: str = "extra") -> str:
        name = unique_bucket_name(hint)
        s3.create_bucket(Bucket=name)
        made.append(name)
        return name

    yield _make
    for name in made:
        empty_and_delete(s3, name)


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
