"""Any timm model as a backbone: ``TIMMBackbone`` and ``list_timm_models``.

timm is imported inside the functions that need it, so importing this module (and
``mmbackbones.models``) stays light.

Indices: ``out_indices`` and ``frozen_stages`` count timm's feature levels (``feature_info``):
for ``resnet50`` level 0 is the stem (stride 2) and levels 1..4 are ``layer1..layer4``; for
``convnext_tiny`` levels 0..3 are ``stages.0..3``; for a ViT level ``i`` is block ``i``. Outputs
are named ``stage{i + 1}`` (1-based, like the native families: ``timm.convnext_tiny`` and
``ConvNeXt`` both name their four maps ``stage1..stage4``).

A config can also name any timm model directly: ``dict(type='timm.convnext_tiny',
out_indices=(1, 2, 3))`` is ``TIMMBackbone(model_name='convnext_tiny', out_indices=(1, 2, 3))``
(see ``mmbackbones.registry``).
"""
import difflib
import os
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...registry import MODELS
from ...utils.optional import require
from ...utils.validation import (check_choice, check_frozen_stages, check_positive_int, check_rate,
                                 normalize_out_indices)
from ..layers.norm import FrozenBatchNorm2d
from ..wrapper import (FROZEN_BN_NAMES, WrapperBackbone, build_on_meta, meta_forward,  # noqa: F401
                       resolve_norm_layer, stage_output_name, unexpected_keyword)


# ----- helpers shared with the registry and the CLI ----------------------------------------------
def list_timm_models(pattern: Optional[str] = None, pretrained: bool = False) -> List[str]:
    """Names of timm models, optionally filtered by a shell-style ``pattern``.

    A pattern without wildcards matches as a substring (``'convnext'`` is ``'*convnext*'``).
    """
    timm = require('timm', 'listing timm models')
    if pattern and not any(c in pattern for c in '*?['):
        pattern = f'*{pattern}*'
    return timm.list_models(pattern or '', pretrained=pretrained)


def close_timm_names(name: str, n: int = 5) -> List[str]:
    """timm model names close to ``name`` (for error messages)."""
    timm = require('timm', 'TIMMBackbone')
    names = timm.list_models()
    close = difflib.get_close_matches(name, names, n=max(n, 20), cutoff=0.6)
    # difflib breaks ties by reverse alphabetical order ('..._b8' before '..._b0'): re-rank
    ratio = {c: difflib.SequenceMatcher(None, name, c).ratio() for c in close}
    close = sorted(close, key=lambda c: (-round(ratio[c], 6), c))[:n]
    if len(close) < n:  # a prefix such as 'convnext' matches no whole name closely enough
        close += [m for m in names if m.startswith(name) and m not in close][:n - len(close)]
    return close


def is_timm_model(name: str) -> bool:
    """Whether timm can build ``name`` (an architecture, optionally with a ``.tag``)."""
    timm = require('timm', 'TIMMBackbone')
    return isinstance(name, str) and bool(name) and timm.is_model(name)


def unknown_timm_model_message(name: str) -> str:
    close = close_timm_names(name)
    message = f'{name!r} is not a timm model.'
    if close:
        message += ' Did you mean ' + ', '.join(repr(c) for c in close) + '?'
    return message + (' (`mmbackbones list --timm PATTERN` or `list_timm_models(PATTERN)` '
                      'lists them)')


def _to_frozen(bn: _BatchNorm, frozen_cls: type) -> nn.Module:
    """``bn`` as an instance of the user's frozen-norm class (detectron2's ``FrozenBatchNorm2d``
    has ``convert_frozen_batchnorm``, as ours does), holding the same statistics."""
    convert = getattr(frozen_cls, 'convert_frozen_batchnorm', None)
    if convert is not None:
        frozen = convert(bn)
        if isinstance(frozen, frozen_cls):
            return frozen
    frozen = frozen_cls(bn.num_features, eps=bn.eps)
    with torch.no_grad():
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            own, theirs = getattr(frozen, name, None), getattr(bn, name, None)
            if own is not None and theirs is not None:
                own.copy_(theirs.detach())
    return frozen


