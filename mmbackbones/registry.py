"""The model registry of mmbackbones, its scopes, and the one place that registers modules.

``MODELS`` (alias ``BACKBONES``) is a child of mmengine's root ``MODELS`` with scope
``'mmbackbones'``. Importing this module (``import mmbackbones`` does) only creates the
registries: it imports mmengine, not torch or the model files.

Registration is explicit: :func:`register_all_modules` registers everything, once. It is called

* lazily by the registries themselves: mmengine calls ``import_from_location()`` (the
  ``locations`` hook) before every lookup, so ``MODELS.build(dict(type='ResNet'))`` and a
  downstream registry's ``'mmbackbones.ResNet'`` work without importing ``mmbackbones.models``;
* by ``BaseBackbone.__init__``, so a backbone class used directly (``from
  mmbackbones.models.backbones.resnet import ResNet``) also loads checkpoints safely and finds
  ``FrozenBN``;
* by anyone who wants it up front (``mmbackbones.register_all_modules()``).

``'mmcls'`` is a second scope over the same models, so configs written for mmcls/mmpretrain
(``type='mmcls.ResNet'``) build our modules once ``mmbackbones`` is imported (what
``custom_imports=dict(imports=['mmbackbones'])`` does). ``'timm'`` resolves any timm model name.
Only mmengine's public registry API is used (``register_module``, ``get``, ``module_dict``,
``children``, ``import_from_location``).
"""
import difflib
import importlib

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

# detectron2's ResNet front end registers 'Detectron2ResNet' from its integration module
# mmbackbones.compat registers the host twins (HOST_TWINS)
MODEL_LOCATIONS = ['mmbackbones.models', 'mmbackbones.integrations.detectron2.resnet',
                   'mmbackbones.compat']
LIST_HINT = 'run `mmbackbones list` to see every registered type'


class UnknownTypeError(KeyError):
    """A ``KeyError`` whose message prints as written (``KeyError`` would print its repr)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class _RegistrationState:
    done = False
    running = False


def register_all_modules() -> None:
    """Register every mmbackbones module, once (later calls return at once).

    * every backbone family and neck into :data:`MODELS` (importing :data:`MODEL_LOCATIONS`;
      timm and torchvision are imported only when their wrappers are used);
    * the norm layers ``FrozenBN``/``FrozenBatchNorm2d``/``LN2d``/``LayerNorm2d`` into mmengine's
      root ``MODELS``, next to mmcv's ``BN``/``GN``, so ``norm_cfg=dict(type='FrozenBN')`` builds
      from every scope (mmdet's, mmseg's); a name already taken there is left alone;
    * safe checkpoint loading (``weights_only``/safetensors) as mmengine's ``CheckpointLoader``
      schemes and ``Pretrained`` initializer (``mmbackbones.checkpoint.loading.register``).
    """
    state = _RegistrationState
    if state.done or state.running:  # running: a lookup made while the model files import
        return
    state.running = True
    try:
        for location in MODEL_LOCATIONS:
            importlib.import_module(location)
        from .checkpoint.loading import register as register_safe_loading
        from .models.layers.layer_norm2d import ROOT_NORM_LAYERS as layer_norms
        from .models.layers.norm import ROOT_NORM_LAYERS as frozen_norms

        for name, module in {**frozen_norms, **layer_norms}.items():
            if name not in MMENGINE_MODELS.module_dict:
                MMENGINE_MODELS.register_module(name, module=module)
        register_safe_loading()
        state.done = True
    finally:
        state.running = False


class BackboneRegistry(Registry):
    """A ``Registry`` whose failed lookups raise a ``KeyError`` that suggests close names, and
    whose ``locations`` hook is :func:`register_all_modules`."""

    def import_from_location(self) -> None:
        register_all_modules()

    def get(self, key):
        if isinstance(key, str):
            scope, rest = self.split_scope_key(key)
            if scope == self.scope and '.' in rest:  # 'mmbackbones.mmseg.X': a host twin
                key = rest
                scope, rest = self.split_scope_key(rest)
            twin = HOST_TWINS[scope].twin(rest) if scope in HOST_TWINS else None
            if twin is not None:
                return twin
        found = super().get(key)
        if found is None and isinstance(key, str):
            scope, real_key = self.split_scope_key(key)
            if scope is None or scope == self.scope:
                raise UnknownTypeError(self._unknown_type_message(real_key))
        return found

    def __contains__(self, key) -> bool:
        try:
            return self.get(key) is not None
        except KeyError:
            return False

    def known_names(self):
        self.import_from_location()
        names = set(self.module_dict)
        parent = self.parent
        while parent is not None and parent is not MMENGINE_MODELS:
            names.update(parent.module_dict)
            parent = parent.parent
        return sorted(names)

    def _unknown_type_message(self, name: str) -> str:
        names = self.known_names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        lowered = {n.lower(): n for n in names}
        if name.lower() in lowered and lowered[name.lower()] not in close:
            close.insert(0, lowered[name.lower()])
        message = f"Unknown model type {name!r} in the {self.scope!r} registry."
        if close:
            message += ' Did you mean ' + ' or '.join(repr(c) for c in close) + '?'
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
    mmseg's own, never this one.
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

    def get(self, key):
        scope, real_key = self.split_scope_key(key) if isinstance(key, str) else (None, key)
        if scope is None or scope == self.scope:
            return self.target.get(real_key)
        return super().get(key)

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
    name raises a ``KeyError`` listing close timm names. Like the mmcls alias it is a direct
    child of mmengine's root, the only place mmengine looks for ``'<scope>.X'``.
    """

    def get(self, key):
        if not isinstance(key, str):
            raise TypeError(f'registry keys must be str, got {key!r}')
        name = key[len(self.scope) + 1:] if key.startswith(self.scope + '.') else key
        if name in self.module_dict:
            return self.module_dict[name]
        backbone = MODELS.get('TIMMBackbone')
        if not backbone.is_timm_model(name):
            raise UnknownTypeError(f'Unknown model type {key!r} in the {self.scope!r} registry: '
                                   + backbone.unknown_model_message(name))

        def build(**kwargs):
            if 'model_name' in kwargs:
                raise TypeError(f'type={self.scope}.{name!r} already names the timm model; '
                                f'remove model_name={kwargs["model_name"]!r}')
            return backbone(model_name=name, **kwargs)

        build.__name__ = build.__qualname__ = name
        build.__module__ = backbone.__module__
        build.__doc__ = f'TIMMBackbone(model_name={name!r}, **kwargs)'
        return build

    def __contains__(self, key) -> bool:
        try:
            return self.get(key) is not None
        except (KeyError, ImportError):
            return False


def _timm_scope():
    existing = MMENGINE_MODELS.children.get('timm')
    if existing is not None:
        return existing
    return TimmModelRegistry('model', parent=MMENGINE_MODELS, scope='timm')


TIMM_MODELS = _timm_scope()

__all__ = ['MODELS', 'BACKBONES', 'MMCLS_MODELS', 'TIMM_MODELS', 'HOST_TWINS',
           'BackboneRegistry', 'AliasRegistry', 'UnknownTypeError', 'register_all_modules']
