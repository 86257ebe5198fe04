"""The modern ViT in one module: DINOv2 (layer scale, registers, SwiGLU, patch 14), EVA-02
(rotary embedding, SwiGLU, sub-LN) against timm's and mmpretrain's real classes."""
import warnings

import pytest
import torch

from mmbackbones.builder import build_backbone
from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.checkpoint.converters.mmpretrain_eva02 import (is_mmpretrain_eva02,
                                                                revert_mmpretrain_eva02)
from mmbackbones.checkpoint.converters.timm_eva02 import (convert_timm_eva02, is_timm_eva02,
                                                          revert_timm_eva02)
from mmbackbones.checkpoint.converters.timm_vit import convert_timm_vit, revert_timm_vit
from mmbackbones.models.backbones.vit import VisionTransformer
from mmbackbones.models.backbones.vit_args import arch_settings
from mmbackbones.models.backbones.vit_eva02 import EVA02_ARCHS, ViTEVA02
from tests.parity import assert_mmpretrain_parity, mmpretrain_backbone, save_as_backbone

S2 = dict(embed_dims=384, num_layers=2, num_heads=6, feedforward_channels=1536)


def _perturb_(model, skip=('rope.',)):
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point() and not any(s in key for s in skip):
                value.add_(torch.randn(value.shape, generator=gen) * 0.02)
    return model


def _timm(name, **kwargs):
    timm = pytest.importorskip('timm', reason='timm parity needs timm')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = timm.create_model(name, pretrained=False, dynamic_img_size=True, **kwargs)
    return _perturb_(model).eval()


def _assert_same(expected, got, atol=1e-5):
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=atol)


# ------------------------------------------------------------------------------------------------
# DINOv2
# ------------------------------------------------------------------------------------------------
def test_dinov2_arch_rows_build_dinov2():
    lazy = dict(type='Pretrained', checkpoint='x')  # no init of the weights
    small = VisionTransformer(arch='dinov2-small', out_indices=0, init_cfg=lazy)
    assert small.patch_size == (14, 14) and small.img_size == (518, 518)
    assert small.pos_embed.shape == (1, 1 + 37 * 37, 384)
    assert small.layers[0].attn.gamma1.weight.shape == (384,)
    assert small.layers[0].ffn.gamma2.init_value == 1e-5
    giant = VisionTransformer(arch='dinov2-giant', out_indices=0, init_cfg=lazy)
    assert giant.layers[0].ffn.w12.weight.shape == (8192, 1536)
    assert giant.layers[0].ffn.w3.weight.shape == (1536, 4096)
    # arguments given (not at the signature default) win over the row; other archs unchanged
    other = VisionTransformer(arch='dinov2-small', patch_size=8, img_size=64,
                              layer_scale_init_value=0.1, out_indices=0)
    assert other.patch_size == (8, 8) and other.layers[0].attn.gamma1.init_value == 0.1
    assert VisionTransformer(arch='deit-small', out_indices=0).layers[0].attn.gamma1 is None


@pytest.mark.parametrize('name,kwargs', [
    ('vit_small_patch14_dinov2', {}),
    ('vit_small_patch14_reg4_dinov2', dict(num_register_tokens=4)),
])
def test_dinov2_timm_parity_through_the_converter(name, kwargs):
    theirs = _timm(name, depth=2, img_size=56)
    converted, used = convert_state_dict(theirs.state_dict(), 'auto')
    assert used == 'timm_vit'
    ours = VisionTransformer(arch=S2, img_size=56, patch_size=14, layer_scale_init_value=1e-5,
                             out_type='raw', interpolate_antialias=True, **kwargs).eval()
    result = ours.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for size in [(56, 56), (84, 70), (45, 45)]:  # the native grid, another, a padded one
        x = torch.randn(2, 3, *size)
        if size[0] % 14:  # timm crops where we pad: compare on the padded image
            x = torch.nn.functional.pad(x, (0, 11, 0, 11))
        with torch.no_grad():
            _assert_same(theirs.forward_features(x), ours(x)[0])


