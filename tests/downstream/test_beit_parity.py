"""BEiT and MAE against mmseg 1.2.2's own classes and mmpretrain 1.2's ``BEiTViT``: identical
keys, equal outputs on the same weights (odd sizes included), ``norm_eval`` as upstream, and
mmseg's load-time resize of the relative position tables (its ``resize_rel_pos_embed`` run with
an ``interp2d`` built on ``RectBivariateSpline``: scipy >= 1.14 has no ``interp2d``)."""
import warnings

import pytest
import torch
from torch import nn

from ._common import require

require('mmseg')

from mmbackbones.compat.beit import MMSegBEiT, MMSegMAE  # noqa: E402
from mmbackbones.models.backbones.beit import BEiTViT  # noqa: E402
from mmbackbones.models.layers.rel_pos_bias import resize_rel_pos_table_geometric  # noqa: E402
from tests.parity import assert_outputs_close, perturb_  # noqa: E402

TWINS = {'BEiT': MMSegBEiT, 'MAE': MMSegMAE}
TINY = dict(patch_size=8, embed_dims=32, num_layers=3, num_heads=4, out_indices=(0, 2))


def _native(name: str, **kwargs):
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(dict(type=name, _scope_='mmseg', **kwargs))


def _pair(name: str, **kwargs):
    native = _native(name, **kwargs)
    native.init_weights()
    perturb_(native)
    ours = TWINS[name](**kwargs)
    assert list(ours.state_dict()) == list(native.state_dict())
    ours.load_state_dict(native.state_dict(), strict=True)
    return native, ours


@pytest.mark.parametrize('name', ['BEiT', 'MAE'])
def test_base_keys_and_shapes_identical(name):
    native = _native(name, img_size=(640, 640))  # mmseg's linspace().item() needs real tensors
    with torch.device('meta'):
        ours = TWINS[name](img_size=(640, 640))
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in native.state_dict().items()}
    assert list(ours.state_dict()) == list(native.state_dict())


@pytest.mark.parametrize('name', ['BEiT', 'MAE'])
@pytest.mark.parametrize('img_size,size', [((32, 32), (32, 32)), ((40, 56), (40, 56)),
                                           ((40, 56), (47, 61))])
@pytest.mark.parametrize('final_norm', [False, True])
def test_outputs_equal_in_eval(name, img_size, size, final_norm):
    native, ours = _pair(name, img_size=img_size, final_norm=final_norm, **TINY)
    native.eval()
    ours.eval()
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert_outputs_close(native(x), ours(x))


@pytest.mark.parametrize('name', ['BEiT', 'MAE'])
@pytest.mark.parametrize('norm_eval', [False, True])
def test_norm_eval_and_training_forward(name, norm_eval):
    native, ours = _pair(name, img_size=32, norm_eval=norm_eval, **TINY)
    native.train()
    ours.train()
    modes = [{n: m.training for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)}
             for model in (native, ours)]
    assert modes[0] == modes[1] and any(modes[0].values()) != norm_eval
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert_outputs_close(native(x), ours(x))


def _interp2d_from_rect_bivariate_spline():
    """scipy's removed ``interp2d(x, y, z, kind='cubic')`` on a grid: the interpolating cubic
    spline of ``RectBivariateSpline`` (what interp2d computed for gridded data)."""
    from scipy.interpolate import RectBivariateSpline

    class Interp2d:
        def __init__(self, x, y, z, kind='cubic'):
            assert kind == 'cubic'
            self.spline = RectBivariateSpline(y, x, z, kx=3, ky=3, s=0)

        def __call__(self, x, y):
            return self.spline(y, x)
    return Interp2d


@pytest.mark.parametrize('src,dst', [(6, 8), (8, 5), (5, 5)])
def test_load_time_table_resize_is_mmsegs(monkeypatch, src, dst):
    pytest.importorskip('scipy')
    import scipy.interpolate
    monkeypatch.setattr(scipy.interpolate, 'interp2d', _interp2d_from_rect_bivariate_spline(),
                        raising=False)
    kwargs = dict(TINY, patch_size=4)
    source = _native('BEiT', img_size=4 * src, **kwargs)
    source.init_weights()
    perturb_(source)
    native = _native('BEiT', img_size=4 * dst, **kwargs)
    expected = native.resize_rel_pos_embed({k: v.clone() for k, v in
                                            source.state_dict().items()})
    ours = MMSegBEiT(img_size=4 * dst, **kwargs)
    ours.load_state_dict(source.state_dict(), strict=True)
    for key, value in ours.state_dict().items():
        if key.endswith('relative_position_bias_table'):
            torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-6)
        elif not key.endswith('relative_position_index'):
            assert torch.equal(value, expected[key])
    # the non-square generalisation keeps each side's resize
    table = source.state_dict()['layers.0.attn.relative_position_bias_table']
    wide = resize_rel_pos_table_geometric(table, (src, src), (dst, dst + 2))
    assert wide.shape == ((2 * dst - 1) * (2 * dst + 3) + 3, 4)


