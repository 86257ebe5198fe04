"""Config fuzzing: every registered backbone, argument combinations valid and invalid.

The property: a config either builds, runs on a random small image and returns what its
metadata says, or it is refused at construction with a ValueError/TypeError/KeyError whose message
names one of the arguments given. Any other exception (AssertionError, IndexError,
AttributeError, a shape error from inside a layer) fails. Inputs of odd sizes (batch 1,
non-square, sides not divisible by the stride, smaller than the total stride) must give a valid
output or a ValueError that says what is wrong with the input.

MMBACKBONES_FUZZ_EXAMPLES scales the examples per family (default 20; CI uses the default and a
fixed seed, so a red run is reproducible).
"""
import inspect
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmbackbones import MODELS, build_backbone

EXAMPLES = int(os.environ.get('MMBACKBONES_FUZZ_EXAMPLES', '20'))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
ALLOWED = (ValueError, TypeError, KeyError)


def out_indices():
    return st.one_of(st.integers(-6, 6), st.lists(st.integers(-5, 5), max_size=4).map(tuple),
                     st.just('0'), st.just([0.5]))


def images():
    return st.tuples(st.integers(1, 2), st.integers(5, 72), st.integers(5, 72))


def argument_names(cfg: dict) -> set:
    """The arguments a message may name: those given, and any of the class's constructors."""
    names = {key for key in cfg if key != 'type'}
    cls = MODELS.get(cfg['type']) if isinstance(cfg.get('type'), str) else None
    for klass in inspect.getmro(cls) if inspect.isclass(cls) else ():
        if '__init__' in vars(klass):
            names.update(p for p in inspect.signature(klass.__init__).parameters
                         if p not in ('self', 'args', 'kwargs', 'init_cfg'))
    return names


def check_config(cfg: dict, image):
    """The fuzz property for one config and one input size."""
    try:
        model = build_backbone(cfg)
    except ALLOWED as exc:
        message = str(exc)
        named = [key for key in argument_names(cfg) if key in message]
        assert named, f'{type(exc).__name__} does not name an argument of {cfg}: {message}'
        return 'refused'
    assert len(model.out_channels) == len(model.out_strides) == len(model.out_names) > 0
    model.eval()
    batch, height, width = image
    in_channels = model.in_channels or 3
    try:
        with torch.no_grad():
            outs = model(torch.randn(batch, in_channels, height, width))
    except ValueError as exc:
        message = str(exc).lower()
        assert any(w in message for w in ('input', 'size', 'small', 'image')), \
            f'unclear input error for {cfg} at {image}: {exc}'
        return 'input refused'
    assert isinstance(outs, tuple) and len(outs) == len(model.out_channels), cfg
    for out, channels, stride, name in zip(outs, model.out_channels, model.out_strides,
                                           model.out_names):
        if out.dim() == 3:  # a ViT's out_type='raw': tokens (N, L, C), channels last
            assert out.shape[0] == batch and out.shape[2] == channels, (cfg, name, out.shape)
            continue
        assert out.shape[0] == batch and out.shape[1] == channels, (cfg, name, out.shape)
        if stride is None:  # the contract's mark for a pooled (N, C) output
            assert out.dim() == 2, (cfg, name, out.shape)
            continue
        assert out.dim() == 4, (cfg, name, out.shape, stride)
        for side, got in ((height, out.shape[2]), (width, out.shape[3])):
            assert side // stride <= got <= -(-side // stride) + 1, (cfg, image, name, stride,
                                                                    out.shape)
    return 'built'


NORMS = st.sampled_from([dict(type='BN'), dict(type='FrozenBN'), dict(type='GN', num_groups=4),
                         dict(type='GN', num_groups=32), dict(type='NoSuchNorm'), 'BN'])