def test_dinov2_registers_in_outputs_and_freezing():
    model = VisionTransformer(arch=dict(S2, num_layers=1), img_size=28, patch_size=14,
                              num_register_tokens=4, out_type='raw').eval()
    assert model.register_tokens.shape == (1, 4, 384) and model.num_prefix_tokens == 5
    assert model.pos_embed.shape == (1, 5, 384)  # the registers have no position
    assert model(torch.randn(1, 3, 28, 28))[0].shape == (1, 1 + 4 + 4, 384)
    fmap = VisionTransformer(arch=dict(S2, num_layers=1), img_size=28, patch_size=14,
                             num_register_tokens=4, out_type='featmap', frozen_stages=0)
    fmap.load_state_dict(model.state_dict())
    with torch.no_grad():
        raw, out = model(torch.randn(1, 3, 28, 28)), None
    assert fmap.eval()(torch.randn(1, 3, 28, 28))[0].shape == (1, 384, 2, 2)
    assert not fmap.register_tokens.requires_grad
    assert fmap.get_layer_depth('backbone.register_tokens', 'backbone.') == (0, 3)
    with pytest.raises(ValueError, match='num_register_tokens'):
        VisionTransformer(arch=dict(S2, num_layers=1), num_register_tokens=-1)


def test_dinov2_giant_packed_swiglu_converts_both_ways():
    theirs = _timm('vit_giant_patch14_dinov2', depth=1, img_size=28, embed_dim=48, num_heads=3)
    converted = convert_timm_vit(theirs.state_dict())
    assert converted['layers.0.ffn.w12.weight'].shape == (256, 48)
    ours = VisionTransformer(arch=dict(embed_dims=48, num_layers=1, num_heads=3,
                                       feedforward_channels=192), img_size=28, patch_size=14,
                             layer_scale_init_value=1e-5, layer_cfgs=dict(ffn_type='swiglu_fused'),
                             out_type='raw').eval()
    ours.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        _assert_same(theirs.forward_features(x), ours(x)[0])
    back = revert_timm_vit(ours.state_dict())
    assert set(back) == set(theirs.state_dict())


def test_dinov2_mmpretrain_parity_strict_keys(tmp_path):
    theirs = mmpretrain_backbone('VisionTransformer')(
        arch='dinov2-small', img_size=56, patch_size=14, layer_scale_init_value=1e-5,
        out_type='featmap', out_indices=(5, 11))
    assert_mmpretrain_parity(
        theirs, lambda init_cfg: VisionTransformer(arch='dinov2-small', img_size=56,
                                                   out_type='featmap', out_indices=(5, 11),
                                                   init_cfg=init_cfg),
        tmp_path, [(56, 56), (70, 84)], key_order=False, randomize=_perturb_)


# ------------------------------------------------------------------------------------------------
# EVA-02
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name,arch', [('eva02_tiny_patch14_224', 'eva02-tiny'),
                                       ('eva02_base_patch14_224', 'eva02-base')])
def test_eva02_timm_parity_through_the_converter(name, arch):
    theirs = _timm(name, depth=2, img_size=56, ref_feat_shape=(4, 4))
    state = theirs.state_dict()
    assert is_timm_eva02(state)
    converted, used = convert_state_dict(state, 'auto')
    assert used == 'timm_eva02'
    ours = VisionTransformer(arch=arch, img_size=56, out_indices=1, out_type='avg_featmap',
                             final_norm=False, interpolate_antialias=True).eval()
    assert ours.rope is not None and ours.patch_size == (14, 14)
    assert (ours.layers[0].ffn.norm is not None) == (arch == 'eva02-base')
    ours.load_state_dict(converted, strict=True)
    for size in [(56, 56), (84, 70)]:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            _assert_same(theirs.forward_head(theirs.forward_features(x), pre_logits=True),
                         ours(x)[0])
    back = revert_timm_eva02(ours.state_dict())  # timm's fused-qkv layout, and back
    again = convert_timm_eva02(back)
    assert set(again) == set(ours.state_dict())
    assert all(torch.equal(again[k], v) for k, v in ours.state_dict().items())


