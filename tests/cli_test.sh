#!/usr/bin/env bash
# End-to-end tests of `mergesvd resize` and `mergesvd inspect` on generated
# LoRAs: ranks, alpha/rank ratios, option spellings, usage errors (exit 2)
# and failed operations (exit 1, structured error, no output left behind).
# Environment (from AM_TESTS_ENVIRONMENT): MERGESVD, BUILD_DIR, TESTS_DIR.
set -u
MERGESVD=${MERGESVD:?MERGESVD not set}
GEN_LORA=${BUILD_DIR:?BUILD_DIR not set}/tests/gen_lora
TESTS_DIR=${TESTS_DIR:?TESTS_DIR not set}
. "$TESTS_DIR/cli_lib.sh"
cli_setup cli_test

# py_check DESCRIPTION FILE PYTHON: PYTHON sees the parsed JSON of FILE as
# `doc` and must raise (assert) on failure.
py_check() {
    local what=$1 file=$2 code=$3
    checks=$((checks + 1))
    if ! python3 - "$file" <<PYEOF 2>"$work/py_err"; then
import json, sys
doc = json.load(open(sys.argv[1]))
$code
PYEOF
        fail "$what"
        sed 's/^/    /' "$work/py_err" | tail -3 >&2
    fi
}

# ---- inputs ----
# gen_lora ARGS...: a failure ends the test with what gen_lora said (once it
# failed with its message thrown away, and the cause was lost).
gen_lora() {
    "$GEN_LORA" "$@" >/dev/null 2>"$work/gen_err" && return 0
    echo "gen_lora failed (exit $?): $*" >&2
    sed 's/^/    /' "$work/gen_err" >&2
    exit 1
}
gen_lora --arch sd15 --rank 16 --seed 3 --output "$work/sd15.safetensors"
gen_lora --arch sd15 --rank 8 --conv --spelling mixed --dtype bf16 --zero-module \
    --output "$work/sd15_conv.safetensors"
gen_lora --arch sdxl --rank 8 --dtype fp32 --output "$work/sdxl.safetensors"

# ---- inspect ----
if expect_exit 0 "inspect --json" "$MERGESVD" inspect "$work/sd15.safetensors" --json; then
    py_check "inspect sd15" "$work/out" '
assert doc["kind"] == "lora", doc["kind"]
assert doc["architecture"] == "sd1", doc["architecture"]
assert doc["lora"]["modules"] == 264 and doc["lora"]["spelling"] == "kohya"
assert doc["lora"]["rank_min"] == 16 and doc["lora"]["rank_max"] == 16
assert doc["tensor_count"] == len(doc["tensors"]) == 3 * 264
assert doc["metadata"]["ss_network_dim"] == "16"
t = [x for x in doc["tensors"] if x["name"].endswith("attn2_to_k.lora_down.weight")][0]
assert t["dtype"] == "F16" and t["shape"] == [16, 96], t'
fi
if expect_exit 0 "inspect sdxl" "$MERGESVD" inspect --json "$work/sdxl.safetensors"; then
    py_check "inspect sdxl" "$work/out" '
assert doc["architecture"] == "sdxl" and doc["lora"]["modules"] > 900'
fi
if expect_exit 0 "inspect text" "$MERGESVD" inspect "$work/sd15_conv.safetensors"; then
    checks=$((checks + 1))
    grep -q "^kind: lora" "$work/out" && grep -q "ss_network_dim: 8" "$work/out" &&
        grep -q "BF16" "$work/out" || fail "inspect text output: $(head -c 300 "$work/out")"
fi

