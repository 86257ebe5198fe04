"""Config fuzzing: every registered backbone, argument combinations valid and invalid.

The property: each config is a valid one with, half of the time, one argument known to be
wrong (a bad value, a ``type`` that is a dotted path or a foreign class, a nested config naming
code). A config with a fault is refused at construction with a ValueError/TypeError/KeyError
whose message names that argument; a valid one builds, runs on a random small image and returns
what its metadata says. Any other exception (AssertionError, IndexError,
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
import collections
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


def fault_names(cfg: dict, fault: str) -> list:
    """What a refusal of ``cfg`` must name: the argument at fault (for a bad ``type``, the type
    itself: its string, or the class's name)."""
    if fault != 'type':
        return [fault]
    value = cfg['type']
    return [value] if isinstance(value, str) else [getattr(value, '__name__', repr(value))]


def check_config(cfg: dict, image, fault=None):
    """The fuzz oracle for one config and one input size.

    ``fault`` is the one argument known to be wrong (``None``: every argument is valid). A
    config with a fault must be refused at construction with a ValueError/TypeError/KeyError
    whose message names that argument; a config without one must build and pass
    :func:`check_forward`. Returns the outcome (``'refused'``, ``'built'``, ...).
    """
    try:
        model = build_backbone(cfg)
    except ALLOWED as exc:
        message = str(exc)
        assert fault is not None, f'a valid config was refused: {cfg}: {type(exc).__name__}: ' \
            f'{message}'
        named = [name for name in fault_names(cfg, fault) if name in message]
        assert named, (f'{type(exc).__name__} does not name the argument at fault ({fault!r}) '
                       f'of {cfg}: {message}')
        return 'refused'
    assert fault is None, f'{cfg} built although {fault}={cfg[fault]!r} is wrong'
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


def faulty(base, valid: dict, bad: list, tidy=None):
    """``(cfg, fault)``: ``base`` with some ``valid`` options (each right whatever the others
    are), and half of the time one ``(argument, wrong value)`` of ``bad`` on top: the oracle
    then knows which argument a refusal must name."""
    def make(parts):
        cfg, wrong = parts
        cfg = dict(cfg)
        if tidy is not None:
            cfg = tidy(cfg)
        if wrong is None:
            return cfg, None
        key, value = wrong
        cfg[key] = value
        return cfg, key
    options = st.fixed_dictionaries(base, optional=valid)
    return st.tuples(options, st.one_of(st.none(), st.sampled_from(bad))).map(make)


def valid_out_indices(num_stages: int):
    subsets = st.lists(st.integers(0, num_stages - 1), min_size=1, max_size=num_stages,
                       unique=True).map(sorted).flatmap(_plain_or_numpy)
    return st.one_of(subsets, st.integers(-num_stages, num_stages - 1))


def bad_out_indices(num_stages: int) -> list:
    return [('out_indices', v) for v in ('0', [0.5], np.array([[0, 1]]), (num_stages,), [],
                                         (0, 0), (0, -num_stages))]


def bad_frozen_stages(high: int) -> list:
    return [('frozen_stages', -2), ('frozen_stages', high + 1), ('frozen_stages', '1')]


# A type that is a dotted path or a foreign class, and nested configs naming code: refused,
# naming the type or the argument, and nothing imported or called (tests/test_routes.py).
ROUTE_FAULTS = [('type', 'os.system'), ('type', 'mmcls.subprocess.run'),
                ('type', 'collections.OrderedDict'), ('type', collections.OrderedDict),
                ('type', print), ('type', 'mmbackbones.os.path.join'),
                ('init_cfg', dict(type='os.system', command='true')),
                ('init_cfg', [dict(type='Kaiming', layer='Conv2d'), dict(type='subprocess.run')])]
NORM_FAULTS = [('norm_cfg', dict(type='NoSuchNorm')), ('norm_cfg', 'BN'),
               ('norm_cfg', dict(type='BN', requires_grad='yes')),
               ('norm_cfg', dict(type='os.system', command='true')),
               ('norm_cfg', dict(type='collections.OrderedDict'))]
BN_NORMS = st.sampled_from([dict(type='BN'), dict(type='FrozenBN'),
                            dict(type='BN', requires_grad=False)])
NORMS = st.one_of(BN_NORMS, st.just(dict(type='GN', num_groups=4)))


def _plain_resnet_only(cfg):
    if cfg['type'] != 'ResNet':  # ResNetV1c/V1d fix their stem and shortcut
        cfg.pop('deep_stem', None)
        cfg.pop('avg_down', None)
    return cfg


RESNET = faulty({
    'type': st.sampled_from(['ResNet', 'ResNetV1c', 'ResNetV1d']),
    'depth': st.sampled_from([18, 34, 50]),
    'base_channels': st.sampled_from([8, 16]),
    'stem_channels': st.sampled_from([8, 16]),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
    'style': st.sampled_from(['pytorch', 'caffe']),
    'deep_stem': st.booleans(),
    'avg_down': st.booleans(),
    'strides': st.sampled_from([(1, 2, 2, 2), (1, 2, 2, 1)]),
    'dilations': st.sampled_from([(1, 1, 1, 1), (1, 1, 1, 2)]),
    'norm_cfg': NORMS,
    'norm_eval': st.booleans(),
    'drop_path_rate': st.sampled_from([0.0, 0.1]),
    'in_channels': st.sampled_from([1, 3]),
    'zero_init_residual': st.booleans(),
}, [('depth', 20), ('depth', '50'), ('depth', None), ('num_stages', 0), ('num_stages', 5),
    ('strides', (0, 2, 2, 2)), ('strides', (1, 2)), ('dilations', (1, 1)), ('style', 'tf'),
    ('base_channels', 0), ('base_channels', -4), ('stem_channels', 0),
    ('norm_cfg', dict(type='GN', num_groups=32)), ('drop_path_rate', 1.5),
    ('drop_path_rate', -0.1), ('in_channels', 0), ('deth', 50)]
   + bad_out_indices(4) + bad_frozen_stages(4) + NORM_FAULTS + ROUTE_FAULTS,
    tidy=_plain_resnet_only)

RESNEXT = faulty({
    'type': st.just('ResNeXt'), 'depth': st.just(50), 'base_channels': st.just(16),
    'groups': st.sampled_from([1, 4]), 'width_per_group': st.sampled_from([2, 4]),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
}, [('groups', 0), ('width_per_group', 0), ('depth', 18)]
   + bad_out_indices(4) + bad_frozen_stages(4) + ROUTE_FAULTS)

TINY_VIT_ARCHS = [dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64),
                  dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=32)]
