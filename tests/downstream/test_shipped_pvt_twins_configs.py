"""Every PVT backbone of mmdet 3.3's shipped configs and every Twins backbone of mmseg 1.2.2's,
on our host twins, the type alone switched.

Each distinct ``model.backbone`` dict of type ``PyramidVisionTransformer(V2)`` (mmdet) or
``PCPVT``/``SVT`` (mmseg; the model-level ``pretrained`` pushed into it, as its
``EncoderDecoder`` does) is built by the host registry (native) and as
``mmbackbones.<host>.<Type>`` from the same arguments. The native weights (perturbed; mmseg's
Twins in its own ``layers.*``/``attn.attn.in_proj_*`` layout) go through our loader with
``strict=True`` and the outputs on a 64-px image must be equal (relative 1e-5). The checkpoint
the config names is the one ours would load.

``python tests/downstream/test_shipped_pvt_twins_configs.py`` prints the counts (mmdet 3.3: 10
PVT configs; mmseg 1.2.2: 12 Twins configs).
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
TYPES = {'mmdet': ('PyramidVisionTransformer', 'PyramidVisionTransformerV2'),
         'mmseg': ('PCPVT', 'SVT')}
_MENTION = re.compile(r'\b(PyramidVisionTransformer\w*|PCPVT|SVT|pvt\w*|twins\w*)\b')
EXPECTED_CONFIGS = {'mmdet': 10, 'mmseg': 12}


def shipped_dicts():
    """``[dict(toolbox, type, backbone, configs)]``: each distinct backbone dict."""
    from tests.downstream import _common
    found = collections.OrderedDict()
    for toolbox, types in TYPES.items():
        for _, root, path, model, backbone, kind in _common.shipped_backbones(
                (toolbox,), types, _MENTION):
            backbone = backbone.to_dict()
            backbone.pop('type')
            if toolbox == 'mmseg' and model.get('pretrained') is not None:
                backbone['pretrained'] = model['pretrained']
            key = json.dumps([toolbox, kind, backbone], sort_keys=True, default=str)
            found.setdefault(key, dict(toolbox=toolbox, type=kind, backbone=backbone,
                                       configs=[]))['configs'].append(os.path.relpath(path, root))
    return list(found.values())


def _checkpoint(init_cfg):
    return init_cfg.get('checkpoint') if isinstance(init_cfg, dict) else None


def compare(entry: dict, tmp_dir: str) -> str:
    import importlib

    import mmbackbones  # noqa: F401 - registers the host twins
    from mmbackbones.registry import HOST_TWINS
    from tests.parity import perturb_
    toolbox = entry['toolbox']
    importlib.import_module(f'{toolbox}.models')
    registry = importlib.import_module(f'{toolbox}.registry').MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pretrained= is deprecated in both libraries
        native = registry.build(dict(entry['backbone'], type=entry['type'], _scope_=toolbox))
        ours = HOST_TWINS[toolbox].build(dict(entry['backbone'], type=entry['type']))
    assert type(ours).__module__.startswith('mmbackbones.compat')
    assert _checkpoint(ours.init_cfg) == _checkpoint(native.init_cfg) is not None
    perturb_(native)
    from tests.downstream import _common
    _common.assert_native_weights_carry_over(native, ours, tmp_dir,
                                             entry['backbone'].get('in_channels', 3), SIZE)
    return 'ok'


def _id(entry: dict) -> str:
    first = os.path.splitext(os.path.basename(entry['configs'][0]))[0]
    return f"{entry['toolbox']}-{first}"


if __name__ != '__main__':
    ENTRIES = shipped_dicts()

    def test_the_walk_finds_the_shipped_configs():
        counts = collections.Counter()
        for entry in ENTRIES:
            counts[entry['toolbox']] += len(entry['configs'])
        print('\nshipped PVT/Twins configs:', dict(counts), 'distinct dicts:', len(ENTRIES))
        assert dict(counts) == EXPECTED_CONFIGS

    @pytest.mark.parametrize('entry', ENTRIES, ids=[_id(e) for e in ENTRIES])
    def test_shipped_backbone_switches_by_type_only(entry, tmp_path):
        assert compare(entry, str(tmp_path)) == 'ok'


def main() -> int:
    from tests.downstream import _common
    return _common.switch_report(shipped_dicts(), compare, _id, lambda e: e['toolbox'])

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
