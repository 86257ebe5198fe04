"""The backbone configs shipped inside mmdet 3.3.0 and mmseg 1.2.2, switched to our types.

For every config under ``<mmdet|mmseg>/.mim/configs`` whose ``model.backbone`` has a type listed
in ``TYPES`` (mmseg's model-level ``pretrained``, which ``EncoderDecoder`` pushes into the
backbone, included), each distinct backbone dict is

1. built by the owning library's registry as it stands (the native module);
2. built again with only ``type`` changed to the host twin ``mmbackbones.<toolbox>.<Type>``,
   through the same registry (what a user's config does);
3. given the native module's weights (perturbed so that every tensor matters) through our
   safe loader with ``strict=True`` (``convert='auto'``: mmcv-era deep stems are converted);
4. run in eval mode on one tiny image beside the native module: equal outputs.

``TYPES`` is per backbone type, so other families (Swin, ViT) add their own list in a sibling
file using the same helpers. ``python tests/downstream/test_shipped_backbone_configs.py
[walk.json]`` prints the counts (distinct dicts and configs that build / match) without pytest
(the optional JSON keeps the walk's dicts for a second run, e.g. against another checkout).
"""
import collections
import glob
import json
import os
import sys
import warnings
from typing import Dict, List, Sequence, Tuple

import pytest

if __name__ != '__main__':
    from tests.downstream import _common
    _common.require('mmdet')
    _common.require('mmseg')

import torch  # noqa: E402

# type -> the toolboxes whose shipped configs use it (both ship ResNet/ResNeXt)
TYPES: Dict[str, Tuple[str, ...]] = {
    'ResNet': ('mmdet', 'mmseg'),
    'ResNetV1c': ('mmdet', 'mmseg'),
    'ResNetV1d': ('mmdet', 'mmseg'),
    'ResNeXt': ('mmdet', 'mmseg'),
    'RegNet': ('mmdet',),
}
SIZE = 32  # input side: every stride and dilation of these backbones still applies
DCN_SIZE = 96  # mmcv's deformable conv refuses maps smaller than its kernel (3x3 at stride 32)
EXPECTED_MIN_DICTS = 100  # mmdet 3.3.0 + mmseg 1.2.2 hold 117 distinct dicts of these types


def config_root(toolbox: str) -> str:
    module = __import__(toolbox)
    return os.path.join(os.path.dirname(module.__file__), '.mim', 'configs')


def shipped_backbone_dicts(types: Dict[str, Sequence[str]]) -> List[dict]:
    """``[dict(toolbox, type, backbone, configs)]``: each distinct backbone dict of ``types``
    among the shipped configs, with the configs that hold it (``model.pretrained`` moved into
    the backbone as mmseg's EncoderDecoder does)."""
    from mmengine.config import Config
    found: Dict[str, dict] = collections.OrderedDict()
    for toolbox in sorted({t for tbs in types.values() for t in tbs}):
        root = config_root(toolbox)
        for path in sorted(glob.glob(os.path.join(root, '**', '*.py'), recursive=True)):
            if f'{os.sep}_base_{os.sep}' in path:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')
                    cfg = Config.fromfile(path)
            except Exception:  # noqa: BLE001 - a few shipped configs need extra packages
                continue
            model = cfg.get('model')
            backbone = model.get('backbone') if isinstance(model, dict) else None
            if not isinstance(backbone, dict):
                continue
            kind = str(backbone.get('type', '')).split('.')[-1]
            if toolbox not in types.get(kind, ()):
                continue
            backbone = backbone.to_dict()
            backbone['type'] = kind
            if toolbox == 'mmseg' and model.get('pretrained') is not None:
                backbone['pretrained'] = model['pretrained']
            key = json.dumps([toolbox, backbone], sort_keys=True, default=str)
            entry = found.setdefault(key, dict(toolbox=toolbox, type=kind, backbone=backbone,
                                               configs=[]))
            entry['configs'].append(os.path.relpath(path, root))
    return list(found.values())


def _registry(toolbox: str):
    import importlib
    importlib.import_module(f'{toolbox}.models')  # registers the native backbones
    import mmbackbones  # noqa: F401 - registers the mmcls scope
    return importlib.import_module(f'{toolbox}.registry').MODELS


