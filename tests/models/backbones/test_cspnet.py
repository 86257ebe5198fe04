"""CSPDarkNet / CSPResNet / CSPResNeXt: mmpretrain and timm parity, metadata, freezing,
arguments, configs."""
import math
import os

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.models.backbones.cspnet import CSPDarkNet, CSPResNet, CSPResNeXt
from tests.parity import (assert_config_builds_and_runs, assert_fuse_keeps_outputs,
                          assert_mmpretrain_parity, assert_norm_eval_keeps_bn_statistics,
                          family_configs, randomize_batchnorm_, save_as_backbone)

# A two-stage arch small enough for fast structural tests (every class accepts a dict arch).
TINY = dict(in_channels=(16, 32), out_channels=(32, 64), num_blocks=(1, 2), expand_ratio=2,
            bottle_ratio=2, has_downsampler=(False, True), down_growth=False)
FULL = {CSPDarkNet: (0, 1, 2, 3, 4), CSPResNet: (0, 1, 2, 3), CSPResNeXt: (0, 1, 2, 3)}


_randomize_bn = randomize_batchnorm_


def _mmpretrain_csp():
    pytest.importorskip('mmpretrain', reason='mmpretrain is needed for parity tests')
    from mmpretrain.models.backbones import cspnet
    return cspnet


# ----- parity with mmpretrain --------------------------------------------------------------------
@pytest.mark.parametrize('cls,extra', [(CSPDarkNet, {}), (CSPResNet, {}),
                                       (CSPResNet, dict(deep_stem=True)), (CSPResNeXt, {})])
def test_mmpretrain_checkpoint_loads_and_matches(cls, extra, tmp_path):
    theirs_cls = getattr(_mmpretrain_csp(), cls.__name__)
    depth = 53 if cls is CSPDarkNet else 50
    theirs = theirs_cls(depth=depth, out_indices=FULL[cls], **extra)
    # odd sides: the stride-2 convs and the max pool round up
    assert_mmpretrain_parity(
        theirs, lambda init_cfg: cls(depth=depth, out_indices=FULL[cls], **extra,
                                     init_cfg=init_cfg),
        tmp_path, [(33, 47)], randomize=_randomize_bn)


