"""``mmbackbones list``: registered types and wrapped timm/torchvision models, with counts."""
import json

from tests.cli_helpers import run_cli


def test_list_json_is_the_registry():
    from mmbackbones import MODELS
    result = run_cli('list', '--json')
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    names = [row['name'] for row in data['registered']]
    # Only mmbackbones' own types (a test's toy types are registered for that test only).
    ours = [n for n in MODELS.known_names()
            if getattr(MODELS.module_dict.get(n), '__module__', '').startswith('mmbackbones.')]
    assert names == sorted(ours)
    assert 'ResNet' in names and 'VisionTransformer' in names
    assert all(row['module'].startswith('mmbackbones.') for row in data['registered'])
    assert 'timm' not in data and 'torchvision' not in data


def test_list_glob_pattern_with_wrapped_models():
    import timm
    import torchvision
    result = run_cli('list', 'resnet1*', '--json', '--timm', '--torchvision')
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data['registered'] == []  # a glob anchors at the start (case-insensitive)
    assert data['timm'] == sorted(timm.list_models('resnet1*'))
    expected = sorted(n for n in torchvision.models.list_models(module=torchvision.models)
                      if n.startswith('resnet1'))
    assert data['torchvision'] == expected and 'resnet18' in expected


def test_list_table_with_substring_pattern_and_counts():
    result = run_cli('list', 'resnet', '--torchvision')
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'Registered backbone types matching' in out and 'ResNetV1c' in out
    assert 'VisionTransformer' not in out  # filtered out by the pattern
    import torchvision
    count = sum('resnet' in n for n in torchvision.models.list_models(module=torchvision.models))
    assert f"torchvision models matching 'resnet': {count}" in out and 'resnet18' in out
    assert 'timm models' not in out


def test_list_no_match_says_so():
    result = run_cli('list', 'zzzz*')
    assert result.returncode == 0, result.stderr
    assert "no registered backbone type matching 'zzzz*'" in result.stdout


def test_list_pretrained_and_configs():
    from mmbackbones.checkpoint.zoo import load_zoo
    result = run_cli('list', 'swin', '--pretrained', '--configs', '--json')
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    expected = [e['name'] for e in load_zoo() if e['arch']['type'] == 'SwinTransformer']
    assert [row['name'] for row in data['pretrained']] == expected and len(expected) >= 10
    assert {row['source'] for row in data['pretrained']} == {'mmcls', 'timm', 'mmdet', 'mmseg'}
    tasks = {row['task']: row for row in data['pretrained']}
    assert set(tasks) == {'classification', 'detection', 'segmentation'}
    assert tasks['detection']['result'].startswith('box_AP ') and \
        tasks['detection']['dataset'] == 'COCO' and tasks['detection']['top1'] is None
    assert all(row['config'].startswith('swin-') for row in data['pretrained'])
    assert {'name': 'swin-tiny_224', 'file': 'swin/swin-tiny_224.py'} in data['configs']
    table = run_cli('list', 'regnetx-400mf', '--pretrained').stdout
    assert 'regnetx-400mf_8xb128_in1k' in table and '72.56' in table and 'MMBACKBONES_HOME' in table
    table = run_cli('list', 'faster-rcnn_r50_fpn_1x*', '--pretrained').stdout
    assert 'detection' in table and 'box_AP 37.40 (COCO)' in table


def test_list_configs_lists_only_configs():
    result = run_cli('list', 'resnet', '--configs')
    assert result.returncode == 0, result.stderr
    assert 'Shipped configs matching' in result.stdout and 'resnet50' in result.stdout
    assert 'Registered backbone types' not in result.stdout  # the type table is not reprinted
    data = json.loads(run_cli('list', 'resnet', '--configs', '--json').stdout)
    assert set(data) == {'configs'}
