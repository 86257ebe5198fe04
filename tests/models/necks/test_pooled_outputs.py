"""Every neck entry point refuses a pooled (stride None) backbone output with one error that
names the backbone argument to change (issue: a detector crashed deep in conv2d)."""
import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.analysis.info import neck_settings
from mmbackbones.integrations import fill_auto_in_channels, neck_in_channels
from mmbackbones.models.necks import FPN, spatial_fix

CONVNEXT = dict(type='ConvNeXt', arch='tiny', out_indices=(3, ))
VIT = dict(type='VisionTransformer', arch='deit-tiny', img_size=32, patch_size=16)
CASES = [(CONVNEXT, 'gap_before_final_norm=False'), (VIT, "out_type='featmap'"),
         (dict(VIT, out_type='avg_featmap'), "out_type='featmap'")]
NECK = dict(type='FPN', in_channels='auto', out_channels=8, num_outs=2)


@pytest.mark.parametrize('cfg,fix', CASES)
def test_backbone_with_neck_names_the_fix(cfg, fix):
    with pytest.raises(ValueError, match='pooled.*' + fix.replace('(', r'\(')):
        build_backbone(cfg, neck=NECK)


@pytest.mark.parametrize('cfg,fix', CASES)
@pytest.mark.parametrize('style', ['mmdet', 'mmseg'])
def test_neck_in_channels_and_info_names_the_fix(cfg, fix, style):
    with pytest.raises(ValueError, match=f'stride None.*{fix}'):
        neck_in_channels(cfg, style)
    with pytest.raises(ValueError, match=fix):
        neck_settings(build_backbone(cfg), style)


@pytest.mark.parametrize('cfg,fix', CASES)
def test_fill_auto_in_channels_names_the_fix(cfg, fix):
    model = dict(type='RetinaNet', backbone=cfg, neck=dict(NECK))
    with pytest.raises(ValueError, match=fix):
        fill_auto_in_channels(model, 'mmdet')


def test_fixed_configs_pass():
    """The suggested argument really gives maps the neck accepts."""
    fixed = dict(CONVNEXT, gap_before_final_norm=False)
    assert neck_in_channels(fixed) == [768]
    vit = dict(VIT, out_type='featmap')
    model = build_backbone(vit, neck=NECK)
    outs = model(torch.zeros(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [8, 8]


def test_our_fpn_refuses_a_vector_at_forward():
    fpn = FPN(in_channels=[768], out_channels=8, num_outs=1)
    with pytest.raises(ValueError, match=r'shape \(1, 768\).*gap_before_final_norm=False'):
        fpn([torch.zeros(1, 768)])


def test_spatial_fix_per_family():
    assert spatial_fix('mmcls.ConvNeXt') == 'build it with gap_before_final_norm=False'
    assert 'features_only=True' in spatial_fix('TIMMBackbone')
    assert spatial_fix('Unknown') == 'build it with outputs that are feature maps'
