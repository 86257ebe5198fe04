"""What ``torch.jit.script`` compiles for :class:`~mmbackbones.models.backbones.hrnet.HRNet`:
its forward in TorchScript's subset over the same modules (the stem, the blocks, which prepare
themselves as :class:`~.scripting.ScriptableBlock`, the transitions and the fuse layers).

The eager modules pass lists of maps through ``nn.Sequential`` stages and fuse rows holding
``None``; here each stage is a list of :class:`ScriptableHRModule` and each fuse entry a
:class:`ScriptableFuse`. The fuse sums run in the eager order (the same numbers).
"""
from typing import List

import torch
import torch.nn.functional as F
from torch import nn

from .scripting import keep_source


class ScriptableFuse(nn.Module):
    """Branch ``j`` brought to branch ``i``: ``pre`` (convs and norms, or ``Identity``), then for
    a lower branch the eager ``FuseUpsample``: ``scale_factor``, and a resize to the target size
    where the sides differ (odd input sizes)."""

    def __init__(self, pre: nn.Module, upsample=None):
        super().__init__()
        self.pre = pre
        self.upsample: bool = upsample is not None
        self.scale_factor: float = float(upsample.scale_factor) if upsample is not None else 1.
        self.mode: str = upsample.mode if upsample is not None else 'nearest'
        self.bilinear: bool = self.mode == 'bilinear'

    def _resize(self, x: torch.Tensor, size: List[int]) -> torch.Tensor:
        if self.bilinear:
            return F.interpolate(x, size=size, mode=self.mode, align_corners=False)
        return F.interpolate(x, size=size, mode=self.mode)

    def forward(self, x: torch.Tensor, size: List[int]) -> torch.Tensor:
        x = self.pre(x)
        if not self.upsample:
            return x
        if self.bilinear:
            x = F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode,
                              align_corners=False)
        else:
            x = F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode)
        if x.shape[-2] != size[0] or x.shape[-1] != size[1]:
            x = self._resize(x, size)
        return x


class ScriptableHRModule(nn.Module):
    """An ``HRModule``: the branches, then per output row the sum of the fused branches and a
    ReLU (no fuse with one branch)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.branches = module.branches
        self.relu = module.relu
        rows = []
        for row in (module.fuse_layers or []):
            entries = []
            for layer in row:
                if layer is None:
                    entries.append(ScriptableFuse(nn.Identity()))
                elif len(layer) == 3 and type(layer[2]).__name__ == 'FuseUpsample':
                    entries.append(ScriptableFuse(nn.Sequential(layer[0], layer[1]), layer[2]))
                else:
                    entries.append(ScriptableFuse(layer))
            rows.append(nn.ModuleList(entries))
        self.rows = nn.ModuleList(rows)
        self.fuse: bool = module.fuse_layers is not None

    def forward(self, x: List[torch.Tensor]) -> List[torch.Tensor]:
        outs: List[torch.Tensor] = []
        for i, branch in enumerate(self.branches):
            outs.append(branch(x[i]))
        if not self.fuse:
            return outs
        fused: List[torch.Tensor] = []
        for i, row in enumerate(self.rows):
            size = [outs[i].shape[-2], outs[i].shape[-1]]
            y = outs[0]
            for j, entry in enumerate(row):
                t = entry(outs[j], size)
                y = t if j == 0 else y + t
            fused.append(self.relu(y))
        return fused


class ScriptableTransition(nn.Module):
    """A transition: branch ``j`` of the next stage from branch ``sources[j]`` (the last one for
    a new branch)."""

    def __init__(self, layers: nn.ModuleList, num_inputs: int):
        super().__init__()
        self.layers = layers
        self.sources: List[int] = [min(j, num_inputs - 1) for j in range(len(layers))]

    def forward(self, xs: List[torch.Tensor]) -> List[torch.Tensor]:
        out: List[torch.Tensor] = []
        for j, layer in enumerate(self.layers):
            out.append(layer(xs[self.sources[j]]))
        return out


class ScriptableHRNet(nn.Module):
    """``HRNet.forward`` over the same modules: a list of the ``out_indices`` maps."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.stem = nn.Sequential(model.conv1, model.norm1, model.relu, model.conv2,
                                  model.norm2, model.relu)
        self.layer1 = model.layer1
        num_inputs, transitions, stages = 1, [], []
        for i in range(2, 5):
            layers = model._modules[f'transition{i - 1}']
            transitions.append(ScriptableTransition(layers, num_inputs))
            stages.append(nn.ModuleList([ScriptableHRModule(m)
                                         for m in model._modules[f'stage{i}']]))
            num_inputs = len(layers)
        self.transitions = nn.ModuleList(transitions)
        self.stages = nn.ModuleList(stages)
        self.out_indices: List[int] = [int(i) for i in model.out_indices]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        xs: List[torch.Tensor] = [self.layer1(self.stem(x))]
        for i, (transition, stage) in enumerate(zip(self.transitions, self.stages)):
            xs = transition(xs)
            for module in stage:
                xs = module(xs)
        return [xs[i] for i in self.out_indices]


def scriptable_hrnet(model: nn.Module) -> nn.Module:
    return keep_source(ScriptableHRNet(model), model)


__all__ = ['ScriptableFuse', 'ScriptableHRModule', 'ScriptableTransition', 'ScriptableHRNet',
           'scriptable_hrnet']
