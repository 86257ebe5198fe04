"""The input contract of every family: dtype, empty batch, size limits, mmpretrain error types.

One small config per family (8 families: the six native ones and the timm/torchvision wrappers),
each run on 32x32 inputs.
"""

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.utils.validation import (MAX_BLOCKS, MAX_IMAGE_SIDE, MAX_WIDTH,
                                          InvalidChoiceError, check_size_limit)

TINY_VIT = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
TINY_SWIN = dict(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2])

FAMILIES = {
    'ResNet': dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
                   out_indices=(0, 1, 2, 3)),
    'VisionTransformer': dict(type='VisionTransformer', arch=TINY_VIT, img_size=32, patch_size=8,
                              out_type='featmap', out_indices=(0, 1)),
    'SwinTransformer': dict(type='SwinTransformer', arch=TINY_SWIN, img_size=32, window_size=2,
                            out_indices=(0, 1, 2, 3)),
    'ConvNeXt': dict(type='ConvNeXt', arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64]),
                     out_indices=(0, 1, 2, 3)),
    'RegNet': dict(type='RegNet', arch='regnetx_400mf', out_indices=(0, 3)),
    'CSPDarkNet': dict(type='CSPDarkNet', depth=53, out_indices=(2, 4)),
    'TIMMBackbone': dict(type='TIMMBackbone', model_name='resnet10t', out_indices=(1, 4)),
    'TorchvisionBackbone': dict(type='TorchvisionBackbone', model_name='resnet18',
                                return_nodes=['layer1', 'layer4']),
}
FAMILIES['InternImage'] = dict(type='InternImage', arch=dict(
    channels=8, depths=[1, 1, 1, 1], groups=[1, 2, 2, 4], center_feature_scale=True),
    out_indices=(0, 1, 2, 3))  # DCNv3 (grid_sample) in every dtype and autocast
EXTRA_OUTPUTS = {  # the other output kinds, whose shapes are built differently
    'ViT-raw': dict(FAMILIES['VisionTransformer'], out_type='raw'),
    'ViT-cls_token': dict(FAMILIES['VisionTransformer'], out_type='cls_token'),
    'ViT-avg_featmap': dict(FAMILIES['VisionTransformer'], out_type='avg_featmap'),
    'ConvNeXt-gap': dict(FAMILIES['ConvNeXt'], gap_before_final_norm=True),
    'Swin-padded-shifted': dict(FAMILIES['SwinTransformer'], window_size=3),
}
WRAPPED = {'TIMMBackbone': 'timm', 'TorchvisionBackbone': 'torchvision'}


def build(name, cfgs=FAMILIES):
    cfg = cfgs[name]
    if cfg['type'] in WRAPPED:
        pytest.importorskip(WRAPPED[cfg['type']], reason=f'{WRAPPED[cfg["type"]]} not installed')
    return build_backbone(dict(cfg))


@pytest.mark.parametrize('family', sorted(FAMILIES))
@pytest.mark.parametrize('dtype', [torch.uint8, torch.int64, torch.bool])
def test_integer_images_are_refused_naming_both_dtypes(family, dtype):
    model = build(family).eval()
    with pytest.raises(TypeError) as info:
        model(torch.zeros(1, 3, 32, 32, dtype=dtype))
    message = str(info.value)
    assert message.startswith(f'{type(model).__name__} expects a floating-point tensor of dtype '
                              'torch.float32 (the dtype of its parameters)'), message
    assert f'got {dtype}' in message and 'x.float()' in message, message


@pytest.mark.parametrize('family', sorted(FAMILIES))
@pytest.mark.parametrize('dtype', [torch.float64, torch.float16, torch.bfloat16])
def test_float_dtype_must_match_the_parameters(family, dtype):
    model = build(family).eval()
    with pytest.raises(TypeError, match=rf'dtype torch.float32 .* got {dtype}') as info:
        model(torch.zeros(1, 3, 32, 32, dtype=dtype))
    assert 'torch.autocast' in str(info.value)


@pytest.mark.parametrize('family', ['ResNet', 'VisionTransformer', 'SwinTransformer',
                                    'TIMMBackbone'])
