"""Zoo rows that are not a backbone file: an mmdet detector's or mmseg segmentor's whole-model
checkpoint (the row's ``prefix='backbone.'``: only that part is taken), a classifier with its
head, an official release in its own layout. Each file is made here in the row's layout,
served from 127.0.0.1 under a name ending in its hash prefix (as the published names do) and
loaded through the zoo name by ``init_cfg=dict(type='Pretrained', checkpoint='<source>://<name>',
strict=True)`` into the row's config: every backbone tensor equals the file's, nothing is left at
init, the detector's neck and head are left out. Offline: the row's URL is pointed at the local
server, the rest of the row is the shipped one."""
import copy
import hashlib
import http.server

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint import CheckpointMismatchError
from mmbackbones.checkpoint import zoo as zoo_mod
from mmbackbones.checkpoint.converters import get_converter
from mmbackbones.model_configs import load_model_config
from tests.local_http import LocalHTTPServer
from tests.parity import perturb_

# row -> what the file holds besides the backbone (a whole detector/segmentor: neck and heads)
ROWS = {
    'mask-rcnn_hrnetv2p-w18-1x_coco': ('neck.convs.0.conv.weight', 'rpn_head.rpn_conv.weight',
                                       'roi_head.mask_head.conv_logits.weight'),
    'yolox_tiny_8x8_300e_coco': ('neck.out_convs.0.conv.weight', 'bbox_head.multi_level_conv_obj'
                                 '.0.weight'),
    'segformer_mit-b0_8xb2-160k_ade20k-512x512': ('decode_head.conv_seg.weight',
                                                  'decode_head.fusion_conv.conv.weight'),
    'pspnet_r50-d8_4xb2-80k_cityscapes-512x1024': ('decode_head.conv_seg.weight',
                                                   'auxiliary_head.conv_seg.weight'),
    'twins_pcpvt-s_uperhead_8xb4-160k_ade20k-512x512': ('decode_head.conv_seg.weight', ),
    'yolov3_mobilenetv2_8xb24-ms-416-300e_coco': ('neck.detect1.conv1.conv.weight', ),
    'cspnext-tiny_8xb256-rsb-a1-600e_in1k': ('head.fc.weight', 'head.fc.bias'),  # a classifier
    'mscan-t_in1k-pre': (),  # the backbone alone, mmseg's names
    'stdc1_in1k-pre': (),  # STDCNet alone, mmseg's names (the file holds no final conv)
    'tridentnet_r50-caffe_ms-3x_coco': ('roi_head.bbox_head.fc_cls.weight', ),
    'pvt_tiny': ('head.weight', 'head.bias'),  # the official layout
    'focalnet_tiny_srf': ('head.weight', 'head.bias'),
}
OFFICIAL = {'pvt_tiny': 'official_pvt', 'focalnet_tiny_srf': 'detrex_focalnet'}
# rows whose library names differ from ours (mmcv-era deep stems, mmseg's Twins, mmdet's
# MobileNetV2): the file is written in the library's names, converted back on load
NATIVE_LAYOUT = {'pspnet_r50-d8_4xb2-80k_cityscapes-512x1024': 'openmmlab_resnet',
                 'twins_pcpvt-s_uperhead_8xb4-160k_ade20k-512x512': 'mmseg_twins',
                 'yolov3_mobilenetv2_8xb24-ms-416-300e_coco': 'mmdet_mobilenet_v2'}


class _Files(LocalHTTPServer):
    def __init__(self, root):
        self.root = root

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv('MMBACKBONES_HOME', str(tmp_path / 'home'))
    root = tmp_path / 'www'
    root.mkdir()
    server = _Files(root)
    yield server
    server.close()


def _config(entry):
    cfg = load_model_config(entry['config']).model.backbone.to_dict()
    cfg.update({k: v for k, v in entry['arch'].items() if k != 'type'})
    cfg['init_cfg'] = None
    return cfg


def _official(name, backbone):
    """Our weights written back into the official release's names (``{'model': ...}``)."""
    if name == 'focalnet_tiny_srf':  # the release's one final norm is our last stage's norm3
        native = {('norm.' + k[len('norm3.'):] if k.startswith('norm3.') else k): v
                  for k, v in backbone.items()}
    else:
        native = get_converter(OFFICIAL[name]).revert(backbone)
    return native


