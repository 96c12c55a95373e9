"""salsa.reference follows the authors' classes from the salsa-optimizer 0.1.0 wheel, and our SLS equals the
reference AdamSLS where the two share an algorithm (the paper's ADAM SLS column)."""
import contextlib
import io

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from experiments.overhead.release import adam_sls_step, release_closure
from salsa import SLS
from salsa.reference import AdamSLS, ReleaseSaLSA
from salsa.reference.base import sequential_sum
from tests.optim.helpers import load_release_or_skip

STEPS = 300
SCALAR = dict(base_opt="scalar", gv_option="scalar")
# The table's four line-search columns (docs/paper-protocol.md#the-optimizers-columns), ADAM SaLSa with and without
# speed_up (NLP / images), and the SGD columns from a large initial step so that they backtrack.
ADAM_SLS_SETTINGS = {
    "adam_salsa_nlp": dict(c=0.3, beta_s=0.99, speed_up=True),
    "adam_salsa_images": dict(c=0.3, beta_s=0.99),
    "sgd_salsa": dict(c=0.3, beta_s=0.99, **SCALAR),
    "adam_sls": dict(c=0.1, smooth=False),
    "sgd_sls": dict(c=0.1, smooth=False, **SCALAR),
    "sgd_salsa_backtracking": dict(c=0.3, beta_s=0.99, init_step_size=3.0, **SCALAR),
    "sgd_sls_backtracking": dict(c=0.1, smooth=False, init_step_size=3.0, **SCALAR),
}
SALSA_SETTINGS = {"defaults": {}, "use_mv": dict(use_mv=True)}


def digits(dtype=torch.float32):
    features, labels = load_digits(return_X_y=True)
    return torch.tensor(features / 16.0, dtype=dtype), torch.tensor(labels)


def digits_mlp(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10)).to(dtype)


def digits_cnn(dtype=torch.float32):
    """Eight parameter tensors of four shapes and BatchNorm: foreach calls over lists of mixed shapes."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 64, 10),
    ).to(dtype)


def batches(x_all, y_all, steps=STEPS):
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        index = torch.randint(0, len(x_all), (64,), generator=g)
        yield x_all[index], y_all[index]


def follow(ours_model, ours, theirs_model, theirs_step, dtype=torch.float32, device="cpu", steps=STEPS):
    """Train both side by side; returns the deviation max over steps and tensors of max|a-b| / max|b|,
    and both step-size trajectories."""
    x_all, y_all = (t.to(device) for t in digits(dtype))
    worst, ours_sizes, theirs_sizes = 0.0, [], []
    for x, y in batches(x_all, y_all, steps):
        ours.step(lambda: nn.functional.cross_entropy(ours_model(x), y))
        with contextlib.redirect_stdout(io.StringIO()):  # the authors' classes print on some steps
            theirs_sizes.append(theirs_step(lambda: nn.functional.cross_entropy(theirs_model(x), y)))
        ours_sizes.append(ours.step_size)
        for a, b in zip(ours_model.parameters(), theirs_model.parameters()):
            worst = max(worst, ((a - b).abs().max() / b.abs().max()).item())
    return worst, ours_sizes, theirs_sizes


def authors_pair(release, name, kwargs, ours_model, theirs_model):
    """salsa.reference's class `name` (AdamSLS or SaLSA) on ours_model and the wheel's on theirs_model: returns
    (ours, theirs, theirs_step), theirs_step(loss_fn) taking one step of the wheel's class and returning its step size."""
    if name == "AdamSLS":
        theirs = release.AdamSLS([list(theirs_model.parameters())], **kwargs)

        def theirs_step(loss_fn):
            adam_sls_step(theirs, loss_fn)
            return theirs.state["step_sizes"][0]
        return AdamSLS(ours_model.parameters(), **kwargs), theirs, theirs_step
    theirs = release.SaLSA(theirs_model.parameters(), **kwargs)

    def theirs_step(loss_fn):
        theirs.step(release_closure(theirs, loss_fn))
        return float(theirs.step_size)
    return ReleaseSaLSA(ours_model.parameters(), **kwargs), theirs, theirs_step


