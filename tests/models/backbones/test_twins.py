"""Twins PCPVT/SVT against mmpretrain 1.2's classes (keys, every tensor loaded, equal outputs at
odd sizes, LSA's padding mask included) and timm's ``twins_*`` (through the converter), plus the
contract: metadata, out_indices, truncated build, freezing, with_cp, layer depth, configs.

mmseg's spelling (``mmbackbones.mmseg.PCPVT``/``SVT``) is checked against mmseg in
tests/downstream/test_twins_parity.py."""
import copy

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.checkpoint.converters.mmseg_twins import (convert_mmseg_twins, is_mmseg_twins,
                                                          revert_mmseg_twins)
from mmbackbones.checkpoint.converters.timm_twins import (convert_timm_twins, is_timm_twins,
                                                         revert_timm_twins)
from mmbackbones.models.backbones.twins import PCPVT, SVT
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_mmpretrain_parity, assert_with_cp_matches,
                          family_configs, mmpretrain_backbone, perturb_, timm_reference)

PCPVT_TINY = dict(embed_dims=[8, 16, 24, 32], depths=[2, 1, 2, 1], num_heads=[1, 2, 3, 4],
                  patch_sizes=[4, 2, 2, 2], strides=[4, 2, 2, 2], mlp_ratios=[2, 2, 2, 2],
                  sr_ratios=[8, 4, 2, 1])
SVT_TINY = dict(PCPVT_TINY, depths=[2, 2, 3, 2], window_sizes=[3, 3, 2, 2])
TINY = {PCPVT: PCPVT_TINY, SVT: SVT_TINY}


def _tiny(cls=PCPVT, **kwargs):
    torch.manual_seed(0)
    model = cls(arch=copy.deepcopy(TINY[cls]), **kwargs)
    model.init_weights()
    return model


# ----- mmpretrain parity ------------------------------------------------------------------------
@pytest.mark.parametrize('cls', [PCPVT, SVT])
@pytest.mark.parametrize('kwargs', [
    dict(),  # mmpretrain's defaults: the last stage out, no stage norms, no qkv bias
    dict(out_indices=(0, 1, 2, 3), norm_after_stage=[True, False, True, True], qkv_bias=True),
])
def test_mmpretrain_parity(cls, kwargs, tmp_path):
    """Same names in the same order, every tensor loaded, equal outputs; the sizes cover windows
    padded on both sides (masked), on one side (upstream masks nothing then) and none."""
    theirs = mmpretrain_backbone(cls.__name__)(arch=copy.deepcopy(TINY[cls]), **kwargs)
    assert_mmpretrain_parity(
        theirs, lambda init_cfg: cls(arch=copy.deepcopy(TINY[cls]), init_cfg=init_cfg, **kwargs),
        tmp_path, [(64, 64), (45, 61), (50, 37), (96, 96)], randomize=perturb_)


@pytest.mark.parametrize('cls', [PCPVT, SVT])
def test_arch_table_is_mmpretrains(cls):
    """The whole arch table equals mmpretrain's; the small arch has its keys (the bigger ones
    differ only in numbers, compared through the table)."""
    theirs = mmpretrain_backbone(cls.__name__)
    assert cls.arch_zoo == theirs.arch_zoo and cls.essential_keys == theirs.essential_keys
    native = theirs(arch='small', norm_after_stage=True)  # .item() in its init: not on meta
    with torch.device('meta'):
        ours = cls(arch='small', norm_after_stage=True)
    assert list(ours.state_dict()) == list(native.state_dict())
    assert [tuple(v.shape) for v in ours.state_dict().values()] == \
        [tuple(v.shape) for v in native.state_dict().values()]
    assert ours.out_channels == tuple(cls.arch_zoo['small']['embed_dims'][-1:])


# ----- timm parity ------------------------------------------------------------------------------
@pytest.mark.parametrize('name,cls,depths', [('twins_pcpvt_small', PCPVT, [1, 1, 2, 1]),
                                             ('twins_svt_small', SVT, [2, 2, 2, 2])])
