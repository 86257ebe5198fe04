"""Norm layers shared by several families."""
import torch
from mmengine.registry import MODELS as MMENGINE_MODELS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...utils.text import shown
from .mmcv_bricks import build_norm_layer


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (detectron2's FrozenBN).

    Holds ``weight``, ``bias``, ``running_mean``, ``running_var`` as buffers, so a BatchNorm
    checkpoint loads into it and nothing is trained. ``num_batches_tracked`` from a BatchNorm
    checkpoint is accepted and dropped. Input and output: ``(N, C, H, W)``.
    """

    _abbr_ = 'bn'  # mmcv's build_norm_layer names the layer bn1, bn2, ... like BatchNorm

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=None, affine=True,
                 track_running_stats=True):
        super().__init__()
        # momentum/affine/track_running_stats are accepted so a BN norm_cfg can say FrozenBN.
        self.num_features = num_features
        self.eps = eps
        self.register_buffer('weight', torch.ones(num_features))
        self.register_buffer('bias', torch.zeros(num_features))
        self.register_buffer('running_mean', torch.zeros(num_features))
        self.register_buffer('running_var', torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        state_dict.pop(prefix + 'num_batches_tracked', None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return f'{self.num_features}, eps={self.eps}'

    @classmethod
    def convert_frozen_batchnorm(cls, module: nn.Module) -> nn.Module:
        """Return ``module`` with every BatchNorm replaced by a FrozenBatchNorm2d holding the
        same statistics (in place for children; a bare BatchNorm is returned converted)."""
        if isinstance(module, _BatchNorm):
            frozen = cls(module.num_features, eps=module.eps)
            if module.affine:
                frozen.weight.copy_(module.weight.detach())
                frozen.bias.copy_(module.bias.detach())
            if module.track_running_stats and module.running_mean is not None:
                frozen.running_mean.copy_(module.running_mean)
                frozen.running_var.copy_(module.running_var)
            return frozen
        for name, child in module.named_children():
            converted = cls.convert_frozen_batchnorm(child)
            if converted is not child:
                setattr(module, name, converted)
        return module


def check_norm_cfg(norm_cfg, name: str = 'norm_cfg') -> dict:
    """Validate an OpenMMLab ``norm_cfg`` at construction, with a message naming ``name``.

    Builds the layer once on a small probe width (a multiple of ``num_groups`` for GN), so an
    unknown type, a GN without ``num_groups`` or a bad keyword fails here rather than as a
    ``KeyError``/``AssertionError`` from inside mmcv while the first block is built.
    """
    if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
        raise TypeError(f'{name} must be a dict with a "type" key (e.g. dict(type="BN"); '
                        f'BN, SyncBN, GN, LN, FrozenBN, ...), got {shown(norm_cfg)}')
    if not isinstance(norm_cfg.get('requires_grad', True), bool):
        value = norm_cfg['requires_grad']
        raise TypeError(f'{name} requires_grad must be a bool (True or False), got '
                        f'{shown(value)} ({type(value).__name__}) in {shown(norm_cfg)}')
    groups = norm_cfg.get('num_groups', 1)
    probe = 16 * groups if isinstance(groups, int) and not isinstance(groups, bool) else 16
    try:
        build_norm_layer(dict(norm_cfg), probe)
    except KeyError as err:
        raise KeyError(f'{name} type {shown(norm_cfg["type"])} is not a registered norm layer '
                       f'(BN, SyncBN, GN, LN, FrozenBN, ...): {err}') from None
    except (AssertionError, TypeError, ValueError) as err:
        reason = str(err) or 'mmcv refused it (GN needs num_groups)'
        raise ValueError(f'invalid {name} {shown(norm_cfg)}: {reason}') from None
    return dict(norm_cfg)


def build_norm(norm_cfg: dict, num_features: int, postfix='', name: str = 'norm_cfg'):
    """mmcv's ``build_norm_layer`` whose refusals name ``name`` and the width (e.g. GN groups
    that do not divide the channels). Returns ``(layer_name, layer)`` like mmcv."""

    try:
        return build_norm_layer(norm_cfg, num_features, postfix=postfix)
    except (AssertionError, ValueError) as err:
        raise ValueError(f'{name} {shown(norm_cfg)} cannot normalise {num_features} channels: '
                         f'{err}') from None


def register_root_norms(layers: dict) -> None:
    """Register norm layers into mmengine's root ``MODELS`` (where mmcv registers BN/GN/SyncBN
    and where its ``build_norm_layer`` looks), so ``norm_cfg=dict(type='FrozenBN')`` builds from
    every scope, mmdet's and mmseg's included. A name already taken there is left alone."""
    for name, module in layers.items():
        if name not in MMENGINE_MODELS.module_dict:
            MMENGINE_MODELS.register_module(name, module=module)


# registered here, where they are defined (importing any backbone imports this module)
ROOT_NORM_LAYERS = {'FrozenBN': FrozenBatchNorm2d, 'FrozenBatchNorm2d': FrozenBatchNorm2d}
register_root_norms(ROOT_NORM_LAYERS)
