"""Native layouts at ``load_state_dict`` time, so that every load route converts.

mmengine's ``load_checkpoint`` / ``load_from`` / ``resume``, detectron2's
``DetectionCheckpointer`` and a plain ``model.load_state_dict`` of a whole detector or segmentor
all end in ``nn.Module.load_state_dict``, never in our ``init_cfg`` path. Every
:class:`~mmbackbones.models.base.BaseBackbone` therefore carries two load pre-hooks
(:func:`install`):

* **convert** (the first pre-hook): the keys under the backbone's prefix (``backbone.`` inside a
  detector), when they are not already in our names, are matched against the converter table
  (``converters.CONVERTERS``: mmcv-era deep stems, mmseg's ViT, original/timm Swin,
  detectron2/detrex and caffe2 ResNets, timm and torchvision layouts) and replaced by the
  converted keys, in the dict torch/mmengine hand down (a copy of the caller's). The conversion
  that fits the module best wins, as with ``init_cfg`` (``convert_state_dict(..., 'auto')``).
* **check** (kept the last pre-hook, after the family's own: position-embedding resize, Swin's
  ``norm.`` rename; frozen norms given only their affine part get statistics 0 and 1, as
  detectron2's ``FrozenBatchNorm2d`` does for caffe2 files): when the backbone's part of the
  state dict is not empty it must fit, all or nothing: every parameter and buffer present
  (``num_batches_tracked`` aside) with its shape and copyable, else
  :class:`~mmbackbones.checkpoint.state.CheckpointMismatchError` is raised before any tensor is
  copied, whatever ``strict`` the caller passed (mmengine's ``strict=False`` would
  only log the missing keys: a silent half-load). Keys the backbone does not have (a classifier,
  layers a truncated model did not build) are left for the caller to report.

Inside our own loader (``state.load_state_dict``) both hooks stand aside: its caller converted
as ``convert=`` says (``None``: no conversion) and the fit rule checks with the caller's
``strict``.

The state dict a backbone saves stays in our (mmpretrain's) names; conversion happens once per
load (an already converted dict is not touched again). Containers of backbones (a backbone with
its neck) leave the keys of the backbones inside them to those backbones' hooks.
"""
from collections import OrderedDict
from typing import Dict, List

import torch
from mmengine.logging import print_log
from torch import nn

from .converters import convert_state_dict
from .keys import own_state_dict
from .state import CheckpointMismatchError, LoadReport, _check_hook, fit_already_checked

__all__ = ['install', 'keep_check_last']

_MARK = '_mmbackbones_load_hooks'  # module attribute: {'check': hook id}
_IGNORED = ('num_batches_tracked',)


def install(module: nn.Module) -> None:
    """Register the convert and check pre-hooks on ``module`` (once)."""
    if getattr(module, _MARK, None) is not None:
        return
    module.__dict__[_MARK] = {}
    convert = module.register_load_state_dict_pre_hook(_convert_hook)
    handle = module.register_load_state_dict_pre_hook(_check_fit_hook)
    module.__dict__[_MARK].update(convert=convert.id, check=handle.id)
    keep_check_last(module)  # a family may have registered its hooks before BaseBackbone's


def keep_check_last(module: nn.Module) -> None:
    """The convert hook first (the family's own hooks expect our names) and the check hook
    last, whatever order the family registered its own hooks in."""
    marks = module.__dict__.get(_MARK)
    hooks = getattr(module, '_load_state_dict_pre_hooks', None)
    if not marks or hooks is None:
        return
    if marks.get('convert') in hooks:
        hooks.move_to_end(marks['convert'], last=False)
    if marks.get('check') in hooks:
        hooks.move_to_end(marks['check'])


def _nested(module: nn.Module) -> List[str]:
    """Prefixes (relative to ``module``) of the hooked backbones inside it."""
    return [name + '.' for name, sub in module.named_modules()
            if sub is not module and sub.__dict__.get(_MARK) is not None]


