"""detrex's ``TorchvisionResNet`` (``detrex.modeling.backbone.torchvision_resnet``) on the core
ResNet, as a detectron2 ``Backbone``.

detrex's class wraps a torchvision ResNet with FrozenBatchNorm2d in an
``IntermediateLayerGetter`` named ``body``; its DC5 configs (DETR, DAB-DETR, DN-DETR,
Conditional-DETR, Anchor-DETR) write ``TorchvisionResNet(name='resnet50', train_backbone=True,
dilation=True, return_layers={'layer4': 'res5'})``. Here ``body`` is the core
:class:`~mmbackbones.models.backbones.resnet.ResNet` (its parameter names are torchvision's:
``conv1``, ``bn1``, ``layer1.0.downsample.0``), so the state dict is detrex's key for key
(``body.conv1.weight``, ``body.layer4.2.bn3.running_var``) and detrex checkpoints load through
``train.init_checkpoint`` / ``DetectionCheckpointer``; a plain torchvision state dict (no
``body.``) loads into the backbone itself (``backbone.load_state_dict(sd)``; ``fc.*`` left out).

``dilation=True`` is torchvision's ``replace_stride_with_dilation=[False, False, True]``: layer4
keeps stride 16, its first block's 3x3 conv keeps dilation 1 and the others use 2 (the core's
``contract_dilation``). ``train_backbone=True`` freezes what detrex freezes (every parameter
outside layer2..layer4: the stem and layer1), ``False`` everything.
"""
from typing import Dict, Mapping

import torch

from ...models.backbones.resnet import ResNet, ResNeXt
from ...utils.validation import check_bool, check_choice, to_plain
from .contract import BACKBONE_BASE, Detectron2Contract

# torchvision's constructor name -> (core class, its arguments)
TORCHVISION_RESNETS = {
    'resnet18': (ResNet, dict(depth=18)),
    'resnet34': (ResNet, dict(depth=34)),
    'resnet50': (ResNet, dict(depth=50)),
    'resnet101': (ResNet, dict(depth=101)),
    'resnet152': (ResNet, dict(depth=152)),
    'resnext50_32x4d': (ResNeXt, dict(depth=50, groups=32, width_per_group=4)),
    'resnext101_32x8d': (ResNeXt, dict(depth=101, groups=32, width_per_group=8)),
    'resnext101_64x4d': (ResNeXt, dict(depth=101, groups=64, width_per_group=4)),
    'wide_resnet50_2': (ResNet, dict(depth=50, base_channels=128, expansion=2)),
    'wide_resnet101_2': (ResNet, dict(depth=101, base_channels=128, expansion=2)),
}
LAYERS = ('layer1', 'layer2', 'layer3', 'layer4')


class _Body(ResNet):
    """The core ResNet passing torchvision's ``contract_dilation`` without a host warning."""
    host = 'detrex'


class _BodyX(ResNeXt):
    host = 'detrex'


def _check_return_layers(return_layers) -> Dict[str, str]:
    return_layers = to_plain(return_layers)
    if not isinstance(return_layers, Mapping) or not return_layers:
        raise TypeError(f'return_layers must be a non-empty dict {{layer name: output name}} '
                        f'with layer names among {list(LAYERS)}, got {return_layers!r}')
    for layer, out in return_layers.items():
        check_choice('return_layers key', layer, LAYERS)
        if not isinstance(out, str) or not out:
            raise TypeError(f'return_layers[{layer!r}] must be an output name (str), got '
                            f'{out!r}')
    if len(set(return_layers.values())) != len(return_layers):
        raise ValueError(f'return_layers gives two layers one name: {return_layers!r}')
    return dict(return_layers)


class TorchvisionResNet(Detectron2Contract, BACKBONE_BASE):
    """detrex's ``TorchvisionResNet(name, train_backbone, return_layers={'layer4': 'res5'},
    dilation=False)``.

    Args:
        name: torchvision's constructor name (``'resnet50'``, ``'resnet101'``, ...; see
            :data:`TORCHVISION_RESNETS`).
        train_backbone: ``True`` trains layer2..layer4 (the stem and layer1 frozen, as detrex),
            ``False`` freezes every parameter.
        return_layers: ``{torchvision layer name: output name}``; layers after the last one are
            not built (as ``IntermediateLayerGetter`` drops them).
        dilation: DC5: layer4 dilated instead of strided (output stride 16).

    ``forward(x)`` returns ``{output name: (N, C, H / s, W / s)}`` in layer order (detrex's);
    ``num_channels`` is detrex's (512 for resnet18/34, else 2048); ``output_shape()`` gives
    channels and strides of each output.
    """

    def __init__(self, name: str, train_backbone: bool,
                 return_layers: Mapping[str, str] = {'layer4': 'res5'},
                 dilation: bool = False):
        super().__init__()
        check_choice('name', name, tuple(TORCHVISION_RESNETS))
        check_bool('train_backbone', train_backbone)
        check_bool('dilation', dilation)
        return_layers = _check_return_layers(return_layers)
        core, arch = TORCHVISION_RESNETS[name]
        if dilation and arch['depth'] < 50:
            raise ValueError(f'dilation=True needs bottleneck blocks: torchvision refuses it for '
                             f'{name!r} ("Dilation > 1 not supported in BasicBlock")')
        ordered = [layer for layer in LAYERS if layer in return_layers]
        self.body = (_BodyX if core is ResNeXt else _Body)(
            **arch, out_indices=tuple(LAYERS.index(layer) for layer in ordered),
            strides=(1, 2, 2, 1 if dilation else 2), dilations=(1, 1, 1, 2 if dilation else 1),
            contract_dilation=True, norm_cfg=dict(type='FrozenBN'), style='pytorch',
            zero_init_residual=False, frozen_stages=1 if train_backbone else 4,
            out_names=[return_layers[layer] for layer in ordered], init_cfg=None)
        self.name, self.train_backbone, self.dilation = name, train_backbone, dilation
        self.return_layers = return_layers
        self.num_channels = 512 if name in ('resnet18', 'resnet34') else 2048
        self.out_names = self.body.out_names
        self.out_channels = self.body.out_channels
        self.out_strides = self.body.out_strides
        self.in_channels = self.body.in_channels
        self._register_load_state_dict_pre_hook(self._add_body_prefix)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, self.body(x)))

    @staticmethod
    def _add_body_prefix(state_dict, prefix, *args, **kwargs):
        """A torchvision state dict given to this module (``conv1.weight``, ...): under
        ``body.``; its classifier (``fc.*``) is left out."""
        own = [k for k in state_dict if k.startswith(prefix)]
        if not own or any(k.startswith(prefix + 'body.') for k in own):
            return
        for key in own:
            value = state_dict.pop(key)
            name = key[len(prefix):]
            if not name.startswith('fc.'):
                state_dict[prefix + 'body.' + name] = value


__all__ = ['TorchvisionResNet', 'TORCHVISION_RESNETS']
