#!/usr/bin/python3
"""amp's model in PyTorch, for two things:

    torch_amp.py check CHECKPOINT clean.wav out.wav
        loads an amp checkpoint with load_state_dict(strict=True), runs it over clean.wav and
        checks that it gives out.wav (written by `amp process`) to 1e-4; exit 0 when it does.

    torch_amp.py train clean.wav processed.wav [--seconds 180 --hidden 16 --model lstm ...]
        trains the same model with the same loss and the same procedure as `amp train` (random
        segments, warm-up, truncated BPTT chunks with the state carried, Adam, gradient
        clipping) for the same time, printing the held-out ESR every --eval-every seconds: the
        comparison quoted in docs/performance.md.

Reads WAV with the standard library (struct), so it needs only python3-torch. Exits 77
(ctest's "skipped") when torch is not installed. Run with /usr/bin/python3.
"""
import argparse
import json
import struct
import sys
import time

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("python3-torch is not installed: skipped")
    sys.exit(77)


def read_wav(path):
    """Mono WAV (PCM 16/24/32-bit or float 32/64) -> (float tensor, sample rate)."""
    data = open(path, "rb").read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SystemExit(f"{path}: not a WAV file")
    pos, fmt, body = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunk = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", chunk[:16])
            if fmt[0] == 0xFFFE:  # extensible: the real tag is in the sub-format GUID
                fmt = (struct.unpack("<H", chunk[24:26])[0],) + fmt[1:]
        elif cid == b"data":
            body = chunk
        pos += 8 + size + (size & 1)
    tag, channels, rate, _, _, bits = fmt
    if channels != 1:
        raise SystemExit(f"{path}: {channels} channels")
    if tag == 3:
        x = torch.frombuffer(bytearray(body), dtype=torch.float32 if bits == 32 else torch.float64).float()
    elif bits == 16:
        x = torch.frombuffer(bytearray(body), dtype=torch.int16).float() / 32768
    elif bits == 24:
        b = torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(-1, 3).int()
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = torch.where(v >= 1 << 23, v - (1 << 24), v).float() / (1 << 23)
    else:
        x = torch.frombuffer(bytearray(body), dtype=torch.int32).float() / 2**31
    return x, rate


def load_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[b:e]), dtype={"F32": torch.float32, "F64": torch.float64}[info["dtype"]])
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors, meta


class Amp(nn.Module):
    def __init__(self, model, hidden):
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[model](1, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x, state=None):  # x [B, T, 1]
        h, state = self.rnn(x, state)
        return x + self.fc(h), state


def esr(pred, target, a, start=0):
    pp = pred[1:] - a * pred[:-1]
    pt = target[1:] - a * target[:-1]
    return float(((pp - pt)[start:] ** 2).sum() / (pt[start:] ** 2).sum())


def check(args):
    tensors, meta = load_safetensors(args.checkpoint)
    model = Amp(meta["model"], int(meta["hidden_size"]))
    model.load_state_dict(tensors, strict=True)
    model.eval()
    x, _ = read_wav(args.clean)
    want, _ = read_wav(args.out)
    with torch.no_grad():
        y, _ = model(x.reshape(1, -1, 1))
    diff = float((y.reshape(-1) - want).abs().max())
    print(f"torch_amp: PyTorch {torch.__version__} loaded {args.checkpoint} (strict); "
          f"max |PyTorch - amp process| = {diff:.2e} over {x.numel()} samples")
    return 0 if diff <= 1e-4 else 1


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, rate = read_wav(args.clean)
    y, _ = read_wav(args.processed)
    n = x.numel()
    n_val = int(n * args.val_fraction)
    n_train = n - n_val
    model = Amp(args.model, args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    a, B, K, W, C = args.pre_emphasis, args.batch_size, args.chunk, args.warmup, args.chunks
    seg = W + K * C

    def validate():
        with torch.no_grad():
            p, _ = model(x[n_train:].reshape(1, -1, 1))
        return esr(p.reshape(-1), y[n_train:], a, W)

    print(f"torch_amp: PyTorch {torch.__version__}, {args.threads} thread(s), {args.model} of {args.hidden}; "
          f"validation ESR before training {validate():.4f}")
    # The clock counts training only: PyTorch's validation (a forward over the whole held-out
    # part, one step at a time inside nn.LSTM) takes seconds, which amp's streaming engine
    # does in milliseconds; counting it would charge PyTorch for its inference speed.
    trained, step, next_eval, best = 0.0, 0, args.eval_every, float("inf")
    while True:
        t_start = time.monotonic()
        starts = torch.randint(1, n_train - seg + 1, (B,))
        idx = starts[:, None] + torch.arange(seg)[None, :]
        xs, ys = x[idx].unsqueeze(-1), y[idx].unsqueeze(-1)
        with torch.no_grad():
            _, state = model.rnn(xs[:, :W]) if W > 0 else (None, None)
        prev_p = prev_y = ys[:, W - 1, 0] if W > 0 else ys[:, 0, 0]
        for c in range(C):
            xc, yc = xs[:, W + c * K: W + (c + 1) * K], ys[:, W + c * K: W + (c + 1) * K]
            p, state = model(xc, state)
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            p, yc = p[..., 0], yc[..., 0]
            pp = p - a * torch.cat([prev_p[:, None], p[:, :-1]], 1)
            py = yc - a * torch.cat([prev_y[:, None], yc[:, :-1]], 1)
            loss = ((pp - py) ** 2).sum() / (py ** 2).sum().clamp_min(1e-20)
            opt.zero_grad()
            loss.backward()
            if args.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            opt.step()
            step += 1
            prev_p, prev_y = p[:, -1].detach(), yc[:, -1]
        trained += time.monotonic() - t_start
        elapsed = trained
        if elapsed >= next_eval or elapsed >= args.seconds:
            next_eval = elapsed + args.eval_every
            v = validate()
            best = min(best, v)
            print(f"torch_amp: {elapsed:6.1f} s  step {step:6d}  train ESR {float(loss):.4f}  validation ESR {v:.4f}",
                  flush=True)
        if elapsed >= args.seconds:
            break
    print(f"torch_amp: best validation ESR {best:.4f} after {trained:.0f} s of training, {step} steps")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("checkpoint")
    c.add_argument("clean")
    c.add_argument("out")
    t = sub.add_parser("train")
    t.add_argument("clean")
    t.add_argument("processed")
    for name, default in [("seconds", 180.0), ("learning-rate", 5e-3), ("val-fraction", 0.2),
                          ("pre-emphasis", 0.95), ("grad-clip", 1.0), ("eval-every", 10.0)]:
        t.add_argument("--" + name, type=float, default=default)
    for name, default in [("hidden", 16), ("batch-size", 16), ("chunk", 1024), ("chunks", 4),
                          ("warmup", 1000), ("seed", 1), ("threads", 1)]:
        t.add_argument("--" + name, type=int, default=default)
    t.add_argument("--model", default="lstm")
    args = p.parse_args()
    return check(args) if args.cmd == "check" else train(args)


if __name__ == "__main__":
    sys.exit(main())
