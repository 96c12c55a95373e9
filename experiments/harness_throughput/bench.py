"""Harness throughput vs a minimal hand-written PyTorch loop doing the same work (issue 3, item 10).

Both train the same model from the same init on the same device-resident data with torch Adam: shuffled
epochs, then a full val + test evaluation after each epoch. The harness side is salsa.train.loop.train
driven through ClosureOptimizer (closure, per-step stats, finiteness check, sampled metrics, checkpoint per
epoch); the hand-written side is `loss.backward(); opt.step()`. Repeats alternate the order and report the
median. Usage: OMP_NUM_THREADS=1 python -m experiments.harness_throughput.bench [--out results/harness_throughput.md]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from hydra import compose, initialize_config_dir

from salsa.data import DATASETS
from salsa.models import MODELS
from salsa.train import checkpoint
from salsa.train.loop import Checkpoints, Progress, TrainingState, evaluate, loss_fn, train
from salsa.train.optimizers import build_optimizer

REPO = Path(__file__).resolve().parents[2]

SETUPS = {  # name: overrides
    "mnist5k-cnn": ["dataset=mnist5k", "model=cnn", "trainer.batch_size=128", "trainer.epochs=2"],
    "digits-mlp": ["dataset=digits", "model=mlp", "trainer.batch_size=64", "trainer.epochs=10"],
}


def setup(overrides):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["optimizer=torch_adam", "trainer.device=cpu", "trainer.log_every=10", *overrides])
    data = DATASETS[cfg.dataset.name](cfg.dataset, data_root=Path(cfg.paths.data), download=False, tokenizer=None)
    return cfg, data


def fresh_model(cfg, data):
    torch.manual_seed(0)
    return MODELS[cfg.model.name].build(cfg.model, data)


def harness(cfg, data, tmp: Path) -> float:
    model = fresh_model(cfg, data)
    opt = build_optimizer(cfg.optimizer, model.parameters(), model=model,
                          steps_per_epoch=data.train.num_batches(cfg.trainer.batch_size))
    progress, records = Progress(), []

    def save():
        checkpoint.write(tmp / "checkpoint.pt", net=model, opt=opt, schedule=None, progress=progress, config_hash="x", numerics={})

    start = time.perf_counter()
    train(TrainingState(model, opt, None, progress), data, cfg.trainer, seed=0, device=torch.device("cpu"),
          records=SimpleNamespace(record=records.append, step_loss=lambda loss: None),
          checkpoints=Checkpoints(save, every=cfg.trainer.checkpoint_every, interval_s=cfg.trainer.checkpoint_interval_s))
    return time.perf_counter() - start


def hand_written(cfg, data) -> float:
    model, t = fresh_model(cfg, data), cfg.trainer
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.lr)

    def no_autocast():
        return torch.autocast("cpu", enabled=False)

    start = time.perf_counter()
    for epoch in range(t.epochs):
        model.train()
        for x, y in data.train.batches(t.batch_size, train=True, seed=0, epoch=epoch):
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        for split in (data.val, data.test):
            evaluate(model, split, t.eval_batch_size, "cpu", no_autocast)
    evaluate(model, data.train, t.eval_batch_size, "cpu", no_autocast)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    for name, overrides in SETUPS.items():
        cfg, data = setup(overrides)
        samples = cfg.trainer.epochs * len(data.train)
        times = {"harness": [], "hand-written": []}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):
                order = ["harness", "hand-written"] if r % 2 == 0 else ["hand-written", "harness"]
                for kind in order:
                    times[kind].append(harness(cfg, data, Path(tmp)) if kind == "harness" else hand_written(cfg, data))
        h, m = (samples / statistics.median(times[k]) for k in ("harness", "hand-written"))
        rows.append(f"| {name} | {cfg.trainer.batch_size} | {cfg.trainer.epochs} | {m:,.0f} | {h:,.0f} | {h / m:.3f} |")
        print(rows[-1], flush=True)
    table = "\n".join(["| setup | batch | epochs | hand-written samples/s | harness samples/s | ratio |",
                       "|---|---|---|---|---|---|", *rows])
    if args.out:
        args.out.write_text(
            "# Harness throughput vs a minimal hand-written loop\n\n"
            f"Command: `OMP_NUM_THREADS=1 .venv/bin/python -m experiments.harness_throughput.bench --out {args.out}`\n\n"
            f"Machine: {torch.get_num_threads()} torch thread(s), CPU, torch {torch.__version__}; median of {args.repeats} "
            "alternating repeats. Samples/s count training samples; both sides do the same per-epoch full val+test "
            "evaluation and the final full pass over the training set. Target: ratio >= 0.95.\n\n" + table + "\n")


if __name__ == "__main__":
    main()