def _publish(files, entry, source):
    """The file a download of ``entry`` would fetch, in its layout; returns its URL."""
    backbone = {k: v.clone() for k, v in source.state_dict().items()}
    if entry['name'] in NATIVE_LAYOUT:
        backbone = get_converter(NATIVE_LAYOUT[entry['name']]).revert(backbone)
        assert set(backbone) != set(source.state_dict())  # another layout indeed
    extra = {k: torch.randn(4, 4) for k in ROWS[entry['name']]}
    if entry['name'] in OFFICIAL:
        payload = {'model': {**_official(entry['name'], backbone), **extra}}
    elif entry['prefix']:
        payload = {'meta': {'mmdet_version': '3.3.0'},
                   'state_dict': {**{entry['prefix'] + k: v for k, v in backbone.items()},
                                  **extra}}
    else:
        payload = {'state_dict': backbone}
    path = files.root / 'upload.pth'
    torch.save(payload, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    name = f'{entry["name"]}-{digest}.pth'  # the hash-prefix check of published names applies
    path.rename(files.root / name)
    return files.url(name)


@pytest.mark.parametrize('name', list(ROWS))
def test_zoo_row_loads_its_backbone_strictly_through_the_zoo_name(name, files, monkeypatch):
    entry = zoo_mod.get_entry(name)
    assert entry is not None, name
    cfg = _config(entry)
    torch.manual_seed(0)
    source = build_backbone(copy.deepcopy(cfg))
    perturb_(source, seed=1)
    url = _publish(files, entry, source)
    monkeypatch.setattr(zoo_mod, '_ZOO', [dict(entry, url=url)])
    cfg['init_cfg'] = dict(type='Pretrained', checkpoint=f'{entry["source"]}://{name}',
                           strict=True)
    torch.manual_seed(2)
    model = build_backbone(cfg)
    model.init_weights()
    want, got = source.state_dict(), model.state_dict()
    assert list(got) == list(want)
    for key, value in want.items():
        assert torch.equal(got[key], value), (name, key)


def test_a_detector_file_missing_part_of_the_backbone_is_refused(files, monkeypatch):
    entry = zoo_mod.get_entry('mask-rcnn_hrnetv2p-w18-1x_coco')
    cfg = _config(entry)
    source = build_backbone(copy.deepcopy(cfg))
    weights = {f'backbone.{k}': v for k, v in source.state_dict().items()
               if not k.startswith('stage4.')}
    weights['neck.convs.0.conv.weight'] = torch.zeros(1)
    torch.save({'state_dict': weights}, files.root / 'partial.pth')
    monkeypatch.setattr(zoo_mod, '_ZOO', [dict(entry, url=files.url('partial.pth'))])
    cfg['init_cfg'] = dict(type='Pretrained', checkpoint=f'mmdet://{entry["name"]}')
    model = build_backbone(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match='stage4'):
        model.init_weights()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_dense_row_names_resolve_by_source_and_through_mmbackbones():
    row = zoo_mod.resolve('mmdet://faster-rcnn_r50_fpn_1x_coco')
    assert (row['task'], row['dataset'], row['metric'], row['score']) == \
        ('detection', 'COCO', 'box_AP', 37.4)
    assert row['prefix'] == 'backbone.' and row['top1'] is None
    assert zoo_mod.resolve('mmbackbones://faster-rcnn_r50_fpn_1x_coco') == row
    seg = zoo_mod.resolve('mmseg://segformer_mit-b0_8xb2-160k_ade20k-512x512')
    assert (seg['task'], seg['dataset'], seg['score']) == ('segmentation', 'ADE20K', 37.41)
    with pytest.raises(KeyError, match='unknown checkpoint'):
        zoo_mod.resolve('mmseg://faster-rcnn_r50_fpn_1x_coco')  # an mmdet row
    assert zoo_mod.format_result(row) == 'box_AP 37.40 (COCO)'
    assert zoo_mod.format_result(zoo_mod.get_entry('mscan-t_in1k-pre')) == \
        'pretrained on ImageNet-1k'
