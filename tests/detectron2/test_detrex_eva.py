"""``mmbackbones.detrex.EVAViT`` / ``EVA02_ViT`` (over the core ViT) against detrex's real
``EVAViT`` (EVA-01 ViTDet) and ``EVA02_ViT``: the same state-dict keys and shapes (detrex's rope
tables included), the same outputs on the same weights (1e-5), what ours saves loads into
detrex's class, detrex checkpoints load by every route (``Pretrained`` ``init_cfg`` into the core
ViT, ``convert`` auto-detection, detectron2's ``DetectionCheckpointer``), and
``get_vit_lr_decay_rate`` gives every parameter the rate detrex's gives its counterpart."""
import collections
import re

import pytest
import torch
from torch import nn

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')
pytest.importorskip('detrex', reason='detrex is not installed (make test-detectron2)')

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.modeling.backbone.fpn import LastLevelMaxPool  # noqa: E402
from detrex.modeling.backbone.eva import EVAViT as TheirEVA  # noqa: E402
from detrex.modeling.backbone.eva import SimpleFeaturePyramid as TheirSFP  # noqa: E402
from detrex.modeling.backbone.eva import get_vit_lr_decay_rate as their_rate  # noqa: E402
from detrex.modeling.backbone.eva_02 import EVA02_ViT as TheirEVA02  # noqa: E402

import mmbackbones.detrex as ours  # noqa: E402
from mmbackbones.checkpoint.converters import convert_state_dict, detect_format  # noqa: E402
from mmbackbones.checkpoint.keys import own_state_dict  # noqa: E402
from mmbackbones.models.backbones.vit import VisionTransformer  # noqa: E402
from tests.detectron2.test_detrex_backbones import (assert_close_to_scale,  # noqa: E402
                                                    perturbed_state)

SMALL = dict(img_size=64, embed_dim=48, depth=4, num_heads=3, pretrain_img_size=32)
CASES = {
    # EVA-01: windows padded (4 -> 6), relative positions, a residual conv block, layer scales
    'eva01': (TheirEVA, ours.EVAViT, dict(
        SMALL, window_size=3, window_block_indexes=[0, 2], residual_block_indexes=[1],
        use_rel_pos=True, rel_pos_zero_init=False, beit_like_gamma=True,
        freeze_patch_embed=True), [(64, 64), (80, 48)]),
    # EVA-01 evaluated at another size with EVA's cubic ('beit') resize of the global tables
    'eva01-beit': (TheirEVA, ours.EVAViT, dict(
        SMALL, window_size=2, window_block_indexes=[0, 1], use_rel_pos=True,
        rel_pos_zero_init=False, interp_type='beit', beit_like_qkv_bias=False),
        [(64, 64), (96, 80)]),
    # EVA-02: rope in windows (padded) and global blocks, SwiGLU + sub-LN, q/v biases
    'eva02': (TheirEVA02, ours.EVA02_ViT, dict(
        SMALL, window_size=3, window_block_indexes=[0, 2], residual_block_indexes=[1]),
        [(64, 64)]),
    # EVA-02 with token-index rope positions (intp_freq=False: detrex's tables then fit a
    # pt_hw_seq_len grid and window only), no class entry in pos_embed, no qkv biases
    'eva02-nointp': (TheirEVA02, ours.EVA02_ViT, dict(
        SMALL, img_size=128, window_size=8, pt_hw_seq_len=8, intp_freq=False,
        window_block_indexes=[0, 1, 3], pretrain_use_cls_token=False, qkv_bias=False),
        [(128, 128)]),
    # EVA-02 without absolute positions
    'eva02-noabs': (TheirEVA02, ours.EVA02_ViT, dict(
        SMALL, window_size=2, window_block_indexes=[1], use_abs_pos=False), [(64, 64)]),
}


def _pair(case):
    their_cls, our_cls, kwargs, sizes = CASES[case]
    torch.manual_seed(0)
    return their_cls(**kwargs).eval(), our_cls(**kwargs).eval(), kwargs, sizes


