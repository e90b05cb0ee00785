#!/usr/bin/env bash
# A full disk, end to end: `mergesvd serve` with --data and its models root
# on one small file system (a 16 MiB tmpfs), driven with curl and jq.
#   1. jobs succeed until the disk is nearly full;
#   2. nearly full: a resize, a merge and a /bbwm merge into the models root
#      fail with disk_full and leave no partial file; the service answers;
#   3. full to the last block: submits answer 507 disk_full; DELETE of a
#      finished job works (on the job store's reserve) and frees its space,
#      also when the reserve is gone (the job's file goes first);
#   4. DELETEs free space and the next resize, merge and /bbwm merge
#      succeed; a restart on a full disk starts, lists and deletes.
# The full disk is real (write(2) says ENOSPC), made with mount(8), which
# needs root (the CI runs as root); without it the test says so and is
# skipped (exit 77).  Run by `make check` with MERGESVD, BUILD_DIR and
# TESTS_DIR set (tests/local.mk); prints "N passed, M failed".
set -u

MERGESVD=${MERGESVD:?MERGESVD must name the mergesvd binary}
BUILD_DIR=${BUILD_DIR:?BUILD_DIR must name the build directory}
TESTS_DIR=${TESTS_DIR:?TESTS_DIR must name the tests source directory}
GEN_LORA=$BUILD_DIR/tests/gen_lora
GEN_CHECKPOINT=$BUILD_DIR/tests/gen_checkpoint
OPENAPI_SOURCE=$TESTS_DIR/../openapi.yaml
SCALE=${MERGESVD_TEST_TIMEOUT_SCALE:-1}
unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS MERGESVD_FAILPOINT_SUBMIT_SLEEP_MS

. "$TESTS_DIR/service_lib.sh"
service_setup disk_full

# ---------------------------------------------------------------- the small disk

small=$work/small
mkdir -p "$small"
if ! mount -t tmpfs -o size=16m tmpfs "$small" 2>"$work/mount.err"; then
    echo "disk_full_test: SKIP: cannot mount a tmpfs here ($(tr '\n' ' ' <"$work/mount.err"));"
    echo "disk_full_test: this test needs mount(8) (root); nothing was checked"
    exit 77
fi
mounts+=("$small")
echo "# --data and the models root on a 16 MiB tmpfs ($small)"
models=$small/models
data=$small/data
filler=$small/filler
mkdir -p "$models"
for tool in "$GEN_LORA" "$GEN_CHECKPOINT"; do
    [ -x "$tool" ] || { echo "disk_full_test: $tool is missing (make ${tool#"$BUILD_DIR"/})"; exit 1; }
done
# a 2.4 MB LoRA (rank 16) and two 0.7 MB SD1.5 checkpoints
if ! "$GEN_LORA" --arch sd15 --rank 16 --size small --output "$models/lora.safetensors" >"$work/gen.log" 2>&1 ||
    ! "$GEN_CHECKPOINT" --arch sd15 --size small --dtype f16 --seed 1 --output "$models/a.safetensors" >>"$work/gen.log" 2>&1 ||
    ! "$GEN_CHECKPOINT" --arch sd15 --size small --dtype f16 --seed 2 --output "$models/b.safetensors" >>"$work/gen.log" 2>&1; then
    echo "disk_full_test: generating the inputs failed: $(cat "$work/gen.log")"
    exit 1
fi

