# Shared by the end-to-end tests of `mergesvd serve` (service_test.sh,
# merge_service_test.sh, retention_test.sh): sourced after the script has
# set MERGESVD, TESTS_DIR, OPENAPI_SOURCE and SCALE, it provides the
# counters, one server at a time on a free loopback port, curl requests
# and the closing checks.  The script then calls service_setup NAME.
#
# Settings a script may change before its first request:
#   serve_options    options every start_server passes to `mergesvd serve`
#   request_seconds  curl's limit per request (times SCALE), 30 by default
#   response_bytes   how much of a failing response's body is shown, 300
#   auth             curl options sent with every request (a token)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1${2:+: $2}"; }
check() { # NAME COMMAND...: passes when the command succeeds
    local name=$1; shift
    if "$@" >/dev/null 2>&1; then pass "$name"; else fail "$name" "$(last_response)"; fi
}
last_response() { printf 'status %s, body %s' "$status" "$(head -c "${response_bytes:-300}" "$body_file" 2>/dev/null)"; }

# service_setup NAME: the tools are there, $work is made and removed at exit
# with every server and background process still running.
service_setup() {
    local name=$1 tool
    for tool in curl jq sha256sum; do
        command -v "$tool" >/dev/null || { echo "${name}_test: $tool is required (apt-get install -y $tool)"; exit 1; }
    done
    work=$(mktemp -d "${TMPDIR:-/tmp}/mergesvd-${name//_/-}.XXXXXX") || exit 1
    body_file=$work/body
    headers_file=$work/headers
    trap service_cleanup EXIT
    trap 'exit 130' INT TERM
}
server_pids=()
background_pids=()
mounts=()
service_cleanup() {
    for pid in "${server_pids[@]}" "${background_pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
    wait 2>/dev/null
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}" 2>/dev/null; done
    rm -rf "$work"
}

# ---------------------------------------------------------------- servers

server_pid=
server_log=
server_status=
base=
serve_options=()

# start_server NAME DATA [serve options...]; env MERGESVD_FAILPOINT_* is passed through.
start_server() {
    local name=$1 data=$2; shift 2
    launch "$name" "$MERGESVD" serve --listen 127.0.0.1:0 ${serve_options[@]+"${serve_options[@]}"} --data "$data" "$@"
}
# launch NAME COMMAND...: starts a server and waits (bounded) for its port.
launch() {
    local name=$1; shift
    server_log=$work/$name.log
    : >"$server_log"
    "$@" >"$server_log" 2>&1 &
    server_pid=$!
    server_pids+=("$server_pid")
    local port='' deadline=$((SECONDS + 20 * SCALE))
    while [ $SECONDS -lt $deadline ]; do
        port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$server_log" | head -n 1)
        [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        fail "$name: server starts and prints its port" "$(tail -n 20 "$server_log")"
        return 1
    fi
    base=http://127.0.0.1:$port
    return 0
}

# stop_server [SIGNAL]: TERM by default; waits (bounded) and leaves the exit
# status in $server_status.
stop_server() {
    local signal=${1:-TERM} deadline=$((SECONDS + 30 * SCALE))
    server_status=
    [ -n "$server_pid" ] || return 1
    # bash reports a SIGKILLed job on stderr; its status is not needed.
    case $signal in KILL | 9) disown "$server_pid" 2>/dev/null ;; esac
    kill -"$signal" "$server_pid" 2>/dev/null
    while kill -0 "$server_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -9 "$server_pid" 2>/dev/null
        { wait "$server_pid"; } 2>/dev/null
        server_status=timeout
    else
        { wait "$server_pid"; } 2>/dev/null
        server_status=$?
    fi
    server_pid=
}

# ---------------------------------------------------------------- requests

status=

# request METHOD PATH [curl options...]: sets $status, $body_file, $headers_file;
# OUT=FILE request ... writes the body to FILE instead.
request() {
    local method=$1 path=$2; shift 2
    : >"$body_file"
    : >"$headers_file"
    status=$(curl -s --max-time $((${request_seconds:-30} * SCALE)) -X "$method" ${auth[@]+"${auth[@]}"} \
        -o "${OUT:-$body_file}" -D "$headers_file" -w '%{http_code}' "$@" "$base$path" 2>/dev/null)
    [ -n "$status" ] || status=000
}
post_json() { # PATH BODY [curl options...]
    local path=$1 body=$2; shift 2
    request POST "$path" -H 'Content-Type: application/json' -H 'Expect:' \
        --data-binary "$body" "$@"
}
header() { # NAME: the last value of a response header
    grep -i "^$1:" "$headers_file" | tail -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'
}
json() { jq -r "$1" "$body_file" 2>/dev/null; }

