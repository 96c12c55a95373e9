"""ImageNet (or any ImageFolder tree): <paths.data>/<subdir>/train/<class>/*.JPEG and .../val/<class>/*.
Too large for device memory, so it streams through a DataLoader; each training sample's crop and flip are
drawn from a generator seeded by (seed, epoch, position), so the order and the augmentation do not depend
on the number of workers and a resumed run sees exactly the same batches. val = the official validation
set (the paper's metric); no test split."""
from __future__ import annotations

from pathlib import Path

import torch

from salsa.data.registry import DATASETS
from salsa.data.splits import Data, mix, rank_share
from salsa.registry import UserError

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class _Seeded(torch.utils.data.Dataset):
    """Items are keyed by (index, seed); a seed of None means the deterministic evaluation transform."""

    def __init__(self, folder, train_tf, eval_tf):
        self.folder, self.train_tf, self.eval_tf = folder, train_tf, eval_tf

    def __len__(self):
        return len(self.folder.samples)

    def __getitem__(self, key):
        index, seed = key
        path, label = self.folder.samples[index]
        image = self.folder.loader(path)
        if seed is None:
            return self.eval_tf(image), label
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.train_tf(image), label


class FolderSplit:
    def __init__(self, dataset: _Seeded, indices: torch.Tensor, num_workers: int):
        self.dataset, self.indices, self.num_workers = dataset, indices, num_workers

    def __len__(self) -> int:
        return len(self.indices)

    def to(self, device) -> FolderSplit:
        return self  # batches are moved by the loop

    def take(self, n: int) -> FolderSplit:
        return FolderSplit(self.dataset, self.indices[:n], self.num_workers)

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def batches(self, batch_size: int, *, train: bool = False, seed: int = 0, epoch: int = 0, start: int = 0,
                rank: int = 0, world_size: int = 1):
        """As TensorSplit.batches, rank `rank`'s share of each global batch under world_size > 1 (each sample's
        augmentation is keyed by its position in the epoch, so a rank draws exactly what a single process would)."""
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(mix(seed, epoch))) if train else torch.arange(len(self))
        keys = [(int(self.indices[i]), mix(seed, epoch, int(i)) if train else None) for i in order[start * batch_size:]]
        shares = [batch[rank_share(len(batch), rank, world_size)] for batch in
                  (keys[b:b + batch_size] for b in range(0, len(keys), batch_size))]
        yield from torch.utils.data.DataLoader(self.dataset, batch_sampler=[s for s in shares if s], num_workers=self.num_workers,
                                               pin_memory=torch.cuda.is_available(), persistent_workers=False)


@DATASETS.register("imagenet")
def imagenet(cfg, *, data_root: Path, **_) -> Data:
    from torchvision import datasets
    from torchvision import transforms as T

    root = data_root / cfg.subdir
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise UserError(f"ImageNet is not at {root}: it needs {root}/train/<class>/<image> and {root}/val/<class>/<image> "
                        "(the ImageFolder layout; torchvision cannot download ImageNet). Set paths.data=<dir> so that "
                        f"<dir>/{cfg.subdir}/train and .../val exist.")
    normalize = [T.ToTensor(), T.Normalize(MEAN, STD)]
    train_tf = T.Compose([T.Resize(cfg.resize), T.RandomCrop(cfg.crop), T.RandomHorizontalFlip(), *normalize])
    eval_tf = T.Compose([T.Resize(cfg.resize), T.CenterCrop(cfg.crop), *normalize])
    train, val = datasets.ImageFolder(str(root / "train")), datasets.ImageFolder(str(root / "val"))
    if train.classes != val.classes:
        raise UserError(f"{root}/train and {root}/val hold different class folders; they must match")
    def split(folder):
        return FolderSplit(_Seeded(folder, train_tf, eval_tf), torch.arange(len(folder)), cfg.num_workers)

    return Data(split(train), split(val), None, kind="image", num_classes=len(train.classes), input_shape=(3, cfg.crop, cfg.crop))
