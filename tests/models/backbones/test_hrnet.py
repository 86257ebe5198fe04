"""HRNet: mmpretrain parity, the timm key converter, metadata, freezing, arguments, configs."""
import copy
import glob
import os

import pytest
import torch
from torch import nn

from mmbackbones import build_backbone, build_backbone_from_config
from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.checkpoint.converters.timm_hrnet import (TIMM_HRNET_ARCHS, convert_timm_hrnet,
                                                          is_timm_hrnet)
from mmbackbones.models.backbones.hrnet import HRNet, arch_to_extra
from tests.parity import assert_outputs_close, mmpretrain_backbone, perturb_, save_as_backbone

SMALL = 'w18_small_v2'  # mmseg's hr18s / timm's hrnet_w18_small_v2: 2 blocks per branch
SMALL_EXTRA = arch_to_extra(HRNet.arch_zoo[SMALL])
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))


def _perturb(model: nn.Module, seed: int = 1) -> None:
    """Every tensor off its init, norm statistics non-trivial."""
    perturb_(model, seed)


def _small(**kwargs) -> HRNet:
    return HRNet(arch=SMALL, **kwargs)


# ----- parity with mmpretrain --------------------------------------------------------------------
@pytest.mark.parametrize('arch,kwargs', [
    ('w18', {}),
    (None, {}),
    (None, dict(multiscale_output=False)),
    (None, dict(in_channels=1)),
])
def test_mmpretrain_checkpoint_loads_and_matches(arch, kwargs, tmp_path):
    """mmpretrain's HRNet (w18, or the small arch through ``extra``): identical keys, its
    classifier checkpoint loads through init_cfg, equal outputs (relative 1e-5)."""
    spec = dict(arch=arch) if arch else dict(extra=copy.deepcopy(SMALL_EXTRA))
    theirs = mmpretrain_backbone('HRNet')(**spec, **kwargs)
    _perturb(theirs)
    theirs.eval()
    ckpt = save_as_backbone(theirs, tmp_path / 'theirs.pth')
    ours = HRNet(**spec, **kwargs,
                 init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone'))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.init_weights()
    ours.eval()
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    # w18 at one 32-px image (its branch 4 is 1x1 there), the small arch at two 64-px images
    shape = (1, 32) if arch else (2, 64)
    x = torch.randn(shape[0], kwargs.get('in_channels', 3), shape[1], shape[1])
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert len(got) == len(expected) == (1 if kwargs.get('multiscale_output') is False else 4)
    assert_outputs_close(expected, got)


@pytest.mark.parametrize('arch', sorted(HRNet.arch_zoo))
def test_every_arch_has_mmpretrains_keys(arch):
    """Same module tree for every arch mmpretrain names (meta tensors: no memory)."""
    with torch.device('meta'):
        ours = HRNet(arch=arch)
        if arch in mmpretrain_backbone('HRNet').arch_zoo:
            theirs = mmpretrain_backbone('HRNet')(arch=arch)
            assert list(ours.state_dict()) == list(theirs.state_dict())
    widths = HRNet.arch_zoo[arch][3][4]
    assert ours.out_channels == tuple(widths)
    assert ours.out_strides == (4, 8, 16, 32)


# ----- timm ------------------------------------------------------------------------------------
@pytest.mark.parametrize('timm_name', ['hrnet_w18_small', 'hrnet_w18_small_v2'])
def test_timm_checkpoint_through_init_cfg(timm_name, tmp_path):
    """A random timm HRNet (classification, with its head) saved as safetensors, loaded through
    init_cfg (auto conversion): the 4 branch features equal timm's ``features_only`` ones."""
    timm = pytest.importorskip('timm', reason='timm is needed for the timm parity test')
    from safetensors.torch import save_file
    torch.manual_seed(0)
    source = timm.create_model(timm_name, pretrained=False)
    _perturb(source)
    path = str(tmp_path / 'timm.safetensors')
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    features = timm.create_model(timm_name, features_only=True, feature_location='',
                                 out_indices=(1, 2, 3, 4))
    features.load_state_dict(source.state_dict(), strict=False)
    ours = HRNet(arch=TIMM_HRNET_ARCHS[timm_name],
                 init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    assert torch.equal(ours.stage4[0].fuse_layers[0][1][0].weight,
                       source.stage4[0].fuse_layers[0][1][0].weight)
    features.eval()
    ours.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = features(x), ours(x)
    assert len(got) == len(expected) == 4
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5 * e.abs().max().item())


def test_timm_converter_detects_drops_the_head_and_refuses_strangers():
    timm = pytest.importorskip('timm', reason='timm is needed for the converter test')
    with torch.device('meta'):
        state = timm.create_model('hrnet_w18_small').state_dict()
        target = {k: tuple(v.shape) for k, v in _small().state_dict().items()}
    assert is_timm_hrnet(state)
    assert not is_timm_hrnet({k: v for k, v in state.items() if 'incre' not in k})
    converted = convert_timm_hrnet(state)
    assert not any(k.startswith(('incre_modules', 'final_layer', 'classifier'))
                   for k in converted)
    assert set(converted) == set(HRNet(arch='w18_small').state_dict())
    out, name = convert_state_dict(state, 'timm')
    assert name == 'timm_hrnet' and set(out) == set(converted)
    _, auto = convert_state_dict(state, 'auto', target)
    assert auto == 'timm_hrnet'
    with pytest.raises(KeyError, match='head.fc.weight'):
        convert_timm_hrnet(dict(state, **{'head.fc.weight': torch.zeros(1)}))


# ----- contract: metadata, out_indices, freezing ---------------------------------------------
def test_metadata_before_forward_and_out_indices():
    model = _small(out_indices=(3, -4))
    assert model.out_indices == (3, 0)
    assert model.out_channels == (144, 18) and model.out_strides == (32, 4)
    assert model.out_names == ('branch4', 'branch1')
    assert set(model.output_shape()) == {'branch4', 'branch1'}
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in out] == [144, 18]
    assert [64 // o.shape[-1] for o in out] == [32, 4]


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(out_indices=4), ValueError, 'out_indices'),
    (dict(out_indices=(0, 0)), ValueError, 'repeat'),
    (dict(multiscale_output=False, out_indices=(1, )), ValueError, 'out_indices'),
    (dict(arch='w17'), ValueError, "arch must be one of 'w18'"),
    (dict(frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(upsample_mode='bicubic'), ValueError, 'upsample_mode'),
    (dict(norm_eval=1), TypeError, 'norm_eval'),
    (dict(norm_cfg=dict(type='NoSuchNorm')), (KeyError, ValueError), 'norm_cfg'),
    (dict(pretrained='a.pth', init_cfg=dict(type='Kaiming')), ValueError, 'contradict'),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        HRNet(**{'arch': SMALL, **kwargs})


def _extra(stage: str, **changes) -> dict:
    extra = copy.deepcopy(SMALL_EXTRA)
    extra[stage].update(changes)
    return extra


@pytest.mark.parametrize('extra,error,match', [
    ({k: v for k, v in SMALL_EXTRA.items() if k != 'stage3'}, KeyError, r"\['stage3'\]"),
    (dict(SMALL_EXTRA, stage5={}), ValueError, 'unknown keys'),
    (_extra('stage2', num_blocks=(2, )), ValueError, 'one entry per branch'),
    (_extra('stage3', block='BOTTLE'), ValueError, 'block'),
    (_extra('stage1', num_branches=2, num_blocks=(1, 1), num_channels=(8, 8)), ValueError,
     'must be 1 for stage1'),
    (_extra('stage4', num_channels=(18, 36, 72, 10**6)), ValueError, '<= 65536'),
    (_extra('stage2', fuse_method='SUM'), ValueError, 'unknown keys'),
    ('not a dict', TypeError, 'extra must be a dict'),
])
def test_bad_extra_is_refused(extra, error, match):
    with pytest.raises(error, match=match):
        HRNet(extra=extra)


def test_frozen_stages_as_mmseg():
    model = _small(frozen_stages=2)
    model.train()
    frozen = ('conv1', 'bn1', 'conv2', 'bn2', 'layer1', 'transition1', 'stage2', 'transition2')
    for name, param in model.named_parameters():
        assert param.requires_grad == (not name.startswith(frozen)), name
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            assert module.training == (not name.startswith(frozen)), name


def test_norm_eval_keeps_every_bn_in_eval():
    model = _small(norm_eval=True).train()
    assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert model.stage4.training


def test_with_cp_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = _small().train()
    cp = _small(with_cp=True).train()
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    sums = []
    for model in (plain, cp):
        model.zero_grad()
        out = model(x.clone().requires_grad_())
        sum(o.square().mean() for o in out).backward()
        sums.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*sums):
        torch.testing.assert_close(a, b)


