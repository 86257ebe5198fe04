"""``detrex.modeling.backbone``'s ResNet/timm/torchvision backbones, from mmbackbones.

A detrex config changes one import line::

    -from detrex.modeling.backbone import ResNet, BasicStem, make_stage
    +from mmbackbones.detrex import ResNet, BasicStem, make_stage

and keeps every ``LazyCall`` as it was: ``ResNet(stem, stages, out_features, freeze_at)``,
``ResNet.make_default_stages(depth, stride_in_1x1, norm)``, ``make_stage(depth=50, norm=...,
res5_dilation=2)`` (detrex's module-level ``make_stage`` builds all four stages),
``TimmBackbone(model_name, out_indices, norm_layer=...)`` returning ``{'p<i>': ...}`` and
``TorchvisionBackbone(model_name, return_nodes)`` returning the ``return_nodes`` names, and
``TorchvisionResNet(name, train_backbone, return_layers, dilation)`` (detrex's
``detrex.modeling.backbone.torchvision_resnet``, the DC5 DETR configs' backbone; keys
``body.*`` as detrex's), and ``SwinTransformer`` (detectron2's, which detrex's Swin configs
import from ``detectron2.modeling.backbone``; state dict in detectron2's layout) and
``ConvNeXt`` (detrex's; state dict in detrex's layout), both on the core networks, and
``FocalNet`` (detrex's, on the core FocalNet, which keeps the official names), ``InternImage``
(detrex's, on the core InternImage: official names, DCNv3 in pure PyTorch, so no compiled
extension is needed and ``core_op='DCNv3'`` runs on the CPU), and ViTDet's
``ViT`` + ``SimpleFeaturePyramid`` (detectron2's signatures, on the core ViT), and detrex's
EVA ViTDet backbones ``EVAViT`` (EVA-01) and ``EVA02_ViT`` (EVA-02), on the same core ViT.

The ResNet has detectron2's parameter names, so ``train.init_checkpoint`` (detectron2's
``DetectionCheckpointer``) loads detectron2/detrex ResNet weights (``.pth`` and ``.pkl``,
caffe2 names included) as it does for detrex's own ResNet. With detectron2 installed the classes
are ``detectron2.modeling.Backbone`` subclasses. Importing this module imports detectron2 (when
installed) and, for ``TimmBackbone``/``TorchvisionBackbone``, nothing more until they are built.
"""
from .integrations.detectron2.backbones import ResNet, TimmBackbone, TorchvisionBackbone
from .integrations.detectron2.detrex_convnext import ConvNeXt
from .integrations.detectron2.detrex_focalnet import FocalNet
from .integrations.detectron2.detrex_internimage import InternImage
from .integrations.detectron2.detrex_resnet import TorchvisionResNet
from .integrations.detectron2.detrex_swin import SwinTransformer
from .integrations.detectron2.resnet import BasicBlock, BasicStem, BottleneckBlock
from .integrations.detectron2.resnet import make_resnet_stages as make_stage
# ViTDet / EVA-02 (detectron2's and detrex's ViT and SimpleFeaturePyramid signatures, over the
# core ViT and the SimpleFeaturePyramid neck)
from .integrations.detectron2.vitdet import SimpleFeaturePyramid, ViT, get_vit_lr_decay_rate
from .integrations.detectron2.detrex_eva import EVA02_ViT, EVAViT, LayerNormWithForceFP32

__all__ = ['ResNet', 'BasicStem', 'BasicBlock', 'BottleneckBlock', 'make_stage', 'TimmBackbone',
           'TorchvisionBackbone', 'TorchvisionResNet', 'SwinTransformer', 'ConvNeXt', 'FocalNet',
           'ViT', 'SimpleFeaturePyramid', 'get_vit_lr_decay_rate', 'EVAViT', 'EVA02_ViT',
           'LayerNormWithForceFP32', 'InternImage']
