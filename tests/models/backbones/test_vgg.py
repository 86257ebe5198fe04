"""VGG and SSDVGG: mmpretrain parity, timm/torchvision weights through the converters, the
contract (metadata, out_indices, truncation, freezing, norm_eval, empty batches), configs."""
import pytest
import torch
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.checkpoint import CheckpointMismatchError, load_checkpoint, load_state_dict
from mmbackbones.checkpoint.convert import family_of, to_native
from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.checkpoint.converters.timm_vgg import convert_timm_vgg, is_timm_vgg
from mmbackbones.checkpoint.converters.torchvision_vgg import (convert_torchvision_vgg,
                                                               is_torchvision_vgg)
from mmbackbones.models.backbones.vgg import SSDVGG, VGG
from tests.parity import (assert_config_builds_and_runs, assert_frozen_stages,
                          assert_fuse_keeps_outputs, assert_mmpretrain_parity,
                          assert_norm_eval_keeps_bn_statistics, assert_outputs_close,
                          family_configs, mmpretrain_backbone, perturb_)

BN = dict(type='BN')


# ----- mmpretrain --------------------------------------------------------------------------------
def test_arch_table_is_mmpretrains():
    assert VGG.arch_settings == mmpretrain_backbone('VGG').arch_settings


@pytest.mark.parametrize('kwargs', [
    dict(depth=11),
    dict(depth=13, norm_cfg=BN, out_indices=(0, 2, 4)),
    dict(depth=11, num_stages=3, dilations=(1, 2, 2), out_indices=(1, 2), ceil_mode=True),
    dict(depth=11, with_last_pool=False, norm_cfg=BN, out_indices=(3, 4)),
])
def test_mmpretrain_checkpoint_loads_and_matches(kwargs, tmp_path):
    """mmpretrain's VGG: identical keys, its classifier-style checkpoint loads through
    init_cfg, equal outputs (odd sides included)."""
    assert_mmpretrain_parity(
        mmpretrain_backbone('VGG')(**kwargs),
        lambda init_cfg: VGG(**kwargs, init_cfg=init_cfg), tmp_path,
        sizes=[(32, 32), (45, 37)], randomize=perturb_)


def test_mmpretrain_classifier_is_the_last_output(tmp_path):
    """num_classes > 0: mmpretrain's classifier (224 px), its logits last even when
    out_indices does not name it."""
    kwargs = dict(depth=11, num_classes=5, out_indices=(2, ))
    ours = assert_mmpretrain_parity(
        mmpretrain_backbone('VGG')(**kwargs), lambda init_cfg: VGG(**kwargs, init_cfg=init_cfg),
        tmp_path, sizes=[(224, 224)], randomize=perturb_, num_outputs=2, batch=1)
    assert ours.out_names == ('stage3', 'classifier')
    assert ours.out_channels == (256, 5) and ours.out_strides == (8, None)


@pytest.mark.parametrize('depth', [11, 13, 16, 19])
@pytest.mark.parametrize('norm_cfg', [None, BN])
def test_every_depth_has_mmpretrains_keys(depth, norm_cfg):
    with torch.device('meta'):
        theirs = mmpretrain_backbone('VGG')(depth=depth, norm_cfg=norm_cfg, num_classes=10)
        ours = VGG(depth=depth, norm_cfg=norm_cfg, num_classes=10)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.range_sub_modules == theirs.range_sub_modules


