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
from typing import Optional

__all__ = ['convert_checkpoint']


def _build_model(model):
    from ..builder import build_backbone, build_backbone_from_config
    if isinstance(model, dict):
        return build_backbone(model)
    if isinstance(model, str) and os.path.isfile(model):
        return build_backbone_from_config(model)
    if isinstance(model, str):
        return build_backbone(json.loads(model))
    return model  # an nn.Module


def convert_checkpoint(src: str,
                       dst: str,
                       convert='auto',
                       prefix: Optional[str] = None,
                       model=None,
                       strict: Optional[bool] = None,
                       add_prefix: Optional[str] = None,
                       allowed_globals=None) -> dict:
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
    Returns:
        a summary dict: ``dst``, ``converter``, ``num_tensors`` and, with ``model``, ``report``.
    """
    from .io import save_file
    from .loading import read_state_dict
    from .state import load_state_dict
    target = _build_model(model) if model is not None else None
    read = read_state_dict(src, prefix=prefix, convert=convert, target=target,
                           allowed_globals=allowed_globals)
    state_dict = read.state_dict
    summary = {'src': str(src), 'dst': str(dst), 'num_tensors': len(state_dict),
               'notes': read.notes, 'converter': read.converter}
    if target is not None:
        report = load_state_dict(target, state_dict, strict=strict, source=str(src),
                                 notes=read.notes, converter=read.converter)
        summary['report'] = report.message
    if add_prefix:
        dotted = add_prefix if add_prefix.endswith('.') else add_prefix + '.'
        state_dict = {dotted + k: v for k, v in state_dict.items()}
    if not str(dst).endswith(('.safetensors', '.pth', '.pt', '.bin', '.ckpt')):
        dst = f'{dst}.safetensors'
        summary['dst'] = dst
    meta = {'converted_from': str(src), 'converter': summary['converter'] or 'none',
            'prefix': prefix or '', 'format': 'mmbackbones'}
    save_file(state_dict, dst, metadata=meta)
    return summary
