"""Registration happens where things are defined, lazily (mmengine's ``locations``), and uses
mmengine's public API; safe loading is installed by one function, called once."""
import json
import os
import re
import subprocess
import sys

import pytest
from mmengine.registry import MODELS as ROOT
from mmengine.registry import WEIGHT_INITIALIZERS, DefaultScope

from mmbackbones import MODELS, register_all_modules
from mmbackbones.checkpoint.loading import PretrainedInit
from mmbackbones.models.layers.layer_norm2d import LayerNorm2d
from mmbackbones.models.layers.norm import FrozenBatchNorm2d
from mmbackbones.registry import MMCLS_MODELS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO_ROOT, 'mmbackbones')


def run_fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter; it prints one JSON line, returned."""
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_registers_nothing_and_stays_light():
    state = run_fresh(
        'import json, sys\nimport mmbackbones\n'
        'from mmengine.registry import MODELS as ROOT\n'
        "print(json.dumps(dict(torch='torch' in sys.modules,\n"
        "    models='mmbackbones.models' in sys.modules,\n"
        "    checkpoint='mmbackbones.checkpoint' in sys.modules,\n"
        "    frozen_bn='FrozenBN' in ROOT.module_dict)))")
    assert state == dict(torch=False, models=False, checkpoint=False, frozen_bn=False)


def test_a_backbone_class_used_directly_registers_everything():
    # No registry lookup: FrozenBN registered where it is defined (imported with the class), and
    # the first backbone built imports mmbackbones.checkpoint, which installs safe loading once.
    state = run_fresh(
        'import json\n'
        'from mmbackbones.models.backbones.resnet import ResNet\n'
        'from mmengine.registry import MODELS as ROOT, WEIGHT_INITIALIZERS\n'
        "before = 'FrozenBN' in ROOT.module_dict\n"
        "hooks = WEIGHT_INITIALIZERS.get('Pretrained').__module__\n"
        "m = ResNet(depth=18, norm_cfg=dict(type='FrozenBN'))\n"
        "print(json.dumps(dict(before=before, hooks=hooks, norm=type(m.bn1).__name__,\n"
        "    pretrained=WEIGHT_INITIALIZERS.get('Pretrained').__module__)))")
    assert state == dict(before=True, hooks='mmengine.model.weight_init',
                         norm='FrozenBatchNorm2d', pretrained='mmbackbones.checkpoint.loading')


def test_register_all_modules_is_idempotent_and_complete():
    register_all_modules()
    register_all_modules()
    for name, cls in (('FrozenBN', FrozenBatchNorm2d), ('FrozenBatchNorm2d', FrozenBatchNorm2d),
                      ('LN2d', LayerNorm2d), ('LayerNorm2d', LayerNorm2d)):
        assert ROOT.module_dict[name] is cls
    assert WEIGHT_INITIALIZERS.get('Pretrained') is PretrainedInit
    assert {'ResNet', 'VisionTransformer', 'SwinTransformer', 'ConvNeXt', 'RegNet',
            'CSPDarkNet', 'TIMMBackbone', 'TorchvisionBackbone', 'FPN'} <= set(MODELS.module_dict)


def test_frozen_bn_builds_from_a_downstream_scope():
    from mmcv.cnn import build_norm_layer

    from tests.toy_backbone import child_registry
    with child_registry('registration_test'), \
            DefaultScope.overwrite_default_scope('registration_test'):
        _, layer = build_norm_layer(dict(type='FrozenBN'), 8)
    assert isinstance(layer, FrozenBatchNorm2d)


def test_mmcls_scope_is_an_alias_not_a_copy():
    assert MMCLS_MODELS.scope == 'mmcls' and MMCLS_MODELS.parent is ROOT
    assert MMCLS_MODELS.module_dict is MODELS.module_dict
    assert MMCLS_MODELS.get('ResNet') is MODELS.get('ResNet')
    assert 'ResNet' in MMCLS_MODELS and 'NoSuchNet' not in MMCLS_MODELS
    with pytest.raises(TypeError, match="alias of 'mmbackbones'"):
        MMCLS_MODELS.register_module('X', module=FrozenBatchNorm2d)


def _package_lines(matches):
    """``(path, line number)`` of every line of the package's modules that ``matches``."""
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                with open(path) as f:
                    yield from ((path, i) for i, line in enumerate(f, 1) if matches(line))


def test_no_private_registry_api():
    private = re.compile(r'\._(module_dict|children|locations|imported|scope|parent)\b')
    hits = [f'{path}:{i}' for path, i in _package_lines(private.search)]
    assert hits == []


def test_safe_loading_is_installed_by_one_call():
    calls = [f'{os.path.relpath(path, PACKAGE)}:{i}' for path, i in
             _package_lines(lambda line: re.match(r'\s*register\(\)', line))]
    assert len(calls) == 1 and calls[0].startswith('checkpoint/__init__.py:'), calls
