"""detectron2's config side: builders in its ``BACKBONE_REGISTRY`` and the config keys they read.

The contract itself (``output_shape``, ``ShapeSpec``, padding, ``Detectron2Backbone``) is
:mod:`.contract`. :func:`register_all` puts builders into detectron2's ``BACKBONE_REGISTRY``:

* ``build_mmbackbones_backbone`` / ``build_mmbackbones_fpn_backbone``: type and arguments from
  ``cfg.MODEL.MMBACKBONES`` (see :func:`add_mmbackbones_config`);
* ``build_mmbackbones_<type>_backbone`` (+ ``_fpn_``) for every registered backbone type
  (``build_mmbackbones_resnet_backbone``, ...);
* ``build_<timm_name>_backbone`` / ``build_<timm_name>_fpn_backbone`` for timm models, the naming
  of the detectron2_timm project (``build_resnet50_backbone``,
  ``build_convnext_tiny_fpn_backbone``), reading its ``MODEL.BACKBONE.CONFIG`` keys with its
  meanings (:mod:`.timm_modules`: ``OUT_FEATURES`` are timm module names).

detectron2 is imported only inside the functions that need it.
"""
import inspect
import re
import types
from typing import Callable, Iterable, List, Mapping, Optional, Sequence, Union

from ...utils.validation import to_plain

MMB_PREFIX = 'build_mmbackbones'


def _detectron2():
    """detectron2's ``BACKBONE_REGISTRY``, or ``None`` when detectron2 is not importable."""
    try:
        from detectron2.modeling import BACKBONE_REGISTRY
    except ImportError:
        return None
    return types.SimpleNamespace(BACKBONE_REGISTRY=BACKBONE_REGISTRY)


def detectron2_available() -> bool:
    return _detectron2() is not None


# ----- config helpers --------------------------------------------------------------------------
def _get(node, path: str, default=None):
    """``node.A.B`` (attribute or key access), ``default`` when absent."""
    for part in path.split('.'):
        if node is None:
            return default
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:  # attribute access also covers mappings that keep some keys as attributes
            node = getattr(node, part, None)
    return default if node is None else node


def _node(cfg, **defaults):
    """A child node of ``cfg``'s class that accepts new keys when merged from yaml."""
    cls = type(cfg)
    # yacs/detectron2 CfgNode: new_allowed lets merge_from_file add keys under this node
    node = cls(new_allowed=True) if hasattr(cls, 'is_new_allowed') else cls()
    for key, value in defaults.items():
        setattr(node, key, value)
    return node


def add_mmbackbones_config(cfg) -> None:
    """Add, in place, the keys the builders of :func:`register_all` read (detectron2 ``CfgNode``).

    ``cfg.MODEL.MMBACKBONES`` (mmbackbones' own node):

    * ``TYPE``: backbone type (``'ResNet'``, ``'mmcls.ResNet'``, ``'TIMMBackbone'``);
    * ``ARGS``: its keyword arguments (a node that takes any key from yaml; for keys new to the
      config on the command line use :func:`merge_from_list`);
    * ``OUT_FEATURES``: output names to return (``[]``: all);
    * ``RENAME``: ``{our_name: new_name}``;
    * ``SIZE_DIVISIBILITY``: ``-1`` keeps the backbone's own value.

    detectron2_timm's keys, when absent (read by the ``build_<timm_name>[_fpn]_backbone``
    builders, see :mod:`.timm_modules`): ``cfg.MODEL.BACKBONE.CONFIG`` with ``OUT_FEATURES``
    (timm module names), ``REMAPS``, ``STRIDES``, ``CHANNELS``, ``REMOVE_LAYERS``,
    ``FREEZE_LAYERS``, ``REPLACE_LAYERS``, ``PRETRAINED``, and ``cfg.INPUT.FIXED_INPUT_SIZE``
    (default ``False`` here; detectron2_timm's own default is ``True``).
    ``MODEL.BACKBONE.FREEZE_AT`` is detectron2's meaning for the ``build_mmbackbones_*``
    builders and detectron2_timm's for the timm-named ones.
    """
    cfg.MODEL.MMBACKBONES = _node(cfg, TYPE='ResNet', ARGS=_node(cfg), OUT_FEATURES=[],
                                  RENAME=_node(cfg), SIZE_DIVISIBILITY=-1)
    if _get(cfg, 'MODEL.BACKBONE') is not None and _get(cfg, 'MODEL.BACKBONE.CONFIG') is None:
        cfg.MODEL.BACKBONE.CONFIG = _node(cfg, OUT_FEATURES=[], REMAPS=[], STRIDES=[],
                                          CHANNELS=[], REMOVE_LAYERS=[], FREEZE_LAYERS=[],
                                          REPLACE_LAYERS=[[]], PRETRAINED=False)
    if _get(cfg, 'INPUT') is not None and 'FIXED_INPUT_SIZE' not in cfg.INPUT:
        cfg.INPUT.FIXED_INPUT_SIZE = False


