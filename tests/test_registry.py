import os
import subprocess
import sys

import pytest
from mmengine.config import ConfigDict
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import DefaultScope

from mmbackbones import BACKBONES, MODELS, build_backbone
from tests.toy_backbone import ToyBackbone, child_registry

pytestmark = pytest.mark.usefixtures('toy_registered')  # ToyBackbone by type name



@pytest.fixture
def downstream():
    """A downstream library's registry (scope 'downstream_test'), removed after the test."""
    with child_registry('downstream_test') as registry:
        yield registry


def test_registry_is_a_child_of_mmengine_root():
    assert MODELS is BACKBONES
    assert MODELS.parent is MMENGINE_MODELS
    assert MODELS.scope == 'mmbackbones'
    assert 'mmbackbones' in MMENGINE_MODELS.children
    assert 'mmcls' in MMENGINE_MODELS.children


def test_build_from_dict_and_configdict():
    assert isinstance(build_backbone(dict(type='ToyBackbone')), ToyBackbone)
    model = build_backbone(ConfigDict(type='ToyBackbone', out_indices=[1]))
    assert model.out_names == ('stage2',)


@pytest.mark.parametrize('type_name', ['mmcls.ToyBackbone', 'mmbackbones.ToyBackbone'])
def test_downstream_registry_resolves_scoped_types(type_name, downstream):
    model = downstream.build(dict(type=type_name, out_indices=(0, 1)))
    assert isinstance(model, ToyBackbone)
    assert model.out_channels == (8, 16)


def test_unscoped_type_means_ours_under_another_default_scope(downstream):
    with DefaultScope.overwrite_default_scope('downstream_test'):
        assert isinstance(build_backbone(dict(type='ToyBackbone')), ToyBackbone)


@pytest.mark.parametrize('build', [
    lambda reg, t: build_backbone(dict(type=t)),
    lambda reg, t: reg.build(dict(type='mmcls.' + t)),
    lambda reg, t: reg.build(dict(type='mmbackbones.' + t)),
])
def test_unknown_type_suggests_close_names(build, downstream):
    with pytest.raises(KeyError) as info:
        build(downstream, 'ToyBackbon')
    message = str(info.value)
    assert "Unknown model type 'ToyBackbon'" in message
    assert "Did you mean 'ToyBackbone'" in message
    assert 'mmbackbones list' in message


def test_registered_toy_is_removed_afterwards():
    from tests.toy_backbone import registered

    class OtherToy(ToyBackbone):
        pass

    with child_registry('leftover_test'):
        assert 'leftover_test' in MMENGINE_MODELS.children
    assert 'leftover_test' not in MMENGINE_MODELS.children

    with registered(OtherToy):
        assert 'OtherToy' in MODELS and MODELS.get('OtherToy') is OtherToy
    assert 'OtherToy' not in MODELS and 'OtherToy' not in MODELS.module_dict


def test_membership_does_not_raise():
    assert 'ToyBackbone' in MODELS
    assert 'NoSuchBackbone' not in MODELS


def test_build_requires_type_and_a_mapping():
    with pytest.raises(KeyError, match='"type"'):
        build_backbone(dict(depth=50))
    with pytest.raises(TypeError, match='dict or ConfigDict'):
        build_backbone(['ResNet'])


def test_lazy_locations_resolve_without_importing_models(tmp_path):
    """A downstream registry finds 'mmbackbones.X' with no import of mmbackbones by the user."""
    code = (
        'import sys\n'
        'from mmengine.registry import MODELS, Registry\n'
        "reg = Registry('model', parent=MODELS, scope='downstream_test')\n"
        "assert 'mmbackbones' not in sys.modules\n"
        "m = reg.build(dict(type='mmbackbones.ResNet', depth=18, out_indices=(3,)))\n"
        "print(type(m).__module__, m.out_channels)\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 0, result.stderr
    assert 'mmbackbones.models.backbones.resnet (512,)' in result.stdout


def test_build_resnet_from_package_root():
    from mmbackbones import build_backbone as build
    model = build(dict(type='ResNet', depth=50, out_indices=(0, 1, 2, 3)))
    assert model.out_channels == (256, 512, 1024, 2048)
    assert build(dict(type='ResNet', depth=50)).out_channels == (2048, )  # mmpretrain's (3,)
