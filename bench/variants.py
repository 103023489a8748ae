#!/usr/bin/python3
"""The cell variants beside the plain cell at S2 (batch 64, 50 steps, 256 -> 256), inference
and training step, run interleaved in one process (recur_bench's Variants benchmarks),
medians over rounds; prints each variant's time as a ratio to the plain cell's.

    /usr/bin/python3 bench/variants.py [--bench build/cxx17/bench/recur_bench] [--threads 1]
                                       [--rounds 5] [--cpu N]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402

NAMES = ["plain", "peephole", "clip", "proj_size=H/2", "reset_before", "layer_norm",
         "recurrent_dropout=0.25"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/cxx17/bench/recur_bench")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU (taskset)")
    a = ap.parse_args()
    cmd = [a.bench, "--benchmark_filter=Variants", f"--benchmark_repetitions={a.rounds}",
           "--benchmark_enable_random_interleaving=true", "--benchmark_report_aggregates_only=true",
           "--benchmark_format=json"]
    if a.cpu is not None:
        cmd = ["taskset", "-c", str(a.cpu)] + cmd
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    rows = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        parts = b["run_name"].split("/")
        cell = parts[0].split("<")[1].split(">")[0].replace("recur::", "")
        rows[(cell, int(parts[7]), int(parts[6]))] = b["real_time"] * 1e-6  # ms
    print(f"CPU: {machine.describe()}; {a.threads} thread(s); S2 = batch 64, 50 steps, 256 -> 256, "
          f"float; medians of {a.rounds} interleaved rounds\n")
    print("| cell | variant | inference ms | × plain | training step ms | × plain |")
    print("|---|---|---|---|---|---|")
    for cell in ("LSTM", "GRU", "RNN"):
        for v in range(len(NAMES)):
            if (cell, 0, v) not in rows:
                continue
            i, t = rows[(cell, 0, v)], rows[(cell, 1, v)]
            print(f"| {cell} | {NAMES[v]} | {i:.2f} | {i / rows[(cell, 0, 0)]:.3f} | {t:.2f} | "
                  f"{t / rows[(cell, 1, 0)]:.3f} |")


if __name__ == "__main__":
    main()
