"""The model registries of mmbackbones and their scopes. Imports mmengine and ``utils`` only.

``MODELS`` (alias ``BACKBONES``) is a child of mmengine's root ``MODELS`` with scope
``'mmbackbones'``. Importing this module (``import mmbackbones`` does) creates the registries and
nothing else: no torch, no model file. The families register themselves
(``@MODELS.register_module()``) when mmengine imports the registry's ``locations``
(:data:`MODEL_LOCATIONS`), which it does before the first lookup, so
``MODELS.build(dict(type='ResNet'))`` and a downstream registry's ``'mmbackbones.ResNet'`` work
without importing ``mmbackbones.models`` first. The norm layers register into mmengine's root
registry where they are defined (``models/layers``), and safe checkpoint loading is installed
once, by ``mmbackbones.checkpoint`` (which every backbone imports).

``'mmcls'`` is a second scope over the same models (configs written for mmcls/mmpretrain,
``type='mmcls.ResNet'``); ``'timm'`` resolves any timm model name.

**Only registered types are built.** mmengine's ``Registry.get`` falls back to importing any
dotted path (``'os.system'`` returns ``os.system``), and it imports ``<scope>.registry`` for any
scope a key names. Our registries resolve a ``type`` only to what is registered: in their own
scope, in a parent, or in the registry of another scope already in the tree (or of an
OpenMMLab package mmengine knows by name, whose registry it imports). Anything else is an
:class:`UnknownTypeError` (a ``KeyError``) naming the value, raised before anything is imported
or called; a class given as ``type`` must be an ``nn.Module`` subclass (``TypeError``).
Only mmengine's public registry API is used (``register_module``, ``module_dict``, ``children``,
``parent``, ``scope``, ``import_from_location``, ``switch_scope_and_registry``).
"""
import copy
import difflib
import importlib
from typing import Optional

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

from .utils.config_types import UnknownTypeError, check_config_types
from .utils.text import cut, shown
from .utils.validation import to_plain

# detectron2's ResNet front end registers 'Detectron2ResNet' from its integration module
MODEL_LOCATIONS = ['mmbackbones.models', 'mmbackbones.integrations.detectron2.resnet',
                   'mmbackbones.integrations.downstream',  # FillAutoInChannels (config route)
                   'mmbackbones.compat']  # the host twins (HOST_TWINS)
LIST_HINT = 'run `mmbackbones list` to see every registered type'
NOT_A_PATH = ('a type is a registered name (optionally scoped, e.g. "mmcls.ResNet"), never an '
              'import path')


def register_all_modules() -> None:
    """Register every mmbackbones model now: what the first registry lookup does by itself
    (mmengine imports :data:`MODEL_LOCATIONS`, once). Kept for code that wants it up front."""
    MODELS.import_from_location()


# ----- resolving a type without mmengine's import fallback -------------------------------------
def _root(registry: Registry) -> Registry:
    while registry.parent is not None:
        registry = registry.parent
    return registry


def _host_packages():
    from mmengine.config.utils import MODULE2PACKAGE  # OpenMMLab packages mmengine knows
    return MODULE2PACKAGE


def find_scope(registry: Registry, scope: str) -> Optional[Registry]:
    """The registry of ``scope`` as mmengine finds it from ``registry`` (itself, a child, the
    root or a child of the root), or ``None``. For the scope of an OpenMMLab package mmengine
    knows by name (``mmdet``, ``mmseg``, ...) that package's ``registry`` module is imported
    first, as mmengine does; no other name is ever imported."""
    if not isinstance(scope, str):
        return None
    root = _root(registry)
    for attempt in range(2):
        if scope == registry.scope:
            return registry
        if scope == root.scope:
            return root
        for owner in (registry, root):
            if scope in owner.children:
                return owner.children[scope]
        if attempt or scope not in _host_packages():
            return None
        try:
            importlib.import_module(f'{scope}.registry')
        except ImportError:
            return None
    return None


def known_scopes(registry: Registry) -> list:
    root = _root(registry)
    return sorted({root.scope, *root.children, *registry.children} - {None})


