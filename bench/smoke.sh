#!/usr/bin/env bash
# CI smoke run of alcove-bench (takes seconds): starts one Alcove worker on free 127.0.0.1
# ports with a temporary root, runs every workload briefly with tiny objects, and fails
# unless each run reports zero errors and every operation verified. Then the cache scenario's
# plumbing: a second worker as the remote of an S3 mount, reached through the link shaper, whose
# repeated reads must stay off the link (the page cache). Then the cluster scenario's: the ring
# figures, and keys owned by one worker of a 2-worker cluster read through the other.
# Asserts no timings beyond lower bounds the link must impose (a round trip per request, the
# rate). Needs neither nginx nor s3s-fs, nor root.
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
REMOTE_PID=""
LINK_PID=""
W1_PID=""
W2_PID=""
stop() {
    local pid="$1"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
}
cleanup() {
    local rc=$?
    stop "$ALCOVE_PID"
    stop "$REMOTE_PID"
    stop "$LINK_PID"
    stop "$W1_PID"
    stop "$W2_PID"
    if [[ $rc -ne 0 ]]; then
        for log in alcove remote link w1 w2; do
            [[ -f "$WORK/$log.log" ]] || continue
            echo "--- $log log (last 30 lines) ---" >&2
            tail -n 30 "$WORK/$log.log" >&2 || true
        done
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

read -r S3_PORT ADMIN_PORT PEER_PORT R_PORT R_ADMIN_PORT R_PEER_PORT LINK_PORT LINK_STATS_PORT \
    W1_PORT W1_ADMIN_PORT W1_PEER_PORT W2_PORT W2_ADMIN_PORT W2_PEER_PORT <<<"$("$B" free-ports --objects 14)"
# The worker reads ALCOVE_* overrides from its environment; this run decides by flags.
UNSET_ALCOVE=()
for v in $(compgen -e); do [[ "$v" == ALCOVE_* ]] && UNSET_ALCOVE+=(-u "$v"); done
# start_worker NAME ROOT S3 ADMIN PEER [CONFIG]: a worker in the background, its pid in STARTED_PID.
start_worker() {
    mkdir -p "$2"
    local config=()
    [[ -n "${6:-}" ]] && config=(--config "$6")
    env "${UNSET_ALCOVE[@]}" "$ALCOVE_BIN" serve "${config[@]}" --root "$2" \
        --s3-addr "127.0.0.1:$3" --admin-addr "127.0.0.1:$4" --peer-addr "127.0.0.1:$5" >"$WORK/$1.log" 2>&1 &
    STARTED_PID=$!
    local ready=0
    for _ in $(seq 200); do
        if http_ok "$4" /readyz; then ready=1; break; fi
        kill -0 "$STARTED_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ $ready == 1 ]] || { echo "smoke: $1 not ready" >&2; exit 1; }
}
start_worker alcove "$WORK/root" "$S3_PORT" "$ADMIN_PORT" "$PEER_PORT"
ALCOVE_PID=$STARTED_PID
E="http://127.0.0.1:$S3_PORT"

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$2"; }
# at_least X MIN: whether the number X is present and >= MIN.
at_least() { [[ -n "$1" ]] && awk -v x="$1" -v m="$2" 'BEGIN {exit !(x + 0 >= m + 0)}'; }

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
# The server's CPU time over the measured run is reported when asked for.
line="$("$B" get --endpoint "$E" "${COMMON[@]}" --prefix get/ --size 3000 --objects 16 --no-prepare --duration 1 \
    --timeout 20 --cpu-pid "$ALCOVE_PID" 2>"$WORK/bench.err")" || true
check get-cpu "$line"
if [[ -z "$(field server_cpu_s "$line")" || -z "$(field server_cpu_ms_per_op "$line")" ]]; then
    echo "FAIL get-cpu: no server CPU figures: $line" >&2
    failures=$((failures + 1))
fi
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

# The cache scenario's plumbing: a remote worker behind the link shaper (5 ms each way, 50 MB/s),
# mounted as an S3 bucket of the first worker with `alcove mount add`.
start_worker remote "$WORK/remote-root" "$R_PORT" "$R_ADMIN_PORT" "$R_PEER_PORT"
REMOTE_PID=$STARTED_PID
"$B" shape --listen "127.0.0.1:$LINK_PORT" --upstream "127.0.0.1:$R_PORT" --delay-ms 5 --rate-mb 50 \
    --stats-addr "127.0.0.1:$LINK_STATS_PORT" >"$WORK/link.json" 2>"$WORK/link.log" &
LINK_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$LINK_STATS_PORT") 2>/dev/null && break
    sleep 0.1
done
R="http://127.0.0.1:$R_PORT"
L="http://127.0.0.1:$LINK_PORT"
"$B" get --endpoint "$R" --bucket smokecache --prefix c/ --size 256KiB --objects 8 --prepare-only --concurrency 4 \
    --timeout 20 >/dev/null 2>"$WORK/bench.err" || { echo "smoke: upload to the remote failed" >&2; cat "$WORK/bench.err" >&2; exit 1; }
# Straight through the link: every request pays at least a round trip (10 ms), and 8 MiB take at
# least 8 MiB / 50 MB/s = 0.168 s.
line="$("$B" get --endpoint "$L" --bucket smokecache --prefix c/ --size 256KiB --objects 8 --no-prepare --http-get \
    --ops 32 --concurrency 4 --duration 20 --timeout 20 2>"$WORK/bench.err")" || true
check link-get "$line"
if ! at_least "$(field p50_ms "$line")" 10 || ! at_least "$(field elapsed_s "$line")" 0.16; then
    echo "FAIL link-get: the link imposed neither its delay nor its rate: $line" >&2
    failures=$((failures + 1))
fi
"$ALCOVE_BIN" mount add --admin "http://127.0.0.1:$ADMIN_PORT" --path /cached --ufs-uri s3://smokecache \
    --option "endpoint=$L" --option access_key_id=alcove-bench --option secret_access_key=alcove-bench-secret \
    --option region=us-east-1 >/dev/null || { echo "smoke: mount add failed" >&2; exit 1; }
# link_down: bytes the link has carried from the remote so far.
# shellcheck disable=SC2016  # the inner script expands its own argument
link_down() {
    field down_bytes "$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"; printf "GET / HTTP/1.0\r\n\r\n" >&3
        cat <&3' "$LINK_STATS_PORT" 2>/dev/null || true)"
}
before="$(link_down)"
line="$("$B" get --endpoint "$E" --bucket cached --prefix c/ --size 256KiB --objects 8 --no-prepare --http-get \
    --ops 32 --concurrency 4 --duration 20 --timeout 20 2>"$WORK/bench.err")" || true
check mount-get "$line"
after="$(link_down)"
# 32 reads of 8 objects (2 MiB) through the mount: each object crossed the link at least once, and
# the page cache (remote mounts are cached by default) kept the repeats off it.
if at_least "$before" 0 && at_least "$after" "$((before + 8 * 262144))" && ! at_least "$after" "$((before + 16 * 262144))"; then
    echo "ok   mount: $((after - before)) bytes over the link for 32 reads of 8 objects of 256 KiB"
else
    echo "FAIL mount: expected 2 to 4 MiB over the link for 32 reads of 8 objects of 256 KiB, got ${before:-?} -> ${after:-?}" >&2
    failures=$((failures + 1))
fi

# The cluster scenario's plumbing. The ring's figures: balance and movement within bounds, no key
# moved where it should not (exit status 0).
line="$("$B" ring --workers 3 --objects 30000 2>"$WORK/bench.err")" || { echo "smoke: ring failed" >&2; cat "$WORK/bench.err" >&2; }
if [[ "$(field errors "$line")" == 0 ]] && ! at_least "$(field balance "$line")" 1.05 \
    && at_least "$(field leave_moved_fraction "$line")" 0.3 && ! at_least "$(field leave_moved_fraction "$line")" 0.37; then
    echo "ok   ring: $line"
else
    echo "FAIL ring: $line" >&2
    failures=$((failures + 1))
fi
# Two workers in one cluster over one folder; keys owned by w1, read through w1 and through w2
# (forwarded to w1's peer port), each process's CPU reported.
mkdir -p "$WORK/shared"
"$B" fill-dir --dir "$WORK/shared" --bucket shared --prefix h/ --size 300KiB --objects 6 --owned-by w1 --members w1,w2 >/dev/null
for id in w1 w2; do
    cat >"$WORK/$id.toml" <<EOF
[cluster]
id = "$id"
secret = "smoke-cluster-secret"
membership = "static"
[[cluster.workers]]
id = "w1"
s3 = "http://127.0.0.1:$W1_PORT"
peer = "127.0.0.1:$W1_PEER_PORT"
[[cluster.workers]]
id = "w2"
s3 = "http://127.0.0.1:$W2_PORT"
peer = "127.0.0.1:$W2_PEER_PORT"
[ufs]
local_roots = ["$WORK/shared"]
[[mounts]]
path = "/shared"
ufs = "file://$WORK/shared"
[mounts.options]
cache = "on"
EOF
done
start_worker w1 "$WORK/w1-root" "$W1_PORT" "$W1_ADMIN_PORT" "$W1_PEER_PORT" "$WORK/w1.toml"
W1_PID=$STARTED_PID
start_worker w2 "$WORK/w2-root" "$W2_PORT" "$W2_ADMIN_PORT" "$W2_PEER_PORT" "$WORK/w2.toml"
W2_PID=$STARTED_PID
for port in "$W1_PORT" "$W2_PORT"; do
    line="$("$B" get --endpoint "http://127.0.0.1:$port" --bucket shared --prefix h/ --size 300KiB --objects 6 \
        --owned-by w1 --members w1,w2 --no-prepare --http-get --ops 24 --concurrency 3 --duration 20 --timeout 20 \
        --cpu-pid "$W2_PID" --cpu-pid "$W1_PID" 2>"$WORK/bench.err")" || true
    check "cluster-get-via-$port" "$line"
    if [[ -z "$(field server_cpu_s_1 "$line")" || -z "$(field server_cpu_s_2 "$line")" ]]; then
        echo "FAIL cluster-get-via-$port: no per-process CPU figures: $line" >&2
        failures=$((failures + 1))
    fi
done

if [[ $failures -ne 0 ]]; then
    echo "smoke: $failures check(s) failed" >&2
    exit 1
fi
echo "smoke: all alcove-bench runs verified with zero errors"
