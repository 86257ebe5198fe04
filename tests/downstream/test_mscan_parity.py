"""MSCAN (SegNeXt) against mmseg 1.2.2's own class: identical keys, equal outputs on the same
weights (odd sizes included), training forward with batch statistics, and every shipped SegNeXt
config switched by its type alone (``python tests/downstream/test_mscan_parity.py`` prints the
counts)."""
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

TINY = dict(embed_dims=[8, 16, 24, 32], depths=[1, 2, 1, 1], mlp_ratios=[8, 8, 4, 4],
            norm_cfg=dict(type='BN', requires_grad=True))
SIZE = 64
_MENTION = re.compile(r'\bMSCAN\b')
EXPECTED_MIN_CONFIGS = 4  # mmseg 1.2.2: segnext_mscan-{t,s,b,l}


def _native(**kwargs):
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(dict(type='MSCAN', _scope_='mmseg', **kwargs))


def _ours(**kwargs):
    from mmseg.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(dict(type='mmbackbones.mmseg.MSCAN', **kwargs))


def _pair(**kwargs):
    from tests.parity import perturb_, randomize_batchnorm_
    native = _native(**kwargs)
    native.init_weights()
    perturb_(native)
    randomize_batchnorm_(native)
    ours = _ours(**kwargs)
    assert list(ours.state_dict()) == list(native.state_dict())
    ours.load_state_dict(native.state_dict(), strict=True)
    return native, ours


def shipped_dicts():
    from tests.downstream import _common
    found = collections.OrderedDict()
    for _, root, path, model, backbone, _ in _common.shipped_backbones(('mmseg',), ('MSCAN',),
                                                                       _MENTION):
        backbone = backbone.to_dict()
        backbone.pop('type')
        key = json.dumps(backbone, sort_keys=True, default=str)
        found.setdefault(key, dict(backbone=backbone, configs=[]))['configs'].append(
            os.path.relpath(path, root))
    return list(found.values())


def compare(entry: dict, tmp_dir: str) -> str:
    from mmbackbones.compat.mscan import MMSegMSCAN
    from tests.downstream import _common
    from tests.parity import perturb_, randomize_batchnorm_
    native, ours = _native(**entry['backbone']), _ours(**entry['backbone'])
    assert type(ours) is MMSegMSCAN and ours.init_cfg == native.init_cfg
    perturb_(native)
    randomize_batchnorm_(native)
    _common.assert_native_weights_carry_over(native, ours, tmp_dir, 3, SIZE, num_outputs=4)
    return 'ok'


if __name__ != '__main__':
    ENTRIES = shipped_dicts()

    def test_keys_identical_at_full_size():
        native, ours = _native(), _ours()
        assert list(ours.state_dict()) == list(native.state_dict())
        assert {k: v.shape for k, v in ours.state_dict().items()} == \
            {k: v.shape for k, v in native.state_dict().items()}

    @pytest.mark.parametrize('size', [(64, 64), (45, 61), (33, 33)])
    def test_outputs_equal_in_eval(size):
        native, ours = _pair(**TINY)
        native.eval()
        ours.eval()
        x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
        from tests.parity import assert_outputs_close
        with torch.no_grad():
            assert_outputs_close(native(x), ours(x))

    def test_training_forward_and_gradients_equal():
        native, ours = _pair(**TINY, drop_rate=0.0)
        native.train()
        ours.train()
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
        from tests.parity import assert_outputs_close
        a, b = native(x), ours(x)
        assert_outputs_close(a, b)
        sum(o.square().mean() for o in a).backward()
        sum(o.square().mean() for o in b).backward()
        for (name, p), q in zip(native.named_parameters(), ours.parameters()):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)

    def test_num_stages_and_pretrained_as_mmseg():
        native, ours = _pair(**dict(TINY, num_stages=3))
        native.eval()
        ours.eval()
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert len(ours(x)) == len(native(x)) == 3
        with pytest.warns(UserWarning, match='deprecated'):
            twin = _ours_plain(pretrained='a.pth')
        assert twin.init_cfg == _native(pretrained='a.pth').init_cfg

    def test_the_walk_finds_the_shipped_configs():
        count = sum(len(e['configs']) for e in ENTRIES)
        print('\nshipped MSCAN configs:', count, 'distinct dicts:', len(ENTRIES))
        assert count >= EXPECTED_MIN_CONFIGS

    @pytest.mark.parametrize('entry', ENTRIES,
                             ids=[os.path.basename(e['configs'][0])[:-3] for e in ENTRIES])
    def test_shipped_mscan_switches_by_type_only(entry, tmp_path):
        assert compare(entry, str(tmp_path)) == 'ok'


def _ours_plain(**kwargs):
    from mmbackbones.compat.mscan import MMSegMSCAN
    return MMSegMSCAN(**kwargs)


def main() -> int:
    import tempfile
    entries = shipped_dicts()
    total = ok = 0
    for entry in entries:
        n = len(entry['configs'])
        total += n
        with tempfile.TemporaryDirectory() as tmp:
            try:
                compare(entry, tmp)
                ok += n
            except Exception as err:  # noqa: BLE001 - a report, not a test
                print(f'FAIL {entry["configs"][0]}: {type(err).__name__}: {err}'[:300])
    print(f'MSCAN: {ok} of {total} mmseg configs build with our twin and equal the native '
          f'outputs ({len(entries)} distinct backbone dicts)')
    return 0 if ok == total else 1


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
