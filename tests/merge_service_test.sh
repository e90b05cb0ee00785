#!/usr/bin/env bash
# End-to-end tests of merge jobs in `mergesvd serve`: POST /v1/merge-models
# (queued, polled, downloaded) and POST /bbwm/merge-models (the web UI
# extension's body, answered when the file is written), on small SD1.5 and
# SDXL checkpoints from tests/gen_checkpoint.  The real binary on a free
# loopback port, driven with curl and jq, bodies checked against
# ../openapi.yaml.  Run by `make check` with MERGESVD, BUILD_DIR and
# TESTS_DIR set (tests/local.mk); prints "N passed, M failed".
#
# The read-only models root and the full disks need mount(8) (root, or a
# container allowing it); without it those checks are skipped with a note.
set -u

MERGESVD=${MERGESVD:?MERGESVD must name the mergesvd binary}
BUILD_DIR=${BUILD_DIR:?BUILD_DIR must name the build directory}
TESTS_DIR=${TESTS_DIR:?TESTS_DIR must name the tests source directory}
GEN_CHECKPOINT=$BUILD_DIR/tests/gen_checkpoint
OPENAPI_SOURCE=$TESTS_DIR/../openapi.yaml
SCALE=${MERGESVD_TEST_TIMEOUT_SCALE:-1}
# Per-progress sleep (one report per tensor) that keeps a merge running.
SLOW_MS=200
unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS MERGESVD_FAILPOINT_SUBMIT_SLEEP_MS

. "$TESTS_DIR/service_lib.sh"
service_setup merge_service
request_seconds=60
response_bytes=400

skipped=0
skip() { skipped=$((skipped + 1)); echo "skip - $1${2:+: $2}"; }

job_id=
merge() { # BODY [curl options...]: POST /v1/merge-models, sets $job_id on 202
    post_json /v1/merge-models "$@"
    job_id=
    [ "$status" = 202 ] && job_id=$(json .id)
}
bbwm() { # BODY [curl options...]: POST /bbwm/merge-models (answers when the merge ends)
    post_json /bbwm/merge-models "$@"
}
# newest_merge: the id of the newest merge job (a /bbwm request's job).
newest_merge() {
    curl -s --max-time 10 "$base/v1/jobs?limit=500" | jq -r '[.jobs[] | select(.kind == "merge")][0].id // empty'
}
# A safetensors file: 8-byte little-endian header length, then a JSON object.
is_safetensors() {
    local file=$1 length
    length=$(od -An -t u8 -N 8 "$file" 2>/dev/null | tr -d ' ')
    [ -n "$length" ] && [ "$length" -gt 1 ] &&
        tail -c +9 "$file" | head -c "$length" | jq -e 'type == "object" and length > 0' >/dev/null 2>&1
}
# no_temporaries DIR: nothing hidden (the writers' temporaries) is left in DIR.
no_temporaries() { [ -z "$(find "$1" -maxdepth 1 -name '.*' ! -name . -print -quit)" ]; }

# ---------------------------------------------------------------- inputs

if [ ! -x "$GEN_CHECKPOINT" ]; then
    echo "merge_service_test: $GEN_CHECKPOINT is missing (make tests/gen_checkpoint)"
    exit 1
fi
models=$work/models
outside=$work/outside
mkdir -p "$work/kept" "$models/sub" "$models/amb1" "$models/amb2" "$outside" "$work/data-main" "$work/data-slow"
generate() { # FILE ARGS...
    local file=$1; shift
    if ! "$GEN_CHECKPOINT" --size small --dtype f16 "$@" --output "$file" >"$work/gen.log" 2>&1; then
        echo "merge_service_test: gen_checkpoint failed: $(cat "$work/gen.log")"
        exit 1
    fi
}
generate "$models/sd15_a.safetensors" --arch sd15 --seed 1
generate "$models/sd15_b.safetensors" --arch sd15 --seed 2
generate "$models/sub/sd15_c.safetensors" --arch sd15 --seed 3
generate "$models/sdxl_x.safetensors" --arch sdxl --seed 4
generate "$models/sd15_inpaint.safetensors" --arch sd15 --seed 5 --inpainting
generate "$outside/sd15_secret.safetensors" --arch sd15 --seed 6
cp "$models/sd15_b.safetensors" "$models/amb1/twin.safetensors"
cp "$models/sd15_b.safetensors" "$models/amb2/twin.safetensors"

