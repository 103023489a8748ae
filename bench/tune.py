#!/usr/bin/python3
"""Tunes recur for this CPU: each tuning value (include/recur/detail/tuning.hpp) against the
defaults, measured in one run.

    /usr/bin/python3 bench/tune.py [--knob RECUR_GEMM_DEPTH_BLOCK=256,1024 ...]
                                   [--filter REGEX] [--threads 1,2] [--rounds 5]

Builds recur_bench once with the defaults and once per candidate value (build/tune/<name>,
Release, -march=native, the value as a compile definition: ~1 min each), then runs --rounds
rounds; in each round every binary runs the cases back to back (the order rotates), on each
thread count. Prints, per candidate, the median over rounds of its time / the default's time
measured in the same round (below 1: the candidate is faster), per case and as a geometric
mean, after an A/A line (the defaults against themselves: how far this run's noise reaches).
A value that wins beyond that noise goes into the build as a compile definition
(docs/performance.md, "Tuning a new CPU"); the machine's name is printed with the table, as
every table here names its CPU.
"""
import argparse
import json
import math
import os
import statistics
import subprocess

from machine import describe  # bench/machine.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What each knob is tried at by default: a step each side of the default, and the other tile.
DEFAULT_KNOBS = [
    "RECUR_GEMM_TILE_ROWS=4",
    "RECUR_GEMM_DEPTH_BLOCK=256,1024",
    "RECUR_GEMM_X_BLOCK_BYTES=65536,262144",
    "RECUR_STEP_INPUT_MAX_BYTES=0",
]


def sh(cmd, env=None, **kw):
    return subprocess.run(cmd, check=True, text=True, env={**os.environ, **(env or {})}, **kw)


def build(tag, definition):
    """recur_bench built with one compile definition (None: the defaults); returns its path."""
    d = os.path.join(ROOT, "build", "tune", tag)
    flags = f"-D{definition}" if definition else ""
    sh(["cmake", "-S", ROOT, "-B", d, "-G", "Ninja", "-Wno-dev", "-DCMAKE_BUILD_TYPE=Release",
        "-DRECUR_BUILD_TESTS=OFF", "-DRECUR_BUILD_EXAMPLES=OFF", "-DRECUR_BUILD_BENCHMARKS=ON",
        f"-DCMAKE_CXX_FLAGS={flags}"], stdout=subprocess.DEVNULL)
    sh(["cmake", "--build", d, "--target", "recur_bench"], stdout=subprocess.DEVNULL)
    return os.path.join(d, "bench", "recur_bench")


def run(binary, flt, threads):
    out = sh([binary, f"--benchmark_filter={flt}", "--benchmark_format=json",
              "--benchmark_min_warmup_time=0.1", "--benchmark_min_time=0.3"],
             env={"OMP_NUM_THREADS": str(threads)}, capture_output=True).stdout
    return {b["run_name"]: b["real_time"] for b in json.loads(out)["benchmarks"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--knob", action="append", help="NAME=v1,v2 (repeatable); default: a sweep")
    p.add_argument("--filter", default="^(Forward|Train)<(LSTMf|GRUf|RNNf)>/B:(64|32|50)/")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    candidates = []  # (tag, definition)
    for knob in a.knob or DEFAULT_KNOBS:
        name, values = knob.split("=", 1)
        for v in values.split(","):
            candidates.append((f"{name}={v}", f"{name}={v}"))
    print(f"building {1 + len(candidates)} variants of recur_bench ...", flush=True)
    binaries = {"default": build("default", None)}
    for tag, definition in candidates:
        binaries[tag] = build(tag.replace("=", "_"), definition)
    # The defaults once more, as if a candidate: its ratios are this run's noise floor.
    candidates.insert(0, ("A/A (the defaults again: the noise)", None))
    binaries[candidates[0][0]] = binaries["default"]
    threads = [int(t) for t in a.threads.split(",")]
    times = {}  # (tag, threads, case) -> [ms per round]
    tags = list(binaries)
    for r in range(a.rounds):
        order = tags[r % len(tags):] + tags[:r % len(tags)]
        for t in threads:
            for tag in order:
                for case, ms in run(binaries[tag], a.filter, t).items():
                    times.setdefault((tag, t, case), []).append(ms)
        print(f"round {r + 1} of {a.rounds} done", flush=True)
    print(f"\nMachine: {describe()}. Time / the default's time, median over {a.rounds} "
          f"paired rounds (< 1: faster).\n")
    cases = sorted({k[2] for k in times})
    for tag, _ in candidates:
        print(f"{tag}:")
        for t in threads:
            logs = []
            for case in cases:
                base, cand = times.get(("default", t, case)), times.get((tag, t, case))
                if not base or not cand:
                    continue
                ratio = statistics.median(c / b for b, c in zip(base, cand))
                logs.append(math.log(ratio))
                print(f"  {t}T {case.replace('/real_time', '')}: {ratio:.3f} "
                      f"({statistics.median(base):.3f} -> {statistics.median(cand):.3f} ms)")
            if logs:
                print(f"  {t}T geometric mean: {math.exp(sum(logs) / len(logs)):.3f}")


if __name__ == "__main__":
    main()