VIT = faulty({
    'type': st.sampled_from(['VisionTransformer', 'ViT']),
    'arch': st.sampled_from(TINY_VIT_ARCHS),
    'img_size': st.sampled_from([32, 48]),
    'patch_size': st.sampled_from([8, 16]),
}, {
    'out_indices': valid_out_indices(3),
    'out_type': st.sampled_from(['raw', 'cls_token', 'featmap', 'avg_featmap']),
    'final_norm': st.booleans(),
    'frozen_stages': frozen_stages(-1, 3),
    'interpolate_mode': st.sampled_from(['bicubic', 'bilinear']),
    'layer_scale_init_value': st.sampled_from([0.0, 0.1]),
    'pre_norm': st.booleans(),
    'drop_path_rate': st.sampled_from([0.0, 0.1]),
    'qkv_bias': st.booleans(),
    'in_channels': st.sampled_from([1, 3]),
}, [('arch', 'no-such-arch'), ('arch', 7),
    ('arch', dict(embed_dims=30, num_layers=3, num_heads=4, feedforward_channels=64)),
    ('arch', dict(embed_dims=32, num_layers=3)),
    ('arch', dict(TINY_VIT_ARCHS[0], qkv_bais=True)),
    ('arch', dict(TINY_VIT_ARCHS[0], num_layers=10**9)),
    ('img_size', 0), ('img_size', 10**6), ('img_size', (32, 10**6)), ('patch_size', 0),
    ('out_type', 'bad'), ('interpolate_mode', 'bad'), ('drop_path_rate', 2.0),
    ('in_channels', 0)] + bad_out_indices(3) + bad_frozen_stages(3) + ROUTE_FAULTS)

CONVNEXT = faulty({
    'type': st.just('ConvNeXt'),
    'arch': st.sampled_from(['atto', dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64])]),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 3),
    'drop_path_rate': st.sampled_from([0.0, 0.2]),
    'gap_before_final_norm': st.booleans(),
    'layer_scale_init_value': st.sampled_from([0.0, 1e-6]),
    'use_grn': st.booleans(),
    'linear_pw_conv': st.booleans(),
    'in_channels': st.sampled_from([1, 3]),
    'stem_patch_size': st.sampled_from([2, 4]),
}, [('arch', 'no-such-arch'),
    ('arch', dict(depths=[10**9, 1, 1, 1], channels=[8, 16, 32, 64])),
    ('arch', dict(depths=[1, 1], channels=[8, 16, 32])),
    ('drop_path_rate', 1.5), ('in_channels', 0), ('stem_patch_size', 0),
    ('act_cfg', dict(type='os.system', command='true')), ('act_cfg', dict(type='antigravity'))]
   + bad_out_indices(4) + bad_frozen_stages(4) + ROUTE_FAULTS)

SWIN = faulty({
    'type': st.just('SwinTransformer'),
    'arch': st.just(dict(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2])),
    'img_size': st.sampled_from([32, 64]),
    'window_size': st.sampled_from([2, 3]),
}, {
    'patch_size': st.sampled_from([2, 4]),
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 3),
    'out_after_downsample': st.booleans(),
    'use_abs_pos_embed': st.booleans(),
    'pad_small_map': st.booleans(),
    'drop_path_rate': st.sampled_from([0.0, 0.1]),
    'in_channels': st.sampled_from([1, 3]),
}, [('arch', dict(embed_dims=16, depths=[1, 1], num_heads=[1, 1, 2])),
    ('arch', dict(embed_dims=16, depths=[1, 10**9, 1, 1], num_heads=[1, 1, 2, 2])),
    ('arch', 'no-such-arch'), ('img_size', 0), ('img_size', 10**5), ('window_size', 0),
    ('window_size', 10**6), ('drop_path_rate', 1.5), ('in_channels', 0)]
   + bad_out_indices(4) + bad_frozen_stages(4) + ROUTE_FAULTS)

REGNET = faulty({
    'type': st.just('RegNet'), 'arch': st.just('regnetx_400mf'),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
    'strides': st.sampled_from([(2, 2, 2, 2), (2, 2, 2, 1)]),
    'dilations': st.sampled_from([(1, 1, 1, 1), (1, 1, 1, 2)]),
    'in_channels': st.sampled_from([1, 3]),
    'norm_cfg': BN_NORMS,
}, [('arch', 'regnetx_4.0gf_typo'), ('arch', dict(w0=24)),
    ('arch', dict(w0=24, wa=24.48, wm=2.54, group_w=16, depth=10**9, bot_mul=1.0)),
    ('arch', dict(w0=24, wa=1e9, wm=2.54, group_w=16, depth=6, bot_mul=1.0)),
    ('strides', (2, 2)), ('in_channels', 0)]
   + bad_out_indices(4) + bad_frozen_stages(4) + NORM_FAULTS + ROUTE_FAULTS)

CSP = faulty({
    'type': st.sampled_from(['CSPDarkNet', 'CSPResNet', 'CSPResNeXt']),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 2),
    'drop_path_rate': st.sampled_from([0.0, 0.1]),
    'in_channels': st.sampled_from([1, 3]),
}, [('depth', 18), ('depth', '50'), ('drop_path_rate', 1.5), ('in_channels', 0),
    ('out_indices', (7,)), ('out_indices', '0'), ('frozen_stages', -2)] + ROUTE_FAULTS,
    tidy=lambda cfg: dict(cfg, depth=53 if cfg['type'] == 'CSPDarkNet' else 50))

