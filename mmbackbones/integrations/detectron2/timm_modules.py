"""detectron2_timm's backbone, as its yaml keys mean it: outputs taken from named timm modules.

detectron2_timm (``build_<timm_name>[_fpn]_backbone``) builds a timm model, removes some of its
top-level modules and returns the outputs of modules named by dotted paths. Its
``MODEL.BACKBONE.CONFIG`` keys, which :class:`TimmModuleBackbone` takes as arguments:

========================  ========================================================================
key                       meaning here
========================  ========================================================================
``OUT_FEATURES``          dotted timm module names (``layer1``, ``blocks.3``,
                          ``layers.0.blocks.1``); a forward hook takes each one's output. Empty:
                          timm's ``feature_info`` modules (those not removed). Integers (our
                          extension): indices into ``feature_info``.
``REMAPS``                the output names, one per ``OUT_FEATURES`` entry (empty: module names)
``STRIDES``               each output's stride. A feature map must have it (measured at build
                          time); a token sequence (``(N, L, C)``, ViT/XCiT/CaiT blocks) is
                          reshaped to its patch grid and resampled to it (learned 2x transposed
                          convolutions up, max pooling down), as detectron2_timm's XCiT does
``CHANNELS``              each output's channels, checked against the model
``REMOVE_LAYERS``         top-level modules replaced by ``nn.Identity`` (must exist)
``FREEZE_LAYERS``         output names (``REMAPS``) or top-level modules to freeze
``FREEZE_AT``             ``< 1`` nothing; ``k``: every module up to and including the ``k``-th
                          output's module, in the model's order (for ``layer1..layer4``:
                          the top-level children up to ``layer<k>``)
``PRETRAINED``            timm's published weights
``FIXED_INPUT_SIZE``      the model is built for ``(min - min % s, max - max % s)`` of
                          ``INPUT.MIN_SIZE_TRAIN``/``MAX_SIZE_TRAIN`` (``s`` the largest stride)
                          and inputs are zero-padded to it
========================  ========================================================================

Parameters no requested output depends on (XCiT's class token, blocks after the last output) get
``requires_grad=False`` (listed in ``unused_parameters``), so DDP sees no parameter without a
gradient. Frozen modules get ``requires_grad=False`` and their BatchNorms become ``FrozenBatchNorm2d``
(detectron2's when installed), as detectron2 freezes its own stages. The forward pass stops once
the last requested output is computed, so removed heads and unused tail modules cost nothing.
"""
import difflib
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from ...models.backbones.timm_backbone import freeze_batch_norms
from ...utils.optional import require
from .contract import BACKBONE_BASE, Detectron2Contract


class _OutputsReady(Exception):
    """Raised by the last output's hook: the rest of the timm forward is not needed."""


def _close(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=3)
    return f'; did you mean {close}?' if close else ''


def _resampler(channels: int, measured: int, declared: int, name: str) -> nn.Module:
    """A token map at stride ``measured`` brought to stride ``declared`` (powers of two)."""
    if declared == measured:
        return nn.Identity()
    ratio = max(declared, measured) / min(declared, measured)
    steps = int(round(math.log2(ratio)))
    if 2 ** steps != ratio:
        raise ValueError(f'STRIDES: output {name!r} is a token map of stride {measured}; '
                         f'declared stride {declared} is not {measured} times a power of two')
    if declared > measured:
        return nn.MaxPool2d(kernel_size=int(ratio), stride=int(ratio))
    layers: List[nn.Module] = []
    for i in range(steps):  # ConvT (+ BN + GELU between steps), as XCiT's detection neck
        layers.append(nn.ConvTranspose2d(channels, channels, kernel_size=2, stride=2))
        if i < steps - 1:
            layers += [nn.BatchNorm2d(channels), nn.GELU()]
    return nn.Sequential(*layers)