# Extra roots that need mount(8): read-only, and a file system too small.
readonly_root=$work/readonly
tiny_root=$work/tiny
mkdir -p "$work/readonly_src" "$readonly_root" "$tiny_root" "$work/data-full/results"
cp "$models/sd15_a.safetensors" "$work/readonly_src/ro_a.safetensors"
have_readonly=false
if mount --bind "$work/readonly_src" "$readonly_root" 2>/dev/null; then
    mounts+=("$readonly_root")
    mount -o remount,bind,ro "$readonly_root" 2>/dev/null && have_readonly=true
fi
have_tiny=false
if mount -t tmpfs -o size=256k tmpfs "$tiny_root" 2>/dev/null; then
    mounts+=("$tiny_root")
    have_tiny=true
fi
have_tiny_results=false
if mount -t tmpfs -o size=256k tmpfs "$work/data-full/results" 2>/dev/null; then
    mounts+=("$work/data-full/results")
    have_tiny_results=true
fi
roots=(--models "$models")
$have_readonly && roots+=(--models "$readonly_root")
$have_tiny && roots+=(--models "$tiny_root")

# ================================================================ main server
echo "# main server (at ${SECONDS} s)"
if start_server main "$work/data-main" --workers 1 "${roots[@]}"; then

# --- a /v1 merge, end to end
merge '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum", "base_alpha": 0.3}'
expect_status "POST /v1/merge-models accepted" 202
keep Job "new merge job"
check "202 carries Location /v1/jobs/{id}" test "$(header Location)" = "/v1/jobs/$job_id"
check "merge job params normalised, default output name" jq -e \
    '.kind == "merge" and .params.merge_method == "weighted_sum" and .params.base_alpha == 0.3 and .params.base_beta == 0.5 and .params.precision == 16 and .params.nan_policy == "fail" and .params.model_c == null and .params.output_name == "sd15_a_sd15_b_weighted_sum.safetensors"' "$body_file"
merge_id=$job_id
if wait_job "$merge_id" "succeeded failed cancelled" 60; then
    check "merge job succeeded" jq -e '.state == "succeeded" and .error == null' "$body_file"
    keep Job "succeeded merge job"
    check "merge progress counts bytes to the end" jq -e \
        '.progress.fraction == 1 and .progress.done == .progress.total and .progress.total > 100000 and (.progress.current_key|type == "string")' "$body_file"
    check "merge result object" jq -e --arg id "$merge_id" \
        '.result.url == "/v1/jobs/\($id)/result" and .result.file == "sd15_a_sd15_b_weighted_sum.safetensors" and (.result.sha256|test("^[0-9a-f]{64}$")) and .result.bytes > 0' "$body_file"
    check "merge report: architecture, keys, blocks" jq -e \
        '.report.architecture == "sd1" and .report.keys.merged > 1000 and .report.nan_keys == [] and .report.blocks[0].block == "base" and .report.blocks[0].alpha == 0.3 and (.report.seconds|type == "number")' "$body_file"
    merge_sha=$(json .result.sha256)
    merge_bytes=$(json .result.bytes)
    check "merge file under data/results/{id}/" test -f "$work/data-main/results/$merge_id/sd15_a_sd15_b_weighted_sum.safetensors"
    OUT=$work/merged.safetensors request GET "/v1/jobs/$merge_id/result"
    expect_status "GET merge result" 200
    check "merge result sha256 matches the job" test "$(sha256sum <"$work/merged.safetensors" | cut -d' ' -f1)" = "$merge_sha"
    check "merge result Content-Length" test "$(header Content-Length)" = "$merge_bytes"
    check "merge result ETag is the quoted sha256" test "$(header ETag)" = "\"$merge_sha\""
    check "merge result is a safetensors file" is_safetensors "$work/merged.safetensors"
    request GET "/v1/jobs/$merge_id/result" -H 'Range: bytes=8-107'
    expect_status "merge result Range -> 206" 206
    check "merge 206 Content-Range" test "$(header Content-Range)" = "bytes 8-107/$merge_bytes"
    check "merge 206 body is those 100 bytes" cmp "$body_file" <(tail -c +9 "$work/merged.safetensors" | head -c 100)
    request GET "/v1/jobs/$merge_id/result" -H "If-None-Match: \"$merge_sha\""
    expect_status "merge result If-None-Match -> 304" 304
