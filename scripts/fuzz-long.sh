#!/usr/bin/env bash
# The long fuzz campaign (docs/fuzzing.md): every fuzz target — the property tests in the
# `fuzz` modules of alcove-s3, alcove-ufs, alcove-cluster and alcove-worker — with FUZZ_CASES inputs each
# (default 1 000 000), one target at a time so the machine stays usable, in the `fuzz` build
# profile (optimised, with debug assertions and overflow checks). `cargo test` runs the same
# targets with a few thousand inputs each.
#
# Prints one line per target: inputs, seconds, inputs per second, result; a failing target's
# output (the shrunk input) is kept in $FUZZ_LOG_DIR. A failure is saved by proptest under the
# crate's proptest-regressions/ and replayed first on every later run: commit that file with
# the fix, and add a plain test with the input.
#
#   bash scripts/fuzz-long.sh                     # everything, 1 000 000 inputs each
#   FUZZ_CASES=20000 bash scripts/fuzz-long.sh chunked   # only targets whose name holds "chunked"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CASES="${FUZZ_CASES:-1000000}"
FILTER="${1:-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/alcove-target}"
LOG_DIR="${FUZZ_LOG_DIR:-$CARGO_TARGET_DIR/fuzz-logs}"
mkdir -p "$LOG_DIR"
# Plain regression tests that live beside the targets: nothing to repeat.
SKIP='fuzz_findings_stay_fixed|s3s_refuses_references'

failed=0
printf '%-55s %12s %10s %12s  %s\n' target inputs seconds inputs/s result
for package in alcove-s3 alcove-ufs alcove-cluster alcove-worker; do
    cargo test --profile fuzz --locked -q -p "$package" --lib --no-run 2>/dev/null \
        || cargo test --profile fuzz --locked -p "$package" --lib --no-run
    targets=$(cargo test --profile fuzz --locked -q -p "$package" --lib -- --list 2>/dev/null \
        | sed -n 's/: test$//p' | grep 'fuzz::' | grep -Ev "$SKIP" | grep -e "$FILTER" || true)
    for target in $targets; do
        log="$LOG_DIR/${package}-${target//::/-}.log"
        start=$(date +%s.%N)
        if PROPTEST_CASES="$CASES" cargo test --profile fuzz --locked -q -p "$package" --lib -- \
            --exact "$target" --test-threads=1 >"$log" 2>&1; then
            result=ok
        else
            result="FAILED (see $log)"
            failed=1
        fi
        seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        rate=$(awk -v n="$CASES" -v s="$seconds" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
        printf '%-55s %12s %10s %12s  %s\n' "$package $target" "$CASES" "$seconds" "$rate" "$result"
    done
done
exit "$failed"
