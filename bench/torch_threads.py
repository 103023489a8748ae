"""Shared by bench/torch_*.py: how PyTorch gets its cores, set before `import torch`.

--threads N means N cores for PyTorch. The fastest arrangement measured on this machine
(2 cores, PyTorch 1.13 + OpenBLAS 0.3.21) is OpenBLAS with N threads under a single intra-op
thread: 2 x 2 nested threads oversubscribe the cores and run 2-3x slower.
"""
import os
import sys


def set_blas_threads():
    n = "1"
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            n = sys.argv[i + 1]
        elif arg.startswith("--threads="):
            n = arg.split("=", 1)[1]
    os.environ.setdefault("OPENBLAS_NUM_THREADS", n)