else
    fail "merge job finishes" "$(last_response)"
fi

# --- idempotency
body='{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum", "base_alpha": 0.7, "output_name": "idem.safetensors"}'
merge "$body" -H 'Idempotency-Key: merge-1'
expect_status "merge with Idempotency-Key" 202
idem_id=$job_id
merge "$body" -H 'Idempotency-Key: merge-1'
check "same key, same body -> the same merge job" test -n "$idem_id" -a "$job_id" = "$idem_id"
check "the replay says Idempotent-Replayed" test "$(header Idempotent-Replayed)" = true
merge "${body/0.7/0.6}" -H 'Idempotency-Key: merge-1'
expect_error "same key, other body -> 409" 409 idempotency_conflict
wait_job "$idem_id" "succeeded failed cancelled" 60 >/dev/null
check "idempotent merge succeeded under its output_name" jq -e '.state == "succeeded" and .result.file == "idem.safetensors"' "$body_file"

# --- three models, a model in a folder, named blocks, the alias path
post_json /merge-models '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "model_c": "sub/sd15_c.safetensors", "merge_method": "add_difference", "alpha": {"IN00": 0.2, "OUT11": 0.9}, "precision": 32}'
expect_status "POST /merge-models (alias) with model_c accepted" 202
three_id=$(json .id)
if wait_job "$three_id" "succeeded failed cancelled" 60; then
    check "add_difference succeeded" jq -e '.state == "succeeded" and .params.model_c == "sub/sd15_c.safetensors" and .params.alpha.IN00 == 0.2 and .params.precision == 32' "$body_file"
    check "named blocks in the report" jq -e '[.report.blocks[].block] | index("IN00") != null and index("OUT11") != null' "$body_file"
    keep Job "three-model merge job"
fi
# An inpainting model B: shapes differ in dim 1, B's larger one is taken.
merge '{"model_a": "sd15_a.safetensors", "model_b": "sd15_inpaint.safetensors", "merge_method": "weighted_sum"}'
expect_status "merge with an inpainting model accepted" 202
if wait_job "$job_id" "succeeded failed cancelled" 60; then
    check "inpainting merge succeeded, one key taken from B" jq -e '.state == "succeeded" and .report.keys.taken_from_b >= 1' "$body_file"
fi

# --- refused before a job exists
merge '{"model_a": "missing.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum"}'
expect_error "missing model -> 404" 404 model_not_found '.error.details.field == "model_a"'
merge '{"model_a": "sd15_a.safetensors", "model_b": "../outside/sd15_secret.safetensors", "merge_method": "weighted_sum"}'
expect_error "model outside the roots -> 422" 422 path_outside_models
merge '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "average"}'
expect_error "unknown method -> 422" 422 invalid_parameter '.error.details.field == "merge_method"'
merge "{\"model_a\": \"sd15_a.safetensors\", \"model_b\": \"sd15_b.safetensors\", \"merge_method\": \"weighted_sum\", \"alpha\": [$(seq -s, 1 24 | sed 's/[0-9]*/0.5/g')]}"
expect_error "24 alphas -> 422 naming field, length and accepted lengths" 422 invalid_parameter \
    '.error.details.field == "alpha" and .error.details.length == 24 and (.error.details.accepted | tostring | test("25"))'
merge "{\"model_a\": \"sd15_a.safetensors\", \"model_b\": \"sd15_b.safetensors\", \"merge_method\": \"weighted_sum\", \"beta\": [$(seq -s, 1 19 | sed 's/[0-9]*/0.5/g')]}"
expect_error "19 betas on an SD1.5 model A -> 422" 422 invalid_parameter \
    '.error.details.field == "beta" and .error.details.length == 19'
merge '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "add_difference"}'
expect_error "add_difference without model_c -> 422" 422 invalid_parameter '.error.details.field == "model_c"'
merge '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum", "output_name": "../x.safetensors"}'
expect_error "bad output_name -> 422" 422 invalid_output_name
merge '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum", "destination": "x.safetensors"}'
expect_error "/v1 refuses the /bbwm-only destination" 422 invalid_parameter '.error.details.field == "destination"'
merge '{"model_a": "sd15_a.safetensors"'
expect_error "malformed JSON -> 400" 400 invalid_json
request POST /v1/merge-models -H 'Content-Type: text/plain' --data-binary '{}'
expect_error "not JSON content -> 415" 415 unsupported_media_type

