"""Writing converted checkpoints: ``convert_checkpoint`` and the ``convert`` command.

``mmbackbones convert SRC DST`` (and ``tools/convert_checkpoint.py``) read a checkpoint safely
(path, URL or zoo name), take ``--prefix``, convert the keys to mmbackbones names
(``--convert auto|timm|torchvision|mmpretrain|detectron2``) and write ``DST``: safetensors unless
``DST`` ends in ``.pth``/``.pt``. With ``--model`` (a config file or ``'ResNet depth=50'``-style
dict) the result is loaded into that backbone first, so a conversion that does not fit is caught
before anything is written.
"""
import argparse
import json
import os
import sys
from typing import Optional, Sequence

__all__ = ['convert_checkpoint', 'add_convert_args', 'run_convert', 'main']


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
                       strict: bool = False,
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
            result against: shapes must fit, and with ``strict`` every key must match.
        add_prefix: written keys get this prefix (``'backbone.'`` for an mmdet-style file).
    Returns:
        a summary dict: ``dst``, ``converter``, ``num_tensors`` and, with ``model``, ``report``.
    """
    from .io import save_file
    from .loading import read_state_dict
    from .state import load_state_dict
    target = _build_model(model) if model is not None else None
    state_dict, notes = read_state_dict(src, prefix=prefix, convert=convert, target=target,
                                        allowed_globals=allowed_globals)
    summary = {'src': str(src), 'dst': str(dst), 'num_tensors': len(state_dict),
               'notes': notes, 'converter': next((n.split('with ')[1] for n in notes
                                                  if n.startswith('converted with ')), None)}
    if target is not None:
        report = load_state_dict(target, state_dict, strict=strict, source=str(src), notes=notes)
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


def add_convert_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``convert`` command's arguments to ``parser`` (used by ``mmbackbones convert``)."""
    parser.add_argument('src', help='checkpoint: local path, URL or zoo name (mmcls://resnet50, '
                                    'timm://resnet50, torchvision://resnet50, ...)')
    parser.add_argument('dst', help='output file (.safetensors by default; .pth for torch.save)')
    parser.add_argument('--convert', default='auto',
                        choices=['auto', 'timm', 'torchvision', 'mmpretrain', 'mmcls',
                                 'detectron2', 'mmseg', 'none'],
                        help='source key layout (default: detect from the keys)')
    parser.add_argument('--prefix', default=None,
                        help="take the weights under this prefix, e.g. 'backbone'")
    parser.add_argument('--add-prefix', default=None,
                        help="prefix written keys, e.g. 'backbone.' for an mmdet init_cfg")
    parser.add_argument('--model', default=None,
                        help='check against a backbone: a config file or a JSON dict such as '
                             '\'{"type": "ResNet", "depth": 50}\'')
    parser.add_argument('--strict', action='store_true',
                        help='with --model: every key must match')
    parser.add_argument('--allow-global', action='append', default=None, metavar='MODULE.NAME',
                        help='trust this pickled type in the source file (repeatable)')
    return parser


def run_convert(args: argparse.Namespace) -> int:
    """Run the ``convert`` command for parsed ``args``; returns the exit code."""
    try:
        summary = convert_checkpoint(args.src, args.dst, convert=args.convert,
                                     prefix=args.prefix, model=args.model, strict=args.strict,
                                     add_prefix=args.add_prefix,
                                     allowed_globals=args.allow_global)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'error: {message}', file=sys.stderr)
        return 2
    print(f'wrote {summary["dst"]}: {summary["num_tensors"]} tensors'
          + (f' (converted with {summary["converter"]})' if summary['converter'] else ''))
    if 'report' in summary:
        print(summary['report'])
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='convert_checkpoint', description=__doc__.split('\n')[0])
    add_convert_args(parser)
    return run_convert(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
