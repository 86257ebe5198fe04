"""Config fuzzing: every registered backbone, argument combinations valid and invalid.

The property: a config either builds, runs on a random small image and returns what its
metadata says, or it is refused at construction with a ValueError/TypeError/KeyError whose message
names one of the arguments given. Any other exception (AssertionError, IndexError,
AttributeError, a shape error from inside a layer) fails. Inputs of odd sizes (batch 1,
non-square, sides not divisible by the stride, smaller than the total stride) must give a valid
output or a ValueError that says what is wrong with the input. An empty batch (N=0) gives empty
outputs shaped like a batch of one's; an input whose dtype is not the model's (uint8, int64,
bool, float16/bfloat16/float64 into a float32 model, float32 into a float64 one) is refused with
a TypeError naming both dtypes. Arguments come in every spelling a config carries (numpy ints
and arrays, ``range``) and include absurd sizes (``img_size=10**6``, ``depths=[10**9, ...]``),
which must be refused at construction, before anything is allocated.

MMBACKBONES_FUZZ_EXAMPLES scales the examples per family (default 20; CI uses the default and a
fixed seed, so a red run is reproducible).
"""
import inspect
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmbackbones import MODELS, build_backbone

EXAMPLES = int(os.environ.get('MMBACKBONES_FUZZ_EXAMPLES', '20'))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
ALLOWED = (ValueError, TypeError, KeyError)


def _plain_or_numpy(values):
    """The same indices as a tuple, a list, a numpy array, numpy ints or a ``range`` when they
    form one: every spelling a config may carry (omegaconf/numpy/range: ``to_plain``)."""
    forms = [st.just(tuple(values)), st.just(np.array(values, dtype=np.int64)),
             st.just([np.int32(v) for v in values])]
    if len(values) >= 1 and all(b - a == 1 for a, b in zip(values, values[1:])):
        forms.append(st.just(range(values[0], values[-1] + 1)))
    return st.one_of(forms)


def out_indices():
    return st.one_of(st.integers(-6, 6), st.integers(-6, 6).map(np.int64),
                     st.lists(st.integers(-5, 5), max_size=4).flatmap(_plain_or_numpy),
                     st.just('0'), st.just([0.5]), st.just(np.array([[0, 1]])))


def frozen_stages(low, high):
    return st.one_of(st.integers(low, high), st.integers(low, high).map(np.int64))


# Input dtypes: (model dtype, input dtype). float32 in both is the common case; a float64 model
# takes float64 inputs; every other input dtype must be refused with a TypeError naming it.
DTYPES = st.sampled_from([(torch.float32, torch.float32)] * 6 + [
    (torch.float64, torch.float64), (torch.float32, torch.uint8),
    (torch.float32, torch.int64), (torch.float32, torch.bool), (torch.float32, torch.float64),
    (torch.float32, torch.float16), (torch.float32, torch.bfloat16),
    (torch.float64, torch.float32)])


def images():
    """``(batch, height, width, (model dtype, input dtype))``; batch 0 is an empty batch."""
    return st.tuples(st.integers(0, 2), st.integers(5, 72), st.integers(5, 72), DTYPES)


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
    return check_forward(model, cfg, image)


def check_forward(model, cfg: dict, image):
    """The fuzz property for one built model and one input."""
    assert len(model.out_channels) == len(model.out_strides) == len(model.out_names) > 0
    model.eval()
    batch, height, width, *dtypes = image
    model_dtype, input_dtype = dtypes[0] if dtypes else (torch.float32, torch.float32)
    in_channels = model.in_channels or 3
    x = torch.randn(batch, in_channels, height, width, dtype=model_dtype).to(input_dtype)
    model.to(model_dtype)
    if input_dtype != model_dtype:
        with pytest.raises(TypeError) as info, torch.no_grad():
            model(x)
        message = str(info.value)
        assert f'dtype {model_dtype}' in message and f'got {input_dtype}' in message, message
        return 'dtype refused'
    try:
        with torch.no_grad():
            outs = model(x)
    except ValueError as exc:
        message = str(exc).lower()
        assert any(w in message for w in ('input', 'size', 'small', 'image')), \
            f'unclear input error for {cfg} at {image}: {exc}'
        return 'input refused'
    if batch == 0:  # empty outputs, shaped exactly like those of a batch of one
        with torch.no_grad():
            ones = model(x.new_zeros(1, in_channels, height, width))
        assert [o.shape[1:] for o in outs] == [o.shape[1:] for o in ones], (cfg, image)
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
                         dict(type='GN', num_groups=32), dict(type='NoSuchNorm'), 'BN',
                         dict(type='BN', requires_grad='yes'),
                         dict(type='BN', requires_grad=False)])