@pytest.mark.parametrize('sub_ln', [False, True])
def test_mmcls_viteva02_loads_mmpretrains_checkpoint_with_equal_outputs(sub_ln, tmp_path):
    kwargs = dict(arch=dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=128),
                  sub_ln=sub_ln, img_size=56, patch_size=14, out_type='featmap',
                  out_indices=(0, 1))
    theirs = mmpretrain_backbone('ViTEVA02')(**kwargs)
    _perturb_(theirs).eval()
    assert is_mmpretrain_eva02(theirs.state_dict())
    ckpt = save_as_backbone(theirs, tmp_path / 'eva.pth')
    ours = build_backbone(dict(type='mmcls.ViTEVA02', **kwargs, init_cfg=dict(
        type='Pretrained', checkpoint=ckpt, prefix='backbone')))
    assert type(ours) is ViTEVA02
    ours.init_weights()
    ours.eval()
    learned = {k for k in theirs.state_dict() if 'rope' not in k}
    assert set(revert_mmpretrain_eva02(ours.state_dict())) == learned
    for size in [(56, 56), (70, 84)]:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            for e, g in zip(theirs(x), ours(x)):
                _assert_same(e, g)


def test_eva02_tables_and_arguments():
    assert EVA02_ARCHS == mmpretrain_backbone('ViTEVA02').arch_zoo
    assert arch_settings['eva02-large']['feedforward_channels'] == 2730
    with pytest.raises(ValueError, match='arch'):
        ViTEVA02(arch='huge')
    with pytest.raises(ValueError, match='proj_drop_rate'):
        ViTEVA02(proj_drop_rate=0.1)
    with pytest.raises(ValueError, match='rope.*unknown keys'):
        VisionTransformer(arch=dict(S2, num_layers=1), rope=dict(base=1))
    with pytest.raises(ValueError, match='divisible by 4'):
        VisionTransformer(arch=dict(embed_dims=30, num_layers=1, num_heads=3,
                                    feedforward_channels=60), rope=True)


def test_layer_decay_numbering_of_each_variant():
    variants = [dict(arch='eva02-tiny'), dict(arch='dinov2-small', num_register_tokens=4),
                dict(arch='deit-tiny')]
    for kwargs in variants:
        model = VisionTransformer(out_indices=-1, init_cfg=dict(type='Pretrained',
                                                                 checkpoint='x'), **kwargs)
        depths = {n: model.get_layer_depth(n)[0] for n, _ in model.named_parameters()}
        assert depths['pos_embed'] == 0 and depths['patch_embed.projection.weight'] == 0
        assert depths['layers.0.attn.qkv.weight'] == 1
        assert depths['layers.11.ffn.w3.weight' if 'w3' in str(list(depths)) else
                      'layers.11.ffn.layers.1.weight'] == 12
        assert depths['ln1.weight'] == 13 and model.get_layer_depth('ln1.weight')[1] == 14


# ------------------------------------------------------------------------------------------------
# ViTDet (detectron2's real classes: tests/detectron2/test_vitdet.py)
# ------------------------------------------------------------------------------------------------
T3 = dict(embed_dims=48, num_layers=3, num_heads=3, feedforward_channels=192)


def _vitdet(**kwargs):
    kwargs = {**dict(arch=T3, img_size=32, with_cls_token=False, final_norm=False,
                     out_type='featmap'), **kwargs}
    return VisionTransformer(**kwargs).eval()


