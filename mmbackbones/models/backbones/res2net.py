"""Res2Net (https://arxiv.org/abs/1904.01169): a ResNet whose bottlenecks split their middle
channels into ``scales`` groups convolved hierarchically (``layers.res2net_blocks``),
mmpretrain-compatible.

Built on :class:`~.resnet.ResNet` (stem, stages, metadata, freezing, loading); the block is
``Bottle2neck`` and every stage's first block is its ``'stage'`` type. Parameter names are
mmpretrain 1.2.0's (``conv1``/``bn1`` or the deep stem ``stem.{0,1,2}.conv|bn``; blocks
``conv1``, ``bn1``, ``convs.{i}``, ``bns.{i}``, ``conv3``, ``bn3``; with ``avg_down`` the
shortcut is ``downsample.1`` conv, ``downsample.2`` norm in every stage, as upstream). mmdet's
Res2Net (mmcv-era deep stem) and timm's ``res2net*`` are converted on load
(``checkpoint.converters.openmmlab_resnet``, ``timm_res2net``).
"""
from ...registry import MODELS
from ...utils.validation import check_choice, check_positive_int
from ..layers.res2net_blocks import STAGE_POOLS, Bottle2neck
from ..layers.resnet_blocks import ResLayer
from .resnet import ResNet


@MODELS.register_module()
class Res2Net(ResNet):
    """Res2Net backbone, mmpretrain's signature: ``Res2Net(scales=4, base_width=26,
    style='pytorch', deep_stem=True, avg_down=True, init_cfg=None, **kwargs)`` with ``depth``
    (50, 101 or 152) and the other :class:`~.resnet.ResNet` arguments in ``kwargs``.

    Input ``(N, in_channels, H, W)``; output ``i`` (stage ``s = out_indices[i]``) is
    ``(N, 256 * 2**s, H / 2**(s+2), W / 2**(s+2))`` with the defaults, named ``res{s+2}``.

    Args:
        scales: channel splits per block (>= 2); ``scales - 1`` 3x3 convs.
        base_width: channels per split in the first stage (doubling with each stage).
        style / deep_stem / avg_down: as :class:`~.resnet.ResNet`; mmpretrain's defaults are
            the deep stem and average-pool shortcuts (its shipped ImageNet configs, like timm's
            ``res2net50_26w_4s``, set both False).
        init_cfg: ``None`` is our ResNet's default init (mmpretrain's Res2Net keeps PyTorch's).

    Our extra (keyword-only):
        stage_pool: ``'always'`` (mmpretrain, timm, the paper's code: the first block of every
            stage average-pools its last split, at stride 1 too) or ``'strided'`` (mmdet: only
            where the block has stride 2). Same keys either way.

    mmdet's spelling (``out_indices=(0, 1, 2, 3)``, ``norm_eval=True``, ``dcn``, ``pretrained``,
    the stem/shortcut flags forced) is the twin ``mmbackbones.mmdet.Res2Net``.
    """

    arch_settings = {
        50: (Bottle2neck, (3, 4, 6, 3)),
        101: (Bottle2neck, (3, 4, 23, 3)),
        152: (Bottle2neck, (3, 8, 36, 3)),
    }
    zero_init_blocks = (Bottle2neck, )

    def __init__(self, scales: int = 4, base_width: int = 26, style: str = 'pytorch',
                 deep_stem: bool = True, avg_down: bool = True, init_cfg=None, *,
                 stage_pool: str = 'always', **kwargs):
        if 'depth' not in kwargs:
            raise TypeError(f"{type(self).__name__}() needs depth (one of "
                            f"{sorted(self.arch_settings)}), as mmpretrain's Res2Net")
        self._set_scales(scales, base_width, stage_pool)
        super().__init__(style=style, deep_stem=deep_stem, avg_down=avg_down,
                         init_cfg=init_cfg, **kwargs)

    def _set_scales(self, scales, base_width, stage_pool) -> None:
        """Check and keep the block arguments (the mmdet twin calls this too)."""
        self.scales = check_positive_int('scales', scales)
        if scales < 2:
            raise ValueError(f'scales must be >= 2 (Res2Net with scales=1 is a ResNet), got '
                             f'{scales!r}')
        self.base_width = check_positive_int('base_width', base_width)
        self.stage_pool = check_choice('stage_pool', stage_pool, STAGE_POOLS)

    def make_res_layer(self, **kwargs) -> ResLayer:
        return ResLayer(scales=self.scales, base_width=self.base_width,
                        base_channels=self.base_channels, stage_pool=self.stage_pool,
                        first_block_args=dict(stage_type='stage'), pool_at_stride_1=True,
                        **kwargs)


__all__ = ['Res2Net']
