"""detrex's backbone classes, built on mmbackbones' own, as detectron2 ``Backbone``s.

Each class takes on detectron2's contract the one way :mod:`.contract` defines
(``Detectron2Contract`` first, the network class, ``BACKBONE_BASE`` last): with detectron2
installed it is a ``detectron2.modeling.Backbone`` (``isinstance`` checks in detectron2's FPN and
detrex's models pass) and ``output_shape()`` returns detectron2's ``ShapeSpec``; without it, an
mmbackbones backbone with the same dict outputs and the neutral ``ShapeSpec``.

* :class:`ResNet`: :class:`~.resnet.Detectron2ResNet` (detectron2's arguments and names).
* :class:`TimmBackbone`: detrex's arguments over ``TIMMBackbone``; ``{'p<i>': map}`` for each
  ``i`` of ``out_indices``.
* :class:`TorchvisionBackbone`: detrex's arguments over ``TorchvisionBackbone``;
  ``{name: map}`` for the ``return_nodes`` values.
"""
from typing import Dict, Sequence

import torch

from ...models.backbones.timm_backbone import TIMMBackbone
from ...models.backbones.torchvision_backbone import TorchvisionBackbone as _Torchvision
from .contract import BACKBONE_BASE, Detectron2Contract
from .resnet import Detectron2ResNet


class ResNet(Detectron2Contract, Detectron2ResNet, BACKBONE_BASE):
    __doc__ = Detectron2ResNet.__doc__


class TimmBackbone(Detectron2Contract, TIMMBackbone, BACKBONE_BASE):
    """detrex's ``TimmBackbone(model_name, features_only=True, pretrained=False,
    checkpoint_path='', in_channels=3, out_indices=(0, 1, 2, 3), norm_layer=None)``.

    ``forward(x)`` returns ``{'p<i>': (N, C_i, H / s_i, W / s_i)}`` for each ``i`` of
    ``out_indices`` (detrex's names); other ``TIMMBackbone`` arguments (``frozen_stages``,
    ``output_stride``, ...) are accepted too.
    """

    def __init__(self, model_name: str, features_only: bool = True, pretrained: bool = False,
                 checkpoint_path: str = '', in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3), norm_layer=None, **kwargs):
        if not features_only:
            raise ValueError('TimmBackbone(features_only=False) returns pooled/final features, '
                             'not the feature maps a detectron2 Backbone returns; use '
                             'features_only=True')
        super().__init__(model_name=model_name, features_only=True, pretrained=pretrained,
                         checkpoint_path=checkpoint_path or None, in_channels=in_channels,
                         out_indices=out_indices, norm_layer=norm_layer, **kwargs)
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        self._set_outputs(self.out_channels, self.out_strides, [f'p{i}' for i in indices])
        self.check_detectron2_outputs()

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, super().forward(x)))


class TorchvisionBackbone(Detectron2Contract, _Torchvision, BACKBONE_BASE):
    """detrex's ``TorchvisionBackbone(model_name='resnet50', pretrained=False,
    return_nodes={'layer1': 'res2', ..., 'layer4': 'res5'})``.

    ``forward(x)`` returns ``{name: (N, C, H / s, W / s)}`` for the ``return_nodes`` values;
    extra keyword arguments go to the torchvision model (``norm_layer=...``) as in detrex.
    """

    def __init__(self, model_name: str = 'resnet50', pretrained: bool = False,
                 return_nodes=None, train_return_nodes=None, eval_return_nodes=None,
                 tracer_kwargs=None, suppress_diff_warnings: bool = False, **kwargs):
        for name, value in (('train_return_nodes', train_return_nodes),
                            ('eval_return_nodes', eval_return_nodes),
                            ('tracer_kwargs', tracer_kwargs)):
            if value is not None:
                raise ValueError(f'{name}={value!r} is not supported: give return_nodes (the '
                                 f'same nodes in training and evaluation)')
        if return_nodes is None:
            return_nodes = {'layer1': 'res2', 'layer2': 'res3', 'layer3': 'res4',
                            'layer4': 'res5'}
        super().__init__(model_name=model_name, pretrained=pretrained,
                         return_nodes=return_nodes, **kwargs)
        self.check_detectron2_outputs()

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, super().forward(x)))


__all__ = ['ResNet', 'TimmBackbone', 'TorchvisionBackbone']
