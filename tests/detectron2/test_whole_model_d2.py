"""A whole detectron2 model's checkpoint, both ways, with the OpenMMLab ``ResNet`` in it.

Into ours: detectron2's R50 (``build_resnet_backbone``, randomised) inside a model as
``backbone.bottom_up``, saved by ``DetectionCheckpointer``, loads through
``DetectionCheckpointer.load`` into the same model holding our OpenMMLab ``ResNet``
(``style='caffe'``, FrozenBN): the backbone's load hook converts detectron2's names, and the
outputs are detectron2's. Back out: ours, written by ``convert_checkpoint_to(..., 'detectron2')``,
loads with ``strict=True`` into detectron2's model and gives our outputs."""
import pytest
import torch
from torch import nn

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402

from mmbackbones.checkpoint import CheckpointMismatchError  # noqa: E402
from mmbackbones.checkpoint.convert import convert_checkpoint_to  # noqa: E402
from mmbackbones.models.backbones.resnet import ResNet  # noqa: E402
from tests.detectron2._common import randomize_norms_  # noqa: E402
from tests.detectron2.test_resnet_checkpoints import (  # noqa: E402
    assert_outputs_equal as _assert_same, d2_reference, outputs as _features)


class Backbone(nn.Module):
    def __init__(self, bottom_up):
        super().__init__()
        self.bottom_up = bottom_up
        self.lateral = nn.Conv2d(2048, 8, 1)  # what an FPN adds around the bottom-up network


class Detector(nn.Module):
    def __init__(self, bottom_up):
        super().__init__()
        self.backbone = Backbone(bottom_up)
        self.head = nn.Linear(8, 2)


def _ours():
    return ResNet(depth=50, style='caffe', norm_cfg=dict(type='FrozenBN'),
                  out_indices=(0, 1, 2, 3))


def test_detectron2_model_checkpoint_loads_into_ours_and_back(tmp_path):
    torch.manual_seed(0)
    native = Detector(randomize_norms_(d2_reference()))
    DetectionCheckpointer(native, save_dir=str(tmp_path)).save('d2_final')
    mine = Detector(_ours())
    DetectionCheckpointer(mine).load(str(tmp_path / 'd2_final.pth'))
    _assert_same(_features(mine.backbone.bottom_up), _features(native.backbone.bottom_up))
    assert 'backbone.bottom_up.layer1.0.conv1.weight' in mine.state_dict()  # saved as ours

    randomize_norms_(mine.backbone.bottom_up, seed=7)  # now ours differs from native
    src, dst = tmp_path / 'ours.pth', tmp_path / 'for_d2.pth'
    torch.save({'state_dict': mine.state_dict()}, src)
    assert convert_checkpoint_to(str(src), str(dst), to='detectron2')['prefix'] == \
        'backbone.bottom_up.'
    back = Detector(d2_reference())
    back.load_state_dict(torch.load(dst, weights_only=True)['model'], strict=True)
    _assert_same(_features(back.backbone.bottom_up), _features(mine.backbone.bottom_up))
    DetectionCheckpointer(Detector(d2_reference())).load(str(dst))  # its own loader reads it


def test_detection_checkpointer_refuses_a_partial_backbone(tmp_path):
    native = Detector(d2_reference())
    state = {k: v for k, v in native.state_dict().items() if '.res5.' not in k}
    torch.save({'model': state}, tmp_path / 'partial.pth')
    mine = Detector(_ours())
    with pytest.raises(CheckpointMismatchError, match='nothing was loaded'):
        DetectionCheckpointer(mine).load(str(tmp_path / 'partial.pth'))
