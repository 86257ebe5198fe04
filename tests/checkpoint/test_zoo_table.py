"""The zoo's rows are consistent: every entry names a shipped config that builds with its arch,
a converter for its format, a URL of the source's published shape and a plausible result for
its task (ImageNet top-1, COCO box AP, mIoU; none for pre-training weights). Nothing is
downloaded; the loader is exercised with files made here (in the cache, or served from
127.0.0.1): a detector's whole-model checkpoint loads its backbone part through the zoo name."""
import collections
import copy
import os
import re

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint import zoo as zoo_mod
from mmbackbones.checkpoint.converters import available_converters
from mmbackbones.checkpoint.download import cache_path_for, hash_prefix_from_url
from mmbackbones.model_configs import load_model_config, model_names

ENTRIES = zoo_mod.load_zoo()
NATIVE = {'ResNet': 'resnet', 'ResNetV1c': 'resnet', 'ResNetV1d': 'resnet',
          'VisionTransformer': 'vit', 'ConvNeXt': 'convnext', 'SwinTransformer': 'swin',
          'RegNet': 'regnet', 'CSPDarkNet': 'csp', 'CSPResNet': 'csp', 'CSPResNeXt': 'csp',
          'HRNet': 'hrnet', 'ResNeSt': 'resnest', 'Res2Net': 'res2net', 'BEiTViT': 'beit',
          'Darknet': 'darknet', 'MobileNetV2': 'efficientnet', 'MobileNetV3': 'efficientnet',
          'EfficientNet': 'efficientnet', 'EfficientNetV2': 'efficientnet', 'PCPVT': 'twins',
          'SVT': 'twins', 'PyramidVisionTransformerV2': 'pvt_v2'}
# classification families of the detector/segmentor, official and pre-training rows (no timm or
# mmpretrain weights row required of them)
DENSE = {'CSPNeXt': 'cspnext', 'YOLOXCSPDarknet': 'yolox_cspdarknet',
         'PyramidVisionTransformer': 'pvt', 'MixVisionTransformer': 'mit', 'BEiT': 'beit',
         'MAE': 'mae', 'MSCAN': 'mscan', 'PoolFormer': 'poolformer', 'FocalNet': 'focalnet'}
NATIVE['VGG'] = 'vgg'
DENSE.update({'DetectoRS_ResNet': 'detectors', 'TridentResNet': 'trident', 'SSDVGG': 'vgg',
              'HourglassNet': 'hourglass', 'STDCContextPathNet': 'stdc', 'STDCNet': 'stdc'})
# families without an mmpretrain weights row, and why
NO_MMPRETRAIN_WEIGHTS = {
    'resnest': "mmpretrain 1.2.0's metafiles list no ResNeSt weights",
    'darknet': "timm's darknet53 only: mmpretrain has no Darknet",
    'pvt_v2': 'mmpretrain has no PVT; its weights are the official/timm ones',
}
URL_SHAPES = {
    'mmcls': r'https://download\.openmmlab\.com/mmclassification/v0/[\w.-]+/[\w./-]+-[0-9a-f]{8}'
             r'\.pth',
    'torchvision': r'https://download\.pytorch\.org/models/[\w.]+-[0-9a-f]{8}\.pth',
    'timm': r'https://huggingface\.co/timm/(?P<name>[\w.]+)/resolve/main/model\.safetensors',
    'mmdet': r'https://download\.openmmlab\.com/mmdetection/v[23]\.0/[\w./%-]+-[0-9a-f]{8}\.pth',
    'mmseg': r'https://download\.openmmlab\.com/mmsegmentation/v0\.5/[\w./-]+-[0-9a-f]{8}\.pth',
    'official': r'https://github\.com/(whai362/PVT|microsoft/FocalNet)/releases/download/[\w.]+/'
                r'[\w.]+\.pth',
}
# format -> the converters that may take the file (after ``prefix`` is removed)
FORMAT_CONVERTERS = {'mmpretrain': 'mmpretrain_classifier', 'torchvision': 'torchvision_resnet',
                     'official': ('official_pvt', 'detrex_focalnet')}


def _backbone(entry):
    """The shipped config's backbone with the entry's arch keys on top."""
    cfg = load_model_config(entry['config']).model.backbone.to_dict()
    assert cfg['type'].split('.')[-1] == entry['arch']['type'], entry['name']
    for key, value in entry['arch'].items():
        if key != 'type':
            cfg[key] = value
    return cfg


