"""mmdet 3.3's ``DetectoRS_ResNet`` and ``TridentResNet`` (``mmbackbones.mmdet.DetectoRS_ResNet``,
``mmbackbones.mmdet.TridentResNet``): the cores
:class:`~mmbackbones.models.backbones.detectors_resnet.DetectoRS_ResNet` and
:class:`~mmbackbones.models.backbones.trident_resnet.TridentResNet` with mmdet's signatures,
whose ``kwargs`` are mmdet's ``ResNet`` arguments (``depth`` required, all four stages out,
``norm_eval=True``, ``stem_channels=None`` = ``base_channels``, ``dcn``, ``plugins``,
``pretrained``).

Differences from mmdet: ``init_cfg`` may be any init config (mmdet's DetectoRS_ResNet takes only
a ``Pretrained`` dict, because its ``init_weights`` is its own); a checkpoint is loaded by our
all-or-nothing loader, where mmdet loads ``pretrained`` with ``strict=False`` (what an ImageNet
ResNet lacks, the SAC modules, ``rfp_conv`` and the AWS statistics, is named as added).
"""
from ..models.backbones.detectors_resnet import DetectoRS_ResNet
from ..models.backbones.trident_resnet import TridentResNet
from ..registry import HOST_TWINS
from .resnet import MMDetResNet

MMDET = HOST_TWINS['mmdet']


@MMDET.register_module('DetectoRS_ResNet')
class MMDetDetectoRS_ResNet(MMDetResNet, DetectoRS_ResNet):  # noqa: N801 - mmdet's name
    """mmdet's ``DetectoRS_ResNet(sac, stage_with_sac, rfp_inplanes, output_img, pretrained,
    init_cfg, **kwargs)``."""

    def __init__(self, sac=None, stage_with_sac=(False, False, False, False), rfp_inplanes=None,
                 output_img=False, pretrained=None, init_cfg=None, **kwargs):
        self._set_detectors_args(sac, stage_with_sac, rfp_inplanes, output_img,
                                 kwargs.get('num_stages', 4))
        MMDetResNet.__init__(self, pretrained=pretrained, init_cfg=init_cfg, **kwargs)


@MMDET.register_module('TridentResNet')
class MMDetTridentResNet(MMDetResNet, TridentResNet):
    """mmdet's ``TridentResNet(depth, num_branch, test_branch_idx, trident_dilations,
    **kwargs)`` (``num_stages=3`` must be given, as there)."""

    def __init__(self, depth, num_branch, test_branch_idx, trident_dilations, **kwargs):
        self._set_trident_args(num_branch, test_branch_idx, trident_dilations,
                               kwargs.get('num_stages', 4))
        MMDetResNet.__init__(self, depth, **kwargs)
