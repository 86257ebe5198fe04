"""Shipped configs (``mmbackbones::<arch>/<file>.py``, model names) for a pip-installed package."""
import glob
import os
import subprocess
import sys
import zipfile

import pytest
from mmengine.config import Config

import mmbackbones
from mmbackbones import build_backbone
from mmbackbones.analysis.common import load_backbone_config
from mmbackbones.model_configs import (_for_our_package, config_root, load_model_config,
                                       model_names, resolve_model_name)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_config_root_is_the_top_level_tree():
    assert os.path.samefile(config_root(), os.path.join(REPO, 'configs'))


def test_mim_scope_base_in_a_user_config(tmp_path):
    user = tmp_path / 'my_config.py'
    user.write_text("_base_ = 'mmbackbones::resnet/resnet50.py'\n"
                    "model = dict(backbone=dict(frozen_stages=1))\n")
    cfg = Config.fromfile(str(user))
    assert cfg.model.backbone.depth == 50 and cfg.model.backbone.frozen_stages == 1
    assert build_backbone(cfg.model.backbone).frozen_stages == 1


def test_other_packages_go_to_mmengine_with_an_install_hint():

    def no_pkg_resources(package):
        raise ModuleNotFoundError("No module named 'pkg_resources'", name='pkg_resources')

    wrapped = _for_our_package(lambda: '/ours', no_pkg_resources)
    assert wrapped('mmbackbones') == '/ours'
    with pytest.raises(ModuleNotFoundError, match=r"setuptools<81.*mmdet::"):
        wrapped('mmdet')


@pytest.mark.parametrize('name,expected', [
    ('resnet50', 'resnet/resnet50.py'), ('convnext_tiny', 'convnext/convnext-tiny.py'),
    ('Swin-Tiny_224', 'swin/swin-tiny_224.py'), ('timm/convnext_tiny', 'timm/convnext_tiny.py'),
    ('resnet/resnet50-v1c', 'resnet/resnet50-v1c.py')])
def test_model_names_resolve_to_shipped_configs(name, expected):
    assert resolve_model_name(name)['config'].endswith(os.path.join(*expected.split('/')))


def test_every_plain_name_is_a_model_config():
    names = model_names()
    assert len([n for n in names if '/' not in n]) >= 50
    assert not any(n.startswith(('_base_', 'downstream')) for n in names)


def test_wrapped_model_names():
    pytest.importorskip('timm', reason='timm is not installed')
    cfg, backbone_cfg = load_backbone_config('timm.resnet18', {'model.backbone.out_indices': (4,)})
    assert backbone_cfg == dict(type='TIMMBackbone', model_name='resnet18', out_indices=(4, ))
    assert build_backbone(backbone_cfg).out_channels == (512, )


@pytest.mark.parametrize('name,hint', [('resnt50', 'Did you mean resnet50'),
                                       ('timm.convnxt_tiny', "'convnext_tiny'")])
def test_unknown_names_suggest_close_ones(name, hint):
    with pytest.raises(KeyError, match=hint):
        load_model_config(name)


def test_missing_py_file_is_not_read_as_a_name(tmp_path):
    with pytest.raises(FileNotFoundError, match='config file not found'):
        load_model_config(str(tmp_path / 'resnet50.py'))


def test_cli_takes_a_model_name(capsys):
    from mmbackbones.cli import main
    assert main(['info', 'resnet18', '--input-size', '32', '32', '--no-flops', '--no-memory',
                 '--json']) == 0
    assert '"channels": 512' in capsys.readouterr().out
    assert main(['print-config', 'vit-tiny-p16_224']) == 0
    assert "arch='deit-tiny'" in capsys.readouterr().out


def test_wheel_ships_the_configs(tmp_path):
    """A regular (non-editable) wheel holds a copy of configs/ under mmbackbones/.mim/."""
    out = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                          '--no-build-isolation', '-w', str(tmp_path), REPO],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel, ) = glob.glob(str(tmp_path / 'mmbackbones-*.whl'))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {os.path.relpath(p, REPO).replace(os.sep, '/')
               for p in glob.glob(os.path.join(REPO, 'configs', '**', '*.py'), recursive=True)}
    assert {f'mmbackbones/.mim/{p}' for p in shipped} <= names
    assert 'mmbackbones/.mim/model-index.yml' in names


def test_import_registers_the_scope():
    from mmengine.config.utils import MODULE2PACKAGE
    assert MODULE2PACKAGE['mmbackbones'] == 'mmbackbones'
    assert mmbackbones.__version__