_HR_SMALL = {f'stage{i}': dict(num_modules=1, num_branches=i, block='BASIC',
                               num_blocks=(1, ) * i, num_channels=(8, 16, 32, 64)[:i])
             for i in range(1, 5)}
HRNET = faulty({
    'type': st.just('HRNet'), 'extra': st.just(_HR_SMALL),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
    'multiscale_output': st.booleans(),
    'upsample_mode': st.sampled_from(['nearest', 'bilinear']),
    'in_channels': st.sampled_from([1, 3]),
    'norm_cfg': BN_NORMS,
}, [('extra', dict(_HR_SMALL, stage3=dict(_HR_SMALL['stage3'], num_blocks=(1, )))),
    ('extra', {'stage1': _HR_SMALL['stage1']}), ('extra', 'w18'),
    ('multiscale_output', 0), ('upsample_mode', 'area'), ('in_channels', 0)]
   + bad_out_indices(4) + bad_frozen_stages(4) + NORM_FAULTS + ROUTE_FAULTS)

_BEIT_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
BEIT = faulty({
    'type': st.just('BEiTViT'), 'arch': st.just(_BEIT_ARCH), 'img_size': st.just(32),
    'patch_size': st.just(8),
}, {
    'out_indices': valid_out_indices(2),
    'frozen_stages': frozen_stages(-1, 2),
    'out_type': st.sampled_from(['featmap', 'avg_featmap', 'raw', 'cls_token']),
    'use_abs_pos_emb': st.booleans(),
    'bias': st.sampled_from(['qv_bias', True, False]),
    'in_channels': st.sampled_from([1, 3]),
}, [('bias', 'qkv'), ('out_type', 'map'), ('layer_scale_init_value', -1.0),
    ('use_shared_rel_pos_bias', True), ('patch_size', 0), ('in_channels', 0),
    ('arch', 'huge')] + bad_out_indices(2) + bad_frozen_stages(2) + ROUTE_FAULTS)

_MSCAN_TINY = dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], mlp_ratios=[4, 4, 4, 4])
MSCAN = faulty({
    'type': st.just('MSCAN'), **{k: st.just(v) for k, v in _MSCAN_TINY.items()},
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
    'norm_cfg': BN_NORMS,
    'in_channels': st.sampled_from([1, 3]),
    'drop_path_rate': st.sampled_from([0.0, 0.1]),
}, [('depths', [1, 1, 1]), ('embed_dims', 'wide'), ('mlp_ratios', [4, 4, 0, 4]),
    ('attention_kernel_sizes', [5, 7]), ('num_stages', 5), ('in_channels', 0)]
   + bad_out_indices(4) + bad_frozen_stages(4) + NORM_FAULTS + ROUTE_FAULTS)

YOLO_CSP = faulty({
    'type': st.sampled_from(['YOLOXCSPDarknet', 'CSPNeXt']),
    'deepen_factor': st.just(0.33), 'widen_factor': st.just(0.125),
}, {
    'arch': st.sampled_from(['P5', 'P6']),
    'out_indices': valid_out_indices(5),
    'frozen_stages': frozen_stages(-1, 4),
    'use_depthwise': st.booleans(),
    'in_channels': st.sampled_from([1, 3]),
    'norm_cfg': BN_NORMS,
}, [('arch', 'P7'), ('widen_factor', 0), ('deepen_factor', -1.0), ('deepen_factor', '1'),
    ('arch_ovewrite', [[64, 128]]), ('arch_ovewrite', [[64, 10**9, 1, True, False]]),
    ('in_channels', 0), ('use_depthwise', 'no')]
   + bad_out_indices(6) + bad_frozen_stages(5) + NORM_FAULTS + ROUTE_FAULTS)

DARKNET = faulty({'type': st.just('Darknet')}, {
    'out_indices': valid_out_indices(6),
    'frozen_stages': frozen_stages(-1, 5),
    'norm_eval': st.booleans(),
    'in_channels': st.sampled_from([1, 3]),
    'norm_cfg': BN_NORMS,
}, [('depth', 21), ('in_channels', 0), ('norm_eval', 1)]
   + bad_out_indices(6) + bad_frozen_stages(5) + NORM_FAULTS + ROUTE_FAULTS)

TIMM = faulty({
    'type': st.just('TIMMBackbone'),
    'model_name': st.sampled_from(['resnet10t', 'mobilenetv3_small_050']),
}, {
    'out_indices': valid_out_indices(4),
    'in_channels': st.sampled_from([1, 3]),
    'norm_layer': st.sampled_from([None, 'FrozenBN']),
    'drop_path_rate': st.sampled_from([0.0, 0.1]),
}, [('model_name', 'resnet1O'), ('model_name', 42), ('drop_path_rate', -0.5),
    ('drop_path_rate', 1.5), ('in_channels', 0), ('norm_layer', 'Nope'),
    ('output_stride', 3), ('out_indices', (9,)), ('frozen_stages', -2)] + ROUTE_FAULTS)

TORCHVISION = st.tuples(
    st.sampled_from([dict(model_name='resnet18', return_nodes=['layer1', 'layer3']),
                     dict(model_name='resnet18', return_nodes={'layer2': 'res3'}),
                     dict(model_name='mobilenet_v3_small',
                          return_nodes=['features.1', 'features.12'])]),
    faulty({'type': st.just('TorchvisionBackbone')}, {
        'norm_layer': st.sampled_from([None, 'FrozenBN']),
    }, [('model_name', 'resnet_typo'), ('return_nodes', ['layerX']),
        ('return_nodes', {'layer2': 3}), ('weights', 'BOGUS_WEIGHTS'), ('weights', 7),
        ('norm_layer', 'Nope')] + ROUTE_FAULTS)).map(
    lambda parts: ({**parts[0], **parts[1][0]}, parts[1][1]))

