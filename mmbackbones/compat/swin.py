"""mmdet 3.3's and mmseg 1.2's ``SwinTransformer`` spelling of the core Swin
(``mmbackbones.mmdet.SwinTransformer``, ``mmbackbones.mmseg.SwinTransformer``).

Same network and parameter names as ``mmcls.SwinTransformer``; the hosts' signature and
defaults, which differ from mmpretrain's: the architecture as ``embed_dims``/``depths``/
``num_heads``, all four stages out, windows always shifted (``pad_small_map=True``),
``norm_cfg`` also for the blocks, patch embedding and patch merging (``patch_norm=False``
removes the latter two), ``drop_rate`` also inside every block, and ``frozen_stages=k``
freezing ``stages[0..k-1]`` (mmpretrain's ``k`` freezes ``stages[0..k]``) with the absolute
position embedding.
"""
from ..models.backbones.swin import SwinTransformer, mmdet_spelling
from ..registry import HOST_TWINS
from ..utils.validation import check_bool, check_frozen_stages
from .signatures import host_init, with_params


class _HostSwin(SwinTransformer):
    """The translation both hosts share (their signatures differ in ``convert_weights``)."""

    def _build_twin(self, pretrain_img_size, in_channels, embed_dims, patch_size, window_size,
                    mlp_ratio, depths, num_heads, strides, out_indices, qkv_bias, qk_scale,
                    patch_norm, drop_rate, attn_drop_rate, drop_path_rate, use_abs_pos_embed,
                    act_cfg, norm_cfg, with_cp, pretrained, frozen_stages, init_cfg):
        inner_norm = dict(type='LN') if norm_cfg is None else norm_cfg
        patch_norm_cfg = inner_norm if patch_norm else None
        core = mmdet_spelling(dict(
            patch_size=patch_size, patch_cfg=dict(norm_cfg=patch_norm_cfg),
            stage_cfgs=dict(block_cfgs=dict(norm_cfg=inner_norm,
                                            attn_cfgs=dict(proj_drop=drop_rate),
                                            ffn_cfgs=dict(ffn_drop=drop_rate)),
                            downsample_cfg=dict(norm_cfg=patch_norm_cfg))), dict(
            embed_dims=embed_dims, depths=depths, num_heads=num_heads, mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop_rate=attn_drop_rate,
            patch_norm=patch_norm, pretrain_img_size=pretrain_img_size, strides=strides,
            act_cfg=act_cfg), len(depths) if isinstance(depths, (list, tuple)) else 4)
        SwinTransformer.__init__(
            self, arch=core['arch'], img_size=core['img_size'], patch_size=patch_size,
            in_channels=in_channels, window_size=window_size, drop_rate=drop_rate,
            drop_path_rate=drop_path_rate, out_indices=out_indices,
            use_abs_pos_embed=use_abs_pos_embed, with_cp=with_cp, pad_small_map=True,
            norm_cfg=norm_cfg, stage_cfgs=core['stage_cfgs'], patch_cfg=core['patch_cfg'],
            init_cfg=self._pretrained_to_init_cfg(pretrained, init_cfg))
        # the hosts' count (-1..num_stages): k freezes the patch embedding and stages[0..k-1]
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_layers)
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        super()._freeze_stages()
        if self.frozen_stages >= 0 and self.use_abs_pos_embed:
            self.absolute_pos_embed.requires_grad = False


# the hosts' signature (mmseg 1.2's; mmdet 3.3's adds convert_weights)
MMSEG_SWIN = dict(
    pretrain_img_size=224, in_channels=3, embed_dims=96, patch_size=4, window_size=7,
    mlp_ratio=4, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), strides=(4, 2, 2, 2),
    out_indices=(0, 1, 2, 3), qkv_bias=True, qk_scale=None, patch_norm=True, drop_rate=0.,
    attn_drop_rate=0., drop_path_rate=0.1, use_abs_pos_embed=False, act_cfg=dict(type='GELU'),
    norm_cfg=dict(type='LN'), with_cp=False, pretrained=None, frozen_stages=-1, init_cfg=None)
MMDET_SWIN = with_params(MMSEG_SWIN, after='pretrained', convert_weights=False)


def _mmdet_swin(self, convert_weights, **arguments):
    """convert_weights: original (Microsoft) Swin files are recognised and converted on load
    whatever its value; kept for the configs that set it."""
    self._build_twin(**arguments)
    self.convert_weights = check_bool('convert_weights', convert_weights)


@HOST_TWINS['mmdet'].register_module('SwinTransformer')
class MMDetSwinTransformer(_HostSwin):
    """mmdet's ``SwinTransformer(pretrain_img_size, in_channels, embed_dims, ...)``."""
    host = 'mmdet'
    __init__ = host_init(MMDET_SWIN, _mmdet_swin)


@HOST_TWINS['mmseg'].register_module('SwinTransformer')
class MMSegSwinTransformer(_HostSwin):
    """mmseg's ``SwinTransformer(pretrain_img_size, in_channels, embed_dims, ...)``."""
    host = 'mmseg'
    __init__ = host_init(MMSEG_SWIN, _HostSwin._build_twin)
