"""Every BEiT and MAE backbone of the configs shipped inside mmseg 1.2.2, on our twins
(``mmbackbones.mmseg.BEiT`` / ``mmbackbones.mmseg.MAE``), the type alone switched.

Each distinct ``model.backbone`` dict (mmseg's model-level ``pretrained`` pushed into it, as its
``EncoderDecoder`` does) is built by mmseg's registry and by ours by type: at full size the state
dicts have the same keys and shapes (and the same ``init_cfg``); then, with ``num_layers=2`` and
``img_size=64`` (a 640-px BEiT-L forward is too much for the shared CPU), everything else as
shipped, mmseg's weights (perturbed) load through our loader with ``strict=True`` and the outputs
are equal.

``python tests/downstream/test_shipped_beit_configs.py`` prints the counts.
"""
import collections
import json
import os
import re
import sys
import warnings

import pytest
import torch

if __name__ != '__main__':
    from tests.downstream import _common
    _common.require('mmseg')

SIZE = 64
TYPES = ('BEiT', 'MAE')
_MENTION = re.compile(r'\b(BEiT|MAE|beit|mae)\b')
# mmseg 1.2.2: 4 BEiT and 2 MAE configs at the time of writing
EXPECTED_MIN_CONFIGS = {'BEiT': 4, 'MAE': 2}


def shipped_dicts():
    from tests.downstream import _common
    found = collections.OrderedDict()
    for _, root, path, model, backbone, kind in _common.shipped_backbones(
            ('mmseg',), TYPES, _MENTION):
        backbone = backbone.to_dict()
        backbone.pop('type')
        if model.get('pretrained') is not None:
            backbone['pretrained'] = model['pretrained']
        key = json.dumps([kind, backbone], sort_keys=True, default=str)
        found.setdefault(key, dict(kind=kind, backbone=backbone, configs=[]))[
            'configs'].append(os.path.relpath(path, root))
    return list(found.values())


def _build(kind: str, scope: str, args: dict):
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pretrained= is deprecated
        if scope == 'mmseg':
            return MODELS.build(dict(args, type=kind, _scope_='mmseg'))
        return MODELS.build(dict(args, type=f'mmbackbones.mmseg.{kind}'))


def compare(entry: dict, tmp_dir: str) -> str:
    from mmbackbones.compat.beit import MMSegBEiT, MMSegMAE
    kind, args = entry['kind'], entry['backbone']
    native, ours = _build(kind, 'mmseg', args), _build(kind, 'ours', args)
    assert type(ours) is {'BEiT': MMSegBEiT, 'MAE': MMSegMAE}[kind]
    assert ours.init_cfg == native.init_cfg
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in native.state_dict().items()}
    assert list(ours.state_dict()) == list(native.state_dict())
    del native, ours
    small = dict(args, num_layers=2, img_size=(SIZE, SIZE), pretrained=None,
                 out_indices=[i for i in args.get('out_indices', [-1]) if i < 2] or [1])
    native, ours = _build(kind, 'mmseg', small), _build(kind, 'ours', small)
    native.init_weights()
    from tests.parity import perturb_
    perturb_(native)
    from tests.downstream import _common
    _common.assert_native_weights_carry_over(native, ours, tmp_dir, 3, SIZE)
    return 'ok'


def _id(entry: dict) -> str:
    first = os.path.splitext(os.path.basename(entry['configs'][0]))[0]
    return f"{entry['kind']}-{first}"


if __name__ != '__main__':
    ENTRIES = shipped_dicts()

    def test_the_walk_finds_the_shipped_configs():
        counts = collections.Counter()
        for entry in ENTRIES:
            counts[entry['kind']] += len(entry['configs'])
        print('\nshipped BEiT/MAE configs:', dict(counts), 'distinct dicts:', len(ENTRIES))
        for kind, least in EXPECTED_MIN_CONFIGS.items():
            assert counts[kind] >= least, (kind, counts)

    @pytest.mark.parametrize('entry', ENTRIES, ids=[_id(e) for e in ENTRIES])
    def test_shipped_beit_switches_by_type_only(entry, tmp_path):
        assert compare(entry, str(tmp_path)) == 'ok'


def main() -> int:
    from tests.downstream import _common
    return _common.switch_report(shipped_dicts(), compare, _id, lambda e: e['kind'])

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
