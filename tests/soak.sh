#!/usr/bin/env bash
# Soak test of `mergesvd serve`, run by hand (not by `make check`; README,
# "Reliability"): the real binary with concurrent clients submitting resize
# and merge jobs (/v1 and /bbwm, whose files go into the models root),
# polling, downloading whole files and ranges, cancelling and deleting, while
# the server is killed with SIGKILL at random moments and started again on
# the same --data and port.  At the end it checks that no accepted job was
# lost, that every succeeded job's file has its recorded size and sha256,
# that no temporary or partial file is left under --data or the models root,
# and that the server's RSS after the last cycle is within 10 % of the RSS
# after the first.  Prints one summary line; exits 0 when nothing failed.
#
#   cd build && nice bash ../tests/soak.sh [--cycles 50] [--clients 8] [--seed N] [--keep]
#
# MERGESVD (default ./mergesvd) and BUILD_DIR (default .: where
# tests/gen_lora and tests/gen_checkpoint are) may be set in the environment.
set -u

usage() {
    echo "usage: soak.sh [--cycles N] [--clients N] [--seed N] [--keep]" >&2
    exit 2
}
cycles=50
clients=8
seed=$(($(date +%s) % 100000))
keep_work=false
while [ $# -gt 0 ]; do
    case $1 in
    --cycles) [ $# -ge 2 ] || usage; cycles=$2; shift 2 ;;
    --clients) [ $# -ge 2 ] || usage; clients=$2; shift 2 ;;
    --seed) [ $# -ge 2 ] || usage; seed=$2; shift 2 ;;
    --keep) keep_work=true; shift ;;
    -h | --help) usage ;;
    *) echo "soak.sh: unknown argument $1" >&2; usage ;;
    esac
done
for number in "$cycles" "$clients" "$seed"; do
    [[ $number =~ ^[0-9]+$ ]] || { echo "soak.sh: '$number' is not a number" >&2; usage; }
done
if [ "$cycles" -lt 2 ] || [ "$clients" -lt 1 ]; then echo "soak.sh: at least 2 cycles and 1 client" >&2; usage; fi

BUILD_DIR=${BUILD_DIR:-$PWD}
MERGESVD=${MERGESVD:-$BUILD_DIR/mergesvd}
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
GEN_LORA=$BUILD_DIR/tests/gen_lora
GEN_CHECKPOINT=$BUILD_DIR/tests/gen_checkpoint
SCALE=${MERGESVD_TEST_TIMEOUT_SCALE:-1}
unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS MERGESVD_FAILPOINT_SUBMIT_SLEEP_MS
for program in "$MERGESVD" "$GEN_LORA" "$GEN_CHECKPOINT"; do
    [ -x "$program" ] || { echo "soak.sh: $program is missing (run from the build folder after make mergesvd tests/gen_lora tests/gen_checkpoint)" >&2; exit 1; }
done

. "$TESTS_DIR/service_lib.sh"
service_setup soak
soak_cleanup() {
    for pid in "${server_pids[@]}" "${background_pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
    wait 2>/dev/null
    if $keep_work; then echo "# work folder kept: $work"; else rm -rf "$work"; fi
}
trap soak_cleanup EXIT

RANDOM=$seed
random_below() { echo $(((RANDOM * 32768 + RANDOM) % $1)); }
# sleep_between MIN_MS MAX_MS
sleep_between() {
    local ms=$(($1 + $(random_below $(($2 - $1 + 1)))))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
}

# ---------------------------------------------------------------- inputs

data=$work/data
models=$work/models
mkdir -p "$data" "$models" "$work/logs"
generate() { # PROGRAM ARGS...
    if ! "$@" >"$work/gen.log" 2>&1; then
        echo "soak.sh: $(basename "$1") failed: $(cat "$work/gen.log")"
        exit 1
    fi
}
generate "$GEN_LORA" --arch sd15 --rank 16 --size small --seed 1 --output "$models/lora_r16.safetensors"
generate "$GEN_LORA" --arch sd15 --rank 8 --size small --conv --seed 2 --output "$models/lora_conv.safetensors"
for name in a b c d; do
    generate "$GEN_CHECKPOINT" --arch sd15 --size small --dtype f16 --seed "$(printf '%d' "'$name")" \
        --output "$models/ckpt_$name.safetensors"