_FOCAL = dict(embed_dims=8, depths=[1, 1, 1, 1], focal_levels=[2, 2, 2, 2],
              focal_windows=[3, 3, 3, 3])
FOCALNET = faulty({
    'type': st.just('FocalNet'),
    'arch': st.sampled_from([_FOCAL, dict(_FOCAL, use_postln=True, use_conv_embed=True,
                                          use_layerscale=True)]),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
    'drop_path_rate': st.sampled_from([0.0, 0.2]),
    'patch_norm': st.booleans(),
    'normalize_modulator': st.booleans(),
    'in_channels': st.sampled_from([1, 3]),
}, [('arch', 'no-such-arch'), ('arch', dict(_FOCAL, depths=[10**9, 1, 1, 1])),
    ('arch', dict(_FOCAL, depths=[1, 1])), ('arch', dict(_FOCAL, use_postln='yes')),
    ('drop_path_rate', 1.5), ('in_channels', 0), ('mlp_ratio', 0), ('patch_size', 0)]
   + bad_out_indices(4) + bad_frozen_stages(4) + ROUTE_FAULTS)

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
    'yolo_csp': dict(type='CSPNeXt', deepen_factor=0.167, widen_factor=0.125,
                     out_indices=(0, 2, 4)),
    'darknet': dict(type='Darknet', out_indices=(1, 3, 5)),
    'timm': dict(type='TIMMBackbone', model_name='resnet10t'),
    'torchvision': dict(type='TorchvisionBackbone', model_name='mobilenet_v3_small',
                        return_nodes=['features.1', 'features.12']),
    'focalnet': dict(type='FocalNet', arch=_FOCAL, out_indices=(0, 1, 2, 3)),
}

FAMILIES = {'resnet': RESNET, 'resnext': RESNEXT, 'vit': VIT, 'convnext': CONVNEXT,
            'swin': SWIN, 'regnet': REGNET, 'csp': CSP, 'hrnet': HRNET,
            'focalnet': FOCALNET}
FAMILIES.update(yolo_csp=YOLO_CSP, darknet=DARKNET)
WRAPPERS = {'timm': TIMM, 'torchvision': TORCHVISION}
FAMILIES['beit'] = BEIT
FAMILIES['mscan'] = MSCAN
VALID['mscan'] = dict(type='MSCAN', norm_cfg=dict(type='BN'), **_MSCAN_TINY)
VALID['beit'] = dict(type='BEiTViT', img_size=32, patch_size=8, out_type='featmap',
                     arch=_BEIT_ARCH)

_MOBILE_BAD = [('in_channels', 0)] + NORM_FAULTS + ROUTE_FAULTS
MOBILENET_V2 = faulty({'type': st.just('MobileNetV2')}, {
    'out_indices': valid_out_indices(8), 'frozen_stages': frozen_stages(-1, 7),
    'widen_factor': st.sampled_from([0.35, 0.5]), 'in_channels': st.sampled_from([1, 3]),
    'strides': st.sampled_from([(1, 2, 2, 2, 1, 2, 1), (1, 2, 2, 1, 1, 1, 1)]),
    'dilations': st.sampled_from([(1, ) * 7, (1, 1, 1, 2, 2, 4, 4)]), 'norm_cfg': BN_NORMS,
}, [('widen_factor', 0), ('widen_factor', '1'), ('strides', (1, 2)), ('dilations', (0, ) * 7)]
   + bad_out_indices(8) + bad_frozen_stages(7) + _MOBILE_BAD)
MOBILENET_V3 = faulty({'type': st.just('MobileNetV3'),
                       'arch': st.sampled_from(['small', 'small_050'])}, {
    'out_indices': valid_out_indices(13), 'frozen_stages': frozen_stages(-1, 12),
    'output_stride': st.sampled_from([32, 16, 8]), 'tf_padding': st.booleans(),
    'reduction_factor': st.sampled_from([1, 2]), 'in_channels': st.sampled_from([1, 3]),
    'norm_cfg': BN_NORMS,
}, [('arch', 'tiny'), ('output_stride', 4), ('reduction_factor', 0), ('tf_padding', 1)]
   + bad_out_indices(13) + bad_frozen_stages(12) + _MOBILE_BAD)
EFFICIENTNET = faulty({'type': st.just('EfficientNet'), 'arch': st.sampled_from(['b0', 'es'])}, {
    'out_indices': valid_out_indices(7), 'frozen_stages': frozen_stages(-1, 7),
    'conv_cfg': st.sampled_from([None, dict(type='Conv2dAdaptivePadding')]),
    'drop_path_rate': st.sampled_from([0.0, 0.1]), 'in_channels': st.sampled_from([1, 3]),
    'edge_residual_stride': st.sampled_from(['conv1', 'conv2']), 'norm_cfg': BN_NORMS,
}, [('arch', 'b9'), ('drop_path_rate', 1.5), ('edge_residual_stride', 'conv3')]
   + bad_out_indices(7) + bad_frozen_stages(7) + _MOBILE_BAD)
EFFICIENTNET_V2 = faulty({'type': st.just('EfficientNetV2'), 'arch': st.just('b0')}, {
    'out_indices': valid_out_indices(8), 'frozen_stages': frozen_stages(-1, 8),
    'drop_path_rate': st.sampled_from([0.0, 0.1]), 'in_channels': st.sampled_from([1, 3]),
    'norm_cfg': BN_NORMS,
}, [('arch', 'xs'), ('drop_path_rate', -0.1)] + bad_out_indices(8) + bad_frozen_stages(8)
   + _MOBILE_BAD)
FAMILIES.update({'mobilenet_v2': MOBILENET_V2, 'mobilenet_v3': MOBILENET_V3,
                 'efficientnet': EFFICIENTNET, 'efficientnet_v2': EFFICIENTNET_V2})
