"""DetectoRS's ResNet (https://arxiv.org/abs/2006.02334): mmdet 3.3's ``DetectoRS_ResNet``.

A ResNet (:class:`~.resnet.ResNet`: stem, stages, metadata, freezing, loading) whose
bottlenecks (``layers.detectors_blocks``) may use Switchable Atrous Convolution in the stages
flagged by ``stage_with_sac`` and take Recursive Feature Pyramid features: with
``rfp_inplanes`` the first block of stages 2..4 has an ``rfp_conv``, used by
:meth:`DetectoRS_ResNet.rfp_forward`, the method mmdet's ``RFP`` neck calls on the backbones it
builds from ``rfp_backbone``. ``output_img=True`` puts the input image first among the outputs
(the RFP neck takes it from there). ``conv_cfg=dict(type='ConvAWS')`` (the shipped configs)
builds mmcv's weight-standardised convs.

Parameter names are mmdet's, so a DetectoRS detector checkpoint loads with
``prefix='backbone'`` (and the RFP neck's backbones with ``prefix='neck.rfp_modules.<i>'``);
an ImageNet ResNet checkpoint (torchvision's, as the shipped configs load) fits with the SAC
modules, ``rfp_conv`` and the AWS statistics named as additions (``checkpoint_additions``).
mmpretrain and timm have no DetectoRS.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch

from ...registry import MODELS
from ...utils.validation import check_bool
from ..layers.detectors_blocks import DetectoRSBottleneck, rfp_forward_layer
from ..layers.resnet_blocks import ResLayer
from ..layers.sac import SAConv2d, check_sac, reparametrises_weight
from .resnet import ResNet

_NO_SAC = (False, False, False, False)


@MODELS.register_module()
class DetectoRS_ResNet(ResNet):  # noqa: N801 - mmdet's class name is the type users write
    """ResNet backbone of DetectoRS, mmdet's signature ``DetectoRS_ResNet(sac=None,
    stage_with_sac=(False, False, False, False), rfp_inplanes=None, output_img=False,
    **kwargs)`` with :class:`~.resnet.ResNet`'s arguments (mmpretrain's defaults: ``depth``
    50, ``out_indices=(3,)``, ``norm_eval=False``) in ``kwargs``; depths 50, 101, 152.

    Args:
        sac: ``dict(type='SAC', use_deform=False|True)``: the 3x3 conv of every bottleneck of the
            flagged stages is a :class:`~..layers.sac.SAConv2d` (``use_deform=True`` needs the
            full mmcv).
        stage_with_sac: one bool per stage.
        rfp_inplanes: channels of the RFP features; adds a 1x1 ``rfp_conv`` (with bias) to the
            first block of every stage but the first.
        output_img: ``forward`` returns the input image before the stage outputs (it is then
            output ``'img'`` of the metadata: ``in_channels`` channels, stride 1).

    ``rfp_forward(x, rfp_feats)`` runs the stages with ``rfp_feats[i]`` (stage ``i`` > 0; entry
    0 is ignored) fed to their blocks and returns the stage outputs of ``out_indices`` (never
    the image), as mmdet's. mmdet's spelling (``out_indices=(0, 1, 2, 3)``, ``norm_eval=True``,
    ``pretrained``) is the twin ``mmbackbones.mmdet.DetectoRS_ResNet``.
    """

    arch_settings = {
        50: (DetectoRSBottleneck, (3, 4, 6, 3)),
        101: (DetectoRSBottleneck, (3, 4, 23, 3)),
        152: (DetectoRSBottleneck, (3, 8, 36, 3)),
    }
    zero_init_blocks = (DetectoRSBottleneck, )

    def __init__(self, sac: Optional[dict] = None,
                 stage_with_sac: Sequence[bool] = _NO_SAC, rfp_inplanes: Optional[int] = None,
                 output_img: bool = False, **kwargs):
        self._set_detectors_args(sac, stage_with_sac, rfp_inplanes, output_img,
                                 kwargs.get('num_stages', 4))
        super().__init__(**kwargs)

    def _set_detectors_args(self, sac, stage_with_sac, rfp_inplanes, output_img,
                            num_stages) -> None:
        """Check and keep DetectoRS's own arguments (the mmdet twin calls this too)."""
        self.sac = check_sac(sac)
        if not isinstance(stage_with_sac, (list, tuple)) or \
                not all(isinstance(f, bool) for f in stage_with_sac) or \
                (isinstance(num_stages, int) and len(stage_with_sac) != num_stages):
            raise ValueError(f'stage_with_sac must be {num_stages} bools (one per stage, '
                             f'num_stages={num_stages}), got {stage_with_sac!r}')
        self.stage_with_sac = tuple(stage_with_sac)
        if rfp_inplanes is not None and (isinstance(rfp_inplanes, bool) or
                                         not isinstance(rfp_inplanes, int) or rfp_inplanes < 1):
            raise ValueError(f'rfp_inplanes must be None or a positive int (the channels of '
                             f'the RFP features), got {rfp_inplanes!r}')
        self.rfp_inplanes = rfp_inplanes
        self.output_img = check_bool('output_img', output_img)

    def make_res_layer(self, **kwargs) -> ResLayer:
        stage = len(self.res_layers)  # the stage being built (ResNet appends after this call)
        sac = self.sac if self.sac is not None and self.stage_with_sac[stage] else None
        first = dict(rfp_inplanes=self.rfp_inplanes) if stage > 0 and self.rfp_inplanes else None
        return ResLayer(sac=sac, first_block_args=first, **kwargs)

    def _set_outputs(self, channels, strides, names) -> None:
        super()._set_outputs(channels, strides, names)
        if getattr(self, 'output_img', False):  # the image first, as forward returns it
            self._out_channels = (self.in_channels, ) + self._out_channels
            self._out_strides = (1, ) + self._out_strides
            self._out_names = ('img', ) + self._out_names

    @property
    def checkpoint_additions(self) -> Dict[str, str]:
        """What an ImageNet ResNet checkpoint lacks and loading may leave out: the SAC modules
        and ``weight_diff`` (at SAC's own init), ``rfp_conv`` (at init) and the AWS statistics
        (computed from the loaded weights, as mmcv does)."""
        out = {}
        for name, module in self.named_modules():
            if isinstance(module, SAConv2d):
                for child in ('switch', 'pre_context', 'post_context', 'offset_s', 'offset_l',
                              'weight_diff'):
                    if hasattr(module, child):
                        out[f'{name}.{child}'] = 'DetectoRS SAC'
            if reparametrises_weight(module) and hasattr(module, 'weight_gamma'):
                for stat in ('weight_gamma', 'weight_beta'):
                    out[f'{name}.{stat}'] = 'AWS statistics, computed from the loaded weights'
            if name.endswith('rfp_conv'):
                out[name] = 'DetectoRS RFP input conv'
        return out

    def conv_norm_pairs(self):
        return [(c, n) for c, n in super().conv_norm_pairs()
                if not reparametrises_weight(self._modules[c])]

    def after_fuse(self) -> None:
        if not reparametrises_weight(self.conv1):
            super().after_fuse()

    def forward(self, x: torch.Tensor):
        outs = super().forward(x)
        return (x, ) + outs if self.output_img else outs

    def rfp_forward(self, x: torch.Tensor,
                    rfp_feats: Sequence[Optional[torch.Tensor]]) -> Tuple[torch.Tensor, ...]:
        """The stages with the RFP features: ``rfp_feats[i]`` goes to every block of stage
        ``i`` (> 0). Returns the outputs of ``out_indices`` (no image)."""
        self.check_input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.forward_stem(x)
        feats = {}
        for i, name in enumerate(self.res_layers):
            x = rfp_forward_layer(self._modules[name], x, rfp_feats[i] if i > 0 else None)
            if i in self._out_set:
                feats[i] = x
        return tuple(feats[i] for i in self.out_indices)


__all__ = ['DetectoRS_ResNet']
