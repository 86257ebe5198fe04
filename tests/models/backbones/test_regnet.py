"""RegNet: mmpretrain and timm parity, the timm key converter, metadata, freezing, arguments,
configs."""
import math
import os

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters.timm_regnet import (TIMM_REGNETX_ARCHS,
                                                           convert_timm_regnet, is_timm_regnet)
from mmbackbones.models.backbones.regnet import RegNet
from tests.parity import (assert_config_builds_and_runs, assert_fuse_keeps_outputs,
                          assert_mmpretrain_parity, assert_norm_eval_keeps_bn_statistics,
                          family_configs, mmpretrain_backbone, randomize_batchnorm_,
                          save_as_backbone)

# timm's regnetx_002: the smallest RegNetX (widths 24, 56, 152, 368), fast enough for every test.
X200 = TIMM_REGNETX_ARCHS['regnetx_002']
ALL = (0, 1, 2, 3)


_randomize_bn = randomize_batchnorm_


# ----- parity with mmpretrain --------------------------------------------------------------------
@pytest.mark.parametrize('arch,kwargs', [
    ('regnetx_400mf', {}),
    (X200, {}),
    (X200, dict(style='caffe', avg_down=True)),
    (X200, dict(strides=(2, 2, 2, 1), dilations=(1, 1, 1, 2), stem_channels=16)),
])
def test_mmpretrain_checkpoint_loads_and_matches(arch, kwargs, tmp_path):
    theirs = mmpretrain_backbone('RegNet')(arch, out_indices=ALL, **kwargs)
    # init_weights() there: zero_init_residual must not undo a pretrained checkpoint
    assert_mmpretrain_parity(
        theirs, lambda init_cfg: RegNet(arch, out_indices=ALL, **kwargs, init_cfg=init_cfg),
        tmp_path, [(35, 45)], randomize=_randomize_bn, num_outputs=4)


@pytest.mark.parametrize('arch', sorted(RegNet.arch_settings))
def test_every_named_arch_has_mmpretrains_stages(arch):
    """Widths, depths and group widths of every named arch equal mmpretrain's arithmetic."""
    mp = mmpretrain_backbone('RegNet')
    helper = mp.__new__(mp)  # its width arithmetic needs no built layers
    cfg = mp.arch_settings[arch]
    widths, num_stages = helper.generate_regnet(cfg['w0'], cfg['wa'], cfg['wm'], cfg['depth'])
    stage_widths, stage_blocks = helper.get_stages_from_blocks(widths)
    stage_widths, group_widths = helper.adjust_width_group(
        stage_widths, [cfg['bot_mul']] * num_stages, [cfg['group_w']] * num_stages)
    assert RegNet.arch_settings[arch] == cfg
    model = RegNet(arch, out_indices=0)  # builds layer1 only: cheap for the 12gf arch
    assert model.stage_widths == stage_widths
    assert model.stage_blocks == stage_blocks
    assert model.group_widths == group_widths


def test_frozen_stages_match_mmpretrain():
    theirs = mmpretrain_backbone('RegNet')(X200, out_indices=ALL, frozen_stages=2)
    ours = RegNet(X200, out_indices=ALL, frozen_stages=2)
    assert ({k: p.requires_grad for k, p in ours.named_parameters()}
            == {k: p.requires_grad for k, p in theirs.named_parameters()})
    assert not ours.conv1.weight.requires_grad and ours.layer3[0].conv1.weight.requires_grad


# ----- parity with timm through the key converter ------------------------------------------------
@pytest.mark.parametrize('name', ['regnetx_002', 'regnetx_004'])
def test_timm_checkpoint_converts_and_matches(name, tmp_path):
    timm = pytest.importorskip('timm', reason='timm is needed for timm parity')
    theirs = timm.create_model(name, pretrained=False)
    _randomize_bn(theirs)
    theirs.eval()
    state = theirs.state_dict()
    assert is_timm_regnet(state)
    converted = convert_timm_regnet(state)
    assert not any(k.startswith('head') for k in converted)
    ckpt = save_as_backbone(converted, tmp_path / 'timm.pth')
    ours = RegNet(TIMM_REGNETX_ARCHS[name], out_indices=ALL,
                  init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone'))
    assert set(ours.state_dict()) == set(converted)
    ours.init_weights()
    # float64: the same network gives the same numbers whatever kernels each side runs (in
    # float32 the summation orders differ, ~1e-6 of the largest activation)
    ours.eval().double()
    theirs.double()
    x = torch.randn(2, 3, 45, 37, dtype=torch.float64)
    with torch.no_grad():
        expected = theirs.forward_intermediates(x, intermediates_only=True)[1:]  # drop the stem
        got = ours(x)
    assert [f.shape[1] for f in expected] == list(ours.out_channels)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-10)


