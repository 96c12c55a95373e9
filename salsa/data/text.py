"""Text classification data as tensors: token ids, attention mask and segment ids, padded to the longest
example of the split (int32 to halve memory); each batch is cut to its own longest example."""
from __future__ import annotations

import torch

from salsa.data.splits import Data, TensorSplit


def _trim(x: dict) -> dict:
    length = int(x["attention_mask"].sum(1).max())
    return {k: v[:, :length].long() for k, v in x.items()}


def encode(tokenizer, texts_a: list[str], texts_b: list[str] | None, labels, max_length: int) -> TensorSplit:
    enc = tokenizer(texts_a, texts_b, truncation=True, max_length=max_length, padding="longest",
                    return_token_type_ids=True, return_tensors="pt")
    x = {k: enc[k].to(torch.int32) for k in ("input_ids", "attention_mask", "token_type_ids")}
    return TensorSplit(x, torch.as_tensor(labels, dtype=torch.long), transform=_trim)


def text_data(tokenizer, splits: dict, num_classes: int, max_length: int) -> Data:
    """splits: name -> (texts_a, texts_b or None, labels) for train, val and optionally test."""
    encoded = {name: encode(tokenizer, *parts, max_length) for name, parts in splits.items()}
    return Data(encoded["train"], encoded["val"], encoded.get("test"), kind="text", num_classes=num_classes,
                input_shape=(max_length,), extra={"vocab_size": len(tokenizer), "pad_id": tokenizer.pad_token_id})
