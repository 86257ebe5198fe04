"""STDC (STDCNet, STDCContextPathNet): mmseg's key layout, metadata, out_indices and the truncated
build, freezing, norm_eval, checkpointing, input checks, layer depths, the nested backbone_cfg's
scope, the official ImageNet layout, configs, export and the detectron2 adapter.

Parity with mmseg's own classes, its whole STDC segmentor and its shipped configs is in
tests/downstream/test_stdc_parity.py and test_shipped_stdc_configs.py.
"""
import pytest
import torch
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.compat.stdc import MMSegSTDCContextPathNet, MMSegSTDCNet
from mmbackbones.models.backbones.stdc import STDCContextPathNet, STDCNet
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_fuse_keeps_outputs,
                          assert_norm_eval_keeps_bn_statistics, assert_with_cp_matches,
                          family_configs, perturb_, randomize_batchnorm_)

TINY = dict(channels=(8, 16, 32, 32, 64), norm_cfg=dict(type='BN', requires_grad=True))
PATH = dict(backbone_cfg=dict(type='STDCNet', **TINY), last_in_channels=(64, 32),
            out_channels=16, ffm_cfg=dict(in_channels=48, out_channels=32, scale_factor=4))
MMSEG_ARCH = {'STDCNet1': [(2, 1), (2, 1), (2, 1)],  # mmseg 1.2.2's STDCNet.arch_settings
              'STDCNet2': [(2, 1, 1, 1), (2, 1, 1, 1, 1), (2, 1, 1)]}


def _tiny(**kwargs) -> STDCNet:
    torch.manual_seed(0)
    model = STDCNet(**{**TINY, **kwargs})
    model.init_weights()
    perturb_(model)
    randomize_batchnorm_(model)
    return model


def _path(**kwargs) -> STDCContextPathNet:
    torch.manual_seed(0)
    model = STDCContextPathNet(**{**PATH, **kwargs})
    model.init_weights()
    perturb_(model)
    randomize_batchnorm_(model)
    return model


def test_arch_table_is_mmsegs():
    assert STDCNet.arch_settings == MMSEG_ARCH


def test_mmseg_key_layout_cat_and_add():
    keys = list(_tiny().state_dict())
    assert keys[:2] == ['stages.0.conv.weight', 'stages.0.bn.weight']
    assert 'stages.2.0.downsample.conv.weight' in keys and 'stages.2.0.layers.3.bn.bias' in keys
    assert not any('skip' in k for k in keys)  # 'cat': the skip is an average pool
    add = list(_tiny(bottleneck_type='add').state_dict())
    # mmseg registers the stride-2 block's downsample twice: as downsample and in layers.0
    assert 'stages.2.0.layers.0.1.conv.weight' in add and 'stages.2.0.downsample.conv.weight' in add
    assert 'stages.2.0.skip.1.bn.running_var' in add and 'stages.2.1.layers.0.conv.weight' in add
    path = list(_path().state_dict())
    assert path[0] == 'backbone.stages.0.conv.weight'
    for key in ('arms.1.atten_conv_layer.1.bn.weight', 'convs.0.conv.weight',
                'conv_avg.bn.bias', 'ffm.conv0.conv.weight', 'ffm.attention.2.conv.weight'):
        assert key in path


@pytest.mark.parametrize('stdc_type', sorted(MMSEG_ARCH))
def test_metadata_before_forward(stdc_type):
    with torch.device('meta'):
        net = STDCNet(stdc_type=stdc_type, out_indices=(0, 1, 2, 3, 4), with_final_conv=True)
        path = STDCContextPathNet(backbone_cfg=dict(type='STDCNet', stdc_type=stdc_type),
                                  ffm_cfg=dict(in_channels=384, out_channels=256))
    assert net.out_channels == (32, 64, 256, 512, 1024) and net.out_strides == (2, 4, 8, 16, 32)
    assert net.out_names == tuple(f'stage{i}' for i in range(1, 6))
    assert [len(s) for s in net.stages[2:]] == [len(s) for s in MMSEG_ARCH[stdc_type]]
    assert path.out_names == ('stage3', 'arm1', 'arm2', 'ffm')
    assert path.out_channels == (256, 128, 128, 256) and path.out_strides == (8, 16, 8, 8)
    assert set(path.output_shape()) == set(path.out_names)


