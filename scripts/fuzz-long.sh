#!/usr/bin/env bash
# The long fuzz campaign (docs/fuzzing.md): every fuzz target — the property tests in the
# `fuzz` modules of alcove-s3, alcove-ufs, alcove-cluster and alcove-worker — with FUZZ_CASES
# inputs each (default 1 000 000), one target at a time so the machine stays usable, in the
# `fuzz` build profile (optimised, with debug assertions and overflow checks). `cargo test`
# runs the same targets with a few thousand inputs each.
#
# Prints one line per target: inputs, seconds, inputs per second, result; each target's output
# (a failure's shrunk input) is kept in $FUZZ_LOG_DIR (default: fuzz-logs in the target folder).
# proptest saves a failure under the crate's proptest-regressions/ and replays it first on every
# later run: commit that file with the fix, and add a plain test with the input.
#
#   bash scripts/fuzz-long.sh                            # everything, 1 000 000 inputs each
#   FUZZ_CASES=20000 bash scripts/fuzz-long.sh chunked   # targets whose name holds "chunked"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CASES="${FUZZ_CASES:-1000000}"
FILTER="${1:-}"
LOG_DIR="${FUZZ_LOG_DIR:-${CARGO_TARGET_DIR:-target}/fuzz-logs}"
mkdir -p "$LOG_DIR"
# Plain regression tests that live beside the targets: nothing to repeat.
SKIP='fuzz_findings_stay_fixed|s3s_refuses_references'
PACKAGES=(-p alcove-s3 -p alcove-ufs -p alcove-cluster -p alcove-worker)

# One build of all four test binaries (built together, so their dependencies are built once).
binaries=$(cargo test --profile fuzz --locked "${PACKAGES[@]}" --lib --no-run --message-format=json \
    | grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//')

failed=0
printf '%-60s %10s %9s %10s  %s\n' target inputs seconds inputs/s result
for binary in $binaries; do
    crate=$(basename "$binary" | sed 's/-[0-9a-f]*$//')
    # Tests run from their crate's folder, where proptest finds its regression files.
    dir="crates/${crate//_/-}"
    targets=$(cd "$dir" && "$binary" --list 2>/dev/null | sed -n 's/: test$//p' | grep 'fuzz::' \
        | grep -Ev "$SKIP" | grep -e "$FILTER" || true)
    for target in $targets; do
        log="$LOG_DIR/${crate}-${target//::/-}.log"
        start=$(date +%s.%N)
        if (cd "$dir" && PROPTEST_CASES="$CASES" "$binary" --exact "$target" --test-threads=1) >"$log" 2>&1; then
            result=ok
        else
            result="FAILED (see $log)"
            failed=1
        fi
        end=$(date +%s.%N)
        seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
        rate=$(awk -v n="$CASES" -v a="$start" -v b="$end" 'BEGIN { printf "%d", n / (b - a) }')
        printf '%-60s %10s %9s %10s  %s\n' "$crate $target" "$CASES" "$seconds" "$rate" "$result"
    done
done
exit "$failed"
