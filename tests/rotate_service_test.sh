#!/usr/bin/env bash
# The rotate method end to end: POST /v1/merge-models, POST /bbwm/merge-models
# and `mergesvd merge --merge_mode rotate` give the same file; the second merge
# of a pair with other alpha and beta is served from the decomposition cache
# (job report and /metrics say so) and equals a merge without any cache byte
# for byte; a restart keeps the cache; --cache-bytes 0 keeps nothing.  Small
# SD1.5 checkpoints from tests/gen_checkpoint.  Run by `make check`; prints
# "N passed, M failed".
set -u

MERGESVD=${MERGESVD:?MERGESVD must name the mergesvd binary}
BUILD_DIR=${BUILD_DIR:?BUILD_DIR must name the build directory}
TESTS_DIR=${TESTS_DIR:?TESTS_DIR must name the tests source directory}
GEN_CHECKPOINT=$BUILD_DIR/tests/gen_checkpoint
OPENAPI_SOURCE=$TESTS_DIR/../openapi.yaml
SCALE=${MERGESVD_TEST_TIMEOUT_SCALE:-1}
unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS MERGESVD_FAILPOINT_SUBMIT_SLEEP_MS

. "$TESTS_DIR/service_lib.sh"
service_setup rotate_service
request_seconds=120
response_bytes=400

models=$work/models
mkdir -p "$models" "$work/kept"
for seed in 1 2; do
    if ! "$GEN_CHECKPOINT" --size small --dtype f16 --arch sd15 --seed "$seed" \
        --output "$models/sd15_$seed.safetensors" >"$work/gen.log" 2>&1; then
        echo "rotate_service_test: gen_checkpoint failed: $(cat "$work/gen.log")"
        exit 1
    fi
done
cp "$models/sd15_2.safetensors" "$models/renamed_copy.safetensors"

merge() { # BODY: POST /v1/merge-models, waits for the job; sets $job_id
    post_json /v1/merge-models "$1"
    job_id=
    [ "$status" = 202 ] && job_id=$(json .id) && wait_job "$job_id" "succeeded failed cancelled" 120
}
rotate_body() { # ALPHA BETA [MODEL_B]
    printf '{"model_a": "sd15_1.safetensors", "model_b": "%s", "merge_method": "rotate", "base_alpha": %s, "base_beta": %s}' \
        "${3:-sd15_2.safetensors}" "$1" "$2"
}
metric() { curl -s --max-time 10 "$base/metrics" | awk -v name="$1" '$1 == name {print $2}'; }

# The command line without a cache: the reference for every file below.
"$MERGESVD" merge --model_a "$models/sd15_1.safetensors" --model_b "$models/sd15_2.safetensors" \
    --merge_mode rotate --alpha 0.7 --beta 0.1 --output "$work/cli_07.safetensors" >"$work/cli.log" 2>&1
check "mergesvd merge --merge_mode rotate without a cache" test -s "$work/cli_07.safetensors"
"$MERGESVD" merge --model_a "$models/sd15_1.safetensors" --model_b "$models/sd15_2.safetensors" \
    --merge_mode rotate --alpha 0.5 --beta 0.3 --cache_dir "$work/cli-cache" \
    --output "$work/cli_05.safetensors" --json >"$work/cli.json" 2>"$work/cli.err"
check "the command line fills its --cache_dir" jq -e \
    '.report.rotate_cache.misses > 100 and .report.rotate_cache.hits == 0 and .report.rotate_cache.bytes_stored > 0' "$work/cli.json"
"$MERGESVD" merge --model_a "$models/sd15_1.safetensors" --model_b "$models/sd15_2.safetensors" \
    --merge_mode rotate --alpha 0.7 --beta 0.1 --cache_dir "$work/cli-cache" \
    --output "$work/cli_07_cached.safetensors" --json >"$work/cli.json" 2>"$work/cli.err"
check "the command line's second merge hits its cache" jq -e \
    '.report.rotate_cache.hits > 100 and .report.rotate_cache.misses == 0' "$work/cli.json"
