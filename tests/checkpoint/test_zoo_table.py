"""The zoo's rows are consistent: every entry names a shipped config that builds with its arch,
a converter for its format, a URL of the source's published shape and a plausible top-1.
Nothing is downloaded; the loader is exercised with a file made here, in the cache."""
import copy
import os
import re

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint import zoo as zoo_mod
from mmbackbones.checkpoint.converters import available_converters
from mmbackbones.checkpoint.download import cache_path_for
from mmbackbones.model_configs import load_model_config, model_names

ENTRIES = zoo_mod.load_zoo()
NATIVE = {'ResNet': 'resnet', 'ResNetV1c': 'resnet', 'ResNetV1d': 'resnet',
          'VisionTransformer': 'vit', 'ConvNeXt': 'convnext', 'SwinTransformer': 'swin',
          'RegNet': 'regnet', 'CSPDarkNet': 'csp', 'CSPResNet': 'csp', 'CSPResNeXt': 'csp',
          'HRNet': 'hrnet', 'ResNeSt': 'resnest', 'Res2Net': 'res2net', 'BEiTViT': 'beit',
          'Darknet': 'darknet', 'MobileNetV2': 'efficientnet', 'MobileNetV3': 'efficientnet',
          'EfficientNet': 'efficientnet', 'EfficientNetV2': 'efficientnet', 'PCPVT': 'twins',
          'SVT': 'twins', 'PyramidVisionTransformerV2': 'pvt_v2'}
NATIVE['VGG'] = 'vgg'
# families without an mmpretrain weights row, and why
NO_MMPRETRAIN_WEIGHTS = {
    'resnest': "mmpretrain 1.2.0's metafiles list no ResNeSt weights",
    'darknet': "timm's darknet53 only: mmpretrain has no Darknet",
    'pvt_v2': 'mmpretrain has no PVT; its weights are the official/timm ones',
}
# pre-training sets of weights published without an ImageNet-1k top-1
SELF_SUPERVISED = ('LVD-142M', 'ImageNet-22k')
URL_SHAPES = {
    'mmcls': r'https://download\.openmmlab\.com/mmclassification/v0/[\w.-]+/[\w./-]+-[0-9a-f]{8}'
             r'\.pth',
    'torchvision': r'https://download\.pytorch\.org/models/[\w.]+-[0-9a-f]{8}\.pth',
    'timm': r'https://huggingface\.co/timm/(?P<name>[\w.]+)/resolve/main/model\.safetensors',
}


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
    if entry['dataset'] == 'ImageNet-1k':
        # the lowest published: MobileNetV3-Small-0.5, 57.9
        assert entry['top1'] is not None and 55.0 < entry['top1'] < 92.0, entry['name']
    else:  # self-supervised / MIM weights without a classifier publish no top-1
        assert entry['dataset'] in SELF_SUPERVISED, entry['name']
        assert entry['top1'] is None, entry['name']
    converter = {'mmpretrain': 'mmpretrain_classifier', 'torchvision': 'torchvision_resnet',
                 'timm': f'timm_{NATIVE[entry["arch"]["type"]]}'}[entry['format']]
    assert converter in {c.name for c in available_converters()}, entry['name']
    assert (entry['prefix'] == 'backbone.') == (entry['format'] == 'mmpretrain')


_BUILDS = sorted({repr(sorted(e['arch'].items())) + '|' + e['config']: e
                  for e in ENTRIES}.values(), key=lambda e: e['name'])


@pytest.mark.parametrize('entry', _BUILDS, ids=[e['name'] for e in _BUILDS])
def test_entry_config_builds_with_its_arch(entry):
    cfg = _backbone(entry)
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
