#!/usr/bin/python3
"""PyTorch reference cases for recur's layers, in the text format of tests/reference/torch/README.md.

    /usr/bin/python3 tests/reference/make_torch_reference.py [OUT_DIR]   (default: tests/reference/torch)

Each case runs torch.nn.RNN / LSTM / GRU (batch_first=True, float64) on random data, with
per-sample lengths through pack_padded_sequence (enforce_sorted=False), and writes the input,
initial state, every parameter, the output and final state, fixed random cotangents and the
gradients of loss = sum(output * G_out) + sum(h_n * G_h) [+ sum(c_n * G_c)] w.r.t. the input,
the initial state and every parameter. Deterministic: a case's seed is derived from its name.
Made with torch 1.13 (Debian's python3-torch).
"""
import os
import sys
import zlib

import torch

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
# (layers, bidirectional, B, T, I, H, lengths or None): every cell gets each of these.
SHAPES = [
    (1, False, 1, 1, 3, 2, None),
    (1, True, 3, 5, 4, 6, None),
    (2, False, 2, 7, 5, 5, None),
    (2, True, 4, 3, 10, 16, None),
    (3, False, 5, 11, 7, 3, None),
    (3, True, 3, 5, 4, 6, None),
    (1, False, 3, 5, 4, 6, [4, 1, 5]),
    (1, True, 5, 11, 7, 3, [8, 9, 1, 3, 11]),
    (2, False, 4, 3, 10, 16, [3, 3, 1, 2]),
    (2, True, 2, 7, 5, 5, [1, 7]),
    (1, False, 2, 9, 3, 4, [0, 6]),  # a sample of length 0: output 0, h_n = h0
]


def fmt(v):
    return "%.17g" % v


# nn.LSTM(proj_size=P): (layers, bidirectional, B, T, I, H, P, lengths or None).
PROJ_SHAPES = [
    (1, False, 3, 5, 4, 6, 3, None),
    (2, True, 3, 5, 4, 6, 2, None),
    (2, False, 4, 6, 5, 7, 4, [6, 2, 0, 4]),
    (2, True, 5, 11, 7, 5, 3, [8, 9, 1, 3, 11]),
]


def write_case(out_dir, name, meta, tensors):
    """One case file: "# key value" lines, then "name ndim shape... : values" per tensor."""
    with open(os.path.join(out_dir, name + ".txt"), "w") as f:
        for key, v in meta:
            f.write(f"# {key} {v}\n")
        for n, t in tensors:
            t = t.detach()
            f.write(f"{n} {t.dim()} {' '.join(str(d) for d in t.shape)} : "
                    + " ".join(fmt(float(v)) for v in t.reshape(-1)) + "\n")


