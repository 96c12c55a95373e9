"""Batched image augmentation on the training device (airbench style): one call per batch, no per-sample Python."""
import torch
import torch.nn.functional as F


def crop_flip(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop of the zero-padded images back to their size, then a horizontal flip with p=0.5,
    as torchvision's RandomCrop(size, padding=pad) + RandomHorizontalFlip, for a batch (B, C, H, W)."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[batch, channel, rows, cols]
    flip = torch.rand(b, generator=g, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)
