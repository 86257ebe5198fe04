"""Shared helpers of the downstream tier (imported only after mmdet/mmseg were found)."""
import ast
import glob
import importlib
import os
import re
import subprocess
import sys
import warnings

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_ROOT = os.path.join(REPO, 'configs', 'downstream')
SKIP_REASON = ('downstream tier needs {pkg} (with the full mmcv and its compiled ops): run '
               '`make test-downstream`, which builds .venv-downstream from '
               '../shared/wheels/mmcv-2.1.0-*.whl; skipped here')


def require(pkg: str):
    """Skip the module, with a reason, unless ``pkg`` and mmcv's compiled ops import."""
    mod = pytest.importorskip(pkg, reason=SKIP_REASON.format(pkg=pkg))
    pytest.importorskip('mmcv.ops', reason='the full mmcv (mmcv.ops) is not installed: mmcv-lite '
                                           'cannot run mmdet/mmseg models. ' +
                                           SKIP_REASON.format(pkg=pkg))
    return mod


def configs(toolbox: str):
    paths = sorted(glob.glob(os.path.join(CONFIG_ROOT, toolbox, '*.py')))
    assert paths, f'no configs under {CONFIG_ROOT}/{toolbox}'
    return paths


def config_id(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def with_local_checkpoint(cfg, tmp_dir: str):
    """Point the backbone's Pretrained init_cfg at a checkpoint written here, shaped like an
    mmpretrain classifier checkpoint (``state_dict`` with ``backbone.`` keys); return the saved
    backbone state (or ``None`` when the config loads no checkpoint)."""
    from mmbackbones import build_backbone
    backbone_cfg = cfg.model.backbone
    init_cfg = backbone_cfg.get('init_cfg')
    if not (isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'):
        return None
    assert init_cfg.get('prefix') == 'backbone.', 'mmpretrain checkpoints keep the backbone ' \
                                                  'under backbone.'
    plain = backbone_cfg.to_dict()
    plain.pop('init_cfg')
    source = build_backbone(plain)
    with torch.no_grad():  # make the weights recognisably not the default init
        for p in source.parameters():
            p.uniform_(-0.05, 0.05)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    path = os.path.join(tmp_dir, 'classifier.pth')
    weights = {f'backbone.{k}': v for k, v in state.items()}
    weights['head.fc.weight'] = torch.zeros(2, 3)  # a classifier head the detector must ignore
    torch.save({'meta': {}, 'state_dict': weights}, path)
    init_cfg['checkpoint'] = path
    return state


def trainable_backbone_params_without_grad(backbone):
    return [n for n, p in backbone.named_parameters() if p.requires_grad and p.grad is None]


def run_isolated(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (nothing imported yet), from the repository root."""
    return subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def config_bases(path: str):
    """The ``_base_`` files a config names (old-style configs), read without executing it."""
    try:
        tree = ast.parse(open(path).read())
    except (OSError, SyntaxError):
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '_base_'
                                                for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            value = [value] if isinstance(value, str) else list(value)
            return [os.path.normpath(os.path.join(os.path.dirname(path), v)) for v in value]
    return []


def mentions(path: str, pattern: re.Pattern, seen=None) -> bool:
    """The config or one of its bases matches ``pattern`` (a cheap filter before loading)."""
    seen = set() if seen is None else seen
    if path in seen or not os.path.isfile(path):
        return False
    seen.add(path)
    return bool(pattern.search(open(path).read())) or any(mentions(b, pattern, seen)
                                                          for b in config_bases(path))


def shipped_backbones(packages, types, mention: re.Pattern = None):
    """Walk the configs shipped inside ``packages`` (``<package>/.mim/configs``, ``_base_``
    folders left out, and configs that do not match ``mention`` when given); yield
    ``(package name, config root, path, model cfg, backbone cfg, type)`` for each whose
    ``model.backbone`` is a dict of one of ``types`` (the type without its scope)."""
    from mmengine.config import Config
    for pkg in packages:
        module = importlib.import_module(pkg) if isinstance(pkg, str) else pkg
        root = os.path.join(os.path.dirname(module.__file__), '.mim', 'configs')
        for path in sorted(glob.glob(os.path.join(root, '**', '*.py'), recursive=True)):
            if '_base_' in path.split(os.sep) or (mention is not None
                                                  and not mentions(path, mention)):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')
                    model = Config.fromfile(path).get('model')
            except Exception:  # noqa: BLE001 - configs needing absent extras are not ours
                continue
            backbone = model.get('backbone') if isinstance(model, dict) else None
            if not isinstance(backbone, dict):
                continue
            kind = str(backbone.get('type', '')).split('.')[-1]
            if kind in types:
                yield module.__name__, root, path, model, backbone, kind


def assert_native_weights_carry_over(native, ours, tmp_dir: str, in_channels: int, size: int,
                                     num_outputs: int = None) -> None:
    """``native``'s weights, saved to ``tmp_dir``, load into ``ours`` through our loader with
    ``strict=True`` and, in eval mode on a seeded ``(1, in_channels, size, size)`` input, give
    as many outputs (``num_outputs`` when given) with the same values."""
    from mmbackbones.checkpoint import load_checkpoint
    path = os.path.join(tmp_dir, 'native.pth')
    torch.save(native.state_dict(), path)
    try:
        report = load_checkpoint(ours, path, strict=True, logger='silent')
    finally:
        os.remove(path)
    assert report.ok, report.message
    native.eval()
    ours.eval()
    x = torch.randn(1, in_channels, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = native(x), ours(x)
    assert len(got) == len(expected)
    if num_outputs is not None:
        assert len(got) == num_outputs
    for i, (e, g) in enumerate(zip(expected, got)):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5 * e.abs().max().item(),
                                   msg=f'output {i}')


def switch_report(entries, compare, ident, group) -> int:
    """What ``python tests/downstream/test_shipped_<family>_configs.py`` prints: each distinct
    backbone dict through ``compare(entry, tmp_dir)``, then per ``group(entry)`` (a toolbox, a
    type, or both) how many shipped configs build with the type switched alone and equal the
    native outputs. 0 when all of them do."""
    import collections
    import tempfile
    counts, ok = collections.Counter(), collections.Counter()
    for entry in entries:
        key, n = group(entry), len(entry['configs'])
        counts[key] += n
        with tempfile.TemporaryDirectory() as tmp:
            try:
                compare(entry, tmp)
                ok[key] += n
            except Exception as err:  # noqa: BLE001 - a report, not a test
                print(f'FAIL {ident(entry)} ({n} configs): {type(err).__name__}: {err}'[:300])
    for key in sorted(counts, key=str):
        name = ' '.join(key) if isinstance(key, tuple) else key
        print(f'{name}: {ok[key]} of {counts[key]} shipped configs build with the type switched '
              f'alone and equal the native outputs')
    print(f'{len(entries)} distinct backbone dicts')
    return 0 if ok == counts else 1
