"""TorchScript: our detectron2-style ResNet scripts alone and inside detectron2's FPN, as
detectron2's own ResNet does (with detectron2.export's patches, which its scripting needs), and
the scripted module computes what the eager one and detectron2's scripted ResNet compute."""
import pytest
import torch

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')

import detectron2.export.torchscript_patch  # noqa: E402,F401 (detectron2's ResNet/FPN scripting)
from detectron2.modeling.backbone import resnet as d2_resnet  # noqa: E402
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool  # noqa: E402

import mmbackbones.detrex as ours  # noqa: E402
from tests.detectron2._common import randomize_norms_  # noqa: E402


def _resnet(lib, depth=50, **kwargs):
    stem = lib.BasicStem(in_channels=3, out_channels=64, norm='FrozenBN')
    stages = lib.ResNet.make_default_stages(depth=depth, stride_in_1x1=True, norm='FrozenBN')
    return lib.ResNet(stem, stages, out_features=['res2', 'res3', 'res4', 'res5'], **kwargs)


@pytest.mark.parametrize('with_fpn', [False, True])
def test_scripted_like_detectron2s_resnet(with_fpn):
    model = randomize_norms_(_resnet(ours, freeze_at=2))
    reference = _resnet(d2_resnet, freeze_at=2)
    reference.load_state_dict(model.state_dict())
    if with_fpn:
        model, reference = (FPN(bottom_up=m, in_features=['res2', 'res3', 'res4', 'res5'],
                                out_channels=32, top_block=LastLevelMaxPool()).eval()
                            for m in (model, reference))
        reference.load_state_dict(model.state_dict())
    model.eval()
    scripted, scripted_reference = torch.jit.script(model), torch.jit.script(reference.eval())
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        eager, got, expected = model(x), scripted(x), scripted_reference(x)
    assert list(got) == list(eager) == list(expected)
    for name in eager:  # summation orders differ (the eager strided 1x1 fast path)
        tol = 1e-4 * float(eager[name].abs().max())
        torch.testing.assert_close(got[name], eager[name], rtol=1e-3, atol=tol)
        torch.testing.assert_close(got[name], expected[name], rtol=1e-3, atol=tol)