# --- shape mismatch: an SD1.5 model with an SDXL one fails as a job
merge '{"model_a": "sd15_a.safetensors", "model_b": "sdxl_x.safetensors", "merge_method": "weighted_sum"}'
expect_status "SD1.5 + SDXL accepted (the shapes are the merge's business)" 202
if wait_job "$job_id" "succeeded failed cancelled" 60; then
    check "SD1.5 + SDXL fails with shape_mismatch naming a key" jq -e '.state == "failed" and .error.code == "shape_mismatch" and (.error.key|type == "string") and .result == null' "$body_file"
    keep Job "failed merge job"
    check "a failed merge leaves no result folder" test ! -e "$work/data-main/results/$job_id"
fi

# --- /bbwm: the extension's body with its defaults, written beside model A
bbwm_body() { # MODEL_A MODEL_B DESTINATION [EXTRA-JSON-MEMBERS]: the extension's body
    jq -cn --arg a "$1" --arg b "$2" --arg d "$3" --argjson extra "{${4:-}}" \
        '{merge_method: "weighted_sum", model_a: $a, model_b: $b, model_c: null, base_alpha: 0.5,
          base_beta: 0.5, alpha: [], beta: [], precision: 16, weights_clip: false,
          re_basin: false, re_basin_iterations: 1, device: "cpu", work_device: null,
          prune: false, threads: 1, destination: $d, unload_before: false} + $extra'
}
bbwm "$(bbwm_body /home/u/webui/models/Stable-diffusion/sd15_a.safetensors sd15_b.safetensors bbwm_rel.safetensors)"
expect_status "bbwm with the extension's defaults -> 200" 200
check "bbwm answers the body null" test "$(cat "$body_file")" = null
check "bbwm wrote the file beside model A" is_safetensors "$models/bbwm_rel.safetensors"
check "no temporary left beside it" no_temporaries "$models"
request GET '/v1/jobs?limit=500'
keep JobList "jobs with a /bbwm merge"
check "the bbwm merge is a job of kind merge, result null, report.destination" jq -e \
    --arg d "$models/bbwm_rel.safetensors" '.jobs[0].kind == "merge" and .jobs[0].state == "succeeded" and .jobs[0].result == null and .jobs[0].report.destination == $d and .jobs[0].params.destination == "bbwm_rel.safetensors" and .jobs[0].params.output_name == null' "$body_file"
bbwm_id=$(json '.jobs[0].id')
request GET "/v1/jobs/$bbwm_id/result"
expect_error "a bbwm job's file is not served as a result" 409 result_not_ready

# unknown fields (forks), integers for floats, 0/1 for booleans, absolute destination
bbwm "$(bbwm_body sd15_a sub/sd15_c.safetensors "$models/sub/bbwm_abs.safetensors" '"cache": {"x": 1}, "sdxl": false, "save_iterations": 3, "base_alpha": 1, "weights_clip": 1')"
expect_status "bbwm with unknown fields, ints for floats, an absolute destination -> 200" 200
check "bbwm wrote the absolute destination" is_safetensors "$models/sub/bbwm_abs.safetensors"
check "bbwm params took base_alpha 1 and weights_clip 1" jq -e '.jobs[0].params.base_alpha == 1 and .jobs[0].params.weights_clip == true' \
    <(curl -s "$base/v1/jobs?limit=1")
# the client's absolute path from its own machine, matched by trailing components
bbwm "$(bbwm_body 'C:\webui\models\Stable-diffusion\sd15_b.safetensors' /srv/webui/models/Stable-diffusion/sub/sd15_c.safetensors sub/bbwm_sub.safetensors)"
expect_status "bbwm with Windows and foreign absolute model paths -> 200" 200
check "a relative destination with a folder lands beside model A" is_safetensors "$models/sub/bbwm_sub.safetensors"
# an existing file is replaced (and only on success)
before=$(sha256sum <"$models/bbwm_rel.safetensors")
bbwm "$(bbwm_body sd15_a sd15_b bbwm_rel.safetensors '"base_alpha": 0.9')"
expect_status "bbwm over an existing destination -> 200" 200
check "the destination was replaced" test "$(sha256sum <"$models/bbwm_rel.safetensors")" != "$before"