check "... and writes the uncached merge's bytes" cmp "$work/cli_07.safetensors" "$work/cli_07_cached.safetensors"
"$MERGESVD" merge --model_a "$models/sd15_1.safetensors" --model_b "$models/sd15_2.safetensors" \
    --merge_mode rotate --cache_bytes 1G --output "$work/x.safetensors" >/dev/null 2>"$work/cli.err"
check "--cache_bytes without --cache_dir is a usage error (exit 2)" test $? = 2

echo "# server (at ${SECONDS} s)"
if start_server main "$work/data" --models "$models" --workers 1; then
    merge "$(rotate_body 0.5 0.3)"
    check "rotate job succeeded, every key a miss" jq -e \
        '.state == "succeeded" and .report.rotate_cache.misses > 100 and .report.rotate_cache.hits == 0 and .report.rotate_cache.bytes_stored > 0' "$body_file"
    keep Job "succeeded rotate job"
    check "rotate progress counts the decompositions' work, to the end" jq -e \
        '.progress.done == .progress.total and .progress.total > .result.bytes and .progress.fraction == 1' "$body_file"
    check "the report says where the time went" jq -e \
        '[.report.rotate_seconds.svd, .report.rotate_seconds.eigen, .report.rotate_seconds.products, .report.rotate_seconds.io] | all(type == "number" and . > 0)' "$body_file"
    check "metrics count the misses" test "$(metric mergesvd_rotate_cache_misses_total)" -gt 100
    check "metrics show the bytes kept" test "$(metric mergesvd_rotate_cache_bytes)" -gt 0
    merge "$(rotate_body 0.7 0.1)"
    check "a second merge of the pair with new alpha and beta: all hits" jq -e \
        '.state == "succeeded" and .report.rotate_cache.hits > 100 and .report.rotate_cache.misses == 0' "$body_file"
    OUT=$work/served_07.safetensors request GET "/v1/jobs/$job_id/result"
    check "the cached merge equals the uncached command line's, byte for byte" cmp "$work/served_07.safetensors" "$work/cli_07.safetensors"
    merge "$(rotate_body 0.7 0.1 renamed_copy.safetensors)"
    check "a renamed copy of model B still hits (content, not names)" jq -e \
        '.report.rotate_cache.hits > 100 and .report.rotate_cache.misses == 0' "$body_file"
    bbwm_rotate=$(jq -cn '{merge_method: "rotate", model_a: "sd15_1.safetensors", model_b: "sd15_2.safetensors",
        model_c: null, base_alpha: 0.7, base_beta: 0.1, alpha: [], beta: [], precision: 16, weights_clip: false,
        re_basin: false, re_basin_iterations: 1, device: "cpu", work_device: null, prune: false, threads: 1,
        destination: "bbwm_rotate.safetensors", unload_before: false, cache: true}')
    post_json /bbwm/merge-models "$bbwm_rotate"
    expect_status "bbwm rotate (with the forks' cache field) -> 200" 200
    check "bbwm rotate wrote the same file" cmp "$models/bbwm_rotate.safetensors" "$work/cli_07.safetensors"
    check "metrics count the hits" test "$(metric mergesvd_rotate_cache_hits_total)" -gt 200
    stop_server TERM
fi
if start_server again "$work/data" --models "$models" --workers 1; then
    merge "$(rotate_body 0.7 0.1)"
    check "after a restart the cache on disk still answers" jq -e \
        '.report.rotate_cache.hits > 100 and .report.rotate_cache.misses == 0' "$body_file"
    check "metrics after a restart show the kept entries" test "$(metric mergesvd_rotate_cache_entries)" -gt 100
    stop_server TERM
fi
if start_server uncached "$work/data-none" --models "$models" --workers 1 --cache-bytes 0; then
    merge "$(rotate_body 0.7 0.1)"
    check "--cache-bytes 0: nothing kept, same answer" jq -e \
        '.state == "succeeded" and .report.rotate_cache.hits == 0 and .report.rotate_cache.misses == 0' "$body_file"
    check "... byte for byte (the job's sha256 is the command line file's)" test \
        "$(json .result.sha256)" = "$(sha256sum <"$work/cli_07.safetensors" | cut -d' ' -f1)"
    check "--cache-bytes 0 writes no cache folder" test ! -e "$work/data-none/rotate-cache"
    stop_server TERM
fi
service_finish
