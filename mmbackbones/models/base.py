"""The one contract every backbone in the zoo follows.

A backbone is built from explicit arguments, validates them at construction, and knows its
outputs before any forward pass:

* ``forward(x)`` returns a tuple of tensors, one per requested output, in ``out_indices`` order;
* ``out_channels``, ``out_strides``, ``out_names`` (tuples in output order) and ``output_shape()``
  (``{name: ShapeSpec(channels, stride)}``, detectron2's neck contract). An output that is a
  pooled vector ``(N, C)`` rather than a map (a ViT class token, ConvNeXt's
  ``gap_before_final_norm``) has stride ``None``;
* ``frozen_stages``: ``-1`` nothing, ``0`` the stem, ``k`` the stem and stages ``1..k``. Frozen
  parameters get ``requires_grad=False`` and frozen norm layers stay in eval mode across
  ``.train()``; ``norm_eval=True`` keeps every BatchNorm in eval mode;
* ``init_cfg`` is handled by mmengine's ``BaseModule.init_weights()``, which reports in one
  line (``models/init_report.py``).

A family subclass calls ``_set_outputs(...)`` once its layers exist, implements
``stem_and_stages()`` (index 0 the stem, index ``i`` stage ``i``) and calls
``_freeze_stages()`` at the end of ``__init__``.
"""
import os
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..checkpoint import load_hooks
from ..registry import register_all_modules
from ..utils.validation import accepts_config_containers, checks_keywords
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


class ShapeSpec(NamedTuple):
    """Channels and stride of one output; field names follow detectron2's ``ShapeSpec``."""
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
        # Before any layer is built: FrozenBN/LN2d findable by mmcv, init_cfg Pretrained safe.
        register_all_modules()
        super().__init__(init_cfg=_check_init_cfg(init_cfg))
        self._out_channels: Tuple[int, ...] = ()
        self._out_strides: Tuple[int, ...] = ()
        self._out_names: Tuple[str, ...] = ()
        self.frozen_stages = -1
        self.norm_eval = False
        self.in_channels: Optional[int] = None
        # every load route (mmengine's load_checkpoint/load_from/resume, detectron2's
        # checkpointer, plain load_state_dict) converts native layouts and loads all or nothing
        load_hooks.install(self)

    def _register_load_state_dict_pre_hook(self, hook, with_module=False):
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
                      UserWarning, stacklevel=3)
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
        """``{name: ShapeSpec(channels=..., stride=...)}`` as detectron2 necks expect."""
        return {name: ShapeSpec(channels=c, stride=s)
                for name, c, s in zip(self._out_names, self._out_channels, self._out_strides)}

    @property
    def size_divisibility(self) -> int:
        """Input sides must be a multiple of this (0: any size). detectron2 pads to it."""
        return 0

    @property
    def padding_constraints(self) -> Dict[str, int]:
        """detectron2's padding contract: ``{'size_divisibility': n}`` when there is one."""
        return {'size_divisibility': self.size_divisibility} if self.size_divisibility else {}

    def forward_dict(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``{name: feature}`` instead of a tuple (the detectron2/detrex style)."""
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

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        for module in self.stem_and_stages()[:self.frozen_stages + 1]:
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
