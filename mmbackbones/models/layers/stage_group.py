"""``StageGroup``: several modules and loose parameters seen as one stage."""
from typing import Sequence

from torch import nn


class StageGroup(nn.Module):
    """The modules and loose parameters of one stage, so ``BaseBackbone._freeze_stages`` can
    freeze a stage that is not one module (a wrapped timm/torchvision model: several top-level
    modules, a ViT's ``cls_token``). Built on demand by ``stem_and_stages()``; it shares (never
    owns) the backbone's modules, so it adds nothing to the backbone's state dict.
    """

    def __init__(self, modules: Sequence[nn.Module], params: Sequence[nn.Parameter] = ()):
        super().__init__()
        self.members = nn.ModuleList(modules)
        for i, param in enumerate(params):
            self.register_parameter(f'param{i}', param)