def test_window_covering_the_map_is_global_attention_and_zero_rel_pos_is_none():
    plain = _vitdet()
    windowed = _vitdet(window_size=4, window_block_indexes=[0, 1, 2], use_rel_pos=True)
    assert windowed.layers[0].attn.rel_pos_h.shape == (7, 16)
    assert not windowed.layers[0].attn.rel_pos_h.any()  # zero init, as ViTDet
    windowed.load_state_dict({**windowed.state_dict(), **plain.state_dict()})
    x = torch.randn(2, 3, 64, 64)  # a 4x4 grid: one window, no padding
    with torch.no_grad():
        _assert_same(plain(x)[0], windowed(x)[0])
        # a 5x3 grid pads to 8x4 windows: the outputs keep the input's grid
        assert windowed(torch.randn(1, 3, 80, 48))[0].shape == (1, 48, 5, 3)


def test_rel_pos_tables_change_the_outputs_and_resize_to_other_grids():
    model = _vitdet(use_rel_pos=True, rel_pos_zero_init=False, rel_pos_size=4,
                    window_size=2, window_block_indexes=[1])
    assert model.layers[0].attn.rel_pos_h.shape == (7, 16)  # global block: the 4x4 grid
    assert model.layers[1].attn.rel_pos_h.shape == (3, 16)  # windowed block: the window
    plain = _vitdet()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if 'rel_pos' not in k})
    x = torch.randn(1, 3, 96, 64)  # 6x4: the global tables are resized
    with torch.no_grad():
        assert not torch.allclose(plain(x)[0], model(x)[0])
        assert torch.isfinite(model(x)[0]).all()
    depth = dict((n, model.get_layer_depth(n)[0]) for n, _ in model.named_parameters())
    assert depth['layers.1.attn.rel_pos_h'] == 2 and depth['pos_embed'] == 0


@pytest.mark.parametrize('kwargs,pattern', [
    (dict(with_cls_token=True, window_size=2, window_block_indexes=[0]), 'token map only'),
    (dict(use_rel_pos=True, num_register_tokens=1), 'token map only'),
    (dict(window_block_indexes=[0]), 'needs window_size'),
    (dict(window_size=2, window_block_indexes=[5]), 'window_block_indexes'),
    (dict(window_size=-2), 'window_size'),
])
def test_vitdet_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        _vitdet(**kwargs)


def test_simple_feature_pyramid_shapes_and_arguments():
    from mmbackbones.models.necks import SimpleFeaturePyramid
    neck = SimpleFeaturePyramid(48, 32, top_block=True).eval()
    assert neck.out_names == ('p2', 'p3', 'p4', 'p5', 'p6')
    assert neck.out_strides == (4, 8, 16, 32, 64) and neck.out_channels == (32,) * 5
    outs = neck((torch.randn(1, 48, 4, 6),))
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]
    assert {k.split('.')[0] for k in neck.state_dict()} == {'simfp_2', 'simfp_3', 'simfp_4',
                                                            'simfp_5'}
    no_norm = SimpleFeaturePyramid(48, 32, scale_factors=(2.0, 1.0), norm='')
    assert no_norm.simfp_3[1].bias is not None and no_norm.out_strides == (8, 16)
    for bad in [(3.0,), (1.0, 2.0), ()]:
        with pytest.raises(ValueError, match='scale_factors'):
            SimpleFeaturePyramid(48, 32, scale_factors=bad)
    with pytest.raises(ValueError, match='norm'):
        SimpleFeaturePyramid(48, 32, norm='BN')


