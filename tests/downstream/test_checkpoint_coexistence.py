"""Do no harm to the host library (issue #14, item 12).

``import mmbackbones`` replaces mmengine's checkpoint loaders in the whole process. An mmdet
``ResNet`` and an mmseg ``ResNetV1c`` whose ``Pretrained`` checkpoint is already in torch hub's
cache (where mmengine's ``load_url`` put it) must load the same weights after that import as
before it, offline, without downloading again. Each side runs in its own fresh process (the
loaders are process-wide), with a URL on a closed 127.0.0.1 port, so any download attempt fails.
"""
import hashlib
import json
import os
import socket
import subprocess
import sys

from tests.downstream import _common

_common.require('mmdet')
_common.require('mmseg')

import torch  # noqa: E402

SCRIPT = r'''
import hashlib, json, sys
import torch
if sys.argv[1] == 'after':
    import mmbackbones.models  # noqa: F401  (registers our loaders)
from mmdet.models.backbones import ResNet
from mmseg.models.backbones import ResNetV1c
urls = json.loads(sys.argv[2])
out = {}
for name, build in (('mmdet', lambda cfg: ResNet(depth=18, init_cfg=cfg)),
                    ('mmseg', lambda cfg: ResNetV1c(depth=18, init_cfg=cfg))):
    model = build(dict(type='Pretrained', checkpoint=urls[name]))
    model.init_weights()
    out[name] = {k: hashlib.sha256(v.detach().contiguous().numpy().tobytes()).hexdigest()
                 for k, v in model.state_dict().items()}
print(json.dumps(out))
'''


def _digests(state):
    return {k: hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()
            for k, v in state.items()}


def _publish_in_torch_hub(hub, model, stem):
    """Save ``model``'s perturbed weights as torch hub would cache them; return their digests and
    the file name (which carries the hash prefix, as torchvision/OpenMMLab names do)."""
    gen = torch.Generator().manual_seed(len(stem))
    state = {k: (v + torch.rand(v.shape, generator=gen)) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}
    tmp = hub / 'tmp.pth'
    torch.save(state, tmp)
    name = f'{stem}-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth'
    tmp.rename(hub / name)
    return _digests(state), name


def test_mmdet_and_mmseg_load_the_same_after_import_mmbackbones(tmp_path):
    from mmdet.models.backbones import ResNet
    from mmseg.models.backbones import ResNetV1c
    hub = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    hub.mkdir(parents=True)
    with socket.socket() as s:  # nobody listens there: offline
        s.bind(('127.0.0.1', 0))
        base = f'http://127.0.0.1:{s.getsockname()[1]}/models'
    expected, urls = {}, {}
    for key, model, stem in (('mmdet', ResNet(depth=18), 'mmdet_r18'),
                             ('mmseg', ResNetV1c(depth=18), 'mmseg_r18_v1c')):
        expected[key], name = _publish_in_torch_hub(hub, model, stem)
        urls[key] = f'{base}/{name}'
    env = dict(os.environ, TORCH_HOME=str(tmp_path / 'torch_home'),
               MMBACKBONES_HOME=str(tmp_path / 'mmb_home'), PYTHONPATH=_common.REPO)
    results = {}
    for side in ('before', 'after'):
        run = subprocess.run([sys.executable, '-c', SCRIPT, side, json.dumps(urls)], env=env,
                             capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, f'{side}: {run.stderr[-2000:]}'
        results[side] = json.loads(run.stdout.strip().splitlines()[-1])
    for key in ('mmdet', 'mmseg'):
        assert results['before'][key] == expected[key], key  # mmengine alone loads the file
        assert results['after'][key] == results['before'][key], key
    # nothing was downloaded into our cache: the torch hub file was used
    ours = tmp_path / 'mmb_home' / 'checkpoints'
    found = [f for _, dirs, files in os.walk(ours)
             for f in files if f.endswith('.pth')] if ours.exists() else []
    assert found == []


def test_torchvision_names_resolve_to_mmengines_urls():
    """``torchvision://`` resolves to the URL mmengine uses, so the file mmengine cached under its
    upstream name in torch hub is the one our loader looks for."""
    from mmengine.runner.checkpoint import get_torchvision_models

    from mmbackbones.checkpoint.zoo import resolve
    urls = get_torchvision_models()
    for name in ('resnet18', 'resnet50', 'resnext50_32x4d'):
        assert resolve(f'torchvision://{name}')['url'] == urls[name], name
