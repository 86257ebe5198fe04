"""Every STDC backbone of the configs shipped inside mmseg 1.2.2, on our twins.

The mechanism of ``test_shipped_hrnet_configs.py`` for a nested backbone: each distinct
``model.backbone`` dict of type ``STDCContextPathNet`` (whose ``backbone_cfg`` is an
``STDCNet``) is built by mmseg's registry (native) and by the same registry with the outer type
alone switched to ``mmbackbones.mmseg.STDCContextPathNet``; the nested ``type='STDCNet'`` is
left as written and must build our ``mmbackbones.mmseg.STDCNet`` (the twin reads an unscoped
nested type in the mmseg twins' scope). The native weights (perturbed) go through our loader
with ``strict=True`` and the four outputs must be equal; the nested ``init_cfg`` (the in1k-pre
configs' ImageNet checkpoint) must be mmseg's. Then the whole segmentor of the config is built
with the type switched and runs a forward.

``python tests/downstream/test_shipped_stdc_configs.py`` prints the counts.
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
TYPES = ('STDCContextPathNet', 'STDCNet')
_MENTION = re.compile(r'\bSTDC(ContextPath)?Net\b')
EXPECTED_MIN_CONFIGS = 4  # mmseg 1.2.2: stdc{1,2}[_in1k-pre]_4xb12-80k_cityscapes-512x1024


def shipped_stdc_dicts():
    """``[dict(kind, backbone, configs)]``: each distinct STDC backbone dict."""
    from tests.downstream import _common
    found = collections.OrderedDict()
    for _, root, path, model, backbone, kind in _common.shipped_backbones(('mmseg',), TYPES,
                                                                          _MENTION):
        backbone = backbone.to_dict()
        backbone.pop('type')
        key = json.dumps([kind, backbone], sort_keys=True, default=str)
        found.setdefault(key, dict(kind=kind, backbone=backbone, configs=[]))['configs'].append(
            os.path.relpath(path, root))
    return list(found.values())


def compare(entry: dict, tmp_dir: str) -> str:
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS

    from mmbackbones.compat.stdc import MMSegSTDCContextPathNet, MMSegSTDCNet
    from tests.downstream import _common
    from tests.parity import perturb_, randomize_batchnorm_
    kind = entry['kind']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        native = MODELS.build(dict(entry['backbone'], type=kind, _scope_='mmseg'))
        ours = MODELS.build(dict(entry['backbone'], type=f'mmbackbones.mmseg.{kind}'))
    assert type(ours) is {'STDCContextPathNet': MMSegSTDCContextPathNet,
                          'STDCNet': MMSegSTDCNet}[kind]
    if kind == 'STDCContextPathNet':
        assert type(ours.backbone) is MMSegSTDCNet  # the nested type as written
        assert ours.backbone.init_cfg == native.backbone.init_cfg
    perturb_(native)
    randomize_batchnorm_(native)
    _common.assert_native_weights_carry_over(native, ours, tmp_dir, 3, SIZE,
                                             num_outputs=4 if kind == TYPES[0] else 3)
    for config in entry['configs']:
        run_segmentor(config)
    return 'ok'


def run_segmentor(config: str) -> None:
    """The config's whole segmentor, the backbone type alone switched, runs a forward."""
    import mmseg
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    root = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'configs')
    cfg = Config.fromfile(os.path.join(root, config))
    cfg.model.backbone.type = 'mmbackbones.mmseg.' + cfg.model.backbone.type
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        logits = model._forward(torch.randn(1, 3, SIZE, 2 * SIZE))
    assert logits.shape == (1, cfg.model.decode_head.num_classes, SIZE // 8, SIZE // 4)


def _id(entry: dict) -> str:
    first = os.path.splitext(os.path.basename(entry['configs'][0]))[0]
    return f"{entry['kind']}-{first}"


if __name__ != '__main__':
    ENTRIES = shipped_stdc_dicts()

    def test_the_walk_finds_the_shipped_configs():
        count = sum(len(e['configs']) for e in ENTRIES)
        print('\nshipped STDC configs:', count, 'distinct dicts:', len(ENTRIES))
        assert count >= EXPECTED_MIN_CONFIGS

    @pytest.mark.parametrize('entry', ENTRIES, ids=[_id(e) for e in ENTRIES])
    def test_shipped_stdc_switches_by_type_only(entry, tmp_path):
        assert compare(entry, str(tmp_path)) == 'ok'


def main() -> int:
    from tests.downstream import _common
    return _common.switch_report(shipped_stdc_dicts(), compare, _id, lambda e: e['kind'])


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