# Bitwise (the issue asks for 1e-6 relative): the reference classes repeat the authors' operations in their order,
# on tensors of the same shapes, in one process, so every kernel rounds alike on any CPU (measured 0.0 in every
# setting with AVX-512, AVX2 and plain x86-64 kernels, and with 2 threads, whose trajectories differ from each
# other). Equal step sizes and forward counts check that every accept/reject decision was the same.
BOUND = 0.0


@pytest.mark.parametrize("setting", sorted(ADAM_SLS_SETTINGS))
def test_adam_sls_follows_the_authors_class(setting, tmp_path):
    release = load_release_or_skip(tmp_path)
    kwargs = ADAM_SLS_SETTINGS[setting]
    ours_model, theirs_model = digits_mlp(), digits_mlp()
    ours, theirs, theirs_step = authors_pair(release, "AdamSLS", kwargs, ours_model, theirs_model)
    worst, ours_sizes, theirs_sizes = follow(ours_model, ours, theirs_model, theirs_step)
    assert worst <= BOUND
    assert ours_sizes == theirs_sizes
    assert ours.totals()["forwards"] == theirs.state["n_forwards"]
    searches = ours.totals()["line_searches"]
    assert searches < STEPS if kwargs.get("speed_up") else searches == STEPS
    if "backtracking" in setting:
        assert ours.totals()["backtracks"] > 20  # measured: 26 on every kernel setting


@pytest.mark.parametrize("setting", sorted(SALSA_SETTINGS))
def test_salsa_follows_the_release_class(setting, tmp_path):
    release = load_release_or_skip(tmp_path)
    ours_model, theirs_model = digits_mlp(), digits_mlp()
    ours, theirs, theirs_step = authors_pair(release, "SaLSA", SALSA_SETTINGS[setting], ours_model, theirs_model)
    worst, ours_sizes, theirs_sizes = follow(ours_model, ours, theirs_model, theirs_step)
    assert worst <= BOUND
    assert ours_sizes == theirs_sizes
    assert ours.totals()["forwards"] == theirs.state["n_forwards"]
    # measured (searches/backtracks): defaults 120/74, use_mv 159-161/80-81 across kernel settings
    assert 30 < ours.totals()["line_searches"] < STEPS and ours.totals()["backtracks"] > 20