def test_timm_mmpretrain_names_agree():
    """regnetx_004 is mmpretrain's regnetx_400mf and regnetx_040 its regnetx_4.0gf."""
    for timm_name, ours in [('regnetx_004', 'regnetx_400mf'), ('regnetx_008', 'regnetx_800mf'),
                            ('regnetx_016', 'regnetx_1.6gf'), ('regnetx_032', 'regnetx_3.2gf'),
                            ('regnetx_040', 'regnetx_4.0gf'), ('regnetx_064', 'regnetx_6.4gf'),
                            ('regnetx_080', 'regnetx_8.0gf'), ('regnetx_120', 'regnetx_12gf')]:
        assert TIMM_REGNETX_ARCHS[timm_name] == RegNet.arch_settings[ours]


def test_converter_maps_keys_and_refuses_what_has_no_counterpart():
    value = torch.zeros(1)
    state = {'stem.conv.weight': value, 'stem.bn.running_var': value,
             's2.b1.conv2.conv.weight': value, 's2.b1.conv3.bn.bias': value,
             's2.b1.downsample.conv.weight': value, 's2.b1.downsample.bn.weight': value,
             's4.b3.conv1.bn.num_batches_tracked': value,
             'head.fc.weight': value, 'head.fc.bias': value}
    assert sorted(convert_timm_regnet(state)) == sorted([
        'conv1.weight', 'bn1.running_var', 'layer2.0.conv2.weight', 'layer2.0.bn3.bias',
        'layer2.0.downsample.0.weight', 'layer2.0.downsample.1.weight',
        'layer4.2.bn1.num_batches_tracked'])
    with pytest.raises(KeyError, match=r"'s1\.b1\.se\.fc1\.weight'"):
        convert_timm_regnet({'s1.b1.se.fc1.weight': value})  # RegNetY
    assert not is_timm_regnet({'conv1.weight': value})


# ----- init --------------------------------------------------------------------------------------
def test_zero_init_residual_zeroes_the_last_norm_of_each_block():
    model = RegNet(X200, out_indices=ALL)
    model.init_weights()
    blocks = [b for name in model.res_layers for b in getattr(model, name)]
    assert len(blocks) == sum(model.stage_blocks)
    assert all(torch.all(b.bn3.weight == 0) for b in blocks)
    model = RegNet(X200, zero_init_residual=False)
    model.init_weights()
    assert all(torch.all(b.bn3.weight == 1) for b in model.layer4)


# ----- metadata and shapes -----------------------------------------------------------------------
def test_metadata_is_known_before_forward_and_matches_it():
    model = RegNet('regnetx_400mf', out_indices=ALL)
    assert model.out_channels == (32, 64, 160, 384)
    assert model.out_strides == (4, 8, 16, 32)
    assert model.out_names == ('stage1', 'stage2', 'stage3', 'stage4')
    model.eval()
    for h, w in [(64, 64), (37, 29)]:
        with torch.no_grad():
            outs = model(torch.randn(1, 3, h, w))
        for out, c, s in zip(outs, model.out_channels, model.out_strides):
            assert out.shape == (1, c, math.ceil(h / s), math.ceil(w / s))


def test_seed_config_spelling_builds_through_the_mmcls_scope():
    model = build_backbone(dict(type='mmcls.RegNet', arch='regnetx_4.0gf', out_indices=ALL))
    assert isinstance(model, RegNet)
    assert model.out_channels == (80, 240, 560, 1360)
    assert model.stage_blocks == [2, 5, 14, 2]


