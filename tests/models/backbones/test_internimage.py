"""InternImage: the core module (official parameter names, DCNv3 in pure PyTorch). Parity with
detrex's own InternImage (the official code) on the same weights is
tests/detectron2/test_detrex_internimage.py."""
import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.checkpoint.convert import to_native
from mmbackbones.models.backbones.internimage import InternImage, arch_settings
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_norm_eval_keeps_bn_statistics,
                          assert_with_cp_matches, family_configs)

SMALL = dict(channels=16, depths=[1, 2, 1, 1], groups=[2, 2, 4, 8])
# post-norm with layer scale (S/B/L/XL) and InternImage-H's switches
POST = dict(SMALL, post_norm=True, layer_scale=0.5, offset_scale=2.0)
HUGE = dict(channels=16, depths=[1, 1, 3, 1], groups=[2, 2, 4, 8], dw_kernel_size=5,
            res_post_norm=True, level2_post_norm=True, level2_post_norm_block_ids=[0, 2],
            center_feature_scale=True)
ALL = (0, 1, 2, 3)

# The official release (OpenGVLab/InternImage classification configs; mmpretrain's
# projects/internimage_classification copies them): channels, depths, groups, layer scale,
# offset scale, post norm, and InternImage-H's switches
OFFICIAL = {
    'tiny': (64, [4, 4, 18, 4], [4, 8, 16, 32], None, 1.0, False),
    'small': (80, [4, 4, 21, 4], [5, 10, 20, 40], 1e-5, 1.0, True),
    'base': (112, [4, 4, 21, 4], [7, 14, 28, 56], 1e-5, 1.0, True),
    'large': (160, [5, 5, 22, 5], [10, 20, 40, 80], 1e-5, 2.0, True),
    'xlarge': (192, [5, 5, 24, 5], [12, 24, 48, 96], 1e-5, 2.0, True),
    'huge': (320, [6, 6, 32, 6], [10, 20, 40, 80], None, 1.0, False),
}


def test_arch_table_is_the_official_release():
    assert set(arch_settings) == set(OFFICIAL)
    for name, (channels, depths, groups, scale, offset, post) in OFFICIAL.items():
        arch = {**dict(mlp_ratio=4.0, offset_scale=1.0, layer_scale=None, post_norm=False),
                **arch_settings[name]}
        assert (arch['channels'], arch['depths'], arch['groups'], arch['layer_scale'],
                arch['offset_scale'], arch['post_norm'], arch['mlp_ratio']) == \
            (channels, depths, groups, scale, offset, post, 4.0), name
    huge = arch_settings['huge']
    assert (huge['dw_kernel_size'], huge['res_post_norm'], huge['level2_post_norm'],
            huge['level2_post_norm_block_ids'], huge['center_feature_scale']) == \
        (5, True, True, [5, 11, 17, 23, 29], True)


@pytest.mark.parametrize('arch', ['tiny', 'huge'])
def test_full_variants_metadata_on_meta(arch):
    with torch.device('meta'):
        model = InternImage(arch, out_indices=ALL)
    c = arch_settings[arch]['channels']
    assert model.out_channels == (c, 2 * c, 4 * c, 8 * c)
    assert model.out_strides == (4, 8, 16, 32)
    assert model.out_names == ('stage1', 'stage2', 'stage3', 'stage4')
    assert len(model.levels[2].blocks) == arch_settings[arch]['depths'][2]


