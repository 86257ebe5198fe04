"""Fold eval-mode BatchNorm / FrozenBN into the convolution that feeds it (the deploy path).

For a conv ``y = W * x + b`` followed by a norm ``z = (y - mean) / sqrt(var + eps) * gamma +
beta`` in eval mode, ``z = W' * x + b'`` with ``W' = W * s`` and ``b' = (b - mean) * s + beta``,
``s = gamma / sqrt(var + eps)`` per output channel. The conv gets the folded weight and a bias,
the norm is replaced by ``nn.Identity`` (so the state dict changes: deploy-only).

Which (conv, norm) pairs are adjacent cannot be read from a module tree in general (a
pre-activation block applies ``norm1`` *before* ``conv1``), so pairs are found only where the
order is known:

1. a module that defines ``conv_norm_pairs()`` returning ``[(conv_child, norm_child), ...]``
   (our ResNet blocks and backbones do);
2. classes registered with :func:`register_conv_norm_pairs` (torchvision's and timm's ResNet
   blocks are, by class path, without importing those packages);
3. ``nn.Sequential``: a conv child directly followed by a norm child;
4. mmcv's ``ConvModule`` (when its ``order`` puts the norm right after the conv) and our
   ``ConvNormAct``: a ``conv`` child and the child named by ``norm_name``;
5. a conv holding its own ``norm`` child that its forward applies (detectron2's ``Conv2d``).

Only norms that use running statistics are folded: BatchNorm/SyncBN in eval mode and
FrozenBN; training-mode BatchNorm, GroupNorm, LayerNorm are left alone. A module whose pairs were
folded is then told so through its ``after_fuse()`` method, when it has one.

After folding, a block can also fuse its ReLU (and residual add) into the conv:
:func:`conv_relu` / :func:`conv_add_relu` call oneDNN's fused convolution
(``torch.ops.mkldnn._convolution_pointwise``, the kernel Inductor uses on CPU) for float32 CPU
inference without autograd, which saves a full read and write of the activation per ReLU/add,
and fall back to plain ops everywhere else (GPU, autograd, other dtypes, builds without it,
TorchScript/ONNX tracing, torch.compile/export).
"""
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from .norm import FrozenBatchNorm2d
from .pos_embed import is_exporting

PairsSpec = Union[Iterable[Tuple[str, str]], Callable[[nn.Module], Iterable[Tuple[str, str]]]]

# 'module.ClassName' -> pairs (or a function of the instance returning pairs).
_REGISTERED_PAIRS: Dict[str, PairsSpec] = {}


def register_conv_norm_pairs(class_path: str, pairs: PairsSpec) -> None:
    """Declare the adjacent (conv, norm) children of a class given as ``'module.ClassName'``
    (a string, so third-party classes are declared without importing their package)."""
    _REGISTERED_PAIRS[class_path] = pairs


for _path in ('torchvision.models.resnet.BasicBlock', 'timm.models.resnet.BasicBlock'):
    register_conv_norm_pairs(_path, [('conv1', 'bn1'), ('conv2', 'bn2')])
for _path in ('torchvision.models.resnet.Bottleneck', 'timm.models.resnet.Bottleneck'):
    register_conv_norm_pairs(_path, [('conv1', 'bn1'), ('conv2', 'bn2'), ('conv3', 'bn3')])
for _path in ('torchvision.models.resnet.ResNet', 'timm.models.resnet.ResNet'):
    register_conv_norm_pairs(_path, lambda m: [('conv1', 'bn1')]
                             if isinstance(getattr(m, 'conv1', None), _ConvNd) else [])


def is_foldable_norm(module: nn.Module) -> bool:
    """True for a norm with fixed statistics: eval-mode BatchNorm/SyncBN or FrozenBN."""
    if isinstance(module, FrozenBatchNorm2d):
        return True
    return (isinstance(module, _BatchNorm) and not module.training
            and module.track_running_stats and module.running_mean is not None)


@torch.no_grad()
def fold_conv_norm(conv: _ConvNd, norm: nn.Module) -> _ConvNd:
    """Fold ``norm`` (see :func:`is_foldable_norm`) into ``conv`` in place; returns ``conv``.

    The caller replaces ``norm`` by an identity.
    """
    if not is_foldable_norm(norm):
        raise ValueError(f'can only fold an eval-mode BatchNorm or a FrozenBN, got '
                         f'{type(norm).__name__} (training={norm.training})')
    if norm.num_features != conv.out_channels:
        raise ValueError(f'norm has {norm.num_features} channels but the conv outputs '
                         f'{conv.out_channels}')
    if getattr(conv, 'transposed', False):
        raise ValueError('folding into a transposed conv is not supported')
    weight = conv.weight
    var, mean = norm.running_var.to(weight), norm.running_mean.to(weight)
    gamma = norm.weight.to(weight) if norm.weight is not None else torch.ones_like(mean)
    beta = norm.bias.to(weight) if norm.bias is not None else torch.zeros_like(mean)
    scale = gamma * torch.rsqrt(var + norm.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
    new_bias = (bias - mean) * scale + beta
    shape = (-1,) + (1,) * (weight.dim() - 1)
    weight.mul_(scale.reshape(shape))
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias, requires_grad=weight.requires_grad)
    else:
        conv.bias.copy_(new_bias)
    return conv


