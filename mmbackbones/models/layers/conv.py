"""CPU fast paths, behind one switch: layers that compute the same values faster on the CPU.

Family ``forward``s hold no device tricks; where a faster CPU kernel exists for the same numbers,
it lives in a layer class here that stands in for the plain one (same parameters, same state
dict, same results up to summation order):

* :class:`StridedPointwiseConv2d` for an unpadded 1x1 ``nn.Conv2d`` with a stride above 1
  (ResNet/RegNet shortcuts, caffe-style bottlenecks). A 1x1 kernel at stride ``s`` reads only
  every ``s``-th pixel, so it equals a stride-1 1x1 conv of ``x[:, :, ::s, ::s]``. For a
  contiguous (NCHW) float tensor on the CPU, PyTorch runs strided convs through oneDNN, whose
  backward first copies the whole input into another layout; for ResNet-50's layer2 shortcut
  (batch 4, 256x56x56) forward + backward takes 60 ms that way and 27 ms as a stride-1 1x1 conv
  of the subsampled input. Without a backward (no autograd graph recorded: inference, frozen
  stages) the strided oneDNN kernel reads the strided pixels itself, where the subsampled path
  first copies them out (an extra ``clone`` per call; 1.0-1.3x the time of the strided kernel
  for ResNet-50's shortcuts), so the plain strided kernel runs there.
* :class:`ChannelsLastMaxPool2d` for ``nn.MaxPool2d``: CPU inference on an NCHW tensor pools in
  channels-last layout and turns the result back to NCHW, several times faster than ATen's NCHW
  max-pool kernel (about 5% of a ResNet-50 forward otherwise).

Each takes its fast kernel only where it is the faster one (contiguous CPU tensors, eager mode;
channels-last inputs, other devices and tracing/export keep the plain op).

The switch: :func:`set_cpu_fast_paths` (default on) decides whether the layer builders
(``mmcv_bricks.build_conv_layer``, :func:`build_max_pool`, detectron2's ``Conv2d`` factory)
build the fast classes; :func:`apply_cpu_fast_paths` turns them on or off in a built model.
Folding norms and fusing conv+ReLU for deploy is ``fuse()`` (``layers/fuse.py``), not this.
"""
import copy
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .pos_embed import is_exporting

_ENABLED = True


def set_cpu_fast_paths(enabled: bool) -> bool:
    """Whether the builders make the fast layers from now on; returns the previous setting."""
    global _ENABLED
    if not isinstance(enabled, bool):
        raise TypeError(f'enabled must be True or False, got {enabled!r}')
    previous, _ENABLED = _ENABLED, enabled
    return previous


def cpu_fast_paths_enabled() -> bool:
    return _ENABLED


def is_strided_pointwise(kernel_size, stride, padding, padding_mode: str = 'zeros') -> bool:
    """Whether a conv with these arguments is a 1x1, unpadded conv with a stride above 1."""
    if padding == 'valid':
        padding = 0
    return (_pair(kernel_size) == (1, 1) and _pair(padding) == (0, 0) and
            _pair(stride) != (1, 1) and padding_mode == 'zeros')


def _is_strided_pointwise_conv(conv: nn.Conv2d) -> bool:
    return is_strided_pointwise(conv.kernel_size, conv.stride, conv.padding, conv.padding_mode)


def strided_pointwise_conv2d(input: torch.Tensor, weight: torch.Tensor, bias, stride,
                             groups: int = 1) -> torch.Tensor:
    """``F.conv2d(input, weight, bias, stride, groups=groups)`` for a 1x1 ``weight``, through the
    subsampled input where that is the faster kernel (contiguous CPU tensors, eager mode, a
    backward to come)."""
    sh, sw = _pair(stride)
    if input.device.type == 'cpu' and input.is_contiguous() and torch.is_grad_enabled() and \
            (input.requires_grad or weight.requires_grad) and not is_exporting():
        return F.conv2d(input[:, :, ::sh, ::sw], weight, bias, 1, 0, 1, groups)
    return F.conv2d(input, weight, bias, (sh, sw), 0, 1, groups)


