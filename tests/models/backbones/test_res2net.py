"""Res2Net: mmpretrain parity, timm weights through the converter, the contract (metadata,
out_indices, truncated build, freezing, norm_eval, with_cp, empty batches, dtypes, layer depth,
fuse, detectron2 adapter, info/show/export), configs."""
import json

import pytest
import torch
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters import convert_state_dict, get_converter
from mmbackbones.checkpoint.converters.timm_res2net import (NO_COUNTERPART, TIMM_RES2NET_ARCHS,
                                                            convert_timm_res2net,
                                                            is_timm_res2net, revert_timm_res2net)
from mmbackbones.models.backbones.res2net import Res2Net
from mmbackbones.models.layers.res2net_blocks import Bottle2neck
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_bn_matches, assert_frozen_stages,
                          assert_fuse_keeps_outputs, assert_mmpretrain_parity,
                          assert_norm_eval_keeps_bn_statistics, assert_outputs_close,
                          assert_with_cp_matches, family_configs, mmpretrain_backbone, perturb_,
                          timm_reference)

ALL = (0, 1, 2, 3)
# a narrow Res2Net-50 (fast; first blocks with their pool at stride 1 and 2)
NARROW = dict(depth=50, stem_channels=16, base_channels=16, base_width=8)


def _tiny(**kwargs) -> Res2Net:
    return Res2Net(**{**NARROW, 'out_indices': ALL, **kwargs})


# ----- mmpretrain ----------------------------------------------------------------------------
def test_arch_table_is_mmpretrains():
    theirs = mmpretrain_backbone('Res2Net').arch_settings
    assert {d: b for d, (_, b) in Res2Net.arch_settings.items()} == \
        {d: b for d, (_, b) in theirs.items()}


@pytest.mark.parametrize('kwargs', [
    dict(NARROW),
    dict(NARROW, scales=8, deep_stem=False, avg_down=False),
    dict(NARROW, scales=2, style='caffe'),
    dict(NARROW, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), frozen_stages=2),
])
def test_mmpretrain_checkpoint_loads_and_matches(kwargs, tmp_path):
    """mmpretrain's Res2Net: identical keys (same order), its classifier checkpoint loads
    through init_cfg, equal outputs at even and odd sides."""
    theirs = mmpretrain_backbone('Res2Net')(out_indices=ALL, **kwargs)
    assert_mmpretrain_parity(
        theirs, lambda init_cfg: Res2Net(out_indices=ALL, init_cfg=init_cfg, **kwargs),
        tmp_path, [(64, 64), (45, 61)], randomize=perturb_, num_outputs=4)


@pytest.fixture(scope='module')
def theirs_101():
    """mmpretrain's Res2Net-101 (built on the CPU: mmpretrain cannot build on meta tensors)."""
    return mmpretrain_backbone('Res2Net')(depth=101, deep_stem=False, avg_down=False)


def test_res2net101_has_mmpretrains_keys_and_layer_depths(theirs_101):
    with torch.device('meta'):
        ours = Res2Net(depth=101, deep_stem=False, avg_down=False)
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
        model = build_backbone(dict(type='mmcls.Res2Net', depth=50))
    assert type(model) is Res2Net and model.out_channels == (2048, )


# ----- timm ------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['res2net50_48w_2s', 'res2net50d'])
def test_timm_checkpoint_through_init_cfg(name, tmp_path):
    """A random timm Res2Net saved as safetensors loads through init_cfg (auto conversion):
    the four stage features equal timm's ``features_only`` model's."""
    timm = pytest.importorskip('timm', reason='timm is needed for the timm parity test')
    from safetensors.torch import save_file
    source = timm_reference(name, perturb_)
    path = str(tmp_path / 'timm.safetensors')
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    features = timm.create_model(name, features_only=True, out_indices=(1, 2, 3, 4))
    features.load_state_dict(source.state_dict(), strict=False)
    ours = Res2Net(**TIMM_RES2NET_ARCHS[name], out_indices=ALL,
                   init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    features.eval()
    ours.eval()
    x = torch.randn(1, 3, 45, 64)
    with torch.no_grad():
        assert_outputs_close(features(x), ours(x))


@pytest.mark.parametrize('name', sorted(TIMM_RES2NET_ARCHS))
def test_timm_converter_both_ways(name):
    timm = pytest.importorskip('timm', reason='timm is needed for the converter test')
    with torch.device('meta'):
        state = timm.create_model(name).state_dict()
        ours = Res2Net(**TIMM_RES2NET_ARCHS[name]).state_dict()
    assert is_timm_res2net(state)
    converted = convert_timm_res2net(state)
    assert set(converted) == set(ours)
    for key, value in converted.items():
        assert value.shape == ours[key].shape, key
    assert set(revert_timm_res2net(ours)) == {k for k in state if not k.startswith('fc.')}
    assert convert_state_dict(state, 'timm')[1] == 'timm_res2net'


def test_timm_res2next_is_refused_and_revert_is_registered():
    timm = pytest.importorskip('timm', reason='timm is needed for the converter test')
    assert get_converter('timm_res2net').revert is revert_timm_res2net
    for variant in NO_COUNTERPART:
        with torch.device('meta'):
            odd = timm.create_model(variant).state_dict()
        with pytest.raises(ValueError, match='grouped'):
            convert_timm_res2net(odd)


# ----- the contract ----------------------------------------------------------------------------
def test_metadata_before_forward_and_truncated_build():
    with torch.device('meta'):
        model = Res2Net(depth=50, out_indices=(2, 0))
    assert model.out_channels == (1024, 256) and model.out_strides == (16, 4)
    assert model.out_names == ('res4', 'res2')
    assert set(model.output_shape()) == {'res4', 'res2'}
    assert not hasattr(model, 'layer4')
    small = _tiny(out_indices=(3, 1)).eval()
    with torch.no_grad():
        outs = small(torch.randn(1, 3, 64, 48))
    assert [tuple(o.shape[1:]) for o in outs] == [(512, 2, 2), (128, 8, 6)]


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(depth=34), ValueError, 'depth'),
    (dict(), TypeError, 'depth'),
    (dict(depth=50, scales=1), ValueError, 'scales'),
    (dict(depth=50, base_width=0), ValueError, 'base_width'),
    (dict(depth=50, stage_pool='never'), ValueError, 'stage_pool'),
    (dict(depth=50, out_indices=4), ValueError, 'out_indices'),
    (dict(depth=50, frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(depth=50, deep_stem=1), TypeError, 'deep_stem'),
    (dict(depth=50, norm_cfg=dict(type='NoSuchNorm')), (KeyError, ValueError), 'norm_cfg'),
    (dict(depth=50, scale=4), TypeError, 'scale'),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match), torch.device('meta'):
        Res2Net(**kwargs)


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
    with pytest.raises(TypeError, match='dtype'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.float64))


