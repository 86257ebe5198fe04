"""mmdet's and mmseg's own Swin/ViT configs on our classes, changing only ``type``.

Walks the configs shipped inside mmdet 3.3 and mmseg 1.2 (``<package>/.mim/configs``), takes
every backbone whose type is ``SwinTransformer`` or ``VisionTransformer``, and for each distinct
backbone dict builds the native backbone and the host twin ``mmbackbones.<package>.<Type>``
with every other argument kept (mmseg's model-level ``pretrained`` pushed into the backbone, as
its ``EncoderDecoder`` does).
The native weights (randomised) go through our loader (format detection and conversion, e.g.
mmseg's ``attn.attn.in_proj_*``) with nothing missing or unexpected, and the outputs on a tiny
input of odd size must be equal.

CPU time: the first backbone of each (package, type) is built as shipped; the others at a
reduced width (``embed_dims`` = 8 x the first stage's heads; every other argument, depths and
layers included, as shipped), which keeps every argument path and the key layout.
"""
import collections
import os
import re

import pytest
import torch

from ._common import require

mmdet = require('mmdet')
mmseg = require('mmseg')

TYPES = ('SwinTransformer', 'VisionTransformer')
_MENTION = re.compile(r'\b(' + '|'.join(TYPES) + r')\b')


def _walk():
    """``{(package, type, frozen backbone dict): [config paths]}`` and the per-type counts."""
    from ._common import shipped_backbones
    groups = collections.OrderedDict()
    for pkg in (mmdet, mmseg):
        for _, root, path, model, backbone, kind in shipped_backbones((pkg,), TYPES, _MENTION):
            backbone = backbone.to_dict()
            if model.get('pretrained') is not None:  # mmseg's EncoderDecoder does this
                backbone['pretrained'] = model['pretrained']
            key = (pkg.__name__, kind, repr(sorted(backbone.items())))
            groups.setdefault(key, (backbone, []))[1].append(os.path.relpath(path, root))
    return groups


GROUPS = _walk()
_FIRST = {}
for _key in GROUPS:
    _FIRST.setdefault(_key[:2], _key)


def _narrow(kind: str, backbone: dict) -> dict:
    """The same backbone dict at a reduced width (see the module docstring)."""
    heads = backbone.get('num_heads', 12 if kind == 'VisionTransformer' else [3, 6, 12, 24])
    first = heads[0] if isinstance(heads, (list, tuple)) else heads
    return dict(backbone, embed_dims=8 * first)
COUNTS = collections.Counter((pkg, kind) for (pkg, kind, _), (_, paths) in GROUPS.items()
                             for _ in paths)


def _randomise(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.rand(param.shape, generator=gen) * 0.1 - 0.05)


def _outputs(module, x):
    out = module(x)
    flat = []
    for item in out:
        flat.extend(item if isinstance(item, (list, tuple)) else [item])
    return flat


def test_walk_found_the_shipped_configs():
    """The walk sees the configs the issue counted (~120 Swin, ~30 ViT in all)."""
    print('\nshipped configs per (package, type):', dict(COUNTS))
    assert COUNTS[('mmdet', 'SwinTransformer')] >= 90
    assert COUNTS[('mmseg', 'SwinTransformer')] >= 20
    assert COUNTS[('mmseg', 'VisionTransformer')] >= 20


@pytest.mark.parametrize('key', list(GROUPS), ids=[v[1][0] for v in GROUPS.values()])
def test_shipped_backbone_switches_by_type_only(key, recwarn):
    from mmbackbones import build_backbone
    from mmbackbones.checkpoint.converters import convert_state_dict
    from mmbackbones.checkpoint.state import load_state_dict

    pkg, kind, _ = key
    backbone, paths = GROUPS[key]
    if _FIRST[key[:2]] != key:
        backbone = _narrow(kind, backbone)
    import importlib
    importlib.import_module(f'{pkg}.models')
    registry = importlib.import_module(f'{pkg}.registry').MODELS
    # _scope_: another test may have left a different default scope behind (global)
    native = registry.build(dict(backbone, _scope_=pkg))
    native.eval()  # (mmdet's Swin.train returns None)
    _randomise(native, seed=len(paths))
    ours = build_backbone(dict(backbone, type=f'mmbackbones.{pkg}.{kind}')).eval()
    target = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    converted, _ = convert_state_dict(native.state_dict(), 'auto', target)
    report = load_state_dict(ours, converted, source=paths[0])
    assert report.missing == [] and report.unexpected == [], report.message
    x = torch.randn(1, backbone.get('in_channels', 3), 45, 77,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = _outputs(native, x), _outputs(ours, x)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(want, got)):
        assert a.shape == b.shape, (i, a.shape, b.shape)
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=f'output {i} of {paths}')
