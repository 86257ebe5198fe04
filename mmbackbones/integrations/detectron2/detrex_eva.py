"""detrex's EVA ViTDet backbones with detrex's class names, signatures and defaults, over the
core :class:`~mmbackbones.models.backbones.vit.VisionTransformer` (no second ViT):

* ``EVAViT`` (``detrex.modeling.backbone.eva``, EVA-01): detectron2's ViT plus
  ``beit_like_qkv_bias`` (query/value biases only: core ``qkv_bias='qv'``),
  ``beit_like_gamma`` (per-channel scales of both branches, ``gamma_1``/``gamma_2``, init 1:
  core ``layer_scale_init_value=1``), ``freeze_patch_embed`` and ``interp_type``
  (``rel_pos_resize``);
  ``norm_layer`` defaults to ``LayerNormWithForceFP32`` (eps 1e-5).
* ``EVA02_ViT`` (``detrex.modeling.backbone.eva_02``): separate q/k/v projections with
  query/value biases (core ``qkv_bias='qv'``, one fused ``qkv`` weight), SwiGLU with sub-LN
  (core ``ffn_type='swiglu'``, ``sub_ln``), EVA-02's rotary embedding in every block, for the
  window in windowed blocks and for the ``img_size`` grid in global ones, positions spanning
  ``pt_hw_seq_len`` (``intp_freq=True``) or the token indices (``False``): core ``rope`` with
  ``ref_grid=(pt_hw_seq_len,) * 2``. ``xattn`` (xformers' memory-efficient attention) is the
  same attention as the plain one; both run through ``scaled_dot_product_attention``. As in
  detrex, ``act_layer`` and ``use_rel_pos`` do not change the model and ``rope`` is always on
  (detrex's blocks rotate whatever ``rope`` says). Unlike detrex's, any input size works
  (detrex's tables fit ``img_size`` inputs only).

Both return ``{out_feature: (N, embed_dim, H / patch, W / patch)}``; their state dicts are
detrex's (``blocks.{i}``, ``q_proj``/``k_proj``/``v_proj``, ``mlp.w1``/``w2``/``ffn_ln``/``w3``,
the rope tables ``rope_win``/``rope_glb``/``blocks.{i}.attn.rope`` as detrex stores them), so
detrex checkpoints load by ``train.init_checkpoint`` and what they save loads into detrex's
classes; the parameters keep the core's names (converter ``detrex_eva``).

``interp_type='beit'`` (EVA's cubic resize of the relative position tables, for evaluation at
another resolution) is the core's ``rel_pos_resize='beit'``.
"""
from functools import partial
from typing import Dict

import torch
from torch import nn

from ...checkpoint.converters.detrex_eva import revert_detrex_eva
from ...checkpoint.keys import save_in_layout
from ...models.backbones.vit import VisionTransformer
from ...models.layers.rope import RotaryEmbedding2d
from ...utils.validation import check_bool, check_choice
from .contract import BACKBONE_BASE, Detectron2Contract
from .vitdet import LayerNormWithForceFP32, vitdet_core_args


class EVAViT(Detectron2Contract, VisionTransformer, BACKBONE_BASE):
    """detrex's ``EVAViT`` (EVA-01 ViTDet; see the module docstring)."""

    def __init__(self, img_size=1024, patch_size=16, in_chans=3, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4.0, qkv_bias=True, drop_path_rate=0.0,
                 norm_layer=LayerNormWithForceFP32, act_layer=nn.GELU, use_abs_pos=True,
                 use_rel_pos=False, rel_pos_zero_init=True, window_size=0,
                 window_block_indexes=(), residual_block_indexes=(), use_act_checkpoint=False,
                 pretrain_img_size=224, pretrain_use_cls_token=True, out_feature='last_feat',
                 beit_like_qkv_bias=True, beit_like_gamma=False, freeze_patch_embed=False,
                 interp_type='vitdet'):
        if act_layer is not nn.GELU:
            raise ValueError(f'act_layer must be nn.GELU, got {act_layer!r}')
        check_choice('interp_type', interp_type, ('vitdet', 'beit'))
        qv = check_bool('beit_like_qkv_bias', beit_like_qkv_bias)
        gamma = check_bool('beit_like_gamma', beit_like_gamma)
        super().__init__(**vitdet_core_args(
            img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio,
            'qv' if qv else qkv_bias, drop_path_rate, norm_layer, use_abs_pos, use_rel_pos,
            rel_pos_zero_init, window_size, window_block_indexes, residual_block_indexes,
            use_act_checkpoint, pretrain_img_size, pretrain_use_cls_token, out_feature,
            layer_scale_init_value=1.0 if gamma else 0.,
            rel_pos_resize='beit' if interp_type == 'beit' else 'linear'))
        self.pretrain_use_cls_token = pretrain_use_cls_token
        self.beit_like_qkv_bias, self.beit_like_gamma = qv, gamma
        self.interp_type = interp_type
        self.freeze_patch_embed = check_bool('freeze_patch_embed', freeze_patch_embed)
        self._set_outputs([embed_dim], [patch_size], [out_feature])
        save_in_layout(self, _eva_layout)
        self._reset_parameters()  # initialised at construction, as detrex's
        if freeze_patch_embed:
            for param in self.patch_embed.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, super().forward(x)))


