"""Vision Transformer (ViT, DeiT, DINOv2/EVA layouts), checkpoint-compatible with mmpretrain.

``An Image is Worth 16x16 Words`` (https://arxiv.org/abs/2010.11929).

Data flow and shapes (``B`` images of ``H x W``, patch size ``P``, ``C = embed_dims``)::

    image (B, 3, H, W)
      -> patch_embed: zero-pad bottom/right to a multiple of P, conv PxP stride P
      -> tokens (B, Hp * Wp, C), Hp = ceil(H / P), Wp = ceil(W / P)
      -> [cls_token] + tokens + pos_embed (resized bicubically to Hp x Wp when it differs)
      -> pre_norm (CLIP-style, optional) -> layers[0..] (pre-LN transformer blocks)
      -> final norm ``ln1`` after the last layer (``final_norm=True``)

Each requested layer gives one output, shaped by ``out_type``:

* ``'raw'``: ``(B, 1 + Hp * Wp, C)`` every token (``(B, Hp * Wp, C)`` without a cls token);
* ``'cls_token'``: ``(B, C)``;
* ``'featmap'``: ``(B, C, Hp, Wp)`` patch tokens as a map, stride ``P`` (for mmseg/mmdet necks);
* ``'avg_featmap'``: ``(B, C)`` mean of the patch tokens, normalised by ``ln2``.

Output names are ``stage{k}`` for the output of ``layers[k - 1]`` (``out_indices`` are 0-based
layer indices: ``out_indices=(2, 5, 8, 11)`` gives ``stage3, stage6, stage9, stage12``), matching
``frozen_stages=k``, which freezes the stem (patch embedding, cls token, position embedding,
pre-norm) and ``layers[0..k-1]``. Every output has ``out_channels = embed_dims``;
``out_strides`` is the patch size for ``'featmap'`` and ``'raw'`` (tokens on the patch grid) and
``None`` for the pooled ``'cls_token'``/``'avg_featmap'`` vectors (the contract's mark). For
``'raw'`` the channels are the last dimension.

Multi-scale dense tasks: ``out_type='featmap'`` with several ``out_indices`` gives maps that all
have stride ``P``; feed them to a neck that rescales them (mmseg's ``MultiLevelNeck`` with
``scales=[4, 2, 1, 0.5]``, mmdet's ``SimpleFPN``), with ``in_channels=backbone.out_channels``.

Layers after ``max(out_indices)`` are not built (no unused parameters under DDP); the final norm
is only built when the last layer is built (it is applied after the last layer only).
"""
import contextlib
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from torch import nn

from ...registry import MODELS
from ...utils.validation import (check_bool, check_choice, check_frozen_stages, check_positive_int,
                                 check_rate, normalize_out_indices)
from ..base import BaseBackbone
from ..layers.attention import MultiheadSelfAttention
from ..layers.drop import DropPath
from ..layers.norm import check_norm_cfg
from ..layers.patch_embed import PatchEmbed
from ..layers.pos_embed import INTERPOLATE_MODES, infer_grid_shape, resize_pos_embed


def _arch(embed_dims, num_layers, num_heads, feedforward_channels):
    return dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=num_heads,
                feedforward_channels=feedforward_channels)


