#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (Debian packages,
# a Python venv with pinned clients), checks format and lints, builds, then runs the unit
# tests, the Rust integration tests (aws-sdk-s3 against real workers) and the client suites
# (boto3, AWS CLI, minio, s3fs, pyarrow, s3torchconnectorclient, s3cmd, rclone), with a short
# smoke run of the benchmark tool in between. The client suites run three times: on buckets
# that are folders of the worker's root, then (ALCOVE_CLIENT_UFS=s3) on buckets that are S3
# mounts of a second Alcove worker, read through the page cache, and once more with a page cache
# far smaller than the data (ALCOVE_CLIENT_CACHE=small); tests/clients/test_remote_ufs.py mounts
# moto, s3s-fs and Alcove remotes (S3), Azurite (azblob://) and gcp-storage-emulator (gs://).
# tests/clients/test_cluster.py (three-worker clusters, directly and behind HAProxy and nginx run
# from deploy/) runs in the first pass only: its tests use none of the `bucket` fixtures, and
# conftest.py skips every such test when ALCOVE_CLIENT_UFS=s3, so the second and third passes
# start no cluster (the file's clusters mount an S3 remote of their own in every pass anyway).
#
# Build output goes outside the clone (CARGO_TARGET_DIR, default /var/tmp/alcove-target) so
# repeated runs are fast.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/alcove-target}"
export ALCOVE_VENV="${ALCOVE_VENV:-/var/tmp/alcove-venv}"
export BENCH_CACHE="${BENCH_CACHE:-/var/tmp/alcove-bench-cache}"
# installed by scripts/install-deps.sh (version kept in step with it)
export S3S_FS_BIN="${S3S_FS_BIN:-$BENCH_CACHE/s3s-fs-0.14.1/bin/s3s-fs}"
export AZURITE_DIR="${AZURITE_DIR:-$BENCH_CACHE/azurite-3.35.0}"
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

step "installing test dependencies"
bash scripts/install-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "building"
cargo build --workspace --locked --bins
export ALCOVE_BIN="$CARGO_TARGET_DIR/debug/alcove"

step "unit and Rust integration tests"
cargo test --workspace --locked

step "benchmark smoke run (bench/smoke.sh: zero errors, verified data; no timings asserted)"
ALCOVE_BENCH_BIN="$CARGO_TARGET_DIR/debug/alcove-bench" bash bench/smoke.sh

step "client suites (tests/clients)"
"$ALCOVE_VENV/bin/python" -m pytest tests/clients -q

step "client suites on S3-mounted buckets, read through the page cache (ALCOVE_CLIENT_UFS=s3)"
ALCOVE_CLIENT_UFS=s3 "$ALCOVE_VENV/bin/python" -m pytest tests/clients -q

step "client suites on S3-mounted buckets with a page cache far smaller than their data (ALCOVE_CLIENT_CACHE=small)"
ALCOVE_CLIENT_UFS=s3 ALCOVE_CLIENT_CACHE=small "$ALCOVE_VENV/bin/python" -m pytest tests/clients -q
