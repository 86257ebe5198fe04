"""The zoo's detector and segmentor rows against the installed mmdet 3.3 / mmseg 1.2.2.

1. Each row is what its metafile says: the model of that name in the metafile the row names,
   its weights URL, its dataset and its box AP / mIoU.
2. The backbone of that model's config, built by the library's own registry (the real class),
   has exactly the keys and shapes of the row's config (after the conversion the loader applies
   to that library's layout): the published whole-model file loads strictly through the zoo
   name. Architecture only (meta device), so every row is checked.
3. The real weights path end to end: the upstream backbone, randomised, saved as a whole
   detector/segmentor checkpoint, served from 127.0.0.1 and loaded by ``Pretrained`` with the
   zoo name, gives the upstream backbone's outputs (relative 1e-5): the row's config is the
   architecture the detector was trained with, not only its keys (mmseg's bilinear HRNet fuse
   layers, contracted dilations, RTMDet's BN eps). Five small rows by default; every row
   (~5 min on 2 CPUs) with MMBACKBONES_ALL_ZOO_ROWS=1 (all 58 pass).
"""
import copy
import hashlib
import os

import pytest
import torch

from tests.downstream import _common

mmdet = _common.require('mmdet')
mmseg = _common.require('mmseg')

import yaml  # noqa: E402

from mmbackbones import build_backbone  # noqa: E402
from mmbackbones.checkpoint import zoo as zoo_mod  # noqa: E402
from mmbackbones.checkpoint.converters import convert_state_dict  # noqa: E402
from mmbackbones.model_configs import load_model_config  # noqa: E402
from tests.parity import assert_outputs_close, perturb_  # noqa: E402

SITE = os.path.dirname(os.path.dirname(mmdet.__file__))
ROWS = [e for e in zoo_mod.load_zoo() if e['task'] in ('detection', 'segmentation')]
METRIC = {'box_AP': 'box AP', 'mIoU': 'mIoU'}


def _metafile_model(entry):
    path = os.path.join(SITE, entry['metafile'].split(' (')[0])
    with open(path) as f:
        models = yaml.safe_load(f)['Models']
    (model, ) = [m for m in models if m['Name'] == entry['name']]
    return model


def _upstream_backbone_cfg(entry):
    from mmengine.config import Config
    model = _metafile_model(entry)
    cfg = Config.fromfile(os.path.join(SITE, entry['source'], '.mim', model['Config']))
    backbone = cfg.model.backbone.to_dict()
    backbone.pop('init_cfg', None)
    backbone.pop('pretrained', None)
    if 'SyncBN' in str(backbone.get('norm_cfg')):  # one process: the same parameters
        backbone['norm_cfg'] = dict(backbone['norm_cfg'], type='BN')
    return backbone


def _build_upstream(entry, meta: bool):
    import mmpretrain.models  # noqa: F401 - mmpretrain.ConvNeXt/PoolFormer in mmdet/mmseg configs
    if entry['source'] == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = _upstream_backbone_cfg(entry)
    if meta:
        try:
            with torch.device('meta'):  # architecture only
                return MODELS.build(copy.deepcopy(cfg))
        except RuntimeError:  # a constructor reading tensor values (drop-path rates)
            pass
    return MODELS.build(cfg)


def _ours_cfg(entry):
    cfg = load_model_config(entry['config']).model.backbone.to_dict()
    cfg.update({k: v for k, v in entry['arch'].items() if k != 'type'})
    cfg['init_cfg'] = None
    return cfg


def _shapes(state_dict):
    return {k: tuple(v.shape) for k, v in state_dict.items()
            if not k.endswith('num_batches_tracked')}


@pytest.mark.parametrize('entry', ROWS, ids=[e['name'] for e in ROWS])
def test_row_is_its_metafile_entry(entry):
    model = _metafile_model(entry)
    assert entry['url'] == model['Weights']
    results = model['Results'] if isinstance(model['Results'], list) else [model['Results']]
    found = [(r['Dataset'], float(r['Metrics'][METRIC[entry['metric']]])) for r in results
             if METRIC[entry['metric']] in r['Metrics']]
    assert (entry['dataset'], entry['score']) in found, found


@pytest.mark.parametrize('entry', ROWS, ids=[e['name'] for e in ROWS])
def test_upstream_backbone_fits_the_row_config_strictly(entry):
    upstream = _build_upstream(entry, meta=True)
    try:
        with torch.device('meta'):
            ours = build_backbone(_ours_cfg(entry))
    except RuntimeError:
        ours = build_backbone(_ours_cfg(entry))
    target = _shapes(ours.state_dict())
    converted, _ = convert_state_dict(upstream.state_dict(), 'auto', target,
                                      hint=entry['format'])
    converted = _shapes(converted)
    assert sorted(set(target) - set(converted)) == []
    assert sorted(set(converted) - set(target)) == []
    assert {k for k in target if target[k] != converted[k]} == set()


END_TO_END = [e['name'] for e in ROWS] if os.environ.get('MMBACKBONES_ALL_ZOO_ROWS') else [
    'yolox_tiny_8x8_300e_coco', 'rtmdet_tiny_8xb32-300e_coco',
    'yolov3_mobilenetv2_8xb24-ms-416-300e_coco', 'segformer_mit-b0_8xb2-160k_ade20k-512x512',
    'pspnet_r50-d8_4xb2-80k_cityscapes-512x1024']


@pytest.mark.parametrize('name', END_TO_END)
def test_upstream_whole_model_file_loads_through_the_zoo_name(name, tmp_path, monkeypatch):
    from tests.checkpoint.test_zoo_whole_model import _Files
    entry = zoo_mod.get_entry(name)
    torch.manual_seed(0)
    upstream = _build_upstream(entry, meta=False)
    upstream.eval()  # some upstream train() overrides return None
    for m in upstream.modules():  # mmdet allocates the trident weight uninitialised
        if type(m).__name__ == 'TridentConv':
            torch.nn.init.kaiming_uniform_(m.weight, a=1)
    perturb_(upstream, seed=3)
    weights = {f'backbone.{k}': v for k, v in upstream.state_dict().items()}
    weights['decode_head.conv_seg.weight'] = torch.randn(2, 4, 1, 1)
    root = tmp_path / 'www'
    root.mkdir()
    path = root / 'upload.pth'
    torch.save({'meta': {}, 'state_dict': weights}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    path.rename(root / f'{name}-{digest}.pth')
    monkeypatch.setenv('MMBACKBONES_HOME', str(tmp_path / 'home'))
    server = _Files(root)
    try:
        monkeypatch.setattr(zoo_mod, '_ZOO', [dict(entry, url=server.url(
            f'{name}-{digest}.pth'))])
        cfg = _ours_cfg(entry)
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=f'{entry["source"]}://{name}',
                               strict=True)
        ours = build_backbone(copy.deepcopy(cfg))
        ours.init_weights()
        ours.eval()
    finally:
        server.close()
    # mmseg's BEiT/MAE take only their img_size (relative position tables of that grid)
    # DetectoRS's SAC reflect-pads its stride-32 map by 2: at least 3 x 3 there
    size = cfg['img_size'][0] if entry['family'] in ('beit', 'mae') else \
        96 if entry['family'] == 'detectors' else 64
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        want, got = upstream(x), ours(x)
    assert_outputs_close(list(want), list(got))
