"""mmbackbones: an OpenMMLab-style registry of multi-scale backbones.

Importing the package is light: it creates the registries and imports no model file, torch,
timm or torchvision. Model families load on first use: the first registry lookup imports them
(mmengine's lazy ``locations``); :func:`register_all_modules` does it up front.
"""
from .utils.mmcv_check import check_mmcv_version

check_mmcv_version()

from .builder import build_backbone, build_backbone_from_config, load_config  # noqa: E402
from .registry import BACKBONES, MODELS, register_all_modules  # noqa: E402
from .version import __version__  # noqa: E402
from .model_configs import register_config_scope  # noqa: E402

register_config_scope()  # _base_ = 'mmbackbones::resnet/resnet50.py'

__all__ = ['MODELS', 'BACKBONES', 'register_all_modules', 'build_backbone',
           'build_backbone_from_config', 'load_config', '__version__']
