"""MAE's pre-training encoder, mmpretrain 1.2's ``MAEViT``: the core ViT with a fixed 2-D
sine-cosine position embedding and the random patch masking of MAE
(https://arxiv.org/abs/2111.06377).

``MAEViT`` is mmpretrain's ``VisionTransformer`` subclass, so it is ours too: the one ViT
implementation (``vit.py``) with MAE's signature and defaults (``arch='b'``, ``out_type='raw'``,
a final norm, a frozen ``pos_embed``) and two behaviours on top:

* ``init_weights()``: ``pos_embed`` gets the sine-cosine table (class token: zeros), the patch
  projection a Xavier-uniform init, the class token normal(0.02);
* ``forward(x, mask=True)``: as mmpretrain, ``mask=None`` is the plain ViT forward (the outputs
  of ``out_indices``); anything else keeps ``1 - mask_ratio`` of the patches at random
  (``torch.rand`` noise, the MAE recipe) and returns ``(tokens, mask, ids_restore)`` after every
  layer and the final norm.

The segmentation fine-tuning network of mmseg's ``MAE`` is BEiT's (``mmbackbones.mmseg.MAE``).
This module imports the ViT family on purpose: MAEViT is that family's network, not a copy.
"""
from typing import Optional, Tuple

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import check_rate
from ..layers.pos_embed import resize_pos_embed
from .vit import VisionTransformer


def sincos_pos_embed_2d(grid: Tuple[int, int], embed_dims: int, temperature: float = 10000.,
                        cls_token: bool = True) -> torch.Tensor:
    """``(1, [1 +] H * W, embed_dims)``: sin/cos of the column, then of the row position, each
    over ``embed_dims // 4`` frequencies (mmpretrain's ``build_2d_sincos_position_embedding``)."""
    if embed_dims % 4:
        raise ValueError(f'the sine-cosine position embedding needs embed_dims divisible by 4, '
                         f'got {embed_dims}')
    h, w = grid
    grid_w, grid_h = torch.meshgrid(torch.arange(w, dtype=torch.float32, device='cpu'),
                                    torch.arange(h, dtype=torch.float32, device='cpu'),
                                    indexing='ij')
    dims = embed_dims // 4
    omega = 1. / temperature ** (torch.arange(dims, dtype=torch.float32, device='cpu') / dims)
    out_w = grid_w.flatten()[:, None] * omega[None]
    out_h = grid_h.flatten()[:, None] * omega[None]
    pos = torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], dim=1)[None]
    if cls_token:
        pos = torch.cat([torch.zeros(1, 1, embed_dims, device='cpu'), pos], dim=1)
    return pos


@MODELS.register_module()
class MAEViT(VisionTransformer):
    """mmpretrain's ``MAEViT(arch, img_size, patch_size, out_indices, drop_rate, drop_path_rate,
    norm_cfg, final_norm, out_type, interpolate_mode, patch_cfg, layer_cfgs, mask_ratio,
    init_cfg)`` (module doc). ``mask_ratio``: the share of patches dropped by the masked
    forward, in ``[0, 1)``."""

    def __init__(self,
                 arch='b',
                 img_size=224,
                 patch_size=16,
                 out_indices=-1,
                 drop_rate: float = 0,
                 drop_path_rate: float = 0,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 final_norm: bool = True,
                 out_type: str = 'raw',
                 interpolate_mode: str = 'bicubic',
                 patch_cfg: dict = dict(),
                 layer_cfgs: dict = dict(),
                 mask_ratio: float = 0.75,
                 init_cfg=None):
        mask_ratio = check_rate('mask_ratio', mask_ratio)
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size,
                         out_indices=out_indices, drop_rate=drop_rate,
                         drop_path_rate=drop_path_rate, norm_cfg=norm_cfg,
                         final_norm=final_norm, out_type=out_type, with_cls_token=True,
                         interpolate_mode=interpolate_mode, patch_cfg=patch_cfg,
                         layer_cfgs=layer_cfgs, init_cfg=init_cfg)
        self.pos_embed.requires_grad = False  # not learned during pre-training
        self.mask_ratio = mask_ratio
        self.num_patches = self.patch_resolution[0] * self.patch_resolution[1]

    def init_weights(self) -> None:
        super().init_weights()
        with torch.no_grad():
            self.pos_embed.copy_(sincos_pos_embed_2d(self.patch_resolution, self.embed_dims))
            weight = self.patch_embed.projection.weight
            nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
            nn.init.normal_(self.cls_token, std=.02)

    def random_masking(self, x: torch.Tensor, mask_ratio: float = 0.75
                       ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep ``int(L * (1 - mask_ratio))`` random tokens of ``(B, L, C)``: the kept tokens,
        the ``(B, L)`` mask (1 = removed) and the indices that restore the original order."""
        n, length, dims = x.shape
        keep = int(length * (1 - mask_ratio))
        noise = torch.rand(n, length, device=x.device)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        kept = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, dims))
        mask = torch.ones(n, length, device=x.device)
        mask[:, :keep] = 0
        return kept, torch.gather(mask, 1, ids_restore), ids_restore

    def forward(self, x: torch.Tensor, mask: Optional[bool] = True):
        if mask is None:
            return super().forward(x)
        self.check_input(x)
        batch = x.shape[0]
        x, hw = self.patch_embed(x)
        pos_embed = self.pos_embed
        if hw != self.patch_resolution:  # any input size, as the plain forward
            pos_embed = resize_pos_embed(pos_embed, self.patch_resolution, hw,
                                         mode=self.interpolate_mode, num_extra_tokens=1,
                                         antialias=self.interpolate_antialias)
        x = x + pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, self.mask_ratio)
        cls_token = (self.cls_token + pos_embed[:, :1, :]).expand(batch, -1, -1)
        x = torch.cat((cls_token, x), dim=1)
        for layer in self.layers:
            x = layer(x)
        return self.ln1(x), mask, ids_restore
