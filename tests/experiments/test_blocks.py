"""Runs -> Hydra sweeps: each cartesian block launches exactly the runs asked for, no more, no fewer."""
import itertools
import random

from experiments.reproduce.blocks import cartesian_blocks


def expand(blocks):
    runs = []
    for block in blocks:
        keys = [a.split("=", 1)[0] for a in block]
        values = [a.split("=", 1)[1].split(",") for a in block]
        runs += [tuple(f"{k}={v}" for k, v in zip(keys, combo)) for combo in itertools.product(*values)]
    return runs


def test_a_full_grid_is_one_sweep():
    runs = [[f"experiment={e}", f"optimizer={o}", f"seed={s}"] for e in "ab" for o in ("torch_adam", "torch_sgd") for s in range(5)]
    assert cartesian_blocks(runs) == [["experiment=a,b", "optimizer=torch_adam,torch_sgd", "seed=0,1,2,3,4"]]


def test_random_subsets_are_covered_exactly():
    rng = random.Random(0)
    full = [(f"experiment={e}", f"optimizer={o}", f"optimizer.lr={lr}", f"seed={s}")
            for e in "abc" for o in ("torch_adam", "torch_sgd") for lr in (0.1, 0.01) for s in range(3)]
    for _ in range(50):
        subset = rng.sample(full, rng.randint(1, len(full)))
        launched = expand(cartesian_blocks([list(r) for r in subset]))
        assert sorted(launched) == sorted(subset)          # each run exactly once, nothing extra