def make(cell, layers, bi, B, T, I, H, lengths, out_dir, proj=0):
    name = f"{cell}_L{layers}_{'bi' if bi else 'uni'}_B{B}T{T}I{I}H{H}{f'P{proj}' if proj else ''}{'_len' if lengths else ''}"
    if lengths is not None and 0 in lengths:
        name += "0"
    seed = zlib.crc32(name.encode()) & 0x7FFFFFFF
    torch.manual_seed(seed)
    D = 2 if bi else 1
    kind = {"rnn_tanh": torch.nn.RNN, "rnn_relu": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    kw = {"nonlinearity": "relu" if cell == "rnn_relu" else "tanh"} if cell.startswith("rnn") else {}
    if proj:
        kw["proj_size"] = proj
    m = kind(I, H, num_layers=layers, bidirectional=bi, batch_first=True, **kw).double()
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    h0 = (0.5 * torch.randn(layers * D, B, proj or H, dtype=torch.float64)).requires_grad_()
    c0 = (0.5 * torch.randn(layers * D, B, H, dtype=torch.float64)).requires_grad_()
    state = (h0, c0) if cell == "lstm" else h0
    if lengths is not None:
        lens = torch.tensor(lengths)
        nz = lens > 0  # PyTorch cannot pack an empty sequence: run the others, fill by hand
        packed = torch.nn.utils.rnn.pack_padded_sequence(x[nz], lens[nz], batch_first=True, enforce_sorted=False)
        sub = (h0[:, nz], c0[:, nz]) if cell == "lstm" else h0[:, nz]
        y, st = m(packed, sub)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=T)
        output = torch.zeros(B, T, D * (proj or H), dtype=torch.float64).index_put((nz.nonzero()[:, 0],), y)
        ran = nz.nonzero()[:, 0].tolist()

        def full(s, s0):  # the final state of every sample: s for those that ran, else s0
            return torch.stack([s[:, ran.index(b)] if b in ran else s0[:, b] for b in range(B)], dim=1)
        if cell == "lstm":
            h_n, c_n = full(st[0], h0), full(st[1], c0)
        else:
            h_n = full(st, h0)
    else:
        output, st = m(x, state)
        h_n, c_n = (st if cell == "lstm" else (st, None))
    G_out = torch.randn_like(output)
    G_h = torch.randn_like(h_n)
    loss = (output * G_out).sum() + (h_n * G_h).sum()
    if cell == "lstm":
        G_c = torch.randn_like(c_n)
        loss = loss + (c_n * G_c).sum()
    params = list(m.named_parameters())
    wrt = [x, h0] + ([c0] if cell == "lstm" else []) + [p for _, p in params]
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    grads = [torch.zeros_like(w) if g is None else g for g, w in zip(grads, wrt)]

    tensors = [("x", x)]
    if lengths is not None:
        tensors.append(("lengths", torch.tensor(lengths, dtype=torch.float64)))
    tensors.append(("h0", h0))
    if cell == "lstm":
        tensors.append(("c0", c0))
    tensors += [(n, p) for n, p in params]
    tensors += [("output", output), ("h_n", h_n)]
    if cell == "lstm":
        tensors.append(("c_n", c_n))
    tensors += [("G_out", G_out), ("G_h", G_h)]
    if cell == "lstm":
        tensors.append(("G_c", G_c))
    names = ["grad_x", "grad_h0"] + (["grad_c0"] if cell == "lstm" else []) + ["grad_" + n for n, _ in params]
    tensors += list(zip(names, grads))
    meta = [("cell", cell), ("batch", B), ("time", T), ("input", I), ("hidden", H),
            ("layers", layers), ("bidirectional", int(bi)), ("has_lengths", int(lengths is not None)),
            ("seed", seed)]
    if proj:
        meta.insert(5, ("proj", proj))  # (recur's addition to the format: proj_size)
    write_case(out_dir, name, meta, tensors)
    return name


# Layer-norm LSTM (recur's LayerNorm::Ba2016 / TFAddons): no framework ships it as a layer,
# so the truth is this autograd implementation on torch.nn.functional.layer_norm:
#   z = LN(x W_ih^T + b_ih; ln_ih) + LN(h W_hh^T + b_hh; ln_hh)   (over all 4H columns)
#   u = f * c + i * g;  n = LN(u; ln_c);  h' = o * tanh(n)  [; h' = W_hr h' with proj_size]
#   c' = u ("ba2016") or n ("tfaddons")
# (mode, layers, bidirectional, B, T, I, H, P, lengths or None)
LN_SHAPES = [
    ("ba2016", 1, False, 3, 5, 4, 6, 0, None),
    ("tfaddons", 1, False, 3, 5, 4, 6, 0, None),
    ("ba2016", 2, True, 4, 6, 5, 7, 0, [6, 2, 0, 4]),
    ("tfaddons", 2, True, 5, 11, 7, 5, 0, [8, 9, 1, 3, 11]),
    ("ba2016", 2, False, 3, 5, 4, 6, 3, [5, 1, 3]),
]
LN_EPS = 1e-5


