#!/usr/bin/python3
"""PyTorch's nn.RNN / nn.LSTM / nn.GRU (batch_first=True) on the configurations of
bench/recurrent_bench.cpp, for bench/compare. Prints one line per case:
    <name> <median milliseconds>
with names as Google Benchmark's (Forward<LSTMf>/B:64/T:50/in:256/H:256/L:1/real_time).

Run with Debian's python3-torch and libopenblas0 (else torch uses the reference BLAS):
  /usr/bin/python3 bench/torch_rnn_bench.py --threads 2 [--filter LSTM] [--reps 7]
"""
import argparse
import re
import statistics
import time

import torch_threads

torch_threads.set_blas_threads()
import torch  # noqa: E402  (after OPENBLAS_NUM_THREADS is set)

SHAPES = [(64, 50, 256, 256, 1), (32, 100, 512, 512, 1), (50, 50, 65, 512, 2), (1, 100, 128, 128, 1)]
CELLS = {"RNNf": torch.nn.RNN, "LSTMf": torch.nn.LSTM, "GRUf": torch.nn.GRU}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--filter", default="")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--min-time", type=float, default=0.3, help="seconds per repetition")
    a = p.parse_args()
    torch.set_num_threads(1)  # intra-op; BLAS gets a.threads (see torch_threads.py)
    torch.manual_seed(0)
    for cell, cls in CELLS.items():
        for mode in ("Forward", "Train"):
            for b, t, i, h, layers in SHAPES:
                name = f"{mode}<{cell}>/B:{b}/T:{t}/in:{i}/H:{h}/L:{layers}/real_time"
                if a.filter and not re.search(a.filter, name):
                    continue
                m = cls(i, h, layers, batch_first=True)
                x = torch.randn(b, t, i)
                dy = torch.randn(b, t, h)

                def step():
                    if mode == "Forward":
                        with torch.no_grad():
                            m(x)
                    else:
                        m.zero_grad()
                        y, _ = m(x)
                        y.backward(dy)

                step()
                times = []
                for _ in range(a.reps):
                    n, t0 = 0, time.perf_counter()
                    while True:
                        step()
                        n += 1
                        el = time.perf_counter() - t0
                        if el >= a.min_time:
                            break
                    times.append(el / n * 1e3)
                print(f"{name} {statistics.median(times):.4f}", flush=True)


if __name__ == "__main__":
    main()
