#!/usr/bin/python3
"""ONNX backend-test cases for what ONNX's own recurrent cases do not cover, in their layout
(DIR/model.onnx, DIR/test_data_set_0/input_*.pb, output_*.pb), for `recur_onnx check`; and
torch.onnx exports of nn.LSTM / nn.GRU / nn.RNN with PyTorch's own outputs (test_torch_*).

    /usr/bin/python3 tests/reference/make_onnx_cases.py [OUT_DIR]   (default: tests/reference/onnx)

The expected outputs come from a float64 numpy implementation of the operator spec
(onnx.ai Operators.md: LSTM, GRU, RNN), written here independently of recur, extending the
reference helpers python3-onnx ships with its own cases (forward only, no sequence_lens) to
every direction, ragged sequence_lens, layout 1, peepholes, clip and both GRU forms.
sequence_lens as onnxruntime: a sample's steps past its length output 0 and leave its state;
the reverse direction starts at its last valid step; Y_h is the state after its last step.
Deterministic (seeded per case). Made with python3-onnx 1.12 (Debian).
"""
import os
import sys
import zlib

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def clipped(x, clip):
    return np.clip(x, -clip, clip) if clip else x


def cell_step(op, x, h, c, W, R, Wb, Rb, P, clip, lbr, act):
    """One step of one direction for one sample, float64, ONNX gate orders."""
    H = R.shape[1]
    if op == "RNN":
        f = np.tanh if act == "Tanh" else (lambda v: np.maximum(v, 0))
        return f(clipped(W @ x + R @ h + Wb + Rb, clip)), None
    if op == "LSTM":
        g = W @ x + R @ h + Wb + Rb  # blocks i, o, f, c
        gi, go, gf, gc = (g[k * H:(k + 1) * H] for k in range(4))
        pi, po, pf = (P[k * H:(k + 1) * H] for k in range(3)) if P is not None else (0, 0, 0)
        i = sigmoid(clipped(gi + pi * c, clip))
        f = sigmoid(clipped(gf + pf * c, clip))
        ct = np.tanh(clipped(gc, clip))
        c2 = f * c + i * ct
        o = sigmoid(clipped(go + po * c2, clip))
        return o * np.tanh(c2), c2
    # GRU: blocks z, r, h
    wx = W @ x
    z = sigmoid(clipped(wx[:H] + R[:H] @ h + Wb[:H] + Rb[:H], clip))
    r = sigmoid(clipped(wx[H:2 * H] + R[H:2 * H] @ h + Wb[H:2 * H] + Rb[H:2 * H], clip))
    if lbr:
        n = np.tanh(clipped(wx[2 * H:] + Wb[2 * H:] + r * (R[2 * H:] @ h + Rb[2 * H:]), clip))
    else:
        n = np.tanh(clipped(wx[2 * H:] + Wb[2 * H:] + R[2 * H:] @ (r * h) + Rb[2 * H:], clip))
    return (1 - z) * n + z * h, None


def reference(op, X, W, R, B, lens, h0, c0, P, direction, layout, clip, lbr, acts):
    """Y, Y_h, Y_c in the node's layout."""
    x = X if layout == 0 else X.transpose(1, 0, 2)  # [S, B, I]
    if layout == 1:  # states [B, D, H] -> [D, B, H]
        h0 = h0.transpose(1, 0, 2) if h0 is not None else None
        c0 = c0.transpose(1, 0, 2) if c0 is not None else None
    S, Bn, _ = x.shape
    D, H = W.shape[0], R.shape[2]
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[op]
    Y = np.zeros((S, D, Bn, H))
    Yh = np.zeros((D, Bn, H))
    Yc = np.zeros((D, Bn, H))
    for d in range(D):
        reverse = direction == "reverse" or d == 1
        Wb = B[d, :G * H] if B is not None else np.zeros(G * H)
        Rb = B[d, G * H:] if B is not None else np.zeros(G * H)
        for b in range(Bn):
            L = lens[b] if lens is not None else S
            h = h0[d, b].copy() if h0 is not None else np.zeros(H)
            c = c0[d, b].copy() if c0 is not None else np.zeros(H)
            steps = range(L - 1, -1, -1) if reverse else range(L)
            for t in steps:
                h, c2 = cell_step(op, x[t, b], h, c, W[d], R[d], Wb, Rb,
                                  P[d] if P is not None else None, clip, lbr,
                                  acts[d] if acts else "Tanh")
                if c2 is not None:
                    c = c2
                Y[t, d, b] = h
            Yh[d, b] = h
            Yc[d, b] = c
    if layout == 1:
        return Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return Y, Yh, Yc