class TimmModuleBackbone(Detectron2Contract, BACKBONE_BASE):
    """A timm model's named modules as detectron2 backbone outputs (detectron2_timm's meaning).

    Args:
        model_name: a timm model name.
        out_features: dotted module names, ``feature_info`` indices, or ``()`` for timm's
            ``feature_info`` modules.
        remaps: output names, one per output (``()``: the module names).
        strides: the stride of each output (``()``: as measured).
        channels: the channels of each output, checked (``()``: as measured).
        remove_layers: top-level modules to replace by ``nn.Identity``.
        freeze_at: ``< 1`` nothing, ``k`` every module up to the ``k``-th output's.
        freeze_layers: output names or top-level module names to freeze.
        pretrained: timm's published weights.
        img_size: build the model for this ``(H, W)`` and zero-pad inputs to it.
        in_channels: input channels.

    ``forward(x)`` returns ``{name: (N, C, ceil(H / s), ceil(W / s))}``. Shapes are measured by a
    forward pass at construction, so ``output_shape()`` is known before any input.
    """

    def __init__(self, model_name: str, out_features: Sequence[Union[str, int]] = (),
                 remaps: Sequence[str] = (), strides: Sequence[int] = (),
                 channels: Sequence[int] = (), remove_layers: Sequence[str] = (),
                 freeze_at: int = 0, freeze_layers: Sequence[str] = (),
                 pretrained: bool = False, img_size: Optional[Tuple[int, int]] = None,
                 in_channels: int = 3):
        super().__init__()
        timm = require('timm', 'TimmModuleBackbone')
        if not isinstance(model_name, str) or not timm.is_model(model_name):
            raise KeyError(f'model_name={model_name!r} is not a timm model'
                           f'{_close(str(model_name), timm.list_models())}')
        kwargs = dict(pretrained=bool(pretrained), in_chans=int(in_channels))
        if img_size is not None:
            kwargs['img_size'] = tuple(int(s) for s in img_size)
        try:
            model = timm.create_model(model_name, **kwargs)
        except TypeError as error:
            if img_size is None or 'img_size' not in str(error):
                raise
            raise ValueError(f'INPUT.FIXED_INPUT_SIZE=True builds {model_name} for img_size='
                             f'{kwargs["img_size"]}, but it takes no img_size (a model without '
                             f'a fixed input size): set INPUT.FIXED_INPUT_SIZE False') from None
        children = [n for n, _ in model.named_children()]
        for name in remove_layers:
            if name not in children:
                raise KeyError(f'REMOVE_LAYERS: {name!r} is not a top-level module of '
                               f'{model_name}; its top-level modules are {children}'
                               f'{_close(name, children)}')
            setattr(model, name, nn.Identity())
        modules = self._output_modules(model, model_name, list(out_features), remove_layers)
        names = list(remaps) or list(modules)
        if len(names) != len(modules):
            raise ValueError(f'REMAPS={list(remaps)} must give one name per output {modules}')
        if len(set(names)) != len(names):
            raise ValueError(f'REMAPS={list(remaps)} names two outputs alike')
        self.model = model
        self.model_name = model_name
        self._modules_of = dict(zip(names, modules))
        self._img_size = kwargs.get('img_size')
        self._nhwc = getattr(model, 'output_fmt', 'NCHW') == 'NHWC'
        measured = self._measure(in_channels)
        strides = list(strides) or [measured[n][1] for n in names]
        if len(strides) != len(names):
            raise ValueError(f'STRIDES={list(strides)} must give one stride per output {names}')
        self.resample = nn.ModuleList()  # one per output (names may contain dots)
        out_channels = []
        for name, stride in zip(names, strides):
            got_channels, got_stride, tokens = measured[name]
            if not tokens and int(stride) != got_stride:
                raise ValueError(f'STRIDES: output {name!r} (module '
                                 f'{self._modules_of[name]!r}) is declared stride {stride} but '
                                 f'has stride {got_stride} in {model_name}')
            self.resample.append(_resampler(got_channels, got_stride, int(stride), name)
                                 if tokens else nn.Identity())
            out_channels.append(got_channels)
        if channels and [int(c) for c in channels] != out_channels:
            raise ValueError(f'CHANNELS={list(channels)} but {model_name} outputs {names} have '
                             f'{out_channels} channels')
        self._token_stride = {n: measured[n][1] for n in names if measured[n][2]}
        self.out_names = tuple(names)
        self.out_channels = tuple(out_channels)
        self.out_strides = tuple(int(s) for s in strides)
        self._freeze(int(freeze_at), list(freeze_layers), children)

    # ----- construction ------------------------------------------------------------------------
    @staticmethod
    def _output_modules(model, model_name, out_features, removed) -> List[str]:
        info = [f for f in getattr(model, 'feature_info', []) or []
                if f['module'].split('.')[0] not in removed]
        if not out_features or all(isinstance(f, int) for f in out_features):
            if not info:
                raise ValueError(f'OUT_FEATURES is empty or indices but {model_name} has no '
                                 f'feature_info: name its modules')
            if not out_features:
                return [f['module'] for f in info]
            bad = [i for i in out_features if not -len(info) <= i < len(info)]
            if bad:
                raise ValueError(f'OUT_FEATURES indices {bad} are out of range for the '
                                 f'{len(info)} feature_info entries of {model_name} '
                                 f'({[f["module"] for f in info]})')
            return [info[i]['module'] for i in out_features]
        if not all(isinstance(f, str) for f in out_features):
            raise TypeError(f'OUT_FEATURES={out_features} mixes module names and indices')
        known = dict(model.named_modules())
        for name in out_features:
            if name not in known or name == '':
                raise KeyError(f'OUT_FEATURES: {name!r} is not a module of {model_name}'
                               f'{_close(name, [n for n in known if n])}')
            if name.split('.')[0] in removed:
                raise ValueError(f'OUT_FEATURES: {name!r} is inside a module in REMOVE_LAYERS')
        return list(out_features)

    def _probe_size(self) -> Tuple[int, int]:
        if self._img_size is not None:
            return self._img_size
        size = (getattr(self.model, 'pretrained_cfg', None) or {}).get('input_size')
        return tuple(size[-2:]) if size else (224, 224)

    def _measure(self, in_channels: int) -> Dict[str, Tuple[int, int, bool]]:
        """``{name: (channels, stride, is_token_sequence)}`` from one forward pass, which also
        finds the parameters the outputs do not depend on (see ``unused_parameters``)."""
        h, w = self._probe_size()
        was_training = self.model.training
        self.model.eval()
        with torch.enable_grad():
            raw = self._run(torch.zeros(1, in_channels, h, w))
            self._freeze_unused(raw.values())
        if self._img_size is None:
            # detectron2 feeds images of any size: a model that takes only the size it was
            # built for (ViT/Swin/CaiT with strict sizes, BoTNet) needs FIXED_INPUT_SIZE
            try:
                with torch.no_grad():
                    self._run(torch.zeros(1, in_channels, h + 64, w + 32))
            except Exception as error:
                raise ValueError(f'{self.model_name} takes only {h}x{w} inputs '
                                 f'({type(error).__name__}: {error}); '
                                 f'detectron2 images vary in size: set INPUT.FIXED_INPUT_SIZE '
                                 f'True (img_size=) to build it for the train size and pad to '
                                 f'it') from None
        self.model.train(was_training)
        out = {}
        for name, tensor in raw.items():
            if tensor.dim() == 3:
                stride, _ = self._token_layout(tensor.shape[1], h, w, name)
                out[name] = (int(tensor.shape[2]), stride, True)
            elif tensor.dim() == 4:
                c, th, tw = ((tensor.shape[3], tensor.shape[1], tensor.shape[2]) if self._nhwc
                             else tensor.shape[1:])
                # the power of two nearest h / th: valid-padding models (Inception) lose a
                # few pixels per stage
                stride = 2 ** round(math.log2(h / th))
                out[name] = (int(c), int(stride), False)
            else:
                raise ValueError(f'OUT_FEATURES: module {self._modules_of[name]!r} outputs a '
                                 f'{tensor.dim()}-d tensor {tuple(tensor.shape)}, not a feature '
                                 f'map (N, C, H, W) or tokens (N, L, C)')
        return out

    def _freeze_unused(self, outputs) -> None:
        """Parameters no output depends on (XCiT's/CaiT's class token, blocks after the last
        output) get ``requires_grad=False``: they would get no gradient, which DDP refuses.
        Their names are kept in ``unused_parameters``."""
        used, seen = set(), set()
        stack = [t.grad_fn for t in outputs if t.grad_fn is not None]
        while stack:
            fn = stack.pop()
            if fn is None or fn in seen:
                continue
            seen.add(fn)
            variable = getattr(fn, 'variable', None)
            if variable is not None:
                used.add(id(variable))
            stack.extend(next_fn for next_fn, _ in fn.next_functions)
        self.unused_parameters = tuple(n for n, p in self.model.named_parameters()
                                       if p.requires_grad and id(p) not in used)
        for name in self.unused_parameters:
            self.model.get_parameter(name).requires_grad_(False)

    def _token_layout(self, length: int, h: int, w: int, name: str) -> Tuple[int, int]:
        """(stride, number of leading class/register tokens) of an ``(N, L, C)`` output."""
        for stride in (1, 2, 4, 8, 14, 16, 32, 64):
            grid = math.ceil(h / stride) * math.ceil(w / stride)
            if 0 <= length - grid <= 16:
                return stride, length - grid
        raise ValueError(f'OUT_FEATURES: module {self._modules_of[name]!r} outputs {length} '
                         f'tokens for a {h}x{w} input: not a patch grid')

    def _freeze(self, freeze_at: int, freeze_layers: List[str], children: List[str]) -> None:
        targets = []
        if freeze_at >= 1:
            if freeze_at > len(self.out_names):
                raise ValueError(f'FREEZE_AT={freeze_at} but there are only '
                                 f'{len(self.out_names)} outputs {list(self.out_names)}')
            last = self._modules_of[self.out_names[freeze_at - 1]]
            order = [n for n, _ in self.model.named_modules()][1:]
            end = order.index(last)
            # the modules registered before the output's module (not its ancestors, which hold
            # later modules too), the output's module and its submodules
            targets += [n for n in order[:end + 1] if not last.startswith(n + '.')]
        for name in freeze_layers:
            if name in self._modules_of:
                targets.append(self._modules_of[name])
            elif name in children:
                targets.append(name)
            else:
                raise KeyError(f'FREEZE_LAYERS: {name!r} is neither an output name '
                               f'{list(self.out_names)} nor a top-level module {children}')
        frozen_cls = None
        try:
            from detectron2.layers import FrozenBatchNorm2d as frozen_cls
        except ImportError:
            pass
        targets = set(targets)
        #: the outermost frozen modules (their whole subtrees are frozen)
        self.frozen_modules = tuple(n for n, _ in self.model.named_modules() if n in targets and
                                    not any(n.startswith(o + '.') for o in targets))
        for name in self.frozen_modules:
            self.model.get_submodule(name).requires_grad_(False)
        for name in self.frozen_modules:
            parent, _, leaf = name.rpartition('.')
            owner = self.model.get_submodule(parent) if parent else self.model
            setattr(owner, leaf, freeze_batch_norms(getattr(owner, leaf), frozen_cls))

    # ----- forward -----------------------------------------------------------------------------
    def _run(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        captured: Dict[str, torch.Tensor] = {}
        wanted = dict(self._modules_of)
        handles = []

        def hook_for(name):
            def hook(module, args, output):
                if name in captured:
                    raise RuntimeError(f'module {wanted[name]!r} ran twice in one forward of '
                                       f'{self.model_name}: its output is ambiguous')
                captured[name] = output[0] if isinstance(output, (tuple, list)) else output
                if len(captured) == len(wanted):
                    raise _OutputsReady
            return hook

        for name, module_name in wanted.items():
            handles.append(self.model.get_submodule(module_name).register_forward_hook(
                hook_for(name)))
        try:
            self.model(x)
        except _OutputsReady:
            pass
        finally:
            for handle in handles:
                handle.remove()
        missing = [wanted[n] for n in wanted if n not in captured]
        if missing:
            raise RuntimeError(f'modules {missing} did not run in the forward of '
                               f'{self.model_name}')
        return captured

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        h, w = x.shape[-2:]
        if self._img_size is not None:
            fh, fw = self._img_size
            if h > fh or w > fw:
                raise ValueError(f'input {h}x{w} is larger than the fixed input size {fh}x{fw} '
                                 f'(INPUT.FIXED_INPUT_SIZE)')
            x = F.pad(x, (0, fw - w, 0, fh - h))
        raw = self._run(x)
        out = {}
        for name, stride, resample in zip(self.out_names, self.out_strides, self.resample):
            t = raw[name]
            if name in self._token_stride:
                s = self._token_stride[name]
                gh, gw = math.ceil(x.shape[-2] / s), math.ceil(x.shape[-1] / s)
                t = t[:, t.shape[1] - gh * gw:].transpose(1, 2).reshape(t.shape[0], -1, gh, gw)
                t = resample(t)
            elif self._nhwc:
                t = t.permute(0, 3, 1, 2)
            out[name] = t[..., :math.ceil(h / stride), :math.ceil(w / stride)].contiguous()
        return out


__all__ = ['TimmModuleBackbone']
