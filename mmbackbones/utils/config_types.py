"""``type`` values nested in a backbone's arguments: data never names code.

A backbone hands ``norm_cfg``, ``act_cfg``, ``conv_cfg``, ``plugins`` and ``init_cfg`` to mmcv's
and mmengine's builders, which look ``type`` up in mmengine's registries; when the name is not
registered there, mmengine imports it as a dotted path and calls what it finds
(``act_cfg=dict(type='os.system', command=...)`` would run the command). Every constructor of
the zoo (``BaseBackbone``, the necks) checks its arguments with :func:`check_config_types` first,
whichever route built it (our registry, a host library's, the class used directly): a nested
``type`` string must be a registered name, a scoped name under a registry scope, or at least not
a Python module or a dotted import path. Classes given in Python configs are left alone (Python
configs are code by design).
"""
import importlib.util
from typing import Optional

from .text import shown

OUR_SCOPES = ('mmbackbones', 'mmcls', 'timm')  # resolved by our registries, never by import
MAX_DEPTH = 32


class UnknownTypeError(KeyError):
    """A ``KeyError`` whose message prints as written (``KeyError`` would print its repr)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def _registered(name: str) -> bool:
    from mmengine.registry import MODELS, WEIGHT_INITIALIZERS
    return any(name in root.module_dict for root in (MODELS, WEIGHT_INITIALIZERS))


def _known_scope(scope: str) -> bool:
    from mmengine.config.utils import MODULE2PACKAGE
    from mmengine.registry import MODELS, WEIGHT_INITIALIZERS
    return scope in OUR_SCOPES or scope in MODULE2PACKAGE or any(
        scope in root.children for root in (MODELS, WEIGHT_INITIALIZERS))


def _is_module_name(name: str) -> bool:
    """``name`` is an importable top-level module (found without importing it)."""
    if not name.isidentifier():
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def type_problem(value) -> Optional[str]:
    """Why the nested ``type`` ``value`` could make mmengine import or call code, or ``None``."""
    if not isinstance(value, str):
        return None
    scope, _, rest = value.partition('.')
    if not rest:
        if not _registered(value) and _is_module_name(value):
            return 'names a Python module, not a registered type'
        return None
    if not _known_scope(scope):
        return f'{shown(scope)} is not a registry scope: a dotted import path'
    if scope in OUR_SCOPES:
        return None
    if '.' in rest:
        return f'a dotted import path after the {scope!r} scope'
    if not _registered(rest) and _is_module_name(rest):
        return 'names a Python module, not a registered type'
    return None


def check_config_types(value, name: str, depth: int = 0) -> None:
    """Raise :class:`UnknownTypeError` naming the argument (``act_cfg``, ``plugins[0].cfg``)
    and the value of a nested ``type`` that is not a registered name (see the module doc)."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, dict):
        if 'type' in value:
            problem = type_problem(value['type'])
            if problem:
                raise UnknownTypeError(
                    f'{name} type {shown(value["type"])}: {problem}. A type is a registered name '
                    f'(optionally scoped, e.g. "mmcls.ResNet"), never an import path')
        for key, item in value.items():
            if isinstance(item, (dict, list, tuple)):
                check_config_types(item, f'{name}.{key}', depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if isinstance(item, (dict, list, tuple)):
                check_config_types(item, f'{name}[{i}]', depth + 1)