# Names and dimensions are mmpretrain 1.2.0's, so an mmpretrain config means the same model here
# (beware: mmpretrain's 'small' is 768-d x 8 layers; the 384-d ViT-S of timm/DeiT is
# 'deit-small'). The dinov2 base/large entries are added: same layout as 'base'/'large'.
ARCH_SETTINGS: Dict[str, dict] = {
    **dict.fromkeys(['s', 'small'], _arch(768, 8, 8, 768 * 3)),
    **dict.fromkeys(['b', 'base'], _arch(768, 12, 12, 3072)),
    **dict.fromkeys(['l', 'large'], _arch(1024, 24, 16, 4096)),
    **dict.fromkeys(['h', 'huge'], _arch(1280, 32, 16, 5120)),
    **dict.fromkeys(['eva-g', 'eva-giant'], _arch(1408, 40, 16, 6144)),
    **dict.fromkeys(['deit-t', 'deit-tiny'], _arch(192, 12, 3, 192 * 4)),
    **dict.fromkeys(['deit-s', 'deit-small', 'dinov2-s', 'dinov2-small'],
                    _arch(384, 12, 6, 384 * 4)),
    **dict.fromkeys(['deit-b', 'deit-base'], _arch(768, 12, 12, 768 * 4)),
    **dict.fromkeys(['dinov2-b', 'dinov2-base'], _arch(768, 12, 12, 3072)),
    **dict.fromkeys(['dinov2-l', 'dinov2-large'], _arch(1024, 24, 16, 4096)),
    # dinov2-g uses the SwiGLU FFN: add layer_cfgs=dict(ffn_type='swiglu_fused') as mmpretrain
    **dict.fromkeys(['dinov2-g', 'dinov2-giant'], _arch(1536, 40, 24, 6144)),
}
ARCH_KEYS = ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')
OUT_TYPES = ('raw', 'cls_token', 'featmap', 'avg_featmap')
FFN_TYPES = ('origin', 'swiglu_fused')
LAYER_CFG_KEYS = ('num_heads', 'feedforward_channels', 'layer_scale_init_value', 'drop_rate',
                  'attn_drop_rate', 'drop_path_rate', 'num_fcs', 'qkv_bias', 'ffn_type',
                  'act_cfg', 'norm_cfg')
PATCH_CFG_KEYS = ('bias', 'norm_cfg', 'conv_cfg', 'padding')


