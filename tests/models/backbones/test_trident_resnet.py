"""TridentResNet: the contract (metadata before forward, out_indices, truncated build, freezing,
norm_eval, with_cp, empty batches, dtypes, layer depth, fuse, detectron2 adapter) and the one
place where it differs from every other family: the trident stage's output holds
``out_batch_factors`` input batches (all branches, concatenated along the batch, in training or
with ``test_branch_idx=-1``). Parity with mmdet's class is in
tests/downstream/test_detectors_parity.py."""
import pytest
import torch
from torch import nn

from mmbackbones.compat import MMDetTridentResNet
from mmbackbones.models.backbones.trident_resnet import TridentResNet
from mmbackbones.models.layers.trident_blocks import TridentBottleneck, TridentConv
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_norm_eval_keeps_bn_statistics,
                          assert_outputs_close, assert_with_cp_matches, family_configs, perturb_)

NARROW = dict(depth=50, num_branch=3, test_branch_idx=1, trident_dilations=(1, 2, 3),
              stem_channels=16, base_channels=16, out_indices=(0, 1, 2))


def _tiny(**kwargs) -> TridentResNet:
    return TridentResNet(**{**NARROW, **kwargs})


def test_metadata_before_forward_and_batch_factors():
    with torch.device('meta'):
        model = TridentResNet(50, 3, 1, (1, 2, 3))
        short = TridentResNet(50, 3, 1, (1, 2, 3), out_indices=(1, ))
    assert model.out_names == ('res4', ) and model.out_channels == (1024, )
    assert model.out_strides == (16, ) and model.num_stages == 3
    assert not hasattr(short, 'layer3')  # nothing past the last output, no trident stage
    small = _tiny(out_indices=(2, 0))
    x = torch.randn(2, 3, 64, 48)
    small.train()
    assert small.out_batch_factors == (3, 1)
    with torch.no_grad():
        outs = small(x)
    # the contract's "batch N in, batch N out" does not hold for the trident stage in training:
    # its output is the three branches, one after the other along the batch
    assert [tuple(o.shape) for o in outs] == [(6, 256, 4, 3), (2, 64, 16, 12)]
    small.eval()
    assert small.out_batch_factors == (1, 1)
    with torch.no_grad():
        assert small(x)[0].shape[0] == 2
    every = _tiny(test_branch_idx=-1).eval()
    assert every.out_batch_factors == (1, 1, 3)
    with torch.no_grad():
        assert every(x)[2].shape[0] == 6


def test_branches_share_the_weight_at_their_dilations():
    model = _tiny(test_branch_idx=-1).eval()
    perturb_(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        every = model(x)[2]
        for k in range(3):
            model.test_branch_idx = k
            for block in model.layer3:
                block.test_branch_idx = k
            one = model(x)[2]
            assert_outputs_close([every[2 * k:2 * k + 2]], [one])
    assert not torch.allclose(every[:2], every[2:4])
    assert {b.conv2.trident_dilations for b in model.layer3} == {(1, 2, 3)}
    assert all(isinstance(b, TridentBottleneck) for b in model.layer3)
    assert not any(isinstance(b, TridentBottleneck) for b in model.layer2)


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(depth=34), ValueError, 'depth'),
    (dict(num_branch=0), ValueError, 'num_branch'),
    (dict(trident_dilations=(1, 2)), ValueError, 'trident_dilations'),
    (dict(trident_dilations=(1, 0, 2)), ValueError, 'trident_dilations'),
    (dict(test_branch_idx=3), ValueError, 'test_branch_idx'),
    (dict(test_branch_idx=True), ValueError, 'test_branch_idx'),
    (dict(num_stages=4), ValueError, 'num_stages'),
    (dict(out_indices=3), ValueError, 'out_indices'),
    (dict(frozen_stages=4), ValueError, 'frozen_stages'),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match), torch.device('meta'):
        _tiny(**kwargs)


def test_dcn_on_the_trident_stage_is_refused():
    with pytest.raises(ValueError, match='dcn'), pytest.warns(UserWarning):
        _tiny(dcn=dict(type='DCN', deform_groups=1), stage_with_dcn=(False, False, True))


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 3])
def test_frozen_stages(frozen_stages):
    assert_frozen_stages(_tiny(frozen_stages=frozen_stages), frozen_stages)


