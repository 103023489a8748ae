#!/usr/bin/python3
"""Seed corpus for the safetensors loader: valid files and hand-built corrupt ones.

Writes corpus/safetensors/*.safetensors and corpus/safetensors/EXPECTED, which maps each file
to the error it must produce (a substring of the message) or to "ok". The files are written
by this script with the standard library only (struct, json), independently of recur's
writer. tests/checkpoint_test.cpp replays every file of the folder; scripts/fuzz starts
libFuzzer from it. Run: python3 fuzz/make_corpus.py
"""
import json
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")


def header_bytes(obj, pad=True):
    text = json.dumps(obj, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return text


def file_bytes(obj, data, pad=True, length=None):
    h = header_bytes(obj, pad) if not isinstance(obj, bytes) else obj
    n = len(h) if length is None else length
    return struct.pack("<Q", n) + h + data


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


def f64(*values):
    return struct.pack("<%dd" % len(values), *values)


W = [0.5, -1.25, 2.0, 3.5, -0.75, 1e-3]        # weight [2, 3]
B = [0.25, -0.5]                               # bias [2]
META = {"format": "pt", "note": "made by make_corpus.py"}


def valid_f32():
    return file_bytes({"__metadata__": META,
                       "bias": {"dtype": "F32", "shape": [2], "data_offsets": [24, 32]},
                       "weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}},
                      f32(*W) + f32(*B))


def tensor(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


CASES = {
    # name: (bytes, expected message substring or "ok")
    "valid_f32": (valid_f32(), "ok"),
    "valid_f64": (file_bytes({"weight": tensor("F64", [2, 3], 0, 48), "bias": tensor("F64", [2], 48, 64)},
                             f64(*W) + f64(*B)), "ok"),
    "valid_unpadded_empty_tensor": (file_bytes({"e": tensor("F32", [0, 4], 0, 0), "s": tensor("F32", [], 0, 4)},
                                               f32(7.0), pad=False), "ok"),
    "valid_other_dtypes": (file_bytes({"i": tensor("I64", [2], 0, 16), "h": tensor("F16", [2], 16, 20),
                                       "b": tensor("BF16", [1], 20, 22)},
                                      struct.pack("<qq", 1, -2) + struct.pack("<e", 1.5) + struct.pack("<e", -2.0)
                                      + bytes([0x80, 0x3f])), "ok"),
    "empty_file": (b"", "too short for the 8-byte header length"),
    "short_length": (b"\x10\x00\x00", "too short for the 8-byte header length"),
    "length_past_end": (file_bytes({}, b"", length=1000), "runs past the end of the file"),
    "length_huge": (struct.pack("<Q", 2**63 + 5) + b"{}", "exceeds the limit"),
    "length_zero": (struct.pack("<Q", 0), "too short for a JSON object"),
    "not_json": (file_bytes(b"{nope:1}", b""), "not valid JSON"),
    "truncated_json": (file_bytes(b'{"a":{"dtype":"F32"', b""), "not valid JSON"),
    "json_array": (file_bytes(b"[1,2,3,4]", b""), "not a JSON object"),
    "deep_nesting": (file_bytes(b"[" * 5000 + b"]" * 5000, b""), "not a JSON object"),
    "deep_object": (file_bytes(b"{\"a\":" * 5000 + b"1" + b"}" * 5000, b""), "unknown field 'a'"),
    "duplicate_tensor": (file_bytes(b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                    b'"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1, 2)),
                         "twice"),
    "metadata_not_object": (file_bytes({"__metadata__": [1]}, b""), "__metadata__ is not an object"),
    "metadata_not_string": (file_bytes({"__metadata__": {"k": 3}}, b""), "is not a string"),
    "entry_not_object": (file_bytes({"w": 3}, b""), "is not an object"),
    "unknown_field": (file_bytes({"w": dict(tensor("F32", [1], 0, 4), extra=1)}, f32(1)), "unknown field"),
    "no_dtype": (file_bytes({"w": {"shape": [1], "data_offsets": [0, 4]}}, f32(1)), "no dtype"),
    "bad_dtype": (file_bytes({"w": tensor("F17", [1], 0, 4)}, f32(1)), "unknown dtype"),
    "no_shape": (file_bytes({"w": {"dtype": "F32", "data_offsets": [0, 4]}}, f32(1)), "no shape"),
    "negative_dim": (file_bytes({"w": tensor("F32", [-1], 0, 4)}, f32(1)), "not a non-negative integer"),
    "float_dim": (file_bytes({"w": tensor("F32", [1.5], 0, 4)}, f32(1)), "not a non-negative integer"),
    "shape_overflow": (file_bytes({"w": tensor("F32", [2**62, 2**62], 0, 4)}, f32(1)), "overflows"),
    "offsets_not_pair": (file_bytes({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, f32(1)),
                         "no data_offsets pair"),
    "negative_offset": (file_bytes({"w": tensor("F32", [1], -4, 0)}, f32(1)), "not a non-negative integer"),
    "offsets_reversed": (file_bytes({"w": tensor("F32", [0], 4, 0)}, f32(1)), "end before they begin"),
    "offsets_past_end": (file_bytes({"w": tensor("F32", [2], 0, 8)}, f32(1)), "outside the data section"),
    "size_mismatch": (file_bytes({"w": tensor("F32", [3], 0, 8)}, f32(1, 2)), "bytes but its data_offsets"),
    "overlap": (file_bytes({"a": tensor("F32", [2], 0, 8), "b": tensor("F32", [2], 4, 12)}, f32(1, 2, 3)),
                "overlap"),
    # The tensors must cover the data section exactly, as the reference implementation checks.
    "gap": (file_bytes({"a": tensor("F32", [1], 0, 4), "b": tensor("F32", [1], 8, 12)}, f32(1, 2, 3)),
            "gap of 4 bytes"),
    "trailing_bytes": (file_bytes({"a": tensor("F32", [1], 0, 4)}, f32(1, 2)), "bytes after the last tensor"),
    "gap_at_start": (file_bytes({"a": tensor("F32", [1], 4, 8)}, f32(1, 2)), "gap of 4 bytes before tensor 'a'"),
}


def main():
    os.makedirs(HERE, exist_ok=True)
    lines = []
    for name, (data, expected) in sorted(CASES.items()):
        with open(os.path.join(HERE, name + ".safetensors"), "wb") as f:
            f.write(data)
        lines.append(f"{name}.safetensors\t{expected}")
    with open(os.path.join(HERE, "EXPECTED"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(CASES)} files to {HERE}")


if __name__ == "__main__":
    main()
