"""HRNet (https://arxiv.org/abs/1904.04514): parallel branches at strides 4, 8, 16, 32 that
exchange information after every module.

A 2-conv stem (stride 4, 64 channels), ``layer1`` (one residual stage, mmpretrain's
``ResLayer``), then stages 2-4, each a ``transition`` (new lower-resolution branches from the
last one, channel changes on the others) and ``num_modules`` :class:`HRModule` s (residual
blocks per branch, then the fuse layers: every output branch sums all branches, resampled).

Parameter names are those of mmpretrain 1.2.0's ``HRNet``, which are also mmseg 1.2.2's and
mmdet 3.3's (same modules, same order; only their parameter-free transition placeholders
differ, ``nn.Identity`` vs ``None``) and timm's ``HighResolutionNet`` without its head
(:mod:`mmbackbones.checkpoint.converters.timm_hrnet`). The numbers differ in one place:
mmseg upsamples the lower branches bilinearly (``upsample_mode='bilinear'``), mmpretrain, mmdet
and timm with nearest neighbours (the default).
"""
import copy
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_WIDTH, check_bool, check_cfg_keys,
                                 check_choice, check_frozen_stages, check_positive_int,
                                 check_size_limit, normalize_out_indices)
from ..base import BaseBackbone
from ..layer_decay import strip_prefix
from ..layers.mmcv_bricks import build_conv_layer, build_norm_layer
from ..layers.norm import check_norm_cfg
from ..layers.pos_embed import is_tracing
from ..layers.resnet_blocks import BasicBlock, Bottleneck, ResLayer

BLOCKS = {'BASIC': BasicBlock, 'BOTTLENECK': Bottleneck}
STAGE_KEYS = ('num_modules', 'num_branches', 'block', 'num_blocks', 'num_channels')
UPSAMPLE_MODES = ('nearest', 'bilinear')
DEFAULT_INIT_CFG = [dict(type='Kaiming', layer='Conv2d'),
                    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]


def _w(width: int, stage1_channels: int = 64, blocks: int = 4, modules=(1, 1, 4, 3)):
    """The arch rows of a HRNet-W``width``: ``[num_modules, num_branches, block, num_blocks,
    num_channels]`` per stage, mmpretrain's ``arch_zoo`` layout."""
    return [[modules[0], 1, 'BOTTLENECK', (blocks, ), (stage1_channels, )]] + [
        [modules[i], i + 1, 'BASIC', (blocks, ) * (i + 1),
         tuple(width * 2 ** k for k in range(i + 1))] for i in range(1, 4)]


def arch_to_extra(rows) -> dict:
    """mmpretrain's arch rows -> the ``extra`` dict (``stage1``..``stage4``)."""
    return {f'stage{i}': dict(zip(STAGE_KEYS, row)) for i, row in enumerate(rows, start=1)}


def check_extra(extra) -> Dict[str, dict]:
    """Validate ``extra`` (four stage dicts of :data:`STAGE_KEYS`) and return a plain copy."""
    if not isinstance(extra, dict):
        raise TypeError(f'extra must be a dict with keys stage1..stage4, got {extra!r}')
    extra = check_cfg_keys('extra', extra, [f'stage{i}' for i in range(1, 5)])
    missing = [f'stage{i}' for i in range(1, 5) if f'stage{i}' not in extra]
    if missing:
        raise KeyError(f'extra misses {missing}: HRNet needs the four stage configs stage1..'
                       f'stage4, each with keys {list(STAGE_KEYS)}')
    previous = 0
    for i in range(1, 5):
        name = f'extra["stage{i}"]'
        cfg = check_cfg_keys(name, extra[f'stage{i}'], STAGE_KEYS)
        absent = [k for k in STAGE_KEYS if k not in cfg]
        if absent:
            raise KeyError(f'{name} misses keys {absent}; expected {list(STAGE_KEYS)}')
        check_size_limit(f'{name}["num_modules"]', cfg['num_modules'], MAX_BLOCKS)
        branches = check_positive_int(f'{name}["num_branches"]', cfg['num_branches'])
        if (i == 1 and branches != 1) or branches < previous or branches > 8:
            raise ValueError(f'{name}["num_branches"] must be 1 for stage1 and, for later stages, '
                             f'at least the previous stage\'s ({previous}) and at most 8; got '
                             f'{branches}')
        previous = branches
        check_choice(f'{name}["block"]', cfg['block'], BLOCKS)
        for key, limit in (('num_blocks', MAX_BLOCKS), ('num_channels', MAX_WIDTH)):
            values = cfg[key]
            if not isinstance(values, (list, tuple)) or len(values) != branches:
                raise ValueError(f'{name}["{key}"] must have one entry per branch '
                                 f'(num_branches={branches}), got {values!r}')
            for v in values:
                check_size_limit(f'each of {name}["{key}"]', v, limit)
            cfg[key] = tuple(values)
        extra[f'stage{i}'] = cfg
    return extra


