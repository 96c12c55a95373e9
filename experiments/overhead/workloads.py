"""The GPU benchmark's workloads: the paper's models and batch shapes on synthetic batches that can be learned.

Images: Gaussian images labelled by a fixed random teacher network (a 2-layer MLP), so a ResNet can fit them.
Text: tokens from a fixed random Markov chain in which each token is followed by one of 4 tokens with
probabilities 0.85/0.1/0.04/0.01 (0.54 nats per token, against log(vocabulary) for random tokens); GPT-2 learns the
next token, BERT a label that is a function of the tokens (more than half of them in the lower half of the
vocabulary). "gpt2-plateau" is GPT-2 on uniformly random tokens: nothing to learn, the loss sits at log(vocabulary).
Batch i is the same on every device and in every run (its own generator, seeded with i). The models come from
salsa/models (the harness's builders). On CPU the shapes are tiny, for smoke runs.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace

import torch
from torch import nn

from salsa.models.bert import bert
from salsa.models.gpt2 import gpt2
from salsa.models.resnet import cifar_resnet

SHAPES = {  # per device type: the paper's shapes on CUDA, tiny ones elsewhere
    "cuda": dict(
        resnet34=dict(batch=128, side=32, blocks=[3, 4, 6, 3], epoch=50_000 // 128),
        gpt2=dict(batch=8, tokens=1024, vocab=50257, hidden=768, layers=12, heads=12, epoch=1000),
        bert=dict(batch=32, tokens=128, vocab=30522, hidden=768, layers=12, heads=12, intermediate=3072, epoch=67_349 // 32),
    ),
    "cpu": dict(
        resnet34=dict(batch=16, side=8, blocks=[1], epoch=50),
        gpt2=dict(batch=2, tokens=32, vocab=128, hidden=32, layers=2, heads=2, epoch=50),
        bert=dict(batch=4, tokens=16, vocab=128, hidden=32, layers=2, heads=2, intermediate=64, epoch=50),
    ),
}
NEXT_TOKEN_PROBS = torch.tensor([0.85, 0.1, 0.04, 0.01])


@dataclass
class Workload:
    description: str
    model: Callable[[], nn.Module]   # a fresh model on the device (seeded)
    batch: Callable[[int], object]   # batch i, on the device
    loss: Callable                   # (model, batch) -> mini-batch loss, under the precision's autocast
    batches_per_epoch: int           # SLS's step-size schedule


class MarkovChain:
    def __init__(self, vocab: int, seed: int = 0):
        self.vocab = vocab
        self.successors = torch.randint(0, vocab, (vocab, len(NEXT_TOKEN_PROBS)), generator=torch.Generator().manual_seed(seed))

    def sample(self, batch: int, length: int, g: torch.Generator) -> torch.Tensor:
        choices = torch.multinomial(NEXT_TOKEN_PROBS, batch * length, replacement=True, generator=g).view(batch, length)
        tokens = [torch.randint(0, self.vocab, (batch,), generator=g)]
        for t in range(1, length):
            tokens.append(self.successors[tokens[-1], choices[:, t]])
        return torch.stack(tokens, 1)


def classification_loss(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def seeded(i: int) -> torch.Generator:
    return torch.Generator().manual_seed(1_000_003 + i)


def images(s: dict, device) -> tuple[str, Callable, Callable, Callable]:
    description = f"CIFAR ResNet-34 ({s['blocks']} blocks), batch {s['batch']} x 3x{s['side']}x{s['side']}, teacher labels"
    torch.manual_seed(1)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(3 * s["side"] ** 2, 256), nn.ReLU(), nn.Linear(256, 10))

    @torch.no_grad()
    def batch(i):
        x = torch.randn(s["batch"], 3, s["side"], s["side"], generator=seeded(i))
        return x.to(device), teacher(x).argmax(1).to(device)

    def model():
        return cifar_resnet(SimpleNamespace(blocks=s["blocks"]), SimpleNamespace(input_shape=(3, s["side"], s["side"]), num_classes=10))

    return description, model, batch, classification_loss


def language_model(s: dict, device, learnable: bool) -> tuple[str, Callable, Callable, Callable]:
    tokens = "Markov" if learnable else "random (plateau)"
    description = f"GPT-2 ({s['layers']} layers, width {s['hidden']}), {s['batch']} x {s['tokens']} {tokens} tokens"
    chain = MarkovChain(s["vocab"])

    def batch(i):
        g, shape = seeded(i), (s["batch"], s["tokens"] + 1)
        tokens = chain.sample(*shape, g) if learnable else torch.randint(0, s["vocab"], shape, generator=g)
        return tokens.to(device)

    def model():
        cfg = SimpleNamespace(hidden=s["hidden"], layers=s["layers"], heads=s["heads"], dropout=0.0)
        return gpt2(cfg, SimpleNamespace(num_classes=s["vocab"], input_shape=(s["tokens"],)))

    def loss(model, tokens):
        logits = model(tokens[:, :-1])
        return nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())

    return description, model, batch, loss


def classifier(s: dict, device) -> tuple[str, Callable, Callable, Callable]:
    description = f"BERT ({s['layers']} layers, width {s['hidden']}), batch {s['batch']} x {s['tokens']} Markov tokens"
    chain = MarkovChain(s["vocab"])

    def batch(i):
        tokens = chain.sample(s["batch"], s["tokens"], seeded(i))
        labels = ((tokens < s["vocab"] // 2).float().mean(1) > 0.5).long()
        return dict(input_ids=tokens.to(device), attention_mask=torch.ones_like(tokens, device=device)), labels.to(device)

    def model():
        cfg = SimpleNamespace(pretrained=None, hidden=s["hidden"], layers=s["layers"], heads=s["heads"], intermediate=s["intermediate"])
        return bert(cfg, SimpleNamespace(extra=dict(vocab_size=s["vocab"], pad_id=0), num_classes=2, input_shape=(s["tokens"],)))

    return description, model, batch, classification_loss


BUILDERS = {  # name -> (shapes, device) -> (description, model, batch, loss)
    "resnet34": images,
    "gpt2": partial(language_model, learnable=True),
    "bert": classifier,
    "gpt2-plateau": partial(language_model, learnable=False),
}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def workload(name: str, precision: str, device: torch.device) -> Workload:
    """`name` a key of BUILDERS, `precision` one of PRECISIONS."""
    s = SHAPES["cuda" if device.type == "cuda" else "cpu"][name.removesuffix("-plateau")]
    description, model, batch, loss = BUILDERS[name](s, device)
    dtype = PRECISIONS[precision]

    def seeded_model():
        torch.manual_seed(0)
        return model().to(device)

    def autocast_loss(model, batch):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            return loss(model, batch)

    return Workload(f"{description}, {precision}", seeded_model, batch, autocast_loss, s["epoch"])
