"""TridentNet's ResNet (https://arxiv.org/abs/1901.01892): mmdet 3.3's ``TridentResNet``.

A three-stage ResNet (:class:`~.resnet.ResNet`: stem, stages, metadata, freezing, loading)
whose third stage is built of :class:`~..layers.trident_blocks.TridentBottleneck` s: every
block runs its branches with one shared weight at ``trident_dilations``, and the stage returns
the branches concatenated along the batch. Parameter names are mmdet's, so a TridentNet
detector checkpoint loads with ``prefix='backbone'`` (and an ImageNet ResNet's first three
stages fit: the trident conv is ``conv2.weight``). mmpretrain and timm have no TridentNet.

**Multi-branch output.** The third stage's output (``res4``) has ``num_branch * N`` rows in
training mode or with ``test_branch_idx=-1`` (branch ``k`` is rows ``k*N..(k+1)*N-1``), and
``N`` rows in eval mode with ``test_branch_idx=k`` (that branch only). Channels and strides are
those of a ResNet; :attr:`TridentResNet.out_batch_factors` says, per output, how many times the
input batch it holds in the current mode. mmdet's ``TridentRoIHead`` expects exactly this.
"""
from typing import Sequence, Tuple, Union

from ...registry import MODELS
from ..layers.resnet_blocks import Bottleneck, ResLayer
from ..layers.trident_blocks import TridentBottleneck, check_trident_args
from .resnet import ResNet

TRIDENT_STAGE = 2  # the third (last) stage


@MODELS.register_module()
class TridentResNet(ResNet):
    """ResNet backbone of TridentNet, mmdet's signature ``TridentResNet(depth, num_branch,
    test_branch_idx, trident_dilations, **kwargs)`` with :class:`~.resnet.ResNet`'s arguments
    in ``kwargs``; depths 50, 101, 152; always three stages. mmdet requires the first four
    arguments (so does the twin); here they default to its shipped configs' values.

    Args:
        num_branch: branches of the trident stage.
        test_branch_idx: in eval mode, ``-1`` runs every branch, ``k`` only branch ``k``.
        trident_dilations: the dilation (and padding) of each branch's 3x3 conv.
        num_stages: must be 3 (the default here; ResNet's is 4).
        strides, dilations: one per stage, default ``(1, 2, 2)`` and ``(1, 1, 1)``.
        out_indices: default ``(2,)``, the trident stage (``res4``).

    As in mmdet, the trident stage ignores ``dilations[2]`` and ``avg_down`` (its shortcut is a
    strided 1x1 conv). Outputs come in ``out_indices`` order. mmdet's spelling (``norm_eval``
    True, ``pretrained``) is the twin ``mmbackbones.mmdet.TridentResNet``.
    """

    arch_settings = {k: v for k, v in ResNet.arch_settings.items() if k >= 50}
    zero_init_blocks = (Bottleneck, )

    def __init__(self, depth: int = 50, num_branch: int = 3, test_branch_idx: int = 1,
                 trident_dilations: Sequence[int] = (1, 2, 3), num_stages: int = 3,
                 strides: Sequence[int] = (1, 2, 2), dilations: Sequence[int] = (1, 1, 1),
                 out_indices: Union[int, Sequence[int]] = (2, ), **kwargs):
        self._set_trident_args(num_branch, test_branch_idx, trident_dilations, num_stages)
        super().__init__(depth, num_stages=num_stages, strides=strides, dilations=dilations,
                         out_indices=out_indices, **kwargs)

    def _set_trident_args(self, num_branch, test_branch_idx, trident_dilations,
                          num_stages) -> None:
        """Check and keep TridentNet's own arguments (the mmdet twin calls this too)."""
        self.trident_dilations = check_trident_args(num_branch, test_branch_idx,
                                                    trident_dilations)
        self.num_branch, self.test_branch_idx = num_branch, test_branch_idx
        if num_stages != 3:
            raise ValueError(f'TridentResNet has 3 stages, the last one trident (mmdet asserts '
                             f'num_stages == 3): num_stages must be 3, got {num_stages!r}')

    def make_res_layer(self, **kwargs) -> ResLayer:
        if len(self.res_layers) != TRIDENT_STAGE:
            return ResLayer(**kwargs)
        kwargs.update(block=TridentBottleneck, avg_down=False, dilation=1,
                      trident_dilations=self.trident_dilations,
                      test_branch_idx=self.test_branch_idx)
        for key in ('multi_grid', 'contract_dilation'):
            kwargs.pop(key, None)
        layer = ResLayer(**kwargs)
        layer[-1].concat_output = True
        return layer

    @property
    def out_batch_factors(self) -> Tuple[int, ...]:
        """Per output, how many input batches it holds in the current mode: ``num_branch`` for
        the trident stage in training or with ``test_branch_idx=-1``, else 1."""
        multi = self.training or self.test_branch_idx == -1
        return tuple(self.num_branch if i == TRIDENT_STAGE and multi else 1
                     for i in self.out_indices)


__all__ = ['TridentResNet']
