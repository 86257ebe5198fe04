"""ResNeSt: mmpretrain parity, timm weights through the converter, the contract (metadata,
out_indices, truncated build, freezing, norm_eval, with_cp, empty batches, dtypes, layer depth,
fuse, detectron2 adapter, info/show/export), configs."""
import json

import pytest
import torch
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters import convert_state_dict, get_converter
from mmbackbones.checkpoint.converters.timm_resnest import (NO_COUNTERPART, TIMM_RESNEST_ARCHS,
                                                            convert_timm_resnest,
                                                            is_timm_resnest,
                                                            revert_timm_resnest)
from mmbackbones.models.backbones.resnest import ResNeSt
from mmbackbones.models.layers.split_attention import ResNeStBottleneck
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_bn_matches, assert_frozen_stages,
                          assert_fuse_keeps_outputs, assert_mmpretrain_parity,
                          assert_norm_eval_keeps_bn_statistics, assert_outputs_close,
                          assert_with_cp_matches, family_configs, mmpretrain_backbone, perturb_,
                          timm_reference)

ALL = (0, 1, 2, 3)
# a narrow ResNeSt-50 (fast; every block kind: stride 1/2, avd pool, avg-down shortcut)
NARROW = dict(depth=50, stem_channels=16, base_channels=16)


def _tiny(**kwargs) -> ResNeSt:
    return ResNeSt(**{'depth': 14, 'stem_channels': 16, 'base_channels': 16,
                      'out_indices': ALL, **kwargs})


# ----- mmpretrain ----------------------------------------------------------------------------
def test_arch_table_is_mmpretrains():
    theirs = mmpretrain_backbone('ResNeSt').arch_settings
    for depth, (_, blocks) in theirs.items():
        assert ResNeSt.arch_settings[depth][1] == blocks
    assert set(ResNeSt.arch_settings) - set(theirs) == {14, 26}  # timm's, documented


@pytest.mark.parametrize('kwargs', [
    dict(NARROW),
    dict(NARROW, groups=2, width_per_group=8, radix=4, reduction_factor=2),
    dict(NARROW, radix=1, avg_down_stride=False, style='caffe'),
    dict(NARROW, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), frozen_stages=2),
])
def test_mmpretrain_checkpoint_loads_and_matches(kwargs, tmp_path):
    """mmpretrain's ResNeSt: identical keys (same order), its classifier checkpoint loads
    through init_cfg, equal outputs at even and odd sides."""
    theirs = mmpretrain_backbone('ResNeSt')(out_indices=ALL, **kwargs)
    assert_mmpretrain_parity(
        theirs, lambda init_cfg: ResNeSt(out_indices=ALL, init_cfg=init_cfg, **kwargs),
        tmp_path, [(64, 64), (45, 61)], randomize=perturb_, num_outputs=4)


@pytest.fixture(scope='module')
def theirs_101():
    """mmpretrain's ResNeSt-101 (built on the CPU: mmpretrain cannot build on meta tensors)."""
    return mmpretrain_backbone('ResNeSt')(depth=101, stem_channels=128)


def test_resnest101_has_mmpretrains_keys_and_layer_depths(theirs_101):
    with torch.device('meta'):
        ours = ResNeSt(depth=101, stem_channels=128)
    assert list(ours.state_dict()) == list(theirs_101.state_dict())
    for key, value in theirs_101.state_dict().items():
        assert ours.state_dict()[key].shape == value.shape, key
    for name, _ in theirs_101.named_parameters():
        assert ours.get_layer_depth('backbone.' + name, 'backbone.') == \
            theirs_101.get_layer_depth('backbone.' + name, 'backbone.'), name
    assert ours.get_layer_depth('head.fc.weight', 'backbone.') == \
        theirs_101.get_layer_depth('head.fc.weight', 'backbone.')


def test_mmcls_scope_builds_ours():
    with torch.device('meta'):
        model = build_backbone(dict(type='mmcls.ResNeSt', depth=50))
    assert type(model) is ResNeSt and model.out_channels == (2048, )


