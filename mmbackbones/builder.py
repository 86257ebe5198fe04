"""Build backbones from config dicts and config files.

Every route ends in :func:`build_backbone`, which builds through :data:`~.registry.MODELS`: a
``type`` is a registered name (or an ``nn.Module`` subclass given in Python), never an import
path. Config files: ``.py`` configs are Python and run when read (by design, like any Python
file you import); ``.json``/``.yaml`` configs are data and are read with safe parsers first
(a YAML ``!!python/...`` tag is refused), their ``_base_`` files too.
"""
import ast
import json
import os
from typing import Union

from mmengine.config import Config, ConfigDict

from .registry import (HOST_TWINS, MODELS, UnknownTypeError, cfg_as_dict, check_type_value,
                       find_scope, lookup)
from .utils.text import cut, shown

CONFIG_SUFFIXES = ('.py', '.json', '.yaml', '.yml')
DATA_SUFFIXES = ('.json', '.yaml', '.yml')


def build_backbone(cfg: Union[dict, ConfigDict], neck: Union[dict, ConfigDict] = None,
                   **default_args):
    """Build a backbone from ``dict(type='ResNet', depth=50, ...)``.

    An unscoped ``type`` means an mmbackbones type even when another OpenMMLab default scope
    (mmdet, mmseg) is active; write ``'mmdet.ResNet'`` to mean another package's class. Only
    registered types are built: a dotted path that is no registry scope (``'os.system'``) is a
    ``KeyError`` naming it, raised before anything is imported; a class given as ``type`` must
    be an ``nn.Module`` subclass (``TypeError``).

    With ``neck=dict(type='FPN', in_channels='auto', ...)`` the result is a ``BackboneWithNeck``
    whose neck takes its ``in_channels`` from the backbone's ``out_channels``.
    """
    if neck is not None:
        backbone = build_backbone(cfg, **default_args)
        return MODELS.build(dict(type=f'{MODELS.scope}.BackboneWithNeck', backbone=backbone,
                                 neck=cfg_as_dict(neck, 'neck')))
    cfg = cfg_as_dict(cfg)
    if 'type' not in cfg:
        raise KeyError(f'cfg must contain the key "type" (e.g. type="ResNet"), got keys '
                       f'{shown(sorted(map(str, cfg)))}')
    obj_type = check_type_value(cfg['type'])
    if isinstance(obj_type, str) and '.' not in obj_type:
        cfg['type'] = f'{MODELS.scope}.{obj_type}'
    elif isinstance(obj_type, str) and obj_type.split('.', 1)[0] in HOST_TWINS:
        cfg['type'] = _host_class(obj_type)
    return MODELS.build(cfg, default_args=default_args or None)


def _host_class(obj_type: str):
    """``'mmdet.ResNet'`` is mmdet's own class (its twin is ``'mmbackbones.mmdet.ResNet'``),
    found in mmdet's registry without mmengine's import fallback."""
    scope, name = obj_type.split('.', 1)
    host = find_scope(MODELS, scope)
    found = None if host is None else lookup(host, name)
    if found is None:
        raise UnknownTypeError(f'Unknown model type {shown(obj_type)}: {scope} is not installed '
                               f'or has no {shown(name)} (our twin of a {scope} type is '
                               f'"mmbackbones.{obj_type}")')
    return found


def _read_data_config(path: str):
    """A ``.json``/``.yaml`` config read with a safe parser (never a YAML ``!!python`` tag)."""
    try:
        with open(path, encoding='utf-8') as f:
            if path.endswith('.json'):
                return json.load(f)
            import yaml
            return yaml.safe_load(f)
    except UnicodeDecodeError as err:
        raise ValueError(f'config {path}: not a text file ({err.reason})') from None
    except json.JSONDecodeError as err:
        raise ValueError(f'config {path}: invalid JSON: {err}') from None
    except Exception as err:  # yaml.YAMLError: a python/... tag, a syntax error
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f'config {path}: not a plain YAML data file ({shown(problem)}); '
                         f'.yaml/.json configs are data: tags such as !!python/object are '
                         f'refused, write a .py config for Python') from None


