"""detrex's spellings on ``mmbackbones.detrex.TimmBackbone``: ``freeze_at`` and the user's own
``norm_layer`` class (detectron2's ``FrozenBatchNorm2d`` in tests/detectron2/)."""
import pytest
import torch
from torch import nn

pytest.importorskip('timm', reason='timm is not installed')

from mmbackbones.detrex import TimmBackbone  # noqa: E402
from mmbackbones.models.backbones.timm_backbone import TIMMBackbone  # noqa: E402


def _frozen(model):
    return sorted(n for n, p in model.named_parameters() if not p.requires_grad)


def test_freeze_at_has_detectron2s_meaning():
    model = TimmBackbone(model_name='resnet18', freeze_at=2)  # was: blamed timm's ResNet
    frozen = _frozen(model)
    assert frozen and all(n.startswith(('timm_model.conv1', 'timm_model.bn1',
                                        'timm_model.layer1.')) for n in frozen)
    assert any(n.startswith('timm_model.layer1.') for n in frozen)  # stem and res2
    assert model.frozen_stages == 1
    assert _frozen(TimmBackbone(model_name='resnet18', freeze_at=1)) == [
        'timm_model.bn1.bias', 'timm_model.bn1.weight', 'timm_model.conv1.weight']  # the stem
    assert _frozen(TimmBackbone(model_name='resnet18', freeze_at=0)) == []
    assert _frozen(TimmBackbone(model_name='resnet18', freeze_at=-1)) == []  # detectron2: <= 0
    assert frozen == _frozen(TIMMBackbone(model_name='resnet18', out_indices=(0, 1, 2, 3),
                                          frozen_stages=1))


@pytest.mark.parametrize('kwargs, fragment', [
    (dict(freeze_at=9), 'TimmBackbone: freeze_at=9 is frozen_stages=8, and frozen_stages must '
     'be in -1..4'),
    (dict(freeze_at='2'), 'TimmBackbone: freeze_at must be an int'),
    (dict(freeze_at=2, frozen_stages=3), 'freeze_at=2 and frozen_stages=3 contradict'),
])
def test_freeze_at_refusals_name_it(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        TimmBackbone(model_name='resnet18', **kwargs)


def test_core_wrapper_names_itself_and_frozen_stages():
    with pytest.raises(TypeError, match=r"TIMMBackbone takes frozen_stages, not freeze_at "
                       r"\(detectron2's name\): freeze_at=2 is frozen_stages=1"):
        TIMMBackbone(model_name='resnet18', freeze_at=2)


class FrozenBatchNorm2d(nn.Module):
    """Another library's frozen BN (the shape of detectron2's, without its classmethod)."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        for name, fill in (('weight', 1.0), ('bias', 0.0), ('running_mean', 0.0),
                           ('running_var', 1.0)):
            self.register_buffer(name, torch.full((num_features, ), fill))

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


def test_norm_layer_class_given_is_the_class_used():
    plain = TimmBackbone(model_name='resnet18')
    with torch.no_grad():
        for module in plain.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    plain.eval()
    model = TimmBackbone(model_name='resnet18', norm_layer=FrozenBatchNorm2d)
    norms = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    assert len(norms) == sum(isinstance(m, nn.BatchNorm2d) for m in plain.modules()) == 15
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    model.load_state_dict(plain.state_dict(), strict=False)  # same names: weights carried over
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours, reference = model(x), plain(x)
    assert torch.allclose(ours['p3'], reference['p3'], atol=1e-5)