done
inputs=$(cd "$models" && ls)

# A safetensors file whose header says where its data ends, and ends there.
safetensors_complete() {
    local file=$1 length end size
    size=$(stat -c %s "$file" 2>/dev/null) || return 1
    length=$(od -An -t u8 -N 8 "$file" 2>/dev/null | tr -d ' ')
    [ -n "$length" ] && [ "$length" -gt 1 ] && [ "$length" -lt "$size" ] || return 1
    end=$(tail -c +9 "$file" | head -c "$length" |
        jq '[to_entries[] | select(.key != "__metadata__") | .value.data_offsets[1]] | max // 0' 2>/dev/null) || return 1
    [ -n "$end" ] && [ $((8 + length + end)) -eq "$size" ]
}

# ---------------------------------------------------------------- the server

# The rotate cache kept small, so that rotate merges keep computing and
# writing entries (a kill then finds temporaries there) instead of hitting.
soak_serve_options=(--workers 2 --queue-size 64 --cache-bytes 3M --models "$models" --data "$data")
port=0
starts=0
# soak_launch LISTEN: starts the server; clients find it through $work/base.
soak_launch() {
    starts=$((starts + 1))
    server_log=$work/logs/server-$starts.log
    : >"$server_log"
    "$MERGESVD" serve --listen "$1" "${soak_serve_options[@]}" >"$server_log" 2>&1 &
    server_pid=$!
    server_pids+=("$server_pid")
    local found='' deadline=$((SECONDS + 30 * SCALE))
    while [ $SECONDS -lt $deadline ]; do
        found=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$server_log" | head -n 1)
        [ -n "$found" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$found" ]; then
        stop_server KILL
        return 1
    fi
    port=$found
    base=http://127.0.0.1:$port
    echo "$base" >"$work/base.new" && mv "$work/base.new" "$work/base"
}
# start_soak_server: on the port of the last start, or any free one if taken.
start_soak_server() {
    soak_launch "127.0.0.1:$port" && return 0
    [ "$port" != 0 ] && soak_launch 127.0.0.1:0 && port_changes=$((port_changes + 1)) && return 0
    fail "server starts (start $starts)" "$(tail -n 5 "$server_log" 2>/dev/null)"
    return 1
}
port_changes=0
server_rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$server_pid/status" 2>/dev/null; }
metrics_active() { # queued + running jobs, from /metrics; empty when no answer
    curl -s --max-time 10 "$base/metrics" 2>/dev/null |
        awk '/^mergesvd_jobs\{.*state="(queued|running)"/ {n += $2; seen = 1} END {if (seen) print n}'
}
# drain SECONDS: waits until no job is queued or running.
drain() {
    local deadline=$((SECONDS + $1 * SCALE)) active
    while [ $SECONDS -lt $deadline ]; do
        active=$(metrics_active)
        [ "$active" = 0 ] && return 0
        sleep 0.2
    done
    return 1
}

# ---------------------------------------------------------------- clients
#
# Each client runs its own loop and keeps its jobs' states in memory; what
# the closing checks need goes to $work/client-N/events, one line each:
#   accepted ID KIND | deleted ID | maybe_deleted ID | final ID STATE |
#   bbwm_ok DESTINATION | full ID | range ID | cut | queue_full | replayed |
#   anomaly TEXT

client_main() {
    local client=$1
    local dir=$work/client-$client
    mkdir -p "$dir"
    local events=$dir/events body=$dir/body headers=$dir/headers
    : >"$events"
    RANDOM=$((seed * 131 + client))
    declare -A state=() sha=() bytes=() file=()
    local sequence=0 status=000 curl_exit=0
    event() { echo "$*" >>"$events"; }
    # call METHOD PATH SECONDS [curl options...]: sets status and curl_exit
    call() {
        local method=$1 path=$2 seconds=$3 target
        shift 3
        target=$(<"$work/base")
        status=$(curl -s --max-time $((seconds * SCALE)) -X "$method" -o "${OUT:-$body}" -D "$headers" \
            -w '%{http_code}' "$@" "$target$path" 2>/dev/null)
        curl_exit=$?
        [ -n "$status" ] || status=000
    }
    ids_in() { # STATE...: the ids in any of these states, space separated
        local id wanted
        for id in "${!state[@]}"; do
            for wanted in "$@"; do [ "${state[$id]}" = "$wanted" ] && printf '%s ' "$id"; done
        done
    }
    pick() { # IDS...: one of them at random, or nothing
        [ $# -gt 0 ] || return 1
        local chosen=$(($(random_below $#) + 1))
        echo "${!chosen}"
    }
    header_value() { grep -i "^$1:" "$headers" | tail -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }
    # submit PATH BODY KIND: with an Idempotency-Key, sent again while the
    # server is down; a replay after a restart must give the same job.
    submit() {
        local path=$1 request=$2 kind=$3 key="soak-$seed-$client-$sequence" tries
        sequence=$((sequence + 1))
        for ((tries = 0; tries < 60; tries++)); do
            call POST "$path" 30 -H 'Content-Type: application/json' -H 'Expect:' \
                -H "Idempotency-Key: $key" --data-binary "$request"
            [ "$status" != 000 ] && break
            [ -e "$work/stop" ] && return 0
            sleep 0.25
        done
        case $status in
        202)
            local id
            id=$(jq -r '.id // empty' "$body")
            if [ -z "$id" ]; then event anomaly "202 without an id for $path"; return 0; fi
            [ "$tries" -gt 0 ] && [ "$(header_value Idempotent-Replayed)" = true ] && event replayed
            if [ -n "${state[$id]:-}" ]; then
                event anomaly "Idempotency-Key $key: job $id given twice"
                return 0
            fi
            state[$id]=queued
            event accepted "$id" "$kind"
            ;;
        429) event queue_full ;;
        000) ;;
        *) event anomaly "POST $path: status $status $(head -c 200 "$body")" ;;
        esac
    }
    submit_resize() {
        local model request precision
        model=$(pick lora_r16.safetensors lora_conv.safetensors)
        precision=$(pick '' '"save_precision": "fp16", ' '"save_precision": "bf16", ' '"save_precision": "float", ')
        if [ $((RANDOM % 3)) = 0 ]; then
            request="{\"model\": \"$model\", $precision\"new_rank\": 8, \"dynamic_method\": \"sv_fro\", \"dynamic_param\": 0.9$((RANDOM % 9))}"
        else
            request="{\"model\": \"$model\", $precision\"new_rank\": $((2 + RANDOM % 6))}"
        fi
        submit /v1/resize-lora "$request" resize
    }
    submit_merge() {
        local model_a model_b method request extra=''
        model_a=$(pick a b c d)
        model_b=$(pick a b c d)
        method=$(pick weighted_sum add_difference rotate rotate tensor_sum)
        case $method in
        add_difference) extra=", \"model_c\": \"ckpt_$(pick a b c d).safetensors\"" ;;
        rotate) extra=", \"base_beta\": 0.$((RANDOM % 10))" ;;
        esac
        request="{\"model_a\": \"ckpt_$model_a.safetensors\", \"model_b\": \"ckpt_$model_b.safetensors\", \"merge_method\": \"$method\", \"base_alpha\": 0.$((RANDOM % 100))$extra}"
        submit /v1/merge-models "$request" merge
    }
    # /bbwm: answered when the file is written into the models root.
    submit_bbwm() {
        local destination="bbwm_c${client}_$((RANDOM % 3)).safetensors" method
        local request
        method=$(pick weighted_sum rotate rotate)   # rotate: slower, so kills find it writing
        request="{\"merge_method\": \"$method\", \"model_a\": \"/home/u/models/ckpt_$(pick a b c d).safetensors\", \"model_b\": \"ckpt_$(pick a b c d)\", \"model_c\": null, \"base_alpha\": 0.$((RANDOM % 100)), \"alpha\": [], \"beta\": [], \"precision\": 16, \"device\": \"cpu\", \"threads\": 1, \"destination\": \"$destination\", \"unload_before\": false}"
        call POST /bbwm/merge-models 300 -H 'Content-Type: application/json' -H 'Expect:' --data-binary "$request"
        case $status in
        200)
            if [ "$curl_exit" != 0 ]; then event cut
            elif [ "$(cat "$body")" = null ]; then event bbwm_ok "$destination"
            else event anomaly "bbwm $destination: 200 with body $(head -c 200 "$body")"; fi
            ;;
        429) event queue_full ;;
        000) event cut ;;
        *) event anomaly "bbwm $destination: status $status $(head -c 200 "$body")" ;;
        esac
    }
    poll() {
        local id=$1 was new_state
        was=${state[$id]}
        call GET "/v1/jobs/$id" 30
        case $status in
        200)
            new_state=$(jq -r '.state // empty' "$body")
            case $was in
            succeeded | failed | cancelled)
                [ "$new_state" = "$was" ] || event anomaly "job $id was $was, now '$new_state'"
                return 0
                ;;
            esac
            case $new_state in
            succeeded)
                sha[$id]=$(jq -r '.result.sha256 // empty' "$body")
                bytes[$id]=$(jq -r '.result.bytes // empty' "$body")
                file[$id]=$(jq -r '.result.file // empty' "$body")
                if [ -z "${sha[$id]}" ] || [ -z "${bytes[$id]}" ] || [ -z "${file[$id]}" ]; then
                    event anomaly "job $id succeeded without a result: $(head -c 300 "$body")"
                fi
                ;;
            queued | running | failed | cancelled) ;;
            *) event anomaly "job $id: state '$new_state'"; return 0 ;;
            esac
            state[$id]=$new_state
            case $new_state in succeeded | failed | cancelled) event final "$id" "$new_state" ;; esac
            ;;
        404) [ "$was" = maybe_deleted ] || event anomaly "job $id ($was) is 404: lost" ;;
        000) ;;
        *) event anomaly "GET job $id: status $status $(head -c 200 "$body")" ;;
        esac
    }
    download() {
        local id=$1 size=${bytes[$1]} path="/v1/jobs/$1/result" on_disk
        on_disk=$data/results/$id/${file[$id]}
        case $((RANDOM % 10)) in
        0)
            call GET "$path" 30 -H "If-None-Match: \"${sha[$id]}\""
            case $status in
            304) ;;
            000) event cut ;;
            *) event anomaly "If-None-Match on $id: status $status" ;;
            esac
            ;;
        1 | 2 | 3 | 4)
            OUT=$dir/download call GET "$path" 60
            if [ "$status" = 000 ] || [ "$curl_exit" != 0 ]; then
                event cut
            elif [ "$status" != 200 ]; then
                event anomaly "download $id: status $status $(head -c 200 "$dir/download")"
            elif [ "$(stat -c %s "$dir/download")" != "$size" ] ||
                [ "$(sha256sum <"$dir/download" | cut -d' ' -f1)" != "${sha[$id]}" ]; then
                event anomaly "download $id: $(stat -c %s "$dir/download") bytes, not the job's $size bytes and sha256"
            else
                event full "$id"
            fi
            ;;
        *)
            local first last length
            first=$(random_below "$size")
            length=$((1 + $(random_below 65536)))
            last=$((first + length - 1))
            [ "$last" -lt "$size" ] || last=$((size - 1))
            length=$((last - first + 1))
            OUT=$dir/download call GET "$path" 30 -H "Range: bytes=$first-$last"
            if [ "$status" = 000 ] || [ "$curl_exit" != 0 ]; then
                event cut
            elif [ "$status" != 206 ] || [ "$(header_value Content-Range)" != "bytes $first-$last/$size" ]; then
                event anomaly "range $first-$last of $id: status $status, Content-Range $(header_value Content-Range)"
            elif ! cmp -s "$dir/download" <(tail -c +$((first + 1)) "$on_disk" | head -c "$length"); then
                event anomaly "range $first-$last of $id differs from $on_disk"
            else
                event range "$id"
            fi
            ;;
        esac
    }
    cancel() { # a queued or running job
        local id=$1
        call DELETE "/v1/jobs/$id" 30
        case $status in
        200)
            if [ "$(jq -r .state "$body")" = cancelled ]; then state[$id]=cancelled; event final "$id" cancelled
            else event anomaly "DELETE $id answered 200 with state $(jq -r .state "$body")"; fi
            ;;
        202) ;;   # running: cancelled when the worker stops, or finished first
        204) state[$id]=deleted; event deleted "$id" ;;
        000) state[$id]=maybe_deleted; event maybe_deleted "$id" ;;
        *) event anomaly "DELETE (cancel) $id: status $status $(head -c 200 "$body")" ;;
        esac
    }
    remove() { # a finished job and its file
        local id=$1
        call DELETE "/v1/jobs/$id" 30
        case $status in
        204)
            state[$id]=deleted
            event deleted "$id"
            [ ! -e "$data/results/$id" ] || event anomaly "job $id deleted (204) but $data/results/$id is still there"
            ;;
        000) state[$id]=maybe_deleted; event maybe_deleted "$id" ;;
        *) event anomaly "DELETE $id: status $status $(head -c 200 "$body")" ;;
        esac
    }

    local action pending id
    while [ ! -e "$work/stop" ]; do
        if [ -e "$work/pause" ]; then
            touch "$dir/paused"
            sleep 0.1
            continue
        fi
        rm -f "$dir/paused"
        # shellcheck disable=SC2046
        pending=$(set -- $(ids_in queued running); echo $#)
        action=$((RANDOM % 100))
        if [ "$action" -lt 30 ]; then
            if [ "$pending" -ge 4 ]; then
                action=40   # enough of ours in the queue: poll instead
            elif [ $((RANDOM % 5)) = 0 ]; then
                submit_bbwm; continue
            elif [ $((RANDOM % 2)) = 0 ]; then
                submit_resize; continue
            else
                submit_merge; continue
            fi
        fi
        if [ "$action" -lt 65 ]; then
            # shellcheck disable=SC2046
            if [ $((RANDOM % 5)) = 0 ]; then id=$(pick $(ids_in succeeded failed cancelled))
            else id=$(pick $(ids_in queued running)); fi
            [ -n "$id" ] && poll "$id"
        elif [ "$action" -lt 85 ]; then
            # shellcheck disable=SC2046
            id=$(pick $(ids_in succeeded)) && download "$id"
        elif [ "$action" -lt 93 ]; then
            # shellcheck disable=SC2046
            id=$(pick $(ids_in queued running)) && cancel "$id"
        else
            # shellcheck disable=SC2046
            id=$(pick $(ids_in succeeded failed cancelled)) && remove "$id"
        fi
        sleep 0.0$((RANDOM % 5))
    done
    rm -f "$dir/paused"
}

