"""ConvNeXt: mmpretrain and timm parity, the timm key converter, metadata, sizes, freezing,
arguments, configs."""
import os

import pytest
import torch
from torch import nn

from mmbackbones import build_backbone, build_backbone_from_config
from mmbackbones.checkpoint.converters.timm_convnext import (convert_timm_convnext,
                                                             is_timm_convnext)
from mmbackbones.models.backbones.convnext import ConvNeXt
from mmbackbones.models.layers.layer_norm2d import LayerNorm2d
from tests.parity import (assert_every_parameter_gets_gradients, assert_frozen_stages,
                          assert_mmpretrain_parity, assert_with_cp_matches, family_configs,
                          mmpretrain_backbone, timm_converted, timm_reference)

ALL = (0, 1, 2, 3)
SMALL = dict(depths=[1, 2, 1, 1], channels=[16, 24, 32, 48])


def _randomize(model: nn.Module) -> None:
    """Non-trivial norms and layer scales (their init is 1/0/1e-6, which would hide mistakes)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.rand(p.shape, generator=gen) * 0.5 + 0.5 if name.endswith(
                    ('weight', 'gamma')) else torch.randn(p.shape, generator=gen) * 0.2)


# ----- parity with mmpretrain --------------------------------------------------------------------
@pytest.mark.parametrize('arch,kwargs,size', [
    ('atto', dict(gap_before_final_norm=False), (64, 64)),
    ('atto', dict(gap_before_final_norm=True), (64, 64)),
    (SMALL, dict(gap_before_final_norm=False), (71, 45)),  # odd sides: floored like theirs
    (SMALL, dict(gap_before_final_norm=False, linear_pw_conv=False), (64, 32)),
    (SMALL, dict(gap_before_final_norm=False, use_grn=True, layer_scale_init_value=0.), (64, 64)),
    (SMALL, dict(gap_before_final_norm=False, stem_patch_size=2), (32, 48)),
])
def test_mmpretrain_checkpoint_loads_and_matches(arch, kwargs, size, tmp_path):
    theirs = mmpretrain_backbone('ConvNeXt')(arch=arch, out_indices=list(ALL), **kwargs)
    assert_mmpretrain_parity(
        theirs, lambda init_cfg: ConvNeXt(arch=arch, out_indices=ALL, **kwargs, init_cfg=init_cfg),
        tmp_path, [size], randomize=_randomize, num_outputs=4)


def test_mmpretrain_tiny_names_and_our_checkpoint_loads_into_theirs():
    theirs = mmpretrain_backbone('ConvNeXt')(arch='tiny', out_indices=[0, 1, 2, 3],
                                    gap_before_final_norm=False)
    ours = ConvNeXt('tiny', out_indices=ALL, gap_before_final_norm=False)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(ours.state_dict(), strict=True)


@pytest.mark.parametrize('arch', sorted(ConvNeXt.arch_settings))
def test_arch_table_is_mmpretrains(arch):
    assert ConvNeXt.arch_settings[arch] == mmpretrain_backbone('ConvNeXt').arch_settings[arch]


def test_drop_path_rates_match_mmpretrain_even_when_truncated():
    theirs = mmpretrain_backbone('ConvNeXt')(arch='atto', out_indices=[3], drop_path_rate=0.3)
    ours = ConvNeXt('atto', out_indices=1, drop_path_rate=0.3)
    for i, stage in enumerate(ours.stages):
        for j, block in enumerate(stage):
            theirs_p = getattr(theirs.stages[i][j].drop_path, 'drop_prob', 0.)
            ours_p = getattr(block.drop_path, 'drop_prob', 0.)
            assert ours_p == pytest.approx(theirs_p)


# ----- parity with timm through the key converter ------------------------------------------------
def _timm_convnext_tiny():
    return timm_reference('convnext_tiny', _randomize)


def test_timm_convnext_tiny_converted_matches():
    timm_model, converted = timm_converted('convnext_tiny', is_timm_convnext, convert_timm_convnext,
                                           _randomize)
    assert not any(k.startswith('head.fc') for k in converted)
    x = torch.randn(1, 3, 64, 96)

    pooled = ConvNeXt('tiny', out_indices=3, gap_before_final_norm=True).eval()
    pooled.load_state_dict(converted, strict=True)
    dense = ConvNeXt('tiny', out_indices=ALL, gap_before_final_norm=False).eval()
    # norm0..2 are ours only: a plain load_state_dict refuses that half-load (the backbone's
    # load hook), our loader reports the three norms it leaves as initialised
    from mmbackbones.checkpoint import load_state_dict
    report = load_state_dict(dense, converted, strict=False, logger='silent')
    assert sorted({k.split('.')[0] for k in report.missing}) == ['norm0', 'norm1', 'norm2']
    with torch.no_grad():
        expected = timm_model.forward_head(timm_model.forward_features(x), pre_logits=True)
        torch.testing.assert_close(pooled(x)[0], expected, rtol=1e-5, atol=1e-5)
        inters = timm_model.forward_intermediates(x, intermediates_only=True)
        got = dense(x)
        for i, (e, g) in enumerate(zip(inters, got)):
            # timm's intermediates are the raw stage maps; ours pass through norm{i}
            norm = dense.norm3 if i == 3 else getattr(dense, f'norm{i}')
            torch.testing.assert_close(g, norm(e), rtol=1e-5, atol=1e-5)
        # the last one is exactly timm's head norm on the full map
        torch.testing.assert_close(got[3], timm_model.head.norm(inters[3]), rtol=1e-5, atol=1e-5)


def test_timm_checkpoint_loads_through_pretrained_auto_conversion(tmp_path):
    timm_model = _timm_convnext_tiny()
    path = str(tmp_path / 'timm_convnext_tiny.pth')
    torch.save(timm_model.state_dict(), path)
    ours = ConvNeXt('tiny', out_indices=3, init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    ours.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = timm_model.forward_head(timm_model.forward_features(x), pre_logits=True)
        torch.testing.assert_close(ours(x)[0], expected, rtol=1e-5, atol=1e-5)


def test_converter_refuses_unknown_keys_and_detects_layouts():
    assert not is_timm_convnext(ConvNeXt('atto', out_indices=0).state_dict())
    with pytest.raises(KeyError, match='unexpected key'):
        convert_timm_convnext({'stem.0.weight': torch.zeros(1), 'foo.bar': torch.zeros(1)})
    out = convert_timm_convnext({'stages.2.blocks.1.mlp.grn.weight': torch.zeros(3),
                                 'stages.2.blocks.1.mlp.grn.bias': torch.zeros(3),
                                 'stages.1.downsample.1.weight': torch.zeros(3),
                                 'norm_pre.weight': torch.zeros(3)})
    assert sorted(out) == ['downsample_layers.1.1.weight', 'norm3.weight', 'stages.2.1.grn.beta',
                           'stages.2.1.grn.gamma']


# ----- metadata and sizes -------------------------------------------------------------------------
@pytest.mark.parametrize('out_indices', [ALL, (3, 1), 2, (-1, 0)])
@pytest.mark.parametrize('size', [(64, 96), (71, 45)])
def test_metadata_matches_forward(out_indices, size):
    model = ConvNeXt(SMALL, out_indices=out_indices, gap_before_final_norm=False).eval()
    outs = model(torch.randn(2, 3, *size))
    assert len(outs) == len(model.out_channels) == len(model.out_strides) == len(model.out_names)
    for out, c, s, name in zip(outs, model.out_channels, model.out_strides, model.out_names):
        # every step floors: stem //4, then //2 per stage
        h, w = size[0] // 4, size[1] // 4
        stage = int(name[len('stage'):]) - 1
        for _ in range(stage):
            h, w = h // 2, w // 2
        assert out.shape == (2, c, h, w)
        assert s == 4 * 2 ** stage
        assert out.is_contiguous()
    assert set(model.output_shape()) == set(model.out_names)


def test_gap_outputs_are_vectors_with_the_stage_channels():
    model = ConvNeXt(SMALL, out_indices=(1, 3)).eval()  # mmpretrain's default: pooled
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 24), (2, 48)]
    assert model.out_channels == (24, 48) and model.out_names == ('stage2', 'stage4')
    assert model.out_strides == (None, None)  # the contract's mark for pooled outputs


def test_too_small_input_and_wrong_channels_raise():
    model = ConvNeXt(SMALL, out_indices=ALL)
    with pytest.raises(ValueError, match='at least 32x32'):
        model(torch.randn(1, 3, 31, 64))
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.randn(1, 4, 64, 64))
    assert model.size_divisibility == 32


def test_only_needed_stages_are_built_and_all_params_get_gradients():
    model = ConvNeXt(SMALL, out_indices=(1, 0), gap_before_final_norm=False,
                     drop_path_rate=0.1)
    assert len(model.stages) == 2 and len(model.downsample_layers) == 2
    assert not any(k.startswith(('stages.2', 'norm2', 'norm3')) for k in model.state_dict())
    assert_every_parameter_gets_gradients(model, size=64)


def test_with_cp_gives_the_same_outputs_and_gradients():
    plain = ConvNeXt(SMALL, out_indices=ALL, gap_before_final_norm=False)
    _randomize(plain)
    assert_with_cp_matches(plain, ConvNeXt(SMALL, out_indices=ALL, gap_before_final_norm=False,
                                           with_cp=True))


# ----- freezing ----------------------------------------------------------------------------------
@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 4])
def test_frozen_stages(frozen_stages):
    """mmpretrain's count: k freezes downsample_layers[0..k-1] (the stem first) and
    stages[0..k-1]; 0 (the default) and -1 nothing; the output norms stay trainable."""
    model = ConvNeXt(SMALL, out_indices=ALL, frozen_stages=frozen_stages, drop_path_rate=0.1)
    model.train()
    assert model.training
    for i in range(4):
        frozen = i < frozen_stages
        for group in (model.downsample_layers[i], model.stages[i]):
            assert all(p.requires_grad is not frozen for p in group.parameters())
            assert all(m.training is not frozen for m in group.modules())
    assert all(getattr(model, f'norm{i}').weight.requires_grad for i in ALL)
    theirs = mmpretrain_backbone('ConvNeXt')(arch=SMALL, out_indices=ALL,
                                             frozen_stages=max(frozen_stages, 0))
    theirs.train()
    assert {k for k, p in model.named_parameters() if p.requires_grad} == \
        {k for k, p in theirs.named_parameters() if p.requires_grad}


# ----- arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize('kwargs,exc,match', [
    (dict(arch='tiny2'), ValueError, "arch must be one of .*'tiny'.*got 'tiny2'"),
    (dict(arch=dict(depths=[1, 1])), KeyError, 'channels'),
    (dict(arch=dict(depths=[1, 1], channels=[8])), ValueError, 'same length'),
    (dict(arch=dict(depths=[1, 0], channels=[8, 16])), ValueError, 'depths'),
    (dict(arch=7), TypeError, 'arch must be one of'),
    (dict(out_indices=4), ValueError, 'out_indices contains 4'),
    (dict(out_indices=(1, 1)), ValueError, 'must not repeat'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages must be in -1..4'),
    (dict(drop_path_rate=1.0), ValueError, r'drop_path_rate must be a float in \[0, 1\)'),
    (dict(layer_scale_init_value=-1), ValueError, 'layer_scale_init_value'),
    (dict(in_channels=0), ValueError, 'in_channels'),
    (dict(gap_before_final_norm='no'), TypeError, 'gap_before_final_norm must be a bool'),
    (dict(norm_cfg='LN2d'), TypeError, 'norm_cfg'),
    (dict(norm_cfg=dict(type='NoSuchNorm')), KeyError, 'norm_cfg'),
    (dict(norm_cfg=dict(type='GN', num_groups=7)), ValueError, 'norm_cfg'),
    (dict(act_cfg=dict(type='Nope')), KeyError, 'act_cfg'),
])
def test_bad_arguments_name_the_argument(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ConvNeXt(**{'arch': 'atto', **kwargs})


def test_registry_and_ln2d():
    model = build_backbone(dict(type='mmcls.ConvNeXt', arch='atto', out_indices=0))
    assert isinstance(model, ConvNeXt)
    from mmcv.cnn import build_norm_layer
    norm = build_norm_layer(dict(type='LN2d', eps=1e-6), 8)[1]
    assert isinstance(norm, LayerNorm2d)
    x = torch.randn(2, 8, 5, 3)
    expected = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8,), eps=1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), expected)
    torch.testing.assert_close(norm(x.permute(0, 2, 3, 1), data_format='channel_last'),
                               expected.permute(0, 2, 3, 1))


def test_other_norm_cfg_runs():
    model = ConvNeXt(SMALL, out_indices=ALL, gap_before_final_norm=False,
                     norm_cfg=dict(type='GN', num_groups=4)).eval()
    outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == list(model.out_channels)


# ----- configs -----------------------------------------------------------------------------------
CONFIGS = family_configs('convnext')


def test_there_are_configs_for_every_size():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {f'convnext-{a}.py' for a in ('tiny', 'small', 'base', 'large')} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_every_config_builds(path):
    with torch.device('meta'):  # no memory, no init: just the structure and metadata
        model = build_backbone_from_config(path)
    assert isinstance(model, ConvNeXt)
    assert len(model.out_channels) == len(model.out_indices)
    expected = [model.channels[i] for i in model.out_indices]
    assert list(model.out_channels) == expected


def test_tiny_config_runs():
    path = [p for p in CONFIGS if p.endswith('convnext-tiny.py')][0]
    model = build_backbone_from_config(path).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(96, 16, 16), (192, 8, 8), (384, 4, 4),
                                                  (768, 2, 2)]


def test_default_init_is_mmpretrains_truncated_normal():
    model = ConvNeXt(SMALL, out_indices=ALL, gap_before_final_norm=False)
    model.init_weights()
    w = model.stages[2][0].pointwise_conv1.weight
    assert 0.015 < float(w.detach().std()) < 0.025  # std .02 (mmengine truncates at +-2, absolute)
    assert torch.all(model.stages[2][0].pointwise_conv1.bias == 0)
    assert torch.all(model.norm2.weight == 1) and torch.all(model.norm2.bias == 0)
    assert torch.allclose(model.stages[0][0].gamma, torch.full((16, ), 1e-6))
