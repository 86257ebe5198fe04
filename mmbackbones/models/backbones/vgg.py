"""VGG (https://arxiv.org/abs/1409.1556): five stages of 3x3 convs, each ending in a 2x2 max
pool; and mmdet's SSD variant of VGG-16.

One builder (:func:`vgg_features`) makes the ``features`` ``Sequential`` of both classes, in
one of two key layouts that differ only in how a conv block is stored:

* ``layout='mmpretrain'``: one entry per conv block (``features.N.conv.*``, ``features.N.bn.*``:
  mmcv's ``ConvModule`` names), mmpretrain 1.2.0's ``VGG``;
* ``layout='torchvision'``: conv, norm and activation as separate entries
  (``features.N.weight``), the layout of mmcv's ``VGG`` (hence mmdet's ``SSDVGG``), torchvision
  and timm (``vgg11``..``vgg19(_bn)``: their features load unchanged).

:class:`VGG` is mmpretrain's signature, ``num_classes > 0`` included (its 4096-wide classifier,
``classifier.*``, output last with stride ``None``). :class:`SSDVGG` is mmdet 3.3's: VGG-16 with
``ceil_mode`` pools, no last pool, then ``fc6`` (3x3 stride-1 pool, 3x3 conv dilated 6 to 1024
channels) and ``fc7`` (1x1 conv) appended to ``features``; its outputs are the entries of
``out_feature_indices`` (``features.22``: conv4_3's ReLU at stride 8, ``features.34``: fc7's
at stride 16). The L2 normalisation of SSD is not part of it: in mmdet 3.3 it lives in
``SSDNeck`` (``neck.l2_norm.weight``).

Layers after the last output are not built; a full checkpoint still loads (the keys of the
unbuilt entries are reported as not built, :mod:`..layers.unbuilt`).
"""
import copy
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import (check_bool, check_choice, check_frozen_stages,
                                 check_positive_int, normalize_out_indices, to_plain)
from ..base import BaseBackbone, caller_stacklevel
from ..layer_decay import strip_prefix
from ..layers.conv_norm_act import ConvNormAct
from ..layers.mmcv_bricks import build_activation_layer, build_conv_layer, build_norm_layer
from ..layers.norm import check_norm_cfg
from ..layers.pos_embed import is_tracing
from ..layers.spatial_reduction import check_act_cfg
from ..layers.unbuilt import declare_unbuilt_entries

LAYOUTS = ('mmpretrain', 'torchvision')
ARCH_SETTINGS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3),
                 19: (2, 2, 4, 4, 4)}
DEFAULT_INIT_CFG = [dict(type='Kaiming', layer=['Conv2d']),
                    dict(type='Constant', val=1., layer=['_BatchNorm']),
                    dict(type='Normal', std=0.01, layer=['Linear'])]
MMDET_INIT_CFG = [dict(type='Kaiming', layer='Conv2d'),
                  dict(type='Constant', val=1, layer='BatchNorm2d'),
                  dict(type='Normal', std=0.01, layer='Linear')]


def stage_channels(i: int) -> int:
    """Output channels of stage ``i`` (0-based): 64, 128, 256, 512, 512."""
    return 64 * 2 ** i if i < 4 else 512


def entries_per_block(layout: str, with_norm: bool) -> int:
    return 1 if layout == 'mmpretrain' else 2 + with_norm


def features_length(stage_blocks: Sequence[int], layout: str, with_norm: bool,
                    with_last_pool: bool) -> int:
    """The number of ``features`` entries of the whole network (every stage built)."""
    per = entries_per_block(layout, with_norm)
    return sum(n * per + 1 for n in stage_blocks) - (0 if with_last_pool else 1)