# ---- resize: fixed rank, every dynamic method ----
# check_resize DESCRIPTION OUTPUT CAP CONV_CAP: the --json document in
# $work/out against the file written.
check_resize() {
    local what=$1 output=$2 cap=$3 conv_cap=$4
    cp "$work/out" "$work/resize.json"
    py_check "$what: report" "$work/resize.json" "
cap, conv_cap = $cap, $conv_cap
assert doc['result']['file'] == '$output'
assert doc['result']['bytes'] > 0 and len(doc['result']['sha256']) == 64
mods = doc['report']['modules']
assert len(mods) == doc['report']['summary']['module_count'] > 0
for m in mods:
    limit = conv_cap if m['conv'] else cap
    assert 1 <= m['new_rank'] <= min(limit, m['old_rank']) or m['new_rank'] <= limit, m
    assert abs(m['new_alpha'] / m['new_rank'] - m['old_alpha'] / m['old_rank']) < 1e-6, m
    assert 0 <= m['fro_retained'] <= 1 + 1e-9, m
"
    expect_exit 0 "$what: inspect output" "$MERGESVD" inspect --json "$output" &&
        py_check "$what: output file" "$work/out" "
assert doc['kind'] == 'lora'
assert doc['lora']['rank_max'] <= max($cap, $conv_cap), doc['lora']
sizes = {t['name']: t for t in doc['tensors']}
for name, t in sizes.items():
    if name.endswith('.lora_down.weight'):
        base = name[:-len('.lora_down.weight')]
        up = sizes[base + '.lora_up.weight']
        assert t['shape'][0] == up['shape'][1], name
assert 'sshs_model_hash' in doc['metadata']
"
}

out="$work/fixed.safetensors"
if expect_exit 0 "resize fixed" "$MERGESVD" resize --model "$work/sd15.safetensors" \
    --save_to "$out" --new_rank 4 --json; then
    check_resize "resize fixed" "$out" 4 4
    py_check "resize fixed: exact ranks" "$work/resize.json" '
assert all(m["new_rank"] == 4 for m in doc["report"]["modules"])
assert doc["params"]["new_rank"] == 4 and doc["params"]["dynamic_method"] is None'
fi

for method_param in "sv_ratio 4" "sv_fro 0.9" "sv_cumulative 0.5"; do
    set -- $method_param
    out="$work/$1.safetensors"
    if expect_exit 0 "resize $1" "$MERGESVD" resize --model "$work/sd15.safetensors" \
        --save_to "$out" --new_rank 12 --dynamic_method "$1" --dynamic_param "$2" --json; then
        check_resize "resize $1" "$out" 12 12
        py_check "resize $1: params" "$work/resize.json" "
assert doc['params']['dynamic_method'] == '$1' and doc['params']['dynamic_param'] == $2"
        expect_exit 0 "resize $1: metadata" "$MERGESVD" inspect --json "$out" &&
            py_check "resize $1: metadata" "$work/out" "
assert doc['metadata']['ss_network_dim'] == 'Dynamic'
assert doc['metadata']['ss_training_comment'].startswith('Dynamic resize with $1')"
    fi
done

# conv cap, mixed spellings, bf16 input, a zero module
out="$work/conv.safetensors"
if expect_exit 0 "resize conv" "$MERGESVD" resize --model "$work/sd15_conv.safetensors" \
    --save_to "$out" --new_rank 6 --new_conv_rank 2 --json; then
    check_resize "resize conv" "$out" 6 2
    py_check "resize conv: zero module and caps" "$work/resize.json" '
mods = doc["report"]["modules"]
assert any(m["conv"] for m in mods)
assert all(m["new_rank"] <= 2 for m in mods if m["conv"])
assert sum(1 for m in mods if m["new_rank"] == 1 and not m["conv"]) >= 1'
fi

# dash spellings, --opt=value, save precision
out="$work/dashes.safetensors"
if expect_exit 0 "resize dashes" "$MERGESVD" resize "--model=$work/sdxl.safetensors" \
    --save-to "$out" --new-rank=3 --save-precision bf16 --threads=2 --json; then
    check_resize "resize dashes" "$out" 3 3
    expect_exit 0 "resize dashes: inspect" "$MERGESVD" inspect --json "$out" &&
        py_check "resize dashes: bf16" "$work/out" '
assert all(t["dtype"] == "BF16" for t in doc["tensors"] if not t["name"].endswith(".alpha"))'
fi
out="$work/mixed_spelling.safetensors"
if expect_exit 0 "resize mixed options" "$MERGESVD" resize --model "$work/sd15.safetensors" \
    --save_to="$out" --dynamic-method=sv_fro --dynamic_param=0.5 --new_conv-rank 2 --verbose; then
    checks=$((checks + 1))
    grep -q "Average Frobenius norm retention" "$work/out" &&
        grep -q "lora_te_text_model_encoder_layers_0_mlp_fc1 .*| rank 16 -> " "$work/out" ||
        fail "verbose output: $(head -c 300 "$work/out")"
fi

