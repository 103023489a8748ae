#!/usr/bin/python3
"""char_rnn's data-parallel training over MPI on this machine, and what it projects to on many.

    /usr/bin/python3 bench/mpi_scaling.py [--reps 3] [--write docs/distributed.md]

Builds char_rnn (build/release, with MPI), then for the 2x128 and 2x512 LSTM char models
(batch 50 x 50 steps, the built-in corpus) runs, alternating, --reps times each:
  1 process x 2 threads        char_rnn train --threads 2
  2 ranks x 1 thread            mpirun -n 2 char_rnn train --threads 1
and reports the training speed (characters/s over the training steps) and the time per
iteration spent in the gradient allreduce (char_rnn's own measurement), medians over the
rounds. Then a projection for 8 and 64 machines from the measured numbers: the gradient bytes
per step, the step time of one machine, a ring allreduce at 10/25/100 Gb/s, the scaling
efficiency, and the batch per machine that keeps it at 90 %. With --write, replaces the section
between <!-- mpi-bench --> and <!-- /mpi-bench --> of the file.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

from machine import describe  # bench/machine.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "release")
BEGIN, END = "<!-- mpi-bench -->", "<!-- /mpi-bench -->"
BATCH, SEQ = 50, 50
ITERS = {128: 60, 512: 12}
ALPHA = 20e-6  # s per message hop of the ring (TCP over Ethernet; an assumption, stated)
LINKS = [10, 25, 100]  # Gb/s
MACHINES = [8, 64]


def run(cmd, env=None):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, env=env).stdout


def train(binary, size, ranks, tmp):
    d = tempfile.mkdtemp(dir=tmp)
    args = [binary, "train", "--rnn-size", str(size), "--num-layers", "2", "--batch-size", str(BATCH),
            "--seq-length", str(SEQ), "--max-iters", str(ITERS[size]), "--eval-every", "1000000",
            "--sample-length", "0", "--quiet", "--val-frac", "0.01", "--checkpoint-dir", d,
            "--threads", "2" if ranks == 1 else "1"]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    out = run((["mpirun", "-n", str(ranks), "--bind-to", "none"] if ranks > 1 else []) + args, env)
    shutil.rmtree(d)
    cps = float(re.search(r"iterations, (\d+) chars/s", out).group(1))
    params = int(re.search(r"; (\d+) parameters", out).group(1))
    m = re.search(r"gradient allreduce ([\d.]+) ms per iteration \(([\d.]+)%", out)
    return {"cps": cps, "params": params, "ar_ms": float(m.group(1)) if m else 0.0,
            "ar_share": float(m.group(2)) if m else 0.0}


def ring_seconds(nbytes, machines, gbps):
    """A ring allreduce: 2 (N-1)/N of the bytes through each link, 2 (N-1) message hops."""
    n = machines
    return 2 * (n - 1) / n * nbytes * 8 / (gbps * 1e9) + 2 * (n - 1) * ALPHA


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--write", default="")
    a = p.parse_args()
    subprocess.run(["cmake", "-S", ROOT, "-B", BUILD, "-G", "Ninja", "-Wno-dev", "-DCMAKE_BUILD_TYPE=Release",
                    "-DRECUR_BUILD_TESTS=OFF", "-DRECUR_BUILD_BENCHMARKS=OFF", "-DRECUR_BUILD_EXAMPLES=ON"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "--target", "char_rnn"], check=True, stdout=subprocess.DEVNULL)
    binary = os.path.join(BUILD, "examples", "char_rnn", "char_rnn")
    if shutil.which("mpirun") is None:
        sys.exit("mpirun not found (scripts/setup installs openmpi-bin)")
    tmp = tempfile.mkdtemp()
    res = {}  # (size, ranks) -> [runs]
    for r in range(a.reps):
        print(f"round {r + 1}/{a.reps} ...", file=sys.stderr, flush=True)
        for size in ITERS:
            order = [1, 2] if r % 2 == 0 else [2, 1]
            for ranks in order:
                res.setdefault((size, ranks), []).append(train(binary, size, ranks, tmp))
    shutil.rmtree(tmp)

    def med(size, ranks, key):
        return statistics.median(x[key] for x in res[(size, ranks)])

    lines = ["| model | 1 process x 2 threads, chars/s | 2 ranks x 1 thread, chars/s | ratio | "
             "allreduce ms per iteration (2 ranks) | share of the training time |", "|" + "---|" * 6]
    for size in ITERS:
        one, two = med(size, 1, "cps"), med(size, 2, "cps")
        lines.append(f"| LSTM 2x{size} | {one:,.0f} | {two:,.0f} | {two / one:.2f} | "
                     f"{med(size, 2, 'ar_ms'):.2f} | {med(size, 2, 'ar_share'):.1f} % |")
    measured = "\n".join(lines)

    size = 512
    params = res[(size, 1)][0]["params"]
    nbytes = 4 * params
    step = BATCH * SEQ / med(size, 1, "cps")  # s per iteration of one machine (2 cores)
    per_row = step / BATCH
    proj = [f"| machines | link | allreduce ms | efficiency at batch {BATCH} per machine | "
            "batch per machine for 90 % | global batch for 90 % |", "|" + "---|" * 6]
    for n in MACHINES:
        for gbps in LINKS:
            t = ring_seconds(nbytes, n, gbps)
            eff = step / (step + t)
            b90 = max(1, int(-(-9 * t // per_row)))  # ceil(9 t / per_row)
            proj.append(f"| {n} | {gbps} Gb/s | {1e3 * t:.1f} | {100 * eff:.1f} % | {b90} | {n * b90:,} |")
    projection = "\n".join(proj)
    text = f"""{BEGIN}
Generated by `/usr/bin/python3 bench/mpi_scaling.py{'' if not a.write else ' --write ' + a.write}` ({a.reps} rounds,
medians; char_rnn, batch {BATCH} x {SEQ} steps, the built-in corpus; Open MPI's shared-memory
transport between the ranks of this machine). Machine: {describe()}.

{measured}

### Projection: the 2x512 LSTM char model on 8 and 64 machines

From the numbers above: {params:,} parameters, so **{nbytes / 1e6:.1f} MB of gradients per
step** (float32); one machine's step at batch {BATCH} x {SEQ}: **{1e3 * step:.0f} ms** (this
machine, 1 process x 2 threads; a machine with more cores takes less, which lowers the
efficiencies below). A ring allreduce moves 2(N-1)/N of the bytes through every link and takes
2(N-1) message hops, here at {1e6 * ALPHA:.0f} µs each (TCP over Ethernet; an assumption). recur
does not overlap the allreduce with the backward pass, so the efficiency is
step / (step + allreduce); the batch per machine for 90 % assumes the step time grows in
proportion to the batch (true once the batch keeps every core busy).

{projection}
{END}"""
    print(text)
    if a.write:
        path = os.path.join(ROOT, a.write)
        old = open(path).read() if os.path.exists(path) else ""
        if BEGIN in old and END in old:
            new = old[:old.index(BEGIN)] + text + old[old.index(END) + len(END):]
        else:
            new = old.rstrip("\n") + ("\n\n" if old else "") + text + "\n"
        with open(path, "w") as f:
            f.write(new)
        print(f"wrote {a.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
