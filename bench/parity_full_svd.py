#!/usr/bin/env python3
"""Parity check of `mergesvd resize` against the slow path, run by hand.

For every LoRA module of INPUT this forms W = up @ down, takes its full SVD
with numpy (min(out, in) singular values, as kohya's resize_lora.py does with
torch), applies the rank rules of ../shared/docs/algorithms.md section 2
written out again here, independently of the C code, and compares with
OUTPUT (written by mergesvd from the same INPUT and options): the rank, the
alpha, and the effective weight (alpha / rank) * up @ down against the
truncated SVD reconstruction.  Prints one line per mismatch and a summary.

usage: parity_full_svd.py INPUT OUTPUT [--new_rank N] [--new_conv_rank N]
                          [--dynamic_method M --dynamic_param P]
Needs numpy (Debian: python3-numpy).
"""
import argparse
import json
import struct
import sys

import numpy as np

DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "BF16": None}
SPELLINGS = [("lora_down", "lora_up"), ("lora_A", "lora_B"), ("down", "up")]


def load(path):
    """Tensors of a safetensors file as float64 arrays (float dtypes only)."""
    with open(path, "rb") as handle:
        blob = handle.read()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length])
    data = blob[8 + length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = data[begin:end]
        if entry["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            values = bits.view(np.float32)
        elif entry["dtype"] in DTYPES:
            values = np.frombuffer(raw, dtype=DTYPES[entry["dtype"]])
        else:
            continue
        tensors[name] = values.astype(np.float64).reshape(entry["shape"])
    return tensors


def modules(tensors):
    """NAME -> (down, up, alpha or None) for every complete module."""
    found = {}
    for name in tensors:
        for down_word, up_word in SPELLINGS:
            for suffix in (".weight", ""):
                tail = "." + down_word + suffix
                if name.endswith(tail):
                    stem = name[: -len(tail)]
                    up_name = stem + "." + up_word + suffix
                    if up_name in tensors:
                        found[stem] = (tensors[name], tensors[up_name],
                                       tensors.get(stem + ".alpha"))
    return found


def first_index_at_least(cumulative, target):
    """numpy searchsorted 'left': the first index with cumulative[i] >= target."""
    return int(np.searchsorted(cumulative, target, side="left"))


def choose_rank(singular, method, param, cap):
    """algorithms.md section 2 on the full (min(out, in)) spectrum."""
    length = len(singular)
    if method == "sv_ratio":
        count = int(np.sum(singular > singular[0] / param))
        rank = min(max(count, 1), length - 1) + 1
    elif method == "sv_cumulative":
        cumulative = np.cumsum(singular) / np.sum(singular)
        index = first_index_at_least(cumulative, param)
        rank = min(max(index + 1, 1), length - 1) + 1
    elif method == "sv_fro":
        squares = singular ** 2
        cumulative = np.cumsum(squares) / np.sum(squares)
        index = first_index_at_least(cumulative, param ** 2)
        rank = min(max(index + 1, 1), length - 1) + 1
    else:
        rank = cap
    if singular[0] <= 1e-6:
        return 1
    return min(rank, cap, length)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--new_rank", type=int, default=4)
    parser.add_argument("--new_conv_rank", type=int, default=0)
    parser.add_argument("--dynamic_method", default=None)
    parser.add_argument("--dynamic_param", type=float, default=None)
    options = parser.parse_args()
    conv_cap = options.new_conv_rank or options.new_rank
    before = modules(load(options.input))
    after = modules(load(options.output))
    mismatches = 0
    worst_weight_error = 0.0
    for name, (down, up, alpha) in sorted(before.items()):
        old_rank = down.shape[0]
        scale = (float(alpha.reshape(-1)[0]) if alpha is not None else old_rank) / old_rank
        weight = up.reshape(up.shape[0], -1) @ down.reshape(old_rank, -1)
        left, singular, right = np.linalg.svd(weight, full_matrices=False)
        cap = conv_cap if down.ndim == 4 else options.new_rank
        rank = choose_rank(singular, options.dynamic_method, options.dynamic_param, cap)
        if name not in after:
            print("missing module %s" % name)
            mismatches += 1
            continue
        new_down, new_up, new_alpha = after[name]
        new_rank = new_down.shape[0]
        new_alpha = float(new_alpha.reshape(-1)[0]) if new_alpha is not None else new_rank
        if new_rank != rank:
            print("%s: rank %d, full SVD says %d" % (name, new_rank, rank))
            mismatches += 1
        if abs(new_alpha - scale * rank) > 1e-3 * max(1.0, abs(scale * rank)):
            print("%s: alpha %.6g, expected %.6g" % (name, new_alpha, scale * rank))
            mismatches += 1
        truncated = (left[:, :rank] * singular[:rank]) @ right[:rank, :]
        ours = new_up.reshape(new_up.shape[0], -1) @ new_down.reshape(new_rank, -1)
        reference_norm = max(np.linalg.norm(truncated), 1e-30)
        error = np.linalg.norm(ours * (new_alpha / new_rank) - truncated * scale) / (
            reference_norm * abs(scale) if scale else 1.0)
        worst_weight_error = max(worst_weight_error, error)
    print("modules %d, mismatches %d, worst relative weight difference %.3g"
          % (len(before), mismatches, worst_weight_error))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