def freeze_batch_norms(module: nn.Module, frozen_cls: Optional[type] = None) -> nn.Module:
    """Replace every BatchNorm by a frozen one holding the same statistics.

    timm's fused ``BatchNormAct2d`` becomes timm's ``FrozenBatchNormAct2d`` (its activation and
    drop are kept: replacing it by a plain FrozenBN would silently drop the activation); every
    other BatchNorm becomes ``frozen_cls`` when given (the class the user passed as
    ``norm_layer``, e.g. detectron2's ``FrozenBatchNorm2d``, so ``isinstance`` checks against
    it hold), else our ``FrozenBatchNorm2d``.
    """
    from timm.layers import BatchNormAct2d, FrozenBatchNormAct2d
    try:
        from timm.layers.norm_act import SyncBatchNormAct
        fused = (BatchNormAct2d, SyncBatchNormAct)
    except ImportError:  # pragma: no cover - older timm
        fused = (BatchNormAct2d, )
    if isinstance(module, fused):
        frozen = FrozenBatchNormAct2d(module.num_features, eps=module.eps)
        if module.affine:
            frozen.weight.copy_(module.weight.detach())
            frozen.bias.copy_(module.bias.detach())
        frozen.running_mean.copy_(module.running_mean)
        frozen.running_var.copy_(module.running_var)
        frozen.drop, frozen.act = module.drop, module.act
        return frozen
    if isinstance(module, _BatchNorm):
        if frozen_cls is not None and not issubclass(frozen_cls, FrozenBatchNorm2d):
            return _to_frozen(module, frozen_cls)
        return FrozenBatchNorm2d.convert_frozen_batchnorm(module)
    for name, child in module.named_children():
        converted = freeze_batch_norms(child, frozen_cls)
        if converted is not child:
            setattr(module, name, converted)
    return module


def _resolve_module(root: nn.Module, name: str) -> Optional[str]:
    """The name under ``root`` of the module timm's feature_info calls ``name``.

    timm's feature wrappers flatten the first level of Sequential containers
    (``stages.0`` -> ``stages_0``) or keep the model under ``.model`` (the getter wrapper).
    """
    flat = name.replace('.', '_', 1)
    for candidate in (name, flat, f'model.{name}', f'model.{flat}'):
        try:
            root.get_submodule(candidate)
            return candidate
        except AttributeError:
            continue
    return None


def stage_groups(root: nn.Module, level_modules: Sequence[Optional[str]]
                 ) -> List[Tuple[List[str], List[str]]]:
    """Split ``root`` into ``len(level_modules)`` groups of (module names, parameter names).

    Group ``i`` holds what runs after level ``i - 1``'s module up to and including level
    ``i``'s module, in registration order (timm registers modules in execution order).
    Containers holding a level's module are opened; their own parameters (a ViT's
    ``cls_token``, ``pos_embed``) join the group current where the container starts. Modules
    after the last level (a head the wrapper kept) belong to no group.
    """
    targets = {name: i for i, name in enumerate(level_modules) if name is not None}
    groups = [([], []) for _ in level_modules]
    state = {'group': 0}

    def visit(prefix: str, module: nn.Module) -> None:
        group = state['group']
        if group < len(groups):
            groups[group][1].extend(prefix + n for n, _ in module.named_parameters(recurse=False))
        for name, child in module.named_children():
            full = prefix + name
            group = state['group']
            if full in targets:
                index = targets[full]
                if index >= group:
                    groups[index][0].append(full)
                    state['group'] = index + 1
                    continue
            if any(t.startswith(full + '.') for t in targets):
                visit(full + '.', child)
            elif group < len(groups):
                groups[group][0].append(full)

    visit('', root)
    return groups


