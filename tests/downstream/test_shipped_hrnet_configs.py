"""Every HRNet backbone of the configs shipped inside mmseg 1.2.2 and mmdet 3.3, on our HRNet.

The mechanism of ``test_shipped_backbone_configs.py`` for a family whose host spelling differs
from mmpretrain's: each distinct ``model.backbone`` dict of type ``HRNet`` (mmseg's model-level
``pretrained`` pushed into it, as its ``EncoderDecoder`` does) is built by the host registry
(native) and by the host adapter (``hrnet_twins.MMSegHRNet`` / ``MMDetHRNet``) from the same
arguments, the type alone switched; the native weights (perturbed) go through our loader with
``strict=True`` and the outputs must be equal. Once the adapters are registered as
``mmbackbones.mmseg.HRNet`` / ``mmbackbones.mmdet.HRNet`` (compat/), ``ADAPTERS`` can name
those types instead of the classes.

``python tests/downstream/test_shipped_hrnet_configs.py`` prints the counts.
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
    _common.require('mmdet')
    _common.require('mmseg')

SIZE = 64
_MENTION = re.compile(r'\bHRNet\b')
# mmseg 1.2.2: 66 configs, mmdet 3.3: 29 configs, at the time of writing
EXPECTED_MIN_CONFIGS = {'mmseg': 60, 'mmdet': 25}


def _adapter(toolbox: str):
    from mmbackbones.models.backbones.hrnet_twins import MMDetHRNet, MMSegHRNet
    return {'mmseg': MMSegHRNet, 'mmdet': MMDetHRNet}[toolbox]


def shipped_hrnet_dicts():
    """``[dict(toolbox, backbone, configs)]``: each distinct HRNet backbone dict."""
    from tests.downstream import _common
    found = collections.OrderedDict()
    for toolbox, root, path, model, backbone, _ in _common.shipped_backbones(
            ('mmdet', 'mmseg'), ('HRNet',), _MENTION):
        backbone = backbone.to_dict()
        backbone.pop('type')
        if toolbox == 'mmseg' and model.get('pretrained') is not None:
            backbone['pretrained'] = model['pretrained']
        key = json.dumps([toolbox, backbone], sort_keys=True, default=str)
        found.setdefault(key, dict(toolbox=toolbox, backbone=backbone, configs=[]))[
            'configs'].append(os.path.relpath(path, root))
    return list(found.values())


def compare(entry: dict, tmp_dir: str) -> str:
    import importlib
    toolbox = entry['toolbox']
    importlib.import_module(f'{toolbox}.models')
    registry = importlib.import_module(f'{toolbox}.registry').MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pretrained= is deprecated in both libraries
        native = registry.build(dict(entry['backbone'], type='HRNet', _scope_=toolbox))
        ours = _adapter(toolbox)(**entry['backbone'])
    if entry['backbone'].get('pretrained'):
        assert ours.init_cfg == native.init_cfg
    from tests.parity import perturb_
    perturb_(native)
    from tests.downstream import _common
    _common.assert_native_weights_carry_over(native, ours, tmp_dir,
                                             entry['backbone'].get('in_channels', 3), SIZE)
    return 'ok'


def _id(entry: dict) -> str:
    widths = entry['backbone']['extra']['stage2']['num_channels']
    first = os.path.splitext(os.path.basename(entry['configs'][0]))[0]
    return f"{entry['toolbox']}-w{widths[0]}-{first}"


if __name__ != '__main__':
    ENTRIES = shipped_hrnet_dicts()

    def test_the_walk_finds_the_shipped_configs():
        counts = collections.Counter()
        for entry in ENTRIES:
            counts[entry['toolbox']] += len(entry['configs'])
        print('\nshipped HRNet configs:', dict(counts), 'distinct dicts:', len(ENTRIES))
        for toolbox, least in EXPECTED_MIN_CONFIGS.items():
            assert counts[toolbox] >= least, (toolbox, counts)

    @pytest.mark.parametrize('entry', ENTRIES, ids=[_id(e) for e in ENTRIES])
    def test_shipped_hrnet_switches_by_type_only(entry, tmp_path):
        assert compare(entry, str(tmp_path)) == 'ok'


def main() -> int:
    from tests.downstream import _common
    return _common.switch_report(shipped_hrnet_dicts(), compare, _id, lambda e: e['toolbox'])

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