def test_empty_batch_and_odd_sizes():
    model = _small().eval()
    with torch.no_grad():
        empty = model(torch.zeros(0, 3, 64, 64))
        one = model(torch.zeros(1, 3, 64, 64))
        odd = model(torch.randn(1, 3, 45, 71))
    assert [e.shape[1:] for e in empty] == [o.shape[1:] for o in one]
    assert all(e.shape[0] == 0 for e in empty)
    # mmpretrain/mmdet fail at odd sides (nearest x2 of a 12-px branch is not 23 px); here the
    # upsampled branch is resized to the target's size
    assert [tuple(o.shape[-2:]) for o in odd] == [(12, 18), (6, 9), (3, 5), (2, 3)]


def test_input_checks():
    model = _small().eval()
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match='floating-point'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match='4-D'):
        model(torch.zeros(3, 32, 32))


def test_bilinear_mode_differs_and_keeps_keys():
    torch.manual_seed(0)
    nearest = _small().eval()
    bilinear = _small(upsample_mode='bilinear').eval()
    bilinear.load_state_dict(nearest.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = nearest(x), bilinear(x)
    assert a[0].shape == b[0].shape and not torch.allclose(a[0], b[0])


def test_zero_init_residual_as_mmpretrain():
    model = _small(zero_init_residual=True)
    model.init_weights()
    assert torch.all(model.stage2[0].branches[0][0].bn2.weight == 0)
    assert torch.all(model.stage4[-1].branches[3][1].bn2.weight == 0)
    assert torch.all(model.layer1[0].bn3.weight == 1)  # layer1 keeps the constant init


def test_get_layer_depth():
    model = _small()
    assert model.get_layer_depth('backbone.conv1.weight', 'backbone.') == (0, 6)
    assert model.get_layer_depth('backbone.bn2.bias', 'backbone.') == (0, 6)
    assert model.get_layer_depth('backbone.layer1.0.conv1.weight', 'backbone.') == (1, 6)
    assert model.get_layer_depth('backbone.transition2.2.0.0.weight', 'backbone.') == (2, 6)
    assert model.get_layer_depth('backbone.stage3.1.branches.0.0.conv1.weight',
                                 'backbone.') == (3, 6)
    assert model.get_layer_depth('backbone.stage4.0.fuse_layers.0.1.0.weight',
                                 'backbone.') == (4, 6)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (5, 6)
    for name, _ in model.named_parameters():  # every parameter has a depth below the head's
        assert model.get_layer_depth(name)[0] < 5, name


def test_fuse_keeps_outputs():
    torch.manual_seed(0)
    model = _small()
    _perturb(model)
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        got = model.fuse()(x)
    assert model.num_fused_norms > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4 * e.abs().max().item())


