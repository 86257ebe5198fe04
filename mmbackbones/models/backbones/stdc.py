"""STDC (https://arxiv.org/abs/2104.13188, "Rethinking BiSeNet for real-time semantic
segmentation"): :class:`STDCNet` and the context path around it, :class:`STDCContextPathNet`.

Signatures, defaults, meanings and parameter names are mmseg 1.2.2's (mmseg is its only
OpenMMLab host; ``mmbackbones.mmseg.STDCNet``/``STDCContextPathNet`` are these classes with
mmseg's required arguments and the host scope for the nested ``backbone_cfg``).

**STDCNet.** ``stages.0``, ``stages.1``: 3x3 stride-2 convs (the paper's stages 1 and 2,
``channels[0]``, ``channels[1]``); ``stages.2..4``: STDC stages (a stride-2
:class:`~..layers.stdc_blocks.STDCModule` then stride-1 ones; ``arch_settings`` gives the
strides per stage), widths ``channels[2..4]``; ``final_conv`` (``with_final_conv``): a 1x1 conv
to ``max(1024, channels[4])`` on the last output. Data flow: ``(N, C, H, W)`` -> stage ``i``
at stride ``2 ** (i + 1)`` (every conv pads ``k // 2``: any input size, sides rounded up).
Outputs: ``out_indices`` over the five stages (names ``stage1..stage5``, the paper's); mmseg
returns stages 3-5, our default ``(2, 3, 4)``.

**STDCContextPathNet.** ``backbone`` (built from ``backbone_cfg``; an STDCNet with three
outputs ``s8, s16, s32``), ``conv_avg`` (1x1 on the globally pooled ``s32``), ``arms``
(attention refinement of ``s32``, then ``s16``, each plus the upsampled context so far,
upsampled to the next map and refined by ``convs``), ``ffm`` (fuses ``s8`` with the last
refined map). Outputs (mmseg's order): ``stage3`` (``s8``, for the detail head), ``arm1``
(stride 16), ``arm2`` (stride 8), each ``out_channels`` wide, and ``ffm`` (stride 8,
``ffm_cfg['out_channels']``: the decode head's input).

The nested ``backbone_cfg`` type has one meaning per scope: an unscoped name is looked up in the
scope of the class that builds it (``STDCContextPathNet``: ``mmbackbones``, so ``'STDCNet'``
is :class:`STDCNet`; the mmseg twin: the mmseg twins first, so ``'STDCNet'`` is
``mmbackbones.mmseg.STDCNet`` with mmseg's signature), whatever default scope a runner set; a
scoped name (``'mmbackbones.STDCNet'``, ``'mmbackbones.mmseg.STDCNet'``) means what it says.
The result must be one of our backbones (its output metadata is read at construction).

Our additions (keyword-only): STDCNet ``out_indices`` (stages after the last one asked for are
not built), ``frozen_stages`` (``k`` freezes stages ``1..k``; there is no separate stem, so
``0`` freezes nothing), ``norm_eval``, ``with_cp`` (checkpointed STDC blocks); mmseg's STDC has
none of them. STDCContextPathNet ``norm_eval`` (every BatchNorm, the inner backbone's included).
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from ...registry import HOST_TWINS, MODELS, cfg_as_dict
from ...utils.text import shown
from ...utils.validation import (MAX_WIDTH, check_bool, check_cfg_keys, check_choice,
                                 check_frozen_stages, check_positive_int, check_size_limit,
                                 normalize_out_indices, to_plain)
from ..base import BaseBackbone
from ..layer_decay import strip_prefix
from ..layers.conv_norm_act import ConvNormAct
from ..layers.norm import check_norm_cfg
from ..layers.stdc_blocks import (AttentionRefinementModule, FeatureFusionModule, STDCModule,
                                  init_conv_norm_act_)

UPSAMPLE_MODES = ('nearest', 'bilinear', 'bicubic')  # mmseg's list, the modes of 4-D maps
FFM_KEYS = ('in_channels', 'out_channels', 'scale_factor', 'norm_cfg', 'act_cfg')
MAX_CONVS = 16


def _act_cfg(act_cfg, name: str = 'act_cfg') -> Optional[dict]:
    if act_cfg is None:
        return None
    if not isinstance(act_cfg, dict) or 'type' not in act_cfg:
        raise TypeError(f'{name} must be None or a dict with a "type" key (e.g. '
                        f'dict(type="ReLU")), got {shown(act_cfg)}')
    return dict(act_cfg)


@MODELS.register_module()
class STDCNet(BaseBackbone):
    """STDC1/STDC2 with mmseg 1.2.2's signature (module doc).

    Args (mmseg's; mmseg requires the first six, the defaults here are its shipped config's):
        stdc_type (str): ``'STDCNet1'`` or ``'STDCNet2'`` (:attr:`arch_settings`).
        in_channels (int): image channels.
        channels (tuple[int]): five widths: the two stride-2 convs, the three STDC stages
            (each a multiple of ``2 ** (num_convs - 1)``).
        bottleneck_type (str): ``'cat'`` or ``'add'`` STDC blocks.
        norm_cfg (dict), act_cfg (dict | None): norm and activation of the convs.
        num_convs (int): convs per STDC block (>= 2).
        with_final_conv (bool): a 1x1 conv to ``max(1024, channels[4])`` on the last output.
        pretrained (str, optional): a Pretrained ``init_cfg`` (deprecated spelling; mmseg 1.2.2
            stores it and never loads it).
        init_cfg: mmengine init config; ``None``: mmcv ``ConvModule``'s init (Kaiming fan-out
            convs, unit norms), as mmseg.
    """
    arch_settings = {
        'STDCNet1': [(2, 1), (2, 1), (2, 1)],
        'STDCNet2': [(2, 1, 1, 1), (2, 1, 1, 1, 1), (2, 1, 1)],
    }
    num_stages = 5

    def __init__(self,
                 stdc_type='STDCNet1',
                 in_channels=3,
                 channels=(32, 64, 256, 512, 1024),
                 bottleneck_type='cat',
                 norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'),
                 num_convs=4,
                 with_final_conv=False,
                 pretrained=None,
                 init_cfg=None,
                 *,
                 out_indices=(2, 3, 4),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False):
        super().__init__(init_cfg=self._pretrained_to_init_cfg(pretrained, init_cfg))
        self.stdc_type = check_choice('stdc_type', stdc_type, self.arch_settings)
        self.bottleneck_type = check_choice('bottleneck_type', bottleneck_type, ('add', 'cat'))
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.num_convs = check_size_limit('num_convs', num_convs, MAX_CONVS)
        if self.num_convs < 2:
            raise ValueError(f'num_convs must be >= 2 (an STDC block concatenates several '
                             f'convs), got {num_convs}')
        channels = to_plain(channels)
        if not isinstance(channels, (list, tuple)) or len(channels) != 5:
            raise ValueError(f'channels must be a list/tuple of 5 widths (two stride-2 convs, '
                             f'three STDC stages), got {shown(channels)}')
        unit = 2 ** (self.num_convs - 1)
        for i, width in enumerate(channels):
            check_size_limit(f'channels[{i}]', width, MAX_WIDTH)
            if i >= 2 and width % unit:
                raise ValueError(f'channels[{i}]={width} must be a multiple of 2 ** (num_convs '
                                 f'- 1) = {unit} (the widths of an STDC block sum to it)')
        self.channels = tuple(int(c) for c in channels)
        self.norm_cfg = check_norm_cfg(norm_cfg)
        self.act_cfg = _act_cfg(act_cfg)
        self.with_final_conv = check_bool('with_final_conv', with_final_conv)
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_stages)
        self.norm_eval = check_bool('norm_eval', norm_eval)
        self.with_cp = check_bool('with_cp', with_cp)
        self.stage_strides = self.arch_settings[self.stdc_type]
        self.num_shallow_features = 2  # mmseg's name: the two plain convs

        self.num_built = max(self.out_indices) + 1
        self.stages = nn.ModuleList()
        previous = self.in_channels
        for i in range(self.num_built):
            if i < 2:
                stage = ConvNormAct(previous, self.channels[i], 3, stride=2, padding=1,
                                    norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
            else:
                stage = nn.Sequential(*[
                    STDCModule(previous if j == 0 else self.channels[i], self.channels[i], s,
                               self.norm_cfg, self.act_cfg, self.num_convs,
                               self.bottleneck_type)
                    for j, s in enumerate(self.stage_strides[i - 2])])
            self.stages.append(stage)
            previous = self.channels[i]
        out_widths = list(self.channels)
        if self.with_final_conv and self.num_built == 5:
            out_widths[4] = max(1024, self.channels[4])
            self.final_conv = ConvNormAct(self.channels[4], out_widths[4], 1,
                                          norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self._set_outputs([out_widths[i] for i in self.out_indices],
                          [2 ** (i + 1) for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        """No stem apart from stage 1 (an empty group at index 0); stage ``i`` is ``stages[i -
        1]`` (stage 5 with ``final_conv``)."""
        groups = [nn.ModuleList()] + list(self.stages)
        if hasattr(self, 'final_conv'):
            groups[5] = nn.ModuleList([self.stages[4], self.final_conv])
        return groups

    def init_weights(self):
        if self.init_cfg is None:  # mmseg's: every ConvModule's own init
            init_conv_norm_act_(self)
        super().init_weights()

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the stages in sequence, output 4 through
        ``final_conv`` where there is one (``layers.scripting.ScriptableNormedStages``), a list
        of the same maps (without gradient checkpointing: the same numbers)."""
        from ..layers.scripting import ScriptableNormedStages
        final = self._modules.get('final_conv')
        ends = [final if i == 4 and final is not None else nn.Identity()
                for i in self.out_indices]
        return ScriptableNormedStages(self.stages, ends, self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        outs = {}
        for i, stage in enumerate(self.stages):
            if i < 2 or not (self.with_cp and self.training):
                x = stage(x)
            else:
                for block in stage:
                    x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False) \
                        if x.requires_grad else block(x)
            if i in self.out_indices:
                outs[i] = x
        if 4 in outs and hasattr(self, 'final_conv'):
            outs[4] = self.final_conv(outs[4])
        return tuple(outs[i] for i in self.out_indices)

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, 6)``: ``stages.i`` has depth ``i`` (``final_conv`` with ``stages.4``),
        anything else (a head) 5."""
        name = strip_prefix(param_name, prefix)
        if name is not None and name.startswith('stages.'):
            return int(name.split('.')[1]), 6
        if name is not None and name.startswith('final_conv.'):
            return 4, 6
        return 5, 6


def _ffm_cfg(ffm_cfg) -> dict:
    cfg = check_cfg_keys('ffm_cfg', to_plain(ffm_cfg), FFM_KEYS)
    for key in ('in_channels', 'out_channels'):
        if key not in cfg:
            raise KeyError(f'ffm_cfg needs {key!r} (the Feature Fusion Module\'s widths), got '
                           f'{shown(cfg)}')
        check_size_limit(f'ffm_cfg["{key}"]', cfg[key], MAX_WIDTH)
    scale = check_positive_int('ffm_cfg["scale_factor"]', cfg.get('scale_factor', 4))
    if cfg['out_channels'] < scale:
        raise ValueError(f'ffm_cfg["out_channels"]={cfg["out_channels"]} must be >= its '
                         f'scale_factor={scale} (the gate is out_channels // scale_factor wide)')
    if 'norm_cfg' in cfg:
        cfg['norm_cfg'] = check_norm_cfg(cfg['norm_cfg'], 'ffm_cfg["norm_cfg"]')
    if 'act_cfg' in cfg:
        cfg['act_cfg'] = _act_cfg(cfg['act_cfg'], 'ffm_cfg["act_cfg"]')
    return cfg


@MODELS.register_module()
class STDCContextPathNet(BaseBackbone):
    """STDCNet with its context path, mmseg 1.2.2's signature (module doc).

    Args (mmseg's):
        backbone_cfg (dict): the STDCNet (any of our backbones with three outputs at strides
            ``s``, ``2s``, ``4s``).
        last_in_channels (tuple[int]): widths of the backbone's last two outputs, deepest first.
        out_channels (int): width of the ARM outputs.
        ffm_cfg (dict): the Feature Fusion Module (``in_channels`` = the backbone's first output
            width + ``out_channels``, ``out_channels``, ``scale_factor``).
        upsample_mode (str), align_corners (bool | None): ``F.interpolate``'s, for the context
            upsampling (``align_corners`` only with the linear modes).
        norm_cfg (dict): norm of ``conv_avg`` and ``convs`` (the ARMs always use BN, as mmseg).
        init_cfg: mmengine init config; ``None``: mmcv ``ConvModule``'s init.
    """
    host = None  # the twin's: the scope that reads an unscoped backbone_cfg type first

    def __init__(self,
                 backbone_cfg,
                 last_in_channels=(1024, 512),
                 out_channels=128,
                 ffm_cfg=dict(in_channels=512, out_channels=256, scale_factor=4),
                 upsample_mode='nearest',
                 align_corners=None,
                 norm_cfg=dict(type='BN'),
                 init_cfg=None,
                 *,
                 norm_eval: bool = False):
        super().__init__(init_cfg=init_cfg)
        last = to_plain(last_in_channels)
        if not isinstance(last, (list, tuple)) or len(last) != 2:
            raise ValueError(f'last_in_channels must hold the widths of the backbone\'s last '
                             f'two outputs (deepest first), got {shown(last_in_channels)}')
        last = tuple(check_size_limit(f'last_in_channels[{i}]', c, MAX_WIDTH)
                     for i, c in enumerate(last))
        self.out_channels_arm = check_size_limit('out_channels', out_channels, MAX_WIDTH)
        ffm = _ffm_cfg(ffm_cfg)
        self.upsample_mode = check_choice('upsample_mode', upsample_mode, UPSAMPLE_MODES)
        if align_corners is not None:
            check_bool('align_corners', align_corners)
            if upsample_mode == 'nearest':
                raise ValueError(f'align_corners={align_corners} needs a linear upsample_mode '
                                 f'(F.interpolate refuses it with {upsample_mode!r}); use '
                                 f'align_corners=None')
        self.align_corners = align_corners
        self.norm_cfg = check_norm_cfg(norm_cfg)
        self.norm_eval = check_bool('norm_eval', norm_eval)

        self.backbone = self._build_backbone(backbone_cfg)
        widths, strides = self.backbone.out_channels, self.backbone.out_strides
        if len(widths) != 3 or any(not isinstance(s, int) for s in strides) or \
                (strides[1] != 2 * strides[0] or strides[2] != 2 * strides[1]):
            raise ValueError(f'backbone_cfg must give three feature maps at strides s, 2s, 4s '
                             f'(an STDCNet with out_indices=(2, 3, 4)), got channels {widths} '
                             f'at strides {strides}')
        if last != (widths[2], widths[1]):
            raise ValueError(f'last_in_channels={last} must be the widths of the backbone\'s '
                             f'last two outputs, deepest first: {(widths[2], widths[1])}')
        if ffm['in_channels'] != widths[0] + self.out_channels_arm:
            raise ValueError(f'ffm_cfg["in_channels"]={ffm["in_channels"]} must be the '
                             f'backbone\'s first output width plus out_channels: '
                             f'{widths[0]} + {self.out_channels_arm} = '
                             f'{widths[0] + self.out_channels_arm}')
        self.in_channels = self.backbone.in_channels
        self.arms = nn.ModuleList()
        self.convs = nn.ModuleList()
        for width in last:
            self.arms.append(AttentionRefinementModule(width, self.out_channels_arm))
            self.convs.append(ConvNormAct(self.out_channels_arm, self.out_channels_arm, 3,
                                          padding=1, norm_cfg=self.norm_cfg))
        self.conv_avg = ConvNormAct(last[0], self.out_channels_arm, 1, norm_cfg=self.norm_cfg)
        self.ffm = FeatureFusionModule(**ffm)
        self._set_outputs(
            (widths[0], self.out_channels_arm, self.out_channels_arm, ffm['out_channels']),
            (strides[0], strides[1], strides[0], strides[0]),
            (self.backbone.out_names[0], 'arm1', 'arm2', 'ffm'))
        # no out_indices to check here: install the converting, all-or-nothing load directly
        from ...checkpoint import load_hooks
        load_hooks.install(self)

    def _resolve(self, name: str):
        """The class an unscoped ``backbone_cfg`` type means here (module doc)."""
        if self.host is not None and '.' not in name:
            twin = HOST_TWINS[self.host].twin(name)
            if twin is not None:
                return twin
        return MODELS.get(name)

    def _build_backbone(self, backbone_cfg) -> BaseBackbone:
        try:
            cfg = cfg_as_dict(backbone_cfg, 'backbone_cfg')
            if 'type' not in cfg:
                raise KeyError(f'backbone_cfg needs a "type" (e.g. "STDCNet"), got {shown(cfg)}')
            written = cfg['type']
            if isinstance(written, str) and '_scope_' not in cfg:
                cfg['type'] = self._resolve(written)
            backbone = MODELS.build(cfg)
        except (KeyError, TypeError, ValueError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            if 'backbone_cfg' in str(message):
                raise
            try:
                named = type(err)(f'backbone_cfg: {message}')
            except Exception:  # noqa: BLE001 - an error class with another signature
                named = ValueError(f'backbone_cfg: {message}')
            raise named from None
        if not isinstance(backbone, BaseBackbone):
            raise TypeError(f'backbone_cfg must build one of our backbones (it reads their output '
                            f'metadata), got {type(backbone).__module__}.'
                            f'{type(backbone).__qualname__} from type {shown(written)}')
        return backbone

    def init_weights(self):
        if self.init_cfg is None:  # mmseg's: every ConvModule's own init (not the backbone's)
            for name, child in self.named_children():
                if name != 'backbone':
                    init_conv_norm_act_(child)
        super().init_weights()

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: :class:`ScriptableSTDCContextPath`, this forward
        over the same modules, a list of the same maps."""
        return ScriptableSTDCContextPath(self)

    def _up(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[2:], mode=self.upsample_mode,
                             align_corners=self.align_corners)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        outs = list(self.backbone(x))  # strides s, 2s, 4s
        context = self._up(self.conv_avg(F.adaptive_avg_pool2d(outs[-1], 1)), outs[-1])
        arms_out = []
        for i, (arm, conv) in enumerate(zip(self.arms, self.convs)):
            deeper, shallower = outs[len(outs) - 1 - i], outs[len(outs) - 2 - i]
            context = conv(self._up(arm(deeper) + context, shallower))
            arms_out.append(context)
        return (outs[0], *arms_out, self.ffm(outs[0], arms_out[1]))

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """The backbone's depths for ``backbone.*``; the context path (ARMs, FFM) and anything
        else share the backbone's last depth (the head's)."""
        name = strip_prefix(param_name, prefix)
        if name is not None and name.startswith('backbone.') and \
                hasattr(self.backbone, 'get_layer_depth'):
            return self.backbone.get_layer_depth(name, 'backbone.')
        if hasattr(self.backbone, 'get_layer_depth'):
            _, num = self.backbone.get_layer_depth('')
            return num - 1, num
        return 0, 1


class ScriptableSTDCContextPath(nn.Module):
    """:class:`STDCContextPathNet`'s forward in TorchScript's subset, over the same modules."""

    align_corners: Optional[bool]

    def __init__(self, model: 'STDCContextPathNet'):
        super().__init__()
        self.backbone, self.conv_avg = model.backbone, model.conv_avg
        self.arms, self.convs, self.ffm = model.arms, model.convs, model.ffm
        self.mode: str = model.upsample_mode
        self.align_corners = model.align_corners

    def _up(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=[like.shape[2], like.shape[3]], mode=self.mode,
                             align_corners=self.align_corners)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outs: List[torch.Tensor] = self.backbone(x)
        n = len(outs)
        context = self._up(self.conv_avg(F.adaptive_avg_pool2d(outs[n - 1], 1)), outs[n - 1])
        result: List[torch.Tensor] = [outs[0]]
        for i, (arm, conv) in enumerate(zip(self.arms, self.convs)):
            context = conv(self._up(arm(outs[n - 1 - i]) + context, outs[n - 2 - i]))
            result.append(context)
        result.append(self.ffm(outs[0], result[2]))
        return result
