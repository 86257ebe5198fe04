"""neck_in_channels / fill_auto_in_channels: the channel lists mmdet and mmseg configs need."""
import pytest
import torch
from mmengine.config import Config

from mmbackbones.integrations import backbone_out_channels, fill_auto_in_channels, neck_in_channels
from tests.toy_backbone import ToyBackbone  # (8, 16, 32) at strides 4, 8, 16

pytestmark = pytest.mark.usefixtures('toy_registered')  # ToyBackbone by type name


def test_neck_in_channels_from_every_kind_of_source(tmp_path):
    cfg = dict(type='ToyBackbone', out_indices=(1, 2))
    assert neck_in_channels(cfg) == [16, 32]
    assert neck_in_channels(cfg, style='mmseg') == [16, 32]
    assert neck_in_channels(dict(type='mmcls.ToyBackbone')) == [8, 16, 32]
    assert neck_in_channels(dict(backbone=cfg, neck=dict(type='FPN'))) == [16, 32]
    assert neck_in_channels(ToyBackbone(out_indices=(0,))) == [8]
    path = tmp_path / 'det.py'
    path.write_text("model = dict(type='RetinaNet', backbone=dict(type='mmbackbones.ToyBackbone', "
                    "out_indices=(0, 2), init_cfg=dict(type='Pretrained', "
                    "checkpoint='/nonexistent.pth')), neck=dict(type='FPN'))\n")
    # init_cfg is not applied: the checkpoint is never read
    assert neck_in_channels(str(path)) == [8, 32]
    assert neck_in_channels(Config.fromfile(str(path)), 'mmdet') == [8, 32]


def test_metadata_build_does_not_allocate():
    # The backbone is built on the meta device: the helper never needs real memory.
    import mmbackbones.integrations.downstream as ds
    model = ds._build_for_metadata(dict(type='ToyBackbone'))
    assert next(model.parameters()).device == torch.device('meta')


def test_errors():
    with pytest.raises(ValueError, match="style must be one of 'mmdet', 'mmseg'"):
        neck_in_channels(dict(type='ToyBackbone'), style='detectron2')
    with pytest.raises(KeyError, match='ToyBackbone'):
        neck_in_channels(dict(type='ToyBackbones'))
    with pytest.raises(ValueError, match='out_indices'):
        neck_in_channels(dict(type='ToyBackbone', out_indices=(5,)))
    with pytest.raises(TypeError, match='backbone config'):
        neck_in_channels(42)
    with pytest.raises(TypeError, match='out_channels'):
        backbone_out_channels(torch.nn.Linear(2, 2))


def test_fill_auto_in_channels_mmdet():
    model = dict(type='RetinaNet', backbone=dict(type='ToyBackbone'),
                 neck=dict(type='FPN', in_channels='auto', out_channels=8, num_outs=5),
                 bbox_head=dict(type='RetinaHead', in_channels=8))
    filled = fill_auto_in_channels(model)
    assert filled['neck']['in_channels'] == [8, 16, 32]
    assert filled['bbox_head']['in_channels'] == 8
    assert model['neck']['in_channels'] == 'auto'  # the input is not modified
    chained = dict(backbone=dict(type='ToyBackbone'),
                   neck=[dict(type='FPN', in_channels='auto'), dict(type='X', in_channels='auto')])
    with pytest.raises(ValueError, match=r'neck\[1\]'):
        fill_auto_in_channels(chained)
    with pytest.raises(KeyError, match='backbone'):
        fill_auto_in_channels(dict(type='RetinaNet'))


def test_fill_auto_in_channels_mmseg_heads():
    model = dict(type='EncoderDecoder', backbone=dict(type='ToyBackbone'),
                 decode_head=dict(type='UPerHead', in_channels='auto', in_index=[0, 1, 2]),
                 auxiliary_head=[dict(type='FCNHead', in_channels='auto', in_index=1),
                                 dict(type='FCNHead', in_channels=4, in_index=0)])
    filled = fill_auto_in_channels(model, style='mmseg')
    assert filled['decode_head']['in_channels'] == [8, 16, 32]
    assert filled['auxiliary_head'][0]['in_channels'] == 16
    assert filled['auxiliary_head'][1]['in_channels'] == 4
    # mmdet style leaves heads alone (their input is the neck's output)
    assert fill_auto_in_channels(model)['decode_head']['in_channels'] == 'auto'
    bad = dict(model, decode_head=dict(type='ASPPHead', in_channels='auto', in_index=3))
    with pytest.raises(ValueError, match='in_index=3 is out of range'):
        fill_auto_in_channels(bad, style='mmseg')
    after_neck = dict(model, neck=dict(type='MultiLevelNeck', in_channels='auto'))
    with pytest.raises(ValueError, match='after a neck'):
        fill_auto_in_channels(after_neck, style='mmseg')