def merge_from_list(cfg, opts: Sequence) -> None:
    """``cfg.merge_from_list(opts)`` that also accepts keys new to ``MODEL.MMBACKBONES.ARGS`` /
    ``.RENAME`` (``['MODEL.MMBACKBONES.ARGS.depth', '18']``): yacs refuses keys a config does not
    have yet, so they are added first with the value's type."""
    opts = list(opts)
    if len(opts) % 2:
        raise ValueError(f'opts must be KEY VALUE pairs, got an odd number: {opts}')
    for key, value in zip(opts[0::2], opts[1::2]):
        for open_node in ('MODEL.MMBACKBONES.ARGS.', 'MODEL.MMBACKBONES.RENAME.'):
            if not key.startswith(open_node):
                continue
            node = _get(cfg, open_node[:-1])
            if node is None:
                raise KeyError(f'{key}: cfg has no {open_node[:-1]}; call '
                               f'add_mmbackbones_config(cfg) first')
            parts = key[len(open_node):].split('.')
            for part in parts[:-1]:
                if part not in node:
                    setattr(node, part, _node(cfg))
                node = node[part]
            if parts[-1] not in node:
                setattr(node, parts[-1], type(cfg)._decode_cfg_value(value)
                        if hasattr(type(cfg), '_decode_cfg_value') else value)
    cfg.merge_from_list(opts)


def _to_dict(node) -> dict:
    if node is None:
        return {}
    if isinstance(node, Mapping):
        return {k: _to_dict(v) if isinstance(v, Mapping) else to_plain(v)
                for k, v in node.items()}
    return dict(vars(node))


def _snake(name: str) -> str:
    return re.sub(r'[^0-9a-zA-Z_]', '_', name).lower()


def _accepts(cls, arg: str) -> bool:
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False
    return arg in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _native_config_args(cfg, cls, type_: str, args: dict) -> dict:
    """Backbone arguments from detectron2's ``MODEL.BACKBONE.FREEZE_AT`` and
    ``MODEL.BACKBONE.CONFIG.PRETRAINED``; detectron2_timm's output keys are refused here."""
    freeze_at = int(_get(cfg, 'MODEL.BACKBONE.FREEZE_AT', 0))
    if freeze_at > 0 and 'frozen_stages' not in args:  # detectron2: <= 0 freezes nothing
        if not _accepts(cls, 'frozen_stages'):
            raise ValueError(f'MODEL.BACKBONE.FREEZE_AT={freeze_at} cannot apply: {type_} has no '
                             f'frozen_stages; set MODEL.BACKBONE.FREEZE_AT=0')
        args['frozen_stages'] = int(freeze_at) - 1  # detectron2: 1 the stem, 2 stem + stage 1
    if _get(cfg, 'MODEL.BACKBONE.CONFIG.PRETRAINED', False):
        # Only the wrappers take a True/False flag; a native family's pretrained= (mmdet's
        # spelling) is a checkpoint path.
        from ...models.wrapper import WrapperBackbone
        if not (isinstance(cls, type) and issubclass(cls, WrapperBackbone)):
            raise ValueError(f'MODEL.BACKBONE.CONFIG.PRETRAINED=True cannot apply: {type_} has no '
                             f'pretrained flag (only timm/torchvision models have published '
                             f'weights to fetch by name); load weights with ARGS.init_cfg instead')
        args.setdefault('pretrained', True)
    timm_keys = [k for k in ('OUT_FEATURES', 'REMAPS', 'STRIDES', 'CHANNELS', 'REMOVE_LAYERS',
                             'FREEZE_LAYERS')
                 if list(_get(cfg, f'MODEL.BACKBONE.CONFIG.{k}', []) or [])]
    if timm_keys:
        raise ValueError(f'MODEL.BACKBONE.CONFIG.{timm_keys} are detectron2_timm\'s keys (timm '
                         f'module names), read by the build_<timm_name>[_fpn]_backbone builders; '
                         f'{type_} is built by a build_mmbackbones_* builder, which takes '
                         f'MODEL.MMBACKBONES.OUT_FEATURES / RENAME (our output names)')
    return args