def test_forward_shapes_any_size_and_empty_batch():
    net, path = _tiny(out_indices=(0, 1, 2, 3, 4)).eval(), _path().eval()
    with torch.no_grad():
        outs = net(torch.randn(2, 3, 37, 50))
        empty = net(torch.zeros(0, 3, 37, 50))
        context = path(torch.randn(2, 3, 37, 50))
        none = path(torch.zeros(0, 3, 37, 50))
    assert [tuple(o.shape) for o in outs] == [(2, 8, 19, 25), (2, 16, 10, 13), (2, 32, 5, 7),
                                              (2, 32, 3, 4), (2, 64, 2, 2)]
    assert [tuple(o.shape) for o in empty] == [(0,) + tuple(o.shape[1:]) for o in outs]
    assert [tuple(o.shape) for o in context] == [(2, 32, 5, 7), (2, 16, 3, 4), (2, 16, 5, 7),
                                                 (2, 32, 5, 7)]
    assert [tuple(o.shape) for o in none] == [(0,) + tuple(o.shape[1:]) for o in context]


def test_out_indices_order_and_truncated_build_loads_a_full_checkpoint():
    full = _tiny(out_indices=(0, 1, 2, 3, 4), with_final_conv=True).eval()
    part = STDCNet(**TINY, out_indices=(3, 1), with_final_conv=True).eval()
    assert len(part.stages) == 4 and not hasattr(part, 'final_conv')  # nothing after stage 4
    part.load_state_dict({k: v for k, v in full.state_dict().items()
                          if not k.startswith(('stages.4.', 'final_conv.'))})
    assert part.out_channels == (32, 16) and part.out_strides == (16, 4)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = full(x), part(x)
    assert torch.equal(b[0], a[3]) and torch.equal(b[1], a[1])
    assert full.out_channels[4] == 1024  # final_conv widens the last output to max(1024, C)


def test_truncated_build_through_the_loader(tmp_path):
    full = _tiny().eval()
    path = str(tmp_path / 'full.pth')
    torch.save(full.state_dict(), path)
    part = STDCNet(**TINY, out_indices=(2,), init_cfg=dict(type='Pretrained', checkpoint=path))
    part.init_weights()
    part.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(part(x)[0], full(x)[0])


@pytest.mark.parametrize('kwargs,error,words', [
    (dict(out_indices=(5,)), ValueError, 'out_indices'),
    (dict(out_indices=(2, 2)), ValueError, 'out_indices'),
    (dict(out_indices='all'), TypeError, 'out_indices'),
    (dict(stdc_type='STDCNet3'), ValueError, 'stdc_type'),
    (dict(bottleneck_type='sum'), ValueError, 'bottleneck_type'),
    (dict(channels=(8, 16, 32, 64)), ValueError, 'channels'),
    (dict(channels=(8, 16, 36, 32, 64)), ValueError, r'channels\[2\]'),
    (dict(num_convs=1), ValueError, 'num_convs'),
    (dict(num_convs=10 ** 6), ValueError, 'num_convs'),
    (dict(frozen_stages=6), ValueError, 'frozen_stages'),
    (dict(norm_eval=1), TypeError, 'norm_eval'),
    (dict(with_final_conv='yes'), TypeError, 'with_final_conv'),
    (dict(norm_cfg=dict(type='Nope')), KeyError, 'norm_cfg'),
    (dict(act_cfg='ReLU'), TypeError, 'act_cfg'),
    (dict(in_channels=0), ValueError, 'in_channels'),
    (dict(pretrained=3), TypeError, 'pretrained'),
])
def test_bad_arguments_are_refused_naming_them(kwargs, error, words):
    with pytest.raises(error, match=words):
        STDCNet(**{**TINY, **kwargs})


