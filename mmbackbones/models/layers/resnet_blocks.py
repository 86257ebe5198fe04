"""Residual blocks of the ResNet family and the builder of one residual stage.

Parameter names follow mmpretrain's ``BasicBlock`` / ``Bottleneck`` / ``ResLayer`` exactly
(``conv1``, ``bn1``, ..., ``downsample.0`` conv and ``downsample.1`` norm, or with ``avg_down``
``downsample.0`` pool, ``.1`` conv, ``.2`` norm), so mmpretrain/mmcls checkpoints load unchanged.
The norm layers are named by mmcv's ``build_norm_layer`` (``bn1`` for BN/SyncBN/FrozenBN, ``gn1``
for GN). These are also mmdet's/mmseg's names, including their extras:

* ``dcn``: the bottleneck's 3x3 conv is mmcv's deformable conv (``dict(type='DCN'|'DCNv2',
  deform_groups=1)``, built by ``build_conv_layer``; keys ``conv2.weight``,
  ``conv2.conv_offset.*``). It needs the full mmcv (compiled ops); with mmcv-lite the block
  raises an ``ImportError`` saying so.
* ``plugins``: mmdet's ``[dict(cfg=dict(type='ContextBlock', ...), position='after_conv3'),
  ...]``, built by mmcv's ``build_plugin_layer`` and named by it (``context_block``,
  ``gen_attention_block``, ``nonlocal_block`` + ``postfix``); ``after_conv{k}`` runs after the
  ``k``-th conv's norm (and ReLU, except for the last conv), before the residual addition.

One ``Bottleneck`` covers ResNet (``groups=1``), ResNeXt (``groups``, ``width_per_group``) and
RegNet (``expansion=1``, ``base_channels`` = stage width) the way mmpretrain's ResNeXt bottleneck
does: the middle width is ``out_channels // expansion`` for ``groups=1`` and
``groups * width_per_group * (out_channels // expansion) // base_channels`` otherwise (mmdet's
``floor(planes * base_width / base_channels) * groups`` is the same number whenever it is
defined here).

Each block declares ``conv_norm_pairs()`` so ``layers.fuse.fuse_conv_bn`` can fold its eval-mode
norms into the convs; once every norm of a block is folded (``after_fuse``), its eval forward
runs conv+ReLU and conv+add+ReLU as single kernels where the platform has them.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from .mmcv_bricks import build_activation_layer, build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import nn

from ...utils.validation import check_choice, check_positive_int
from .drop import DropPath
from .fuse import conv_add_relu, conv_relu

STYLES = ('pytorch', 'caffe')
PLUGIN_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')
DCN_TYPES = ('DCN', 'DCNv2')
FULL_MMCV_HINT = ("mmcv's deformable convolution (mmcv.ops) needs the full mmcv with compiled "
                  "ops, not mmcv-lite: `pip uninstall mmcv-lite && mim install 'mmcv>=2.0.0,"
                  "<2.2.0'` (or pip install the mmcv wheel matching your torch/CUDA)")


def _drop_path_or_identity(rate: float) -> nn.Module:
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate < 1.0:
        raise ValueError(f'drop_path_rate must be a float in [0, 1), got {rate!r}')
    # An Identity (no module call cost worth mentioning, nothing in the state dict) when unused.
    return DropPath(float(rate)) if rate > 1e-5 else nn.Identity()


def check_dcn(dcn: Optional[dict]) -> Optional[dict]:
    """mmdet's ``dcn`` dict without ``fallback_on_stride``, validated; ``None`` stays ``None``.

    ``fallback_on_stride=True`` is refused: mmdet pops it from the shared dict in the first block
    it builds, so only that one block falls back, which is not a meaning worth copying.
    """
    if dcn is None:
        return None
    if not isinstance(dcn, dict) or dcn.get('type') not in DCN_TYPES:
        raise ValueError(f'dcn must be None or an mmcv deformable conv config dict with type in '
                         f'{list(DCN_TYPES)} (e.g. dict(type=\'DCN\', deform_groups=1)), got '
                         f'{dcn!r}')
    dcn = dict(dcn)
    if dcn.pop('fallback_on_stride', False):
        raise ValueError('dcn fallback_on_stride=True is not supported (mmdet applies it to one '
                         'block only); use fallback_on_stride=False or leave that stage out of '
                         'stage_with_dcn')
    return dcn


def build_dcn_conv(dcn: dict, in_channels: int, out_channels: int, **kwargs) -> nn.Module:
    """mmcv's deformable conv from a checked ``dcn`` dict; a clear ``ImportError`` without the
    full mmcv (its ``DCN``/``DCNv2`` are registered by ``mmcv.ops``)."""
    try:
        import mmcv.ops  # noqa: F401 - registers DCN / DCNv2 in mmcv's MODELS
    except ImportError as err:
        raise ImportError(f'dcn={dcn!r}: {FULL_MMCV_HINT} ({err})') from None
    return build_conv_layer(dcn, in_channels, out_channels, **kwargs)


def check_plugins(plugins: Optional[Sequence[dict]], name: str = 'plugins') -> List[dict]:
    """Validate mmdet's block plugin dicts (``cfg``, ``position``, optional ``stages``)."""
    if plugins is None:
        return []
    if not isinstance(plugins, (list, tuple)):
        raise TypeError(f'{name} must be a list of dicts with keys cfg, position (and stages), '
                        f'got {plugins!r}')
    for plugin in plugins:
        if not isinstance(plugin, dict) or not isinstance(plugin.get('cfg'), dict):
            raise ValueError(f'each of {name} must be a dict with a cfg dict (the mmcv plugin '
                             f'layer config), got {plugin!r}')
        unknown = sorted(set(plugin) - {'cfg', 'position', 'stages'})
        if unknown:
            raise KeyError(f'{name} entry {plugin!r}: unknown keys {unknown}; allowed: cfg, '
                           f'position, stages')
        check_choice(f'{name} position', plugin.get('position'), PLUGIN_POSITIONS)
    return [dict(p) for p in plugins]


