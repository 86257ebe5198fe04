"""detectron2's / detrex's ``ViT`` and ``SimpleFeaturePyramid`` (ViTDet) signatures over the core
:class:`~mmbackbones.models.backbones.vit.VisionTransformer` and the
:class:`~mmbackbones.models.necks.SimpleFeaturePyramid` neck (no second implementation).

``ViT(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, qkv_bias,
drop_path_rate, norm_layer, act_layer, use_abs_pos, use_rel_pos, rel_pos_zero_init, window_size,
window_block_indexes, residual_block_indexes, use_act_checkpoint, pretrain_img_size,
pretrain_use_cls_token, out_feature)`` returns ``{out_feature: (N, C, H/16, W/16)}``;
``SimpleFeaturePyramid(net, in_feature, out_channels, scale_factors, top_block, norm,
square_pad)`` returns ``{'p2': ..., 'p6': ...}`` with detectron2's ``simfp_*`` parameter names.
The ViT's parameters have the core's names (``layers.{i}``); its state dict is detectron2's
(``blocks.{i}``), so detectron2's checkpoints load by ``DetectionCheckpointer`` and what it saves
loads into detectron2's class (``mmbackbones.checkpoint.keys.own_state_dict`` gives our names).
detrex's EVA classes (:mod:`.detrex_eva`) build on the same helpers.
"""
from functools import partial
from typing import Dict, Sequence

import torch
from torch import nn

from ...checkpoint.converters.detectron2_vit import revert_detectron2_vit
from ...checkpoint.keys import save_in_layout
from ...models.backbones.vit import VisionTransformer
from ...models.necks.simple_fpn import SimpleFeaturePyramid as _SimpleFeaturePyramid
from ...utils.validation import check_bool, check_positive_int
from .contract import BACKBONE_BASE, Detectron2Contract


class LayerNormWithForceFP32(nn.LayerNorm):
    """detrex's EVA-01 default ``norm_layer`` (eps 1e-5, computed in float32). The ViT builds
    ``nn.LayerNorm``: the same in float32, and under autocast, which runs ``layer_norm`` in
    float32; it differs only for a model cast to half precision."""


def _layer_norm_eps(norm_layer) -> float:
    """``nn.LayerNorm``, ``LayerNormWithForceFP32`` (ours or detrex's) or ``partial(<one of
    them>, eps=...)`` -> eps; anything else refused."""
    base, keywords = norm_layer, {}
    if isinstance(norm_layer, partial) and not norm_layer.args and \
            set(norm_layer.keywords) <= {'eps'}:
        base, keywords = norm_layer.func, norm_layer.keywords
    if base is nn.LayerNorm or getattr(base, '__name__', '') == 'LayerNormWithForceFP32':
        return float(keywords.get('eps', 1e-5))
    raise ValueError(f'norm_layer must be nn.LayerNorm, LayerNormWithForceFP32 or '
                     f'partial(<one of them>, eps=...), got {norm_layer!r}')


def vitdet_core_args(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio,
                     qkv_bias, drop_path_rate, norm_layer, use_abs_pos, use_rel_pos,
                     rel_pos_zero_init, window_size, window_block_indexes,
                     residual_block_indexes, use_act_checkpoint, pretrain_img_size,
                     pretrain_use_cls_token, out_feature, **extra) -> dict:
    """The core ``VisionTransformer``'s arguments for detectron2's / detrex's ViTDet arguments
    (``extra``: more core arguments, e.g. ``layer_cfgs``, ``rope``)."""
    for name, flag in (('use_abs_pos', use_abs_pos), ('pretrain_use_cls_token',
                                                      pretrain_use_cls_token)):
        check_bool(name, flag)
    if not isinstance(out_feature, str):
        raise TypeError(f'out_feature must be a name, got {out_feature!r}')
    grid = check_positive_int('img_size', img_size) // check_positive_int('patch_size',
                                                                          patch_size)
    return dict(
        arch=dict(embed_dims=embed_dim, num_layers=depth, num_heads=num_heads,
                  feedforward_channels=int(embed_dim * mlp_ratio)),
        img_size=pretrain_img_size, patch_size=patch_size, in_channels=in_chans,
        drop_path_rate=drop_path_rate, qkv_bias=qkv_bias,
        norm_cfg=dict(type='LN', eps=_layer_norm_eps(norm_layer)), final_norm=False,
        out_type='featmap', with_cls_token=False, with_cp=use_act_checkpoint,
        window_size=window_size, window_block_indexes=tuple(window_block_indexes),
        use_rel_pos=use_rel_pos, rel_pos_zero_init=rel_pos_zero_init,
        rel_pos_size=(grid, grid), residual_block_indexes=tuple(residual_block_indexes),
        with_pos_embed=use_abs_pos, **extra)


