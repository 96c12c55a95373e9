"""DATASETS: name -> loader(cfg, *, data_root, download, tokenizer) -> Data.

`cfg` is the conf/dataset node, `data_root` the folder of `paths.data`, `download` the top-level flag,
`tokenizer` the model's tokenizer config (text and LM data sets only)."""
from salsa.registry import Registry

DATASETS = Registry("dataset")