# refusals
bbwm "$(bbwm_body sd15_a nothing_like_it.safetensors out.safetensors)"
expect_error "bbwm missing model -> 404" 404 model_not_found '.error.details.field == "model_b"'
bbwm "$(bbwm_body sd15_a twin out.safetensors)"
expect_error "bbwm ambiguous model name -> 422 with the candidates" 422 invalid_parameter \
    '.error.details.field == "model_b" and .error.details.candidate_count == 2 and (.error.details.candidates | test("amb1/twin.safetensors") and test("amb2/twin.safetensors"))'
bbwm "$(bbwm_body sd15_a amb1/twin out_twin.safetensors)"
expect_status "a longer name settles it" 200
bbwm "$(bbwm_body sd15_a sd15_b memory)"
expect_error "destination memory -> 422 unsupported_option" 422 unsupported_option '.error.details.field == "destination"'
bbwm "$(bbwm_body sd15_a sd15_b out.ckpt)"
expect_error "destination .ckpt -> 422" 422 invalid_parameter '.error.details.field == "destination"'
bbwm "$(bbwm_body sd15_a sd15_b out.bin)"
expect_error "destination without .safetensors -> 422" 422 invalid_parameter '.error.details.field == "destination"'
bbwm "$(bbwm_body sd15_a sd15_b out.safetensors '"re_basin": true')"
expect_error "re_basin true -> 422 unsupported_option" 422 unsupported_option '.error.details.field == "re_basin"'
bbwm "$(bbwm_body sd15_a sd15_b "$outside/out.safetensors")"
expect_error "destination outside the roots -> 422" 422 path_outside_models '.error.details.field == "destination"'
bbwm "$(bbwm_body sd15_a sd15_b ../outside/out.safetensors)"
expect_error "relative destination climbing out -> 422" 422 path_outside_models
ln -s "$outside/linked.safetensors" "$models/link_out.safetensors"
bbwm "$(bbwm_body sd15_a sd15_b link_out.safetensors)"
expect_error "destination linking outside the roots -> 422" 422 path_outside_models
check "nothing written outside the roots" test ! -e "$outside/out.safetensors" -a ! -e "$outside/linked.safetensors"
bbwm "$(bbwm_body sd15_a sd15_b no_such_folder/out.safetensors)"
expect_error "destination in a missing folder -> 422" 422 invalid_parameter '.error.details.field == "destination"'
bbwm "$(bbwm_body sd15_a sd15_b out.safetensors '"precision": 8')"
expect_error "bbwm precision 8 -> 422" 422 invalid_parameter '.error.details.field == "precision"'
bbwm "$(bbwm_body sd15_a sd15_b out.safetensors '"merge_method": "average"')"
expect_error "bbwm unknown method -> 422" 422 invalid_parameter '.error.details.field == "merge_method"'
bbwm "$(bbwm_body sd15_a sdxl_x bbwm_mismatch.safetensors)"
expect_error "bbwm SD1.5 + SDXL -> the job's shape_mismatch, 422" 422 shape_mismatch '(.error.key|type == "string")'
check "a failed bbwm merge leaves no file" test ! -e "$models/bbwm_mismatch.safetensors"
check "and no temporary" no_temporaries "$models"

if $have_readonly; then
    bbwm "$(bbwm_body sd15_a sd15_b "$readonly_root/out.safetensors")"
    expect_error "destination on a read-only models root -> 422" 422 invalid_parameter \
        '.error.details.field == "destination" and .error.details.reason == "read_only_file_system"'
    bbwm "$(bbwm_body ro_a sd15_b beside_ro.safetensors)"
    expect_error "beside a model A on a read-only root -> 422" 422 invalid_parameter \
        '.error.details.reason == "read_only_file_system"'
    merge '{"model_a": "ro_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum"}'
    expect_status "a read-only root still serves /v1 inputs" 202
else
    skip "read-only models root" "mount --bind / remount,ro not permitted here"
fi
if $have_tiny; then
    bbwm "$(bbwm_body sd15_a sd15_b "$tiny_root/out.safetensors")"
    expect_error "destination on a full file system -> 507 disk_full" 507 disk_full
    check "nothing left on the full file system" test -z "$(ls -A "$tiny_root")"
else
    skip "bbwm disk_full" "mount -t tmpfs not permitted here"
fi