@pytest.mark.parametrize('kwargs,error,words', [
    (dict(backbone_cfg='STDCNet'), TypeError, 'backbone_cfg'),
    (dict(backbone_cfg=dict(stdc_type='STDCNet1')), KeyError, 'backbone_cfg'),
    (dict(backbone_cfg=dict(type='os.system')), KeyError, 'backbone_cfg'),
    (dict(backbone_cfg=dict(type=nn.Conv2d, in_channels=3, out_channels=8, kernel_size=1)),
     TypeError, 'our backbones'),
    (dict(backbone_cfg=dict(type='STDCNet', **TINY, out_indices=(3, 4))), ValueError,
     'three feature maps'),
    (dict(last_in_channels=(1024, 512)), ValueError, 'last_in_channels'),
    (dict(last_in_channels=(64, 32, 32)), ValueError, 'last_in_channels'),
    (dict(ffm_cfg=dict(in_channels=512, out_channels=256)), ValueError, 'ffm_cfg'),
    (dict(ffm_cfg=dict(in_channels=48, out_channels=32, scale=4)), ValueError, 'ffm_cfg'),
    (dict(ffm_cfg=dict(out_channels=32)), KeyError, 'in_channels'),
    (dict(out_channels=0), ValueError, 'out_channels'),
    (dict(upsample_mode='area'), ValueError, 'upsample_mode'),
    (dict(align_corners=True), ValueError, 'align_corners'),
    (dict(upsample_mode='bilinear', align_corners='yes'), TypeError, 'align_corners'),
    (dict(norm_cfg='BN'), TypeError, 'norm_cfg'),
    (dict(norm_eval=1), TypeError, 'norm_eval'),
])
def test_context_path_refuses_bad_arguments_naming_them(kwargs, error, words):
    with pytest.raises(error, match=words):
        STDCContextPathNet(**{**PATH, **kwargs})


def test_input_checks_and_dtypes():
    for model in (_tiny().eval(), _path().eval()):
        with pytest.raises(ValueError, match='4-D'):
            model(torch.randn(3, 32, 32))
        with pytest.raises(ValueError, match='in_channels=3'):
            model(torch.randn(1, 4, 32, 32))
        with pytest.raises(TypeError, match='dtype'):
            model(torch.zeros(1, 3, 32, 32, dtype=torch.float16))
        with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
            assert len(model(torch.rand(1, 3, 32, 32))) in (3, 4)
        model.to(torch.float64)
        with torch.no_grad():
            assert all(o.dtype == torch.float64 for o in model(torch.rand(1, 3, 32, 32,
                                                                           dtype=torch.float64)))


@pytest.mark.parametrize('bottleneck_type', ['cat', 'add'])
def test_frozen_stages_norm_eval_with_cp_and_gradients(bottleneck_type):
    kwargs = dict(bottleneck_type=bottleneck_type, out_indices=(0, 1, 2, 3, 4))
    assert_frozen_stages(_tiny(frozen_stages=3, **kwargs), 3)
    assert_frozen_stages(_tiny(frozen_stages=5, with_final_conv=True, **kwargs), 5)
    none = _tiny(frozen_stages=0, **kwargs)  # no stem apart from stage 1: nothing frozen
    assert all(p.requires_grad for p in none.parameters())
    one = _tiny(frozen_stages=1, **kwargs)
    assert {n.split('.')[1] for n, p in one.named_parameters() if not p.requires_grad} == {'0'}
    assert_norm_eval_keeps_bn_statistics(_tiny(norm_eval=True, **kwargs))
    assert_with_cp_matches(_tiny(**kwargs), _tiny(with_cp=True, **kwargs))
    assert_every_parameter_gets_gradients(_tiny(with_final_conv=True, **kwargs))


def test_context_path_training_contract():
    assert_norm_eval_keeps_bn_statistics(_path(norm_eval=True))
    assert_every_parameter_gets_gradients(_path())
    frozen = _path(backbone_cfg=dict(type='STDCNet', **TINY, frozen_stages=2))
    frozen.train()
    assert not frozen.backbone.stages[1].training and frozen.backbone.stages[2].training
    assert all(not p.requires_grad for p in frozen.backbone.stages[:2].parameters())
    assert all(p.requires_grad for n, p in frozen.named_parameters()
               if not n.startswith('backbone.stages.') or int(n.split('.')[2]) >= 2)


def test_fuse_keeps_outputs():
    assert_fuse_keeps_outputs(_tiny())
    assert_fuse_keeps_outputs(_path())