def lookup(registry: Registry, key: str):
    """What ``key`` names in ``registry`` (following mmengine's scope and parent rules), or
    ``None``; unlike ``Registry.get`` never an object imported from a dotted path. A key that
    ends in one of our registries gets its ``UnknownTypeError`` (which suggests close names)."""
    if isinstance(registry, (BackboneRegistry, TimmModelRegistry)):
        return registry.get(key)
    scope, real_key = Registry.split_scope_key(key)
    if scope is not None and scope != registry.scope:
        target = find_scope(registry, scope)
        return None if target is None else lookup(target, real_key)
    registry.import_from_location()  # the host library registering its own modules
    current = registry
    while current is not None:
        if real_key in current.module_dict:
            return current.module_dict[real_key]
        if scope is not None:
            return None
        current = current.parent
    return None


def is_module_class(obj) -> bool:
    """``obj`` is an ``nn.Module`` subclass (checked without importing torch)."""
    return isinstance(obj, type) and any(
        base.__name__ == 'Module' and base.__module__ == 'torch.nn.modules.module'
        for base in obj.__mro__)


def check_type_value(value, name: str = 'type'):
    """A class given as ``type`` must be an ``nn.Module`` subclass; a str is resolved later."""
    if isinstance(value, str) or is_module_class(value):
        return value
    raise TypeError(f'{name} must be a registered type name (str) or an nn.Module subclass, got '
                    f'{shown(value)} ({type(value).__name__})')



def cfg_as_dict(cfg, name: str = 'cfg',
                allowed: str = 'a dict or ConfigDict with a "type" key') -> dict:
    """A config (mmengine ``ConfigDict``, ``dict``, omegaconf ``DictConfig`` or other
    ``Mapping``) as a new plain ``dict``; anything else is a TypeError naming ``name``."""
    from mmengine.config import ConfigDict

    if isinstance(cfg, ConfigDict):
        return cfg.to_dict()
    cfg = to_plain(cfg)  # omegaconf DictConfig and other Mappings
    if isinstance(cfg, dict):
        return dict(cfg)
    raise TypeError(f'{name} must be {allowed}, got {type(cfg).__name__}')

def resolve_cfg(cfg, registry: Registry, default_args=None):
    """``cfg`` with its ``type`` replaced by the registered class it names, in the registry
    mmengine would build it from (``_scope_``, else the default scope, else ``registry``).

    Raises :class:`UnknownTypeError` for a name nothing registered answers to (a dotted path
    included) or an unknown ``_scope_``, ``TypeError`` for a ``type`` that is neither a str nor an
    ``nn.Module`` subclass. Anything that is not a dict is left to mmengine's own checks.
    """
    if isinstance(cfg, list):
        return [resolve_cfg(item, registry, default_args) for item in cfg]
    if not isinstance(cfg, dict):
        return cfg
    defaults = default_args if isinstance(default_args, dict) else {}
    obj_type = cfg['type'] if 'type' in cfg else defaults.get('type')
    scope = cfg.get('_scope_')
    if scope is not None and find_scope(registry, scope) is None:
        raise UnknownTypeError(f'_scope_={shown(scope)} is not a registry scope (known: '
                               f'{", ".join(known_scopes(registry))})')
    for key, value in cfg.items():
        if key != 'type':
            check_config_types(value, key)
    if obj_type is None:
        return cfg  # mmengine says that "type" is missing
    check_type_value(obj_type)
    if not isinstance(obj_type, str):
        return cfg
    with registry.switch_scope_and_registry(scope) as target:
        try:
            if isinstance(target, (BackboneRegistry, TimmModelRegistry)):
                found = target.get(obj_type)
            else:
                found = lookup(target, obj_type)
                if found is None and target is not registry and '.' not in obj_type and \
                        isinstance(registry, (BackboneRegistry, TimmModelRegistry)):
                    # another default scope is active (a runner's 'mmengine'): an unscoped name
                    # built through our registry still means ours
                    found = registry.get(obj_type)
        except UnknownTypeError as err:
            if shown(obj_type) in str(err):
                raise
            # a scope was followed: name the value as the config wrote it
            raise UnknownTypeError(f'type {shown(obj_type)}: {err}') from None
        if found is None:
            raise UnknownTypeError(f'type {shown(obj_type)} is not registered in the '
                                   f'{target.scope!r} registry ({NOT_A_PATH})')
    cfg = copy.copy(cfg)
    cfg['type'] = found
    return cfg