request GET /metrics
check "metrics count merge jobs" grep -Eq '^mergesvd_jobs\{kind="merge",state="succeeded"\} [1-9]' "$body_file"
check "metrics count failed merge jobs" grep -Eq '^mergesvd_jobs\{kind="merge",state="failed"\} [1-9]' "$body_file"
check "metrics time merge jobs" grep -Eq '^mergesvd_job_duration_seconds_count\{kind="merge"\} [1-9]' "$body_file"
stop_server TERM
check "main server exits 0 on SIGTERM" test "$server_status" = 0
fi

# ================================================================ a full results disk
echo "# full results disk (at ${SECONDS} s)"
if $have_tiny_results; then
    if start_server full "$work/data-full" --models "$models"; then
        merge '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum"}'
        expect_status "merge onto a full results disk accepted" 202
        if wait_job "$job_id" "succeeded failed cancelled" 30; then
            check "it fails at once with disk_full, nothing written" jq -e \
                '.state == "failed" and .error.code == "disk_full" and .progress.done == 0' "$body_file"
            check "no result folder left" test -z "$(ls -A "$work/data-full/results")"
        fi
        stop_server TERM
    fi
else
    skip "/v1 disk_full" "mount -t tmpfs not permitted here"
fi

# ================================================================ slow merges
echo "# slow merges: cancel, held requests, shutdown (at ${SECONDS} s)"
export MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS=$SLOW_MS
if start_server slow "$work/data-slow" --models "$models" --workers 1 --grace-seconds 1; then
unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS

# --- DELETE mid-merge: cancelled, the partial file gone
merge '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum"}'
cancel_id=$job_id
if wait_for_path "/v1/jobs/$cancel_id" '.state == "running" and .progress.done > 0' 30; then
    check "a running merge shows byte progress, its key and an ETA" jq -e \
        '.progress.fraction > 0 and .progress.fraction < 1 and .progress.total > .progress.done and (.progress.current_key|type == "string") and (.progress.eta_seconds|type == "number")' "$body_file"
    keep Job "running merge job"
    request DELETE "/v1/jobs/$cancel_id"
    expect_status "DELETE a running merge -> 202" 202
    if wait_job "$cancel_id" "succeeded failed cancelled" 30; then
        check "the merge ends cancelled" jq -e '.state == "cancelled" and .error.code == "cancelled" and .result == null' "$body_file"
        check "no file left in its result folder" test ! -e "$work/data-slow/results/$cancel_id"
    fi
else
    fail "merge runs slowly" "$(last_response)"
fi

# --- a held /bbwm request: polls go on; DELETE answers it 409 cancelled
held_out=$work/held.body
curl -s --max-time $((60 * SCALE)) -o "$held_out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "$(bbwm_body sd15_a sd15_b held.safetensors)" "$base/bbwm/merge-models" >"$work/held.status" &
held_pid=$!
background_pids+=("$held_pid")
held_id=
deadline=$((SECONDS + 20 * SCALE))
while [ $SECONDS -lt $deadline ] && [ -z "$held_id" ]; do
    held_id=$(curl -s --max-time 5 "$base/v1/jobs?limit=500" | jq -r '[.jobs[] | select(.kind == "merge" and .state == "running" and .params.destination == "held.safetensors")][0].id // empty')
    [ -n "$held_id" ] || sleep 0.1
