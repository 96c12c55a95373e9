"""A small Vision Transformer (torchvision's implementation; ViT-S sizes by default), for any image size
divisible by the patch size and any number of channels."""
from torch import nn

from salsa.models.registry import register
from salsa.registry import UserError


@register("vit_small", accepts={"image"})
def vit_small(cfg, data):
    from torchvision.models.vision_transformer import VisionTransformer

    channels, height, width = data.input_shape
    if height != width or height % cfg.patch_size:
        raise UserError(f"model=vit_small needs square images whose side is divisible by model.patch_size={cfg.patch_size}; "
                        f"the data set's are {height}x{width}. Set model.patch_size to a divisor of {height}.")
    model = VisionTransformer(image_size=height, patch_size=cfg.patch_size, num_layers=cfg.layers, num_heads=cfg.heads,
                              hidden_dim=cfg.hidden, mlp_dim=cfg.mlp, dropout=cfg.dropout, num_classes=data.num_classes)
    if channels != 3:
        model.conv_proj = nn.Conv2d(channels, cfg.hidden, cfg.patch_size, cfg.patch_size)
    return model