# ----- the registries ----------------------------------------------------------------------------
class BackboneRegistry(Registry):
    """A ``Registry`` that resolves only registered names (see the module docstring) and whose
    failed lookups raise a ``KeyError`` naming the value and suggesting close names."""

    def get(self, key):
        if not isinstance(key, str):
            raise TypeError(f'registry keys must be str, got {shown(key)}')
        scope, real_key = self.split_scope_key(key)
        if scope == self.scope and '.' in real_key:  # 'mmbackbones.mmseg.X': a host twin?
            twin_scope, name = self.split_scope_key(real_key)
            if twin_scope in HOST_TWINS and HOST_TWINS[twin_scope].twin(name) is not None:
                return HOST_TWINS[twin_scope].twin(name)
        elif scope in HOST_TWINS and HOST_TWINS[scope].twin(real_key) is not None:
            return HOST_TWINS[scope].twin(real_key)  # 'mmseg.X' forwarded by mmengine's root
        if scope is not None and scope != self.scope:
            return self._get_scoped(key, scope, real_key)
        self.import_from_location()
        registry = self
        while registry is not None:
            if real_key in registry.module_dict:
                return registry.module_dict[real_key]
            registry = registry.parent if scope is None else None
        # a dotted rest is named whole ('mmbackbones.os.path.join'), a plain name as written
        raise UnknownTypeError(self._unknown_type_message(real_key,
                                                          key if '.' in real_key else None))

    def _get_scoped(self, key: str, scope: str, real_key: str):
        target = find_scope(self, scope)
        if target is None:
            raise UnknownTypeError(
                f'Unknown model type {shown(key)}: {shown(scope)} is not a registry scope '
                f'(known: {", ".join(known_scopes(self))}); {NOT_A_PATH}')
        if isinstance(target, (BackboneRegistry, TimmModelRegistry)):
            try:
                return target.get(real_key)
            except UnknownTypeError as err:
                if key in str(err):
                    raise
                raise UnknownTypeError(f'{shown(key)}: {err}') from None
        found = lookup(target, real_key)
        if found is None:
            raise UnknownTypeError(f'Unknown model type {shown(key)}: {shown(real_key)} is not '
                                   f'registered in the {scope!r} registry ({NOT_A_PATH})')
        return found

    def build(self, cfg, *args, **kwargs):
        return super().build(resolve_cfg(cfg, self, kwargs.get('default_args')), *args, **kwargs)

    def __contains__(self, key) -> bool:
        try:
            return self.get(key) is not None
        except (KeyError, TypeError):
            return False

    def known_names(self):
        self.import_from_location()
        names = set(self.module_dict)
        parent = self.parent
        while parent is not None and parent is not MMENGINE_MODELS:
            names.update(parent.module_dict)
            parent = parent.parent
        return sorted(names)

    def _unknown_type_message(self, name: str, written: str = None) -> str:
        names = self.known_names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6) if len(name) < 200 else []
        lowered = {n.lower(): n for n in names}
        if name.lower() in lowered and lowered[name.lower()] not in close:
            close.insert(0, lowered[name.lower()])
        message = f"Unknown model type {shown(written or name)} in the {self.scope!r} registry."
        if close:
            message += ' Did you mean ' + ' or '.join(repr(c) for c in close) + '?'
        if '.' in name:
            message += f' ({NOT_A_PATH})'
        return f'{message} ({LIST_HINT}; timm models are written as type="timm.<model_name>")'


MODELS = BackboneRegistry(
    'model', parent=MMENGINE_MODELS, scope='mmbackbones', locations=MODEL_LOCATIONS)
BACKBONES = MODELS


class HostTwinRegistry(Registry):
    """The host twins of one library (scope ``'mmdet'`` or ``'mmseg'``).

    ``type='mmbackbones.mmseg.VisionTransformer'`` resolves from any registry: mmengine's root
    sends ``mmbackbones.*`` to :data:`MODELS`, which answers ``mmseg.<twin>`` from here. This
    registry is deliberately outside mmengine's registry tree (no parent): mmengine switches to a
    default scope by searching the tree for a registry of that scope, and must keep finding
    mmseg's own, never this one. A name that is not a twin is looked up as before (the host's).
    """

    def import_from_location(self) -> None:
        register_all_modules()

    def twin(self, name: str):
        """The twin registered as ``name``, or ``None``."""
        self.import_from_location()
        return self.module_dict.get(name)


