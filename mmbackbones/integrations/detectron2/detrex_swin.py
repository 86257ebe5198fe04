"""detectron2's ``SwinTransformer`` (what detrex's Swin configs build, ``from
detectron2.modeling.backbone import SwinTransformer``) on the core Swin, as a detectron2
``Backbone``.

The signature, defaults and meanings are detectron2's: ``pretrain_img_size``, ``in_chans``,
``embed_dim``, ``depths``, ``num_heads``, ``window_size``, ``mlp_ratio``, ``qkv_bias``,
``qk_scale``, ``drop_rate`` (after the patch embedding and inside every block),
``attn_drop_rate``, ``drop_path_rate=0.2``, ``norm_layer`` (a LayerNorm class or
``functools.partial`` of one), ``ape``, ``patch_norm``, ``out_indices=(0, 1, 2, 3)``,
``frozen_stages`` (``0`` the patch embedding, ``1`` also ``absolute_pos_embed``, ``k >= 2`` also
``layers[0..k-2]``) and ``use_checkpoint``. Outputs ``{'p<i>': (N, C_i, H / 2**(i+2), ...)}``,
``size_divisibility`` 32, windows always padded (never shrunk) as detectron2 does.

The network is the core :class:`~mmbackbones.models.backbones.swin.SwinTransformer` (its
arguments translated by the core's ``mmdet_spelling``: mmdet's Swin and detectron2's share their
meanings but ``patch_norm``, which is only the patch embedding's norm in detectron2). Its
**state dict is detectron2's** (``patch_embed.proj``,
``layers.{i}.blocks.{j}.attn.qkv``, ``layers.{i}.blocks.{j}.mlp.fc1``, ``layers.{i}.downsample``
in detectron2's 2x2 order, ``norm{i}``, ``absolute_pos_embed`` as ``(1, C, H, W)``), so detrex
checkpoints load through ``train.init_checkpoint`` / ``DetectionCheckpointer`` and what this
class saves loads into detectron2's class; the parameters keep the core's names
(``named_parameters()``: ``stages.0.blocks.0.attn.w_msa.qkv.weight``), and
``mmbackbones.checkpoint.keys.own_state_dict`` gives the state dict in those names.
"""
import functools
from typing import Dict, Sequence

import torch
from torch import nn

from ...checkpoint.converters.detectron2_swin import revert_detectron2_swin
from ...checkpoint.keys import save_in_layout
from ...models.backbones.swin import SwinTransformer as CoreSwin
from ...models.backbones.swin import mmdet_spelling
from ...utils.validation import check_bool
from .contract import BACKBONE_BASE, Detectron2Contract


def layer_norm_cfg(norm_layer) -> dict:
    """detectron2's ``norm_layer`` (``nn.LayerNorm`` or ``functools.partial(nn.LayerNorm,
    eps=...)``) as a ``norm_cfg``."""
    eps = None
    if isinstance(norm_layer, functools.partial) and not norm_layer.args and \
            set(norm_layer.keywords) <= {'eps'}:
        eps, norm_layer = norm_layer.keywords.get('eps'), norm_layer.func
    if not (isinstance(norm_layer, type) and issubclass(norm_layer, nn.LayerNorm)):
        raise TypeError(f'norm_layer must be nn.LayerNorm or functools.partial(nn.LayerNorm, '
                        f'eps=...), got {norm_layer!r}')
    return dict(type='LN') if eps is None else dict(type='LN', eps=eps)


class SwinTransformer(Detectron2Contract, CoreSwin, BACKBONE_BASE):
    """detectron2's/detrex's ``SwinTransformer(pretrain_img_size=224, patch_size=4, in_chans=3,
    embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, mlp_ratio=4.0,
    qkv_bias=True, qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.2,
    norm_layer=nn.LayerNorm, ape=False, patch_norm=True, out_indices=(0, 1, 2, 3),
    frozen_stages=-1, use_checkpoint=False)`` (see the module docstring)."""

    host = 'detrex'

    def __init__(self, pretrain_img_size=224, patch_size: int = 4, in_chans: int = 3,
                 embed_dim: int = 96, depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24), window_size: int = 7,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, qk_scale=None,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.2, norm_layer=nn.LayerNorm, ape: bool = False,
                 patch_norm: bool = True, out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1, use_checkpoint: bool = False):
        norm_cfg = layer_norm_cfg(norm_layer)
        num_layers = len(depths) if isinstance(depths, (list, tuple)) else 4
        if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int) or \
                not -1 <= frozen_stages <= num_layers + 1:
            raise ValueError(f"frozen_stages must be an int in -1..{num_layers + 1} "
                             f"(detectron2's count: 0 the patch embedding, 1 also "
                             f"absolute_pos_embed, k >= 2 also layers[0..k-2]), got "
                             f"{frozen_stages!r}")
        check_bool('patch_norm', patch_norm)
        core = mmdet_spelling(dict(
            patch_size=patch_size, patch_cfg=dict(norm_cfg=norm_cfg if patch_norm else None),
            stage_cfgs=dict(block_cfgs=dict(norm_cfg=norm_cfg,
                                            attn_cfgs=dict(proj_drop=drop_rate),
                                            ffn_cfgs=dict(ffn_drop=drop_rate)),
                            downsample_cfg=dict(norm_cfg=norm_cfg))), dict(
            embed_dims=embed_dim, depths=depths, num_heads=num_heads, mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop_rate=attn_drop_rate,
            pretrain_img_size=pretrain_img_size, act_cfg=dict(type='GELU')), num_layers)
        # patch_norm is the patch embedding's norm only (detectron2's patch merging keeps its)
        CoreSwin.__init__(
            self, arch=core['arch'], img_size=core['img_size'], patch_size=patch_size,
            in_channels=in_chans, window_size=window_size, drop_rate=drop_rate,
            drop_path_rate=drop_path_rate, out_indices=out_indices,
            use_abs_pos_embed=check_bool('ape', ape), pad_small_map=True,
            with_cp=check_bool('use_checkpoint', use_checkpoint), norm_cfg=norm_cfg,
            stage_cfgs=core['stage_cfgs'], patch_cfg=core['patch_cfg'], init_cfg=None)
        self.__dict__['_frozen_stages'] = frozen_stages  # detectron2's count (_freeze_stages)
        self.pretrain_img_size, self.ape, self.patch_norm = pretrain_img_size, ape, patch_norm
        self._set_outputs(self.out_channels, self.out_strides,
                          [f'p{i}' for i in self.out_indices])
        save_in_layout(self, _detectron2_layout)
        self._freeze_stages()

    @property
    def size_divisibility(self) -> int:
        return 32

    def _freeze_stages(self) -> None:
        """detectron2's ``_freeze_stages``: ``0`` the patch embedding, ``1`` also
        ``absolute_pos_embed``, ``k >= 2`` also ``layers[0..k-2]`` (no gradients, eval mode)."""
        frozen = self.frozen_stages
        modules = []
        if frozen >= 0:
            modules.append(self.patch_embed)
        if frozen >= 1 and self.use_abs_pos_embed:
            self.absolute_pos_embed.requires_grad = False
        if frozen >= 2:
            modules.append(self.drop_after_pos)
            modules.extend(self.stages[:frozen - 1])
        for module in modules:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, super().forward(x)))


def _detectron2_layout(module: SwinTransformer, ours: dict) -> dict:
    return revert_detectron2_swin(ours, module.patch_resolution)


__all__ = ['SwinTransformer', 'layer_norm_cfg']