def _fixed_input_outputs(cfg, backbone) -> dict:
    """``padding_constraints`` from ``INPUT.FIXED_INPUT_SIZE``: pad each batch to the square
    input side the model was built for."""
    if not _get(cfg, 'INPUT.FIXED_INPUT_SIZE', False):
        return {}
    side = _fixed_input_side(backbone)
    if side is None:
        raise ValueError(f'INPUT.FIXED_INPUT_SIZE=True cannot apply: '
                         f'{type(backbone).__name__} declares no fixed input size')
    return {'padding_constraints': {'square_size': side}}


def _fixed_input_side(backbone) -> Optional[int]:
    """The square input side a model was built for (timm's ``pretrained_cfg`` / ``img_size``)."""
    for module in backbone.modules():
        size = getattr(module, 'img_size', None)
        if size is None:
            cfg = getattr(module, 'pretrained_cfg', None)
            size = cfg.get('input_size', [None])[-1] if isinstance(cfg, dict) and \
                cfg.get('fixed_input_size') else None
        if isinstance(size, (list, tuple)):
            size = max(size)
        if isinstance(size, int):
            return size
    return None


def _backbone_from_cfg(cfg, input_shape, type_: Optional[str]):
    """Build the adapted backbone a detectron2 builder returns."""
    from ...builder import build_backbone
    from ...registry import MODELS
    args = _to_dict(_get(cfg, 'MODEL.MMBACKBONES.ARGS', {}))
    type_ = type_ or _get(cfg, 'MODEL.MMBACKBONES.TYPE')
    if not type_:
        raise KeyError('cfg.MODEL.MMBACKBONES.TYPE is not set (call add_mmbackbones_config(cfg) '
                       'and set it, e.g. "ResNet")')
    cls = MODELS.get(type_ if '.' in type_ else f'{MODELS.scope}.{type_}')
    args = _native_config_args(cfg, cls, type_, args)
    in_ch = getattr(input_shape, 'channels', None)
    if in_ch is not None and 'in_channels' not in args and _accepts(cls, 'in_channels'):
        args['in_channels'] = int(in_ch)
    backbone = build_backbone(dict(type=type_, **args))
    div = _get(cfg, 'MODEL.MMBACKBONES.SIZE_DIVISIBILITY', -1)
    out_features = list(_get(cfg, 'MODEL.MMBACKBONES.OUT_FEATURES', []) or [])
    rename = _to_dict(_get(cfg, 'MODEL.MMBACKBONES.RENAME', {}))
    from .contract import Detectron2Backbone
    return Detectron2Backbone(backbone, out_features=out_features or None, rename=rename or None,
                              size_divisibility=None if div is None or div < 0 else int(div),
                              **_fixed_input_outputs(cfg, backbone))


