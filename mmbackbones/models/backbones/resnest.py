"""ResNeSt (https://arxiv.org/abs/2004.08955): a ResNet-D whose bottlenecks use split-attention
3x3 convs (``layers.split_attention``), mmpretrain-compatible.

Built on :class:`~.resnet.ResNet` (stem, stages, metadata, freezing, loading): what changes is
the block (``ResNeStBottleneck``) and its arguments. Parameter names are mmpretrain 1.2.0's
(deep stem ``stem.{0,1,2}.conv|bn``; blocks ``conv1``, ``bn1``, ``conv2.conv``, ``conv2.bn0``,
``conv2.fc1``, ``conv2.bn1``, ``conv2.fc2``, ``conv3``, ``bn3``, ``downsample.{0,1,2}``), so an
mmpretrain classifier loads with ``prefix='backbone'``. mmdet's and mmseg's ResNeSt (mmcv-era
deep stem ``stem.0/1/3/4/6/7``) and timm's ``resnest*`` are converted on load
(``checkpoint.converters.openmmlab_resnet``, ``timm_resnest``).
"""
from ...registry import MODELS
from ...utils.validation import check_bool, check_positive_int
from ..layers.split_attention import ResNeStBottleneck
from ..layers.resnet_blocks import ResLayer
from .resnet import HOST_ONLY, ResNet, _fixed_flags


@MODELS.register_module()
class ResNeSt(ResNet):
    """ResNeSt backbone (mmpretrain's ``ResNeSt``: a ``ResNetV1d`` with split-attention blocks).

    Input ``(N, in_channels, H, W)``; output ``i`` (stage ``s = out_indices[i]``) is
    ``(N, 256 * 2**s, H / 2**(s+2), W / 2**(s+2))`` with the defaults, named ``res{s+2}``.

    Args:
        depth: 50, 101, 152, 200 or 269 (mmpretrain's), or our 14 and 26 (timm's
            ``resnest14d``/``resnest26d``: 1 and 2 blocks per stage).
        groups: groups of the split-attention conv (cardinality).
        width_per_group: with ``groups > 1``, the first stage's middle width is
            ``groups * width_per_group``.
        radix: splits per group attended over.
        reduction_factor: hidden width of the attention MLP is
            ``max(in * radix // reduction_factor, 32)``.
        avg_down_stride: a block's stride is a 3x3 average pool after its split-attention conv.
        **kwargs: :class:`~.resnet.ResNet`'s arguments (``stem_channels``: 64 for ResNeSt-50,
            128 for 101/200/269), but ``deep_stem`` and ``avg_down`` are always True.

    Differences from mmpretrain: ``depth`` 14/26 exist here; ``drop_path_rate`` applies (mmpretrain
    builds the drop path and never calls it). mmdet's/mmseg's spelling (``base_width``,
    ``out_indices=(0, 1, 2, 3)``, mmdet's ``norm_eval=True``, ``dcn``, ``plugins``) is the twin
    ``mmbackbones.mmdet.ResNeSt`` / ``mmbackbones.mmseg.ResNeSt``.
    """

    arch_settings = {
        14: (ResNeStBottleneck, (1, 1, 1, 1)),
        26: (ResNeStBottleneck, (2, 2, 2, 2)),
        50: (ResNeStBottleneck, (3, 4, 6, 3)),
        101: (ResNeStBottleneck, (3, 4, 23, 3)),
        152: (ResNeStBottleneck, (3, 8, 36, 3)),
        200: (ResNeStBottleneck, (3, 24, 36, 3)),
        269: (ResNeStBottleneck, (3, 30, 48, 8)),
    }
    host_only = {**HOST_ONLY, 'base_width': ('mmdet', 'mmseg')}
    zero_init_blocks = (ResNeStBottleneck, )

    def __init__(self, depth: int, groups: int = 1, width_per_group: int = 4, radix: int = 2,
                 reduction_factor: int = 4, avg_down_stride: bool = True, **kwargs):
        base_width = kwargs.get('base_width')  # mmdet's/mmseg's name (ResNet warns)
        if base_width is not None and width_per_group not in (4, base_width):
            raise ValueError(f'width_per_group={width_per_group!r} (mmpretrain) and '
                             f'base_width={base_width!r} (mmdet/mmseg) are one setting and '
                             f'contradict each other; give one of them')
        self._set_split_attention(groups, width_per_group if base_width is None else base_width,
                                  radix, reduction_factor, avg_down_stride,
                                  'width_per_group' if base_width is None else 'base_width')
        kwargs = _fixed_flags('ResNeSt', kwargs, deep_stem=True, avg_down=True)
        super().__init__(depth, **kwargs)

    def _set_split_attention(self, groups, width_per_group, radix, reduction_factor,
                             avg_down_stride, width_name: str = 'width_per_group') -> None:
        """Check and keep the block arguments (the host twins call this with their names)."""
        self.groups = check_positive_int('groups', groups)
        self.width_per_group = check_positive_int(width_name, width_per_group)
        self.radix = check_positive_int('radix', radix)
        self.reduction_factor = check_positive_int('reduction_factor', reduction_factor)
        self.avg_down_stride = check_bool('avg_down_stride', avg_down_stride)

    def make_res_layer(self, **kwargs) -> ResLayer:
        return ResLayer(groups=self.groups, width_per_group=self.width_per_group,
                        base_channels=self.base_channels, radix=self.radix,
                        reduction_factor=self.reduction_factor,
                        avg_down_stride=self.avg_down_stride, **kwargs)


__all__ = ['ResNeSt']
