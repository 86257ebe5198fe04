"""A tiny backbone that follows the contract, for tests of the shared machinery.

In the test process nothing is registered at import: a test that builds ``type='ToyBackbone'``
asks for the ``toy_registered`` fixture (tests/conftest.py), which registers it for that test
only (:func:`registered`). Imported as the top-level module ``toy_backbone`` (a config's
``custom_imports`` in the CLI subprocesses of tests/cli_helpers.py) it registers itself, as a
user's out-of-tree backbone does.
"""
import contextlib

from torch import nn

from mmbackbones.models.base import BaseBackbone
from mmbackbones.registry import MODELS
from mmbackbones.utils import check_frozen_stages, normalize_out_indices


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


@contextlib.contextmanager
def registered(cls=ToyBackbone, registry=MODELS):
    """``cls`` registered under its name in ``registry`` inside the block, removed after (mmengine's
    registries have no removal API: the entry is taken out of its module dict)."""
    name = cls.__name__
    if registry.module_dict.get(name) not in (None, cls):
        raise KeyError(f'{name} is already registered in {registry.scope!r} as '
                       f'{registry.module_dict[name]!r}')
    added = name not in registry.module_dict
    registry.register_module(module=cls, force=True)
    try:
        yield cls
    finally:
        if added:
            registry._module_dict.pop(name, None)


@contextlib.contextmanager
def child_registry(scope: str):
    """A registry of scope ``scope`` under mmengine's root ``MODELS`` (as a downstream library's)
    inside the block; taken out of the root's children after (mmengine has no removal API)."""
    from mmengine.registry import MODELS as ROOT
    from mmengine.registry import Registry
    if scope in ROOT.children:
        raise KeyError(f'mmengine\'s root registry already has a child scope {scope!r}')
    registry = Registry('model', parent=ROOT, scope=scope)
    try:
        yield registry
    finally:
        ROOT._children.pop(scope, None)


if __name__ == 'toy_backbone':  # custom_imports in a CLI subprocess
    MODELS.register_module(module=ToyBackbone)
