"""detrex's ``TimmBackbone(norm_layer=FrozenBatchNorm2d)`` with detectron2's class: that class is
the one used (``isinstance`` checks against detectron2's ``FrozenBatchNorm2d`` hold), and
``freeze_at`` means what it means for detectron2's ResNet."""
import pytest
import torch
from torch import nn

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')
pytest.importorskip('timm')

from detectron2.layers import FrozenBatchNorm2d  # noqa: E402
from detectron2.modeling import Backbone  # noqa: E402

from mmbackbones.detrex import TimmBackbone  # noqa: E402


def test_detectron2_frozen_bn_class_is_used():
    model = TimmBackbone(model_name='resnet18', norm_layer=FrozenBatchNorm2d, freeze_at=2)
    assert isinstance(model, Backbone)
    norms = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    assert len(norms) == 15  # bn1 + layer1..3 of a resnet18 (was: our class, 0 of theirs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert isinstance(model.timm_model.bn1, FrozenBatchNorm2d)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(('timm_model.conv1', 'timm_model.layer1.'))
                          for n in frozen)  # freeze_at=2: the stem and res2
    out = model(torch.randn(1, 3, 64, 64))
    assert list(out) == ['p0', 'p1', 'p2', 'p3'] and out['p3'].shape == (1, 256, 4, 4)
