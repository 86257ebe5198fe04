"""Writing converted checkpoints: ``convert_checkpoint`` (the ``mmbackbones convert`` command
in ``mmbackbones/cli.py`` is its front end).

``convert_checkpoint(src, dst)`` reads a checkpoint safely
(path, URL or zoo name), take ``--prefix``, convert the keys to mmbackbones names
(``--convert auto|timm|torchvision|mmpretrain|detectron2``) and write ``DST``: safetensors unless
``DST`` ends in ``.pth``/``.pt``. With ``--model`` (a config file or ``'ResNet depth=50'``-style
dict) the result is loaded into that backbone first, so a conversion that does not fit is caught
before anything is written. ``DST`` is written to a temporary file in its folder and renamed
into place, so ``convert a.pth a.pth`` is safe (the source stays mapped until the end).
"""
import json
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

__all__ = ['convert_checkpoint', 'kept_and_dropped', 'format_kept_and_dropped',
           'convert_checkpoint_to', 'to_native', 'TARGETS']


def _build_model(model):
    from ..builder import build_backbone, build_backbone_from_config
    if isinstance(model, dict):
        return build_backbone(model)
    if isinstance(model, str) and os.path.isfile(model):
        return build_backbone_from_config(model)
    if isinstance(model, str):
        return build_backbone(json.loads(model))
    return model  # an nn.Module


def _same_tensor(value, written_ids, written_storages) -> bool:
    if id(value) in written_ids:
        return True
    if not isinstance(value, torch.Tensor) or value.numel() == 0 or value.is_meta:
        return False
    return value.untyped_storage().data_ptr() in written_storages


def kept_and_dropped(original: Dict[str, torch.Tensor], written: Dict[str, torch.Tensor]
                     ) -> Tuple['OrderedDict[str, int]', 'OrderedDict[str, int]', List[str]]:
    """What a conversion kept and left out of a file, by the file's top-level names.

    ``(kept, dropped, left_out)``: ``{name: number of tensors in the file}`` for the top-level
    names (``backbone``, ``decode_head``, ``fc``, ...) some of whose tensors reach ``written``
    (the same tensor, or one sharing its storage, under any name) or whose name ``written`` still
    has; ``dropped`` for the others; ``left_out``: the keys of kept names that did not reach
    ``written``, when they outnumber the tensors the converter made anew (a classifier inside
    ``backbone.``; a reshaped or merged tensor is not counted as left out).
    """
    written_ids = {id(v) for v in written.values()}
    written_storages = {v.untyped_storage().data_ptr() for v in written.values()
                        if isinstance(v, torch.Tensor) and v.numel() and not v.is_meta}
    written_heads = {k.split('.')[0] for k in written}
    totals, missing = OrderedDict(), OrderedDict()
    for key, value in original.items():
        head = key.split('.')[0]
        totals[head] = totals.get(head, 0) + 1
        if not _same_tensor(value, written_ids, written_storages):
            missing.setdefault(head, []).append(key)
    kept, dropped = OrderedDict(), OrderedDict()
    for head, total in totals.items():
        whole = len(missing.get(head, ())) == total and head not in written_heads
        (dropped if whole else kept)[head] = total
    source_ids = {id(v) for v in original.values()}
    source_storages = {v.untyped_storage().data_ptr() for v in original.values()
                       if isinstance(v, torch.Tensor) and v.numel() and not v.is_meta}
    made = sum(1 for v in written.values() if not _same_tensor(v, source_ids, source_storages))
    inner = [k for head in kept for k in missing.get(head, ())]
    return kept, dropped, inner if len(inner) > made else []


def _describe(counts: Dict[str, int]) -> str:
    return ', '.join(f'{name}.* ({n})' for name, n in counts.items())