def _part(state_dict, prefix: str, nested: List[str]) -> 'OrderedDict[str, torch.Tensor]':
    """The keys under ``prefix`` (prefix removed) that belong to the module itself."""
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith(prefix):
            name = key[len(prefix):]
            if not name.startswith(tuple(nested)):
                out[name] = value
    return out


def _own(module: nn.Module, nested: List[str]) -> Dict[str, torch.Tensor]:
    return OrderedDict((k, v) for k, v in own_state_dict(module, keep_vars=True).items()
                       if not k.startswith(tuple(nested)))


def _where(module: nn.Module, prefix: str) -> str:
    return f'{type(module).__name__} (keys under {prefix!r})' if prefix else \
        type(module).__name__


def _affine_only_statistics(module: nn.Module, part, nested: List[str]):
    """Running statistics 0 and 1 for the frozen norms whose checkpoint holds only the affine
    part (caffe2/MSRA files through detectron2's heuristics), as detectron2's
    ``FrozenBatchNorm2d`` fills them: ``{key: tensor}`` to add."""
    from ..models.layers.norm import FrozenBatchNorm2d
    out = {}
    for name, sub in module.named_modules():
        if not isinstance(sub, FrozenBatchNorm2d) or name.startswith(tuple(nested)):
            continue
        base = f'{name}.' if name else ''
        if base + 'weight' in part and base + 'bias' in part and \
                base + 'running_mean' not in part and base + 'running_var' not in part:
            out[base + 'running_mean'] = torch.zeros_like(sub.running_mean)
            out[base + 'running_var'] = torch.ones_like(sub.running_var)
    return out


def _convert_hook(module, state_dict, prefix, *args, **kwargs):
    if fit_already_checked():
        return  # state.load_state_dict's caller converted already, as its ``convert`` says
    if _nested(module):
        return  # a container: the backbones inside convert their own keys
    part = _part(state_dict, prefix, [])
    if not part:
        return
    own = {k: tuple(v.shape) for k, v in own_state_dict(module).items()}
    if all(k in own for k in part):
        return  # our names already (maybe a part of them: the check decides)
    converted, used = convert_state_dict(part, 'auto', own)
    if used is None:
        return
    for key in part:
        del state_dict[prefix + key]
    for key, value in converted.items():
        state_dict[prefix + key] = value
    print_log(f'{_where(module, prefix)}: the checkpoint was converted from the {used} layout '
              f'to ours on load ({len(part)} -> {len(converted)} keys)', logger='current')


def _check_fit_hook(module, state_dict, prefix, *args, **kwargs):
    if fit_already_checked():
        return  # state.load_state_dict checks and reports itself
    nested = _nested(module)
    part = _part(state_dict, prefix, nested)
    if not part:
        return  # nothing for this backbone: the caller reports its keys as missing
    own = _own(module, nested)
    for key, value in _affine_only_statistics(module, part, nested).items():
        part[key] = state_dict[prefix + key] = value
    missing = [k for k in own if k not in part and not k.endswith(_IGNORED)]
    source = f'the checkpoint ({_where(module, prefix)})'
    if missing:
        unexpected = [k for k in part if k not in own]
        report = LoadReport(type(module).__name__, source, [k for k in own if k in part],
                            missing, unexpected)
        details = report.message.split('\n', 1)[1] if '\n' in report.message else ''
        raise CheckpointMismatchError(
            f'{source} does not fit {type(module).__name__}: {len(missing)} of its '
            f'{len(own)} tensors are not in it after conversion, so nothing was loaded (a '
            f'half-load is refused, whatever strict says). Another architecture or variant, '
            f'or a layout no converter knows?\n' + details)
    # shapes and copyability: state.py's rule, on the backbone's part only
    # (names were checked above; strict=False keeps the fit rule's stricter view of unexpected
    # keys for our own loader, where the caller's strict is known)
    _check_hook(own, source, [], False)(
        module, OrderedDict((prefix + k, v) for k, v in part.items()), prefix)
