"""Shipped configs and model names: what ``mmbackbones info resnet50`` and
``_base_ = 'mmbackbones::resnet/resnet50.py'`` resolve to.

The configs are the repository's top-level ``configs/`` tree. The package reaches them as
``mmbackbones/.mim/configs`` (mim's layout, where mmengine looks for ``package::path``): a
symlink in a checkout and an editable install, a copy in a wheel (``setup.py``'s ``build_py``).

mmengine 0.10.7 resolves ``'pkg::path'`` (``Config._get_cfg_path``) by (1) asserting that
``pkg`` is in ``mmengine.utils.MODULE2PACKAGE``, (2) ``is_installed(pkg)`` and
``get_installed_path(pkg)``, both through ``pkg_resources`` (gone from setuptools >= 81), then
(3) ``<installed path>/.mim/configs/<path>``. :func:`register_config_scope` (run by ``import
mmbackbones``) adds ``mmbackbones`` to (1) and answers (2) for ``mmbackbones`` from the imported
package itself: with a PEP 660 editable install ``get_installed_path`` would return
``site-packages/mmbackbones``, which does not exist. Other packages are left to mmengine.

A registered type (``ResNet``, ``ConvNeXt``; what ``mmbackbones list`` shows) is also a model
name: the type built with its defaults (a required argument, ResNet's ``depth``, is named in
the error, to give with ``--cfg-options model.backbone.depth=50``).

A model name is a shipped config's stem (``resnet50``, ``convnext-tiny``, ``swin-tiny_224``;
``_`` and ``-`` are interchangeable; a native family's file wins over a timm/torchvision one of
the same name), ``<arch>/<stem>`` (``timm/convnext_tiny``), or a wrapped
model: ``timm.<model_name>`` (a ``TIMMBackbone`` with timm's default feature levels) or
``torchvision.<model_name>`` (a ``TorchvisionBackbone``).
"""
import difflib
import os
import warnings
from typing import Dict, Optional

PACKAGE = 'mmbackbones'
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
PKG_RESOURCES_HINT = ("mmengine reads 'package::path' configs (mmdet::, mmseg::) through "
                      "pkg_resources, which setuptools >= 81 no longer ships: run "
                      "`pip install 'setuptools<81'`")
WRAPPER_SCOPES = {'timm': 'TIMMBackbone', 'torchvision': 'TorchvisionBackbone'}
_NOT_MODELS = ('_base_', 'downstream')


def config_root() -> str:
    """The folder of the shipped configs (``mmbackbones/.mim/configs``)."""
    root = os.path.join(PACKAGE_DIR, '.mim', 'configs')
    if not os.path.isdir(root):
        raise FileNotFoundError(f'the shipped configs are missing: {root} (reinstall '
                                f'mmbackbones; in a checkout it is a symlink to ../../configs)')
    return root


def register_config_scope() -> None:
    """Make ``_base_ = 'mmbackbones::<arch>/<file>.py'`` resolve in mmengine configs."""
    from mmengine.config import config as config_module
    from mmengine.config.utils import MODULE2PACKAGE

    MODULE2PACKAGE.setdefault(PACKAGE, PACKAGE)
    for name, ours in (('get_installed_path', _installed_path),
                       ('is_installed', _is_installed)):
        current = getattr(config_module, name)
        if getattr(current, '__wrapped_for__', None) != PACKAGE:
            wrapper = _for_our_package(ours, current)
            setattr(config_module, name, wrapper)


def _installed_path() -> str:
    return PACKAGE_DIR


def _is_installed() -> bool:
    return True


def _for_our_package(ours, original):

    def wrapper(package: str):
        if package == PACKAGE:
            return ours()
        try:
            with warnings.catch_warnings():  # mmengine reloads pkg_resources on every call
                warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
                return original(package)
        except ModuleNotFoundError as error:
            if error.name == 'pkg_resources':
                raise ModuleNotFoundError(f'{PKG_RESOURCES_HINT} (needed for {package}::)',
                                          name='pkg_resources') from None
            raise

    wrapper.__wrapped_for__ = PACKAGE
    wrapper.__wrapped__ = original
    wrapper.__name__ = original.__name__
    return wrapper