def _keep_all(read, converted: Dict[str, torch.Tensor], dropped, add_prefix: Optional[str]
              ) -> Dict[str, torch.Tensor]:
    """The converted tensors under the prefix they came from (``add_prefix`` if given), plus
    every tensor of the dropped top-level names under its own key."""
    prefix = add_prefix if add_prefix is not None else (
        read.prefix or ('backbone' if any(k.startswith('backbone.') for k in read.original)
                        and 'backbone' not in dropped else ''))
    dotted = prefix if not prefix or prefix.endswith('.') else prefix + '.'
    out = {dotted + k: v for k, v in converted.items()}
    for key, value in read.original.items():
        if key.split('.')[0] in dropped:
            if key in out:
                raise ValueError(f'--keep-all: {key!r} is both a converted key and a key of the '
                                 f'file; pass --add-prefix to put the converted ones elsewhere')
            out[key] = value
    return out


def convert_checkpoint(src: str,
                       dst: str,
                       convert='auto',
                       prefix: Optional[str] = None,
                       model=None,
                       strict: Optional[bool] = None,
                       add_prefix: Optional[str] = None,
                       allowed_globals=None,
                       keep_all: bool = False) -> dict:
    """Convert ``src`` to mmbackbones names and write ``dst``.

    Args:
        src: a local path, URL or zoo name (``timm://resnet50``).
        dst: output file; ``.safetensors`` (default format) or ``.pth``/``.pt`` (torch.save of
            ``{'state_dict': ..., 'meta': ...}``).
        convert: ``'auto'``, ``'timm'``, ``'torchvision'``, ``'mmpretrain'``, ``'detectron2'`` or
            ``None``.
        prefix: keep only the keys under this prefix (``'backbone'``).
        model: a backbone (module, config dict, config file or JSON dict string) to check the
            result against before anything is written: shapes must fit and, with the default
            ``strict=None``, no tensor of the backbone may be left out and no tensor of its
            modules dropped (named exceptions: heads, DCN offsets, ...; see
            :func:`~mmbackbones.checkpoint.state.check_state_dict_fits`).
        strict: ``True``: every key must match; ``False``: only shapes are checked.
        add_prefix: written keys get this prefix (``'backbone.'`` for an mmdet-style file).
        keep_all: a whole-model file (an mmseg/mmdet/mmpretrain checkpoint): also write every
            top-level module the conversion leaves out (``decode_head``, ``auxiliary_head``,
            ``neck``, ``head``, ...) unchanged, and the converted backbone under the prefix it
            came from (``backbone.``; ``add_prefix`` overrides it).
    Returns:
        a summary dict: ``dst``, ``converter``, ``num_tensors``, ``num_source_tensors``,
        ``kept``/``dropped`` (``{top-level name: tensors in the file}``), ``left_out`` (keys
        inside kept names the converter left out), ``keep_all`` and, with ``model``, ``report``.
    """
    from .io import save_file
    from .loading import read_state_dict
    from .state import load_state_dict
    target = _build_model(model) if model is not None else None
    read = read_state_dict(src, prefix=prefix, convert=convert, target=target,
                           allowed_globals=allowed_globals)
    state_dict = read.state_dict
    kept, dropped, left_out = kept_and_dropped(read.original or state_dict, state_dict)
    summary = {'src': str(src), 'dst': str(dst), 'num_tensors': len(state_dict),
               'notes': read.notes, 'converter': read.converter,
               'num_source_tensors': len(read.original or state_dict), 'kept': dict(kept),
               'dropped': dict(dropped), 'left_out': left_out, 'keep_all': bool(keep_all)}
    if target is not None:
        report = load_state_dict(target, state_dict, strict=strict, source=str(src),
                                 notes=read.notes, converter=read.converter)
        summary['report'] = report.message
    if keep_all:
        state_dict = _keep_all(read, state_dict, dropped, add_prefix)
        summary['num_tensors'] = len(state_dict)
    elif add_prefix:
        dotted = add_prefix if add_prefix.endswith('.') else add_prefix + '.'
        state_dict = {dotted + k: v for k, v in state_dict.items()}
    if not str(dst).endswith(('.safetensors', '.pth', '.pt', '.bin', '.ckpt')):
        dst = f'{dst}.safetensors'
        summary['dst'] = dst
    meta = {'converted_from': str(src), 'converter': summary['converter'] or 'none',
            'prefix': prefix or '', 'format': 'mmbackbones'}
    save_file(state_dict, dst, metadata=meta)
    return summary


