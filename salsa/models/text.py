"""A bag-of-words text classifier (mean of token embeddings, one hidden layer): the offline tier's cheap
text model."""
import torch
from torch import nn

from salsa.models.registry import register


class BagOfWords(nn.Module):
    def __init__(self, vocab_size: int, dim: int, hidden: int, num_classes: int, pad_id: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x: dict) -> torch.Tensor:
        mask = x["attention_mask"].unsqueeze(-1).float()
        mean = (self.embed(x["input_ids"]) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(mean)


@register("bow", accepts={"text"})
def bow(cfg, data):
    return BagOfWords(data.extra["vocab_size"], cfg.dim, cfg.hidden, data.num_classes, data.extra["pad_id"])
