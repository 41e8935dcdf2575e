"""The documentation, checked: its runnable commands run, and its links lead somewhere.

- Every shell block of README.md and docs/*.md marked runnable (a fenced block whose info string
  is `sh runnable`; GitHub still renders it as `sh`) is executed with bash against a real worker.
  A block fails the test when it exits non-zero. How a block is run is written for authors in
  docs/README.md ("Runnable blocks"); in short:
  - one worker per document, started here on free loopback ports, serving the folder
    `alcove-data` of a fresh working directory (the embedded default's `./alcove-data`), with
    `ufs.local_roots` = that working directory;
  - the blocks of one document run in order, each in its own `bash -e -o pipefail`, all in that
    working directory, like a reader going down the page;
  - the default addresses in a block (`127.0.0.1:29998` and `localhost:29998` for S3,
    `127.0.0.1:30000` and `localhost:30000` for the admin port) are rewritten to the worker's
    ports, and a block that still names 29998 or 30000 afterwards fails (it would reach whatever
    listens there);
  - `alcove` on PATH runs ALCOVE_BIN; where a command line names no address, the worker's is
    added, as a reader's default worker needs none: `--admin` for `mount add|list|remove`,
    `status`, `load` and `free`, `--endpoint` for `presign` (without `--config`);
  - the venv's `aws`, AWS_* credentials (any values: simple auth), a HOME of its own.
- A marker that is almost right (`bash runnable`, `runnable` alone, …) fails the test, so a block
  is never skipped by a typo.
- Every relative link of README.md and docs/*.md names a file of the repository, and an anchor
  (`file.md#heading`, `#heading`) names a heading of that file (GitHub's anchor rules).

No test here uses the `bucket` fixtures, so they run once, in the first pass of scripts/test.sh.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from alcove_helpers import Worker, patched_env

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKER = "sh runnable"
BLOCK_TIMEOUT = 120


# --------------------------------------------------------------------------
# reading Markdown
# --------------------------------------------------------------------------

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    info: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def fenced_blocks(doc: Path) -> list[Block]:
    """Every fenced code block of `doc`, with its info string and its text (fence indentation
    removed)."""
    blocks: list[Block] = []
    lines = doc.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent, start = m["fence"], len(m["indent"]), i
        body: list[str] = []
        i += 1
        while i < len(lines):
            close = FENCE.match(lines[i])
            if close and close["fence"][0] == fence[0] and len(close["fence"]) >= len(fence) and not close["info"].strip():
                break
            line = lines[i]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            i += 1
        blocks.append(Block(doc, start + 1, m["info"].strip(), "\n".join(body) + "\n"))
        i += 1
    return blocks


def runnable_blocks(doc: Path) -> list[Block]:
    return [b for b in fenced_blocks(doc) if b.info == MARKER]


def outside_fences(text: str) -> list[str]:
    """The lines of `text`, those of fenced blocks (fences included) blanked."""
    out, in_fence, fence = [], False, ""
    for line in text.splitlines():
        m = FENCE.match(line)
        if m and not in_fence:
            in_fence, fence = True, m["fence"]
            out.append("")
            continue
        if in_fence:
            if m and m["fence"][0] == fence[0] and len(m["fence"]) >= len(fence) and not m["info"].strip():
                in_fence = False
            out.append("")
            continue
        out.append(line)
    return out


def without_code(text: str) -> str:
    """`text` without fenced blocks and inline code spans (their brackets are not links)."""
    return "\n".join(re.sub(r"(`+)(?:(?!\1).)+?\1", "", line) for line in outside_fences(text))


def heading_anchors(doc: Path) -> set[str]:
    """The anchors GitHub gives the headings of `doc`: the text (a code span's and a link's text
    included) lowercased, punctuation other than `-` and `_` dropped, spaces turned into `-`; a
    repeated anchor gets `-1`, `-2`, …"""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in outside_fences(doc.read_text()):
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m[1]).replace("`", "")  # code and link texts stay
        slug = re.sub(r"[^\w\- ]", "", text.lower().strip()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)


def links(doc: Path) -> list[str]:
    text = without_code(doc.read_text())
    return LINK.findall(text) + REFERENCE.findall(text)


# --------------------------------------------------------------------------
# running blocks
# --------------------------------------------------------------------------

WRAPPER = """#!/usr/bin/env bash
# The `alcove` of the documentation's runnable blocks (tests/clients/test_docs.py): the real
# binary, with the test worker's address added where the command line names none.
real={real}
has() {{ local want=$1; shift; for a in "$@"; do case $a in "$want"|"$want"=*) return 0;; esac; done; return 1; }}
case ${{1-}} in
  mount) case ${{2-}} in add|list|remove) has --admin "$@" || set -- "$@" --admin {admin};; esac ;;
  status|load|free) has --admin "$@" || set -- "$@" --admin {admin} ;;
  presign) has --endpoint "$@" || has --config "$@" || set -- "$@" --endpoint {endpoint} ;;
