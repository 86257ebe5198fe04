"""``mmbackbones convert`` and ``zoo``: the checkpoint package's commands, through the script."""
import json
import os

from tests.cli_helpers import run_cli


def test_convert_then_use_the_checkpoint(tmp_path):
    import torch
    import torchvision
    from tests.cli_helpers import REPO_ROOT
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / 'tv.pth')
    out = tmp_path / 'r18.safetensors'
    config = os.path.join(REPO_ROOT, 'configs', 'resnet', 'resnet18.py')
    result = run_cli('convert', tmp_path / 'tv.pth', out, '--model', config)
    assert result.returncode == 0, result.stderr
    assert f'wrote {out}' in result.stdout and os.path.isfile(out)
    assert '120/120 tensors of the module matched' in result.stdout
    info = run_cli('info', config, '--checkpoint', out, '--input-size', '32', '32', '--no-flops',
                   '--no-memory')
    assert info.returncode == 0, info.stderr
    assert f'weights {out}' in info.stdout


def test_convert_missing_source_is_an_error(tmp_path):
    result = run_cli('convert', tmp_path / 'none.pth', tmp_path / 'out.safetensors')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'not found' in result.stderr


def test_zoo_lists_checkpoints():
    result = run_cli('zoo', 'resnet50', '--json')
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert entries and all('resnet50' in json.dumps(e).lower() for e in entries)
