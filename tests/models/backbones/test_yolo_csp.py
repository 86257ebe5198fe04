"""YOLOX's CSP-Darknet (``YOLOXCSPDarknet``), RTMDet's ``CSPNeXt`` and ``Darknet``-53: the
contract (metadata, out_indices, truncation, freezing, norm_eval, with_cp, empty batches,
dtypes, fuse, layer depths), the timm darknet53 converter, the shipped configs. Parity with
mmdet's own classes is in tests/downstream/test_csp_parity.py."""
import os

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.checkpoint.converters.timm_darknet import (TIMM_DARKNET_ARCHS,
                                                            convert_timm_darknet,
                                                            is_timm_darknet,
                                                            revert_timm_darknet)
from mmbackbones.models.backbones.cspnext import CSPNeXt
from mmbackbones.models.backbones.darknet import Darknet
from mmbackbones.models.backbones.yolox_cspdarknet import YOLOXCSPDarknet
from mmbackbones.models.layers.csp_layer import SPPBottleneck
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_fuse_keeps_outputs,
                          assert_norm_eval_keeps_bn_statistics, assert_outputs_close,
                          assert_with_cp_matches, family_configs, perturb_, timm_converted)

SMALL = {YOLOXCSPDarknet: dict(deepen_factor=0.33, widen_factor=0.125),
         CSPNeXt: dict(deepen_factor=0.167, widen_factor=0.125),
         Darknet: {}}
CLASSES = list(SMALL)


def _small(cls, **kwargs):
    return cls(**{**SMALL[cls], **kwargs})