# ------------------------------------------------------------------------------------------------
# Pretrained init: the checkpoint's tensors are adopted, never half-loaded
# ------------------------------------------------------------------------------------------------
def test_pretrained_init_adopts_checkpoint_tensors_and_still_refuses_misfits(tmp_path):
    from mmbackbones.checkpoint.keys import CheckpointMismatchError
    src = _perturb_(_vitdet(with_cls_token=True, final_norm=True, out_type='raw'))
    path = save_as_backbone(src, tmp_path / 'vit.pth')
    cfg = dict(type='Pretrained', checkpoint=path, prefix='backbone')
    a = _vitdet(with_cls_token=True, final_norm=True, out_type='raw', init_cfg=cfg)
    b = _vitdet(with_cls_token=True, final_norm=True, out_type='raw', init_cfg=cfg)
    qkv = a.layers[0].attn.qkv.weight
    a.init_weights()
    b.init_weights()
    assert a.layers[0].attn.qkv.weight is qkv  # the same Parameter (optimizers keep theirs)
    for key, value in src.state_dict().items():
        assert torch.equal(a.state_dict()[key], value) and torch.equal(b.state_dict()[key], value)
    with torch.no_grad():  # two models from one file share nothing
        a.layers[0].attn.qkv.weight.add_(1.)
    assert torch.equal(b.layers[0].attn.qkv.weight, src.layers[0].attn.qkv.weight)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        _assert_same(src(x)[0], b.eval()(x)[0])
    # a checkpoint of another width: refused, nothing adopted, forward refuses
    wide = _vitdet(arch=dict(T3, embed_dims=96), with_cls_token=True, final_norm=True)
    bad = save_as_backbone(wide, tmp_path / 'wide.pth')
    c = _vitdet(with_cls_token=True, final_norm=True, out_type='raw',
                init_cfg=dict(type='Pretrained', checkpoint=bad, prefix='backbone'))
    with pytest.raises(CheckpointMismatchError):
        c.init_weights()
    assert c.layers[0].attn.qkv.weight.shape == (144, 48)
    with pytest.raises(RuntimeError, match='init_weights'):
        c(x)
    # the same shapes without the final norm: a half-load, refused before any block loads
    partial = {f'backbone.{k}': v for k, v in src.state_dict().items() if 'ln1.' not in k
               or k.startswith('layers')}
    torch.save({'state_dict': partial}, tmp_path / 'partial.pth')
    d = _vitdet(with_cls_token=True, final_norm=True, out_type='raw', init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'partial.pth'), prefix='backbone'))
    with pytest.raises(CheckpointMismatchError, match='ln1'):
        d.init_weights()
    assert 'layers.0.attn.qkv.weight' in d._pending_init
    with pytest.raises(RuntimeError, match='init_weights'):
        d(x)


# ------------------------------------------------------------------------------------------------
# configs and the neck on top
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name,check', [
    ('dinov2-small-p14_518', lambda m: m.layers[0].attn.gamma1 is not None),
    ('dinov2-giant-p14_518', lambda m: m.layers[0].ffn.w12.weight.shape == (8192, 1536)),
    ('eva02-tiny-p14_224', lambda m: m.rope is not None and m.layers[0].ffn.norm is None),
    ('eva02-large-p14_224', lambda m: m.layers[0].ffn.norm is not None),
    ('vitdet-base-p16_1024', lambda m: m.layers[0].window_size == 14
     and m.layers[2].attn.rel_pos_h.shape == (127, 64)),
])
def test_shipped_modern_vit_configs_build_what_they_name(name, check):
    import os

    from mmbackbones.builder import build_backbone_from_config
    from tests.parity import CONFIGS_DIR
    path = os.path.join(CONFIGS_DIR, 'vit', name + '.py')
    last = 2 if name.startswith('vitdet') else 0  # (layer 2 is a global block)
    model = build_backbone_from_config(path, cfg_options={'model.backbone.out_indices': last})
    assert check(model)
    size = 28 if 'p14' in name else 32
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, size, size))[0]
    assert torch.isfinite(out).all()


def test_vitdet_with_the_pyramid_through_build_backbone():
    model = build_backbone(
        dict(type='VisionTransformer', arch=T3, img_size=32, with_cls_token=False,
             final_norm=False, out_type='featmap', window_size=2, window_block_indexes=[0],
             use_rel_pos=True),
        neck=dict(type='SimpleFeaturePyramid', in_channels='auto', out_channels=16,
                  top_block=True))
    outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 64 // s, 64 // s) for s in (4, 8, 16, 32,
                                                                                 64)]
