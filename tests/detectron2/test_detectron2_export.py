"""detectron2's own export checks (its ``tests/test_export_torchscript.py``: scripting Mask R-CNN
FPN/C4 and RetinaNet with ``scripting_with_instances``, tracing them with ``TracingAdapter``), run
on models from detectron2's model-zoo configs with our ResNet in place of detectron2's.

"In place" is literal: ``BasicStem``/``BasicBlock``/``BottleneckBlock``/``ResNet`` of
``detectron2.modeling.backbone.resnet`` are swapped for ``mmbackbones.detrex``'s, so detectron2's
``build_resnet_backbone`` / ``build_resnet_fpn_backbone`` build ours. Each check runs on
detectron2's model and on ours, with the same (randomised) weights: the scripted/traced module
must compute what the eager one computes, and ours what detectron2's computes. No trained
weights here (no network): ``SCORE_THRESH_TEST=0`` so that random heads still give detections.
"""
import pytest
import torch
from torch import Tensor

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')

from detectron2 import model_zoo  # noqa: E402
from detectron2.export import scripting_with_instances  # noqa: E402
from detectron2.export.flatten import TracingAdapter  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.modeling.backbone import resnet as d2_resnet  # noqa: E402
from detectron2.structures import Boxes  # noqa: E402
from detectron2.utils.testing import (assert_instances_allclose,  # noqa: E402
                                      convert_scripted_instances, reload_script_model)

import mmbackbones.detrex as ours  # noqa: E402

MASK_RCNN_FPN = 'COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml'
MASK_RCNN_C4 = 'COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml'
RETINANET = 'COCO-Detection/retinanet_R_50_FPN_3x.yaml'
RCNN_FIELDS = {'proposal_boxes': Boxes, 'objectness_logits': Tensor, 'pred_boxes': Boxes,
               'scores': Tensor, 'pred_classes': Tensor, 'pred_masks': Tensor}
RETINANET_FIELDS = {'pred_boxes': Boxes, 'scores': Tensor, 'pred_classes': Tensor}


def _config(path):
    cfg = model_zoo.get_config(path, trained=False)
    cfg.MODEL.DEVICE = 'cpu'
    cfg.MODEL.WEIGHTS = ''
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    cfg.MODEL.RETINANET.SCORE_THRESH_TEST = 0.0
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 50
    cfg.TEST.DETECTIONS_PER_IMAGE = 10
    return cfg


def calibrate_frozen_norms_(model, image):
    """Give every FrozenBN the statistics of its input on ``image``, in forward order: a random
    R-50 with unit statistics multiplies its activations layer after layer until the scores
    saturate to exact ties, and tied detections have no defined order to compare."""
    from detectron2.layers import FrozenBatchNorm2d

    def set_stats(module, args):
        x = args[0]
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3)) + module.eps)

    norms = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    handles = [m.register_forward_pre_hook(set_stats) for m in norms]
    with torch.no_grad():
        model([{'image': image}])
    for handle in handles:
        handle.remove()
    return model


def _pair(path, monkeypatch):
    """(detectron2's model, the same model built with our ResNet), same weights, eval mode."""
    cfg = _config(path)
    torch.manual_seed(0)
    theirs = calibrate_frozen_norms_(build_model(cfg).eval(), _image(seed=5))
    with monkeypatch.context() as patch:
        for name in ('BasicStem', 'BasicBlock', 'BottleneckBlock', 'ResNet'):
            patch.setattr(d2_resnet, name, getattr(ours, name))
        mine = build_model(cfg).eval()
    backbone = getattr(mine.backbone, 'bottom_up', mine.backbone)
    assert isinstance(backbone, ours.ResNet), type(backbone)
    mine.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, mine


def _image(seed=0, size=(96, 128)):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(3, *size, generator=gen) * 255