class FuseUpsample(nn.Module):
    """Resample a lower branch to the size of a higher one: ``scale_factor`` first (what every
    upstream does), then, only where the sides are not exact multiples (odd input sizes),
    resized to the target size with the same mode (mmseg's ``resize``; mmpretrain/mmdet/timm
    fail there with a shape mismatch). No parameters: the third entry of a fuse ``Sequential``
    (``fuse_layers.i.j.2``) in every upstream layout."""

    def __init__(self, scale_factor: int, mode: str = 'nearest'):
        super().__init__()
        self.scale_factor, self.mode = scale_factor, mode
        self.align_corners = False if mode == 'bilinear' else None

    def forward(self, x: torch.Tensor, size: Optional[Sequence[int]] = None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode,
                          align_corners=self.align_corners)
        # traced (ONNX, dynamic sides): always resize, a no-op where the sides already match
        if size is not None and (is_tracing() or tuple(x.shape[-2:]) != tuple(size)):
            x = F.interpolate(x, size=tuple(size), mode=self.mode,
                              align_corners=self.align_corners)
        return x

    def extra_repr(self) -> str:
        return f'scale_factor={self.scale_factor}, mode={self.mode!r}'


def _conv_norm(conv_cfg, norm_cfg, in_ch, out_ch, kernel, stride, relu: bool):
    """``Sequential(conv (no bias), norm[, ReLU])``: keys ``.0.weight``, ``.1.*``."""
    layers = [build_conv_layer(conv_cfg, in_ch, out_ch, kernel_size=kernel, stride=stride,
                               padding=kernel // 2, bias=False),
              build_norm_layer(norm_cfg, out_ch)[1]]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HRModule(BaseModule):
    """One high-resolution module: ``branches.{i}`` (a :class:`ResLayer` per branch) and
    ``fuse_layers.{i}.{j}`` (branch ``j`` brought to branch ``i``: 1x1 conv + norm + upsample
    for ``j > i``, ``i - j`` stride-2 3x3 convs for ``j < i``, nothing for ``j == i``).
    ``multiscale_output=False`` keeps only the fuse row of branch 0 (one output).

    Input and output: a list of ``num_branches`` maps, branch ``k`` at twice the stride of
    branch ``k - 1``.
    """

    def __init__(self, num_branches: int, block: type, num_blocks: Sequence[int],
                 in_channels: Sequence[int], num_channels: Sequence[int],
                 multiscale_output: bool = True, with_cp: bool = False,
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = dict(type='BN'),
                 upsample_mode: str = 'nearest', init_cfg=None):
        super().__init__(init_cfg)
        for name, value in (('num_blocks', num_blocks), ('in_channels', in_channels),
                            ('num_channels', num_channels)):
            if len(value) != num_branches:
                raise ValueError(f'HRModule: {name} has {len(value)} entries for '
                                 f'num_branches={num_branches}')
        self.num_branches, self.multiscale_output = num_branches, multiscale_output
        self.in_channels = [c * block.expansion for c in num_channels]
        self.branches = nn.ModuleList(
            ResLayer(block, num_blocks=num_blocks[i], in_channels=in_channels[i],
                     out_channels=self.in_channels[i], with_cp=with_cp, conv_cfg=conv_cfg,
                     norm_cfg=norm_cfg) for i in range(num_branches))
        self.fuse_layers = self._make_fuse_layers(conv_cfg, norm_cfg, upsample_mode)
        self.relu = nn.ReLU(inplace=False)

    def _make_fuse_layers(self, conv_cfg, norm_cfg, upsample_mode) -> Optional[nn.ModuleList]:
        if self.num_branches == 1:
            return None
        ch = self.in_channels
        rows = []
        for i in range(self.num_branches if self.multiscale_output else 1):
            row = []
            for j in range(self.num_branches):
                if j > i:
                    row.append(nn.Sequential(
                        *_conv_norm(conv_cfg, norm_cfg, ch[j], ch[i], 1, 1, relu=False),
                        FuseUpsample(2 ** (j - i), upsample_mode)))
                elif j == i:
                    row.append(None)
                else:  # i - j stride-2 convs; ReLU after all but the last
                    row.append(nn.Sequential(*(
                        _conv_norm(conv_cfg, norm_cfg, ch[j], ch[i] if k == i - j - 1 else ch[j],
                                   3, 2, relu=k != i - j - 1) for k in range(i - j))))
            rows.append(nn.ModuleList(row))
        return nn.ModuleList(rows)

    def forward(self, x: List[torch.Tensor]) -> List[torch.Tensor]:
        x = [branch(t) for branch, t in zip(self.branches, x)]
        if self.fuse_layers is None:
            return x
        out = []
        for i, row in enumerate(self.fuse_layers):
            y, owned = None, False  # owned: y is a fresh tensor, safe to add into
            for j, layer in enumerate(row):
                if j == i:
                    t = x[j]
                elif j > i:  # conv, norm, then resample to branch i's exact size
                    t = layer[2](layer[1](layer[0](x[j])), x[i].shape[-2:])
                else:
                    t = layer(x[j])
                if y is None:
                    y, owned = t, j != i
                elif owned:
                    y += t
                else:
                    y, owned = y + t, True
            out.append(self.relu(y))
        return out


@MODELS.register_module()
class HRNet(BaseBackbone):
    """HRNet backbone, mmpretrain 1.2.0's signature and defaults.

    Args:
        arch (str): a name in ``arch_zoo`` (``'w18'``, ``'w30'``, ``'w32'``, ``'w40'``,
            ``'w44'``, ``'w48'``, ``'w64'``; also timm's ``'w18_small'`` and
            ``'w18_small_v2'``, the latter mmseg's ``hr18s``); used only when ``extra`` is None.
        extra (dict, optional): ``stage1``..``stage4``, each a dict of ``num_modules``,
            ``num_branches`` (1 for stage1, non-decreasing), ``block`` (``'BASIC'`` or
            ``'BOTTLENECK'``), ``num_blocks`` and ``num_channels`` (one per branch).
        in_channels (int): input image channels.
        conv_cfg, norm_cfg (dict): layer configs.
        norm_eval (bool): BatchNorms in eval mode during training.
        with_cp (bool): gradient checkpointing of every residual block.
        zero_init_residual (bool): at ``init_weights()``, zero the last norm of every block of
            stages 2-4 (mmpretrain's ``block_init_cfg``; not ``layer1``), unless a checkpoint
            is loaded.
        multiscale_output (bool): False: only branch 0 (stride 4) comes out of the last module.
        out_indices (int | Sequence[int]): branches to return (0..num_branches-1 of stage4;
            default all, in order, as mmpretrain returns them). Every output is made by the
            last module, so every stage is built whatever is asked.
        frozen_stages (int): -1 none, 0 the stem (``conv1/norm1/conv2/norm2``), k also
            ``layer1+transition1``, ``stage2+transition2``, ``stage3+transition3``, ``stage4``
            up to k (mmseg's meaning; mmpretrain has no freezing).
        upsample_mode (str): ``'nearest'`` (mmpretrain, mmdet, timm) or ``'bilinear'``
            (mmseg: ``align_corners=False``) in the fuse layers.
        pretrained (str, optional): mmseg's deprecated spelling of a Pretrained ``init_cfg``.
        init_cfg: mmengine init config; default mmpretrain's (Kaiming convs, norms to 1).

    Input ``(N, in_channels, H, W)``; output ``i`` is ``(N, C_i, ~H / 2^(i+2), ~W / 2^(i+2))``
    named ``branch{i+1}``; for ``w18`` the channels are 18, 36, 72, 144.
    """

    blocks_dict = BLOCKS
    arch_zoo = {f'w{w}': _w(w) for w in (18, 30, 32, 40, 44, 48, 64)}
    arch_zoo['w18_small'] = _w(16, stage1_channels=32, blocks=2, modules=(1, 1, 1, 1))
    arch_zoo['w18_small'][0][3] = (1, )  # timm hrnet_w18_small: one stage-1 bottleneck
    arch_zoo['w18_small_v2'] = _w(18, blocks=2, modules=(1, 1, 3, 2))
    arch_settings = arch_zoo

    def __init__(self, arch: str = 'w32', extra: Optional[dict] = None, in_channels: int = 3,
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = dict(type='BN'),
                 norm_eval: bool = False, with_cp: bool = False,
                 zero_init_residual: bool = False, multiscale_output: bool = True,
                 out_indices: Union[int, Sequence[int], None] = None, frozen_stages: int = -1,
                 upsample_mode: str = 'nearest', pretrained: Optional[str] = None,
                 init_cfg=DEFAULT_INIT_CFG):
        if init_cfg == DEFAULT_INIT_CFG:  # a copy (mmengine keeps it); none with pretrained
            init_cfg = None if pretrained is not None else copy.deepcopy(DEFAULT_INIT_CFG)
        super().__init__(init_cfg=self._pretrained_to_init_cfg(pretrained, init_cfg))
        if extra is None:
            check_choice('arch', arch, self.arch_zoo)
            extra = arch_to_extra(self.arch_zoo[arch])
        self.arch, self.extra = arch, check_extra(extra)
        for name, value in (('norm_eval', norm_eval), ('with_cp', with_cp),
                            ('zero_init_residual', zero_init_residual),
                            ('multiscale_output', multiscale_output)):
            check_bool(name, value)
        self.upsample_mode = check_choice('upsample_mode', upsample_mode, UPSAMPLE_MODES)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.conv_cfg, self.norm_cfg = conv_cfg, check_norm_cfg(norm_cfg)
        self.norm_eval, self.with_cp = norm_eval, with_cp
        self.zero_init_residual, self.multiscale_output = zero_init_residual, multiscale_output
        num_outputs = self.extra['stage4']['num_branches'] if multiscale_output else 1
        if out_indices is None:
            out_indices = tuple(range(num_outputs))
        self.out_indices = normalize_out_indices(out_indices, num_outputs)
        self.frozen_stages = check_frozen_stages(frozen_stages, 4)

        self._make_stem()
        channels = self._make_stages()
        self._set_outputs([channels[i] for i in self.out_indices],
                          [4 * 2 ** i for i in self.out_indices],
                          [f'branch{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def _make_stem(self) -> None:
        """Two 3x3 stride-2 convs to 64 channels, each with a norm (``conv1``/``norm1``,
        ``conv2``/``norm2``: ``bn1``/``bn2`` for BN), then ReLU."""
        self.conv1 = build_conv_layer(self.conv_cfg, self.in_channels, 64, kernel_size=3,
                                      stride=2, padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, 64, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(self.conv_cfg, 64, 64, kernel_size=3, stride=2, padding=1,
                                      bias=False)
        self.norm2_name, norm2 = build_norm_layer(self.norm_cfg, 64, postfix=2)
        self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)

    def _make_stages(self) -> List[int]:
        """``layer1``, then ``transition{i-1}`` and ``stage{i}`` for i = 2..4; returns the
        channels of the last stage's branches."""
        cfg = self.extra['stage1']
        block = BLOCKS[cfg['block']]
        prev = [cfg['num_channels'][0] * block.expansion]
        self.layer1 = ResLayer(block, num_blocks=cfg['num_blocks'][0], in_channels=64,
                               out_channels=prev[0], conv_cfg=self.conv_cfg,
                               norm_cfg=self.norm_cfg, with_cp=self.with_cp)
        for i in range(2, 5):
            cfg = self.extra[f'stage{i}']
            block = BLOCKS[cfg['block']]
            channels = [c * block.expansion for c in cfg['num_channels']]
            self.add_module(f'transition{i - 1}', self._make_transition(prev, channels))
            modules = []
            for m in range(cfg['num_modules']):
                last = i == 4 and m == cfg['num_modules'] - 1
                modules.append(HRModule(
                    cfg['num_branches'], block, cfg['num_blocks'], channels,
                    cfg['num_channels'], multiscale_output=self.multiscale_output or not last,
                    with_cp=self.with_cp, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                    upsample_mode=self.upsample_mode))
            self.add_module(f'stage{i}', nn.Sequential(*modules))
            prev = channels
        return prev

    def _make_transition(self, prev: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
        """Per branch of the next stage: ``Identity`` (same channels), a 3x3 conv + norm + ReLU
        (new channels) or, for a new branch, stride-2 3x3 convs from the last branch."""
        layers = []
        for i, out_ch in enumerate(cur):
            if i < len(prev):
                layers.append(nn.Identity() if out_ch == prev[i] else _conv_norm(
                    self.conv_cfg, self.norm_cfg, prev[i], out_ch, 3, 1, relu=True))
            else:
                steps = i + 1 - len(prev)
                layers.append(nn.Sequential(*(
                    _conv_norm(self.conv_cfg, self.norm_cfg, prev[-1],
                               out_ch if k == steps - 1 else prev[-1], 3, 2, relu=True)
                    for k in range(steps))))
        return nn.ModuleList(layers)

    @property
    def norm1(self) -> nn.Module:
        return self._modules[self.norm1_name]

    @property
    def norm2(self) -> nn.Module:
        return self._modules[self.norm2_name]

    def conv_norm_pairs(self) -> List[Tuple[str, str]]:
        """The stem's (conv, norm) pairs, for ``fuse()`` (blocks and Sequentials are found)."""
        return [('conv1', self.norm1_name), ('conv2', self.norm2_name)]

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        # Throwaway containers: the layers stay registered under their own names.
        return [nn.ModuleList([self.conv1, self.norm1, self.conv2, self.norm2]),
                nn.ModuleList([self.layer1, self.transition1]),
                nn.ModuleList([self.stage2, self.transition2]),
                nn.ModuleList([self.stage3, self.transition3]), self.stage4]

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, 6)`` for layer-wise lr decay: 0 the stem, 1 ``layer1``/``transition1``,
        2-3 ``stage{2,3}``/``transition{2,3}``, 4 ``stage4``, 5 anything else (a head); the
        grouping of ``frozen_stages``."""
        name = strip_prefix(param_name, prefix)
        if name is None:
            return 5, 6
        head = name.split('.', 1)[0]
        match = re.fullmatch(r'(?:layer|transition|stage)(\d)', head)
        if match:
            return int(match.group(1)), 6
        return (0, 6) if head in ('conv1', 'conv2', self.norm1_name, self.norm2_name) else (5, 6)

    def init_weights(self):
        super().init_weights()
        if self.zero_init_residual and not self.loads_pretrained():
            # as mmpretrain's block_init_cfg: the blocks of the HRModules, not layer1's
            for i in range(2, 5):
                for module in getattr(self, f'stage{i}').modules():
                    if isinstance(module, (BasicBlock, Bottleneck)):
                        constant_init(module.last_norm, 0)

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: ``layers.hrnet_scripting.ScriptableHRNet``, this
        forward over the same modules, a list of the same maps."""
        from ..layers.hrnet_scripting import scriptable_hrnet
        return scriptable_hrnet(self)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.relu(self.norm2(self.conv2(x)))
        xs = [self.layer1(x)]
        for i in range(2, 5):
            transition = self._modules[f'transition{i - 1}']
            xs = [layer(xs[j] if j < len(xs) else xs[-1]) for j, layer in enumerate(transition)]
            xs = self._modules[f'stage{i}'](xs)
        return tuple(xs[i] for i in self.out_indices)