def format_kept_and_dropped(summary: dict) -> List[str]:
    """The lines ``mmbackbones convert`` prints about what it kept and dropped."""
    lines = [f'kept: {_describe(summary["kept"]) or "nothing"} of the '
             f'{summary["num_source_tensors"]} tensors in {summary["src"]}']
    if summary['dropped']:
        dropped = sum(summary['dropped'].values())
        lines.append(f'written too (--keep-all), unchanged: {_describe(summary["dropped"])}'
                     if summary['keep_all'] else
                     f'dropped: {_describe(summary["dropped"])}: {dropped} tensors that are not '
                     f'the backbone\'s (pass --keep-all to write them too, unchanged)')
    if summary['left_out']:
        from .state import group_keys
        groups = list(group_keys(summary['left_out']))
        shown = ', '.join(groups[:6]) + (', ...' if len(groups) > 6 else '')
        lines.append(f'left out by the converter: {len(summary["left_out"])} tensors ({shown})')
    return lines


# ----- the way back: ``convert --to`` ------------------------------------------------------------
TARGETS = ('mmpretrain', 'mmdet', 'mmseg', 'detectron2', 'timm', 'torchvision')
_FAMILIES = {'ResNet': 'ResNet', 'ResNetV1c': 'ResNet', 'ResNetV1d': 'ResNet',
             'ResNeXt': 'ResNet', 'RegNet': 'RegNet', 'VisionTransformer': 'VisionTransformer',
             'ViT': 'VisionTransformer', 'SwinTransformer': 'SwinTransformer',
             'ConvNeXt': 'ConvNeXt', 'TIMMBackbone': 'TIMMBackbone',
             'TorchvisionBackbone': 'TorchvisionBackbone', 'MobileNetV2': 'MobileNetV2',
             'MobileNetV3': 'MobileNetV3', 'EfficientNet': 'EfficientNet',
             'EfficientNetV2': 'EfficientNet', 'ResNeSt': 'ResNeSt', 'Res2Net': 'Res2Net',
             'Darknet': 'Darknet', 'YOLOXCSPDarknet': 'YOLOXCSPDarknet',
             'CSPDarknet': 'YOLOXCSPDarknet', 'CSPNeXt': 'CSPNeXt'}
# (family, target) -> the converter whose revert_* writes that layout; '' = our names as they are
_ROUTES = {
    ('ResNet', 'mmdet'): 'openmmlab_resnet', ('ResNet', 'mmseg'): 'openmmlab_resnet',
    ('ResNet', 'detectron2'): 'detectron2_resnet', ('ResNet', 'timm'): 'timm_resnet',
    ('ResNet', 'torchvision'): 'torchvision_resnet',
    ('RegNet', 'mmdet'): '', ('RegNet', 'timm'): 'timm_regnet',
    ('VisionTransformer', 'mmseg'): 'mmseg_vit', ('VisionTransformer', 'timm'): 'timm_vit',
    ('SwinTransformer', 'mmdet'): '', ('SwinTransformer', 'mmseg'): '',
    ('SwinTransformer', 'timm'): 'timm_swin',
    ('SwinTransformer', 'detectron2'): 'detectron2_swin',
    ('ConvNeXt', 'timm'): 'timm_convnext', ('ConvNeXt', 'detectron2'): 'detrex_convnext',
    ('MobileNetV2', 'timm'): 'timm_efficientnet', ('MobileNetV2', 'mmseg'): '',
    ('MobileNetV2', 'mmdet'): 'mmdet_mobilenet_v2', ('MobileNetV3', 'timm'): 'timm_efficientnet',
    ('MobileNetV3', 'mmseg'): '', ('EfficientNet', 'timm'): 'timm_efficientnet',
    ('EfficientNet', 'mmdet'): '',
    ('ResNeSt', 'timm'): 'timm_resnest', ('ResNeSt', 'mmdet'): 'openmmlab_resnet',
    ('ResNeSt', 'mmseg'): 'openmmlab_resnet', ('Res2Net', 'timm'): 'timm_res2net',
    ('Res2Net', 'mmdet'): 'openmmlab_resnet',
    ('Darknet', 'mmdet'): '', ('Darknet', 'timm'): 'timm_darknet',
    ('YOLOXCSPDarknet', 'mmdet'): '', ('CSPNeXt', 'mmdet'): '',
    ('ConvNeXt', 'timm'): 'timm_convnext',
    ('VisionTransformer', 'detectron2'): 'detectron2_vit',  # ViTDet's backbone.net.* layout
}
_WRAPPED = {'TIMMBackbone': ('timm_model.', 'timm'),
            'TorchvisionBackbone': ('model.', 'torchvision')}