def test_converted_model_and_autocast_accept_other_float_dtypes(family):
    model = build(family).eval()
    with torch.no_grad():
        with torch.autocast('cpu', dtype=torch.bfloat16):  # mixed dtypes are autocast's job
            outs = model(torch.rand(1, 3, 32, 32, dtype=torch.bfloat16))
        assert len(outs) == len(model.out_channels)
        model.to(torch.float64)
        outs = model(torch.rand(1, 3, 32, 32, dtype=torch.float64))
    assert all(o.dtype == torch.float64 for o in outs)
    with pytest.raises(TypeError, match='dtype torch.float64 .* got torch.float32'):
        model(torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize('mode', ['eval', 'train'])
@pytest.mark.parametrize('family', sorted(FAMILIES) + sorted(EXTRA_OUTPUTS))
def test_empty_batch_gives_empty_outputs_of_the_right_shape(family, mode):
    model = build(family, {**FAMILIES, **EXTRA_OUTPUTS})
    model.train(mode == 'train')
    with torch.no_grad():
        full = model(torch.rand(2, 3, 32, 40))
    empty = model(torch.rand(0, 3, 32, 40))
    assert len(empty) == len(full)
    for e, f in zip(empty, full):
        assert tuple(e.shape) == (0, ) + tuple(f.shape[1:]), (family, e.shape, f.shape)
        assert e.dtype == f.dtype


# ----- sizes refused before anything is allocated ---------------------------------------------
ABSURD = [
    (dict(type='VisionTransformer', img_size=10**6), 'img_size', MAX_IMAGE_SIDE),
    (dict(type='VisionTransformer', arch=dict(TINY_VIT, num_layers=10**9)),
     "arch['num_layers']", MAX_BLOCKS),
    (dict(type='VisionTransformer', arch=dict(TINY_VIT, feedforward_channels=10**9)),
     "arch['feedforward_channels']", MAX_WIDTH),
    (dict(type='SwinTransformer', img_size=(224, 10**5)), 'img_size', MAX_IMAGE_SIDE),
    (dict(type='SwinTransformer', arch=dict(TINY_SWIN, depths=[1, 10**9, 1, 1])),
     'arch["depths"] entry', MAX_BLOCKS),
    (dict(type='SwinTransformer', window_size=10**6), 'window_size', MAX_IMAGE_SIDE),
    (dict(type='ConvNeXt', arch=dict(depths=[10**9, 3, 9, 3], channels=[96, 192, 384, 768])),
     'arch["depths"] entry', MAX_BLOCKS),
    (dict(type='ConvNeXt', arch=dict(depths=[1, 1], channels=[8, 10**9])),
     'arch["channels"] entry', MAX_WIDTH),
    (dict(type='RegNet', arch=dict(w0=24, wa=24.48, wm=2.54, group_w=16, depth=10**9,
                                   bot_mul=1.0)), "arch['depth']", MAX_BLOCKS),
    (dict(type='RegNet', arch=dict(w0=24, wa=10.0**9, wm=2.54, group_w=16, depth=6,
                                   bot_mul=1.0)), 'arch (the widest stage', MAX_WIDTH),
]


@pytest.mark.parametrize('cfg, name, limit', ABSURD, ids=[f'{c["type"]}-{n}' for c, n, _ in ABSURD])
def test_absurd_sizes_are_refused_at_construction(cfg, name, limit):
    # on the meta device a build that got past the checks allocates nothing: it would then
    # finish without the ValueError (and this test fail) instead of taking the machine down
    with torch.device('meta'), pytest.raises(ValueError) as info:
        build_backbone(cfg)
    message = str(info.value)
    assert message.startswith(name) and f'<= {limit}' in message, message


def test_check_size_limit():
    assert check_size_limit('img_size', 8192, 8192) == 8192
    with pytest.raises(ValueError, match=r'^img_size must be <= 8192 \(a side\), got 8193'):
        check_size_limit('img_size', 8193, 8192, 'a side')
    with pytest.raises(ValueError, match='img_size must be a positive int'):
        check_size_limit('img_size', 0, 8192)
    with pytest.raises(TypeError, match='img_size must be an int'):
        check_size_limit('img_size', 2.5, 8192)


def test_sizes_at_the_published_maximum_still_build():
    # ViT-g's 40 layers and a 1536-px pos_embed grid stay far below the limits.
    model = build_backbone(dict(type='VisionTransformer', img_size=1536, patch_size=512,
                                arch=dict(TINY_VIT, num_layers=40)))
    assert model.num_layers == 40


# ----- arguments ------------------------------------------------------------------------------
def test_unknown_key_in_a_vit_arch_dict_is_refused():
    with pytest.raises(ValueError, match=r"arch dict: missing keys \[\], unknown keys "
                                         r"\['qkv_bais'\]"):
        build_backbone(dict(type='VisionTransformer', arch=dict(TINY_VIT, qkv_bais=True)))


def test_norm_cfg_requires_grad_must_be_a_bool():
    with pytest.raises(TypeError, match="norm_cfg requires_grad must be a bool .* got 'yes'"):
        build_backbone(dict(type='ResNet', depth=18,
                            norm_cfg=dict(type='BN', requires_grad='yes')))


@pytest.mark.parametrize('rate', ['drop_path_rate', 'drop_rate'])
def test_timm_rates_are_checked(rate):
    pytest.importorskip('timm', reason='timm not installed')
    with pytest.raises(ValueError, match=rf'^{rate} must be a float in \[0, 1\), got -0.5'):
        build_backbone(dict(type='TIMMBackbone', model_name='resnet10t', **{rate: -0.5}))


UNKNOWN_CHOICES = [
    (dict(type='ResNet', depth=51), 'depth must be one of 18, 34, 50, 101, 152; got 51'),
    (dict(type='ResNetV1d', depth=20), 'depth must be one of'),
    (dict(type='VisionTransformer', arch='basee'), "arch 'basee' is not a known"),
    (dict(type='SwinTransformer', arch='tinyy'), 'arch must be one of'),
    (dict(type='ConvNeXt', arch='tinyy'), 'arch must be one of'),
    (dict(type='RegNet', arch='regnetx_401mf'), 'arch must be one of'),
]


@pytest.mark.parametrize('cfg, start', UNKNOWN_CHOICES,
                         ids=[c['type'] for c, _ in UNKNOWN_CHOICES])
def test_unknown_depth_or_arch_is_both_a_key_error_and_a_value_error(cfg, start):
    # mmpretrain raises KeyError for an unknown ResNet depth; code that catches it keeps working.
    with pytest.raises(KeyError) as info:
        build_backbone(cfg)
    assert isinstance(info.value, ValueError) and isinstance(info.value, InvalidChoiceError)
    assert str(info.value).startswith(start), str(info.value)  # no KeyError quotes around it
    with pytest.raises(ValueError):
        build_backbone(cfg)