@pytest.mark.parametrize('frozen_stages', [0, 1, 3, 5])
def test_frozen_stages_as_mmpretrain(frozen_stages):
    theirs = mmpretrain_backbone('VGG')(depth=11, norm_cfg=BN, frozen_stages=frozen_stages)
    ours = VGG(depth=11, norm_cfg=BN, frozen_stages=frozen_stages)
    theirs.train()
    ours.train()
    assert {n: p.requires_grad for n, p in ours.named_parameters()} == \
        {n: p.requires_grad for n, p in theirs.named_parameters()}
    assert {n: m.training for n, m in ours.named_modules() if isinstance(m, nn.BatchNorm2d)} == \
        {n: m.training for n, m in theirs.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert_frozen_stages(ours, frozen_stages)


# ----- timm / torchvision ------------------------------------------------------------------------
@pytest.mark.parametrize('name,kwargs', [('vgg11_bn', dict(depth=11, norm_cfg=BN)),
                                         ('vgg13', dict(depth=13))])
def test_timm_checkpoint_through_init_cfg(name, kwargs, tmp_path):
    """A random timm VGG (with its head) saved as safetensors loads through init_cfg (auto
    conversion) into both layouts; the last stage equals timm's ``features``."""
    timm = pytest.importorskip('timm', reason='timm is needed for the timm parity test')
    from safetensors.torch import save_file
    source = timm.create_model(name, pretrained=False)
    perturb_(source)
    source.eval()
    path = str(tmp_path / 'timm.safetensors')
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    x = torch.randn(2, 3, 64, 64)
    for layout in ('mmpretrain', 'torchvision'):
        ours = VGG(**kwargs, layout=layout, init_cfg=dict(type='Pretrained', checkpoint=path))
        ours.init_weights()
        ours.eval()
        with torch.no_grad():
            assert_outputs_close((source.features(x), ), ours(x))


def test_timm_whole_model_into_the_classifier(tmp_path):
    """timm's pre_logits ConvMlp and head are mmpretrain's classifier: equal logits at 224 px."""
    timm = pytest.importorskip('timm', reason='timm is needed for the timm parity test')
    source = timm.create_model('vgg11', pretrained=False)
    perturb_(source)
    source.eval()
    state = source.state_dict()
    assert is_timm_vgg(state) and not is_torchvision_vgg(state)
    ours = VGG(depth=11, num_classes=1000).eval()
    torch.save(convert_timm_vgg(state), str(tmp_path / 'converted.pth'))
    report = load_checkpoint(ours, str(tmp_path / 'converted.pth'), strict=True,
                             logger='silent')
    assert report.ok, report.message
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert_outputs_close((source(x), ), ours(x))
    back = to_native(ours.state_dict(), 'timm', 'VGG')
    assert set(back) == set(state)
    for key, value in back.items():
        assert torch.equal(value, state[key]), key


def test_torchvision_vgg_loads_whole():
    torchvision = pytest.importorskip('torchvision', reason='torchvision is not installed')
    with torch.device('meta'):
        state = torchvision.models.vgg13_bn().state_dict()
    assert is_torchvision_vgg(state) and not is_timm_vgg(state)
    converted = convert_torchvision_vgg(state)
    with torch.device('meta'):
        ours = VGG(depth=13, norm_cfg=BN, num_classes=1000)
    assert set(converted) == set(ours.state_dict())
    out, name = convert_state_dict(state, 'auto', {k: v.shape for k, v in
                                                   ours.state_dict().items()})
    assert name == 'torchvision_vgg' and set(out) == set(converted)
    assert set(to_native(converted, 'torchvision', 'VGG')) == set(state)
    assert family_of(converted) == 'VGG'


def test_converters_refuse_what_does_not_fit():
    with torch.device('meta'):
        state = VGG(depth=11, layout='torchvision').state_dict()
    assert is_torchvision_vgg(state)
    assert not is_torchvision_vgg({k.replace('features.3.', 'features.4.'): v
                                   for k, v in state.items()})  # a conv off its index
    with pytest.raises(KeyError, match='extra.weight'):
        convert_torchvision_vgg(dict(state, **{'extra.weight': torch.zeros(1)}))
    with torch.device('meta'):  # SSD's fc6/fc7 (15 convs) is no VGG-11/13/16/19
        assert not is_torchvision_vgg(SSDVGG(depth=16).state_dict())
        truncated = VGG(depth=11, num_stages=3, dilations=(1, 1, 1)).state_dict()
    with pytest.raises(ValueError, match='VGG-11/13/16/19'):
        to_native(truncated, 'timm', 'VGG')
    with pytest.raises(ValueError, match='SSDVGG'):
        to_native(truncated, 'mmdet', 'VGG')


# ----- the contract ------------------------------------------------------------------------------
def test_metadata_before_forward_and_truncation():
    model = VGG(depth=11, out_indices=(2, 0))
    assert model.out_names == ('stage3', 'stage1')
    assert model.out_channels == (256, 64) and model.out_strides == (8, 2)
    assert len(model.features) == 7  # stages 1-3 only: 1 + 1 + 2 convs, 3 pools
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in out] == [(256, 4, 4), (64, 16, 16)]
    last = VGG(depth=16, with_last_pool=False, out_indices=-1)
    assert last.out_strides == (16, )