done
if [ -n "$held_id" ]; then
    pass "a held bbwm merge shows in /v1/jobs as a running merge"
    started=$SECONDS
    healthy=0
    for _ in 1 2 3 4 5; do
        [ "$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] && healthy=$((healthy + 1))
        request GET "/v1/jobs/$held_id"
    done
    check "/healthz and job polls answer while a bbwm request waits" test "$healthy" = 5 -a "$status" = 200
    check "the bbwm client is still waiting" kill -0 "$held_pid"
    request DELETE "/v1/jobs/$held_id"
    expect_status "DELETE the held merge -> 202" 202
    wait "$held_pid"
    check "the held request is answered 409 cancelled" test "$(cat "$work/held.status")" = 409 -a \
        "$(jq -r .error.code "$held_out" 2>/dev/null)" = cancelled
    check "no destination file after the cancel" test ! -e "$models/held.safetensors"
    check "no temporary after the cancel" no_temporaries "$models"
else
    fail "a held bbwm merge shows in /v1/jobs" "$(curl -s "$base/v1/jobs?limit=3" | head -c 400)"
fi

# --- a client that goes away: the merge goes on
curl -s --max-time 1 -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data-binary "$(bbwm_body sd15_a sd15_b gone.safetensors)" "$base/bbwm/merge-models"
gone_id=$(curl -s "$base/v1/jobs?limit=500" | jq -r '[.jobs[] | select(.params.destination == "gone.safetensors")][0].id // empty')
sleep 1
request GET "/v1/jobs/$gone_id"
check "the merge of a client that went away runs on" jq -e '.state == "running" or .state == "succeeded"' "$body_file"

# --- a queued /bbwm request while a merge runs; DELETE of the queued job answers it
merge '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum", "output_name": "blocker.safetensors"}'
curl -s --max-time $((60 * SCALE)) -o "$held_out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "$(bbwm_body sd15_a sd15_b queued.safetensors)" "$base/bbwm/merge-models" >"$work/held.status" &
held_pid=$!
background_pids+=("$held_pid")
queued_id=
deadline=$((SECONDS + 20 * SCALE))
while [ $SECONDS -lt $deadline ] && [ -z "$queued_id" ]; do
    queued_id=$(curl -s --max-time 5 "$base/v1/jobs?limit=500" | jq -r '[.jobs[] | select(.state == "queued" and .params.destination == "queued.safetensors")][0].id // empty')
    [ -n "$queued_id" ] || sleep 0.1
done
request DELETE "/v1/jobs/$queued_id"
expect_status "DELETE a queued bbwm merge -> 200" 200
wait "$held_pid"
check "its held request is answered 409 cancelled" test "$(cat "$work/held.status")" = 409

# --- shutdown: a held request is answered 503, its job stays queued
curl -s --max-time $((60 * SCALE)) -o "$held_out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "$(bbwm_body sd15_a sd15_b at_shutdown.safetensors)" "$base/bbwm/merge-models" >"$work/held.status" &
held_pid=$!
background_pids+=("$held_pid")
sleep 1
stop_server TERM
wait "$held_pid"
check "at shutdown a held request gets 503 shutting_down" test "$(cat "$work/held.status")" = 503 -a \
    "$(jq -r .error.code "$held_out" 2>/dev/null)" = shutting_down
check "the slow server exits 0 after its grace" test "$server_status" = 0
if start_server slow-again "$work/data-slow" --models "$models" --workers 1; then
    request GET '/v1/jobs?limit=500'
    check "after the restart the held request's job is still there to run" jq -e \
        '[.jobs[] | select(.params.destination == "at_shutdown.safetensors")] | length == 1 and (.[0].state == "queued" or .[0].state == "running" or .[0].state == "succeeded")' "$body_file"
    stop_server KILL
fi
fi

# --- a SIGKILL mid-write leaves the /bbwm destination's temporary in the
# models root; the next start removes it (found by tests/soak.sh)
mkdir -p "$work/data-kill"
export MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS=$SLOW_MS
if start_server kill "$work/data-kill" --models "$models" --workers 1; then
    curl -s --max-time $((60 * SCALE)) -o /dev/null -X POST -H 'Content-Type: application/json' \
        --data-binary "$(bbwm_body sd15_a sd15_b killed.safetensors)" "$base/bbwm/merge-models" &
    background_pids+=("$!")
    deadline=$((SECONDS + 30 * SCALE))
    while [ $SECONDS -lt $deadline ] && [ -z "$(find "$models" -maxdepth 1 -name '.killed.safetensors.tmp-*' -print -quit)" ]; do
        sleep 0.05
    done
    check "a running /bbwm merge writes its temporary beside model A" \
        test -n "$(find "$models" -maxdepth 1 -name '.killed.safetensors.tmp-*' -print -quit)"
    stop_server KILL
    unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS
    if start_server kill-again "$work/data-kill" --models "$models" --workers 1; then
        # (only this merge's: the slow server above may have been killed amid another)
        check "after the restart no temporary of the killed merge is left" \
            test -z "$(find "$models" -maxdepth 1 -name '.killed.safetensors.tmp-*' -print -quit)"
        check "nor a destination file" test ! -e "$models/killed.safetensors"
        check "the restart says what it removed" grep -q 'removed 1 temporary file(s) of .*/killed.safetensors' "$server_log"
        request GET '/v1/jobs?limit=1'
        check "the killed merge failed interrupted" jq -e \
            '.jobs[0].params.destination == "killed.safetensors" and .jobs[0].state == "failed" and .jobs[0].error.code == "interrupted"' "$body_file"
        stop_server TERM
    fi
fi
unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS

# ================================================================ schemas
service_finish
