"""BEiT (and MAE's fine-tuning ViT): a ViT whose attention adds a learned relative position bias
and whose residual branches are scaled by a learned layer scale; checkpoint-compatible with
mmpretrain's ``BEiTViT`` and mmseg's ``BEiT``/``MAE`` (the same key layout).

``BEiT: BERT Pre-Training of Image Transformers`` (https://arxiv.org/abs/2106.08254); MAE
(https://arxiv.org/abs/2111.06377) fine-tunes for segmentation with this block (mmseg's ``MAE``:
``bias=True`` and an absolute position embedding; ``mmbackbones.mmseg.MAE``).

Data flow (``B`` images, patch size ``P``, ``C = embed_dims``)::

    image (B, 3, H, W) -> patch_embed (pad to a multiple of P, or crop: patch_cfg padding=0)
      -> tokens (B, Hp * Wp, C) -> [cls_token] + tokens [+ pos_embed (use_abs_pos_emb)]
      -> layers[i]: x + gamma_1 * attn(ln1(x), rel. position bias), x + gamma_2 * ffn(ln2(x))
      -> ln1 after the last layer (final_norm)

Outputs as mmpretrain's (``out_type``): ``'featmap'`` ``(B, C, Hp, Wp)`` stride ``P``;
``'raw'`` every token; ``'cls_token'`` ``(B, C)``; ``'avg_featmap'`` ``ln2(mean of the patch
tokens)`` (the default, as timm's ``fc_norm``). Names ``stage{i + 1}`` for ``layers[i]``.

Any input size works: the bias table is made for the ``img_size`` grid (the window); a smaller
grid reads its exact offsets from it, a larger one resizes the table's offset grid bicubically
(mmpretrain, mmseg and timm accept only the window's size). Loading a checkpoint whose tables
were made for another window resizes them as mmseg/mmpretrain do on load (BEiT's geometric
cubic-spline interpolation, :func:`~mmbackbones.models.layers.rel_pos_bias.
resize_rel_pos_table_geometric`).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_IMAGE_SIDE, MAX_WIDTH, InvalidChoiceError,
                                 check_bool, check_cfg_keys, check_choice, check_positive_int,
                                 check_rate, check_size_limit, normalize_out_indices)
from ..base import BaseBackbone
from ..layer_decay import strip_prefix
from ..layers.beit_layer import QKV_BIAS_CHOICES, BEiTTransformerEncoderLayer
from ..layers.mmcv_bricks import build_norm_layer
from ..layers.norm import check_norm_cfg
from ..layers.patch_embed import PatchEmbed
from ..layers.pos_embed import (INTERPOLATE_MODES, adapt_pos_embed, check_pair, is_tracing,
                                resize_pos_embed)
from ..layers.rel_pos_bias import (RelativePositionBias, resize_rel_pos_table_geometric,
                                   table_window)


def _arch(embed_dims, num_layers, num_heads, feedforward_channels):
    return dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=num_heads,
                feedforward_channels=feedforward_channels)


# mmpretrain 1.2.0's BEiTViT.arch_zoo (names and dimensions)
arch_zoo: Dict[str, dict] = {
    **dict.fromkeys(['s', 'small'], _arch(768, 8, 8, 768 * 3)),
    **dict.fromkeys(['b', 'base'], _arch(768, 12, 12, 3072)),
    **dict.fromkeys(['l', 'large'], _arch(1024, 24, 16, 4096)),
    **dict.fromkeys(['eva-g', 'eva-giant'], _arch(1408, 40, 16, 6144)),
    **dict.fromkeys(['deit-t', 'deit-tiny'], _arch(192, 12, 3, 192 * 4)),
    **dict.fromkeys(['deit-s', 'deit-small'], _arch(384, 12, 6, 384 * 4)),
    **dict.fromkeys(['deit-b', 'deit-base'], _arch(768, 12, 12, 768 * 4)),
}
ARCH_KEYS = ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')
OUT_TYPES = ('raw', 'cls_token', 'featmap', 'avg_featmap')
PATCH_CFG_KEYS = ('bias', 'norm_cfg', 'conv_cfg', 'padding')
PATCH_PADDINGS = ('corner', 'same', 0)  # 0: mmcv's int padding, the last partial patch dropped
LAYER_CFG_KEYS = ('num_heads', 'feedforward_channels', 'layer_scale_init_value', 'drop_rate',
                  'attn_drop_rate', 'drop_path_rate', 'num_fcs', 'bias', 'act_cfg', 'norm_cfg')


def resolve_arch(arch) -> dict:
    if isinstance(arch, str):
        if arch.lower() not in arch_zoo:
            raise InvalidChoiceError(f'arch {arch!r} is not a known BEiTViT arch; known: '
                                     f'{", ".join(sorted(arch_zoo))} (or a dict with keys '
                                     f'{list(ARCH_KEYS)})')
        return dict(arch_zoo[arch.lower()])
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a name or a dict with keys {list(ARCH_KEYS)}, got '
                        f'{arch!r} ({type(arch).__name__})')
    missing = [k for k in ARCH_KEYS if k not in arch]
    if missing:
        raise ValueError(f'arch dict misses keys {missing}; it needs {list(ARCH_KEYS)}, got '
                         f'{arch!r}')
    settings = {k: arch[k] for k in ARCH_KEYS}
    for key in ARCH_KEYS:
        check_positive_int(f'arch[{key!r}]', settings[key])
        check_size_limit(f'arch[{key!r}]', settings[key],
                         MAX_BLOCKS if key == 'num_layers' else MAX_WIDTH)
    if settings['embed_dims'] % settings['num_heads']:
        raise ValueError(f"arch embed_dims ({settings['embed_dims']}) must be divisible by "
                         f"num_heads ({settings['num_heads']})")
    return settings


def _check_layer_scale(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f'{name} must be a float >= 0 (0 disables layer scale), got {value!r}')
    return float(value)


@MODELS.register_module()
class BEiTViT(BaseBackbone):
    """BEiT's ViT with mmpretrain 1.2's ``BEiTViT`` signature, defaults and parameter names.

    Args (mmpretrain's):
        arch: a name of :data:`arch_zoo` or a dict with ``embed_dims``, ``num_layers``,
            ``num_heads``, ``feedforward_channels``.
        img_size: the training size; sets the relative-position window (and ``pos_embed``).
        patch_size: patch side; the stride of every map output.
        in_channels: image channels.
        out_indices: 0-based layer indices (negative from the end); outputs in this order.
        drop_rate: dropout after the position embedding and in each layer.
        drop_path_rate: stochastic depth, rising linearly from 0 over the layers.
        bias: ``'qv_bias'`` (BEiT), ``True`` (a bias for q, k and v: MAE) or ``False``.
        norm_cfg: the norm of every layer and of ``ln1``/``ln2``.
        final_norm: ``ln1`` after the last layer.
        out_type: ``'raw'``, ``'cls_token'``, ``'featmap'`` or ``'avg_featmap'`` (default).
        with_cls_token: prepend a class token.
        frozen_stages: ``-1`` nothing; ``0`` the stem (patch embedding, class token, position
            embedding); ``k`` also ``layers[0..k-1]``; ``num_layers`` also the final norms
            (mmpretrain freezes nothing at 0).
        use_abs_pos_emb: a learned absolute position embedding (resized to the input's grid).
        use_rel_pos_bias: a relative position bias table in every layer.
        use_shared_rel_pos_bias: one table (``rel_pos_bias``) shared by every layer.
        interpolate_mode: resizing of ``pos_embed``.
        layer_scale_init_value: initial ``gamma_1``/``gamma_2``; 0 builds no layer scale.
        patch_cfg: ``bias``, ``norm_cfg``, ``conv_cfg``, ``padding`` (``'corner'`` pads the
            bottom/right to a multiple of the patch, ``'same'`` both sides, ``0`` drops the last
            partial patch as mmseg's BEiT).
        layer_cfgs: overrides for every layer (a dict) or per layer (a list):
            :data:`LAYER_CFG_KEYS`.
        init_cfg: mmengine init config.

    Our extras (keyword-only): ``with_cp`` (gradient checkpointing of each layer while
    training), ``norm_eval`` (BatchNorm layers stay in eval mode; a BEiT has none).
    """
    arch_zoo = arch_zoo
    OUT_TYPES = OUT_TYPES

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: Union[int, Sequence[int]] = 16,
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = -1,
                 drop_rate: float = 0,
                 drop_path_rate: float = 0,
                 bias: Union[str, bool] = 'qv_bias',
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 final_norm: bool = False,
                 out_type: str = 'avg_featmap',
                 with_cls_token: bool = True,
                 frozen_stages: int = -1,
                 use_abs_pos_emb: bool = False,
                 use_rel_pos_bias: bool = True,
                 use_shared_rel_pos_bias: bool = False,
                 interpolate_mode: str = 'bicubic',
                 layer_scale_init_value: float = 0.1,
                 patch_cfg: dict = dict(),
                 layer_cfgs: Union[dict, Sequence[dict]] = dict(),
                 init_cfg=None,
                 *,
                 with_cp: bool = False,
                 norm_eval: bool = False):
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = resolve_arch(arch)
        self.embed_dims = self.arch_settings['embed_dims']
        self.num_layers = self.num_stages = self.arch_settings['num_layers']
        self.img_size = check_pair('img_size', img_size)
        for side in self.img_size:
            check_size_limit('img_size', side, MAX_IMAGE_SIDE, 'a side of the window')
        self.patch_size = check_pair('patch_size', patch_size)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.out_indices = normalize_out_indices(out_indices, self.num_layers)
        for name, flag in (('final_norm', final_norm), ('with_cls_token', with_cls_token),
                           ('use_abs_pos_emb', use_abs_pos_emb),
                           ('use_rel_pos_bias', use_rel_pos_bias),
                           ('use_shared_rel_pos_bias', use_shared_rel_pos_bias),
                           ('with_cp', with_cp), ('norm_eval', norm_eval)):
            check_bool(name, flag)
        if use_rel_pos_bias and use_shared_rel_pos_bias:
            raise ValueError('use_rel_pos_bias and use_shared_rel_pos_bias cannot both be True '
                             '(one table per layer, or one shared table)')
        self.out_type = check_choice('out_type', out_type, OUT_TYPES)
        if out_type == 'cls_token' and not with_cls_token:
            raise ValueError("out_type='cls_token' needs with_cls_token=True")
        check_choice('bias', bias, QKV_BIAS_CHOICES)
        self.interpolate_mode = check_choice('interpolate_mode', interpolate_mode,
                                             INTERPOLATE_MODES)
        norm_cfg = check_norm_cfg(norm_cfg)
        layer_defaults = dict(
            num_heads=self.arch_settings['num_heads'],
            feedforward_channels=self.arch_settings['feedforward_channels'],
            layer_scale_init_value=_check_layer_scale('layer_scale_init_value',
                                                      layer_scale_init_value),
            drop_rate=check_rate('drop_rate', drop_rate), bias=bias, norm_cfg=norm_cfg)
        layer_cfgs = self._check_layer_cfgs(layer_cfgs)
        patch_cfg = check_cfg_keys('patch_cfg', patch_cfg or {}, PATCH_CFG_KEYS)
        self.patch_padding = check_choice('patch_cfg padding', patch_cfg.pop('padding', 'corner'),
                                          PATCH_PADDINGS)
        drop_path_rate = check_rate('drop_path_rate', drop_path_rate)
        self.with_cls_token, self.num_extra_tokens = with_cls_token, int(with_cls_token)
        self.final_norm, self.with_cp, self.norm_eval = final_norm, with_cp, norm_eval
        self.use_rel_pos_bias = use_rel_pos_bias
        self.rel_pos_init = 'trunc_normal'  # mmseg's MAE twin: 'zeros'
        self.frozen_stages = frozen_stages

        # ---- build: the stem, then layers up to the last output --------------------------------
        self.patch_embed = PatchEmbed(
            in_channels=self.in_channels, embed_dims=self.embed_dims, patch_size=self.patch_size,
            padding='corner' if self.patch_padding == 0 else self.patch_padding, **patch_cfg)
        self.patch_resolution = self._grid(self.img_size)
        num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims)) \
            if with_cls_token else None
        self.pos_embed = nn.Parameter(torch.zeros(
            1, num_patches + self.num_extra_tokens, self.embed_dims)) if use_abs_pos_emb else None
        self.drop_after_pos = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.rel_pos_bias = RelativePositionBias(
            self.patch_resolution, self.arch_settings['num_heads']) \
            if use_shared_rel_pos_bias else None
        num_built = max(self.out_indices) + 1
        dpr = [drop_path_rate * i / max(self.num_layers - 1, 1) for i in range(self.num_layers)]
        self.layers = nn.ModuleList([
            BEiTTransformerEncoderLayer(**{
                'embed_dims': self.embed_dims, **layer_defaults,
                'window_size': self.patch_resolution, 'use_rel_pos_bias': use_rel_pos_bias,
                'drop_path_rate': dpr[i], **layer_cfgs[i]})
            for i in range(num_built)])
        last_built = num_built == self.num_layers
        self.ln1 = build_norm_layer(norm_cfg, self.embed_dims)[1] \
            if final_norm and last_built else None
        self.ln2 = build_norm_layer(norm_cfg, self.embed_dims)[1] \
            if out_type == 'avg_featmap' else None

        stride = self.patch_size[0] if self.patch_size[0] == self.patch_size[1] else \
            self.patch_size
        if out_type in ('cls_token', 'avg_featmap'):
            stride = None
        self._set_outputs([self.embed_dims] * len(self.out_indices),
                          [stride] * len(self.out_indices),
                          [f'stage{i + 1}' for i in self.out_indices])
        self._register_load_state_dict_pre_hook(self._load_pre_hook)
        self._freeze_stages()

    def _check_layer_cfgs(self, layer_cfgs) -> List[dict]:
        if layer_cfgs is None:
            layer_cfgs = {}
        if isinstance(layer_cfgs, dict):
            layer_cfgs = [layer_cfgs] * self.num_layers
        if not isinstance(layer_cfgs, (list, tuple)) or len(layer_cfgs) != self.num_layers:
            raise ValueError(f'layer_cfgs must be a dict or a list of {self.num_layers} dicts, '
                             f'got {layer_cfgs!r}')
        checked = []
        for i, cfg in enumerate(layer_cfgs):
            cfg = check_cfg_keys(f'layer_cfgs[{i}]', cfg, LAYER_CFG_KEYS)
            if 'bias' in cfg:
                check_choice(f'layer_cfgs[{i}] bias', cfg['bias'], QKV_BIAS_CHOICES)
            if 'norm_cfg' in cfg:
                cfg['norm_cfg'] = check_norm_cfg(cfg['norm_cfg'])
            checked.append(cfg)
        return checked

    def _grid(self, size: Sequence[int]) -> Tuple[int, int]:
        """The token grid of an ``(H, W)`` input."""
        if self.patch_padding == 0:
            return size[0] // self.patch_size[0], size[1] // self.patch_size[1]
        return self.patch_embed.grid_size(size)

    norm1 = property(lambda self: self.ln1)  # mmpretrain's names of the final norms
    norm2 = property(lambda self: self.ln2)

    # ---- init and loading ---------------------------------------------------------------------
    def init_weights(self):
        if self.init_cfg is None:
            self._reset_parameters()
        super().init_weights()
        if self.init_cfg is not None and not self.loads_pretrained() \
                and self.pos_embed is not None:
            with torch.no_grad():
                nn.init.trunc_normal_(self.pos_embed, std=.02)

    def _reset_parameters(self) -> None:
        """Trunc-normal(0.02) linears, tables, position embedding and class token; zero biases;
        unit norms; layer scales at their initial value (mmseg's MAE twin: zero tables)."""
        with torch.no_grad():
            for name, param in self.named_parameters():
                leaf = name.rsplit('.', 1)[-1]
                if leaf.startswith('gamma_'):
                    param.fill_(self.layers[int(name.split('.')[1])].layer_scale_init_value)
                elif leaf == 'relative_position_bias_table':
                    if self.rel_pos_init == 'zeros':
                        param.zero_()
                    else:
                        nn.init.trunc_normal_(param, std=.02)
                elif leaf in ('bias', 'q_bias', 'v_bias'):
                    param.zero_()
                elif name.startswith('patch_embed.projection'):
                    nn.init.kaiming_uniform_(param, a=math.sqrt(5))
                elif param.dim() == 1:
                    param.fill_(1.)
                else:
                    nn.init.trunc_normal_(param, std=.02)

    def _load_pre_hook(self, state_dict, prefix, local_metadata, strict, missing_keys,
                       unexpected_keys, error_msgs):
        """mmpretrain's and mmseg's load-time adaptations: a shared table is copied into every
        layer's; tables made for another window are resized (BEiT's geometric interpolation);
        the derived index buffers are rebuilt; ``pos_embed`` is resized to this grid."""
        from mmengine.logging import print_log
        shared = prefix + 'rel_pos_bias.relative_position_bias_table'
        if self.use_rel_pos_bias and shared in state_dict:
            table = state_dict.pop(shared)
            state_dict.pop(prefix + 'rel_pos_bias.relative_position_index', None)
            for i in range(self.num_layers):
                state_dict[f'{prefix}layers.{i}.attn.relative_position_bias_table'] = \
                    table.clone()
            print_log('Expanded the shared relative position bias table into every layer',
                      logger='current')
        for name, module in self.named_modules():
            table = getattr(module, 'relative_position_bias_table', None)
            if not isinstance(table, nn.Parameter):
                continue
            key = f'{prefix}{name}.relative_position_bias_table'
            ckpt = state_dict.get(key)
            if isinstance(ckpt, torch.Tensor) and ckpt.dim() == 2 and ckpt.shape != table.shape \
                    and ckpt.shape[1] == table.shape[1]:
                src = table_window(ckpt.shape[0])
                if src is not None:
                    state_dict[key] = resize_rel_pos_table_geometric(ckpt, src,
                                                                     module.window_size)
                    print_log(f'Resized {key} from {tuple(ckpt.shape)} (window {src}) to '
                              f'{tuple(state_dict[key].shape)}', logger='current')
            index_key = f'{prefix}{name}.relative_position_index'
            state_dict[index_key] = module.relative_position_index.clone()
        key = prefix + 'pos_embed'
        if self.pos_embed is not None and isinstance(state_dict.get(key), torch.Tensor):
            resized, note = adapt_pos_embed(state_dict[key], tuple(self.pos_embed.shape),
                                            self.num_extra_tokens, self.patch_resolution,
                                            self.interpolate_mode)
            if note:
                print_log(note, logger='current')
            state_dict[key] = resized

    # ---- freezing ------------------------------------------------------------------------------
    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return [self.patch_embed, *self.layers]

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        super()._freeze_stages()  # patch_embed and layers[0..k-1]
        self.drop_after_pos.eval()
        for param in (self.cls_token, self.pos_embed):
            if param is not None:
                param.requires_grad = False
        if self.frozen_stages == self.num_layers:
            for module in (self.ln1, self.ln2):
                if module is not None:
                    module.eval()
                    for param in module.parameters():
                        param.requires_grad = False

    # ---- forward -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``(B, in_channels, H, W)`` -> one tensor per ``out_indices`` entry (module doc)."""
        self.check_input(x)
        batch = x.shape[0]
        if self.patch_padding == 0:  # mmseg's BEiT: the last partial patch is dropped
            grid = self._grid(x.shape[-2:])
            x = x[..., :grid[0] * self.patch_size[0], :grid[1] * self.patch_size[1]]
        x, grid = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(batch, -1, -1), x), dim=1)
        if self.pos_embed is not None:
            pos_embed = self.pos_embed
            if is_tracing() or grid != self.patch_resolution:
                pos_embed = resize_pos_embed(pos_embed, self.patch_resolution, grid,
                                             mode=self.interpolate_mode,
                                             num_extra_tokens=self.num_extra_tokens)
            x = x + pos_embed
        x = self.drop_after_pos(x)
        shared = self.rel_pos_bias(grid, self.with_cls_token) \
            if self.rel_pos_bias is not None else None
        outs: Dict[int, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            if self.with_cp and self.training and x.requires_grad:
                x = torch.utils.checkpoint.checkpoint(layer, x, grid, shared, self.with_cls_token,
                                                      use_reentrant=False)
            else:
                x = layer(x, grid, shared, self.with_cls_token)
            if i == self.num_layers - 1 and self.ln1 is not None:
                x = self.ln1(x)
            if i in self.out_indices:
                outs[i] = self._format_output(x, grid)
        return tuple(outs[i] for i in self.out_indices)

    def _format_output(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        if self.out_type == 'raw':
            return x
        if self.out_type == 'cls_token':
            return x[:, 0]
        patch_tokens = x[:, self.num_extra_tokens:]
        if self.out_type == 'featmap':
            return patch_tokens.reshape(x.shape[0], grid[0], grid[1], x.shape[-1]).permute(
                0, 3, 1, 2)
        return self.ln2(patch_tokens.mean(dim=1))

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, num_depths)`` for layer-wise lr decay, as mmpretrain's: 0 for the patch
        embedding, class token and position embedding, ``i + 1`` for ``layers.i``, the last
        depth for everything else (final norms, the shared table, a head)."""
        num_depths, name = self.num_layers + 2, strip_prefix(param_name, prefix)
        if name is None:
            return num_depths - 1, num_depths
        if name in ('cls_token', 'pos_embed') or name.startswith('patch_embed'):
            return 0, num_depths
        if name.startswith('layers.'):
            return int(name.split('.')[1]) + 1, num_depths
        return num_depths - 1, num_depths

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_layers={self.num_layers} '
                f'(built {len(self.layers)}), window={self.patch_resolution}, '
                f'out_type={self.out_type!r}, ' + super().extra_repr())
