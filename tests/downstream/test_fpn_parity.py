"""Our FPN against mmdet 3.3's: same arguments, same parameter names, same numbers.

A detector checkpoint's ``neck.*`` weights load into our FPN (and back) with no key mapping.
"""
import pytest

from tests.downstream import _common

_common.require('mmdet')

import torch  # noqa: E402
from mmdet.models.necks import FPN as MMDetFPN  # noqa: E402

from mmbackbones.models.necks import FPN  # noqa: E402

IN = [16, 32, 64, 128]
SETTINGS = [
    dict(num_outs=4),
    dict(num_outs=5),  # extra level by max pooling
    dict(num_outs=5, start_level=1, add_extra_convs='on_input'),  # RetinaNet's
    dict(num_outs=6, start_level=1, add_extra_convs='on_lateral', relu_before_extra_convs=True),
    dict(num_outs=5, add_extra_convs='on_output', norm_cfg=dict(type='BN'),
         no_norm_on_lateral=True),
    dict(num_outs=2, start_level=1, end_level=2),
    dict(num_outs=4, upsample_cfg=dict(scale_factor=2, mode='nearest')),
    dict(num_outs=5, add_extra_convs=True, act_cfg=dict(type='ReLU'),
         upsample_cfg=dict(mode='bilinear', align_corners=False)),
]


@pytest.mark.parametrize('kwargs', SETTINGS, ids=lambda kw: ','.join(f'{k}={v}' for k, v in
                                                                     kw.items()))
def test_matches_mmdet_fpn(kwargs):
    theirs = MMDetFPN(IN, 24, **kwargs)
    theirs.init_weights()
    ours = FPN(IN, 24, **kwargs)
    state = theirs.state_dict()
    assert set(ours.state_dict()) == set(state)
    ours.load_state_dict(state, strict=True)
    theirs.eval(), ours.eval()
    sizes = (64, 32, 16, 8)
    x = [torch.randn(2, c, s, s) for c, s in zip(IN, sizes)]
    with torch.no_grad():
        want, got = theirs(x), ours(x)
    assert len(got) == len(want) == kwargs['num_outs']
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_odd_sizes_match_mmdet():
    # Inputs whose sides are not exact halves (a 100x75 image): the top-down path resizes to the
    # finer map's size, like mmdet.
    theirs, ours = MMDetFPN(IN, 8, num_outs=5), FPN(IN, 8, num_outs=5)
    ours.load_state_dict(theirs.state_dict())
    x = [torch.randn(1, c, h, w) for c, (h, w) in zip(IN, [(25, 19), (13, 10), (7, 5), (4, 3)])]
    with torch.no_grad():
        for g, w in zip(ours(x), theirs(x)):
            torch.testing.assert_close(g, w)


def test_backbone_with_neck_takes_mmdets_fpn(toy_registered):
    """in_channels='auto' also fills mmdet's own FPN (scoped type), strides included."""
    from mmbackbones import build_backbone
    model = build_backbone(dict(type='ToyBackbone'),
                           neck=dict(type='mmdet.FPN', in_channels='auto', out_channels=8,
                                     num_outs=5, start_level=1, add_extra_convs='on_input'))
    assert isinstance(model.neck, MMDetFPN) and model.neck.in_channels == [8, 16, 32]
    assert model.out_strides == (8, 16, 32, 64, 128)
    assert model.out_names == ('p3', 'p4', 'p5', 'p6', 'p7')
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [8, 4, 2, 1, 1]
