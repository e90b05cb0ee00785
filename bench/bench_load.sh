#!/usr/bin/env bash
# bench_load: how much polling load the service takes while it works, and how
# much that load slows the work.  Starts the real `mergesvd serve` on a free
# loopback port with a full-size generated LoRA, then
#   1. runs a resize job alone, RUNS times (job duration without load);
#   2. runs it again RUNS times while wrk hammers GET /v1/jobs/{id}
#      (`wrk -t2 -c32 --latency`): requests/s, p99 latency, job duration.
# Prints medians (and ranges), the slowdown and the fsync-copy floor of the
# output.  Targets (reported, not asserted): >= 5000 req/s, p99 < 5 ms,
# job slowed < 20 %.
#
# Environment: BENCH_DIR (inputs, kept between runs; default /tmp/mergesvd-bench),
# BENCH_RUNS (default 3), BENCH_ARCH (sd15), BENCH_RANK (128),
# BENCH_BODY (the resize request, default sv_fro 0.9 capped at 64).
set -u

MERGESVD=${MERGESVD:-__ABS_TOP_BUILDDIR__/mergesvd}
GEN_LORA=${GEN_LORA:-__ABS_TOP_BUILDDIR__/tests/gen_lora}
BENCH_DIR=${BENCH_DIR:-/tmp/mergesvd-bench}
RUNS=${BENCH_RUNS:-3}
ARCH=${BENCH_ARCH:-sd15}
RANK=${BENCH_RANK:-128}
# The same input bench_resize generates, so the two share it.
MODEL=${ARCH}_rank${RANK}_fp16.safetensors
BODY=${BENCH_BODY:-"{\"model\": \"$MODEL\", \"new_rank\": 64, \"dynamic_method\": \"sv_fro\", \"dynamic_param\": 0.9, \"output_name\": \"load.safetensors\"}"}
JOB_TIMEOUT=${BENCH_JOB_TIMEOUT:-600}
# The job must run at full speed.
unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS

die() { echo "bench_load: $*" >&2; exit 1; }
for tool in curl jq wrk; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install -y $tool)"
done
[ -x "$MERGESVD" ] || die "$MERGESVD is missing (make mergesvd)"

work=$(mktemp -d "${TMPDIR:-/tmp}/mergesvd-bench-load.XXXXXX") || exit 1
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- inputs: generated once, full size, real key names and shapes
models=$BENCH_DIR
mkdir -p "$models"
if [ ! -f "$models/$MODEL" ]; then
    [ -x "$GEN_LORA" ] || die "$GEN_LORA is missing (make tests/gen_lora)"
    echo "generating $models/$MODEL"
    timeout 600 "$GEN_LORA" --arch "$ARCH" --rank "$RANK" --size full --dtype fp16 \
        --output "$models/$MODEL" >/dev/null || die "gen_lora failed"
fi
echo "input: $models/$MODEL ($(stat -c %s "$models/$MODEL") bytes)"

# ---- server: loopback only, state in a temp folder
mkdir -p "$work/data"
"$MERGESVD" serve --listen 127.0.0.1:0 --models "$models" --data "$work/data" --workers 1 \
    >"$work/server.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 1 400); do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$work/server.log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
done
[ -n "$port" ] || die "server did not start: $(tail -n 5 "$work/server.log")"
base=http://127.0.0.1:$port

# ---- helpers
seconds_of() { date -u -d "$1" +%s.%N; }
submit() {
    curl -s --max-time 60 -H 'Content-Type: application/json' --data-binary "$BODY" \
        "$base/v1/resize-lora" | jq -r '.id // empty'
}
# wait_done ID: prints the job's run time (finished_at - started_at, seconds).
wait_done() {
    local id=$1 deadline=$((SECONDS + JOB_TIMEOUT)) job state
    while [ $SECONDS -lt $deadline ]; do
        job=$(curl -s --max-time 10 "$base/v1/jobs/$id")
        state=$(jq -r .state <<<"$job")
        case $state in
        succeeded)
            awk -v f="$(seconds_of "$(jq -r .finished_at <<<"$job")")" \
                -v s="$(seconds_of "$(jq -r .started_at <<<"$job")")" 'BEGIN { printf "%.3f\n", f - s }'
            return 0 ;;
        failed | cancelled)
            echo "bench_load: job $id $state: $(jq -c .error <<<"$job")" >&2
            return 1 ;;
        esac
        sleep 0.2
    done
    echo "bench_load: job $id not done after $JOB_TIMEOUT s" >&2
    return 1
}
output_bytes() { curl -s --max-time 10 "$base/v1/jobs/$1" | jq -r .result.bytes; }
remove_job() { curl -s --max-time 30 -X DELETE -o /dev/null "$base/v1/jobs/$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s..%s", lo, hi }'; }
# p99 of a `wrk --latency` report, in milliseconds.
wrk_p99_ms() {
    awk '$1 == "99%" {
        v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
        if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000; else if (unit == "m") v *= 60000
        print v }' "$1"
}
wrk_rps() { awk '$1 == "Requests/sec:" { print $2 }' "$1"; }

