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
FrozenBN; training-mode BatchNorm, GroupNorm, LayerNorm are left alone.
"""
from typing import Callable, Dict, Iterable, List, Tuple, Union

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from .norm import FrozenBatchNorm2d

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


def fuse_conv_bn(module: nn.Module) -> int:
    """Fold every eval-mode BatchNorm/FrozenBN of ``module`` into the conv feeding it (see the
    module docstring for how pairs are found), in place. Returns the number of folded norms."""
    count = 0
    for parent in list(module.modules()):
        children = parent._modules
        for conv_name, norm_name in _declared_pairs(parent):
            conv, norm = children.get(conv_name), children.get(norm_name)
            if isinstance(conv, _ConvNd) and norm is not None and is_foldable_norm(norm):
                fold_conv_norm(conv, norm)
                children[norm_name] = nn.Identity()
                count += 1
        # detectron2-style conv that owns and applies its norm
        if isinstance(parent, _ConvNd) and is_foldable_norm(children.get('norm', nn.Identity())):
            fold_conv_norm(parent, children['norm'])
            children['norm'] = nn.Identity()
            count += 1
    return count


__all__ = ['fuse_conv_bn', 'fold_conv_norm', 'is_foldable_norm', 'register_conv_norm_pairs']
