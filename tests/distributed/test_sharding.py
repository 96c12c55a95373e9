"""Each rank's share of a batch (in process, no process group): the shares of all ranks put together are the
single process's batch, augmentation included, and evaluation shares cover a split exactly once."""
import pytest
import torch

from salsa.data.augment import crop_flip
from salsa.data.splits import TensorSplit, rank_share


@pytest.mark.parametrize("n,world", [(64, 2), (41, 2), (41, 4), (3, 4), (1000, 8)])
def test_rank_shares_are_contiguous_balanced_and_cover_every_item_once(n, world):
    shares = [rank_share(n, r, world) for r in range(world)]
    assert [s.start for s in shares[1:]] == [s.stop for s in shares[:-1]] and (shares[0].start, shares[-1].stop) == (0, n)
    sizes = [s.stop - s.start for s in shares]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("world", [2, 3])
def test_rank_batches_put_together_are_the_single_process_batches_with_augmentation(world):
    g = torch.Generator().manual_seed(0)
    split = TensorSplit(torch.rand(103, 3, 8, 8, generator=g), torch.randint(0, 10, (103,), generator=g),
                        transform=lambda x: x * 2 - 1, augment=lambda x, gen: crop_flip(x, gen, 2))
    for epoch, start in ((0, 0), (3, 2)):  # a resumed epoch starts at a later batch
        kwargs = dict(train=True, seed=7, epoch=epoch, start=start)
        whole = list(split.batches(24, **kwargs))
        parts = [list(split.batches(24, rank=r, world_size=world, **kwargs)) for r in range(world)]
        assert len(whole) == 5 - start and all(len(p) == len(whole) for p in parts)
        for i, (x, y) in enumerate(whole):
            assert torch.equal(torch.cat([p[i][0] for p in parts]), x) and torch.equal(torch.cat([p[i][1] for p in parts]), y)
        assert any(not torch.equal(a, b) for a, b in zip(parts[0][0][0], parts[1][0][0]))  # the ranks see different data


def test_evaluation_shares_skip_empty_ones_and_cover_the_split_once():
    split = TensorSplit(torch.arange(10.0)[:, None], torch.arange(10))
    seen = [y for r in range(4) for _, y in split.batches(6, rank=r, world_size=4)]
    assert all(len(y) for y in seen) and sorted(torch.cat(seen).tolist()) == list(range(10))


def test_imagenet_folder_shares_are_the_single_process_batches(tmp_path):
    import numpy as np
    from omegaconf import OmegaConf
    from PIL import Image

    from salsa.data import DATASETS

    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("val", 2)):
        for cls in ("a", "b"):
            (tmp_path / "imagenet" / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "imagenet" / split / cls / f"{i}.png")
    cfg = OmegaConf.create({"name": "imagenet", "subdir": "imagenet", "resize": 18, "crop": 16, "num_workers": 0})
    train = DATASETS["imagenet"](cfg, data_root=tmp_path).train
    kwargs = dict(train=True, seed=3, epoch=1, start=1)
    whole = list(train.batches(4, **kwargs))  # 10 images: batches of 4, 4, 2; resumed at the second
    parts = [list(train.batches(4, rank=r, world_size=2, **kwargs)) for r in range(2)]
    assert [len(y) for _, y in whole] == [4, 2] and [[len(y) for _, y in p] for p in parts] == [[2, 1], [2, 1]]
    for i, (x, y) in enumerate(whole):  # the same images with the same random crops and flips
        assert torch.equal(torch.cat([p[i][0] for p in parts]), x) and torch.equal(torch.cat([p[i][1] for p in parts]), y)