@pytest.mark.parametrize('case', sorted(CASES))
def test_eva_backbone_matches_detrex(case):
    theirs, mine, kwargs, sizes = _pair(case)
    state = perturbed_state(theirs)
    theirs.load_state_dict(state)
    mine_state = mine.state_dict()
    assert {k: v.shape for k, v in mine_state.items()} == {k: v.shape for k, v in state.items()}
    for key, value in mine_state.items():  # detrex's rope tables, as detrex computes them
        if key.endswith(('freqs_cos', 'freqs_sin')):
            torch.testing.assert_close(value, state[key], rtol=0, atol=1e-6)
    assert {k for k, v in mine.state_dict(keep_vars=True).items() if v.requires_grad} == \
        {k for k, v in theirs.state_dict(keep_vars=True).items() if v.requires_grad}
    mine.load_state_dict(state)
    assert mine.output_shape() == theirs.output_shape()
    for size in sizes:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            expected, got = theirs(x), mine(x)
        assert list(got) == list(expected) == ['last_feat']
        assert_close_to_scale(got['last_feat'], expected['last_feat'])
    # what ours saves is detrex's layout and loads into detrex's class
    again = type(theirs)(**kwargs).eval()
    again.load_state_dict(mine.state_dict(), strict=True)
    x = torch.randn(1, 3, *sizes[0])
    with torch.no_grad():
        assert_close_to_scale(again(x)['last_feat'], mine(x)['last_feat'])
    # the parameters keep the core's names
    assert any(re.match(r'^layers\.0\.attn\.qkv\.weight$', k) for k in own_state_dict(mine))


def _detector_state(case):
    """A detrex DINO-like checkpoint: ``backbone.net.*``, ``backbone.simfp_*`` and a head."""
    theirs, mine, kwargs, sizes = _pair(case)
    pyramid = TheirSFP(theirs, 'last_feat', 32, (2.0, 1.0, 0.5), top_block=LastLevelMaxPool(),
                       norm='LN', square_pad=kwargs['img_size'])
    state = {'backbone.' + k: v for k, v in perturbed_state(pyramid).items()}
    state['class_embed.0.weight'] = torch.zeros(3, 4)
    pyramid.load_state_dict({k[len('backbone.'):]: v for k, v in state.items()
                             if k.startswith('backbone.')})
    return pyramid.eval(), state, kwargs, sizes


def _core_kwargs(case, init_cfg):
    """The core ViT that EVA02_ViT / EVAViT build for the case, spelled as core arguments."""
    _, _, kw, _ = CASES[case]
    eva02 = CASES[case][0] is TheirEVA02
    grid = kw['img_size'] // 16
    extra = dict(layer_cfgs=dict(ffn_type='swiglu', sub_ln=True),
                 rope=dict(ref_grid=(16, 16))) if eva02 else dict(
        use_rel_pos=kw.get('use_rel_pos', False), rel_pos_size=grid,
        rel_pos_zero_init=False, layer_scale_init_value=1.0 if kw.get('beit_like_gamma') else 0.)
    ratio = 4 * 2 / 3 if eva02 else 4.0
    return dict(arch=dict(embed_dims=48, num_layers=4, num_heads=3,
                          feedforward_channels=int(48 * ratio)),
                img_size=32, patch_size=16, qkv_bias='qv', norm_cfg=dict(
                    type='LN', eps=1e-6 if eva02 else 1e-5),
                final_norm=False, out_type='featmap', with_cls_token=False,
                window_size=kw['window_size'], window_block_indexes=kw['window_block_indexes'],
                residual_block_indexes=kw.get('residual_block_indexes', ()),
                init_cfg=init_cfg, **extra)


