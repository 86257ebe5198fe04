"""Whole-model checkpoints of the shipped mmdet 3.3 / mmseg 1.2 configs, both ways.

For every distinct backbone dict of a type we provide (ResNet, ResNetV1c, ResNetV1d, ResNeXt,
RegNet, SwinTransformer, VisionTransformer) among the configs shipped inside mmdet and mmseg
(``<package>/.mim/configs``; ``init_cfg``/``pretrained`` left out: they do not change the
architecture, so dicts differing only there are one), with the native backbone built by the
package's registry and the twin by the same registry with ``type='mmcls.<Type>'``:

1. **into ours**: the native model's weights (randomised), saved as a whole-model checkpoint
   (``{'state_dict': {'backbone.<native key>': ..., 'head.*': ...}}``), loaded into a model
   holding the twin by ``mmengine.runner.load_checkpoint(model, path, strict=False)`` (what
   ``load_from`` and ``resume`` call) give the native outputs;
2. **back out**: the twin's weights (randomised), saved the same way and written by
   ``convert_checkpoint_to(..., to=<package>)``, load with ``strict=True`` into the native
   backbone and give the twin's outputs.

CPU time: tiny inputs, and the widths reduced where the key layout does not depend on them
(``base_channels=stem_channels=8`` for ResNets, ``embed_dims`` = 8 x the first stage's heads for
transformers); RegNets as shipped. The walk over ~1500 configs (minutes) is kept in
``.pytest_cache/mmbackbones/`` per mmdet/mmseg version. ``python -m
tests.downstream.test_whole_model_shipped`` prints the counts per package and type.
"""
import collections
import json
import os
import sys
import warnings

import pytest
import torch
from torch import nn

if __name__ != '__main__':
    from tests.downstream import _common
    _common.require('mmdet')
    _common.require('mmseg')

TYPES = ('ResNet', 'ResNetV1c', 'ResNetV1d', 'ResNeXt', 'RegNet', 'SwinTransformer',
         'VisionTransformer')
SIZE, DCN_SIZE, SWIN_SIZE = 32, 96, 45
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _walk():
    """``[dict(toolbox, type, backbone, configs)]``, one per distinct architecture."""
    import mmdet
    import mmseg

    from tests.downstream import _common
    cache = os.path.join(REPO, '.pytest_cache', 'mmbackbones',
                         f'whole-model-walk-{mmdet.__version__}-{mmseg.__version__}.json')
    if os.path.isfile(cache):
        with open(cache) as f:
            return json.load(f)
    found = collections.OrderedDict()
    for pkg in (mmdet, mmseg):
        for _, root, path, model, backbone, kind in _common.shipped_backbones((pkg,), TYPES):
            arch = {k: v for k, v in backbone.to_dict().items()
                    if k not in ('init_cfg', 'pretrained')}
            arch['type'] = kind
            key = json.dumps([pkg.__name__, arch], sort_keys=True, default=str)
            entry = found.setdefault(key, dict(toolbox=pkg.__name__, type=kind, backbone=arch,
                                               configs=[]))
            entry['configs'].append(os.path.relpath(path, root))
    entries = list(found.values())
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    with open(cache, 'w') as f:
        json.dump(entries, f, default=str)
    return entries


def _narrow(entry: dict) -> dict:
    cfg = dict(entry['backbone'])
    if entry['type'] in ('SwinTransformer', 'VisionTransformer'):
        heads = cfg.get('num_heads', 12 if entry['type'] == 'VisionTransformer' else 3)
        cfg['embed_dims'] = 8 * (heads[0] if isinstance(heads, (list, tuple)) else heads)
    elif entry['type'] != 'RegNet':
        # explicit stem width: mmdet's default follows base_channels, mmseg's stays 64
        width = 32 if 'GN' in str(cfg.get('norm_cfg')) else 8  # GroupNorm: 32 groups
        cfg.update(base_channels=width, stem_channels=cfg.get('stem_channels', width))
    return cfg