def test_norm_eval_gradients_and_with_cp():
    assert_norm_eval_keeps_bn_statistics(_tiny(norm_eval=True), 64)
    assert_every_parameter_gets_gradients(_tiny(), 64)  # training: every branch runs
    torch.manual_seed(0)
    assert_with_cp_matches(_tiny().train(), _tiny(with_cp=True).train(), 64)


def test_training_norms_see_each_branch_alone():
    """Per-branch batch statistics, as mmdet: branch k's rows equal a forward of the same
    batch through branch k alone (BatchNorm in training mode)."""
    model = _tiny(out_indices=(2, ))
    perturb_(model)
    model.train()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        every = model(x)[0]
        conv = model.layer3[0].conv2
        assert isinstance(conv, TridentConv) and conv.bias is None
        first = model.layer3[0]
        stem = model.layer2(model.layer1(model.forward_stem(x)))
        one = first._branch(stem, 1)
        for block in list(model.layer3)[1:]:
            one = block._branch(one, 1)
    assert_outputs_close([every[2:4]], [one])


def test_empty_batch_and_input_checks():
    model = _tiny().eval()
    with torch.no_grad():
        empty, one = model(torch.zeros(0, 3, 37, 29)), model(torch.zeros(1, 3, 37, 29))
    assert [e.shape[1:] for e in empty] == [o.shape[1:] for o in one]
    assert all(e.shape[0] == 0 for e in empty)
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match='dtype'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.float64))


def test_fuse_keeps_outputs_and_layer_depth():
    model = _tiny(test_branch_idx=-1)
    perturb_(model)
    model.eval()
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        before = model(x)
        model.fuse()
        after = model(x)
    assert model.num_fused_norms > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert_outputs_close(before, after, rtol=1e-4)
    depth, total = model.get_layer_depth('backbone.layer3.2.conv2.weight', 'backbone.')
    assert 0 < depth < total


def test_detectron2_adapter_output_shape():
    from mmbackbones.integrations.detectron2 import Detectron2Backbone
    adapter = Detectron2Backbone(dict(type='TridentResNet', **NARROW))
    assert {k: (v.channels, v.stride) for k, v in adapter.output_shape().items()} == {
        'res2': (64, 4), 'res3': (128, 8), 'res4': (256, 16)}
    with torch.no_grad():
        out = adapter.eval()(torch.randn(1, 3, 64, 64))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        'res2': (1, 64, 16, 16), 'res3': (1, 128, 8, 8), 'res4': (1, 256, 4, 4)}


def test_mmdet_twin_needs_three_stages_as_mmdet():
    with pytest.raises(ValueError, match='num_stages'), torch.device('meta'):
        MMDetTridentResNet(50, 3, 1, (1, 2, 3))  # mmdet's ResNet default: 4 stages
    with torch.device('meta'):
        twin = MMDetTridentResNet(50, 3, 1, (1, 2, 3), num_stages=3, strides=(1, 2, 2),
                                  dilations=(1, 1, 1), out_indices=(2, ))
    assert twin.norm_eval is True and twin.host == 'mmdet' and twin.out_names == ('res4', )


@pytest.mark.parametrize('path', family_configs('trident'), ids=lambda p: p.split('/')[-1])
def test_shipped_configs_build(path):
    from mmbackbones import build_backbone_from_config
    with torch.device('meta'):
        model = build_backbone_from_config(path)
    assert isinstance(model, TridentResNet) and model.out_channels == (1024, )


def test_smallest_config_runs():
    path = next(p for p in family_configs('trident') if p.endswith('r50-caffe.py'))
    model = assert_config_builds_and_runs(path, TridentResNet, size=64)
    assert model.style == 'caffe' and model.frozen_stages == 1


def test_cli_info_and_export(tmp_path):
    """``info`` and an ONNX export (eval mode: one branch) checked in onnxruntime."""
    import json
    pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    from tests.cli_helpers import run_cli
    small = ['--cfg-options', 'model.backbone.stem_channels=16', 'model.backbone.base_channels=16']
    info = run_cli('info', 'tridentnet_r50-caffe', '--input-size', '64', '64', '--json', *small)
    assert info.returncode == 0, info.stderr
    assert [o['channels'] for o in json.loads(info.stdout)['outputs']] == [256]
    export = run_cli('export', 'tridentnet_r50-caffe', '-o', tmp_path / 'trident.onnx',
                     '--input-size', '64', '64', '--json', *small)
    assert export.returncode == 0, export.stderr
    assert json.loads(export.stdout)['max_abs_diff'] < 1e-4
