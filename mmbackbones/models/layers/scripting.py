"""What ``torch.jit.script`` compiles for the residual networks (detectron2's rule: a backbone
scripts alone and inside an FPN / meta-architecture).

The eager blocks (:class:`~.resnet_blocks.ResidualBlockBase`: conv steps looked up by name,
gradient checkpointing, plugins, the folded deploy path) and :class:`~.conv_norm_act.ConvNormAct`
use constructs outside TorchScript's subset; a network's ``__prepare_scriptable__`` hands
``torch.jit.script`` these modules instead: the same convs and norms (the same parameter tensors,
no copy) with a forward in TorchScript's subset that computes the same numbers. Only eval-mode
equivalence is promised where the eager block has stochastic depth (refused here) or
checkpointing (a training-time memory trade, same numbers).
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn


def not_scriptable(what: str, why: str) -> TypeError:
    return TypeError(f'{what} cannot be scripted (torch.jit.script): {why}')


def plain_conv_norm_act(module: nn.Module) -> nn.Sequential:
    """A :class:`~.conv_norm_act.ConvNormAct` as ``Sequential(conv, norm, act)`` (``Identity``
    for a missing norm or activation): the same modules."""
    norm = module._modules[module.norm_name] if module.norm_name else nn.Identity()
    act = module.activate if module.activate is not None else nn.Identity()
    return keep_source(nn.Sequential(module.conv, norm, act), module)


def keep_source(prepared: nn.Module, source: nn.Module) -> nn.Module:
    """``prepared`` holding a reference to the module it stands for. ``torch.jit.script``
    memoises prepared modules by ``id()`` and swaps them into the parents' children: a source
    that nothing else holds is freed, and a module created later at its address would be
    taken for it. (A tuple attribute: not a submodule, never compiled.)"""
    prepared._scripting_source = (source, )
    return prepared


class ScriptableBlock(nn.Module):
    """A ``BasicBlock``/``Bottleneck`` (ours: ``convK`` then ``bnK``; detectron2's: ``convK``
    applying its own norm) without plugins or drop path, over the same modules."""

    def __init__(self, block: nn.Module):
        super().__init__()
        steps = getattr(block, '_steps', ())
        reasons = []
        plain = getattr(block, 'has_plain_residual', None)
        if plain is None or not plain():
            reasons.append('its own residual forward (only the plain conv-norm steps of '
                           'BasicBlock/Bottleneck are scripted)')
        if not 2 <= len(steps) <= 3:
            reasons.append(f'{len(steps)} conv steps (2 or 3 are scripted)')
        if getattr(block, 'with_plugins', False) or any(p for _, _, p in steps):
            reasons.append('plugins')
        if not isinstance(getattr(block, 'drop_path', None), nn.Identity):
            reasons.append('drop path (drop_path_rate > 0)')
        if getattr(block, '_folded', False):
            reasons.append('fuse() folded its norms into conv+ReLU kernels (script before fuse)')
        if reasons:
            raise not_scriptable(type(block).__name__, ', '.join(reasons))
        modules = block._modules

        def norm(name: str) -> nn.Module:
            return modules[name] if name else nn.Identity()

        self.conv1, self.norm1 = modules[steps[0][0]], norm(steps[0][1])
        self.conv2, self.norm2 = modules[steps[1][0]], norm(steps[1][1])
        self.has_conv3 = len(steps) == 3
        self.conv3 = modules[steps[2][0]] if self.has_conv3 else nn.Identity()
        self.norm3 = norm(steps[2][1]) if self.has_conv3 else nn.Identity()
        self.shortcut = modules.get(block._shortcut_name)
        self.act = block.relu  # the block's activation (ReLU; LeakyReLU in CSPResNet)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        if self.has_conv3:
            out = self.norm3(self.conv3(self.act(out)))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        else:
            out = out + x
        return self.act(out)


def _scriptable_block(block: nn.Module) -> nn.Module:
    """The block's own scriptable form where its class defines one (ResNeSt's), else
    :class:`ScriptableBlock`."""
    prepare = getattr(type(block), '__prepare_scriptable__', None)
    # (by name: resnet_blocks imports this module, not the other way round)
    if prepare is not None and \
            prepare.__qualname__ != 'ResidualBlockBase.__prepare_scriptable__':
        return block.__prepare_scriptable__()
    return ScriptableBlock(block)


class ScriptableResNet(nn.Module):
    """mmpretrain's ``ResNet`` (``ResNetV1c``/``V1d``, ``ResNeXt``) and ``RegNet`` forward in
    TorchScript's subset, over the same stem, blocks, convs and norms: a list of feature maps in
    ``out_indices`` order (a list, TorchScript's sequence of tensors, for the tuple)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if getattr(model, 'deep_stem', False):
            self.stem = nn.Sequential(*[plain_conv_norm_act(m) for m in model.stem])
        else:
            if type(model.relu) is not nn.ReLU:
                raise not_scriptable(type(model).__name__, 'fuse() folded the stem (script '
                                     'before fuse)')
            self.stem = nn.Sequential(model.conv1, model.norm1, model.relu)
        # RegNet: the same stem without the max pool
        self.maxpool = model.maxpool if hasattr(model, 'maxpool') else nn.Identity()
        # (a block with its own scriptable form, e.g. ResNeSt's, prepares itself)
        self.stages = nn.ModuleList([
            nn.Sequential(*[_scriptable_block(b) for b in model._modules[name]])
            for name in model.res_layers])
        self.out_indices: List[int] = [int(i) for i in model.out_indices]
        self.channels_last: bool = bool(getattr(model, 'channels_last', False))

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.maxpool(self.stem(x))
        feats: List[torch.Tensor] = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return [feats[i] for i in self.out_indices]


class ScriptableResidual(nn.Module):
    """``x + body(x)`` (``residual``) or ``body(x)``, over the same ``body``: MobileNetV2's
    block without gradient checkpointing (the same numbers)."""

    def __init__(self, body: nn.Module, residual: bool):
        super().__init__()
        self.body = body
        self.residual: bool = bool(residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:
            return x + self.body(x)
        return self.body(x)


class ScriptableStages(nn.Module):
    """A network that is a stem then stages in sequence, outputs after the stages: ``[stage_i(..)
    for i in out_indices]`` as a list, over the same modules."""

    def __init__(self, stem: nn.Module, stages, out_indices):
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(list(stages))
        self.out_indices: List[int] = [int(i) for i in out_indices]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem(x)
        feats: List[torch.Tensor] = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return [feats[i] for i in self.out_indices]


class ScriptableNormedStages(nn.Module):
    """Stages in sequence, each output map through its own norm: ``[norms[j](stage_i(..)) for
    j, i in enumerate(out_indices)]`` as a list, over the same modules. ``pool`` averages each
    map over its sides before the norm and returns ``(N, C)`` vectors (ConvNeXt's
    ``gap_before_final_norm``)."""

    def __init__(self, stages, norms, out_indices, pool: bool = False):
        super().__init__()
        self.stages = nn.ModuleList(list(stages))
        self.norms = nn.ModuleList(list(norms))
        self.out_indices: List[int] = [int(i) for i in out_indices]
        self.pool: bool = bool(pool)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats: List[torch.Tensor] = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        outs: List[torch.Tensor] = []
        for j, norm in enumerate(self.norms):
            out = feats[self.out_indices[j]]
            if self.pool:
                outs.append(norm(out.mean((2, 3), keepdim=True)).flatten(1))
            else:
                outs.append(norm(out).contiguous())
        return outs


class ScriptableSum(nn.Module):
    """``first(x) + sum(branch(first(x)) for branch in branches)``, over the same modules
    (MSCAN's multi-scale attention before its 1x1 conv, without the named-branch lookup)."""

    def __init__(self, first: nn.Module, branches):
        super().__init__()
        self.first = first
        self.branches = nn.ModuleList(list(branches))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        total = x
        for branch in self.branches:
            total = total + branch(x)
        return total


class ScriptableGate(nn.Module):
    """``body(x) * x`` over the same ``body``."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) * x


class ScriptableChannelsLastNorm(nn.Module):
    """``norm`` (a ``LayerNorm`` over channels) on the ``(N, H, W, C)`` view of a ``(N, C, H, W)``
    map, back to ``(N, C, H, W)`` (contiguous), over the same norm."""

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


class ScriptableConv2dSame(nn.Module):
    """:class:`~.mobile_blocks.Conv2dSame`'s forward in TorchScript's subset (the padding in
    integer arithmetic, ``ceil(side / stride) == (side + stride - 1) // stride``), over the same
    weight and bias."""

    bias: Optional[torch.Tensor]
    static_padding: Optional[List[int]]

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.register_parameter('weight', conv.weight)
        self.register_parameter('bias', conv.bias)
        self.kernel: List[int] = [int(k) for k in conv.kernel_size]
        self.stride: List[int] = [int(s) for s in conv.stride]
        self.dilation: List[int] = [int(d) for d in conv.dilation]
        self.groups: int = int(conv.groups)
        static = conv._static_padding
        self.static_padding = None if static is None else [int(p) for p in static]

    def _pad(self, side: int, i: int) -> int:
        stride = self.stride[i]
        out = (side + stride - 1) // stride
        return max((out - 1) * stride + (self.kernel[i] - 1) * self.dilation[i] + 1 - side, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        static = self.static_padding
        if static is not None:
            return F.conv2d(x, self.weight, self.bias, [1, 1], static, self.dilation,
                            self.groups)
        pad_h, pad_w = self._pad(x.shape[-2], 0), self._pad(x.shape[-1], 1)
        if pad_h > 0 or pad_w > 0:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, [0, 0], self.dilation,
                        self.groups)


__all__ = ['ScriptableConv2dSame', 'ScriptableSum', 'ScriptableGate', 'ScriptableChannelsLastNorm', 'not_scriptable', 'plain_conv_norm_act', 'keep_source', 'ScriptableBlock',
           'ScriptableResNet', 'ScriptableResidual', 'ScriptableStages', 'ScriptableNormedStages']
