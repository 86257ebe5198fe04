"""DetectoRS_ResNet: the contract (metadata before forward with and without the image output,
out_indices, truncated build, freezing, norm_eval, with_cp, empty batches, dtypes, layer depth,
fuse, detectron2 adapter), SAC/ConvAWS in plain PyTorch (mmcv-lite), the RFP path, loading an
ImageNet ResNet (additions named), configs. Parity with mmdet's class is in
tests/downstream/test_detectors_parity.py."""
import warnings

import pytest
import torch
from torch import nn

from mmbackbones.compat import MMDetDetectoRS_ResNet
from mmbackbones.models.backbones.detectors_resnet import DetectoRS_ResNet
from mmbackbones.models.backbones.resnet import ResNet
from mmbackbones.models.layers.detectors_blocks import DetectoRSBottleneck
from mmbackbones.models.layers.sac import ConvAWS2d, SAConv2d
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_norm_eval_keeps_bn_statistics,
                          assert_outputs_close, assert_with_cp_matches, family_configs, perturb_)

ALL = (0, 1, 2, 3)
SAC = dict(type='SAC', use_deform=False)
NARROW = dict(depth=50, stem_channels=16, base_channels=16, out_indices=ALL,
              conv_cfg=dict(type='ConvAWS'), sac=SAC, stage_with_sac=(False, True, True, True))
SIZE = 96  # SAC reflect-pads by 2: the last stage needs sides >= 3


def _tiny(**kwargs) -> DetectoRS_ResNet:
    return DetectoRS_ResNet(**{**NARROW, **kwargs})


