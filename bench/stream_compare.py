#!/usr/bin/python3
"""recur's streaming engine vs RTNeural, one sample at a time and in blocks, measured in one run.

    /usr/bin/python3 bench/stream_compare.py [--reps 5] [--cpu N] [--write docs/performance.md]

Builds build/bench with RTNeural side by side (-DRECUR_BENCH_RTNEURAL=ON; RTNeural's headers
from ../shared/peers/RTNeural), then runs --reps rounds of bench/stream_bench: RTNeural's
protocol (input 1, one LSTM or GRU layer of H units, a Dense H -> 1 head, float32, one
thread). In each round, for each cell and H, RTNeural's ModelT (one forward() per sample) and
recur's Stream (one step() per sample; process() over blocks of 64 and 512 samples) run back
to back, which one first alternating. A ratio is RTNeural's time over recur's within a round,
then the median over rounds (above 1: recur is faster). --cpu pins the run to one core (on
a shared machine the two cores need not be equally fast). With --write, the table replaces
the streaming section of the file (between its markers, appended at the end when absent).
Each round also measures the core (FMA throughput, latency of an FMA, a logistic and a tanh) for
the floor column and the list of rows below a goal, with why.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

from machine import describe  # bench/machine.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "bench")
BEGIN, END = "<!-- streaming -->", "<!-- /streaming -->"
CORE = ["Core/fma_throughput", "Core/latency:fma", "Core/latency:logistic", "Core/latency:tanh"]
GOAL_STEP, GOAL_BLOCK = 1.5, 2.0  # the goals: x RTNeural's speed


def floor_ns(core, cell, h):
    """What no implementation with Eigen's activation functions goes below on this core: the
    step's multiply-adds at the measured FMA throughput (LSTM 4H(H+1) lane FMAs, GRU 3H(H+1)),
    then the chain from the product to the next step's h, which cannot overlap the product
    (LSTM: tanh of a gate, an FMA for c, tanh(c), a multiply; GRU: logistic for r, an FMA into
    n, tanh, an FMA for h)."""
    g = 4 if cell == "LSTM" else 3
    fma = g * h * (h + 1) / core["Core/fma_throughput"]
    t, s, f = core["Core/latency:tanh"], core["Core/latency:logistic"], core["Core/latency:fma"]
    chain = 2 * t + 2 * f if cell == "LSTM" else s + t + 2 * f
    return fma + chain


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def machine():
    return describe()


def run(binary, names, pin):
    """Each case in its own run, in the given order: {name: ns per sample}."""
    res = {}
    for name in names:
        cmd = ([] if pin is None else ["taskset", "-c", str(pin)]) + [
            binary, f"--benchmark_filter=^{name}$", "--benchmark_format=json", "--benchmark_min_time=0.3"]
        for b in json.loads(sh(cmd, capture_output=True).stdout)["benchmarks"]:
            if "ns_per_sample" in b:
                res[b["run_name"]] = b["ns_per_sample"] * 1e9  # the counter is in seconds
            elif "ns_per_op" in b:
                res[b["run_name"]] = b["ns_per_op"] * 1e9
            else:
                res[b["run_name"]] = b["lane_fma_per_ns"]  # a rate of (FMAs * 1e-9) per s
    return res


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--cpu", type=int, default=None)
    p.add_argument("--write", default="")
    a = p.parse_args()
    sh(["cmake", "-S", ROOT, "-B", BUILD, "-G", "Ninja", "-Wno-dev", "-DCMAKE_BUILD_TYPE=Release",
        "-DRECUR_BUILD_TESTS=OFF", "-DRECUR_BUILD_EXAMPLES=OFF", "-DRECUR_BUILD_BENCHMARKS=ON",
        "-DRECUR_BENCH_RTNEURAL=ON"], stdout=subprocess.DEVNULL)
    sh(["cmake", "--build", BUILD, "--target", "stream_bench"], stdout=subprocess.DEVNULL)
    binary = os.path.join(BUILD, "bench", "stream_bench")
    listed = sh([binary, "--benchmark_list_tests"], capture_output=True).stdout.split()
    if not any(n.startswith("RTNeural") for n in listed):
        sys.exit("stream_bench was built without RTNeural (is ../shared/peers/RTNeural there?)")
    sizes = [8, 16, 24, 32, 48, 64]
    groups = []  # (cell, H, {kind: benchmark name})
    for cell in ("LSTM", "GRU"):
        for h in sizes:
            groups.append((cell, h, {"rtneural": f"RTNeural<{cell}>/H:{h}", "step": f"Stream<{cell}>/H:{h}",
                                     "block64": f"StreamBlock<{cell}>/H:{h}/block:64",
                                     "block512": f"StreamBlock<{cell}>/H:{h}/block:512"}))
    rounds = []
    for r in range(a.reps):
        print(f"round {r + 1}/{a.reps} ...", file=sys.stderr, flush=True)
        res = run(binary, CORE, a.cpu)
        for i, (_, _, names) in enumerate(groups):
            order = list(names.values())
            if (r + i) % 2:
                order = order[1:] + order[:1]  # RTNeural last
            res.update(run(binary, order, a.cpu))
        rounds.append(res)

    def med(name):
        return statistics.median(r[name] for r in rounds)

    def ratio(peer, ours):
        return statistics.median(r[peer] / r[ours] for r in rounds)

    core = {name: med(name) for name in CORE}
    lines = ["| cell | H | RTNeural ns/sample | recur step ns | ratio | recur block 64 ns | ratio | "
             "recur block 512 ns | ratio | floor ns | × real time at 48 kHz (block 64) |", "|" + "---|" * 11]
    below = []  # rows under a goal: (text)
    for cell, h, n in groups:
        rt = n["rtneural"]
        fl = floor_ns(core, cell, h)
        lines.append(f"| {cell} | {h} | {med(rt):.1f} | {med(n['step']):.1f} | {ratio(rt, n['step']):.2f}× | "
                     f"{med(n['block64']):.1f} | {ratio(rt, n['block64']):.2f}× | {med(n['block512']):.1f} | "
                     f"{ratio(rt, n['block512']):.2f}× | {fl:.1f} | {1e9 / 48000 / med(n['block64']):.0f} |")
        for kind, goal in (("step", GOAL_STEP), ("block64", GOAL_BLOCK), ("block512", GOAL_BLOCK)):
            if ratio(rt, n[kind]) < goal:
                need = med(rt) / goal
                why = (f"needs {need:.1f} ns, under the floor" if need < fl else
                       f"needs {need:.1f} ns, {med(n[kind]) / fl:.2f}x the floor now")
                below.append(f"{cell} H{h} {kind} {ratio(rt, n[kind]):.2f}x < {goal:g}x ({why})")
    table = "\n".join(lines)
    notes = (f"Core, medians: {core['Core/fma_throughput']:.1f} lane FMAs per ns; latency of an FMA "
             f"{core['Core/latency:fma']:.2f} ns, a logistic {core['Core/latency:logistic']:.1f} ns, a tanh "
             f"{core['Core/latency:tanh']:.1f} ns (one packet, Eigen's functions).\n\nBelow a goal (per sample "
             f"{GOAL_STEP:g}x, blocks {GOAL_BLOCK:g}x RTNeural's speed):\n" +
             "\n".join(f"- {b}" for b in below) if below else "Every row meets its goal.")
    print(table)
    print(notes)
    if not a.write:
        return
    section = f"""{BEGIN}
## Streaming: recur's Stream vs RTNeural

Generated by `/usr/bin/python3 bench/stream_compare.py --write docs/performance.md{'' if a.cpu is None else f' --cpu {a.cpu}'}`
({a.reps} rounds; RTNeural's protocol: input 1, one layer of H units, a Dense H -> 1 head,
float32, one thread; RTNeural `ModelT` with its Eigen backend, compile-time sizes; recur
`Stream` with the head, `step()` per sample and `process()` over blocks). Medians over the
rounds; a ratio is RTNeural's time over recur's within a round, median over rounds: above 1,
recur is faster. Machine: {machine()}{'' if a.cpu is None else f', pinned to CPU {a.cpu}'}.
The floor: the step's multiply-adds at this core's measured FMA throughput plus the chain from
the product to the next step's h (two activations and two FMAs, at their measured latencies),
which no implementation using these activation functions goes below (see `floor_ns`).

{table}

{notes}
{END}
"""
    path = os.path.join(ROOT, a.write)
    old = open(path).read() if os.path.exists(path) else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + section.rstrip("\n") + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(new)
    print(f"wrote {a.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
