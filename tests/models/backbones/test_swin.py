"""SwinTransformer: mmpretrain and timm parity, the timm key converter, window-size resizing on
load, any input size, metadata, freezing, arguments, configs."""
import glob
import math
import os

import pytest
import torch
from torch import nn

from mmbackbones import build_backbone, build_backbone_from_config
from mmbackbones.checkpoint.converters.timm_swin import (convert_timm_swin, is_timm_swin,
                                                         unfold_order)
from mmbackbones.models.backbones.swin import PatchMerging, SwinTransformer
from mmbackbones.models.layers.window_attention import (relative_position_index,
                                                        resize_relative_position_bias_table,
                                                        shifted_window_mask)
from tests.parity import (assert_every_parameter_gets_gradients, assert_frozen_stages,
                          assert_mmpretrain_parity, assert_with_cp_matches, mmpretrain_backbone,
                          save_as_backbone, timm_converted, timm_reference)

ALL = (0, 1, 2, 3)
# A Swin with tiny widths: every structural feature of Swin-T, a fraction of the cost.
SMALL = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])


def _randomize(model: nn.Module) -> None:
    """Non-trivial norms and biases (their init is 1/0, which would hide mistakes)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.rand(p.shape, generator=gen) * 0.5 + 0.5 if name.endswith('weight')
                        else torch.randn(p.shape, generator=gen) * 0.2)
            elif name.endswith('relative_position_bias_table'):
                p.copy_(torch.randn(p.shape, generator=gen))


def _ceil_chain(size, stride):
    h, w = size
    h, w = math.ceil(h / 4), math.ceil(w / 4)
    while stride > 4:
        h, w, stride = math.ceil(h / 2), math.ceil(w / 2), stride // 2
    return h, w


# ----- parity with mmpretrain --------------------------------------------------------------------
@pytest.mark.parametrize('kwargs,size', [
    (dict(), (224, 224)),  # last stage == window: shift dropped as in mmpretrain
    (dict(pad_small_map=True), (64, 64)),
    (dict(pad_small_map=True), (67, 45)),  # odd sides: padded like mmcv's corner padding
    (dict(window_size=4, pad_small_map=True), (75, 33)),
    (dict(window_size=4), (128, 115)),  # 4x4 last map == window, no padding in W-MSA
    (dict(out_after_downsample=True, window_size=4, pad_small_map=True), (64, 48)),
    (dict(use_abs_pos_embed=True, img_size=64, pad_small_map=True), (64, 64)),
    (dict(use_abs_pos_embed=True, img_size=64, pad_small_map=True), (96, 80)),  # resized embed
    (dict(norm_cfg=None, window_size=4, pad_small_map=True), (32, 32)),
])
def test_mmpretrain_checkpoint_loads_and_matches(kwargs, size, tmp_path):
    theirs = mmpretrain_backbone('SwinTransformer')(arch=SMALL, out_indices=ALL,
                                                    drop_path_rate=0., **kwargs)
    assert_mmpretrain_parity(
        theirs, lambda init_cfg: SwinTransformer(arch=SMALL, out_indices=ALL, drop_path_rate=0.,
                                                 **kwargs, init_cfg=init_cfg),
        tmp_path, [size], randomize=_randomize, num_outputs=4)


def test_mmpretrain_tiny_names_and_our_checkpoint_loads_into_theirs():
    theirs = mmpretrain_backbone('SwinTransformer')(arch='tiny', out_indices=ALL)
    ours = SwinTransformer('tiny', out_indices=ALL)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(ours.state_dict(), strict=True)
    # the derived index buffer is theirs exactly
    for key, value in theirs.state_dict().items():
        if key.endswith('relative_position_index'):
            assert torch.equal(ours.state_dict()[key], value)


@pytest.mark.parametrize('arch', ['tiny', 'small', 'base', 'large', 't', 'l'])
def test_arch_table_is_mmpretrains(arch):
    assert SwinTransformer.arch_zoo[arch] == mmpretrain_backbone('SwinTransformer').arch_zoo[arch]


def test_smaller_than_window_maps_run_as_mmpretrains_pad_small_map():
    """mmpretrain refuses maps smaller than the window unless pad_small_map=True; we pad them
    (and give what its pad_small_map=True gives)."""
    theirs = mmpretrain_backbone('SwinTransformer')(arch=SMALL, out_indices=ALL, pad_small_map=True,
                                drop_path_rate=0.)
    _randomize(theirs)
    theirs.eval()
    ours = SwinTransformer(SMALL, out_indices=ALL, drop_path_rate=0.).eval()  # pad_small_map False
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 16, 20)  # 4x5, 2x3, 1x2, 1x1 maps: all smaller than the 7 window
    with torch.no_grad():
        for e, g in zip(theirs(x), ours(x)):
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_drop_path_rates_match_mmpretrain_even_when_truncated():
    theirs = mmpretrain_backbone('SwinTransformer')(arch=SMALL, out_indices=(3, ),
                                                    drop_path_rate=0.3)
    ours = SwinTransformer(SMALL, out_indices=1, drop_path_rate=0.3)
    for i, stage in enumerate(ours.stages):
        for j, block in enumerate(stage.blocks):
            expected = theirs.stages[i].blocks[j].attn.drop
            expected = getattr(expected, 'drop_prob', 0.)
            assert getattr(block.drop_path, 'drop_prob', 0.) == pytest.approx(expected)


def test_legacy_mmcls_keys_load():
    """mmcls checkpoints before version 2 name the last norm ``norm``; before 3 hold attn_mask."""
    model = SwinTransformer(SMALL, out_indices=ALL)
    sd = model.state_dict()
    legacy = {('norm.' + k[len('norm3.'):] if k.startswith('norm3.') else k): v.clone()
              for k, v in sd.items()}
    legacy['stages.0.blocks.1.attn.attn_mask'] = torch.zeros(4, 49, 49)
    fresh = SwinTransformer(SMALL, out_indices=ALL)
    fresh.load_state_dict(legacy, strict=True)
    assert torch.equal(fresh.norm3.weight, sd['norm3.weight'])


# ----- relative position bias resizing -----------------------------------------------------------
def test_window_7_checkpoint_loads_into_window_12_model(tmp_path):
    src = SwinTransformer(SMALL, out_indices=ALL, window_size=7)
    _randomize(src)
    ckpt = save_as_backbone(src.state_dict(), tmp_path / 'w7.pth')
    dst = SwinTransformer(SMALL, out_indices=ALL, window_size=12,
                          init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone'))
    dst.init_weights()
    key = 'stages.2.blocks.1.attn.w_msa.relative_position_bias_table'
    got = dst.state_dict()[key]
    assert got.shape == (23 * 23, 2)
    timm_layers = pytest.importorskip('timm.layers', reason='timm compares the resize')
    expected = timm_layers.resize_rel_pos_bias_table_simple(
        src.state_dict()[key], new_window_size=(12, 12), new_bias_shape=(23 * 23, 2))
    torch.testing.assert_close(got, expected)
    index = dst.state_dict()['stages.2.blocks.1.attn.w_msa.relative_position_index']
    assert torch.equal(index, relative_position_index((12, 12)))
    # everything else came through unchanged
    torch.testing.assert_close(dst.state_dict()['norm3.weight'], src.state_dict()['norm3.weight'])
    with torch.no_grad():
        outs = dst.eval()(torch.randn(1, 3, 96, 96))
    assert all(torch.isfinite(o).all() for o in outs)


def test_resize_is_identity_for_the_same_window_and_refuses_non_square_tables():
    table = torch.randn(13 * 13, 3)
    assert resize_relative_position_bias_table(table, (7, 7)) is table
    with pytest.raises(ValueError, match='square'):
        resize_relative_position_bias_table(torch.randn(10, 3), (7, 7))


def test_relative_position_index_and_mask_match_mmpretrain():
    pytest.importorskip('mmpretrain', reason='mmpretrain is needed for parity tests')
    from mmpretrain.models.utils.attention import ShiftWindowMSA, WindowMSA
    theirs = WindowMSA(embed_dims=8, window_size=(5, 5), num_heads=2)
    assert torch.equal(theirs.relative_position_index, relative_position_index((5, 5)))
    expected = ShiftWindowMSA.get_attn_mask((14, 21), window_size=7, shift_size=3)
    assert torch.equal(shifted_window_mask(14, 21, 7, 3), expected)


# ----- parity with timm through the key converter ------------------------------------------------
def _timm_swin_tiny():
    return timm_reference('swin_tiny_patch4_window7_224', _randomize)


def test_timm_swin_tiny_converted_matches():
    timm_model, converted = timm_converted('swin_tiny_patch4_window7_224', is_timm_swin,
                                           convert_timm_swin, _randomize)
    final = SwinTransformer('tiny').eval()
    final.load_state_dict(converted, strict=True)
    raw = SwinTransformer('tiny', out_indices=ALL, norm_cfg=None).eval()
    missing, unexpected = raw.load_state_dict(converted, strict=False)
    assert not missing and unexpected == ['norm3.weight', 'norm3.bias']
    x = torch.randn(1, 3, 224, 224)  # timm's model takes its fixed img_size
    with torch.no_grad():
        expected = timm_model.forward_intermediates(x, intermediates_only=True)
        for e, g in zip(expected, raw(x)):
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
        expected = timm_model.forward_features(x).permute(0, 3, 1, 2)
        torch.testing.assert_close(final(x)[0], expected, rtol=1e-5, atol=1e-5)


def test_timm_checkpoint_loads_through_pretrained_auto_conversion(tmp_path):
    timm_model = _timm_swin_tiny()
    path = str(tmp_path / 'timm_swin_tiny.pth')
    torch.save(timm_model.state_dict(), path)
    ours = SwinTransformer('tiny', init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    for key, value in convert_timm_swin(timm_model.state_dict()).items():
        assert torch.equal(ours.state_dict()[key], value), key


@pytest.mark.parametrize('size', [(6, 8), (7, 5)])
def test_patch_merging_order_conversion(size):
    timm = pytest.importorskip('timm', reason='timm is needed for timm parity tests')
    from timm.models.swin_transformer import PatchMerging as TimmPatchMerging
    theirs = TimmPatchMerging(dim=6, out_dim=12)
    _randomize(theirs)
    ours = PatchMerging(6, 12)
    ours.load_state_dict({k: unfold_order(v) for k, v in theirs.state_dict().items()})
    x = torch.randn(2, *size, 6)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    assert timm is not None


def test_microsoft_layout_is_converted_like_timms():
    """Original checkpoints keep the merging at the end of layer i (timm: start of layer i+1)."""
    sd = {k: v for k, v in SwinTransformer(SMALL, out_indices=ALL).state_dict().items()}
    timm_like = {'patch_embed.proj.weight': sd['patch_embed.projection.weight'],
                 'layers.0.blocks.0.attn.relative_position_bias_table':
                     sd['stages.0.blocks.0.attn.w_msa.relative_position_bias_table'],
                 'layers.1.downsample.reduction.weight': torch.randn(32, 64),
                 'norm.weight': torch.ones(64), 'head.fc.weight': torch.zeros(10, 64)}
    ms_like = dict(timm_like)
    ms_like['layers.0.downsample.reduction.weight'] = ms_like.pop(
        'layers.1.downsample.reduction.weight')
    a, b = convert_timm_swin(timm_like), convert_timm_swin(ms_like)
    assert sorted(a) == sorted(b)
    assert 'stages.0.downsample.reduction.weight' in a and 'norm3.weight' in a
    assert not any(k.startswith('head') for k in a)
    assert torch.equal(a['stages.0.blocks.0.attn.w_msa.relative_position_index'],
                       relative_position_index((7, 7)))
    with pytest.raises(KeyError, match='unexpected key'):
        convert_timm_swin({'layers.0.blocks.0.foo.weight': torch.zeros(1)})


# ----- metadata and sizes -------------------------------------------------------------------------
@pytest.mark.parametrize('out_indices', [ALL, (3, 1), 2])
@pytest.mark.parametrize('size', [(64, 96), (33, 47), (16, 16)])
def test_metadata_matches_forward_for_any_size(out_indices, size):
    model = SwinTransformer(SMALL, out_indices=out_indices, window_size=4).eval()
    outs = model(torch.randn(2, 3, *size))
    assert len(outs) == len(model.out_channels) == len(model.out_strides) == len(model.out_names)
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (2, c, *_ceil_chain(size, s))
        assert out.is_contiguous()
    names = [f'stage{i + 1}' for i in model.out_indices]
    assert list(model.out_names) == names
    assert list(model.output_shape()) == names


def test_out_after_downsample_metadata():
    model = SwinTransformer(SMALL, out_indices=(0, 2, 3), out_after_downsample=True,
                            window_size=4).eval()
    assert model.out_channels == (32, 128, 128)
    assert model.out_strides == (8, 32, 32)
    outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(32, 8, 8), (128, 2, 2), (128, 2, 2)]


@pytest.mark.parametrize('kwargs,num_stages,last_has_merging', [
    (dict(out_indices=(1, 0)), 2, False),
    (dict(out_indices=0, out_after_downsample=True), 1, True),
    (dict(out_indices=3), 4, False),
])
def test_only_needed_parts_are_built_and_all_params_get_gradients(kwargs, num_stages,
                                                                  last_has_merging):
    model = SwinTransformer(SMALL, window_size=4, drop_path_rate=0.1, **kwargs)
    assert len(model.stages) == num_stages
    assert (model.stages[-1].downsample is not None) is last_has_merging
    assert_every_parameter_gets_gradients(model)


def test_with_cp_gives_the_same_outputs_and_gradients():
    plain = SwinTransformer(SMALL, out_indices=ALL, window_size=4, drop_path_rate=0.)
    _randomize(plain)
    assert_with_cp_matches(plain, SwinTransformer(SMALL, out_indices=ALL, window_size=4,
                                                  drop_path_rate=0., with_cp=True))


def test_wrong_input_is_refused():
    model = SwinTransformer(SMALL, out_indices=0)
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match='4-D'):
        model(torch.randn(3, 32, 32))


# ----- freezing ----------------------------------------------------------------------------------
@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 3])
def test_frozen_stages(frozen_stages):
    """mmpretrain's count: k freezes the patch embedding and stages[0..k] (the parameter sets
    against mmpretrain's own class: tests/compat/test_frozen_stages.py)."""
    model = SwinTransformer(SMALL, out_indices=ALL, frozen_stages=frozen_stages,
                            use_abs_pos_embed=True, img_size=32, drop_path_rate=0.1)
    assert model.frozen_stages == (frozen_stages + 1 if frozen_stages >= 0 else -1)
    assert_frozen_stages(model, model.frozen_stages)  # the contract's groups
    assert model.absolute_pos_embed.requires_grad  # as in mmpretrain
    assert model.patch_embed.projection.weight.requires_grad is (frozen_stages < 0)
    if frozen_stages >= 0:
        assert not model.norm0.weight.requires_grad
        assert not model.stages[0].downsample.reduction.weight.requires_grad
    if frozen_stages < 3:
        assert model.norm3.weight.requires_grad


