"""detrex's ``FocalNet`` (``detrex.modeling.backbone.focalnet``) on the core FocalNet, as a
detectron2 ``Backbone``.

Signature, defaults and meanings are detrex's (``pretrain_img_size=1600`` is accepted and unused,
as there; ``frozen_stages``: ``0``/``1`` the patch embedding, ``k >= 2`` also ``layers[0..k-2]``).
``forward(x)`` returns ``{'p<i>': (N, embed_dim * 2**i, H / 2**(i+2), W / 2**(i+2))}``;
``size_divisibility`` is 0, what detrex's class gives (it sets a misspelt attribute). The state
dict is detrex's: the core keeps the official parameter names.
"""
from typing import Dict, Sequence

import torch
from torch import nn

from ...models.backbones.focalnet import FocalNet as _CoreFocalNet
from ...utils.validation import check_bool
from .contract import BACKBONE_BASE, Detectron2Contract
from .detrex_swin import layer_norm_cfg


class FocalNet(Detectron2Contract, _CoreFocalNet, BACKBONE_BASE):
    """detrex's ``FocalNet(pretrain_img_size=1600, patch_size=4, in_chans=3, embed_dim=96,
    depths=[2, 2, 6, 2], mlp_ratio=4., drop_rate=0., drop_path_rate=0.3,
    norm_layer=nn.LayerNorm, patch_norm=True, out_indices=(0, 1, 2, 3), frozen_stages=-1,
    focal_levels=[3, 3, 3, 3], focal_windows=[3, 3, 3, 3], use_conv_embed=False,
    use_postln=False, use_postln_in_modulation=False, use_layerscale=False,
    normalize_modulator=False, use_checkpoint=False)``."""

    def __init__(self, pretrain_img_size=1600, patch_size: int = 4, in_chans: int = 3,
                 embed_dim: int = 96, depths: Sequence[int] = [2, 2, 6, 2],
                 mlp_ratio: float = 4., drop_rate: float = 0., drop_path_rate: float = 0.3,
                 norm_layer=nn.LayerNorm, patch_norm: bool = True,
                 out_indices: Sequence[int] = (0, 1, 2, 3), frozen_stages: int = -1,
                 focal_levels: Sequence[int] = [3, 3, 3, 3],
                 focal_windows: Sequence[int] = [3, 3, 3, 3], use_conv_embed: bool = False,
                 use_postln: bool = False, use_postln_in_modulation: bool = False,
                 use_layerscale: bool = False, normalize_modulator: bool = False,
                 use_checkpoint: bool = False):
        num_stages = len(depths) if isinstance(depths, (list, tuple)) else 4
        if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int) or \
                not -1 <= frozen_stages <= num_stages + 1:
            raise ValueError(f"frozen_stages must be an int in -1..{num_stages + 1} (detrex's "
                             f"count: 0 the patch embedding, k >= 2 also layers[0..k-2]), got "
                             f"{frozen_stages!r}")
        flags = dict(use_postln=use_postln, use_postln_in_modulation=use_postln_in_modulation,
                     use_conv_embed=use_conv_embed, use_layerscale=use_layerscale)
        for name, flag in flags.items():
            check_bool(name, flag)
        super().__init__(
            arch=dict(embed_dims=embed_dim, depths=depths, focal_levels=focal_levels,
                      focal_windows=focal_windows, **flags),
            in_channels=in_chans, patch_size=patch_size, mlp_ratio=mlp_ratio,
            drop_rate=drop_rate, drop_path_rate=drop_path_rate, out_indices=out_indices,
            frozen_stages=-1 if frozen_stages < 0 else max(frozen_stages - 1, 0),
            patch_norm=check_bool('patch_norm', patch_norm),
            normalize_modulator=normalize_modulator, norm_cfg=layer_norm_cfg(norm_layer),
            with_cp=check_bool('use_checkpoint', use_checkpoint), init_cfg=None)
        self.pretrain_img_size = pretrain_img_size
        self._set_outputs(self.out_channels, self.out_strides,
                          [f'p{i}' for i in self.out_indices])

    @property
    def size_divisibility(self) -> int:
        return 0

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, super().forward(x)))


__all__ = ['FocalNet']
