"""The configs mmdet 3.3.0 and mmseg 1.2.2 ship (``<package>/.mim/configs``) whose models use
``mmpretrain.X``, run on our classes: ``mmpretrain.`` becomes ``mmcls.`` and ``custom_imports``
imports ``mmbackbones`` instead of ``mmpretrain.models``; nothing else of the config changes.

Found by walking every shipped config: a file that names an ``mmpretrain.`` type, or inherits
(``_base_``) from such a file. Each is loaded with mmengine's ``Config``, its whole model is built
by mmdet's/mmseg's registry and runs a forward on a tiny random input (eval mode, no gradients):
segmentors their ``tensor`` mode, detectors ``predict``, ReID models their ``tensor`` mode, MOT
models their detector and ReID parts. Pretrained ``init_cfg`` entries are not run here (they
download; see tests/checkpoint for the URL schemes).

mmdet's ReID models subclass mmpretrain's ``ImageClassifier``, so those configs need mmpretrain
installed (the Makefile installs it into .venv-downstream); our registry holds backbones only: the ReID configs' other mmpretrain types
(``ClsDataPreprocessor``, ``CrossEntropyLoss``) become mmdet's ``ReIDDataPreprocessor`` and
``CrossEntropyLoss``, which take the same arguments.
"""
import glob
import os
import re

import pytest

from tests.downstream import _common

mmdet = _common.require('mmdet')
mmseg = _common.require('mmseg')

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

# not backbones: mmdet's own equivalents (same arguments)
NON_BACKBONE = {'ClsDataPreprocessor': 'mmdet.ReIDDataPreprocessor',
                'CrossEntropyLoss': 'mmdet.CrossEntropyLoss'}
SIZE = 64


def _config_root(package) -> str:
    return os.path.join(os.path.dirname(package.__file__), '.mim', 'configs')


def shipped_configs():
    """(toolbox, path) of every shipped config whose model uses an ``mmpretrain.`` type."""
    found = []
    for toolbox, package in (('mmdet', mmdet), ('mmseg', mmseg)):
        paths = sorted(glob.glob(os.path.join(_config_root(package), '**', '*.py'),
                                 recursive=True))
        texts = {p: open(p).read() for p in paths}
        users = {p for p, t in texts.items() if "type='mmpretrain." in t}
        while True:  # add the configs inheriting from one found so far
            names = {os.path.basename(p) for p in users}
            more = {p for p, t in texts.items() if p not in users and any(
                re.search(r"_base_[^\]]*" + re.escape(n), t, re.S) for n in names)}
            if not more:
                break
            users |= more
        # _base_ pieces are not models to run (mmseg's fpn_poolformer_s12 base keeps a ResNet
        # neck width that its derived configs override); the configs built from them are
        found += [(toolbox, p) for p in sorted(users) if '/_base_/' not in p]
    return found


CONFIGS = shipped_configs()


def to_mmbackbones(node):
    """``mmpretrain.X`` -> ``mmcls.X`` (ours) in every ``type``, recursively, in place."""
    if isinstance(node, dict):
        kind = node.get('type')
        if isinstance(kind, str) and kind.startswith('mmpretrain.'):
            name = kind.split('.', 1)[1]
            node['type'] = NON_BACKBONE.get(name, f'mmcls.{name}')
        for value in node.values():
            to_mmbackbones(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            to_mmbackbones(value)
    return node


def offline(node):
    """What downloads weights while the model is built is built without them: StrongSORT's
    AppearanceFreeLink (a tracking post-processor) and TIMMBackbone with ``pretrained=True``
    (timm's hub download; timm_example/)."""
    if isinstance(node, dict):
        if node.get('type') == 'AppearanceFreeLink':
            node['checkpoint'] = ''
        if node.get('type') == 'mmcls.TIMMBackbone' and node.get('pretrained'):
            node['pretrained'] = False
        for value in node.values():
            offline(value)
    return node


def load(path: str) -> Config:
    # custom_imports name mmpretrain.models: replaced below, so not imported here
    cfg = Config.fromfile(path, import_custom_modules=False)
    model = offline(to_mmbackbones(cfg.model.to_dict()))
    cfg.model = model
    cfg.custom_imports = dict(imports=['mmbackbones'], allow_failed_imports=False)
    return cfg


def _config_id(item) -> str:
    toolbox, path = item
    return f'{toolbox}:{os.path.splitext(os.path.basename(path))[0]}'


def _mmpretrain_types(path: str):
    cfg = Config.fromfile(path, import_custom_modules=False)
    return sorted(set(re.findall(r"mmpretrain\.(\w+)", cfg.pretty_text)))


def test_the_walk_finds_every_family_the_issue_names():
    names = {os.path.basename(p) for _, p in CONFIGS}
    assert len(CONFIGS) >= 23, names
    for expected in ('mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py',
                     'rtmdet_l_convnext_b_4xb32-100e_coco.py',
                     'reid_r50_8xb32-6e_mot17train80_test-mot17val20.py',
                     'retinanet_timm-efficientnet-b1_fpn_1x_coco.py',
                     'fpn_poolformer_s12_8xb4-40k_ade20k-512x512.py',
                     'fpn_poolformer_m48_8xb4-40k_ade20k-512x512.py',
                     'convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py'):
        assert expected in names


def _det_sample():
    from mmdet.structures import DetDataSample
    shape = (SIZE, SIZE)
    return DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                                       batch_input_shape=shape, scale_factor=(1.0, 1.0)))


def _run(model, toolbox: str):
    x = torch.randn(1, 3, SIZE, SIZE)
    kind = type(model).__name__
    if toolbox == 'mmseg':
        out = model(x, mode='tensor')
        assert out.shape[0] == 1 and out.shape[2:] == x.shape[2:] or out.dim() == 4
        return [kind, tuple(out.shape)]
    if hasattr(model, 'reid') and hasattr(model, 'detector'):  # MOT: DeepSORT, StrongSORT
        return _run(model.detector, toolbox) + _run(model.reid, toolbox)
    if hasattr(model, 'extract_feat') and hasattr(model, 'predict') and \
            not hasattr(model, 'head'):
        results = model.predict(x, [_det_sample()])
        assert len(results) == 1 and hasattr(results[0], 'pred_instances')
        return [kind, 'predict']
    # ReID: (N, C) embeddings; the configs pool an (8, 4) map: 256x128 crops
    out = model(torch.randn(2, 3, 256, 128), mode='tensor')
    assert out.dim() == 2 and out.shape[0] == 2
    return [kind, tuple(out.shape)]


@pytest.mark.parametrize('item', CONFIGS, ids=[_config_id(c) for c in CONFIGS])
def test_shipped_config_builds_and_runs_on_our_backbones(item):
    toolbox, path = item
    used = _mmpretrain_types(path)
    assert used, f'{path} uses no mmpretrain type'
    cfg = load(path)
    assert 'mmpretrain.' not in cfg.pretty_text.replace("'mmpretrain.models'", '')
    if toolbox == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope(toolbox)
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    backbones = [m for m in model.modules()
                 if type(m).__module__.startswith('mmbackbones.models.backbones')]
    assert backbones, 'no mmbackbones backbone in the built model'
    assert {type(b).__name__ for b in backbones} & set(used)
    with torch.no_grad():
        _run(model, toolbox)