def test_every_native_family_has_mmpretrain_and_timm_weights():
    families = {}
    for e in ENTRIES:
        if e['task'] != 'classification' or e['source'] not in ('mmcls', 'torchvision', 'timm'):
            assert e['arch']['type'] in {**NATIVE, **DENSE}, e['name']
            continue
        families.setdefault(NATIVE[e['arch']['type']], set()).add(e['source'])
    assert set(families) == set(NATIVE.values())
    for family, sources in families.items():
        assert 'mmcls' in sources or family in NO_MMPRETRAIN_WEIGHTS, family
        if family != 'csp':  # timm CSP weights have no converter; mmpretrain's are their port
            assert 'timm' in sources, family
    assert len(ENTRIES) >= 80


@pytest.mark.parametrize('entry', ENTRIES, ids=[e['name'] for e in ENTRIES])
def test_entry_row(entry):
    assert entry['config'] in model_names(), entry['name']
    match = re.fullmatch(URL_SHAPES[entry['source']], entry['url'])
    assert match, entry['url']
    if entry['source'] == 'timm':
        assert match.group('name') == entry['name']
    assert zoo_mod.check_entry(entry) == entry  # task, metric, dataset and scores agree
    if entry['task'] == 'classification':
        assert entry['dataset'] == 'ImageNet-1k' and entry['top1'] == entry['score']
    else:
        assert entry['top1'] is None, entry['name']
    if entry['source'] in ('mmdet', 'mmseg'):
        # copied from the installed metafile the row names; the hash is the file name's prefix
        assert entry['metafile'].startswith(entry['source']), entry['name']
        assert entry['sha256'] is None and hash_prefix_from_url(entry['url'])
    if entry['task'] in ('detection', 'segmentation'):
        # a whole detector/segmentor: only the backbone part, in its library's layout
        assert (entry['prefix'], entry['format']) == ('backbone.', entry['source'])
        return
    if entry['format'] in ('mmdet', 'mmseg'):
        return  # CSPNeXt's classifier, MSCAN's backbone file: the library's own names
    converter = FORMAT_CONVERTERS.get(entry['format'], f'timm_{NATIVE.get(entry["arch"]["type"])}')
    known = {c.name for c in available_converters()}
    assert set([converter] if isinstance(converter, str) else converter) & known, entry['name']
    assert (entry['prefix'] == 'backbone.') == (entry['format'] == 'mmpretrain')


@pytest.mark.parametrize('field, value, message', [
    ('metric', 'mIoU', "a detection row reports metric 'box_AP', got metric 'mIoU'"),
    ('task', 'tracking', "task must be one of 'classification', 'detection', 'segmentation', "
                         "'pretraining', got 'tracking'"),
    ('dataset', 'ADE20K', "a detection row is measured on COCO, got dataset 'ADE20K'"),
    ('score', 404.0, 'box_AP must be a number in (15.0, 70.0) as published, got 404.0'),
    ('top1', 40.2, 'top1 means ImageNet-1k top-1 of a classification row; a detection row has '
                   'top1 null'),
])
def test_a_row_that_disagrees_with_its_task_is_refused(field, value, message):
    row = dict(zoo_mod.get_entry('faster-rcnn_r50_fpn_1x_coco'), **{field: value})
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        zoo_mod.check_entry(row)
    assert "zoo row 'faster-rcnn_r50_fpn_1x_coco'" in str(info.value)


def test_classification_rows_keep_top1_and_pretraining_rows_have_no_metric():
    r50 = zoo_mod.check_entry({k: v for k, v in zoo_mod.get_entry('resnet50').items()
                               if k not in ('task', 'metric', 'score')})
    assert (r50['task'], r50['metric'], r50['score'], r50['top1']) == \
        ('classification', 'top1', 76.55, 76.55)
    with pytest.raises(ValueError, match='top1 is the ImageNet-1k top-1 of a classification row '
                                         'and must equal its score'):
        zoo_mod.check_entry(dict(r50, top1=70.0))
    with pytest.raises(ValueError, match="a classification row is measured on ImageNet-1k, got "
                                         "dataset 'LVD-142M'"):
        zoo_mod.check_entry(dict(r50, dataset='LVD-142M'))
    dino = zoo_mod.get_entry('vit_small_patch14_dinov2.lvd142m')
    assert (dino['task'], dino['metric'], dino['score'], dino['top1']) == \
        ('pretraining', None, None, None)
    with pytest.raises(ValueError, match="a pretraining row reports metric None, got metric "
                                         "'top1'"):
        zoo_mod.check_entry(dict(dino, metric='top1', score=80.0))
    tasks = {e['task'] for e in ENTRIES}
    assert tasks == set(zoo_mod.TASKS)


