"""Honest reporting: missing/unexpected keys summarised, strict errors, prefixes, shapes."""
import pytest
import torch

from mmbackbones.checkpoint import (CheckpointMismatchError, LoadReport, load_checkpoint,
                                    select_prefix)
from mmbackbones.checkpoint.state import group_keys


@pytest.fixture
def r18_file(tmp_path, tiny_resnet):
    """An mmpretrain-style classifier checkpoint of a ResNet-18: backbone.* + head.*."""
    model = tiny_resnet()
    sd = {f'backbone.{k}': v for k, v in model.state_dict().items()}
    sd['head.fc.weight'] = torch.zeros(10, 512)
    sd['head.fc.bias'] = torch.zeros(10)
    path = tmp_path / 'cls.pth'
    torch.save({'state_dict': sd, 'meta': {'epoch': 1}}, path)
    return path, model


def test_non_strict_report_groups_missing_and_unexpected(tmp_path, tiny_resnet, mm_log):
    full = tiny_resnet().state_dict()
    sd = {k: v for k, v in full.items() if not k.startswith('layer4.1.')}
    sd['fc.weight'] = torch.zeros(10, 512)
    sd['fc.bias'] = torch.zeros(10)
    sd['extra.0.weight'] = torch.zeros(1)
    path = tmp_path / 'partial.pth'
    torch.save(sd, path)
    # a half-load needs the explicit opt-out (test_strict_rule.py: refused by default)
    model = tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path), convert=None,
                                      strict=False))
    model.init_weights()
    text = mm_log.text
    missing = [k for k in full if k.startswith('layer4.1.') and 'num_batches' not in k]
    assert f'{len(missing)} missing, 3 unexpected' in text
    assert f'missing in the checkpoint (left as initialised): {len(missing)} keys' in text
    assert f'layer4.1.*: {len(missing)} (' in text
    assert 'unexpected in the checkpoint (ignored): 3 keys' in text
    assert 'fc.*: 2 (bias, weight)' in text
    assert 'extra.0.*: 1 (weight)' in text or 'extra.*: 1' in text
    # the rest was loaded
    assert torch.equal(model.state_dict()['layer4.0.conv1.weight'], full['layer4.0.conv1.weight'])


def test_strict_turns_any_mismatch_into_an_error_before_loading(tmp_path, tiny_resnet):
    full = tiny_resnet().state_dict()
    sd = dict(full)
    sd['fc.weight'] = torch.zeros(10, 512)
    path = tmp_path / 'extra.pth'
    torch.save(sd, path)
    model = tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path), strict=True,
                                      convert=None))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as info:
        model.init_weights()
    message = str(info.value)
    assert '1 unexpected' in message and 'fc.*: 1 (weight)' in message
    assert '(strict=True: nothing was loaded)' in message
    assert torch.equal(model.state_dict()['conv1.weight'], before['conv1.weight'])


def test_strict_passes_when_everything_matches(r18_file, tiny_resnet, mm_log):
    path, ref = r18_file
    model = tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone',
                                      strict=True))
    model.init_weights()
    assert torch.equal(model.state_dict()['layer1.0.conv1.weight'],
                       ref.state_dict()['layer1.0.conv1.weight'])
    assert 'tensors of the module matched.' in mm_log.text


def test_prefix_matching_nothing_names_the_prefixes_that_exist(r18_file, tiny_resnet):
    path, _ = r18_file
    model = tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                      prefix='model.backbone'))
    with pytest.raises(KeyError) as info:
        model.init_weights()
    message = info.value.args[0]
    assert "prefix 'model.backbone' matches no key" in message
    assert 'backbone (' in message and 'head (2 keys)' in message


def test_prefix_with_or_without_dot(tiny_resnet):
    sd = {'backbone.a': torch.ones(1), 'backbonex.b': torch.ones(1), 'head.c': torch.ones(1)}
    assert list(select_prefix(sd, 'backbone')) == ['a']
    assert list(select_prefix(sd, 'backbone.')) == ['a']
    assert select_prefix(sd, None) == sd


def test_mmpretrain_checkpoint_without_prefix_is_detected(r18_file, tiny_resnet):
    path, ref = r18_file
    model = tiny_resnet()
    report = load_checkpoint(model, str(path), strict=True)
    assert any('mmpretrain_classifier' in note for note in report.notes)
    assert torch.equal(model.state_dict()['layer2.0.downsample.0.weight'],
                       ref.state_dict()['layer2.0.downsample.0.weight'])


def test_shape_mismatch_names_key_and_both_shapes_and_loads_nothing(tmp_path, tiny_resnet):
    src = tiny_resnet(base_channels=32, stem_channels=32).state_dict()
    path = tmp_path / 'narrow.pth'
    torch.save(src, path)
    model = tiny_resnet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(model, str(path), convert=None)
    message = str(info.value)
    assert 'conv1.weight: checkpoint (32, 3, 7, 7) vs model (64, 3, 7, 7)' in message
    assert 'nothing was loaded' in message
    # no half-load: tensors whose shapes did fit (none here in conv1/bn1, but e.g. BN counters)
    # are untouched as well
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_shape_mismatch_in_some_keys_only_loads_nothing(tmp_path, tiny_resnet):
    src = tiny_resnet().state_dict()
    src = {k: (v if k != 'layer4.1.conv2.weight' else torch.zeros(512, 512, 1, 1))
           for k, v in src.items()}
    path = tmp_path / 'one_bad.pth'
    torch.save(src, path)
    model = tiny_resnet()
    before = model.state_dict()['conv1.weight'].clone()
    with pytest.raises(CheckpointMismatchError, match=r'layer4\.1\.conv2\.weight: checkpoint '
                                                      r'\(512, 512, 1, 1\) vs model '
                                                      r'\(512, 512, 3, 3\)'):
        load_checkpoint(model, str(path))
    assert torch.equal(model.state_dict()['conv1.weight'], before)


def test_group_keys_and_report_text():
    groups = group_keys(['layer1.0.conv1.weight', 'layer1.0.bn1.bias', 'layer1.1.conv1.weight',
                         'fc.weight', 'cls_token'])
    assert list(groups) == ['layer1.0', 'layer1.1', 'fc', 'cls_token']
    report = LoadReport('M', 'ckpt', loaded=['a'], missing=['cls_token'], unexpected=[])
    assert report.message.splitlines()[0] == \
        'Loaded ckpt into M: 1/2 tensors of the module matched, 1 missing, 0 unexpected.'
    assert not report.ok


def test_zoo_name_with_prefix_error_gives_a_hint(tmp_path, tiny_resnet, monkeypatch,
                                                 cache_dir):
    from mmbackbones.checkpoint import zoo
    model = tiny_resnet()
    path = tmp_path / 'native.pth'
    torch.save(model.state_dict(), path)
    entry = dict(name='tiny18', aliases=[], source='mmcls', format='mmpretrain', prefix=None,
                 arch=dict(type='ResNet', depth=18), url=path.as_uri(), sha256=None, top1=None)
    monkeypatch.setattr(zoo, '_ZOO', [entry])
    with pytest.raises(KeyError, match='zoo names hold the backbone weights already'):
        load_checkpoint(tiny_resnet(), 'mmbackbones://tiny18', prefix='backbone')
