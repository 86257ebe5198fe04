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

__all__ = ['convert_checkpoint', 'kept_and_dropped', 'format_kept_and_dropped']


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
