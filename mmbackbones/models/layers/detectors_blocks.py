"""DetectoRS's bottleneck (https://arxiv.org/abs/2006.02334): a ResNet bottleneck whose 3x3
conv may be a Switchable Atrous Convolution (``sac``) and which may take a Recursive Feature
Pyramid feature (``rfp_inplanes``: a 1x1 ``rfp_conv`` added to the block output before the last
ReLU, in :meth:`DetectoRSBottleneck.rfp_forward`).

Parameter names are mmdet 3.3's (``mmdet.models.backbones.detectors_resnet.Bottleneck``):
``conv1``, ``bn1``, ``conv2`` (``layers.sac.SAConv2d`` with ``sac``), ``bn2``, ``conv3``,
``bn3``, ``downsample.{0,1}``, ``rfp_conv.{weight,bias}``.
"""
from typing import List, Optional, Tuple

import torch
import torch.utils.checkpoint as cp
from torch import nn

from ...utils.validation import check_positive_int
from .mmcv_bricks import build_conv_layer
from .resnet_blocks import Bottleneck
from .sac import build_sac_conv, check_sac, reparametrises_weight


class DetectoRSBottleneck(Bottleneck):
    """:class:`~.resnet_blocks.Bottleneck` with DetectoRS's ``sac`` and ``rfp_inplanes``.

    ``forward(x)`` is the plain bottleneck (``rfp_conv`` unused, as in mmdet);
    ``rfp_forward(x, rfp_feat)`` adds ``rfp_conv(rfp_feat)`` before the last ReLU when the block
    has ``rfp_inplanes`` (``rfp_feat`` is ignored otherwise, and may be None).
    """

    def __init__(self, in_channels: int, out_channels: int, sac: Optional[dict] = None,
                 rfp_inplanes: Optional[int] = None, **kwargs):
        sac = check_sac(sac)
        if rfp_inplanes is not None:
            check_positive_int('rfp_inplanes', rfp_inplanes)
        if sac is not None and kwargs.get('dcn') is not None:
            raise ValueError(f"sac={sac!r} and dcn={kwargs['dcn']!r} both replace the 3x3 conv "
                             f"of this stage (mmdet silently keeps the SAC); flag the stage in "
                             f"stage_with_sac or stage_with_dcn, not both")
        super().__init__(in_channels, out_channels, **kwargs)
        self.sac, self.with_sac = sac, sac is not None
        if sac is not None:  # replaces conv2 in place (same name and position as in mmdet)
            self.conv2 = build_sac_conv(
                sac, self.mid_channels, self.mid_channels, kernel_size=3,
                stride=self.conv2_stride, padding=self.dilation, dilation=self.dilation,
                groups=self.groups, bias=False)
        self.rfp_inplanes = rfp_inplanes
        if rfp_inplanes:
            self.rfp_conv = build_conv_layer(None, rfp_inplanes, out_channels, 1, stride=1,
                                             bias=True)

    def conv_norm_pairs(self) -> List[Tuple[str, str]]:
        """Only plain convs fold their norm (a weight-standardised or SAC conv does not)."""
        return [(c, n) for c, n in super().conv_norm_pairs()
                if not reparametrises_weight(self._modules[c])]

    def rfp_forward(self, x: torch.Tensor, rfp_feat: Optional[torch.Tensor]) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        if self.rfp_inplanes:
            out = out + self.rfp_conv(rfp_feat)
        return self.relu(out)


def rfp_forward_layer(layer: nn.Sequential, x: torch.Tensor,
                      rfp_feat: Optional[torch.Tensor]) -> torch.Tensor:
    """Every block of a stage through ``rfp_forward`` with the stage's RFP feature."""
    for block in layer:
        x = block.rfp_forward(x, rfp_feat)
    return x


__all__ = ['DetectoRSBottleneck', 'rfp_forward_layer']