# progress: none when stderr is not a terminal, one updating line when it is
checks=$((checks + 1))
[ ! -s "$work/err" ] || fail "progress or noise on a non-terminal stderr: $(head -c 200 "$work/err")"
if command -v script >/dev/null 2>&1; then
    checks=$((checks + 1))
    script -qec "'$MERGESVD' resize --model '$work/sd15.safetensors' --save_to '$work/tty.safetensors' --threads 1" \
        /dev/null </dev/null >"$work/tty" 2>&1
    tr '\r' '\n' <"$work/tty" | grep -q "100% 264/264 ETA" || fail "no progress line on a terminal"
fi

# ---- help ----
expect_exit 0 "resize --help" "$MERGESVD" resize --help
expect_exit 0 "inspect -h" "$MERGESVD" inspect -h

# ---- usage errors: exit 2, nothing written ----
in="$work/sd15.safetensors"
out="$work/never.safetensors"
usage() {
    expect_exit 2 "usage: $1" "$MERGESVD" "${@:2}" && expect_stderr_has "usage: $1" "mergesvd"
}
usage "no arguments" resize
usage "missing model" resize --save_to "$out"
usage "missing save_to" resize --model "$in"
usage "unknown option" resize --model "$in" --save_to "$out" --new_ranks 4
usage "single dash" resize --model "$in" --save_to "$out" -r 4
usage "positional" resize --model "$in" --save_to "$out" extra
usage "rank zero" resize --model "$in" --save_to "$out" --new_rank 0
usage "rank text" resize --model "$in" --save_to "$out" --new_rank four
usage "rank overflow" resize --model "$in" --save_to "$out" --new_rank 99999999999
usage "conv rank zero" resize --model "$in" --save_to "$out" --new_conv_rank 0
usage "negative threads" resize --model "$in" --save_to "$out" --threads -1
usage "method without param" resize --model "$in" --save_to "$out" --dynamic_method sv_fro
usage "param without method" resize --model "$in" --save_to "$out" --dynamic_param 0.5
usage "unknown method" resize --model "$in" --save_to "$out" --dynamic_method svd --dynamic_param 1
usage "param text" resize --model "$in" --save_to "$out" --dynamic_method sv_fro --dynamic_param x
usage "param nan" resize --model "$in" --save_to "$out" --dynamic_method sv_fro --dynamic_param nan
usage "sv_ratio <= 1" resize --model "$in" --save_to "$out" --dynamic_method sv_ratio --dynamic_param 1
usage "sv_fro > 1" resize --model "$in" --save_to "$out" --dynamic_method sv_fro --dynamic_param 1.5
usage "bad precision" resize --model "$in" --save_to "$out" --save_precision fp32
usage "flag with value" resize --model "$in" --save_to "$out" --json=1
usage "missing value" resize --model "$in" --save_to
usage "inspect no file" inspect
usage "inspect two files" inspect "$in" "$in"
usage "inspect unknown option" inspect "$in" --verbose
usage "unknown command" frobnicate
checks=$((checks + 1))
[ ! -e "$out" ] || fail "usage error left $out behind"