def _perturb_(module: torch.nn.Module, seed: int = 0) -> None:
    """Every float tensor moved off its init (offsets of deformable convs included), norm
    statistics made non-trivial, so that every loaded tensor matters in the comparison."""
    gen = torch.Generator().manual_seed(seed)
    state = module.state_dict()
    with torch.no_grad():
        for key, value in state.items():
            if not value.is_floating_point():
                continue
            noise = torch.randn(value.shape, generator=gen)
            if key.endswith('running_var'):
                value.copy_(torch.rand(value.shape, generator=gen) * 0.5 + 0.75)
            elif key.endswith('running_mean'):
                value.copy_(noise * 0.05)
            elif 'conv_offset' in key:
                value.copy_(noise * 0.01)
            else:
                value.add_(noise * (0.05 if value.dim() == 1 else 0.01))


def build_pair(entry: dict):
    """``(native, ours)``: the entry's backbone dict built by its toolbox's registry as shipped
    and with only ``type`` switched to the twin ``mmbackbones.<toolbox>.<Type>``; the native
    weights perturbed."""
    registry = _registry(entry['toolbox'])
    cfg = dict(entry['backbone'])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pretrained= is deprecated in both libraries
        torch.manual_seed(0)
        # _scope_: another test may have left a different default scope behind (mmengine's
        # DefaultScope is global), which would send an unscoped type to another registry
        scope = entry['toolbox']
        native = registry.build(dict(cfg, _scope_=scope))
        ours = registry.build(dict(cfg, type=f'mmbackbones.{scope}.{cfg["type"]}',
                                   _scope_=scope))
    assert type(ours).__module__.startswith('mmbackbones'), type(ours)
    if cfg.get('pretrained'):  # what mmdet/mmseg make of it: the checkpoint to load
        assert ours.init_cfg == dict(type='Pretrained', checkpoint=cfg['pretrained'])
    elif isinstance(cfg.get('init_cfg'), dict):
        assert ours.init_cfg == cfg['init_cfg']
    _perturb_(native)
    return native, ours


def assert_same_outputs(entry: dict, native, ours) -> None:
    native.eval()
    ours.eval()
    size = DCN_SIZE if entry['backbone'].get('dcn') else SIZE
    x = torch.randn(1, ours.in_channels or 3, size, size,
                    generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = native(x), ours(x)
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected)):
        scale = b.abs().max().item() or 1.0
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * scale, msg=f'output {i}')


def compare(entry: dict, tmp_dir: str) -> str:
    """Build the native and the switched backbone of ``entry``, give ours the native weights
    through our loader (``strict=True``) and compare outputs; returns ``'ok'`` or raises."""
    from mmbackbones.checkpoint import load_checkpoint
    native, ours = build_pair(entry)
    path = os.path.join(tmp_dir, 'native.pth')
    torch.save(native.state_dict(), path)
    try:
        report = load_checkpoint(ours, path, strict=True, logger='silent')
    finally:
        os.remove(path)  # up to ~350 MB each; a failing run must not fill the disk either
    assert report.ok, report.message
    assert_same_outputs(entry, native, ours)
    return 'ok'


def checkpoint_of(entry: dict):
    """The checkpoint the switched config loads (``pretrained`` or a Pretrained ``init_cfg``)."""
    cfg = entry['backbone']
    init_cfg = cfg.get('init_cfg')
    if cfg.get('pretrained'):
        return cfg['pretrained'], None
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        return init_cfg['checkpoint'], init_cfg.get('prefix')
    return None, None


def cache_file_for(checkpoint: str):
    """Where our loader looks for ``checkpoint`` (a URL, ``open-mmlab://``, ``torchvision://``)
    in the cache; ``None`` for a local path."""
    from mmbackbones.checkpoint.download import cache_path_for
    from mmbackbones.checkpoint.zoo import ZOO_SCHEMES, resolve, split_scheme
    if checkpoint.startswith(('open-mmlab://', 'openmmlab://')):
        from mmengine.runner.checkpoint import get_deprecated_model_names, get_external_models
        name = checkpoint.split('://', 1)[1]
        return cache_path_for(get_external_models()[get_deprecated_model_names().get(name, name)])
    if checkpoint.startswith(('http://', 'https://')):
        return cache_path_for(checkpoint)
    if split_scheme(checkpoint)[0] in ZOO_SCHEMES:
        return cache_path_for(resolve(checkpoint)['url'])
    return None


