"""What an operator looks at: the admin port's status page (`GET /`), rendered by headless
Chromium (Debian's `chromium`), and the Grafana dashboard of deploy/grafana, whose every metric
must exist on a live worker's `/metrics`.

A three-worker cluster over a shared S3 mount serves some traffic, one request of it failing with
a key that is HTML; then Chromium loads worker 1's page. The test checks that:

- the page renders with no console message at all, so no CSP violation and no failed load;
- a control page that does log an error proves such messages would be seen;
- the page shows the members and their ring shares, the mount with its secret redacted, the cache
  tiers and the failed request, with the key escaped.

The screenshot is kept in `$ALCOVE_TEST_ARTIFACTS` (default: `alcove-test-artifacts` in the
system's temporary folder) as `status-page.png`.

A single worker with an admin token asks browsers for it: `401` with `WWW-Authenticate: Basic`,
and the token as a Basic password (or a bearer token) opens the page.

No test here uses the `bucket` fixtures, so they run once, in the first pass of scripts/test.sh.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from alcove_helpers import Worker
from conftest import _ALL_WORKERS
from test_cluster import SHARED, Cluster

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/install-deps.sh installs it)")
ADMIN_TOKEN = "status-page-token-0123456789"


def chromium(*args: str, timeout: int = 90) -> subprocess.CompletedProcess:
    """Runs headless Chromium with its console messages on stderr (`INFO:CONSOLE` lines)."""
    profile = tempfile.mkdtemp(prefix="alcove-chromium-")
    try:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args],
            capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def console_lines(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in run.stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def status_cluster(alcove_bin, tmp_path_factory):
    remote = Worker(alcove_bin, tmp_path_factory.mktemp("status-remote"))
    _ALL_WORKERS.append(remote)
    remote.start()
    remote.client().create_bucket(Bucket="status-remote")
    cluster = Cluster(alcove_bin, tmp_path_factory.mktemp("status-cluster"), remote, "status-remote")
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        remote.stop()


def test_the_status_page_renders_without_console_errors(status_cluster):
    first = status_cluster.workers[0]
    s3 = first.client()
    for i in range(6):
        s3.put_object(Bucket=SHARED, Key=f"page/{i}", Body=b"x" * 1000)
        assert s3.get_object(Bucket=SHARED, Key=f"page/{i}")["Body"].read() == b"x" * 1000
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="no-such-bucket", Key="<b>bold</b>")
    failed_id = missing.value.response["ResponseMetadata"]["RequestId"]

    control = chromium("--dump-dom", "data:text/html,<script>console.error('control-error-7')</script>")
    assert any("control-error-7" in line for line in console_lines(control)), \
        f"Chromium's console is not visible, so the check below would prove nothing:\n{control.stderr[-3000:]}"

    url = f"{first.admin}/"
    dom = chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-3000:]
    assert console_lines(dom) == [], console_lines(dom)
    page = dom.stdout
    for member in ("w1", "w2", "w3"):
        assert f"<td>{member}" in page, member
    assert page.count(">live<") >= 3 and "33.3 %" in page
    assert "/shared" in page and "secret_access_key=&lt;redacted&gt;" in page
    assert "secret_access_key=sk" not in page
    assert "memory" in page and "Hit ratio" in page
    assert failed_id in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page

    artifacts = Path(os.environ.get("ALCOVE_TEST_ARTIFACTS", Path(tempfile.gettempdir()) / "alcove-test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "status-page.png"
    shot.unlink(missing_ok=True)
    run = chromium("--window-size=1280,1600", f"--screenshot={shot}", url)
    assert run.returncode == 0 and console_lines(run) == [], run.stderr[-3000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    print(f"status page screenshot: {shot}")


def fetch(url: str, authorization: str | None = None):
    """(status, headers as an http.client.HTTPMessage, body)."""
    request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_a_locked_admin_port_asks_browsers_for_the_token(alcove_bin, tmp_path):
    w = Worker(alcove_bin, tmp_path / "w", config=f'[admin]\ntoken = "{ADMIN_TOKEN}"\n').start()
    try:
        status, headers, _ = fetch(f"{w.admin}/")
        assert status == 401
        challenges = headers.get_all("WWW-Authenticate")
        assert any(c.startswith("Basic ") for c in challenges) and any(c.startswith("Bearer ") for c in challenges), \
            challenges
        basic = base64.b64encode(f"ops:{ADMIN_TOKEN}".encode()).decode()
        status, headers, body = fetch(f"{w.admin}/", f"Basic {basic}")
        assert status == 200 and headers["Content-Type"].startswith("text/html"), (status, headers)
        assert b"<h2>Worker</h2>" in body
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        wrong = base64.b64encode(b"ops:not-the-token").decode()
        assert fetch(f"{w.admin}/", f"Basic {wrong}")[0] == 403
        assert fetch(f"{w.admin}/", f"Bearer {ADMIN_TOKEN}")[0] == 200
    finally:
        w.stop()


DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "alcove.json"


def exposed_series(admin: str) -> set[str]:
    """The sample names of a worker's /metrics (`alcove_s3_requests_total`, `…_bucket`, …)."""
    status, _, body = fetch(f"{admin}/metrics")
    assert status == 200
    names = set()
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_every_dashboard_metric_exists_on_a_live_worker(status_cluster):
    """Worker 1 of the cluster, after traffic through its cached mount (a forwarded request and a
    cache hit among it), exposes every series the dashboard queries."""
    first = status_cluster.workers[0]
    s3 = first.client()
    for i in range(8):
        s3.put_object(Bucket=SHARED, Key=f"dash/{i}", Body=b"y" * 2000)
        for _ in range(2):
            s3.get_object(Bucket=SHARED, Key=f"dash/{i}")["Body"].read()
    with pytest.raises(ClientError):
        s3.get_object(Bucket=SHARED, Key="dash/missing")
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    wanted = {name for e in exprs for name in re.findall(r"\balcove_s3_[a-z0-9_]+", e)}
    assert len(wanted) >= 15, wanted
    exposed = set()
    for w in status_cluster.workers:  # forwarded requests count on the worker they entered
        exposed |= exposed_series(w.admin)
    missing = sorted(wanted - exposed)
    assert not missing, f"the dashboard queries metrics no worker exposes: {missing}"
    assert {"action", "status"} <= set(re.findall(r"(\w+)=", next(l for l in fetch(f"{first.admin}/metrics")[2].decode().splitlines() if l.startswith("alcove_s3_requests_total"))))