RESNET = st.fixed_dictionaries({
    'type': st.sampled_from(['ResNet', 'ResNetV1c', 'ResNetV1d']),
    'depth': st.sampled_from([18, 34, 50, 20, '50', None]),
}, optional={
    'num_stages': st.integers(0, 5),
    'strides': st.sampled_from([(1, 2, 2, 2), (1, 2, 2, 1), (1, 2), (0, 2, 2, 2), 2]),
    'dilations': st.sampled_from([(1, 1, 1, 1), (1, 1, 1, 2), (1, 1, 2, 4), (1, 1)]),
    'out_indices': out_indices(),
    'frozen_stages': frozen_stages(-2, 5),
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
    'frozen_stages': frozen_stages(-2, 5),
})

VIT = st.fixed_dictionaries({
    'type': st.sampled_from(['VisionTransformer', 'ViT']),
    'arch': st.sampled_from([
        dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64),
        dict(embed_dims=30, num_layers=2, num_heads=4, feedforward_channels=64),
        dict(embed_dims=32, num_layers=2), 'deit-t', 'no-such-arch', 7,
        dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64, qkv_bais=True),
        dict(embed_dims=32, num_layers=10**9, num_heads=2, feedforward_channels=64)]),
    'img_size': st.sampled_from([32, 48, 0, 10**6, (32, 10**6)]),
    'patch_size': st.sampled_from([8, 16, 0]),
}, optional={
    'out_indices': out_indices(),
    'out_type': st.sampled_from(['raw', 'cls_token', 'featmap', 'avg_featmap', 'bad']),
    'with_cls_token': st.booleans(),
    'final_norm': st.booleans(),
    'frozen_stages': frozen_stages(-2, 14),
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
                             dict(depths=[1, 1], channels=[8, 16, 32]), 'no-such-arch',
                             dict(depths=[10**9, 1, 1, 1], channels=[8, 16, 32, 64]),
                             dict(depths=[1, 1], channels=[8, 10**9])]),
}, optional={
    'out_indices': out_indices(),
    'frozen_stages': frozen_stages(-2, 5),
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
                             dict(embed_dims=16, depths=[1, 10**9], num_heads=[1, 1]),
                             'no-such-arch']),
}, optional={
    'img_size': st.sampled_from([32, 64, 0, 10**5]),
    'window_size': st.sampled_from([2, 3, 7, 0, 10**6]),
    'patch_size': st.sampled_from([2, 4]),
    'out_indices': out_indices(),
    'frozen_stages': frozen_stages(-2, 5),
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
                             dict(w0=24),
                             dict(w0=24, wa=24.48, wm=2.54, group_w=16, depth=10**9, bot_mul=1.0),
                             dict(w0=24, wa=1e9, wm=2.54, group_w=16, depth=6, bot_mul=1.0)]),
}, optional={
    'out_indices': out_indices(),
    'frozen_stages': frozen_stages(-2, 5),
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
    'frozen_stages': frozen_stages(-2, 6),
    'drop_path_rate': st.sampled_from([0.0, 0.1, 1.5]),
    'in_channels': st.sampled_from([1, 3, 0]),
})

_HR_SMALL = {f'stage{i}': dict(num_modules=1, num_branches=i, block='BASIC',
                               num_blocks=(1, ) * i, num_channels=(8, 16, 32, 64)[:i])
             for i in range(1, 5)}