def _timm_modules_from_cfg(cfg, input_shape, model_name: str):
    """detectron2_timm's backbone for ``model_name`` from ``MODEL.BACKBONE.CONFIG`` (its keys,
    its meanings: :class:`.timm_modules.TimmModuleBackbone`)."""
    own = [k for k in ('ARGS', 'OUT_FEATURES', 'RENAME') if _get(cfg, f'MODEL.MMBACKBONES.{k}')]
    if own:
        raise ValueError(f'MODEL.MMBACKBONES.{own} apply to the build_mmbackbones_* builders; '
                         f'build_{_snake(model_name)}_backbone reads detectron2_timm\'s '
                         f'MODEL.BACKBONE.CONFIG keys')
    config = 'MODEL.BACKBONE.CONFIG.'
    replace = [r for r in (_get(cfg, config + 'REPLACE_LAYERS', []) or []) if list(r)]
    if replace:
        raise ValueError(f'{config}REPLACE_LAYERS={replace}: detectron2_timm\'s replacement '
                         f'layers (its LAYER_REGISTRY) are not provided; remove the key')
    strides = [int(s) for s in (_get(cfg, config + 'STRIDES', []) or [])]
    img_size = None
    if _get(cfg, 'INPUT.FIXED_INPUT_SIZE', False):
        # detectron2_timm: the largest train sizes, cut to a multiple of the largest stride
        step = max(strides or [32])
        low = max(_sizes(_get(cfg, 'INPUT.MIN_SIZE_TRAIN', (800, ))))
        high = int(_get(cfg, 'INPUT.MAX_SIZE_TRAIN', 1333))
        img_size = (low - low % step, high - high % step)
    from .timm_modules import TimmModuleBackbone
    return TimmModuleBackbone(
        model_name, out_features=list(_get(cfg, config + 'OUT_FEATURES', []) or []),
        remaps=list(_get(cfg, config + 'REMAPS', []) or []), strides=strides,
        channels=[int(c) for c in (_get(cfg, config + 'CHANNELS', []) or [])],
        remove_layers=list(_get(cfg, config + 'REMOVE_LAYERS', []) or []),
        freeze_at=int(_get(cfg, 'MODEL.BACKBONE.FREEZE_AT', 0)),
        freeze_layers=list(_get(cfg, config + 'FREEZE_LAYERS', []) or []),
        pretrained=bool(_get(cfg, config + 'PRETRAINED', False)), img_size=img_size,
        in_channels=int(getattr(input_shape, 'channels', None) or 3))


def _sizes(value) -> List[int]:
    return [int(value)] if isinstance(value, (int, float)) else [int(v) for v in value]


def _with_detectron2_fpn(cfg, bottom_up):
    """detectron2's own FPN on top of ``bottom_up``, read from ``cfg.MODEL.FPN`` as detectron2's
    ``build_resnet_fpn_backbone`` does."""
    try:
        from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool
    except ImportError as e:
        raise ImportError('the *_fpn_backbone builders use detectron2\'s FPN; install '
                          'detectron2') from e
    in_features = list(_get(cfg, 'MODEL.FPN.IN_FEATURES', [])) or list(bottom_up._out_features)
    return FPN(bottom_up=bottom_up, in_features=in_features,
               out_channels=_get(cfg, 'MODEL.FPN.OUT_CHANNELS', 256),
               norm=_get(cfg, 'MODEL.FPN.NORM', ''), top_block=LastLevelMaxPool(),
               fuse_type=_get(cfg, 'MODEL.FPN.FUSE_TYPE', 'sum'))


def _make_builder(name: str, type_: Optional[str], fpn: bool,
                  timm_model: Optional[str] = None) -> Callable:
    def builder(cfg, input_shape=None):
        if timm_model is not None:
            bottom_up = _timm_modules_from_cfg(cfg, input_shape, timm_model)
        else:
            bottom_up = _backbone_from_cfg(cfg, input_shape, type_)
        return _with_detectron2_fpn(cfg, bottom_up) if fpn else bottom_up

    builder.__name__ = builder.__qualname__ = name
    if timm_model is not None:
        what = f'timm {timm_model!r} (detectron2_timm\'s MODEL.BACKBONE.CONFIG keys)'
    else:
        what = f'type={type_!r}' if type_ else 'cfg.MODEL.MMBACKBONES.TYPE'
    builder.__doc__ = (f'detectron2 backbone builder: mmbackbones {what}'
                       f'{" + detectron2 FPN" if fpn else ""}.')
    return builder


