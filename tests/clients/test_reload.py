"""SIGHUP applies the settings that are safe to change live: `s3.access_log`, the timeouts and
the authorization policies (the TLS certificate is tested in test_tls.py). Other changed keys are
named in the log as waiting for a restart, and a configuration that does not check out changes
nothing.

No test here uses the `bucket` fixtures, so they run once, in the first pass of scripts/test.sh.
"""

from __future__ import annotations

import signal
import socket
import time

import pytest
from botocore.exceptions import ClientError

from alcove_helpers import Worker, wait_until

GRANT = '[[auth.policies]]\nusers = ["alice"]\nactions = [{actions}]\nresources = ["photos"]\n'


def config(access_log: bool, actions: str, extra: str = "") -> str:
    return f"[s3]\naccess_log = {str(access_log).lower()}\n{extra}\n" + GRANT.format(actions=actions)


def reload(worker: Worker, text: str, expect: str):
    seen = worker.log_text().count(expect)
    worker.config_path.write_text(text)
    worker.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: worker.log_text().count(expect) > seen, timeout=10), worker.log_tail()


def test_sighup_applies_the_access_log_and_the_policies(alcove_bin, tmp_path):
    w = Worker(alcove_bin, tmp_path / "w", config=config(False, '"read", "list"')).start()
    try:
        (w.root / "photos").mkdir()
        (w.root / "photos" / "cat.jpg").write_bytes(b"meow")
        alice = w.client(access_key="alice")
        assert alice.get_object(Bucket="photos", Key="cat.jpg")["Body"].read() == b"meow"
        with pytest.raises(ClientError) as denied:
            alice.put_object(Bucket="photos", Key="new.jpg", Body=b"x")
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        assert 'action=GetObject' not in w.log_text(), "successful requests are not logged yet"

        reload(w, config(True, '"read", "write", "list"', 'header_timeout = "2s"\ntagging_restrictions = false'),
               "SIGHUP: reloaded the configuration")
        alice.put_object(Bucket="photos", Key="new.jpg", Body=b"x")
        assert (w.root / "photos" / "new.jpg").read_bytes() == b"x"
        assert wait_until(lambda: 'action=PutObject bucket="photos" key="new.jpg" status=200' in w.log_text())
        log = w.log_text()
        assert "take effect at the next start" in log and "s3.tagging_restrictions" in log, w.log_tail()
        assert "s3.header_timeout" in log.split("take effect")[0].rsplit("applied=", 1)[-1], "applied live"
        # A client that trickles its headers is now cut after 2 s, not the 30 s it started with.
        with socket.create_connection(("127.0.0.1", w.s3_port), timeout=20) as trickle:
            started = time.monotonic()
            trickle.sendall(b"GET /photos/cat.jpg HTTP/1.1\r\nHost: x\r\n")
            trickle.recv(1024)  # returns when the worker answers or closes; blocks up to 20 s else
            took = time.monotonic() - started
        assert took < 10, f"the header timeout of 2 s did not apply: the connection lasted {took:.1f} s"

        # A policy that does not check out: refused, and the grants in force stay.
        reload(w, config(True, '"read", "delete"'), "nothing changed")
        alice.put_object(Bucket="photos", Key="again.jpg", Body=b"y")
        assert w.proc.poll() is None, "the worker keeps running"
    finally:
        w.stop()