@pytest.mark.parametrize('arch', [SMALL, POST, HUGE])
@pytest.mark.parametrize('size', [(64, 64), (61, 45)])
def test_outputs_and_metadata(arch, size):
    model = InternImage(arch, out_indices=ALL).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    assert model.out_channels == (16, 32, 64, 128) and model.out_strides == (4, 8, 16, 32)
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (2, c, -(-size[0] // s), -(-size[1] // s))
    assert model.output_shape()['stage3'].channels == 64


def test_empty_batch_and_input_checks():
    model = InternImage(SMALL, out_indices=ALL).eval()
    outs = model(torch.randn(0, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(0, 16, 8, 8), (0, 32, 4, 4), (0, 64, 2, 2),
                                              (0, 128, 1, 1)]
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match='floating-point'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(TypeError):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.float64))
    with pytest.raises(ValueError, match='4-D'):
        model(torch.zeros(3, 32, 32))
    double = InternImage(SMALL).double().eval()
    assert double(torch.zeros(1, 3, 32, 32, dtype=torch.float64))[0].dtype == torch.float64


def test_only_needed_stages_are_built_and_every_parameter_is_used():
    model = InternImage(SMALL, out_indices=(1, ))
    assert len(model.levels) == 2 and model.levels[1].downsample is None
    assert not any(k.startswith('levels.2') for k in model.state_dict())
    for arch in (SMALL, POST, HUGE):
        assert_every_parameter_gets_gradients(InternImage(arch, out_indices=ALL))


def test_truncated_model_loads_a_full_checkpoint(tmp_path):
    full = InternImage(SMALL, out_indices=ALL)
    torch.save(full.state_dict(), tmp_path / 'full.pth')
    part = InternImage(SMALL, out_indices=(0, 1),
                       init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'full.pth')))
    part.init_weights()
    for key, value in part.state_dict().items():
        assert torch.equal(value, full.state_dict()[key]), key


def test_frozen_stages_norm_eval_and_with_cp():
    assert_frozen_stages(InternImage(SMALL, out_indices=ALL, frozen_stages=2), 2)
    assert_norm_eval_keeps_bn_statistics(
        InternImage(SMALL, norm_cfg=dict(type='BN'), norm_eval=True))
    for arch in (POST, HUGE):
        torch.manual_seed(0)
        plain = InternImage(arch, out_indices=ALL, drop_path_rate=0.)
        assert_with_cp_matches(plain, InternImage(arch, out_indices=ALL, drop_path_rate=0.,
                                                  with_cp=True))


def test_drop_path_types():
    linear = InternImage(SMALL, drop_path_rate=0.3)
    uniform = InternImage(SMALL, drop_path_rate=0.3, drop_path_type='uniform')
    rates = [getattr(b.drop_path, 'drop_prob', 0.0) for lv in linear.levels for b in lv.blocks]
    assert rates[0] == 0 and rates[-1] == pytest.approx(0.3)
    assert all(b.drop_path.drop_prob == pytest.approx(0.3)
               for lv in uniform.levels for b in lv.blocks)


def test_get_layer_depth():
    """The official CustomLayerDecayOptimizerConstructor's numbering (depths [1, 1, 3, 1]:
    0..7)."""
    model = InternImage(HUGE, out_indices=ALL)  # depths [1, 1, 3, 1], post_norms in level 2

    def depth(name):
        return model.get_layer_depth('backbone.' + name, 'backbone.')

    assert depth('patch_embed.conv1.weight') == (0, 8)
    assert depth('levels.0.blocks.0.dcn.offset.weight') == (1, 8)
    assert depth('levels.0.downsample.conv.weight') == (2, 8)  # with the next stage's first
    assert depth('levels.0.norm.0.weight') == (2, 8)
    assert depth('levels.2.blocks.2.mlp.fc1.weight') == (5, 8)
    assert depth('levels.2.post_norms.1.0.weight') == (4, 8)  # counted as block 1
    assert depth('levels.2.downsample.norm.1.weight') == (6, 8)
    assert depth('levels.3.blocks.0.gamma1') == (6, 8)
    assert depth('levels.3.norm.0.weight') == (6, 8)  # the last stage's: its first block
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (7, 8)


