"""detrex's ``ConvNeXt`` (``detrex.modeling.backbone.convnext``) on the core ConvNeXt, as a
detectron2 ``Backbone``.

Signature, defaults and meanings are detrex's: ``ConvNeXt(in_chans=3, depths=[3, 3, 9, 3],
dims=[96, 192, 384, 768], drop_path_rate=0.0, layer_scale_init_value=1e-6,
out_indices=(0, 1, 2, 3), frozen_stages=-1)``; ``frozen_stages=k`` freezes the first ``k``
downsampling layers (the stem is the first) and ``stages[0..k-1]`` (mmpretrain's count too).
``forward(x)`` returns ``{'p<i>': (N, dims[i], H / 2**(i+2), W / 2**(i+2))}`` (sides floored),
each map through its output norm ``norm{i}``. ``size_divisibility`` is 0, what detrex's class
gives (it sets ``_size_devisibility``, which detectron2 never reads), so models pad as with
detrex.

The network is the core :class:`~mmbackbones.models.backbones.convnext.ConvNeXt`
(``gap_before_final_norm=False``); the state dict is detrex's (``stages.{i}.{j}.dwconv``,
``pwconv1``, ``pwconv2``, ``gamma``, ``norm{i}``: detrex checkpoints load through
``train.init_checkpoint``, and what this class saves loads into detrex's), the parameters keep the
core's names (``checkpoint.keys.own_state_dict``).
"""
from typing import Dict, Sequence

import torch

from ...checkpoint.converters.detrex_convnext import revert_detrex_convnext
from ...checkpoint.keys import save_in_layout
from ...models.backbones.convnext import ConvNeXt as _CoreConvNeXt
from .contract import BACKBONE_BASE, Detectron2Contract


class ConvNeXt(Detectron2Contract, _CoreConvNeXt, BACKBONE_BASE):
    """detrex's ``ConvNeXt(in_chans=3, depths=[3, 3, 9, 3], dims=[96, 192, 384, 768],
    drop_path_rate=0.0, layer_scale_init_value=1e-6, out_indices=(0, 1, 2, 3),
    frozen_stages=-1)`` (see the module docstring)."""

    def __init__(self, in_chans: int = 3, depths: Sequence[int] = [3, 3, 9, 3],
                 dims: Sequence[int] = [96, 192, 384, 768], drop_path_rate: float = 0.0,
                 layer_scale_init_value: float = 1e-6,
                 out_indices: Sequence[int] = (0, 1, 2, 3), frozen_stages: int = -1):
        if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int) or \
                not -1 <= frozen_stages <= 4:
            raise ValueError(f"frozen_stages must be an int in -1..4 (detrex's count: k the "
                             f"first k downsampling layers and stages), got {frozen_stages!r}")
        super().__init__(
            arch=dict(depths=depths, channels=dims), in_channels=in_chans,
            drop_path_rate=drop_path_rate, layer_scale_init_value=layer_scale_init_value,
            out_indices=out_indices, frozen_stages=max(frozen_stages, 0),
            gap_before_final_norm=False, init_cfg=None)
        self._set_outputs(self.out_channels, self.out_strides,
                          [f'p{i}' for i in self.out_indices])
        save_in_layout(self, _detrex_layout)

    @property
    def size_divisibility(self) -> int:
        return 0

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, super().forward(x)))


def _detrex_layout(module: ConvNeXt, ours: dict) -> dict:
    return revert_detrex_convnext(ours)


__all__ = ['ConvNeXt']