class _FastLayer:
    """What the fast classes share: ``torch.jit.script`` compiles the plain class instead (a
    shallow copy, the same parameters); the fast kernels are for eager mode."""

    def __prepare_scriptable__(self):
        plain = copy.copy(self)
        plain.__class__ = {fast: slow for slow, (fast, _) in _FAST.items()}[type(self)]
        plain._scripting_source = (self, )  # kept alive: scripting.keep_source says why
        return plain


class StridedPointwiseConv2d(_FastLayer, nn.Conv2d):
    """``nn.Conv2d`` with ``kernel_size=1``, ``padding=0`` and a stride above 1:
    ``(N, C_in, H, W) -> (N, C_out, ceil(H / sh), ceil(W / sw))``.

    Same parameters, state dict and results as the ``nn.Conv2d`` it replaces; only the kernel
    PyTorch picks on the CPU differs (see the module docstring).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not _is_strided_pointwise_conv(self):
            raise ValueError(f'StridedPointwiseConv2d needs kernel_size=1, padding=0 and a stride '
                             f'above 1, got kernel_size={self.kernel_size}, '
                             f'stride={self.stride}, padding={self.padding}, '
                             f'padding_mode={self.padding_mode!r}')

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias=None):
        return strided_pointwise_conv2d(input, weight, bias, self.stride, self.groups)


class ChannelsLastMaxPool2d(_FastLayer, nn.MaxPool2d):
    """``nn.MaxPool2d`` that pools a contiguous CPU input in channels-last layout when no
    gradient is needed, and returns NCHW as the plain pool does (the same values)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == 'cpu' and x.dim() == 4 and x.is_contiguous() and \
                not torch.is_grad_enabled() and not is_exporting():
            return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()
        return super().forward(x)


def build_max_pool(*args, **kwargs) -> nn.MaxPool2d:
    """``nn.MaxPool2d(*args, **kwargs)``, the fast class while the switch is on."""
    return (ChannelsLastMaxPool2d if _ENABLED else nn.MaxPool2d)(*args, **kwargs)


# plain class -> (fast class, which instances qualify)
_FAST: Dict[type, Tuple[type, object]] = {
    nn.Conv2d: (StridedPointwiseConv2d, _is_strided_pointwise_conv),
    nn.MaxPool2d: (ChannelsLastMaxPool2d, lambda m: True),
}


def register_fast_path(plain: type, fast: type, applies=_is_strided_pointwise_conv) -> None:
    """Declare ``fast`` (a subclass of ``plain`` with no extra state) as ``plain``'s fast class
    for the instances ``applies(module)`` accepts."""
    if not (isinstance(fast, type) and issubclass(fast, plain)):
        raise TypeError(f'{fast!r} must be a subclass of {plain.__name__}')
    _FAST[plain] = (fast, applies)


def fast_class(plain: type, module: nn.Module) -> type:
    """The class a freshly built ``module`` of class ``plain`` should have under the switch."""
    fast, applies = _FAST.get(plain, (plain, None))
    return fast if _ENABLED and fast is not plain and applies(module) else plain


def apply_cpu_fast_paths(model: nn.Module, enabled: bool = True) -> int:
    """Turn the fast layers of ``model`` on (plain -> fast class) or off (fast -> plain), in
    place; parameters, buffers and outputs are unchanged. Returns the number of layers
    switched."""
    if not isinstance(enabled, bool):
        raise TypeError(f'enabled must be True or False, got {enabled!r}')
    slow = {fast: plain for plain, (fast, _) in _FAST.items()}
    count = 0
    for module in model.modules():
        cls = type(module)
        if enabled and cls in _FAST and _FAST[cls][1](module):
            module.__class__ = _FAST[cls][0]
            count += 1
        elif not enabled and cls in slow:
            module.__class__ = slow[cls]
            count += 1
    return count


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


__all__ = ['StridedPointwiseConv2d', 'ChannelsLastMaxPool2d', 'build_max_pool',
           'set_cpu_fast_paths', 'cpu_fast_paths_enabled', 'apply_cpu_fast_paths',
           'register_fast_path', 'fast_class', 'is_strided_pointwise', 'strided_pointwise_conv2d']