# ---- 1. the job alone
: >"$work/alone"
bytes=
for run in $(seq 1 "$RUNS"); do
    id=$(submit)
    [ -n "$id" ] || die "submit failed: $(tail -n 3 "$work/server.log")"
    duration=$(wait_done "$id") || exit 1
    bytes=$(output_bytes "$id")
    remove_job "$id"
    echo "$duration" >>"$work/alone"
    printf 'alone   run %d: job %.3f s\n' "$run" "$duration"
done
alone=$(median <"$work/alone")

# ---- 2. the job under polling load; wrk covers the whole job
load_seconds=$(awk -v a="$alone" 'BEGIN { d = int(a * 1.5) + 2; if (d < 5) d = 5; print d }')
: >"$work/loaded"
: >"$work/rps"
: >"$work/p99"
for run in $(seq 1 "$RUNS"); do
    id=$(submit)
    [ -n "$id" ] || die "submit failed"
    timeout $((load_seconds + 30)) wrk -t2 -c32 -d"${load_seconds}s" --latency \
        "$base/v1/jobs/$id" >"$work/wrk.$run" 2>&1 &
    wrk_pid=$!
    duration=$(wait_done "$id") || { kill "$wrk_pid" 2>/dev/null; exit 1; }
    wait "$wrk_pid" || die "wrk failed: $(cat "$work/wrk.$run")"
    remove_job "$id"
    rps=$(wrk_rps "$work/wrk.$run")
    p99=$(wrk_p99_ms "$work/wrk.$run")
    errors=$(awk '/Non-2xx|Socket errors/ { $1 = $1; print }' "$work/wrk.$run" | paste -sd';' -)
    echo "$duration" >>"$work/loaded"
    echo "$rps" >>"$work/rps"
    echo "$p99" >>"$work/p99"
    printf 'loaded  run %d: job %.3f s, %s req/s, p99 %s ms%s\n' "$run" "$duration" "$rps" "$p99" \
        "${errors:+ ($errors)}"
done
loaded=$(median <"$work/loaded")
rps=$(median <"$work/rps")
p99=$(median <"$work/p99")
slowdown=$(awk -v a="$alone" -v l="$loaded" 'BEGIN { printf "%.1f", (l / a - 1) * 100 }')

# ---- floor: copying a file of the output's size with fsync
floor=nan
if [ -n "$bytes" ] && [ "$bytes" != null ]; then
    head -c "$bytes" "$models/$MODEL" >"$work/floor.in" 2>/dev/null
    [ "$(stat -c %s "$work/floor.in")" -lt "$bytes" ] && head -c "$bytes" /dev/urandom >"$work/floor.in"
    start=$(date +%s.%N)
    dd if="$work/floor.in" of="$work/floor.out" bs=16M conv=fsync status=none
    floor=$(awk -v e="$(date +%s.%N)" -v s="$start" 'BEGIN { printf "%.3f", e - s }')
fi
rss_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null)

verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v < t; print ok ? "met" : "NOT met" }'; }
echo
echo "== bench_load ($RUNS runs each, medians; $(nproc) cores; wrk -t2 -c32 -d${load_seconds}s)"
printf 'GET /v1/jobs/{id} under a running job: %s req/s (%s)   target >= 5000: %s\n' \
    "$rps" "$(range <"$work/rps")" "$(verdict "$rps" 5000 '>=')"
printf 'p99 latency: %s ms (%s)   target < 5 ms: %s\n' "$p99" "$(range <"$work/p99")" "$(verdict "$p99" 5 '<')"
printf 'job alone: %.3f s (%s)   job under load: %.3f s (%s)\n' "$alone" "$(range <"$work/alone")" \
    "$loaded" "$(range <"$work/loaded")"
printf 'slowdown: %s %%   target < 20 %%: %s\n' "$slowdown" "$(verdict "$slowdown" 20 '<')"
printf 'floor (dd of the %s-byte output with fsync): %.3f s\n' "${bytes:-?}" "$floor"
printf 'server peak RSS: %s MB\n' "$(awk -v k="${rss_kb:-0}" 'BEGIN { printf "%.1f", k / 1024 }')"

kill -TERM "$server_pid" 2>/dev/null
for _ in $(seq 1 200); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.05; done
wait "$server_pid" 2>/dev/null
server_pid=
