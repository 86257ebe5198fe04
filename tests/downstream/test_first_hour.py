"""A new user's first configs in real mmdet 3.3 / mmseg 1.2 (issue "a real user's first hour").

* a pooled backbone output (ConvNeXt's default ``gap_before_final_norm=True``, ViT's default
  ``cls_token``) meeting a neck fails at build time with the backbone argument to change, in
  each route a user takes: our ``BackboneWithNeck`` inside an mmdet config,
  ``fill_auto_in_channels`` on an mmdet/mmseg model dict;
* ``_base_ = 'mmdet::...'`` / ``'mmseg::...'`` configs load (mmengine needs pkg_resources from
  setuptools < 81, pinned in requirements/downstream.txt) next to ``mmbackbones::`` bases.
"""
import pytest

from tests.downstream import _common

mmdet = _common.require('mmdet')
mmseg = _common.require('mmseg')

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from mmbackbones.integrations import fill_auto_in_channels  # noqa: E402

CONVNEXT = dict(type='mmcls.ConvNeXt', arch='tiny', out_indices=(1, 2, 3))
VIT = dict(type='mmcls.VisionTransformer', arch='deit-tiny', img_size=64, patch_size=16,
           out_indices=(2, 5, 8, 11))


def _needs_pkg_resources():
    import importlib.util
    if importlib.util.find_spec('pkg_resources') is None:
        pytest.skip('pkg_resources is not installed (setuptools >= 81): `pip install '
                    '"setuptools<81"` as requirements/downstream.txt pins it')


@pytest.mark.parametrize('backbone,fix', [(CONVNEXT, 'gap_before_final_norm=False'),
                                          (VIT, "out_type='featmap'")])
def test_mmdet_backbone_with_neck_names_the_fix(backbone, fix):
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    init_default_scope('mmdet')
    neck = dict(type='FPN', in_channels='auto', out_channels=32, num_outs=4)
    with pytest.raises(ValueError, match=f'pooled.*{fix}'):
        MMDET_MODELS.build(dict(type='mmbackbones.BackboneWithNeck', backbone=backbone,
                                neck=neck))
    fixed = dict(backbone, **({'gap_before_final_norm': False} if 'ConvNeXt' in backbone['type']
                              else {'out_type': 'featmap'}))
    model = MMDET_MODELS.build(dict(type='mmbackbones.BackboneWithNeck', backbone=fixed,
                                    neck=neck))
    assert model.out_channels == (32, ) * 4


def _config(path, text: str):
    """The config ``text`` written to ``path`` and read by mmengine (its ``_base_`` is a
    package's, which mmengine finds through pkg_resources)."""
    _needs_pkg_resources()
    path.write_text(text)
    return Config.fromfile(str(path))


def _assert_fix_named_then_filled(cfg, toolbox: str, match: str, fix: dict, head: str):
    """``'auto'`` is refused naming the fix; with ``fix`` applied to the backbone it is filled:
    returns the filled ``in_channels`` of ``head``."""
    with pytest.raises(ValueError, match=match):
        fill_auto_in_channels(cfg.model, toolbox)
    for key, value in fix.items():
        setattr(cfg.model.backbone, key, value)
    return fill_auto_in_channels(cfg.model, toolbox)[head]['in_channels']


def test_mmdet_base_config_with_pooled_backbone_and_auto_neck(tmp_path):
    cfg = _config(tmp_path / 'retinanet_convnext.py',
                  "_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'\n"
                  "custom_imports = dict(imports=['mmbackbones'], allow_failed_imports=False)\n"
                  f"model = dict(backbone=dict(_delete_=True, **{CONVNEXT!r}),\n"
                  "             neck=dict(in_channels='auto'))\n")
    assert cfg.model.neck.type == 'FPN'  # the base came from mmdet's package
    assert _assert_fix_named_then_filled(
        cfg, 'mmdet', 'stride None.*gap_before_final_norm=False',
        dict(gap_before_final_norm=False), 'neck') == [192, 384, 768]


def test_mmseg_base_config_with_a_class_token_backbone(tmp_path):
    cfg = _config(tmp_path / 'upernet_vit.py',
                  "_base_ = 'mmseg::_base_/models/upernet_vit-b16_ln_mln.py'\n"
                  f"model = dict(pretrained=None, backbone=dict(_delete_=True, **{VIT!r}), "
                  "neck=None,\n"
                  "             decode_head=dict(in_channels='auto'), auxiliary_head=None)\n")
    assert cfg.model.decode_head.type == 'UPerHead'  # the base came from mmseg's package
    assert _assert_fix_named_then_filled(
        cfg, 'mmseg', "VisionTransformer outputs? .* pooled.*out_type='featmap'",
        dict(out_type='featmap'), 'decode_head') == [192] * 4
