"""detectron2's backbone contract, in one module, and the one way a class takes it on.

detectron2's necks and meta-architectures (``FPN``, detrex's ``ChannelMapper``, ...) need from a
backbone:

* ``forward(x) -> {name: tensor}``;
* ``output_shape() -> {name: ShapeSpec(channels=..., stride=...)}`` (and the three attributes
  detectron2's ``Backbone`` keeps, ``_out_features``, ``_out_feature_channels``,
  ``_out_feature_strides``, which some heads read);
* ``size_divisibility`` (int) and ``padding_constraints`` (dict) for padding the input batch;
* ``isinstance(backbone, detectron2.modeling.Backbone)`` (detectron2's FPN asserts it).

The mechanism, used by every class that speaks detectron2 (:class:`Detectron2Backbone` here, the
detrex classes in :mod:`.backbones`): derive from :class:`Detectron2Contract` first, then from the
network class, then from :data:`BACKBONE_BASE`::

    class ResNet(Detectron2Contract, Detectron2ResNet, BACKBONE_BASE): ...

:data:`BACKBONE_BASE` is detectron2's ``Backbone`` when detectron2 is importable (looked up once,
when this module is imported) and ``nn.Module`` otherwise; :data:`ShapeSpec` likewise is
detectron2's ``ShapeSpec`` or the neutral :class:`mmbackbones.models.base.ShapeSpec` (same field
names). :class:`Detectron2Contract` derives everything detectron2 reads from the neutral metadata
every mmbackbones backbone has (``out_names``, ``out_channels``, ``out_strides``,
``size_divisibility``), so there is one source of truth.

Importing this module imports detectron2 when it is installed; ``mmbackbones.integrations.
detectron2`` loads it only when one of these classes is first used.
"""
from typing import Dict, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from ...models.base import ShapeSpec as NeutralShapeSpec
from ...utils.validation import to_plain

try:
    from detectron2.layers import ShapeSpec as _D2ShapeSpec
    from detectron2.modeling import Backbone as _D2Backbone
except ImportError:
    _D2ShapeSpec = _D2Backbone = None

#: detectron2's ``Backbone`` when importable, else ``nn.Module``: the last base of every class
#: that takes on the contract.
BACKBONE_BASE = _D2Backbone if _D2Backbone is not None else nn.Module
#: detectron2's ``ShapeSpec`` when importable, else the neutral one (same fields).
ShapeSpec = _D2ShapeSpec if _D2ShapeSpec is not None else NeutralShapeSpec


class Detectron2Contract:
    """detectron2's ``Backbone`` interface, derived from ``out_names``/``out_channels``/
    ``out_strides``/``size_divisibility``. Put it first among the bases (before the network class,
    whose neutral ``output_shape()`` it replaces) and :data:`BACKBONE_BASE` last."""

    #: extra padding constraints (``{'square_size': 224}``), merged into ``padding_constraints``
    extra_padding_constraints: Dict[str, int] = {}

    @property
    def _out_features(self):
        return list(self.out_names)

    @property
    def _out_feature_channels(self) -> Dict[str, int]:
        return {n: int(c) for n, c in zip(self.out_names, self.out_channels)}

    @property
    def _out_feature_strides(self) -> Dict[str, int]:
        return {n: int(s) for n, s in zip(self.out_names, self.out_strides)}

    def output_shape(self):
        """``{name: ShapeSpec(channels=..., stride=...)}`` (detectron2's class when installed)."""
        return {n: ShapeSpec(channels=int(c), stride=int(s))
                for n, c, s in zip(self.out_names, self.out_channels, self.out_strides)}

    @property
    def padding_constraints(self) -> Dict[str, int]:
        """``extra_padding_constraints`` plus ``{'size_divisibility': n}`` when ``n > 0``."""
        out = dict(self.extra_padding_constraints)
        if self.size_divisibility:
            out['size_divisibility'] = int(self.size_divisibility)
        return out

    def check_detectron2_outputs(self) -> None:
        """``ValueError`` when an output is a pooled ``(N, C)`` vector: a detectron2 backbone
        returns feature maps."""
        pooled = [n for n, s in zip(self.out_names, self.out_strides) if s is None]
        if pooled:
            raise ValueError(f'{type(self).__name__}: output(s) {pooled} are pooled (N, C) '
                             f'vectors (stride None), not feature maps: a detectron2 Backbone '
                             f'returns maps. Choose map outputs (out_features=...) or configure '
                             f'the backbone for feature maps (e.g. out_type=\'featmap\', '
                             f'features_only=True)')


