"""The ``pretrained=`` warning (mmdet/mmseg's spelling on an mmpretrain-signature class: one
HostArgumentWarning naming the twin) points at the user's line, not at our wrappers."""
import warnings

from mmbackbones import build_backbone
from mmbackbones.models.backbones.resnet import ResNet


def _record(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        call()
    caught = [w for w in caught if 'pretrained' in str(w.message)]
    assert len(caught) == 1, [str(w.message) for w in caught]
    return caught[0]


def test_constructor_call_is_the_warned_line():
    warning = _record(lambda: ResNet(depth=18, pretrained='r18.pth'))
    assert warning.filename == __file__, warning.filename  # was utils/validation.py


def test_build_backbone_call_is_the_warned_line():
    warning = _record(lambda: build_backbone(dict(type='ResNet', depth=18,
                                                  pretrained='r18.pth')))
    assert warning.filename == __file__, warning.filename  # not mmengine's registry
