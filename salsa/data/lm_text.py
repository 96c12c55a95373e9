"""Language-model text (the GPT-2 row): non-overlapping blocks of block_size+1 tokens, shuffled per epoch
(every block once per epoch, unlike nanoGPT's random windows); x = block[:-1], y = block[1:].

<paths.data>/<subdir>/ holds either nanoGPT's prepare.py output (train.bin, val.bin: uint16 GPT-2 token
ids, memory-mapped) or plain text (train.txt and optionally val.txt, tokenized with the model's
tokenizer; without val.txt the last val_fraction of train.txt's tokens is the val split). No test split."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from salsa.data.registry import DATASETS
from salsa.data.splits import Data, TensorSplit
from salsa.data.tokenizers import build_tokenizer
from salsa.registry import UserError


class TokenBlocks(TensorSplit):
    """Token stream (an array, possibly memory-mapped) cut into blocks of block_size+1."""

    def __init__(self, tokens, block_size: int):
        self.tokens, self.block_size, self.transform, self.augment = tokens, block_size, None, None
        self.y = torch.empty(max(0, (len(tokens) - 1) // block_size))  # only its length and device are used

    def to(self, device) -> TokenBlocks:
        return self  # batches are gathered from host memory and moved by the loop

    def take(self, n: int) -> TokenBlocks:
        return TokenBlocks(self.tokens[: n * self.block_size + 1], self.block_size)

    def gather(self, idx: torch.Tensor):
        starts = idx.numpy() * self.block_size
        blocks = torch.from_numpy(np.stack([np.asarray(self.tokens[s:s + self.block_size + 1], dtype=np.int64) for s in starts]))
        return blocks[:, :-1], blocks[:, 1:]


@DATASETS.register("openwebtext")
def openwebtext(cfg, *, data_root: Path, tokenizer, **_):
    root = data_root / cfg.subdir
    if (root / "train.bin").is_file() and (root / "val.bin").is_file():
        train, val = (np.memmap(root / f"{s}.bin", dtype=np.uint16, mode="r") for s in ("train", "val"))
        vocab = cfg.bin_vocab_size
    elif (root / "train.txt").is_file():
        text = (root / "train.txt").read_text(encoding="utf-8")
        tok = build_tokenizer(tokenizer, text.splitlines(), data_root)
        ids = np.asarray(tok(text)["input_ids"], dtype=np.int64)
        if (root / "val.txt").is_file():
            train, val = ids, np.asarray(tok((root / "val.txt").read_text(encoding="utf-8"))["input_ids"], dtype=np.int64)
        else:
            cut = int(len(ids) * (1 - cfg.val_fraction))
            train, val = ids[:cut], ids[cut:]
        vocab = len(tok)
    else:
        raise UserError(f"no LM text at {root}: put nanoGPT's train.bin and val.bin there (its data/openwebtext/prepare.py "
                        "makes them), or a plain train.txt (and optionally val.txt). Set paths.data=<dir> so that "
                        f"<dir>/{cfg.subdir} is that folder.")
    splits = [TokenBlocks(t, cfg.block_size) for t in (train, val)]
    if min(len(s) for s in splits) == 0:
        raise UserError(f"the LM text at {root} is shorter than one block of {cfg.block_size + 1} tokens in train or val")
    return Data(*splits, None, kind="lm", num_classes=vocab, input_shape=(cfg.block_size,), extra={"vocab_size": vocab})