def test_timm_twins_equal_outputs_and_round_trip(name, cls, depths):
    timm = pytest.importorskip('timm', reason='timm is needed for timm parity tests')
    reference = timm.create_model(name, pretrained=False, depths=depths)
    perturb_(reference)
    reference.eval()
    state = reference.state_dict()
    assert is_timm_twins(state) and not is_mmseg_twins(state)
    arch = dict(cls.arch_zoo['small'], depths=depths)
    ours = cls(arch=arch, out_indices=(0, 1, 2, 3), qkv_bias=True,
               norm_cfg=dict(type='LN', eps=1e-6), norm_after_stage=[False] * 3 + [True]).eval()
    ours.load_state_dict(state)  # the load hook converts
    converted, conv = convert_state_dict(state, 'auto', {k: tuple(v.shape) for k, v in
                                                         ours.state_dict().items()})
    assert conv == 'timm_twins' and set(converted) == set(ours.state_dict())
    assert set(revert_timm_twins(ours.state_dict())) == {k for k in state
                                                         if not k.startswith('head.')}
    x = torch.randn(1, 3, 224, 224)  # 56/28/14/7 maps: no window padding (timm never masks)
    with torch.no_grad():
        expected = reference.forward_intermediates(x, intermediates_only=True, norm=True)
        got = ours(x)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5 * e.abs().max().item())


def test_timm_converter_refuses_strangers():
    state = revert_timm_twins(_tiny(norm_after_stage=[False] * 3 + [True]).state_dict())
    assert is_timm_twins(state)
    state['blocks.0.0.attn.mystery.weight'] = torch.zeros(1)
    convert_timm_twins(state)  # attention names pass through unchanged ...
    with pytest.raises(ValueError, match='last stage'):  # ... but a norm timm has not, no
        revert_timm_twins(_tiny(norm_after_stage=True).state_dict())
    with pytest.raises(KeyError, match='unexpected'):
        convert_timm_twins({**state, 'strange.weight': torch.zeros(1)})


def test_mmseg_converter_round_trip():
    model = _tiny(SVT, qkv_bias=True, norm_after_stage=True)
    mmseg = revert_mmseg_twins(model.state_dict())
    assert is_mmseg_twins(mmseg)
    assert 'layers.0.1.attn.attn.in_proj_weight' in mmseg and 'norm_list.3.weight' in mmseg
    assert 'layers.0.0.attn.qkv.weight' in mmseg  # LSA keeps its names
    back = convert_mmseg_twins(mmseg)
    assert set(back) == set(model.state_dict())
    assert all(torch.equal(back[k], v) for k, v in model.state_dict().items())


# ----- the contract -----------------------------------------------------------------------------
def test_metadata_before_forward_and_truncated_build():
    with torch.device('meta'):
        model = SVT(arch='base', out_indices=(0, 2))
    assert model.out_channels == (96, 384) and model.out_strides == (4, 16)
    assert model.out_names == ('stage1', 'stage3')
    assert len(model.stages) == 3 and not hasattr(model, 'norm_after_stage3')
    full, part = _tiny(out_indices=(0, 1, 2, 3)).eval(), _tiny(out_indices=(2, 0)).eval()
    part.load_state_dict(full.state_dict(), strict=False)
    x = torch.randn(1, 3, 45, 40)
    with torch.no_grad():
        a, b = full(x), part(x)
    assert torch.equal(b[0], a[2]) and torch.equal(b[1], a[0])


@pytest.mark.parametrize('kwargs,error,words', [
    (dict(arch='tiny'), ValueError, 'arch'),
    (dict(arch=dict(PCPVT_TINY, window_sizes=[7] * 4)), KeyError, 'keys'),
    (dict(arch=dict(PCPVT_TINY, depths=[1, 1, 1])), ValueError, 'same length'),
    (dict(arch=dict(PCPVT_TINY, num_heads=[3, 2, 3, 4])), ValueError, 'divisible'),
    (dict(arch=dict(PCPVT_TINY, depths=[1, 10**9, 1, 1])), ValueError, 'depths'),
    (dict(out_indices=(4,)), ValueError, 'out_indices'),
    (dict(norm_after_stage=[True, False]), TypeError, 'norm_after_stage'),
    (dict(qkv_bias=1), TypeError, 'qkv_bias'),
    (dict(norm_cfg=dict(type='BN')), ValueError, 'LayerNorm-like'),
    (dict(frozen_stages=7), ValueError, 'frozen_stages'),
    (dict(drop_path_rate=2.0), ValueError, 'drop_path_rate'),
    (dict(in_channels=0), ValueError, 'in_channels'),
])
def test_bad_arguments_are_refused_naming_them(kwargs, error, words):
    kwargs = dict(dict(arch=dict(PCPVT_TINY)), **kwargs)
    with pytest.raises(error, match=words):
        PCPVT(**kwargs)