def _declared_pairs(module: nn.Module) -> List[Tuple[str, str]]:
    method = getattr(module, 'conv_norm_pairs', None)
    if callable(method):
        return list(method())
    cls = type(module)
    spec = _REGISTERED_PAIRS.get(f'{cls.__module__}.{cls.__qualname__}')
    if spec is not None:
        return list(spec(module) if callable(spec) else spec)
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        return [(a, b) for a, b in zip(names, names[1:])
                if isinstance(module._modules[a], _ConvNd)]
    norm_name = getattr(module, 'norm_name', None)
    if isinstance(norm_name, str) and '_modules' in module.__dict__ and \
            isinstance(module._modules.get('conv'), _ConvNd):
        order = getattr(module, 'order', ('conv', 'norm'))  # mmcv ConvModule's layer order
        order = list(order) if isinstance(order, (tuple, list)) else []
        if 'conv' in order and 'norm' in order and \
                order.index('norm') == order.index('conv') + 1:
            return [('conv', norm_name)]
    return []


def reparametrises_weight(conv: nn.Module) -> bool:
    """Whether ``conv`` transforms its weight before convolving (weight standardisation:
    mmcv's ``ConvWS2d``/``ConvAWS2d``, DetectoRS's SAC): a norm folded into such a weight would
    be standardised away, so its pair is left alone."""
    name = type(conv).__name__
    return hasattr(conv, 'weight_gamma') or 'ConvWS' in name or 'ConvAWS' in name


def fuse_conv_bn(module: nn.Module) -> int:
    """Fold every eval-mode BatchNorm/FrozenBN of ``module`` into the conv feeding it (see the
    module docstring for how pairs are found), in place. Returns the number of folded norms."""
    count = 0
    for parent in list(module.modules()):
        children = parent._modules
        folded = 0
        for conv_name, norm_name in _declared_pairs(parent):
            conv, norm = children.get(conv_name), children.get(norm_name)
            if isinstance(conv, _ConvNd) and norm is not None and is_foldable_norm(norm) \
                    and not reparametrises_weight(conv):
                fold_conv_norm(conv, norm)
                children[norm_name] = nn.Identity()
                folded += 1
        count += folded
        if folded and callable(getattr(parent, 'after_fuse', None)):
            parent.after_fuse()
        # detectron2-style conv that owns and applies its norm
        if isinstance(parent, _ConvNd) and is_foldable_norm(children.get('norm', nn.Identity())):
            fold_conv_norm(parent, children['norm'])
            children['norm'] = nn.Identity()
            count += 1
    return count


# ----- conv + ReLU (+ residual add) in one oneDNN call ------------------------------------------
_POINTWISE_OK: Optional[bool] = None


def pointwise_kernels_available() -> bool:
    """Whether oneDNN's fused conv+ReLU / conv+add+ReLU kernels exist and compute correctly here
    (checked once on a tiny input)."""
    global _POINTWISE_OK
    if _POINTWISE_OK is None:
        try:
            op = torch.ops.mkldnn._convolution_pointwise
            x, w = torch.ones(1, 2, 3, 3), torch.ones(2, 2, 1, 1)
            with torch.no_grad():
                y = op(x, w, None, [0, 0], [1, 1], [1, 1], 1, 'relu', [None], '')
                z = op.binary(x, x, w, None, [0, 0], [1, 1], [1, 1], 1, 'add', 1.0, 'relu',
                              [None], '')
            _POINTWISE_OK = bool(torch.equal(y, torch.full_like(x, 2.0)) and
                                 torch.equal(z, torch.full_like(x, 3.0)))
        except (AttributeError, RuntimeError):
            _POINTWISE_OK = False
    return _POINTWISE_OK


def _fusable(conv: nn.Module, x: torch.Tensor) -> bool:
    return (x.device.type == 'cpu' and x.dtype == torch.float32 and x.dim() == 4
            and type(conv) in (nn.Conv2d, Conv2dReLU) and conv.padding_mode == 'zeros'
            and not isinstance(conv.padding, str) and not torch.is_grad_enabled()
            and not x.is_mkldnn and not is_exporting() and not _native_is_faster(conv, x)
            and pointwise_kernels_available())


def _native_is_faster(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """ATen's own rule (``use_mkldnn`` in ConvUtils.h): an unstrided 1x1 conv on fewer than 16
    images, single-threaded, runs faster as its GEMM than in oneDNN (2-2.4x at 56x56, batch 4),
    more than the fused ReLU/add saves."""
    return (conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.dilation == (1, 1)
            and x.shape[0] < 16 and torch.get_num_threads() == 1)


def _conv_args(conv: nn.Conv2d):
    return (conv.weight, conv.bias, list(conv.padding), list(conv.stride), list(conv.dilation),
            conv.groups)


def conv_relu(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``relu(conv(x))``, in one oneDNN kernel when possible (see the module docstring)."""
    if _fusable(conv, x):
        return torch.ops.mkldnn._convolution_pointwise(x, *_conv_args(conv), 'relu', [None], '')
    return F.relu(conv(x), inplace=True)


class Conv2dReLU(nn.Conv2d):
    """An ``nn.Conv2d`` that applies ReLU to its output, as one kernel where :func:`conv_relu`
    can; what a conv becomes when ``fuse()`` hands it the ReLU that followed it (its class is
    swapped in place: same parameters and state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _fusable(self, x):
            return torch.ops.mkldnn._convolution_pointwise(x, *_conv_args(self), 'relu', [None],
                                                           '')
        return F.relu(self._conv_forward(x, self.weight, self.bias), inplace=True)


def conv_add_relu(conv: nn.Module, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``relu(conv(x) + other)``, in one oneDNN kernel when possible."""
    if _fusable(conv, x) and other.dtype == x.dtype and not other.is_mkldnn:
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, other, *_conv_args(conv), 'add', 1.0, 'relu', [None], '')
    out = conv(x)
    out += other
    return F.relu(out, inplace=True)


__all__ = ['fuse_conv_bn', 'fold_conv_norm', 'is_foldable_norm', 'register_conv_norm_pairs',
           'conv_relu', 'conv_add_relu', 'Conv2dReLU', 'pointwise_kernels_available']
