"""What ``torch.jit.script`` compiles for the detectron2-style ResNet (as detectron2's own
ResNet, it must script alone and inside detectron2's FPN / meta-architectures).

The eager modules share their forward with the native ResNet (``ResidualBlockBase``: conv steps
looked up by name, gradient checkpointing, plugins, the folded deploy path), which TorchScript
cannot compile; ``Detectron2ResNet.__prepare_scriptable__`` hands ``torch.jit.script`` a
:class:`ScriptableResNet` instead: the same stem, blocks, convs and norms (the same parameter
tensors, no copy), with a forward in TorchScript's subset that computes the same numbers.
Stages sit under ``stages.<name>`` in the scripted module's state dict (load checkpoints into the
eager model before scripting). As with detectron2's own patch (``detectron2.export.
torchscript_patch``), ``torch.jit.script`` also puts the prepared module into the parent's
children when the ResNet sits inside another module (an FPN's ``bottom_up``): the same
parameters and outputs, without the backbone's metadata methods.
"""
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import nn


class ScriptableBlock(nn.Module):
    """A detectron2 ``BasicBlock``/``BottleneckBlock`` (plain: no plugins, drop path or
    checkpointing) over the same ``conv1``.. ``conv3`` and ``shortcut`` modules."""

    def __init__(self, block: nn.Module):
        super().__init__()
        steps = getattr(block, '_steps', ())
        plain = (2 <= len(steps) <= 3 and not any(norm or plugins for _, norm, plugins in steps)
                 and not block.with_plugins and isinstance(block.drop_path, nn.Identity)
                 and type(block.relu) is nn.ReLU)
        if not plain:
            raise TypeError(f'{type(block).__name__} cannot be scripted: only detectron2-style '
                            f'blocks without plugins or drop path are')
        self.conv1 = block._modules[steps[0][0]]
        self.conv2 = block._modules[steps[1][0]]
        self.conv3 = block._modules[steps[2][0]] if len(steps) == 3 else None
        self.shortcut = block._modules.get(block._shortcut_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x))
        out = self.conv2(out)
        if self.conv3 is not None:
            out = self.conv3(F.relu(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        else:
            out = out + x
        return F.relu(out)


class ScriptableResNet(nn.Module):
    """``Detectron2ResNet``'s forward in TorchScript's subset, over the same modules:
    ``{name: feature}`` for ``out_features``."""

    # class-level types: TorchScript cannot infer the type of an empty dict attribute
    size_divisibility: int
    padding_constraints: Dict[str, int]

    def __init__(self, model: nn.Module):
        super().__init__()
        self.stem = model.stem
        self.stages = nn.ModuleDict({
            name: nn.Sequential(*[ScriptableBlock(b) for b in model._modules[name]])
            for name in model.stage_names})
        self.out_features: List[str] = list(model.feature_names)
        # read by detectron2's meta-architectures when the ResNet is the whole backbone (C4)
        self.size_divisibility: int = int(getattr(model, 'size_divisibility', 0) or 0)
        self.padding_constraints: Dict[str, int] = {
            str(k): int(v) for k, v in (getattr(model, 'padding_constraints', {}) or {}).items()}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        feats: Dict[str, torch.Tensor] = {}
        x = self.stem(x)
        feats['stem'] = x
        for name, stage in self.stages.items():
            x = stage(x)
            feats[name] = x
        out: Dict[str, torch.Tensor] = {}
        for name in self.out_features:
            out[name] = feats[name]
        return out


__all__ = ['ScriptableBlock', 'ScriptableResNet']
