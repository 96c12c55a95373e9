"""The loss -> 0 regime (a model memorising its data) stays finite.

The release takes an unchecked step at the grown step size, and keeps the growth, whenever the
loss is exactly 0, s < 1e-8 or a trial leaves the loss exactly unchanged; when memorising, eta then
grows by 1.1x per step until training blows up (when depends on the rounding of a float32 run;
results/memorisation shows it on an MLP and a CNN; here the mechanism is checked exactly). The default keeps eta instead.
"""
import math

import pytest
import torch
from torch import nn

from experiments.overhead.release import release_closure
from salsa import SaLSa
from salsa.reference import ReleaseSaLSA
from tests.optim.helpers import load_release_or_skip

# Losses a trial cannot tell apart: exactly 0, exactly unchanged (a constant), or s = 1e-18 far below the
# release's 1e-8. Each decision is exact (no rounding near a threshold), so the step sizes are compared exactly.
FLAT = {"zero": lambda w: (w * 0).sum(), "constant": lambda w: (w * 0).sum() + 1.0, "tiny_s": lambda w: 1e-9 * w.sum()}


@pytest.mark.parametrize("loss", FLAT)
def test_where_the_loss_cannot_tell_ours_keeps_eta_and_the_release_grows_it(loss, tmp_path):
    release = load_release_or_skip(tmp_path)
    grown = 1.0
    for _ in range(50):
        grown *= 1.1  # the release's unchecked growth, step by step as it multiplies
    for make, wrap, expected in ((SaLSa, False, 1.0), (ReleaseSaLSA, False, grown), (release.SaLSA, True, grown)):
        w = nn.Parameter(torch.ones(4))
        opt = make([w])
        for _ in range(50):
            opt.step(release_closure(opt, lambda: FLAT[loss](w)) if wrap else lambda: FLAT[loss](w))
        assert float(opt.step_size) == expected, (make.__module__, loss)


def memorising_transformer():
    # 4 batches: on 16 of them SaLSa (ours from 0.5, and the paper's frequency rule) stays at chance level for 1500
    # steps on most seeds, where Adam at lr 1e-3 memorises them (docs/optimizers.md, known weaknesses); the regime
    # under test is memorisation
    torch.manual_seed(0)
    data = [(torch.randint(0, 50, (16, 8)), torch.randint(0, 4, (16,))) for _ in range(4)]
    embed = nn.Embedding(50, 32)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
    head = nn.Linear(32, 4)
    model = nn.ModuleList([embed, encoder, head])
    return model, data, lambda x, y: nn.functional.cross_entropy(head(encoder(embed(x)).mean(1)), y)


def test_memorising_transformer_stays_finite_and_stable():
    model, data, loss_fn = memorising_transformer()
    opt = SaLSa(model.parameters())
    losses, sizes = [], []
    for i in range(1500):
        x, y = data[i % len(data)]
        losses.append(opt.step(lambda: loss_fn(x, y)).item())
        sizes.append(opt.step_size)
    assert all(math.isfinite(v) for v in losses)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # margins measured with the data and weights of seeds 0-4: largest eta 0.0071-0.0095, the last 16 losses at most
    # 2.1e-4. (The release's eta grows without bound once the loss cannot tell, and when it blows up is chaotic, so the
    # release is checked above.)
    assert max(sizes) < 100
    assert max(losses[-16:]) < 1e-3  # it did memorise: the regime under test was reached
