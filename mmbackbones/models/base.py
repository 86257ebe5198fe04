"""The one contract every backbone in the zoo follows.

A backbone is built from explicit arguments, validates them at construction, and knows its
outputs before any forward pass:

* ``forward(x)`` returns a tuple of tensors, one per requested output, in ``out_indices`` order;
* ``out_channels``, ``out_strides``, ``out_names`` (tuples in output order), the same as one
  dict by ``output_shape()`` (``{name: ShapeSpec(channels, stride)}``), and
  ``size_divisibility`` (input sides must be a multiple of it; 0 any size). An output that is a
  pooled vector ``(N, C)`` rather than a map (a ViT class token, ConvNeXt's
  ``gap_before_final_norm``) has stride ``None``. This metadata is neutral: detectron2's contract
  (its ``ShapeSpec``, ``padding_constraints``, ``Backbone`` base) is built from it in one place,
  ``integrations/detectron2/contract.py``;
* ``frozen_stages``: ``-1`` nothing, ``0`` the stem, ``k`` the stem and stages ``1..k``. Frozen
  parameters get ``requires_grad=False`` and frozen norm layers stay in eval mode across
  ``.train()``; ``norm_eval=True`` keeps every BatchNorm in eval mode;
* ``init_cfg`` is handled by mmengine's ``BaseModule.init_weights()``, which reports in one
  line (``models/init_report.py``).

A subclass (README, "Write your own backbone") declares ``num_stages`` (a class attribute or
set before ``out_indices``), assigns ``self.out_indices`` and ``self.frozen_stages`` (checked
here against ``num_stages``, naming the argument; ``-1`` in ``out_indices`` means the last
stage), calls ``_set_outputs(...)`` once its layers exist, implements ``stem_and_stages()``
(index 0 the stem, index ``i`` stage ``i``) and calls ``_freeze_stages()`` at the end of
``__init__``. With ``MMBACKBONES_DEBUG=1`` (or :func:`set_debug_checks`) every forward is
compared with the declared outputs (count, channels, strides) and a disagreement raises.
"""
import os
import sys
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..utils.validation import (accepts_config_containers, check_frozen_stages,
                                checks_keywords, normalize_out_indices)
from .init_report import InitReportMixin
from .layers.norm import FrozenBatchNorm2d


def parameter_dtype(module: nn.Module) -> Optional[torch.dtype]:
    """The dtype of ``module``'s first floating-point parameter (else buffer), ``None`` if none."""
    for tensors in (module.parameters(), module.buffers()):
        for tensor in tensors:
            if tensor.is_floating_point():
                return tensor.dtype
    return None


def check_input_dtype(module: nn.Module, x: torch.Tensor, name: str) -> None:
    """``TypeError`` unless ``x`` is floating point with ``module``'s parameter dtype (any
    floating dtype under ``torch.autocast``); see :meth:`BaseBackbone.check_input`."""
    expected = parameter_dtype(module)
    if not x.is_floating_point():
        wanted = f'dtype {expected}' if expected is not None else 'a floating-point dtype'
        raise TypeError(f'{name} expects a floating-point tensor of {wanted} (the dtype of its '
                        f'parameters), got {x.dtype}: convert with x.float() and normalise '
                        f'first (e.g. (x / 255 - mean) / std)')
    if expected is None or x.dtype == expected:
        return
    if torch.is_autocast_enabled(x.device.type):
        return
    raise TypeError(f'{name} expects a floating-point tensor of dtype {expected} (the dtype of '
                    f'its parameters), got {x.dtype}: convert the input with x.to({expected}), '
                    f'convert the model with model.to({x.dtype}), or run under torch.autocast')


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # mmbackbones/