# ----- arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize('kwargs,exc,match', [
    (dict(arch='tiny2'), ValueError, "arch must be one of .*'tiny'.*got 'tiny2'"),
    (dict(arch=dict(embed_dims=8, depths=[1])), KeyError, 'num_heads'),
    (dict(arch=dict(embed_dims=8, depths=[1, 1], num_heads=[1])), ValueError, 'same length'),
    (dict(arch=dict(embed_dims=8, depths=[1], num_heads=[3])), ValueError, 'divisible'),
    (dict(arch=5), TypeError, 'arch must be one of'),
    (dict(window_size=0), ValueError, 'window_size'),
    (dict(img_size=(1, 2, 3)), ValueError, 'img_size'),
    (dict(patch_size=2.5), TypeError, 'patch_size'),
    (dict(drop_path_rate=1.0), ValueError, r'drop_path_rate must be a float in \[0, 1\)'),
    (dict(drop_rate=-0.1), ValueError, 'drop_rate'),
    (dict(interpolate_mode='foo'), ValueError, 'interpolate_mode'),
    (dict(out_indices=(0, 0)), ValueError, 'must not repeat'),
    (dict(out_indices=4), ValueError, 'out_indices contains 4'),
    (dict(frozen_stages=-2), ValueError, 'frozen_stages must be in -1..3'),
    (dict(pad_small_map=1), TypeError, 'pad_small_map must be a bool'),
    (dict(norm_cfg='LN'), TypeError, 'norm_cfg'),
    (dict(norm_cfg=dict(type='NoSuchNorm')), KeyError, 'norm_cfg'),
])
def test_bad_arguments_name_the_argument(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SwinTransformer(**{'arch': SMALL, **kwargs})


def test_registry():
    model = build_backbone(dict(type='mmcls.SwinTransformer', arch=SMALL, out_indices=0))
    assert isinstance(model, SwinTransformer)
    assert SwinTransformer('T', out_indices=0).embed_dims == 96  # mmpretrain lower-cases


# ----- configs -----------------------------------------------------------------------------------
CONFIGS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), '..', '..', '..', 'configs',
                                        'swin', '*.py')))


