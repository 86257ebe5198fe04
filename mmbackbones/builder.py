"""Build backbones from config dicts and config files."""
import os
from typing import Union

from mmengine.config import Config, ConfigDict

from .registry import MODELS
from .utils.validation import to_plain


def _as_dict(cfg, name: str = 'cfg') -> dict:
    if isinstance(cfg, ConfigDict):
        return cfg.to_dict()
    cfg = to_plain(cfg)  # omegaconf DictConfig and other Mappings
    if isinstance(cfg, dict):
        return dict(cfg)
    raise TypeError(f'{name} must be a dict or ConfigDict with a "type" key, got '
                    f'{type(cfg).__name__}')


def build_backbone(cfg: Union[dict, ConfigDict], neck: Union[dict, ConfigDict] = None,
                   **default_args):
    """Build a backbone from ``dict(type='ResNet', depth=50, ...)``.

    An unscoped ``type`` means an mmbackbones type even when another OpenMMLab default scope
    (mmdet, mmseg) is active; write ``'mmdet.ResNet'`` to mean another package's class.

    With ``neck=dict(type='FPN', in_channels='auto', ...)`` the result is a ``BackboneWithNeck``
    whose neck takes its ``in_channels`` from the backbone's ``out_channels``.
    """
    if neck is not None:
        from .models.necks import BackboneWithNeck
        backbone = build_backbone(cfg, **default_args)
        return BackboneWithNeck(backbone=backbone, neck=_as_dict(neck, 'neck'))
    cfg = _as_dict(cfg)
    if 'type' not in cfg:
        raise KeyError(f'cfg must contain the key "type" (e.g. type="ResNet"), got keys '
                       f'{sorted(cfg)}')
    obj_type = cfg['type']
    if isinstance(obj_type, str) and '.' not in obj_type:
        cfg['type'] = f'{MODELS.scope}.{obj_type}'
    return MODELS.build(cfg, default_args=default_args or None)


def load_config(path: Union[str, os.PathLike], cfg_options: dict = None) -> Config:
    """Read an mmengine config file (``_base_`` inheritance applied), with optional overrides."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def backbone_cfg_from_config(cfg: Config) -> dict:
    """The backbone part of a config: ``model.backbone``, ``backbone`` or ``model``."""
    model = cfg.get('model')
    if isinstance(model, dict) and isinstance(model.get('backbone'), dict):
        return model['backbone']
    if isinstance(cfg.get('backbone'), dict):
        return cfg['backbone']
    if isinstance(model, dict) and 'type' in model:
        return model
    raise KeyError(f'config {cfg.filename!r} has no backbone: expected a "backbone" dict, a '
                   f'"model" dict with a "backbone" key, or a "model" dict with a "type"')


def build_backbone_from_config(path: Union[str, os.PathLike], cfg_options: dict = None):
    """Build the backbone described by a config file (``model.backbone``, ``backbone`` or
    ``model``)."""
    cfg = load_config(path, cfg_options)
    return build_backbone(backbone_cfg_from_config(cfg))
