"""get_layer_depth (layer-wise lr decay) on every native family, against mmpretrain's own."""
import pytest

from mmbackbones import build_backbone
from tests.parity import mmpretrain_backbone

SLIM = dict(base_channels=8, stem_channels=8)  # the real depths, narrow layers (fast)
HEAD = ('head.fc.weight', 'head.fc.bias', 'neck.gap')


def _names(model):
    return [f'backbone.{n}' for n, _ in model.named_parameters()] + list(HEAD)


@pytest.mark.parametrize('name, kwargs', [
    ('ResNet', dict(depth=34, **SLIM)),
    ('ResNet', dict(depth=50, **SLIM)),
    ('ResNetV1d', dict(depth=101, **SLIM)),
    ('ResNet', dict(depth=152, **SLIM)),
    ('ResNeXt', dict(depth=50, groups=4, width_per_group=4, **SLIM)),
    ('ConvNeXt', dict(arch=dict(depths=[3, 3, 9, 3], channels=[8, 16, 32, 64]))),  # tiny
    ('ConvNeXt', dict(arch=dict(depths=[3, 3, 27, 3], channels=[8, 16, 32, 64]))),  # base
    ('SwinTransformer', dict(arch=dict(embed_dims=16, depths=[2, 2, 6, 2],
                                       num_heads=[1, 2, 4, 8]))),  # tiny
    ('SwinTransformer', dict(arch=dict(embed_dims=16, depths=[2, 2, 18, 2],
                                       num_heads=[1, 2, 4, 8]))),  # small
])
def test_layer_depth_matches_mmpretrain(name, kwargs):
    """The same depth for every parameter name, under mmpretrain's optimizer-constructor call
    (``prefix='backbone.'``), head parameters included."""
    theirs = mmpretrain_backbone(name)(**kwargs)
    ours = build_backbone(dict(type=name, **kwargs))
    names = _names(ours)
    assert names == _names(theirs)
    for param in names:
        assert ours.get_layer_depth(param, prefix='backbone.') == \
            theirs.get_layer_depth(param, prefix='backbone.'), param
    depths = {ours.get_layer_depth(p, 'backbone.')[0] for p in names}
    num = ours.get_layer_depth(names[0], 'backbone.')[1]
    assert min(depths) == 0 and max(depths) == num - 1  # the stem lowest, the head highest


def _check_monotone(model, stage_prefix):
    """Depth never decreases along the stages; stem 0, head last."""
    names = _names(model)
    got = [model.get_layer_depth(p, 'backbone.') for p in names]
    num = got[0][1]
    assert all(n == num for _, n in got)
    assert got[0][0] == 0 and got[-1][0] == num - 1
    stage_depths = [d for p, (d, _) in zip(names, got) if p.startswith(stage_prefix)]
    assert stage_depths == sorted(stage_depths) and len(set(stage_depths)) > 3
    assert all(0 < d < num - 1 for d in stage_depths)


@pytest.mark.parametrize('cfg, stage_prefix', [
    (dict(type='ResNet', depth=18), 'backbone.layer'),
    (dict(type='RegNet', arch='regnetx_400mf'), 'backbone.layer'),
    (dict(type='CSPDarkNet', depth=53), 'backbone.stages'),
    (dict(type='CSPResNeXt', depth=50), 'backbone.stages'),
])
def test_layer_depth_where_mmpretrain_has_none(cfg, stage_prefix):
    """mmpretrain raises NotImplementedError for R-18 and RegNets (its ResNet table) and has no
    get_layer_depth on CSP nets: ours numbers them (documented in layer_decay)."""
    model = build_backbone(cfg)
    _check_monotone(model, stage_prefix)


def test_prefix_is_stripped_whatever_it_is():
    """mmpretrain's ResNet looks for 'backbone.layer' whatever the prefix; ours strips it."""
    model = build_backbone(dict(type='ResNet', depth=50, **SLIM))
    assert model.get_layer_depth('layer3.5.conv1.weight') == \
        model.get_layer_depth('backbone.layer3.5.conv1.weight', 'backbone.') == (5, 8)
    assert model.get_layer_depth('conv1.weight') == (0, 8)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (7, 8)