_WHY_NOT = {
    ('VisionTransformer', 'mmdet'): 'mmdet 3.x ships no VisionTransformer backbone (its ViT '
                                    'configs use mmpretrain.VisionTransformer: --to mmpretrain)',
    ('ConvNeXt', 'mmdet'): 'mmdet ships no ConvNeXt (its configs use mmpretrain.ConvNeXt: '
                           '--to mmpretrain)',
    ('ConvNeXt', 'mmseg'): 'mmseg ships no ConvNeXt (its configs use mmpretrain.ConvNeXt: '
                           '--to mmpretrain)',
    ('RegNet', 'mmseg'): 'mmseg ships no RegNet',
    ('RegNet', 'torchvision'): "torchvision's RegNet (trunk_output.*) widths and names are not "
                               "a layout mmbackbones converts",
    ('Res2Net', 'mmseg'): 'mmseg ships no Res2Net',
    ('YOLOXCSPDarknet', 'timm'): "no timm model is YOLOX's CSPDarknet (cs3darknet_* widen in a "
                                 "1x1 conv after the stride-2 conv; see converters.timm_darknet)",
    ('CSPNeXt', 'timm'): 'timm has no CSPNeXt',
}
# a key of ours that only one family has, relative to the backbone (ResNet variants whose blocks
# carry their own marker come before the ResNet's)
_MARKERS = (('layers.0.attn.qkv.weight', 'VisionTransformer'),
            ('layers.0.ln1.weight', 'VisionTransformer'),
            ('stages.0.blocks.0.attn.w_msa.qkv.weight', 'SwinTransformer'),
            ('downsample_layers.0.0.weight', 'ConvNeXt'),
            ('layer1.0.conv2.fc1.weight', 'ResNeSt'), ('layer1.0.convs.0.weight', 'Res2Net'),
            ('layer1.0.conv1.weight', 'ResNet'),
            ('layer1.0.conv.0.conv.weight', 'MobileNetV2'),
            ('layer1.depthwise_conv.conv.weight', 'MobileNetV3'),
            ('layers.1.0.depthwise_conv.conv.weight', 'EfficientNet'),
            ('layers.1.0.conv1.conv.weight', 'EfficientNet'),
            ('layers.1.0.conv.weight', 'EfficientNet'),
            ('conv_res_block1.conv.conv.weight', 'Darknet'),
            ('stem.conv.conv.weight', 'YOLOXCSPDarknet'),
            ('stage1.1.blocks.0.conv2.depthwise_conv.conv.weight', 'CSPNeXt'))

# BEiT (mmpretrain BEiTViT = mmseg BEiT/MAE names), MSCAN (mmseg's names), MAEViT (a ViT); the
# BEiT markers come first: a BEiT also has the ViT's markers
_FAMILIES.update(BEiTViT='BEiTViT', BEiT='BEiTViT', MAE='BEiTViT', MSCAN='MSCAN',
                 MAEViT='VisionTransformer')
_ROUTES.update({('BEiTViT', 'timm'): 'timm_beit', ('BEiTViT', 'mmseg'): '',
                ('MSCAN', 'mmseg'): ''})