class _ForwardFeatures(nn.Module):
    """Calls ``forward_features`` of a timm model (so ``functional_call`` can run it)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_features(x)


# ----- the backbone ----------------------------------------------------------------------------
@MODELS.register_module()
class TIMMBackbone(WrapperBackbone):
    """A timm model as a multi-scale backbone.

    Args:
        model_name (str): any name of ``timm.list_models()``, optionally with a pretrained tag
            (``'convnext_tiny.fb_in22k'``).
        features_only (bool | None): ``True`` returns feature maps of several levels (timm's
            ``features_only``; ViT-style models go through ``forward_intermediates``, maps are
            ``(N, C, H, W)``). ``False`` returns the model's final features as a one-element
            tuple: the unpooled ``(N, C, H/s, W/s)`` map for CNNs (the classifier and the
            global pooling are removed, as mmpretrain's TIMMBackbone does), the pooled ``(N, C)``
            features (stride ``None``) for token models such as ViTs and Swin. ``None``
            (default): ``True`` when ``out_indices`` is given, else ``False`` (mmpretrain's
            default: one final map).
        pretrained (bool): load timm's pretrained weights (Hugging Face Hub or URL).
        checkpoint_path (str): a local timm checkpoint (``.pth``/``.safetensors`` of the full
            timm model) to load instead of downloading; same as
            ``pretrained=True, pretrained_cfg_overlay=dict(file=checkpoint_path)``. It is loaded
            into the full model before the feature wrapper is built, so it works with
            ``features_only`` (the classifier is dropped, the rest loads strictly).
        in_channels (int): input channels (timm's ``in_chans``).
        out_indices (int | Sequence[int] | None): timm feature levels to return, in this order.
            ``None``: timm's default (every level for CNNs, the last 3 blocks for ViTs).
        output_stride (int | None): timm's ``output_stride`` (dilated last stages), e.g. 8/16.
        norm_layer (str | type | None): ``'FrozenBN'`` (or a ``FrozenBatchNorm2d`` class: ours,
            detectron2's, timm's) freezes every BatchNorm after building, detrex-style, into
            that class (ours for the names; timm's fused norm+act layers become timm's
            ``FrozenBatchNormAct2d``, keeping their activation); another class, or a name in
            mmengine's registry (``'SyncBN'``) or timm's (``'layernorm2d'``), is passed to timm
            as ``norm_layer``.
        frozen_stages (int): ``-1`` nothing; ``k`` freezes the modules up to and including the
            module of feature level ``k`` (the index space of ``out_indices``), their
            parameters get ``requires_grad=False`` and their norms stay in eval mode.
        norm_eval (bool): keep every BatchNorm in eval mode during training.
        init_cfg (dict, optional): mmengine init config.
        **kwargs: passed to ``timm.create_model`` (``drop_path_rate``, ``dynamic_img_size``,
            ``pretrained_cfg_overlay``, ...).

    The timm module is ``self.timm_model`` (mmpretrain's name, so its checkpoints load).
    Input ``(N, in_channels, H, W)``; output a tuple of ``(N, C_i, H / s_i, W / s_i)``.
    """

    def __init__(self,
                 model_name: str,
                 features_only: Optional[bool] = None,
                 pretrained: bool = False,
                 checkpoint_path: Optional[str] = None,
                 in_channels: int = 3,
                 out_indices=None,
                 output_stride: Optional[int] = None,
                 norm_layer=None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg=None,
                 **kwargs):
        super().__init__(init_cfg=init_cfg)
        if features_only is None:
            features_only = out_indices is not None
        self._check_arguments(model_name, features_only, pretrained, norm_eval, in_channels,
                              output_stride, out_indices, kwargs)
        self.in_channels = in_channels
        self.model_name = model_name
        self.features_only = features_only

        create_kwargs = dict(kwargs)
        pretrained, local_file = self._resolve_pretrained(pretrained, checkpoint_path,
                                                          create_kwargs)
        freeze_bn = self._resolve_norm_layer(norm_layer, create_kwargs)
        frozen_cls = norm_layer if freeze_bn and isinstance(norm_layer, type) else None
        if output_stride is not None:
            create_kwargs['output_stride'] = output_stride
        create_kwargs['in_chans'] = in_channels

        # timm returns features in level order; we pass sorted indices and reorder in forward.
        requested = self._check_out_indices_type(out_indices)
        if requested is not None and any(i < 0 for i in requested):
            requested = normalize_out_indices(requested, self._num_levels(create_kwargs))
        if features_only:
            create_kwargs['features_only'] = True
            if requested is not None:
                create_kwargs['out_indices'] = tuple(sorted(set(requested)))

        self.timm_model = self._create(pretrained, local_file, requested, create_kwargs)
        if freeze_bn:
            self.timm_model = freeze_batch_norms(self.timm_model, frozen_cls)
        if pretrained:
            self._is_init = True  # weights came from timm; init_weights() must not overwrite

        levels = self._levels()
        if features_only:
            self._set_feature_outputs(requested, levels)
        else:
            self._set_final_output(levels, in_channels)

        # timm's list/hook wrappers hand channels-last models' maps (Swin, MambaOut) through
        # as (N, H, W, C); the getter wrapper already asks for NCHW.
        fmt = getattr(self.timm_model, 'output_fmt', 'NCHW')
        self._nhwc = (features_only and getattr(fmt, 'value', fmt) == 'NHWC'
                      and type(self.timm_model).__name__ != 'FeatureGetterNet')

        self._stage_names = stage_groups(
            self.timm_model, [_resolve_module(self.timm_model, lv['module']) for lv in levels])
        self.frozen_stages = check_frozen_stages(frozen_stages, len(levels) - 1)
        self.norm_eval = norm_eval
        self._freeze_stages()

    @staticmethod
    def _check_arguments(model_name, features_only, pretrained, norm_eval, in_channels,
                         output_stride, out_indices, kwargs: dict) -> None:
        """Refuse bad arguments before timm sees them (messages name them); checks the rates
        among ``kwargs`` in place (timm passes them on unchecked)."""
        if not isinstance(model_name, str) or not model_name:
            raise TypeError(f'model_name must be a timm model name (str), got {model_name!r}')
        for name, value in (('features_only', features_only), ('pretrained', pretrained),
                            ('norm_eval', norm_eval)):
            if not isinstance(value, bool):
                raise TypeError(f'{name} must be a bool, got {value!r} ({type(value).__name__})')
        check_positive_int('in_channels', in_channels)
        if output_stride is not None:
            check_positive_int('output_stride', output_stride)
            check_choice('output_stride', output_stride, (8, 16, 32))
        if not features_only and out_indices is not None:
            raise ValueError(f'out_indices={out_indices!r} needs features_only=True; with '
                             'features_only=False the model returns its final features only')
        for rate in ('drop_rate', 'drop_path_rate', 'attn_drop_rate', 'proj_drop_rate',
                     'pos_drop_rate', 'drop_block_rate'):
            if kwargs.get(rate) is not None:  # timm passes them on unchecked
                kwargs[rate] = check_rate(rate, kwargs[rate])
        if 'freeze_at' in kwargs:  # else timm's class would be blamed for an unknown argument
            at = kwargs['freeze_at']
            meant = at - 1 if isinstance(at, int) and not isinstance(at, bool) else 'freeze_at - 1'
            raise TypeError(f"TIMMBackbone takes frozen_stages, not freeze_at (detectron2's "
                            f'name): freeze_at={at!r} is frozen_stages={meant} '
                            f'(mmbackbones.detrex.TimmBackbone takes freeze_at)')
        for reserved in ('features_only', 'in_chans', 'num_classes', 'model_name'):
            if reserved in kwargs:
                raise TypeError(f'{reserved!r} is set by TIMMBackbone; remove it from the config'
                                f' (use in_channels / features_only)')
        if not is_timm_model(model_name):
            raise ValueError(f'model_name: {unknown_timm_model_message(model_name)}')

    def _set_feature_outputs(self, requested, levels) -> None:
        """``features_only=True``: the requested levels (all of timm's by default), in order."""
        if requested is None:
            requested = tuple(self.timm_model.feature_info.out_indices)
        self.out_indices = normalize_out_indices(tuple(requested), len(levels))
        order = sorted(self.out_indices)
        self._perm = None if order == list(self.out_indices) else [
            order.index(i) for i in self.out_indices]
        self._set_outputs([levels[i]['num_chs'] for i in self.out_indices],
                          [levels[i]['reduction'] for i in self.out_indices],
                          [stage_output_name(i) for i in self.out_indices])

    def _set_final_output(self, levels, in_channels: int) -> None:
        """``features_only=False`` (mmpretrain's default): one final output. CNNs: the unpooled
        final map (N, C, H/s, W/s), as mmpretrain's TIMMBackbone returns; token models (ViTs):
        the pooled features (N, C), stride None."""
        self.out_indices = (len(levels) - 1, ) if levels else (0, )
        self._perm = None
        self._spatial = self._final_features_are_spatial(in_channels)
        self._drop_classifier()
        if self._spatial:
            self._set_outputs([self.timm_model.num_features], [levels[-1]['reduction']],
                              ['final'])
        else:
            channels = (getattr(self.timm_model, 'head_hidden_size', None)
                        or self.timm_model.num_features)
            self._set_outputs([channels], [None], ['final'])

    # Used by the 'timm' registry scope (mmbackbones.registry), which must not import timm.
    is_timm_model = staticmethod(is_timm_model)
    unknown_model_message = staticmethod(unknown_timm_model_message)

    # ----- construction helpers ----------------------------------------------------------------
    @staticmethod
    def _check_out_indices_type(out_indices) -> Optional[Tuple[int, ...]]:
        if out_indices is None:
            return None
        if isinstance(out_indices, int) and not isinstance(out_indices, bool):
            return (out_indices, )
        if isinstance(out_indices, (list, tuple)) and out_indices and all(
                isinstance(i, int) and not isinstance(i, bool) for i in out_indices):
            if len(set(out_indices)) != len(out_indices):
                raise ValueError(f'out_indices must not repeat a level, got {out_indices!r}')
            return tuple(out_indices)
        raise TypeError(f'out_indices must be None, an int or a non-empty list/tuple of ints '
                        f'(timm feature levels), got {out_indices!r}')

    def _resolve_pretrained(self, pretrained, checkpoint_path, create_kwargs):
        overlay = create_kwargs.get('pretrained_cfg_overlay')
        if overlay is not None and not isinstance(overlay, dict):
            raise TypeError(f'pretrained_cfg_overlay must be a dict, got {overlay!r}')
        local_file = None
        if checkpoint_path:
            if not isinstance(checkpoint_path, (str, os.PathLike)):
                raise TypeError(f'checkpoint_path must be a path (str), got {checkpoint_path!r}')
            local_file = os.fspath(checkpoint_path)
            # Loaded by timm into the full model, before the feature wrapper renames modules.
            create_kwargs['pretrained_cfg_overlay'] = dict(overlay or {}, file=local_file)
            pretrained = True
        elif overlay and overlay.get('file'):
            local_file = os.fspath(overlay['file'])
            if not pretrained:
                raise ValueError(f'pretrained_cfg_overlay=dict(file={local_file!r}) is only read'
                                 ' with pretrained=True (or pass checkpoint_path=...)')
        if local_file is not None and not os.path.isfile(local_file):
            raise FileNotFoundError(f'checkpoint file for timm model {self.model_name!r} not '
                                    f'found: {local_file}')
        return pretrained, local_file

    @staticmethod
    def _resolve_norm_layer(norm_layer, create_kwargs) -> bool:
        """Returns whether BatchNorms are frozen after building; else sets timm's norm_layer."""
        from timm.layers import get_norm_layer
        return resolve_norm_layer(norm_layer, create_kwargs, by_name=get_norm_layer,
                                  names_hint=", a timm norm name ('batchnorm', 'layernorm2d')")

    def _num_levels(self, create_kwargs) -> int:
        """Number of feature levels, from a model built on the meta device (no weights)."""
        import timm
        kwargs = {k: v for k, v in create_kwargs.items()
                  if k not in ('pretrained_cfg_overlay', 'features_only', 'out_indices')}
        model = build_on_meta(
            lambda: timm.create_model(self.model_name, pretrained=False, **kwargs))
        info = getattr(model, 'feature_info', None)
        if not info:
            raise ValueError(f'timm model {self.model_name!r} has no feature_info: it cannot '
                             'return multi-level features; use features_only=False')
        return len(info)

    def _create(self, pretrained, local_file, requested, create_kwargs):
        import timm
        try:
            return timm.create_model(self.model_name, pretrained=pretrained, **create_kwargs)
        except OSError as e:
            if pretrained and local_file is None:
                raise RuntimeError(self._download_message(e)) from e
            raise
        except Exception as e:
            if requested is not None and self.features_only:
                # An out-of-range level surfaces as an IndexError deep in timm: say it plainly.
                normalize_out_indices(tuple(requested), self._num_levels(create_kwargs))
            if unexpected_keyword(e):
                raise TypeError(f'timm model {self.model_name!r} does not accept an argument '
                                f'given to TIMMBackbone: {e}') from e
            if self.features_only and 'features_only not implemented' in str(e):
                raise ValueError(f'timm model {self.model_name!r} does not support '
                                 f'features_only=True ({e}); use features_only=False') from e
            if isinstance(e, (AssertionError, KeyError)):  # timm refusing an argument's value
                given = ', '.join(k for k in create_kwargs if k not in ('in_chans', ))
                raise ValueError(f'timm could not build {self.model_name!r} with the arguments '
                                 f'given ({given}, in_channels): {type(e).__name__}: {e}') from e
            raise

    def _download_message(self, error: Exception) -> str:
        from timm.models import get_pretrained_cfg
        source = ''
        try:
            cfg = get_pretrained_cfg(self.model_name)
        except Exception:  # unknown tag: timm's own error says more
            cfg = None
        if cfg is not None:
            where = [f'Hugging Face Hub repo {cfg.hf_hub_id!r}' if cfg.hf_hub_id else '',
                     f'URL {cfg.url}' if cfg.url else '']
            source = ' from ' + ' or '.join(w for w in where if w)
        return (f'Could not download pretrained weights for timm model {self.model_name!r}'
                f'{source}: {type(error).__name__}: {error}\n'
                f'Without network access, load a local file instead: '
                f"TIMMBackbone(model_name={self.model_name!r}, checkpoint_path='/path/to/"
                f"weights.safetensors') or pretrained=True, pretrained_cfg_overlay=dict(file="
                f"'/path/to/weights.pth') (in a config: dict(type='timm.{self.model_name}', "
                f"checkpoint_path=...)); or copy the Hugging Face cache to this machine "
                f'(HF_HOME) and set HF_HUB_OFFLINE=1.')

    def _final_features_are_spatial(self, in_channels: int) -> bool:
        """Whether ``forward_features`` gives an (N, C, H, W) map, from a forward on the meta
        device (parameters swapped for meta tensors: nothing is computed or allocated)."""
        model = self.timm_model
        if not (self._levels() and hasattr(model, 'forward_features')):
            return False
        size = tuple(getattr(model, 'pretrained_cfg', {}).get('input_size', (3, 224, 224)))[1:]
        try:
            out = meta_forward(_ForwardFeatures(model),
                               (torch.empty(1, in_channels, *size, device='meta'), ))
        except Exception:  # an op without a meta kernel: the pooled output is always valid
            return False
        # channels-last maps (Swin) have C last: they count as token-like and get pooled
        return isinstance(out, torch.Tensor) and out.dim() == 4 and \
            out.shape[1] == model.num_features

    def _drop_classifier(self) -> None:
        """features_only=False: remove the classifier; for a spatial output also the global
        pooling (mmpretrain's ``reset_classifier(0, '')``), so ``timm_model(x)`` is the final
        map. Token models keep their pooling (their output is the pooled vector)."""
        if not hasattr(self.timm_model, 'reset_classifier'):
            return
        if self._spatial:
            try:
                self.timm_model.reset_classifier(0, '')
                return
            except (AssertionError, ValueError, TypeError, KeyError):
                pass  # a model whose pooling cannot be removed: forward_features is used anyway
        self.timm_model.reset_classifier(0)

    def _levels(self) -> List[Dict]:
        info = getattr(self.timm_model, 'feature_info', None)
        if info is None:
            return []
        return list(info.info if hasattr(info, 'info') else info)

    # ----- contract ----------------------------------------------------------------------------
    library = 'timm'

    def wrapped(self) -> nn.Module:
        """The module ``_stage_names`` refers to. Stage group ``i`` (``stem_and_stages()[i]``):
        the modules up to and including feature level ``i`` (0: the stem for ResNets; for
        other models level 0 includes the stem)."""
        return self.timm_model

    def input_size_hint(self, error: BaseException) -> str:
        return (' (a fixed-size model: build it with dynamic_img_size=True, if it has that '
                'option, to accept other sizes)' if "doesn't match model" in str(error) else '')

    def _forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if not self.features_only:
            if self._spatial:
                return (self.timm_model.forward_features(x), )
            return (self.timm_model(x), )
        outs = self.timm_model(x)
        if self._nhwc:
            outs = [out.permute(0, 3, 1, 2) for out in outs]
        if self._perm is not None:
            return tuple(outs[i] for i in self._perm)
        return tuple(outs)
