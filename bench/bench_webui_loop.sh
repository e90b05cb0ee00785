#!/usr/bin/env bash
# bench_webui_loop: the optimisation loop's iteration as the extension sees it.
# Starts `mergesvd serve` with tests/fake_webui.py as the web UI and
# --webui-keep 1, then sends BENCH_RUNS /bbwm/merge-models requests with
# destination "memory" (a weighted_sum of bench_merge's generated pair): each
# merge is written into the web UI's folder and loaded there, and from the
# second on the previous merge is deleted before the answer.  Prints, per
# request, the seconds until the answer and the tail: the seconds between
# the web UI's last call and the answer (the deletion's share), then the
# medians of requests 2.. and the server's peak RSS.
#
# The fake web UI hashes each file it lists and loads (Python, about 4 s per
# 7 GB), as the real one hashes on load: the answer times include that.
#
# Environment: BENCH_DIR (bench_merge's --work: the models come from there;
# default bench-data/ in the build folder), BENCH_ARCH (sdxl or sd15),
# BENCH_RUNS (default 4).
set -u

MERGESVD=${MERGESVD:-__ABS_TOP_BUILDDIR__/mergesvd}
FAKE_WEBUI=${FAKE_WEBUI:-__ABS_TOP_SRCDIR__/tests/fake_webui.py}
BENCH_DIR=${BENCH_DIR:-__ABS_TOP_BUILDDIR__/bench-data}
ARCH=${BENCH_ARCH:-sdxl}
RUNS=${BENCH_RUNS:-4}

for tool in bc curl jq python3; do
    command -v "$tool" >/dev/null || { echo "bench_webui_loop: needs $tool" >&2; exit 2; }
done
for side in a b; do
    [ -f "$BENCH_DIR/${ARCH}_${side}_fp16.safetensors" ] || {
        echo "bench_webui_loop: no $BENCH_DIR/${ARCH}_${side}_fp16.safetensors:" \
             "run bench/bench_merge --work $BENCH_DIR --arch $ARCH first" >&2
        exit 2
    }
done

work=$(mktemp -d "$BENCH_DIR/webui-loop-XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/models" "$work/checkpoints" "$work/data"
# hard links: the models root refuses symbolic links that lead outside it
for side in a b; do
    ln "$BENCH_DIR/${ARCH}_${side}_fp16.safetensors" "$work/models/" ||
        cp "$BENCH_DIR/${ARCH}_${side}_fp16.safetensors" "$work/models/"
done

python3 "$FAKE_WEBUI" --models "$work/checkpoints" --port-file "$work/fake.port" \
    >"$work/fake.log" 2>&1 &
pids+=("$!")
while [ ! -s "$work/fake.port" ]; do sleep 0.1; done
fake=http://127.0.0.1:$(cat "$work/fake.port")

"$MERGESVD" serve --listen 127.0.0.1:0 --models "$work/models" --data "$work/data" \
    --webui "$fake" --webui-checkpoints "$work/checkpoints" --webui-keep 1 \
    2>"$work/serve.log" &
server=$!
pids+=("$server")
for _ in $(seq 100); do
    grep -q '^listening on ' "$work/serve.log" && break
    sleep 0.1
done
base=$(sed -n 's/^listening on //p' "$work/serve.log" | head -n 1)
[ -n "$base" ] || { echo "bench_webui_loop: the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }

body=$(printf '{"model_a": "%s_a_fp16.safetensors", "model_b": "%s_b_fp16.safetensors", "merge_method": "weighted_sum", "base_alpha": 0.5, "destination": "memory"}' "$ARCH" "$ARCH")
echo "binary $MERGESVD, $ARCH pair from $BENCH_DIR, $RUNS requests, --webui-keep 1"
printf '%-8s %10s %10s\n' request answer_s tail_s
answers=() tails=()
for run in $(seq "$RUNS"); do
    curl -s -X POST "$fake/fake/reset" >/dev/null
    started=$(date +%s.%N)
    status=$(curl -s -o "$work/answer.json" -w '%{http_code}' -X POST "$base/bbwm/merge-models" \
        -H 'Content-Type: application/json' --data-binary "$body")
    ended=$(date +%s.%N)
    [ "$status" = 200 ] || { echo "bench_webui_loop: HTTP $status: $(cat "$work/answer.json")" >&2; exit 1; }
    last_call=$(curl -s "$fake/fake/calls" | jq '[.calls[].finished_at] | max')
    answer=$(echo "$ended - $started" | bc)
    tail=$(echo "$ended - $last_call" | bc)
    printf '%-8s %10.3f %10.3f\n' "$run" "$answer" "$tail"
    if [ "$run" -gt 1 ]; then answers+=("$answer"); tails+=("$tail"); fi
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
if [ "${#answers[@]}" -gt 0 ]; then
    printf 'median of requests 2..%d: answer %.3f s, tail %.3f s\n' "$RUNS" \
        "$(median "${answers[@]}")" "$(median "${tails[@]}")"
fi
echo "server peak RSS: $(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$server/status") MB"
