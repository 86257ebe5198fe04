"""``mmbackbones export --dynamic`` on the transformers: the check runs a second batch, height
and width, and Swin/ViT graphs keep their sizes symbolic (position-embedding resize, patch and
window padding, the shifted-window mask, the size-dependent shift of mmpretrain's Swin)."""
import json

import numpy as np
import pytest
import torch

from mmbackbones.analysis.onnx_export import second_input_size
from tests.cli_helpers import run_cli

pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
ort = pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')

SWIN = "dict(embed_dims=16, depths=[1, 2, 1, 1], num_heads=[1, 2, 2, 4])"
CONFIGS = {
    # mmpretrain's default: the shift is dropped where a side equals the window (a size choice)
    'swin': f"backbone = dict(type='SwinTransformer', arch={SWIN}, window_size=4, "
            f"out_indices=(0, 1, 2, 3))",
    # mmdet's spelling, with an absolute position embedding resized to every input
    'swin-mmdet': "backbone = dict(type='SwinTransformer', embed_dims=16, depths=[1, 2, 1, 1], "
                  "num_heads=[1, 2, 2, 4], window_size=3, use_abs_pos_embed=True, "
                  "pretrain_img_size=32, out_indices=(0, 1, 2, 3))",
    'vit': "backbone = dict(type='VisionTransformer', arch=dict(embed_dims=32, num_layers=2, "
           "num_heads=2, feedforward_channels=64), img_size=32, patch_size=8, "
           "out_type='featmap', out_indices=(0, 1))",
}


def test_second_input_size_changes_both_sides():
    assert second_input_size((32, 32)) == (51, 45)
    h, w = second_input_size((64, 64))
    assert h != 64 and w != 64 and h % 8 and w % 8


@pytest.mark.parametrize('name', list(CONFIGS))
def test_transformer_exports_with_dynamic_height_and_width(name, tmp_path):
    config = tmp_path / f'{name}.py'
    config.write_text(CONFIGS[name] + '\n')
    out = tmp_path / f'{name}.onnx'
    result = run_cli('export', config, '-o', out, '--input-size', '32', '32', '--dynamic',
                     '--json')
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    shapes = [c['input_shape'] for c in report['verify']]
    assert shapes == [[1, 3, 32, 32], [2, 3, 51, 45]]  # the check ran another H and W
    assert report['max_abs_diff'] < 1e-4
    # and sizes the check did not try, through the file itself
    from mmbackbones import build_backbone_from_config
    torch.manual_seed(0)  # the CLI builds with seed 0
    model = build_backbone_from_config(str(config)).eval()
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    for shape in [(1, 3, 16, 24), (1, 3, 100, 36)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            want = model(x)
        got = session.run(None, {'input': x.numpy()})
        for g, w in zip(got, want):
            assert g.shape == tuple(w.shape)
            np.testing.assert_allclose(g, w.numpy(), atol=1e-4, rtol=0)


def test_static_graph_fails_the_second_size_check_with_its_reason(tmp_path, monkeypatch):
    """A graph that baked in the traced size is caught by the check, with onnxruntime's reason
    (simulated: the tracer is told nothing is being traced, as before the fix)."""
    from mmbackbones.analysis import onnx_export
    from mmbackbones.models.layers import pos_embed
    monkeypatch.setattr(pos_embed.torch.jit, 'is_tracing', lambda: False)
    config = tmp_path / 'vit.py'
    config.write_text(CONFIGS['vit'] + '\n')
    from mmbackbones import build_backbone_from_config
    model = build_backbone_from_config(str(config)).eval()
    x = torch.randn(1, 3, 32, 32)
    onnx_export.export_onnx(model, x, str(tmp_path / 'vit.onnx'), dynamic=True)
    rows = onnx_export.verify_onnx(model, str(tmp_path / 'vit.onnx'), torch.randn(2, 3, 51, 45))
    assert all(r['max_abs_diff'] == float('inf') for r in rows)
    assert all('onnxruntime failed' in r['error'] for r in rows)
