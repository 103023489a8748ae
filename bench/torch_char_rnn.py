#!/usr/bin/python3
"""The char_rnn training run of examples/char_rnn, in PyTorch, for side-by-side comparison.

Same model (nn.Embedding -> nn.LSTM/GRU/RNN(batch_first=True) -> dropout -> nn.Linear), same
vocabulary (characters sorted by code point), same split (the last --val-frac of the text),
same batches (--batch-size parallel streams, --seq-length steps, hidden state carried between
consecutive batches and reset at each epoch), same optimizer and defaults, same gradient
clipping (global norm) and learning-rate decay, trained for a wall-clock budget; prints the
validation loss and the training throughput.

Run with Debian's python3-torch, with libopenblas0 installed (otherwise torch falls back to
the reference BLAS, about 30x slower):
  /usr/bin/python3 bench/torch_char_rnn.py --data FILE --max-seconds 60 --threads 2
"""
import argparse
import math
import time

import os

import torch_threads

torch_threads.set_blas_threads()
import torch  # noqa: E402  (after OPENBLAS_NUM_THREADS is set)
import torch.nn as nn


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--rnn-size", type=int, default=128)
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--embedding-size", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--seq-length", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--optimizer", default="adam", choices=["adam", "rmsprop", "adagrad", "sgd"])
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--lr-decay", type=float, default=0.97)
    p.add_argument("--lr-decay-after", type=int, default=10)
    p.add_argument("--grad-clip", type=float, default=5.0)
    p.add_argument("--val-frac", type=float, default=0.05)
    p.add_argument("--max-seconds", type=float, default=60)
    p.add_argument("--max-epochs", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=123)
    return p.parse_args()


class CharModel(nn.Module):
    def __init__(self, vocab, a):
        super().__init__()
        self.embedding = nn.Embedding(vocab, a.embedding_size)
        cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[a.model]
        self.rnn = cls(a.embedding_size, a.rnn_size, a.num_layers, batch_first=True,
                       dropout=a.dropout if a.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(a.dropout)
        self.head = nn.Linear(a.rnn_size, vocab)

    def forward(self, x, state):
        y, state = self.rnn(self.embedding(x), state)
        return self.head(self.drop(y)), state


def streams(ids, batch):
    length = len(ids) // batch
    return torch.tensor(ids[: batch * length], dtype=torch.long).view(batch, length)


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def main():
    a = parse()
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)  # intra-op; BLAS gets a.threads (see torch_threads.py)
    text = open(a.data, encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = [index[c] for c in text]
    n_val = int(len(ids) * a.val_frac)
    train_ids, val_ids = ids[: len(ids) - n_val], ids[len(ids) - n_val:]
    train = streams(train_ids, a.batch_size)
    per_epoch = (train.shape[1] - 1) // a.seq_length
    val_batch = max(1, min(a.batch_size, len(val_ids) // (a.seq_length + 1)))
    val = streams(val_ids, val_batch)

    model = CharModel(len(chars), a)
    opts = {"adam": lambda p: torch.optim.Adam(p, lr=a.learning_rate),
            "rmsprop": lambda p: torch.optim.RMSprop(p, lr=a.learning_rate, alpha=0.95),
            "adagrad": lambda p: torch.optim.Adagrad(p, lr=a.learning_rate),
            "sgd": lambda p: torch.optim.SGD(p, lr=a.learning_rate)}
    opt = opts[a.optimizer](model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    print(f"torch {torch.__version__}, OpenBLAS threads {os.environ['OPENBLAS_NUM_THREADS']}, intra-op 1; {len(text)} characters, "
          f"vocabulary {len(chars)}; {per_epoch} iterations per epoch", flush=True)

    it, state, train_time, done = 0, None, 0.0, 0
    start = time.perf_counter()
    while it < a.max_epochs * per_epoch and time.perf_counter() - start < a.max_seconds:
        chunk = it % per_epoch
        if chunk == 0:
            state = None
        epochs_done = it // per_epoch
        decays = max(0, epochs_done - max(a.lr_decay_after, 1) + 1)
        for g in opt.param_groups:
            g["lr"] = a.learning_rate * a.lr_decay ** decays
        t0 = time.perf_counter()
        x = train[:, chunk * a.seq_length:(chunk + 1) * a.seq_length]
        y = train[:, chunk * a.seq_length + 1:(chunk + 1) * a.seq_length + 1]
        opt.zero_grad()
        logits, state = model(x, state)
        state = detach(state)
        loss = loss_fn(logits.reshape(-1, len(chars)), y.reshape(-1))
        loss.backward()
        if a.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        train_time += time.perf_counter() - t0
        it += 1
        done += a.batch_size * a.seq_length
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        length = val.shape[1]
        chunks = (length - 2) // a.seq_length + 1 if length > 1 else 0
        for i in range(chunks):
            s = min(a.seq_length, length - 1 - i * a.seq_length)
            x = val[:, i * a.seq_length:i * a.seq_length + s]
            y = val[:, i * a.seq_length + 1:i * a.seq_length + s + 1]
            logits, state = model(x, state)
            total += loss_fn(logits.reshape(-1, len(chars)), y.reshape(-1)).item() * y.numel()
            count += y.numel()
    val_loss = total / count if count else float("nan")
    print(f"iterations {it}  train seconds {train_time:.1f}  chars/s {done / train_time:.0f}  "
          f"validation loss {val_loss:.4f} nats/char ({val_loss / math.log(2):.4f} bits/char)")


if __name__ == "__main__":
    main()