expect_status() { # NAME WANT
    if [ "$status" = "$2" ]; then pass "$1"; else fail "$1" "want $2; $(last_response)"; fi
}
# keep SCHEMA LABEL: the body is checked against openapi.yaml's SCHEMA at the end.
kept=0
keep() {
    kept=$((kept + 1))
    mkdir -p "$work/kept"
    cp "$body_file" "$work/kept/$kept.json"
    echo "$1 $work/kept/$kept.json $2" >>"$work/kept/list"
}

# expect_error NAME STATUS CODE [JQ-CONDITION]: the one error shape of the contract.
expect_error() {
    local name=$1 want_status=$2 want_code=$3 extra=${4:-true}
    local code content_type
    code=$(json '.error.code // empty')
    content_type=$(header Content-Type)
    if [ "$status" = "$want_status" ] && [ "$code" = "$want_code" ] &&
        [[ $content_type == application/json* ]] &&
        jq -e ".error.message | type == \"string\"" "$body_file" >/dev/null 2>&1 &&
        jq -e "$extra" "$body_file" >/dev/null 2>&1; then
        pass "$name"
        keep Error "$name"
    else
        fail "$name" "want $want_status $want_code${4:+ with $4} (Content-Type $content_type); $(last_response)"
    fi
}

job_id=
submit() { # BODY [curl options...]: POST /v1/resize-lora, sets $job_id on 202
    post_json /v1/resize-lora "$@"
    job_id=
    [ "$status" = 202 ] && job_id=$(json .id)
}
# wait_job ID STATES SECONDS: polls until the state is one of STATES (space separated).
wait_job() {
    local id=$1 states=" $2 " deadline=$((SECONDS + $3 * SCALE)) state=''
    [ -n "$id" ] || { echo "  (no job id to wait for)"; return 1; }
    while [ $SECONDS -lt $deadline ]; do
        request GET "/v1/jobs/$id"
        state=$(json .state)
        [[ $states == *" $state "* ]] && return 0
        sleep 0.1
    done
    echo "  (job $id still '$state' after $3 s)"
    return 1
}
# wait_for ID JQ-CONDITION SECONDS: polls the job until the condition holds.
wait_for() {
    [ -n "$1" ] || return 1
    wait_for_path "/v1/jobs/$1" "$2" "$3"
}
# wait_for_path PATH JQ-CONDITION SECONDS: polls PATH until the condition holds.
wait_for_path() {
    local path=$1 condition=$2 deadline=$((SECONDS + $3 * SCALE))
    while [ $SECONDS -lt $deadline ]; do
        request GET "$path"
        jq -e "$condition" "$body_file" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- the end

# service_finish: the kept bodies against openapi.yaml, no sanitizer report
# in any server log, the logs' last lines when something failed, and the
# closing "N passed, M failed"; returns 0 when nothing failed.
service_finish() {
    echo "# responses against openapi.yaml's schemas"
    local schema_python='' candidate line log
    for candidate in python3 /root/.pyenv/shims/python3; do
        if "$candidate" -c 'import yaml, openapi_schema_validator' >/dev/null 2>&1; then
            schema_python=$candidate
            break
        fi
    done
    if [ -z "$schema_python" ]; then
        fail "python3 with openapi_schema_validator" "install it with: pip install openapi-spec-validator"
    elif [ "$kept" -gt 0 ]; then
        "$schema_python" "$TESTS_DIR/openapi_check.py" "$OPENAPI_SOURCE" "$work/kept/list" >"$work/schema.out" 2>&1
        while IFS= read -r line; do
            case $line in
            "ok   - "*) pass "${line#ok   - }" ;;
            "FAIL - "*) fail "${line#FAIL - }" ;;
            *) fail "openapi_check" "$line" ;;
            esac
        done <"$work/schema.out"
    fi

    if grep -lE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$work"/*.log >"$work/sanitized" 2>/dev/null; then
        fail "no sanitizer report in the server logs" "$(tr '\n' ' ' <"$work/sanitized")"
    else
        pass "no sanitizer report in the server logs"
    fi
    if [ "$failed" -gt 0 ]; then
        for log in "$work"/*.log; do
            echo "# --- last lines of $(basename "$log")"
            tail -n 15 "$log" | sed 's/^/#   /'
        done
    fi

    echo "# done in ${SECONDS} s${skipped:+, $skipped skipped}"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