VALID.update({
    'mobilenet_v2': dict(type='MobileNetV2', widen_factor=0.35, out_indices=(0, 3, 7)),
    'mobilenet_v3': dict(type='MobileNetV3', arch='small_050', out_indices=(0, 4, 12),
                         tf_padding=True),
    'efficientnet': dict(type='EfficientNet', arch='b0', out_indices=(1, 3, 6)),
    'efficientnet_v2': dict(type='EfficientNetV2', arch='b0', out_indices=(0, 2, 7)),
})

PVT = faulty({
    'type': st.sampled_from(['PyramidVisionTransformer', 'PyramidVisionTransformerV2']),
    'embed_dims': st.just(8), 'num_layers': st.just([1, 1, 1, 1]),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
    'pretrain_img_size': st.sampled_from([32, 64, (64, 32)]),
    'mlp_ratios': st.sampled_from([[8, 8, 4, 4], [2, 2, 2, 2]]),
    'drop_path_rate': st.sampled_from([0.0, 0.1]),
    'in_channels': st.sampled_from([1, 3]),
}, [('num_layers', [1, 1, 1]), ('num_heads', [1, 2, 0, 8]), ('sr_ratios', 'eight'),
    ('mlp_ratios', [4, 4]), ('pretrain_img_size', (224, 224, 3)), ('qkv_bias', 'yes'),
    ('norm_cfg', dict(type='BN')), ('drop_path_rate', 1.5), ('in_channels', 0),
    ('arch', 'b9')] + bad_out_indices(4) + bad_frozen_stages(4) + ROUTE_FAULTS)

_TWINS_ARCH = dict(embed_dims=[8, 16, 24, 32], depths=[1, 2, 1, 1], num_heads=[1, 2, 3, 4],
                   patch_sizes=[4, 2, 2, 2], strides=[4, 2, 2, 2], mlp_ratios=[2, 2, 2, 2],
                   sr_ratios=[8, 4, 2, 1])
TWINS = faulty({
    'type': st.just('SVT'), 'arch': st.just(dict(_TWINS_ARCH, window_sizes=[3, 3, 2, 2])),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
    'norm_after_stage': st.sampled_from([True, False, [False, False, False, True]]),
    'qkv_bias': st.booleans(),
    'in_channels': st.sampled_from([1, 3]),
}, [('arch', 'tiny'), ('arch', _TWINS_ARCH), ('arch', dict(_TWINS_ARCH, depths=[1, 1])),
    ('norm_after_stage', [True]), ('norm_cfg', dict(type='BN')), ('drop_path_rate', -1),
    ('in_channels', 0)] + bad_out_indices(4) + bad_frozen_stages(4) + ROUTE_FAULTS)
FAMILIES.update(pvt=PVT, twins=TWINS)
VALID.update(pvt=dict(type='PyramidVisionTransformerV2', embed_dims=8, num_layers=[1, 1, 1, 1]),
             twins=dict(type='SVT', arch=dict(_TWINS_ARCH, window_sizes=[3, 3, 2, 2]),
                        out_indices=(0, 1, 2, 3)))

RESNEST = faulty({
    'type': st.just('ResNeSt'), 'depth': st.just(14), 'base_channels': st.just(16),
    'stem_channels': st.just(16),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
    'groups': st.sampled_from([1, 2]),
    'radix': st.sampled_from([1, 2]),
    'avg_down_stride': st.booleans(),
    'norm_cfg': BN_NORMS,
    'in_channels': st.sampled_from([1, 3]),
}, [('radix', 0), ('reduction_factor', 0), ('groups', 0), ('depth', 18),
    ('avg_down_stride', 1), ('deep_stem', False), ('in_channels', 0)]
   + bad_out_indices(4) + bad_frozen_stages(4) + NORM_FAULTS + ROUTE_FAULTS)
RES2NET = faulty({
    'type': st.just('Res2Net'), 'depth': st.just(50), 'base_channels': st.just(16),
    'stem_channels': st.just(16), 'base_width': st.just(8),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
    'scales': st.sampled_from([2, 4]),
    'deep_stem': st.booleans(),
    'avg_down': st.booleans(),
    'stage_pool': st.sampled_from(['always', 'strided']),
    'norm_cfg': BN_NORMS,
    'in_channels': st.sampled_from([1, 3]),
}, [('scales', 1), ('scales', 0), ('base_width', 0), ('depth', 18), ('stage_pool', 'never'),
    ('in_channels', 0)]
   + bad_out_indices(4) + bad_frozen_stages(4) + NORM_FAULTS + ROUTE_FAULTS)
FAMILIES.update(resnest=RESNEST, res2net=RES2NET)
VALID.update(resnest=dict(type='ResNeSt', depth=14, base_channels=16, stem_channels=16,
                          out_indices=(0, 1, 2, 3)),
             res2net=dict(type='Res2Net', depth=50, base_channels=16, stem_channels=16,
                          base_width=8, out_indices=(0, 1, 2, 3)))

# ViTDet / EVA options of the core ViT on the token map (no class token): windows (padded),
# relative positions (resized linearly or by EVA's cubic spline), residual conv blocks, rope in
# windowed and global blocks, layer scale, query/value biases, no absolute positions
_VITDET_ARCH = dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
VITDET = faulty({
    'type': st.just('VisionTransformer'), 'arch': st.just(_VITDET_ARCH),
    'img_size': st.sampled_from([32, 48]), 'patch_size': st.just(8),
    'with_cls_token': st.just(False), 'out_type': st.just('featmap'),
    'final_norm': st.just(False), 'window_size': st.sampled_from([2, 3]),
    'window_block_indexes': st.lists(st.integers(0, 3), min_size=1, max_size=4,
                                     unique=True).map(sorted),
}, {
    'use_rel_pos': st.booleans(),
    'rel_pos_zero_init': st.booleans(),
    'rel_pos_resize': st.sampled_from(['linear', 'beit']),
    'residual_block_indexes': st.lists(st.integers(0, 3), max_size=2, unique=True),
    'rope': st.sampled_from([False, True, dict(ref_grid=(16, 16)), dict(interpolate=False)]),
    'layer_scale_init_value': st.sampled_from([0.0, 1e-5, 1.0]),
    'qkv_bias': st.sampled_from([True, False, 'qv']),
    'with_pos_embed': st.booleans(),
    'layer_cfgs': st.sampled_from([dict(), dict(ffn_type='swiglu', sub_ln=True)]),
}, [('window_size', -1), ('window_block_indexes', [9]), ('window_block_indexes', 1),
    ('residual_block_indexes', [4]), ('residual_block_indexes', 'all'),
    ('rel_pos_resize', 'cubic'), ('qkv_bias', 'kv'), ('with_pos_embed', 'no'),
    ('use_rel_pos', 'yes'), ('rope', dict(layout='spiral')), ('rope', dict(interpolate='x')),
    ('num_register_tokens', 2)] + ROUTE_FAULTS)