def _base_of(path: str):
    """The ``_base_`` value of a config file (``None`` if it has none or computes it)."""
    if path.endswith(DATA_SUFFIXES):
        data = _read_data_config(path)
        return data.get('_base_') if isinstance(data, dict) else None
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == '_base_'):
            try:
                return ast.literal_eval(node.value)
            except ValueError:  # an expression: mmengine evaluates it and reports problems
                return None
    return None


def _base_files(path: str) -> list:
    """The local ``_base_`` files a config names (absolute paths); ``pkg::path`` bases are
    skipped (a package's own configs). A ``.py`` config is parsed with its file name, so a
    syntax error says which file and line."""
    bases = _base_of(path)
    bases = bases if isinstance(bases, (list, tuple)) else [bases] if bases is not None else []
    for base in bases:
        if not isinstance(base, str):
            raise ValueError(f'config {path}: _base_ must be a file name or a list of file '
                             f'names, got {shown(base)}')
    return [os.path.abspath(os.path.join(os.path.dirname(path), b)) for b in bases
            if '::' not in b]


def _shown(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith('..') else relative


def check_config_file(path: str, asked_by: str = None) -> None:
    """Refuse, naming the file (and the config whose ``_base_`` names it), what mmengine cannot
    read as a config: a missing file, a folder, another kind of file."""
    who = f'config {asked_by}: _base_ file' if asked_by else 'config file'
    if os.path.isdir(path):
        raise IsADirectoryError(f'{who} {path} is a directory, not a config file')
    if not os.path.exists(path):
        raise FileNotFoundError(f'{who} not found: {path}')
    if not os.path.isfile(path):
        raise ValueError(f'{who} {path} is not a regular file')
    if not path.endswith(CONFIG_SUFFIXES):
        raise ValueError(f'{who} {path} is not a config file: a config ends in '
                         f'{", ".join(CONFIG_SUFFIXES)}')


def check_config_tree(path: str) -> None:
    """Walk the ``_base_`` inheritance of the config ``path`` before mmengine reads it.

    Raises ``SyntaxError`` naming the file and line of a ``.py`` config that does not parse
    (mmengine says ``(<unknown>, line 1)``), ``FileNotFoundError``/``IsADirectoryError``/
    ``ValueError`` for a base that is missing, a folder or not a config (naming it and the
    config that asks for it), ``ValueError`` for a ``.json``/``.yaml`` file that is not plain
    data (a YAML ``!!python`` tag) and for an inheritance cycle, listing it (mmengine recurses
    until ``RecursionError``).
    """
    def visit(current: str, chain: list) -> None:
        if current in chain:
            cycle = chain[chain.index(current):] + [current]
            raise ValueError('_base_ cycle in config files: ' + ' -> '.join(map(_shown, cycle)))
        for base in _base_files(current):
            check_config_file(base, asked_by=current)
            visit(base, chain + [current])

    path = os.path.abspath(path)
    check_config_file(path)
    visit(path, [])


def load_config(path: Union[str, os.PathLike], cfg_options: dict = None) -> Config:
    """Read an mmengine config file (``_base_`` inheritance applied), with optional overrides.

    A bad file is refused with a message naming it (see :func:`check_config_tree`); an error
    raised while mmengine executes the file, or while it merges ``cfg_options``, becomes a
    ``ValueError`` naming the file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f'config file not found: {path}')
    check_config_tree(path)
    try:
        cfg = Config.fromfile(path)
    except (FileNotFoundError, SyntaxError):  # they name the file already
        raise
    except Exception as err:  # NameError, KeyError, mmengine's parsing errors, ...
        raise ValueError(f'config {path}: {type(err).__name__}: {cut(err)}') from err
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as err:
            raise ValueError(f'config {path}: cannot apply --cfg-options/cfg_options '
                             f'{shown(cfg_options)}: {type(err).__name__}: '
                             f'{cut(err, 300)}') from err
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
