"""What a new user meets in the first ten minutes, from a fresh clone.

- The README says how to get the `alcove` command before it first uses it.
- `mount add` over a folder of the local root refuses (the folder's objects would be hidden) and
  says how to proceed; `--force` mounts anyway.
- `mount list` with no mounts says so.
- An S3 client pointed at the admin port gets an S3 error that names the S3 port.
- `InvalidBucketName` says what is wrong with the name.
- The ready line prints plain addresses, and requests without credentials are logged as the user
  the worker runs as, whatever `$USER` says.

No test here uses the `bucket` fixtures, so they run once, in the first pass of scripts/test.sh.
"""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from alcove_helpers import Worker, make_client, patched_env, raw_http, wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(alcove_bin, tmp_path):
    w = Worker(alcove_bin, tmp_path / "w", config="[s3]\naccess_log = true\n").start()
    yield w
    w.stop()


def test_the_readme_installs_the_command_before_using_it():
    readme = (REPO / "README.md").read_text()
    first_use = re.search(r"^alcove (mount|load|free|status|presign) ", readme, re.M)
    install = readme.find("cargo install --path crates/alcove")
    assert first_use and 0 <= install < first_use.start(), "the install step must come before the first `alcove` command"
    head = readme[:first_use.start()]
    assert "half an hour" in head and "GB" in head, "the README says up front what the build and tests cost"


def test_mount_over_a_folder_of_the_root_is_refused_unless_forced(worker, tmp_path):
    (worker.root / "photos").mkdir()
    (worker.root / "photos" / "cat.jpg").write_bytes(b"meow")
    target = tmp_path / "elsewhere"
    target.mkdir()
    refused = worker.alcove("mount", "add", "--admin", worker.admin, "--path", "/photos",
                            "--ufs-uri", target.as_uri(), check=False)
    assert refused.returncode != 0
    assert "already has a folder" in refused.stderr and "--force" in refused.stderr, refused.stderr
    s3 = worker.client()
    assert s3.get_object(Bucket="photos", Key="cat.jpg")["Body"].read() == b"meow", "nothing changed"
    empty = worker.alcove("mount", "list", "--admin", worker.admin)
    assert "no mounts" in empty.stderr and empty.stdout == "", "said on stderr; the list itself stays empty"

    worker.alcove("mount", "add", "--admin", worker.admin, "--path", "/photos", "--ufs-uri", target.as_uri(), "--force")
    with pytest.raises(ClientError) as hidden:
        s3.get_object(Bucket="photos", Key="cat.jpg")
    assert hidden.value.response["Error"]["Code"] == "NoSuchKey"
    assert "/photos" in worker.alcove("mount", "list", "--admin", worker.admin).stdout
    assert "mounted over a folder of the local root" in worker.log_text()
    worker.alcove("mount", "remove", "--admin", worker.admin, "--path", "/photos")
    assert s3.get_object(Bucket="photos", Key="cat.jpg")["Body"].read() == b"meow"


def test_an_s3_client_at_the_admin_port_is_told_where_to_go(worker):
    wrong = make_client(worker.admin)
    with pytest.raises(ClientError) as e:
        wrong.list_buckets()
    error = e.value.response["Error"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "InvalidRequest"
    assert f"S3 port, {worker.endpoint}" in error["Message"], error
    with pytest.raises(ClientError) as e:
        wrong.put_object(Bucket="photos", Key="k", Body=b"x")
    assert e.value.response["Error"]["Code"] == "InvalidRequest"
    # The admin port's own endpoints are unchanged.
    assert wait_until(lambda: b"ready" in raw_http(worker.admin_port, "GET", "/readyz", {}).body)


@pytest.mark.parametrize("name, why", [
    ("ab", "3 to 63 characters"),
    ("Bad_Name", "only lowercase letters"),
    ("-bucket", "start and end with a letter or digit"),
])
def test_invalid_bucket_names_say_why(worker, name, why):
    with pytest.raises(ClientError) as e:
        worker.client().create_bucket(Bucket=name)
    error = e.value.response["Error"]
    assert error["Code"] == "InvalidBucketName"
    assert why in error["Message"] and name in error["Message"], error


def test_ready_line_and_anonymous_user(alcove_bin, tmp_path):
    with patched_env({"USER": None}):
        w = Worker(alcove_bin, tmp_path / "w", config="[s3]\naccess_log = true\n").start()
    try:
        ready = next(line for line in w.log_text().splitlines() if "worker ready" in line)
        assert f"s3=127.0.0.1:{w.s3_port}" in ready and "Some(" not in ready, ready
        (w.root / "open").mkdir()
        assert raw_http(w.s3_port, "GET", "/open?list-type=2", {}).status == 200
        me = pwd.getpwuid(os.getuid()).pw_name
        assert wait_until(lambda: f'user="{me}"' in w.log_text()), w.log_tail()
    finally:
        w.stop()