# ---------------------------------------------------------------- temporaries

# leftovers: files under --data and the models root that are neither the
# store's, a finished job's result, a rotate cache entry, an input nor a
# /bbwm destination; one path a line.
leftovers() {
    (
        cd "$data" || exit 0
        find . -mindepth 1 \( -type d -o -print \) | sed 's|^\./||' | while IFS= read -r path; do
            case $path in
            jobs.lock | jobs.sqlite3 | jobs.sqlite3-wal | jobs.sqlite3-shm | jobs.sqlite3-reserve) ;;
            rotate-cache/*) [[ ${path#rotate-cache/} =~ ^[0-9a-f]+\.entry$ ]] || echo "data/$path" ;;
            results/*/*) [[ ${path##*/} == .* ]] && echo "data/$path" ;;
            *) echo "data/$path" ;;
            esac
        done
    )
    (
        cd "$models" || exit 0
        find . -mindepth 1 \( -type d -o -print \) | sed 's|^\./||' | while IFS= read -r path; do
            [[ $path =~ ^(bbwm_c[0-9]+_[0-9]\.safetensors)$ ]] && continue
            grep -qxF "$path" <<<"$inputs" || echo "models/$path"
        done
    )
}

# ---------------------------------------------------------------- the cycles

echo "# soak: $cycles cycles, $clients clients, seed $seed, work $work"
start_soak_server || exit 1
for ((client = 1; client <= clients; client++)); do
    client_main "$client" &
    background_pids+=($!)
