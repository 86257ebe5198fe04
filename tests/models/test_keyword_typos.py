"""A misspelt keyword names the argument it probably meant (every native type, the FPN)."""
import inspect

import pytest

from mmbackbones import MODELS, build_backbone
from mmbackbones.models.necks import FPN


def _native_types():
    names = []
    for name in MODELS.known_names():
        cls = MODELS.get(name)
        if not getattr(cls, '__module__', '').startswith('mmbackbones.'):
            continue
        params = inspect.signature(cls.__init__).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            names.append(name)
    return names


def _typo(word: str) -> str:
    """Swap two middle letters: 'depth' -> 'detph'."""
    i = max(1, len(word) // 2 - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


@pytest.mark.parametrize('name', _native_types())
def test_typo_suggests_the_argument(name):
    params = [p for p in inspect.signature(MODELS.get(name).__init__).parameters
              if p not in ('self', 'init_cfg')]
    assert params, name
    target = max(params, key=len)  # the longest name has one clear closest match
    cls_name = MODELS.get(name).__name__
    with pytest.raises(TypeError, match=rf"{cls_name} got an unknown argument "
                                        rf"'{_typo(target)}'\. Did you mean '{target}'"):
        build_backbone({'type': name, _typo(target): 1})


def test_the_issue_example_and_fpn():
    with pytest.raises(TypeError, match=r"ResNet got an unknown argument 'depht'\. Did you mean "
                                        r"'depth'\?.*\(accepted: depth, in_channels"):
        build_backbone(dict(type='ResNet', depht=50))
    with pytest.raises(TypeError, match=r"FPN got an unknown argument 'num_out'\. Did you mean "
                                        r"'num_outs'"):
        FPN([8], 8, 1, num_out=2)
    with pytest.raises(TypeError, match=r"unknown argument 'zzz'\. \(accepted"):
        build_backbone(dict(type='ResNet', depth=18, zzz=1))
