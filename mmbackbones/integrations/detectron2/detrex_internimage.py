"""detrex's ``InternImage`` (``detrex.modeling.backbone.internimage``) on the core InternImage,
as a detectron2 ``Backbone``.

Signature, defaults and meanings are detrex's. ``core_op`` is ``'DCNv3'`` (detrex's CUDA
extension) or ``'DCNv3_pytorch'`` (its pure-PyTorch reference); both mean the same operator with
the same parameters, and here both run our pure-PyTorch DCNv3
(:mod:`mmbackbones.models.layers.dcnv3`), on any device, with no compiled extension. detrex's
``**kwargs`` takes the official classification-only arguments (``num_classes``, ``cls_scale``,
``use_clip_projector``), which have no effect on the backbone, there as here; any other keyword
is refused with a ``TypeError`` naming it instead of being dropped. ``init_cfg`` is kept as the
core's mmengine ``init_cfg`` (detrex stores it and never reads it; nothing loads unless
``init_weights()`` is called).

``forward(x)`` returns ``{'p<i>': (N, channels * 2**i, H_i, W_i)}`` for ``i`` in ``out_indices``
(strides ``2 ** (i + 2)``); ``size_divisibility`` is 0, what detrex's class gives (it sets
``_size_devisibility``, which detectron2 never reads). Stages after the last output are not
built (detrex builds all four: their weights are ignored when a detrex checkpoint loads through
``DetectionCheckpointer``, which loads non-strictly). The state dict is detrex's (the core keeps
the official names): ``train.init_checkpoint`` loads detrex's checkpoints, and the official
classification files, whose head keys detectron2's checkpointer reports as unused, as it does
for detrex's own class.
"""
import warnings
from typing import Dict

import torch

from ...models.backbones.internimage import InternImage as _CoreInternImage
from ...utils.validation import check_choice
from .contract import BACKBONE_BASE, Detectron2Contract

#: keywords of the official classification model that detrex's ``**kwargs`` absorbs: they shape
#: only the classification head
HEAD_ONLY_KWARGS = ('num_classes', 'cls_scale', 'use_clip_projector')


class InternImage(Detectron2Contract, _CoreInternImage, BACKBONE_BASE):
    """detrex's ``InternImage(core_op='DCNv3', channels=64, depths=[3, 4, 18, 5],
    groups=[3, 6, 12, 24], mlp_ratio=4., drop_rate=0., drop_path_rate=0.2,
    drop_path_type='linear', act_layer='GELU', norm_layer='LN', layer_scale=None,
    offset_scale=1.0, post_norm=False, with_cp=False, dw_kernel_size=None,
    level2_post_norm=False, level2_post_norm_block_ids=None, res_post_norm=False,
    center_feature_scale=False, out_indices=(0, 1, 2, 3), init_cfg=None, **kwargs)`` (see the
    module docstring)."""

    def __init__(self, core_op='DCNv3', channels=64, depths=[3, 4, 18, 5],
                 groups=[3, 6, 12, 24], mlp_ratio=4., drop_rate=0., drop_path_rate=0.2,
                 drop_path_type='linear', act_layer='GELU', norm_layer='LN', layer_scale=None,
                 offset_scale=1.0, post_norm=False, with_cp=False, dw_kernel_size=None,
                 level2_post_norm=False, level2_post_norm_block_ids=None, res_post_norm=False,
                 center_feature_scale=False, out_indices=(0, 1, 2, 3), init_cfg=None,
                 **kwargs):
        check_choice('core_op', core_op, ('DCNv3', 'DCNv3_pytorch'))
        unknown = sorted(set(kwargs) - set(HEAD_ONLY_KWARGS))
        if unknown:
            raise TypeError(f'InternImage got unknown arguments {unknown}: detrex\'s class '
                            f'ignores them silently; only the classification-head arguments '
                            f'{list(HEAD_ONLY_KWARGS)} are accepted (and ignored) here')
        if kwargs:
            warnings.warn(f'InternImage: {sorted(kwargs)} shape only the classification head '
                          f'and are ignored, as in detrex', UserWarning, stacklevel=2)
        arch = dict(channels=channels, depths=depths, groups=groups, mlp_ratio=mlp_ratio,
                    offset_scale=offset_scale, layer_scale=layer_scale, post_norm=post_norm,
                    dw_kernel_size=dw_kernel_size, level2_post_norm=level2_post_norm,
                    level2_post_norm_block_ids=level2_post_norm_block_ids,
                    res_post_norm=res_post_norm, center_feature_scale=center_feature_scale)
        super().__init__(
            arch=arch, in_channels=3, drop_rate=drop_rate, drop_path_rate=drop_path_rate,
            drop_path_type=drop_path_type, act_cfg=dict(type=act_layer),
            norm_cfg=dict(type=norm_layer), out_indices=out_indices, with_cp=with_cp,
            init_cfg=init_cfg)
        self.core_op = core_op
        self._set_outputs(self.out_channels, self.out_strides,
                          [f'p{i}' for i in self.out_indices])

    @property
    def size_divisibility(self) -> int:
        return 0

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.out_names, super().forward(x)))


__all__ = ['InternImage', 'HEAD_ONLY_KWARGS']