done

kills=0
temporaries_after_kill=0
temporaries_removed=0
rss_first=''
rss_last=''
# The same work before each RSS sample, in a server just started: two
# rounds of a resize of each LoRA, a merge of each kind, their downloads and
# a /bbwm merge, one at a time.  The jobs count as the others do (client 0).
mkdir -p "$work/client-0"
calibration_events=$work/client-0/events
: >"$calibration_events"
calibration=(
    '/v1/resize-lora {"model": "lora_r16.safetensors", "new_rank": 4}'
    '/v1/resize-lora {"model": "lora_conv.safetensors", "new_rank": 4, "save_precision": "fp16"}'
    '/v1/merge-models {"model_a": "ckpt_a.safetensors", "model_b": "ckpt_b.safetensors", "merge_method": "weighted_sum", "base_alpha": 0.3}'
    '/v1/merge-models {"model_a": "ckpt_a.safetensors", "model_b": "ckpt_b.safetensors", "model_c": "ckpt_c.safetensors", "merge_method": "add_difference"}'
    '/v1/merge-models {"model_a": "ckpt_c.safetensors", "model_b": "ckpt_d.safetensors", "merge_method": "rotate", "base_alpha": 0.5, "base_beta": 0.2}'
    '/bbwm/merge-models {"merge_method": "weighted_sum", "model_a": "ckpt_a", "model_b": "ckpt_d", "base_alpha": 0.4, "destination": "bbwm_c0_0.safetensors"}'
)
calibrate() {
    local entry path id sha
    for _ in 1 2; do
        for entry in "${calibration[@]}"; do
            path=${entry%% *}
            post_json "$path" "${entry#* }"
            if [ "$path" = /bbwm/merge-models ]; then
                if [ "$status" = 200 ]; then echo "bbwm_ok bbwm_c0_0.safetensors" >>"$calibration_events"
                else echo "anomaly calibration $path: $(last_response)" >>"$calibration_events"; fi
                continue
            fi
            id=$(json '.id // empty')
            if [ "$status" != 202 ] || [ -z "$id" ]; then
                echo "anomaly calibration $path: $(last_response)" >>"$calibration_events"
                continue
            fi
            echo "accepted $id ${path#/v1/}" >>"$calibration_events"
            if ! wait_job "$id" "succeeded failed cancelled" 120 >/dev/null || [ "$(json .state)" != succeeded ]; then
                echo "anomaly calibration job $id: $(last_response)" >>"$calibration_events"
                continue
            fi
            sha=$(json .result.sha256)
            OUT=$work/calibration.out request GET "/v1/jobs/$id/result"
            if [ "$status" = 200 ] && [ "$(sha256sum <"$work/calibration.out" | cut -d' ' -f1)" = "$sha" ]; then
                echo "full $id" >>"$calibration_events"
            else
                echo "anomaly calibration download $id: status $status" >>"$calibration_events"
            fi
        done
    done
}
# measure_rss VARIABLE: with the clients paused (or stopped), the restarted
# server's requeued jobs done and the calibration run, the server's VmRSS
# (kB); then the clients go on.
measure_rss() {
    local deadline client
    deadline=$((SECONDS + 300 * SCALE))
    for ((client = 1; client <= clients; client++)); do
        while [ ! -e "$work/client-$client/paused" ] && kill -0 "${background_pids[$((client - 1))]}" 2>/dev/null &&
            [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    done
    drain 300 || fail "queue drained for the RSS sample" "active $(metrics_active)"
    calibrate
    drain 60
    sleep 1
    printf -v "$1" '%s' "$(server_rss_kb)"
    rm -f "$work/pause"
}

for ((cycle = 1; cycle <= cycles; cycle++)); do
    sleep_between 1000 4000
    # The first and the last kill pause the clients for an RSS sample in
    # the server started after it; the last one ends their work.
    [ "$cycle" = 1 ] && touch "$work/pause"
    [ "$cycle" = "$cycles" ] && touch "$work/stop"
    stop_server KILL
    # What the kill left: the next start must remove the rotate cache's
    # temporaries and the results of the jobs it interrupted.
    left=$(leftovers)
    if [ -n "$left" ]; then
        temporaries_after_kill=$((temporaries_after_kill + $(wc -l <<<"$left")))
        sed "s/^/cycle $cycle: /" <<<"$left" >>"$work/left-by-kills"
    fi
    sleep_between 0 300
    start_soak_server || break
    kills=$((kills + 1))
    if [ -n "$left" ]; then
        now=$(leftovers)
        while IFS= read -r path; do
            if ! grep -qxF "$path" <<<"$now"; then
                temporaries_removed=$((temporaries_removed + 1))
            elif ! grep -qxF "$path" "$work/stale" 2>/dev/null; then   # each said once
                echo "$path" >>"$work/stale"
                fail "cycle $cycle: left by the kill, still there after the restart: $path"
            fi
        done <<<"$left"
    fi
    [ "$cycle" = 1 ] && measure_rss rss_first
    printf '# cycle %d: killed and restarted (%s), %d accepted so far\n' "$cycle" "$base" \
        "$(cat "$work"/client-*/events 2>/dev/null | grep -c '^accepted ')"
done
touch "$work/stop"

# ---------------------------------------------------------------- the checks

echo "# clients ending, queue draining (at ${SECONDS} s)"
deadline=$((SECONDS + 300 * SCALE))
for pid in "${background_pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && fail "client $pid ends"
done
if drain 600; then pass "every queued job ran after the last restart"; else fail "queue drains" "active $(metrics_active)"; fi
measure_rss rss_last

events=$work/events
cat "$work"/client-*/events >"$events"
anomalies=$(grep -c '^anomaly ' "$events")
if [ "$anomalies" = 0 ]; then
    pass "clients saw nothing wrong (statuses, states, downloads, ranges)"
else
    fail "clients saw $anomalies anomalies" "$(grep '^anomaly ' "$events" | head -n 20 | cut -c9- | tr '\n' ';')"
fi

# verdict NAME COMMAND...: as check, without a response to show
verdict() {
    local name=$1; shift
    if "$@" >/dev/null 2>&1; then pass "$name"; else fail "$name"; fi
}

# Every job a client got 202 for: final now, or removed by its DELETE.
lost=0
not_final=0
accepted_count=0
while read -r _ id kind; do
    accepted_count=$((accepted_count + 1))
    deleted=false maybe=false
    grep -qx "deleted $id" "$events" && deleted=true
    grep -qx "maybe_deleted $id" "$events" && maybe=true
    request GET "/v1/jobs/$id"
    if [ "$status" = 404 ]; then
        $deleted || $maybe || { lost=$((lost + 1)); echo "  lost: $kind job $id"; }
    elif [ "$status" = 200 ]; then
        $deleted && { lost=$((lost + 1)); echo "  deleted (204) but still there: $id"; }
        case $(json .state) in
        succeeded | failed | cancelled) ;;
        *) not_final=$((not_final + 1)); echo "  not final: $id $(json .state)" ;;
        esac
    else
        lost=$((lost + 1))
        echo "  GET $id: status $status"
    fi