HOST_TWINS = {scope: HostTwinRegistry('model', scope=scope) for scope in ('mmdet', 'mmseg')}


class AliasRegistry(BackboneRegistry):
    """A second scope over the modules of :data:`MODELS`: lookups are answered by ``MODELS``
    (nothing is registered here, so the two can never disagree)."""

    def __init__(self, target: Registry, scope: str):
        super().__init__(target.name, parent=MMENGINE_MODELS, scope=scope)
        self.target = target

    @property
    def module_dict(self):
        return self.target.module_dict

    def import_from_location(self) -> None:
        self.target.import_from_location()

    def get(self, key):
        if not isinstance(key, str):
            raise TypeError(f'registry keys must be str, got {shown(key)}')
        scope, real_key = self.split_scope_key(key)
        if scope is not None and scope != self.scope:
            return self._get_scoped(key, scope, real_key)
        try:
            return self.target.get(real_key)
        except UnknownTypeError as err:
            raise UnknownTypeError(f'{self.scope}.{cut(real_key, 200)}: {err}') from None

    def register_module(self, *args, **kwargs):
        raise TypeError(f'the {self.scope!r} scope is an alias of {self.target.scope!r}: '
                        f'register into mmbackbones.MODELS instead')


def _mmcls_alias():
    """A registry with scope 'mmcls' answering with the models of ``MODELS``.

    mmengine resolves ``'<scope>.Type'`` only among the root's direct children, so the alias is a
    child of the root. If a real mmcls registry is already in the tree (an old mmcls 1.0 rc), it
    is left alone and ``mmcls.X`` keeps meaning that package.
    """
    existing = MMENGINE_MODELS.children.get('mmcls')
    if existing is not None:
        return existing
    return AliasRegistry(MODELS, 'mmcls')


MMCLS_MODELS = _mmcls_alias()


class TimmModelRegistry(Registry):
    """Scope ``'timm'``: every timm model by name, with nothing registered in advance.

    ``get('convnext_tiny')`` returns a builder of ``TIMMBackbone(model_name='convnext_tiny', ...)``
    when timm knows the name (timm is imported on the first lookup, not when this module is), so
    ``dict(type='timm.convnext_tiny', out_indices=(1, 2, 3))`` builds from any scope. An unknown
    name (a dotted path included) raises a ``KeyError`` listing close timm names. Like the mmcls
    alias it is a direct child of mmengine's root, the only place mmengine looks for
    ``'<scope>.X'``.
    """

    def get(self, key):
        if not isinstance(key, str):
            raise TypeError(f'registry keys must be str, got {shown(key)}')
        name = key[len(self.scope) + 1:] if key.startswith(self.scope + '.') else key
        if name in self.module_dict:
            return self.module_dict[name]
        backbone = MODELS.get('TIMMBackbone')
        if not backbone.is_timm_model(name):
            raise UnknownTypeError(f'Unknown model type {shown(key)} in the {self.scope!r} '
                                   f'registry: ' + backbone.unknown_model_message(name))

        def build(**kwargs):
            if 'model_name' in kwargs:
                raise TypeError(f'type={self.scope}.{name!r} already names the timm model; '
                                f'remove model_name={shown(kwargs["model_name"])}')
            return backbone(model_name=name, **kwargs)

        build.__name__ = build.__qualname__ = name
        build.__module__ = backbone.__module__
        build.__doc__ = f'TIMMBackbone(model_name={name!r}, **kwargs)'
        return build

    def build(self, cfg, *args, **kwargs):
        return super().build(resolve_cfg(cfg, self, kwargs.get('default_args')), *args, **kwargs)

    def __contains__(self, key) -> bool:
        try:
            return self.get(key) is not None
        except (KeyError, ImportError, TypeError):
            return False


def _timm_scope():
    existing = MMENGINE_MODELS.children.get('timm')
    if existing is not None:
        return existing
    return TimmModelRegistry('model', parent=MMENGINE_MODELS, scope='timm')


TIMM_MODELS = _timm_scope()

__all__ = ['MODELS', 'BACKBONES', 'MMCLS_MODELS', 'TIMM_MODELS', 'HOST_TWINS', 'BackboneRegistry',
           'AliasRegistry', 'TimmModelRegistry', 'UnknownTypeError', 'register_all_modules',
           'resolve_cfg', 'lookup', 'find_scope', 'is_module_class']
