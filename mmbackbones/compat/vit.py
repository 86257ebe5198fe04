"""mmseg 1.2's ``VisionTransformer`` spelling of the core ViT
(``mmbackbones.mmseg.VisionTransformer``).

Same network and parameter names as ``mmcls.VisionTransformer`` (mmseg checkpoints, with their
``attn.attn.in_proj_*`` keys, are converted on load); mmseg's signature and defaults, which differ
from mmpretrain's: feature-map outputs (``out_type='featmap'``), no final norm, LayerNorm eps
1e-5, no patch projection bias, the architecture as ``embed_dims``/``num_layers``/``num_heads``/
``mlp_ratio``, no ``frozen_stages`` (``frozen_exclude`` instead).
"""
from ..models.backbones.vit import VisionTransformer, mmseg_spelling
from ..registry import HOST_TWINS


@HOST_TWINS['mmseg'].register_module('VisionTransformer')
class MMSegVisionTransformer(VisionTransformer):
    """mmseg's ``VisionTransformer(img_size, patch_size, patch_pad, ...)``: its arguments, with
    its defaults and meanings, build the core :class:`VisionTransformer`."""
    host = 'mmseg'

    def __init__(self,
                 img_size=224,
                 patch_size=16,
                 patch_pad='corner',
                 in_channels=3,
                 embed_dims=768,
                 num_layers=12,
                 num_heads=12,
                 mlp_ratio=4,
                 out_origin=False,
                 out_indices=-1,
                 qkv_bias=True,
                 drop_rate=0.,
                 attn_drop_rate=0.,
                 drop_path_rate=0.,
                 with_cls_token=True,
                 output_cls_token=False,
                 norm_cfg=dict(type='LN'),
                 act_cfg=dict(type='GELU'),
                 patch_norm=False,
                 patch_bias=False,
                 pre_norm=False,
                 final_norm=False,
                 interpolate_mode='bicubic',
                 num_fcs=2,
                 norm_eval=False,
                 with_cp=False,
                 frozen_exclude=['all'],
                 pretrained=None,
                 init_cfg=None):
        core = mmseg_spelling(dict(norm_cfg=norm_cfg), dict(
            embed_dims=embed_dims, num_layers=num_layers, num_heads=num_heads,
            mlp_ratio=mlp_ratio, attn_drop_rate=attn_drop_rate, act_cfg=act_cfg,
            patch_pad=patch_pad, patch_bias=patch_bias, patch_norm=patch_norm, num_fcs=num_fcs))
        super().__init__(
            arch=core['arch'], img_size=img_size, patch_size=patch_size, in_channels=in_channels,
            out_indices=out_indices, drop_rate=drop_rate, drop_path_rate=drop_path_rate,
            qkv_bias=qkv_bias, norm_cfg=norm_cfg, final_norm=final_norm, out_type='featmap',
            with_cls_token=with_cls_token, interpolate_mode=interpolate_mode,
            patch_cfg=core['patch_cfg'], layer_cfgs=core['layer_cfgs'], pre_norm=pre_norm,
            init_cfg=self._pretrained_to_init_cfg(pretrained, init_cfg), with_cp=with_cp,
            out_origin=out_origin, output_cls_token=output_cls_token,
            frozen_exclude=frozen_exclude, norm_eval=norm_eval)
