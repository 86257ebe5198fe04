"""detectron2's model-zoo Mask R-CNN FPN (``common/models/mask_rcnn_fpn.py``) with our backbones
as FPN's ``bottom_up``: built by detectron2's ``instantiate``, one training step (every trainable
backbone parameter gets a gradient) and inference, on CPU with two 96x96 images."""
import pytest
import torch

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')

from detectron2 import model_zoo  # noqa: E402
from detectron2.config import LazyCall as L  # noqa: E402
from detectron2.config import instantiate  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

import mmbackbones.detrex as ours  # noqa: E402
from mmbackbones.integrations.detectron2 import Detectron2Backbone  # noqa: E402
from tests.detectron2._common import detection_batch  # noqa: E402

BOTTOM_UPS = {
    'detrex-ResNet-50': L(ours.ResNet)(
        stem=L(ours.BasicStem)(in_channels=3, out_channels=64, norm='FrozenBN'),
        stages=L(ours.ResNet.make_default_stages)(depth=50, stride_in_1x1=True,
                                                  norm='FrozenBN'),
        out_features=['res2', 'res3', 'res4', 'res5'], freeze_at=2),
    'Detectron2Backbone(ResNet-18)': L(Detectron2Backbone)(
        backbone=dict(type='ResNet', depth=18, norm_cfg=dict(type='BN'),
                      out_indices=(0, 1, 2, 3)),
        out_features=['res2', 'res3', 'res4', 'res5'], size_divisibility=32),
}


@pytest.mark.parametrize('name', list(BOTTOM_UPS))
def test_mask_rcnn_fpn_train_step_and_inference(name):
    cfg = model_zoo.get_config('common/models/mask_rcnn_fpn.py')
    cfg.model.backbone.bottom_up = BOTTOM_UPS[name]
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    bottom_up = model.backbone.bottom_up
    assert type(bottom_up).__module__.startswith('mmbackbones')
    model.train()
    with EventStorage():
        losses = model(detection_batch(size=96, with_masks=True))
    assert {'loss_cls', 'loss_box_reg', 'loss_mask', 'loss_rpn_cls', 'loss_rpn_loc'} <= \
        set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    trainable = [(n, p) for n, p in bottom_up.named_parameters() if p.requires_grad]
    assert trainable
    no_grad = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, no_grad[:5]
    frozen = [n for n, p in bottom_up.named_parameters() if not p.requires_grad]
    assert all(p.grad is None for n, p in bottom_up.named_parameters() if n in frozen)
    model.eval()
    with torch.no_grad():
        results = model(detection_batch(size=96, seed=1))
    assert len(results) == 2
    for result in results:
        inst = result['instances']
        assert inst.image_size == (96, 96)
        assert {'pred_boxes', 'scores', 'pred_classes', 'pred_masks'} <= \
            set(inst.get_fields()) or len(inst) == 0
