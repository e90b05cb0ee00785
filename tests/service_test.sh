#!/usr/bin/env bash
# End-to-end tests of `mergesvd serve`: the real binary on a free loopback
# port, driven with curl and jq, checked against ../openapi.yaml and
# /work/notes/service-contract.md.  Run by `make check` with MERGESVD,
# BUILD_DIR and TESTS_DIR set (tests/local.mk); prints "N passed, M failed".
set -u

MERGESVD=${MERGESVD:?MERGESVD must name the mergesvd binary}
BUILD_DIR=${BUILD_DIR:?BUILD_DIR must name the build directory}
TESTS_DIR=${TESTS_DIR:?TESTS_DIR must name the tests source directory}
GEN_LORA=$BUILD_DIR/tests/gen_lora
OPENAPI_SOURCE=$TESTS_DIR/../openapi.yaml
# Every wait is bounded; a slow build (sanitizers) may stretch them.
SCALE=${MERGESVD_TEST_TIMEOUT_SCALE:-1}
# Per-progress sleep that keeps a job running long enough to cancel or kill it.
SLOW_MS=300
# Only the servers that ask for it get the failpoint.
unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS

. "$TESTS_DIR/service_lib.sh"
service_setup service
auth=()

# ---------------------------------------------------------------- inputs