# ---- failed operations: exit 1, code in the message, no output ----
mkdir -p "$work/bad"
head -c 4096 /dev/urandom >"$work/bad/garbage.safetensors"
head -c 3 /dev/urandom >"$work/bad/tiny.safetensors"
head -c 100000 "$work/sd15.safetensors" >"$work/bad/truncated.safetensors"
python3 - "$work/bad/not_lora.safetensors" <<'PYEOF'
import json, struct, sys
header = json.dumps({"weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
header += b" " * (-len(header) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, 2.0))
PYEOF

resize_fails() { # DESCRIPTION INPUT CODE
    local what=$1 input=$2 code=$3 target="$work/out_dir/result.safetensors"
    rm -rf "$work/out_dir" && mkdir "$work/out_dir"
    expect_exit 1 "$what" "$MERGESVD" resize --model "$input" --save_to "$target" &&
        expect_stderr_has "$what" "mergesvd: error: $code"
    checks=$((checks + 1))
    [ -z "$(ls -A "$work/out_dir")" ] || fail "$what: left files: $(ls -A "$work/out_dir")"
    expect_exit 1 "$what (json)" "$MERGESVD" resize --model "$input" --save_to "$target" --json &&
        py_check "$what (json)" "$work/out" "assert doc['error']['code'] == '$code', doc"
    checks=$((checks + 1))
    [ -z "$(ls -A "$work/out_dir")" ] || fail "$what (json): left files"
}
resize_fails "garbage" "$work/bad/garbage.safetensors" bad_safetensors
resize_fails "tiny" "$work/bad/tiny.safetensors" bad_safetensors
resize_fails "truncated" "$work/bad/truncated.safetensors" bad_safetensors
resize_fails "not a lora" "$work/bad/not_lora.safetensors" not_a_lora
resize_fails "missing file" "$work/bad/absent.safetensors" model_not_found

expect_exit 1 "inspect tiny" "$MERGESVD" inspect "$work/bad/tiny.safetensors" &&
    expect_stderr_has "inspect tiny" "reason: file_too_small"
expect_exit 1 "inspect truncated" "$MERGESVD" inspect "$work/bad/truncated.safetensors" &&
    expect_stderr_has "inspect truncated" "bad_safetensors"
expect_exit 1 "inspect garbage json" "$MERGESVD" inspect --json "$work/bad/garbage.safetensors" &&
    py_check "inspect garbage json" "$work/out" '
assert doc["error"]["code"] == "bad_safetensors" and doc["error"]["details"]["reason"]'
expect_exit 0 "inspect not a lora" "$MERGESVD" inspect --json "$work/bad/not_lora.safetensors" &&
    py_check "inspect not a lora" "$work/out" 'assert doc["kind"] == "unknown" and "lora" not in doc'

# a LoRA whose module is malformed: inspect lists it, then names the error
python3 - "$work/bad/rank_mismatch.safetensors" <<'PYEOF'
import json, struct, sys
header = json.dumps({
    "lora_unet_x.lora_down.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
    "lora_unet_x.lora_up.weight": {"dtype": "F32", "shape": [3, 1], "data_offsets": [24, 36]},
}).encode()
header += b" " * (-len(header) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + bytes(36))
PYEOF
expect_exit 1 "inspect rank mismatch" "$MERGESVD" inspect "$work/bad/rank_mismatch.safetensors" &&
    expect_stderr_has "inspect rank mismatch" "rank_mismatch" &&
    { checks=$((checks + 1)); grep -q "lora_unet_x.lora_up.weight" "$work/out" ||
        fail "inspect rank mismatch: no listing"; }
resize_fails "rank mismatch" "$work/bad/rank_mismatch.safetensors" rank_mismatch

# a module LAPACK cannot index (up claims 2^40 rows, in a sparse 4 TiB file):
# refused before 8 TB of doubles are asked for
python3 - "$work/bad/huge_module.safetensors" <<'PYEOF'
import json, struct, sys
rows = 2 ** 40
header = json.dumps({
    "lora_unet_x.lora_down.weight": {"dtype": "F32", "shape": [1, 4], "data_offsets": [0, 16]},
    "lora_unet_x.lora_up.weight": {"dtype": "F32", "shape": [rows, 1],
                                   "data_offsets": [16, 16 + 4 * rows]},
}).encode()
header += b" " * (-len(header) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + struct.pack("<4f", 1, 2, 3, 4))
    f.truncate(8 + len(header) + 16 + 4 * rows)
PYEOF
resize_fails "module too large for LAPACK" "$work/bad/huge_module.safetensors" bad_safetensors
py_check "module too large for LAPACK: reason" "$work/out" '
assert doc["error"]["details"]["reason"] == "integer_overflow", doc
assert "too large for LAPACK" in doc["error"]["message"], doc'
rm -f "$work/bad/huge_module.safetensors"

# names with control characters (a newline, a terminal escape): text output
# shows them escaped, one line each; --json keeps them exact
python3 - "$work/bad/control_names.safetensors" <<'PYEOF'
import json, struct, sys
name = "lora_unet_x\nforged line\x1b[2J"
header = json.dumps({
    "__metadata__": {"note\x1b[31m": "two\nlines"},
    name + ".lora_down.weight": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]},
    name + ".lora_up.weight": {"dtype": "F32", "shape": [2, 1], "data_offsets": [8, 16]},
}).encode()
header += b" " * (-len(header) % 8)
inf = struct.pack("<f", float("inf"))
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + struct.pack("<3f", 1, 2, 3) + inf)
PYEOF
expect_exit 0 "inspect control names" "$MERGESVD" inspect "$work/bad/control_names.safetensors" && {
    checks=$((checks + 3))
    grep -q $'\x1b' "$work/out" && fail "inspect control names: an escape byte reached the output"
    grep -qF 'lora_unet_x\nforged line\x1b[2J.lora_up.weight' "$work/out" ||
        fail "inspect control names: name not shown escaped: $(head -c 400 "$work/out")"
    grep -qF 'note\x1b[31m: two\nlines' "$work/out" ||
        fail "inspect control names: metadata not shown escaped"
}
expect_exit 0 "inspect control names json" "$MERGESVD" inspect --json \
    "$work/bad/control_names.safetensors" &&
    py_check "inspect control names json" "$work/out" '
