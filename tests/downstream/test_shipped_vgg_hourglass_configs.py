"""Every SSDVGG and HourglassNet backbone of the configs shipped inside mmdet 3.3, on ours.

Each distinct ``model.backbone`` dict of type ``SSDVGG`` / ``HourglassNet`` (SSD300/512 and
their PISA, VOC, OpenImages, WIDER FACE and legacy variants; CornerNet and CentripetalNet) is
built by mmdet's registry (native) and by ours with the type alone switched
(``mmbackbones.mmdet.<Type>``); the native weights (perturbed) go through our loader with
``strict=True`` and the outputs on a small input must be equal.

``python tests/downstream/test_shipped_vgg_hourglass_configs.py`` prints the counts.
"""
import collections
import json
import os
import re
import sys
import warnings

import pytest

if __name__ != '__main__':
    from tests.downstream import _common
    _common.require('mmdet')

SIZE = 64
TYPES = ('SSDVGG', 'HourglassNet')
_MENTION = re.compile(r'\b(SSDVGG|HourglassNet|ssd300|ssd512)\b')
# mmdet 3.3: 9 SSDVGG configs, 4 HourglassNet configs (CornerNet x3, CentripetalNet)
EXPECTED_MIN_CONFIGS = {'SSDVGG': 9, 'HourglassNet': 4}


def shipped_dicts():
    """``[dict(type, backbone, configs)]``: each distinct backbone dict of ``TYPES``."""
    from tests.downstream import _common
    found = collections.OrderedDict()
    for _, root, path, _, backbone, kind in _common.shipped_backbones(('mmdet', ), TYPES,
                                                                       _MENTION):
        backbone = backbone.to_dict()
        backbone.pop('type')
        key = json.dumps([kind, backbone], sort_keys=True, default=str)
        found.setdefault(key, dict(type=kind, backbone=backbone, configs=[]))[
            'configs'].append(os.path.relpath(path, root))
    return list(found.values())


def compare(entry: dict, tmp_dir: str) -> str:
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS

    import mmbackbones  # noqa: F401 - registers the twins
    from tests.downstream import _common
    from tests.parity import perturb_
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # mmdet's deprecated input_size
        native = MODELS.build(dict(entry['backbone'], type=entry['type'], _scope_='mmdet'))
        ours = MODELS.build(dict(entry['backbone'], type=f'mmbackbones.mmdet.{entry["type"]}',
                                 _scope_='mmdet'))
    assert type(ours).__module__.startswith('mmbackbones.'), type(ours)
    assert ours.init_cfg == native.init_cfg
    perturb_(native)
    _common.assert_native_weights_carry_over(native, ours, tmp_dir, 3, SIZE,
                                             len(ours.out_channels))
    return 'ok'


def _id(entry: dict) -> str:
    first = os.path.splitext(os.path.basename(entry['configs'][0]))[0]
    return f"{entry['type']}-{first}"


if __name__ != '__main__':
    ENTRIES = shipped_dicts()

    def test_the_walk_finds_the_shipped_configs():
        counts = collections.Counter()
        for entry in ENTRIES:
            counts[entry['type']] += len(entry['configs'])
        print('\nshipped configs:', dict(counts), 'distinct dicts:', len(ENTRIES))
        for kind, least in EXPECTED_MIN_CONFIGS.items():
            assert counts[kind] >= least, (kind, counts)

    @pytest.mark.parametrize('entry', ENTRIES, ids=[_id(e) for e in ENTRIES])
    def test_shipped_backbone_switches_by_type_only(entry, tmp_path):
        assert compare(entry, str(tmp_path)) == 'ok'


def main() -> int:
    from tests.downstream import _common
    return _common.switch_report(shipped_dicts(), compare, _id, lambda e: e['type'])


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
