"""ResNet, ResNetV1c, ResNetV1d, ResNeXt (mmpretrain names).

Parameter and buffer names are exactly mmpretrain 1.2.0's (``conv1``, ``bn1``, ``layer1.0.conv1``,
..., ``stem.0.conv``/``stem.0.bn`` for the deep stem), so an mmpretrain/mmcls checkpoint loads with
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone')`` (detectron2 and
torchvision checkpoints are converted on load). ``forward`` returns a tuple in ``out_indices``
order; outputs are named ``res2``..``res5`` (stage ``i`` -> ``res{i+1}``), strides follow
``strides`` (``dilations`` keep the resolution).

The detectron2/detrex front end (``BasicStem``, ``make_stage``, ``Detectron2ResNet`` with
detectron2's parameter names) is ``mmbackbones.integrations.detectron2``. How the two spell the
same network (DC5 = ``res5_dilation=2``)::

    detectron2 / detrex                             OpenMMLab (this module)
    BasicStem(in_channels=3, out_channels=64,       ResNet(in_channels=3, stem_channels=64,
              norm='FrozenBN')                             norm_cfg=dict(type='FrozenBN'),
    make_resnet_stages(depth=50,                           depth=50,
        stride_in_1x1=True,                                style='caffe',  (False: 'pytorch')
        res5_dilation=2,                                   strides=(1, 2, 2, 1),
                                                           dilations=(1, 1, 1, 2),
        num_groups=32, width_per_group=4)           ResNeXt(groups=32, width_per_group=4, ...)
    out_features=['res3', 'res4', 'res5']                  out_indices=(1, 2, 3),
    freeze_at=2                                            frozen_stages=1)

Deploy: ``model.fuse()`` folds every eval-mode BN/FrozenBN into its conv, after which CPU
inference runs each conv+ReLU and conv+add+ReLU as one oneDNN kernel (``layers.fuse``);
``channels_last=True`` runs the convs in NHWC (outputs are then channels-last tensors with the
same values). Both combine. ``forward`` itself is plain: the CPU fast paths (strided 1x1 shortcut
convs, the stem max pool) are layer classes that the builders pick under the one switch of
``layers/conv.py`` (``set_cpu_fast_paths``, ``apply_cpu_fast_paths``).
"""
import warnings
from typing import List, Optional, Sequence, Tuple, Union

import torch
from ..layers.mmcv_bricks import build_conv_layer, build_norm_layer
from mmengine.model.weight_init import constant_init
from torch import nn

from ...registry import MODELS
from ...utils.validation import (check_bool, check_choice, check_frozen_stages, check_positive_int,
                                 check_rate, normalize_out_indices)
from ..base import BaseBackbone
from ..host_args import take_host_args
from ..layer_decay import resnet_layer_depth
from ..layers.conv_norm_act import ConvNormAct
from ..layers.conv import build_max_pool
from ..layers.fuse import Conv2dReLU
from ..layers.norm import check_norm_cfg
from ..layers.resnet_blocks import (STYLES, BasicBlock, Bottleneck, ResLayer, get_expansion,
                                    stage_dcn_and_plugins)

STEM_STRIDE = 4  # stride-2 conv (or deep stem) + stride-2 max pool
# mmpretrain's/mmdet's default init when no init_cfg (nor pretrained) is given
DEFAULT_INIT_CFG = [dict(type='Kaiming', layer=['Conv2d']),
                    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
# mmdet's/mmseg's ResNet arguments that mmpretrain's has not -> the hosts that have them
HOST_ONLY = {**dict.fromkeys(('dcn', 'stage_with_dcn', 'plugins', 'pretrained'),
                             ('mmdet', 'mmseg')),
             **dict.fromkeys(('multi_grid', 'contract_dilation'), ('mmseg', ))}


def _check_int_tuple(name: str, value, length: int, length_name: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f'{name} must be a list/tuple of {length} positive ints, got {value!r}')
    if len(value) != length:
        raise ValueError(f'{name} must have one value per stage ({length_name}={length}), got '
                         f'{len(value)} values: {tuple(value)!r}')
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f'{name} must contain positive ints, got {tuple(value)!r}')
    return tuple(value)


