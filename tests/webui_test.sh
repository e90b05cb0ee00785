#!/usr/bin/env bash
# End-to-end tests of the web UI hand-off (serve --webui URL
# --webui-checkpoints DIR): /bbwm/merge-models with destination "memory" as
# the optimisation extension sends it, /v1/merge-models with
# load_into_webui, the pass-through of /sdapi and /bbwm, and the failures
# (web UI down, slow, answering 500).  The web UI is tests/fake_webui.py:
# it records every call, "loads" checkpoints from its folder (only valid
# safetensors files) and answers txt2img with megabytes of base64.  Run by
# `make check` with MERGESVD, BUILD_DIR and TESTS_DIR set (tests/local.mk);
# prints "N passed, M failed".
set -u

MERGESVD=${MERGESVD:?MERGESVD must name the mergesvd binary}
BUILD_DIR=${BUILD_DIR:?BUILD_DIR must name the build directory}
TESTS_DIR=${TESTS_DIR:?TESTS_DIR must name the tests source directory}
GEN_CHECKPOINT=$BUILD_DIR/tests/gen_checkpoint
OPENAPI_SOURCE=$TESTS_DIR/../openapi.yaml
SCALE=${MERGESVD_TEST_TIMEOUT_SCALE:-1}
# The web UI's slow calls wait this long; mergesvd gives up after TIMEOUT.
TIMEOUT=3
SLOW=60
unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS MERGESVD_FAILPOINT_SUBMIT_SLEEP_MS

. "$TESTS_DIR/service_lib.sh"
service_setup webui
response_bytes=400
command -v python3 >/dev/null || { echo "webui_test: python3 is required"; exit 1; }
if [ ! -x "$GEN_CHECKPOINT" ]; then
    echo "webui_test: $GEN_CHECKPOINT is missing (make tests/gen_checkpoint)"
    exit 1
fi

# ---------------------------------------------------------------- inputs

models=$work/models
webui_models=$work/webui/models/Stable-diffusion
checkpoints=$webui_models/mergesvd
mkdir -p "$models" "$checkpoints"
for seed in 1 2; do
    name=$([ $seed = 1 ] && echo a || echo b)
    "$GEN_CHECKPOINT" --size small --dtype f16 --arch sd15 --seed $seed \
        --output "$models/sd15_$name.safetensors" >"$work/gen.log" 2>&1 ||
        { echo "webui_test: gen_checkpoint failed: $(cat "$work/gen.log")"; exit 1; }
done
# the web UI's own checkpoint in the same folder: never touched by the keep limit
cp "$models/sd15_b.safetensors" "$checkpoints/users_own.safetensors"
# the merges the fake must be told to load, made by the command line
"$MERGESVD" merge --model_a "$models/sd15_a.safetensors" --model_b "$models/sd15_b.safetensors" \
    --merge_mode weighted_sum --alpha 0.5 --output "$work/reference_05.safetensors" >/dev/null 2>&1 ||
    { echo "webui_test: reference merge failed"; exit 1; }

# ---------------------------------------------------------------- the fake web UI

