"""torch.compile on CPU gives the same outputs, without graph breaks from our code."""
import pytest
import torch

from mmbackbones import build_backbone

CASES = {
    'resnet18': (dict(type='ResNet', depth=18), (1, 3, 64, 64)),
    'vit-tiny': (dict(type='VisionTransformer', arch='deit-tiny', img_size=32, patch_size=8,
                      out_indices=(-1,), out_type='featmap'), (1, 3, 32, 32)),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_compile_matches_eager_without_graph_breaks(name):
    torch._dynamo.reset()
    cfg, shape = CASES[name]
    model = build_backbone(cfg).eval()
    x = torch.randn(*shape)
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    with torch.no_grad():
        eager = model(x)
        compiled = torch.compile(model, backend='aot_eager')(x)
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
