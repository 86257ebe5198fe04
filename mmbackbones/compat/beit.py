"""mmseg 1.2's ``BEiT`` and ``MAE`` spellings of the core :class:`BEiTViT`
(``mmbackbones.mmseg.BEiT``, ``mmbackbones.mmseg.MAE``).

Same network and parameter names as mmseg's (and mmpretrain's ``BEiTViT``); mmseg's signatures
and defaults: the architecture as ``embed_dims``/``num_layers``/``num_heads``/``mlp_ratio``,
feature-map outputs, LayerNorm eps 1e-5, no final norm, ``init_values`` for the layer scale, a
patch embedding that drops the last partial patch, the window ``img_size // patch_size``. MAE is
BEiT with a bias for each of q, k, v, an absolute position embedding and zero-initialised bias
tables. ``norm_eval=True`` keeps the LayerNorms in eval mode (mmseg's meaning). As mmseg, a
checkpoint's tables for another window are resized on load (geometric interpolation), its
``relative_position_index`` buffers are rebuilt, and an MAE checkpoint of a plain ViT (no tables,
no layer scales) keeps this model's initial tables and scales, which mmseg's ``strict=False`` load
does too.
"""
from torch import nn

from ..models.backbones.beit import BEiTViT
from ..registry import HOST_TWINS


def _core_args(img_size, patch_size, in_channels, embed_dims, num_layers, num_heads, mlp_ratio,
               out_indices, attn_drop_rate, drop_path_rate, norm_cfg, act_cfg, patch_norm,
               final_norm, num_fcs, init_values) -> dict:
    if isinstance(img_size, (list, tuple)) and len(img_size) == 1:
        img_size = img_size[0]
    if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or mlp_ratio <= 0:
        raise ValueError(f'mlp_ratio must be a positive number, got {mlp_ratio!r}')
    return dict(
        arch=dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=num_heads,
                  feedforward_channels=int(mlp_ratio * embed_dims)),
        img_size=img_size, patch_size=patch_size, in_channels=in_channels,
        out_indices=out_indices, drop_path_rate=drop_path_rate, norm_cfg=norm_cfg,
        final_norm=final_norm, out_type='featmap', use_rel_pos_bias=True,
        layer_scale_init_value=init_values,
        patch_cfg=dict(padding=0, norm_cfg=norm_cfg if patch_norm else None),
        layer_cfgs=dict(attn_drop_rate=attn_drop_rate, act_cfg=act_cfg, num_fcs=num_fcs))


class _MMSegBEiTBase(BEiTViT):
    host = 'mmseg'

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.norm_eval:  # mmseg's norm_eval: the LayerNorms
            for module in self.modules():
                if isinstance(module, nn.LayerNorm):
                    module.eval()
        return self

    def _load_pre_hook(self, state_dict, prefix, *args):
        if self.ln1 is None:  # mmseg loads with strict=False: a final norm it lacks is ignored
            for key in [k for k in state_dict if k.startswith(prefix + 'ln1.')]:
                del state_dict[key]
        super()._load_pre_hook(state_dict, prefix, *args)


@HOST_TWINS['mmseg'].register_module('BEiT')
class MMSegBEiT(_MMSegBEiTBase):
    """mmseg's ``BEiT(img_size, patch_size, ..., init_values, init_cfg)``."""

    def __init__(self,
                 img_size=224,
                 patch_size=16,
                 in_channels=3,
                 embed_dims=768,
                 num_layers=12,
                 num_heads=12,
                 mlp_ratio=4,
                 out_indices=-1,
                 qv_bias=True,
                 attn_drop_rate=0.,
                 drop_path_rate=0.,
                 norm_cfg=dict(type='LN'),
                 act_cfg=dict(type='GELU'),
                 patch_norm=False,
                 final_norm=False,
                 num_fcs=2,
                 norm_eval=False,
                 pretrained=None,
                 init_values=0.1,
                 init_cfg=None):
        if not isinstance(qv_bias, bool):
            raise TypeError(f'qv_bias must be a bool, got {qv_bias!r}')
        super().__init__(
            **_core_args(img_size, patch_size, in_channels, embed_dims, num_layers, num_heads,
                         mlp_ratio, out_indices, attn_drop_rate, drop_path_rate, norm_cfg,
                         act_cfg, patch_norm, final_norm, num_fcs, init_values),
            bias='qv_bias' if qv_bias else False,
            init_cfg=self._pretrained_to_init_cfg(pretrained, init_cfg), norm_eval=norm_eval)


@HOST_TWINS['mmseg'].register_module('MAE')
class MMSegMAE(_MMSegBEiTBase):
    """mmseg's ``MAE(img_size, patch_size, ..., init_values, init_cfg)``."""
    FILLED = ('attn.relative_position_bias_table', 'gamma_1', 'gamma_2')

    def __init__(self,
                 img_size=224,
                 patch_size=16,
                 in_channels=3,
                 embed_dims=768,
                 num_layers=12,
                 num_heads=12,
                 mlp_ratio=4,
                 out_indices=-1,
                 attn_drop_rate=0.,
                 drop_path_rate=0.,
                 norm_cfg=dict(type='LN'),
                 act_cfg=dict(type='GELU'),
                 patch_norm=False,
                 final_norm=False,
                 num_fcs=2,
                 norm_eval=False,
                 pretrained=None,
                 init_values=0.1,
                 init_cfg=None):
        super().__init__(
            **_core_args(img_size, patch_size, in_channels, embed_dims, num_layers, num_heads,
                         mlp_ratio, out_indices, attn_drop_rate, drop_path_rate, norm_cfg,
                         act_cfg, patch_norm, final_norm, num_fcs, init_values),
            bias=True, use_abs_pos_emb=True,
            init_cfg=self._pretrained_to_init_cfg(pretrained, init_cfg), norm_eval=norm_eval)
        self.rel_pos_init = 'zeros'  # mmseg's MAEAttention

    def _reset_parameters(self) -> None:
        super()._reset_parameters()
        for i, layer in enumerate(self.layers):  # mmseg's fix_init_weight
            layer.attn.proj.weight.data.div_((2.0 * (i + 1)) ** 0.5)
            layer.ffn.layers[1].weight.data.div_((2.0 * (i + 1)) ** 0.5)

    def _load_pre_hook(self, state_dict, prefix, *args):
        """A pre-trained plain ViT (MAE's encoder) has no tables and no layer scales: this
        model's initial ones stay (mmseg's strict=False load), with a log line."""
        if f'{prefix}layers.0.attn.qkv.weight' in state_dict:
            own = self.state_dict()
            filled = [k for k in own if k.endswith(self.FILLED) and prefix + k not in state_dict]
            for key in filled:
                state_dict[prefix + key] = own[key].clone()
            if filled:
                from mmengine.logging import print_log
                print_log(f'MAE: the checkpoint has no {len(filled)} relative position tables/'
                          f'layer scales; they keep their initial values (as mmseg)',
                          logger='current')
        super()._load_pre_hook(state_dict, prefix, *args)