def timm_builder_names(model_name: str) -> List[str]:
    """``['build_<name>_backbone', 'build_<name>_fpn_backbone']`` (detectron2_timm's naming)."""
    name = _snake(model_name)
    return [f'build_{name}_backbone', f'build_{name}_fpn_backbone']


def native_builder_names(type_name: str) -> List[str]:
    name = _snake(type_name)
    return [f'{MMB_PREFIX}_{name}_backbone', f'{MMB_PREFIX}_{name}_fpn_backbone']


def _native_types() -> List[str]:
    from ...models.base import BaseBackbone
    from ...registry import MODELS
    out = []
    for name in MODELS.known_names():
        cls = MODELS.get(f'{MODELS.scope}.{name}')
        if inspect.isclass(cls) and issubclass(cls, BaseBackbone) and name != 'BackboneWithNeck':
            out.append(name)
    return out


def _timm_names(timm_models) -> List[str]:
    if timm_models is None:
        return []
    import timm
    available = timm.list_models()
    if timm_models == 'all':
        return list(available)
    if isinstance(timm_models, str):
        timm_models = [timm_models]
    known = set(available)
    unknown = [m for m in timm_models if m not in known]
    if unknown:
        raise KeyError(f'unknown timm models {unknown} (see timm.list_models())')
    return list(timm_models)


def _contains(registry, name: str) -> bool:
    try:
        return name in registry
    except TypeError:
        return name in getattr(registry, '_obj_map', {})


def register_all(registry=None, timm_models: Union[str, Iterable[str], None] = 'all',
                 native: bool = True) -> List[str]:
    """Register mmbackbones' builders into detectron2's ``BACKBONE_REGISTRY``.

    Args:
        registry: the registry to fill; default ``detectron2.modeling.BACKBONE_REGISTRY``
            (imported now: ``ImportError`` when detectron2 is not installed). Anything with
            detectron2's ``register(fn)`` (the name is ``fn.__name__``) works.
        timm_models: ``'all'`` (every name in ``timm.list_models()``), a list of names, or
            ``None`` for none.
        native: register the generic ``build_mmbackbones[_fpn]_backbone`` and one pair per
            registered backbone type.

    Returns the names registered by this call. Names already in the registry are skipped, so a
    second call is harmless.
    """
    if registry is None:
        d2 = _detectron2()
        if d2 is None:
            raise ImportError('register_all() registers into detectron2\'s BACKBONE_REGISTRY, but '
                              'detectron2 is not installed; install it, or pass registry=')
        registry = d2.BACKBONE_REGISTRY
    if not callable(getattr(registry, 'register', None)):
        raise TypeError(f'registry must have a register(fn) method (detectron2 Registry), got '
                        f'{type(registry).__name__}')
    builders = []
    if native:
        builders.append(_make_builder(f'{MMB_PREFIX}_backbone', None, False))
        builders.append(_make_builder(f'{MMB_PREFIX}_fpn_backbone', None, True))
        for type_name in _native_types():
            plain, fpn = native_builder_names(type_name)
            builders.append(_make_builder(plain, type_name, False))
            builders.append(_make_builder(fpn, type_name, True))
    for model_name in _timm_names(timm_models):
        plain, fpn = timm_builder_names(model_name)
        builders.append(_make_builder(plain, None, False, timm_model=model_name))
        builders.append(_make_builder(fpn, None, True, timm_model=model_name))
    registered = []
    for fn in builders:
        if _contains(registry, fn.__name__):
            continue
        registry.register(fn)
        registered.append(fn.__name__)
    return registered


__all__ = ['register_all', 'add_mmbackbones_config', 'merge_from_list',
           'detectron2_available', 'timm_builder_names', 'native_builder_names']