def test_default_init_cfg_and_pretrained():
    assert _small().init_cfg[0] == dict(type='Kaiming', layer='Conv2d')
    assert _small().init_cfg is not _small().init_cfg
    with pytest.warns(UserWarning, match='deprecated'):
        model = _small(pretrained='x.pth')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='x.pth')


# ----- configs ---------------------------------------------------------------------------------
@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(REPO, 'configs', 'hrnet',
                                                               '*.py'))))
def test_shipped_configs_build(path):
    with torch.device('meta'):
        model = build_backbone_from_config(path)
    assert isinstance(model, HRNet)
    assert len(model.out_channels) == 4


def test_registry_builds_mmcls_type():
    with torch.device('meta'):
        model = build_backbone(dict(type='mmcls.HRNet', arch='w18'))
    assert type(model) is HRNet and model.out_channels == (18, 36, 72, 144)


@pytest.mark.parametrize('mode', ['nearest', 'bilinear'])
def test_dynamic_onnx_export_at_odd_sizes(mode, tmp_path):
    """``export --dynamic``: the fuse layers' resize to the target size stays in the graph, so
    odd sides the trace did not see (where the x2 upsample overshoots) run in onnxruntime."""
    pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    import json

    from tests.cli_helpers import run_cli
    result = run_cli('export', 'hrnet-w18-small', '-o', tmp_path / 'hr.onnx', '--input-size',
                     '32', '32', '--dynamic', '--json', '--cfg-options',
                     f'model.backbone.upsample_mode={mode}')
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [c['input_shape'] for c in report['verify']] == [[1, 3, 32, 32], [2, 3, 51, 45]]
    assert report['max_abs_diff'] < 1e-4