def test_get_layer_depth():
    model = _path()
    depth = model.get_layer_depth
    assert depth('backbone.backbone.stages.0.conv.weight', 'backbone.') == (0, 6)
    assert depth('backbone.backbone.stages.3.1.layers.2.conv.weight', 'backbone.') == (3, 6)
    assert STDCNet(**TINY, with_final_conv=True).get_layer_depth('final_conv.bn.bias') == (4, 6)
    assert depth('backbone.ffm.conv0.conv.weight', 'backbone.') == (5, 6)
    assert depth('decode_head.conv_seg.weight', 'backbone.') == (5, 6)
    assert {model.backbone.get_layer_depth(k)[0] for k, _ in
            model.backbone.named_parameters()} == set(range(5))


def test_default_init_is_mmcv_conv_modules():
    model = STDCContextPathNet(**PATH)
    model.init_weights()
    for conv in (model.backbone.stages[2][0].layers[1].conv, model.arms[0].conv_layer.conv):
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        assert 0.6 < float(conv.weight.detach().std()) / (2.0 / fan_out) ** 0.5 < 1.4
    assert torch.equal(model.conv_avg.bn.weight, torch.ones(16))


def test_twins_registry_names_and_the_nested_scope():
    from mmengine.registry import DefaultScope
    core = build_backbone(dict(type='STDCContextPathNet', **PATH))
    assert type(core) is STDCContextPathNet and type(core.backbone) is STDCNet
    twin_cfg = dict(PATH, backbone_cfg=dict(type='STDCNet', stdc_type='STDCNet1', in_channels=3,
                                            bottleneck_type='cat', act_cfg=dict(type='ReLU'),
                                            **TINY))
    twin = build_backbone(dict(type='mmbackbones.mmseg.STDCContextPathNet', **twin_cfg))
    assert type(twin) is MMSegSTDCContextPathNet and type(twin.backbone) is MMSegSTDCNet
    assert twin.backbone.out_indices == (2, 3, 4)
    # an unscoped name means the builder's scope whatever the default scope is
    with DefaultScope.overwrite_default_scope('mmengine'):
        assert type(STDCContextPathNet(**PATH).backbone) is STDCNet
        assert type(MMSegSTDCContextPathNet(**twin_cfg).backbone) is MMSegSTDCNet
    # a scoped name means what it says
    scoped = dict(twin_cfg, backbone_cfg=dict(PATH['backbone_cfg'], type='mmbackbones.STDCNet'))
    assert type(MMSegSTDCContextPathNet(**scoped).backbone) is STDCNet
    named = dict(PATH, backbone_cfg=dict(twin_cfg['backbone_cfg'],
                                         type='mmbackbones.mmseg.STDCNet'))
    assert type(STDCContextPathNet(**named).backbone) is MMSegSTDCNet
    # mmseg's STDCNet requires its arguments: the twin scope is really mmseg's signature
    with pytest.raises(TypeError, match='backbone_cfg.*stdc_type'):
        MMSegSTDCContextPathNet(**dict(twin_cfg, backbone_cfg=dict(type='STDCNet', **TINY)))
    with pytest.warns(UserWarning, match='deprecated'):
        assert MMSegSTDCNet('STDCNet1', 3, TINY['channels'], 'cat', dict(type='BN'),
                            dict(type='ReLU'), pretrained='a.pth').init_cfg == dict(
                                type='Pretrained', checkpoint='a.pth')


