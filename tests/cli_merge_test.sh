#!/usr/bin/env bash
# End-to-end tests of `mergesvd merge` on generated checkpoints: option
# spellings, usage errors (exit 2), failed operations (exit 1, structured
# error), a weighted_sum whose output `inspect` reads back and whose values
# are checked, --json (params echoed in the shortest form), block weights by
# list and by name, and Ctrl-C/SIGTERM removing the temporary.
# Environment (from AM_TESTS_ENVIRONMENT): MERGESVD, BUILD_DIR, TESTS_DIR.
set -u
MERGESVD=${MERGESVD:?MERGESVD not set}
GEN_CHECKPOINT=${BUILD_DIR:?BUILD_DIR not set}/tests/gen_checkpoint
TESTS_DIR=${TESTS_DIR:?TESTS_DIR not set}
. "$TESTS_DIR/cli_lib.sh"
cli_setup cli_merge_test

# py_check DESCRIPTION PYTHON [ARGS...]: PYTHON sees ARGS as sys.argv[1:] and
# `doc` (the JSON of $work/out, when it parses) and must raise on failure.
py_check() {
    local what=$1 code=$2
    shift 2
    checks=$((checks + 1))
    if ! python3 - "$work/out" "$@" <<PYEOF 2>"$work/py_err"; then
import json, struct, sys
try:
    doc = json.load(open(sys.argv[1]))
except ValueError:
    doc = None
args = sys.argv[2:]

def tensors(path):
    """name -> (dtype, shape, bytes) of a safetensors file."""
    data = open(path, "rb").read()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    header.pop("__metadata__", None)
    base = 8 + size
    return {k: (v["dtype"], v["shape"], data[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
            for k, v in header.items()}

def floats(entry):
    dtype, shape, raw = entry
    code = {"F16": "e", "F32": "f", "F64": "d"}[dtype]
    return struct.unpack("<%d%s" % (len(raw) // struct.calcsize(code), code), raw)
$code
PYEOF
        fail "$what"
        sed 's/^/    /' "$work/py_err" | tail -3 >&2
    fi
}

# ---- usage errors: exit 2, nothing written ----
A=$work/a.safetensors
B=$work/b.safetensors
C=$work/c.safetensors
OUT=$work/out.safetensors
expect_exit 0 "--help" "$MERGESVD" merge --help && expect_stdout_has "--help" "NAME=V"
expect_exit 2 "no options" "$MERGESVD" merge
expect_exit 2 "no output" "$MERGESVD" merge --model_a "$A" --model_b "$B" --merge_mode weighted_sum &&
    expect_stderr_has "no output" "--output"
expect_exit 2 "no model_b" "$MERGESVD" merge --model_a "$A" --merge_mode weighted_sum --output "$OUT" &&
    expect_stderr_has "no model_b" "--model_b is required"
expect_exit 2 "no merge_mode" "$MERGESVD" merge --model_a "$A" --model_b "$B" --output "$OUT" &&
    expect_stderr_has "no merge_mode" "--merge_mode is required"
expect_exit 2 "unknown option" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --output "$OUT" --alpah 0.5
expect_exit 2 "unknown method" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode blend --output "$OUT" && expect_stderr_has "unknown method" "weighted_sum"
expect_exit 2 "alpha not a number" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --alpha x --output "$OUT"
expect_exit 2 "alpha inf" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --alpha inf --output "$OUT"
expect_exit 2 "precision 8" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --precision 8 --output "$OUT" && expect_stderr_has "precision 8" "16 or 32"
expect_exit 2 "nan_policy" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --nan_policy skip --output "$OUT"
expect_exit 2 "threads -1" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --threads -1 --output "$OUT"
expect_exit 2 "add_difference without model_c" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode add_difference --output "$OUT" && expect_stderr_has "model_c" "--model_c"
expect_exit 2 "model_c for weighted_sum" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --model_c "$C" --merge_mode weighted_sum --output "$OUT"
weights24=$(python3 -c 'print(",".join(["0.5"] * 24))')
expect_exit 2 "24 weights" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --weights_alpha "$weights24" --output "$OUT" &&
    expect_stderr_has "24 weights" "--weights_alpha must list 25 block values (19 for SDXL), not 24"
expect_exit 2 "weights nan" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --weights_beta "nan,$weights24" --output "$OUT"
expect_exit 2 "weights mixed forms" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --weights_alpha "BASE=0.1,0.3" --output "$OUT"
expect_exit 2 "unknown block name" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --weights_alpha "BASE=0.1,IN99=0.3" --output "$OUT" &&
    expect_stderr_has "unknown block name" "IN99"
expect_exit 2 "empty weight" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --weights_alpha "0.1,,0.3" --output "$OUT"
expect_exit 2 "block given twice" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --weights_alpha "BASE=0.1,BASE=0.2" --output "$OUT"
expect_exit 2 "block given twice in two cases" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --weights_beta "IN00=0.1,in00=0.2" --output "$OUT" &&
    expect_stderr_has "block given twice in two cases" "--weights_beta"
expect_exit 2 "no weights" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --weights_alpha "" --output "$OUT"
checks=$((checks + 1))
[ -e "$OUT" ] && fail "usage errors: an output was written"

# (rotate, one more method, is tried end to end in tests/rotate_service_test.sh)

# ---- a missing model: exit 1, model_not_found, as JSON with --json ----
expect_exit 1 "missing model" "$MERGESVD" merge --model_a "$work/nope.safetensors" \
    --model_b "$B" --merge_mode weighted_sum --output "$OUT" &&
    expect_stderr_has "missing model" "model_not_found"
if expect_exit 1 "missing model --json" "$MERGESVD" merge --json --model-a "$work/nope.safetensors" \
    --model-b "$B" --merge-mode weighted_sum --output="$OUT"; then
    py_check "missing model --json" 'assert doc["error"]["code"] == "model_not_found", doc'
fi

# ---- inputs ----
if [ ! -x "$GEN_CHECKPOINT" ]; then
    echo "cli_merge_test: no $GEN_CHECKPOINT; merges not tested" >&2
    echo "cli_merge_test: $checks checks, $failures failures"
    [ "$failures" -eq 0 ]
    exit
fi
for seed in 1 2 3; do
    name=$(printf '%s' "abc" | cut -c"$seed")
    "$GEN_CHECKPOINT" --arch sd15 --size small --dtype f16 --seed "$seed" \
        --output "$work/$name.safetensors" >/dev/null 2>&1 ||
        { echo "gen_checkpoint failed" >&2; exit 1; }
done

# ---- weighted_sum: exit 0, inspect reads the output, values (1-a) A + a B ----
if expect_exit 0 "weighted_sum" "$MERGESVD" merge --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --alpha 0.25 --output "$OUT"; then
    expect_stdout_has "weighted_sum summary" "sha256"
    if expect_exit 0 "inspect the merge" "$MERGESVD" inspect --json "$OUT"; then
        py_check "inspect the merge" '
assert doc["kind"] == "checkpoint", doc["kind"]
assert doc["architecture"] == "sd1", doc["architecture"]
assert doc["tensor_count"] > 1000, doc["tensor_count"]'
    fi
    py_check "weighted_sum values" '
a, b, out = tensors(args[0]), tensors(args[1]), tensors(args[2])
assert set(out) >= set(a), "keys lost"
checked = 0
for key, entry in out.items():
    if "model" not in key or key not in b or a[key][1] != b[key][1] or a[key][0] != "F16":
        continue
    assert entry[0] == "F16", (key, entry[0])
    for x, y, z in list(zip(floats(a[key]), floats(b[key]), floats(entry)))[:64]:
        want = 0.75 * x + 0.25 * y
        assert abs(z - want) <= 1e-3 * max(1.0, abs(want)), (key, x, y, z)
    checked += 1
assert checked > 500, checked' "$A" "$B" "$OUT"
fi

# ---- --json: the job report, params echoed (0.9 stays 0.9), dashes and --opt=value ----
if expect_exit 0 "--json" "$MERGESVD" merge --json --model-a "$A" --model-b="$B" \
    --merge-mode weighted_sum --alpha 0.9 --beta=0.1 --precision 32 --weights-clip \
    --threads 2 --output "$work/json.safetensors"; then
    checks=$((checks + 1))
    grep -q '"base_alpha": 0.9,' "$work/out" || fail "--json: 0.9 not printed as 0.9: $(grep base_alpha "$work/out")"
    py_check "--json report" '
p = doc["params"]
assert p["merge_method"] == "weighted_sum" and p["base_alpha"] == 0.9 and p["base_beta"] == 0.1, p
assert p["precision"] == 32 and p["weights_clip"] is True and p["prune"] is False, p
assert p["alpha"] is None and p["nan_policy"] == "fail" and p["model_c"] is None, p
r = doc["report"]
assert r["architecture"] == "sd1", r
assert r["keys"]["merged"] > 500 and r["keys"]["copied_from_a"] >= 0, r["keys"]
assert r["nan_keys"] == [], r["nan_keys"]
assert [b["block"] for b in r["blocks"]] == ["base"], r["blocks"]
assert r["blocks"][0]["alpha"] == 0.9 and r["blocks"][0]["keys"] == r["keys"]["merged"], r["blocks"]
assert isinstance(r["seconds"], float)
import hashlib, os
f = args[0]
assert doc["result"]["bytes"] == os.path.getsize(f), doc["result"]
assert doc["result"]["sha256"] == hashlib.sha256(open(f, "rb").read()).hexdigest()
assert {e[0] for k, e in tensors(f).items() if "diffusion_model" in k} == {"F32"}' \
        "$work/json.safetensors"
fi

# ---- block weights: a list of 25, and named blocks ----
weights25=$(python3 -c 'print(",".join(str(i / 24) for i in range(25)))')
if expect_exit 0 "--weights_alpha 25" "$MERGESVD" merge --json --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --alpha 0.5 --weights_alpha "$weights25" --output "$work/list.safetensors"; then
    py_check "--weights_alpha 25" '
assert len(doc["params"]["alpha"]) == 25 and doc["params"]["alpha"][24] == 1.0, doc["params"]["alpha"]
blocks = {b["block"]: b for b in doc["report"]["blocks"]}
assert "base" in blocks and 0 in blocks and 24 in blocks and 12 in blocks, list(blocks)
assert blocks[24]["alpha"] == 1.0 and blocks[0]["alpha"] == 0.0, blocks
assert abs(blocks[12]["alpha"] - 0.5) < 1e-15, blocks[12]
a, b, out = tensors(args[0]), tensors(args[1]), tensors(args[2])
key = "model.diffusion_model.out.2.weight"
for x, y, z in zip(floats(a[key]), floats(b[key]), floats(out[key])):
    assert abs(z - y) <= 1e-3 * max(1.0, abs(y)), (x, y, z)' "$A" "$B" "$work/list.safetensors"
fi
if expect_exit 0 "named blocks" "$MERGESVD" merge --json --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --alpha 0.5 --weights_alpha "BASE=0.1,in00=0.3,OUT11=1" \
    --output "$work/named.safetensors"; then
    py_check "named blocks" '
assert doc["params"]["alpha"] == {"BASE": 0.1, "IN00": 0.3, "OUT11": 1.0}, doc["params"]["alpha"]
names = {b["block"] for b in doc["report"]["blocks"]}
assert "BASE" in names and "IN00" in names and "OUT11" in names, names'
fi

# 19 values are SDXL's: an SD1 model A refuses them (the core's check), exit 1
weights19=$(python3 -c 'print(",".join(["0.5"] * 19))')
if expect_exit 1 "19 weights on SD1" "$MERGESVD" merge --json --model_a "$A" --model_b "$B" \
    --merge_mode weighted_sum --weights_alpha "$weights19" --output "$work/19.safetensors"; then
    py_check "19 weights on SD1" '
e = doc["error"]
assert e["code"] == "invalid_parameter" and e["details"]["field"] == "alpha", e'
    checks=$((checks + 1))
    [ -e "$work/19.safetensors" ] && fail "19 weights on SD1: an output was written"
fi

# ---- a three-model method, with --prune and --nan_policy keep_a ----
if expect_exit 0 "add_difference" "$MERGESVD" merge --model_a "$A" --model_b "$B" --model_c "$C" \
    --merge_mode add_difference --alpha 1 --precision 32 --prune --nan_policy keep_a \
    --output "$work/add.safetensors"; then
    py_check "add_difference values" '
a, b, c, out = (tensors(p) for p in args)
key = "model.diffusion_model.input_blocks.0.0.weight"
for x, y, w, z in list(zip(floats(a[key]), floats(b[key]), floats(c[key]), floats(out[key])))[:256]:
    assert abs(z - (x + y - w)) <= 1e-6 * max(1.0, abs(z)), (x, y, w, z)' \
        "$A" "$B" "$C" "$work/add.safetensors"
fi

# ---- interrupted: SIGINT (Ctrl-C) and SIGTERM stop the merge, exit 128 +
# the signal, print the cancelled error and leave no file behind ----
for signal_name in INT TERM; do
    case $signal_name in INT) want=130 ;; TERM) want=143 ;; esac
    rm -rf "$work/interrupt"
    mkdir -p "$work/interrupt"
    MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS=50 "$MERGESVD" merge --model_a "$A" --model_b "$B" \
        --merge_mode weighted_sum --output "$work/interrupt/out.safetensors" \
        >"$work/out" 2>"$work/err" &
    merge_pid=$!
    # interrupt once it is writing (its temporary is in the target folder)
    for _ in $(seq 1 100); do
        [ -n "$(ls -A "$work/interrupt")" ] && break
        sleep 0.05
    done
    sleep 0.3
    kill -s "$signal_name" "$merge_pid"
    wait "$merge_pid"
    got=$?
    checks=$((checks + 2))
    [ "$got" -eq "$want" ] || fail "SIG$signal_name: exit $got, expected $want: $(head -c 300 "$work/err")"
    [ -z "$(ls -A "$work/interrupt")" ] ||
        fail "SIG$signal_name: files left behind: $(ls -A "$work/interrupt")"
    expect_stderr_has "SIG$signal_name: cancelled error" "cancelled"
done

echo "cli_merge_test: $checks checks, $failures failures"
[ "$failures" -eq 0 ]