def vgg_features(stage_blocks: Sequence[int], num_built: int, in_channels: int,
                 dilations: Sequence[int], conv_cfg, norm_cfg, act_cfg, ceil_mode: bool,
                 with_last_pool: bool, layout: str) -> Tuple[List[nn.Module], List[List[int]]]:
    """The ``features`` entries of the first ``num_built`` stages and their ``[start, end)``
    ranges (mmpretrain's ``range_sub_modules``). Every conv is 3x3 with a bias, padding =
    dilation; a stage ends with a 2x2 max pool, except the network's last stage without
    ``with_last_pool``."""
    layers, ranges = [], []
    for i, num_blocks in enumerate(stage_blocks[:num_built]):
        start, out_channels = len(layers), stage_channels(i)
        for _ in range(num_blocks):
            if layout == 'mmpretrain':
                layers.append(ConvNormAct(in_channels, out_channels, 3, padding=dilations[i],
                                          dilation=dilations[i], bias=True, conv_cfg=conv_cfg,
                                          norm_cfg=norm_cfg, act_cfg=act_cfg))
            else:
                layers.append(build_conv_layer(conv_cfg, in_channels, out_channels, 3,
                                               padding=dilations[i], dilation=dilations[i]))
                if norm_cfg is not None:
                    layers.append(build_norm_layer(norm_cfg, out_channels)[1])
                act = dict(act_cfg)
                if act['type'] in ('ReLU', 'ReLU6', 'LeakyReLU', 'ELU', 'SiLU', 'HSwish'):
                    act.setdefault('inplace', True)  # as mmcv's, torchvision's, timm's VGG
                layers.append(build_activation_layer(act))
            in_channels = out_channels
        if with_last_pool or i < len(stage_blocks) - 1:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=ceil_mode))
        ranges.append([start, len(layers)])
    return layers, ranges


def walk_features(features: nn.Sequential, in_channels: int) -> List[Tuple[int, int]]:
    """``(channels, stride)`` after each entry of ``features`` (convs change the channels,
    strided convs and pools the stride)."""
    out, channels, stride = [], in_channels, 1
    for layer in features:
        conv = layer.conv if isinstance(layer, ConvNormAct) else layer
        if isinstance(conv, nn.Conv2d):
            channels, stride = conv.out_channels, stride * conv.stride[0]
        elif isinstance(layer, nn.MaxPool2d):
            s = layer.stride
            stride *= s if isinstance(s, int) else s[0]
        out.append((channels, stride))
    return out


def _layer_depth(model, param_name: str, prefix: str) -> Tuple[int, int]:
    """``(i + 1, n + 2)`` for a parameter of stage ``i`` of ``n`` built stage ranges, 0 none
    (VGG has no stem), ``n + 1`` anything else (the classifier, SSD's fc6/fc7, a head)."""
    ranges = model.range_sub_modules
    total = len(ranges) + 2
    name = strip_prefix(param_name, prefix)
    parts = (name or '').split('.')
    if len(parts) > 2 and parts[0] == 'features' and parts[1].isdigit():
        index = int(parts[1])
        for i, (start, end) in enumerate(ranges):
            if start <= index < end:
                return i + 1, total
    return total - 1, total


def check_input_size(model, x: torch.Tensor) -> None:
    """``ValueError`` when a floor-mode 2x2 max pool would get a side of 1 (its output would
    be empty): ``k`` such pools need sides of at least ``2^k``."""
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d) and m.stride == 2]
    if not pools or pools[0].ceil_mode or is_tracing():
        return
    least = 2 ** len(pools)
    if min(x.shape[-2:]) < least:
        raise ValueError(f'{type(model).__name__}: input size {tuple(x.shape[-2:])} is too '
                         f'small: its {len(pools)} max pools (ceil_mode=False) need sides of at '
                         f'least {least}')


def _mmpretrain_to_flat(state_dict, prefix, *args) -> None:
    """Load pre-hook of ``layout='torchvision'``: ``features.N.conv|bn.*`` keys (mmpretrain's
    layout, of a whole 5-stage VGG) renamed to the flat indices in place."""
    from ...checkpoint.converters.torchvision_vgg import ours_to_flat
    mine = {k[len(prefix):]: k for k in state_dict if k.startswith(prefix + 'features.')}
    if not any('.conv.' in k for k in mine):
        return
    try:
        flat = ours_to_flat({k: state_dict[full] for k, full in mine.items()})
    except ValueError:
        return  # not a whole 5-stage VGG: left for the fit check to refuse
    for full in mine.values():
        del state_dict[full]
    state_dict.update((prefix + k, v) for k, v in flat.items())


def _check_dilations(dilations, num_stages: int) -> Tuple[int, ...]:
    dilations = to_plain(dilations)
    if not isinstance(dilations, (list, tuple)) or len(dilations) != num_stages:
        raise ValueError(f'dilations must have num_stages={num_stages} entries (one per '
                         f'stage), got {dilations!r}')
    return tuple(check_positive_int('each of dilations', d) for d in dilations)


