#!/usr/bin/python3
"""PyTorch modules saved as safetensors state_dicts, with PyTorch's own outputs, for
tests/torch_model_test.cpp (recur::load_torch_model + Stream must reproduce them).

    /usr/bin/python3 make_torch_models.py OUTDIR

For each case: CASE.safetensors (the module's state_dict, exactly what
safetensors.torch.save_file writes: an 8-byte little-endian header length, a JSON header,
the raw little-endian data) and CASE.expected.safetensors ("input" [1, T, in] and "output"
[1, T, out], the module's forward in eval mode). The writer is the standard library (struct +
json), so only python3-torch is needed.
"""
import json
import struct
import sys

import torch
import torch.nn as nn


def save(path, tensors, metadata=None):
    header, body = {}, b""
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(torch.float32)
        raw = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + body)


class Net(nn.Module):
    def __init__(self, kind, inp, hidden, layers, out, **kw):
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind](
            inp, hidden, layers, batch_first=True, **kw)
        self.fc = nn.Linear(hidden, out)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y)


CASES = {
    # name: (kind, input, hidden, layers, outputs, extra nn.RNN arguments)
    "amp_lstm_h8": ("lstm", 1, 8, 1, 1, {}),
    "gru_l2_h6": ("gru", 2, 6, 2, 3, {}),
    "rnn_relu_l3_h5": ("rnn", 3, 5, 3, 2, {"nonlinearity": "relu"}),
}


def main():
    out = sys.argv[1]
    for i, (name, (kind, inp, hidden, layers, outs, kw)) in enumerate(CASES.items()):
        torch.manual_seed(100 + i)
        net = Net(kind, inp, hidden, layers, outs, **kw).eval()
        x = torch.randn(1, 40, inp)
        with torch.no_grad():
            y = net(x)
        save(f"{out}/{name}.safetensors", net.state_dict())
        save(f"{out}/{name}.expected.safetensors", {"input": x, "output": y},
             {"torch": torch.__version__})


if __name__ == "__main__":
    main()