# the modern token options with a class token: registers, layer scale, rope archs (EVA-02),
# SwiGLU, query/value biases
VIT_MODERN = faulty({
    'type': st.just('VisionTransformer'),
    'arch': st.sampled_from([_VITDET_ARCH, 'eva02-tiny']),
    'img_size': st.just(32), 'patch_size': st.just(8),
}, {
    'num_register_tokens': st.sampled_from([0, 1, 4]),
    'layer_scale_init_value': st.sampled_from([0.0, 1e-5, 1.0]),
    'rope': st.sampled_from([True, dict(layout='tiled'), dict(interpolate=False)]),
    'layer_cfgs': st.sampled_from([dict(ffn_type='swiglu', sub_ln=True),
                                   dict(ffn_type='swiglu_fused')]),
    'qkv_bias': st.sampled_from([True, False, 'qv']),
    'out_type': st.sampled_from(['raw', 'cls_token', 'featmap', 'avg_featmap']),
    'interpolate_antialias': st.booleans(),
    'with_pos_embed': st.booleans(),
}, [('num_register_tokens', -1), ('num_register_tokens', 10**6),
    ('layer_scale_init_value', -1.0), ('rope', dict(layout='spiral')), ('rope', 'yes'),
    ('layer_cfgs', dict(ffn_type='geglu')), ('qkv_bias', 'kv'), ('with_pos_embed', 'no'),
    ('residual_block_indexes', [0]), ('use_rel_pos', True)] + ROUTE_FAULTS)
FAMILIES.update(vitdet=VITDET, vit_modern=VIT_MODERN)
VALID.update(vitdet=dict(type='VisionTransformer', arch=_VITDET_ARCH, img_size=32, patch_size=8,
                         with_cls_token=False, out_type='featmap', final_norm=False,
                         window_size=3, window_block_indexes=[0, 2], use_rel_pos=True,
                         rel_pos_resize='beit', residual_block_indexes=[1], qkv_bias='qv',
                         rope=dict(ref_grid=(16, 16)), layer_scale_init_value=1.0))

_STDC_TINY = dict(channels=(8, 16, 32, 32, 64))
STDC = faulty({'type': st.just('STDCNet'), 'channels': st.just(_STDC_TINY['channels'])}, {
    'stdc_type': st.sampled_from(['STDCNet1', 'STDCNet2']),
    'bottleneck_type': st.sampled_from(['cat', 'add']),
    'num_convs': st.sampled_from([2, 3, 4]),
    'with_final_conv': st.booleans(),
    'out_indices': valid_out_indices(5),
    'frozen_stages': frozen_stages(-1, 5),
    'norm_eval': st.booleans(),
    'in_channels': st.sampled_from([1, 3]),
    'norm_cfg': BN_NORMS,
}, [('stdc_type', 'STDCNet3'), ('bottleneck_type', 'sum'), ('channels', (8, 16, 32, 64)),
    ('channels', (8, 16, 30, 32, 64)), ('num_convs', 1), ('num_convs', 10**9),
    ('act_cfg', 'ReLU'), ('with_final_conv', 1), ('in_channels', 0)]
   + bad_out_indices(5) + bad_frozen_stages(5) + NORM_FAULTS + ROUTE_FAULTS)
_STDC_PATH_TINY = dict(backbone_cfg=dict(type='STDCNet', **_STDC_TINY), last_in_channels=(64, 32),
                       out_channels=16, ffm_cfg=dict(in_channels=48, out_channels=32))


def _nearest_without_align_corners(cfg):
    if cfg.get('upsample_mode', 'nearest') == 'nearest':
        cfg.pop('align_corners', None)
    return cfg


STDC_CONTEXT_PATH = faulty({
    'type': st.just('STDCContextPathNet'),
    **{k: st.just(v) for k, v in _STDC_PATH_TINY.items()},
}, {
    'upsample_mode': st.sampled_from(['nearest', 'bilinear', 'bicubic']),
    'align_corners': st.sampled_from([None, True, False]),
    'norm_eval': st.booleans(),
    'norm_cfg': BN_NORMS,
}, [('backbone_cfg', dict(type='os.system')), ('backbone_cfg', 'STDCNet'),
    ('backbone_cfg', dict(type='STDCNet', out_indices=(3, 4))),
    ('backbone_cfg', dict(type='STDCNet', channels=(8, 16, 32, 64))),
    ('last_in_channels', (1024, 512)), ('ffm_cfg', dict(in_channels=512, out_channels=256)),
    ('ffm_cfg', dict(in_channels=48, out_channels=32, scale=4)), ('out_channels', 0),
    ('upsample_mode', 'area')] + NORM_FAULTS + ROUTE_FAULTS, tidy=_nearest_without_align_corners)
FAMILIES.update(stdc=STDC, stdc_context_path=STDC_CONTEXT_PATH)
VALID.update(stdc=dict(type='STDCNet', out_indices=(0, 2, 4), **_STDC_TINY),
             stdc_context_path=dict(type='STDCContextPathNet', **_STDC_PATH_TINY))


