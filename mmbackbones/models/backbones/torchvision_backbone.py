"""Any torchvision classification model as a backbone: ``TorchvisionBackbone``.

The model is cut with ``torchvision.models.feature_extraction.create_feature_extractor`` at
``return_nodes`` (detrex's ``{'layer2': 'res3', ...}`` style). torchvision is imported inside
the functions that need it, so importing this module stays light.
"""
import difflib
import fnmatch
import os
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import check_frozen_stages
from ..base import BaseBackbone
from ..layers.norm import FrozenBatchNorm2d
from ..layers.stage_group import StageGroup

FROZEN_BN_NAMES = ('FrozenBN', 'FrozenBatchNorm2d')
_RESNET_NODES = {'layer1': 'res2', 'layer2': 'res3', 'layer3': 'res4', 'layer4': 'res5'}
_FEATURES_1357 = {'features.1': 'stage1', 'features.3': 'stage2', 'features.5': 'stage3',
                  'features.7': 'stage4'}
# return_nodes used when none are given: (name pattern, nodes)
DEFAULT_RETURN_NODES = (
    ('resnet*', _RESNET_NODES),
    ('resnext*', _RESNET_NODES),
    ('wide_resnet*', _RESNET_NODES),
    ('convnext_*', _FEATURES_1357),
    ('swin_*', _FEATURES_1357),
)
# Dry-run input sizes for the metadata: a non-square one first (it tells NCHW from NHWC), then
# the square size fixed-size models (torchvision's ViT) require.
_PROBE_SIZES = ((256, 384), (224, 224))


def list_torchvision_models(pattern: Optional[str] = None) -> List[str]:
    """torchvision classification model names, filtered by a shell-style ``pattern`` (a pattern
    without wildcards matches as a substring)."""
    import torchvision
    names = torchvision.models.list_models(module=torchvision.models)
    if pattern:
        if not any(c in pattern for c in '*?['):
            pattern = f'*{pattern}*'
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return sorted(names)


def _build_model(model_name: str, weights=None, **kwargs) -> nn.Module:
    import torchvision
    return torchvision.models.get_model_builder(model_name)(weights=weights, **kwargs)


def list_torchvision_nodes(model_name: str, train: bool = True, **kwargs) -> List[str]:
    """Valid ``return_nodes`` of a torchvision model (``get_graph_node_names``; the model is
    built on the meta device, nothing is allocated)."""
    from torchvision.models.feature_extraction import get_graph_node_names
    _check_model_name(model_name)
    with torch.device('meta'):
        model = _build_model(model_name, **kwargs)
    train_nodes, eval_nodes = get_graph_node_names(model)
    return train_nodes if train else eval_nodes


def _check_model_name(model_name) -> None:
    import torchvision
    if not isinstance(model_name, str) or not model_name:
        raise TypeError(f'model_name must be a torchvision model name (str), got {model_name!r}')
    names = torchvision.models.list_models()
    if model_name not in names:
        close = difflib.get_close_matches(model_name, names, n=5, cutoff=0.6)
        hint = (' Did you mean ' + ', '.join(repr(c) for c in close) + '?') if close else ''
        raise ValueError(f'model_name: {model_name!r} is not a torchvision model.{hint} '
                         '(`list_torchvision_models(PATTERN)` lists them)')


def _resolve_weights(model_name: str, weights, pretrained: bool):
    """None, 'DEFAULT', an enum member name ('IMAGENET1K_V2'), 'ResNet50_Weights.IMAGENET1K_V2'
    or the enum member itself -> the enum member (or None)."""
    import torchvision
    if not isinstance(pretrained, bool):
        raise TypeError(f'pretrained must be a bool, got {pretrained!r}')
    if pretrained:
        if weights is not None:
            raise ValueError(f'give either pretrained=True (meaning weights="DEFAULT") or '
                             f'weights={weights!r}, not both')
        weights = 'DEFAULT'
    if weights is None:
        return None
    enum = torchvision.models.get_model_weights(model_name)
    if isinstance(weights, enum):
        return weights
    allowed = ['DEFAULT'] + [w.name for w in enum]
    if isinstance(weights, str):
        name = weights
        if '.' in name:
            enum_name, name = name.rsplit('.', 1)
            if enum_name != enum.__name__:
                name = None
        if name == 'DEFAULT':
            return enum.DEFAULT
        if name in enum.__members__:
            return enum[name]
    raise ValueError(f'weights={weights!r} is not a weight of {model_name!r}: allowed are None, '
                     + ', '.join(repr(a) for a in allowed) + f' (or {enum.__name__}.<name>)')