available() { # bytes free on the small disk
    local blocks size
    read -r blocks size < <(stat -f -c '%a %S' "$small")
    echo $((blocks * size))
}
# fill_leaving BYTES: the filler grows until BYTES are left (0: until ENOSPC).
fill_leaving() {
    local grow=$(($(available) - $1))
    if [ "$1" = 0 ]; then
        head -c 1G /dev/zero >>"$filler" 2>/dev/null
    elif [ "$grow" -gt 0 ]; then
        head -c "$grow" /dev/zero >>"$filler"
    fi
}
# stray_files: files on the small disk that are neither an input, the job
# store, the filler nor the result of a succeeded job (temporaries, partial
# outputs, folders of failed jobs).
stray_files() {
    local file id
    find "$small" -mindepth 1 \( -type f -o -type d -empty \) | while IFS= read -r file; do
        case $file in
        "$filler" | "$models"/lora.safetensors | "$models"/[ab].safetensors | "$models"/bbwm_ok.safetensors) continue ;;
        "$data"/jobs.lock | "$data"/jobs.sqlite3 | "$data"/jobs.sqlite3-wal | "$data"/jobs.sqlite3-shm | "$data"/jobs.sqlite3-reserve) continue ;;
        "$data"/results) continue ;;   # empty once every result is deleted
        "$data"/rotate-cache) continue ;;   # the rotate cache's folder, empty: no rotate here
        "$data"/results/*/*.safetensors)
            id=${file#"$data"/results/}
            id=${id%%/*}
            request GET "/v1/jobs/$id"
            [ "$status" = 200 ] && [ "$(json .state)" = succeeded ] && [ "$(json .result.file)" = "$(basename "$file")" ] && continue ;;
        esac
        echo "$file"
    done
}
no_stray_files() {
    local stray
    stray=$(stray_files)
    if [ -z "$stray" ]; then pass "$1"; else fail "$1" "left: $stray"; fi
}

resize_body() { echo "{\"model\": \"lora.safetensors\", \"new_rank\": $1, \"output_name\": \"$2\"}"; }
merge_body() { echo "{\"model_a\": \"a.safetensors\", \"model_b\": \"b.safetensors\", \"merge_method\": \"weighted_sum\", \"base_alpha\": 0.3, \"output_name\": \"$1\"}"; }
bbwm_body() { # DESTINATION: the web UI extension's body, written beside model A (the models root)
    jq -cn --arg d "$1" '{merge_method: "weighted_sum", model_a: "a.safetensors", model_b: "b.safetensors",
        model_c: null, base_alpha: 0.5, base_beta: 0.5, alpha: [], beta: [], precision: 16,
        weights_clip: false, re_basin: false, re_basin_iterations: 1, device: "cpu",
        work_device: null, prune: false, threads: 1, destination: $d, unload_before: false}'
}
job_id=
submit_to() { # PATH BODY: sets $job_id on 202
    post_json "$1" "$2"
    job_id=
    [ "$status" = 202 ] && job_id=$(json .id)
}
# run_to_success PATH BODY NAME: submitted, succeeded; its id in $job_id
run_to_success() {
    submit_to "$1" "$2"
    if [ -n "$job_id" ] && wait_for "$job_id" '.state == "succeeded" or .state == "failed"' 60 &&
        [ "$(json .state)" = succeeded ]; then
        pass "$3"
    else
        fail "$3" "$(last_response)"
    fi
}
# run_to_disk_full PATH BODY NAME: accepted, then failed with disk_full
run_to_disk_full() {
    submit_to "$1" "$2"
    if [ -n "$job_id" ] && wait_for "$job_id" '.state == "succeeded" or .state == "failed"' 60 &&
        jq -e '.state == "failed" and .error.code == "disk_full" and .result == null' "$body_file" >/dev/null; then
        pass "$3"
        keep Job "$3"
    else
        fail "$3" "$(last_response)"
    fi
}
answers() { # NAME: the service still answers reads
    request GET /healthz
    local health=$status
    request GET '/v1/jobs?limit=100'
    if [ "$health" = 200 ] && [ "$status" = 200 ] && jq -e '.jobs | length > 0' "$body_file" >/dev/null; then
        pass "$1"
    else
        fail "$1" "healthz $health; $(last_response)"
    fi
}
delete_job() { # ID NAME: 204, then 404, its folder gone
    request DELETE "/v1/jobs/$1"
    local deleted=$status
    request GET "/v1/jobs/$1"
    if [ "$deleted" = 204 ] && [ "$status" = 404 ] && [ ! -e "$data/results/$1" ]; then
        pass "$2"
    else
        fail "$2" "DELETE answered $deleted, then GET $status; $(last_response)"
    fi
}
downloads_intact() { # ID
    local sha
    request GET "/v1/jobs/$1"
    sha=$(json .result.sha256)
    OUT=$work/download request GET "/v1/jobs/$1/result"
    [ "$status" = 200 ] && [ -n "$sha" ] && [ "$(sha256sum <"$work/download" | cut -d' ' -f1)" = "$sha" ]
}

# ================================================================ 1. jobs fill the disk
echo "# 1. results fill the disk (at ${SECONDS} s)"
start_server full "$data" --models "$models" --workers 1 || exit 1
check "the job store keeps a reserve of 1 MiB" test "$(stat -c %s "$data/jobs.sqlite3-reserve")" = 1048576
kept_ids=()
for name in r1 r2 r3 r4; do
    run_to_success /v1/resize-lora "$(resize_body 8 "$name.safetensors")" "resize $name succeeds"
    kept_ids+=("$job_id")
done
run_to_success /v1/merge-models "$(merge_body m1.safetensors)" "merge m1 succeeds"
kept_ids+=("$job_id")

# ================================================================ 2. nearly full
echo "# 2. nearly full: 256 KiB left (at ${SECONDS} s)"
fill_leaving $((256 * 1024))
before=$(available)
run_to_disk_full /v1/resize-lora "$(resize_body 8 big.safetensors)" "a resize fails with disk_full"
failed_ids=("$job_id")
run_to_disk_full /v1/merge-models "$(merge_body m2.safetensors)" "a merge fails with disk_full"
failed_ids+=("$job_id")
check "the merge failed before writing anything" jq -e '.progress.done == 0' "$body_file"
post_json /bbwm/merge-models "$(bbwm_body bbwm_full.safetensors)"
expect_error "a /bbwm merge into the models root answers 507 disk_full" 507 disk_full
check "no file under the /bbwm destination" test ! -e "$models/bbwm_full.safetensors"
no_stray_files "no partial file, temporary or failed job's folder left"
after=$(available)
# the job store may have grown by a few pages meanwhile
check "the failed jobs gave back what they wrote ($before -> $after bytes free)" \
    test $((before - after)) -lt $((128 * 1024))
answers "the service answers while the disk is nearly full"

# ================================================================ 3. full
echo "# 3. full to the last block (at ${SECONDS} s)"
fill_leaving 0
check "the disk is full" test "$(available)" = 0
post_json /v1/resize-lora "$(resize_body 4 refused.safetensors)"
expect_error "a resize submit on a full disk answers 507 disk_full" 507 disk_full
post_json /v1/merge-models "$(merge_body refused.safetensors)"
expect_error "a merge submit on a full disk answers 507 disk_full" 507 disk_full
answers "the service answers while the disk is full"
freed_from=$(available)
delete_job "${kept_ids[0]}" "DELETE of a finished job works on a full disk"
check "it freed space (0 -> $(available) bytes, after the reserve was made again)" test "$(available)" -gt "$freed_from"
check "the reserve was released for it and made again" \
    grep -q 'reserve released to record a change' "$server_log"
check "the reserve is in place again" test "$(stat -c %s "$data/jobs.sqlite3-reserve")" = 1048576

# the reserve spent (as by an earlier write on the full disk): the file goes first
rm -f "$data/jobs.sqlite3-reserve"
fill_leaving 0
check "the disk is full again, without a reserve" test "$(available)" = 0
delete_job "${kept_ids[1]}" "DELETE works on a full disk without the reserve too"
check "the job's file went first to make room" grep -q "job ${kept_ids[1]}: the disk is full and the store's reserve spent" "$server_log"
answers "the service answers after it"

# ================================================================ 4. space freed, jobs again
echo "# 4. DELETE frees space; the next jobs succeed (at ${SECONDS} s)"
for id in "${kept_ids[@]:2}" "${failed_ids[@]}"; do
    delete_job "$id" "DELETE of job $id"
done
echo "#   $(available) bytes free after the DELETEs"
run_to_success /v1/resize-lora "$(resize_body 8 again.safetensors)" "the next resize succeeds"
resize_id=$job_id
check "its result downloads intact" downloads_intact "$resize_id"
run_to_success /v1/merge-models "$(merge_body m3.safetensors)" "the next merge succeeds"
check "its result downloads intact" downloads_intact "$job_id"
post_json /bbwm/merge-models "$(bbwm_body bbwm_ok.safetensors)"
expect_status "the next /bbwm merge into the models root succeeds" 200
check "its file is in the models root" test -s "$models/bbwm_ok.safetensors"
no_stray_files "no stray file after the jobs"
stop_server TERM
check "SIGTERM exits 0" test "$server_status" = 0

# ================================================================ a restart on a full disk
echo "# restart on a full disk (at ${SECONDS} s)"
fill_leaving 0
if start_server restart "$data" --models "$models" --workers 1; then
    pass "the server starts on a full disk"
    check "on the last process's reserve" grep -q 'reserve released to open the store' "$server_log"
    answers "it lists the jobs"
    check "it says why no job is accepted" grep -q 'new jobs are refused until there is room' "$server_log"
    post_json /v1/resize-lora "$(resize_body 4 refused.safetensors)"
    expect_error "a submit answers 507 disk_full" 507 disk_full
    delete_job "$resize_id" "a DELETE works"
    stop_server TERM
    check "SIGTERM exits 0" test "$server_status" = 0
fi

service_finish