def compare_through_the_cache(entry: dict) -> str:
    """The switched config's own ``pretrained``/``init_cfg`` URL, served from the cache (a file
    with the native weights in the layout that URL holds: the native keys plus a classifier,
    under the config's ``prefix``): ``init_weights()`` must give the native outputs."""
    checkpoint, prefix = checkpoint_of(entry)
    native, ours = build_pair(entry)
    path = cache_file_for(checkpoint)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    state = {f'{prefix or ""}{k}': v for k, v in native.state_dict().items()}
    state[f'{"head." if prefix else ""}fc.weight'] = torch.zeros(10, 8)
    torch.save({'meta': {}, 'state_dict': state}, path)
    try:
        ours.init_weights()
    finally:
        os.remove(path)
    assert_same_outputs(entry, native, ours)
    return 'ok'


def _entry_id(entry: dict) -> str:
    cfg = entry['backbone']
    parts = [entry['toolbox'], entry['type'], str(cfg.get('depth', cfg.get('arch', '')))]
    return '-'.join(parts) + f'-{os.path.splitext(os.path.basename(entry["configs"][0]))[0]}'


if __name__ != '__main__':
    ENTRIES = shipped_backbone_dicts(TYPES)
    _ids = [_entry_id(e) for e in ENTRIES]
    _ids = [f'{i}#{n}' if _ids.count(i) > 1 else i for n, i in enumerate(_ids)]

    def test_the_walk_finds_the_shipped_configs():
        assert len(ENTRIES) >= EXPECTED_MIN_DICTS, [_entry_id(e) for e in ENTRIES]
        kinds = {e['type'] for e in ENTRIES}
        assert {'ResNet', 'ResNetV1c', 'ResNeXt', 'RegNet'} <= kinds

    @pytest.mark.parametrize('entry', ENTRIES, ids=_ids)
    def test_switched_backbone_equals_native(entry, tmp_path):
        assert compare(entry, str(tmp_path)) == 'ok'

    # one entry per checkpoint URL the shipped configs name (local files excluded)
    _BY_URL = {}
    for _entry in ENTRIES:
        _url = checkpoint_of(_entry)[0]
        if _url and '://' in _url:
            _BY_URL.setdefault(_url, _entry)

    @pytest.mark.parametrize('url', sorted(_BY_URL))
    def test_pretrained_urls_resolve_through_our_cache(url, tmp_path, monkeypatch):
        monkeypatch.setenv('MMBACKBONES_HOME', str(tmp_path / 'home'))
        # The file placed in the cache stands in for the published one, whose sha256 (or its
        # prefix in the file name) it cannot have: the hash check itself is tested in
        # tests/checkpoint (test_download_integrity.py); here, the URL's route and the load.
        import importlib
        download_module = importlib.import_module('mmbackbones.checkpoint.download')
        monkeypatch.setattr(download_module, '_check_hash', lambda *args: None)
        assert cache_file_for(url).startswith(str(tmp_path / 'home'))
        assert compare_through_the_cache(_BY_URL[url]) == 'ok'


def main() -> int:
    """Counts for the README and the issue: distinct dicts / configs that build and match."""
    import tempfile
    saved = sys.argv[1] if len(sys.argv) > 1 else None  # optional JSON of the walk, reused
    if saved and os.path.isfile(saved):
        with open(saved) as f:
            entries = json.load(f)
    else:
        entries = shipped_backbone_dicts(TYPES)
        if saved:
            with open(saved, 'w') as f:
                json.dump(entries, f)
    counts = collections.Counter()
    failures = collections.Counter()
    for entry in entries:
        n = len(entry['configs'])
        counts['dicts'] += 1
        counts['configs'] += n
        with tempfile.TemporaryDirectory() as tmp:
            try:
                compare(entry, tmp)
            except Exception as err:  # noqa: BLE001 - a report, not a test
                reason = f'{type(err).__name__}: {str(err).splitlines()[0][:150]}'
                failures[reason] += n
                print(f'FAIL {_entry_id(entry)} ({n} configs): {reason}')
                continue
        counts['ok_dicts'] += 1
        counts['ok_configs'] += n
    print(f"{counts['ok_dicts']} of {counts['dicts']} distinct backbone dicts "
          f"({counts['ok_configs']} of {counts['configs']} configs) build with "
          f"mmbackbones.<toolbox>.<Type> and equal the native outputs")
    for reason, n in failures.most_common():
        print(f'  {n:4d} configs: {reason}')
    return 0 if counts['ok_dicts'] == counts['dicts'] else 1


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())
