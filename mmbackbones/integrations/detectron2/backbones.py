"""detrex's backbone classes, built on mmbackbones' own, as detectron2 ``Backbone``s.

When detectron2 is importable (checked once, when this module is first imported) each class
here also derives from ``detectron2.modeling.Backbone``: ``isinstance`` checks in detectron2's
FPN and detrex's models pass, and ``output_shape()`` returns detectron2's ``ShapeSpec``. Without
detectron2 they are mmbackbones backbones with the same dict outputs and our ``ShapeSpec``.

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
from .adapter import _detectron2, _shape_spec_cls
from .resnet import Detectron2ResNet

_D2 = _detectron2()
_BASES = (_D2.Backbone,) if _D2 is not None else ()


class _Detectron2Outputs:
    """detectron2's ``Backbone`` output metadata from mmbackbones' (``out_names`` ...)."""

    def _sync_detectron2_outputs(self, names: Optional[Sequence[str]] = None) -> None:
        if names is not None:
            self._set_outputs(self.out_channels, self.out_strides, names)
        pooled = [n for n, s in zip(self.out_names, self.out_strides) if s is None]
        if pooled:
            raise ValueError(f'{type(self).__name__}: output(s) {pooled} are pooled (N, C) '
                             f'vectors (stride None), not feature maps; a detectron2 Backbone '
                             f'returns maps (use features_only=True)')
        self._out_features = list(self.out_names)
        self._out_feature_channels = dict(zip(self.out_names, self.out_channels))
        self._out_feature_strides = dict(zip(self.out_names, self.out_strides))

    def output_shape(self):
        """``{name: ShapeSpec(channels=..., stride=...)}`` (detectron2's class when installed)."""
        spec = _shape_spec_cls()
        return {n: spec(channels=c, stride=s)
                for n, c, s in zip(self.out_names, self.out_channels, self.out_strides)}


class ResNet(_Detectron2Outputs, Detectron2ResNet, *_BASES):
    __doc__ = Detectron2ResNet.__doc__


def _freeze_at_to_frozen_stages(freeze_at, kwargs: dict) -> int:
    if isinstance(freeze_at, bool) or not isinstance(freeze_at, int) or freeze_at < 0:
        raise ValueError(f'TimmBackbone: freeze_at must be an int >= 0 (0: nothing, k: the '
                         f'first k feature levels), got {freeze_at!r}')
    if kwargs.get('frozen_stages', -1) not in (-1, freeze_at - 1):
        raise ValueError(f'TimmBackbone: freeze_at={freeze_at} and frozen_stages='
                         f'{kwargs["frozen_stages"]} contradict each other (frozen_stages = '
                         f'freeze_at - 1); give one')
    return freeze_at - 1


class TimmBackbone(_Detectron2Outputs, TIMMBackbone, *_BASES):
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
        self._sync_detectron2_outputs([f'p{i}' for i in indices])

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, super().forward(x)))


class TorchvisionBackbone(_Detectron2Outputs, _Torchvision, *_BASES):
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
        self._sync_detectron2_outputs()

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, super().forward(x)))


__all__ = ['ResNet', 'TimmBackbone', 'TorchvisionBackbone']