def caller_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` called by the function calling this one that
    points at the first frame outside mmbackbones and mmengine: the user's line (a
    constructor call, ``build_backbone(...)``), not our wrappers or mmengine's registry."""
    import mmengine
    skip = (_PACKAGE_DIR + os.sep, os.path.dirname(os.path.abspath(mmengine.__file__)) + os.sep)
    frame, level = sys._getframe(1), 1  # the caller of this function: warnings' level 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(skip):
        frame, level = frame.f_back, level + 1
    return level


_DEBUG = {'checks': os.environ.get('MMBACKBONES_DEBUG', '') not in ('', '0')}


def set_debug_checks(enabled: bool) -> bool:
    """Turn the output check of every backbone's forward on or off (default: on when the
    environment variable ``MMBACKBONES_DEBUG`` is set and not ``0``); returns the previous
    setting. See :func:`check_outputs`."""
    previous, _DEBUG['checks'] = _DEBUG['checks'], bool(enabled)
    return previous


def stride_fits(height: int, rows: int, stride: int) -> bool:
    """Whether ``rows`` output rows from ``height`` input rows agree with ``stride``: exactly
    (``height / stride`` rounded up or down) or within 25 % (models with unpadded convolutions,
    e.g. Inception's 224 px -> 27 rows at a nominal stride 8); a stride off by 2x fails."""
    if rows in (height // stride, -(-height // stride)):
        return True
    return rows > 0 and abs(height / rows - stride) <= 0.25 * stride


def output_problems(module: 'BaseBackbone', x: torch.Tensor, outputs) -> List[str]:
    """Where a forward result disagrees with the declared metadata, one line per output
    (empty when they agree): the number of outputs (or the names of a dict result), the
    channels of every ``(N, C, ...)`` output and, for an ``(N, C, H, W)`` map, its stride
    (:func:`stride_fits` with the input height); a pooled ``(N, C)`` output must have stride
    ``None``. Token sequences ``(N, L, C)`` are not compared."""
    names, channels, strides = module.out_names, module.out_channels, module.out_strides
    if isinstance(outputs, dict):
        if list(outputs) != list(names):
            return [f'forward returned outputs {list(outputs)} but out_names declares '
                    f'{list(names)}']
        outputs = tuple(outputs.values())
    elif isinstance(outputs, torch.Tensor):
        outputs = (outputs, )
    outputs = tuple(outputs)
    if len(outputs) != len(names):
        return [f'forward returned {len(outputs)} outputs but the metadata declares '
                f'{len(names)} ({", ".join(names) or "none"}; out_indices={module.out_indices})']
    height = x.shape[-2] if isinstance(x, torch.Tensor) and x.dim() == 4 else None
    problems = []
    for name, out, c, s in zip(names, outputs, channels, strides):
        if not isinstance(out, torch.Tensor) or out.dim() not in (2, 4):
            continue
        shape = 'x'.join(str(d) for d in out.shape)
        if out.shape[1] != c:
            problems.append(f'output {name!r}: out_channels declares {c}, forward gives '
                            f'{out.shape[1]} channels ({shape})')
        if out.dim() == 2 and s is not None:
            problems.append(f'output {name!r} is a pooled (N, C) vector ({shape}) but '
                            f'out_strides declares stride {s} (use None)')
        elif out.dim() == 4 and height is not None and not s:
            problems.append(f'output {name!r} is a (N, C, H, W) map ({shape}) but out_strides '
                            f'declares stride {s!r}')
        elif out.dim() == 4 and height is not None and not stride_fits(height, out.shape[2], s):
            problems.append(f'output {name!r}: out_strides declares {s}, but {height} input '
                            f'rows become {out.shape[2]} (stride '
                            f'~{height / max(out.shape[2], 1):.3g})')
    return problems


def check_outputs(module: 'BaseBackbone', x: torch.Tensor, outputs) -> None:
    """``RuntimeError`` naming the output(s) where :func:`output_problems` finds any. Run after
    every forward when debug checks are on (:func:`set_debug_checks`)."""
    problems = output_problems(module, x, outputs)
    if problems:
        raise RuntimeError(f'{type(module).__name__}: the forward result disagrees with the '
                           f'declared metadata: {"; ".join(problems)} (fix forward or '
                           f'_set_outputs(...))')


def _debug_check_hook(module, args, output):
    if _DEBUG['checks'] and args:
        check_outputs(module, args[0], output)


class ShapeSpec(NamedTuple):
    """Channels and stride of one output (the field names of detectron2's ``ShapeSpec``, whose
    class ``integrations.detectron2.contract`` uses instead when detectron2 is installed)."""
    channels: Optional[int] = None
    height: Optional[int] = None
    width: Optional[int] = None
    stride: Optional[int] = None


def _check_init_cfg(init_cfg):
    """``init_cfg`` as mmengine wants it: a dict, a list of dicts or None. A path or URL string
    means ``dict(type='Pretrained', checkpoint=init_cfg)``."""
    if isinstance(init_cfg, (str, os.PathLike)):
        return dict(type='Pretrained', checkpoint=os.fspath(init_cfg))
    if isinstance(init_cfg, tuple):
        init_cfg = list(init_cfg)
    if init_cfg is not None and not isinstance(init_cfg, (dict, list)) or \
            isinstance(init_cfg, list) and not all(isinstance(c, dict) for c in init_cfg):
        raise TypeError(f'init_cfg must be a dict (e.g. dict(type="Pretrained", checkpoint=...)), '
                        f'a list of dicts, a checkpoint path/URL string or None, got '
                        f'{init_cfg!r}')
    return init_cfg


def is_pretrained_init(init_cfg, only: bool = False) -> bool:
    """Whether ``init_cfg`` loads a checkpoint: a ``dict(type='Pretrained', ...)`` (or the
    ``PretrainedInit`` class as type), alone or as an entry of a list (mmengine applies the
    Pretrained entry last, so its weights stand). ``only=True``: the Pretrained entry is the
    only one (every parameter then comes from the file)."""
    entries = list(init_cfg) if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    pretrained = [e for e in entries if isinstance(e, dict) and (
        e.get('type') == 'Pretrained'
        or getattr(e.get('type'), '__name__', None) == 'PretrainedInit')]
    return bool(pretrained) and (not only or len(entries) == 1)


class BaseBackbone(InitReportMixin, BaseModule):
    """Base class of every backbone: output metadata, stage freezing, norm_eval.

    Every subclass's ``__init__`` receives plain Python containers: omegaconf
    ``ListConfig``/``DictConfig`` (detectron2's ``instantiate``), ``range``, numpy integers and
    arrays are converted first (``utils.validation.accepts_config_containers``).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if '__init__' in cls.__dict__:
            cls.__init__ = checks_keywords(accepts_config_containers(cls.__dict__['__init__']))

    def __init__(self, init_cfg=None):
        # The first backbone built imports mmbackbones.checkpoint (a floor below), whose import
        # installs safe loading into mmengine (CheckpointLoader schemes, Pretrained), once.
        # Not at module import: mmengine.runner pulls in OpenCV.
        from .. import checkpoint  # noqa: F401
        super().__init__(init_cfg=_check_init_cfg(init_cfg))
        self._out_channels: Tuple[int, ...] = ()
        self._out_strides: Tuple[int, ...] = ()
        self._out_names: Tuple[str, ...] = ()
        self.frozen_stages = -1
        self.norm_eval = False
        self.in_channels: Optional[int] = None
        self.register_forward_hook(_debug_check_hook)  # does nothing unless debug checks are on

    # ----- out_indices / frozen_stages, checked against the declared stages --------------------
    def _declared_num_stages(self) -> Optional[int]:
        """``num_stages`` as the subclass declares it (instance or class attribute), or None."""
        value = self.__dict__.get('num_stages', getattr(type(self), 'num_stages', None))
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        return None

    def _named_check(self, check, *args):
        try:
            return check(*args)
        except (TypeError, ValueError) as error:
            raise type(error)(f'{type(self).__name__}: {error}') from None

    @property
    def out_indices(self):
        """The stages returned, in output order (non-negative once ``num_stages`` is known)."""
        return self.__dict__.get('_out_indices')

    @out_indices.setter
    def out_indices(self, value) -> None:
        stages = self._declared_num_stages()
        if stages is not None and value is not None:
            value = self._named_check(normalize_out_indices, value, stages)
        self.__dict__['_out_indices'] = value

    @property
    def frozen_stages(self) -> int:
        """``-1`` nothing, ``0`` the stem, ``k`` the stem and stages ``1..k``."""
        return self.__dict__.get('_frozen_stages', -1)

    @frozen_stages.setter
    def frozen_stages(self, value) -> None:
        stages = self._declared_num_stages()
        if stages is not None:
            value = self._named_check(check_frozen_stages, value, stages)
        self.__dict__['_frozen_stages'] = value

    def _check_declared_stages(self) -> None:
        """At ``_set_outputs``: ``out_indices`` set before ``num_stages`` is checked now; without
        ``num_stages`` a negative index (meaning "from the end") cannot be resolved."""
        indices, stages = self.out_indices, self._declared_num_stages()
        if indices is None:
            return
        if stages is not None:
            self.__dict__['_out_indices'] = self._named_check(normalize_out_indices, indices,
                                                              stages)
        elif any(isinstance(i, int) and i < 0 for i in (
                indices if isinstance(indices, (list, tuple)) else [indices])):
            raise ValueError(f'{type(self).__name__}: out_indices={indices!r} counts from the '
                             f'end, but the class declares no num_stages to count from: set '
                             f'num_stages (a class attribute or self.num_stages = ...) before '
                             f'out_indices')
        # every load route (mmengine's load_checkpoint/load_from/resume, detectron2's
        # checkpointer, plain load_state_dict) converts native layouts and loads all or nothing
        from ..checkpoint import load_hooks
        load_hooks.install(self)

    def _register_load_state_dict_pre_hook(self, hook, with_module=False):
        from ..checkpoint import load_hooks
        handle = super()._register_load_state_dict_pre_hook(hook, with_module=with_module)
        load_hooks.keep_check_last(self)  # the fit check runs after the family's own hooks
        return handle

    def loads_pretrained(self) -> bool:
        """Whether ``init_weights()`` loads a checkpoint (``init_cfg`` is or holds a
        Pretrained entry): post-init steps meant for training from scratch
        (``zero_init_residual``) are then skipped."""
        return is_pretrained_init(self.init_cfg)

    # ----- mmdet/mmseg ``pretrained=`` ---------------------------------------------------------
    @staticmethod
    def _pretrained_to_init_cfg(pretrained: Optional[str],
                                init_cfg: Union[dict, List[dict], None]
                                ) -> Union[dict, List[dict], None]:
        """The ``init_cfg`` meant by mmdet's/mmseg's deprecated ``pretrained=`` argument.

        mmseg's ``EncoderDecoder`` pushes its model-level ``pretrained`` into the backbone
        config, and older mmdet/mmseg configs set it on the backbone: a checkpoint string means
        ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)`` (loaded through our safe
        loader). As there, a string warns that ``init_cfg`` is the current spelling, anything but
        a string or ``None`` is a ``TypeError``, and giving both ``pretrained`` and a different
        ``init_cfg`` is refused (``ValueError``) rather than one silently winning. Returns the
        ``init_cfg`` to pass on (``init_cfg`` itself when ``pretrained`` is ``None``).
        """
        if pretrained is None:
            return init_cfg
        if not isinstance(pretrained, str):
            raise TypeError(f'pretrained must be a checkpoint path/URL string or None (as in '
                            f'mmdet/mmseg), got {pretrained!r}')
        if not pretrained:
            raise ValueError("pretrained must be a non-empty checkpoint path/URL, got ''")
        wanted = dict(type='Pretrained', checkpoint=pretrained)
        if init_cfg and init_cfg != wanted:
            raise ValueError(f'pretrained={pretrained!r} and init_cfg={init_cfg!r} contradict '
                             f'each other (mmdet/mmseg refuse both too); give only '
                             f'init_cfg=dict(type=\'Pretrained\', checkpoint=...)')
        warnings.warn(f'pretrained={pretrained!r} is deprecated (as in mmdet/mmseg): it means '
                      f'init_cfg=dict(type=\'Pretrained\', checkpoint={pretrained!r})',
                      UserWarning, stacklevel=caller_stacklevel())
        return wanted

    # ----- output metadata -------------------------------------------------------------------
    def _set_outputs(self, channels: Sequence[int], strides: Sequence[int],
                     names: Sequence[str]) -> None:
        channels, strides, names = tuple(channels), tuple(strides), tuple(names)
        if not len(channels) == len(strides) == len(names):
            raise ValueError(f'output metadata lengths differ: channels={channels}, '
                             f'strides={strides}, names={names}')
        if len(set(names)) != len(names):
            raise ValueError(f'output names must be unique, got {names}')
        self._check_declared_stages()
        indices = self.out_indices
        if isinstance(indices, (list, tuple)) and len(indices) != len(names) and \
                self._declared_num_stages() is not None:
            raise ValueError(f'{type(self).__name__}: out_indices={tuple(indices)} asks for '
                             f'{len(indices)} outputs but _set_outputs declares {len(names)} '
                             f'({", ".join(names)})')
        self._out_channels, self._out_strides, self._out_names = channels, strides, names

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each output, in output order."""
        return self._out_channels

    @property
    def out_strides(self) -> Tuple[Optional[int], ...]:
        """Stride (input pixels per output pixel) of each output, in output order; ``None``
        for a pooled ``(N, C)`` output."""
        return self._out_strides

    @property
    def out_names(self) -> Tuple[str, ...]:
        """Name of each output, in output order (e.g. ``res2``..``res5``)."""
        return self._out_names

    def output_shape(self) -> Dict[str, ShapeSpec]:
        """``{name: ShapeSpec(channels=..., stride=...)}``: the three tuples above as one dict."""
        return {name: ShapeSpec(channels=c, stride=s)
                for name, c, s in zip(self._out_names, self._out_channels, self._out_strides)}

    @property
    def size_divisibility(self) -> int:
        """Input sides must be a multiple of this (0: any size)."""
        return 0

    def forward_dict(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``{name: feature}`` instead of a tuple."""
        return dict(zip(self._out_names, self(x)))

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse a wrong input early, with a message saying what is expected.

        * a 4-D ``(N, C, H, W)`` tensor (``ValueError`` otherwise);
        * ``C == in_channels`` (``ValueError``);
        * a floating-point dtype equal to the dtype of the model's parameters (``TypeError``):
          float32 for a float32 model, float16/bfloat16/float64 once the model was converted
          with ``.half()``/``.to(dtype)``. Under ``torch.autocast`` any floating dtype is
          accepted (autocast casts per op). Integer and bool images (``uint8`` straight from a
          decoder) are never accepted: convert and normalise them first.

        An empty batch (``N == 0``) is valid: every family returns empty outputs whose other
        dimensions are those a non-empty batch gives.
        """
        name = type(self).__name__
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f'{name} expects a 4-D (N, C, H, W) tensor, got {shape}')
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            raise ValueError(f'{name} was built with in_channels={self.in_channels} '
                             f'but the input has {x.shape[1]} channels (shape {tuple(x.shape)})')
        check_input_dtype(self, x, name)

    # ----- freezing and norm_eval --------------------------------------------------------------
    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        """Modules to freeze: index 0 the stem, index ``i`` stage ``i``.

        Families that support ``frozen_stages`` override this.
        """
        return []

    def _architecture_stages(self) -> Optional[int]:
        """The stage count of the architecture (built or not) that bounds ``frozen_stages``:
        ``num_stages`` by default. ``frozen_stages`` is checked against it, never against
        ``out_indices``; stages past the last output are not built and freezing them is a
        no-op. A family whose stage count is not ``num_stages`` (ViT: ``num_layers``) says so
        here."""
        return getattr(self, 'num_stages', None)

    def _freeze_stages(self) -> None:
        frozen = self.frozen_stages
        if frozen == -1 and isinstance(frozen, int) and not isinstance(frozen, bool):
            return
        groups = self.stem_and_stages()
        if not groups:
            top = frozen if isinstance(frozen, int) and frozen > 0 else 0  # type/value first
            if self._named_check(check_frozen_stages, frozen, top) == -1:
                return
            raise ValueError(f'{type(self).__name__}: frozen_stages={frozen} but the backbone '
                             f'declares no stages to freeze (implement stem_and_stages(): '
                             f'index 0 the stem, index i stage i)')
        top = len(groups) - 1
        declared = self._architecture_stages()
        if isinstance(declared, int) and not isinstance(declared, bool) and declared > top:
            # stages past the last output are not built: freezing them is a no-op, as freezing
            # stages that run after the last output is in mmpretrain
            top = declared
        frozen = self._named_check(check_frozen_stages, frozen, top)
        self.__dict__['_frozen_stages'] = frozen
        if frozen < 0:
            return
        for module in groups[:self.frozen_stages + 1]:
            if module is None:
                continue
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, (_BatchNorm, FrozenBatchNorm2d)):
                    module.eval()
        return self

    # ----- deploy ------------------------------------------------------------------------------
    def fuse(self):
        """Deploy path: switch to eval mode and fold every BatchNorm/FrozenBN into the conv that
        feeds it (``layers.fuse.fuse_conv_bn``). In place; returns ``self``. Outputs stay equal
        (to float rounding); the state dict changes (norms become ``Identity``, convs get
        biases), so load checkpoints before fusing, and do not train a fused model."""
        from .layers.fuse import fuse_conv_bn
        self.eval()
        self.num_fused_norms = getattr(self, 'num_fused_norms', 0) + fuse_conv_bn(self)
        self.deploy = True
        return self

    def switch_to_deploy(self):
        """Same as :meth:`fuse` (mmpretrain's spelling for re-parameterised models)."""
        return self.fuse()

    def extra_repr(self) -> str:
        return (f'out_names={self._out_names}, out_channels={self._out_channels}, '
                f'out_strides={self._out_strides}')
