"""The load report tells the truth (issue #24, item 4): it counts only tensors that were in the
checkpoint, and non-finite weights load exactly as they are with one warning naming them."""
import math
import warnings

import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint import load_checkpoint, load_state_dict, save_file


def _model():
    return build_backbone(dict(type='ResNet', depth=18, base_channels=8, stem_channels=8))


def _counters(model):
    return [k for k in model.state_dict() if k.endswith('num_batches_tracked')]


def test_report_counts_only_tensors_in_the_checkpoint(tmp_path, mm_log):
    source, target = _model(), _model()
    path = tmp_path / 'conv1.safetensors'
    save_file({'conv1.weight': source.conv1.weight}, path)
    report = load_checkpoint(target, str(path))
    assert report.loaded == ['conv1.weight']  # not the BatchNorm counters torch fills in
    tensors = len(target.state_dict()) - len(_counters(target))
    assert report.message.splitlines()[0].endswith(
        f'1/{tensors} tensors of the module matched, {tensors - 1} missing, 0 unexpected.')
    assert f'1/{tensors} tensors' in mm_log.text
    assert torch.equal(target.conv1.weight, source.conv1.weight)


def test_full_checkpoint_counts_its_counters(tmp_path):
    source, target = _model(), _model()
    report = load_state_dict(target, source.state_dict())
    assert sorted(report.loaded) == sorted(target.state_dict())
    assert report.ok and f'{len(report.loaded)}/{len(report.loaded)} tensors' in report.message


def test_non_finite_weights_load_as_they_are_with_one_warning(tmp_path):
    source, target = _model(), _model()
    sd = {k: v.clone() for k, v in source.state_dict().items()}
    bad = ['conv1.weight', 'bn1.bias', 'layer1.0.conv1.weight', 'layer1.0.bn1.running_var',
           'layer2.0.conv1.weight', 'layer3.0.conv2.weight', 'layer4.1.bn2.weight']
    for i, key in enumerate(bad):
        sd[key].view(-1)[i] = (math.nan, math.inf, -math.inf)[i % 3]
    path = tmp_path / 'nan.pth'
    torch.save(sd, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        report = load_checkpoint(target, str(path))
    mine = [w for w in caught if 'NaN or Inf' in str(w.message)]
    assert len(mine) == 1, [str(w.message) for w in caught]
    text = str(mine[0].message)
    assert f'{len(bad)} tensors' in text and str(path) in text
    assert all(name in text for name in bad[:5]) and '2 more' in text
    assert text in report.notes
    after = target.state_dict()
    for key, value in sd.items():  # exactly as stored, NaN and Inf included
        assert torch.equal(torch.isnan(after[key]), torch.isnan(value)), key
        assert torch.equal(torch.nan_to_num(after[key]), torch.nan_to_num(value)), key


def test_finite_weights_give_no_warning():
    source, target = _model(), _model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        load_state_dict(target, source.state_dict())
    assert not [w for w in caught if 'NaN or Inf' in str(w.message)]


def test_large_finite_half_weights_are_not_called_non_finite():
    # their sum overflows float16; every value is finite
    target = torch.nn.Linear(16, 16).half()
    sd = {'weight': torch.full((16, 16), 60000.0, dtype=torch.float16),
          'bias': torch.zeros(16, dtype=torch.float16)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        load_state_dict(target, sd)
    assert not [w for w in caught if 'NaN or Inf' in str(w.message)]
    assert torch.equal(target.weight, sd['weight'])