@MODELS.register_module()
class ResNet(BaseBackbone):
    """Deep residual network (https://arxiv.org/abs/1512.03385), mmpretrain-compatible.

    Input ``(N, in_channels, H, W)``. Output ``i`` (stage ``s = out_indices[i]``) is
    ``(N, base_channels * expansion * 2**s, H / out_strides[i], W / out_strides[i])`` (sides
    rounded up), named ``res{s+2}``; with the defaults ``res2..res5`` at strides 4, 8, 16, 32 and
    256/512/1024/2048 channels (64/128/256/512 for depth 18/34).

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: input image channels.
        stem_channels: output channels of the stem.
        base_channels: middle channels of the first stage (its output has
            ``base_channels * expansion``).
        expansion: output/middle channel ratio of a block (default: 1 basic, 4 bottleneck).
        num_stages: 1..4 stages.
        strides: stride of the first block of each stage.
        dilations: dilation of each stage (DC5: ``strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)``,
            output stride 8: ``strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)``).
        out_indices: stages to return, in this order.
        style: ``'pytorch'`` (stride on the 3x3 conv) or ``'caffe'`` (on the first 1x1).
        deep_stem: three 3x3 convs instead of the 7x7 stem (ResNet-C).
        avg_down: average-pool then 1x1 conv in the downsample branch (ResNet-D).
        frozen_stages: -1 nothing, 0 the stem, k the stem and stages 1..k.
        conv_cfg / norm_cfg: mmcv conv and norm configs (BN, SyncBN, GN, FrozenBN).
        norm_eval: keep every BatchNorm in eval mode during training.
        with_cp: gradient checkpointing in every block.
        zero_init_residual: zero the last norm of every residual branch at init (skipped when
            ``init_cfg`` loads a checkpoint).
        drop_path_rate: stochastic depth, rising linearly over all the blocks of the depth.

    Our extras (keyword-only):
        channels_last: run in NHWC memory format (weights converted, input converted in
            ``forward``).
        out_names: names of the outputs (default ``res{s+2}``).

    The signature, defaults and meanings are mmpretrain's (``out_indices=(3,)``,
    ``norm_eval=False``, ``stem_channels=64``); mmdet's and mmseg's are the twins
    ``mmbackbones.mmdet.ResNet``/``mmbackbones.mmseg.ResNet`` (``mmbackbones.compat.resnet``).
    Their own arguments (:data:`HOST_ONLY`) still work here for now, with one warning:
        dcn / stage_with_dcn: mmdet's deformable 3x3 conv in the bottlenecks of the flagged
            stages (``dict(type='DCN'|'DCNv2', deform_groups=1)``; needs the full mmcv).
        plugins: mmdet's block plugins (``[dict(cfg=dict(type='ContextBlock', ratio=1/16),
            stages=(False, True, True, True), position='after_conv3')]``), built by mmcv.
        multi_grid: mmseg's per-block dilations of the last stage (DeepLabV3, e.g. (1, 2, 4)).
        contract_dilation: mmseg's: the first block of a dilated stage uses half the dilation.
        pretrained: the deprecated spelling of
            ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)`` (refused together
            with another ``init_cfg``).

    The deep stem's keys are ``stem.{0,1,2}.conv|bn``; mmdet/mmseg (mmcv-era) checkpoints with
    ``stem.0/1/3/4/6/7`` are converted on load (``checkpoint.converters.openmmlab_resnet``).
    """
    host_only = HOST_ONLY  # mmdet's/mmseg's own arguments (ResNeXt adds base_width)
    zero_init_blocks = (BasicBlock, Bottleneck)  # whose last norm zero_init_residual zeroes
    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self,
                 depth: int = 50,
                 in_channels: int = 3,
                 stem_channels: int = 64,
                 base_channels: int = 64,
                 expansion: Optional[int] = None,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Union[int, Sequence[int]] = (3, ),
                 style: str = 'pytorch',
                 deep_stem: bool = False,
                 avg_down: bool = False,
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 init_cfg=DEFAULT_INIT_CFG,
                 drop_path_rate: float = 0.0,
                 *,
                 channels_last: bool = False,
                 out_names: Optional[Sequence[str]] = None,
                 **host_args):
        take_host_args(self, host_args, self.host_only)
        dcn, plugins = host_args.get('dcn'), host_args.get('plugins')
        stage_with_dcn = host_args.get('stage_with_dcn', (False, False, False, False))
        multi_grid = host_args.get('multi_grid')
        contract_dilation = host_args.get('contract_dilation', False)
        with warnings.catch_warnings():
            if getattr(type(self), 'host', None) is None:  # take_host_args warned once
                warnings.simplefilter('ignore', UserWarning)
            if host_args.get('pretrained') is not None and init_cfg == DEFAULT_INIT_CFG:
                init_cfg = None  # the default init, not a choice contradicting pretrained
            init_cfg = self._pretrained_to_init_cfg(host_args.get('pretrained'), init_cfg)
        super().__init__(init_cfg=DEFAULT_INIT_CFG if init_cfg is None else init_cfg)
        self._check_arguments(depth, in_channels, stem_channels, base_channels, num_stages,
                              strides, dilations, out_indices, style, deep_stem, frozen_stages,
                              norm_cfg, dict(deep_stem=deep_stem, avg_down=avg_down,
                                             norm_eval=norm_eval, with_cp=with_cp,
                                             zero_init_residual=zero_init_residual,
                                             channels_last=channels_last,
                                             contract_dilation=contract_dilation))
        self.depth, self.in_channels = depth, in_channels
        self.stem_channels, self.base_channels = stem_channels, base_channels
        self.num_stages, self.style = num_stages, style
        self.deep_stem, self.avg_down = deep_stem, avg_down
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg
        self.norm_eval, self.with_cp = norm_eval, with_cp
        self.zero_init_residual, self.channels_last = zero_init_residual, channels_last
        self.block, stage_blocks = self.arch_settings[depth]
        self.stage_blocks = stage_blocks[:num_stages]
        self.expansion = get_expansion(self.block, expansion)
        # mmdet's dcn/plugins and mmseg's multi_grid (last stage only)/contract_dilation
        extras = stage_dcn_and_plugins(num_stages, dcn, stage_with_dcn, plugins)
        extras[-1]['multi_grid'] = multi_grid
        for extra in extras:
            extra['contract_dilation'] = contract_dilation
        self.dcn, self.stage_with_dcn, self.plugins = dcn, tuple(stage_with_dcn), plugins
        self.multi_grid, self.contract_dilation = multi_grid, contract_dilation

        self._make_stem_layer(in_channels, stem_channels)
        channels, strides = self._make_res_layers(extras,
                                                  check_rate('drop_path_rate', drop_path_rate))
        self._set_outputs([channels[i] for i in self.out_indices],
                          [strides[i] for i in self.out_indices], self._output_names(out_names))
        # forward collects stage outputs by index, then returns them in out_indices order
        self._out_set = frozenset(self.out_indices)
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self._freeze_stages()

    # ----- argument checks -----------------------------------------------------------------------
    def _check_arguments(self, depth, in_channels, stem_channels, base_channels, num_stages,
                         strides, dilations, out_indices, style, deep_stem, frozen_stages,
                         norm_cfg, flags: dict) -> None:
        """Refuse bad arguments (messages name them); sets the normalised ``strides``,
        ``dilations``, ``out_indices`` and ``frozen_stages``."""
        check_choice('depth', depth, tuple(self.arch_settings))
        check_positive_int('in_channels', in_channels)
        check_positive_int('stem_channels', stem_channels)
        check_positive_int('base_channels', base_channels)
        if isinstance(num_stages, bool) or not isinstance(num_stages, int) or \
                not 1 <= num_stages <= 4:
            raise ValueError(f'num_stages must be an int in 1..4, got {num_stages!r}')
        self.strides = _check_int_tuple('strides', strides, num_stages, 'num_stages')
        self.dilations = _check_int_tuple('dilations', dilations, num_stages, 'num_stages')
        self.out_indices = normalize_out_indices(out_indices, num_stages)
        check_choice('style', style, STYLES)
        for name, flag in flags.items():
            check_bool(name, flag)
        if deep_stem and stem_channels % 2:
            raise ValueError(f'deep_stem halves stem_channels in its first convs: stem_channels '
                             f'must be even, got {stem_channels}')
        self.frozen_stages = check_frozen_stages(frozen_stages, num_stages)
        check_norm_cfg(norm_cfg)

    def _output_names(self, out_names) -> List[str]:
        if out_names is None:
            return [f'res{i + 2}' for i in self.out_indices]
        if not isinstance(out_names, (list, tuple)) or len(out_names) != len(self.out_indices) \
                or not all(isinstance(n, str) for n in out_names):
            raise ValueError(f'out_names must be a list of {len(self.out_indices)} strings (one '
                             f'per out_indices entry {self.out_indices}), got {out_names!r}')
        return list(out_names)

    # ----- construction --------------------------------------------------------------------------
    def _make_res_layers(self, extras: List[dict], drop_path_rate: float):
        """``layer1``.. up to the last stage in ``out_indices``; returns each built stage's
        channels and stride."""
        # Rates rise over every block of the depth, so building fewer stages does not change the
        # rates of the ones built (as in mmpretrain).
        rates = torch.linspace(0, drop_path_rate, sum(self.arch_settings[self.depth][1]),
                               device='cpu').tolist()  # also under torch.device('meta')
        num_built = max(self.out_indices) + 1  # nothing after the last output is built
        self.res_layers: List[str] = []
        stage_in, stage_out = self.stem_channels, self.base_channels * self.expansion
        channels, strides = [], []
        stride = STEM_STRIDE
        for i, num_blocks in enumerate(self.stage_blocks[:num_built]):
            layer = self.make_res_layer(
                block=self.block, num_blocks=num_blocks, in_channels=stage_in,
                out_channels=stage_out, expansion=self.expansion, stride=self.strides[i],
                dilation=self.dilations[i], style=self.style, avg_down=self.avg_down,
                with_cp=self.with_cp, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                drop_path_rate=rates[:num_blocks], **extras[i])
            rates = rates[num_blocks:]
            name = f'layer{i + 1}'
            self.add_module(name, layer)
            self.res_layers.append(name)
            stride *= self.strides[i]
            channels.append(stage_out)
            strides.append(stride)
            stage_in, stage_out = stage_out, stage_out * 2
        self.feat_dim = channels[-1]
        return channels, strides

    def make_res_layer(self, **kwargs) -> ResLayer:
        return ResLayer(**kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        if self.deep_stem:
            half = stem_channels // 2
            cfg = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)
            self.stem = nn.Sequential(
                ConvNormAct(in_channels, half, 3, stride=2, padding=1, **cfg),
                ConvNormAct(half, half, 3, stride=1, padding=1, **cfg),
                ConvNormAct(half, stem_channels, 3, stride=1, padding=1, **cfg))
        else:
            self.conv1 = build_conv_layer(self.conv_cfg, in_channels, stem_channels,
                                          kernel_size=7, stride=2, padding=3, bias=False)
            self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
            self.add_module(self.norm1_name, norm1)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = build_max_pool(kernel_size=3, stride=2, padding=1)

    @property
    def norm1(self) -> nn.Module:
        return self._modules[self.norm1_name]

    def conv_norm_pairs(self):
        return [] if self.deep_stem else [('conv1', self.norm1_name)]

    def after_fuse(self) -> None:
        """``fuse()`` folded the stem norm: conv1 takes on the ReLU (one oneDNN kernel on CPU)."""
        if isinstance(self.norm1, nn.Identity) and type(self.conv1) is nn.Conv2d:
            self.conv1.__class__ = Conv2dReLU
            self.relu = nn.Identity()

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, num_depths)`` for layer-wise lr decay, mmpretrain's ResNet numbering
        (``layer_decay.resnet_layer_depth``): 0 the stem, stages 2-3 in groups of blocks."""
        return resnet_layer_depth(param_name, prefix, self.stage_blocks)

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        stem = self.stem if self.deep_stem else nn.ModuleList([self.conv1, self.norm1])
        return [stem] + [self._modules[name] for name in self.res_layers]

    def init_weights(self):
        super().init_weights()
        if self.loads_pretrained():
            return  # the checkpoint's norms stand; zero-init is for training from scratch
        if self.zero_init_residual:
            for module in self.modules():
                if isinstance(module, self.zero_init_blocks):
                    constant_init(module.last_norm, 0)

    # ----- forward -------------------------------------------------------------------------------
    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        return self.maxpool(x)

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: :class:`~..layers.scripting.ScriptableResNet`,
        the same modules, returning a list (TorchScript's sequence) of the same maps. A network
        with blocks of their own (ResNeSt, Res2Net), plugins or drop path is refused, naming
        why."""
        from ..layers.scripting import ScriptableResNet
        return ScriptableResNet(self)

    def forward(self, x: torch.Tensor):
        """``(N, in_channels, H, W)`` -> tuple of feature maps in ``out_indices`` order."""
        self.check_input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.forward_stem(x)
        feats = {}
        for i, name in enumerate(self.res_layers):
            x = self._modules[name](x)
            if i in self._out_set:
                feats[i] = x
        return tuple(feats[i] for i in self.out_indices)


