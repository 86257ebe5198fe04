"""LayerNorm over the channels of a ``(N, C, H, W)`` map (mmpretrain's ``LN2d``)."""
import torch
import torch.nn.functional as F
from torch import nn

from .norm import register_root_norms


class LayerNorm2d(nn.LayerNorm):
    """``nn.LayerNorm`` over dim 1 of ``(N, C, H, W)``; same parameters as ``nn.LayerNorm(C)``.

    ``forward(x)`` takes and returns ``(N, C, H, W)``; ``forward_channels_last(x)`` takes and
    returns ``(N, H, W, C)`` (what a block that already permuted its input calls, which saves two
    permutes). ``data_format='channel_first'|'channel_last'`` is accepted too, the way mmpretrain's
    ``LN2d`` is called.
    """

    _abbr_ = 'ln'

    def __init__(self, num_channels: int, eps: float = 1e-6, **kwargs):
        super().__init__(num_channels, eps=eps, **kwargs)
        self.num_channels = num_channels

    def forward_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def forward(self, x: torch.Tensor, data_format: str = 'channel_first') -> torch.Tensor:
        if data_format == 'channel_last':
            return self.forward_channels_last(x)
        if data_format != 'channel_first':
            # (plain concatenation: TorchScript compiles no ``!r`` conversion)
            raise ValueError("data_format must be 'channel_first' or 'channel_last', got '"
                             + data_format + "'")
        if x.dim() != 4:
            raise ValueError('LayerNorm2d expects (N, C, H, W), got shape ' + str(list(x.shape)))
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)


# into mmengine's root registry (next to mmcv's 'LN', 'BN', ...), so norm_cfg=dict(type='LN2d')
# builds through mmcv's build_norm_layer from any scope
ROOT_NORM_LAYERS = {'LN2d': LayerNorm2d, 'LayerNorm2d': LayerNorm2d}
register_root_norms(ROOT_NORM_LAYERS)