class ViT(Detectron2Contract, VisionTransformer, BACKBONE_BASE):
    """detectron2's ``ViT`` (``detectron2.modeling.backbone.vit``), its arguments and defaults;
    ``act_layer`` must be ``nn.GELU``. The state dict is detectron2's (``blocks.{i}``,
    ``patch_embed.proj``, ``pos_embed`` with a class entry when ``pretrain_use_cls_token``,
    ``blocks.{i}.residual.*``); the parameters keep the core's names."""

    def __init__(self, img_size=1024, patch_size=16, in_chans=3, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4.0, qkv_bias=True, drop_path_rate=0.0,
                 norm_layer=nn.LayerNorm, act_layer=nn.GELU, use_abs_pos=True,
                 use_rel_pos=False, rel_pos_zero_init=True, window_size=0,
                 window_block_indexes=(), residual_block_indexes=(), use_act_checkpoint=False,
                 pretrain_img_size=224, pretrain_use_cls_token=True, out_feature='last_feat',
                 init_cfg=None):
        if act_layer is not nn.GELU:
            raise ValueError(f'act_layer must be nn.GELU, got {act_layer!r}')
        super().__init__(**vitdet_core_args(
            img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, qkv_bias,
            drop_path_rate, norm_layer, use_abs_pos, use_rel_pos, rel_pos_zero_init,
            window_size, window_block_indexes, residual_block_indexes, use_act_checkpoint,
            pretrain_img_size, pretrain_use_cls_token, out_feature, init_cfg=init_cfg))
        self.pretrain_use_cls_token = pretrain_use_cls_token  # the checkpoint's; dropped on load
        self._set_outputs([embed_dim], [patch_size], [out_feature])
        save_in_layout(self, _detectron2_layout)
        if init_cfg is None:  # initialised at construction, as detectron2's
            self._reset_parameters()

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, super().forward(x)))


def _detectron2_layout(module: ViT, ours: dict) -> dict:
    return revert_detectron2_vit(ours, prefix='', cls_entry=module.pretrain_use_cls_token)


class SimpleFeaturePyramid(Detectron2Contract, _SimpleFeaturePyramid, BACKBONE_BASE):
    """detectron2's ``SimpleFeaturePyramid(net, in_feature, out_channels, scale_factors,
    top_block=None, norm='LN', square_pad=0)``: a backbone returning
    ``{'p<log2 stride>': map}``; ``top_block`` is detectron2's ``LastLevelMaxPool()`` (or any
    object with ``num_levels == 1`` and ``in_feature == 'p5'``): the ``p6`` level."""

    def __init__(self, net, in_feature: str, out_channels: int,
                 scale_factors: Sequence[float], top_block=None, norm: str = 'LN',
                 square_pad: int = 0):
        shapes = net.output_shape()
        if in_feature not in shapes:
            raise KeyError(f'in_feature {in_feature!r} is not an output of the net; its '
                           f'outputs are {sorted(shapes)}')
        if top_block is not None and (getattr(top_block, 'num_levels', None) != 1
                                      or getattr(top_block, 'in_feature', 'p5') != 'p5'):
            raise ValueError(f'top_block must be a LastLevelMaxPool (one level from p5), got '
                             f'{top_block!r}')
        super().__init__(int(shapes[in_feature].channels), out_channels, scale_factors,
                         norm=norm, top_block=top_block is not None,
                         in_stride=int(shapes[in_feature].stride))
        self.net, self.in_feature = net, in_feature
        self.extra_padding_constraints = {'square_size': int(square_pad)} if square_pad else {}

    @property
    def size_divisibility(self) -> int:
        """0, as detectron2's: its ``padding_constraints`` spells the key ``size_divisiblity``
        (sic), which ``ImageList`` never reads, so only ``square_pad`` pads a batch."""
        return 0

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        outs = super().forward(self.net(x)[self.in_feature])
        return dict(zip(self.out_names, outs))


def get_vit_lr_decay_rate(name: str, lr_decay_rate: float = 1.0, num_layers: int = 12) -> float:
    """detectron2's ``get_vit_lr_decay_rate`` (detrex configs pass it as ``lr_factor_func``) for
    both layouts: detectron2's ``backbone.net.blocks.{i}`` and this ViT's
    ``backbone.net.layers.{i}`` (detectron2's own function gives every ``layers.{i}`` parameter
    the undecayed rate of the last depth)."""
    layer_id = num_layers + 1
    if name.startswith('backbone'):
        if '.pos_embed' in name or '.patch_embed' in name:
            layer_id = 0
        else:
            for marker in ('.blocks.', '.layers.'):  # the first: a block's own .layers. follow
                if marker in name and '.residual.' not in name:
                    layer_id = int(name[name.find(marker):].split('.')[2]) + 1
                    break
    return lr_decay_rate ** (num_layers + 1 - layer_id)


__all__ = ['ViT', 'SimpleFeaturePyramid', 'get_vit_lr_decay_rate', 'LayerNormWithForceFP32']
