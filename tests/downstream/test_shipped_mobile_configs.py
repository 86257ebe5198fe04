"""Every MobileNetV2/V3 and EfficientNet backbone of the configs shipped inside mmseg 1.2.2 and
mmdet 3.3, on our twins (``mmbackbones.mmseg.MobileNetV2``/``MobileNetV3``,
``mmbackbones.mmdet.MobileNetV2``/``EfficientNet``).

The mechanism of ``test_shipped_hrnet_configs.py``: each distinct ``model.backbone`` dict
(mmseg's model-level ``pretrained`` pushed into it, as its ``EncoderDecoder`` does) is built by
the host registry (native) and by our registry with the type alone switched to the twin; the
native weights (perturbed) go through our loader with ``strict=True`` (mmdet's MobileNetV2 names
converted on load) and the outputs must be equal.

``python tests/downstream/test_shipped_mobile_configs.py`` prints the counts.
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
    _common.require('mmseg')

SIZE = 64
TYPES = ('MobileNetV2', 'MobileNetV3', 'EfficientNet')
_MENTION = re.compile(r'\b(MobileNetV2|MobileNetV3|EfficientNet)\b')
# mmseg 1.2.2: 8 MobileNetV2 + 2 MobileNetV3 configs (+2 through _base_ only), mmdet 3.3: 2
# MobileNetV2 + 1 EfficientNet, at the time of writing
EXPECTED_MIN_CONFIGS = {'mmseg': 10, 'mmdet': 3}


def shipped_mobile_dicts():
    """``[dict(toolbox, kind, backbone, configs)]``: each distinct backbone dict."""
    from tests.downstream import _common
    found = collections.OrderedDict()
    for toolbox, root, path, model, backbone, kind in _common.shipped_backbones(
            ('mmdet', 'mmseg'), TYPES, _MENTION):
        backbone = backbone.to_dict()
        backbone.pop('type')
        if toolbox == 'mmseg' and model.get('pretrained') is not None:
            backbone['pretrained'] = model['pretrained']
        key = json.dumps([toolbox, kind, backbone], sort_keys=True, default=str)
        found.setdefault(key, dict(toolbox=toolbox, kind=kind, backbone=backbone, configs=[]))[
            'configs'].append(os.path.relpath(path, root))
    return list(found.values())


def compare(entry: dict, tmp_dir: str) -> str:
    import importlib

    from mmbackbones import build_backbone
    toolbox, kind = entry['toolbox'], entry['kind']
    importlib.import_module(f'{toolbox}.models')
    registry = importlib.import_module(f'{toolbox}.registry').MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pretrained= is deprecated in both libraries
        native = registry.build(dict(entry['backbone'], type=kind, _scope_=toolbox))
        ours = build_backbone(dict(entry['backbone'], type=f'mmbackbones.{toolbox}.{kind}'))
    assert type(ours).host == toolbox
    if entry['backbone'].get('pretrained'):
        assert ours.init_cfg == native.init_cfg
    from tests.parity import perturb_
    perturb_(native)
    from tests.downstream import _common
    _common.assert_native_weights_carry_over(native, ours, tmp_dir, 3, SIZE)
    return 'ok'


def _id(entry: dict) -> str:
    first = os.path.splitext(os.path.basename(entry['configs'][0]))[0]
    return f"{entry['toolbox']}-{entry['kind']}-{first}"


if __name__ != '__main__':
    ENTRIES = shipped_mobile_dicts()

    def test_the_walk_finds_the_shipped_configs():
        counts = collections.Counter()
        for entry in ENTRIES:
            counts[entry['toolbox']] += len(entry['configs'])
        print('\nshipped mobile configs:', dict(counts), 'distinct dicts:', len(ENTRIES))
        for toolbox, least in EXPECTED_MIN_CONFIGS.items():
            assert counts[toolbox] >= least, (toolbox, counts)

    @pytest.mark.parametrize('entry', ENTRIES, ids=[_id(e) for e in ENTRIES])
    def test_shipped_mobile_backbone_switches_by_type_only(entry, tmp_path):
        assert compare(entry, str(tmp_path)) == 'ok'


def main() -> int:
    from tests.downstream import _common
    return _common.switch_report(shipped_mobile_dicts(), compare, _id, lambda e: (e['toolbox'], e['kind']))

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