def make(out_dir, name, op, S, Bn, I, H, direction="forward", layout=0, lens=None, bias=True,
         initial=False, peephole=False, clip=0.0, lbr=0, acts=None):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    D = 2 if direction == "bidirectional" else 1
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[op]
    f32 = lambda a: a.astype(np.float32)
    X = f32(rng.standard_normal((S, Bn, I) if layout == 0 else (Bn, S, I)))
    W = f32(0.5 * rng.standard_normal((D, G * H, I)))
    R = f32(0.5 * rng.standard_normal((D, G * H, H)))
    B = f32(0.3 * rng.standard_normal((D, 2 * G * H))) if bias else None
    sl = np.array(lens, dtype=np.int32) if lens is not None else None
    shape = (D, Bn, H) if layout == 0 else (Bn, D, H)
    h0 = f32(0.5 * rng.standard_normal(shape)) if initial else None
    c0 = f32(0.5 * rng.standard_normal(shape)) if initial and op == "LSTM" else None
    P = f32(0.5 * rng.standard_normal((D, 3 * H))) if peephole else None

    names = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    values = [X, W, R, B, sl, h0, c0, P]
    if op != "LSTM":
        names, values = names[:6], values[:6]
    last = max(i for i, v in enumerate(values) if v is not None)
    node_inputs = [n if v is not None else "" for n, v in zip(names[:last + 1], values[:last + 1])]
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    attrs = {"hidden_size": H, "direction": direction, "layout": layout}
    if clip:
        attrs["clip"] = clip
    if op == "GRU":
        attrs["linear_before_reset"] = lbr
    if acts:
        attrs["activations"] = acts
    node = helper.make_node(op, node_inputs, outputs, **attrs)
    ins = [(n, v) for n, v in zip(names, values) if v is not None]
    d64 = lambda a: None if a is None else a.astype(np.float64)
    Y, Yh, Yc = reference(op, d64(X), d64(W), d64(R), d64(B), lens, d64(h0), d64(c0), d64(P),
                          direction, layout, clip, lbr, acts)
    out_values = [Y, Yh, Yc]
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info(n, TensorProto.INT32 if n == "sequence_lens" else TensorProto.FLOAT,
                                       list(v.shape)) for n, v in ins],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(v.shape))
         for n, v in zip(outputs, out_values)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)

    case = os.path.join(out_dir, "test_" + name)
    os.makedirs(os.path.join(case, "test_data_set_0"), exist_ok=True)
    onnx.save(model, os.path.join(case, "model.onnx"))
    for i, (n, v) in enumerate(ins):
        with open(os.path.join(case, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(v, n).SerializeToString())
    for i, (n, v) in enumerate(zip(outputs, [Y, Yh, Yc])):
        with open(os.path.join(case, "test_data_set_0", f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(v.astype(np.float32), n).SerializeToString())


def error_cases(out):
    """Models recur must reject with one error line (tests/onnx_cli.sh), in out/errors/."""
    d = os.path.join(out, "errors")
    os.makedirs(d, exist_ok=True)

    def model(attrs, W_shape=(1, 12, 2)):
        node = helper.make_node("LSTM", ["X", "W", "R"], ["", "Y_h"], hidden_size=3, **attrs)
        g = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 2])],
                              [helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, 1, 3])],
                              [numpy_helper.from_array(np.zeros(W_shape, np.float32), "W"),
                               numpy_helper.from_array(np.zeros((1, 12, 3), np.float32), "R")])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    onnx.save(model({"input_forget": 1}), os.path.join(d, "input_forget.onnx"))
    onnx.save(model({"activations": ["Sigmoid", "Relu", "Tanh"]}), os.path.join(d, "activation.onnx"))
    case = os.path.join(d, "wrong_shape")
    os.makedirs(os.path.join(case, "test_data_set_0"), exist_ok=True)
    onnx.save(model({}, W_shape=(1, 12, 5)), os.path.join(case, "model.onnx"))
    with open(os.path.join(case, "test_data_set_0", "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(np.zeros((1, 1, 2), np.float32), "X").SerializeToString())
    with open(os.path.join(case, "test_data_set_0", "output_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(np.zeros((1, 1, 3), np.float32), "Y_h").SerializeToString())


def write_case(case, model_path, inputs, outputs):
    """A backend-test case directory from a saved model and numpy inputs/outputs."""
    os.makedirs(os.path.join(case, "test_data_set_0"), exist_ok=True)
    onnx.save(onnx.load(model_path), os.path.join(case, "model.onnx"))
    for prefix, arrays in (("input", inputs), ("output", outputs)):
        for i, (n, v) in enumerate(arrays):
            with open(os.path.join(case, "test_data_set_0", f"{prefix}_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(v, n).SerializeToString())


def torch_cases(out):
    """torch.onnx.export of nn.LSTM / nn.GRU / nn.RNN (1-2 layers, bidirectional, with and
    without an initial state), expected outputs from PyTorch itself."""
    try:
        import torch
    except ImportError:
        print("python3-torch missing: the torch.onnx cases are not made")
        return
    import tempfile
    import warnings
    warnings.filterwarnings("ignore")
    cases = [
        ("torch_lstm_2layers_bidirectional_f64", torch.nn.LSTM, dict(num_layers=2, bidirectional=True), True, False),
        ("torch_lstm_1layer_initial_state_f32", torch.nn.LSTM, dict(num_layers=1), False, True),
        ("torch_gru_2layers_bidirectional_initial_state_f64", torch.nn.GRU, dict(num_layers=2, bidirectional=True), True, True),
        ("torch_gru_1layer_f32", torch.nn.GRU, dict(num_layers=1), False, False),
        ("torch_rnn_relu_2layers_f64", torch.nn.RNN, dict(num_layers=2, nonlinearity="relu"), True, False),
    ]
    for name, kind, kw, f64, with_state in cases:
        torch.manual_seed(zlib.crc32(name.encode()))
        I, H, B, T = 3, 5, 2, 6
        m = kind(I, H, batch_first=True, **kw)
        if f64:
            m = m.double()
        dtype = torch.float64 if f64 else torch.float32
        D = 2 if kw.get("bidirectional") else 1
        x = torch.randn(B, T, I, dtype=dtype)
        args, in_names = (x,), ["x"]
        lstm = kind is torch.nn.LSTM
        if with_state:
            h0 = 0.5 * torch.randn(kw["num_layers"] * D, B, H, dtype=dtype)
            if lstm:
                c0 = 0.5 * torch.randn(kw["num_layers"] * D, B, H, dtype=dtype)
                args, in_names = (x, (h0, c0)), ["x", "h0", "c0"]
            else:
                args, in_names = (x, h0), ["x", "h0"]
        out_names = ["y", "h_n"] + (["c_n"] if lstm else [])
        with torch.no_grad():
            y, st = m(*args)
        outs = [y, st[0], st[1]] if lstm else [y, st]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.onnx")
            torch.onnx.export(m, args, path, input_names=in_names, output_names=out_names, opset_version=14)
            flat_in = [x] + ([h0, c0] if with_state and lstm else [h0] if with_state else [])
            write_case(os.path.join(out, "test_" + name), path,
                       [(n, v.numpy()) for n, v in zip(in_names, flat_in)],
                       [(n, v.numpy()) for n, v in zip(out_names, outs)])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "onnx")
    error_cases(out)
    torch_cases(out)
    ragged = [5, 2, 7, 1]
    make(out, "recur_lstm_bidirectional", "LSTM", 7, 4, 3, 5, "bidirectional", initial=True)
    make(out, "recur_lstm_reverse_ragged", "LSTM", 7, 4, 3, 5, "reverse", lens=ragged, initial=True)
    make(out, "recur_lstm_bidirectional_ragged_layout1", "LSTM", 7, 4, 3, 5, "bidirectional", layout=1,
         lens=ragged, initial=True)
    make(out, "recur_lstm_peepholes_initial_c_bidirectional", "LSTM", 6, 3, 4, 5, "bidirectional",
         lens=[6, 3, 1], initial=True, peephole=True)
    make(out, "recur_lstm_clip_peepholes", "LSTM", 6, 3, 4, 5, initial=True, peephole=True, clip=0.7)
    make(out, "recur_lstm_no_bias_layout1", "LSTM", 5, 2, 3, 17, layout=1, bias=False)
    for lbr in (0, 1):
        make(out, f"recur_gru_lbr{lbr}_bidirectional_ragged", "GRU", 7, 4, 3, 5, "bidirectional",
             lens=ragged, initial=True, lbr=lbr)
        make(out, f"recur_gru_lbr{lbr}_reverse_layout1", "GRU", 6, 3, 4, 18, "reverse", layout=1,
             initial=True, lbr=lbr)
        make(out, f"recur_gru_lbr{lbr}_clip", "GRU", 6, 3, 4, 5, lens=[6, 0, 4], initial=True, lbr=lbr,
             clip=0.6)
    make(out, "recur_rnn_bidirectional_relu_tanh_ragged", "RNN", 7, 4, 3, 5, "bidirectional",
         lens=ragged, initial=True, acts=["Relu", "Tanh"])
    make(out, "recur_rnn_reverse_layout1_clip", "RNN", 6, 3, 4, 5, "reverse", layout=1, initial=True,
         clip=0.5)


if __name__ == "__main__":
    main()
