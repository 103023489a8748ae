#!/usr/bin/python3
"""recur, oneDNN and PyTorch side by side, measured in one run on this machine.

    /usr/bin/python3 bench/compare.py [--filter REGEX] [--reps 5] [--write docs/performance.md]

Builds build/bench (Release, -march=native, benchmarks only), then runs --reps rounds; each
round runs every case of recur_bench and onednn_bench (Google Benchmark) on 1 and 2 threads
(OMP_NUM_THREADS: recur and oneDNN both take their thread count from it), the two peers back
to back for each case (which one first alternates), then bench/torch_rnn_bench.py (PyTorch +
OpenBLAS, 2 threads, every case in one process: importing torch takes seconds). Prints one
table of median times and ratios (> 1: recur faster), and with --write writes it as Markdown
with the machine and the command.

The machine is shared and noisy: its slow phases last from seconds to minutes and would hit
whichever peer ran in them. So recur and oneDNN run the same case seconds apart, round after
round, and each ratio is the median over rounds of the ratio measured within one round
(paired), not a ratio of medians.
"""
import statistics
import argparse
import json
import os
import platform
import re
import subprocess
import sys

from machine import describe  # bench/machine.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "bench")


def sh(cmd, env=None, **kw):
    return subprocess.run(cmd, check=True, text=True, env={**os.environ, **(env or {})}, **kw)


def gbench(binary, flt, env):
    """One run of every benchmark matching flt: {name: milliseconds}. Warm: a training step
    takes up to half a second, so without the warm-up a case could be timed on its first call
    alone (buffers allocated and first touched); PyTorch's script warms up the same way."""
    out = sh([binary, f"--benchmark_filter={flt}", "--benchmark_format=json",
              "--benchmark_min_warmup_time=0.2", "--benchmark_min_time=0.4"], env=env,
             capture_output=True).stdout
    res = {}
    for b in json.loads(out)["benchmarks"]:
        scale = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
        res[b["run_name"]] = b["real_time"] * scale
    return res


def cases(binary, flt):
    out = sh([binary, f"--benchmark_filter={flt}", "--benchmark_list_tests"], capture_output=True).stdout
    return [l.strip() for l in out.splitlines() if l.strip()]


def machine():
    return describe()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--filter", default="^(Forward|Train)<")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--write", default="")
    a = p.parse_args()
    sh(["cmake", "-S", ROOT, "-B", BUILD, "-G", "Ninja", "-Wno-dev", "-DCMAKE_BUILD_TYPE=Release",
        "-DRECUR_BUILD_TESTS=OFF", "-DRECUR_BUILD_EXAMPLES=OFF", "-DRECUR_BUILD_BENCHMARKS=ON"],
       stdout=subprocess.DEVNULL)
    sh(["cmake", "--build", BUILD], stdout=subprocess.DEVNULL)
    binaries = {"recur": os.path.join(BUILD, "bench", "recur_bench")}
    onednn = os.path.join(BUILD, "bench", "onednn_bench")
    if os.path.exists(onednn):
        binaries["onednn"] = onednn
    names = cases(binaries["recur"], a.filter)
    rounds = []  # per round: {(peer, threads): {name: ms}}
    for r in range(a.reps):
        res = {(peer, threads): {} for peer in binaries for threads in (1, 2)}
        for threads in (1, 2):
            env = {"OMP_NUM_THREADS": str(threads)}
            print(f"round {r + 1}/{a.reps}: recur and oneDNN, {threads} thread(s) ...", file=sys.stderr,
                  flush=True)
            for i, n in enumerate(names):
                peers = list(binaries) if (r + i) % 2 == 0 else list(binaries)[::-1]
                for peer in peers:
                    res[(peer, threads)].update(gbench(binaries[peer], f"^{n}$", env))
        print(f"round {r + 1}/{a.reps}: PyTorch, 2 threads ...", file=sys.stderr, flush=True)
        out = sh(["/usr/bin/python3", os.path.join(ROOT, "bench", "torch_rnn_bench.py"), "--threads", "2",
                  "--filter", a.filter, "--reps", "1"], capture_output=True).stdout
        res[("torch", 2)] = {l.split()[0]: float(l.split()[1]) for l in out.splitlines() if l.strip()}
        rounds.append(res)

    def median_time(key, name):
        v = [r[key][name] for r in rounds if name in r.get(key, {})]
        return statistics.median(v) if v else None

    def median_ratio(peer, ours, name):  # paired within each round
        v = [r[peer][name] / r[ours][name] for r in rounds
             if name in r.get(peer, {}) and name in r.get(ours, {})]
        return statistics.median(v) if v else None

    names.sort(key=lambda n: (re.sub(r"<.*", "", n), n))  # table order: Forward, then Train
    head = ("| case | recur 1T ms | oneDNN 1T ms | ratio | recur 2T ms | oneDNN 2T ms | ratio | "
            "PyTorch 2T ms | ratio |")
    lines = [head, "|" + "---|" * 9]

    def cell(v):
        return f"{v:.3f}" if v is not None else "–"

    def ratio(v):
        return f"{v:.2f}×" if v is not None else "–"

    for n in names:
        r1, r2 = median_time(("recur", 1), n), median_time(("recur", 2), n)
        o1, o2 = median_time(("onednn", 1), n), median_time(("onednn", 2), n)
        t2 = median_time(("torch", 2), n)
        q1 = median_ratio(("onednn", 1), ("recur", 1), n)
        q2 = median_ratio(("onednn", 2), ("recur", 2), n)
        qt = median_ratio(("torch", 2), ("recur", 2), n)
        short = n.replace("/real_time", "").replace("f>", ">")
        lines.append(f"| {short} | {cell(r1)} | {cell(o1)} | {ratio(q1)} | {cell(r2)} | {cell(o2)} | "
                     f"{ratio(q2)} | {cell(t2)} | {ratio(qt)} |")
    table = "\n".join(lines)
    print(table)
    if a.write:
        import torch  # noqa: only for its version
        doc = f"""# Performance: recur vs oneDNN vs PyTorch

Generated by `/usr/bin/python3 bench/compare.py --write docs/performance.md` (one run of
{a.reps} rounds; in each round recur and oneDNN run every case back to back, then PyTorch runs
them all; float32). Times are medians over the rounds; a ratio is the peer's time over
recur's, taken within each round and then the median over the rounds: above 1, recur is
faster. "Forward" is inference (eval mode); "Train" is a training step
(forward + backward, all gradients). B batch, T time steps, in input size, H hidden size,
L layers. 1T / 2T: one or two threads.

Machine: {machine()}. oneDNN {("2.6 (libdnnl-dev)" if os.path.exists(onednn) else "not installed")},
PyTorch {torch.__version__} with OpenBLAS.

{table}
"""
        # The notes below the marker (how the kernels were tuned, with the measurements) are
        # kept: only the generated table above it is replaced.
        path, marker, notes = os.path.join(ROOT, a.write), "<!-- tuning notes -->", ""
        if os.path.exists(path):
            old = open(path).read()
            if marker in old:
                notes = "\n" + old[old.index(marker):]
        with open(path, "w") as f:
            f.write(doc + notes)
        print(f"wrote {a.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