done < <(grep '^accepted ' "$events")
verdict "no accepted job lost ($accepted_count accepted)" test "$lost" = 0
verdict "every accepted job is final" test "$not_final" = 0

# Every job the server has: the succeeded ones' files as recorded.
: >"$work/jobs.jsonl"
cursor=''
while :; do
    request GET "/v1/jobs?limit=500${cursor:+&cursor=$cursor}"
    [ "$status" = 200 ] || { fail "GET /v1/jobs" "$(last_response)"; break; }
    jq -c '.jobs[]' "$body_file" >>"$work/jobs.jsonl"
    cursor=$(json '.next_cursor // empty')
    [ -n "$cursor" ] || break
done
verified=0
bad_files=0
while IFS=$'\t' read -r id file size sha; do
    path=$data/results/$id/$file
    if [ -f "$path" ] && [ "$(stat -c %s "$path")" = "$size" ] &&
        [ "$(sha256sum <"$path" | cut -d' ' -f1)" = "$sha" ]; then
        verified=$((verified + 1))
    else
        bad_files=$((bad_files + 1))
        echo "  job $id: $path is not $size bytes with sha256 $sha"
    fi
done < <(jq -r 'select(.state == "succeeded" and .result != null) | [.id, .result.file, .result.bytes, .result.sha256] | @tsv' "$work/jobs.jsonl")
verdict "every succeeded job's file has its recorded size and sha256 ($verified files)" test "$bad_files" = 0
# Only succeeded jobs keep a results folder, with their one file.
declare -A result_file=()
while IFS=$'\t' read -r id file; do result_file[$id]=$file; done < <(
    jq -r 'select(.state == "succeeded" and .result != null) | [.id, .result.file] | @tsv' "$work/jobs.jsonl")
