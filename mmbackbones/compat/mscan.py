"""mmseg 1.2's ``MSCAN`` (``mmbackbones.mmseg.MSCAN``): mmseg's exact signature over the core
:class:`~mmbackbones.models.backbones.mscan.MSCAN`, whose arguments are mmseg's plus our
keyword-only extras (``arch``, ``out_indices``, ``frozen_stages``, ``norm_eval``, ``with_cp``),
here at their defaults: every stage out, nothing frozen, as mmseg."""
from ..models.backbones.mscan import MSCAN
from ..registry import HOST_TWINS


@HOST_TWINS['mmseg'].register_module('MSCAN')
class MMSegMSCAN(MSCAN):
    """mmseg's ``MSCAN(in_channels, embed_dims, ..., pretrained, init_cfg)``."""
    host = 'mmseg'

    def __init__(self,
                 in_channels=3,
                 embed_dims=[64, 128, 256, 512],
                 mlp_ratios=[4, 4, 4, 4],
                 drop_rate=0.,
                 drop_path_rate=0.,
                 depths=[3, 4, 6, 3],
                 num_stages=4,
                 attention_kernel_sizes=[5, [1, 7], [1, 11], [1, 21]],
                 attention_kernel_paddings=[2, [0, 3], [0, 5], [0, 10]],
                 act_cfg=dict(type='GELU'),
                 norm_cfg=dict(type='SyncBN', requires_grad=True),
                 pretrained=None,
                 init_cfg=None):
        num = num_stages if isinstance(num_stages, int) and 0 < num_stages <= 4 else 4
        super().__init__(in_channels, embed_dims, mlp_ratios, drop_rate, drop_path_rate, depths,
                         num_stages, attention_kernel_sizes, attention_kernel_paddings, act_cfg,
                         norm_cfg, pretrained, init_cfg, out_indices=tuple(range(num)))
