"""mmseg 1.2.2's and mmdet 3.3's ``HRNet`` spellings, as thin adapters of the core
:class:`~mmbackbones.models.backbones.hrnet.HRNet` (no second network here).

Not registered: these are host twins, meant to live under ``mmbackbones/compat/`` and be
registered there as ``HRNet`` in the ``mmbackbones.mmseg`` / ``mmbackbones.mmdet`` scopes.

What differs from mmpretrain's signature:

* ``extra`` is required (first positional argument), there is no ``arch``;
* mmseg: ``frozen_stages`` (mmseg's meaning, which the core has), ``norm_cfg`` default
  ``dict(type='BN', requires_grad=True)``, bilinear upsampling in the fuse layers;
* mmdet: no ``frozen_stages``, ``norm_eval=True`` by default, nearest upsampling;
* both: ``pretrained`` (a checkpoint string, deprecated, means a Pretrained ``init_cfg``;
  giving both is refused) and ``init_cfg=None`` meaning the Kaiming/constant default.

``zero_init_residual`` keeps its documented meaning (zeroed last norms of the stage 2-4 blocks,
skipped when a checkpoint is loaded); mmseg/mmdet accept it but never apply it (their test
``not hasattr(self, 'init_cfg')`` is always false).
"""
from typing import Optional

from .hrnet import DEFAULT_INIT_CFG, HRNet


def _host_init_cfg(pretrained, init_cfg):
    """mmdet's/mmseg's defaults: no ``init_cfg`` and no ``pretrained`` -> the Kaiming/constant
    init; with ``pretrained`` the core makes the Pretrained entry (and refuses both)."""
    if init_cfg is None and pretrained is None:
        return [dict(c) for c in DEFAULT_INIT_CFG]
    return init_cfg


class MMSegHRNet(HRNet):
    """mmseg 1.2.2's ``HRNet(extra, ...)``: bilinear fuse upsampling, ``frozen_stages``.

    Outputs: the four branches of stage 4 (one with ``multiscale_output=False``), as a tuple.
    """

    def __init__(self, extra: dict, in_channels: int = 3, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True), norm_eval: bool = False,
                 with_cp: bool = False, frozen_stages: int = -1,
                 zero_init_residual: bool = False, multiscale_output: bool = True,
                 pretrained: Optional[str] = None, init_cfg=None):
        super().__init__(extra=extra, in_channels=in_channels, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, norm_eval=norm_eval, with_cp=with_cp,
                         zero_init_residual=zero_init_residual,
                         multiscale_output=multiscale_output, frozen_stages=frozen_stages,
                         upsample_mode='bilinear', pretrained=pretrained,
                         init_cfg=_host_init_cfg(pretrained, init_cfg))


class MMDetHRNet(HRNet):
    """mmdet 3.3's ``HRNet(extra, ...)``: nearest fuse upsampling, ``norm_eval=True`` by
    default, no ``frozen_stages`` argument."""

    def __init__(self, extra: dict, in_channels: int = 3, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), norm_eval: bool = True,
                 with_cp: bool = False, zero_init_residual: bool = False,
                 multiscale_output: bool = True, pretrained: Optional[str] = None,
                 init_cfg=None):
        super().__init__(extra=extra, in_channels=in_channels, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, norm_eval=norm_eval, with_cp=with_cp,
                         zero_init_residual=zero_init_residual,
                         multiscale_output=multiscale_output, upsample_mode='nearest',
                         pretrained=pretrained, init_cfg=_host_init_cfg(pretrained, init_cfg))


__all__ = ['MMSegHRNet', 'MMDetHRNet']
