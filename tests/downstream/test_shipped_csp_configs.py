"""Every ``CSPDarknet`` (YOLOX), ``CSPNeXt`` (RTMDet) and ``Darknet`` (YOLOv3) backbone of the
configs shipped inside mmdet 3.3, switched to ``mmbackbones.mmdet.<Type>`` by its type alone.

Each distinct ``model.backbone`` dict is built by mmdet's registry (native) and by our twin
registry from the same arguments, only the type changed; the native weights (perturbed) load
through our loader with ``strict=True`` and the outputs must be equal.

``python tests/downstream/test_shipped_csp_configs.py`` prints the counts.
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
TYPES = ('CSPDarknet', 'CSPNeXt', 'Darknet')
_MENTION = re.compile(r'\b(CSPDarknet|CSPNeXt|Darknet)\b')
# mmdet 3.3 ships 17 CSPDarknet, 16 CSPNeXt and 4 Darknet configs (at the time of writing)
EXPECTED_MIN_CONFIGS = {'CSPDarknet': 17, 'CSPNeXt': 16, 'Darknet': 4}


def _walk():
    """``(root, path, backbone, type)`` for every shipped mmdet config whose
    ``model.backbone`` or (tracking configs: ByteTrack, OC-SORT, StrongSORT)
    ``model.detector.backbone`` is one of :data:`TYPES`."""
    import glob

    import mmdet
    from mmengine.config import Config

    from tests.downstream import _common
    root = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs')
    for path in sorted(glob.glob(os.path.join(root, '**', '*.py'), recursive=True)):
        if '_base_' in path.split(os.sep) or not _common.mentions(path, _MENTION):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                model = Config.fromfile(path).get('model')
        except Exception:  # noqa: BLE001 - configs needing absent extras are not ours
            continue
        if not isinstance(model, dict):
            continue
        holder = model.get('detector') if isinstance(model.get('detector'), dict) else model
        backbone = holder.get('backbone')
        kind = str(backbone.get('type', '')).split('.')[-1] if isinstance(backbone, dict) \
            else None
        if kind in TYPES:
            yield root, path, backbone, kind


def shipped_csp_dicts():
    """``[dict(kind, backbone, configs)]``: each distinct backbone dict of the three types."""
    found = collections.OrderedDict()
    for root, path, backbone, kind in _walk():
        backbone = backbone.to_dict()
        backbone.pop('type')
        key = json.dumps([kind, backbone], sort_keys=True, default=str)
        found.setdefault(key, dict(kind=kind, backbone=backbone, configs=[]))[
            'configs'].append(os.path.relpath(path, root))
    return list(found.values())


def compare(entry: dict, tmp_dir: str) -> str:
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS

    from mmbackbones import build_backbone
    from tests.downstream import _common
    from tests.parity import perturb_
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        native = MODELS.build(dict(entry['backbone'], type=entry['kind'], _scope_='mmdet'))
        ours = build_backbone(dict(entry['backbone'], type=f"mmbackbones.mmdet.{entry['kind']}"))
    assert type(ours).__name__ == f"MMDet{entry['kind']}"
    assert ours.init_cfg == native.init_cfg
    perturb_(native)
    num = len(set(entry['backbone'].get('out_indices', (3, 4, 5) if entry['kind'] == 'Darknet'
                                        else (2, 3, 4))))
    _common.assert_native_weights_carry_over(native, ours, tmp_dir, 3, SIZE, num_outputs=num)
    return 'ok'


def _id(entry: dict) -> str:
    first = os.path.splitext(os.path.basename(entry['configs'][0]))[0]
    return f"{entry['kind']}-{first}"


if __name__ != '__main__':
    ENTRIES = shipped_csp_dicts()

    def test_the_walk_finds_the_shipped_configs():
        counts = collections.Counter()
        for entry in ENTRIES:
            counts[entry['kind']] += len(entry['configs'])
        print('\nshipped configs:', dict(counts), 'distinct dicts:', len(ENTRIES))
        for kind, least in EXPECTED_MIN_CONFIGS.items():
            assert counts[kind] >= least, (kind, counts)

    @pytest.mark.parametrize('entry', ENTRIES, ids=[_id(e) for e in ENTRIES])
    def test_shipped_backbone_switches_by_type_only(entry, tmp_path):
        assert compare(entry, str(tmp_path)) == 'ok'


def main() -> int:
    from tests.downstream import _common
    return _common.switch_report(shipped_csp_dicts(), compare, _id, lambda e: e['kind'])

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