# ----- metadata, out_indices, truncation ---------------------------------------------------------
@pytest.mark.parametrize('cls,out_indices,channels,strides,names', [
    (YOLOXCSPDarknet, (4, 0, -3), (128, 8, 32), (32, 2, 8), ('stage4', 'stem', 'stage2')),
    (CSPNeXt, (1, 3), (16, 64), (4, 16), ('stage1', 'stage3')),
    (Darknet, (5, 0), (1024, 32), (32, 1), ('stage5', 'stem')),
])
def test_metadata_before_forward_in_out_indices_order(cls, out_indices, channels, strides,
                                                      names):
    model = _small(cls, out_indices=out_indices).eval()
    assert model.out_channels == channels and model.out_strides == strides
    assert model.out_names == names and list(model.output_shape()) == list(names)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert tuple(o.shape[1] for o in out) == channels
    assert tuple(64 // o.shape[-1] for o in out) == strides


@pytest.mark.parametrize('cls,out_indices,built,absent', [
    (YOLOXCSPDarknet, (1, ), 'stage1', 'stage2'),
    (CSPNeXt, (0, 2), 'stage2', 'stage3'),
    (Darknet, (2, ), 'conv_res_block2', 'conv_res_block3'),
])
def test_stages_after_the_last_output_are_not_built(cls, out_indices, built, absent):
    model = _small(cls, out_indices=out_indices)
    names = {n.split('.')[0] for n in model.state_dict()}
    assert built in names and absent not in names
    assert_every_parameter_gets_gradients(model, size=64)
    # freezing a stage that is not built is a no-op, not an error
    _small(cls, out_indices=out_indices, frozen_stages=4).train()


@pytest.mark.parametrize('cls', CLASSES)
@pytest.mark.parametrize('kwargs,error,match', [
    (dict(out_indices=(9, )), ValueError, 'out_indices'),
    (dict(out_indices=(2, 2)), ValueError, 'repeat'),
    (dict(out_indices=()), ValueError, 'empty'),
    (dict(frozen_stages=7), ValueError, 'frozen_stages'),
    (dict(frozen_stages=1.5), TypeError, 'frozen_stages'),
    (dict(norm_eval='yes'), TypeError, 'norm_eval'),
    (dict(with_cp=1), TypeError, 'with_cp'),
    (dict(in_channels=0), ValueError, 'in_channels'),
    (dict(norm_cfg=dict(type='NoSuchNorm')), (KeyError, ValueError), 'norm_cfg'),
])
def test_bad_arguments_are_refused(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        _small(cls, **kwargs)


@pytest.mark.parametrize('cls', [YOLOXCSPDarknet, CSPNeXt])
@pytest.mark.parametrize('kwargs,error,match', [
    (dict(arch='P7'), ValueError, 'arch'),
    (dict(widen_factor=0), ValueError, 'widen_factor'),
    (dict(deepen_factor='1'), TypeError, 'deepen_factor'),
    (dict(arch_ovewrite=[[64, 128, 3, True]]), ValueError, r'arch_ovewrite\[0\]'),
    (dict(arch_ovewrite=[[64, 10**6, 3, True, False]]), ValueError, '<= 65536'),
])
def test_bad_csp_arguments_are_refused(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        _small(cls, **kwargs)


def test_bad_kernel_sizes_and_depth_are_refused():
    with pytest.raises(ValueError, match='odd'):
        _small(YOLOXCSPDarknet, spp_kernal_sizes=(4, 8))
    with pytest.raises(ValueError, match='odd'):
        _small(CSPNeXt, spp_kernel_sizes=(5, 6))
    with pytest.raises(ValueError, match='depth'):
        Darknet(depth=21)


# ----- training contract -------------------------------------------------------------------------
@pytest.mark.parametrize('cls,frozen_stages', [(YOLOXCSPDarknet, 0), (YOLOXCSPDarknet, 2),
                                               (CSPNeXt, 4), (Darknet, 3)])
def test_frozen_stages(cls, frozen_stages):
    outs = (0, 1, 2, 3, 4, 5) if cls is Darknet else (0, 1, 2, 3, 4)
    assert_frozen_stages(_small(cls, frozen_stages=frozen_stages, out_indices=outs,
                                norm_eval=False), frozen_stages)


@pytest.mark.parametrize('cls', CLASSES)
def test_norm_eval_keeps_bn_statistics(cls):
    assert_norm_eval_keeps_bn_statistics(_small(cls, norm_eval=True), size=64)


@pytest.mark.parametrize('cls', CLASSES)
def test_with_cp_same_outputs_and_gradients(cls):
    torch.manual_seed(0)
    assert_with_cp_matches(_small(cls, norm_eval=True), _small(cls, norm_eval=True, with_cp=True),
                           size=64)


@pytest.mark.parametrize('cls', CLASSES)
def test_fuse_keeps_outputs(cls):
    model = _small(cls)
    perturb_(model)
    assert_fuse_keeps_outputs(model, size=64)


@pytest.mark.parametrize('cls', CLASSES)
def test_empty_batch_input_checks_and_dtypes(cls):
    model = _small(cls).eval()
    with torch.no_grad():
        empty, one = model(torch.zeros(0, 3, 64, 64)), model(torch.zeros(1, 3, 64, 64))
        assert [e.shape[1:] for e in empty] == [o.shape[1:] for o in one]
        assert all(e.shape[0] == 0 for e in empty)
        with pytest.raises(ValueError, match='in_channels=3'):
            model(torch.zeros(1, 1, 64, 64))
        with pytest.raises(TypeError, match='floating-point'):
            model(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
        with pytest.raises(TypeError):
            model(torch.zeros(1, 3, 64, 64, dtype=torch.float64))
        out = model.to(torch.bfloat16)(torch.zeros(1, 3, 64, 64, dtype=torch.bfloat16))
        assert all(o.dtype == torch.bfloat16 for o in out)
    gray = _small(cls, in_channels=1).eval()
    assert len(gray(torch.randn(1, 1, 64, 64))) == 3


def test_focus_stem_needs_even_sides_others_take_odd_ones():
    with pytest.raises(ValueError, match='even input sides'):
        _small(YOLOXCSPDarknet).eval()(torch.randn(1, 3, 63, 64))
    for cls in (CSPNeXt, Darknet):
        out = _small(cls).eval()(torch.randn(1, 3, 45, 71))
        assert tuple(out[-1].shape[-2:]) == (2, 3)


def test_spp_chain_equals_parallel_pools():
    torch.manual_seed(0)
    chained = SPPBottleneck(8, 8, kernel_sizes=(5, 9, 13)).eval()
    parallel = SPPBottleneck(8, 8, kernel_sizes=(5, 9, 13)).eval()
    parallel.load_state_dict(chained.state_dict())
    parallel.chain = False
    x = torch.randn(2, 8, 15, 17)
    assert chained.chain and torch.equal(chained(x), parallel(x))
    assert not SPPBottleneck(8, 8, kernel_sizes=(3, 7)).chain


@pytest.mark.parametrize('cls,name,depth', [
    (YOLOXCSPDarknet, 'backbone.stem.conv.conv.weight', 0),
    (YOLOXCSPDarknet, 'backbone.stage3.1.blocks.0.conv1.conv.weight', 3),
    (CSPNeXt, 'backbone.stage4.2.attention.fc.weight', 4),
    (CSPNeXt, 'head.fc.weight', 5),
    (Darknet, 'backbone.conv1.conv.weight', 0),
    (Darknet, 'backbone.conv_res_block5.res3.conv2.bn.bias', 5),
    (Darknet, 'neck.conv.weight', 6),
])
def test_get_layer_depth(cls, name, depth):
    model = _small(cls)
    num = 7 if cls is Darknet else 6
    assert model.get_layer_depth(name, prefix='backbone.') == (depth, num)


# ----- timm darknet53 ----------------------------------------------------------------------------
def test_timm_darknet53_converts_both_ways_with_equal_outputs():
    timm, converted = timm_converted('darknet53', is_timm_darknet, convert_timm_darknet,
                                     perturb_)
    model = build_backbone(dict(TIMM_DARKNET_ARCHS['darknet53'])).eval()
    model.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = timm.forward_intermediates(x, intermediates_only=True)[1:]
        assert_outputs_close(expected, model(x))
    back = revert_timm_darknet(model.state_dict())
    ref = {k: v for k, v in timm.state_dict().items() if not k.startswith('head.')}
    assert set(back) == set(ref) and all(torch.equal(back[k], ref[k]) for k in ref)
    target = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    _, name = convert_state_dict(timm.state_dict(), 'auto', target)
    assert name == 'timm_darknet'
    _, name = convert_state_dict(timm.state_dict(), 'timm')
    assert name == 'timm_darknet'


def test_timm_converter_refuses_what_does_not_map():
    timm = pytest.importorskip('timm', reason='timm is needed for the converter test')
    with torch.device('meta'):
        cs3 = timm.create_model('cs3darknet_focus_s').state_dict()
        dark = timm.create_model('darknet53').state_dict()
    assert not is_timm_darknet(cs3)
    with pytest.raises(KeyError, match='not a timm darknet53'):
        convert_timm_darknet(cs3)
    with pytest.raises(KeyError, match='stages.0.attn'):
        convert_timm_darknet(dict(dark, **{'stages.0.attn.fc.weight': torch.zeros(1)}))
    with pytest.raises(ValueError, match='no place'):
        revert_timm_darknet({'conv1.conv.weight': torch.zeros(1), 'extra.weight': torch.zeros(1)})


# ----- configs and registry ----------------------------------------------------------------------
@pytest.mark.parametrize('path', family_configs('yolox_cspdarknet') + family_configs('cspnext')
                         + family_configs('darknet'))
def test_shipped_configs_build_and_run(path):
    assert_config_builds_and_runs(path, (YOLOXCSPDarknet, CSPNeXt, Darknet), size=64)


def test_registered_names_and_twins():
    from mmbackbones.compat import MMDetCSPDarknet, MMDetCSPNeXt, MMDetDarknet
    assert type(build_backbone(dict(type='YOLOXCSPDarknet', **SMALL[YOLOXCSPDarknet]))) is \
        YOLOXCSPDarknet
    assert type(build_backbone(dict(type='CSPDarkNet', depth=53))).__name__ == 'CSPDarkNet'
    twin = build_backbone(dict(type='mmbackbones.mmdet.CSPDarknet', out_indices=(4, 2),
                               **SMALL[YOLOXCSPDarknet]))
    assert isinstance(twin, MMDetCSPDarknet) and twin.out_indices == (2, 4)  # mmdet's order
    assert isinstance(build_backbone(dict(type='mmbackbones.mmdet.CSPNeXt',
                                          **SMALL[CSPNeXt])), MMDetCSPNeXt)
    dark = build_backbone(dict(type='mmbackbones.mmdet.Darknet', frozen_stages=2))
    assert isinstance(dark, MMDetDarknet) and dark.frozen_stages == 1  # conv1 + block1
    assert dark.host_frozen_stages == 2
    assert MMDetDarknet(frozen_stages=0).frozen_stages == -1
    with pytest.raises(TypeError, match='in_channels'):
        MMDetCSPNeXt(in_channels=3)


def test_zoo_row_timm_darknet53_loads_from_the_cache(tmp_path, monkeypatch):
    """``timm://darknet53.c2ns_in1k`` through init_cfg on the shipped darknet53-timm config: the
    file (made here from timm's model) is found in the cache, converted and loaded."""
    timm = pytest.importorskip('timm', reason='timm is not installed')
    from safetensors.torch import save_file

    from mmbackbones.checkpoint import zoo as zoo_mod
    from mmbackbones.model_configs import load_model_config
    from mmbackbones.checkpoint.download import cache_path_for
    monkeypatch.setenv('MMBACKBONES_HOME', str(tmp_path))
    entry = zoo_mod.resolve('timm://darknet53.c2ns_in1k')
    assert entry['config'] == 'darknet53-timm' and entry['top1'] == 80.008
    path = cache_path_for(entry['url'])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    source = timm.create_model('darknet53', pretrained=False)
    perturb_(source)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    cfg = load_model_config('darknet53-timm').model.backbone.to_dict()
    model = build_backbone(dict(cfg, init_cfg=dict(type='Pretrained',
                                                   checkpoint='timm://darknet53.c2ns_in1k')))
    model.init_weights()
    assert torch.equal(model.conv_res_block5.res3.conv2.conv.weight,
                       source.stages[4].blocks[3].conv2.conv.weight)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_outputs_close(source.eval().forward_intermediates(x, intermediates_only=True)[1:],
                             model.eval()(x))


# ----- info / show / export, the detectron2 adapter ---------------------------------------------
_CLI_CFG = ("model = dict(backbone=dict(type='{type}', deepen_factor=0.33, widen_factor=0.125, "
            "out_indices=(2, 3, 4)))\n")


@pytest.mark.parametrize('kind', ['YOLOXCSPDarknet', 'CSPNeXt'])
def test_cli_info_export_show(kind, tmp_path):
    import json

    from tests.cli_helpers import DEMO_IMAGE, run_cli
    config = tmp_path / f'{kind}.py'
    config.write_text(_CLI_CFG.format(type=kind))
    info = run_cli('info', config, '--input-size', '64', '64', '--json', '--no-memory')
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert [o['channels'] for o in data['outputs']] == [32, 64, 128]
    assert [o['shape'][2] for o in data['outputs']] == [8, 4, 2]
    out = tmp_path / f'{kind}.onnx'
    export = run_cli('export', config, '-o', out, '--input-size', '64', '64', '--json')
    assert export.returncode == 0, export.stderr
    report = json.loads(export.stdout)
    assert report['outputs'] == ['stage2', 'stage3', 'stage4'] and report['max_abs_diff'] < 1e-4
    png = tmp_path / f'{kind}.png'
    show = run_cli('show', config, DEMO_IMAGE, '-o', png, '--input-size', '64', '64', '--json')
    assert show.returncode == 0, show.stderr
    assert [s['name'] for s in json.loads(show.stdout)['stages']] == ['stage2', 'stage3',
                                                                      'stage4']


@pytest.mark.parametrize('cls', CLASSES)
def test_detectron2_adapter_output_shape(cls):
    from mmbackbones.integrations.detectron2.contract import Detectron2Backbone
    model = _small(cls)
    adapter = Detectron2Backbone(model, rename={model.out_names[-1]: 'res5'}).eval()
    shapes = {k: (s.channels, s.stride) for k, s in adapter.output_shape().items()}
    assert shapes == dict(zip([*model.out_names[:-1], 'res5'],
                              zip(model.out_channels, model.out_strides)))
    with torch.no_grad():
        out = adapter(torch.randn(1, 3, 64, 64))
    assert {k: (v.shape[1], 64 // v.shape[-1]) for k, v in out.items()} == shapes


def test_convert_to_timm_and_mmdet():
    from mmbackbones.checkpoint.convert import family_of, to_native
    dark = Darknet().state_dict()
    assert family_of(dark) == 'Darknet'
    assert set(to_native(dark, 'timm')) == set(revert_timm_darknet(dark))
    assert to_native(dark, 'mmdet').keys() == dark.keys()
    yolox = _small(YOLOXCSPDarknet).state_dict()
    cspnext = _small(CSPNeXt).state_dict()
    assert family_of(yolox) == 'YOLOXCSPDarknet' and family_of(cspnext) == 'CSPNeXt'
    assert family_of(yolox, model='mmdet.CSPDarknet') == 'YOLOXCSPDarknet'
    csp_resnet = build_backbone(dict(type='CSPResNet', depth=50)).state_dict()
    assert family_of(csp_resnet) is None  # mmpretrain's CSPResNet (stem.0.conv) is not ours
    with pytest.raises(ValueError, match='no timm model'):
        to_native(yolox, 'timm')
    with pytest.raises(ValueError, match='timm has no CSPNeXt'):
        to_native(cspnext, 'timm')


def test_cspnext_without_attention_refuses_attention_weights(tmp_path):
    from mmbackbones.checkpoint import load_checkpoint
    path = str(tmp_path / 'attn.pth')
    torch.save(_small(CSPNeXt).state_dict(), path)
    plain = _small(CSPNeXt, channel_attention=False)
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    with pytest.raises(ValueError, match='channel_attention=False'):
        load_checkpoint(plain, path, logger='silent')
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in before.items())