def _stats_from_weights_(model: nn.Module) -> nn.Module:
    """AWS statistics equal to the weights' own (as after loading an ImageNet ResNet), so
    the standardised convs keep a sane scale through 50 layers."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ConvAWS2d) or hasattr(m, 'weight_gamma'):
                flat = m.weight.flatten(1)
                m.weight_gamma.copy_(flat.std(1).view(-1, 1, 1, 1))
                m.weight_beta.copy_(flat.mean(1).view(-1, 1, 1, 1))
    return model


# ----- the contract ----------------------------------------------------------------------------
def test_metadata_before_forward_with_the_image_output():
    with torch.device('meta'):
        model = DetectoRS_ResNet(depth=50, out_indices=(2, 0), output_img=True)
        plain = DetectoRS_ResNet(depth=50, out_indices=(1, ))
    assert model.out_names == ('img', 'res4', 'res2')
    assert model.out_channels == (3, 1024, 256) and model.out_strides == (1, 16, 4)
    assert plain.out_names == ('res3', ) and not hasattr(plain, 'layer3')
    small = _tiny(out_indices=(3, 1), output_img=True).eval()
    _stats_from_weights_(small)
    x = torch.randn(1, 3, SIZE, 80)
    with torch.no_grad():
        outs = small(x)
    assert outs[0] is x
    assert [tuple(o.shape[1:]) for o in outs[1:]] == [(512, 3, 3), (128, 12, 10)]


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(depth=34), ValueError, 'depth'),
    (dict(sac=dict(type='SAConv')), ValueError, 'sac'),
    (dict(sac=dict(type='SAC', use_deform=1)), TypeError, 'use_deform'),
    (dict(sac=dict(type='SAC', groups=2)), KeyError, 'groups'),
    (dict(stage_with_sac=(True, )), ValueError, 'stage_with_sac'),
    (dict(rfp_inplanes=0), ValueError, 'rfp_inplanes'),
    (dict(output_img=1), TypeError, 'output_img'),
    (dict(out_indices=4), ValueError, 'out_indices'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(sac=SAC, stage_with_sac=(False, True, True, True), stage_with_dcn=(False, True, True,
          True), dcn=dict(type='DCN', deform_groups=1)), ValueError, 'sac'),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match), torch.device('meta'), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # dcn on the core is mmdet's spelling: one warning
        DetectoRS_ResNet(**kwargs)


def test_deformable_sac_needs_full_mmcv_or_builds():
    try:
        import mmcv.ops  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match='full mmcv'):
            _tiny(sac=dict(type='SAC', use_deform=True))
    else:
        model = _tiny(sac=dict(type='SAC', use_deform=True))
        assert isinstance(model.layer2[0].conv2.offset_s, nn.Conv2d)


@pytest.mark.parametrize('frozen_stages', [-1, 0, 2, 4])
def test_frozen_stages(frozen_stages):
    assert_frozen_stages(_tiny(frozen_stages=frozen_stages), frozen_stages)


def test_norm_eval_gradients_and_with_cp():
    assert_norm_eval_keeps_bn_statistics(_stats_from_weights_(_tiny(norm_eval=True)), SIZE)
    assert_every_parameter_gets_gradients(_stats_from_weights_(_tiny(out_indices=(1, 3))), SIZE)
    torch.manual_seed(0)
    plain = _stats_from_weights_(_tiny(rfp_inplanes=8)).train()
    assert_with_cp_matches(plain, _tiny(rfp_inplanes=8, with_cp=True).train(), SIZE)


def test_rfp_forward_adds_the_rfp_features():
    model = _tiny(rfp_inplanes=8, output_img=True).eval()
    perturb_(model)
    _stats_from_weights_(model)
    firsts = [getattr(model, f'layer{i}')[0] for i in (1, 2, 3, 4)]
    assert [hasattr(b, 'rfp_conv') for b in firsts] == [False, True, True, True]
    assert not any(hasattr(b, 'rfp_conv') for b in list(model.layer2)[1:])
    x = torch.randn(2, 3, SIZE, SIZE)
    feats = [None] + [torch.randn(2, 8, SIZE // s, SIZE // s) for s in (8, 16, 32)]
    zeros = [None] + [torch.zeros_like(f) for f in feats[1:]]
    with torch.no_grad():
        plain = model(x)[1:]  # without the image
        with_rfp, without = model.rfp_forward(x, feats), model.rfp_forward(x, zeros)
        for block in firsts[1:]:
            block.rfp_conv.bias.zero_()
        zero_bias = model.rfp_forward(x, zeros)
    assert len(with_rfp) == 4  # no image from rfp_forward
    assert_outputs_close(plain[:1], with_rfp[:1])  # stage 1 takes no RFP feature
    assert not torch.allclose(with_rfp[1], plain[1])
    assert not torch.allclose(without[1], plain[1])  # rfp_conv's bias is added
    assert_outputs_close(plain, zero_bias)


def test_empty_batch_and_input_checks():
    model = _stats_from_weights_(_tiny()).eval()
    with torch.no_grad():
        empty, one = model(torch.zeros(0, 3, SIZE, 99)), model(torch.zeros(1, 3, SIZE, 99))
    assert [e.shape[1:] for e in empty] == [o.shape[1:] for o in one]
    assert all(e.shape[0] == 0 for e in empty)
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.zeros(1, 1, SIZE, SIZE))
    with pytest.raises(TypeError, match='dtype'):
        model(torch.zeros(1, 3, SIZE, SIZE, dtype=torch.float64))
    with pytest.raises(ValueError, match='at least 3'):
        model(torch.zeros(1, 3, 64, 64))  # stage 4's SAC would see 2x2


def test_sac_init_and_aws_load_rule():
    """SAC starts as the small-dilation conv (mmcv's init); an ImageNet conv weight loaded
    without AWS statistics gets them from the weight, so the conv computes that weight."""
    sac = SAConv2d(4, 6, 3, padding=1, bias=False)
    assert torch.all(sac.switch.bias == 1) and torch.all(sac.weight_diff == 0)
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    aws = ConvAWS2d(4, 6, 3, padding=1, bias=False)
    aws.load_state_dict(conv.state_dict(), strict=True)
    x = torch.randn(1, 4, 8, 8)
    assert_outputs_close([conv(x)], [aws(x)])


def test_imagenet_resnet_loads_with_the_additions_named(tmp_path):
    """What the shipped configs do (torchvision://resnet50 into DetectoRS): our ResNet's
    weights load; SAC modules, rfp_conv and AWS statistics are named as added."""
    from mmbackbones.checkpoint import load_checkpoint
    resnet = ResNet(depth=50, stem_channels=16, base_channels=16, out_indices=ALL)
    perturb_(resnet)
    path = tmp_path / 'resnet.pth'  # torchvision's layout: our ResNet's keys and a classifier
    torch.save(dict(resnet.state_dict(), **{'fc.weight': torch.zeros(10, 512),
                                            'fc.bias': torch.zeros(10)}), path)
    model = _tiny(rfp_inplanes=8)
    report = load_checkpoint(model, str(path), logger='silent')  # not refused
    assert report.missing and all(  # left at their own init, as in mmdet (strict=False there)
        '.rfp_conv.' in k or '.conv2.' in k and 'weight_gamma' not in k and 'weight_beta' not in k
        for k in report.missing), report.message
    assert not report.unexpected
    notes = ' '.join(report.notes)
    assert 'DetectoRS SAC' in notes and 'AWS statistics' in notes and 'RFP' in notes
    assert torch.equal(model.layer3[1].conv2.weight, resnet.layer3[1].conv2.weight)
    plain = DetectoRS_ResNet(depth=50, stem_channels=16, base_channels=16, out_indices=ALL)
    load_checkpoint(plain, str(path), logger='silent')
    plain.eval()
    resnet.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_outputs_close(resnet(x), plain(x))


def test_zero_init_residual_and_layer_depth():
    model = _tiny()
    model.init_weights()
    blocks = [m for m in model.modules() if isinstance(m, DetectoRSBottleneck)]
    assert blocks and all(torch.all(b.norm3.weight == 0) for b in blocks)
    depth, total = model.get_layer_depth('backbone.layer2.0.conv2.switch.weight', 'backbone.')
    assert 0 < depth < total
    assert model.get_layer_depth('backbone.conv1.weight', 'backbone.')[0] == 0


def test_fuse_leaves_weight_standardised_convs_alone():
    for kwargs in (dict(), dict(conv_cfg=None, sac=None)):
        model = _tiny(**kwargs)
        _stats_from_weights_(model)
        perturb_(model)
        _stats_from_weights_(model)
        model.eval()
        x = torch.randn(1, 3, SIZE, SIZE)
        with torch.no_grad():
            before = model(x)
            model.fuse()
            after = model(x)
        assert_outputs_close(before, after, rtol=1e-4)
        assert (model.num_fused_norms > 0) is (kwargs.get('conv_cfg', 1) is None)


def test_detectron2_adapter_output_shape():
    from mmbackbones.integrations.detectron2 import Detectron2Backbone
    adapter = Detectron2Backbone(dict(type='DetectoRS_ResNet', **{**NARROW,
                                                                 'out_indices': (1, 2, 3)}))
    shapes = adapter.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        'res3': (128, 8), 'res4': (256, 16), 'res5': (512, 32)}
    _stats_from_weights_(adapter)
    with torch.no_grad():
        out = adapter.eval()(torch.randn(1, 3, SIZE, SIZE))
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        'res3': (128, 12, 12), 'res4': (256, 6, 6), 'res5': (512, 3, 3)}


def test_mmdet_twin_defaults():
    with torch.device('meta'):
        twin = MMDetDetectoRS_ResNet(depth=50, output_img=True, rfp_inplanes=256)
    assert twin.out_indices == ALL and twin.norm_eval is True and twin.host == 'mmdet'
    assert twin.out_names == ('img', 'res2', 'res3', 'res4', 'res5')
    assert hasattr(twin.layer2[0], 'rfp_conv')


# ----- configs ---------------------------------------------------------------------------------
@pytest.mark.parametrize('path', family_configs('detectors'), ids=lambda p: p.split('/')[-1])
def test_shipped_configs_build(path):
    from mmbackbones import build_backbone_from_config
    if 'deform' in path:
        try:
            import mmcv.ops  # noqa: F401
        except ImportError:
            with pytest.raises(ImportError, match='full mmcv'):
                build_backbone_from_config(path)
            return
    with torch.device('meta'):
        model = build_backbone_from_config(path)
    image = (3, ) if model.output_img else ()  # the HTC detector's backbone returns its input
    assert isinstance(model, DetectoRS_ResNet)
    assert model.out_channels == image + (256, 512, 1024, 2048)


def test_smallest_config_runs():
    path = next(p for p in family_configs('detectors') if p.endswith('resnet50-sac.py'))
    model = assert_config_builds_and_runs(path, DetectoRS_ResNet, size=SIZE)
    assert isinstance(model.layer2[0].conv2, SAConv2d)


def test_cli_info_and_export(tmp_path):
    """``info`` (declared outputs checked against a forward) and an ONNX export checked in
    onnxruntime (SAC's reflect padding and context pooling export), with a checkpoint whose AWS
    statistics are the weights' own (a freshly built AWS network has unit-variance weights and
    overflows in float32 by the last stage)."""
    import json
    pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    from tests.cli_helpers import run_cli
    model = DetectoRS_ResNet(depth=50, stem_channels=16, base_channels=16, out_indices=ALL,
                             conv_cfg=dict(type='ConvAWS'), sac=SAC,
                             stage_with_sac=(False, True, True, True))
    perturb_(model)
    _stats_from_weights_(model)
    torch.save(model.state_dict(), tmp_path / 'small.pth')
    small = ['--checkpoint', tmp_path / 'small.pth', '--cfg-options',
             'model.backbone.stem_channels=16', 'model.backbone.base_channels=16']
    info = run_cli('info', 'detectors_resnet50-sac', '--input-size', '96', '96', '--json', *small)
    assert info.returncode == 0, info.stderr
    assert [o['channels'] for o in json.loads(info.stdout)['outputs']] == [64, 128, 256, 512]
    export = run_cli('export', 'detectors_resnet50-sac', '-o', tmp_path / 'detectors.onnx',
                     '--input-size', '96', '96', '--json', *small)
    assert export.returncode == 0, export.stderr
    assert json.loads(export.stdout)['max_abs_diff'] < 1e-3
