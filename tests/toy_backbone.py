"""A tiny backbone that follows the contract, for tests of the shared machinery."""
from torch import nn

from mmbackbones.models.base import BaseBackbone
from mmbackbones.registry import MODELS
from mmbackbones.utils import check_frozen_stages, normalize_out_indices


@MODELS.register_module(force=True)
class ToyBackbone(BaseBackbone):
    """stem (stride 2) + 3 stages (stride 2 each): channels 8, 16, 32 at strides 4, 8, 16."""

    channels = (8, 16, 32)

    def __init__(self, in_channels=3, out_indices=(0, 1, 2), frozen_stages=-1, norm_eval=False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_indices = normalize_out_indices(out_indices, len(self.channels))
        self.frozen_stages = check_frozen_stages(frozen_stages, len(self.channels))
        self.norm_eval = norm_eval
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 4, 3, 2, 1), nn.BatchNorm2d(4), nn.ReLU())
        self.stages = nn.ModuleList()
        prev = 4
        for ch in self.channels[:max(self.out_indices) + 1]:
            self.stages.append(nn.Sequential(nn.Conv2d(prev, ch, 3, 2, 1), nn.BatchNorm2d(ch)))
            prev = ch
        self._set_outputs([self.channels[i] for i in self.out_indices],
                          [4 * 2**i for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def stem_and_stages(self):
        return [self.stem, *self.stages]

    def forward(self, x):
        self.check_input(x)
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return tuple(outs[i] for i in self.out_indices)