esac
exec "$real" "$@"
"""

DEFAULT_S3 = re.compile(r"\b(?:127\.0\.0\.1|localhost):29998\b")
DEFAULT_ADMIN = re.compile(r"\b(?:127\.0\.0\.1|localhost):30000\b")


def pointed_at(block: Block, worker: Worker) -> str:
    """The block's text with the default addresses replaced by the worker's."""
    text = DEFAULT_S3.sub(f"127.0.0.1:{worker.s3_port}", block.text)
    text = DEFAULT_ADMIN.sub(f"127.0.0.1:{worker.admin_port}", text)
    left = re.findall(r"\b(?:29998|30000)\b", text)
    assert not left, f"{block.where}: the block names port {left[0]} in a form the test cannot point at its worker"
    return text


def block_env(bindir: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALCOVE_")}
    venv_bin = Path(sys.executable).parent
    env.update({
        "PATH": os.pathsep.join([str(bindir), str(venv_bin), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "AWS_PAGER": "",
        "LC_ALL": "C.UTF-8",
    })
    return env


def documents_with_blocks() -> list[Path]:
    return [d for d in DOCUMENTS if runnable_blocks(d)]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("doc", documents_with_blocks(), ids=lambda d: str(d.relative_to(REPO)))
def test_runnable_blocks_run(doc: Path, alcove_bin: str, tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    bindir, home = tmp_path / "bin", tmp_path / "home"
    bindir.mkdir()
    home.mkdir()
    with patched_env({"ALCOVE_UFS_LOCAL_ROOTS": str(work), "ALCOVE_ADMIN_TOKEN": None}):
        worker = Worker(alcove_bin, tmp_path / "worker", root=work / "alcove-data").start()
    try:
        wrapper = bindir / "alcove"
        wrapper.write_text(WRAPPER.format(real=shlex.quote(alcove_bin), admin=worker.admin, endpoint=worker.endpoint))
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        env = block_env(bindir, home)
        for block in runnable_blocks(doc):
            script = pointed_at(block, worker)
            try:
                run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=work, env=env,
                                     capture_output=True, text=True, timeout=BLOCK_TIMEOUT, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired as e:
                pytest.fail(f"{block.where}: the block did not finish within {BLOCK_TIMEOUT} s\n"
                            f"--- block ---\n{script}--- output so far ---\n{e.stdout}\n{e.stderr}", pytrace=False)
            if run.returncode != 0:
                pytest.fail(f"{block.where}: the block exited with status {run.returncode}\n--- block ---\n{script}"
                            f"--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}\n"
                            f"--- worker log (tail) ---\n{worker.log_tail(2000)}", pytrace=False)
    finally:
        worker.stop()


def test_the_documents_have_runnable_blocks():
    """The quick start and the pages a newcomer tries first are runnable, so the test above has
    something to run."""
    for name in ["README.md", "docs/troubleshooting.md", "docs/performance.md", "docs/authentication.md"]:
        doc = REPO / name
        assert doc.is_file(), f"{name} is missing"
        assert runnable_blocks(doc), f"{name} has no block marked `{MARKER}`"
    readme = "".join(b.text for b in runnable_blocks(REPO / "README.md"))
    for command in ["aws --endpoint-url", "alcove mount add", "alcove presign"]:
        assert command in readme, f"the README's runnable blocks do not use `{command}`"


def test_markers_are_exact():
    """A block whose info string mentions `runnable` is marked exactly `sh runnable`."""
    wrong = [f"{b.where}: ```{b.info}" for d in DOCUMENTS for b in fenced_blocks(d)
             if "runnable" in b.info.lower() and b.info != MARKER]
    assert not wrong, f"write the marker as ```{MARKER}:\n" + "\n".join(wrong)


# --------------------------------------------------------------------------
# links
# --------------------------------------------------------------------------


def test_relative_links_resolve():
    broken: list[str] = []
    checked = 0
    for doc in DOCUMENTS:
        for target in links(doc):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # http:, https:, mailto:, …
                continue
            checked += 1
            path_part, _, anchor = target.partition("#")
            where = f"{doc.relative_to(REPO)}: ({target})"
            dest = (doc.parent / path_part).resolve() if path_part else doc
            try:
                rel = dest.relative_to(REPO).as_posix()
            except ValueError:
                broken.append(f"{where} leaves the repository")
                continue
            if not dest.exists():
                broken.append(f"{where}: no file {rel}")
                continue
            if anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest):
                broken.append(f"{where}: {rel} has no heading with the anchor #{anchor}")
    assert checked > 20, f"only {checked} relative links found: is the link pattern still right?"
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_checker_sees_what_github_sees(tmp_path: Path):
    """The anchor and link rules above, on a small page of known answers."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Alcove: the `page` cache!\n## Limits\n## Limits\n### HTTPS (TLS 1.3)\n"
        "[a](other.md#x) [b](#limits-1) [c](https://example.test/#y)\n"
        "`[not](a-link.md)`\n```sh\n[not](a-link-either.md)\n```\n[ref]: ref.md\n"
    )
    assert heading_anchors(page) == {"alcove-the-page-cache", "limits", "limits-1", "https-tls-13"}
    assert sorted(links(page)) == ["#limits-1", "https://example.test/#y", "other.md#x", "ref.md"]
    blocks = fenced_blocks(page)
    assert [(b.line, b.info, b.text) for b in blocks] == [(7, "sh", "[not](a-link-either.md)\n")]
    assert shutil.which("bash"), "bash runs the blocks"