@MODELS.register_module()
class VGG(BaseBackbone):
    """VGG backbone, mmpretrain 1.2.0's signature and defaults.

    Args:
        depth (int): 11, 13, 16 or 19 (``arch_settings``: conv blocks per stage).
        num_classes (int): > 0 builds mmpretrain's classifier (``classifier.*``: Linear 25088
            -> 4096 -> 4096 -> ``num_classes``, ReLU and dropout between; it needs 224 px
            inputs) whose logits come out last, always, as there; <= 0 a plain backbone.
        num_stages (int): 1..5 stages.
        dilations (Sequence[int]): one per stage.
        out_indices (int | Sequence[int], optional): stages to return (0..num_stages-1;
            ``num_stages`` is the classifier when ``num_classes > 0``). Default: the classifier
            when there is one, else the last stage (mmpretrain's ``(5, )`` / ``(4, )``).
            Stages after the last one asked for are not built (all of them with a classifier).
        frozen_stages (int): as mmpretrain: stages ``0..frozen_stages-1`` (0-based) frozen,
            i.e. stages ``1..frozen_stages`` in the zoo's count (VGG has no stem; 0 freezes
            nothing), ``num_stages + 1`` also the classifier.
        conv_cfg, norm_cfg, act_cfg (dict): layer configs; a ``norm_cfg`` gives every conv a
            norm (mmpretrain's ``with_norm``: the ``vgg*bn`` models).
        norm_eval (bool): BatchNorms in eval mode during training.
        ceil_mode (bool): ``ceil_mode`` of the max pools.
        with_last_pool (bool): keep the last stage's max pool.
        init_cfg: mmengine init config; default mmpretrain's.
        in_channels (int): input image channels (extra; mmpretrain fixes 3).
        layout (str): ``'mmpretrain'`` (``features.N.conv.*``) or ``'torchvision'``
            (``features.N.weight``: mmcv's, torchvision's and timm's layout) (extra).

    Input ``(N, in_channels, H, W)``; stage ``i`` gives ``(N, C_i, H / 2^(i+1), W / 2^(i+1))``
    (the last without ``with_last_pool``: ``H / 2^i``), ``C_i`` 64, 128, 256, 512, 512, named
    ``stage{i+1}``; the classifier ``(N, num_classes)``.
    """

    arch_settings = ARCH_SETTINGS

    def __init__(self, depth: int, num_classes: int = -1, num_stages: int = 5,
                 dilations: Sequence[int] = (1, 1, 1, 1, 1), out_indices=None,
                 frozen_stages: int = -1, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, act_cfg: dict = dict(type='ReLU'),
                 norm_eval: bool = False, ceil_mode: bool = False, with_last_pool: bool = True,
                 init_cfg=DEFAULT_INIT_CFG, in_channels: int = 3, layout: str = 'mmpretrain'):
        if init_cfg == DEFAULT_INIT_CFG:  # a copy: mmengine keeps (and may edit) it
            init_cfg = copy.deepcopy(DEFAULT_INIT_CFG)
        super().__init__(init_cfg=init_cfg)
        check_choice('depth', depth, self.arch_settings)
        if not 1 <= check_positive_int('num_stages', num_stages) <= 5:
            raise ValueError(f'num_stages must be in 1..5, got {num_stages}')
        self.dilations = _check_dilations(dilations, num_stages)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int):
            raise TypeError(f'num_classes must be an int (<= 0: no classifier), got '
                            f'{num_classes!r}')
        for name, value in (('norm_eval', norm_eval), ('ceil_mode', ceil_mode),
                            ('with_last_pool', with_last_pool)):
            check_bool(name, value)
        self.layout = check_choice('layout', layout, LAYOUTS)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.norm_cfg = None if norm_cfg is None else check_norm_cfg(norm_cfg)
        self.act_cfg = check_act_cfg(act_cfg)
        self.depth, self.num_classes, self.norm_eval = depth, num_classes, norm_eval
        self.with_norm = norm_cfg is not None
        self.stage_blocks = self.arch_settings[depth][:num_stages]
        with_classifier = num_classes > 0
        # the classifier counts as the stage after the last (mmpretrain's index num_stages)
        self.num_stages = num_stages + with_classifier
        if out_indices is None:
            out_indices = (self.num_stages - 1, )
        indices = normalize_out_indices(out_indices, self.num_stages)
        if with_classifier:  # mmpretrain returns the logits last, asked for or not
            indices = tuple(i for i in indices if i < num_stages) + (num_stages, )
        self.out_indices = indices
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_stages)

        num_built = num_stages if with_classifier else max(indices) + 1
        layers, self.range_sub_modules = vgg_features(
            self.stage_blocks, num_built, self.in_channels, self.dilations, conv_cfg,
            self.norm_cfg, self.act_cfg, ceil_mode, with_last_pool, layout)
        self.module_name = 'features'
        self.features = nn.Sequential(*layers)
        if layout == 'torchvision':  # mmpretrain-layout checkpoints load too
            self._register_load_state_dict_pre_hook(_mmpretrain_to_flat)
        declare_unbuilt_entries(self, {'features': (len(layers), features_length(
            self.stage_blocks, layout, self.with_norm, with_last_pool))})
        if with_classifier:
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
                nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
                nn.Linear(4096, num_classes))
        shapes = walk_features(self.features, self.in_channels)
        stage_shapes = [shapes[end - 1] for _, end in self.range_sub_modules]
        channels = [num_classes if i == num_stages else stage_shapes[i][0] for i in indices]
        strides = [None if i == num_stages else stage_shapes[i][1] for i in indices]
        names = ['classifier' if i == num_stages else f'stage{i + 1}' for i in indices]
        self._set_outputs(channels, strides, names)
        self._freeze_stages()

    def _stage(self, i: int) -> nn.ModuleList:
        start, end = self.range_sub_modules[i]
        return nn.ModuleList(self.features[start:end])

    def stem_and_stages(self) -> List[nn.Module]:
        # no stem (an empty group); throwaway containers of the features entries
        groups = [nn.ModuleList()] + [self._stage(i) for i in range(len(self.range_sub_modules))]
        if self.num_classes > 0:
            groups.append(self.classifier)
        return groups

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(i + 1, num_built_stages + 2)`` for stage ``i``'s parameters; the last depth the
        classifier (or a head)."""
        return _layer_depth(self, param_name, prefix)

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the stages' layers (and the classifier, after a
        flatten) in sequence (``layers.scripting.ScriptableStages``), a list of the same
        outputs, without the input-size checks."""
        from ..layers.scripting import ScriptableStages
        stages = [nn.Sequential(*[self.features[j] for j in range(start, end)])
                  for start, end in self.range_sub_modules]
        if self.num_classes > 0:
            stages.append(nn.Sequential(nn.Flatten(1), self.classifier))
        return ScriptableStages(nn.Identity(), stages, self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        check_input_size(self, x)
        size = tuple(x.shape[-2:])
        outs = {}
        for i, (start, end) in enumerate(self.range_sub_modules):
            for j in range(start, end):
                x = self.features[j](x)
            outs[i] = x
        if self.num_classes > 0:
            if tuple(x.shape[-2:]) != (7, 7) and not is_tracing():
                raise ValueError(f'VGG: the classifier (num_classes={self.num_classes}) needs a '
                                 f'7x7 last map (224 px inputs for 5 stages); the input size '
                                 f'{size} gives {tuple(x.shape[-2:])}')
            outs[len(self.range_sub_modules)] = self.classifier(torch.flatten(x, 1))
        return tuple(outs[i] for i in self.out_indices)


@MODELS.register_module()
class SSDVGG(BaseBackbone):
    """mmdet 3.3's ``SSDVGG``: its signature, defaults and parameter names (``features.N.*``).

    Args:
        depth (int): 11, 13, 16 or 19 (SSD uses 16).
        with_last_pool (bool): keep the last stage's max pool (default False).
        ceil_mode (bool): ``ceil_mode`` of the max pools (default True: 300 px -> 38 -> 19).
        out_indices (Sequence[int]): mmcv's stage indices, checked (0..5) and kept, but
            unused by the forward, as in mmdet.
        out_feature_indices (Sequence[int]): the ``features`` entries to return, increasing
            (mmdet returns them in network order); entries after the last are not built.
        pretrained (str, optional): deprecated spelling of a Pretrained ``init_cfg``.
        init_cfg: default mmdet's (Kaiming convs, BN to 1, Normal linears).
        input_size, l2_norm_scale: deprecated in mmdet, accepted with a warning, unused.

    Output: a tuple (also for one index; mmdet returns a bare tensor then) named
    ``features{i}``; for the defaults ``(N, 512, H/8, W/8)`` and ``(N, 1024, H/16, W/16)``
    (sides rounded up by the ceil-mode pools).
    """

    # no ``arch_settings`` here: SSD is VGG-16 (fc6/fc7 and the default out_feature_indices
    # are VGG-16's); the depth still picks a row of ARCH_SETTINGS, as in mmdet
    extra_setting = {
        300: (256, 'S', 512, 128, 'S', 256, 128, 256, 128, 256),
        512: (256, 'S', 512, 128, 'S', 256, 128, 'S', 256, 128, 'S', 256, 128),
    }

    def __init__(self, depth: int, with_last_pool: bool = False, ceil_mode: bool = True,
                 out_indices: Sequence[int] = (3, 4),
                 out_feature_indices: Sequence[int] = (22, 34), pretrained: Optional[str] = None,
                 init_cfg=None, input_size: Optional[int] = None,
                 l2_norm_scale: Optional[float] = None):
        if init_cfg is None and pretrained is None:
            init_cfg = copy.deepcopy(MMDET_INIT_CFG)
        super().__init__(init_cfg=self._pretrained_to_init_cfg(pretrained, init_cfg))
        check_choice('depth', depth, ARCH_SETTINGS)
        check_bool('with_last_pool', with_last_pool)
        check_bool('ceil_mode', ceil_mode)
        self.depth, self.in_channels = depth, 3
        self.stage_blocks = ARCH_SETTINGS[depth]
        self.stage_out_indices = normalize_out_indices(out_indices, 6, 'out_indices')
        full = features_length(self.stage_blocks, 'torchvision', False, with_last_pool) + 5
        indices = normalize_out_indices(out_feature_indices, full, 'out_feature_indices')
        if list(indices) != sorted(indices):
            raise ValueError(f'out_feature_indices must be increasing (mmdet returns the '
                             f'features in network order), got {tuple(out_feature_indices)}')
        self.out_feature_indices = indices
        for name, value in (('input_size', input_size), ('l2_norm_scale', l2_norm_scale)):
            if value is not None:
                warnings.warn(f'{name} is deprecated in mmdet\'s SSDVGG and unused (the L2 '
                              f'norm is in SSDNeck)', UserWarning, stacklevel=caller_stacklevel())

        layers, self.range_sub_modules = vgg_features(
            self.stage_blocks, 5, 3, (1, ) * 5, None, None, dict(type='ReLU'), ceil_mode,
            with_last_pool, 'torchvision')
        layers += [nn.MaxPool2d(kernel_size=3, stride=1, padding=1),  # fc6, fc7
                   nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6),
                   nn.ReLU(inplace=True), nn.Conv2d(1024, 1024, kernel_size=1),
                   nn.ReLU(inplace=True)]
        del layers[indices[-1] + 1:]
        for i in indices[:-1]:  # an output read before an in-place ReLU would be overwritten
            if isinstance(layers[i + 1], nn.ReLU):
                layers[i + 1] = nn.ReLU(inplace=False)
        self.range_sub_modules = [[s, min(e, len(layers))] for s, e in self.range_sub_modules
                                  if s < len(layers)]
        self.module_name = 'features'
        self.features = nn.Sequential(*layers)
        declare_unbuilt_entries(self, {'features': (len(layers), full)})
        self.out_indices = indices
        shapes = walk_features(self.features, 3)
        self._set_outputs([shapes[i][0] for i in indices], [shapes[i][1] for i in indices],
                          [f'features{i}' for i in indices])

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """As :meth:`VGG.get_layer_depth`; fc6/fc7 at the last depth."""
        return _layer_depth(self, param_name, prefix)

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the layers up to each output index in sequence
        (``layers.scripting.ScriptableStages``), a list of the same maps, without the
        input-size checks."""
        from ..layers.scripting import ScriptableStages
        ends = sorted(set(self.out_feature_indices))
        starts = [0] + [end + 1 for end in ends[:-1]]
        stages = [nn.Sequential(*[self.features[j] for j in range(start, end + 1)])
                  for start, end in zip(starts, ends)]
        return ScriptableStages(nn.Identity(), stages,
                                [ends.index(i) for i in self.out_feature_indices])

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        check_input_size(self, x)
        outs = []
        wanted = set(self.out_feature_indices)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                outs.append(x)
        return tuple(outs)