def test_there_are_configs_for_every_size():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {f'swin-{a}_224.py' for a in ('tiny', 'small', 'base', 'large')} <= names
    assert any('384' in n for n in names)


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_every_config_builds(path):
    with torch.device('meta'):  # no memory, no init: just the structure and metadata
        model = build_backbone_from_config(path)
    assert isinstance(model, SwinTransformer)
    expected = [model.embed_dims * 2 ** i for i in model.out_indices]
    assert list(model.out_channels) == expected
    if '384' in os.path.basename(path):
        assert model.window_size == 12 and model.img_size == (384, 384)


def test_tiny_config_runs_on_an_odd_size():
    path = [p for p in CONFIGS if p.endswith('swin-tiny_224.py')][0]
    model = build_backbone_from_config(path).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 50, 70))
    assert [tuple(o.shape[1:]) for o in outs] == [(96, 13, 18), (192, 7, 9), (384, 4, 5),
                                                  (768, 2, 3)]


def test_default_init_and_mask_cache():
    model = SwinTransformer(SMALL, out_indices=ALL, window_size=4)
    model.init_weights()  # init_cfg=None: module defaults, bias tables truncated normal
    table = model.stages[0].blocks[0].attn.w_msa.relative_position_bias_table
    assert 0 < float(table.detach().std()) < 0.03
    with torch.no_grad():
        for side in range(32, 32 + 4 * 20, 4):  # many sizes: the per-block mask cache stays small
            model.eval()(torch.randn(1, 3, side, side))
    assert len(model.stages[0].blocks[1].attn._masks) <= 17