def _normalize_return_nodes(model_name: str, return_nodes) -> Dict[str, str]:
    if return_nodes is None:
        for pattern, nodes in DEFAULT_RETURN_NODES:
            if fnmatch.fnmatchcase(model_name, pattern):
                return dict(nodes)
        raise ValueError(f'return_nodes is required for {model_name!r} (no default for this '
                         f'family): list_torchvision_nodes({model_name!r}) lists the node names')
    if isinstance(return_nodes, str):
        return_nodes = [return_nodes]
    if isinstance(return_nodes, (list, tuple)):
        if not return_nodes or not all(isinstance(n, str) for n in return_nodes):
            raise TypeError(f'return_nodes must be a non-empty list of node names (str) or a '
                            f'dict {{node: output_name}}, got {return_nodes!r}')
        if len(set(return_nodes)) != len(return_nodes):
            raise ValueError(f'return_nodes must not repeat a node, got {return_nodes!r}')
        return {n: n for n in return_nodes}
    if isinstance(return_nodes, dict):
        if not return_nodes or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in return_nodes.items()):
            raise TypeError(f'return_nodes must map node names (str) to output names (str), '
                            f'got {return_nodes!r}')
        if len(set(return_nodes.values())) != len(return_nodes):
            raise ValueError(f'return_nodes output names must be unique, got {return_nodes!r}')
        return dict(return_nodes)
    raise TypeError(f'return_nodes must be None, a list of node names or a dict '
                    f'{{node: output_name}}, got {return_nodes!r} ({type(return_nodes).__name__})')