def test_official_imagenet_layout_converts_on_every_load_route(tmp_path):
    from mmbackbones.checkpoint.converters import convert_state_dict
    from mmbackbones.checkpoint.converters.official_stdc import (convert_official_stdc,
                                                                 is_official_stdc,
                                                                 revert_official_stdc)
    for stdc_type in MMSEG_ARCH:
        for bottleneck_type in ('cat', 'add'):
            src = _tiny(stdc_type=stdc_type, bottleneck_type=bottleneck_type,
                        with_final_conv=True, out_indices=(0, 1, 2, 3, 4))
            official = revert_official_stdc(src.state_dict())
            assert 'features.2.conv_list.0.conv.weight' in official
            assert 'features.2.avd_layer.1.running_mean' in official
            assert 'conv_last.conv.weight' in official and 'features.0.bn.bias' in official
            assert is_official_stdc(official)
            official.update({'fc.weight': torch.zeros(4, 4), 'bn.weight': torch.zeros(4),
                             'linear.weight': torch.zeros(2, 4),
                             'x8.0.0.conv_list.0.conv.weight': torch.zeros(1)})
            back = convert_official_stdc(official)
            assert back.keys() == src.state_dict().keys()
            converted, name = convert_state_dict(official, 'auto', target={
                k: v.shape for k, v in src.state_dict().items()})
            assert name == 'official_stdc'
    # the ImageNet file into the context path's backbone through Pretrained (as the shipped
    # in1k-pre configs do), and straight into load_state_dict
    src = _tiny()
    path = str(tmp_path / 'STDCNet813M.tar')
    official = revert_official_stdc(_tiny(out_indices=(0, 1, 2, 3, 4)).state_dict())
    official['fc.weight'] = torch.zeros(4, 4)
    torch.save({'state_dict': official}, path)
    model = STDCContextPathNet(**dict(PATH, backbone_cfg=dict(
        PATH['backbone_cfg'], init_cfg=dict(type='Pretrained', checkpoint=path))))
    model.init_weights()
    plain = STDCNet(**TINY)
    plain.load_state_dict(official)
    for key, value in src.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
        assert torch.equal(plain.state_dict()[key], value), key
    with pytest.raises(KeyError, match='6 \\(STDC1\\) or 12'):
        convert_official_stdc({k: v for k, v in official.items()
                               if not k.startswith('features.7.')})


@pytest.mark.parametrize('path', family_configs('stdc'))
def test_shipped_configs_build_and_run(path):
    assert_config_builds_and_runs(path, (STDCNet, STDCContextPathNet), size=64)


def test_dynamic_onnx_export_and_info(tmp_path):
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    from tests.cli_helpers import run_cli
    result = run_cli('export', 'stdc1', '-o', tmp_path / 'stdc1.onnx', '--input-size', '64',
                     '64', '--dynamic')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'onnxruntime check ok' in result.stdout and 'ffm' in result.stdout
    info = run_cli('info', 'stdc1')
    assert info.returncode == 0 and '7,679,904' in info.stdout  # = mmseg's STDC1 context path


def test_detectron2_adapter_output_shape():
    from mmbackbones.integrations import detectron2 as d2i
    adapter = d2i.Detectron2Backbone(dict(type='STDCContextPathNet', **PATH))
    shapes = adapter.output_shape()
    assert [(s.channels, s.stride) for s in shapes.values()] == [(32, 8), (16, 16), (16, 8),
                                                                 (32, 8)]
    out = adapter(torch.randn(2, 3, 64, 64))  # training: conv_avg's BN needs 2 pooled values
    assert list(out) == ['stage3', 'arm1', 'arm2', 'ffm']
    assert [v.shape[1] for v in out.values()] == [32, 16, 16, 32]


def test_convert_to_writes_mmseg_and_the_official_layout():
    from mmbackbones.checkpoint.convert import family_of, locate_backbone, to_native
    from mmbackbones.checkpoint.converters.official_stdc import convert_official_stdc
    state = _tiny(stdc_type='STDCNet2', out_indices=(0, 1, 2, 3, 4)).state_dict()
    assert family_of(state) == 'STDC' and family_of({}, 'mmbackbones.mmseg.STDCNet') == 'STDC'
    assert to_native(state, 'mmseg') == dict(state)
    official = to_native(state, 'timm')
    assert 'features.13.conv_list.3.bn.running_var' in official  # STDC2: 2 + 12 blocks
    assert convert_official_stdc(official).keys() == state.keys()
    whole = {f'backbone.backbone.{k}': v for k, v in state.items()}
    whole['decode_head.conv_seg.weight'] = torch.zeros(2, 4, 1, 1)
    assert locate_backbone(whole) == 'backbone.backbone.'
    with pytest.raises(ValueError, match='truncated'):
        to_native(_tiny(out_indices=(2, )).state_dict(), 'timm')
