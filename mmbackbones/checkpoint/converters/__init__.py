"""Key converters: one small module per source format, each pure keys-in/keys-out.

A converter module (``timm_resnet.py``, ``torchvision_resnet.py``, ``detectron2_resnet.py``,
``timm_vit.py``, ``timm_swin.py`` (also original Microsoft Swin: mmdet's ``convert_weights=True``
files), ``mmseg_vit.py`` (mmseg's ``attn.attn.in_proj_*``), ...) defines

* ``is_<module>(state_dict)`` (or ``is_<module>_state_dict``): True when the keys are that layout;
* ``convert_<module>(state_dict)``: a new dict in mmbackbones (= mmpretrain) names;
* ``revert_<module>(state_dict)``: the way back, our names -> that layout (``convert --to``),
  raising ``ValueError`` naming what the layout cannot express.

:data:`CONVERTERS` lists them explicitly, in the order auto mode tries them: adding a format is
adding a file and one row. ``convert_state_dict`` picks
one from an explicit ``convert='timm'|'torchvision'|'mmpretrain'|'detectron2'|'openmmlab'``
(also ``'mmdet'``/``'mmseg'``) or, with
``'auto'``, from the keys (and keeps the dict unchanged when it already fits the model better).
"""
import importlib
import inspect
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import torch

__all__ = ['Converter', 'CONVERTERS', 'available_converters', 'detect_format',
           'convert_state_dict', 'get_converter', 'SOURCES']

# convert= values users write, and the module-name prefix each means
SOURCES = {'timm': 'timm', 'torchvision': 'torchvision', 'detectron2': 'detectron2',
           'd2': 'detectron2', 'mmpretrain': 'mmpretrain', 'mmcls': 'mmpretrain',
           'openmmlab': 'openmmlab', 'mmdet': 'openmmlab', 'mmseg': 'openmmlab'}
# ``convert='mmseg'`` also covers mmseg's ViT layout: a source may own several modules
NO_CONVERSION = (None, False, 'none', 'native', 'mmbackbones')


class Converter(NamedTuple):
    name: str  # module name, e.g. 'timm_resnet'
    source: str  # 'timm', 'torchvision', ...
    detect: Callable[[Mapping[str, torch.Tensor]], bool]
    convert: Callable[[Mapping[str, torch.Tensor]], Dict[str, torch.Tensor]]
    # the way back (``convert --to``): our names -> this layout; None when there is none
    revert: Optional[Callable[[Mapping[str, torch.Tensor]], Dict[str, torch.Tensor]]] = None


# (module, source): the order is the order auto mode tries them, the specific layouts before the
# generic "strip backbone." one. Plain torchvision and timm ResNets share one layout (reported as
# torchvision_resnet). One row per converter module of this package.
CONVERTERS = (
    ('detectron2_resnet', 'detectron2'),
    ('timm_resnest', 'timm'),  # before the plain ResNets: split-attention blocks
    ('timm_res2net', 'timm'),  # before the plain ResNets: Res2Net scale convs
    ('detrex_eva', 'detectron2'),  # before detectron2_vit: detrex's EVAViT / EVA02_ViT
    ('detectron2_vit', 'detectron2'),  # ViTDet: backbone.net.*, attn.rel_pos_h|w
    ('torchvision_resnet', 'torchvision'),
    ('timm_convnext', 'timm'),
    ('timm_hrnet', 'timm'),
    ('timm_darknet', 'timm'),  # before timm_cspnet, whose detector also matches cs3*
    ('timm_cspnet', 'timm'),
    ('timm_poolformer', 'timm'),
    ('segformer_mit', 'timm'),  # NVlabs' official (timm-style) and HF SegFormer MiT
    ('timm_regnet', 'timm'),
    ('timm_resnet', 'timm'),
    ('timm_swin', 'timm'),
    ('timm_efficientnet', 'timm'),  # MobileNetV2/V3, EfficientNet(V2)
    ('timm_eva02', 'timm'),  # before timm_beit/timm_vit: EVA-02's q_bias/v_bias, fc1_g/fc1_x
    ('timm_beit', 'timm'),  # before timm_vit: a BEiT has its keys too
    ('detectron2_swin', 'detectron2'),  # detectron2's/detrex's Swin (norm{i} outputs)
    ('detrex_convnext', 'detectron2'),  # detrex's (and the official) ConvNeXt
    ('detrex_focalnet', 'detectron2'),  # the official FocalNet classification files
    ('timm_focalnet', 'timm'),
    ('timm_vit', 'timm'),
    ('mmseg_vit', 'openmmlab'),  # mmseg's ViT (attn.attn.in_proj_*)
    ('openmmlab_resnet', 'openmmlab'),  # mmcv-era deep stems of mmdet/mmseg ResNetV1c/V1d
    ('mmdet_mobilenet_v2', 'openmmlab'),  # mmdet's named MobileNetV2 blocks
    ('mmpretrain_eva02', 'mmpretrain'),  # ViTEVA02's norm1/norm2/mlp names
    ('mmpretrain_classifier', 'mmpretrain'),
    ('official_pvt', 'timm'),  # whai362/PVT v1/v2 releases (mmdet's pvt_convert layout)
    ('timm_pvt_v2', 'timm'),
    ('mmseg_twins', 'openmmlab'),  # mmseg's Twins (layers.*, attn.attn.in_proj_*, norm_list)
    ('timm_twins', 'timm'),
    ('official_stdc', 'timm'),  # MichaelFan01/STDC-Seg's ImageNet STDC1/2 (features.*)
    ('timm_vgg', 'timm'),  # flat features.N + pre_logits ConvMlp
    ('torchvision_vgg', 'torchvision'),  # flat features.N (+ classifier.0/3/6)
    ('detrex_internimage', 'detectron2'),  # the official InternImage classification files
)
_CACHE: List[Converter] = []