extra=$(cd "$data/results" && for dir in *; do
    [ -e "$dir" ] || continue
    held=$(ls -A "$dir")
    [ -n "${result_file[$dir]:-}" ] && [ "$held" = "${result_file[$dir]}" ] || echo "results/$dir: ${held//$'\n'/ }"
done)
verdict "only succeeded jobs have a results folder, holding their file" test -z "$extra"
[ -z "$extra" ] || echo "$extra" | head -n 10 | sed 's/^/  /'

left=$(leftovers)
verdict "no temporary or partial file under --data or the models root" test -z "$left"
[ -z "$left" ] || echo "$left" | head -n 10 | sed 's/^/  /'
bbwm_files=0
bbwm_bad=0
for destination in $(grep '^bbwm_ok ' "$events" | cut -d' ' -f2 | sort -u); do
    if safetensors_complete "$models/$destination"; then bbwm_files=$((bbwm_files + 1))
    else bbwm_bad=$((bbwm_bad + 1)); echo "  $models/$destination is missing or cut short"; fi
done
verdict "every /bbwm destination answered 200 is a complete safetensors file ($bbwm_files files)" test "$bbwm_bad" = 0
verdict "the server's log has no sanitizer report" \
    bash -c "! grep -lE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' '$work'/logs/*.log"

