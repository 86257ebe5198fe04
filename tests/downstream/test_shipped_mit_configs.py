"""Every MixVisionTransformer backbone of the configs shipped inside mmseg 1.2.2, on ours.

Each distinct ``model.backbone`` dict of type ``MixVisionTransformer`` (mmseg's model-level
``pretrained`` pushed into it, as its ``EncoderDecoder`` does) is built by mmseg's registry
(native) and as ``mmbackbones.MixVisionTransformer`` from the same arguments, the type alone
switched (our core has mmseg's signature: no host twin). The native weights (perturbed) go
through our loader with ``strict=True`` and the outputs on a 64-px image must be equal
(relative 1e-5).

``python tests/downstream/test_shipped_mit_configs.py`` prints the counts (mmseg 1.2.2: 13
SegFormer configs, 6 distinct backbone dicts, MiT-B0..B5).
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
TYPE = 'MixVisionTransformer'
_MENTION = re.compile(r'\b(MixVisionTransformer|segformer_mit-b0)\b')
EXPECTED_CONFIGS = 13  # mmseg 1.2.2's configs/segformer, at the time of writing


def shipped_mit_dicts():
    """``[dict(backbone, configs)]``: each distinct MixVisionTransformer backbone dict."""
    from tests.downstream import _common
    found = collections.OrderedDict()
    for _, root, path, model, backbone, _ in _common.shipped_backbones(('mmseg',), (TYPE,),
                                                                       _MENTION):
        backbone = backbone.to_dict()
        backbone.pop('type')
        if model.get('pretrained') is not None:
            backbone['pretrained'] = model['pretrained']
        key = json.dumps(backbone, sort_keys=True, default=str)
        found.setdefault(key, dict(backbone=backbone, configs=[]))['configs'].append(
            os.path.relpath(path, root))
    return list(found.values())


def _perturb_(module: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for value in module.state_dict().values():
            value.add_(torch.randn(value.shape, generator=gen) * 0.02)


def compare(entry: dict, tmp_dir: str) -> str:
    import mmseg.models  # noqa: F401 - registers
    from mmseg.registry import MODELS as MMSEG_MODELS

    from mmbackbones import build_backbone
    from mmbackbones.models.backbones.mit import MixVisionTransformer
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pretrained= is deprecated
        native = MMSEG_MODELS.build(dict(entry['backbone'], type=TYPE, _scope_='mmseg'))
        ours = build_backbone(dict(entry['backbone'], type=f'mmbackbones.{TYPE}'))
    assert type(ours) is MixVisionTransformer
    assert ours.init_cfg == native.init_cfg
    _perturb_(native)
    from tests.downstream import _common
    _common.assert_native_weights_carry_over(native, ours, tmp_dir,
                                             entry['backbone'].get('in_channels', 3), SIZE,
                                             num_outputs=4)
    return 'ok'


def _id(entry: dict) -> str:
    return os.path.splitext(os.path.basename(entry['configs'][0]))[0]


if __name__ != '__main__':
    ENTRIES = shipped_mit_dicts()

    def test_the_walk_finds_the_shipped_configs():
        configs = sum(len(e['configs']) for e in ENTRIES)
        print(f'\nshipped MixVisionTransformer configs: {configs}, distinct dicts: '
              f'{len(ENTRIES)}')
        assert configs >= EXPECTED_CONFIGS
        assert len(ENTRIES) >= 6  # B0..B5
        layers = {tuple(e['backbone'].get('num_layers', ())) for e in ENTRIES}
        assert {(2, 2, 2, 2), (3, 4, 6, 3), (3, 4, 18, 3), (3, 8, 27, 3), (3, 6, 40, 3)} <= layers

    @pytest.mark.parametrize('entry', ENTRIES, ids=[_id(e) for e in ENTRIES])
    def test_shipped_mit_switches_by_type_only(entry, tmp_path):
        assert compare(entry, str(tmp_path)) == 'ok'


def main() -> int:
    from tests.downstream import _common
    return _common.switch_report(shipped_mit_dicts(), compare, _id, lambda e: 'mmseg MixVisionTransformer')

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
