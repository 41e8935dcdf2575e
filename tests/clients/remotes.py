"""Remote S3 servers for the S3-mount tests, all on 127.0.0.1 and stopped by pid.

- MotoServer: moto's S3 emulation (`python -m moto.server`, from the test venv); any credentials.
- S3sFs: the `s3s-fs` Rust server over a directory (binary from env S3S_FS_BIN); fixed credentials.
- a second Alcove worker: alcove_helpers.Worker, nothing extra needed.
- TcpProxy: a thread-based TCP forwarder in front of a remote that can be switched to delay
  every chunk of bytes by N seconds (a slow remote) or to refuse connections (a dead one).

Plus `mount_s3` / `unmount`, which run `alcove mount add/remove` with the S3 options.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

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
    import http.client
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", path)
        c.getresponse().read()
        c.close()
        return True
    except Exception:
        return False


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
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
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
# mounting
# --------------------------------------------------------------------------


def mount_options(remote, access_key: str | None = None, secret_key: str | None = None,
                  endpoint: str | None = None, **extra) -> list[str]:
    opts = {
        "endpoint": endpoint or remote.endpoint,
        "region": REGION,
        "access_key_id": access_key if access_key is not None else remote.access_key,
        "secret_access_key": secret_key if secret_key is not None else remote.secret_key,
    }
    opts.update({k: str(v) for k, v in extra.items()})
    out = []
    for k, v in opts.items():
        out += ["--option", f"{k}={v}"]
    return out


def mount_s3(worker: Worker, name: str, remote, remote_bucket: str | None = None, prefix: str = "",
             check: bool = True, **kw):
    """`alcove mount add --path /name --ufs-uri s3://remote_bucket[/prefix] --option ...`."""
    uri = f"s3://{remote_bucket or name}" + (f"/{prefix.strip('/')}" if prefix else "")
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