assert "lora_unet_x\nforged line\x1b[2J.lora_up.weight" in [t["name"] for t in doc["tensors"]]'
expect_exit 1 "resize control names" "$MERGESVD" resize --model "$work/bad/control_names.safetensors" \
    --save_to "$work/control_out.safetensors" --new_rank 1 && {
    checks=$((checks + 2))
    grep -q $'\x1b' "$work/err" && fail "resize control names: an escape byte reached stderr"
    grep -qF 'lora_unet_x\nforged line\x1b[2J.lora_up.weight' "$work/err" ||
        fail "resize control names: key not shown escaped: $(head -c 400 "$work/err")"
}

# ---- interrupted: SIGINT (Ctrl-C) and SIGTERM stop between modules, exit
# 128 + the signal, print the cancelled error and leave no file behind ----
for signal_name in INT TERM; do
    case $signal_name in INT) want=130 ;; TERM) want=143 ;; esac
    rm -rf "$work/interrupt"
    mkdir -p "$work/interrupt"
    MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS=100 "$MERGESVD" resize --model "$work/sd15.safetensors" \
        --save_to "$work/interrupt/out.safetensors" --new_rank 4 >"$work/out" 2>"$work/err" &
    resize_pid=$!
    # interrupt once it is writing (its spool file is in the target folder)
    for _ in $(seq 1 100); do
        [ -n "$(ls -A "$work/interrupt")" ] && break
        sleep 0.05
    done
    sleep 0.3
    kill -s "$signal_name" "$resize_pid"
    wait "$resize_pid"
    got=$?
    checks=$((checks + 2))
    [ "$got" -eq "$want" ] || fail "SIG$signal_name: exit $got, expected $want: $(head -c 300 "$work/err")"
    [ -z "$(ls -A "$work/interrupt")" ] ||
        fail "SIG$signal_name: files left behind: $(ls -A "$work/interrupt")"
    expect_stderr_has "SIG$signal_name: cancelled error" "cancelled"
done

# ---- where outputs go: a FIFO, a device or a folder is refused untouched, a
# link's target is replaced (the link stays), new files get the umask's
# mode, replaced ones keep theirs ----
rm -rf "$work/targets" && mkdir "$work/targets"
mkfifo "$work/targets/fifo.safetensors"
if expect_exit 1 "save_to a FIFO" "$MERGESVD" resize --model "$in" \
    --save_to "$work/targets/fifo.safetensors" --new_rank 2; then
    expect_stderr_has "save_to a FIFO" "mergesvd: error: invalid_parameter: .*is a FIFO"
    expect_stderr_has "save_to a FIFO: reason" "reason: not_a_regular_file"
fi
expect_exit 1 "save_to a FIFO (json)" "$MERGESVD" resize --model "$in" \
    --save_to "$work/targets/fifo.safetensors" --new_rank 2 --json &&
    py_check "save_to a FIFO (json)" "$work/out" '
e = doc["error"]
assert e["code"] == "invalid_parameter", e
assert e["details"] == {"reason": "not_a_regular_file", "file_type": "fifo"}, e
assert "fifo.safetensors" in e["message"], e'
checks=$((checks + 2))
[ -p "$work/targets/fifo.safetensors" ] || fail "save_to a FIFO: the FIFO is gone"
[ "$(ls -A "$work/targets")" = "fifo.safetensors" ] ||
    fail "save_to a FIFO: left files: $(ls -A "$work/targets")"
# a link to /dev/null (never /dev/null itself: a broken build would replace it)
ln -s /dev/null "$work/targets/null.safetensors"
expect_exit 1 "save_to a link to /dev/null" "$MERGESVD" resize --model "$in" \
    --save_to "$work/targets/null.safetensors" --new_rank 2 &&
    expect_stderr_has "save_to a link to /dev/null" "a character device"
