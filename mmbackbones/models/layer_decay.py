"""Layer depths for layer-wise learning-rate decay (``get_layer_depth``).

mmpretrain's ``LearningRateDecayOptimWrapperConstructor`` calls
``backbone.get_layer_depth(param_name, prefix='backbone.')`` and scales each parameter's
learning rate by ``decay ** (num_depths - depth - 1)``. Each native family's method returns
``(depth, num_depths)`` with mmpretrain's numbering where mmpretrain has one (ResNet, ConvNeXt,
Swin, ViT); the functions here hold the numberings shared by several families.
"""
import math
from typing import Optional, Sequence, Tuple

# ResNet stage depths (stages 2 and 3) -> blocks per layer-decay depth in those stages, as
# mmpretrain's ResNet.get_layer_depth groups them (R-50/101: 2 and 3, R-152/200: 4 and 4, ...)
RESNET_BLOCK_GROUPS = {(4, 6): (2, 3), (4, 23): (2, 3), (8, 36): (4, 4), (24, 36): (4, 4),
                       (30, 48): (5, 6)}


def strip_prefix(param_name: str, prefix: str) -> Optional[str]:
    """``param_name`` without ``prefix``; ``None`` when it does not start with it (a head)."""
    return param_name[len(prefix):] if param_name.startswith(prefix) else None


def resnet_layer_depth(param_name: str, prefix: str, stage_blocks: Sequence[int],
                       layer_prefix: str = 'layer') -> Tuple[int, int]:
    """mmpretrain's ResNet numbering: 0 the stem, 1 ``layer1``, stages 2 and 3 in groups of
    blocks, ``N`` ``layer4``, ``N + 1`` what is not under ``prefix`` (the head); the second
    value is ``N + 2``.

    The groups are mmpretrain's for its depths (R-34/50/101/152/200); for other stage depths
    (R-18, RegNets, on which mmpretrain raises ``NotImplementedError``) each block of stages 2
    and 3 is its own depth. A four-stage network is assumed, as mmpretrain does; a shorter one
    treats its last stage as ``layer4``.
    """
    depths = list(stage_blocks) + [1] * (4 - len(stage_blocks))
    blk2, blk3 = RESNET_BLOCK_GROUPS.get((depths[1], depths[2]), (1, 1))
    n2, n3 = math.ceil(depths[1] / blk2 - 1e-5), math.ceil(depths[2] / blk3 - 1e-5)
    last = 2 + n2 + n3
    num_depths = last + 2
    name = strip_prefix(param_name, prefix)
    if name is None:
        return last + 1, num_depths
    if not name.startswith(layer_prefix):
        return 0, num_depths
    stage, block = name[len(layer_prefix):].split('.')[:2]
    stage_id, block_id = int(stage), int(block)
    if stage_id == 1:
        return 1, num_depths
    if stage_id == 2:
        return 2 + block_id // blk2, num_depths
    if stage_id == 3:
        return 2 + n2 + block_id // blk3, num_depths
    return last, num_depths


def stage_layer_depth(param_name: str, prefix: str, num_stages: int,
                      stem: Sequence[str] = ('stem', ), stages: str = 'stages'
                      ) -> Tuple[int, int]:
    """One depth per stage: 0 the stem, ``i + 1`` ``stages.i``, ``num_stages + 1`` the rest
    (final norms, a head); the second value is ``num_stages + 2``."""
    num_depths = num_stages + 2
    name = strip_prefix(param_name, prefix)
    if name is None:
        return num_depths - 1, num_depths
    if name.startswith(tuple(stem)):
        return 0, num_depths
    if name.startswith(stages + '.'):
        return int(name.split('.')[1]) + 1, num_depths
    return num_depths - 1, num_depths


def patch_stage_layer_depth(param_name: str, prefix: str, num_layers: Sequence[int],
                            leading: int = 0) -> Tuple[int, int]:
    """``(depth, sum(num_layers) + 2)`` for the ``layers.<i>.{0: patch embedding, 1: blocks,
    2: norm}`` layout of MiT and PVT: 0 the first patch embedding, one depth per block (a later
    stage's patch embedding, and the first ``leading`` entries of its block list such as PVT's
    position embedding, with its first block; a stage norm with its last), the last depth
    anything else (a head)."""
    num_depths = sum(num_layers) + 2
    name = strip_prefix(param_name, prefix)
    parts = name.split('.') if name is not None else []
    if len(parts) < 3 or parts[0] != 'layers':
        return num_depths - 1, num_depths
    stage, part = int(parts[1]), parts[2]
    before = sum(num_layers[:stage])
    embed = 0 if stage == 0 else before + 1
    if part == '0':
        return embed, num_depths
    if part == '1':
        j = int(parts[3]) - leading
        return (embed if j < 0 else before + j + 1), num_depths
    return before + num_layers[stage], num_depths