RESNET = st.fixed_dictionaries({
    'type': st.sampled_from(['ResNet', 'ResNetV1c', 'ResNetV1d']),
    'depth': st.sampled_from([18, 34, 50, 20, '50', None]),
}, optional={
    'num_stages': st.integers(0, 5),
    'strides': st.sampled_from([(1, 2, 2, 2), (1, 2, 2, 1), (1, 2), (0, 2, 2, 2), 2]),
    'dilations': st.sampled_from([(1, 1, 1, 1), (1, 1, 1, 2), (1, 1, 2, 4), (1, 1)]),
    'out_indices': out_indices(),
    'frozen_stages': st.integers(-2, 5),
    'style': st.sampled_from(['pytorch', 'caffe', 'tf']),
    'deep_stem': st.booleans(),
    'avg_down': st.booleans(),
    'base_channels': st.sampled_from([8, 16, 0, -4]),
    'stem_channels': st.sampled_from([8, 16, 0]),
    'norm_cfg': NORMS,
    'norm_eval': st.booleans(),
    'drop_path_rate': st.sampled_from([0.0, 0.1, 1.5, -0.1]),
    'in_channels': st.sampled_from([1, 3, 0]),
    'zero_init_residual': st.booleans(),
})

RESNEXT = st.fixed_dictionaries({
    'type': st.just('ResNeXt'), 'depth': st.sampled_from([50, 18]),
    'base_channels': st.sampled_from([16, 64]),
}, optional={
    'groups': st.sampled_from([1, 4, 32, 0, 3]),
    'width_per_group': st.sampled_from([2, 4, 0]),
    'out_indices': out_indices(),
    'frozen_stages': st.integers(-2, 5),
})

VIT = st.fixed_dictionaries({
    'type': st.sampled_from(['VisionTransformer', 'ViT']),
    'arch': st.sampled_from([
        dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64),
        dict(embed_dims=30, num_layers=2, num_heads=4, feedforward_channels=64),
        dict(embed_dims=32, num_layers=2), 'deit-t', 'no-such-arch', 7]),
    'img_size': st.sampled_from([32, 48, 0]),
    'patch_size': st.sampled_from([8, 16, 0]),
}, optional={
    'out_indices': out_indices(),
    'out_type': st.sampled_from(['raw', 'cls_token', 'featmap', 'avg_featmap', 'bad']),
    'with_cls_token': st.booleans(),
    'final_norm': st.booleans(),
    'frozen_stages': st.integers(-2, 14),
    'interpolate_mode': st.sampled_from(['bicubic', 'bilinear', 'bad']),
    'layer_scale_init_value': st.sampled_from([0.0, 0.1]),
    'pre_norm': st.booleans(),
    'drop_path_rate': st.sampled_from([0.0, 0.1, 2.0]),
    'qkv_bias': st.booleans(),
    'in_channels': st.sampled_from([1, 3, 0]),
})

CONVNEXT = st.fixed_dictionaries({
    'type': st.just('ConvNeXt'),
    'arch': st.sampled_from(['atto', dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64]),
                             dict(depths=[1, 1], channels=[8, 16, 32]), 'no-such-arch']),
}, optional={
    'out_indices': out_indices(),
    'frozen_stages': st.integers(-2, 5),
    'drop_path_rate': st.sampled_from([0.0, 0.2, 1.5]),
    'gap_before_final_norm': st.booleans(),
    'layer_scale_init_value': st.sampled_from([0.0, 1e-6]),
    'use_grn': st.booleans(),
    'linear_pw_conv': st.booleans(),
    'in_channels': st.sampled_from([1, 3, 0]),
    'stem_patch_size': st.sampled_from([2, 4, 0]),
})