def test_dilated_last_stage_keeps_stride_16():
    model = RegNet(X200, out_indices=(2, 3), strides=(2, 2, 2, 1), dilations=(1, 1, 1, 2))
    assert model.out_strides == (16, 16)
    outs = model.eval()(torch.randn(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [4, 4]


def test_stages_after_the_last_output_are_not_built_and_all_params_get_grads():
    model = RegNet('regnetx_400mf', out_indices=(1, 0))
    assert model.res_layers == ['layer1', 'layer2'] and not hasattr(model, 'layer3')
    assert model.out_names == ('stage2', 'stage1') and model.out_channels == (64, 32)
    model.train()
    sum(o.sum() for o in model(torch.randn(2, 3, 32, 32))).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_with_cp_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = RegNet(X200, out_indices=(1,))
    cp = RegNet(X200, out_indices=(1,), with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    grads = []
    for model in (plain, cp):
        model.train()
        model.zero_grad()
        model(x)[0].square().sum().backward()
        grads.append(model.layer1[0].conv2.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_wrong_input_is_refused_with_in_channels():
    with pytest.raises(ValueError, match='in_channels=3'):
        RegNet(X200)(torch.randn(1, 4, 32, 32))


# ----- freezing and norm_eval --------------------------------------------------------------------
@pytest.mark.parametrize('frozen_stages', [0, 1, 4])
def test_frozen_stages(frozen_stages):
    model = RegNet(X200, out_indices=ALL, frozen_stages=frozen_stages).train()
    parts = [[model.conv1, model.bn1], *([getattr(model, n)] for n in model.res_layers)]
    for i, part in enumerate(parts):
        frozen = i <= frozen_stages
        for module in part:
            assert all(p.requires_grad != frozen for p in module.parameters())
            assert all(m.training != frozen for m in module.modules())


def test_norm_eval_keeps_bn_statistics():
    assert_norm_eval_keeps_bn_statistics(RegNet(X200, out_indices=(0,), norm_eval=True))


# ----- argument errors ---------------------------------------------------------------------------
@pytest.mark.parametrize('kwargs,error,match', [
    (dict(arch='regnetx_4gf'), ValueError, r"arch must be one of .*'regnetx_4\.0gf'"),
    (dict(arch=400), TypeError, 'RegNet arch must be one of the names'),
    (dict(arch=dict(w0=24, wa=36.44, wm=2.49, depth=13)), KeyError,
     r"missing keys \['group_w', 'bot_mul'\]"),
    (dict(arch=dict(X200, w0=20)), ValueError, r"arch\['w0'\] must be a multiple of 8"),
    (dict(arch=dict(X200, wm=1.0)), ValueError, r"arch\['wm'\] .* must be > 1"),
    (dict(arch=dict(X200, wa=-1)), ValueError, r"arch\['wa'\] .* must be >= 0"),
    (dict(arch=dict(X200, wa=200.0, wm=1.5)), ValueError, r'gives 7 stages .* supports 1 to 4'),
    (dict(strides=(2, 2, 2)), ValueError, r'strides must have one entry per stage \(4'),
    (dict(dilations=(1, 1, 1, 0)), ValueError, 'each of dilations must be a positive int'),
    (dict(out_indices=(4,)), ValueError, r'out_indices contains 4'),
    (dict(frozen_stages=-2), ValueError, r'frozen_stages must be in -1\.\.4'),
    (dict(style='tf'), ValueError, r"style must be one of 'pytorch', 'caffe'; got 'tf'"),
    (dict(deep_stem=True), ValueError, 'deep_stem=True is not supported'),
    (dict(norm_eval=1), TypeError, 'norm_eval must be a bool'),
])
def test_bad_arguments_name_the_argument(kwargs, error, match):
    kwargs = dict(dict(arch=X200), **kwargs)
    with pytest.raises(error, match=match):
        RegNet(**kwargs)


# ----- configs -----------------------------------------------------------------------------------
CONFIGS = family_configs('regnet')


def test_configs_cover_every_named_arch():
    names = {os.path.basename(p) for p in CONFIGS}
    expected = {a.replace('_', '-') + '.py' for a in RegNet.arch_settings}
    assert expected <= names


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_every_config_builds_and_runs(path):
    assert_config_builds_and_runs(path, RegNet)


def test_fuse_folds_every_bn_and_keeps_outputs():
    model = RegNet(X200, out_indices=ALL).eval()
    _randomize_bn(model)
    assert_fuse_keeps_outputs(model)


@pytest.mark.parametrize('convert', ['auto', 'timm'])
def test_raw_timm_checkpoint_loads_through_init_cfg(convert, tmp_path):
    """The converter is found by the checkpoint package: a timm file loads as it is."""
    timm = pytest.importorskip('timm', reason='timm is needed for timm parity')
    theirs = timm.create_model('regnetx_002', pretrained=False)
    _randomize_bn(theirs)
    theirs.eval()
    path = str(tmp_path / 'regnetx_002.pth')
    torch.save(theirs.state_dict(), path)
    ours = RegNet(TIMM_REGNETX_ARCHS['regnetx_002'], out_indices=ALL,
                  init_cfg=dict(type='Pretrained', checkpoint=path, convert=convert))
    ours.init_weights()
    ours.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[-1], theirs.forward_features(x), rtol=1e-5,
                                   atol=1e-5)


def test_signature_is_mmpretrains_plus_mmdets_extras():
    import inspect
    theirs = list(inspect.signature(mmpretrain_backbone('RegNet').__init__).parameters)
    ours = list(inspect.signature(RegNet.__init__).parameters)
    assert ours == theirs + ['mmdet_args']  # same names, same order; mmdet's go to **kwargs
    for name, param in inspect.signature(mmpretrain_backbone('RegNet').__init__).parameters.items():
        assert inspect.signature(RegNet.__init__).parameters[name].default == param.default


def test_frozen_bn_and_group_norm_configs():
    bn = RegNet(X200, out_indices=ALL).eval()
    _randomize_bn(bn)
    frozen = RegNet(X200, out_indices=ALL, norm_cfg=dict(type='FrozenBN'))
    frozen.load_state_dict(bn.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(frozen.train()(x)[-1], bn(x)[-1])
    gn = RegNet(X200, norm_cfg=dict(type='GN', num_groups=8))
    assert 'gn1.weight' in gn.state_dict() and 'layer1.0.gn3.weight' in gn.state_dict()
    assert gn(torch.randn(1, 3, 32, 32))[0].shape == (1, 368, 1, 1)


# ----- mmdet's arguments -------------------------------------------------------------------------
def test_mmdet_plugins_pretrained_and_dcn_arguments():
    plugins = [dict(cfg=dict(type='ContextBlock', ratio=1. / 16), stages=(False, True, True, True),
                    position='after_conv3')]
    with pytest.warns(UserWarning, match="type='mmbackbones.mmdet.RegNet'"):
        model = RegNet('regnetx_400mf', out_indices=ALL, plugins=plugins,
                       pretrained='open-mmlab://regnetx_400mf')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='open-mmlab://regnetx_400mf')
    keys = model.state_dict()
    assert 'layer2.0.context_block.conv_mask.weight' in keys
    assert not any('context_block' in k for k in keys if k.startswith('layer1.'))
    block, x = model.layer2[0].eval(), torch.randn(1, 32, 8, 8)
    with torch.no_grad():
        out = block.relu(block.norm2(block.conv2(block.relu(block.norm1(block.conv1(x))))))
        expected = block.relu(block.context_block(block.norm3(block.conv3(out)))
                              + block.downsample(x))
        torch.testing.assert_close(block(x), expected)
    dcn = dict(dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
               stage_with_dcn=(False, True, True, True))
    try:
        import mmcv.ops  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match='full mmcv'):
            RegNet('regnetx_400mf', **dcn)
    else:
        model = RegNet('regnetx_400mf', out_indices=ALL, **dcn)
        assert type(model.layer2[0].conv2).__name__ == 'ModulatedDeformConv2dPack'
    with pytest.raises(ValueError, match='stage_with_dcn'):
        RegNet('regnetx_400mf', dcn=dict(type='DCN'), stage_with_dcn=(True,))
    with pytest.raises(ValueError, match='contradict'):
        RegNet('regnetx_400mf', pretrained='a.pth', init_cfg=dict(type='Kaiming'))
