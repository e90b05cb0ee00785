#!/usr/bin/env bash
# End-to-end tests of result retention (`mergesvd serve --keep-results-bytes
# / --keep-results-seconds`): the real binary on a free loopback port,
# driven with curl and jq.  Run by `make check` with MERGESVD, BUILD_DIR and
# TESTS_DIR set (tests/local.mk); prints "N passed, M failed".
set -u

MERGESVD=${MERGESVD:?MERGESVD must name the mergesvd binary}
BUILD_DIR=${BUILD_DIR:?BUILD_DIR must name the build directory}
TESTS_DIR=${TESTS_DIR:?TESTS_DIR must name the tests source directory}
GEN_LORA=$BUILD_DIR/tests/gen_lora
OPENAPI_SOURCE=$TESTS_DIR/../openapi.yaml
# Every wait is bounded; a slow build (sanitizers) may stretch them.
SCALE=${MERGESVD_TEST_TIMEOUT_SCALE:-1}
unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS MERGESVD_FAILPOINT_SUBMIT_SLEEP_MS

. "$TESTS_DIR/service_lib.sh"
service_setup retention

# run_job BODY: submits and waits for success; the id in $job_id ("" on failure).
run_job() {
    submit "$1"
    if [ -z "$job_id" ] || ! wait_for "$job_id" '.state == "succeeded"' 120; then
        fail "job $1 succeeds" "$(last_response)"
        job_id=
    fi
}
expired() { # ID: "true" or "false" (or "" when the job cannot be read)
    request GET "/v1/jobs/$1"
    json .result_expired
}
metric() { # NAME: its value in /metrics
    request GET /metrics
    sed -n "s/^$1 //p" "$body_file"
}
downloads_intact() { # ID: the result downloads and matches the job's sha256
    local sha
    request GET "/v1/jobs/$1"
    sha=$(json .result.sha256)
    OUT=$work/download request GET "/v1/jobs/$1/result"
    [ "$status" = 200 ] && [ "$(sha256sum <"$work/download" | cut -d' ' -f1)" = "$sha" ]
}

# ---------------------------------------------------------------- inputs

models=$work/models
serve_options=(--models "$models")
mkdir -p "$models"
if [ ! -x "$GEN_LORA" ]; then
    echo "retention_test: $GEN_LORA is missing (make tests/gen_lora)"
    exit 1
fi
# small: results of ~0.7 MB; full: a 19 MB result, slow to download at 2 MB/s
if ! "$GEN_LORA" --arch sd15 --rank 16 --size small --output "$models/small.safetensors" >"$work/gen.log" 2>&1 ||
    ! "$GEN_LORA" --arch sd15 --rank 16 --size full --output "$models/full.safetensors" >>"$work/gen.log" 2>&1; then
    echo "retention_test: gen_lora failed: $(cat "$work/gen.log")"
    exit 1
fi
small_job='{"model": "small.safetensors", "new_rank": 4}'

# ================================================================ bad limits
echo "# bad limits are refused at startup"
for bad in "--keep-results-bytes 0" "--keep-results-bytes 12X" "--keep-results-bytes -1" \
    "--keep-results-seconds 0" "--keep-results-seconds soon" "--keep-results-seconds 1.5"; do
    # shellcheck disable=SC2086
    "$MERGESVD" serve --listen 127.0.0.1:0 --models "$models" --data "$work/data-refused" $bad \
        >"$work/refused.out" 2>&1
    code=$?
    option=${bad%% *}
    if [ "$code" = 2 ] && grep -q -- "$option" "$work/refused.out" && grep -q "want" "$work/refused.out"; then
        pass "serve $bad exits 2 with a reason"
    else
        fail "serve $bad exits 2 with a reason" "exit $code: $(head -c 300 "$work/refused.out")"
    fi
done

# ================================================================ byte limit
echo "# --keep-results-bytes: the third result evicts the first (at ${SECONDS} s)"
result_bytes=
if start_server probe "$work/data-probe"; then
    run_job "$small_job"
    [ -n "$job_id" ] && result_bytes=$(json .result.bytes)
    check "without limits a result is kept" test "$(json .result_expired)" = false
    request GET /metrics
    check "/metrics: kept bytes without limits" grep -qx "mergesvd_results_kept_bytes $result_bytes" "$body_file"
    check "/metrics: nothing expired without limits" grep -qx "mergesvd_results_expired_total 0" "$body_file"
    stop_server
fi

