"""GLUE classification tasks through HF `datasets`, tokenized with the model's tokenizer.

Local files win: <paths.data>/<subdir>/{train,<val_split>}.{parquet,csv,tsv,jsonl} with the task's
columns (e.g. sentence,label for SST-2). Otherwise, with download=true, the hub copy (cache in
<paths.data>/hf). GLUE's test labels are hidden, so the splits are train and val = the official
validation set (MNLI: validation_matched), as in the paper; no test split. STS-B (regression) is not here."""
from __future__ import annotations

from pathlib import Path

from salsa.data.registry import DATASETS
from salsa.data.text import text_data
from salsa.data.tokenizers import build_tokenizer
from salsa.registry import UserError

BUILDERS = {"parquet": "parquet", "csv": "csv", "tsv": "csv", "jsonl": "json"}


def _local_files(root: Path, split: str) -> tuple[str, str] | None:
    for ext, builder in BUILDERS.items():
        if (root / f"{split}.{ext}").is_file():
            return builder, str(root / f"{split}.{ext}")
    return None


def load_splits(cfg, data_root: Path, download: bool) -> dict:
    import datasets

    root, wanted = data_root / cfg.subdir, {"train": "train", "val": cfg.val_split}
    found = {name: _local_files(root, split) for name, split in wanted.items()}
    if all(found.values()):
        return {name: datasets.load_dataset(builder, data_files=path, split="train",
                                            **({"delimiter": "\t"} if path.endswith(".tsv") else {}))
                for name, (builder, path) in found.items()}
    where = (f"put train and {cfg.val_split} files in {root} ({'/'.join(BUILDERS)}, columns "
             f"{', '.join([*cfg.text_fields, cfg.label_field])}), or run once where there is internet (the hub copy is "
             "cached under <paths.data>/hf)")
    if not download:
        raise UserError(f"GLUE {cfg.hub_config} is not at {root} and download=false: {where}.")
    try:
        return {name: datasets.load_dataset(cfg.hub_path, cfg.hub_config, split=split, cache_dir=str(data_root / "hf"))
                for name, split in wanted.items()}
    except (OSError, ConnectionError) as e:  # offline (HF_DATASETS_OFFLINE=1 or no network) and not in the cache
        raise UserError(f"GLUE {cfg.hub_config} is not at {root} nor in the HF cache, and the hub is out of reach "
                        f"({type(e).__name__}): {where}.") from e


def load_glue(cfg, *, data_root: Path, download: bool, tokenizer, **_):
    raw = load_splits(cfg, data_root, download)
    for name, ds in raw.items():
        absent = [c for c in [*cfg.text_fields, cfg.label_field] if c not in ds.column_names]
        if absent:
            raise UserError(f"GLUE {cfg.hub_config} {name} split lacks the column(s) {absent}; it has {ds.column_names}")

    def columns(ds):
        return [[str(t) for t in ds[f]] for f in cfg.text_fields]

    splits = {}
    for name, ds in raw.items():
        texts = columns(ds)
        splits[name] = (texts[0], texts[1] if len(texts) > 1 else None, ds[cfg.label_field])
    tok = build_tokenizer(tokenizer, [t for texts in columns(raw["train"]) for t in texts], data_root)
    return text_data(tok, splits, cfg.num_classes, cfg.max_length)


for _task in ("sst2", "mrpc", "qnli", "mnli", "rte", "cola", "qqp"):
    DATASETS.register(_task, load_glue)
