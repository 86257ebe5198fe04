"""ConvNeXt (`A ConvNet for the 2020s <https://arxiv.org/abs/2201.03545>`_), v1 and v2.

Parameter names follow mmpretrain 1.2.0's ``ConvNeXt`` (``downsample_layers.{i}``,
``stages.{i}.{j}.depthwise_conv|norm|pointwise_conv1|pointwise_conv2|gamma``, ``norm{i}``), so its
checkpoints load with ``prefix='backbone'``; timm checkpoints load through
:func:`mmbackbones.checkpoint.converters.timm_convnext.convert_timm_convnext`.

Layout: stem (``patch x patch`` conv, stride ``patch``, then LN) -> stage 1 -> (LN, 2x2 conv
stride 2) -> stage 2 -> ... Stage ``i`` (1-based) has stride ``patch * 2 ** (i - 1)``: 4, 8, 16,
32 with the default ``stem_patch_size=4``. Convs have no padding, so odd sides are floored.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from ..layers.mmcv_bricks import build_activation_layer
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_WIDTH, check_bool, check_choice,
                                 check_frozen_stages, check_positive_int, check_rate,
                                 check_size_limit, normalize_out_indices)
from ..base import BaseBackbone
from ..layer_decay import strip_prefix
from ..layers.drop import DropPath
from ..layers.layer_norm2d import LayerNorm2d  # noqa: F401  (registers type 'LN2d')
from ..layers.norm import build_norm, check_norm_cfg

# depths: blocks per stage; channels: width of each stage (mmpretrain's table).
arch_settings = {
    'atto': dict(depths=[2, 2, 6, 2], channels=[40, 80, 160, 320]),
    'femto': dict(depths=[2, 2, 6, 2], channels=[48, 96, 192, 384]),
    'pico': dict(depths=[2, 2, 6, 2], channels=[64, 128, 256, 512]),
    'nano': dict(depths=[2, 2, 8, 2], channels=[80, 160, 320, 640]),
    'tiny': dict(depths=[3, 3, 9, 3], channels=[96, 192, 384, 768]),
    'small': dict(depths=[3, 3, 27, 3], channels=[96, 192, 384, 768]),
    'base': dict(depths=[3, 3, 27, 3], channels=[128, 256, 512, 1024]),
    'large': dict(depths=[3, 3, 27, 3], channels=[192, 384, 768, 1536]),
    'xlarge': dict(depths=[3, 3, 27, 3], channels=[256, 512, 1024, 2048]),
    'huge': dict(depths=[3, 3, 27, 3], channels=[352, 704, 1408, 2816]),
}


def _norm(norm_cfg: dict, channels: int) -> nn.Module:
    return build_norm(norm_cfg, channels)[1]


def _is_channel_norm(norm: nn.Module) -> bool:
    """A LayerNorm over the last dim can run on the (N, H, W, C) view inside a block."""
    return isinstance(norm, nn.LayerNorm) and len(norm.normalized_shape) == 1


class GRN(nn.Module):
    """Global Response Normalization (ConvNeXt v2) on ``(N, H, W, C)`` or ``(N, C, H, W)``."""

    def __init__(self, in_channels: int, eps: float = 1e-6):
        super().__init__()
        self.in_channels = in_channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.zeros(in_channels))
        self.beta = nn.Parameter(torch.zeros(in_channels))

    def forward(self, x: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
        if channels_last:
            gx = torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True)
            nx = gx / (gx.mean(dim=-1, keepdim=True) + self.eps)
            return self.gamma * (x * nx) + self.beta + x
        gx = torch.linalg.vector_norm(x, dim=(2, 3), keepdim=True)
        nx = gx / (gx.mean(dim=1, keepdim=True) + self.eps)
        return self.gamma.view(1, -1, 1, 1) * (x * nx) + self.beta.view(1, -1, 1, 1) + x


class ConvNeXtBlock(nn.Module):
    """7x7 depthwise conv -> norm -> 1x1 expand (x4) -> GELU -> [GRN] -> 1x1 project -> layer
    scale -> drop path, plus the identity. ``(N, C, H, W)`` in and out.

    With ``linear_pw_conv=True`` (the default, as in the official repo) the pointwise convs are
    ``nn.Linear`` run on the ``(N, H, W, C)`` view; otherwise 1x1 ``nn.Conv2d``.
    """

    def __init__(self, in_channels: int, norm_cfg: dict, act_cfg: dict, mlp_ratio: float = 4.,
                 linear_pw_conv: bool = True, drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6, use_grn: bool = False,
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.linear_pw_conv = linear_pw_conv
        mid_channels = int(mlp_ratio * in_channels)
        self.depthwise_conv = nn.Conv2d(in_channels, in_channels, kernel_size=7, padding=3,
                                        groups=in_channels)
        self.norm = _norm(norm_cfg, in_channels)
        if linear_pw_conv:
            self.pointwise_conv1 = nn.Linear(in_channels, mid_channels)
            self.pointwise_conv2 = nn.Linear(mid_channels, in_channels)
        else:
            self.pointwise_conv1 = nn.Conv2d(in_channels, mid_channels, kernel_size=1)
            self.pointwise_conv2 = nn.Conv2d(mid_channels, in_channels, kernel_size=1)
        self.act = build_activation_layer(act_cfg)
        self.grn = GRN(mid_channels) if use_grn else None
        self.gamma = (nn.Parameter(torch.full((in_channels,), float(layer_scale_init_value)))
                      if layer_scale_init_value > 0 else None)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self._drops_path = drop_path_rate > 0  # (TorchScript resolves no isinstance(.., DropPath))
        # A LayerNorm over channels runs on the channels-last view; any other norm runs before
        # the permute, on (N, C, H, W).
        self._norm_channels_last = linear_pw_conv and _is_channel_norm(self.norm)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch up to (not including) the layer scale, as ``(N, C, H, W)``."""
        x = self.depthwise_conv(x)
        if self.linear_pw_conv:
            if self._norm_channels_last:
                x = nn.functional.layer_norm(x.permute(0, 2, 3, 1), self.norm.normalized_shape,
                                             self.norm.weight, self.norm.bias, self.norm.eps)
            else:
                x = self.norm(x).permute(0, 2, 3, 1)
            x = self.act(self.pointwise_conv1(x))
            if self.grn is not None:
                x = self.grn(x, channels_last=True)
            return self.pointwise_conv2(x).permute(0, 3, 1, 2)
        x = self.act(self.pointwise_conv1(self.norm(x)))
        if self.grn is not None:
            x = self.grn(x, channels_last=False)
        return self.pointwise_conv2(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self._branch(x)
        if self.gamma is not None:
            gamma = self.gamma.view(1, -1, 1, 1)
            if not (self.training and self._drops_path):
                # x + gamma * branch in one pass (no separate scaled copy of the branch)
                return torch.addcmul(x, branch, gamma)
            branch = branch * gamma
        return x + self.drop_path(branch)

    @torch.jit.unused
    def _checkpointed(self, x: torch.Tensor) -> torch.Tensor:
        # (a training-time memory trade: TorchScript compiles no checkpoint)
        return cp.checkpoint(self._forward, x, use_reentrant=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad and not torch.jit.is_scripting():
            return self._checkpointed(x)
        return self._forward(x)


@MODELS.register_module()
class ConvNeXt(BaseBackbone):
    """ConvNeXt v1/v2 backbone with mmpretrain's parameter names.

    Args:
        arch (str | dict): a key of ``ConvNeXt.arch_settings`` (``'tiny'``, ``'small'``,
            ``'base'``, ``'large'``, ... as mmpretrain spells them) or
            ``dict(depths=[...], channels=[...])`` of equal lengths.
        in_channels (int): input image channels.
        stem_patch_size (int): kernel and stride of the stem conv.
        norm_cfg (dict): norm of the stem, downsampling layers, blocks and outputs
            (default ``LN2d`` with eps 1e-6).
        act_cfg (dict): activation between the pointwise convs.
        linear_pw_conv (bool): pointwise convs as ``nn.Linear`` (True) or 1x1 convs.
        use_grn (bool): Global Response Normalization in the blocks (ConvNeXt v2, usually with
            ``layer_scale_init_value=0``).
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks.
        layer_scale_init_value (float): initial layer scale ``gamma``; 0 disables layer scale.
        out_indices (int | Sequence[int]): stages (0-based) to return, in this order. Only stages
            up to ``max(out_indices)`` are built.
        frozen_stages (int): mmpretrain's count: ``0`` (or ``-1``) nothing, ``k`` the first
            ``k`` downsampling layers (the stem is the first) and ``stages[0..k-1]``; the output
            norms stay trainable. The attribute reads the contract's count (``-1`` for 0).
        norm_eval (bool): our extra (keyword-only): keep BatchNorm layers (if ``norm_cfg``
            asks for them) in eval mode.
        gap_before_final_norm (bool): average-pool each output before its norm and return
            ``(N, C)`` vectors (mmpretrain's default, for classification); ``False`` returns
            ``(N, C, H, W)`` maps (what dense tasks want).
        with_cp (bool): gradient checkpointing of each block.
        init_cfg (dict | list[dict]): mmengine init config (default: mmpretrain's truncated
            normal for convs/linears and constant LayerNorms).

    Outputs: a tuple in ``out_indices`` order; stage ``i`` (0-based) has
    ``channels[i]`` channels and stride ``stem_patch_size * 2 ** i`` (``None`` for the pooled
    outputs of ``gap_before_final_norm=True``); names ``stage{i + 1}``.
    Sides are floored at every downsampling, so ``size_divisibility`` (what detectron2 pads
    inputs to) is the last built stride.
    """

    arch_settings = arch_settings

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 stem_patch_size: int = 4,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 act_cfg: dict = dict(type='GELU'),
                 linear_pw_conv: bool = True,
                 use_grn: bool = False,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6,
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = 0,
                 gap_before_final_norm: bool = True,
                 with_cp: bool = False,
                 init_cfg=[
                     dict(type='TruncNormal', layer=['Conv2d', 'Linear'], std=.02, bias=0.),
                     dict(type='Constant', layer=['LayerNorm'], val=1., bias=0.),
                 ],
                 *,
                 norm_eval: bool = False):
        super().__init__(init_cfg=init_cfg)
        depths, channels = self._parse_arch(arch)
        num_stages = len(depths)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.stem_patch_size = check_positive_int('stem_patch_size', stem_patch_size)
        check_rate('drop_path_rate', drop_path_rate)
        if not isinstance(layer_scale_init_value, (int, float)) or layer_scale_init_value < 0:
            raise ValueError(f'layer_scale_init_value must be a number >= 0 (0 disables layer '
                             f'scale), got {layer_scale_init_value!r}')
        for name, value in (('linear_pw_conv', linear_pw_conv), ('use_grn', use_grn),
                            ('norm_eval', norm_eval), ('with_cp', with_cp),
                            ('gap_before_final_norm', gap_before_final_norm)):
            check_bool(name, value)
        check_norm_cfg(norm_cfg)
        if not isinstance(act_cfg, dict) or 'type' not in act_cfg:
            raise TypeError(f'act_cfg must be a dict with a "type" key, got {act_cfg!r}')
        try:
            build_activation_layer(act_cfg)
        except KeyError as err:
            raise KeyError(f'act_cfg type {act_cfg["type"]!r} is not a registered activation: '
                           f'{err}') from None

        self.depths, self.channels = depths, channels
        self.num_stages = num_stages
        self.out_indices = normalize_out_indices(out_indices, num_stages)
        # mmpretrain's k freezes the first k downsampling layers and stages: the contract's k
        # (0: nothing, the contract's -1)
        frozen_stages = check_frozen_stages(frozen_stages, num_stages)
        self.frozen_stages = -1 if frozen_stages == 0 else frozen_stages
        self.norm_eval = norm_eval
        self.gap_before_final_norm = gap_before_final_norm
        num_built = max(self.out_indices) + 1

        # Drop-path rates are spread over every block of the full arch (as mmpretrain does), so a
        # truncated backbone keeps the rates of the full one.
        dpr = torch.linspace(0, float(drop_path_rate), sum(depths), device='cpu').tolist()

        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_channels, channels[0], kernel_size=stem_patch_size,
                      stride=stem_patch_size),
            _norm(norm_cfg, channels[0]))])
        self.stages = nn.ModuleList()
        block_idx = 0
        for i in range(num_built):
            if i > 0:
                self.downsample_layers.append(nn.Sequential(
                    _norm(norm_cfg, channels[i - 1]),
                    nn.Conv2d(channels[i - 1], channels[i], kernel_size=2, stride=2)))
            self.stages.append(nn.Sequential(*[
                ConvNeXtBlock(channels[i], norm_cfg=norm_cfg, act_cfg=act_cfg,
                              linear_pw_conv=linear_pw_conv, drop_path_rate=dpr[block_idx + j],
                              layer_scale_init_value=layer_scale_init_value, use_grn=use_grn,
                              with_cp=with_cp)
                for j in range(depths[i])]))
            block_idx += depths[i]
            if i in self.out_indices:
                self.add_module(f'norm{i}', _norm(norm_cfg, channels[i]))

        # A pooled (N, C) output has no stride: the contract marks it with None.
        self._set_outputs([channels[i] for i in self.out_indices],
                          [None if gap_before_final_norm else stem_patch_size * 2 ** i
                           for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch):
        if isinstance(arch, str):
            check_choice('arch', arch, cls.arch_settings)
            arch = cls.arch_settings[arch]
        elif isinstance(arch, dict):
            missing = {'depths', 'channels'} - set(arch)
            if missing:
                raise KeyError(f'arch dict must have the keys "depths" and "channels"; missing '
                               f'{sorted(missing)} in {arch!r}')
        else:
            raise TypeError(f'arch must be one of {sorted(cls.arch_settings)} or a dict with '
                            f'"depths" and "channels", got {arch!r}')
        depths, channels = arch['depths'], arch['channels']
        if (not isinstance(depths, (list, tuple)) or not isinstance(channels, (list, tuple))
                or len(depths) != len(channels) or not depths):
            raise ValueError(f'arch "depths" and "channels" must be non-empty lists of the same '
                             f'length, got depths={depths!r}, channels={channels!r}')
        for name, values, limit in (('depths', depths, MAX_BLOCKS),
                                    ('channels', channels, MAX_WIDTH)):
            for v in values:
                check_size_limit(f'arch["{name}"] entry', v, limit)
        return list(depths), list(channels)

    @property
    def size_divisibility(self) -> int:
        # Sides that are multiples of the last built stride give maps with no floored rows.
        return self.stem_patch_size * 2 ** (len(self.stages) - 1)

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, num_depths)`` for layer-wise lr decay, mmpretrain's ConvNeXt numbering: 0
        the stem, stage 2 in groups of 3 blocks, ``max_id`` (12, or 6 for a third stage of at
        most 9 blocks) stage 4, ``max_id + 1`` the final norm and a head."""
        max_id = 12 if self.depths[-2] > 9 else 6
        name = strip_prefix(param_name, prefix)
        if name is None:
            return max_id + 1, max_id + 2
        parts = name.split('.')
        if parts[0] == 'downsample_layers':
            stage = int(parts[1])
            depth = 0 if stage == 0 else stage + 1 if stage in (1, 2) else max_id
        elif parts[0] == 'stages':
            stage, block = int(parts[1]), int(parts[2])
            depth = stage + 1 if stage in (0, 1) else 3 + block // 3 if stage == 2 else max_id
        else:  # the final norms
            depth = max_id + 1
        return depth, max_id + 2

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        """The stem, then stage ``i`` with the downsampling before it (the output norms stay
        trainable, as in mmpretrain)."""
        return [self.downsample_layers[0], *(
            stage if i == 0 else nn.ModuleList([self.downsample_layers[i], stage])
            for i, stage in enumerate(self.stages))]

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: each built downsampling layer and its stage in
        sequence, the outputs through their norms (``layers.scripting.ScriptableNormedStages``),
        a list of the same maps (or pooled vectors)."""
        from ..layers.scripting import ScriptableNormedStages
        stages = [nn.Sequential(self.downsample_layers[i], stage)
                  for i, stage in enumerate(self.stages)]
        return ScriptableNormedStages(stages, [self._modules[f'norm{i}'] for i in self.out_indices],
                                      self.out_indices, pool=self.gap_before_final_norm)

    def forward(self, x: torch.Tensor):
        """``(N, in_channels, H, W)`` -> tuple of ``(N, C_i, H_i, W_i)`` maps (or ``(N, C_i)``
        with ``gap_before_final_norm``), with ``H_i = H // stride_i`` after flooring at every
        downsampling step."""
        self.check_input(x)
        min_side = self.stem_patch_size * 2 ** (len(self.stages) - 1)
        if x.shape[2] < min_side or x.shape[3] < min_side:
            raise ValueError(f'ConvNeXt with out_indices={self.out_indices} needs inputs of at '
                             f'least {min_side}x{min_side}, got {tuple(x.shape[2:])}')
        outs = [None] * len(self.out_indices)
        for i, stage in enumerate(self.stages):
            x = stage(self.downsample_layers[i](x))
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}')
                if self.gap_before_final_norm:
                    out = norm(x.mean((2, 3), keepdim=True)).flatten(1)
                else:
                    out = norm(x).contiguous()
                outs[self.out_indices.index(i)] = out
        return tuple(outs)
