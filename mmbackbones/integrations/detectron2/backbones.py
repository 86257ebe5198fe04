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
from typing import Dict, Optional, Sequence

import torch

from ...models.backbones.timm_backbone import TIMMBackbone
from ...models.backbones.torchvision_backbone import TorchvisionBackbone as _Torchvision
from .contract import BACKBONE_BASE, Detectron2Contract
from .resnet import Detectron2ResNet


class ResNet(Detectron2Contract, Detectron2ResNet, BACKBONE_BASE):
    __doc__ = Detectron2ResNet.__doc__


def _freeze_at_to_frozen_stages(freeze_at, kwargs: dict) -> int:
    """detectron2's meaning: any int, ``<= 0`` freezes nothing, ``k`` the first ``k`` levels."""
    if isinstance(freeze_at, bool) or not isinstance(freeze_at, int):
        raise ValueError(f'TimmBackbone: freeze_at must be an int (<= 0: nothing, k: the '
                         f'first k feature levels), got {freeze_at!r}')
    frozen_stages = max(freeze_at, 0) - 1
    if kwargs.get('frozen_stages', -1) not in (-1, frozen_stages):
        raise ValueError(f'TimmBackbone: freeze_at={freeze_at} and frozen_stages='
                         f'{kwargs["frozen_stages"]} contradict each other (frozen_stages = '
                         f'freeze_at - 1); give one')
    return frozen_stages


class TimmBackbone(Detectron2Contract, TIMMBackbone, BACKBONE_BASE):
    """detrex's ``TimmBackbone(model_name, features_only=True, pretrained=False,
    checkpoint_path='', in_channels=3, out_indices=(0, 1, 2, 3), norm_layer=None)``.

    ``forward(x)`` returns ``{'p<i>': (N, C_i, H / s_i, W / s_i)}`` for each ``i`` of
    ``out_indices`` (detrex's names); other ``TIMMBackbone`` arguments (``frozen_stages``,
    ``output_stride``, ...) are accepted too. ``freeze_at`` (detectron2's name, as detrex's
    ResNet takes it): ``0`` nothing, ``k`` the first ``k`` feature levels (for a ResNet: 1 the
    stem, 2 the stem and res2), i.e. ``frozen_stages=k - 1``. ``norm_layer=FrozenBatchNorm2d``
    (detectron2's class, or ours) gives every BatchNorm that class, as detrex's does.
    """

    def __init__(self, model_name: str, features_only: bool = True, pretrained: bool = False,
                 checkpoint_path: str = '', in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3), norm_layer=None,
                 freeze_at: Optional[int] = None, **kwargs):
        if freeze_at is not None:
            kwargs['frozen_stages'] = _freeze_at_to_frozen_stages(freeze_at, kwargs)
        if not features_only:
            raise ValueError('TimmBackbone(features_only=False) returns pooled/final features, '
                             'not the feature maps a detectron2 Backbone returns; use '
                             'features_only=True')
        try:
            super().__init__(model_name=model_name, features_only=True, pretrained=pretrained,
                             checkpoint_path=checkpoint_path or None, in_channels=in_channels,
                             out_indices=out_indices, norm_layer=norm_layer, **kwargs)
        except ValueError as error:
            if freeze_at is None or 'frozen_stages must be in' not in str(error):
                raise
            raise ValueError(f'TimmBackbone: freeze_at={freeze_at} is frozen_stages='
                             f'{freeze_at - 1}, and {error}') from None
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
