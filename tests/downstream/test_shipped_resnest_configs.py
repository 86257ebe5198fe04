"""Every ResNeSt and Res2Net backbone of the configs shipped inside mmdet 3.3 and mmseg 1.2.2,
switched to our twins by ``type`` alone.

Each distinct ``model.backbone`` dict of type ``ResNeSt`` (mmdet, mmseg) or ``Res2Net`` (mmdet)
(mmseg's model-level ``pretrained`` pushed into it, as its ``EncoderDecoder`` does) is built by
the host's registry (native) and again through the same registry with only ``type`` changed to
``mmbackbones.<host>.<Type>``; the native weights (perturbed) go through our loader with
``strict=True`` and the outputs must be equal.

``python tests/downstream/test_shipped_resnest_configs.py`` prints the counts.
"""
import collections
import importlib
import json
import os
import re
import sys
import warnings

import pytest
import torch

if __name__ != '__main__':
    from tests.downstream import _common
    _common.require('mmdet')
    _common.require('mmseg')

TYPES = {'ResNeSt': ('mmdet', 'mmseg'), 'Res2Net': ('mmdet', )}
_MENTION = re.compile(r'\b(ResNeSt|Res2Net)\b')
SIZE, DCN_SIZE = 64, 96
# mmdet 3.3: 8 ResNeSt + 7 Res2Net configs, mmseg 1.2.2: 8 ResNeSt configs, at the time of writing
EXPECTED_MIN_CONFIGS = {('mmdet', 'ResNeSt'): 8, ('mmseg', 'ResNeSt'): 8, ('mmdet', 'Res2Net'): 7}


def shipped_dicts():
    """``[dict(toolbox, type, backbone, configs)]``: each distinct backbone dict."""
    from tests.downstream import _common
    found = collections.OrderedDict()
    for toolbox, root, path, model, backbone, kind in _common.shipped_backbones(
            ('mmdet', 'mmseg'), tuple(TYPES), _MENTION):
        if toolbox not in TYPES[kind]:
            continue
        backbone = backbone.to_dict()
        backbone['type'] = kind
        if toolbox == 'mmseg' and model.get('pretrained') is not None:
            backbone['pretrained'] = model['pretrained']
        key = json.dumps([toolbox, backbone], sort_keys=True, default=str)
        found.setdefault(key, dict(toolbox=toolbox, type=kind, backbone=backbone, configs=[]))[
            'configs'].append(os.path.relpath(path, root))
    return list(found.values())


def compare(entry: dict, tmp_dir: str) -> str:
    toolbox, cfg = entry['toolbox'], dict(entry['backbone'])
    importlib.import_module(f'{toolbox}.models')
    import mmbackbones  # noqa: F401 - the twins resolve through the host's registry
    registry = importlib.import_module(f'{toolbox}.registry').MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pretrained= is deprecated in both libraries
        native = registry.build(dict(cfg, _scope_=toolbox))
        ours = registry.build(dict(cfg, type=f'mmbackbones.{toolbox}.{cfg["type"]}',
                                   _scope_=toolbox))
    assert type(ours).__module__.startswith('mmbackbones.compat'), type(ours)
    if cfg.get('pretrained'):
        assert ours.init_cfg == dict(type='Pretrained', checkpoint=cfg['pretrained'])
    elif isinstance(cfg.get('init_cfg'), dict):
        assert ours.init_cfg == cfg['init_cfg']
    from tests.parity import perturb_
    perturb_(native)
    from tests.downstream import _common
    _common.assert_native_weights_carry_over(native, ours, tmp_dir, cfg.get('in_channels', 3),
                                             DCN_SIZE if cfg.get('dcn') else SIZE)
    return 'ok'


def compare_through_the_cache(entry: dict, monkeypatch, home: str) -> str:
    """The switched backbone's own ``open-mmlab://`` checkpoint (``init_cfg`` or mmseg's
    ``pretrained``), served from our cache as a file with the native weights in the layout that
    URL holds (mmcv-era stem, a classifier beside): ``init_weights()`` gives the native
    outputs."""
    import importlib as _importlib

    from mmengine.runner.checkpoint import get_deprecated_model_names, get_external_models

    from mmbackbones.checkpoint.download import cache_path_for
    monkeypatch.setenv('MMBACKBONES_HOME', home)
    monkeypatch.setattr(_importlib.import_module('mmbackbones.checkpoint.download'),
                        '_check_hash', lambda *args: None)  # a stand-in for the real file
    toolbox, cfg = entry['toolbox'], dict(entry['backbone'])
    url = cfg.get('pretrained') or cfg['init_cfg']['checkpoint']
    name = url.split('://', 1)[1]
    path = cache_path_for(get_external_models()[get_deprecated_model_names().get(name, name)])
    assert path.startswith(home)
    registry = importlib.import_module(f'{toolbox}.registry').MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        native = registry.build(dict(cfg, _scope_=toolbox))
        ours = registry.build(dict(cfg, type=f'mmbackbones.{toolbox}.{cfg["type"]}',
                                   _scope_=toolbox))
    from tests.parity import assert_outputs_close, perturb_
    perturb_(native)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    state = dict(native.state_dict(), **{'fc.weight': torch.zeros(10, 8)})
    torch.save({'meta': {}, 'state_dict': state}, path)
    try:
        ours.init_weights()
    finally:
        os.remove(path)
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, DCN_SIZE if cfg.get('dcn') else SIZE, SIZE,
                    generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert_outputs_close(native(x), ours(x))
    return 'ok'


def _id(entry: dict) -> str:
    first = os.path.splitext(os.path.basename(entry['configs'][0]))[0]
    return f"{entry['toolbox']}-{entry['type']}-{first}"


if __name__ != '__main__':
    ENTRIES = shipped_dicts()

    def test_the_walk_finds_the_shipped_configs():
        counts = collections.Counter()
        for entry in ENTRIES:
            counts[entry['toolbox'], entry['type']] += len(entry['configs'])
        print('\nshipped ResNeSt/Res2Net configs:', dict(counts), 'distinct dicts:', len(ENTRIES))
        for key, least in EXPECTED_MIN_CONFIGS.items():
            assert counts[key] >= least, (key, counts)

    @pytest.mark.parametrize('entry', ENTRIES, ids=[_id(e) for e in ENTRIES])
    def test_shipped_backbone_switches_by_type_only(entry, tmp_path):
        assert compare(entry, str(tmp_path)) == 'ok'

    _BY_URL = {}
    for _entry in ENTRIES:
        _url = _entry['backbone'].get('pretrained') or (
            _entry['backbone'].get('init_cfg') or {}).get('checkpoint')
        if _url and _url.startswith('open-mmlab://'):
            _BY_URL.setdefault(_url, _entry)

    @pytest.mark.parametrize('url', sorted(_BY_URL))
    def test_open_mmlab_checkpoint_loads_through_our_cache(url, tmp_path, monkeypatch):
        assert compare_through_the_cache(_BY_URL[url], monkeypatch, str(tmp_path / 'home')) \
            == 'ok'


def main() -> int:
    from tests.downstream import _common
    return _common.switch_report(shipped_dicts(), compare, _id, lambda e: (e['toolbox'], e['type']))

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
