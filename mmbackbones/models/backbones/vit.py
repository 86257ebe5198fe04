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
from functools import partial
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_IMAGE_SIDE, check_bool, check_cfg_keys, check_choice,
                                 check_frozen_stages, check_positive_int, check_rate,
                                 check_size_limit, normalize_out_indices)
from ..base import BaseBackbone, is_pretrained_init
from ..host_args import take_host_args
from ..layer_decay import strip_prefix
from ..layers.norm import check_norm_cfg
from ..layers.patch_embed import PatchEmbed
from ..layers.pos_embed import (INTERPOLATE_MODES, adapt_pos_embed, check_pair, is_tracing,
                                resize_pos_embed)
from ..layers.rope import RotaryEmbedding2d
from ..layers.transformer_layer import TransformerEncoderLayer, _build_norm, check_layer_cfgs
from ..layers.vit_init import adopt_tensors, reset_vit_parameters
from .vit_args import (ARCH_EXTRAS, ARCH_KEYS, MMSEG_ONLY, OUT_TYPES,  # noqa: F401 (re-exported)
                       PATCH_CFG_KEYS, arch_extras, arch_settings, check_modern_args,
                       freeze_except,
                       mmseg_spelling, resolve_arch)


# ------------------------------------------------------------------------------------------------
# backbone
# ------------------------------------------------------------------------------------------------
@MODELS.register_module()
class VisionTransformer(BaseBackbone):
    """Vision Transformer with mmpretrain's parameter names (``patch_embed.projection``,
    ``cls_token``, ``pos_embed``, ``layers.N.{ln1,attn.qkv,attn.proj,ln2,ffn.layers.0.0,
    ffn.layers.1}``, ``pre_norm``, final norm ``ln1``, ``ln2`` of ``avg_featmap``).

    Args:
        arch: a name of :data:`arch_settings` (mmpretrain's names and dimensions) or a dict with
            ``embed_dims``, ``num_layers``, ``num_heads``, ``feedforward_channels``.
        img_size: the training image size (int or (H, W)); sets the ``pos_embed`` grid. Any other
            input size works: the embedding is resized to the input's grid at forward.
        patch_size: patch side (int or (h, w)); also the stride of every output.
        in_channels: image channels.
        out_indices: 0-based layer indices to output (int, list or tuple; negative counts from
            the last layer). Outputs come back in this order.
        drop_rate: dropout after the position embedding and in each block.
        drop_path_rate: stochastic depth, rising linearly from 0 to this over the layers.
        qkv_bias: bias of the qkv projections (``'qv'``: query and value biases only,
            ``q_bias``/``v_bias``, as BEiT and EVA).
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

    Our extras (keyword-only; mmseg's meanings):
        with_cp: gradient checkpointing of each block while training (saves memory).
        out_origin: one more output first, ``stage0``: the tokens before the first layer.
        output_cls_token: each output is ``[featmap, cls_token]`` (``out_type='featmap'``).
        frozen_exclude: parameters whose name contains none of these strings are frozen at
            construction (``None`` or ``['all']``: nothing).
        norm_eval: BatchNorm layers stay in eval mode (a ViT has none; kept for the contract).
        num_register_tokens: DINOv2's register tokens (``register_tokens``), placed after the
            class token once the position embedding is added (they have no position).
        interpolate_antialias: antialiased ``pos_embed`` resizing at forward (timm's
            ``dynamic_img_size``); off: mmpretrain's and DINOv2's.
        rope: EVA-02's 2-D rotary position embedding of the patch tokens in every block:
            ``True`` or ``dict(layout='interleaved'|'tiled', ref_grid=(h, w), theta=1e4)``
            (:mod:`~mmbackbones.models.layers.rope`; the default ``ref_grid`` is the
            ``img_size`` grid for ``'interleaved'``).
        window_size, window_block_indexes: ViTDet's window attention in the listed blocks
            (0-based), global attention in the others (windows padded to the window).
        use_rel_pos, rel_pos_zero_init, rel_pos_size: ViTDet's decomposed relative position
            tables in every block, for the window (windowed blocks) or for ``rel_pos_size``
            (a global block's token grid; default the ``img_size`` grid); resized to other
            grids at forward (``rel_pos_resize``: ``'linear'``, ViTDet's, or ``'beit'``, EVA's
            evaluation-time cubic resize, :mod:`~mmbackbones.models.layers.rel_pos`).
        residual_block_indexes: ViTDet's residual conv block (``layers.{i}.residual``: 1x1, 3x3,
            1x1 convs with channel LayerNorms, the last one zero-initialised) after the listed
            blocks (0-based; the token map only).
        with_pos_embed: ``False``: no ``pos_embed`` (ViTDet's ``use_abs_pos=False``).

    Arch rows (:data:`~.vit_args.ARCH_EXTRAS`): ``dinov2-*`` build DINOv2 (patch 14, img 518,
    layer scale 1e-5; SwiGLU for giant), ``eva02-*`` EVA-02 (patch 14, SwiGLU, rope, sub-LN
    for base/large); an argument left at its signature default takes the row's value.

    mmseg's spelling is the twin ``mmbackbones.mmseg.VisionTransformer``. mmseg's own arguments
    (:data:`MMSEG_ONLY`) given here still work for now, each with its mmseg meaning
    (:func:`mmseg_spelling`) and one :class:`~mmbackbones.models.host_args.HostArgumentWarning`;
    they change no other default.
    """
    arch_zoo = arch_settings  # mmpretrain's attribute name
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
                 patch_cfg: dict = dict(),
                 layer_cfgs: Union[dict, Sequence[dict]] = dict(),
                 pre_norm: bool = False,
                 init_cfg=None,
                 *,
                 with_cp: bool = False,
                 out_origin: bool = False,
                 output_cls_token: bool = False,
                 frozen_exclude: Optional[Sequence[str]] = None,
                 norm_eval: bool = False,
                 num_register_tokens: int = 0,
                 interpolate_antialias: bool = False,
                 rope: Union[bool, dict] = False,
                 window_size: int = 0,
                 window_block_indexes: Sequence[int] = (),
                 use_rel_pos: bool = False,
                 rel_pos_zero_init: bool = True,
                 rel_pos_size: Optional[Union[int, Sequence[int]]] = None,
                 residual_block_indexes: Sequence[int] = (),
                 with_pos_embed: bool = True,
                 rel_pos_resize: str = 'linear',
                 **mmseg_args):
        take_host_args(self, mmseg_args, dict.fromkeys(MMSEG_ONLY, ('mmseg',)))
        extras = arch_extras(arch)
        img_size = extras.get('img_size', img_size) if img_size == 224 else img_size
        patch_size = extras.get('patch_size', patch_size) if patch_size == 16 else patch_size
        if layer_scale_init_value == 0:
            layer_scale_init_value = extras.get('layer_scale_init_value', 0.)
        rope = extras.get('rope', rope) if rope is False else rope
        if mmseg_args:
            translated = mmseg_spelling(dict(arch=arch, norm_cfg=norm_cfg, patch_cfg=patch_cfg,
                                             layer_cfgs=layer_cfgs), mmseg_args)
            arch, patch_cfg, layer_cfgs = (translated[k] for k in ('arch', 'patch_cfg',
                                                                  'layer_cfgs'))
            with warnings.catch_warnings():  # one warning (take_host_args') is enough
                warnings.simplefilter('ignore', UserWarning)
                init_cfg = self._pretrained_to_init_cfg(mmseg_args.get('pretrained'), init_cfg)
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = resolve_arch(arch)
        self.embed_dims = self.arch_settings['embed_dims']
        self.num_layers = self.arch_settings['num_layers']
        norm_cfg = check_norm_cfg(norm_cfg)
        self._check_arguments(img_size, patch_size, in_channels, out_indices, out_type,
                              with_cls_token, interpolate_mode, frozen_stages, final_norm,
                              with_cp)
        self._check_extras(out_origin, output_cls_token, norm_eval)
        check_bool('pre_norm', pre_norm)
        if qkv_bias != 'qv':
            check_bool('qkv_bias', qkv_bias)
        self.with_pos_embed = check_bool('with_pos_embed', with_pos_embed)
        if isinstance(layer_scale_init_value, bool) or not isinstance(
                layer_scale_init_value, (int, float)) or layer_scale_init_value < 0:
            raise ValueError(f'layer_scale_init_value must be a float >= 0 (0 disables layer '
                             f'scale), got {layer_scale_init_value!r}')
        layer_defaults = dict(
            num_heads=self.arch_settings['num_heads'],
            feedforward_channels=self.arch_settings['feedforward_channels'],
            layer_scale_init_value=float(layer_scale_init_value),
            drop_rate=check_rate('drop_rate', drop_rate), qkv_bias=qkv_bias, norm_cfg=norm_cfg)
        # mmpretrain: no projection bias under a pre-norm (CLIP); patch_cfg overrides
        patch_cfg = {'bias': not pre_norm,
                     **check_cfg_keys('patch_cfg', patch_cfg or {}, PATCH_CFG_KEYS)}
        check_choice('patch_cfg padding', patch_cfg.get('padding', 'corner'), ('corner', 'same'))
        layer_defaults.update({k: extras[k] for k in ('ffn_type', 'sub_ln') if k in extras})
        layer_cfgs = check_layer_cfgs(layer_cfgs, self.num_layers)
        self._check_modern(num_register_tokens, interpolate_antialias, rope, window_size,
                           window_block_indexes, use_rel_pos, rel_pos_zero_init, rel_pos_size,
                           residual_block_indexes, rel_pos_resize)
        self._build(patch_cfg, layer_defaults, layer_cfgs, norm_cfg, pre_norm,
                    check_rate('drop_path_rate', drop_path_rate), init_cfg)
        self._set_metadata()
        self._freeze_stages()
        self._freeze_except(frozen_exclude)

    # ---- argument checks ------------------------------------------------------------------------
    def _check_arguments(self, img_size, patch_size, in_channels, out_indices, out_type,
                         with_cls_token, interpolate_mode, frozen_stages, final_norm,
                         with_cp) -> None:
        self.img_size = check_pair('img_size', img_size)
        for side in self.img_size:
            check_size_limit('img_size', side, MAX_IMAGE_SIDE, 'a side of the pos_embed grid')
        self.patch_size = check_pair('patch_size', patch_size)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.out_indices = normalize_out_indices(out_indices, self.num_layers)
        for name, flag in (('final_norm', final_norm), ('with_cls_token', with_cls_token),
                           ('with_cp', with_cp)):
            check_bool(name, flag)
        self.out_type = check_choice('out_type', out_type, OUT_TYPES)
        if out_type == 'cls_token' and not with_cls_token:
            raise ValueError("out_type='cls_token' needs with_cls_token=True (there is no class "
                             "token to output); use out_type='avg_featmap', 'featmap' or 'raw'")
        self.with_cls_token = with_cls_token
        self.num_extra_tokens = 1 if with_cls_token else 0
        self.interpolate_mode = check_choice('interpolate_mode', interpolate_mode,
                                             INTERPOLATE_MODES)
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_layers)
        self.final_norm = final_norm
        self.with_cp = with_cp

    def _check_extras(self, out_origin, output_cls_token, norm_eval) -> None:
        self.output_cls_token = check_bool('output_cls_token', output_cls_token)
        if self.output_cls_token and (self.out_type != 'featmap' or not self.with_cls_token):
            raise ValueError(f"output_cls_token=True (mmseg) needs out_type='featmap' and "
                             f"with_cls_token=True, got out_type={self.out_type!r}, "
                             f"with_cls_token={self.with_cls_token!r}")
        self.out_origin = check_bool('out_origin', out_origin)
        self.norm_eval = check_bool('norm_eval', norm_eval)

    def _check_modern(self, *args) -> None:
        """The DINOv2 / EVA-02 / ViTDet extras (class doc), set as attributes."""
        for key, value in check_modern_args(self.num_layers, self.num_extra_tokens,
                                            self.img_size_grid(), *args).items():
            setattr(self, key, value)

    def img_size_grid(self) -> Tuple[int, int]:
        """The patch grid of ``img_size`` (the ``pos_embed`` grid)."""
        return tuple(-(-s // p) for s, p in zip(self.img_size, self.patch_size))

    def _build(self, patch_cfg: dict, layer_defaults: dict, layer_cfgs: List[dict],
               norm_cfg: dict, pre_norm: bool, drop_path_rate: float, init_cfg) -> None:
        """Every module and parameter. With a Pretrained init_cfg, built on the meta device and
        allocated without any random init: the checkpoint overwrites everything (ViT-L:
        seconds saved); parameters the checkpoint lacks are initialised in init_weights()."""
        self._deferred_init = is_pretrained_init(init_cfg, only=True)
        device_ctx = torch.device('meta') if self._deferred_init else contextlib.nullcontext()
        num_built = max(self.out_indices) + 1
        with device_ctx:
            self.patch_embed = PatchEmbed(
                in_channels=self.in_channels, embed_dims=self.embed_dims,
                patch_size=self.patch_size, input_size=self.img_size, **patch_cfg)
            self.patch_resolution = self.patch_embed.init_out_size
            num_patches = self.patch_resolution[0] * self.patch_resolution[1]
            self.cls_token = (nn.Parameter(torch.zeros(1, 1, self.embed_dims))
                              if self.with_cls_token else None)
            self.register_tokens = (
                nn.Parameter(torch.zeros(1, self.num_register_tokens, self.embed_dims))
                if self.num_register_tokens else None)
            self.pos_embed = nn.Parameter(
                torch.zeros(1, num_patches + self.num_extra_tokens, self.embed_dims)) \
                if self.with_pos_embed else None
            drop_rate = layer_defaults['drop_rate']
            self.drop_after_pos = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
            self.pre_norm = _build_norm(norm_cfg, self.embed_dims) if pre_norm else nn.Identity()
            dpr = [drop_path_rate * i / max(self.num_layers - 1, 1)
                   for i in range(self.num_layers)]
            self.layers = nn.ModuleList([
                TransformerEncoderLayer(**{
                    'embed_dims': self.embed_dims, **layer_defaults, 'drop_path_rate': dpr[i],
                    'window_size': self.window_size if i in self.window_block_indexes else 0,
                    'use_rel_pos': self.use_rel_pos, 'rel_pos_size': self.rel_pos_size,
                    'rel_pos_zero_init': self.rel_pos_zero_init,
                    'rel_pos_resize': self.rel_pos_resize,
                    'residual_block': i in self.residual_block_indexes, **layer_cfgs[i]})
                for i in range(num_built)])
            heads = self.layers[0].attn.num_heads if num_built else 1
            self.rope = (RotaryEmbedding2d(self.embed_dims // heads, **self.rope_cfg)
                         if self.rope_cfg is not None else None)
            # the final norm follows the last layer only: not built when that layer is not
            last_built = num_built == self.num_layers
            self.ln1 = (_build_norm(norm_cfg, self.embed_dims)
                        if self.final_norm and last_built else None)
            self.ln2 = (_build_norm(norm_cfg, self.embed_dims)
                        if self.out_type == 'avg_featmap' else None)
        if self._deferred_init:
            self.to_empty(device='cpu')
        # names of parameters still holding uninitialised memory (deferred init only)
        self._pending_init = set(n for n, _ in self.named_parameters()) if \
            self._deferred_init else set()
        self.register_load_state_dict_pre_hook(VisionTransformer._load_pre_hook)
        self.register_load_state_dict_post_hook(VisionTransformer._load_post_hook)

    def _set_metadata(self) -> None:
        # pooled (B, C) outputs have no stride (the contract's mark); token maps and sequences
        # sit on the patch grid
        stride = self.patch_size[0] if self.patch_size[0] == self.patch_size[1] else \
            self.patch_size
        if self.out_type in ('cls_token', 'avg_featmap'):
            stride = None
        indices = ([-1] if self.out_origin else []) + list(self.out_indices)
        self._set_outputs([self.embed_dims] * len(indices), [stride] * len(indices),
                          [f'stage{i + 1}' for i in indices])

    def _freeze_except(self, frozen_exclude) -> None:
        freeze_except(self, frozen_exclude)

    # ---- metadata -------------------------------------------------------------------------------
    norm1 = property(lambda self: self.ln1)  # mmpretrain's names of the final norms
    norm2 = property(lambda self: self.ln2)

    # ---- init and loading -----------------------------------------------------------------------
    def _reset_parameters(self, names: Optional[set] = None) -> None:
        """Default init of the parameters in ``names`` (all when ``None``): see
        :func:`~mmbackbones.models.layers.vit_init.reset_vit_parameters`."""
        reset_vit_parameters(self, names)

    def init_weights(self):
        if self._deferred_init and not self._is_init:
            self._init_from_checkpoint()
        else:
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
        elif not is_pretrained_init(self.init_cfg) and self.pos_embed is not None:
            # another init_cfg (mmpretrain's ViT configs pass a Kaiming one) does not touch the
            # position embedding: it gets its trunc-normal init, as in mmpretrain
            with torch.no_grad():
                nn.init.trunc_normal_(self.pos_embed, std=.02)

    def _init_from_checkpoint(self) -> None:
        """The Pretrained init of a model whose parameters hold uninitialised memory: the
        checkpoint's tensors become the parameters of the blocks (the reader made them for this
        load alone, so nothing else holds them) instead of being copied into memory touched for
        the first time (ViT-L: 1.2 GB written for nothing). Adopted only once the whole load
        passed the checks (the blocks load after the backbone's checking hooks ran); a tensor of
        another dtype, device or memory layout is copied as usual. Top level, mmengine's
        bookkeeping (the mean of every parameter before and after, to log what changed) is
        skipped: one summary line says what was loaded."""
        adopt = {id(p) for n, p in self.named_parameters() if n in self._pending_init}
        handles = [m.register_load_state_dict_pre_hook(partial(adopt_tensors, adopt=adopt))
                   for m in self.modules() if m is not self and any(
                       id(p) in adopt for p in m._parameters.values() if p is not None)]
        try:
            if hasattr(self, '_params_init_info'):  # inside a model's init_weights()
                super().init_weights()
            else:
                from mmengine.model.weight_init import initialize
                initialize(self, self.init_cfg)
                self._is_init = True
                from mmengine.logging import print_log
                loaded = sum(1 for n, _ in self.named_parameters() if n not in self._pending_init)
                cfg = self.init_cfg[0] if isinstance(self.init_cfg, list) else self.init_cfg
                print_log(f'{type(self).__name__}.init_weights(): {loaded} parameter tensors '
                          f'from {cfg.get("checkpoint")!r}, {len(self._pending_init)} default '
                          f'init', logger='current')
        finally:
            for handle in handles:
                handle.remove()

    def _adapt_pos_embed(self, ckpt: torch.Tensor) -> torch.Tensor:
        """A checkpoint's ``(1, L, C)`` position embedding, made to fit this model
        (:func:`~mmbackbones.models.layers.pos_embed.adapt_pos_embed`), with a log line."""
        from mmengine.logging import print_log
        resized, note = adapt_pos_embed(ckpt, tuple(self.pos_embed.shape), self.num_extra_tokens,
                                        self.patch_resolution, self.interpolate_mode)
        if note:
            print_log(note, logger='current', level=30 if resized is ckpt else 20)
        return resized

    def _load_pre_hook(self, state_dict, prefix, local_metadata, strict, missing_keys,
                       unexpected_keys, error_msgs):
        if self.cls_token is None and not self.with_cls_token:
            # mmseg's with_cls_token=False keeps a class token that never reaches an output
            state_dict.pop(prefix + 'cls_token', None)
        key = prefix + 'pos_embed'
        if key in state_dict and isinstance(state_dict[key], torch.Tensor) and \
                self.pos_embed is not None:
            state_dict[key] = self._adapt_pos_embed(state_dict[key])
        if self._pending_init:
            # committed by _load_post_hook only when the whole load went through: a load that
            # fails (shape mismatch, ...) leaves every parameter pending, so forward refuses
            params = dict(self.named_parameters())
            self._pending_after_load = {
                name for name in self._pending_init
                if not (prefix + name in state_dict
                        and getattr(state_dict[prefix + name], 'shape', None) ==
                        params[name].shape)}

    def _load_post_hook(self, incompatible_keys):
        pending = self.__dict__.pop('_pending_after_load', None)
        if pending is not None:
            self._pending_init = pending

    # ---- freezing -------------------------------------------------------------------------------
    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return [self.patch_embed, *self.layers]

    def _architecture_stages(self) -> int:
        # frozen_stages counts the arch's layers, built or not (layers past max(out_indices)
        # are not built: freezing them is a no-op, as in every other family)
        return self.num_layers

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        super()._freeze_stages()  # patch_embed and layers[0..k-1]
        for module in (self.pre_norm, self.drop_after_pos):
            module.eval()
            for param in module.parameters():
                param.requires_grad = False
        for param in (self.cls_token, self.pos_embed, self.register_tokens):
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
        x, hw = self._embed(x)
        rope = rope_win = None
        if self.rope is not None:
            rope = self.rope(hw, x.device)
            if self.window_block_indexes:  # windowed blocks: the positions within a window
                rope_win = self.rope((self.window_size, self.window_size), x.device)
        outs: Dict[int, torch.Tensor] = {}
        if self.out_origin:
            outs[-1] = self._format_output(x, hw)
        last = self.num_layers - 1
        last_built = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            # a class-token output needs only the class token of the last built layer: its
            # query, its attention output and its MLP (the other tokens serve as keys/values)
            num_queries = 1 if self.out_type == 'cls_token' and i == last_built else None
            extra = (rope_win if layer.window_size else rope, self.num_prefix_tokens, hw)
            if self.with_cp and self.training and x.requires_grad:
                x = torch.utils.checkpoint.checkpoint(layer, x, num_queries, *extra,
                                                      use_reentrant=False)
            else:
                x = layer(x, num_queries, *extra)
            if i == last and self.ln1 is not None:
                x = self.ln1(x)
            if i in self.out_indices:
                outs[i] = self._format_output(x, hw)
        order = ([-1] if self.out_origin else []) + list(self.out_indices)
        return tuple(outs[i] for i in order)

    def _embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Patch embedding, class token, position embedding (resized to the input's grid),
        dropout and pre-norm: ``(B, 1 + Hp * Wp, C)`` tokens and ``(Hp, Wp)``."""
        batch = x.shape[0]
        x, hw = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(batch, -1, -1), x), dim=1)
        pos_embed = self.pos_embed
        if pos_embed is not None:
            if is_tracing() or hw != self.patch_resolution:
                pos_embed = resize_pos_embed(pos_embed, self.patch_resolution, hw,
                                             mode=self.interpolate_mode,
                                             num_extra_tokens=self.num_extra_tokens,
                                             antialias=self.interpolate_antialias)
            x = x + pos_embed
        if self.register_tokens is not None:  # after the class token, without a position
            n = self.num_extra_tokens
            x = torch.cat((x[:, :n], self.register_tokens.expand(batch, -1, -1), x[:, n:]), 1)
        x = self.drop_after_pos(x)
        return self.pre_norm(x), hw

    def _format_output(self, x: torch.Tensor, hw: Tuple[int, int]):
        if self.out_type == 'raw':
            return x
        if self.out_type == 'cls_token':
            return x[:, 0]
        patch_tokens = x[:, self.num_prefix_tokens:]
        if self.out_type == 'featmap':
            # (B, N, C) -> (B, C, Hp, Wp), a view (channels-last memory)
            out = patch_tokens.reshape(x.shape[0], hw[0], hw[1], x.shape[-1]).permute(0, 3, 1, 2)
            return [out, x[:, 0]] if self.output_cls_token else out
        return self.ln2(patch_tokens.mean(dim=1))

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, num_depths)`` of a parameter for layer-wise lr decay: 0 for the stem,
        ``i + 1`` for ``layers.i``, the last depth for the final norms and anything else."""
        num_depths, name = self.num_layers + 2, strip_prefix(param_name, prefix) or ''
        if name in ('cls_token', 'pos_embed', 'register_tokens') or \
                name.startswith(('patch_embed', 'pre_norm')):
            return 0, num_depths
        if name.startswith('layers.') and '.residual.' not in name:
            return int(name.split('.')[1]) + 1, num_depths
        # ViTDet's residual conv blocks: the last depth, as detectron2's get_vit_lr_decay_rate
        return num_depths - 1, num_depths  # final norms, a head, anything else

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_layers={self.num_layers} '
                f'(built {len(self.layers)}), patch_size={self.patch_size}, '
                f'out_type={self.out_type!r}, ' + super().extra_repr())


# ``ViT`` is the same class under a short name.
MODELS.register_module(name='ViT', module=VisionTransformer)