# ----- timm ------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['resnest14d', 'resnest26d'])
def test_timm_checkpoint_through_init_cfg(name, tmp_path):
    """A random timm ResNeSt saved as safetensors loads through init_cfg (auto conversion):
    the four stage features equal timm's ``features_only`` model's."""
    timm = pytest.importorskip('timm', reason='timm is needed for the timm parity test')
    from safetensors.torch import save_file
    source = timm_reference(name, perturb_)
    path = str(tmp_path / 'timm.safetensors')
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    features = timm.create_model(name, features_only=True, out_indices=(1, 2, 3, 4))
    features.load_state_dict(source.state_dict(), strict=False)
    ours = ResNeSt(**TIMM_RESNEST_ARCHS[name], out_indices=ALL,
                   init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    features.eval()
    ours.eval()
    x = torch.randn(2, 3, 45, 64)
    with torch.no_grad():
        assert_outputs_close(features(x), ours(x))


def test_timm_converter_both_ways_and_refusals():
    timm = pytest.importorskip('timm', reason='timm is needed for the converter test')
    with torch.device('meta'):
        state = timm.create_model('resnest101e').state_dict()
        ours = ResNeSt(**TIMM_RESNEST_ARCHS['resnest101e']).state_dict()
    assert is_timm_resnest(state) and not is_timm_resnest(ours)
    converted = convert_timm_resnest(state)
    assert set(converted) == set(ours)
    for key, value in converted.items():
        assert value.shape == ours[key].shape, key
    back = revert_timm_resnest(ours)
    assert set(back) == {k for k in state if not k.startswith('fc.')}
    assert get_converter('timm_resnest').revert is revert_timm_resnest
    _, name = convert_state_dict(state, 'timm')
    assert name == 'timm_resnest'
    assert not get_converter('timm_resnet').detect(state)  # no plain ResNet reading of it
    for variant in NO_COUNTERPART:
        with torch.device('meta'):
            odd = timm.create_model(variant).state_dict()
        with pytest.raises(ValueError, match='avd_first'):
            convert_timm_resnest(odd)


# ----- the contract ----------------------------------------------------------------------------
def test_metadata_before_forward_and_truncated_build():
    model = ResNeSt(depth=50, out_indices=(2, 0))
    assert model.out_channels == (1024, 256) and model.out_strides == (16, 4)
    assert model.out_names == ('res4', 'res2')
    assert set(model.output_shape()) == {'res4', 'res2'}
    assert not hasattr(model, 'layer4')
    assert not any(k.startswith('layer4') for k in model.state_dict())
    small = _tiny(out_indices=(3, 1)).eval()
    with torch.no_grad():
        outs = small(torch.randn(1, 3, 64, 48))
    assert [tuple(o.shape[1:]) for o in outs] == [(512, 2, 2), (128, 8, 6)]


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(depth=34), ValueError, 'depth'),
    (dict(depth=50, radix=0), ValueError, 'radix'),
    (dict(depth=50, reduction_factor=0), ValueError, 'reduction_factor'),
    (dict(depth=50, groups=0), ValueError, 'groups'),
    (dict(depth=50, avg_down_stride=1), TypeError, 'avg_down_stride'),
    (dict(depth=50, deep_stem=False), ValueError, 'deep_stem'),
    (dict(depth=50, avg_down=False), ValueError, 'avg_down'),
    (dict(depth=50, out_indices=4), ValueError, 'out_indices'),
    (dict(depth=50, out_indices=(0, 0)), ValueError, 'out_indices'),
    (dict(depth=50, frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(depth=50, width_per_group=8, base_width=4), ValueError, 'contradict'),
    (dict(depth=50, norm_cfg=dict(type='NoSuchNorm')), (KeyError, ValueError), 'norm_cfg'),
    (dict(depth=50, radxi=2), TypeError, 'radxi'),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match), torch.device('meta'):
        ResNeSt(**kwargs)


@pytest.mark.parametrize('frozen_stages', [-1, 0, 2, 4])
def test_frozen_stages(frozen_stages):
    assert_frozen_stages(_tiny(frozen_stages=frozen_stages), frozen_stages)


def test_norm_eval_gradients_with_cp_frozen_bn():
    assert_norm_eval_keeps_bn_statistics(_tiny(norm_eval=True))
    assert_every_parameter_gets_gradients(_tiny(out_indices=(1, 3)))
    torch.manual_seed(0)
    assert_with_cp_matches(_tiny().train(), _tiny(with_cp=True).train())
    ref = _tiny()
    perturb_(ref)
    assert_frozen_bn_matches(ref, _tiny(norm_cfg=dict(type='FrozenBN')))


