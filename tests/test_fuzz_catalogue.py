"""Bad inputs the config fuzzer (tests/test_fuzz.py) found, kept as fixed regression cases."""
import collections

import pytest
import torch

from tests.test_fuzz import check_config

F32 = (torch.float32, torch.float32)
TINY_VIT = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
TINY_SWIN = dict(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2])

CATALOGUE = [
    # Pooled outputs were reported with a spatial stride; the contract now says stride None.
    (dict(type='ConvNeXt', arch='atto'), (1, 32, 32), 'built'),
    (dict(type='VisionTransformer', arch=dict(embed_dims=32, num_layers=3, num_heads=2,
                                              feedforward_channels=64),
          img_size=32, patch_size=8), (1, 5, 5), 'built'),
    (dict(type='VisionTransformer', arch='deit-t', img_size=32, patch_size=8,
          out_type='avg_featmap'), (2, 17, 40), 'built'),
    # A missing return_nodes was refused with a message that the fuzzer could not tie to an
    # argument given; the message names return_nodes, which the oracle now accepts.
    (dict(type='TorchvisionBackbone', model_name='mobilenet_v3_small'), (1, 32, 32),
     ('refused', 'return_nodes')),
    # A bad norm_cfg reached mmcv, which raised TypeError('cfg must be a dict') or
    # KeyError('Cannot find None in registry'), naming neither norm_cfg nor the value.
    (dict(type='RegNet', arch='regnetx_400mf', norm_cfg='BN'), (1, 32, 32),
     ('refused', 'norm_cfg')),
    (dict(type='RegNet', arch='regnetx_400mf', norm_cfg=dict(type='NoSuchNorm')), (1, 32, 32),
     ('refused', 'norm_cfg')),
    (dict(type='CSPDarkNet', depth=53, norm_cfg=dict(type='GN')), (1, 32, 32),
     ('refused', 'norm_cfg')),
    # timm ViTs asserted on any input size but their img_size (AssertionError from timm).
    (dict(type='TIMMBackbone', model_name='vit_tiny_patch16_224'), (1, 5, 5), None),
    (dict(type='TIMMBackbone', model_name='vit_tiny_patch16_224', out_indices=(-1,)),
     (1, 40, 72), None),
    # Issue #15 (red team), found again by the extended fuzzer on the code before the fix:
    # integer/float64/float16 images raised RuntimeErrors from inside the first conv.
    (dict(type='ResNet', depth=18), (1, 32, 32, (torch.float32, torch.uint8)), 'dtype refused'),
    (dict(type='VisionTransformer', arch=TINY_VIT, img_size=32, patch_size=8),
     (1, 32, 32, (torch.float32, torch.float16)), 'dtype refused'),
    (dict(type='RegNet', arch='regnetx_400mf'), (1, 32, 32, (torch.float64, torch.float32)),
     'dtype refused'),
    # An empty batch: "cannot reshape tensor of 0 elements" in Swin and ViT featmap.
    (dict(type='SwinTransformer', arch=TINY_SWIN, img_size=32), (0, 32, 32, F32), 'built'),
    (dict(type='VisionTransformer', arch=TINY_VIT, img_size=32, patch_size=8,
          out_type='featmap'), (0, 24, 40, F32), 'built'),
    # Absurd sizes allocated terabytes (ViT) or hung (ConvNeXt, RegNet).
    (dict(type='VisionTransformer', arch=TINY_VIT, img_size=10**6), (1, 32, 32),
     ('refused', 'img_size')),
    (dict(type='ConvNeXt', arch=dict(depths=[10**9, 1, 1, 1], channels=[8, 16, 32, 64])),
     (1, 32, 32), ('refused', 'arch')),
    (dict(type='RegNet', arch=dict(w0=24, wa=24.48, wm=2.54, group_w=16, depth=10**9,
                                   bot_mul=1.0)), (1, 32, 32), ('refused', 'arch')),
    # Accepted silently or refused with a RuntimeError.
    (dict(type='VisionTransformer', arch=dict(TINY_VIT, qkv_bais=True)), (1, 32, 32),
     ('refused', 'arch')),
    (dict(type='ResNet', depth=18, norm_cfg=dict(type='BN', requires_grad='yes')), (1, 32, 32),
     ('refused', 'norm_cfg')),
    (dict(type='TIMMBackbone', model_name='resnet10t', drop_path_rate=-0.5), (1, 32, 32),
     ('refused', 'drop_path_rate')),
    # Issue 24: a type that is a dotted path or a foreign class was imported and called.
    (dict(type='os.system', command='true'), (1, 32, 32), ('refused', 'type')),
    (dict(type='mmcls.subprocess.run', args=['true']), (1, 32, 32), ('refused', 'type')),
    (dict(type='collections.OrderedDict'), (1, 32, 32), ('refused', 'type')),
    (dict(type=collections.OrderedDict), (1, 32, 32), ('refused', 'type')),
    (dict(type='ConvNeXt', arch='atto', act_cfg=dict(type='os.system', command='true')),
     (1, 32, 32), ('refused', 'act_cfg')),
    # Issue 28: the ViT checked frozen_stages against its built layers, so out_indices=(0,)
    # refused frozen_stages=2; every family checks it against the architecture (a no-op past
    # the last output: tests/models/test_frozen_stages_rule.py).
    (dict(type='VisionTransformer', arch=dict(TINY_VIT, num_layers=3), img_size=32,
          patch_size=8, out_indices=(0,), frozen_stages=2), (1, 32, 32), 'built'),
]


@pytest.mark.parametrize('cfg, image, expected', CATALOGUE,
                         ids=[f"{getattr(c['type'], '__name__', c['type'])}-{i}"
                              for i, (c, _, _) in enumerate(CATALOGUE)])
def test_catalogue(cfg, image, expected):
    if cfg['type'] in ('TIMMBackbone', 'TorchvisionBackbone'):
        pytest.importorskip('timm' if cfg['type'] == 'TIMMBackbone' else 'torchvision')
    if isinstance(expected, tuple):  # ('refused', the argument at fault)
        assert check_config(cfg, image, fault=expected[1]) == 'refused'
        return
    outcome = check_config(cfg, image)
    if expected is not None:
        assert outcome == expected
    else:
        assert outcome in ('built', 'input refused')
