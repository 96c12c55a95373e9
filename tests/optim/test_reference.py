"""reference_compat=True reproduces the authors' salsa-optimizer 0.1.0 on a deterministic model."""
import torch
from sklearn.datasets import load_digits
from torch import nn

from experiments.overhead.release import release_closure
from salsa import SaLSa
from tests.optim.helpers import load_release_or_skip

STEPS = 400


def digits_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))


def test_matches_the_release_for_400_steps(tmp_path):
    release = load_release_or_skip(tmp_path)
    features, labels = load_digits(return_X_y=True)
    x_all = torch.tensor(features / 16.0, dtype=torch.float32)
    y_all = torch.tensor(labels)
    ours_model, theirs_model = digits_mlp(), digits_mlp()
    ours = SaLSa(ours_model.parameters(), reference_compat=True)
    theirs = release.SaLSA(theirs_model.parameters())
    g = torch.Generator().manual_seed(1)
    ours_sizes, theirs_sizes = [], []
    for _ in range(STEPS):
        index = torch.randint(0, len(x_all), (64,), generator=g)
        x, y = x_all[index], y_all[index]
        ours.step(lambda: nn.functional.cross_entropy(ours_model(x), y))
        theirs.step(release_closure(theirs, lambda: nn.functional.cross_entropy(theirs_model(x), y)))
        ours_sizes.append(ours.step_size)
        theirs_sizes.append(float(theirs.step_size))

    searches = ours.totals()["line_searches"]
    assert 30 < searches < STEPS  # the frequency rule was exercised both ways
    assert ours.totals()["forwards"] == theirs.state["n_forwards"]
    torch.testing.assert_close(torch.tensor(ours_sizes), torch.tensor(theirs_sizes), rtol=1e-5, atol=0)
    for a, b in zip(ours_model.parameters(), theirs_model.parameters()):  # measured: 1.3e-6 and 4.9e-6
        assert ((a - b).norm() / b.norm()).item() < 1e-5
        assert ((a - b).abs().max() / b.abs().max()).item() < 1e-5
