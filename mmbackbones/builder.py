"""Build backbones from config dicts and config files."""
import ast
import os
from typing import Union

from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS as MMENGINE_MODELS

from .registry import HOST_TWINS, MODELS
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
    elif isinstance(obj_type, str) and obj_type.split('.')[0] in HOST_TWINS:
        # 'mmdet.ResNet' is mmdet's own class (the twin is 'mmbackbones.mmdet.ResNet')
        return MMENGINE_MODELS.build(cfg, default_args=default_args or None)
    return MODELS.build(cfg, default_args=default_args or None)


def _base_files(path: str) -> list:
    """The local ``_base_`` files a ``.py`` config names (absolute paths); parsing it with its
    file name, so a syntax error says which file and line. ``pkg::path`` bases are skipped."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == '_base_'):
            try:
                bases = ast.literal_eval(node.value)
            except ValueError:  # an expression: mmengine evaluates it and reports problems
                return []
            bases = bases if isinstance(bases, (list, tuple)) else [bases]
            return [os.path.abspath(os.path.join(os.path.dirname(path), b)) for b in bases
                    if isinstance(b, str) and '::' not in b]
    return []


def _shown(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith('..') else relative


def check_config_tree(path: str) -> None:
    """Walk the ``_base_`` inheritance of the config ``path`` before mmengine reads it.

    Raises ``SyntaxError`` naming the file and line of a ``.py`` config that does not parse
    (mmengine says ``(<unknown>, line 1)``), ``FileNotFoundError`` for a missing base (naming
    the config that asks for it) and ``ValueError`` for an inheritance cycle, listing it
    (mmengine recurses until ``RecursionError``).
    """
    def visit(current: str, chain: list) -> None:
        if current in chain:
            cycle = chain[chain.index(current):] + [current]
            raise ValueError('_base_ cycle in config files: ' + ' -> '.join(map(_shown, cycle)))
        if not current.endswith('.py'):
            return
        for base in _base_files(current):
            if not os.path.isfile(base):
                raise FileNotFoundError(f'config {current}: _base_ file not found: {base}')
            visit(base, chain + [current])

    visit(os.path.abspath(path), [])


def load_config(path: Union[str, os.PathLike], cfg_options: dict = None) -> Config:
    """Read an mmengine config file (``_base_`` inheritance applied), with optional overrides.

    A bad file is refused with a message naming it (see :func:`check_config_tree`); an error
    raised while mmengine executes the file, or while it merges ``cfg_options``, becomes a
    ``ValueError`` naming the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    check_config_tree(path)
    try:
        cfg = Config.fromfile(path)
    except (OSError, SyntaxError):  # they name the file already
        raise
    except Exception as err:  # NameError, KeyError, mmengine's parsing errors, ...
        raise ValueError(f'config {path}: {type(err).__name__}: {err}') from err
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as err:
            raise ValueError(f'config {path}: cannot apply --cfg-options/cfg_options '
                             f'{cfg_options!r}: {type(err).__name__}: {err}') from err
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