def test_mmpretrain_beitvit_equals_ours_and_mmseg_keys_agree():
    """The mmseg layout and mmpretrain's are one: an mmseg BEiT's weights give the same outputs
    in ``mmcls.BEiTViT`` spelled as mmseg's model (featmap, eps 1e-5, no padding at multiples)."""
    from mmpretrain.models.backbones import BEiTViT as Theirs
    native, _ = _pair('BEiT', img_size=32, **TINY)
    arch = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=128)
    kwargs = dict(arch=arch, img_size=32, patch_size=8, out_indices=(0, 2), out_type='featmap',
                  norm_cfg=dict(type='LN'))
    theirs, ours = Theirs(**kwargs), BEiTViT(**kwargs)
    theirs.load_state_dict(native.state_dict(), strict=True)
    ours.load_state_dict(native.state_dict(), strict=True)
    x = torch.randn(1, 3, 32, 32)
    for model in (native, theirs, ours):
        model.eval()
    with torch.no_grad():
        assert_outputs_close(native(x), ours(x))
        assert_outputs_close(theirs(x), ours(x))


def test_pretrained_argument_as_mmseg():
    for name, twin in TWINS.items():
        native = _native(name, pretrained='a.pth')
        with pytest.warns(UserWarning, match='deprecated'):
            ours = twin(pretrained='a.pth')
        assert ours.init_cfg == native.init_cfg == dict(type='Pretrained', checkpoint='a.pth')


@pytest.mark.parametrize('name', ['BEiT', 'MAE', 'MSCAN'])
def test_whole_model_checkpoint_loads_strict_through_mmengine(name, tmp_path):
    """An mmseg model's whole checkpoint (``backbone.*`` + a head) written from mmseg's own
    backbone loads with ``strict=True`` (mmengine's ``load_checkpoint``, what ``load_from``
    calls) into the same model holding our twin, with equal outputs."""
    from mmengine.runner import load_checkpoint

    from mmbackbones.compat.mscan import MMSegMSCAN
    if name == 'MSCAN':
        kwargs = dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                      norm_cfg=dict(type='BN', requires_grad=True))
        twin, channels = MMSegMSCAN, 32
    else:
        kwargs, twin, channels = dict(img_size=32, **TINY), TWINS[name], 32

    class Model(nn.Module):
        def __init__(self, backbone):
            super().__init__()
            self.backbone, self.decode_head = backbone, nn.Conv2d(channels, 3, 1)

        def forward(self, x):
            return self.decode_head(self.backbone(x)[-1])

    native = Model(_native(name, **kwargs))
    native.backbone.init_weights()
    perturb_(native)
    path = str(tmp_path / 'whole.pth')
    torch.save({'state_dict': native.state_dict(), 'meta': {}}, path)
    ours = Model(twin(**kwargs))
    load_checkpoint(ours, path, strict=True, map_location='cpu')
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), native(x), rtol=1e-5, atol=1e-5)


def test_mae_load_time_resize_of_both_embeddings_is_mmsegs(monkeypatch):
    """mmseg's MAE.init_weights with a checkpoint of another size resizes the tables
    (geometric) and ``pos_embed`` (bicubic): our load does the same."""
    pytest.importorskip('scipy')
    import scipy.interpolate
    monkeypatch.setattr(scipy.interpolate, 'interp2d', _interp2d_from_rect_bivariate_spline(),
                        raising=False)
    kwargs = dict(TINY, patch_size=4)
    source = _native('MAE', img_size=24, **kwargs)
    source.init_weights()
    perturb_(source)
    native = _native('MAE', img_size=32, **kwargs)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    expected = native.resize_abs_pos_embed(native.resize_rel_pos_embed(state))
    ours = MMSegMAE(img_size=32, **kwargs)
    ours.load_state_dict(source.state_dict(), strict=True)
    for key, value in ours.state_dict().items():
        if not key.endswith('relative_position_index'):
            torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-6, msg=key)