DETECTORS = faulty({
    'type': st.just('DetectoRS_ResNet'), 'depth': st.just(50), 'base_channels': st.just(8),
    'stem_channels': st.just(8),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
    'conv_cfg': st.sampled_from([None, dict(type='ConvAWS')]),
    'sac': st.sampled_from([None, dict(type='SAC'), dict(type='SAC', use_deform=False)]),
    'stage_with_sac': st.sampled_from([(False, True, True, True), (False, False, False, True)]),
    'rfp_inplanes': st.sampled_from([None, 8]),
    'output_img': st.booleans(),
    'norm_cfg': BN_NORMS,
    'in_channels': st.sampled_from([1, 3]),
}, [('sac', dict(type='DCN')), ('sac', 'SAC'), ('stage_with_sac', (True, )),
    ('rfp_inplanes', 0), ('output_img', 1), ('depth', 18), ('in_channels', 0)]
   + bad_out_indices(4) + bad_frozen_stages(4) + NORM_FAULTS + ROUTE_FAULTS)
# test_branch_idx=-1 is left out here: in eval mode the trident stage then returns every branch
# (3N rows for N images), which this oracle's "batch N in, batch N out" cannot check;
# tests/models/backbones/test_trident_resnet.py checks it against out_batch_factors
TRIDENT = faulty({
    'type': st.just('TridentResNet'), 'depth': st.just(50), 'base_channels': st.just(8),
    'stem_channels': st.just(8), 'num_branch': st.just(3), 'trident_dilations': st.just((1, 2, 3)),
    'test_branch_idx': st.sampled_from([0, 1, 2]),
}, {
    'out_indices': valid_out_indices(3),
    'frozen_stages': frozen_stages(-1, 3),
    'style': st.sampled_from(['pytorch', 'caffe']),
    'norm_cfg': BN_NORMS,
    'in_channels': st.sampled_from([1, 3]),
}, [('num_branch', 0), ('trident_dilations', (1, 2)), ('test_branch_idx', 3),
    ('num_stages', 4), ('depth', 18), ('in_channels', 0)]
   + bad_out_indices(3) + bad_frozen_stages(3) + NORM_FAULTS + ROUTE_FAULTS)
FAMILIES.update(detectors=DETECTORS, trident=TRIDENT)
VALID.update(detectors=dict(type='DetectoRS_ResNet', depth=50, base_channels=8, stem_channels=8,
                            conv_cfg=dict(type='ConvAWS'), sac=dict(type='SAC'),
                            stage_with_sac=(False, True, True, True), output_img=True,
                            out_indices=(0, 1, 2, 3)),
             trident=dict(type='TridentResNet', depth=50, base_channels=8, stem_channels=8,
                          num_branch=3, test_branch_idx=1, trident_dilations=(1, 2, 3),
                          out_indices=(0, 1, 2)))


# VGG (mmpretrain's), mmdet's SSDVGG and HourglassNet (a tiny hourglass)
VGG = faulty({'type': st.just('VGG'), 'depth': st.sampled_from([11, 13])}, {
    'out_indices': valid_out_indices(5), 'frozen_stages': frozen_stages(-1, 5),
    'ceil_mode': st.booleans(), 'with_last_pool': st.booleans(),
    'layout': st.sampled_from(['mmpretrain', 'torchvision']), 'norm_eval': st.booleans(),
    'in_channels': st.sampled_from([1, 3]), 'norm_cfg': BN_NORMS,
}, [('depth', 12), ('depth', '11'), ('num_stages', 0), ('num_stages', 6), ('dilations', (1, 1)),
    ('layout', 'timm'), ('num_classes', '10'), ('ceil_mode', 1), ('in_channels', 0)]
   + bad_out_indices(5) + bad_frozen_stages(5) + NORM_FAULTS + ROUTE_FAULTS)
SSD_VGG = faulty({'type': st.just('SSDVGG'), 'depth': st.just(16)}, {
    'out_feature_indices': st.sampled_from([(22, 34), (15, ), (3, 8, 22)]),
    'ceil_mode': st.booleans(), 'with_last_pool': st.booleans(),
    'out_indices': st.sampled_from([(3, 4), (0, 5)]),
}, [('depth', 15), ('out_feature_indices', (34, 22)), ('out_feature_indices', (22, 99)),
    ('out_feature_indices', []), ('out_indices', (7, )), ('ceil_mode', 'yes')] + ROUTE_FAULTS)
_HOURGLASS = dict(downsample_times=2, stage_channels=[8, 8, 16], stage_blocks=[1, 1, 1],
                  feat_channel=8)
HOURGLASS = faulty({'type': st.just('HourglassNet'),
                    **{k: st.just(v) for k, v in _HOURGLASS.items()}}, {
    'num_stacks': st.just(2), 'out_indices': valid_out_indices(2),
    'frozen_stages': frozen_stages(-1, 2), 'norm_eval': st.booleans(),
    'with_cp': st.booleans(), 'norm_cfg': BN_NORMS,
}, [('downsample_times', 3), ('stage_blocks', [1, 1]), ('stage_channels', 'wide'),
    ('feat_channel', 0), ('num_stacks', 0), ('with_cp', 1)]
   + bad_out_indices(2) + bad_frozen_stages(2) + NORM_FAULTS + ROUTE_FAULTS)
FAMILIES.update(vgg=VGG, ssd_vgg=SSD_VGG, hourglass=HOURGLASS)
VALID.update(vgg=dict(type='VGG', depth=11, out_indices=(1, 4), norm_cfg=dict(type='BN')),
             ssd_vgg=dict(type='SSDVGG', depth=16),
             hourglass=dict(type='HourglassNet', **_HOURGLASS))