def stage_dcn_and_plugins(num_stages: int, dcn: Optional[dict] = None,
                          stage_with_dcn: Sequence[bool] = (False, False, False, False),
                          plugins: Optional[Sequence[dict]] = None) -> List[dict]:
    """Per stage, the ``dict(dcn=..., plugins=[...])`` its blocks get, with mmdet's meanings:
    ``dcn`` goes to the stages flagged in ``stage_with_dcn`` (one bool per stage; ignored, as
    in mmdet, when ``dcn`` is None); a plugin goes to every stage, or to those flagged in its
    ``stages`` (one bool per stage)."""
    dcn = check_dcn(dcn)
    if dcn is not None:
        if not isinstance(stage_with_dcn, (list, tuple)) or len(stage_with_dcn) != num_stages \
                or not all(isinstance(f, bool) for f in stage_with_dcn):
            raise ValueError(f'stage_with_dcn must be {num_stages} bools (one per stage, '
                             f'num_stages={num_stages}), got {stage_with_dcn!r}')
    plugins = check_plugins(plugins)
    for plugin in plugins:
        stages = plugin.get('stages')
        if stages is not None and (not isinstance(stages, (list, tuple)) or
                                   len(stages) != num_stages):
            raise ValueError(f'plugins stages must be {num_stages} bools (one per stage, '
                             f'num_stages={num_stages}), got {stages!r} in {plugin!r}')
    out = []
    for i in range(num_stages):
        stage_plugins = [{k: v for k, v in p.items() if k != 'stages'} for p in plugins
                         if p.get('stages') is None or p['stages'][i]]
        out.append(dict(dcn=dcn if dcn is not None and stage_with_dcn[i] else None,
                        plugins=stage_plugins or None))
    return out


def _norm_at(index: int) -> Tuple[property, property]:
    """Properties for the norm of a block's ``index``-th conv step and its name (``bn1``; for a
    conv that applies its own norm, detectron2's, ``conv1.norm``)."""
    def name(self) -> str:
        conv_name, norm_name = self._step_names[index]
        return norm_name or f'{conv_name}.norm'

    return property(lambda self: self.get_submodule(name(self))), property(name)


