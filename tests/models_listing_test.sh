#!/usr/bin/env bash
# End-to-end tests of GET /v1/models with thousands of files: paging covers
# every file exactly once across roots in a stable order, bad cursors and
# limits are refused, what the walk did not reach is reported, changes show
# on the next listing, and status reads are answered while listings are
# held in flight (MERGESVD_FAILPOINT_LISTING_GATE).  Run by `make check`
# with MERGESVD, BUILD_DIR and TESTS_DIR set (tests/local.mk); prints
# "N passed, M failed".
set -u

MERGESVD=${MERGESVD:?MERGESVD must name the mergesvd binary}
BUILD_DIR=${BUILD_DIR:?BUILD_DIR must name the build directory}
TESTS_DIR=${TESTS_DIR:?TESTS_DIR must name the tests source directory}
GEN_LORA=$BUILD_DIR/tests/gen_lora
OPENAPI_SOURCE=$TESTS_DIR/../openapi.yaml
# Every wait is bounded; a slow build (sanitizers) may stretch them.
SCALE=${MERGESVD_TEST_TIMEOUT_SCALE:-1}
unset MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS MERGESVD_FAILPOINT_SUBMIT_SLEEP_MS \
    MERGESVD_FAILPOINT_LISTING_GATE

. "$TESTS_DIR/service_lib.sh"
service_setup models_listing

# ---------------------------------------------------------------- inputs

# Three roots: A with 2400 files in folders (names chosen so that folder
# order and plain byte order differ: "x/..." before "x.safetensors"), B
# with 600, C with one file too deep to be walked.  Empty files are enough:
# they are listed with kind unknown and an error object.
root_a=$work/models_a
root_b=$work/models_b
root_c=$work/models_c
mkdir -p "$root_a"/{x,y/inner,z} "$root_b" "$root_c/1/2/3/4/5/6/7/8/9"
make_files() { # DIR PREFIX COUNT
    (cd "$1" && seq -f "$2%04g.safetensors" 1 "$3" | xargs touch)
}
make_files "$root_a/x" m 1000
make_files "$root_a/y" n 500
make_files "$root_a/y/inner" o 400
make_files "$root_a/z" p 497
touch "$root_a/x.safetensors" "$root_a/.hidden.safetensors" "$root_a/readme.txt"
make_files "$root_b" q 600
touch "$root_c/top.safetensors" "$root_c/1/2/3/4/5/6/7/8/9/deep.safetensors"
if ! "$GEN_LORA" --arch sd15 --rank 4 --size small --output "$root_a/lora.safetensors" \
    >"$work/gen.log" 2>&1; then
    echo "models_listing_test: gen_lora failed: $(cat "$work/gen.log")"
    exit 1
fi

# expected: "ROOT<TAB>PATH" lines in the documented order (root, then path
# folder by folder): '/' sorts below every byte of a name.
expected_listing() {
    local index=0 root
    for root in "$root_a" "$root_b" "$root_c"; do
        (cd "$root" && find . -mindepth 1 -maxdepth 9 -name '.*' -prune -o \
            -type f -name '*.safetensors' -printf '%P\n') |
            tr '/' '\001' | LC_ALL=C sort | tr '\001' '/' | sed "s/^/$index\t/"
        index=$((index + 1))
    done
}
expected_listing >"$work/expected"
expected_count=$(wc -l <"$work/expected")

# list_all LIMIT OUT: every page into OUT ("ROOT<TAB>PATH" lines) and OUT.json
# (one model object a line); pages in $pages; the last page stays in $body_file.
pages=0
list_all() {
    local limit=$1 out=$2 cursor='' query
    pages=0
    : >"$out"
    : >"$out.json"
    while :; do
        query="limit=$limit${cursor:+&cursor=$cursor}"
        request GET "/v1/models?$query"
        [ "$status" = 200 ] || { echo "  (page $pages: status $status)"; return 1; }
        pages=$((pages + 1))
        [ "$(json '.models | length')" -le "$limit" ] || { echo "  (page over $limit)"; return 1; }
        json '.models[] | "\(.root)\t\(.path)"' >>"$out"
        jq -c '.models[]' "$body_file" >>"$out.json"
        cursor=$(json '.next_cursor // empty')
        [ -n "$cursor" ] || return 0
        [ "$pages" -lt 1000 ] || return 1
    done
}

# ================================================================ listing
echo "# listing server (at ${SECONDS} s)"
gate=$work/listing.gate
if MERGESVD_FAILPOINT_LISTING_GATE=$gate start_server listing "$work/data" \
    --models "$root_a" --models "$root_b" --models "$root_c" --workers 1; then

request GET /v1/models
expect_status "GET /v1/models" 200
keep ModelList "GET /v1/models"
check "a page holds 100 models by default" jq -e '.models | length == 100' "$body_file"
check "a page that is not the last has a cursor" jq -e '.next_cursor | type == "string"' "$body_file"
check "the walk says it did not reach the folder too deep" jq -e \
    '.complete == false and .not_reached_count == 1 and .not_reached == [{"root": 2, "path": "1/2/3/4/5/6/7/8/9", "reason": "too_deep"}]' "$body_file"
check "a model entry has its root, path, bytes and kind" jq -e \
    '.models[0] | .root == 0 and .path == "lora.safetensors" and .bytes > 0 and .kind == "lora"' "$body_file"

