"""The model registry of mmbackbones and its scopes.

``MODELS`` (alias ``BACKBONES``) is a child of mmengine's root ``MODELS`` with scope
``'mmbackbones'``. Model modules are found lazily through ``locations``, so
``MODELS.build(dict(type='ResNet'))`` works without importing ``mmbackbones.models`` first, and a
downstream registry (mmdet, mmseg) resolves ``'mmbackbones.ResNet'`` by importing this module.

``'mmcls'`` is a second scope over the same models, so configs written for mmcls/mmpretrain
(``type='mmcls.ResNet'``) build our modules once ``mmbackbones`` is imported (what
``custom_imports=dict(imports=['mmbackbones'])`` does).
"""
import difflib

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

# detectron2's ResNet front end registers 'Detectron2ResNet' from its integration module
MODEL_LOCATIONS = ['mmbackbones.models', 'mmbackbones.integrations.detectron2.resnet']
LIST_HINT = 'run `mmbackbones list` to see every registered type'


class UnknownTypeError(KeyError):
    """A ``KeyError`` whose message prints as written (``KeyError`` would print its repr)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class BackboneRegistry(Registry):
    """A ``Registry`` whose failed lookups raise a ``KeyError`` that suggests close names."""

    def get(self, key):
        found = super().get(key)
        if found is None and isinstance(key, str):
            scope, real_key = self.split_scope_key(key)
            if scope is None or scope == self.scope:
                raise UnknownTypeError(self._unknown_type_message(real_key))
        return found

    def __contains__(self, key) -> bool:
        try:
            return super().get(key) is not None
        except KeyError:
            return False

    def known_names(self):
        self.import_from_location()
        names = set(self._module_dict)
        parent = self.parent
        while parent is not None and parent is not MMENGINE_MODELS:
            names.update(parent._module_dict)
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


def _mmcls_alias():
    """A registry with scope 'mmcls' holding the same models as ``MODELS``.

    mmengine resolves ``'<scope>.Type'`` only among the root's direct children, so the alias is a
    child of the root that shares ``MODELS``' module table. If a real mmcls registry is already
    in the tree (an old mmcls 1.0 rc), it is left alone and ``mmcls.X`` keeps meaning that package.
    """
    existing = MMENGINE_MODELS._children.get('mmcls')
    if existing is not None:
        return existing
    alias = BackboneRegistry('model', parent=MMENGINE_MODELS, scope='mmcls',
                             locations=MODEL_LOCATIONS)
    alias._module_dict = MODELS._module_dict
    return alias


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
        if name in self._module_dict:
            return self._module_dict[name]
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
    existing = MMENGINE_MODELS._children.get('timm')
    if existing is not None:
        return existing
    return TimmModelRegistry('model', parent=MMENGINE_MODELS, scope='timm')


TIMM_MODELS = _timm_scope()

__all__ = ['MODELS', 'BACKBONES', 'MMCLS_MODELS', 'TIMM_MODELS', 'BackboneRegistry',
           'UnknownTypeError']