class ResidualBlockBase(BaseModule):
    """What every residual block shares (ours, and detectron2's in ``integrations.detectron2``):
    conv steps registered in order (each a conv, then its norm unless the conv applies its own),
    optional plugins after each, the shortcut (named ``downsample`` here, ``shortcut`` in
    detectron2), drop path, gradient checkpointing and the folded deploy forward. Subclasses call
    :meth:`_init_common`, build their convs with :meth:`_add_conv_norm` (or :meth:`_add_step`)
    and end with :meth:`_finish`."""

    expansion = 1
    _folded = False  # set by after_fuse(): norms folded into the convs

    def _init_common(self, in_channels, out_channels, stride, dilation, downsample, style,
                     with_cp, conv_cfg, norm_cfg, act_cfg, drop_path_rate,
                     shortcut_name: str = 'downsample') -> None:
        check_positive_int('in_channels', in_channels)
        check_positive_int('out_channels', out_channels)
        check_positive_int('stride', stride)
        check_positive_int('dilation', dilation)
        check_choice('style', style, STYLES)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.dilation, self.style = stride, dilation, style
        self.with_cp = with_cp
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg
        self.norm_names: List[str] = []
        self._step_names: List[Tuple[str, str]] = []  # (conv, norm or '') per step
        # per conv: the plugin module names that run after it
        self._plugins_after: List[Tuple[str, ...]] = []
        self._act_cfg, self._drop_path_rate = act_cfg, drop_path_rate
        self._shortcut_name = shortcut_name
        if shortcut_name == 'downsample':
            self._shortcut = [downsample]  # registered by _finish(), after the convs (mmdet's)
        else:  # detectron2 registers its shortcut before the convs
            self._shortcut = []
            setattr(self, shortcut_name, downsample)

    def _add_step(self, conv_name: str, conv: nn.Module, norm_name: str = '',
                  norm: Optional[nn.Module] = None) -> None:
        """One conv step; ``norm_name``/``norm`` empty for a conv that applies its own norm."""
        self.add_module(conv_name, conv)
        if norm is not None:
            self.add_module(norm_name, norm)
            self.norm_names.append(norm_name)
        self._step_names.append((conv_name, norm_name if norm is not None else ''))
        self._plugins_after.append(())

    def _add_conv_norm(self, conv: nn.Module, channels: int) -> None:
        index = len(self._step_names) + 1
        norm_name, norm = build_norm_layer(self.norm_cfg, channels, postfix=index)
        self._add_step(f'conv{index}', conv, norm_name, norm)

    def _finish(self, plugins: Sequence[dict], channels_after: Sequence[int]) -> None:
        """Activation, shortcut, drop path and the plugins (``channels_after[k]`` channels after
        conv ``k + 1``), registered in mmdet's order."""
        self.relu = build_activation_layer(self._act_cfg)
        if self._shortcut:
            self.downsample = self._shortcut.pop()
        del self._shortcut
        self.drop_path = _drop_path_or_identity(self._drop_path_rate)
        self.plugins = check_plugins(plugins)
        for k, channels in enumerate(channels_after):
            position = f'after_conv{k + 1}'
            names = []
            for plugin in (p for p in self.plugins if p['position'] == position):
                from mmcv.cnn import build_plugin_layer
                cfg = dict(plugin['cfg'])
                name, layer = build_plugin_layer(cfg, in_channels=channels,
                                                 postfix=cfg.pop('postfix', ''))
                if name in self._modules:
                    raise ValueError(f'plugins: two {name!r} layers in one block; give them '
                                     f'different cfg postfix values')
                self.add_module(name, layer)
                names.append(name)
            self._plugins_after[k] = tuple(names)
        self.with_plugins = bool(self.plugins)
        # (conv name, norm name or '', plugin names) per conv, in forward order
        self._steps = tuple((conv_name, norm_name, self._plugins_after[k])
                            for k, (conv_name, norm_name) in enumerate(self._step_names))

    # mmcv's names for the k-th norm and its attribute name (norm1, norm1_name, ...)
    norm1, norm1_name = _norm_at(0)
    norm2, norm2_name = _norm_at(1)

    @property
    def last_norm(self) -> nn.Module:
        """The norm closing the residual branch (zeroed by ``zero_init_residual``): the last
        step's norm, or the one its conv applies (detectron2's ``convK.norm``)."""
        conv_name, norm_name = self._step_names[-1]
        return self.get_submodule(norm_name or f'{conv_name}.norm')

    def conv_norm_pairs(self) -> List[Tuple[str, str]]:
        return [(conv, norm) for conv, norm in self._step_names if norm]

    def after_fuse(self) -> None:
        self._folded = (not self.with_plugins and type(self.relu) is nn.ReLU
                        and all(isinstance(self._modules[n], nn.Identity)
                                for n in self.norm_names))

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        modules = self._modules
        out = x
        last = len(self._steps) - 1
        for k, (conv_name, norm_name, plugin_names) in enumerate(self._steps):
            out = modules[conv_name](out)
            if norm_name:
                out = modules[norm_name](out)
            if k < last:
                out = self.relu(out)
            for name in plugin_names:
                out = modules[name](out)
        shortcut = modules.get(self._shortcut_name)
        identity = x if shortcut is None else shortcut(x)
        out = self.drop_path(out)
        out += identity
        return out

    def _folded_forward(self, x: torch.Tensor) -> torch.Tensor:
        modules = self._modules
        out = x
        for conv_name, _, _ in self._steps[:-1]:
            out = conv_relu(modules[conv_name], out)
        shortcut = modules.get(self._shortcut_name)
        identity = x if shortcut is None else shortcut(x)
        return conv_add_relu(modules[self._steps[-1][0]], out, identity)

    def has_plain_residual(self) -> bool:
        """The conv-norm steps of this base class's forward (not a block's own residual, as
        ResNeSt's or Res2Net's): what :class:`~.scripting.ScriptableBlock` reproduces."""
        return (type(self)._residual is ResidualBlockBase._residual
                and type(self).forward is ResidualBlockBase.forward)

    def __prepare_scriptable__(self):
        """``torch.jit.script`` compiles :class:`~.scripting.ScriptableBlock` (the same convs and
        norms; a block with plugins, drop path or its own residual is refused, naming why)."""
        from .scripting import ScriptableBlock, keep_source
        return keep_source(ScriptableBlock(self), self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._folded and not self.training:
            return self._folded_forward(x)
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        return self.relu(out)


class BasicBlock(ResidualBlockBase):
    """Two 3x3 convs with a residual connection (ResNet-18/34).

    Input ``(N, in_channels, H, W)``; output ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))``. ``stride`` and ``dilation`` apply to the first conv; ``style`` is
    accepted for a common signature with :class:`Bottleneck` and has no effect.
    ``downsample`` maps the input to the output shape when they differ. ``dcn`` and ``plugins``
    must be ``None`` (as in mmdet, which has them for bottlenecks only).
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, expansion: int = 1, stride: int = 1,
                 dilation: int = 1, downsample: Optional[nn.Module] = None,
                 style: str = 'pytorch', with_cp: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU', inplace=True), drop_path_rate: float = 0.0,
                 dcn: Optional[dict] = None, plugins: Optional[Sequence[dict]] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if expansion != 1:
            raise ValueError(f'BasicBlock has no bottleneck: expansion must be 1, got '
                             f'{expansion!r}')
        for name, value in (('dcn', dcn), ('plugins', plugins)):
            if value:
                raise ValueError(f'{name}={value!r}: BasicBlock (ResNet-18/34) has no {name} '
                                 f'(nor has mmdet\'s); use a bottleneck depth (50, 101, 152)')
        self._init_common(in_channels, out_channels, stride, dilation, downsample, style,
                          with_cp, conv_cfg, norm_cfg, act_cfg, drop_path_rate)
        self.expansion = 1
        self.mid_channels = out_channels
        self._add_conv_norm(build_conv_layer(conv_cfg, in_channels, out_channels, 3,
                                             stride=stride, padding=dilation, dilation=dilation,
                                             bias=False), out_channels)
        self._add_conv_norm(build_conv_layer(conv_cfg, out_channels, out_channels, 3, padding=1,
                                             bias=False), out_channels)
        self._finish((), ())


class Bottleneck(ResidualBlockBase):
    """1x1 reduce, 3x3 (grouped for ResNeXt/RegNet, deformable with ``dcn``), 1x1 expand, with a
    residual connection.

    Input ``(N, in_channels, H, W)``; output ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))``. ``style='pytorch'`` puts the stride on the 3x3 conv, ``'caffe'``
    (detectron2's ``stride_in_1x1=True``) on the first 1x1 conv. ``dilation`` applies to the
    3x3 conv. ``dcn`` / ``plugins``: see the module docstring.
    """

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, expansion: int = 4, stride: int = 1,
                 dilation: int = 1, downsample: Optional[nn.Module] = None,
                 style: str = 'pytorch', with_cp: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU', inplace=True), drop_path_rate: float = 0.0,
                 groups: int = 1, width_per_group: int = 4, base_channels: int = 64,
                 dcn: Optional[dict] = None, plugins: Optional[Sequence[dict]] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self._init_common(in_channels, out_channels, stride, dilation, downsample, style,
                          with_cp, conv_cfg, norm_cfg, act_cfg, drop_path_rate)
        check_positive_int('expansion', expansion)
        check_positive_int('groups', groups)
        if out_channels % expansion:
            raise ValueError(f'out_channels ({out_channels}) must be divisible by expansion '
                             f'({expansion})')
        mid_channels = out_channels // expansion
        if groups != 1:
            check_positive_int('width_per_group', width_per_group)
            check_positive_int('base_channels', base_channels)
            if mid_channels % base_channels:
                raise ValueError(f'grouped Bottleneck: out_channels // expansion '
                                 f'({mid_channels}) must be divisible by base_channels '
                                 f'({base_channels})')
            mid_channels = groups * width_per_group * mid_channels // base_channels
        dcn = check_dcn(dcn)
        if dcn is not None and conv_cfg is not None:
            raise ValueError(f'dcn={dcn!r} replaces the 3x3 conv: conv_cfg must be None with it '
                             f'(as in mmdet), got conv_cfg={conv_cfg!r}')
        self.expansion, self.mid_channels = expansion, mid_channels
        self.groups, self.width_per_group = groups, width_per_group
        self.dcn, self.with_dcn = dcn, dcn is not None
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)

        self._add_conv_norm(build_conv_layer(conv_cfg, in_channels, mid_channels, kernel_size=1,
                                             stride=self.conv1_stride, bias=False), mid_channels)
        conv2_args = dict(kernel_size=3, stride=self.conv2_stride, padding=dilation,
                          dilation=dilation, groups=groups, bias=False)
        conv2 = (build_dcn_conv(dcn, mid_channels, mid_channels, **conv2_args) if self.with_dcn
                 else build_conv_layer(conv_cfg, mid_channels, mid_channels, **conv2_args))
        self._add_conv_norm(conv2, mid_channels)
        self._add_conv_norm(build_conv_layer(conv_cfg, mid_channels, out_channels, kernel_size=1,
                                             bias=False), out_channels)
        self._finish(plugins, (mid_channels, mid_channels, out_channels))

    norm3, norm3_name = _norm_at(2)


def get_expansion(block: type, expansion: Optional[int] = None) -> int:
    """``expansion`` when given, else the block class's ``expansion`` attribute."""
    if expansion is not None:
        return check_positive_int('expansion', expansion)
    value = getattr(block, 'expansion', None)
    if value is None:
        raise TypeError(f'expansion is not given and {block.__name__} has no "expansion" '
                        f'attribute')
    return value


def make_downsample(in_channels: int, out_channels: int, stride: int = 1,
                    avg_down: bool = False, conv_cfg: Optional[dict] = None,
                    norm_cfg: dict = dict(type='BN'),
                    pool_at_stride_1: bool = False) -> nn.Sequential:
    """The identity branch of a block whose input and output shapes differ.

    ``[AvgPool2d(stride),] conv1x1(stride or 1), norm``: with ``avg_down`` (ResNet-D) the
    spatial reduction is an average pool (``ceil_mode``, so odd sides match the 3x3 conv's
    output) and the 1x1 conv keeps stride 1. ``pool_at_stride_1`` keeps the (identity) pool at
    stride 1 too, so the conv stays ``downsample.1`` (Res2Net's layout in every library).
    """
    layers = []
    conv_stride = stride
    if avg_down and (stride != 1 or pool_at_stride_1):
        conv_stride = 1
        layers.append(nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True,
                                   count_include_pad=False))
    layers.append(build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size=1,
                                   stride=conv_stride, bias=False))
    layers.append(build_norm_layer(norm_cfg, out_channels)[1])
    return nn.Sequential(*layers)


