#!/usr/bin/env python3
"""Compile cost of recur in a user's translation unit (issue #32), against other trees in the
same run: bench/compile_cost/six_models.cpp (RNN, LSTM, GRU x float, double; bidirectional,
2 layers, forward + backward) and lstm_float.cpp (LSTM<float> alone), each compiled with
`g++ -std=c++17 -O2 -march=native` against include/ of this checkout and of every REV given
(git revisions, exported to a temporary directory), in alternating rounds; and this tree's
include/ in the compiled mode ("this tree, compiled": -DRECUR_COMPILED -fopenmp, the flags
recur::compiled gives a unit that links it; only the compile is timed, nothing is linked).
Prints the median wall time, the median of the per-round ratios tree / this tree, and the
object's text size.

  /usr/bin/python3 bench/compile_cost.py [--rounds 2] [--cxx g++] [REV ...]
  e.g.  bench/compile_cost.py 6baf3ff HEAD      (round 1, and the last commit)
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import machine  # noqa: E402

UNITS = ["six_models", "lstm_float"]


def export(rev, into):
    """include/ of git revision `rev`, written under `into`; returns that directory."""
    dest = os.path.join(into, rev.replace("/", "_"))
    os.makedirs(dest)
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev, "include"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return os.path.join(dest, "include")


def compile_once(cxx, include, unit, obj, extra):
    cmd = [cxx, "-std=c++17", "-O2", "-march=native", *extra, "-I/usr/include/eigen3",
           "-I" + include, "-c", os.path.join(HERE, "compile_cost", unit + ".cpp"), "-o", obj]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    text = int(subprocess.run(["size", obj], check=True, capture_output=True,
                              text=True).stdout.splitlines()[1].split()[0])
    return seconds, text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("revs", nargs="*", help="git revisions to compare with this checkout")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cxx", default="g++")
    args = ap.parse_args()
    print(machine.describe())
    with tempfile.TemporaryDirectory() as tmp:
        here = os.path.join(ROOT, "include")
        trees = [("this tree", here, [])]
        trees += [(rev, export(rev, tmp), []) for rev in args.revs]
        trees.append(("this tree, compiled", here, ["-DRECUR_COMPILED", "-fopenmp"]))
        obj = os.path.join(tmp, "unit.o")
        times = {(t, u): [] for t, _, _ in trees for u in UNITS}
        texts = {}
        for _ in range(args.rounds):
            for unit in UNITS:
                for name, include, extra in trees:
                    s, text = compile_once(args.cxx, include, unit, obj, extra)
                    times[(name, unit)].append(s)
                    texts[(name, unit)] = text
        print(f"{args.cxx} -O2 -march=native, {args.rounds} rounds (median s; ratio = that tree / "
              "this tree, median of the per-round ratios; text KiB)")
        print(f"| unit | tree | seconds | ratio | text KiB |\n|---|---|---|---|---|")
        for unit in UNITS:
            base = times[(trees[0][0], unit)]
            for name, _, _ in trees:
                t = times[(name, unit)]
                ratio = statistics.median(a / b for a, b in zip(t, base))
                print(f"| {unit} | {name} | {statistics.median(t):.1f} | {ratio:.2f} | "
                      f"{texts[(name, unit)] / 1024:.0f} |")


if __name__ == "__main__":
    main()