# The table's ADAM columns and the release's default on a model with more tensors of several shapes, and in float64.
MODELS = {"cnn_float32": (digits_cnn, torch.float32), "mlp_float64": (digits_mlp, torch.float64)}
CLASSES = {"adam_sls_images": ("AdamSLS", ADAM_SLS_SETTINGS["adam_salsa_images"]),
           "adam_sls_nlp": ("AdamSLS", ADAM_SLS_SETTINGS["adam_salsa_nlp"]),
           "sgd_salsa": ("AdamSLS", ADAM_SLS_SETTINGS["sgd_salsa_backtracking"]), "release": ("SaLSA", {})}


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("cls", sorted(CLASSES))
def test_reference_classes_stay_bitwise_on_other_models_and_dtypes(cls, model, tmp_path):
    release = load_release_or_skip(tmp_path)
    build, dtype = MODELS[model]
    name, kwargs = CLASSES[cls]
    ours_model, theirs_model = build(dtype), build(dtype)
    ours, theirs, theirs_step = authors_pair(release, name, kwargs, ours_model, theirs_model)
    worst, ours_sizes, theirs_sizes = follow(ours_model, ours, theirs_model, theirs_step, dtype)
    assert worst <= BOUND
    assert ours_sizes == theirs_sizes
    assert ours.totals()["forwards"] == theirs.state["n_forwards"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sequential_sum_adds_left_to_right_in_the_dtype(dtype):
    """As the authors' loop `total = total + t.sum()` over 0-dim tensors; 300 terms of mixed magnitudes, where
    another order (right to left, by the same IEEE additions on any machine) gives another result."""
    g = torch.Generator().manual_seed(0)
    terms = list((torch.rand(300, generator=g, dtype=dtype) * 10.0 ** torch.randint(-6, 6, (300,), generator=g)).unbind())
    total = 0
    for t in terms:
        total = total + t
    assert torch.equal(sequential_sum(terms), total) and sequential_sum(terms).dtype == dtype
    backwards = 0
    for t in reversed(terms):
        backwards = backwards + t
    assert not torch.equal(backwards, total)


def test_sls_equals_the_reference_adam_sls_step_by_step():
    """SLS(preconditioner="adam") is the paper's ADAM SLS column, computed with foreach kernels and without
    a copy of w_k. From the same state, every step makes the same decisions and lands within the rounding
    of one step of the reference: each parameter is reached by at most `trials + 1` moves along d (the largest
    from w_k to the first trial point, at eta_first = eta / beta_b^(trials - 1)) and one momentum step, each add
    rounding by at most eps * (|w| + |move|), and the momentum step's factors (1/bc1, P, m) are rounded in another
    order (a few eps relative); so |fast - ref| <= (trials + 8) eps (|w_k| + eta_first |d_max|) elementwise, with
    |d_max| the larger of |P g| and |P m_hat|. A decision could differ only if an Armijo test were met within the
    trial losses' rounding (~1e-7 relative); none is in these 100 steps (measured on four CPU kernel settings)."""
    x_all, y_all = digits()
    ref_model, fast_model = digits_mlp(), digits_mlp()
    ref = AdamSLS(ref_model.parameters(), c=0.1, smooth=False, init_step_size=1.0)
    fast = SLS(fast_model.parameters(), preconditioner="adam", c=0.1, init_step_size=1.0, max_backtracks=200)
    eps = torch.finfo(torch.float32).eps
    backtracks = 0
    for x, y in batches(x_all, y_all, steps=100):
        for p, q in zip(fast_model.parameters(), ref_model.parameters()):  # start from the reference's state
            p.data.copy_(q)
            if q in ref.state and "gv" in ref.state[q]:
                fast.state[p]["exp_avg"], fast.state[p]["exp_avg_sq"] = ref.state[q]["mv"].clone(), ref.state[q]["gv"].clone()
        fast.line_search_state.update(step_size=ref.step_size, steps=ref.line_search_state["steps"])
        w_k = [q.detach().clone() for q in ref_model.parameters()]
        ref.step(lambda: nn.functional.cross_entropy(ref_model(x), y))
        fast.step(lambda: nn.functional.cross_entropy(fast_model(x), y))
        trials = ref.last_step_stats()["forwards"] - 1
        backtracks += trials - 1
        assert fast.step_size == ref.step_size and fast.last_step_stats()["forwards"] == trials + 1
        k, beta = ref.line_search_state["steps"], ref.beta
        for p, q, w in zip(fast_model.parameters(), ref_model.parameters(), w_k):
            st = ref.state[q]
            precond = 1.0 / ((st["gv"] / (1 - beta**k)).sqrt() + 1e-8)
            d_max = torch.maximum((precond * q.grad).abs(), (precond * st["mv"] / (1 - 0.9**k)).abs())
            eta_first = ref.step_size / ref.beta_b ** (trials - 1)
            bound = (trials + 8) * eps * (w.abs() + eta_first * d_max)
            assert ((p - q).abs() <= bound).all()
    assert backtracks > 10  # the searches did backtrack


def test_clear_errors_for_settings_the_table_did_not_use():
    params = list(digits_mlp().parameters())
    with pytest.raises(ValueError, match="adam/per_param"):
        AdamSLS(params, base_opt="scalar")
    with pytest.raises(ValueError, match="one group"):
        ReleaseSaLSA([{"params": params[:2]}, {"params": params[2:]}])