@pytest.mark.parametrize('kwargs, error, fragment', [
    (dict(arch='t'), ValueError, 'arch'),
    (dict(arch=dict(SMALL, depths=[1, 1])), ValueError, 'one entry per stage'),
    (dict(arch=dict(SMALL, window=3)), KeyError, 'unknown keys'),
    (dict(arch=dict(SMALL, groups=[3, 2, 4, 8])), ValueError, 'must divide'),
    (dict(arch=dict(SMALL, channels=15)), ValueError, 'even'),
    (dict(arch=dict(SMALL, post_norm='yes')), TypeError, 'post_norm'),
    (dict(arch=dict(SMALL, dw_kernel_size=4)), ValueError, 'odd'),
    (dict(arch=dict(SMALL, level2_post_norm=True, level2_post_norm_block_ids=[5])),
     ValueError, 'block indices'),
    (dict(arch=dict(SMALL, offset_scale=0)), ValueError, 'offset_scale'),
    (dict(arch=SMALL, out_indices=(4, )), ValueError, 'out_indices'),
    (dict(arch=SMALL, frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(arch=SMALL, drop_path_rate=1.5), ValueError, 'drop_path_rate'),
    (dict(arch=SMALL, drop_path_type='cosine'), ValueError, 'drop_path_type'),
    (dict(arch=SMALL, act_cfg=dict(type='Mish')), ValueError, 'act_cfg'),
    (dict(arch=SMALL, norm_cfg=dict(type='GN')), ValueError, 'norm_cfg'),
    (dict(arch=SMALL, norm_cfg=dict(type='LN', eps=1e-5)), ValueError, 'norm_cfg'),
])
def test_bad_arguments_are_refused(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        InternImage(**kwargs)


@pytest.mark.parametrize('head', [
    {'conv_head.0.weight': (24, 128, 1, 1), 'conv_head.1.0.weight': (24, ),
     'head.weight': (10, 24), 'head.bias': (10, )},  # T/S/B/L/XL
    {'dcnv3_head_x4.0.weight': (64, 128, 1, 1), 'dcnv3_head_x3.weight': (16, 64, 1, 1),
     'clip_projector.cross_dcn.q.weight': (16, 16), 'fc_norm.0.weight': (8, ),
     'head.weight': (10, 8)},  # InternImage-H/G
])
def test_official_classification_file_converts_and_back(tmp_path, head):
    source = InternImage(SMALL, out_indices=ALL)
    official = dict(source.state_dict())
    official.update({k: torch.zeros(shape) for k, shape in head.items()})
    converted, used = convert_state_dict(
        official, 'auto', {k: tuple(v.shape) for k, v in source.state_dict().items()})
    assert used == 'detrex_internimage' and set(converted) == set(source.state_dict())
    torch.save({'model': official}, tmp_path / 'official.pth')
    target = InternImage(SMALL, out_indices=ALL, init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'official.pth')))
    target.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    back = to_native(target.state_dict(), 'detectron2')
    assert set(back) == set(source.state_dict())
    with pytest.raises(ValueError, match='ships no InternImage'):
        to_native(target.state_dict(), 'mmdet')


def test_onnx_export_with_dynamic_sizes(tmp_path):
    pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    from mmbackbones.analysis.onnx_export import export_onnx, verify_onnx
    model = InternImage(HUGE, out_indices=ALL).eval()
    path = str(tmp_path / 'internimage.onnx')
    export_onnx(model, torch.randn(1, 3, 32, 32), path, dynamic=True)
    for x in (torch.randn(1, 3, 32, 32), torch.randn(2, 3, 45, 39)):  # grid_sample: any size
        rows = verify_onnx(model, path, x)
        assert len(rows) == 4 and max(r['max_abs_diff'] for r in rows) < 1e-4, rows


@pytest.mark.parametrize('path', family_configs('internimage'))
def test_shipped_configs_build(path):
    assert_config_builds_and_runs(path, InternImage, size=32)


def test_registered():
    assert isinstance(build_backbone(dict(type='InternImage', arch=SMALL)), InternImage)


def test_convert_cli_both_ways(tmp_path):
    """``convert`` detects an official classification file (head dropped), ``--to detectron2``
    writes the backbone back in detrex's layout (our names)."""
    from tests.cli_helpers import run_cli
    source = InternImage(SMALL, out_indices=ALL)
    official = dict(source.state_dict())
    official.update({'conv_head.0.weight': torch.zeros(24, 128, 1, 1),
                     'head.weight': torch.zeros(10, 24), 'head.bias': torch.zeros(10)})
    torch.save({'model': official}, tmp_path / 'official.pth')
    result = run_cli('convert', tmp_path / 'official.pth', tmp_path / 'ours.pth')
    assert result.returncode == 0, result.stderr
    assert 'detrex_internimage' in result.stdout + result.stderr
    result = run_cli('convert', tmp_path / 'ours.pth', tmp_path / 'detrex.pth', '--to',
                     'detectron2')
    assert result.returncode == 0, result.stderr
    written = torch.load(tmp_path / 'detrex.pth', weights_only=True)['model']
    assert set(written) == set(source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(written[key], value), key