def test_truncated_model_loads_a_full_checkpoint(tmp_path):
    full = VGG(depth=11, norm_cfg=BN)
    perturb_(full)
    path = str(tmp_path / 'full.pth')
    torch.save(full.state_dict(), path)
    part = VGG(depth=11, norm_cfg=BN, out_indices=(1, ))
    # the default route names the unbuilt entries' tensors; strict=True allows no exception
    report = load_checkpoint(part, path, logger='silent')
    assert not report.missing and len(report.loaded) == len(part.state_dict())
    assert 'features.4' in next(n for n in report.notes if 'not built' in n)
    for key, value in part.state_dict().items():
        assert torch.equal(value, full.state_dict()[key]), key
    with pytest.raises(CheckpointMismatchError, match='unexpected'):
        load_checkpoint(part, path, strict=True, logger='silent')
    part.load_state_dict(full.state_dict(), strict=False)  # plain torch route too
    with pytest.raises(RuntimeError, match=r'features\.0\.\*: 1 \(bn\.weight'):  # a real gap is refused
        part.load_state_dict({k: v for k, v in full.state_dict().items()
                              if k != 'features.0.bn.weight'}, strict=False)


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(depth=12), ValueError, 'depth must be one of 11, 13, 16, 19'),
    (dict(out_indices=5), ValueError, 'out_indices'),
    (dict(out_indices=(1, 1)), ValueError, 'repeat'),
    (dict(num_stages=6), ValueError, 'num_stages'),
    (dict(num_stages=3), ValueError, 'dilations'),
    (dict(dilations=(1, 1, 0, 1, 1)), ValueError, 'dilations'),
    (dict(frozen_stages=6), ValueError, 'frozen_stages'),
    (dict(num_classes=1.5), TypeError, 'num_classes'),
    (dict(layout='timm'), ValueError, 'layout'),
    (dict(norm_eval=1), TypeError, 'norm_eval'),
    (dict(norm_cfg=dict(type='NoSuchNorm')), (KeyError, ValueError), 'norm_cfg'),
    (dict(act_cfg=dict(type='NoSuchAct')), KeyError, 'act_cfg'),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        VGG(**{'depth': 11, **kwargs})


def test_norm_eval_and_gradients():
    assert_norm_eval_keeps_bn_statistics(VGG(depth=11, norm_cfg=BN, norm_eval=True))
    model = VGG(depth=11, norm_cfg=BN, out_indices=(0, 4)).train()
    out = model(torch.randn(2, 3, 32, 32))
    sum(o.mean() for o in out).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_empty_batch_and_input_checks():
    model = VGG(depth=11, out_indices=(1, 4)).eval()
    with torch.no_grad():
        empty, one = model(torch.zeros(0, 3, 32, 32)), model(torch.zeros(1, 3, 32, 32))
    assert [e.shape[1:] for e in empty] == [o.shape[1:] for o in one]
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match='floating-point'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    assert VGG(depth=11, in_channels=1)(torch.zeros(1, 1, 32, 32))[0].shape[1] == 512


def test_get_layer_depth():
    model = VGG(depth=11, num_classes=3)
    assert model.get_layer_depth('backbone.features.0.conv.weight', 'backbone.') == (1, 7)
    assert model.get_layer_depth('backbone.features.4.conv.weight', 'backbone.') == (3, 7)
    assert model.get_layer_depth('backbone.classifier.0.weight', 'backbone.') == (6, 7)
    for name, _ in model.features.named_parameters(prefix='features'):
        assert 1 <= model.get_layer_depth(name)[0] <= 5, name


def test_fuse_keeps_outputs():
    model = VGG(depth=11, norm_cfg=BN, out_indices=(1, 3))
    perturb_(model)
    assert_fuse_keeps_outputs(model)


