import pytest

from mmbackbones import build_backbone_from_config, load_config
from mmbackbones.builder import backbone_cfg_from_config
from tests.toy_backbone import ToyBackbone

pytestmark = pytest.mark.usefixtures('toy_registered')  # ToyBackbone by type name

BASE = "backbone = dict(type='ToyBackbone', out_indices=(0, 1, 2), frozen_stages=-1)\n"


def _write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('text', [
    "model = dict(backbone=dict(type='ToyBackbone', out_indices=(1,)))\n",
    "backbone = dict(type='ToyBackbone', out_indices=(1,))\n",
    "model = dict(type='ToyBackbone', out_indices=(1,))\n",
])
def test_backbone_found_under_model_backbone_or_model(tmp_path, text):
    model = build_backbone_from_config(_write(tmp_path / 'cfg.py', text))
    assert isinstance(model, ToyBackbone) and model.out_names == ('stage2',)


def test_base_inheritance_delete_and_overrides(tmp_path):
    _write(tmp_path / 'base.py', BASE)
    child = _write(tmp_path / 'child.py',
                   "_base_ = ['./base.py']\n"
                   "backbone = dict(_delete_=True, type='ToyBackbone', out_indices=(2,))\n")
    cfg = load_config(child)
    assert 'frozen_stages' not in cfg.backbone
    model = build_backbone_from_config(child, cfg_options={'backbone.frozen_stages': 1})
    assert model.frozen_stages == 1 and model.out_channels == (32,)


def test_missing_file_and_missing_backbone(tmp_path):
    with pytest.raises(FileNotFoundError, match='config file not found'):
        load_config(tmp_path / 'nope.py')
    path = _write(tmp_path / 'empty.py', 'optimizer = dict(lr=0.1)\n')
    with pytest.raises(KeyError, match='has no backbone'):
        backbone_cfg_from_config(load_config(path))