if list_all 1000 "$work/listed"; then pass "pages of 1000 to the end ($pages pages)"; else fail "pages of 1000 to the end"; fi
keep ModelList "the last page"
check "the last page's next_cursor is null" jq -e '.next_cursor == null and (.models | length) > 0' "$body_file"
check "$expected_count files listed over the pages, in order, each once" cmp -s "$work/expected" "$work/listed"
check "no file listed twice" test -z "$(sort "$work/listed" | uniq -d)"
check "every root is reached" test "$(cut -f1 "$work/listed" | sort -u | tr '\n' ' ')" = "0 1 2 "
check "the file too deep is not listed" test -z "$(grep deep.safetensors "$work/listed")"
check "hidden and non-safetensors names are not listed" test -z "$(grep -e hidden -e readme "$work/listed")"
if list_all 333 "$work/listed_333"; then pass "pages of 333 to the end ($pages pages)"; else fail "pages of 333 to the end"; fi
check "pages of 333 list the same files in the same order" cmp -s "$work/expected" "$work/listed_333"
check "$pages pages of 333 for $expected_count files" test "$pages" -eq $(((expected_count + 332) / 333))

echo "# changes between pages (at ${SECONDS} s)"
# files added between pages: after the cursor they show, before it they do
# not, and nothing shows twice
request GET "/v1/models?limit=1000"
cursor=$(json .next_cursor)
json '.models[] | "\(.root)\t\(.path)"' >"$work/changing"
touch "$root_a/x/m0000.safetensors" "$root_b/q9999.safetensors"
while [ -n "$cursor" ]; do
    request GET "/v1/models?limit=1000&cursor=$cursor"
    json '.models[] | "\(.root)\t\(.path)"' >>"$work/changing"
    cursor=$(json '.next_cursor // empty')
done
check "a file added after the cursor shows on a later page" grep -qx "1	q9999.safetensors" "$work/changing"
check "a file added before the cursor does not show on later pages" \
    test -z "$(grep m0000 "$work/changing")"
check "nothing shows twice while files are added" test -z "$(sort "$work/changing" | uniq -d)"
request GET "/v1/models?limit=1000"
check "the next listing starts with the added file's folder in place" jq -e \
    '[.models[].path] | index("x/m0000.safetensors") == 1' "$body_file"

# a file rewritten in place (its folder untouched) shows its new size
printf 'x' >"$root_b/q0001.safetensors"
list_all 1000 "$work/rewritten"
check "a file rewritten in place shows its new size" jq -s -e \
    'map(select(.root == 1 and .path == "q0001.safetensors")) | length == 1 and .[0].bytes == 1' \
    "$work/rewritten.json"

echo "# bad limits and cursors (at ${SECONDS} s)"
# bad limits and cursors: 422 invalid_parameter naming the parameter
for bad in 0 1001 -1 abc 1.5 '%201'; do
    request GET "/v1/models?limit=$bad"
    expect_error "limit=$bad -> 422" 422 invalid_parameter '.error.details.field == "limit"'
done
# not a cursor, not hex, odd length, upper case, a NUL byte, not UTF-8,
# a root out of range, a sign
for bad in garbage 0- 0-zz 0-6 0-6A 0-6100 0-ff 3-61 %2B0-61 '' ; do
    request GET "/v1/models?cursor=$bad"
    expect_error "cursor='$bad' -> 422" 422 invalid_parameter '.error.details.field == "cursor"'
done

# ================================================================ status reads while listings are held
echo "# status reads while listings are held (at ${SECONDS} s)"
# A finished job's report is read back from the store: a status read that
# way must not queue behind listings.  The gate holds every listing until
# it is removed, so a status read answered while the listings are still
# pending did not wait for any of them.
submit '{"model": "lora.safetensors", "new_rank": 2}'
if [ -n "$job_id" ] && wait_for "$job_id" '.state == "succeeded"' 120; then
    pass "a resize job succeeds"
else
    fail "a resize job succeeds" "$(last_response)"
fi
: >"$gate"
listing_pids=()
for i in 1 2 3 4 5 6; do
    curl -s --max-time $((120 * SCALE)) -o "$work/held_$i.json" -w '%{http_code}' \
        "$base/v1/models?limit=1000" >"$work/held_$i.status" 2>/dev/null &
    listing_pids+=("$!")
    background_pids+=("$!")
done
deadline=$((SECONDS + 20 * SCALE))
until grep -q 'failpoint: models listing held' "$server_log" || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
check "a listing is held at the gate" grep -q 'failpoint: models listing held' "$server_log"
# (jq -e passes an empty body: the status comes first)
request_seconds=10 request GET "/v1/jobs/$job_id"
expect_status "a finished job's status is answered while listings are held" 200
check "  ... with its report, read back from the store" \
    jq -e '.state == "succeeded" and (.report | type == "object")' "$body_file"
[ "$status" = 200 ] && keep Job "status read while listings are held"
request_seconds=10 request GET "/v1/jobs"
expect_status "GET /v1/jobs is answered while listings are held" 200
check "  ... with the job" jq -e '.jobs | length == 1' "$body_file"
still=0
for pid in "${listing_pids[@]}"; do kill -0 "$pid" 2>/dev/null && still=$((still + 1)); done
check "all 6 listings were still pending when those were answered" test "$still" -eq 6
rm -f "$gate"
for pid in "${listing_pids[@]}"; do wait "$pid" 2>/dev/null; done
answered=0
for i in 1 2 3 4 5 6; do
    [ "$(cat "$work/held_$i.status")" = 200 ] &&
        jq -e '.models | length == 1000' "$work/held_$i.json" >/dev/null 2>&1 && answered=$((answered + 1))
done
check "the 6 held listings are answered once the gate opens" test "$answered" -eq 6

stop_server TERM
check "the listing server stops cleanly" test "$server_status" = 0
fi

service_finish
