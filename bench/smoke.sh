#!/usr/bin/env bash
# CI smoke run of alcove-bench (takes seconds): starts one Alcove worker on free 127.0.0.1
# ports with a temporary root, runs every workload briefly with tiny objects, and fails
# unless each run reports zero errors and every operation verified. Never asserts timings.
# Needs neither nginx nor s3s-fs.
#
#   ALCOVE_BIN=/path/to/alcove bash bench/smoke.sh
#
# ALCOVE_BIN defaults to $CARGO_TARGET_DIR/debug/alcove (built if missing); the bench binary
# comes from ALCOVE_BENCH_BIN, else `cargo build -p alcove-bench` (debug).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/alcove-target}"
if [[ -z "${ALCOVE_BIN:-}" ]]; then
    ALCOVE_BIN="$CARGO_TARGET_DIR/debug/alcove"
    [[ -x "$ALCOVE_BIN" ]] || cargo build -q -p alcove
fi
if [[ -z "${ALCOVE_BENCH_BIN:-}" ]]; then
    cargo build -q -p alcove-bench
    ALCOVE_BENCH_BIN="$CARGO_TARGET_DIR/debug/alcove-bench"
fi
[[ -x "$ALCOVE_BIN" ]] || { echo "smoke: no alcove binary at $ALCOVE_BIN" >&2; exit 1; }
B="$ALCOVE_BENCH_BIN"

WORK="$(mktemp -d /tmp/alcove-bench-smoke.XXXXXX)"
ALCOVE_PID=""
cleanup() {
    local rc=$?
    if [[ -n "$ALCOVE_PID" ]] && kill -0 "$ALCOVE_PID" 2>/dev/null; then
        kill -TERM "$ALCOVE_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$ALCOVE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ALCOVE_PID" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -f "$WORK/alcove.log" ]]; then
        echo "--- alcove log (last 30 lines) ---" >&2
        tail -n 30 "$WORK/alcove.log" >&2 || true
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT INT TERM

# http_ok PORT PATH: whether GET PATH on 127.0.0.1:PORT answers 200 (bash /dev/tcp: no curl needed).
# shellcheck disable=SC2016  # the inner script expands its own arguments
http_ok() {
    local status
    status="$(timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$1" >&3
        head -n1 <&3' "$1" "$2" 2>/dev/null)" || return 1
    [[ "$status" == *" 200"* ]]
}

read -r S3_PORT ADMIN_PORT PEER_PORT <<<"$("$B" free-ports --objects 3)"
mkdir -p "$WORK/root"
# The worker reads ALCOVE_* overrides from its environment; this run decides by flags.
# shellcheck disable=SC2046
env $(compgen -e | sed -n 's/^ALCOVE_.*/-u &/p') \
    "$ALCOVE_BIN" serve --root "$WORK/root" \
    --s3-addr "127.0.0.1:$S3_PORT" --admin-addr "127.0.0.1:$ADMIN_PORT" --peer-addr "127.0.0.1:$PEER_PORT" \
    >"$WORK/alcove.log" 2>&1 &
ALCOVE_PID=$!
ready=0
for _ in $(seq 200); do
    if http_ok "$ADMIN_PORT" /readyz; then ready=1; break; fi
    kill -0 "$ALCOVE_PID" 2>/dev/null || break
    sleep 0.1
done
[[ $ready == 1 ]] || { echo "smoke: alcove not ready" >&2; exit 1; }
E="http://127.0.0.1:$S3_PORT"

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$2"; }

failures=0
# check NAME JSON: errors 0, warmup errors 0, ops > 0, verified == ops.
check() {
    local name="$1" line="$2" errors verified ops werr
    errors="$(field errors "$line")"; verified="$(field verified "$line")"
    ops="$(field ops "$line")"; werr="$(field warmup_errors "$line")"
    if [[ -z "$line" || "$errors" != 0 || "${werr:-0}" != 0 || -z "$ops" || "$ops" == 0 || "$verified" != "$ops" ]]; then
        echo "FAIL $name: $line" >&2
        failures=$((failures + 1))
    else
        echo "ok   $name: ops=$ops verified=$verified errors=0"
    fi
}

# run NAME ARGS...: one bounded run (count and time), checked.
run() {
    local name="$1" line rc=0
    shift
    line="$("$B" "$@" --endpoint "$E" --duration 1 --timeout 20 2>"$WORK/bench.err")" || rc=$?
    [[ $rc == 0 ]] || { echo "smoke: $name exited $rc" >&2; cat "$WORK/bench.err" >&2; }
    check "$name" "$line"
}

COMMON=(--bucket smoke --concurrency 4 --ops 400)
run put        put   "${COMMON[@]}" --prefix put/   --size 1KiB --objects 16
run get        get   "${COMMON[@]}" --prefix get/   --size 3000 --objects 16
run get-empty  get   "${COMMON[@]}" --prefix empty/ --size 0    --objects 4
run get-large  get   --bucket smoke --concurrency 2 --ops 8 --prefix big/ --size 3MiB --objects 2
run head       head  "${COMMON[@]}" --prefix get/   --size 3000 --objects 16 --no-prepare
run mixed      mixed "${COMMON[@]}" --prefix mix/   --size 2KiB --objects 16 --get-ratio 0.7 --warmup 0.2
run get-unsigned get "${COMMON[@]}" --prefix get/   --size 3000 --objects 16 --no-prepare --unsigned
run get-http   get   "${COMMON[@]}" --prefix get/   --size 3000 --objects 16 --http-get
run head-http  head  "${COMMON[@]}" --prefix get/   --size 3000 --objects 16 --http-get

# LIST: keys written straight into the bucket's folder, as bench/compare does.
mkdir -p "$WORK/root/smokelist"
"$B" fill-dir --dir "$WORK/root/smokelist" --objects 2500 --size 16 >/dev/null
line="$("$B" list --endpoint "$E" --bucket smokelist --objects 2500 --size 16 --ops 2 --concurrency 2 \
    --duration 5 --timeout 20 2>"$WORK/bench.err")" || { echo "smoke: list failed" >&2; cat "$WORK/bench.err" >&2; }
check list "$line"
keys="$(field keys "$line")"
[[ "$keys" == 5000 ]] || { echo "FAIL list: expected 5000 keys over 2 listings, got '$keys'" >&2; failures=$((failures + 1)); }

# Verification is real: a corrupted object must be reported as an error.
printf 'X' | dd of="$WORK/root/smoke/get/k00000003" bs=1 seek=100 conv=notrunc status=none
rc=0
line="$("$B" get --endpoint "$E" --bucket smoke --prefix get/ --size 3000 --objects 16 --no-prepare \
    --ops 32 --concurrency 2 --duration 5 --timeout 20 2>/dev/null)" || rc=$?
errors="$(field errors "$line")"
if [[ $rc == 3 && "$errors" == 2 ]]; then
    echo "ok   corrupted object detected: errors=$errors"
else
    echo "FAIL corrupted object not detected (rc=$rc): $line" >&2
    failures=$((failures + 1))
fi

if [[ $failures -ne 0 ]]; then
    echo "smoke: $failures check(s) failed" >&2
    exit 1
fi
echo "smoke: all alcove-bench runs verified with zero errors"
