"""detectron2 and detrex users: mmbackbones as detectron2 ``Backbone``s.

Names mean what they mean in ``detectron2.modeling.backbone.resnet``: :func:`make_stage` builds
one stage (detectron2's ``ResNet.make_stage``), :func:`make_default_stages` the four stages of a
depth, :class:`ResNet` is ``ResNet(stem, stages, num_classes=None, out_features=None,
freeze_at=0)`` with detectron2's parameter names. detrex users import from
:mod:`mmbackbones.detrex` instead (detrex's module-level ``make_stage`` builds all stages).

* :mod:`.contract`: detectron2's backbone contract in one place (``ShapeSpec``,
  ``output_shape``, padding) and the one way a class takes it on (``Detectron2Contract`` +
  ``BACKBONE_BASE``); ``Detectron2Backbone`` puts any mmbackbones backbone behind it.
* ``ResNet``, ``TimmBackbone``, ``TorchvisionBackbone`` (detrex's classes): subclasses of
  ``detectron2.modeling.Backbone`` when detectron2 is importable (plain mmbackbones backbones
  with dict outputs otherwise). These and the contract's names load on first access, so
  importing this package does not import detectron2.
* ``Detectron2ResNet`` (the registered type for mmengine configs), ``BasicStem``,
  ``BasicBlock``, ``BottleneckBlock``, ``make_stage``, ``make_default_stages``,
  ``make_resnet_stages``.
* ``register_all`` (builders in detectron2's ``BACKBONE_REGISTRY``, detectron2_timm's naming
  included), ``add_mmbackbones_config``, ``merge_from_list``.
"""
from .adapter import (add_mmbackbones_config, detectron2_available, merge_from_list,
                      native_builder_names, register_all, timm_builder_names)
from .resnet import (BasicBlock, BasicStem, BottleneckBlock, CNNBlockBase, Detectron2ResNet,
                     d2_norm_cfg, make_default_stages, make_resnet_stages, make_stage)

_LAZY = {'ResNet': 'backbones', 'TimmBackbone': 'backbones', 'TorchvisionBackbone': 'backbones',
         'Detectron2Backbone': 'contract', 'Detectron2Contract': 'contract',
         'BACKBONE_BASE': 'contract', 'ShapeSpec': 'contract'}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module
        return getattr(import_module(f'{__name__}.{_LAZY[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['ResNet', 'TimmBackbone', 'TorchvisionBackbone', 'Detectron2ResNet', 'BasicStem',
           'BasicBlock', 'BottleneckBlock', 'CNNBlockBase', 'make_stage', 'make_default_stages',
           'make_resnet_stages', 'd2_norm_cfg', 'Detectron2Backbone', 'Detectron2Contract',
           'register_all', 'add_mmbackbones_config', 'merge_from_list', 'detectron2_available',
           'timm_builder_names', 'native_builder_names']