def _load_converter(name: str, source: str) -> Converter:
    module = importlib.import_module(f'{__name__}.{name}')
    detect = getattr(module, f'is_{name}', None) or getattr(module, f'is_{name}_state_dict', None)
    convert = getattr(module, f'convert_{name}', None)
    if detect is None or convert is None:
        raise AttributeError(f'converter module {module.__name__} must define is_{name} and '
                             f'convert_{name}')
    return Converter(name, source, detect, convert, getattr(module, f'revert_{name}', None))


def available_converters() -> List[Converter]:
    """The converters of :data:`CONVERTERS` (imported once), in auto-mode order."""
    if not _CACHE:
        _CACHE[:] = [_load_converter(name, source) for name, source in CONVERTERS]
    return list(_CACHE)


def get_converter(name: str) -> Converter:
    """The converter of module ``name`` (``'timm_resnet'``, ...)."""
    for conv in available_converters():
        if conv.name == name:
            return conv
    raise KeyError(f'no converter {name!r}; known: '
                   f'{", ".join(c.name for c in available_converters())}')


def _source_of(convert: str) -> str:
    if not isinstance(convert, str) or convert.lower() not in SOURCES:
        allowed = ', '.join(repr(s) for s in ['auto', *SOURCES, 'none'])
        raise ValueError(f'convert must be one of {allowed}, got {convert!r}')
    return SOURCES[convert.lower()]


def detect_format(state_dict: Mapping[str, torch.Tensor],
                  source: Optional[str] = None) -> List[Converter]:
    """The converters whose layout the keys match (optionally of one source), best first."""
    out = []
    for conv in available_converters():
        if source is not None and conv.source != source:
            continue
        try:
            if conv.detect(state_dict):
                out.append(conv)
        except Exception:  # noqa: BLE001 - a detector must never break loading
            continue
    return out


def _call(convert: Callable, state_dict, target):
    """``convert(state_dict)``; converters whose layout leaves a choice only the model can make
    (timm's avg-down shortcut index) take the model's ``{key: shape}`` as ``target=``."""
    if target is not None and 'target' in inspect.signature(convert).parameters:
        return convert(state_dict, target=target)
    return convert(state_dict)


def _score(state_dict: Mapping[str, torch.Tensor], target: Mapping[str, Tuple[int, ...]]) -> int:
    return sum(1 for k, v in state_dict.items()
               if k in target and tuple(getattr(v, 'shape', ())) == tuple(target[k]))


def convert_state_dict(state_dict: Mapping[str, torch.Tensor],
                       convert='auto',
                       target: Optional[Mapping[str, Sequence[int]]] = None,
                       hint: Optional[str] = None
                       ) -> Tuple[Dict[str, torch.Tensor], Optional[str]]:
    """Convert keys to mmbackbones names.

    Args:
        state_dict: the checkpoint's weights.
        convert: ``'auto'`` (detect from the keys), a source (``'timm'``, ``'torchvision'``,
            ``'mmpretrain'``, ``'detectron2'``) or ``None``/``'none'`` (keep as is).
        target: ``{key: shape}`` of the model the weights are for. In auto mode a conversion is
            used only if more of its keys fit the model than of the unconverted dict.
        hint: a source known from where the checkpoint came from (a zoo entry), used in auto
            mode before detection.
    Returns:
        ``(new_state_dict, converter name or None)``.
    """
    if convert in NO_CONVERSION:
        return dict(state_dict), None
    if convert != 'auto':
        source = _source_of(convert)
        matches = detect_format(state_dict, source)
        if not matches:
            names = [c.name for c in available_converters() if c.source == source]
            first = ', '.join(list(state_dict)[:6])
            raise ValueError(f'convert={convert!r}: the keys match none of the {source} layouts '
                             f'known ({", ".join(names) or "none"}); the checkpoint starts with '
                             f'{first}')
        return dict(_call(matches[0].convert, state_dict, target)), matches[0].name
    candidates = detect_format(state_dict, _source_of(hint) if hint in SOURCES else None)
    if not candidates and hint is not None:
        candidates = detect_format(state_dict)
    best, best_name = dict(state_dict), None
    best_score = _score(state_dict, target) if target is not None else -1
    for conv in candidates:
        try:
            converted = dict(_call(conv.convert, state_dict, target))
        except Exception:  # noqa: BLE001 - in auto mode a converter that fails is not the one
            continue
        if target is None:
            return converted, conv.name
        score = _score(converted, target)
        # equal fit with fewer keys: what it dropped fitted nothing (a head, e.g. timm HRNet's)
        if score > best_score or (score == best_score and len(converted) < len(best)):
            best, best_name, best_score = converted, conv.name, score
    wrap = _wrapper_prefix(target) if target is not None else None
    if wrap and not any(k.startswith(wrap) for k in state_dict):
        # a wrapper (TIMMBackbone's ``timm_model.``, TorchvisionBackbone's ``model.``) holds the
        # library's own module: its raw checkpoint fits once the attribute name is prepended
        wrapped = {wrap + k: v for k, v in state_dict.items()}
        if _score(wrapped, target) > best_score:
            best, best_name = wrapped, f'wrapper prefix {wrap!r}'
    return best, best_name


def _wrapper_prefix(target: Mapping[str, Sequence[int]]) -> Optional[str]:
    """``'timm_model.'`` when every key of the model starts with that one name, else None."""
    heads = {k.split('.', 1)[0] for k in target if '.' in k}
    if len(heads) == 1 and all('.' in k for k in target):
        return heads.pop() + '.'
    return None