SWIN = st.fixed_dictionaries({
    'type': st.just('SwinTransformer'),
    'arch': st.sampled_from([dict(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2]),
                             dict(embed_dims=16, depths=[1, 1], num_heads=[1, 1, 2]),
                             'no-such-arch']),
}, optional={
    'img_size': st.sampled_from([32, 64, 0]),
    'window_size': st.sampled_from([2, 3, 7, 0]),
    'patch_size': st.sampled_from([2, 4]),
    'out_indices': out_indices(),
    'frozen_stages': st.integers(-2, 5),
    'out_after_downsample': st.booleans(),
    'use_abs_pos_embed': st.booleans(),
    'pad_small_map': st.booleans(),
    'drop_path_rate': st.sampled_from([0.0, 0.1, 1.5]),
    'in_channels': st.sampled_from([1, 3, 0]),
})

REGNET = st.fixed_dictionaries({
    'type': st.just('RegNet'),
    'arch': st.sampled_from(['regnetx_400mf', 'regnetx_4.0gf_typo',
                             dict(w0=24, wa=24.48, wm=2.54, group_w=16, depth=6, bot_mul=1.0),
                             dict(w0=24)]),
}, optional={
    'out_indices': out_indices(),
    'frozen_stages': st.integers(-2, 5),
    'strides': st.sampled_from([(2, 2, 2, 2), (2, 2, 2, 1), (2, 2)]),
    'dilations': st.sampled_from([(1, 1, 1, 1), (1, 1, 1, 2)]),
    'in_channels': st.sampled_from([1, 3, 0]),
    'norm_cfg': NORMS,
})

CSP = st.fixed_dictionaries({
    'type': st.sampled_from(['CSPDarkNet', 'CSPResNet', 'CSPResNeXt']),
}, optional={
    'depth': st.sampled_from([50, 53, 18, '50']),
    'arch': st.sampled_from([50, 53, 'x']),
    'out_indices': out_indices(),
    'frozen_stages': st.integers(-2, 6),
    'drop_path_rate': st.sampled_from([0.0, 0.1, 1.5]),
    'in_channels': st.sampled_from([1, 3, 0]),
})

TIMM = st.fixed_dictionaries({
    'type': st.just('TIMMBackbone'),
    'model_name': st.sampled_from(['resnet10t', 'mobilenetv3_small_050', 'vit_tiny_patch16_224',
                                   'resnet1O', 42]),
}, optional={
    'out_indices': out_indices(),
    'frozen_stages': st.integers(-2, 6),
    'output_stride': st.sampled_from([None, 8, 16, 3]),
    'features_only': st.booleans(),
    'in_channels': st.sampled_from([1, 3, 0]),
    'norm_layer': st.sampled_from([None, 'FrozenBN', 'Nope']),
})

TORCHVISION = st.fixed_dictionaries({
    'type': st.just('TorchvisionBackbone'),
    'model_name': st.sampled_from(['resnet18', 'mobilenet_v3_small', 'resnet_typo']),
}, optional={
    'return_nodes': st.sampled_from([None, ['layer1', 'layer3'], {'layer2': 'res3'},
                                     ['layerX'], 'layer1', {'layer2': 3}]),
    'frozen_stages': st.integers(-2, 6),
    'weights': st.sampled_from([None, 'BOGUS_WEIGHTS', 7]),
    'norm_layer': st.sampled_from([None, 'FrozenBN', 'Nope']),
})

FAMILIES = {'resnet': RESNET, 'resnext': RESNEXT, 'vit': VIT, 'convnext': CONVNEXT,
            'swin': SWIN, 'regnet': REGNET, 'csp': CSP}
WRAPPERS = {'timm': TIMM, 'torchvision': TORCHVISION}


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_fuzz_native(family):
    @SETTINGS
    @given(cfg=FAMILIES[family], image=images())
    def run(cfg, image):
        check_config(cfg, image)
    run()


@pytest.mark.parametrize('family', sorted(WRAPPERS))
def test_fuzz_wrappers(family):
    pytest.importorskip(family, reason=f'{family} is not installed')

    @SETTINGS
    @given(cfg=WRAPPERS[family], image=images())
    def run(cfg, image):
        check_config(cfg, image)
    run()
