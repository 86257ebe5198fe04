"""mmpretrain's ``ViTEVA02`` spelling of the core :class:`~.vit.VisionTransformer`.

``mmcls.ViTEVA02`` / ``mmbackbones.ViTEVA02`` take mmpretrain 1.2's signature, arch table and
defaults and build the core ViT with EVA-02's blocks: SwiGLU MLP (``sub_ln``: a norm on its
hidden features), 2-D rotary position embedding of the patch tokens in the layout mmpretrain
computes (``'tiled'``, positions spanning ``head_dims // 2``; the official EVA-02 and timm's
``eva02_*`` use ``'interleaved'`` over the training grid, which ``arch='eva02-*'`` of the core
builds). mmpretrain's key names (``norm1``/``norm2``/``mlp``, the ``rope`` buffers) are read
by the ``mmpretrain_eva02`` converter at load time; the module holds the core's names.
"""
from ...registry import MODELS
from .vit import VisionTransformer


def _eva(embed_dims, num_layers, num_heads):
    return dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=num_heads,
                feedforward_channels=int(embed_dims * 4 * 2 / 3))


# mmpretrain 1.2's ViTEVA02.arch_zoo
EVA02_ARCHS = {
    **dict.fromkeys(['t', 'ti', 'tiny'], _eva(192, 12, 3)),
    **dict.fromkeys(['s', 'small'], _eva(384, 12, 6)),
    **dict.fromkeys(['b', 'base'], _eva(768, 12, 12)),
    **dict.fromkeys(['l', 'large'], _eva(1024, 24, 16)),
}


@MODELS.register_module()
class ViTEVA02(VisionTransformer):
    """mmpretrain's ``ViTEVA02(arch, sub_ln, drop_rate, attn_drop_rate, proj_drop_rate,
    drop_path_rate, qkv_bias, norm_cfg, with_cls_token, layer_cfgs, **kwargs)``; ``kwargs`` are
    :class:`VisionTransformer`'s (``img_size``, ``patch_size``, ``out_indices``, ``out_type``,
    ``final_norm``, ``init_cfg``, ...). ``proj_drop_rate`` must equal ``drop_rate`` or be 0
    (the core uses one dropout rate after the attention projection and in the MLP)."""
    arch_zoo = EVA02_ARCHS

    def __init__(self,
                 arch='tiny',
                 sub_ln=False,
                 drop_rate=0.,
                 attn_drop_rate=0.,
                 proj_drop_rate=0.,
                 drop_path_rate=0.,
                 qkv_bias=True,
                 norm_cfg=dict(type='LN'),
                 with_cls_token=True,
                 layer_cfgs=dict(),
                 **kwargs):
        if isinstance(arch, str):
            from ...utils.validation import check_choice
            arch = dict(EVA02_ARCHS[check_choice('arch', arch.lower(), tuple(EVA02_ARCHS))])
        if proj_drop_rate not in (0, drop_rate):
            raise ValueError(f'proj_drop_rate={proj_drop_rate!r}: the core drops after the '
                             f'attention projection at drop_rate ({drop_rate!r}); give 0 or '
                             f'drop_rate')
        for key in ('rope', 'layer_scale_init_value'):
            if key in kwargs:
                raise TypeError(f'ViTEVA02 takes no {key!r} (EVA-02 layers have rope and no '
                                f'layer scale); use VisionTransformer(arch="eva02-...")')
        if isinstance(layer_cfgs, dict):
            layer_cfgs = dict(layer_cfgs)
        base = dict(ffn_type='swiglu', sub_ln=sub_ln, attn_drop_rate=attn_drop_rate)
        layer_cfgs = ([{**base, **c} for c in layer_cfgs] if isinstance(layer_cfgs, list)
                      else {**base, **layer_cfgs})
        super().__init__(arch=arch, drop_rate=drop_rate, drop_path_rate=drop_path_rate,
                         qkv_bias=qkv_bias, norm_cfg=norm_cfg, with_cls_token=with_cls_token,
                         layer_cfgs=layer_cfgs, rope=dict(layout='tiled', ref_grid=None),
                         **kwargs)