# ------------------------------------------------------------------------------------------------
# blocks
# ------------------------------------------------------------------------------------------------
class LayerScale(nn.Module):
    """Per-channel learnable scale of a residual branch (CaiT); parameter ``weight``."""

    def __init__(self, dim: int, init_value: float = 1e-5):
        super().__init__()
        self.init_value = float(init_value)
        self.weight = nn.Parameter(torch.full((dim,), self.init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, the activation of OpenAI CLIP."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def _build_act(act_cfg: dict) -> nn.Module:
    if str(act_cfg.get('type', '')).split('.')[-1] == 'QuickGELU':
        return QuickGELU()
    return build_activation_layer(act_cfg)


def _build_norm(norm_cfg: dict, dims: int) -> nn.Module:
    return build_norm_layer(norm_cfg, dims)[1]


class ViTAttention(MultiheadSelfAttention):
    """Self-attention whose output is scaled by an optional ``gamma1`` layer scale."""

    def __init__(self, embed_dims, num_heads, qkv_bias=True, attn_drop=0., proj_drop=0.,
                 layer_scale_init_value=0.):
        super().__init__(embed_dims, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                         proj_drop=proj_drop)
        self.gamma1 = (LayerScale(embed_dims, layer_scale_init_value)
                       if layer_scale_init_value > 0 else None)

    def forward(self, x: torch.Tensor, num_queries: Optional[int] = None) -> torch.Tensor:
        x = self.proj_drop(self.proj(self.attention(x, num_queries=num_queries)))
        return x if self.gamma1 is None else self.gamma1(x)


class FFN(nn.Module):
    """``Linear -> act -> Linear`` MLP (mmcv ``FFN`` names: ``layers.0.0``, ``layers.1``)."""

    def __init__(self, embed_dims, feedforward_channels, act_cfg=dict(type='GELU'),
                 drop_rate=0., layer_scale_init_value=0.):
        super().__init__()
        drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, feedforward_channels), _build_act(act_cfg),
                          drop),
            nn.Linear(feedforward_channels, embed_dims),
            nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity())
        self.gamma2 = (LayerScale(embed_dims, layer_scale_init_value)
                       if layer_scale_init_value > 0 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(x)
        return x if self.gamma2 is None else self.gamma2(x)


class SwiGLUFFN(nn.Module):
    """SwiGLU MLP of DINOv2 (``w12`` fused gate/value, ``w3`` output); the hidden width is
    ``feedforward_channels * 2 / 3`` rounded up to a multiple of 8, as mmpretrain's fused
    variant."""

    def __init__(self, embed_dims, feedforward_channels, layer_scale_init_value=0.,
                 drop_rate=0.):
        super().__init__()
        hidden = (int(feedforward_channels * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(embed_dims, 2 * hidden)
        self.w3 = nn.Linear(hidden, embed_dims)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.gamma2 = (LayerScale(embed_dims, layer_scale_init_value)
                       if layer_scale_init_value > 0 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        x = self.drop(self.w3(F.silu(x1) * x2))
        return x if self.gamma2 is None else self.gamma2(x)


class TransformerEncoderLayer(nn.Module):
    """Pre-LN block: ``x + attn(ln1(x))`` then ``x + ffn(ln2(x))``; ``(B, N, C)`` in and out."""

    def __init__(self, embed_dims, num_heads, feedforward_channels, layer_scale_init_value=0.,
                 drop_rate=0., attn_drop_rate=0., drop_path_rate=0., num_fcs=2, qkv_bias=True,
                 ffn_type='origin', act_cfg=dict(type='GELU'),
                 norm_cfg=dict(type='LN', eps=1e-6)):
        super().__init__()
        if num_fcs != 2:
            raise ValueError(f'layer_cfgs num_fcs must be 2 (Linear-act-Linear), got {num_fcs!r}')
        check_choice('ffn_type', ffn_type, FFN_TYPES)
        self.embed_dims = embed_dims
        self.ln1 = _build_norm(norm_cfg, embed_dims)
        self.attn = ViTAttention(embed_dims, num_heads, qkv_bias=qkv_bias,
                                 attn_drop=attn_drop_rate, proj_drop=drop_rate,
                                 layer_scale_init_value=layer_scale_init_value)
        self.ln2 = _build_norm(norm_cfg, embed_dims)
        if ffn_type == 'origin':
            self.ffn = FFN(embed_dims, feedforward_channels, act_cfg=act_cfg, drop_rate=drop_rate,
                           layer_scale_init_value=layer_scale_init_value)
        else:
            self.ffn = SwiGLUFFN(embed_dims, feedforward_channels,
                                 layer_scale_init_value=layer_scale_init_value,
                                 drop_rate=drop_rate)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else None

    def _residual(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        if self.drop_path is not None:
            branch = self.drop_path(branch)
        # Without autograd, ``branch`` is a fresh tensor made here: add in place to save an
        # allocation. With autograd, out of place: ``branch`` is a view of a Linear's 2-D output,
        # and an in-place add on a view makes autograd rebuild the base in backward (CopySlices:
        # four extra copies of the tokens per residual). Out of place when dtypes differ, and
        # when tracing (a traced graph must not depend on the grad mode it was checked in).
        if not (branch.requires_grad or torch.jit.is_tracing()) and branch.dtype == x.dtype \
                and branch.shape == x.shape:
            return branch.add_(x)
        return x + branch

    def forward(self, x: torch.Tensor, num_queries: Optional[int] = None) -> torch.Tensor:
        """``num_queries``: compute only the first tokens' outputs, ``(B, num_queries, C)``
        (they still attend to every token)."""
        if num_queries is not None:
            x_out = x[:, :num_queries]
            x = self._residual(x_out, self.attn(self.ln1(x), num_queries=num_queries))
        else:
            x = self._residual(x, self.attn(self.ln1(x)))
        return self._residual(x, self.ffn(self.ln2(x)))


# ------------------------------------------------------------------------------------------------
# argument checks
# ------------------------------------------------------------------------------------------------
def _check_pair(name: str, value) -> Tuple[int, int]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return check_positive_int(name, value[0]), check_positive_int(name, value[1])
    if isinstance(value, (list, tuple)):
        raise ValueError(f'{name} must be an int or a pair (H, W), got {value!r}')
    v = check_positive_int(name, value)
    return v, v


def _check_cfg(name: str, cfg, allowed: Sequence[str]) -> dict:
    if not isinstance(cfg, dict):
        raise TypeError(f'{name} must be a dict, got {cfg!r} ({type(cfg).__name__})')
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise ValueError(f'{name} has unknown keys {unknown}; allowed keys: {list(allowed)}')
    return dict(cfg)


def resolve_arch(arch) -> dict:
    """``arch`` name or dict -> ``dict(embed_dims, num_layers, num_heads, feedforward_channels)``.
    """
    if isinstance(arch, str):
        key = arch.lower()
        if key not in ARCH_SETTINGS:
            raise ValueError(f'arch {arch!r} is not a known VisionTransformer arch; known archs: '
                             f'{", ".join(sorted(ARCH_SETTINGS))} (or a dict with keys '
                             f'{list(ARCH_KEYS)})')
        return dict(ARCH_SETTINGS[key])
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a name or a dict with keys {list(ARCH_KEYS)}, got '
                        f'{arch!r} ({type(arch).__name__})')
    missing = [k for k in ARCH_KEYS if k not in arch]
    if missing:
        raise ValueError(f'arch dict is missing keys {missing}; it needs {list(ARCH_KEYS)}, '
                         f'got {arch!r}')
    settings = dict(arch)
    for key in ARCH_KEYS:
        check_positive_int(f'arch[{key!r}]', settings[key])
    if settings['embed_dims'] % settings['num_heads']:
        raise ValueError(f"arch embed_dims ({settings['embed_dims']}) must be divisible by "
                         f"num_heads ({settings['num_heads']})")
    return settings


def _is_pretrained_init(init_cfg) -> bool:
    """True when ``init_cfg`` is a single Pretrained entry (the weights come from a file)."""
    if isinstance(init_cfg, (list, tuple)) and len(init_cfg) == 1:
        init_cfg = init_cfg[0]
    if not isinstance(init_cfg, dict):
        return False
    kind = init_cfg.get('type')
    return kind == 'Pretrained' or getattr(kind, '__name__', None) == 'PretrainedInit'


# ------------------------------------------------------------------------------------------------
# backbone
# ------------------------------------------------------------------------------------------------
@MODELS.register_module()
class VisionTransformer(BaseBackbone):
    """Vision Transformer with mmpretrain's parameter names (``patch_embed.projection``,
    ``cls_token``, ``pos_embed``, ``layers.N.{ln1,attn.qkv,attn.proj,ln2,ffn.layers.0.0,
    ffn.layers.1}``, ``pre_norm``, final norm ``ln1``, ``ln2`` of ``avg_featmap``).

    Args:
        arch: a name of :data:`ARCH_SETTINGS` (mmpretrain's names and dimensions) or a dict with
            ``embed_dims``, ``num_layers``, ``num_heads``, ``feedforward_channels``.
        img_size: the training image size (int or (H, W)); sets the ``pos_embed`` grid. Any other
            input size works: the embedding is resized to the input's grid at forward.
        patch_size: patch side (int or (h, w)); also the stride of every output.
        in_channels: image channels.
        out_indices: 0-based layer indices to output (int, list or tuple; negative counts from
            the last layer). Outputs come back in this order.
        drop_rate: dropout after the position embedding and in each block.
        drop_path_rate: stochastic depth, rising linearly from 0 to this over the layers.
        qkv_bias: bias of the qkv projections.
        norm_cfg: norm of every block, of ``pre_norm``, ``ln1`` and ``ln2``.
        final_norm: apply ``ln1`` after the last layer.
        out_type: ``'raw'``, ``'cls_token'``, ``'featmap'`` or ``'avg_featmap'`` (module doc).
        with_cls_token: prepend a learnable class token.
        frozen_stages: ``-1`` nothing; ``0`` the stem (patch embedding, cls token, position
            embedding, pre-norm); ``k`` the stem and ``layers[0..k-1]``; ``num_layers`` also the
            final norms.
        interpolate_mode: interpolation of ``pos_embed`` resizing (``'bicubic'``).
        layer_scale_init_value: > 0 adds LayerScale (``gamma1``/``gamma2``) to each block.
        pre_norm: a norm before the first block (CLIP); the patch projection then has no bias.
        with_cp: gradient checkpointing of each block while training (saves memory).
        patch_cfg: overrides of the patch embedding: ``bias``, ``norm_cfg``, ``conv_cfg``,
            ``padding`` (``'corner'``: pad bottom/right, the default; ``'same'``).
        layer_cfgs: overrides for every block (a dict) or per block (a list of ``num_layers``
            dicts): ``num_heads``, ``feedforward_channels``, ``layer_scale_init_value``,
            ``drop_rate``, ``attn_drop_rate``, ``drop_path_rate``, ``qkv_bias``, ``ffn_type``
            (``'origin'`` or ``'swiglu_fused'``), ``act_cfg`` (``GELU``; ``QuickGELU`` for CLIP),
            ``norm_cfg``.
        init_cfg: mmengine init config. With a single ``dict(type='Pretrained', ...)`` the
            parameters are allocated without a random init (the checkpoint overwrites them) and
            only those the checkpoint lacks get the default init in ``init_weights()``.
    """
    arch_zoo = ARCH_SETTINGS
    OUT_TYPES = OUT_TYPES

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: Union[int, Sequence[int]] = 16,
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = -1,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 qkv_bias: bool = True,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 final_norm: bool = True,
                 out_type: str = 'cls_token',
                 with_cls_token: bool = True,
                 frozen_stages: int = -1,
                 interpolate_mode: str = 'bicubic',
                 layer_scale_init_value: float = 0.,
                 pre_norm: bool = False,
                 with_cp: bool = False,
                 patch_cfg: Optional[dict] = None,
                 layer_cfgs: Union[dict, Sequence[dict], None] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        # ---- arguments -------------------------------------------------------------------------
        self.arch_settings = resolve_arch(arch)
        self.embed_dims = self.arch_settings['embed_dims']
        self.num_layers = self.arch_settings['num_layers']
        self.img_size = _check_pair('img_size', img_size)
        self.patch_size = _check_pair('patch_size', patch_size)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.out_indices = normalize_out_indices(out_indices, self.num_layers)
        drop_rate = check_rate('drop_rate', drop_rate)
        drop_path_rate = check_rate('drop_path_rate', drop_path_rate)
        for name, flag in (('qkv_bias', qkv_bias), ('final_norm', final_norm),
                           ('with_cls_token', with_cls_token), ('pre_norm', pre_norm),
                           ('with_cp', with_cp)):
            check_bool(name, flag)
        norm_cfg = check_norm_cfg(norm_cfg)
        self.out_type = check_choice('out_type', out_type, OUT_TYPES)
        if out_type == 'cls_token' and not with_cls_token:
            raise ValueError("out_type='cls_token' needs with_cls_token=True (there is no class "
                             "token to output); use out_type='avg_featmap', 'featmap' or 'raw'")
        self.with_cls_token = with_cls_token
        self.num_extra_tokens = 1 if with_cls_token else 0
        self.interpolate_mode = check_choice('interpolate_mode', interpolate_mode,
                                             INTERPOLATE_MODES)
        if isinstance(layer_scale_init_value, bool) or not isinstance(
                layer_scale_init_value, (int, float)) or layer_scale_init_value < 0:
            raise ValueError(f'layer_scale_init_value must be a float >= 0 (0 disables layer '
                             f'scale), got {layer_scale_init_value!r}')
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_layers)
        self.final_norm = final_norm
        self.with_cp = with_cp
        patch_cfg = _check_cfg('patch_cfg', patch_cfg or {}, PATCH_CFG_KEYS)
        layer_cfgs = self._check_layer_cfgs(layer_cfgs)

        # ---- layers ----------------------------------------------------------------------------
        # With a Pretrained init_cfg, build on the meta device and allocate without any random
        # init: the checkpoint overwrites everything (ViT-L: seconds saved). Parameters the
        # checkpoint lacks are initialised in init_weights().
        self._deferred_init = _is_pretrained_init(init_cfg)
        device_ctx = torch.device('meta') if self._deferred_init else contextlib.nullcontext()
        num_built = max(self.out_indices) + 1
        with device_ctx:
            self.patch_embed = PatchEmbed(
                in_channels=in_channels, embed_dims=self.embed_dims, patch_size=self.patch_size,
                input_size=self.img_size, **{'bias': not pre_norm, **patch_cfg})
            self.patch_resolution = self.patch_embed.init_out_size
            num_patches = self.patch_resolution[0] * self.patch_resolution[1]
            self.cls_token = (nn.Parameter(torch.zeros(1, 1, self.embed_dims))
                              if with_cls_token else None)
            self.pos_embed = nn.Parameter(
                torch.zeros(1, num_patches + self.num_extra_tokens, self.embed_dims))
            self.drop_after_pos = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
            self.pre_norm = _build_norm(norm_cfg, self.embed_dims) if pre_norm else nn.Identity()
            dpr = [drop_path_rate * i / max(self.num_layers - 1, 1)
                   for i in range(self.num_layers)]
            self.layers = nn.ModuleList()
            for i in range(num_built):
                cfg = dict(embed_dims=self.embed_dims,
                           num_heads=self.arch_settings['num_heads'],
                           feedforward_channels=self.arch_settings['feedforward_channels'],
                           layer_scale_init_value=float(layer_scale_init_value),
                           drop_rate=drop_rate, drop_path_rate=dpr[i], qkv_bias=qkv_bias,
                           norm_cfg=norm_cfg)
                cfg.update(layer_cfgs[i])
                self.layers.append(TransformerEncoderLayer(**cfg))
            # the final norm follows the last layer only: not built when that layer is not
            last_built = num_built == self.num_layers
            self.ln1 = (_build_norm(norm_cfg, self.embed_dims)
                        if final_norm and last_built else None)
            self.ln2 = (_build_norm(norm_cfg, self.embed_dims)
                        if out_type == 'avg_featmap' else None)
        if self._deferred_init:
            self.to_empty(device='cpu')
        # names of parameters still holding uninitialised memory (deferred init only)
        self._pending_init = set(n for n, _ in self.named_parameters()) if \
            self._deferred_init else set()
        self.register_load_state_dict_pre_hook(VisionTransformer._load_pre_hook)

        # pooled (B, C) outputs have no stride (the contract's mark); token maps and sequences
        # sit on the patch grid
        stride = self.patch_size[0] if self.patch_size[0] == self.patch_size[1] else \
            self.patch_size
        if out_type in ('cls_token', 'avg_featmap'):
            stride = None
        self._set_outputs([self.embed_dims] * len(self.out_indices),
                          [stride] * len(self.out_indices),
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def _check_layer_cfgs(self, layer_cfgs) -> List[dict]:
        if layer_cfgs is None:
            layer_cfgs = {}
        if isinstance(layer_cfgs, dict):
            layer_cfgs = [layer_cfgs] * self.num_layers
        if not isinstance(layer_cfgs, (list, tuple)) or len(layer_cfgs) != self.num_layers:
            raise ValueError(f'layer_cfgs must be a dict or a list of {self.num_layers} dicts '
                             f'(one per layer), got {layer_cfgs!r}')
        checked = []
        for i, cfg in enumerate(layer_cfgs):
            cfg = _check_cfg(f'layer_cfgs[{i}]', cfg, LAYER_CFG_KEYS)
            if 'ffn_type' in cfg:
                check_choice(f'layer_cfgs[{i}] ffn_type', cfg['ffn_type'], FFN_TYPES)
            checked.append(cfg)
        return checked

    # ---- metadata -------------------------------------------------------------------------------
    @property
    def norm1(self):
        return self.ln1

    @property
    def norm2(self):
        return self.ln2

    # ---- init and loading -----------------------------------------------------------------------
    def _reset_parameters(self, names: Optional[set] = None) -> None:
        """Default init (trunc-normal 0.02 linears and position embedding, unit norms, zero
        biases) of the parameters in ``names`` (all when ``None``)."""
        for module_name, module in self.named_modules():
            for param_name, param in module.named_parameters(recurse=False):
                full = f'{module_name}.{param_name}' if module_name else param_name
                if names is not None and full not in names:
                    continue
                with torch.no_grad():
                    if isinstance(module, LayerScale):
                        param.fill_(module.init_value)
                    elif full == 'pos_embed':
                        nn.init.trunc_normal_(param, std=.02)
                    elif full == 'cls_token':
                        param.zero_()
                    elif param_name == 'bias':
                        param.zero_()
                    elif isinstance(module, nn.Linear):
                        nn.init.trunc_normal_(param, std=.02)
                    elif isinstance(module, nn.Conv2d):
                        nn.init.kaiming_uniform_(param, a=math.sqrt(5))
                    elif param.dim() == 1:  # norm weights
                        param.fill_(1.)
                    else:
                        nn.init.trunc_normal_(param, std=.02)

    def init_weights(self):
        super().init_weights()  # runs init_cfg: a Pretrained checkpoint loads here
        if self._deferred_init:
            if self._pending_init:
                from mmengine.logging import print_log
                print_log(f'{type(self).__name__}: {len(self._pending_init)} parameters were '
                          f'not in the checkpoint and get the default init: '
                          f'{sorted(self._pending_init)}', logger='current')
                self._reset_parameters(self._pending_init)
                self._pending_init = set()
        elif self.init_cfg is None:
            self._reset_parameters()

    def _adapt_pos_embed(self, ckpt: torch.Tensor) -> torch.Tensor:
        """A checkpoint's ``(1, L, C)`` position embedding, made to fit this model: class-token
        entry dropped or added (zeros), grid resized with ``interpolate_mode``."""
        target = self.pos_embed.shape
        if ckpt.shape == target or ckpt.dim() != 3 or ckpt.shape[2] != target[2]:
            return ckpt  # equal, or not a pos_embed we can read: the loader reports it
        length = ckpt.shape[1]
        # how many leading non-grid entries the checkpoint has: this model's count or the other
        # one (0 <-> 1). Prefer a reading that gives exactly this model's grid (9 entries are
        # 1 + 2x4 for a 2x4 model, not 3x3), then this model's count.
        readings = []
        for ckpt_extra in (self.num_extra_tokens, 1 - self.num_extra_tokens):
            try:
                readings.append((ckpt_extra, infer_grid_shape(length - ckpt_extra,
                                                              hint=self.patch_resolution)))
            except ValueError:
                if length - ckpt_extra == self.patch_resolution[0] * self.patch_resolution[1]:
                    readings.append((ckpt_extra, tuple(self.patch_resolution)))
        readings.sort(key=lambda r: r[1] != tuple(self.patch_resolution))
        if not readings:
            from mmengine.logging import print_log
            print_log(f'pos_embed of shape {tuple(ckpt.shape)} in the checkpoint: cannot infer '
                      f'its patch grid, left as is (model: {tuple(target)})', logger='current',
                      level=30)
            return ckpt
        ckpt_extra, grid = readings[0]
        if ckpt_extra > self.num_extra_tokens:  # checkpoint has a cls token this model lacks
            ckpt = ckpt[:, 1:]
        elif ckpt_extra < self.num_extra_tokens:  # timm no_embed_class: cls gets no position
            ckpt = torch.cat((ckpt.new_zeros(1, 1, ckpt.shape[2]), ckpt), dim=1)
        resized = resize_pos_embed(ckpt, grid, self.patch_resolution, self.interpolate_mode,
                                   self.num_extra_tokens)
        from mmengine.logging import print_log
        print_log(f'Resized pos_embed from {tuple(ckpt.shape)} (grid {grid[0]}x{grid[1]}) to '
                  f'{tuple(resized.shape)} (grid {self.patch_resolution[0]}x'
                  f'{self.patch_resolution[1]})', logger='current')
        return resized

    def _load_pre_hook(self, state_dict, prefix, local_metadata, strict, missing_keys,
                       unexpected_keys, error_msgs):
        key = prefix + 'pos_embed'
        if key in state_dict and isinstance(state_dict[key], torch.Tensor):
            state_dict[key] = self._adapt_pos_embed(state_dict[key])
        if self._pending_init:
            params = dict(self.named_parameters())
            self._pending_init = {
                name for name in self._pending_init
                if not (prefix + name in state_dict
                        and getattr(state_dict[prefix + name], 'shape', None) ==
                        params[name].shape)}

    # ---- freezing -------------------------------------------------------------------------------
    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return [self.patch_embed, *self.layers]

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        super()._freeze_stages()  # patch_embed and layers[0..k-1]
        for module in (self.pre_norm, self.drop_after_pos):
            module.eval()
            for param in module.parameters():
                param.requires_grad = False
        for param in (self.cls_token, self.pos_embed):
            if param is not None:
                param.requires_grad = False
        if self.frozen_stages == self.num_layers:
            for module in (self.ln1, self.ln2):
                if module is not None:
                    module.eval()
                    for param in module.parameters():
                        param.requires_grad = False

    # ---- forward --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``(B, in_channels, H, W)`` -> one tensor per ``out_indices`` entry (module doc)."""
        self.check_input(x)
        if self._pending_init:
            raise RuntimeError(
                f'{type(self).__name__} was built with a Pretrained init_cfg, so its parameters '
                f'are allocated but not initialised: call init_weights() (or load_state_dict) '
                f'before forward. Uninitialised: {sorted(self._pending_init)[:5]}...')
        batch = x.shape[0]
        x, hw = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(batch, -1, -1), x), dim=1)
        pos_embed = self.pos_embed
        if hw != self.patch_resolution:
            pos_embed = resize_pos_embed(pos_embed, self.patch_resolution, hw,
                                         mode=self.interpolate_mode,
                                         num_extra_tokens=self.num_extra_tokens)
        x = self.drop_after_pos(x + pos_embed)
        x = self.pre_norm(x)

        outs: Dict[int, torch.Tensor] = {}
        last = self.num_layers - 1
        last_built = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            # a class-token output needs only the class token of the last built layer: its
            # query, its attention output and its MLP (the other tokens serve as keys/values)
            num_queries = 1 if self.out_type == 'cls_token' and i == last_built else None
            if self.with_cp and self.training and x.requires_grad:
                x = torch.utils.checkpoint.checkpoint(layer, x, num_queries, use_reentrant=False)
            else:
                x = layer(x, num_queries)
            if i == last and self.ln1 is not None:
                x = self.ln1(x)
            if i in self.out_indices:
                outs[i] = self._format_output(x, hw)
        return tuple(outs[i] for i in self.out_indices)

    def _format_output(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        if self.out_type == 'raw':
            return x
        if self.out_type == 'cls_token':
            return x[:, 0]
        patch_tokens = x[:, self.num_extra_tokens:]
        if self.out_type == 'featmap':
            # (B, N, C) -> (B, C, Hp, Wp), a view (channels-last memory)
            return patch_tokens.reshape(x.shape[0], hw[0], hw[1], -1).permute(0, 3, 1, 2)
        return self.ln2(patch_tokens.mean(dim=1))

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, num_depths)`` of a parameter for layer-wise lr decay: 0 for the stem,
        ``i + 1`` for ``layers.i``, the last depth for the final norms and anything else."""
        num_depths = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num_depths - 1, num_depths
        name = param_name[len(prefix):]
        if name in ('cls_token', 'pos_embed') or name.startswith(('patch_embed', 'pre_norm')):
            return 0, num_depths
        if name.startswith('layers.'):
            return int(name.split('.')[1]) + 1, num_depths
        return num_depths - 1, num_depths

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_layers={self.num_layers} '
                f'(built {len(self.layers)}), patch_size={self.patch_size}, '
                f'out_type={self.out_type!r}, ' + super().extra_repr())


# ``ViT`` is the same class under a short name.
MODELS.register_module(name='ViT', module=VisionTransformer)