def test_truncated_model_loads_the_full_checkpoint(tmp_path):
    """Only stages up to max(out_indices) are built; the rest of a checkpoint is ignored."""
    full = CSPResNet(arch=TINY, out_indices=(0, 1)).eval()
    _randomize_bn(full)
    ckpt = save_as_backbone(full, tmp_path / 'full.pth')
    part = CSPResNet(arch=TINY, out_indices=(0,),
                     init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone'))
    part.init_weights()
    part.eval()
    assert len(part.stages) == 1
    assert not any(k.startswith('stages.1.') for k in part.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(part(x)[0], full(x)[0], rtol=1e-5, atol=1e-5)


def test_frozen_stages_is_mmpretrains():
    """mmpretrain's CSPNet freezes the stem and stages[0..k]; so does ours."""
    theirs = _mmpretrain_csp().CSPResNet(depth=50, out_indices=(3,), frozen_stages=1)
    theirs.train()  # mmpretrain's CSPNet freezes in train(), not at construction
    ours = CSPResNet(depth=50, frozen_stages=1)
    assert not all(p.requires_grad for p in ours.parameters())
    theirs_grad = {k: p.requires_grad for k, p in theirs.named_parameters()}
    ours_grad = {k: p.requires_grad for k, p in ours.named_parameters()}
    assert ours_grad == theirs_grad


# ----- depth / arch spellings --------------------------------------------------------------------
def test_depth_and_arch_spell_the_same_model():
    a = CSPResNeXt(depth=50)
    b = CSPResNeXt(arch=50)
    c = CSPResNeXt(depth=50, arch=50)
    d = CSPResNeXt()
    shapes = [{k: v.shape for k, v in m.state_dict().items()} for m in (a, b, c, d)]
    assert shapes[0] == shapes[1] == shapes[2] == shapes[3]
    assert a.depth == b.depth == 50


def test_inconsistent_depth_and_arch_is_refused():
    with pytest.raises(ValueError, match=r'depth=50 and arch=53'):
        CSPResNet(depth=50, arch=53)


@pytest.mark.parametrize('cls,bad', [(CSPResNeXt, 101), (CSPDarkNet, 50), (CSPResNet, 'big')])
def test_unknown_depth_names_the_allowed_ones(cls, bad):
    with pytest.raises(ValueError, match=rf'depth/arch must be one of .*got {bad!r}'):
        cls(depth=bad)


def test_seed_config_spelling_builds_through_the_mmcls_scope():
    model = build_backbone(dict(type='mmcls.CSPResNeXt', arch=50, out_indices=(0, 1, 2, 3)))
    assert isinstance(model, CSPResNeXt)
    assert model.out_channels == (256, 512, 1024, 2048)
    assert model.out_strides == (4, 8, 16, 32)
    assert model.out_names == ('stage1', 'stage2', 'stage3', 'stage4')


# ----- metadata and shapes -----------------------------------------------------------------------
@pytest.mark.parametrize('cls,kwargs,channels,strides', [
    (CSPDarkNet, {}, (64, 128, 256, 512, 1024), (2, 4, 8, 16, 32)),
    (CSPResNet, {}, (128, 256, 512, 1024), (4, 8, 16, 32)),
    (CSPResNet, dict(deep_stem=True), (128, 256, 512, 1024), (2, 4, 8, 16)),
    (CSPResNeXt, {}, (256, 512, 1024, 2048), (4, 8, 16, 32)),
])
def test_metadata_is_known_before_forward_and_matches_it(cls, kwargs, channels, strides):
    model = cls(out_indices=FULL[cls], **kwargs).eval()
    assert model.out_channels == channels and model.out_strides == strides
    assert model.out_names == tuple(f'stage{i + 1}' for i in range(len(channels)))
    for h, w in [(64, 64), (37, 29)]:
        with torch.no_grad():
            outs = model(torch.randn(1, 3, h, w))
        for out, c, s in zip(outs, channels, strides):
            assert out.shape == (1, c, math.ceil(h / s), math.ceil(w / s))


def test_outputs_follow_out_indices_order_and_default_is_last_stage():
    model = CSPResNet(arch=TINY, out_indices=(1, 0)).eval()
    outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [64, 32] == list(model.out_channels)
    assert model.out_names == ('stage2', 'stage1')
    assert CSPDarkNet().out_indices == (4,) and CSPResNeXt().out_indices == (3,)
    assert CSPResNet(arch=TINY, out_indices=-1).out_names == ('stage2',)


def test_stages_after_the_last_output_are_not_built_and_all_params_get_grads():
    model = CSPDarkNet(out_indices=(1,))
    assert len(model.stages) == 2
    model.train()
    sum(o.sum() for o in model(torch.randn(2, 3, 32, 32))).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_drop_path_rates_rise_over_the_full_network():
    model = CSPResNet(arch=TINY, out_indices=(0, 1), drop_path_rate=0.3)
    rates = [b.drop_path.drop_prob for s in model.stages for b in s.blocks
             if hasattr(b.drop_path, 'drop_prob')]
    assert rates == pytest.approx([0.15, 0.3])  # linspace(0, 0.3, 3): the first block gets 0
    model.train()
    assert model(torch.randn(2, 3, 32, 32))[1].shape == (2, 64, 4, 4)


def test_wrong_input_is_refused_with_in_channels():
    model = CSPResNet(arch=TINY, in_channels=1)
    assert model(torch.randn(1, 1, 32, 32))[0].shape[1] == 64
    with pytest.raises(ValueError, match='in_channels=1'):
        model(torch.randn(1, 3, 32, 32))


# ----- freezing and norm_eval --------------------------------------------------------------------
@pytest.mark.parametrize('frozen_stages', [-1, 0, 1])
def test_frozen_stages(frozen_stages):
    """mmpretrain's count: k freezes the stem and stages[0..k]."""
    model = CSPResNet(arch=TINY, out_indices=(0, 1), frozen_stages=frozen_stages).train()
    parts = [model.stem, *model.stages]
    for i, part in enumerate(parts):
        frozen = frozen_stages >= 0 and i <= frozen_stages + 1
        assert all(p.requires_grad != frozen for p in part.parameters())
        assert all(m.training != frozen for m in part.modules())


def test_norm_eval_keeps_bn_statistics():
    model = CSPDarkNet(arch=dict(in_channels=(8, 16), out_channels=(16, 32), num_blocks=(1, 1)),
                       out_indices=(0, 1), norm_eval=True)
    assert_norm_eval_keeps_bn_statistics(model, size=16)


# ----- argument errors ---------------------------------------------------------------------------
@pytest.mark.parametrize('kwargs,error,match', [
    (dict(out_indices=4), ValueError, r'out_indices contains 4.*-4\.\.3'),
    (dict(out_indices=(0, 0)), ValueError, 'must not repeat'),
    (dict(out_indices='last'), TypeError, 'out_indices must be an int'),
    (dict(frozen_stages=4), ValueError, r'frozen_stages must be in -1\.\.3'),
    (dict(norm_eval='yes'), TypeError, 'norm_eval must be a bool'),
    (dict(deep_stem=1), TypeError, 'deep_stem must be a bool'),
    (dict(drop_path_rate=1.5), ValueError, r'drop_path_rate must be a float in \[0, 1\)'),
    (dict(in_channels=0), ValueError, 'in_channels must be a positive int'),
    (dict(arch=dict(in_channels=(8,), out_channels=(16,))), KeyError,
     r"missing keys \['num_blocks'\]"),
    (dict(arch=dict(TINY, in_channels=16)), TypeError, r"arch\['in_channels'\] must be a non"),
    (dict(arch=dict(TINY, widths=1)), KeyError, r"unknown keys \['widths'\]"),
    (dict(arch=dict(TINY, num_blocks=(1, 1, 1))), ValueError, r"arch\['num_blocks'\] has 3"),
    (dict(arch=dict(TINY, in_channels=(15, 32), expand_ratio=1)), ValueError, 'is odd'),
])
def test_bad_arguments_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        CSPResNet(**kwargs)


# ----- configs -----------------------------------------------------------------------------------
CONFIGS = family_configs('cspnet')


def test_configs_exist():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {'cspdarknet53.py', 'cspresnet50.py', 'cspresnext50.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_every_config_builds_and_runs(path):
    assert_config_builds_and_runs(path, (CSPDarkNet, CSPResNet))


# ----- timm has the same networks ----------------------------------------------------------------
@pytest.mark.parametrize('cls,timm_name', [(CSPResNeXt, 'cspresnext50'),
                                           (CSPResNet, 'cspresnet50'),
                                           (CSPDarkNet, 'cspdarknet53')])
def test_timm_model_is_the_same_network(cls, timm_name):
    """timm's CSP nets hold the same tensors in the same order (other names): copied over, the
    outputs are equal, so a timm checkpoint is one renaming away."""
    timm = pytest.importorskip('timm', reason='timm is needed for timm parity')
    theirs = timm.create_model(timm_name, pretrained=False).eval()
    ours = cls(out_indices=-1).eval()
    _randomize_bn(ours)
    timm_keys = [k for k in theirs.state_dict() if not k.startswith('head.')]
    ours_state = ours.state_dict()
    assert len(timm_keys) == len(ours_state)
    state = {}
    for tk, (ok, value) in zip(timm_keys, ours_state.items()):
        assert theirs.state_dict()[tk].shape == value.shape, (tk, ok)
        state[tk] = value
    theirs.load_state_dict(state, strict=False)
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[-1], theirs.forward_features(x), rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize('cls', [CSPDarkNet, CSPResNet, CSPResNeXt])
def test_fuse_folds_every_bn_and_keeps_outputs(cls):
    arch = TINY
    if cls is CSPResNeXt:  # grouped convs need widths that are multiples of 32
        arch = dict(TINY, in_channels=(64, 64), out_channels=(64, 128), expand_ratio=4,
                    bottle_ratio=4, block_args=dict(groups=32, width_per_group=4,
                                                    base_channels=32))
    model = cls(arch=arch, out_indices=(0, 1)).eval()
    _randomize_bn(model)
    assert_fuse_keeps_outputs(model)


@pytest.mark.parametrize('cls', [CSPDarkNet, CSPResNet, CSPResNeXt])
def test_signature_starts_with_mmpretrains(cls):
    """mmpretrain's arguments, in its order (positional calls keep working), then ours."""
    import inspect
    theirs_cls = getattr(_mmpretrain_csp(), cls.__name__)
    if cls is CSPResNeXt:  # mmpretrain's takes *args, **kwargs and passes them to CSPResNet
        theirs_cls = theirs_cls.__mro__[1]
    theirs = list(inspect.signature(theirs_cls.__init__).parameters)
    ours = list(inspect.signature(cls.__init__).parameters)
    assert ours[:len(theirs)] == theirs
    assert ours[len(theirs):] == ['drop_path_rate', 'arch']


def test_frozen_bn_and_group_norm_configs():
    bn = CSPResNet(arch=TINY, out_indices=(0, 1)).eval()
    _randomize_bn(bn)
    frozen = CSPResNet(arch=TINY, out_indices=(0, 1), norm_cfg=dict(type='FrozenBN'))
    frozen.load_state_dict(bn.state_dict())  # num_batches_tracked is accepted and dropped
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(frozen.train()(x)[1], bn(x)[1])
    gn = CSPResNet(arch=TINY, norm_cfg=dict(type='GN', num_groups=4))
    assert any(k.endswith('.gn.weight') for k in gn.state_dict())
    assert gn(torch.randn(1, 3, 32, 32))[0].shape == (1, 64, 4, 4)