def test_empty_batch_odd_sides_and_input_checks():
    model = _tiny().eval()
    with torch.no_grad():
        empty, one = model(torch.zeros(0, 3, 37, 29)), model(torch.zeros(1, 3, 37, 29))
    assert [e.shape[1:] for e in empty] == [o.shape[1:] for o in one]
    assert all(e.shape[0] == 0 for e in empty)
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match='floating-point'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(TypeError, match='dtype'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.float64))


def test_zero_init_residual_and_drop_path():
    model = _tiny()
    model.init_weights()
    blocks = [m for m in model.modules() if isinstance(m, ResNeStBottleneck)]
    assert blocks and all(torch.all(b.norm3.weight == 0) for b in blocks)
    assert torch.all(blocks[0].norm1.weight == 1)
    dropped = _tiny(drop_path_rate=0.2)
    assert not isinstance(dropped.layer4[0].drop_path, nn.Identity)


def test_fuse_keeps_outputs():
    model = _tiny(radix=2, groups=2)
    perturb_(model)
    assert_fuse_keeps_outputs(model)


def test_detectron2_adapter_output_shape():
    from mmbackbones.integrations.detectron2 import Detectron2Backbone
    adapter = Detectron2Backbone(dict(type='ResNeSt', depth=14, stem_channels=16,
                                      base_channels=16, out_indices=(1, 2, 3)))
    shapes = adapter.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        'res3': (128, 8), 'res4': (256, 16), 'res5': (512, 32)}
    with torch.no_grad():
        out = adapter.eval()(torch.randn(1, 3, 64, 64))
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        'res3': (128, 8, 8), 'res4': (256, 4, 4), 'res5': (512, 2, 2)}


# ----- configs and the command line ------------------------------------------------------------
@pytest.mark.parametrize('path', family_configs('resnest'), ids=lambda p: p.split('/')[-1])
def test_shipped_configs_build(path):
    from mmbackbones import build_backbone_from_config
    with torch.device('meta'):
        model = build_backbone_from_config(path)
    assert isinstance(model, ResNeSt) and model.out_channels == (256, 512, 1024, 2048)


def test_smallest_config_runs():
    path = next(p for p in family_configs('resnest') if p.endswith('resnest14d.py'))
    assert_config_builds_and_runs(path, ResNeSt)


def test_cli_info_show_and_dynamic_export(tmp_path):
    pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    from tests.cli_helpers import DEMO_IMAGE, run_cli
    small = ['--cfg-options', 'model.backbone.stem_channels=16', 'model.backbone.base_channels=16']
    info = run_cli('info', 'resnest14d', '--input-size', '64', '64', '--json', *small)
    assert info.returncode == 0, info.stderr
    report = json.loads(info.stdout)
    assert [o['channels'] for o in report['outputs']] == [64, 128, 256, 512]
    show = run_cli('show', 'resnest14d', DEMO_IMAGE, '-o', tmp_path / 'show.png', '--input-size',
                   '64', '64', '--json', *small)
    assert show.returncode == 0, show.stderr
    assert [s['channels'] for s in json.loads(show.stdout)['stages']] == [64, 128, 256, 512]
    out = tmp_path / 'resnest.onnx'
    export = run_cli('export', 'resnest14d', '-o', out, '--input-size', '32', '32', '--dynamic',
                     '--json', *small)
    assert export.returncode == 0, export.stderr
    assert json.loads(export.stdout)['max_abs_diff'] < 1e-4


def test_mmdet_layout_round_trip_through_openmmlab_converter():
    """mmdet's/mmseg's ResNeSt layout (mmcv-era stem, a pool kept in layer1's shortcut) and ours
    convert into each other, with and without the model's keys."""
    from mmbackbones.checkpoint.converters.openmmlab_resnet import (convert_openmmlab_resnet,
                                                                    is_openmmlab_resnet,
                                                                    revert_openmmlab_resnet)
    with torch.device('meta'):
        ours = ResNeSt(**NARROW, out_indices=ALL).state_dict()
    theirs = revert_openmmlab_resnet(ours)
    assert 'stem.0.weight' in theirs and 'stem.1.running_mean' in theirs
    assert 'layer1.0.downsample.1.weight' in theirs and 'layer1.0.downsample.2.weight' in theirs
    assert 'layer2.0.downsample.1.weight' in theirs and is_openmmlab_resnet(theirs)
    target = {k: tuple(v.shape) for k, v in ours.items()}
    for back in (convert_openmmlab_resnet(theirs), convert_openmmlab_resnet(theirs, target)):
        assert {k: tuple(v.shape) for k, v in back.items()} == target
