"""ViTDet's residual convolution block (``Exploring Plain ViT Backbones for Object Detection``,
https://arxiv.org/abs/2203.16527), placed after given transformer blocks
(``residual_block_indexes``) to propagate information across windows.

``x + norm3(conv3(act(norm2(conv2(act(norm1(conv1(x))))))))`` on ``(B, C, H, W)``: 1x1 conv to
``C // 2``, 3x3 conv, 1x1 conv back to ``C``, each conv without bias and followed by a
channel LayerNorm (eps 1e-6, detectron2's ``LN``), GELU after the first two. Parameter names are
detectron2's (``conv1``, ``norm1``, ``conv2``, ``norm2``, ``conv3``, ``norm3``). Init as
detectron2's: convs MSRA (fan-out, ReLU gain), norms 1/0, the last norm all zeros so the block
starts as the identity.
"""
import torch
from torch import nn

from .ffn import build_act
from .layer_norm2d import LayerNorm2d


class ResBottleneckBlock(nn.Module):
    """``(B, C, H, W)`` -> ``(B, C, H, W)`` (module doc); ``bottleneck_channels`` defaults to
    ``channels // 2``."""

    def __init__(self, channels: int, bottleneck_channels: int = None, act_cfg=None):
        super().__init__()
        mid = bottleneck_channels or channels // 2
        self.conv1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.norm1 = LayerNorm2d(mid, eps=1e-6)
        self.act1 = build_act(act_cfg)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.norm2 = LayerNorm2d(mid, eps=1e-6)
        self.act2 = build_act(act_cfg)
        self.conv3 = nn.Conv2d(mid, channels, 1, bias=False)
        self.norm3 = LayerNorm2d(channels, eps=1e-6)
        self.reset_parameters()

    def reset_parameter(self, name: str, param: nn.Parameter) -> None:
        """The init of one parameter (``conv1.weight``, ``norm3.bias``, ...), as detectron2's."""
        with torch.no_grad():
            if name.startswith('conv'):
                nn.init.kaiming_normal_(param, mode='fan_out', nonlinearity='relu')
            elif name == 'norm3.weight' or name.endswith('bias'):
                param.zero_()
            else:
                param.fill_(1.)

    def reset_parameters(self) -> None:
        for name, param in self.named_parameters():
            if param.device.type != 'meta':
                self.reset_parameter(name, param)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.norm1(self.conv1(x)))
        out = self.act2(self.norm2(self.conv2(out)))
        return x + self.norm3(self.conv3(out))
