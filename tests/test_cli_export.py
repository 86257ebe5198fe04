"""``mmbackbones export``: ONNX with named outputs, checked here in onnxruntime against PyTorch."""
import json

import numpy as np
import pytest
import torch

from tests.cli_helpers import assert_one_line_error, run_cli, write_toy_config

onnx = pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
ort = pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')


@pytest.fixture
def toy_checkpoint(tmp_path):
    """A ToyBackbone (outputs stage1, stage3) with non-trivial BN statistics, saved as mmdet
    saves a detector (``state_dict`` with a ``backbone.`` prefix)."""
    from tests.toy_backbone import ToyBackbone
    model = ToyBackbone(out_indices=(0, 2))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    path = tmp_path / 'toy.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in model.state_dict().items()}}, path)
    return model.eval(), path


def test_onnx_round_trip_dynamic(tmp_path, toy_checkpoint):
    model, checkpoint = toy_checkpoint
    config = write_toy_config(tmp_path, backbone='out_indices=(0, 2)')
    out = tmp_path / 'toy.onnx'
    result = run_cli('export', config, '-o', out, '--input-size', '32', '32', '--dynamic',
                     '--checkpoint', checkpoint, '--json')
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report['outputs'] == ['stage1', 'stage3'] and report['dynamic'] is True
    assert report['max_abs_diff'] < 1e-4  # the command's own check

    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    assert [o.name for o in proto.graph.output] == ['stage1', 'stage3']
    assert [i.name for i in proto.graph.input] == ['input']
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    # Sizes other than the traced one work with --dynamic (batch, height and width).
    for shape in [(1, 3, 32, 32), (2, 3, 48, 64)]:
        x = torch.randn(*shape)
        got = session.run(None, {'input': x.numpy()})
        with torch.no_grad():
            want = model(x)
        assert len(got) == len(want) == 2
        for g, w in zip(got, want):
            assert g.shape == tuple(w.shape)
            np.testing.assert_allclose(g, w.numpy(), atol=1e-4, rtol=0)


def test_onnx_static_export_sentence(tmp_path):
    config = write_toy_config(tmp_path)
    out = tmp_path / 'static.onnx'
    result = run_cli('export', config, '-o', out, '--input-size', '32', '32', '--batch', '2')
    assert result.returncode == 0, result.stderr
    assert 'outputs: stage1, stage2, stage3' in result.stdout
    assert 'onnxruntime check ok' in result.stdout
    proto = onnx.load(str(out))
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 32, 32]  # not dynamic: the traced shape is fixed


def test_real_backbone_export(tmp_path):
    config = tmp_path / 'resnet18.py'
    config.write_text("backbone = dict(type='ResNet', depth=18, out_indices=(1, 3))\n")
    out = tmp_path / 'r18.onnx'
    result = run_cli('export', config, '-o', out, '--input-size', '64', '64', '--json')
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report['outputs'] == ['res3', 'res5']
    assert report['max_abs_diff'] < 1e-4


@pytest.mark.parametrize('make_args, fragment', [
    (lambda tmp: ['-o', tmp / 'x.txt'], 'output file must end with .onnx'),
    (lambda tmp: ['-o', tmp / 'nodir' / 'x.onnx'], 'output folder does not exist'),
    (lambda tmp: [], 'the following arguments are required: -o/--out'),
    (lambda tmp: ['-o', tmp / 'x.onnx', '--opset', 'x'], 'argument --opset'),
])
def test_export_errors(tmp_path, make_args, fragment):
    config = write_toy_config(tmp_path)
    assert_one_line_error(run_cli('export', config, *make_args(tmp_path)),
                          'mmbackbones export', fragment)
