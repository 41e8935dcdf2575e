#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (Debian packages,
# a Python venv with pinned clients), checks format and lints, builds, then runs the unit
# tests, the Rust integration tests (aws-sdk-s3 against real workers) and the client suites
# (boto3, AWS CLI, minio, s3fs, pyarrow, s3torchconnectorclient, s3cmd, rclone), with a short
# smoke run of the benchmark tool in between.
#
# Build output goes outside the clone (CARGO_TARGET_DIR, default /var/tmp/alcove-target) so
# repeated runs are fast.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/alcove-target}"
export ALCOVE_VENV="${ALCOVE_VENV:-/var/tmp/alcove-venv}"
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
