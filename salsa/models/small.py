"""The offline tier's models: an MLP and a small CNN."""
import math

from torch import nn

from salsa.models.registry import register


@register("mlp", accepts={"vector", "image"})
def mlp(cfg, data):
    layers, width = [nn.Flatten()], math.prod(data.input_shape)
    for _ in range(cfg.depth):
        layers += [nn.Linear(width, cfg.width), nn.ReLU(), nn.Dropout(cfg.dropout)]
        width = cfg.width
    return nn.Sequential(*layers, nn.Linear(width, data.num_classes))


@register("cnn", accepts={"image"})
def cnn(cfg, data):
    """Two conv blocks (conv-BN-ReLU, max-pool after the first), global average pooling, linear head."""
    c, w = data.input_shape[0], cfg.width

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(*block(c, w), nn.MaxPool2d(2), *block(w, 2 * w),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, data.num_classes))