class Detectron2Backbone(Detectron2Contract, BACKBONE_BASE):
    """Any mmbackbones backbone (module or config dict) behind detectron2's contract.

    Args:
        backbone: an mmbackbones backbone or its config (``dict(type='ResNet', depth=50)``).
        out_features: the output names to return (after ``rename``); default all.
        rename: ``{our_name: new_name}``, e.g. ``{'stage3': 'res4'}`` (detrex's ``return_nodes``).
        size_divisibility: override the backbone's own value (e.g. 32 for a ResNet + FPN).
        padding_constraints: added to the backbone's (``{'square_size': 224}`` pads every batch
            to a 224 x 224 square, for models with a fixed input size).

    ``forward(x)`` returns ``{name: (N, C, H/stride, W/stride)}`` for ``out_features``. An
    instance of ``detectron2.modeling.Backbone`` when detectron2 is installed.
    """

    def __init__(self, backbone: Union[nn.Module, dict],
                 out_features: Optional[Sequence[str]] = None,
                 rename: Optional[Mapping[str, str]] = None,
                 size_divisibility: Optional[int] = None,
                 padding_constraints: Optional[Mapping[str, int]] = None):
        super().__init__()
        backbone, out_features, rename, size_divisibility, padding_constraints = (
            to_plain(v) for v in (backbone, out_features, rename, size_divisibility,
                                  padding_constraints))
        if not isinstance(backbone, nn.Module):
            from ...builder import build_backbone
            backbone = build_backbone(backbone)
        for attr in ('out_names', 'out_channels', 'out_strides'):
            if not getattr(backbone, attr, None):
                raise TypeError(f'{type(backbone).__name__} has no {attr}: only backbones that '
                                f'follow the mmbackbones contract can be adapted')
        self.backbone = backbone
        src = list(backbone.out_names)
        rename = dict(rename or {})
        unknown = sorted(set(rename) - set(src))
        if unknown:
            raise KeyError(f'rename has names {unknown} the backbone does not output; its '
                           f'outputs are {src}')
        names = [rename.get(n, n) for n in src]
        if len(set(names)) != len(names):
            raise ValueError(f'rename={rename} maps two outputs to one name: {names}')
        if out_features is None:
            out_features = list(names)
        elif isinstance(out_features, str) or not out_features:
            raise TypeError(f'out_features must be a non-empty list of output names from '
                            f'{names}, got {out_features!r}')
        missing = [f for f in out_features if f not in names]
        if missing:
            raise KeyError(f'out_features {missing} are not outputs of '
                           f'{type(backbone).__name__}; available: {names}')
        self._source = {new: old for old, new in zip(src, names)}
        channels = dict(zip(names, backbone.out_channels))
        strides = dict(zip(names, backbone.out_strides))
        self.out_names = tuple(out_features)
        self.out_channels = tuple(channels[f] for f in out_features)
        self.out_strides = tuple(strides[f] for f in out_features)
        self.check_detectron2_outputs()
        if size_divisibility is not None and (not isinstance(size_divisibility, int)
                                              or size_divisibility < 0):
            raise ValueError(f'size_divisibility must be an int >= 0, got {size_divisibility!r}')
        self._size_divisibility = size_divisibility
        if padding_constraints is not None and not isinstance(padding_constraints, dict):
            raise TypeError(f'padding_constraints must be a dict like {{"square_size": 224}}, '
                            f'got {padding_constraints!r}')
        own = dict(getattr(backbone, 'padding_constraints', {}) or {})
        own.pop('size_divisibility', None)
        self.extra_padding_constraints = {**own, **(padding_constraints or {})}
        self._register_load_state_dict_pre_hook(_under_backbone)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        out = self.backbone(x)
        if not isinstance(out, Mapping):  # a tuple in the backbone's output order
            out = dict(zip(self.backbone.out_names, out))
        return {f: out[self._source[f]] for f in self.out_names}

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: :class:`.scripting.ScriptableAdapter`, the same
        network (prepared in turn) with a forward in TorchScript's subset. The families whose
        network scripts are listed in the detectron2 guide."""
        from .scripting import ScriptableAdapter
        return ScriptableAdapter(self)

    @property
    def size_divisibility(self) -> int:
        if self._size_divisibility is not None:
            return self._size_divisibility
        return int(getattr(self.backbone, 'size_divisibility', 0) or 0)


def _under_backbone(state_dict, prefix, *args, **kwargs):
    """A checkpoint of the network alone under this adapter's place (detectron2's/detrex's
    ``backbone.layers...`` for ``Detectron2Backbone(SwinTransformer)`` at ``backbone.``): its keys
    go under ``backbone.``, where the network's own load hooks convert its layout."""
    own = [k for k in state_dict if k.startswith(prefix)]
    if not own or any(k.startswith(prefix + 'backbone.') for k in own):
        return
    for key in own:
        state_dict[prefix + 'backbone.' + key[len(prefix):]] = state_dict.pop(key)


__all__ = ['BACKBONE_BASE', 'ShapeSpec', 'Detectron2Contract', 'Detectron2Backbone']