def make_layer_norm(mode, layers, bi, B, T, I, H, P, lengths, out_dir):
    F = torch.nn.functional
    name = f"lstm_ln_{mode}_L{layers}_{'bi' if bi else 'uni'}_B{B}T{T}I{I}H{H}{f'P{P}' if P else ''}{'_len' if lengths else ''}"
    if lengths is not None and 0 in lengths:
        name += "0"
    seed = zlib.crc32(name.encode()) & 0x7FFFFFFF
    torch.manual_seed(seed)
    D = 2 if bi else 1
    R = P or H
    k = H ** -0.5
    params = []  # (name, tensor), every one a leaf away from its initial value

    def param(n, *shape, center=0.0, scale=None):
        t = (center + (scale * torch.randn(*shape, dtype=torch.float64) if scale
                       else torch.empty(*shape, dtype=torch.float64).uniform_(-k, k))).requires_grad_()
        params.append((n, t))
        return t

    weights = []
    for l in range(layers):
        for d in range(D):
            sfx = f"_l{l}" + ("_reverse" if d else "")
            inp = I if l == 0 else D * R
            w = {"w_ih": param("weight_ih" + sfx, 4 * H, inp), "w_hh": param("weight_hh" + sfx, 4 * H, R),
                 "b_ih": param("bias_ih" + sfx, 4 * H), "b_hh": param("bias_hh" + sfx, 4 * H)}
            if P:
                w["w_hr"] = param("weight_hr" + sfx, P, H)
            for part, n in (("ih", 4 * H), ("hh", 4 * H), ("c", H)):
                w[f"ln_g_{part}"] = param(f"ln_{part}_weight" + sfx, n, center=1.0, scale=0.3)
                w[f"ln_b_{part}"] = param(f"ln_{part}_bias" + sfx, n, scale=0.3)
            weights.append(w)

    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    h0 = (0.5 * torch.randn(layers * D, B, R, dtype=torch.float64)).requires_grad_()
    c0 = (0.5 * torch.randn(layers * D, B, H, dtype=torch.float64)).requires_grad_()
    lens = torch.tensor(lengths if lengths is not None else [T] * B)

    def run(inp, w, h, c, reverse):
        outs = [None] * T
        for t in (reversed(range(T)) if reverse else range(T)):
            active = (t < lens).unsqueeze(1)
            z = (F.layer_norm(inp[:, t] @ w["w_ih"].T + w["b_ih"], (4 * H,), w["ln_g_ih"], w["ln_b_ih"], LN_EPS)
                 + F.layer_norm(h @ w["w_hh"].T + w["b_hh"], (4 * H,), w["ln_g_hh"], w["ln_b_hh"], LN_EPS))
            i, f, g, o = z.chunk(4, dim=1)
            u = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            n = F.layer_norm(u, (H,), w["ln_g_c"], w["ln_b_c"], LN_EPS)
            hn = torch.sigmoid(o) * torch.tanh(n)
            if P:
                hn = hn @ w["w_hr"].T
            cn = n if mode == "tfaddons" else u
            h = torch.where(active, hn, h)
            c = torch.where(active, cn, c)
            outs[t] = torch.where(active, hn, torch.zeros_like(hn))
        return torch.stack(outs, dim=1), h, c

    inp, hs, cs = x, [], []
    for l in range(layers):
        ys = []
        for d in range(D):
            w = weights[l * D + d]
            y, h, c = run(inp, w, h0[l * D + d], c0[l * D + d], d == 1)
            ys.append(y)
            hs.append(h)
            cs.append(c)
        inp = torch.cat(ys, dim=2)
    output, h_n, c_n = inp, torch.stack(hs), torch.stack(cs)

    G_out, G_h, G_c = torch.randn_like(output), torch.randn_like(h_n), torch.randn_like(c_n)
    loss = (output * G_out).sum() + (h_n * G_h).sum() + (c_n * G_c).sum()
    wrt = [x, h0, c0] + [p for _, p in params]
    grads = torch.autograd.grad(loss, wrt)
    tensors = [("x", x)]
    if lengths is not None:
        tensors.append(("lengths", torch.tensor(lengths, dtype=torch.float64)))
    tensors += [("h0", h0), ("c0", c0)] + params
    tensors += [("output", output), ("h_n", h_n), ("c_n", c_n), ("G_out", G_out), ("G_h", G_h), ("G_c", G_c)]
    tensors += list(zip(["grad_x", "grad_h0", "grad_c0"] + ["grad_" + n for n, _ in params], grads))
    meta = [("cell", "lstm"), ("batch", B), ("time", T), ("input", I), ("hidden", H)]
    if P:
        meta.append(("proj", P))
    meta += [("layers", layers), ("bidirectional", int(bi)), ("has_lengths", int(lengths is not None)),
             ("layer_norm", mode), ("layer_norm_eps", LN_EPS), ("seed", seed)]
    write_case(out_dir, name, meta, tensors)
    return name


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch")
    os.makedirs(out_dir, exist_ok=True)
    names = [make(c, *s, out_dir) for c in CELLS for s in SHAPES]
    names += [make("lstm", *s[:6], s[7], out_dir, proj=s[6]) for s in PROJ_SHAPES]
    names += [make_layer_norm(*s, out_dir) for s in LN_SHAPES]
    print(f"{len(names)} cases in {out_dir} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
