"""The configs under configs/downstream/, checked without mmdet/mmseg (the main environment).

They inherit a base, swap the backbone with _delete_, import mmbackbones the way their scope
needs, and their hand-written channel lists equal what the backbone reports (what
`mmbackbones info CONFIG --neck mmdet|mmseg` prints). Building them inside mmdet/mmseg is the
downstream tier (tests/downstream).
"""
import glob
import os

import pytest
from mmengine.config import Config

from mmbackbones.integrations import neck_in_channels

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), 'configs', 'downstream')
DET = sorted(glob.glob(os.path.join(ROOT, 'mmdet', '*.py')))
SEG = sorted(glob.glob(os.path.join(ROOT, 'mmseg', '*.py')))
ALL = DET + SEG


def _id(path):
    return os.path.basename(path)[:-3]


def test_the_issue_list_is_covered():
    det_types = {Config.fromfile(p).model.type: Config.fromfile(p).model.backbone.type
                 for p in DET}
    assert {'RetinaNet', 'MaskRCNN'} <= set(det_types)
    backbones = {Config.fromfile(p).model.backbone.type for p in ALL}
    assert {'mmcls.ResNet', 'mmcls.TIMMBackbone', 'mmcls.VisionTransformer',
            'mmcls.ResNetV1c'} <= backbones
    assert any(t.startswith('mmbackbones.') for t in backbones)
    decode = {Config.fromfile(p).model.decode_head.type for p in SEG}
    assert {'UPerHead', 'ASPPHead'} <= decode


@pytest.mark.parametrize('path', ALL, ids=_id)
def test_inherits_and_swaps_the_backbone(path):
    text = open(path).read()
    assert '_base_' in text and '_delete_=True' in text
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    scope = backbone.type.split('.')[0]
    assert scope in ('mmcls', 'mmbackbones'), backbone.type
    if scope == 'mmcls':  # the mmcls scope exists once mmbackbones is imported
        assert cfg.custom_imports == dict(imports=['mmbackbones'], allow_failed_imports=False)
    else:  # mmengine imports mmbackbones.registry for the scope itself
        assert 'custom_imports' not in cfg
    # _delete_ dropped every key of the toolbox's own ResNet/ViT (e.g. mmseg's contract_dilation)
    assert 'contract_dilation' not in backbone and 'embed_dims' not in backbone
    assert cfg.default_scope == ('mmdet' if path in DET else 'mmseg')
    if path in SEG:
        assert cfg.model.pretrained is None  # mmseg would push it into our backbone


@pytest.mark.parametrize('path', DET, ids=_id)
def test_mmdet_neck_channels_match_the_backbone(path):
    cfg = Config.fromfile(path)
    if cfg.model.neck is None:  # the neck lives in a BackboneWithNeck, in_channels='auto'
        assert cfg.model.backbone.type.endswith('BackboneWithNeck')
        assert cfg.model.backbone.neck.in_channels == 'auto'
        return
    assert list(cfg.model.neck.in_channels) == neck_in_channels(path, style='mmdet')


@pytest.mark.parametrize('path', SEG, ids=_id)
def test_mmseg_channels_match_the_backbone(path):
    cfg = Config.fromfile(path)
    channels = neck_in_channels(path, style='mmseg')
    if cfg.model.get('neck'):
        assert list(cfg.model.neck.in_channels) == channels
        assert len(channels) == 4  # UPerNet on ViT: four layers out
    else:
        for head in (cfg.model.decode_head, cfg.model.auxiliary_head):
            assert head.in_channels == channels[head.in_index]
