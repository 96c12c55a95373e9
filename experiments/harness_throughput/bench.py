"""Harness throughput vs a minimal hand-written PyTorch loop doing the same training.

Both train the same model from the same init on the same device-resident data with torch Adam: shuffled
epochs, then a full val + test evaluation after each epoch and a final pass over the training set. The harness
side is salsa.train.loop.train driven through ClosureOptimizer (closure, finiteness check, every step's loss
recorded, sampled metrics, a checkpoint written as a run writes it: at the end, and at an epoch's end once
trainer.checkpoint_interval_s has passed); the hand-written side is `loss.backward(); opt.step()` and writes
nothing. The checkpoint writes are timed apart too: their fsync waits on the disk, whatever the loop does.
Repeats alternate the order and report the median.
Usage: python -m experiments.harness_throughput.bench [--repeats 5] [--threads 1] [--out results/harness_throughput.md]
"""
import argparse
import statistics
import sys
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
    progress, records, losses, saving = Progress(), [], [], []

    def save():
        began = time.perf_counter()
        checkpoint.write(tmp / "checkpoint.pt", net=model, opt=opt, schedule=None, progress=progress, config_hash="x", numerics={})
        saving.append(time.perf_counter() - began)

    start = time.perf_counter()
    train(TrainingState(model, opt, None, progress), data, cfg.trainer, seed=0, device=torch.device("cpu"),
          files=SimpleNamespace(record=records.append, step_loss=losses.append),
          checkpoints=Checkpoints(save, every=cfg.trainer.checkpoint_every, interval_s=cfg.trainer.checkpoint_interval_s))
    return time.perf_counter() - start, sum(saving)


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
    parser.add_argument("--threads", type=int, default=1, help="torch threads (intra-op) for both sides")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "harness_throughput.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows, ratios = [], {}
    for name, overrides in SETUPS.items():
        cfg, data = setup(overrides)
        samples = cfg.trainer.epochs * len(data.train)
        times = {"harness": [], "hand-written": [], "checkpoint": []}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):
                for kind in (["harness", "hand-written"] if r % 2 == 0 else ["hand-written", "harness"]):
                    if kind == "harness":
                        total, saving = harness(cfg, data, Path(tmp))
                        times["harness"].append(total)
                        times["checkpoint"].append(saving)
                    else:
                        times["hand-written"].append(hand_written(cfg, data))
        h, m = (samples / statistics.median(times[k]) for k in ("harness", "hand-written"))
        saving = statistics.median(times["checkpoint"])
        aside = samples / statistics.median([t - c for t, c in zip(times["harness"], times["checkpoint"])])
        ratios[name] = h / m
        rows.append(f"| {name} | {cfg.trainer.batch_size} | {cfg.trainer.epochs} | {m:,.0f} | {h:,.0f} | {h / m:.3f} | "
                    f"{saving * 1000:.1f} | {aside / m:.3f} |")
        print(rows[-1], flush=True)
    table = "\n".join(["| setup | batch | epochs | hand-written samples/s | harness samples/s | ratio | "
                       "harness checkpoint writes (ms) | ratio, checkpoint writes aside |",
                       "|---|---|---|---|---|---|---|---|", *rows])
    command = " ".join(["python -m experiments.harness_throughput.bench", *sys.argv[1:]])
    args.out.write_text(
        "# Harness throughput vs a minimal hand-written loop\n\n"
        f"Command: `{command}`\n\n"
        f"Machine: {torch.get_num_threads()} torch thread(s), CPU, torch {torch.__version__}; median of {args.repeats} "
        "alternating repeats. Samples/s count training samples; both sides do the same per-epoch full val+test "
        "evaluation and the final full pass over the training set. The harness also writes its checkpoint as a run "
        "does (here once, at the end: the epochs are shorter than trainer.checkpoint_interval_s), whose fsync waits "
        "on the disk; the last column leaves that write out. Target: ratio >= 0.95.\n\n" + table + "\n")
    print(f"ratios: {', '.join(f'{name} {ratio:.3f}' for name, ratio in ratios.items())}; written to {args.out}")


if __name__ == "__main__":
    main()