checks=$((checks + 1))
[ -c /dev/null ] && [ -L "$work/targets/null.safetensors" ] ||
    fail "save_to a link to /dev/null: the link or the device changed"
mkdir "$work/targets/folder.safetensors"
expect_exit 1 "save_to a folder" "$MERGESVD" resize --model "$in" \
    --save_to "$work/targets/folder.safetensors" --new_rank 2 &&
    expect_stderr_has "save_to a folder" "is a directory"

mkdir "$work/targets/real"
echo "old contents" >"$work/targets/real/model.safetensors"
chmod 640 "$work/targets/real/model.safetensors"
ln -s real/model.safetensors "$work/targets/link.safetensors"
if expect_exit 0 "save_to a link to a file" "$MERGESVD" resize --model "$in" \
    --save_to "$work/targets/link.safetensors" --new_rank 2; then
    checks=$((checks + 3))
    [ -L "$work/targets/link.safetensors" ] &&
        [ "$(readlink "$work/targets/link.safetensors")" = real/model.safetensors ] ||
        fail "save_to a link to a file: the link was replaced"
    "$MERGESVD" inspect "$work/targets/real/model.safetensors" >/dev/null 2>&1 ||
        fail "save_to a link to a file: its target was not replaced by the output"
    [ "$(stat -c %a "$work/targets/real/model.safetensors")" = 640 ] ||
        fail "save_to a link to a file: mode 640 became $(stat -c %a "$work/targets/real/model.safetensors")"
fi

for mask_mode in "077 600" "022 644"; do
    set -- $mask_mode
    checks=$((checks + 2))
    (umask "$1" && "$MERGESVD" resize --model "$in" --save_to "$work/targets/umask$1.safetensors" \
        --new_rank 2 >/dev/null 2>"$work/err") || fail "umask $1: resize failed: $(head -c 300 "$work/err")"
    [ "$(stat -c %a "$work/targets/umask$1.safetensors" 2>&1)" = "$2" ] ||
        fail "umask $1: mode $(stat -c %a "$work/targets/umask$1.safetensors" 2>&1), expected $2"
done
chmod 600 "$work/targets/umask022.safetensors"
checks=$((checks + 1))
(umask 022 && "$MERGESVD" resize --model "$in" --save_to "$work/targets/umask022.safetensors" \
    --new_rank 3 >/dev/null 2>&1) &&
    [ "$(stat -c %a "$work/targets/umask022.safetensors")" = 600 ] ||
    fail "a replaced 0600 file: mode $(stat -c %a "$work/targets/umask022.safetensors")"
checks=$((checks + 1))
ls -A "$work/targets" "$work/targets/real" | grep -q '\.tmp-' && fail "outputs left a temporary"

# ---- gen_lora: deterministic per seed, usage errors ----
"$GEN_LORA" --arch sd15 --rank 4 --seed 9 --output "$work/g1.safetensors" 2>/dev/null
"$GEN_LORA" --arch sd15 --rank 4 --seed 9 --output "$work/g2.safetensors" 2>/dev/null
"$GEN_LORA" --arch sd15 --rank 4 --seed 10 --output "$work/g3.safetensors" 2>/dev/null
checks=$((checks + 2))
cmp -s "$work/g1.safetensors" "$work/g2.safetensors" || fail "gen_lora: same seed, different files"
cmp -s "$work/g1.safetensors" "$work/g3.safetensors" && fail "gen_lora: seed ignored"
expect_exit 2 "gen_lora no output" "$GEN_LORA" --arch sd15 --rank 4
expect_exit 2 "gen_lora bad arch" "$GEN_LORA" --arch sd3 --rank 4 --output "$work/g4.safetensors"
expect_exit 2 "gen_lora bad rank" "$GEN_LORA" --rank 0 --output "$work/g4.safetensors"
expect_exit 2 "gen_lora bad dtype" "$GEN_LORA" --dtype int8 --output "$work/g4.safetensors"
expect_exit 2 "gen_lora bad spelling" "$GEN_LORA" --spelling lycoris --output "$work/g4.safetensors"
expect_exit 1 "gen_lora unwritable" "$GEN_LORA" --output "$work/no/such/dir/g.safetensors"

echo "cli_test: $checks checks, $failures failures"
[ "$failures" -eq 0 ]