def _fixed_flags(cls_name: str, kwargs: dict, **fixed) -> dict:
    for key, value in fixed.items():
        if key in kwargs and kwargs[key] != value:
            raise ValueError(f'{cls_name} always uses {key}={value}; got {key}={kwargs[key]!r} '
                             f'(use ResNet to choose it)')
        kwargs[key] = value
    return kwargs


@MODELS.register_module()
class ResNetV1c(ResNet):
    """ResNet-C (https://arxiv.org/abs/1812.01187): the 7x7 stem conv becomes three 3x3 convs."""

    def __init__(self, depth: int = 50, **kwargs):
        super().__init__(depth, **_fixed_flags('ResNetV1c', kwargs, deep_stem=True,
                                               avg_down=False))


@MODELS.register_module()
class ResNetV1d(ResNet):
    """ResNet-D (https://arxiv.org/abs/1812.01187): deep stem, and the downsample branch
    average-pools before a stride-1 1x1 conv."""

    def __init__(self, depth: int = 50, **kwargs):
        super().__init__(depth, **_fixed_flags('ResNetV1d', kwargs, deep_stem=True,
                                               avg_down=True))


@MODELS.register_module()
class ResNeXt(ResNet):
    """ResNeXt (https://arxiv.org/abs/1611.05431): grouped 3x3 convs in every bottleneck.

    ``groups=32, width_per_group=4`` (mmpretrain's defaults) is 32x4d: the first stage's 3x3
    conv has ``groups * width_per_group = 128`` channels, doubling with each stage. Other
    arguments as :class:`ResNet`; depth 50, 101 or 152. mmdet's/mmseg's ResNeXt (``groups=1``,
    ``base_width``) is the twin ``mmbackbones.mmdet.ResNeXt``; ``base_width`` given here still
    means ``width_per_group``, with one warning.
    """

    arch_settings = {k: v for k, v in ResNet.arch_settings.items() if k >= 50}
    host_only = {**HOST_ONLY, 'base_width': ('mmdet', 'mmseg')}

    def __init__(self, depth: int = 50, groups: int = 32, width_per_group: int = 4, **kwargs):
        self.groups = check_positive_int('groups', groups)
        base_width = kwargs.get('base_width')  # checked (and warned about) by ResNet
        if base_width is not None and width_per_group not in (4, base_width):
            raise ValueError(f'width_per_group={width_per_group!r} (mmpretrain) and '
                             f'base_width={base_width!r} (mmdet/mmseg) are one setting and '
                             f'contradict each other; give one of them')
        name = 'width_per_group' if base_width is None else 'base_width'
        self.width_per_group = check_positive_int(
            name, width_per_group if base_width is None else base_width)
        super().__init__(depth, **kwargs)

    def make_res_layer(self, **kwargs) -> ResLayer:
        return ResLayer(groups=self.groups, width_per_group=self.width_per_group,
                        base_channels=self.base_channels, **kwargs)


__all__ = ['ResNet', 'ResNetV1c', 'ResNetV1d', 'ResNeXt', 'HOST_ONLY']