def model_names() -> Dict[str, str]:
    """``{name: config path}`` of every shipped model config (``_base_`` and downstream
    configs excluded). A stem appearing in two folders is reachable as ``<arch>/<stem>``; the
    plain stem means the native family's file (timm/torchvision come last)."""
    root = config_root()
    names: Dict[str, str] = {}
    taken = set()  # normalised stems already given a plain name
    arches = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                    and d not in _NOT_MODELS)
    arches.sort(key=lambda d: d in WRAPPER_SCOPES)
    for arch in arches:
        for file in sorted(os.listdir(os.path.join(root, arch))):
            if file.endswith('.py'):
                path = os.path.join(root, arch, file)
                stem = file[:-3]
                if _normal(stem) not in taken:
                    taken.add(_normal(stem))
                    names[stem] = path
                names[f'{arch}/{stem}'] = path
    return names


def _normal(name: str) -> str:
    return name.lower().replace('_', '-')


def resolve_model_name(name: str) -> dict:
    """What a model name means: ``{'config': path}`` for a shipped config, or
    ``{'backbone': dict(type=...)}`` for a wrapped timm/torchvision model.

    Raises ``KeyError`` suggesting close names for an unknown one.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f'a model name must be a non-empty str, got {name!r}')
    scope, _, rest = name.partition('.')
    if rest and scope in WRAPPER_SCOPES and '/' not in name:
        return {'backbone': _wrapper_cfg(scope, rest)}
    names = model_names()
    if name in names:
        return {'config': names[name]}
    by_normal = {}
    for known, path in names.items():
        by_normal.setdefault(_normal(known), path)
    if _normal(name) in by_normal:
        return {'config': by_normal[_normal(name)]}
    registered = _registered_type(name)
    if registered is not None:
        return {'backbone': dict(type=registered)}
    close = difflib.get_close_matches(name, [n for n in names if '/' not in n], n=4, cutoff=0.6)
    hint = f' Did you mean {", ".join(close)}?' if close else ''
    raise KeyError(f'{name!r} is neither a config file, a model name nor a registered type.'
                   f'{hint} (`mmbackbones list --configs` lists the names, `mmbackbones list` '
                   f'the types; timm and torchvision models are written timm.<name> / '
                   f'torchvision.<name>)')


def _registered_type(name: str) -> Optional[str]:
    """``name`` when it is a registered backbone type (``ResNet``, ``mmcls.ConvNeXt``, a user's
    class imported before), built with its defaults; else None."""
    from .registry import MODELS
    if '/' in name or not name.replace('.', '').replace('_', '').isalnum():
        return None
    try:
        return name if MODELS.get(name) is not None else None
    except KeyError:
        return None


def required_arguments(type_name: str, given) -> list:
    """The constructor arguments of registered type ``type_name`` that have no default and are
    not in ``given`` (``ResNet``: ``depth``)."""
    import inspect

    from .registry import MODELS
    try:
        cls = MODELS.get(type_name)
        params = inspect.signature(cls).parameters
    except (KeyError, TypeError, ValueError):
        return []
    return [n for n, p in params.items() if p.default is p.empty and n not in given
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _wrapper_cfg(scope: str, model_name: str) -> dict:
    if scope == 'timm':
        from .registry import MODELS
        backbone = MODELS.get('TIMMBackbone')
        if not backbone.is_timm_model(model_name):
            raise KeyError(f'timm.{model_name}: ' + backbone.unknown_model_message(model_name))
    return dict(type=WRAPPER_SCOPES[scope], model_name=model_name)


def is_model_name(text: str) -> bool:
    """True when ``text`` should be read as a model name rather than a file path."""
    return not os.path.exists(text) and not text.endswith('.py')


def load_model_config(config: str, cfg_options: Optional[dict] = None):
    """An mmengine ``Config`` from a config file or a model name (overrides applied)."""
    from mmengine.config import Config

    from .builder import load_config
    if os.path.isfile(config) or not is_model_name(config):
        return load_config(config, cfg_options)
    target = resolve_model_name(config)
    if 'config' in target:
        return load_config(target['config'], cfg_options)
    cfg = Config(dict(model=dict(backbone=target['backbone'])))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    backbone = cfg.model.backbone
    missing = required_arguments(backbone.get('type'), backbone) if backbone.get(
        'type') == config else []
    if missing:
        raise TypeError(f'{config} (a registered type, built with its defaults) needs '
                        f'{", ".join(missing)}: give '
                        + ' '.join(f'--cfg-options model.backbone.{m}=...' for m in missing)
                        + ' or write a config file')
    return cfg
