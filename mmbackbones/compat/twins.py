"""mmseg 1.2's Twins ``PCPVT`` and ``SVT`` (``mmbackbones.mmseg.PCPVT``/``SVT``).

Same network and parameter names as ``mmcls.PCPVT``/``SVT`` (mmseg checkpoints, with their
``layers.*``, ``attn.attn.in_proj_*`` and ``norm_list.*`` keys, convert on load through
``converters/mmseg_twins.py``); mmseg's signature and defaults, which differ from mmpretrain's:
the architecture as separate per-stage lists (``depths`` after ``norm_cfg``; SVT's
``windiow_sizes``, spelled as mmseg spells it), all stages out, ``norm_after_stage`` a bool
(SVT: True), ``pretrained``. mmseg's ``norm_cfg`` goes to the patch embeddings and the stage
norms, its encoder layers always use ``LN``, and its GSA output projection has a bias only with
``qkv_bias=True`` (it is ``nn.MultiheadAttention``'s); the core's ``patch_norm_cfg``,
``block_norm_cfg`` and ``gsa_proj_bias`` carry that. mmseg builds as many stages as ``depths``
has entries (its SVT defaults give 3 depths and 4 patch sizes): longer per-stage lists are cut
to that length, and ``out_indices`` entries outside ``0..len(depths) - 1`` are ignored, as
mmseg's ``i in out_indices`` test ignores them.
"""
from ..models.backbones.twins import PCPVT, SVT
from ..registry import HOST_TWINS
from .signatures import host_init

MMSEG_PCPVT = dict(
    in_channels=3, embed_dims=[64, 128, 256, 512], patch_sizes=[4, 2, 2, 2],
    strides=[4, 2, 2, 2], num_heads=[1, 2, 4, 8], mlp_ratios=[4, 4, 4, 4],
    out_indices=(0, 1, 2, 3), qkv_bias=False, drop_rate=0., attn_drop_rate=0.,
    drop_path_rate=0., norm_cfg=dict(type='LN'), depths=[3, 4, 6, 3], sr_ratios=[8, 4, 2, 1],
    norm_after_stage=False, pretrained=None, init_cfg=None)
MMSEG_SVT = dict(
    in_channels=3, embed_dims=[64, 128, 256], patch_sizes=[4, 2, 2, 2], strides=[4, 2, 2, 2],
    num_heads=[1, 2, 4], mlp_ratios=[4, 4, 4], out_indices=(0, 1, 2, 3), qkv_bias=False,
    drop_rate=0., attn_drop_rate=0., drop_path_rate=0.2, norm_cfg=dict(type='LN'),
    depths=[4, 4, 4], sr_ratios=[4, 2, 1], windiow_sizes=[7, 7, 7], norm_after_stage=True,
    pretrained=None, init_cfg=None)


def _translate(core):
    def translate(self, in_channels, embed_dims, patch_sizes, strides, num_heads, mlp_ratios,
                  out_indices, qkv_bias, drop_rate, attn_drop_rate, drop_path_rate, norm_cfg,
                  depths, sr_ratios, norm_after_stage, pretrained, init_cfg,
                  windiow_sizes=None):
        """mmseg's arguments, as mmseg means them, build the core Twins."""
        if not isinstance(depths, (list, tuple)):
            raise TypeError(f'depths must be a list of ints (one per stage), got {depths!r}')
        n = len(depths)
        lists = dict(embed_dims=embed_dims, depths=depths, num_heads=num_heads,
                     patch_sizes=patch_sizes, strides=strides, mlp_ratios=mlp_ratios,
                     sr_ratios=sr_ratios)
        if windiow_sizes is not None:
            lists['window_sizes'] = windiow_sizes
        arch = {}
        for key, value in lists.items():
            if not isinstance(value, (list, tuple)) or len(value) < n:
                name = 'windiow_sizes' if key == 'window_sizes' else key
                raise ValueError(f'{name} must be a list with at least len(depths)={n} entries, '
                                 f'got {value!r}')
            arch[key] = list(value[:n])
        if isinstance(out_indices, (list, tuple)):  # mmseg returns stage i if i in out_indices
            kept = tuple(i for i in out_indices if isinstance(i, int) and 0 <= i < n)
            if not kept:
                raise ValueError(f'out_indices={out_indices!r} names none of the {n} stages '
                                 f'0..{n - 1} (mmseg would return no output)')
            out_indices = kept
        if not isinstance(norm_after_stage, bool):
            raise TypeError(f'norm_after_stage must be a bool (mmseg), got {norm_after_stage!r}')
        core.__init__(
            self, arch=arch, in_channels=in_channels, out_indices=out_indices,
            qkv_bias=qkv_bias, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate, norm_cfg=norm_cfg, norm_after_stage=norm_after_stage,
            init_cfg=self._pretrained_to_init_cfg(pretrained, init_cfg),
            patch_norm_cfg=norm_cfg, block_norm_cfg=dict(type='LN'), gsa_proj_bias=qkv_bias)
    return translate


@HOST_TWINS['mmseg'].register_module('PCPVT')
class MMSegPCPVT(PCPVT):
    """mmseg's ``PCPVT(in_channels, embed_dims, ...)``."""
    host = 'mmseg'
    __init__ = host_init(MMSEG_PCPVT, _translate(PCPVT))


@HOST_TWINS['mmseg'].register_module('SVT')
class MMSegSVT(SVT):
    """mmseg's ``SVT(in_channels, embed_dims, ..., windiow_sizes, ...)``."""
    host = 'mmseg'
    __init__ = host_init(MMSEG_SVT, _translate(SVT))