fake=
start_fake() {
    rm -f "$work/fake.port"
    python3 "$TESTS_DIR/fake_webui.py" --models "$work/webui/models/Stable-diffusion" \
        --port-file "$work/fake.port" >"$work/fake.log" 2>&1 &
    background_pids+=("$!")
    local deadline=$((SECONDS + 20 * SCALE))
    while [ ! -s "$work/fake.port" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    [ -s "$work/fake.port" ] || { echo "webui_test: the fake web UI did not start: $(cat "$work/fake.log")"; exit 1; }
    fake=http://127.0.0.1:$(cat "$work/fake.port")
}
fake_calls() { curl -s --max-time 10 "$fake/fake/calls" >"$work/calls.json"; }
fake_reset() { curl -s --max-time 10 -X POST "$fake/fake/reset" >/dev/null; }
fake_behave() { curl -s --max-time 10 -X POST --data-binary "$1" "$fake/fake/behave" >/dev/null; }
# calls_are PATH...: the fake saw exactly these calls ("METHOD PATH"), in order.
calls_are() {
    fake_calls
    local want got
    want=$(printf '%s\n' "$@")
    got=$(jq -r '.calls[] | .method + " " + .path' "$work/calls.json")
    [ "$want" = "$got" ] || { echo "  calls: $(echo "$got" | tr '\n' ',')"; return 1; }
}
# wait_in_flight PATH: until the fake has received PATH and not answered it.
wait_in_flight() {
    local deadline=$((SECONDS + 20 * SCALE))
    while [ $SECONDS -lt $deadline ]; do
        fake_calls
        jq -e --arg p "$1" 'any(.calls[]; .path == $p and (.done | not))' "$work/calls.json" >/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# The extension's body (sd-webui-bayesian-merger's merge request), as it sends it.
bbwm_body() { # BASE_ALPHA UNLOAD_BEFORE
    jq -cn --arg a "/home/u/webui/models/Stable-diffusion/sd15_a.safetensors" --argjson alpha "$1" --argjson unload "$2" \
        '{merge_method: "weighted_sum", model_a: $a, model_b: "sd15_b.safetensors", model_c: null,
          base_alpha: $alpha, base_beta: 0.5, alpha: [], beta: [], precision: 16, weights_clip: false,
          re_basin: false, re_basin_iterations: 1, device: "cpu", work_device: null, prune: false,
          threads: 1, destination: "memory", unload_before: $unload}'
}
bbwm() { post_json /bbwm/merge-models "$@"; }
newest_job() { curl -s --max-time 10 ${auth[@]+"${auth[@]}"} "$base/v1/jobs?limit=1" >"$work/job.json"; }
merges_in_folder() { find "$checkpoints" -maxdepth 1 -name 'mergesvd-*.safetensors' | sort; }

start_fake
token=webui-test-token-0123456789
echo "$token" >"$work/token"
auth=(-H "Authorization: Bearer $token")
serve_options=(--models "$models" --token-file "$work/token" --webui "$fake/"
    --webui-checkpoints "$checkpoints" --webui-keep 2 --webui-timeout $((120 * SCALE)))

# ================================================================ main server
echo "# main server (at ${SECONDS} s)"
if start_server main "$work/data-main"; then

# --- one iteration of the optimisation loop, exactly as the extension sends it
fake_reset
bbwm "$(bbwm_body 0.5 false)"
expect_status "bbwm destination memory -> 200" 200
check "it answers the body null" test "$(cat "$body_file")" = null
check "the web UI was asked to rescan, list and load, in that order" calls_are \
    "POST /sdapi/v1/refresh-checkpoints" "GET /sdapi/v1/sd-models" "POST /sdapi/v1/options"
newest_job
loaded_file=$(jq -r .loaded.file "$work/calls.json")
check "the web UI loaded a new file in --webui-checkpoints, named after the job" \
    test "$loaded_file" = "$checkpoints/mergesvd-$(jq -r '.jobs[0].id' "$work/job.json").safetensors"
check "the file it loaded is the merge (byte for byte the command line's)" \
    test "$(jq -r .loaded.sha256 "$work/calls.json")" = "$(sha256sum <"$work/reference_05.safetensors" | cut -d' ' -f1)"
check "options named the checkpoint by the title the web UI listed" jq -e \
    '.calls[2].body_bytes > 0 and .loaded.title == "mergesvd/" + (.loaded.file | split("/") | last) + " [" + (.loaded.sha256[0:10]) + "]"' "$work/calls.json"
check "the job: succeeded, no result file, report.webui says what was called and answered" jq -e \
    --arg f "$loaded_file" '.jobs[0] | .state == "succeeded" and .result == null and .params.load_into_webui == true and .params.output_name == null
     and .report.webui.file == $f and (.report.webui.checkpoint | startswith("mergesvd/mergesvd-"))
     and ([.report.webui.calls[].call] == ["POST /sdapi/v1/refresh-checkpoints", "GET /sdapi/v1/sd-models", "POST /sdapi/v1/options"])
     and all(.report.webui.calls[]; .status == 200) and .report.webui.deleted == []' "$work/job.json"
cp "$work/job.json" "$body_file"; keep JobList "jobs with a memory merge"
first_merge=$loaded_file

# then the loop's txt2img, through mergesvd
fake_reset
txt2img='{"prompt": "a cat", "negative_prompt": "", "steps": 20, "batch_size": 2, "cfg_scale": 7, "width": 512, "height": 512, "sampler_name": "Euler a", "seed": 1}'
OUT=$work/txt2img.json post_json /sdapi/v1/txt2img "$txt2img"
expect_status "txt2img through mergesvd -> the web UI's 200" 200
fake_calls
check "txt2img reached the web UI once, with the body as sent" jq -e \
    --arg sha "$(printf '%s' "$txt2img" | sha256sum | cut -d' ' -f1)" \
    '(.calls | length) == 1 and .calls[0].method == "POST" and .calls[0].path == "/sdapi/v1/txt2img" and .calls[0].body_sha256 == $sha and .calls[0].headers["content-type"] == "application/json"' "$work/calls.json"
check "the answer (megabytes of base64) came back byte for byte" \
    test "$(sha256sum <"$work/txt2img.json" | cut -d' ' -f1)" = "$(jq -r '.calls[0].answer_sha256' "$work/calls.json")"
check "two images of 3 MB each" jq -e '(.images | length) == 2 and (.images[0] | length) > 4000000' "$work/txt2img.json"
check "the web UI's headers are relayed" test "$(header X-Images)" = 2 -a "$(header Content-Type)" = application/json
check "the web UI generated with the merge loaded" jq -e --arg f "$first_merge" '.loaded.file == $f' "$work/calls.json"
check "the web UI never saw mergesvd's token" jq -e 'all(.calls[]; .headers.authorization == null)' "$work/calls.json"

# --- unload_before: the web UI lets go of its model before the merge is made
fake_reset
bbwm "$(bbwm_body 0.25 true)"
expect_status "bbwm memory with unload_before -> 200" 200
check "unload-checkpoint first, then rescan, list, load" calls_are "POST /sdapi/v1/unload-checkpoint" \
    "POST /sdapi/v1/refresh-checkpoints" "GET /sdapi/v1/sd-models" "POST /sdapi/v1/options"
second_merge=$(jq -r .loaded.file "$work/calls.json")
check "a new name each time" test -n "$second_merge" -a "$second_merge" != "$first_merge"
check "the merge was written after the unload was answered" python3 -c '
import json, os, sys
calls = json.load(open(sys.argv[1]))["calls"]
sys.exit(0 if os.stat(sys.argv[2]).st_mtime >= calls[0]["finished_at"] else 1)' "$work/calls.json" "$second_merge"
check "both merges kept so far (--webui-keep 2)" test "$(merges_in_folder | wc -l)" = 2

# --- several iterations: only the newest two stay, the web UI's own file is never touched
for alpha in 0.1 0.2 0.3; do
    bbwm "$(bbwm_body $alpha false)"
    [ "$status" = 200 ] || fail "iteration with base_alpha $alpha -> 200" "$(last_response)"
done
newest_job
check "after five merges, the newest two stay" test "$(merges_in_folder | wc -l)" = 2
fake_calls
check "the one loaded last is one of them" test -f "$(jq -r .loaded.file "$work/calls.json")"
check "the first ones are gone" test ! -e "$first_merge" -a ! -e "$second_merge"
check "the web UI's own checkpoint is still there" test -f "$checkpoints/users_own.safetensors"
check "the last job's report lists what it deleted" jq -e '.jobs[0].report.webui.deleted | length == 1 and (.[0] | startswith("mergesvd-"))' "$work/job.json"

# --- /v1/merge-models with load_into_webui, from any client
fake_reset
post_json /v1/merge-models '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum", "base_alpha": 0.5, "load_into_webui": true}'
expect_status "/v1 load_into_webui -> 202" 202
v1_id=$(json .id)
if wait_job "$v1_id" "succeeded failed cancelled" 60; then
    keep Job "a load_into_webui job"
    fake_calls
    check "the /v1 job loaded its merge into the web UI; the report says so" jq -e \
        --slurpfile calls "$work/calls.json" '.state == "succeeded" and .result == null and .params.load_into_webui == true
         and .report.webui.checkpoint == $calls[0].loaded.title and .report.webui.file == $calls[0].loaded.file
         and .report.webui.calls[-1].call == "POST /sdapi/v1/options" and .report.webui.calls[-1].status == 200' "$body_file"
    check "the /v1 merge is the command line's too" test "$(jq -r .loaded.sha256 "$work/calls.json")" = "$(sha256sum <"$work/reference_05.safetensors" | cut -d' ' -f1)"
fi

# --- the pass-through: path, query, headers, methods, the web UI's own errors
fake_reset
request GET '/sdapi/v1/progress?skip_current_image=true&x=%2F%20y' -H 'Connection: X-Hop' -H 'X-Hop: 1' \
    -H 'Keep-Alive: timeout=5' -H 'X-End-To-End: kept'
expect_status "GET /sdapi/v1/progress with a query -> 200" 200
fake_calls
check "the path and query reach the web UI as sent" jq -e '.calls[0].path == "/sdapi/v1/progress?skip_current_image=true&x=%2F%20y" and .calls[0].method == "GET"' "$work/calls.json"
check "end-to-end headers are forwarded, hop-by-hop ones not" jq -e \
    '.calls[0].headers["x-end-to-end"] == "kept" and .calls[0].headers["x-hop"] == null and .calls[0].headers["keep-alive"] == null and .calls[0].headers.authorization == null' "$work/calls.json"
check "the web UI's answer is relayed" jq -e '.progress == 0' "$body_file"
request HEAD /sdapi/v1/progress
expect_status "HEAD passes through" 200
request GET /sdapi/v1/no-such-thing
check "the web UI's 404 is relayed as it is" jq -e '.detail == "Not Found"' "$body_file"
expect_status "  (status 404)" 404
post_json /bbwm/other-endpoint '{}'
expect_status "another /bbwm endpoint passes through (the web UI's 404)" 404
check "  (with the web UI's body)" jq -e '.detail == "Not Found"' "$body_file"
request GET /fake/calls
expect_error "paths outside /sdapi and /bbwm are not passed through" 404 not_found
saved_auth=("${auth[@]}")
auth=()
fake_reset
request GET /sdapi/v1/sd-models
expect_error "the token is checked for passed-through requests" 401 unauthorized
auth=(-H "Authorization: Bearer wrong")
request GET /sdapi/v1/sd-models
expect_error "  (a wrong token too)" 401 unauthorized
auth=("${saved_auth[@]}")
check "  and nothing reached the web UI" calls_are

# --- a 20 MB body each way, byte for byte
python3 -c '
import base64, json, sys
blob = base64.b64encode(bytes(range(256)) * (15 * 1024 * 1024 // 256)).decode()
json.dump({"init_images": [blob], "prompt": "big"}, open(sys.argv[1], "w"))' "$work/big.json"
fake_reset
OUT=$work/big_answer.json request POST /sdapi/v1/img2img -H 'Content-Type: application/json' -H 'Expect:' --data-binary "@$work/big.json"
expect_status "img2img with a 20 MB body -> 200" 200
fake_calls
check "the body is over 20 MB" test "$(stat -c %s "$work/big.json")" -gt 20000000
check "the web UI received it byte for byte" jq -e --arg sha "$(sha256sum <"$work/big.json" | cut -d' ' -f1)" \
    '.calls[0].body_sha256 == $sha' "$work/calls.json"
check "the 20 MB answer came back byte for byte" \
    test "$(sha256sum <"$work/big_answer.json" | cut -d' ' -f1)" = "$(jq -r '.calls[0].answer_sha256' "$work/calls.json")" -a \
    "$(stat -c %s "$work/big_answer.json")" -gt 20000000

# --- the web UI answering 500
fake_behave '{"status": {"/sdapi/v1/options": 500}}'
before=$(merges_in_folder)
bbwm "$(bbwm_body 0.7 false)"
expect_error "the web UI failing the load -> 502 webui_error with its status and body" 502 webui_error \
    '.error.details.status == 500 and (.error.details.body_start | contains("forced 500")) and (.error.details.url | endswith("/sdapi/v1/options"))'
check "the merge it did not load is not left behind" test "$(merges_in_folder)" = "$before"
newest_job
check "the job failed with webui_error" jq -e '.jobs[0].state == "failed" and .jobs[0].error.code == "webui_error"' "$work/job.json"
fake_behave '{"status": {"/sdapi/v1/txt2img": 500}}'
fake_reset
post_json /sdapi/v1/txt2img '{"prompt": "x"}'
expect_status "a passed-through call the web UI fails: its 500 relayed" 500
fake_calls
check "  with its body, byte for byte" test "$(sha256sum <"$body_file" | cut -d' ' -f1)" = "$(jq -r '.calls[0].answer_sha256' "$work/calls.json")"
fake_behave '{"status": {}}'
stop_server TERM
check "the server stops cleanly" test "$server_status" = 0
fi

# ================================================================ the web UI slow
echo "# the web UI slow (at ${SECONDS} s)"
serve_options=(--models "$models" --token-file "$work/token" --webui "$fake"
    --webui-checkpoints "$checkpoints" --webui-timeout $((TIMEOUT * SCALE)))
if start_server slow "$work/data-slow"; then

# --- the web UI slow: /v1 and /healthz answer meanwhile, then 502 webui_unreachable
fake_behave "{\"delay\": {\"/sdapi/v1/txt2img\": $SLOW}}"
fake_reset
curl -s ${auth[@]+"${auth[@]}"} -o "$work/slow_txt2img.json" -D "$work/slow_txt2img.headers" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary '{"prompt": "slow"}' --max-time $((30 * SCALE)) "$base/sdapi/v1/txt2img" >"$work/slow_txt2img.status" &
slow_client=$!
background_pids+=("$slow_client")
if wait_in_flight /sdapi/v1/txt2img; then
    request GET /healthz
    expect_status "/healthz answers while txt2img waits on the web UI" 200
    request GET /v1/jobs
    expect_status "/v1/jobs answers meanwhile" 200
    request GET "/v1/jobs?limit=1"
    expect_status "/v1/jobs?limit=1 answers meanwhile" 200
    request GET /sdapi/v1/progress
    expect_status "another passed-through call (the web UI's progress) answers meanwhile" 200
    fake_calls
    check "  all while txt2img was still in flight" jq -e 'any(.calls[]; .path == "/sdapi/v1/txt2img" and (.done | not))' "$work/calls.json"
    check "  and its client still waiting" kill -0 "$slow_client"
else
    fail "the slow txt2img reached the web UI"
fi
wait "$slow_client" 2>/dev/null
cp "$work/slow_txt2img.json" "$body_file"; status=$(cat "$work/slow_txt2img.status")
cp "$work/slow_txt2img.headers" "$headers_file"
expect_error "a txt2img the web UI does not answer in time -> 502 webui_unreachable" 502 webui_unreachable \
    ".error.details.timeout_seconds == $((TIMEOUT * SCALE)) and (.error.details.url | endswith(\"/sdapi/v1/txt2img\"))"

fake_behave "{\"delay\": {\"/sdapi/v1/options\": $SLOW}}"
fake_reset
curl -s ${auth[@]+"${auth[@]}"} -o "$work/slow_bbwm.json" -D "$work/slow_bbwm.headers" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$(bbwm_body 0.8 false)" --max-time $((30 * SCALE)) "$base/bbwm/merge-models" >"$work/slow_bbwm.status" &
slow_client=$!
background_pids+=("$slow_client")
if wait_in_flight /sdapi/v1/options; then
    request GET /healthz
    expect_status "/healthz answers while a load waits on the web UI" 200
    request GET /v1/jobs?limit=1
    check "/v1/jobs shows the merge running meanwhile" jq -e '.jobs[0].state == "running" and .jobs[0].params.load_into_webui' "$body_file"
    check "  while the load was still in flight" kill -0 "$slow_client"
else
    fail "the slow load reached the web UI"
fi
wait "$slow_client" 2>/dev/null
cp "$work/slow_bbwm.json" "$body_file"; status=$(cat "$work/slow_bbwm.status")
cp "$work/slow_bbwm.headers" "$headers_file"
expect_error "a load the web UI does not answer in time -> 502 webui_unreachable" 502 webui_unreachable \
    ".error.details.timeout_seconds == $((TIMEOUT * SCALE)) and (.error.details.url | endswith(\"/sdapi/v1/options\"))"

# --- a passed-through call still waiting when the service stops: answered, clean exit
fake_behave "{\"delay\": {\"/sdapi/v1/txt2img\": $SLOW}}"
fake_reset
curl -s ${auth[@]+"${auth[@]}"} -o "$work/stopped.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary '{"prompt": "stopped"}' --max-time $((30 * SCALE)) "$base/sdapi/v1/txt2img" >"$work/stopped.status" &
slow_client=$!
background_pids+=("$slow_client")
wait_in_flight /sdapi/v1/txt2img || fail "the txt2img to be stopped reached the web UI"
stop_server TERM
check "the server stops cleanly with a call to the web UI in flight" test "$server_status" = 0
wait "$slow_client" 2>/dev/null
cp "$work/stopped.json" "$body_file"; status=$(cat "$work/stopped.status")
# 503 when the stop came first; 502 when the timeout did (a loaded machine)
check "  and that call was answered (503 shutting_down, or 502 if it timed out first)" jq -e \
    --arg status "$(cat "$work/stopped.status")" \
    '($status == "503" and .error.code == "shutting_down") or ($status == "502" and .error.code == "webui_unreachable")' "$body_file"
fake_behave '{"delay": {}}'
fi

# ================================================================ the web UI down
echo "# web UI down (at ${SECONDS} s)"
down_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
serve_options=(--models "$models" --webui "http://127.0.0.1:$down_port" --webui-checkpoints "$checkpoints")
auth=()
if start_server down "$work/data-down"; then
    before=$(merges_in_folder)
    bbwm "$(bbwm_body 0.5 false)"
    expect_error "bbwm memory with the web UI down -> 502 webui_unreachable" 502 webui_unreachable \
        ".error.details.url == \"http://127.0.0.1:$down_port/sdapi/v1/refresh-checkpoints\" and .error.details.timeout_seconds == null"
    check "no merge left in the folder" test "$(merges_in_folder)" = "$before"
    bbwm "$(bbwm_body 0.5 true)"
    expect_error "with unload_before it fails before merging" 502 webui_unreachable \
        '(.error.details.url | endswith("/sdapi/v1/unload-checkpoint"))'
    request GET /sdapi/v1/sd-models
    expect_error "a passed-through call with the web UI down -> 502 webui_unreachable" 502 webui_unreachable \
        ".error.details.url == \"http://127.0.0.1:$down_port/sdapi/v1/sd-models\""
    post_json /v1/merge-models '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum", "load_into_webui": true}'
    down_id=$(json .id)
    if wait_job "$down_id" "succeeded failed cancelled" 60; then
        check "a /v1 load_into_webui job fails with webui_unreachable" jq -e '.state == "failed" and .error.code == "webui_unreachable"' "$body_file"
        keep Job "a job the web UI could not take"
    fi
    stop_server TERM
fi

# ================================================================ no web UI
echo "# no web UI (at ${SECONDS} s)"
serve_options=(--models "$models")
if start_server plain "$work/data-plain"; then
    bbwm "$(bbwm_body 0.5 false)"
    expect_error "destination memory without --webui -> 422 unsupported_option" 422 unsupported_option \
        '.error.details.field == "destination" and (.error.details.options | contains("--webui-checkpoints"))'
    post_json /v1/merge-models '{"model_a": "sd15_a.safetensors", "model_b": "sd15_b.safetensors", "merge_method": "weighted_sum", "load_into_webui": true}'
    expect_error "load_into_webui without --webui -> 422 unsupported_option" 422 unsupported_option '.error.details.field == "load_into_webui"'
    request GET /sdapi/v1/sd-models
    expect_error "/sdapi without --webui -> 404 naming the option" 404 not_found '.error.message | contains("--webui")'
    stop_server TERM
fi
"$MERGESVD" serve --listen 127.0.0.1:0 --data "$work/data-bad" --models "$models" --webui http://127.0.0.1:1 >"$work/bad.out" 2>&1
check "--webui without --webui-checkpoints: exit 2" test $? = 2
"$MERGESVD" serve --listen 127.0.0.1:0 --data "$work/data-bad" --models "$models" --webui http://127.0.0.1:1 --webui-checkpoints "$work/nowhere" >"$work/bad.out" 2>&1
check "--webui-checkpoints that is not a folder: exit 2" test $? = 2
check "  saying so" grep -q 'webui-checkpoints' "$work/bad.out"

service_finish
