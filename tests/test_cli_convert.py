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


def _mmseg_whole_checkpoint(path):
    """A whole mmseg PSPNet-style checkpoint: a ResNetV1c-18 with mmcv's deep-stem names under
    ``backbone.``, plus ``decode_head.*`` and ``auxiliary_head.*``."""
    import re

    import torch

    from mmbackbones import build_backbone
    names = {'0.conv': '0', '0.bn': '1', '1.conv': '3', '1.bn': '4', '2.conv': '6', '2.bn': '7'}
    backbone = build_backbone(dict(type='ResNetV1c', depth=18))
    state = {}
    for key, value in backbone.state_dict().items():
        key = re.sub(r'^stem\.(\d\.(?:conv|bn))\.', lambda m: f'stem.{names[m.group(1)]}.', key)
        state['backbone.' + key] = value
    heads = {'decode_head.conv_seg.weight': torch.randn(19, 64, 1, 1),
             'decode_head.conv_seg.bias': torch.randn(19),
             'decode_head.bottleneck.conv.weight': torch.randn(64, 1024, 3, 3),
             'auxiliary_head.conv_seg.weight': torch.randn(19, 32, 1, 1)}
    state.update(heads)
    torch.save({'state_dict': state, 'meta': {}}, path)
    return backbone, state


def test_convert_whole_mmseg_checkpoint_reports_what_it_drops(tmp_path):
    backbone, state = _mmseg_whole_checkpoint(tmp_path / 'pspnet_full.pth')
    n_backbone = len(backbone.state_dict())
    result = run_cli('convert', tmp_path / 'pspnet_full.pth', tmp_path / 'out.pth')
    assert result.returncode == 0, result.stderr
    assert f'wrote {tmp_path / "out.pth"}: {n_backbone} tensors' in result.stdout
    assert f'kept: backbone.* ({n_backbone}) of the {n_backbone + 4} tensors' in result.stdout
    assert ('dropped: decode_head.* (3), auxiliary_head.* (1): 4 tensors that are not the '
            "backbone's (pass --keep-all to write them too, unchanged)") in result.stdout


def test_convert_keep_all_writes_the_whole_model(tmp_path):
    import torch

    from mmbackbones import build_backbone
    from mmbackbones.checkpoint import load_checkpoint
    backbone, state = _mmseg_whole_checkpoint(tmp_path / 'pspnet_full.pth')
    out = tmp_path / 'pspnet_ours.pth'
    result = run_cli('convert', tmp_path / 'pspnet_full.pth', out, '--keep-all')
    assert result.returncode == 0, result.stderr
    assert f'wrote {out}: {len(state)} tensors' in result.stdout
    assert 'written too (--keep-all), unchanged: decode_head.* (3), auxiliary_head.* (1)' in \
        result.stdout
    written = torch.load(out, weights_only=True)['state_dict']
    assert len(written) == len(state)
    for key in ('decode_head.conv_seg.weight', 'decode_head.bottleneck.conv.weight',
                'auxiliary_head.conv_seg.weight'):
        assert torch.equal(written[key], state[key])
    assert 'backbone.stem.0.conv.weight' in written  # converted, under its own prefix
    fresh = build_backbone(dict(type='ResNetV1c', depth=18))
    load_checkpoint(fresh, str(out), prefix='backbone', strict=True)
    assert torch.equal(fresh.stem[0].conv.weight, backbone.stem[0].conv.weight)


def test_convert_model_takes_model_names(tmp_path):
    import torch
    import torchvision
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / 'tv.pth')
    result = run_cli('convert', tmp_path / 'tv.pth', tmp_path / 'r18.safetensors', '--model',
                     'resnet18')
    assert result.returncode == 0, result.stderr  # was: a JSON parse error
    assert '120/120 tensors of the module matched' in result.stdout
    assert 'kept: conv1.* (1), bn1.* (5), layer1.* (24)' in result.stdout
    # the classifier is not the backbone's: named, not written (--keep-all would keep it)
    assert 'dropped: fc.* (2)' in result.stdout


def test_convert_model_takes_registered_types():
    from mmbackbones.cli.commands import _convert_model
    from mmbackbones.models.backbones.convnext import ConvNeXt
    model = _convert_model('ConvNeXt')  # a registered type with its defaults
    assert isinstance(model, ConvNeXt) and model.out_channels[-1] == 768
    assert _convert_model('{"type": "ResNet"}') == '{"type": "ResNet"}'  # JSON: as before
