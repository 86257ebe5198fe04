"""MSCAN, SegNeXt's multi-scale convolutional attention encoder (https://arxiv.org/abs/2209.08575).

Signature, defaults, meanings and parameter names are mmseg 1.2.2's ``MSCAN`` (mmseg is its only
OpenMMLab host: the core is its spelling; ``mmbackbones.mmseg.MSCAN`` is this class under the
host scope). Keys: ``patch_embed{i}`` (stage 1: ``StemConv``, two stride-2 convs; later stages an
overlapping stride-2 3x3 conv + norm), ``block{i}.{j}`` (:class:`~..layers.mscan_blocks.
MSCABlock`), ``norm{i}`` (a LayerNorm over channels at each stage's end).

Data flow: ``(B, C, H, W)`` -> stage ``i``: patch embedding (strides 4, 2, 2, 2) -> blocks ->
LayerNorm over channels -> output ``i`` ``(B, embed_dims[i], ~H / s, ~W / s)``, ``s`` = 4, 8,
16, 32 (each conv pads ``k // 2`` and floors: any input size). Names ``stage{i + 1}``.

Our additions (keyword-only): ``arch`` (``'t'``, ``'s'``, ``'b'``, ``'l'``: mmseg's SegNeXt
``embed_dims``/``depths``/``mlp_ratios``), ``out_indices`` (default every stage, as mmseg; the
stages after the last one asked for are not built), ``frozen_stages`` (``0`` the stem conv, ``k``
also stages ``1..k`` whole), ``norm_eval`` (BatchNorms in eval mode while training), ``with_cp``.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.utils.checkpoint
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_WIDTH, check_bool, check_choice,
                                 check_frozen_stages, check_positive_int, check_rate,
                                 check_size_limit, normalize_out_indices, to_plain)
from ..base import BaseBackbone
from ..layer_decay import strip_prefix
from ..layers.mscan_blocks import MSCABlock, OverlapPatchEmbed, StemConv
from ..layers.norm import check_norm_cfg

# mmseg 1.2.2's segnext_mscan-{t,s,b,l} configs: (embed_dims, depths, mlp_ratios)
ARCH_SETTINGS = {
    't': ([32, 64, 160, 256], [3, 3, 5, 2], [8, 8, 4, 4]),
    's': ([64, 128, 320, 512], [2, 2, 4, 2], [8, 8, 4, 4]),
    'b': ([64, 128, 320, 512], [3, 3, 12, 3], [8, 8, 4, 4]),
    'l': ([64, 128, 320, 512], [3, 5, 27, 3], [8, 8, 4, 4]),
}
_DEFAULTS = dict(embed_dims=[64, 128, 256, 512], depths=[3, 4, 6, 3], mlp_ratios=[4, 4, 4, 4])
MAX_KERNEL = 64


def _list(name: str, value, length: int, limit: int, number=int) -> list:
    value = to_plain(value)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f'{name} must be a list of numbers, got {value!r} '
                        f'({type(value).__name__})')
    if len(value) < length:
        raise ValueError(f'{name} needs an entry for each of num_stages={length} stages, got '
                         f'{len(value)}: {list(value)!r}')
    out = []
    for v in value[:length]:
        if number is int:
            out.append(check_size_limit(f'each of {name}', v, limit))
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= limit:
            raise ValueError(f'each of {name} must be a number in (0, {limit}], got {v!r}')
        else:
            out.append(v)
    return out


def _kernels(kernel_sizes, paddings) -> Tuple[list, list]:
    kernel_sizes, paddings = to_plain(kernel_sizes), to_plain(paddings)
    for name, value in (('attention_kernel_sizes', kernel_sizes),
                        ('attention_kernel_paddings', paddings)):
        if not isinstance(value, (list, tuple)) or not value:
            raise TypeError(f'{name} must be a non-empty list (an int, then [h, w] pairs), got '
                            f'{value!r}')
    if len(kernel_sizes) != len(paddings):
        raise ValueError(f'attention_kernel_sizes ({len(kernel_sizes)} entries) and '
                         f'attention_kernel_paddings ({len(paddings)}) must pair up, got '
                         f'{kernel_sizes!r} and {paddings!r}')
    for i, (k, p) in enumerate(zip(kernel_sizes, paddings)):
        ks = k if isinstance(k, (list, tuple)) else [k]
        ps = p if isinstance(p, (list, tuple)) else [p]
        if i > 0 and (len(ks) != 2 or len(ps) != 2):
            raise ValueError(f'attention_kernel_sizes[{i}]/paddings[{i}] must be [h, w] pairs '
                             f'(strip convolutions), got {k!r} and {p!r}')
        for v in ks:
            check_size_limit(f'attention_kernel_sizes[{i}]', v, MAX_KERNEL)
        for v in ps:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < MAX_KERNEL:
                raise ValueError(f'attention_kernel_paddings[{i}] must hold ints in '
                                 f'0..{MAX_KERNEL - 1}, got {p!r}')
    return list(kernel_sizes), list(paddings)


@MODELS.register_module()
class MSCAN(BaseBackbone):
    """SegNeXt's MSCAN with mmseg 1.2.2's signature (module doc).

    Args (mmseg's):
        in_channels (int): image channels (mmseg's stem always takes 3; the same at 3).
        embed_dims, mlp_ratios, depths (list): per stage: width, MLP ratio, blocks.
        drop_rate (float): dropout in the MLPs. drop_path_rate (float): stochastic depth,
            rising linearly over all blocks.
        num_stages (int): stages (<= 4).
        attention_kernel_sizes, attention_kernel_paddings (list): the MSCA kernels: the
            depthwise kernel of ``conv0``, then one ``[h, w]`` strip pair per branch.
        act_cfg, norm_cfg (dict): activation; norm of the stem, patch embeddings and blocks
            (mmseg's default SyncBN; its configs use BN).
        pretrained (str, optional): deprecated spelling of a Pretrained ``init_cfg``.
        init_cfg: mmengine init config; ``None``: mmseg's init (fan-out normal convs, unit
            LayerNorms).
    """
    arch_settings = ARCH_SETTINGS

    def __init__(self,
                 in_channels=3,
                 embed_dims=[64, 128, 256, 512],
                 mlp_ratios=[4, 4, 4, 4],
                 drop_rate=0.,
                 drop_path_rate=0.,
                 depths=[3, 4, 6, 3],
                 num_stages=4,
                 attention_kernel_sizes=[5, [1, 7], [1, 11], [1, 21]],
                 attention_kernel_paddings=[2, [0, 3], [0, 5], [0, 10]],
                 act_cfg=dict(type='GELU'),
                 norm_cfg=dict(type='SyncBN', requires_grad=True),
                 pretrained=None,
                 init_cfg=None,
                 *,
                 arch: Optional[str] = None,
                 out_indices=(0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False):
        super().__init__(init_cfg=self._pretrained_to_init_cfg(pretrained, init_cfg))
        if arch is not None:
            check_choice('arch', arch, ARCH_SETTINGS)
            given = dict(embed_dims=embed_dims, depths=depths, mlp_ratios=mlp_ratios)
            wanted = dict(zip(('embed_dims', 'depths', 'mlp_ratios'), ARCH_SETTINGS[arch]))
            for key, value in given.items():
                if list(to_plain(value)) not in (_DEFAULTS[key], wanted[key]):
                    raise ValueError(f'{key}={value!r} contradicts arch={arch!r} ({key}='
                                     f'{wanted[key]!r}); give one or the other')
            embed_dims, depths, mlp_ratios = (wanted[k] for k in ('embed_dims', 'depths',
                                                                  'mlp_ratios'))
        self.arch = arch
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.num_stages = check_size_limit('num_stages', num_stages, 4)
        self.embed_dims = _list('embed_dims', embed_dims, self.num_stages, MAX_WIDTH)
        for i, width in enumerate(self.embed_dims):
            if i == 0 and width < 2:
                raise ValueError(f'embed_dims[0] must be >= 2 (the stem halves it), got {width}')
        self.depths = _list('depths', depths, self.num_stages, MAX_BLOCKS)
        self.mlp_ratios = _list('mlp_ratios', mlp_ratios, self.num_stages, 64, number=float)
        self.drop_rate = check_rate('drop_rate', drop_rate)
        self.drop_path_rate = check_rate('drop_path_rate', drop_path_rate)
        kernels, paddings = _kernels(attention_kernel_sizes, attention_kernel_paddings)
        if not isinstance(act_cfg, dict) or 'type' not in act_cfg:
            raise TypeError(f'act_cfg must be a dict with a "type" key, got {act_cfg!r}')
        self.norm_cfg = check_norm_cfg(norm_cfg)
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_stages)
        self.norm_eval = check_bool('norm_eval', norm_eval)
        self.with_cp = check_bool('with_cp', with_cp)

        dpr = torch.linspace(0, self.drop_path_rate, sum(self.depths), device='cpu').tolist()
        first, channels = 0, self.in_channels
        for i in range(max(self.out_indices) + 1):
            width = self.embed_dims[i]
            if i == 0:
                patch_embed = StemConv(channels, width, act_cfg, self.norm_cfg)
            else:
                patch_embed = OverlapPatchEmbed(3, 2, channels, width, self.norm_cfg)
            blocks = nn.ModuleList(
                MSCABlock(width, kernels, paddings, self.mlp_ratios[i], self.drop_rate,
                          dpr[first + j], act_cfg, self.norm_cfg)
                for j in range(self.depths[i]))
            setattr(self, f'patch_embed{i + 1}', patch_embed)
            setattr(self, f'block{i + 1}', blocks)
            setattr(self, f'norm{i + 1}', nn.LayerNorm(width))
            first, channels = first + self.depths[i], width
        self.num_built = max(self.out_indices) + 1
        self._set_outputs([self.embed_dims[i] for i in self.out_indices],
                          [4 * 2 ** i for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    # ---- freezing ------------------------------------------------------------------------------
    def _stage_modules(self, i: int) -> List[nn.Module]:
        """Stage ``i`` (1-based): its patch embedding (the stem for stage 1 is apart), blocks,
        norm."""
        mods = [getattr(self, f'block{i}'), getattr(self, f'norm{i}')]
        return mods if i == 1 else [getattr(self, f'patch_embed{i}')] + mods

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return [self.patch_embed1] + [nn.ModuleList(self._stage_modules(i))
                                      for i in range(1, self.num_built + 1)]

    # ---- init ----------------------------------------------------------------------------------
    def init_weights(self):
        if self.init_cfg is None:  # mmseg's init
            with torch.no_grad():
                for m in self.modules():
                    if isinstance(m, nn.LayerNorm):
                        nn.init.ones_(m.weight)
                        nn.init.zeros_(m.bias)
                    elif isinstance(m, nn.Conv2d):
                        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                        nn.init.normal_(m.weight, 0, math.sqrt(2.0 / (fan_out // m.groups)))
                        if m.bias is not None:
                            nn.init.zeros_(m.bias)
        super().init_weights()

    # ---- forward -------------------------------------------------------------------------------
    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: per built stage its patch embedding, blocks and
        channels-last norm in sequence (``layers.scripting.ScriptableStages``), a list of the
        same maps (without gradient checkpointing: the same numbers)."""
        from ..layers.scripting import ScriptableChannelsLastNorm, ScriptableStages
        stages = [nn.Sequential(getattr(self, f'patch_embed{i}'), *getattr(self, f'block{i}'),
                                ScriptableChannelsLastNorm(getattr(self, f'norm{i}')))
                  for i in range(1, self.num_built + 1)]
        return ScriptableStages(nn.Identity(), stages, self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        outs = {}
        for i in range(1, self.num_built + 1):
            x = getattr(self, f'patch_embed{i}')(x)
            for block in getattr(self, f'block{i}'):
                if self.with_cp and self.training and x.requires_grad:
                    x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
                else:
                    x = block(x)
            # the stage's LayerNorm normalises each position's channels
            x = getattr(self, f'norm{i}')(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            if i - 1 in self.out_indices:
                outs[i - 1] = x.contiguous()
        return tuple(outs[i] for i in self.out_indices)

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, num_depths)``: 0 the stem (``patch_embed1``), then one depth per block in
        order (a later stage's patch embedding with its first block, each ``norm{i}`` with the
        last block of its stage), the last depth for anything else."""
        num_depths = sum(self.depths) + 2
        name = strip_prefix(param_name, prefix)
        depth = None if name is None else self._depth_of(name)
        return (num_depths - 1 if depth is None else depth), num_depths

    def _depth_of(self, name: str) -> Optional[int]:
        parts = name.split('.')
        head = parts[0]
        before = lambda i: sum(self.depths[:i - 1])  # noqa: E731 - blocks before stage i
        for key, where in (('patch_embed', 'first'), ('block', 'block'), ('norm', 'last')):
            if head.startswith(key) and head[len(key):].isdigit():
                i = int(head[len(key):])
                if key == 'patch_embed':
                    return 0 if i == 1 else before(i) + 1
                if key == 'block':
                    return before(i) + int(parts[1]) + 1
                return before(i) + self.depths[i - 1]
        return None