class Whole(nn.Module):
    """What a detector/segmentor's state dict looks like around its backbone."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.decode_head = nn.Conv2d(4, 2, 1)


def _randomise_other(key: str, value: torch.Tensor, gen: torch.Generator) -> None:
    if key.endswith('running_mean'):
        value.copy_(torch.randn(value.shape, generator=gen) * 0.05)
    elif 'conv_offset' in key:
        value.copy_(torch.randn(value.shape, generator=gen) * 0.01)
    elif 'relative_position_index' not in key:
        value.add_(torch.randn(value.shape, generator=gen) * (0.05 if value.dim() == 1 else 0.02))


def _randomise(module: nn.Module, seed: int) -> None:
    from tests.parity import perturb_
    perturb_(module, seed, other=_randomise_other)


def _build(entry: dict):
    import importlib
    importlib.import_module(f'{entry["toolbox"]}.models')
    import mmbackbones  # noqa: F401 - registers the mmcls scope
    registry = importlib.import_module(f'{entry["toolbox"]}.registry').MODELS
    cfg = _narrow(entry)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.manual_seed(0)
        scope = entry['toolbox']
        native = registry.build(dict(cfg, _scope_=scope))
        # the host twin where one exists (the host's signature and defaults), else mmcls.X
        from mmbackbones.registry import MODELS as OURS
        twin = f'mmbackbones.{scope}.{cfg["type"]}'
        ours_type = twin if twin in OURS else f'mmcls.{cfg["type"]}'
        ours = registry.build(dict(cfg, type=ours_type, _scope_=scope))
    assert type(ours).__module__.startswith('mmbackbones'), type(ours)
    return native, ours


def _flat(outputs):
    flat = []
    for item in outputs if isinstance(outputs, (tuple, list)) else [outputs]:
        flat.extend(item if isinstance(item, (list, tuple)) else [item])
    return flat


def _assert_same(entry, native, ours, what):
    native.eval()
    ours.eval()
    cfg = entry['backbone']
    size = DCN_SIZE if cfg.get('dcn') else SWIN_SIZE if entry['type'] == 'SwinTransformer' \
        else SIZE
    x = torch.randn(1, cfg.get('in_channels', 3), size, size,
                    generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = _flat(native(x)), _flat(ours(x))
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        scale = b.abs().max().item() or 1.0
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * scale,
                                   msg=lambda m: f'{what}, output {i}: {m}')


def into_ours(entry: dict, tmp_dir: str) -> None:
    from mmengine.runner import load_checkpoint
    native, ours = _build(entry)
    _randomise(native, 1)
    path = os.path.join(tmp_dir, 'native_whole.pth')
    torch.save({'meta': {}, 'state_dict': Whole(native).state_dict()}, path)
    model = Whole(ours)
    names = list(ours.state_dict())
    load_checkpoint(model, path, map_location='cpu', strict=False, logger='silent')
    _assert_same(entry, native, ours, 'native checkpoint loaded into ours')
    assert list(ours.state_dict()) == names  # what it saves stays in our names


def back_out(entry: dict, tmp_dir: str) -> None:
    from mmbackbones.checkpoint.convert import convert_checkpoint_to
    native, ours = _build(entry)
    _randomise(ours, 2)
    src, dst = os.path.join(tmp_dir, 'ours.pth'), os.path.join(tmp_dir, 'native.pth')
    torch.save({'meta': {}, 'state_dict': Whole(ours).state_dict()}, src)
    convert_checkpoint_to(src, dst, to=entry['toolbox'])
    written = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    native.load_state_dict({k[len('backbone.'):]: v for k, v in written.items()
                            if k.startswith('backbone.')}, strict=True)
    _assert_same(entry, ours, native, f'ours written --to {entry["toolbox"]}, in the native')


def _entry_id(entry: dict) -> str:
    cfg = entry['backbone']
    name = os.path.splitext(os.path.basename(entry['configs'][0]))[0]
    return f'{entry["toolbox"]}-{entry["type"]}-{cfg.get("depth", cfg.get("arch", ""))}-{name}'


def _sample(entries: list, per_type: int = 3) -> list:
    """The first, middle and last architecture of each (package, type): the pytest run stays
    within a few minutes; ``python tests/downstream/test_whole_model_shipped.py`` (or
    ``MMBACKBONES_ALL_SHIPPED=1``) checks every one."""
    if os.environ.get('MMBACKBONES_ALL_SHIPPED', '') not in ('', '0'):
        return entries
    groups = collections.defaultdict(list)
    for entry in entries:
        groups[(entry['toolbox'], entry['type'])].append(entry)
    picked = []
    for group in groups.values():
        spots = sorted({0, len(group) // 2, len(group) - 1})[:per_type]
        picked.extend(group[i] for i in spots)
    return picked


if __name__ != '__main__':
    ALL_ENTRIES = _walk()
    ENTRIES = _sample(ALL_ENTRIES)
    _IDS = [_entry_id(e) for e in ENTRIES]
    _IDS = [f'{i}#{n}' if _IDS.count(i) > 1 else i for n, i in enumerate(_IDS)]

    def test_the_walk_finds_every_type():
        kinds = collections.Counter((e['toolbox'], e['type']) for e in ALL_ENTRIES)
        print('\ndistinct backbone architectures per (package, type):', dict(kinds))
        assert len(ALL_ENTRIES) >= 140
        for pair in [('mmdet', 'ResNet'), ('mmdet', 'ResNeXt'), ('mmdet', 'RegNet'),
                     ('mmdet', 'SwinTransformer'), ('mmseg', 'ResNetV1c'),
                     ('mmseg', 'SwinTransformer'), ('mmseg', 'VisionTransformer')]:
            assert kinds[pair] > 0, pair

    @pytest.mark.parametrize('entry', ENTRIES, ids=_IDS)
    def test_native_whole_model_checkpoint_loads_into_ours(entry, tmp_path):
        into_ours(entry, str(tmp_path))

    @pytest.mark.parametrize('entry', ENTRIES, ids=_IDS)
    def test_ours_converted_to_the_native_layout_loads_strict(entry, tmp_path):
        back_out(entry, str(tmp_path))


def main() -> int:
    """Counts for the issue: distinct dicts equal both ways, per package and type."""
    import tempfile
    entries = _walk()
    counts = collections.defaultdict(collections.Counter)
    for entry in entries:
        key = (entry['toolbox'], entry['type'])
        counts[key]['dicts'] += 1
        for name, fn in (('into', into_ours), ('out', back_out)):
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    fn(entry, tmp)
                    counts[key][name] += 1
                except Exception as err:  # noqa: BLE001 - a report, not a test
                    print(f'FAIL {name} {_entry_id(entry)}: {type(err).__name__}: '
                          f'{str(err).splitlines()[0][:160]}')
    for (pkg, kind), c in sorted(counts.items()):
        print(f'{pkg:6s} {kind:18s} {c["dicts"]:3d} dicts: into ours {c["into"]:3d}, '
              f'back out {c["out"]:3d}')
    return 0 if all(c['into'] == c['out'] == c['dicts'] for c in counts.values()) else 1


if __name__ == '__main__':
    sys.path.insert(0, REPO)
    sys.exit(main())