if [ -n "$rss_first" ] && [ -n "$rss_last" ]; then
    if [ $((rss_last * 10)) -le $((rss_first * 11)) ] && [ $((rss_last * 10)) -ge $((rss_first * 9)) ]; then
        pass "RSS after the last cycle within 10 % of the first (${rss_first} kB -> ${rss_last} kB)"
    else
        fail "RSS after the last cycle within 10 % of the first" "${rss_first} kB -> ${rss_last} kB"
    fi
else
    fail "RSS measured after the first and the last cycle" "first '$rss_first', last '$rss_last'"
fi

count() { jq -r "select($1) | .id" "$work/jobs.jsonl" | wc -l; }
submitted=$((accepted_count + $(grep -c '^bbwm_ok ' "$events")))
succeeded=$(count '.state == "succeeded"')
failed_jobs=$(count '.state == "failed"')
interrupted=$(count '.state == "failed" and .error.code == "interrupted"')
cancelled=$(count '.state == "cancelled"')
deleted=$(grep -c '^deleted ' "$events")
echo "# done in ${SECONDS} s; $(grep -c '^queue_full' "$events") submits answered 429, $(grep -c '^replayed' "$events") replayed after a restart, $(grep -c '^cut' "$events") requests cut by kills, $port_changes port changes"
echo "soak: cycles $cycles, jobs submitted $submitted (202: $accepted_count, /bbwm 200: $((submitted - accepted_count))), succeeded $succeeded, failed $failed_jobs (interrupted $interrupted), cancelled $cancelled, deleted $deleted, kills survived $kills, temporaries left by kills $temporaries_after_kill (removed at restart $temporaries_removed), files verified $verified at the end + $(grep -c '^full ' "$events") downloads + $(grep -c '^range ' "$events") ranges + $bbwm_files /bbwm, RSS first ${rss_first:-?} kB last ${rss_last:-?} kB"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