def test_stage_pool_changes_outputs_not_keys():
    torch.manual_seed(0)
    always, strided = _tiny().eval(), _tiny(stage_pool='strided').eval()
    strided.load_state_dict(always.state_dict())
    assert always.layer1[0].pool is not None and strided.layer1[0].pool is None
    assert strided.layer2[0].pool is not None
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(always(x)[0], strided(x)[0])


def test_zero_init_residual_and_drop_path():
    model = _tiny()
    model.init_weights()
    blocks = [m for m in model.modules() if isinstance(m, Bottle2neck)]
    assert blocks and all(torch.all(b.norm3.weight == 0) for b in blocks)
    assert not isinstance(_tiny(drop_path_rate=0.2).layer4[0].drop_path, nn.Identity)


def test_fuse_keeps_outputs():
    model = _tiny()
    perturb_(model)
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        model.fuse()
        after = model(x)
    assert model.num_fused_norms > 0
    assert_outputs_close(before, after, rtol=1e-4)


def test_detectron2_adapter_output_shape():
    from mmbackbones.integrations.detectron2 import Detectron2Backbone
    adapter = Detectron2Backbone(dict(type='Res2Net', **NARROW, out_indices=(1, 2, 3)))
    shapes = adapter.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        'res3': (128, 8), 'res4': (256, 16), 'res5': (512, 32)}
    with torch.no_grad():
        out = adapter.eval()(torch.randn(1, 3, 64, 64))
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        'res3': (128, 8, 8), 'res4': (256, 4, 4), 'res5': (512, 2, 2)}


# ----- configs and the command line ------------------------------------------------------------
@pytest.mark.parametrize('path', family_configs('res2net'), ids=lambda p: p.split('/')[-1])
def test_shipped_configs_build(path):
    from mmbackbones import build_backbone_from_config
    with torch.device('meta'):
        model = build_backbone_from_config(path)
    assert isinstance(model, Res2Net) and model.out_channels == (256, 512, 1024, 2048)


def test_smallest_config_runs():
    path = next(p for p in family_configs('res2net') if p.endswith('res2net50-w48-s2.py'))
    assert_config_builds_and_runs(path, Res2Net)


def test_cli_info_show_and_dynamic_export(tmp_path):
    pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    from tests.cli_helpers import DEMO_IMAGE, run_cli
    small = ['--cfg-options', 'model.backbone.stem_channels=16', 'model.backbone.base_channels=16',
             'model.backbone.base_width=8']
    info = run_cli('info', 'res2net50-w26-s4', '--input-size', '64', '64', '--json', *small)
    assert info.returncode == 0, info.stderr
    assert [o['channels'] for o in json.loads(info.stdout)['outputs']] == [64, 128, 256, 512]
    show = run_cli('show', 'res2net50-w26-s4', DEMO_IMAGE, '-o', tmp_path / 'show.png',
                   '--input-size', '64', '64', '--json', *small)
    assert show.returncode == 0, show.stderr
    assert [s['channels'] for s in json.loads(show.stdout)['stages']] == [64, 128, 256, 512]
    export = run_cli('export', 'res2net50-w26-s4', '-o', tmp_path / 'res2net.onnx',
                     '--input-size', '32', '32', '--dynamic', '--json', *small)
    assert export.returncode == 0, export.stderr
    assert json.loads(export.stdout)['max_abs_diff'] < 1e-4