_FAMILIES.update(VGG='VGG')
_ROUTES.update({('VGG', 'timm'): 'timm_vgg', ('VGG', 'torchvision'): 'torchvision_vgg'})
_WHY_NOT.update({('VGG', 'mmdet'): "mmdet's VGG is SSDVGG (VGG-16 + fc6/fc7, torchvision's "
                                    "flat layout): build SSDVGG, or --to torchvision",
                 ('VGG', 'mmseg'): 'mmseg ships no VGG'})
_WHY_NOT.update({('MSCAN', 'timm'): 'timm has no MSCAN (SegNeXt)'})
_MARKERS = (('layers.0.gamma_1', 'BEiTViT'), ('layers.0.attn.q_bias', 'BEiTViT'),
            ('layers.0.attn.relative_position_bias_table', 'BEiTViT'),
            ('block1.0.layer_scale_1', 'MSCAN')) + _MARKERS
# detrex's EVA ViTDet backbones (the core ViT with query/value biases, EVA-02's SwiGLU)
_FAMILIES.update(EVAViT='EVAViT', EVA02_ViT='EVAViT')
_ROUTES.update({('EVAViT', 'detectron2'): 'detrex_eva'})


# STDC (mmseg's names = ours; the official STDC-Seg layout back out with --to timm, the source
# our converter table files it under)
_FAMILIES.update(STDCNet='STDC')
_ROUTES.update({('STDC', 'mmseg'): '', ('STDC', 'timm'): 'official_stdc'})
_MARKERS = _MARKERS + (('stages.2.0.layers.0.conv.weight', 'STDC'),)

_MARKERS += (('features.0.conv.weight', 'VGG'), )

# InternImage: our names are the official/detrex ones (detectron2 = detrex's layout)
_FAMILIES.update(InternImage='InternImage')
_ROUTES.update({('InternImage', 'detectron2'): 'detrex_internimage'})
_WHY_NOT.update({(
    'InternImage', host): f'{host} ships no InternImage (the official detection/segmentation '
                          f'code keeps the names --to detectron2 writes)'
    for host in ('mmdet', 'mmseg', 'timm', 'torchvision')})
_MARKERS = _MARKERS + (('levels.0.blocks.0.dcn.offset.weight', 'InternImage'), )

def family_of(state_dict, model=None) -> Optional[str]:
    """Which of our families a backbone state dict (our names) is: from ``model`` (a type name,
    config dict or module) when given, else from the keys (a RegNet's bottleneck keeps its
    width, a ResNet's widens 4x, ResNet-18/34 has no ``conv3``)."""
    if model is not None:
        kind = model.get('type') if isinstance(model, dict) else \
            model if isinstance(model, str) else type(model).__name__
        kind = str(kind).split('.')[-1]
        if kind not in _FAMILIES:
            raise ValueError(f'convert --to knows the families {", ".join(sorted(_FAMILIES))}; '
                             f'got model type {kind!r}')
        return _FAMILIES[kind]
    keys = list(state_dict)
    for head, family in (('timm_model.', 'TIMMBackbone'), ('model.', 'TorchvisionBackbone')):
        if keys and all(k.startswith(head) for k in keys):
            return family
    for marker, family in _MARKERS:
        if marker in state_dict:
            if family == 'ResNet':
                conv1, conv3 = state_dict[marker], state_dict.get('layer1.0.conv3.weight')
                if conv3 is not None and conv3.shape[0] == conv1.shape[0]:
                    return 'RegNet'
            return family
    return None


def locate_backbone(state_dict) -> str:
    """The prefix under which a whole-model state dict keeps one of our backbones (``''`` for a
    backbone state dict, ``'backbone.'`` in mmdet/mmseg, ``'backbone.bottom_up.'`` in a
    detectron2 FPN model); ``KeyError`` when none is found."""
    if family_of(state_dict) is not None:
        return ''
    found = set()
    for key in state_dict:
        for marker, _ in _MARKERS:
            if key.endswith('.' + marker):
                found.add(key[:-len(marker)])
        at = key.find('.timm_model.')
        if at >= 0:
            found.add(key[:at + 1])
    if not found:
        raise KeyError('no backbone of mmbackbones (ResNet, RegNet, ViT, Swin, ConvNeXt, '
                       'TIMMBackbone) found in the checkpoint: give --prefix')
    return min(found, key=len)


