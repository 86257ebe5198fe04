"""The strided 1x1 convolution (ResNet/RegNet shortcuts, caffe-style bottlenecks).

A 1x1 kernel at stride ``s`` reads only every ``s``-th pixel, so it equals a stride-1 1x1 conv of
``x[:, :, ::s, ::s]``: same output size (``ceil(H / s)``), same numbers up to summation order.

Why compute it that way: for a contiguous (NCHW) float tensor on the CPU, PyTorch runs strided
convs through oneDNN, whose backward first copies the whole input into another layout; for
ResNet-50's layer2 shortcut (batch 4, 256x56x56) forward + backward takes 60 ms that way and
27 ms as a stride-1 1x1 conv of the subsampled input (GEMMs; one thread, as at two). Channels-last
inputs (where oneDNN is the faster one), other devices and tracing/export keep the strided conv.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .pos_embed import is_exporting


class StridedPointwiseConv2d(nn.Conv2d):
    """``nn.Conv2d`` with ``kernel_size=1``, ``padding=0`` and a stride above 1:
    ``(N, C_in, H, W) -> (N, C_out, ceil(H / sh), ceil(W / sw))``.

    Same parameters, state dict and results as the ``nn.Conv2d`` it replaces; only the kernel
    PyTorch picks on the CPU differs (see the module docstring).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not is_strided_pointwise(self.kernel_size, self.stride, self.padding,
                                    self.padding_mode):
            raise ValueError(f'StridedPointwiseConv2d needs kernel_size=1, padding=0 and a stride '
                             f'above 1, got kernel_size={self.kernel_size}, '
                             f'stride={self.stride}, padding={self.padding}, '
                             f'padding_mode={self.padding_mode!r}')

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias=None):
        return strided_pointwise_conv2d(input, weight, bias, self.stride, self.groups)


def strided_pointwise_conv2d(input: torch.Tensor, weight: torch.Tensor, bias, stride,
                             groups: int = 1) -> torch.Tensor:
    """``F.conv2d(input, weight, bias, stride, groups=groups)`` for a 1x1 ``weight``, through the
    subsampled input where that is the faster kernel (contiguous CPU tensors, eager mode)."""
    sh, sw = _pair(stride)
    if input.device.type == 'cpu' and input.is_contiguous() and not is_exporting():
        return F.conv2d(input[:, :, ::sh, ::sw], weight, bias, 1, 0, 1, groups)
    return F.conv2d(input, weight, bias, (sh, sw), 0, 1, groups)


def is_strided_pointwise(kernel_size, stride, padding, padding_mode: str = 'zeros') -> bool:
    """Whether a conv with these arguments is a 1x1, unpadded conv with a stride above 1."""
    if padding == 'valid':
        padding = 0
    return (_pair(kernel_size) == (1, 1) and _pair(padding) == (0, 0) and
            _pair(stride) != (1, 1) and padding_mode == 'zeros')


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)
