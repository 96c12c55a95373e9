"""ResNets: the CIFAR-style ResNet-18/34 (3x3 stem, no max-pool; He et al. 2016 as in the paper's CIFAR
runs) and torchvision's ResNet-50 (ImageNet). The input channels follow the data set."""
from torch import nn

from salsa.models.registry import register


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return (self.body(x) + self.shortcut(x)).relu()


def cifar_resnet(cfg, data):
    layers, cin = [nn.Conv2d(data.input_shape[0], 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)], 64
    for stage, blocks in enumerate(cfg.blocks):
        cout = 64 * 2 ** stage
        for i in range(blocks):
            layers.append(BasicBlock(cin, cout, 2 if stage > 0 and i == 0 else 1))
            cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, data.num_classes))


register("resnet18", accepts={"image"})(cifar_resnet)
register("resnet34", accepts={"image"})(cifar_resnet)


@register("resnet50", accepts={"image"})
def resnet50(cfg, data):
    from torchvision.models import resnet50 as tv_resnet50

    model = tv_resnet50(weights=None, num_classes=data.num_classes)
    if data.input_shape[0] != 3:
        model.conv1 = nn.Conv2d(data.input_shape[0], 64, 7, 2, 3, bias=False)
    return model