data=$work/data-bytes
if [ -n "$result_bytes" ] && start_server bytes "$data" --keep-results-bytes $((result_bytes * 5 / 2)); then
    run_job "$small_job"; first=$job_id
    run_job "$small_job"; second=$job_id
    check "two results fit: the first is kept" test "$(expired "$first")" = false
    run_job "$small_job"; third=$job_id
    if wait_for "$first" '.result_expired == true' 10; then
        pass "the third result evicts the first"
        keep Job "expired job"
    else
        fail "the third result evicts the first" "$(last_response)"
    fi
    check "the expired job keeps its record (state, url, bytes, sha256)" jq -e \
        --arg id "$first" '.state == "succeeded" and .result.url == "/v1/jobs/\($id)/result" and .result.bytes > 0 and (.result.sha256 | test("^[0-9a-f]{64}$"))' "$body_file"
    check "the second is kept" test "$(expired "$second")" = false
    check "the third is kept" test "$(expired "$third")" = false
    request GET "/v1/jobs?limit=10"
    check "the job list shows the flag" jq -e --arg id "$first" \
        '[.jobs[] | select(.id == $id)][0].result_expired == true and ([.jobs[] | select(.result_expired)] | length == 1)' "$body_file"
    keep JobList "job list with an expired job"
    request GET "/v1/jobs/$first/result"
    expect_error "download of the expired result -> 410 result_expired" 410 result_expired \
        '.error.message | length > 0'
    request HEAD "/v1/jobs/$first/result" -I
    expect_status "HEAD of the expired result -> 410" 410
    check "the expired result's folder is gone" test ! -e "$data/results/$first"
    check "the second downloads intact" downloads_intact "$second"
    check "the third downloads intact" downloads_intact "$third"
    request GET /metrics
    check "/metrics: bytes of the two results kept" grep -qx "mergesvd_results_kept_bytes $((result_bytes * 2))" "$body_file"
    check "/metrics: one result expired" grep -qx "mergesvd_results_expired_total 1" "$body_file"
    check "/metrics: the figures are typed" grep -qx "# TYPE mergesvd_results_expired_total counter" "$body_file"
    check "the expiry is logged" grep -q "job $first resize result expired" "$server_log"

    echo "# a restart keeps the flag; lower limits apply at startup"
    stop_server
    check "server exits 0 on SIGTERM" test "$server_status" = 0
    if start_server bytes-again "$data"; then
        check "after a restart (no limits) the first is still expired" test "$(expired "$first")" = true
        request GET "/v1/jobs/$first/result"
        expect_error "after a restart its download is still 410" 410 result_expired \
        '.error.message | length > 0'
        check "after a restart without limits the others stay" test "$(expired "$second")$(expired "$third")" = falsefalse
        stop_server
    fi
    if start_server bytes-lower "$data" --keep-results-bytes $((result_bytes * 3 / 2)); then
        check "a lower limit at startup expires the older of the two" test "$(expired "$second")" = true
        check "the newest stays" test "$(expired "$third")" = false
        check "its folder is gone" test ! -e "$data/results/$second"
        check "the newest still downloads" downloads_intact "$third"
        stop_server
    fi
fi

# ================================================================ age limit
echo "# --keep-results-seconds 1 (at ${SECONDS} s)"
data=$work/data-age
if start_server age "$data" --keep-results-seconds 1; then
    run_job "$small_job"; aged=$job_id
    if [ -n "$aged" ]; then
        if wait_for "$aged" '.result_expired == true' 10; then
            pass "a result expires about a second after it finished"
        else
            fail "a result expires about a second after it finished" "$(last_response)"
        fi
        request GET "/v1/jobs/$aged/result"
        expect_error "its download is then 410" 410 result_expired \
        '.error.message | length > 0'
        check "its folder is gone" test ! -e "$data/results/$aged"
    fi
    stop_server
fi

# ================================================================ downloads
echo "# a download in progress is not cut (at ${SECONDS} s)"
data=$work/data-download
if start_server download "$data" --keep-results-seconds 1; then
    run_job '{"model": "full.safetensors", "new_rank": 16, "save_precision": "fp16"}'
    big=$job_id
    if [ -n "$big" ]; then
        big_sha=$(json .result.sha256)
        # 19 MB at 2 MB/s: the server is still sending seconds after the limit passed
        curl -s --limit-rate 2M -o "$work/slow.bin" "$base/v1/jobs/$big/result" &
        slow_pid=$!
        background_pids+=("$slow_pid")
        sleep 2   # not a wait for an event: the age limit (1 s) must pass during the download
        if kill -0 "$slow_pid" 2>/dev/null; then
            check "during the download the result is not expired" test "$(expired "$big")" = false
            check "during the download the file is there" test -f "$data/results/$big/$(json .result.file)"
        else
            fail "the slow download lasts past the age limit" "it ended within 2 s"
        fi
        wait "$slow_pid"
        check "the slow download is intact" test "$(sha256sum <"$work/slow.bin" | cut -d' ' -f1)" = "$big_sha"
        if wait_for "$big" '.result_expired == true' 15; then
            pass "the result expires once the download ended"
        else
            fail "the result expires once the download ended" "$(last_response)"
        fi
        check "its folder is gone" test ! -e "$data/results/$big"
        # the access log line of the download (written when it ended) comes
        # before the expiry, and the download outlasted the limit
        check "the file was deleted after the download ended" awk -v id="$big" '
            $0 ~ "^http GET /v1/jobs/" id "/result 200 " { ms = $5 + 0; download = NR }
            $0 ~ "^job " id " resize result expired" { expiry = NR }
            END { exit !(download > 0 && expiry > download && ms > 1000) }' "$server_log"
    fi
    stop_server
fi

service_finish
