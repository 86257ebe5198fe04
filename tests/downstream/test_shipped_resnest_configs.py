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


def main() -> int:
    import tempfile
    entries = shipped_dicts()
    counts, ok = collections.Counter(), collections.Counter()
    for entry in entries:
        key, n = (entry['toolbox'], entry['type']), len(entry['configs'])
        counts[key] += n
        with tempfile.TemporaryDirectory() as tmp:
            try:
                compare(entry, tmp)
                ok[key] += n
            except Exception as err:  # noqa: BLE001 - a report, not a test
                print(f'FAIL {_id(entry)} ({n} configs): {type(err).__name__}: {err}'[:300])
    for key in sorted(counts):
        print(f'{key[0]} {key[1]}: {ok[key]} of {counts[key]} configs build with the twin and '
              f'equal the native outputs')
    print(f'{len(entries)} distinct backbone dicts')
    return 0 if ok == counts else 1


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