def to_native(state_dict, to: str, model=None) -> Dict:
    """A backbone state dict in our names -> the layout of ``to`` (one of :data:`TARGETS`).

    Raises ``ValueError`` naming why when the architecture cannot be written in that layout.
    """
    from .converters import get_converter
    if to not in TARGETS:
        raise ValueError(f'--to must be one of {", ".join(TARGETS)}, got {to!r}')
    family = family_of(state_dict, model)
    if family is None:
        raise ValueError('cannot tell which backbone this is from its keys (starting '
                         f'{", ".join(list(state_dict)[:4])}): give --model TYPE')
    if to == 'mmpretrain' and family != 'TorchvisionBackbone':
        return dict(state_dict)  # our names are mmpretrain's (its TIMMBackbone: timm_model.)
    if family in _WRAPPED:
        head, native = _WRAPPED[family]
        if to != native:
            raise ValueError(f'a {family} holds a {native} model: it can be written for '
                             f'{native} only, not {to}')
        return {k[len(head):]: v for k, v in state_dict.items()}
    route = _ROUTES.get((family, to))
    if route is None:
        why = _WHY_NOT.get((family, to)) or f'{to} has no {family} layout mmbackbones converts to'
        raise ValueError(f'cannot write a {family} for {to}: {why}')
    if route == '':
        return dict(state_dict)
    return get_converter(route).revert(state_dict)


def convert_checkpoint_to(src: str, dst: str, to: str, prefix: Optional[str] = None,
                          model=None, allowed_globals=None) -> dict:
    """Write ``src`` (our names: a backbone or a whole-model checkpoint) in the layout of the
    native library ``to`` (``mmpretrain``, ``mmdet``, ``mmseg``, ``detectron2``, ``timm``,
    ``torchvision``), so that the native module loads ``dst`` with ``strict=True``.

    The backbone is found under ``prefix`` (default: detected, e.g. ``backbone.``); other keys
    (necks, heads) are written unchanged. The file is ``torch.save`` of tensors only (loads with
    ``weights_only=True``): ``{'state_dict': ..., 'meta': ...}`` for the OpenMMLab targets,
    ``{'model': ...}`` for detectron2, the bare state dict for timm/torchvision; safetensors
    when ``dst`` ends in ``.safetensors``. Raises ``ValueError`` naming why when the
    architecture cannot be written in ``to``'s layout (nothing is written then).
    """
    import torch

    from .io import save_file
    from .loading import read_checkpoint
    from .state import extract_state_dict
    from ..utils.fileio import atomic_output
    checkpoint = read_checkpoint(src, allowed_globals=allowed_globals)
    state_dict = extract_state_dict(checkpoint, source=str(src))
    if prefix is None:
        prefix = locate_backbone(state_dict)
    elif prefix and not prefix.endswith('.'):
        prefix += '.'
    part = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not part:
        raise KeyError(f'prefix {prefix!r} matches no key of {src}')
    native = to_native(part, to, model)
    out = {k: v for k, v in state_dict.items() if not k.startswith(prefix)}
    out.update({prefix + k: v for k, v in native.items()})
    meta = {'converted_from': str(src), 'to': to, 'backbone_prefix': prefix,
            'format': f'{to} (written by mmbackbones convert --to)'}
    if str(dst).endswith('.safetensors'):
        save_file(out, dst, metadata=meta)
    elif to in ('mmpretrain', 'mmdet', 'mmseg'):
        save_file(out, dst, metadata=meta)  # {'state_dict': ..., 'meta': ...}: mmengine's
    else:
        with atomic_output(os.fspath(dst)) as tmp:
            torch.save({'model': out} if to == 'detectron2' else out, tmp)
    return {'src': str(src), 'dst': str(dst), 'to': to, 'prefix': prefix,
            'family': family_of(part, model), 'num_tensors': len(out)}
