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
from torch import nn

from ...models.layers.scripting import ScriptableBlock


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




class ScriptableAdapter(nn.Module):
    """``Detectron2Backbone``'s forward in TorchScript's subset: ``{name: feature}`` for
    ``out_features``, from the network's outputs in its own order. ``torch.jit.script`` prepares
    the network in turn (its ``__prepare_scriptable__``: e.g.
    :class:`~mmbackbones.models.layers.scripting.ScriptableResNet`, which returns a list); a
    network without a TorchScript forward fails there, with TorchScript's reason. As for the
    detectron2-style ResNet, ``torch.jit.script`` of a parent (an FPN) leaves this prepared module
    in the parent's children: the same parameters and outputs, without the adapter's metadata."""

    size_divisibility: int
    padding_constraints: Dict[str, int]

    def __init__(self, adapter: nn.Module):
        super().__init__()
        self.backbone = adapter.backbone
        names = list(adapter.backbone.out_names)
        self.out_features: List[str] = list(adapter.out_names)
        self.indices: List[int] = [names.index(adapter._source[f]) for f in adapter.out_names]
        self.size_divisibility = int(adapter.size_divisibility)
        self.padding_constraints = {str(k): int(v)
                                    for k, v in adapter.padding_constraints.items()}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        outs = self.backbone(x)
        out: Dict[str, torch.Tensor] = {}
        for name, index in zip(self.out_features, self.indices):
            out[name] = outs[index]
        return out


__all__ = ['ScriptableBlock', 'ScriptableResNet', 'ScriptableAdapter']
