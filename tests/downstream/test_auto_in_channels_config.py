"""``in_channels='auto'`` from a config alone, as mmdet's/mmseg's own ``tools/train.py`` builds it
(``Config.fromfile`` imports ``custom_imports``, ``Runner.from_cfg`` builds the model in the
config's ``default_scope``): the model type ``mmbackbones.FillAutoInChannels`` fills the channels
and builds the model named by ``model_type``. Without it mmseg's head asserts on the string."""
import os
import textwrap

import pytest
import torch

from tests.downstream import _common

mmdet = _common.require('mmdet')
mmseg = _common.require('mmseg')

from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

PSPNET = """
custom_imports = dict(imports=['mmbackbones'], allow_failed_imports=False)
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
loss = dict(type='CrossEntropyLoss', loss_weight=1.0)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1],
                           size=(64, 64)),
    backbone=dict(type='mmbackbones.mmseg.ResNetV1c', depth=18),
    decode_head=dict(type='PSPHead', in_channels='auto', in_index=3, channels=16,
                     pool_scales=(1, 2), num_classes=3, norm_cfg=norm_cfg, loss_decode=loss),
    auxiliary_head=dict(type='FCNHead', in_channels='auto', in_index=2, channels=8, num_convs=1,
                        num_classes=3, norm_cfg=norm_cfg, loss_decode=loss),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
"""
# the two lines a user adds (README "In mmdet / mmseg configs")
FILL = """
model = dict(type='mmbackbones.FillAutoInChannels', model_type='EncoderDecoder')
"""


def _runner_model(tmp_path, text, name):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = f'{name}-{os.getpid()}-{id(cfg)}'  # a fresh DefaultScope instance
    try:
        return Runner.from_cfg(cfg).model
    finally:
        DefaultScope._instance_dict.pop(cfg.experiment_name, None)


def test_stock_runner_fails_on_auto_without_the_wrapper(tmp_path):
    with pytest.raises(AssertionError):  # mmseg's bare assert on in_channels='auto'
        _runner_model(tmp_path, PSPNET, 'pspnet_auto.py')


def test_mmseg_heads_get_their_channels_from_a_config(tmp_path):
    (tmp_path / 'base.py').write_text(textwrap.dedent(PSPNET))
    model = _runner_model(tmp_path, "_base_ = ['./base.py']\n" + FILL, 'pspnet_filled.py')
    assert type(model).__name__ == 'EncoderDecoder'
    assert model.decode_head.in_channels == 512 and model.auxiliary_head.in_channels == 256
    model.eval()
    with torch.no_grad():
        out = model._forward(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 3, 2, 2)  # stride 32


def test_mmdet_neck_gets_its_channels_from_a_config(tmp_path):
    base = os.path.join(_common.CONFIG_ROOT, '_base_', 'models', 'retinanet_r50_fpn.py')
    text = f"""
    _base_ = [{base!r}]
    custom_imports = dict(imports=['mmbackbones'], allow_failed_imports=False)
    default_scope = 'mmdet'
    model = dict(type='mmbackbones.FillAutoInChannels', model_type='RetinaNet',
                 backbone=dict(_delete_=True, type='mmbackbones.mmdet.ResNet', depth=18),
                 neck=dict(in_channels='auto'))
    """
    model = _runner_model(tmp_path, text, 'retinanet_auto.py')
    assert type(model).__name__ == 'RetinaNet'
    assert model.neck.in_channels == [64, 128, 256, 512]