le64() { # N: 8 bytes little endian
    local n=$1 i
    for i in 0 1 2 3 4 5 6 7; do
        printf "\\x$(printf %02x $(((n >> (8 * i)) & 255)))"
    done
}
make_safetensors() { # FILE HEADER-JSON DATA-BYTES
    { le64 ${#2}; printf '%s' "$2"; head -c "$3" /dev/zero; } >"$1"
}

models=$work/models
serve_options=(--models "$models")
outside=$work/outside
mkdir -p "$work/kept" "$models/nested" "$outside" "$work/data-main" "$work/data-slow" "$work/data-auth" \
    "$work/data-restart" "$work/data-public"

if [ ! -x "$GEN_LORA" ]; then
    echo "service_test: $GEN_LORA is missing (make tests/gen_lora)"
    exit 1
fi
for target in "$models/lora_a.safetensors" "$models/nested/lora_b.safetensors" \
    "$outside/secret.safetensors"; do
    if ! "$GEN_LORA" --arch sd15 --rank 16 --size small --output "$target" >"$work/gen.log" 2>&1; then
        echo "service_test: gen_lora failed: $(cat "$work/gen.log")"
        exit 1
    fi
done
ln -s "$outside/secret.safetensors" "$models/escape.safetensors"
printf 'hello' >"$models/tiny.safetensors"
cp "$models/lora_a.safetensors" "$models/.hidden.safetensors"
cp "$models/lora_a.safetensors" "$models/my lora (v2).safetensors"
models2=$work/models2
mkdir -p "$models2"
cp "$models/nested/lora_b.safetensors" "$models2/lora_c.safetensors"
{ le64 12; printf 'not json at!'; } >"$models/notjson.safetensors"
make_safetensors "$models/odd_dtype.safetensors" \
    '{"a.lora_down.weight":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}}' 4
make_safetensors "$models/no_modules.safetensors" \
    '{"foo":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' 4
printf 'not a model' >"$models/readme.txt"
# symlinks back up the tree (walked once, not at every level: six of them
# made a listing take 45 s) and a name that is not UTF-8 (not listable)
mkdir -p "$models/loop"
for i in 1 2 3 4 5 6; do ln -s . "$models/loop/l$i"; done
ln -s .. "$models/loop/up"
cp "$models/nested/lora_b.safetensors" "$models/loop/in_loop.safetensors"
cp "$models/lora_a.safetensors" "$models/$(printf 'bad\xff\xfename.safetensors')"

# ================================================================ main server
echo "# main server (at ${SECONDS} s)"
if start_server main "$work/data-main" --workers 1 --models "$models2"; then

request GET /healthz
expect_status "GET /healthz" 200
keep Health "GET /healthz"
check "healthz body" jq -e '.status == "ok" and (.version|type=="string") and (.jobs_running|type=="number") and (.queue_depth|type=="number")' "$body_file"

request GET /v1/models
expect_status "GET /v1/models" 200
keep ModelList "GET /v1/models"
check "models lists lora_a as a lora" jq -e \
    '.models | map(select(.path == "lora_a.safetensors")) | length == 1 and .[0].kind == "lora" and .[0].bytes > 0 and .[0].root == 0 and (.[0].lora.modules > 0)' "$body_file"
check "models lists nested/lora_b" jq -e '.models | any(.path == "nested/lora_b.safetensors" and .kind == "lora")' "$body_file"
check "models skips non-safetensors files" jq -e '.models | all(.path != "readme.txt")' "$body_file"
check "models reports a malformed file with an error object" jq -e \
    '.models | map(select(.path == "tiny.safetensors")) | length == 1 and .[0].kind == "unknown" and (.[0].error.code | type == "string")' "$body_file"
check "models skips hidden files" jq -e '.models | all(.path != ".hidden.safetensors")' "$body_file"
check "models lists the second root's file with root 1" jq -e '.models | any(.path == "lora_c.safetensors" and .root == 1 and .kind == "lora")' "$body_file"
check "models walks a symlink loop once" jq -e '[.models[] | select(.path | endswith("in_loop.safetensors"))] | length == 1' "$body_file"
check "models lists every file once" jq -e '[.models[] | select(.root == 0 and (.path | endswith("lora_b.safetensors")))] | length == 1' "$body_file"
check "models leaves out names that are not UTF-8" jq -e '.models | all(.path | contains("name.safetensors") | not)' "$body_file"
modules_total=$(json '.models[] | select(.path == "lora_a.safetensors") | .lora.modules')

# --- a resize, end to end
submit '{"model": "lora_a.safetensors", "new_rank": 4}'
expect_status "POST /v1/resize-lora accepted" 202
keep Job "new job"
check "202 carries Location /v1/jobs/{id}" test "$(header Location)" = "/v1/jobs/$job_id"
check "job id is 32 lowercase hex" grep -Eqx '[0-9a-f]{32}' <<<"$job_id"
check "new job object shape" jq -e \
    '.kind == "resize" and (.state == "queued" or .state == "running" or .state == "succeeded") and (.progress|has("fraction","done","total","current_key","eta_seconds")) and .params.model == "lora_a.safetensors" and .params.new_rank == 4 and .params.new_conv_rank == 4 and (.created_at|test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")) and has("started_at","finished_at","error","result","report")' "$body_file"
resize_id=$job_id
if [ -n "$resize_id" ] && wait_job "$resize_id" "succeeded failed cancelled" 60; then
    check "resize job succeeded" jq -e '.state == "succeeded" and .error == null' "$body_file"
    keep Job "succeeded job"
    check "finished job has progress 1 and timestamps" jq -e \
        '.progress.fraction == 1 and .progress.done == .progress.total and .progress.total > 0 and (.started_at|type=="string") and (.finished_at|type=="string") and .finished_at >= .started_at' "$body_file"
    check "result object" jq -e \
        --arg id "$resize_id" '.result.url == "/v1/jobs/\($id)/result" and .result.file == "lora_a_resized.safetensors" and (.result.sha256|test("^[0-9a-f]{64}$")) and .result.bytes > 0' "$body_file"
    check "report has every module, ranks capped at 4" jq -e \
        '(.report.modules|length) > 0 and (.report.modules|length) == .report.summary.module_count and all(.report.modules[]; .new_rank <= 4 and .new_rank >= 1 and .old_rank == 16 and (.fro_retained|type=="number") and .fro_retained <= 1.000001 and (.name|type=="string")) and (.report.model_hash|test("^[0-9a-f]{64}$"))' "$body_file"
    if [ -n "$modules_total" ]; then
        check "report module count matches GET /v1/models" jq -e --argjson n "$modules_total" '.report.summary.module_count == $n' "$body_file"
    fi
    result_sha=$(json .result.sha256)
    result_bytes=$(json .result.bytes)
    check "result file under data/results/{id}/" test -f "$work/data-main/results/$resize_id/lora_a_resized.safetensors"

    OUT=$work/download.safetensors request GET "/v1/jobs/$resize_id/result"
    cp "$work/download.safetensors" "$body_file" 2>/dev/null
    expect_status "GET result" 200
    check "result sha256 matches the job" test "$(sha256sum <"$work/download.safetensors" | cut -d' ' -f1)" = "$result_sha"
    check "result Content-Length" test "$(header Content-Length)" = "$result_bytes"
    check "result ETag is the quoted sha256" test "$(header ETag)" = "\"$result_sha\""
    check "result Content-Type octet-stream" grep -qi '^content-type: application/octet-stream' "$headers_file"
    check "result Accept-Ranges bytes" test "$(header Accept-Ranges)" = bytes
    check "result Content-Disposition names the file" grep -qi '^content-disposition: attachment; filename="lora_a_resized.safetensors"' "$headers_file"
    check "mergesvd inspect --json reads the result" "$MERGESVD" inspect "$work/download.safetensors" --json
    "$MERGESVD" inspect "$work/download.safetensors" --json >"$work/inspect.json" 2>/dev/null
    check "inspect sees a LoRA of rank <= 4" jq -e '[.. | objects | select(has("rank_max")) | .rank_max] | length > 0 and all(. <= 4)' "$work/inspect.json"

    request HEAD "/v1/jobs/$resize_id/result" -I
    expect_status "HEAD result" 200
    check "HEAD result Content-Length" test "$(header Content-Length)" = "$result_bytes"
    request GET "/v1/jobs/$resize_id/result" -H "If-None-Match: \"$result_sha\""
    expect_status "If-None-Match with the ETag -> 304" 304
    OUT=/dev/null request GET "/v1/jobs/$resize_id/result" -H 'If-None-Match: "something-else"'
    expect_status "If-None-Match with another ETag -> 200" 200

    request GET "/v1/jobs/$resize_id/result" -H 'Range: bytes=0-99'
    expect_status "Range bytes=0-99 -> 206" 206
    check "206 Content-Range" test "$(header Content-Range)" = "bytes 0-99/$result_bytes"
    check "206 body is the first 100 bytes" cmp "$body_file" <(head -c 100 "$work/download.safetensors")
    request GET "/v1/jobs/$resize_id/result" -H 'Range: bytes=-10'
    expect_status "Range bytes=-10 -> 206" 206
    check "suffix range body is the last 10 bytes" cmp "$body_file" <(tail -c 10 "$work/download.safetensors")
    check "suffix Content-Range" test "$(header Content-Range)" = "bytes $((result_bytes - 10))-$((result_bytes - 1))/$result_bytes"
    request GET "/v1/jobs/$resize_id/result" -H "Range: bytes=$((result_bytes - 5))-"
    expect_status "Range bytes=N- -> 206" 206
    check "open range body" cmp "$body_file" <(tail -c 5 "$work/download.safetensors")
    request GET "/v1/jobs/$resize_id/result" -H "Range: bytes=$result_bytes-"
    expect_error "Range past the end -> 416" 416 range_not_satisfiable ".error.details.size == $result_bytes"
    check "416 Content-Range bytes */size" test "$(header Content-Range)" = "bytes */$result_bytes"
    request GET "/v1/jobs/$resize_id/result" -H 'Range: bytes=0-9' -H "If-Range: \"$result_sha\""
    expect_status "If-Range with the ETag -> 206" 206
    request GET "/v1/jobs/$resize_id/result" -H 'Range: bytes=0-9' -H 'If-Range: "stale"'
    expect_status "If-Range with another ETag -> 200" 200
    check "If-Range mismatch sends the whole file" cmp "$body_file" "$work/download.safetensors"
    request GET "/v1/jobs/$resize_id/result" -H 'Range: bytes=0-1,5-9'
    expect_status "multiple ranges -> 200 whole file" 200
    check "multiple ranges body is the whole file" cmp "$body_file" "$work/download.safetensors"
else
    fail "resize job finishes" "$(last_response)"
fi

# --- options of a resize: dynamic method, precision, output name, alias path
submit '{"model": "nested/lora_b.safetensors", "new_rank": 8, "dynamic_method": "sv_fro", "dynamic_param": 0.9, "save_precision": "fp16", "output_name": "b-small.v1.safetensors"}'
expect_status "dynamic sv_fro resize accepted" 202
check "params normalised" jq -e '.params.dynamic_method == "sv_fro" and .params.dynamic_param == 0.9 and .params.save_precision == "fp16" and .params.output_name == "b-small.v1.safetensors"' "$body_file"
dynamic_id=$job_id
if [ -n "$dynamic_id" ] && wait_job "$dynamic_id" "succeeded failed cancelled" 60; then
    check "dynamic resize succeeded with output_name" jq -e '.state == "succeeded" and .result.file == "b-small.v1.safetensors" and all(.report.modules[]; .new_rank <= 8)' "$body_file"
    check "output_name file under data/results/{id}/" test -f "$work/data-main/results/$dynamic_id/b-small.v1.safetensors"
    # changed behind the service's back: refused, not served under the old ETag
    dynamic_file=$work/data-main/results/$dynamic_id/b-small.v1.safetensors
    cp "$dynamic_file" "$work/b-small.saved"
    truncate -s 1000 "$dynamic_file"
    OUT=/dev/null request GET "/v1/jobs/$dynamic_id/result"
    check "a result file of another size -> 500 io_error" test "$status" = 500
    request GET "/v1/jobs/$dynamic_id/result"
    expect_error "a result file of another size says so" 500 io_error '.error.details.reason == "result_changed"'
    cp "$work/b-small.saved" "$dynamic_file"
    OUT=/dev/null request GET "/v1/jobs/$dynamic_id/result"
    expect_status "restored result file downloads again" 200
else
    fail "dynamic resize finishes" "$(last_response)"
fi
submit '{"model": "my lora (v2).safetensors", "new_rank": 2}'
expect_status "model name with blanks accepted" 202
check "default output_name replaces unsafe characters" jq -e '.params.output_name == "my_lora__v2__resized.safetensors"' "$body_file"
wait_job "$job_id" "succeeded failed cancelled" 60 >/dev/null
check "job on a model name with blanks succeeded" jq -e '.state == "succeeded" and .result.file == "my_lora__v2__resized.safetensors"' "$body_file"

post_json /resize-lora '{"model": "lora_c.safetensors", "new_rank": 2, "output_name": "alias.safetensors"}'
expect_status "POST /resize-lora alias accepted" 202
alias_id=$(json .id)
check "alias Location" test "$(header Location)" = "/v1/jobs/$alias_id"
wait_job "$alias_id" "succeeded failed cancelled" 60 >/dev/null
check "alias job succeeded" jq -e '.state == "succeeded"' "$body_file"

# --- listing
request GET '/v1/jobs'
expect_status "GET /v1/jobs" 200
keep JobList "GET /v1/jobs"
check "jobs listed newest first" jq -e --arg a "$alias_id" --arg d "$dynamic_id" --arg r "$resize_id" \
    '[.jobs[].id] as $ids | ($ids|length) >= 3 and $ids[0] == $a and ($ids|index($d)) < ($ids|index($r)) and .next_cursor == null' "$body_file"
request GET '/v1/jobs?limit=1'
expect_status "GET /v1/jobs?limit=1" 200
check "one job and a cursor" jq -e '(.jobs|length) == 1 and (.next_cursor|type) == "string"' "$body_file"
keep JobList "GET /v1/jobs?limit=1"
first=$(json '.jobs[0].id')
cursor=$(json '.next_cursor')
request GET "/v1/jobs?limit=1&cursor=$(jq -rn --arg c "$cursor" '$c|@uri')"
expect_status "next page" 200
check "next page has the next job" jq -e --arg f "$first" '(.jobs|length) == 1 and .jobs[0].id != $f' "$body_file"
# Walking every page with limit=2 gives the full list, in the same order.
request GET '/v1/jobs?limit=500'
json '.jobs[].id' >"$work/all-ids"
: >"$work/paged-ids"
cursor=
for _ in $(seq 1 50); do
    request GET "/v1/jobs?limit=2${cursor:+&cursor=$(jq -rn --arg c "$cursor" '$c|@uri')}"
    [ "$status" = 200 ] || break
    json '.jobs[].id' >>"$work/paged-ids"
    cursor=$(json '.next_cursor // empty')
    [ -n "$cursor" ] || break
done
check "pages of 2 walk the whole list in order" cmp "$work/all-ids" "$work/paged-ids"
request GET '/v1/jobs?limit=0'
expect_error "limit=0 -> 422" 422 invalid_parameter
request GET '/v1/jobs?limit=abc'
expect_error "limit=abc -> 422" 422 invalid_parameter
request GET '/v1/jobs?limit=%201'
expect_error "limit with a leading blank -> 422" 422 invalid_parameter
request GET '/v1/jobs?limit=501'
expect_error "limit=501 -> 422" 422 invalid_parameter
request GET '/v1/jobs?cursor=%21%21garbage'
expect_error "bad cursor -> 422" 422 invalid_parameter

# --- idempotency
body='{"model": "lora_a.safetensors", "new_rank": 3}'
submit "$body" -H 'Idempotency-Key: key-1'
expect_status "first request with Idempotency-Key" 202
idem_id=$job_id
submit "$body" -H 'Idempotency-Key: key-1'
expect_status "same key, same body -> 202" 202
check "same key, same body -> same job" test -n "$idem_id" -a "$job_id" = "$idem_id"
check "replay says Idempotent-Replayed: true" test "$(header Idempotent-Replayed)" = true
submit '{"model": "lora_a.safetensors", "new_rank": 2}' -H 'Idempotency-Key: key-1'
expect_error "same key, other body -> 409" 409 idempotency_conflict
submit "$body" -H 'Idempotency-Key: key-2'
other_key_id=$job_id
check "other key -> new job" test -n "$other_key_id" -a "$other_key_id" != "$idem_id"
submit "$body" -H "Idempotency-Key: $(head -c 201 /dev/zero | tr '\0' k)"
expect_error "Idempotency-Key over 200 characters -> 422" 422 invalid_parameter '.error.details.field == "Idempotency-Key"'
for id in "$idem_id" "$other_key_id"; do
    [ -n "$id" ] && wait_job "$id" "succeeded failed cancelled" 60 >/dev/null
done

# --- bad requests
post_json /v1/resize-lora '{"model": "lora_a.safetensors",'
expect_error "malformed JSON -> 400" 400 invalid_json
post_json /v1/resize-lora ''
expect_error "empty body -> 400" 400 invalid_json
request POST /v1/resize-lora -H 'Content-Type: text/plain' --data-binary '{"model": "lora_a.safetensors"}'
expect_error "text/plain -> 415" 415 unsupported_media_type
request POST /v1/resize-lora --data-binary '{"model": "lora_a.safetensors"}' -H 'Content-Type:'
expect_error "no Content-Type -> 415" 415 unsupported_media_type
request POST /v1/resize-lora -H 'Content-Type: application/json; charset=utf-8' --data-binary '{"model": "missing.safetensors"}'
expect_error "application/json; charset=utf-8 is JSON" 404 model_not_found
{ printf '{"model": "lora_a.safetensors", "pad": "'; head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' a; printf '"}'; } >"$work/huge.json"
# A client that announces its body (Expect: 100-continue, curl's way past
# 1 MiB) hears 413 before sending it.
request POST /v1/resize-lora -H 'Content-Type: application/json' -H 'Expect: 100-continue' \
    --data-binary @"$work/huge.json"
expect_error "2 MiB body -> 413" 413 body_too_large
# One that sends it all regardless gets the 413 and the connection closed; if
# the close overtakes the answer it sees a reset instead.  Either way the
# server drops the body unread and serves on.
request POST /v1/resize-lora -H 'Content-Type: application/json' -H 'Expect:' --data-binary @"$work/huge.json"
if [ "$status" = 000 ]; then
    pass "2 MiB body sent without Expect -> connection closed before the 413 was read"
else
    expect_error "2 MiB body sent without Expect -> 413" 413 body_too_large
fi
request GET /healthz
expect_status "healthz after a refused 2 MiB body" 200
# request headers live in a 16 KiB per-connection pool: 8 KB of them pass,
# 20 KB get 431 and the server serves on
request GET /healthz -H "X-Padding: $(head -c 8000 /dev/zero | tr '\0' a)"
expect_status "8 KB of request headers -> 200" 200
request GET /healthz -H "X-Padding: $(head -c 20000 /dev/zero | tr '\0' a)"
expect_status "20 KB of request headers -> 431" 431
request GET /healthz
expect_status "healthz after oversized headers" 200
{ head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero | tr '\0' ']'; } >"$work/deep.json"
request POST /v1/resize-lora -H 'Content-Type: application/json' -H 'Expect:' --data-binary @"$work/deep.json"
if [ "$status" = 400 ]; then
    expect_error "100000-deep nesting -> 400" 400 invalid_json
else
    expect_error "100000-deep nesting -> 422" 422 invalid_parameter
fi
{ printf '{"model": "lora_a.safetensors", "new_rank": '; head -c 5000 /dev/zero | tr '\0' '['; head -c 5000 /dev/zero | tr '\0' ']'; printf '}'; } >"$work/deep-field.json"
request POST /v1/resize-lora -H 'Content-Type: application/json' -H 'Expect:' --data-binary @"$work/deep-field.json"
if [ "$status" = 400 ]; then
    expect_error "deep nesting in a field -> 400" 400 invalid_json
else
    expect_error "deep nesting in a field -> 422" 422 invalid_parameter '.error.details.field == "new_rank"'
fi
request GET /healthz
expect_status "server alive after hostile bodies" 200

post_json /v1/resize-lora '[]'
expect_error "array body -> 422" 422 invalid_parameter
post_json /v1/resize-lora '123'
expect_error "number body (valid JSON, not an object) -> 422" 422 invalid_parameter
post_json /v1/resize-lora '"lora_a.safetensors"'
expect_error "string body (valid JSON, not an object) -> 422" 422 invalid_parameter
post_json /v1/resize-lora 'null'
expect_error "null body (valid JSON, not an object) -> 422" 422 invalid_parameter
post_json /v1/resize-lora '{"model": "lora_a.safetensors", "bogus": 1}'
expect_error "unknown field -> 422 naming it" 422 invalid_parameter '.error.details.field == "bogus"'
post_json /v1/resize-lora '{"new_rank": 4}'
expect_error "missing model -> 422" 422 invalid_parameter '.error.details.field == "model"'
post_json /v1/resize-lora '{"model": 5}'
expect_error "model not a string -> 422" 422 invalid_parameter '.error.details.field == "model"'
post_json /v1/resize-lora '{"model": "lora_a.safetensors", "new_rank": "4"}'
expect_error "new_rank a string -> 422" 422 invalid_parameter '.error.details.field == "new_rank"'
post_json /v1/resize-lora '{"model": "lora_a.safetensors", "new_rank": 1.5}'
expect_error "new_rank fractional -> 422" 422 invalid_parameter '.error.details.field == "new_rank"'
post_json /v1/resize-lora '{"model": "lora_a.safetensors", "new_rank": 0}'
expect_error "new_rank 0 -> 422" 422 invalid_parameter '.error.details.field == "new_rank"'
post_json /v1/resize-lora '{"model": "lora_a.safetensors", "new_rank": 99999999999}'
expect_error "new_rank too large -> 422" 422 invalid_parameter '.error.details.field == "new_rank"'
post_json /v1/resize-lora '{"model": "lora_a.safetensors", "dynamic_method": "sv_magic", "dynamic_param": 0.5}'
expect_error "unknown dynamic_method -> 422" 422 invalid_parameter '.error.details.field == "dynamic_method"'
post_json /v1/resize-lora '{"model": "lora_a.safetensors", "dynamic_method": "sv_fro"}'
expect_error "method without param -> 422" 422 invalid_parameter
post_json /v1/resize-lora '{"model": "lora_a.safetensors", "dynamic_method": "sv_ratio", "dynamic_param": 0.5}'
expect_error "sv_ratio <= 1 -> 422" 422 invalid_parameter
post_json /v1/resize-lora '{"model": "lora_a.safetensors", "dynamic_method": "sv_fro", "dynamic_param": "0.5"}'
expect_error "dynamic_param a string -> 422" 422 invalid_parameter '.error.details.field == "dynamic_param"'
post_json /v1/resize-lora '{"model": "lora_a.safetensors", "save_precision": "fp8"}'
expect_error "unknown save_precision -> 422" 422 invalid_parameter '.error.details.field == "save_precision"'

post_json /v1/resize-lora '{"model": "../outside/secret.safetensors"}'
expect_error "'..' path -> 422" 422 path_outside_models
post_json /v1/resize-lora '{"model": "nested/../../outside/secret.safetensors"}'
expect_error "nested '..' path -> 422" 422 path_outside_models
post_json /v1/resize-lora "{\"model\": \"$outside/secret.safetensors\"}"
expect_error "absolute path outside the roots -> 422" 422 path_outside_models
post_json /v1/resize-lora '{"model": "escape.safetensors"}'
expect_error "symlink resolving outside -> 422" 422 path_outside_models
post_json /v1/resize-lora '{"model": "missing.safetensors"}'
expect_error "missing model -> 404" 404 model_not_found
post_json /v1/resize-lora '{"model": "tiny.safetensors"}'
expect_error "5-byte file -> bad_safetensors" 422 bad_safetensors '.error.details.reason == "file_too_small"'
post_json /v1/resize-lora '{"model": "notjson.safetensors"}'
expect_error "header not JSON -> bad_safetensors" 422 bad_safetensors '.error.details.reason == "header_not_json"'
post_json /v1/resize-lora '{"model": "readme.txt"}'
expect_error "text file -> bad_safetensors" 422 bad_safetensors '(.error.details.reason|type) == "string"'
post_json /v1/resize-lora '{"model": "odd_dtype.safetensors"}'
expect_error "unknown dtype -> unsupported_dtype" 422 unsupported_dtype
post_json /v1/resize-lora '{"model": "no_modules.safetensors"}'
expect_error "no LoRA modules -> not_a_lora" 422 not_a_lora

for name in '../x.safetensors' 'x.bin' '.hidden.safetensors' '' 'a/b.safetensors' 'sp ace.safetensors'; do
    post_json /v1/resize-lora "{\"model\": \"lora_a.safetensors\", \"output_name\": \"$name\"}"
    expect_error "output_name '$name' -> 422" 422 invalid_output_name
done
long=$(head -c 200 /dev/zero | tr '\0' a).safetensors
post_json /v1/resize-lora "{\"model\": \"lora_a.safetensors\", \"output_name\": \"$long\"}"
expect_error "output_name over 200 characters -> 422" 422 invalid_output_name
post_json /v1/resize-lora '{"model": "lora_a.safetensors", "output_name": 7}'
expect_error "output_name a number -> 422" 422 invalid_parameter '.error.details.field == "output_name"'

# --- merge routes answer (merges themselves: tests/merge_service_test.sh)
post_json /v1/merge-models '{"model_a": "a.safetensors", "model_b": "b.safetensors", "merge_method": "weighted_sum"}'
expect_error "POST /v1/merge-models with a missing model -> 404" 404 model_not_found
post_json /merge-models '{"model_a": "a.safetensors", "model_b": "b.safetensors", "merge_method": "weighted_sum"}'
expect_error "POST /merge-models with a missing model -> 404" 404 model_not_found

# --- unknown things
request GET /v1/jobs/0123456789abcdef0123456789abcdef
expect_error "unknown job -> 404" 404 job_not_found
request GET /v1/jobs/not-an-id
expect_error "malformed job id -> 404" 404 job_not_found
request DELETE /v1/jobs/0123456789abcdef0123456789abcdef
expect_error "DELETE unknown job -> 404" 404 job_not_found
request GET /v1/jobs/0123456789abcdef0123456789abcdef/result
expect_error "result of unknown job -> 404" 404 job_not_found
request GET /v1/nothing-here
expect_error "unknown route -> 404" 404 not_found
request PUT /v1/jobs
expect_error "PUT /v1/jobs -> 405" 405 method_not_allowed
check "405 carries Allow" grep -qi '^allow: .*GET' "$headers_file"
request GET /v1/resize-lora
expect_error "GET /v1/resize-lora -> 405" 405 method_not_allowed
check "405 Allow names POST" grep -qi '^allow: .*POST' "$headers_file"

# --- delete a finished job
if [ -n "$resize_id" ]; then
    # a store that cannot delete the record (disk full; here its table is
    # renamed behind the server's back): 500, and nothing is removed
    store_rename() {
        python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("ALTER TABLE %s RENAME TO %s" % (sys.argv[2], sys.argv[3])); c.commit()' \
            "$work/data-main/jobs.sqlite3" "$1" "$2"
    }
    store_rename jobs jobs_elsewhere
    request DELETE "/v1/jobs/$resize_id"
    expect_error "DELETE the store refuses -> 500" 500 io_error
    check "its result file is kept" test -e "$work/data-main/results/$resize_id/lora_a_resized.safetensors"
    store_rename jobs_elsewhere jobs
    request GET "/v1/jobs/$resize_id"
    check "the job is still there" jq -e '.state == "succeeded"' "$body_file"
    request DELETE "/v1/jobs/$resize_id"
    expect_status "DELETE finished job -> 204" 204
    check "its result file is gone" test ! -e "$work/data-main/results/$resize_id/lora_a_resized.safetensors"
    request GET "/v1/jobs/$resize_id"
    expect_error "deleted job -> 404" 404 job_not_found
    request GET "/v1/jobs/$resize_id/result"
    expect_error "deleted job's result -> 404" 404 job_not_found
    request DELETE "/v1/jobs/$resize_id"
    expect_error "DELETE again -> 404" 404 job_not_found
fi

# --- service endpoints
request GET /metrics
expect_status "GET /metrics" 200
check "metrics Content-Type text/plain" grep -qi '^content-type: text/plain' "$headers_file"
for metric in 'mergesvd_jobs{' 'mergesvd_job_duration_seconds_bucket{' 'mergesvd_job_duration_seconds_sum' \
    'mergesvd_job_duration_seconds_count' 'mergesvd_queue_depth ' 'mergesvd_http_requests_total{' \
    'mergesvd_bytes_served_total '; do
    check "metric $metric" grep -qF "$metric" "$body_file"
done
check "metrics count succeeded resize jobs" grep -Eq '^mergesvd_jobs\{[^}]*kind="resize"[^}]*state="succeeded"[^}]*\} [1-9]|^mergesvd_jobs\{[^}]*state="succeeded"[^}]*kind="resize"[^}]*\} [1-9]' "$body_file"
check "metrics count bytes served" grep -Eq '^mergesvd_bytes_served_total [1-9]' "$body_file"
check "metrics have TYPE lines" grep -q '^# TYPE mergesvd_job_duration_seconds histogram' "$body_file"

request GET /openapi.yaml
expect_status "GET /openapi.yaml" 200
check "openapi Content-Type application/yaml" grep -qi '^content-type: application/yaml' "$headers_file"
check "served openapi.yaml is the source file" cmp "$body_file" "$OPENAPI_SOURCE"
validator=$(command -v openapi-spec-validator || { [ -x /root/.pyenv/shims/openapi-spec-validator ] && echo /root/.pyenv/shims/openapi-spec-validator; })
if [ -n "$validator" ]; then
    cp "$body_file" "$work/openapi.yaml"
    if "$validator" "$work/openapi.yaml" >"$work/validator.log" 2>&1; then
        pass "openapi-spec-validator accepts the served openapi.yaml"
    else
        fail "openapi-spec-validator accepts the served openapi.yaml" "$(tail -n 5 "$work/validator.log")"
    fi
else
    fail "openapi-spec-validator is installed" "install it with: pip install openapi-spec-validator"
fi
check "openapi lists every error code of core/error.c" bash -c '
    for code in $(sed -n "s/^ *\[MS_[A-Z_]*\] = \"\([a-z_]*\)\",/\1/p" "$1" | grep -vx ok) bad_safetensors; do
        grep -qE "^ +- $code\$" "$2" || { echo "missing $code"; exit 1; }
    done' _ "$TESTS_DIR/../core/error.c" "$OPENAPI_SOURCE"

stop_server TERM
check "SIGTERM: main server exits 0" test "$server_status" = 0
check "request log lines" grep -Eq '^http GET /healthz 200' "$server_log"
fi

# ================================================================ slow server: cancel, queue bound
echo "# slow server (cancel, queue bound) (at ${SECONDS} s)"
if MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS=$SLOW_MS start_server slow "$work/data-slow" \
    --workers 1 --queue-size 1 --grace-seconds 1; then
    submit '{"model": "lora_a.safetensors"}'
    running_id=$job_id
    if [ -n "$running_id" ] && wait_job "$running_id" running 20; then
        pass "slowed job runs"
        if wait_for "$running_id" '.progress.done > 0' 20; then
            keep Job "running job"
            check "running job shows progress" jq -e \
                '.state == "running" and .progress.total > .progress.done and .progress.fraction > 0 and .progress.fraction < 1 and (.progress.current_key|type=="string") and (.progress.eta_seconds|type=="number") and (.started_at|type=="string") and .finished_at == null' "$body_file"
        else
            fail "running job reports progress" "$(last_response)"
        fi
        submit '{"model": "nested/lora_b.safetensors"}'
        expect_status "second job queued" 202
        queued_id=$job_id
        check "second job state queued" jq -e '.state == "queued"' "$body_file"
        request GET /healthz
        check "healthz counts running and queued" jq -e '.jobs_running == 1 and .queue_depth == 1' "$body_file"
        submit '{"model": "lora_a.safetensors", "new_rank": 2}'
        expect_error "queue full -> 429" 429 queue_full '.error.details.queue_size == 1'
        check "429 Retry-After: 5" test "$(header Retry-After)" = 5
        request GET "/v1/jobs/$running_id/result"
        expect_error "result of a running job -> 409" 409 result_not_ready

        request DELETE "/v1/jobs/$queued_id"
        expect_status "DELETE queued job -> 200" 200
        check "queued job now cancelled" jq -e '.state == "cancelled"' "$body_file"
        keep Job "cancelled queued job"
        request DELETE "/v1/jobs/$running_id"
        expect_status "DELETE running job -> 202" 202
        if wait_job "$running_id" "cancelled succeeded failed" 20; then
            check "running job ends cancelled" jq -e '.state == "cancelled" and (.finished_at|type=="string") and .result == null and .error.code == "cancelled"' "$body_file"
            keep Job "cancelled running job"
        else
            fail "cancel stops a running job" "$(last_response)"
        fi
        check "no partial file left by the cancelled job" test -z "$(find "$work/data-slow/results/$running_id" -type f 2>/dev/null)"
        request GET "/v1/jobs/$running_id/result"
        expect_error "result of a cancelled job -> 409" 409 result_not_ready
        request DELETE "/v1/jobs/$running_id"
        expect_status "DELETE cancelled job -> 204" 204
        request GET "/v1/jobs/$running_id"
        expect_error "removed cancelled job -> 404" 404 job_not_found
        request DELETE "/v1/jobs/$queued_id"
        expect_status "DELETE cancelled queued job -> 204" 204
    else
        fail "slowed job runs" "$(last_response)"
    fi
    stop_server TERM
    check "SIGTERM: slow server exits 0" test "$server_status" = 0
fi

# ================================================================ slow submit on one HTTP thread
# Submits run on the HTTP worker with their connection suspended: with one
# HTTP thread and a submit held for 3 s, polls are still answered meanwhile.
echo "# slow submit (at ${SECONDS} s)"
if MERGESVD_FAILPOINT_SUBMIT_SLEEP_MS=3000 start_server slow-submit "$work/data-slow-submit" \
    --http-threads 1; then
    curl -s --max-time $((30 * SCALE)) -o "$work/slow-submit.json" -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary '{"model": "lora_a.safetensors"}' \
        "$base/v1/resize-lora" >"$work/slow-submit.status" 2>/dev/null &
    submit_pid=$!
    sleep 0.5
    request GET /healthz
    expect_status "healthz answered while a submit is held" 200
    request GET /v1/jobs
    expect_status "job list answered while a submit is held" 200
    check "the submit was still held meanwhile" kill -0 "$submit_pid"
    wait "$submit_pid"
    check "the held submit then answers 202" test "$(cat "$work/slow-submit.status")" = 202
    check "with its job" jq -e '.kind == "resize" and (.id|test("^[0-9a-f]{32}$"))' "$work/slow-submit.json"
    held_job=$(jq -r .id "$work/slow-submit.json")
    wait_job "$held_job" "succeeded failed cancelled" 60 >/dev/null
    # a finished job's report is read back on the other worker: not behind a held submit
    curl -s --max-time $((30 * SCALE)) -o /dev/null -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary '{"model": "lora_a.safetensors"}' \
        "$base/v1/resize-lora" >"$work/slow-submit.status" 2>/dev/null &
    submit_pid=$!
    sleep 0.5
    request GET "/v1/jobs/$held_job"
    check "finished job (report from the store) answered while a submit is held" jq -e \
        '.state == "succeeded" and (.report.modules|length) > 0' "$body_file"
    check "that submit was still held meanwhile" kill -0 "$submit_pid"
    # shutdown while a submit is held: it is answered, the server exits 0
    stop_server TERM
    check "SIGTERM with a held submit: exits 0" test "$server_status" = 0
    wait "$submit_pid"
    check "the held submit got an answer" grep -Eq '^(202|503)$' "$work/slow-submit.status"
fi

# ================================================================ restart in the middle of a queue
echo "# restart (at ${SECONDS} s)"
restart_data=$work/data-restart
if start_server restart-1 "$restart_data" --workers 1; then
    submit '{"model": "lora_a.safetensors", "output_name": "done.safetensors"}'
    done_id=$job_id
    wait_job "$done_id" "succeeded failed cancelled" 60 >/dev/null
    done_sha=$(json .result.sha256)
    check "first job succeeded before the restart" test "$(json .state)" = succeeded
    jq -c .report "$body_file" >"$work/done-report.json"
    stop_server TERM
    check "SIGTERM exits 0" test "$server_status" = 0
fi
if MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS=$SLOW_MS start_server restart-2 "$restart_data" --workers 1; then
    submit '{"model": "lora_a.safetensors", "output_name": "killed.safetensors"}'
    killed_id=$job_id
    wait_job "$killed_id" running 20 >/dev/null
    check "job running when the server is killed" test "$(json .state)" = running
    submit '{"model": "nested/lora_b.safetensors", "output_name": "queued.safetensors"}'
    waiting_id=$job_id
    check "second job queued behind it" jq -e '.state == "queued"' "$body_file"
    # Each report sleeps SLOW_MS (300 ms) and progress is saved on the first report, then
    # once a second: by the time module 5 is shown, a save with done >= 4 has happened.
    if wait_for "$killed_id" '.progress.done >= 5' 20; then
        killed_total=$(json .progress.total)
    else
        fail "killed job reports progress before the kill" "$(last_response)"
        killed_total=
    fi
    stop_server 9
fi
# The queued job starts after the crash; a SIGTERM while it runs puts it back in the queue.
if MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS=$SLOW_MS start_server restart-2b "$restart_data" \
    --workers 1 --grace-seconds 1; then
    if wait_job "$waiting_id" running 20; then
        pass "queued job starts after the crash"
        # --grace-seconds 1 against a job of minutes: exiting at all (stop_server gives up
        # after 30 s) shows the grace period ended the wait.
        stop_server TERM
        check "SIGTERM with a running job exits 0 after the grace period" test "$server_status" = 0
        check "shutdown put the job back in the queue" awk -v line="job $waiting_id resize queued" \
            '/^shutdown:/ { after = 1 } after && $0 == line { found = 1 } END { exit !found }' "$server_log"
    else
        fail "queued job starts after the crash" "$(last_response)"
        stop_server 9
    fi
fi
if start_server restart-3 "$restart_data" --workers 1; then
    timeout $((20 * SCALE)) "$MERGESVD" serve --listen 127.0.0.1:0 --models "$models" \
        --data "$restart_data" >"$work/second.log" 2>&1
    second_status=$?
    check "a second server on the same data exits 1" test "$second_status" = 1
    check "a second server says the data directory is in use" grep -q 'in use' "$work/second.log"
    request GET /v1/jobs
    check "finished job still listed after restart" jq -e --arg id "$done_id" 'any(.jobs[]; .id == $id and .state == "succeeded")' "$body_file"
    check "the listing holds its report (read back from the store)" jq -e --arg id "$done_id" --slurpfile report "$work/done-report.json" 'any(.jobs[]; .id == $id and .report == $report[0] and (.report.modules|length) > 0)' "$body_file"
    request GET "/v1/jobs/$done_id"
    check "its report is the same after restart" jq -e --slurpfile report "$work/done-report.json" '.report == $report[0]' "$body_file"
    OUT=$work/after-restart.safetensors request GET "/v1/jobs/$done_id/result"
    expect_status "finished job downloadable after restart" 200
    check "same bytes after restart" test "$(sha256sum <"$work/after-restart.safetensors" | cut -d' ' -f1)" = "$done_sha"
    request GET "/v1/jobs/$killed_id"
    check "killed job failed with code interrupted" jq -e '.state == "failed" and .error.code == "interrupted" and .result == null' "$body_file"
    check "killed job keeps its last saved progress" jq -e --argjson total "${killed_total:-0}" \
        '.progress.done >= 4 and .progress.done < .progress.total and .progress.total == $total and .progress.fraction > 0' "$body_file"
    keep Job "interrupted job"
    check "no partial file of the killed job under data/results" test -z "$(find "$restart_data/results/$killed_id" -type f 2>/dev/null)"
    request GET "/v1/jobs/$killed_id/result"
    expect_error "killed job has no result" 409 result_not_ready
    if [ -n "$waiting_id" ] && wait_job "$waiting_id" "succeeded failed cancelled" 60; then
        check "interrupted-by-SIGTERM job ran to success after restart" jq -e '.state == "succeeded" and .result.file == "queued.safetensors"' "$body_file"
        check "its output is the only file in its results folder" test "$(find "$restart_data/results/$waiting_id" -type f | wc -l)" = 1
    else
        fail "queued job runs after restart" "$(last_response)"
    fi
    stop_server TERM
    check "SIGTERM after restart exits 0" test "$server_status" = 0
fi

# ================================================================ auth
echo "# auth (at ${SECONDS} s)"
printf '  s3cret-token  \nsecond line ignored\n' >"$work/token"
if start_server auth "$work/data-auth" --token-file "$work/token"; then
    request GET /v1/jobs
    expect_error "no token -> 401" 401 unauthorized
    check "401 carries WWW-Authenticate: Bearer" grep -qi '^www-authenticate: Bearer' "$headers_file"
    request GET /v1/nothing-here
    expect_error "unknown route without token -> 401" 401 unauthorized
    request GET /v1/jobs -H 'Authorization: Bearer wrong'
    expect_error "wrong token -> 401" 401 unauthorized
    request GET /v1/jobs -H 'Authorization: Bearer s3cret-token-and-more'
    expect_error "token with a suffix -> 401" 401 unauthorized
    request GET /v1/jobs -H 'Authorization: Basic czNjcmV0LXRva2Vu'
    expect_error "basic auth -> 401" 401 unauthorized
    post_json /v1/resize-lora '{"model": "lora_a.safetensors"}'
    expect_error "submit without token -> 401" 401 unauthorized
    # refused before its body is read: strangers cannot make the server
    # buffer a megabyte per connection (a body over the limit is 401, not 413)
    { printf '{"model": "lora_a.safetensors", "pad": "'; head -c $((512 * 1024)) /dev/zero | tr '\0' a; printf '"}'; } >"$work/half_mib.json"
    request POST /v1/resize-lora -H 'Content-Type: application/json' -H 'Expect: 100-continue' \
        --data-binary @"$work/half_mib.json"
    expect_error "512 KiB submit without token -> 401 before the body" 401 unauthorized
    check "the 401 before the body closes the connection" grep -qi '^connection: close' "$headers_file"
    request POST /v1/resize-lora -H 'Content-Type: application/json' -H 'Expect: 100-continue' \
        --data-binary @"$work/huge.json"
    expect_error "2 MiB submit without token -> 401" 401 unauthorized
    request GET /metrics
    expect_error "metrics without token -> 401" 401 unauthorized
    request GET /healthz
    expect_status "healthz needs no token" 200
    auth=(-H 'Authorization: Bearer s3cret-token')
    request GET /v1/jobs
    expect_status "right token (trimmed first line) -> 200" 200
    submit '{"model": "lora_a.safetensors"}'
    expect_status "submit with token -> 202" 202
    auth_id=$job_id
    if [ -n "$auth_id" ] && wait_job "$auth_id" "succeeded failed cancelled" 60; then
        OUT=/dev/null request GET "/v1/jobs/$auth_id/result"
        expect_status "download with token" 200
    fi
    auth=()
    OUT=/dev/null request GET "/v1/jobs/${auth_id:-x}/result"
    expect_status "download without token -> 401" 401
    stop_server TERM
    check "SIGTERM: auth server exits 0" test "$server_status" = 0
fi

echo "# listen address (at ${SECONDS} s)"
timeout $((20 * SCALE)) "$MERGESVD" serve --listen 0.0.0.0:0 --models "$models" \
    --data "$work/data-public" >"$work/public.log" 2>&1
public_status=$?
check "non-loopback listen without token exits 2" test "$public_status" = 2
check "non-loopback refusal explains itself" grep -qi 'token' "$work/public.log"
timeout $((20 * SCALE)) "$MERGESVD" serve --listen 127.0.0.1:0 --models "$models" \
    --data "$work/data-public" --token-file "$work/no-such-token" >"$work/notoken.log" 2>&1
missing_token_status=$?
check "missing token file is refused" test "$missing_token_status" -ne 0 -a "$missing_token_status" -ne 124

echo "# deploy/mergesvd.service"
unit_source=$TESTS_DIR/../deploy/mergesvd.service
if command -v systemd-analyze >/dev/null; then
    # verify wants the ExecStart binary to exist: point it at one that does.
    mkdir -p "$work/unit"
    sed "s|/usr/local/bin/mergesvd|$MERGESVD|" "$unit_source" >"$work/unit/mergesvd.service"
    if systemd-analyze verify "$work/unit/mergesvd.service" >"$work/unit/verify.out" 2>&1 &&
        ! grep -q . "$work/unit/verify.out"; then
        pass "systemd-analyze verify accepts the unit"
    else
        fail "systemd-analyze verify accepts the unit" "$(head -n 5 "$work/unit/verify.out")"
    fi
else
    echo "# (systemd-analyze not installed: unit not verified)"
fi
for setting in DynamicUser=yes ProtectSystem=strict StateDirectory=mergesvd NoNewPrivileges=yes \
    'CapabilityBoundingSet=$' 'ExecStart=/usr/local/bin/mergesvd serve .*--data /var/lib/mergesvd' \
    KillSignal=SIGTERM Restart=on-failure; do
    check "unit sets $setting" grep -Eq "^$setting" "$unit_source"
done
# The unit's command line, with the example environment file, runs the real binary.
exec_line=$(sed -n 's/^ExecStart=//p' "$unit_source")
while IFS='=' read -r key value; do
    case $key in ''|'#'*) continue ;; esac
    case $key in
    MERGESVD_LISTEN) value=127.0.0.1:0 ;;
    MERGESVD_MODELS) value=$models ;;
    esac
    exec_line=${exec_line//\$\{$key\}/$value}
    exec_line=${exec_line//\$$key/$value}
done <"$TESTS_DIR/../deploy/mergesvd.env"
mkdir -p "$work/data-unit"
exec_line=${exec_line//\/var\/lib\/mergesvd/$work/data-unit}
exec_line=${exec_line//\/usr\/local\/bin\/mergesvd/$MERGESVD}
read -ra exec_words <<<"$exec_line"
if [[ $exec_line == *'$'* ]]; then
    fail "every variable of ExecStart is set in deploy/mergesvd.env" "$exec_line"
elif launch unit "${exec_words[@]}"; then
    request GET /healthz
    expect_status "the unit's ExecStart with deploy/mergesvd.env serves" 200
    stop_server TERM
    check "the unit's server exits 0 on SIGTERM" test "$server_status" = 0
fi
check "unit's TimeoutStopSec exceeds its --grace-seconds" awk '
    /^ExecStart=/ { for (i = 1; i < NF; i++) if ($i == "--grace-seconds") grace = $(i + 1) }
    /^TimeoutStopSec=/ { split($0, kv, "="); stop = kv[2] + 0 }
    END { exit !(grace > 0 && stop > grace) }' "$unit_source"

service_finish