@MODELS.register_module()
class TorchvisionBackbone(BaseBackbone):
    """A torchvision model cut at ``return_nodes``.

    Args:
        model_name (str): a name of ``torchvision.models.list_models()`` (``'resnet50'``).
        weights (str | WeightsEnum | None): ``None`` (random init), ``'DEFAULT'``, an enum member
            name (``'IMAGENET1K_V2'``) or ``'ResNet50_Weights.IMAGENET1K_V2'``. Downloaded to
            torch hub's cache (``torch.hub.get_dir()/checkpoints``) on first use.
        pretrained (bool): ``True`` means ``weights='DEFAULT'``.
        return_nodes (list | dict | None): graph nodes to return, in this order: a list of node
            names (outputs named after them) or ``{node: output_name}``. ``None``: ``layer1..4``
            as ``res2..res5`` for ResNets, ``features.1/3/5/7`` as ``stage1..4`` for ConvNeXt
            and Swin. ``list_torchvision_nodes(model_name)`` lists valid names.
        norm_layer (str | type | None): ``'FrozenBN'`` (or the ``FrozenBatchNorm2d`` class)
            freezes every BatchNorm after building; another class (or a name in mmengine's
            registry) is passed to the torchvision builder as ``norm_layer``.
        frozen_stages (int): ``-1`` nothing; ``0`` the stem (what runs before the first return
            node's module); ``k`` the stem and everything up to the ``k``-th return node (in
            execution order).
        norm_eval (bool): keep every BatchNorm in eval mode during training.
        init_cfg (dict, optional): mmengine init config.
        **kwargs: passed to the torchvision builder (e.g. ``stochastic_depth_prob``).

    The extractor is ``self.model`` (detrex's name). Channels-last outputs (Swin) are permuted,
    so every 4-D output is ``(N, C, H / s, W / s)``; token outputs (ViT) stay ``(N, L, C)``
    with stride ``None``.
    """

    def __init__(self,
                 model_name: str,
                 weights=None,
                 pretrained: bool = False,
                 return_nodes=None,
                 norm_layer=None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg=None,
                 **kwargs):
        super().__init__(init_cfg=init_cfg)
        from torchvision.models.feature_extraction import create_feature_extractor
        _check_model_name(model_name)
        if not isinstance(norm_eval, bool):
            raise TypeError(f'norm_eval must be a bool, got {norm_eval!r}')
        weights = _resolve_weights(model_name, weights, pretrained)
        nodes = _normalize_return_nodes(model_name, return_nodes)
        self.model_name = model_name
        self.return_nodes = nodes
        freeze_bn = self._resolve_norm_layer(norm_layer, kwargs)

        model = self._build(model_name, weights, kwargs)
        # a norm class given by the user is a leaf for the tracer: it holds no return node, and
        # some (torchvision's own FrozenBatchNorm2d) cannot be traced through
        norm_cls = kwargs.get('norm_layer')
        tracer_kwargs = dict(leaf_modules=[norm_cls]) if isinstance(norm_cls, type) else None
        try:
            self.model = create_feature_extractor(model, return_nodes=nodes,
                                                  tracer_kwargs=tracer_kwargs)
        except ValueError as e:
            if 'is not present in model' not in str(e):
                raise
            raise ValueError(self._bad_node_message(model, nodes)) from e
        del model
        if freeze_bn:
            # after tracing: BatchNorms stay leaf call_module nodes, only their module changes
            FrozenBatchNorm2d.convert_frozen_batchnorm(self.model)
        if weights is not None:
            self._is_init = True  # init_weights() must not overwrite the loaded weights

        self._names = tuple(nodes.values())
        channels, strides, self._nhwc = self._probe_outputs()
        self._set_outputs(channels, strides, self._names)
        self._stage_names, self.in_channels = self._stage_groups()
        self.frozen_stages = check_frozen_stages(frozen_stages, len(nodes))
        if self.frozen_stages == 0 and self._stage_names[0] is None:
            raise ValueError(f'frozen_stages=0: cannot tell where the first stage starts for '
                             f'return node {self._first_node!r}; use frozen_stages >= 1 or -1')
        self.norm_eval = norm_eval
        self._freeze_stages()

    # ----- construction helpers ----------------------------------------------------------------
    @staticmethod
    def _resolve_norm_layer(norm_layer, kwargs) -> bool:
        if norm_layer is None:
            return False
        if isinstance(norm_layer, str):
            if norm_layer in FROZEN_BN_NAMES:
                return True
            from mmengine.registry import MODELS as ROOT
            if norm_layer not in ROOT.module_dict:
                raise ValueError(f"norm_layer={norm_layer!r} is not a norm layer name: use "
                                 f"'FrozenBN', a name in mmengine's registry (e.g. 'BN', "
                                 f"'SyncBN') or a class")
            kwargs['norm_layer'] = ROOT.get(norm_layer)
            return False
        if isinstance(norm_layer, type) and issubclass(norm_layer, FrozenBatchNorm2d):
            return True
        if callable(norm_layer):
            kwargs['norm_layer'] = norm_layer
            return False
        raise TypeError(f"norm_layer must be None, 'FrozenBN', a norm class or a norm name, got "
                        f'{norm_layer!r}')

    @staticmethod
    def _build(model_name: str, weights, kwargs) -> nn.Module:
        try:
            return _build_model(model_name, weights=weights, **kwargs)
        except OSError as e:
            if weights is None:
                raise
            url = weights.url
            target = os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(url))
            raise RuntimeError(
                f'Could not download the torchvision weights {weights} for {model_name!r} from '
                f'{url}: {type(e).__name__}: {e}\nWithout network access, download that file '
                f'elsewhere and put it at {target} (torch hub cache: torch.hub.get_dir(), set by '
                f'$TORCH_HOME), or build with weights=None and load a checkpoint through '
                f"init_cfg=dict(type='Pretrained', checkpoint=...).") from e
        except TypeError as e:
            if 'unexpected keyword' not in str(e):
                raise
            raise TypeError(f'torchvision model {model_name!r} does not accept an argument given '
                            f'to TorchvisionBackbone: {e}') from e

    def _bad_node_message(self, model: nn.Module, nodes: Dict[str, str]) -> str:
        from torchvision.models.feature_extraction import get_graph_node_names
        train_nodes, eval_nodes = get_graph_node_names(model)
        valid = list(dict.fromkeys(train_nodes + eval_nodes))
        # a module path ('layer2') is a valid node too: it means the last node inside it
        prefixes = {'.'.join(n.split('.')[:k]) for n in valid for k in range(1, n.count('.') + 1)}
        candidates = sorted(set(valid) | prefixes)
        parts = []
        for node in nodes:
            if node in candidates:
                continue
            close = difflib.get_close_matches(node, candidates, n=5, cutoff=0.5)
            hint = ('closest valid names: ' + ', '.join(repr(c) for c in close)) if close else \
                'no close valid name'
            parts.append(f'{node!r} ({hint})')
        return (f'return_nodes: no node named ' + '; '.join(parts) + f' in {self.model_name!r}. '
                f'list_torchvision_nodes({self.model_name!r}) lists the {len(valid)} valid names')

    def _probe_outputs(self):
        """Channels and strides of each output from a forward on the meta device (the real
        parameters are swapped for meta tensors: nothing is computed or allocated)."""
        from torch.func import functional_call
        meta = {name: torch.empty_like(t, device='meta')
                for name, t in list(self.model.named_parameters()) +
                list(self.model.named_buffers())}
        was_training = self.model.training
        self.model.eval()
        outs, size, errors = None, None, []
        try:
            for size in _PROBE_SIZES:
                x = torch.empty(1, 3, *size, device='meta')
                try:
                    outs = functional_call(self.model, meta, (x, ), strict=False)
                    break
                except Exception as e:  # a fixed-size model: try the next size
                    errors.append(f'{size}: {type(e).__name__}: {e}')
            if outs is None:  # an op without a meta kernel: a real (small) dry run
                with torch.no_grad():
                    for size in _PROBE_SIZES:
                        try:
                            outs = self.model(torch.zeros(1, 3, *size))
                            break
                        except Exception as e:
                            errors.append(f'{size}: {type(e).__name__}: {e}')
        finally:
            self.model.train(was_training)
        if outs is None:
            raise RuntimeError(f'could not run {self.model_name!r} to read its output shapes: '
                               + '; '.join(errors))
        channels, strides, nhwc = [], [], []
        for name in self._names:
            shape = tuple(outs[name].shape)
            c, s, last = self._layout(shape, size)
            channels.append(c)
            strides.append(s)
            nhwc.append(last)
        return channels, strides, tuple(nhwc)

    @staticmethod
    def _layout(shape: Tuple[int, ...], size: Tuple[int, int]):
        """(channels, stride, channels_last) of an output of ``shape`` for an input ``size``."""
        if len(shape) == 4:
            for channels_last, (c, h, w) in ((False, shape[1:]), (True, (shape[3], *shape[1:3]))):
                if size[0] % h == 0 and size[1] % w == 0 and size[0] // h == size[1] // w:
                    return c, size[0] // h, channels_last
            return shape[1], None, False
        return shape[-1], None, False  # tokens (N, L, C) or pooled (N, C)

    def _stage_groups(self):
        """Module/parameter names of the stem and of each stage, from the traced graph.

        Stage ``k`` (1-based, return nodes in execution order) holds what runs after return node
        ``k - 1`` up to return node ``k``; the stem what runs before the first module of the
        first return node's module path. Also returns the first conv's input channels.
        """
        graph = getattr(self.model, 'train_graph', self.model.graph)
        nodes = list(graph.nodes)
        position = {node: i for i, node in enumerate(nodes)}
        output = next(n for n in reversed(nodes) if n.op == 'output')
        by_name = output.args[0]
        ends = sorted(position[by_name[name]] for name in self._names)
        first = min(self.return_nodes, key=lambda n: position[by_name[self.return_nodes[n]]])
        self._first_node = first
        scope = first
        while scope:
            try:
                self.model.get_submodule(scope)
                break
            except AttributeError:
                scope = scope.rpartition('.')[0]

        def in_scope(target: str) -> bool:
            return bool(scope) and (target == scope or target.startswith(scope + '.'))

        start = None if scope else 0  # no module path: no stem to tell apart
        groups = [([], []) for _ in range(len(ends) + 1)]
        seen = set()
        in_channels = None
        for i, node in enumerate(nodes):
            if node.op not in ('call_module', 'get_attr') or node.target in seen:
                continue
            seen.add(node.target)
            if start is None and in_scope(node.target):
                start = i
            if start is None:
                group = 0
            else:
                group = next((k + 1 for k, end in enumerate(ends) if i <= end), None)
                if group is None:
                    continue
            if node.op == 'call_module':
                groups[group][0].append(node.target)
                if in_channels is None:  # the first conv run (a leaf may be a conv block)
                    conv = next((m for m in self.model.get_submodule(node.target).modules()
                                 if isinstance(m, nn.Conv2d)), None)
                    in_channels = conv.in_channels if conv is not None else None
            else:
                try:
                    self.model.get_parameter(node.target)
                except AttributeError:
                    continue  # a buffer: nothing to freeze
                groups[group][1].append(node.target)
                if in_channels is None and node.target.endswith('weight'):
                    owner = self.model.get_submodule(node.target.rpartition('.')[0])
                    if isinstance(owner, nn.Conv2d):
                        in_channels = owner.in_channels
        stage_names = [g if (g[0] or g[1]) else None for g in groups]
        return stage_names, in_channels or 3

    # ----- contract ----------------------------------------------------------------------------
    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        """Index 0 the stem, index ``k`` the modules up to the ``k``-th return node."""
        groups = []
        for names in self._stage_names:
            if names is None:
                groups.append(None)
                continue
            modules = [self.model.get_submodule(n) for n in names[0]]
            params = [self.model.get_parameter(n) for n in names[1]]
            groups.append(StageGroup(modules, params))
        return groups

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        try:
            outs = self.model(x)
        except (AssertionError, RuntimeError) as e:
            # a fixed-size model (torchvision's ViT asserts the image size) or an input too small
            # for a kernel: say it is the input
            if isinstance(e, RuntimeError) and (isinstance(e, torch.OutOfMemoryError) or not any(
                    w in str(e) for w in ('size', 'shape', 'Kernel', 'dimension', 'match'))):
                raise
            raise ValueError(f'torchvision model {self.model_name!r} cannot run on an input of '
                             f'size {tuple(x.shape[2:])}: {type(e).__name__}: {e}') from e
        return tuple(outs[name].permute(0, 3, 1, 2) if last else outs[name]
                     for name, last in zip(self._names, self._nhwc))