@pytest.mark.parametrize('cls', [PCPVT, SVT])
def test_training_contract(cls):
    for frozen in (0, 2, 4):
        assert_frozen_stages(_tiny(cls, frozen_stages=frozen, out_indices=(0, 1, 2, 3)), frozen)
    assert_with_cp_matches(_tiny(cls), _tiny(cls, with_cp=True))
    assert_every_parameter_gets_gradients(_tiny(cls, out_indices=(0, 1, 2, 3),
                                                norm_after_stage=True))
    model = _tiny(cls, norm_eval=True).train()
    assert all(m.training for m in model.modules())  # no BatchNorm: nothing to keep in eval


def test_empty_batch_dtypes_and_input_checks():
    model = _tiny(SVT, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.zeros(0, 3, 45, 61))
    assert [tuple(o.shape) for o in outs] == [(0, 8, 12, 16), (0, 16, 6, 8), (0, 24, 3, 4),
                                              (0, 32, 2, 2)]
    with pytest.raises(TypeError, match='dtype'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.float16))
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.randn(1, 1, 32, 32))
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        assert len(model(torch.rand(1, 3, 45, 32))) == 4


def test_get_layer_depth():
    model = _tiny(out_indices=(0, 1, 2, 3), norm_after_stage=True)  # depths 2, 1, 2, 1
    depth, n = model.get_layer_depth, 2 + 1 + 2 + 1 + 2
    assert depth('backbone.patch_embeds.0.projection.weight', 'backbone.') == (0, n)
    assert depth('backbone.stages.0.1.norm1.weight', 'backbone.') == (2, n)
    assert depth('backbone.position_encodings.0.proj.weight', 'backbone.') == (1, n)
    assert depth('backbone.norm_after_stage0.weight', 'backbone.') == (2, n)
    assert depth('backbone.patch_embeds.2.norm.weight', 'backbone.') == (4, n)
    assert depth('backbone.stages.3.0.ffn.layers.1.weight', 'backbone.') == (6, n)
    assert depth('head.fc.weight', 'backbone.') == (n - 1, n)
    assert {depth(k)[0] for k, _ in model.named_parameters()} == set(range(0, n - 1))


def test_registered_as_mmcls_types():
    with torch.device('meta'):
        model = build_backbone(dict(type='mmcls.SVT', arch='small'))
    assert type(model) is SVT and model.out_channels == (512,)


@pytest.mark.parametrize('path', family_configs('twins'))
def test_shipped_configs_build_and_run(path):
    model = assert_config_builds_and_runs(path, PCPVT)
    assert model.out_channels == tuple(model.embed_dims)
    assert len(family_configs('twins')) == 6


# ----- tools: detectron2 adapter, info, export ---------------------------------------------------
def test_detectron2_adapter_output_shape_before_forward():
    from mmbackbones.integrations import detectron2 as d2i
    adapter = d2i.Detectron2Backbone(dict(type='SVT', arch=dict(SVT_TINY), out_indices=(0, 2)))
    assert {k: (v.channels, v.stride) for k, v in adapter.output_shape().items()} == {
        'stage1': (8, 4), 'stage3': (24, 16)}
    out = adapter(torch.randn(1, 3, 45, 61))
    assert {k: tuple(v.shape) for k, v in out.items()} == {'stage1': (1, 8, 12, 16),
                                                          'stage3': (1, 24, 3, 4)}


def test_info_command():
    import json

    from tests.cli_helpers import run_cli
    result = run_cli('info', 'twins-svt-s', '--input-size', '64', '64', '--json', '--no-memory')
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    assert [o['channels'] for o in data['outputs']] == [64, 128, 256, 512]
    assert [o['shape'][2] for o in data['outputs']] == [16, 8, 4, 2]


def test_onnx_export_with_dynamic_sides(tmp_path):
    """``mmbackbones export twins-svt-s --dynamic``: windows padded and masked inside the
    graph; onnxruntime matches PyTorch at 64 px and at an odd size."""
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    import json

    from tests.cli_helpers import run_cli
    result = run_cli('export', 'twins-svt-s', '-o', str(tmp_path / 'svt.onnx'), '--input-size',
                     '64', '64', '--dynamic', '--json')
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert len(report['verify']) == 2 and report['max_abs_diff'] < 1e-4