@pytest.mark.parametrize('case', ['eva01', 'eva02'])
def test_detrex_eva_checkpoint_loads_by_every_route(case, tmp_path):
    pyramid, state, kwargs, sizes = _detector_state(case)
    path = tmp_path / f'{case}.pth'
    torch.save({'model': state}, path)
    x = torch.randn(2, 3, *sizes[0])
    with torch.no_grad():
        expected_net = pyramid.net(x)['last_feat']
        expected = pyramid(x)
    # convert auto-detection: detrex's layout, under backbone.net. and bare
    assert detect_format(state)[0].name == 'detrex_eva'
    bare = {k[len('backbone.net.'):]: v for k, v in state.items()
            if k.startswith('backbone.net.')}
    assert detect_format(bare)[0].name == 'detrex_eva'
    # Pretrained init_cfg into the core ViT (the class entry of pos_embed dropped at load)
    core = VisionTransformer(**_core_kwargs(case, dict(type='Pretrained', checkpoint=str(path))))
    core.init_weights()
    core.eval()
    converted, used = convert_state_dict(state, 'auto', {k: v.shape for k, v in
                                                         core.state_dict().items()})
    assert used == 'detrex_eva'
    with torch.no_grad():
        assert_close_to_scale(core(x)[0], expected_net)
    # the way back (convert --to detectron2 --model EVA02_ViT|EVAViT): detrex's names under
    # backbone.net. (the rope tables aside: detrex computes them), loading into detrex's model
    from mmbackbones.checkpoint.convert import to_native
    back = to_native(own_state_dict(core), 'detectron2', model=CASES[case][1].__name__)
    net_state = {k: v for k, v in state.items() if k.startswith('backbone.net.')}
    assert set(back) == {k for k in net_state if not k.endswith(('freqs_cos', 'freqs_sin'))}
    pyramid.load_state_dict({**{k[len('backbone.'):]: v for k, v in net_state.items()},
                             **{k[len('backbone.'):]: v for k, v in back.items()},
                             **{k[len('backbone.'):]: v for k, v in state.items()
                                if k.startswith('backbone.simfp')}})
    with torch.no_grad():
        assert_close_to_scale(pyramid.net(x)['last_feat'], expected_net)
    # DetectionCheckpointer (detrex's train.init_checkpoint) into our pyramid
    net = (ours.EVA02_ViT if case == 'eva02' else ours.EVAViT)(**kwargs)
    model = nn.Module()
    model.backbone = ours.SimpleFeaturePyramid(net, 'last_feat', 32, (2.0, 1.0, 0.5),
                                               top_block=LastLevelMaxPool(), norm='LN',
                                               square_pad=kwargs['img_size'])
    DetectionCheckpointer(model).load(str(path))
    model.eval()
    with torch.no_grad():
        got = model.backbone(x)
    assert list(got) == list(expected) == ['p3', 'p4', 'p5', 'p6']
    for name in expected:
        assert_close_to_scale(got[name], expected[name])


@pytest.mark.parametrize('case', ['eva01', 'eva02'])
def test_layer_decay_numbering_equals_detrex(case):
    pyramid, state, kwargs, _ = _detector_state(case)
    net = (ours.EVA02_ViT if case == 'eva02' else ours.EVAViT)(**kwargs)
    model = nn.Module()
    model.backbone = ours.SimpleFeaturePyramid(net, 'last_feat', 32, (2.0, 1.0, 0.5),
                                               top_block=LastLevelMaxPool(), norm='LN')
    ref = nn.Module()
    ref.backbone = pyramid

    def by_group(names, rate, marker):
        """{block index, 'residual', 'stem' or 'rest': the set of rates of its parameters}."""
        out = collections.defaultdict(set)
        for name in names:
            m = re.search(rf'\.{marker}\.(\d+)\.', name)
            group = ('residual' if '.residual.' in name else int(m.group(1))) if m else \
                ('stem' if '.pos_embed' in name or '.patch_embed' in name else 'rest')
            out[group].add(rate(name, 0.7, 4))
        return dict(out)

    ours_groups = by_group([n for n, _ in model.named_parameters()], ours.get_vit_lr_decay_rate,
                           'layers')
    their_groups = by_group([n for n, _ in ref.named_parameters()], their_rate, 'blocks')
    assert ours_groups == their_groups
    assert all(len(v) == 1 for v in ours_groups.values())
    assert len({next(iter(v)) for v in ours_groups.values()}) == 6  # stem, 4 blocks, the rest


@pytest.mark.parametrize('theirs,mine', [(TheirEVA, ours.EVAViT), (TheirEVA02, ours.EVA02_ViT)])
def test_signatures_and_defaults_are_detrexs(theirs, mine):
    import inspect
    from functools import partial

    def described(cls):
        out = []
        for name, param in inspect.signature(cls.__init__).parameters.items():
            default = param.default
            if isinstance(default, partial):  # norm_layer=partial(nn.LayerNorm, eps=1e-6)
                default = (default.func, default.args, default.keywords)
            elif isinstance(default, type) and default.__name__ == 'LayerNormWithForceFP32':
                default = 'LayerNormWithForceFP32'  # detrex's class / ours, same meaning
            out.append((name, param.kind, default))
        return out

    assert described(mine) == described(theirs)
    assert mine.__name__ == theirs.__name__
