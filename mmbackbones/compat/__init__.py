"""Host twins: mmdet's and mmseg's spellings of the backbones we provide.

Each twin takes that library's exact signature, defaults and meanings and builds the one core
module of its family (``mmbackbones.models.backbones.<family>``), translating its arguments into
the core's; no network is implemented here. The twins are registered in the child registries
``HOST_TWINS['mmdet']`` / ``HOST_TWINS['mmseg']`` of ``mmbackbones.MODELS``, so configs write::

    custom_imports = dict(imports=['mmbackbones'])
    model = dict(backbone=dict(type='mmbackbones.mmseg.VisionTransformer', ...))

and an mmdet/mmseg config switches to our module by its ``type`` alone.

==========================================  ========================================
type                                        host class (its signature and defaults)
==========================================  ========================================
``mmbackbones.mmdet.CSPDarknet``            ``mmdet.models.backbones.CSPDarknet``
``mmbackbones.mmdet.CSPNeXt``               ``mmdet.models.backbones.CSPNeXt``
``mmbackbones.mmdet.Darknet``               ``mmdet.models.backbones.Darknet``
``mmbackbones.mmdet.DetectoRS_ResNet``      ``mmdet.models.backbones.DetectoRS_ResNet``
``mmbackbones.mmdet.EfficientNet``          ``mmdet.models.backbones.EfficientNet``
``mmbackbones.mmdet.HRNet``                 ``mmdet.models.backbones.HRNet``
``mmbackbones.mmdet.MobileNetV2``           ``mmdet.models.backbones.MobileNetV2``
``mmbackbones.mmdet.RegNet``                ``mmdet.models.backbones.RegNet``
``mmbackbones.mmdet.Res2Net``               ``mmdet.models.backbones.Res2Net``
``mmbackbones.mmdet.ResNeSt``               ``mmdet.models.backbones.ResNeSt``
``mmbackbones.mmdet.ResNeXt``               ``mmdet.models.backbones.ResNeXt``
``mmbackbones.mmdet.ResNetV1d``             ``mmdet.models.backbones.ResNetV1d``
``mmbackbones.mmdet.ResNet``                ``mmdet.models.backbones.ResNet``
``mmbackbones.mmdet.SwinTransformer``       ``mmdet.models.backbones.SwinTransformer``
``mmbackbones.mmdet.TridentResNet``         ``mmdet.models.backbones.TridentResNet``
``mmbackbones.mmdet.SSDVGG``                ``mmdet.models.backbones.SSDVGG``
``mmbackbones.mmdet.HourglassNet``          ``mmdet.models.backbones.HourglassNet``
``mmbackbones.mmseg.BEiT``                  ``mmseg.models.backbones.BEiT``
``mmbackbones.mmseg.HRNet``                 ``mmseg.models.backbones.HRNet``
``mmbackbones.mmseg.MAE``                   ``mmseg.models.backbones.MAE``
``mmbackbones.mmseg.MSCAN``                 ``mmseg.models.backbones.MSCAN``
``mmbackbones.mmseg.MobileNetV2``           ``mmseg.models.backbones.MobileNetV2``
``mmbackbones.mmseg.MobileNetV3``           ``mmseg.models.backbones.MobileNetV3``
``mmbackbones.mmseg.PCPVT``                 ``mmseg.models.backbones.PCPVT``
``mmbackbones.mmseg.ResNeSt``               ``mmseg.models.backbones.ResNeSt``
``mmbackbones.mmseg.ResNeXt``               ``mmseg.models.backbones.ResNeXt``
``mmbackbones.mmseg.ResNetV1c``             ``mmseg.models.backbones.ResNetV1c``
``mmbackbones.mmseg.ResNetV1d``             ``mmseg.models.backbones.ResNetV1d``
``mmbackbones.mmseg.ResNet``                ``mmseg.models.backbones.ResNet``
``mmbackbones.mmseg.SVT``                   ``mmseg.models.backbones.SVT``
``mmbackbones.mmseg.SwinTransformer``       ``mmseg.models.backbones.SwinTransformer``
``mmbackbones.mmseg.STDCNet``               ``mmseg.models.backbones.STDCNet``
``mmbackbones.mmseg.STDCContextPathNet``    ``mmseg.models.backbones.STDCContextPathNet``
``mmbackbones.mmseg.VisionTransformer``     ``mmseg.models.backbones.VisionTransformer``
==========================================  ========================================

Also ``mmbackbones.mmdet.PyramidVisionTransformer`` and ``...PyramidVisionTransformerV2``
(mmdet's classes of those names; the core already has their signature and keys).
"""
from .beit import MMSegBEiT, MMSegMAE
from .csp import MMDetCSPDarknet, MMDetCSPNeXt, MMDetDarknet
from .hrnet import MMDetHRNet, MMSegHRNet
from .mobile import MMDetEfficientNet, MMDetMobileNetV2, MMSegMobileNetV2, MMSegMobileNetV3
from .mscan import MMSegMSCAN
from .pvt import MMDetPyramidVisionTransformer, MMDetPyramidVisionTransformerV2
from .res2net import MMDetRes2Net
from .resnest import MMDetResNeSt, MMSegResNeSt
from .resnet import (MMDetRegNet, MMDetResNet, MMDetResNetV1d, MMDetResNeXt, MMSegResNet,
                     MMSegResNetV1c, MMSegResNetV1d, MMSegResNeXt)
from .swin import MMDetSwinTransformer, MMSegSwinTransformer
from .twins import MMSegPCPVT, MMSegSVT
from .vit import MMSegVisionTransformer
from .stdc import MMSegSTDCContextPathNet, MMSegSTDCNet
from .detectors import MMDetDetectoRS_ResNet, MMDetTridentResNet
from .vgg import MMDetSSDVGG
from .hourglass import MMDetHourglassNet

__all__ = [
    'MMDetCSPDarknet',
    'MMDetCSPNeXt',
    'MMDetDarknet',
    'MMDetEfficientNet',
    'MMDetHRNet',
    'MMDetMobileNetV2',
    'MMDetPyramidVisionTransformer',
    'MMDetPyramidVisionTransformerV2',
    'MMDetRegNet',
    'MMDetRes2Net',
    'MMDetResNeSt',
    'MMDetResNeXt',
    'MMDetResNet',
    'MMDetResNetV1d',
    'MMDetSwinTransformer',
    'MMSegBEiT',
    'MMSegHRNet',
    'MMSegMAE',
    'MMSegMSCAN',
    'MMSegMobileNetV2',
    'MMSegMobileNetV3',
    'MMSegPCPVT',
    'MMSegResNeSt',
    'MMSegResNeXt',
    'MMSegResNet',
    'MMSegResNetV1c',
    'MMSegResNetV1d',
    'MMSegSVT',
    'MMSegSwinTransformer',
    'MMSegVisionTransformer',
    'MMSegSTDCContextPathNet',
    'MMSegSTDCNet',
    'MMDetDetectoRS_ResNet',
    'MMDetTridentResNet',
    'MMDetSSDVGG',
    'MMDetHourglassNet',
]