def test_detectron2_adapter_output_shape():
    from mmbackbones.integrations.detectron2.contract import Detectron2Backbone
    for model in (VGG(depth=11, out_indices=(2, 3, 4)), SSDVGG(depth=16)):
        adapter = Detectron2Backbone(model).eval()
        shapes = {k: (s.channels, s.stride) for k, s in adapter.output_shape().items()}
        assert shapes == dict(zip(model.out_names, zip(model.out_channels, model.out_strides)))
        with torch.no_grad():
            out = adapter(torch.randn(1, 3, 64, 64))
        assert {k: (v.shape[1], 64 // v.shape[-1]) for k, v in out.items()} == shapes


# ----- SSDVGG (mmdet's signature; its parity with mmdet is in tests/downstream) --------------
def test_ssdvgg_metadata_truncation_and_arguments():
    model = SSDVGG(depth=16)
    assert model.out_names == ('features22', 'features34')
    assert model.out_channels == (512, 1024) and model.out_strides == (8, 16)
    assert len(model.features) == 35 and model.init_cfg[0]['type'] == 'Kaiming'
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, 75, 75))  # ceil-mode pools: 75 -> 38 -> 19 -> 10
    assert isinstance(out, tuple) and [tuple(o.shape[1:]) for o in out] == [
        (512, 10, 10), (1024, 5, 5)]
    short = SSDVGG(depth=16, out_feature_indices=(15, ))
    assert len(short.features) == 16 and short.out_channels == (256, )
    with pytest.raises(ValueError, match='increasing'):
        SSDVGG(depth=16, out_feature_indices=(34, 22))
    with pytest.raises(ValueError, match='out_feature_indices'):
        SSDVGG(depth=16, out_feature_indices=(22, 35))
    with pytest.raises(ValueError, match='out_indices'):
        SSDVGG(depth=16, out_indices=(6, ))
    with pytest.warns(UserWarning, match='input_size is deprecated'):
        SSDVGG(depth=16, input_size=300)
    with pytest.warns(UserWarning, match='deprecated'):
        assert SSDVGG(depth=16, pretrained='x.pth').init_cfg == dict(type='Pretrained',
                                                                    checkpoint='x.pth')


def test_ssdvgg_output_before_an_inplace_relu_is_kept():
    """An output read at a conv stays the conv's (the next ReLU is not in-place)."""
    model = SSDVGG(depth=16, out_feature_indices=(21, 22)).eval()
    with torch.no_grad():
        conv, relu = model(torch.randn(1, 3, 32, 32))
    assert (conv < 0).any() and torch.equal(relu, conv.clamp(min=0))


# ----- configs and registry ----------------------------------------------------------------------
@pytest.mark.parametrize('path', family_configs('vgg'))
def test_shipped_configs_build_and_run(path):
    assert_config_builds_and_runs(path, (VGG, SSDVGG))


def test_registry_builds_every_spelling():
    with torch.device('meta'):
        assert type(build_backbone(dict(type='mmcls.VGG', depth=11))) is VGG
        assert isinstance(build_backbone(dict(type='SSDVGG', depth=16)), SSDVGG)
        twin = build_backbone(dict(type='mmbackbones.mmdet.SSDVGG', depth=16))
    assert isinstance(twin, SSDVGG) and twin.host == 'mmdet'


def test_onnx_export_round_trip(tmp_path):
    pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    import json

    from tests.cli_helpers import run_cli
    result = run_cli('export', 'vgg11-bn', '-o', tmp_path / 'vgg.onnx', '--input-size', '32',
                     '32', '--json')
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report['outputs'] == ['stage5'] and report['max_abs_diff'] < 1e-4


def test_torchvision_layout_loads_mmpretrain_layout_checkpoints():
    """layout='torchvision' accepts mmpretrain's keys (a zoo row's checkpoint) and gives the
    same outputs; the way back is the torchvision_vgg converter."""
    source = VGG(depth=11, norm_cfg=BN)
    perturb_(source)
    flat = VGG(depth=11, norm_cfg=BN, layout='torchvision')
    flat.load_state_dict(source.state_dict())
    assert 'features.1.running_var' in flat.state_dict()
    part = VGG(depth=11, norm_cfg=BN, layout='torchvision', out_indices=(2, ))
    report = load_state_dict(part, source.state_dict(), logger='silent')  # unbuilt: named
    assert not report.missing and len(report.loaded) == len(part.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert_outputs_close(source.eval()(x), flat.eval()(x))
