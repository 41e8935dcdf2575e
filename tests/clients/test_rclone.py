"""rclone (Debian package) against an Alcove worker, remote configured from the environment."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from alcove_helpers import ACCESS_KEY, SECRET_KEY, bucket_dir, etag_of, fs_key_rules, tree

RCLONE = shutil.which("rclone")


@pytest.fixture(scope="module", autouse=True)
def _need_rclone():
    if not RCLONE:
        pytest.fail("rclone not found: run scripts/install-deps.sh", pytrace=False)


def rclone_env(w, tmp: Path, access_key=ACCESS_KEY, secret_key=SECRET_KEY, **extra) -> dict:
    conf = tmp / "rclone.conf"
    conf.write_text("")
    env = dict(os.environ)
    env.update({
        "RCLONE_CONFIG": str(conf),
        "RCLONE_CONFIG_ALC_TYPE": "s3",
        "RCLONE_CONFIG_ALC_PROVIDER": "Other",
        "RCLONE_CONFIG_ALC_ENDPOINT": w.endpoint,
        "RCLONE_CONFIG_ALC_FORCE_PATH_STYLE": "true",
        "RCLONE_CONFIG_ALC_ACCESS_KEY_ID": access_key,
        "RCLONE_CONFIG_ALC_SECRET_ACCESS_KEY": secret_key,
        "RCLONE_CONFIG_ALC_REGION": "us-east-1",
        "RCLONE_CONFIG_ALC_ENV_AUTH": "false",
        "RCLONE_RETRIES": "1",
        "RCLONE_LOW_LEVEL_RETRIES": "1",
        "RCLONE_STATS": "0",
        "RCLONE_CONTIMEOUT": "10s",
        "RCLONE_TIMEOUT": "60s",
    })
    env.update({f"RCLONE_CONFIG_ALC_{k.upper()}": v for k, v in extra.items()})
    return env


@pytest.fixture
def env(worker, tmp_path):
    return rclone_env(worker, tmp_path)


def rc(env, *args, check=True, timeout=120) -> subprocess.CompletedProcess:
    r = subprocess.run([RCLONE, *args], capture_output=True, text=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError(f"rclone {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


FILES = {
    "one.txt": b"one",
    "sub/two.txt": b"two" * 50,
    "sub/deeper/three.bin": os.urandom(40_000),
    "sp ace+plus&amp.txt": b"special",
    "\u00fcni/\u65e5\u672c.txt": "unicode".encode(),
    "pct%41.txt": b"percent",
    "empty.txt": b"",
}


def make_src(base: Path, files=FILES) -> Path:
    for rel, data in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
    return base


def read_files(base: Path) -> dict:
    return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}


def test_mkdir_lsd_rmdir(env, worker, s3):
    name = f"rclone-{uuid.uuid4().hex[:10]}"
    rc(env, "mkdir", f"alc:{name}")
    assert (worker.root / name).is_dir()
    s3.head_bucket(Bucket=name)
    lsd = rc(env, "lsd", "alc:").stdout
    assert name in [line.split()[-1] for line in lsd.splitlines()]
    rc(env, "rmdir", f"alc:{name}")
    assert not (worker.root / name).exists()
    r = rc(env, "lsf", f"alc:{name}", check=False)
    assert r.returncode != 0 and "directory not found" in r.stderr, r.stderr


@pytest.mark.parametrize("list_version", ["1", "2"])
def test_copy_ls_cat_check(worker, s3, bucket, tmp_path, list_version):
    env = rclone_env(worker, tmp_path, list_version=list_version)
    src = make_src(tmp_path / "src")
    rc(env, "copy", str(src), f"alc:{bucket}/dir")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(k for k in keys if not k.endswith("/")) == sorted(f"dir/{k}" for k in FILES)
    for rel, data in FILES.items():
        assert s3.head_object(Bucket=bucket, Key=f"dir/{rel}")["ETag"] == etag_of(data)
        assert (bucket_dir(worker, bucket) / "dir" / rel).read_bytes() == data
    lsf = rc(env, "lsf", "-R", f"alc:{bucket}/dir").stdout.splitlines()
    assert sorted(x for x in lsf if not x.endswith("/")) == sorted(FILES)
    assert sorted(x for x in lsf if x.endswith("/")) == ["sub/", "sub/deeper/", "\u00fcni/"]
    ls = rc(env, "ls", f"alc:{bucket}/dir").stdout.splitlines()
    sizes = {line.strip().split(" ", 1)[1]: int(line.split()[0]) for line in ls}
    assert sizes == {k: len(v) for k, v in FILES.items()}
    assert rc(env, "cat", f"alc:{bucket}/dir/sub/two.txt").stdout == "two" * 50
    r = rc(env, "check", str(src), f"alc:{bucket}/dir")
    assert "0 differences found" in r.stderr, r.stderr
    md5 = rc(env, "md5sum", f"alc:{bucket}/dir").stdout.splitlines()
    got = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in md5}
    assert got == {k: hashlib.md5(v).hexdigest() for k, v in FILES.items()}
    # round trip back to local
    dst = tmp_path / "dst"
    rc(env, "copy", f"alc:{bucket}/dir", str(dst))
    assert read_files(dst) == FILES


def test_sync_delete(env, s3, bucket, tmp_path, worker):
    src = make_src(tmp_path / "src")
    rc(env, "sync", str(src), f"alc:{bucket}/s")
    (src / "sub" / "deeper" / "three.bin").unlink()
    (src / "sub" / "deeper").rmdir()
    (src / "one.txt").write_bytes(b"one changed")
    (src / "added.txt").write_bytes(b"new file")
    rc(env, "sync", str(src), f"alc:{bucket}/s")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "s/sub/deeper/three.bin" not in keys and "s/sub/deeper/" not in keys
    assert s3.get_object(Bucket=bucket, Key="s/one.txt")["Body"].read() == b"one changed"
    assert s3.get_object(Bucket=bucket, Key="s/added.txt")["Body"].read() == b"new file"
    r = rc(env, "check", str(src), f"alc:{bucket}/s")
    assert "0 differences found" in r.stderr
    rc(env, "delete", "--include", "*.txt", f"alc:{bucket}/s/sub")
    assert rc(env, "lsf", "-R", "--files-only", f"alc:{bucket}/s/sub").stdout == ""
    rc(env, "deletefile", f"alc:{bucket}/s/added.txt")
    assert "s/added.txt" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    rc(env, "purge", f"alc:{bucket}/s")
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert tree(bucket_dir(worker, bucket)) == {}


def test_errors(env, bucket, tmp_path):
    # for rclone a missing object is an empty "directory": nothing to transfer (exit 9)
    r = rc(env, "cat", "--error-on-no-transfer", f"alc:{bucket}/missing.txt", check=False)
    assert r.returncode == 9 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    r = rc(env, "copyto", "--error-on-no-transfer", f"alc:{bucket}/missing.txt", str(tmp_path / "m"), check=False)
    assert r.returncode == 9 and not (tmp_path / "m").exists()
    r = rc(env, "lsf", f"alc:nob-{uuid.uuid4().hex[:8]}", check=False)
    assert r.returncode != 0 and "directory not found" in r.stderr, r.stderr
    f = tmp_path / "f"
    f.write_bytes(b"x")
    # rclone HEADs the target first: the 400 comes without a body, so only the status shows
    # a 256-byte component is refused by the file system only
    for key in ("k" * 256, "x/.alcove.sys/y") if fs_key_rules(bucket) else ("x/.alcove.sys/y",):
        r = rc(env, "copyto", str(f), f"alc:{bucket}/{key}", check=False)
        assert r.returncode != 0 and "status code: 400" in r.stderr, r.stderr
    assert rc(env, "lsf", "-R", f"alc:{bucket}").stdout == ""


def test_sigv4(sigv4_worker, tmp_path):
    good = rclone_env(sigv4_worker, tmp_path)
    name = f"rclonesig-{uuid.uuid4().hex[:8]}"
    rc(good, "mkdir", f"alc:{name}")
    src = make_src(tmp_path / "src")
    rc(good, "copy", str(src), f"alc:{name}/d")
    assert "0 differences found" in rc(good, "check", str(src), f"alc:{name}/d").stderr
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = rclone_env(sigv4_worker, bad_dir, secret_key="wrong-secret")
    r = rc(bad, "lsf", f"alc:{name}/d", check=False)
    assert r.returncode != 0 and "SignatureDoesNotMatch" in r.stderr, r.stderr
    r = rc(bad, "copyto", str(src / "one.txt"), f"alc:{name}/evil", check=False)
    # rclone HEADs the target first; a 403 HEAD has no body, so only the status shows
    assert r.returncode != 0 and "status code: 403" in r.stderr, r.stderr
    assert "evil" not in rc(good, "lsf", f"alc:{name}").stdout