class EVA02_ViT(Detectron2Contract, VisionTransformer, BACKBONE_BASE):  # noqa: N801 (detrex's)
    """detrex's ``EVA02_ViT`` (EVA-02 ViTDet; see the module docstring)."""

    def __init__(self, img_size=1024, patch_size=16, in_chans=3, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4 * 2 / 3, qkv_bias=True, drop_path_rate=0.0,
                 norm_layer=partial(nn.LayerNorm, eps=1e-6), act_layer=nn.GELU,
                 use_abs_pos=True, use_rel_pos=False, rope=True, pt_hw_seq_len=16,
                 intp_freq=True, window_size=0, window_block_indexes=(),
                 residual_block_indexes=(), use_act_checkpoint=False, pretrain_img_size=224,
                 pretrain_use_cls_token=True, out_feature='last_feat', xattn=True):
        for name, flag in (('qkv_bias', qkv_bias), ('use_rel_pos', use_rel_pos),
                           ('intp_freq', intp_freq), ('xattn', xattn)):
            check_bool(name, flag)
        super().__init__(**vitdet_core_args(
            img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio,
            'qv' if qkv_bias else False, drop_path_rate, norm_layer, use_abs_pos, False, True,
            window_size, window_block_indexes, residual_block_indexes, use_act_checkpoint,
            pretrain_img_size, pretrain_use_cls_token, out_feature,
            layer_cfgs=dict(ffn_type='swiglu', sub_ln=True),
            rope=dict(layout='interleaved', ref_grid=(pt_hw_seq_len, pt_hw_seq_len),
                      interpolate=intp_freq)))
        self.pretrain_use_cls_token = pretrain_use_cls_token
        self.pt_hw_seq_len, self.intp_freq, self.xattn = pt_hw_seq_len, intp_freq, xattn
        # the side of detrex's rope tables (stored in its state dict): windows, global blocks
        grid = img_size // patch_size
        self._rope_sides = (window_size if intp_freq else pt_hw_seq_len,
                            grid if intp_freq else pt_hw_seq_len)
        self._set_outputs([embed_dim], [patch_size], [out_feature])
        save_in_layout(self, _eva02_layout)
        self._reset_parameters()  # initialised at construction, as detrex's

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, super().forward(x)))


def _eva_layout(module: EVAViT, ours: dict) -> dict:
    return revert_detrex_eva(ours, prefix='', cls_entry=module.pretrain_use_cls_token)


def _eva02_layout(module: EVA02_ViT, ours: dict) -> dict:
    """detrex's names, with the rope tables detrex keeps as buffers: ``rope_win``, ``rope_glb``
    and each block's ``attn.rope`` (the window's or the global one)."""
    state = revert_detrex_eva(ours, prefix='', cls_entry=module.pretrain_use_cls_token)
    pt = module.pt_hw_seq_len
    table = RotaryEmbedding2d(module.embed_dims // module.layers[0].attn.num_heads,
                              ref_grid=(pt, pt)) if len(module.layers) else None
    out = dict(state)
    tables = {name: table((side, side)) if table is not None else None
              for name, side in zip(('rope_win', 'rope_glb'), module._rope_sides)}
    for name, (cos, sin) in tables.items():
        out[f'{name}.freqs_cos'], out[f'{name}.freqs_sin'] = cos, sin
    for i in range(len(module.layers)):
        cos, sin = tables['rope_win' if i in module.window_block_indexes else 'rope_glb']
        out[f'blocks.{i}.attn.rope.freqs_cos'], out[f'blocks.{i}.attn.rope.freqs_sin'] = cos, sin
    return out


__all__ = ['EVAViT', 'EVA02_ViT', 'LayerNormWithForceFP32']
