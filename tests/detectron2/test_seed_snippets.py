"""detrex's "Using Pretrained Backbones" snippets with only the import line changed, built by
detectron2's own ``LazyCall`` + ``instantiate`` (omegaconf ListConfig/DictConfig arguments)."""
import pytest
import torch

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')
pytest.importorskip('detrex', reason='detrex is not installed (make test-detectron2)')

from detectron2.config import LazyCall as L  # noqa: E402
from detectron2.config import instantiate  # noqa: E402
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec  # noqa: E402
from detectron2.modeling import Backbone  # noqa: E402
from omegaconf import ListConfig  # noqa: E402

import mmbackbones.detrex as ours  # noqa: E402
from tests.detectron2._common import randomize_norms_  # noqa: E402

FEATURES = ['res2', 'res3', 'res4', 'res5']


def r50_frozenbn(lib):  # detrex: ResNet-50 with FrozenBN, freeze_at=1
    return L(lib.ResNet)(
        stem=L(lib.BasicStem)(in_channels=3, out_channels=64, norm='FrozenBN'),
        stages=L(lib.ResNet.make_default_stages)(depth=50, stride_in_1x1=False,
                                                 norm='FrozenBN'),
        out_features=['res2', 'res3', 'res4', 'res5'], freeze_at=1)


def r50_dc5(lib):  # detrex: ResNet-50-DC5 through the module-level make_stage
    return L(lib.ResNet)(
        stem=L(lib.BasicStem)(in_channels=3, out_channels=64, norm='FrozenBN'),
        stages=L(lib.make_stage)(depth=50, norm='FrozenBN', in_channels=64, out_channels=256,
                                 res5_dilation=2),
        out_features=['res2', 'res3', 'res4', 'res5'], freeze_at=1)


def _detrex():
    import detrex.modeling.backbone as detrex_backbone
    return detrex_backbone


@pytest.mark.parametrize('snippet,strides', [(r50_frozenbn, [4, 8, 16, 32]),
                                             (r50_dc5, [4, 8, 16, 16])])
def test_resnet_snippets_equal_detrex(snippet, strides):
    cfg = snippet(ours)
    assert isinstance(cfg.out_features, ListConfig)  # what instantiate hands the constructor
    model, ref = instantiate(cfg), instantiate(snippet(_detrex()))
    assert isinstance(model, Backbone) and isinstance(model, ours.ResNet)
    assert model.size_divisibility == ref.size_divisibility == 0
    assert model.padding_constraints == ref.padding_constraints == {}
    shapes = model.output_shape()
    assert all(type(s) is ShapeSpec for s in shapes.values())
    assert shapes == ref.output_shape()
    assert [shapes[f].stride for f in FEATURES] == strides
    # the same parameter names: detrex's weights load without conversion, every key
    assert set(model.state_dict()) == set(ref.state_dict())
    assert {k for k, p in model.named_parameters() if p.requires_grad} == \
        {k for k, p in ref.named_parameters() if p.requires_grad}
    randomize_norms_(ref)
    model.load_state_dict(ref.state_dict(), strict=True)
    model.eval(), ref.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        got, expected = model(x), ref(x)
    assert list(got) == FEATURES
    for f in FEATURES:
        torch.testing.assert_close(got[f], expected[f], rtol=1e-4,
                                   atol=1e-4 * float(expected[f].abs().max()))


def test_timm_backbone_snippet():
    pytest.importorskip('timm')
    cfg = L(ours.TimmBackbone)(model_name='resnet152d', features_only=True, pretrained=False,
                               in_channels=3, out_indices=(1, 2, 3),
                               norm_layer=FrozenBatchNorm2d)
    model = instantiate(cfg)
    assert isinstance(model, Backbone)
    # every norm frozen (TIMMBackbone maps the class to its own FrozenBatchNorm2d)
    norms = [m for m in model.modules() if 'Norm' in type(m).__name__]
    assert norms and all(type(m).__name__ == 'FrozenBatchNorm2d' for m in norms)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in norms)
    shapes = model.output_shape()
    # detrex's timm_example neck reads p1/p2/p3 with these channels
    assert {k: (s.channels, s.stride) for k, s in shapes.items()} == \
        {'p1': (256, 4), 'p2': (512, 8), 'p3': (1024, 16)}
    with torch.no_grad():
        out = model.eval()(torch.randn(2, 3, 64, 64))
    assert list(out) == ['p1', 'p2', 'p3']
    assert out['p3'].shape == (2, 1024, 4, 4)


def test_torchvision_backbone_snippet():
    cfg = L(ours.TorchvisionBackbone)(model_name='resnet50', pretrained=False,
                                      return_nodes={'layer2': 'res3', 'layer3': 'res4',
                                                    'layer4': 'res5'})
    model = instantiate(cfg)
    assert isinstance(model, Backbone)
    assert {k: (s.channels, s.stride) for k, s in model.output_shape().items()} == \
        {'res3': (512, 8), 'res4': (1024, 16), 'res5': (2048, 32)}
    with torch.no_grad():
        out = model.eval()(torch.randn(2, 3, 64, 64))
    assert list(out) == ['res3', 'res4', 'res5'] and out['res5'].shape == (2, 2048, 2, 2)
    # same values as detrex's own TorchvisionBackbone holding the same torchvision weights
    from detrex.modeling.backbone import TorchvisionBackbone
    ref = TorchvisionBackbone(model_name='resnet50', pretrained=False,
                              return_nodes={'layer2': 'res3', 'layer3': 'res4',
                                            'layer4': 'res5'}).eval()
    ref.model.load_state_dict(model.model.state_dict(), strict=False)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        got, expected = model(x), ref(x)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-4, atol=1e-4)


def test_config_containers_reach_every_constructor():
    """ListConfig/DictConfig from instantiate are accepted by the adapter and our own types."""
    from mmbackbones.integrations.detectron2 import Detectron2Backbone
    from mmbackbones.models.backbones.resnet import ResNet
    cfg = L(Detectron2Backbone)(
        backbone=L(ResNet)(depth=18, out_indices=[1, 2, 3], norm_cfg={'type': 'FrozenBN'}),
        out_features=['res3', 'res5'], rename={'res4': 'p4'})
    model = instantiate(cfg)
    assert isinstance(model, Backbone)
    assert {k: (s.channels, s.stride) for k, s in model.output_shape().items()} == \
        {'res3': (128, 8), 'res5': (512, 32)}
    with torch.no_grad():
        assert list(model(torch.randn(2, 3, 64, 64))) == ['res3', 'res5']
