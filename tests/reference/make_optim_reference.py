#!/usr/bin/python3
"""Reference values for recur's optimizers and learning-rate schedules, from torch.optim.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_optim_reference.py
It rewrites optim_reference.txt next to this script; tests/optim_test.cpp reads it.

Optimizers: two parameters (a 3x4 weight and a 5-vector), double precision, 12 steps on the
gradient g = (p - c)^3 + 0.5 p (polynomial, so both sides compute it exactly alike); the
parameters after the last step are recorded. Schedules: the learning rate seen by the
optimizer at scheduler steps 0..N.
"""
import os
import torch

torch.set_default_dtype(torch.float64)
STEPS = 12


def initial():
    w = torch.tensor([0.1 * (i % 7) - 0.3 + 0.05 * i / 12 for i in range(12)]).reshape(3, 4)
    b = torch.tensor([0.2 - 0.15 * i for i in range(5)])
    return [w, b]


def target(n):
    return torch.tensor([((i * 37) % 11) / 10 - 0.5 for i in range(n)])


OPTIMIZERS = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "amsgrad": True}),
    ("adamw", {"lr": 0.05}),
    ("adamw", {"lr": 0.05, "weight_decay": 0.2, "amsgrad": True}),
    ("adagrad", {}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.05, "initial_accumulator_value": 0.2}),
    ("rmsprop", {}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.01}),
]
CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop}


def fmt(values):
    return " ".join(repr(float(v)) for v in values)


def run_optimizer(name, kwargs):
    params = [p.clone().requires_grad_(True) for p in initial()]
    targets = [target(p.numel()).reshape(p.shape) for p in params]
    opt = CLASSES[name](params, **kwargs)
    for _ in range(STEPS):
        opt.zero_grad()
        for p, c in zip(params, targets):
            with torch.no_grad():
                p.grad = (p - c) ** 3 + 0.5 * p
        opt.step()
    args = " ".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in kwargs.items()
                    if k != "betas")
    if "betas" in kwargs:
        args += f" beta1={kwargs['betas'][0]} beta2={kwargs['betas'][1]}"
    lines = [f"optimizer {name} {args}".rstrip()]
    for i, p in enumerate(params):
        flat = p.detach().reshape(-1)
        lines.append(f"param{i} {flat.numel()} {fmt(flat)}")
    return lines


def schedules():
    base, n = 0.1, 24
    out = []

    def record(desc, make):
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=base)
        sched = make(opt)
        lrs = []
        for _ in range(n + 1):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out.append(f"schedule {desc} base={base}")
        out.append(f"lr {len(lrs)} {fmt(lrs)}")

    S = torch.optim.lr_scheduler
    record("step step_size=3 gamma=0.5", lambda o: S.StepLR(o, 3, 0.5))
    record("exponential gamma=0.9", lambda o: S.ExponentialLR(o, 0.9))
    record("cosine t_max=24 eta_min=0.001", lambda o: S.CosineAnnealingLR(o, 24, 0.001))
    for desc, make in [("step step_size=3 gamma=0.5", lambda o: S.StepLR(o, 3, 0.5)),
                       ("exponential gamma=0.9", lambda o: S.ExponentialLR(o, 0.9)),
                       ("cosine t_max=20 eta_min=0.001", lambda o: S.CosineAnnealingLR(o, 20, 0.001))]:
        record(desc + " warmup=4 start_factor=0.25",
               lambda o, make=make: S.SequentialLR(
                   o, [S.LinearLR(o, start_factor=0.25, total_iters=4), make(o)], milestones=[4]))
    return out


def main():
    lines = [f"# torch.optim reference, torch {torch.__version__}, made by make_optim_reference.py",
             f"# steps {STEPS}"]
    for name, kwargs in OPTIMIZERS:
        lines += run_optimizer(name, kwargs)
    lines += schedules()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim_reference.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