_INTERN = dict(channels=8, depths=[1, 1, 1, 1], groups=[1, 2, 2, 4])
INTERNIMAGE = faulty({
    'type': st.just('InternImage'),
    'arch': st.sampled_from([_INTERN, dict(_INTERN, post_norm=True, layer_scale=1.0),
                             dict(_INTERN, dw_kernel_size=5, res_post_norm=True,
                                  center_feature_scale=True)]),
}, {
    'out_indices': valid_out_indices(4),
    'frozen_stages': frozen_stages(-1, 4),
    'drop_path_rate': st.sampled_from([0.0, 0.2]),
    'drop_path_type': st.sampled_from(['linear', 'uniform']),
    'norm_cfg': st.sampled_from([dict(type='LN'), dict(type='BN')]),
    'in_channels': st.sampled_from([1, 3]),
}, [('arch', 'no-such-arch'), ('arch', dict(_INTERN, depths=[10**9, 1, 1, 1])),
    ('arch', dict(_INTERN, depths=[1, 1])), ('arch', dict(_INTERN, groups=[3, 2, 2, 4])),
    ('arch', dict(_INTERN, post_norm='yes')), ('arch', dict(_INTERN, dw_kernel_size=4)),
    ('drop_path_rate', 1.5), ('drop_path_type', 'cosine'), ('in_channels', 0),
    ('act_cfg', dict(type='Mish')), ('norm_cfg', dict(type='GN'))]
   + bad_out_indices(4) + bad_frozen_stages(4) + ROUTE_FAULTS)
FAMILIES.update(internimage=INTERNIMAGE)
VALID.update(internimage=dict(type='InternImage', arch=_INTERN, out_indices=(0, 1, 2, 3)))
# The modern ViT by its arch rows (issue 28): DINOv2 / EVA-02 arch rows, layer scale, register tokens, rope,
# ViTDet's windows and relative positions, out_type, with_cls_token. Outputs come from the first
# layers only (the named archs have 12: only up to max(out_indices) is built, so each example
# stays small), and frozen_stages reaches past them (a no-op, CONTRIBUTING point 3).
_VIT_ARCHS = ['dinov2-s', 'eva02-t', TINY_VIT_ARCHS[0]]


def _vit_archs_tidy(cfg):
    """The valid combinations: ViTDet's windows and relative positions take the token map
    only (no class or register token), and a class-token output needs the class token."""
    if cfg.get('window_block_indexes') and not cfg.get('window_size'):
        cfg['window_size'] = 2
    if cfg.get('window_block_indexes') or cfg.get('use_rel_pos'):
        cfg['with_cls_token'] = False
        cfg.pop('num_register_tokens', None)
    if cfg.get('with_cls_token') is False and cfg.get('out_type', 'cls_token') == 'cls_token':
        cfg['out_type'] = 'featmap'
    return cfg


VIT_ARCHS = faulty({
    'type': st.just('VisionTransformer'),
    'arch': st.sampled_from(_VIT_ARCHS),
    'out_indices': st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True).map(
        sorted).flatmap(_plain_or_numpy),
}, {
    'img_size': st.sampled_from([28, 56, (28, 42)]),
    'patch_size': st.sampled_from([8, 14]),
    'out_type': st.sampled_from(['raw', 'cls_token', 'featmap', 'avg_featmap']),
    'with_cls_token': st.booleans(),
    'frozen_stages': frozen_stages(-1, 3),
    'layer_scale_init_value': st.sampled_from([0.0, 1e-5]),
    'num_register_tokens': st.sampled_from([0, 1, 4]),
    'interpolate_antialias': st.booleans(),
    'rope': st.sampled_from([False, True, dict(layout='tiled')]),
    'window_size': st.sampled_from([0, 2, 3]),
    'window_block_indexes': st.sampled_from([(), (0,), [0, 2]]),
    'use_rel_pos': st.booleans(),
    'rel_pos_zero_init': st.booleans(),
    'layer_cfgs': st.sampled_from([{}, dict(ffn_type='swiglu_fused'),
                                   dict(ffn_type='swiglu', sub_ln=True)]),
}, [('arch', 'dinov2-tiny'), ('num_register_tokens', -1), ('num_register_tokens', 10**6),
    ('num_register_tokens', '4'), ('layer_scale_init_value', -1.0),
    ('interpolate_antialias', 'yes'), ('rope', dict(layout='spiral')), ('rope', dict(freq=1)),
    ('window_size', -2), ('window_block_indexes', (40,)), ('window_block_indexes', 1),
    ('use_rel_pos', 'yes'), ('rel_pos_zero_init', None), ('rel_pos_size', 0),
    ('out_type', 'tokens'), ('with_cls_token', 'no'),
    ('layer_cfgs', dict(ffn_type='geglu')), ('layer_cfgs', dict(ffn_type='origin', sub_ln=True)),
    ('frozen_stages', 13)] + bad_out_indices(3)[:3] + ROUTE_FAULTS,
    tidy=_vit_archs_tidy)
FAMILIES['vit_archs'] = VIT_ARCHS
VALID['vit_archs'] = dict(type='VisionTransformer', arch='dinov2-s', out_indices=(0, 1),
                           img_size=28, out_type='featmap', num_register_tokens=4)


BUILT = ('built', 'dtype refused', 'input refused')


def fuzz_family(strategy) -> set:
    """Run the oracle on ``EXAMPLES`` configs; every outcome is asserted, and both kinds (a
    config with a fault refused, a valid one built) must have been seen."""
    seen = set()

    @SETTINGS
    @given(case=strategy, image=images())
    def run(case, image):
        cfg, fault = case
        outcome = check_config(cfg, image, fault)
        assert outcome == 'refused' if fault else outcome in BUILT, (cfg, fault, outcome)
        seen.add(outcome)
    run()
    assert 'refused' in seen and seen & set(BUILT), seen
    return seen


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_fuzz_native(family):
    fuzz_family(FAMILIES[family])


@pytest.mark.parametrize('family', sorted(WRAPPERS))
def test_fuzz_wrappers(family):
    pytest.importorskip(family, reason=f'{family} is not installed')
    fuzz_family(WRAPPERS[family])


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