HRNET = st.fixed_dictionaries({
    'type': st.just('HRNet'),
    'extra': st.sampled_from([_HR_SMALL, dict(_HR_SMALL, stage3=dict(_HR_SMALL['stage3'],
                                                                     num_blocks=(1, ))),
                              {'stage1': _HR_SMALL['stage1']}, 'w18']),
}, optional={
    'out_indices': out_indices(),
    'frozen_stages': frozen_stages(-2, 5),
    'multiscale_output': st.sampled_from([True, False, 0]),
    'upsample_mode': st.sampled_from(['nearest', 'bilinear', 'area']),
    'in_channels': st.sampled_from([1, 3, 0]),
    'norm_cfg': NORMS,
})

TIMM = st.fixed_dictionaries({
    'type': st.just('TIMMBackbone'),
    'model_name': st.sampled_from(['resnet10t', 'mobilenetv3_small_050', 'vit_tiny_patch16_224',
                                   'resnet1O', 42]),
}, optional={
    'out_indices': out_indices(),
    'frozen_stages': frozen_stages(-2, 6),
    'output_stride': st.sampled_from([None, 8, 16, 3]),
    'features_only': st.booleans(),
    'in_channels': st.sampled_from([1, 3, 0]),
    'norm_layer': st.sampled_from([None, 'FrozenBN', 'Nope']),
    'drop_path_rate': st.sampled_from([0.0, 0.1, -0.5, 1.5]),
})

TORCHVISION = st.fixed_dictionaries({
    'type': st.just('TorchvisionBackbone'),
    'model_name': st.sampled_from(['resnet18', 'mobilenet_v3_small', 'resnet_typo']),
}, optional={
    'return_nodes': st.sampled_from([None, ['layer1', 'layer3'], {'layer2': 'res3'},
                                     ['layerX'], 'layer1', {'layer2': 3}]),
    'frozen_stages': frozen_stages(-2, 6),
    'weights': st.sampled_from([None, 'BOGUS_WEIGHTS', 7]),
    'norm_layer': st.sampled_from([None, 'FrozenBN', 'Nope']),
})

# One valid, tiny config per family for the input fuzzer: every example runs a forward pass.
VALID = {
    'resnet': dict(type='ResNet', depth=18, base_channels=8, stem_channels=8),
    'resnext': dict(type='ResNeXt', depth=50, base_channels=16, groups=4, width_per_group=2),
    'vit': dict(type='VisionTransformer', img_size=32, patch_size=8, out_type='featmap',
                arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)),
    'convnext': dict(type='ConvNeXt', arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64]),
                     out_indices=(0, 1, 2, 3)),
    'swin': dict(type='SwinTransformer', img_size=32, window_size=3, out_indices=(0, 1, 2, 3),
                 arch=dict(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2])),
    'regnet': dict(type='RegNet', arch='regnetx_400mf', out_indices=(0, 1, 2, 3)),
    'csp': dict(type='CSPDarkNet', depth=53, out_indices=(0, 2, 4)),
    'hrnet': dict(type='HRNet', extra=_HR_SMALL),
    'timm': dict(type='TIMMBackbone', model_name='resnet10t'),
    'torchvision': dict(type='TorchvisionBackbone', model_name='mobilenet_v3_small',
                        return_nodes=['features.1', 'features.12']),
}

FAMILIES = {'resnet': RESNET, 'resnext': RESNEXT, 'vit': VIT, 'convnext': CONVNEXT,
            'swin': SWIN, 'regnet': REGNET, 'csp': CSP, 'hrnet': HRNET}
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


@pytest.mark.parametrize('family', sorted(VALID))
def test_fuzz_inputs(family):
    """Bad and odd inputs on a valid model of each family: dtypes, empty batches, sizes."""
    if family in WRAPPERS:
        pytest.importorskip(family, reason=f'{family} is not installed')
    cfg = VALID[family]
    model = build_backbone(cfg)  # once: check_forward sets the model's dtype for each example

    @SETTINGS
    @given(image=images())
    def run(image):
        assert check_forward(model, cfg, image) in ('built', 'dtype refused', 'input refused')
    run()