def test_dense_rows_cover_the_served_families():
    """At least one detector or segmentor row per family mmdet's/mmseg's metafiles publish
    for a backbone we serve."""
    dense = collections.defaultdict(set)
    for e in ENTRIES:
        if e['task'] in ('detection', 'segmentation'):
            dense[e['family']].add(e['task'])
    assert set(dense) >= {'hrnet', 'resnest', 'res2net', 'cspnext', 'yolox_cspdarknet',
                          'darknet', 'mobilenet_v2', 'mobilenet_v3', 'efficientnet', 'pvt',
                          'mit', 'twins', 'beit', 'mae', 'mscan', 'swin', 'convnext', 'resnet',
                          'regnet', 'vit', 'poolformer', 'detectors', 'trident', 'vgg',
                          'hourglass', 'stdc'}, sorted(dense)
    assert {'detection', 'segmentation'} <= set().union(*dense.values())
    from mmbackbones.cli import build_parser
    import argparse
    (sub, ) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    (source, ) = [a for a in sub.choices['zoo']._actions if a.dest == 'source']
    assert tuple(source.choices) == zoo_mod.ZOO_SOURCES


_BUILDS = sorted({repr(sorted(e['arch'].items())) + '|' + e['config']: e
                  for e in ENTRIES}.values(), key=lambda e: e['name'])


@pytest.mark.parametrize('entry', _BUILDS, ids=[e['name'] for e in _BUILDS])
def test_entry_config_builds_with_its_arch(entry):
    cfg = _backbone(entry)
    if (cfg.get('sac') or {}).get('use_deform'):
        try:  # deformable SAC (DetectoRS rows): mmcv's compiled op, or a refusal saying so
            from mmcv.ops import deform_conv2d  # noqa: F401
        except ImportError:
            with pytest.raises(ImportError, match='full mmcv'):
                build_backbone(cfg)
            return
    try:
        with torch.device('meta'):  # architecture only: no memory, no init time
            model = build_backbone(copy.deepcopy(cfg))
    except Exception:  # noqa: BLE001 - families reading tensor values in __init__
        model = build_backbone(cfg)
    assert model.out_channels
    for key, value in entry['arch'].items():
        if key in ('depth', 'img_size', 'window_size', 'patch_size'):
            stored = getattr(model, key, value)
            assert stored in (value, (value, value)), (entry['name'], key, stored)


def test_pretrained_for_a_config():
    names = {e['name'] for e in zoo_mod.pretrained_for('convnext-tiny')}
    assert {'convnext-tiny_32xb128_in1k', 'convnext_tiny.fb_in1k'} <= names


def test_zoo_entry_loads_from_the_cache(tmp_path, monkeypatch):
    """timm://regnetx_002.pycls_in1k through init_cfg: the file is found in
    $MMBACKBONES_HOME/checkpoints (made here from timm's model), converted and loaded."""
    timm = pytest.importorskip('timm', reason='timm is not installed')
    from safetensors.torch import save_file
    monkeypatch.setenv('MMBACKBONES_HOME', str(tmp_path))
    entry = zoo_mod.resolve('timm://regnetx_002.pycls_in1k')
    path = cache_path_for(entry['url'])
    assert path.startswith(str(tmp_path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.manual_seed(0)
    source = timm.create_model('regnetx_002', pretrained=False)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    cfg = _backbone(entry)
    cfg['init_cfg'] = dict(type='Pretrained', checkpoint='timm://regnetx_002.pycls_in1k')
    model = build_backbone(cfg)
    model.init_weights()
    assert torch.equal(model.conv1.weight, source.stem.conv.weight)
    assert torch.equal(model.bn1.running_var, source.stem.bn.running_var)
    last = source.s4.b1.conv3.conv.weight  # timm's last stage, first block's 1x1 conv
    assert torch.equal(model.layer4[0].conv3.weight, last)
