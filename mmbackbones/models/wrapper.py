"""``WrapperBackbone``: what the wrappers of other libraries' models share.

``TIMMBackbone`` and ``TorchvisionBackbone`` wrap a model built by another library. Both resolve
``norm_layer`` the same way, read output shapes from a forward on the meta device, freeze stage
groups found by name in the wrapped model, and say plainly when the wrapped library refuses an
argument or an input size. This module holds those pieces once; it imports neither timm nor
torchvision.

Output names follow the native families: ``stage{k}`` counts from 1 (the first level a wrapper
returns is ``stage1``), as ``ConvNeXt``/``SwinTransformer`` name theirs.
"""
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .base import BaseBackbone
from .layers.norm import FrozenBatchNorm2d
from .layers.stage_group import StageGroup

FROZEN_BN_NAMES = ('FrozenBN', 'FrozenBatchNorm2d')
# words of a RuntimeError raised deep in a layer because the input is too small or wrongly sized
_INPUT_SIZE_WORDS = ('size', 'shape', 'Kernel', 'dimension', 'match')

# (module names, parameter names) of one stage group; None: nothing to freeze there
StageNames = Optional[Tuple[List[str], List[str]]]


def stage_output_name(index: int) -> str:
    """Name of the output of 0-based level ``index``: ``stage{index + 1}``."""
    return f'stage{index + 1}'


def resolve_norm_layer(norm_layer, kwargs: dict,
                       by_name: Optional[Callable[[str], type]] = None,
                       names_hint: str = '', any_frozen_bn_class: bool = True) -> bool:
    """Resolve the ``norm_layer`` argument of a wrapper.

    Returns ``True`` when the wrapped model's BatchNorms are to be frozen after building
    (``'FrozenBN'``, ``'FrozenBatchNorm2d'`` or a ``FrozenBatchNorm2d`` class, detrex-style);
    otherwise puts the norm class into ``kwargs['norm_layer']`` for the library's builder. A
    name is looked up in mmengine's registry (``'BN'``, ``'SyncBN'``), then with ``by_name``
    (the library's own names, e.g. timm's ``'layernorm2d'``), which raises ``KeyError``,
    ``ValueError`` or ``AssertionError`` for an unknown name. ``any_frozen_bn_class``: another
    library's class named ``FrozenBatchNorm2d`` also means "freeze after building" (timm, whose
    fused norm+act layers take no plain norm class); ``False`` passes it to the builder
    (torchvision's builders take their own ``FrozenBatchNorm2d``).
    """
    if norm_layer is None:
        return False
    if isinstance(norm_layer, str):
        if norm_layer in FROZEN_BN_NAMES:
            return True
        import mmcv.cnn  # noqa: F401 - registers BN, SyncBN, GN, ... in mmengine's root registry
        from mmengine.registry import MODELS as ROOT
        if norm_layer in ROOT.module_dict:
            kwargs['norm_layer'] = ROOT.get(norm_layer)
            return False
        error = None
        if by_name is not None:
            try:
                kwargs['norm_layer'] = by_name(norm_layer)
                return False
            except (KeyError, AssertionError, ValueError) as e:
                error = e
        raise ValueError(f"norm_layer={norm_layer!r} is not a norm layer name: use 'FrozenBN', "
                         f"a name in mmengine's registry ('BN', 'SyncBN', ...){names_hint} or a "
                         f'class') from error
    if isinstance(norm_layer, type) and issubclass(norm_layer, nn.Module):
        if issubclass(norm_layer, FrozenBatchNorm2d) or (
                any_frozen_bn_class and norm_layer.__name__ in FROZEN_BN_NAMES):
            return True  # converting after the build works for fused norm+act layers too
        kwargs['norm_layer'] = norm_layer
        return False
    if callable(norm_layer):
        kwargs['norm_layer'] = norm_layer
        return False
    raise TypeError(f"norm_layer must be None, 'FrozenBN', a norm class or a norm name, got "
                    f'{norm_layer!r}')


def meta_forward(module: nn.Module, inputs: Sequence[torch.Tensor]):
    """``module(*inputs)`` with every parameter and buffer swapped for a meta tensor (nothing
    is computed or allocated; ``inputs`` should be meta tensors too), in eval mode. Raises what
    the forward raises (e.g. an op without a meta kernel)."""
    from torch.func import functional_call
    meta = {name: torch.empty_like(t, device='meta')
            for name, t in list(module.named_parameters()) + list(module.named_buffers())}
    was_training = module.training
    module.eval()
    try:
        return functional_call(module, meta, tuple(inputs), strict=False)
    finally:
        module.train(was_training)


def build_on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` on the meta device (no weights allocated); a model whose ``__init__`` needs
    real tensors is built normally."""
    try:
        with torch.device('meta'):
            return build()
    except Exception:
        return build()


def is_input_size_error(error: BaseException) -> bool:
    """Whether the wrapped model refused the input's size: an ``AssertionError`` (fixed-size
    ViTs) or a shape ``RuntimeError`` deep in a layer (too small for a kernel or a window)."""
    if isinstance(error, AssertionError):
        return True
    return (isinstance(error, RuntimeError) and not isinstance(error, torch.OutOfMemoryError)
            and any(w in str(error) for w in _INPUT_SIZE_WORDS))


def unexpected_keyword(error: BaseException) -> bool:
    """Whether a builder refused an argument it does not take."""
    return isinstance(error, TypeError) and 'unexpected keyword' in str(error)


class WrapperBackbone(BaseBackbone):
    """Base of the wrappers: stage groups by name, input-size errors said plainly.

    A subclass sets ``self._stage_names`` (one ``StageNames`` per group: index 0 the stem,
    index ``k`` what runs up to its ``k``-th level), implements ``wrapped()`` (the module those
    names are relative to) and ``_forward(x)``.
    """

    _stage_names: List[StageNames] = []
    library = 'wrapped'

    def wrapped(self) -> nn.Module:
        raise NotImplementedError

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        root, groups = self.wrapped(), []
        for names in self._stage_names:
            if names is None or not (names[0] or names[1]):
                groups.append(None)
                continue
            groups.append(StageGroup([root.get_submodule(n) for n in names[0]],
                                     [root.get_parameter(n) for n in names[1]]))
        return groups

    def input_size_hint(self, error: BaseException) -> str:
        """Extra advice appended to an input-size error (none by default)."""
        return ''

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        try:
            return self._forward(x)
        except (AssertionError, RuntimeError) as e:
            if not is_input_size_error(e):
                raise
            raise ValueError(f'{self.library} model {self.model_name!r} cannot run on an input '
                             f'of size {tuple(x.shape[2:])}{self.input_size_hint(e)}: '
                             f'{type(e).__name__}: {e}') from e

    def _forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        raise NotImplementedError


def group_names(groups: Iterable[Tuple[List[str], List[str]]]) -> List[StageNames]:
    """Empty groups become ``None`` (nothing to freeze)."""
    return [g if (g[0] or g[1]) else None for g in groups]
