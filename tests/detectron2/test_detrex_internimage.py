"""``mmbackbones.detrex.InternImage`` and our pure-PyTorch DCNv3 against detrex's own.

detrex's compiled DCNv3 (``core_op='DCNv3'``, ``detrex._C.dcnv3_forward``) raises "Not
implemented on the CPU", so detrex's side runs its own pure-PyTorch path: ``core_op=
'DCNv3_pytorch'`` (detrex's ``DCNv3_pytorch`` module, same parameters, calling its reference
``dcnv3_core_pytorch``). Nothing of detrex is patched. Ours accepts both ``core_op`` names and
runs the same pure-PyTorch operator for both.
"""
import inspect
import logging

import pytest
import torch

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')
pytest.importorskip('detrex', reason='detrex is not installed (make test-detectron2)')

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.modeling import Backbone  # noqa: E402
from detrex.layers.dcn_v3 import DCNv3_pytorch, dcnv3_core_pytorch  # noqa: E402
from detrex.modeling.backbone import InternImage as DetrexInternImage  # noqa: E402

import mmbackbones.detrex as ours  # noqa: E402
from mmbackbones.integrations.detectron2 import Detectron2Backbone  # noqa: E402
from mmbackbones.models.backbones.internimage import InternImage as CoreInternImage  # noqa
from mmbackbones.models.layers.dcnv3 import DCNv3, dcnv3_sample  # noqa: E402
from tests.detectron2.test_detrex_backbones import (_Model, assert_close_to_scale,  # noqa: E402
                                                    assert_same_backbone, perturbed_state)


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.INFO)  # detrex's InternImage logs its settings at INFO
    yield
    logging.disable(logging.NOTSET)


# ----- the operator -----------------------------------------------------------------------------
@pytest.mark.parametrize('k,s,p,d,g,gc,size,scale', [
    (3, 1, 1, 1, 2, 4, (7, 5), 1.0),  # InternImage's own use (odd sides)
    (3, 1, 1, 1, 4, 8, (8, 8), 2.0),  # offset_scale of the L/XL variants
    (3, 2, 1, 1, 3, 2, (9, 6), 1.0),  # strided
    (5, 1, 2, 2, 1, 3, (8, 8), 0.5),  # 5x5, dilated
    (3, 1, 0, 1, 2, 2, (6, 7), 1.0),  # no padding
    (1, 1, 0, 1, 2, 2, (5, 5), 1.0),  # 1x1
])
def test_dcnv3_sample_equals_detrex_reference(k, s, p, d, g, gc, size, scale):
    torch.manual_seed(0)
    h, w = size
    x = torch.randn(2, h, w, g * gc)
    ho, wo = (h + 2 * p - (d * (k - 1) + 1)) // s + 1, (w + 2 * p - (d * (k - 1) + 1)) // s + 1
    offset = 2 * torch.randn(2, ho, wo, g * k * k * 2)  # past the border too
    mask = torch.rand(2, ho, wo, g * k * k)
    args = (k, k, s, s, p, p, d, d, g, gc, scale)
    expected = dcnv3_core_pytorch(x, offset, mask, *args)
    got = dcnv3_sample(x, offset, mask, *args)
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) <= 1e-5
    # and the gradients
    leaves = [t.clone().requires_grad_() for t in (x, offset, mask)]
    mine = [t.clone().requires_grad_() for t in (x, offset, mask)]
    dcnv3_core_pytorch(*leaves, *args).square().sum().backward()
    dcnv3_sample(*mine, *args).square().sum().backward()
    for a, b in zip(leaves, mine):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('kwargs', [dict(channels=16, group=4),
                                    dict(channels=16, group=2, offset_scale=2.0, dw_kernel_size=5,
                                         center_feature_scale=True),
                                    dict(channels=8, group=2, norm_layer='BN', act_layer='ReLU')])
def test_dcnv3_module_equals_detrex(kwargs):
    torch.manual_seed(0)
    theirs, mine = DCNv3_pytorch(**kwargs).eval(), DCNv3(**kwargs).eval()
    state = perturbed_state(theirs)
    theirs.load_state_dict(state)
    assert list(mine.state_dict()) == list(state)
    mine.load_state_dict(state)
    x = torch.randn(2, 7, 5, kwargs['channels'])
    with torch.no_grad():
        assert_close_to_scale(mine(x), theirs(x))


# ----- the backbone -----------------------------------------------------------------------------
TINY = dict(channels=16, depths=[1, 2, 1, 1], groups=[2, 2, 4, 8], drop_path_rate=0.)


@pytest.mark.parametrize('extra', [
    dict(out_indices=(1, 2, 3)),  # detrex's DINO-InternImage-T configs (pre-norm)
    dict(out_indices=(1, 2, 3), layer_scale=1.0, offset_scale=2.0, post_norm=True),  # -L
    dict(depths=[1, 1, 3, 1], dw_kernel_size=5, res_post_norm=True, level2_post_norm=True,
         level2_post_norm_block_ids=[0, 2], center_feature_scale=True),  # InternImage-H
    dict(norm_layer='BN', act_layer='SiLU', mlp_ratio=2.0),
])
def test_internimage_matches_detrex(tmp_path, extra):
    kwargs = {**TINY, **extra}
    torch.manual_seed(0)
    theirs = DetrexInternImage(core_op='DCNv3_pytorch', **kwargs)
    mine = ours.InternImage(core_op='DCNv3', **kwargs)  # detrex's configs' spelling
    assert isinstance(mine, Backbone) and isinstance(mine, CoreInternImage)
    assert_same_backbone(theirs, mine, torch.randn(2, 3, 61, 77))
    assert mine.output_shape() == theirs.output_shape()
    assert mine.size_divisibility == theirs.size_divisibility == 0
    # a detrex checkpoint through DetectionCheckpointer (train.init_checkpoint)
    torch.save({'model': _Model(theirs).state_dict()}, tmp_path / 'detrex.pth')
    again = _Model(ours.InternImage(**kwargs).eval())
    DetectionCheckpointer(again).load(str(tmp_path / 'detrex.pth'))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = theirs.eval()(x), again.backbone(x)
    for name in expected:
        assert_close_to_scale(got[name], expected[name])


