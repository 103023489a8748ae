#!/usr/bin/python3
"""Loads a char_rnn checkpoint into PyTorch with load_state_dict(strict=True) and prints the
greedy (argmax) continuation of a prime text, which must equal `char_rnn sample --argmax`.

    /usr/bin/python3 load_in_pytorch.py CHECKPOINT PRIME LENGTH

Reads safetensors with the standard library (struct + json), so it needs only python3-torch.
Exits 77 (ctest's "skipped") when torch is not installed.
"""
import json
import struct
import sys

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("python3-torch is not installed: skipped")
    sys.exit(77)


def load_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    dtypes = {"F32": torch.float32, "F64": torch.float64}
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[b:e]), dtype=dtypes[info["dtype"]])
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors, meta


class CharModel(nn.Module):
    def __init__(self, meta, vocab):
        super().__init__()
        e, h, layers = int(meta["embedding_size"]), int(meta["rnn_size"]), int(meta["num_layers"])
        self.embedding = nn.Embedding(vocab, e)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[meta["model"]](e, h, layers, batch_first=True)
        self.head = nn.Linear(h, vocab)


def main():
    path, prime, length = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tensors, meta = load_safetensors(path)
    vocab = json.loads(meta["vocab"])
    model = CharModel(meta, len(vocab)).float()
    model.load_state_dict(tensors, strict=True)
    model.eval()
    index = {c: i for i, c in enumerate(vocab)}
    out, state = prime, None
    with torch.no_grad():
        x = torch.tensor([[index[c] for c in prime]])
        for _ in range(length):
            y, state = model.rnn(model.embedding(x), state)
            nxt = int(model.head(y[0, -1]).argmax())
            out += vocab[nxt]
            x = torch.tensor([[nxt]])
    sys.stdout.write(out + "\n")


if __name__ == "__main__":
    main()