def _assert_close(got, expected, what, size_as_tensor=False):
    assert len(got) == len(expected) > 0, what
    assert_instances_allclose(got, expected, rtol=1e-3, msg=what, size_as_tensor=size_as_tensor)


@pytest.mark.parametrize('path', [MASK_RCNN_FPN, MASK_RCNN_C4])
def test_scripting_rcnn(path, monkeypatch):
    theirs, mine = _pair(path, monkeypatch)
    image = _image()
    inputs = [{'image': image},
              {'image': torch.nn.functional.interpolate(image[None], scale_factor=0.5)[0]}]
    results = {}
    for name, model in (('theirs', theirs), ('ours', mine)):
        scripted = reload_script_model(scripting_with_instances(model, RCNN_FIELDS))
        with torch.no_grad():
            eager = model.inference(inputs, do_postprocess=False)[0]
            got = scripted.inference(inputs, do_postprocess=False)[0]
        _assert_close(got, eager, f'{name}: scripted vs eager')
        results[name] = got
    _assert_close(results['ours'], results['theirs'], 'ours vs detectron2, scripted')


def test_scripting_retinanet(monkeypatch):
    theirs, mine = _pair(RETINANET, monkeypatch)
    image = _image()
    inputs = [{'image': image}] * 2
    results = {}
    for name, model in (('theirs', theirs), ('ours', mine)):
        scripted = scripting_with_instances(model, RETINANET_FIELDS)
        with torch.no_grad():
            eager = model(inputs)[0]['instances']
            got = convert_scripted_instances(scripted(inputs)[0])
        from detectron2.modeling.postprocessing import detector_postprocess
        got = detector_postprocess(got, image.shape[1], image.shape[2])
        _assert_close(got, eager, f'{name}: scripted vs eager')
        results[name] = got
    _assert_close(results['ours'], results['theirs'], 'ours vs detectron2, scripted')


def _rcnn_inference(model, image):
    return model.inference([{'image': image}], do_postprocess=False)[0]


def _retinanet_inference(model, image):
    return model.forward([{'image': image}])[0]['instances']


@pytest.mark.parametrize('path,inference', [(MASK_RCNN_FPN, _rcnn_inference),
                                            (RETINANET, _retinanet_inference)])
def test_tracing(path, inference, monkeypatch):
    theirs, mine = _pair(path, monkeypatch)
    image = _image()
    results = {}
    for name, model in (('theirs', theirs), ('ours', mine)):
        # traced on a smaller image, run on the full one, as detectron2's own test does
        small = torch.nn.functional.interpolate(image[None], scale_factor=0.6)[0]
        adapter = TracingAdapter(model, small, inference)
        with torch.no_grad():
            traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
            got = adapter.outputs_schema(traced(image))
            eager = inference(model, image)
        _assert_close(got, eager, f'{name}: traced vs eager', size_as_tensor=True)
        results[name] = got
    _assert_close(results['ours'], results['theirs'], 'ours vs detectron2, traced',
                  size_as_tensor=True)


def test_adapter_backbone_traces_inside_fpn():
    """A native mmbackbones ResNet behind ``Detectron2Backbone``, inside detectron2's FPN,
    traced: the traced module computes what the eager one does, on another input size too."""
    from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool

    from mmbackbones.integrations.detectron2 import Detectron2Backbone
    bottom_up = Detectron2Backbone(dict(type='ResNet', depth=18, out_indices=(1, 2, 3)))
    assert list(bottom_up.output_shape()) == ['res3', 'res4', 'res5']
    fpn = FPN(bottom_up=bottom_up, in_features=['res3', 'res4', 'res5'], out_channels=32,
              top_block=LastLevelMaxPool()).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        traced = torch.jit.trace(fpn, x, strict=False)
        for inp in (x, torch.randn(2, 3, 64, 96)):
            eager, got = fpn(inp), traced(inp)
            assert list(got) == list(eager)
            for k in eager:
                torch.testing.assert_close(got[k], eager[k], rtol=1e-4, atol=1e-4)