def test_training_step_gradients_match_detrex():
    torch.manual_seed(0)
    kwargs = dict(TINY, post_norm=True, layer_scale=1.0, out_indices=(1, 2, 3))
    theirs = DetrexInternImage(core_op='DCNv3_pytorch', **kwargs).train()
    mine = ours.InternImage(**kwargs).train()
    mine.load_state_dict(perturbed_state(theirs))
    theirs.load_state_dict(mine.state_dict())
    x = torch.randn(2, 3, 48, 40)
    for model in (theirs, mine):
        sum((o ** 2).mean() for o in model(x).values()).backward()
    mine_grads = dict(mine.named_parameters())
    for name, p in theirs.named_parameters():
        assert mine_grads[name].grad is not None, name
        torch.testing.assert_close(mine_grads[name].grad, p.grad, rtol=1e-3, atol=1e-5)


def test_official_classification_file_through_both_routes(tmp_path):
    """The official ``internimage_*_1k_224.pth`` (``{'model': backbone + conv_head + head}``),
    what detrex's configs set as ``train.init_checkpoint``: detectron2's checkpointer loads the
    backbone (reporting the head as unused, as for detrex's class) and our Pretrained init_cfg
    loads it through the converter (the head dropped, nothing half-loaded)."""
    torch.manual_seed(0)
    theirs = DetrexInternImage(core_op='DCNv3_pytorch', **TINY).eval()
    theirs.load_state_dict(perturbed_state(theirs))
    official = dict(theirs.state_dict())
    official.update({'conv_head.0.weight': torch.randn(192, 128, 1, 1),
                     'conv_head.1.0.weight': torch.randn(192), 'head.weight': torch.randn(10, 192),
                     'head.bias': torch.randn(10)})
    path = tmp_path / 'internimage_t_1k_224.pth'
    torch.save({'model': official}, path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = theirs(x)
    twin = ours.InternImage(**TINY).eval()
    DetectionCheckpointer(twin).load(str(path))
    core = CoreInternImage(dict(channels=16, depths=[1, 2, 1, 1], groups=[2, 2, 4, 8]),
                           out_indices=(0, 1, 2, 3), drop_path_rate=0.,
                           init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    core.init_weights()
    with torch.no_grad():
        got_twin, got_core = twin(x), core.eval()(x)
    for i, name in enumerate(expected):
        assert_close_to_scale(got_twin[name], expected[name])
        assert_close_to_scale(got_core[i], expected[name])


def test_adapter_over_the_core_and_our_checkpoint_back_into_detrex(tmp_path):
    """``Detectron2Backbone(core InternImage)`` loads detrex's checkpoint through
    ``DetectionCheckpointer`` (same names, outputs renamed to detrex's); what our twin saves
    loads into detrex's class strictly."""
    torch.manual_seed(0)
    theirs = DetrexInternImage(core_op='DCNv3_pytorch', **TINY, out_indices=(1, 2, 3)).eval()
    theirs.load_state_dict(perturbed_state(theirs))
    torch.save({'model': _Model(theirs).state_dict()}, tmp_path / 'detrex.pth')
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        expected = theirs(x)
    adapter = _Model(Detectron2Backbone(
        CoreInternImage(dict(channels=16, depths=[1, 2, 1, 1], groups=[2, 2, 4, 8]),
                        out_indices=(1, 2, 3), drop_path_rate=0.),
        rename={'stage2': 'p1', 'stage3': 'p2', 'stage4': 'p3'}).eval())
    assert {k: (v.channels, v.stride) for k, v in adapter.backbone.output_shape().items()} == \
        {k: (v.channels, v.stride) for k, v in theirs.output_shape().items()}
    DetectionCheckpointer(adapter).load(str(tmp_path / 'detrex.pth'))
    twin = _Model(ours.InternImage(**TINY, out_indices=(1, 2, 3)).eval())
    DetectionCheckpointer(twin).load(str(tmp_path / 'detrex.pth'))
    for model in (adapter, twin):
        with torch.no_grad():
            got = model.backbone(x)
        for name in expected:
            assert_close_to_scale(got[name], expected[name])
    DetectionCheckpointer(twin, save_dir=str(tmp_path)).save('ours')
    back = _Model(DetrexInternImage(core_op='DCNv3_pytorch', **TINY, out_indices=(1, 2, 3)))
    back.load_state_dict(torch.load(tmp_path / 'ours.pth', weights_only=True)['model'])
    with torch.no_grad():
        for name, value in back.eval().backbone(x).items():
            assert_close_to_scale(value, expected[name])


def test_signature_is_detrex():
    def described(cls):
        return [(p.name, p.kind, p.default)
                for p in inspect.signature(cls.__init__).parameters.values()]

    assert ours.InternImage.__name__ == DetrexInternImage.__name__
    assert described(ours.InternImage) == described(DetrexInternImage)


def test_detrex_kwargs_and_core_op():
    with pytest.warns(UserWarning, match='classification head'):
        ours.InternImage(**TINY, cls_scale=1.5)
    with pytest.raises(TypeError, match='unknown arguments'):
        ours.InternImage(**TINY, remove_center=True)
    with pytest.raises(ValueError, match='core_op'):
        ours.InternImage(core_op='DCNv4', **TINY)