def block_dilations(num_blocks: int, dilation: int = 1,
                    multi_grid: Optional[Sequence[int]] = None,
                    contract_dilation: bool = False) -> List[int]:
    """The 3x3 dilation of each block of a stage, with mmseg's meanings.

    ``multi_grid`` (DeepLabV3): the rates of the stage's blocks, one per block, used as they are
    (not multiplied by ``dilation``). ``contract_dilation``: the first block of a dilated stage
    uses ``dilation // 2`` (so a stage switching from stride 2 to dilation 2 starts with the
    receptive field its stride had). Without either, every block uses ``dilation``.
    """
    check_positive_int('dilation', dilation)
    if multi_grid is not None:
        if not isinstance(multi_grid, (list, tuple)) or len(multi_grid) != num_blocks:
            raise ValueError(f'multi_grid must give one dilation per block of the last stage '
                             f'({num_blocks} blocks), got {multi_grid!r}')
        for rate in multi_grid:
            check_positive_int('each multi_grid rate', rate)
        return list(multi_grid)
    first = dilation // 2 if contract_dilation and dilation > 1 else dilation
    return [first] + [dilation] * (num_blocks - 1)


class ResLayer(nn.Sequential):
    """One residual stage: ``num_blocks`` blocks, the first one with ``stride`` and (when the
    shape changes) a downsample branch.

    Input ``(N, in_channels, H, W)``, output ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))``. Every block gets ``dilation`` (DC5 / output-stride-8 stages use
    ``stride=1, dilation=2`` or ``4``), unless ``multi_grid`` / ``contract_dilation`` (mmseg's,
    see :func:`block_dilations`) say otherwise. ``drop_path_rate`` is one float for every block
    or one per block. Other keyword arguments go to every block (``style``, ``with_cp``,
    ``groups``, ``width_per_group``, ``base_channels``, ``act_cfg``, ``dcn``, ``plugins``);
    ``first_block_args`` go to the first block only (Res2Net's ``stage_type='stage'``) and
    ``pool_at_stride_1`` to :func:`make_downsample`.
    """

    def __init__(self, block: type, num_blocks: int, in_channels: int, out_channels: int,
                 expansion: Optional[int] = None, stride: int = 1, dilation: int = 1,
                 avg_down: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 drop_path_rate: Union[float, Sequence[float]] = 0.0,
                 multi_grid: Optional[Sequence[int]] = None, contract_dilation: bool = False,
                 first_block_args: Optional[dict] = None, pool_at_stride_1: bool = False,
                 **kwargs):
        check_positive_int('num_blocks', num_blocks)
        self.block = block
        self.expansion = get_expansion(block, expansion)
        if isinstance(drop_path_rate, (int, float)):
            rates = [float(drop_path_rate)] * num_blocks
        else:
            rates = list(drop_path_rate)
            if len(rates) != num_blocks:
                raise ValueError(f'drop_path_rate has {len(rates)} values for {num_blocks} '
                                 f'blocks; give one float or one value per block')
        dilations = block_dilations(num_blocks, dilation, multi_grid, contract_dilation)
        downsample = None
        if stride != 1 or in_channels != out_channels:
            downsample = make_downsample(in_channels, out_channels, stride, avg_down, conv_cfg,
                                         norm_cfg, pool_at_stride_1)
        blocks = []
        for i in range(num_blocks):
            blocks.append(block(
                in_channels=in_channels if i == 0 else out_channels,
                out_channels=out_channels, expansion=self.expansion,
                stride=stride if i == 0 else 1, dilation=dilations[i],
                downsample=downsample if i == 0 else None, conv_cfg=conv_cfg,
                norm_cfg=norm_cfg, drop_path_rate=rates[i],
                **({**kwargs, **(first_block_args or {})} if i == 0 else kwargs)))
        super().__init__(*blocks)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.dilation = stride, dilation
        self.dilations = tuple(dilations)


__all__ = ['ResidualBlockBase', 'BasicBlock', 'Bottleneck', 'ResLayer', 'make_downsample',
           'get_expansion', 'block_dilations', 'check_dcn', 'check_plugins', 'build_dcn_conv',
           'stage_dcn_and_plugins']
