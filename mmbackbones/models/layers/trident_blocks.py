"""TridentNet's blocks (https://arxiv.org/abs/1901.01892): one 3x3 weight run at several
dilations (branches), mmdet 3.3's ``TridentConv`` / ``TridentBottleneck``.

Parameter names are mmdet's: the trident conv is ``conv2.weight`` (no bias), the rest of the
block is the ResNet bottleneck's (``conv1``, ``bn1``, ``bn2``, ``conv3``, ``bn3``,
``downsample.{0,1}``).

Branches: in training, or when ``test_branch_idx == -1``, a block runs ``num_branch`` branches
(the first block of the stage feeds the same input to each) and returns a list of tensors, one
per branch; the last block of the stage concatenates them along the batch (``num_branch * N``
rows, branch-major). In eval mode with ``test_branch_idx = k`` only branch ``k`` runs (``N``
rows). Each branch normalises on its own, so training-mode BatchNorm sees each branch's
statistics, as in mmdet.
"""
from typing import List, Sequence, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from ...utils.validation import check_positive_int
from .resnet_blocks import Bottleneck


def check_trident_args(num_branch, test_branch_idx, trident_dilations) -> tuple:
    """mmdet's TridentNet arguments, checked; returns ``trident_dilations`` as a tuple."""
    check_positive_int('num_branch', num_branch)
    if not isinstance(trident_dilations, (list, tuple)) or \
            len(trident_dilations) != num_branch:
        raise ValueError(f'trident_dilations must give one dilation per branch '
                         f'(num_branch={num_branch}), got {trident_dilations!r}')
    for d in trident_dilations:
        check_positive_int('each trident_dilations entry', d)
    if isinstance(test_branch_idx, bool) or not isinstance(test_branch_idx, int) or \
            not -1 <= test_branch_idx < num_branch:
        raise ValueError(f'test_branch_idx must be -1 (every branch in inference) or a branch '
                         f'index in 0..{num_branch - 1}, got {test_branch_idx!r}')
    return tuple(trident_dilations)


class TridentConv(nn.Conv2d):
    """A 3x3 conv whose one weight runs at ``trident_dilations[k]`` (padding the same) for
    branch ``k``. ``forward(inputs)`` takes mmdet's list of branch inputs and returns a list;
    :meth:`forward_branch` runs one branch."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 trident_dilations: Sequence[int] = (1, 2, 3), test_branch_idx: int = 1,
                 bias: bool = False):
        self.trident_dilations = check_trident_args(len(trident_dilations), test_branch_idx,
                                                    trident_dilations)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=self.trident_dilations[0], dilation=self.trident_dilations[0],
                         bias=bias)
        self.num_branch, self.test_branch_idx = len(trident_dilations), test_branch_idx

    def forward_branch(self, x: torch.Tensor, branch: int) -> torch.Tensor:
        d = self.trident_dilations[branch]
        return F.conv2d(x, self.weight, self.bias, self.stride, d, d)

    def forward(self, inputs: List[torch.Tensor]) -> List[torch.Tensor]:
        if self.training or self.test_branch_idx == -1:
            return [self.forward_branch(x, k) for k, x in enumerate(inputs)]
        return [self.forward_branch(inputs[0], self.test_branch_idx)]

    def extra_repr(self) -> str:
        return (super().extra_repr() + f', trident_dilations={self.trident_dilations}, '
                f'test_branch_idx={self.test_branch_idx}')


class TridentBottleneck(Bottleneck):
    """A bottleneck whose 3x3 conv is a :class:`TridentConv` (see the module docstring for the
    branches). ``concat_output``: the stage's last block returns one tensor (branches
    concatenated along the batch)."""

    def __init__(self, in_channels: int, out_channels: int,
                 trident_dilations: Sequence[int] = (1, 2, 3), test_branch_idx: int = 1,
                 concat_output: bool = False, **kwargs):
        if kwargs.get('dcn') is not None:
            raise ValueError(f"dcn={kwargs['dcn']!r}: the trident stage's 3x3 conv is the "
                             f"TridentConv (mmdet builds the DCN and throws it away); leave "
                             f"the last stage out of stage_with_dcn")
        super().__init__(in_channels, out_channels, **kwargs)
        self.trident_dilations = check_trident_args(len(trident_dilations), test_branch_idx,
                                                    trident_dilations)
        self.num_branch, self.test_branch_idx = len(trident_dilations), test_branch_idx
        self.concat_output = concat_output
        self.conv2 = TridentConv(self.mid_channels, self.mid_channels, 3,
                                 stride=self.conv2_stride, trident_dilations=trident_dilations,
                                 test_branch_idx=test_branch_idx, bias=False)

    def after_fuse(self) -> None:
        self._folded = False  # the branches keep this block's own forward

    def branches(self) -> List[int]:
        """The branches a forward runs now (every one in training or with
        ``test_branch_idx == -1``, else ``[test_branch_idx]``)."""
        if self.training or self.test_branch_idx == -1:
            return list(range(self.num_branch))
        return [self.test_branch_idx]

    def _branch(self, x: torch.Tensor, branch: int) -> torch.Tensor:
        modules = self._modules
        out = x
        last = len(self._steps) - 1
        for k, (conv_name, norm_name, plugin_names) in enumerate(self._steps):
            conv = modules[conv_name]
            out = conv.forward_branch(out, branch) if conv is self.conv2 else conv(out)
            if norm_name:
                out = modules[norm_name](out)
            if k < last:
                out = self.relu(out)
            for name in plugin_names:
                out = modules[name](out)
        shortcut = modules.get('downsample')
        identity = x if shortcut is None else shortcut(x)
        out = self.drop_path(out)
        out = out + identity
        return self.relu(out)

    def forward(self, x: Union[torch.Tensor, List[torch.Tensor]]):
        branches = self.branches()
        inputs = [x] * len(branches) if isinstance(x, torch.Tensor) else list(x)
        if len(inputs) != len(branches):
            raise ValueError(f'TridentBottleneck runs {len(branches)} branches now but got '
                             f'{len(inputs)} branch inputs')
        outs = []
        for b, k in zip(inputs, branches):
            if self.with_cp and b.requires_grad:
                outs.append(cp.checkpoint(self._branch, b, k, use_reentrant=False))
            else:
                outs.append(self._branch(b, k))
        return torch.cat(outs, dim=0) if self.concat_output else outs


__all__ = ['TridentConv', 'TridentBottleneck', 'check_trident_args']
