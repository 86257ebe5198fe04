"""mmdet's/mmseg's arguments given to a core class (``mmcls.<Type>``, ``mmbackbones.<Type>``).

A core class takes mmpretrain's signature, defaults and meanings. mmdet's and mmseg's spellings
have their own types, the host twins of ``mmbackbones.compat`` (``mmbackbones.mmdet.<Type>``,
``mmbackbones.mmseg.<Type>``), each taking that library's whole signature and defaults.

For now, an argument that only the host's class has still works on the core class: it keeps the
meaning it has in that library, changes no other argument's default, and raises one
:class:`HostArgumentWarning` naming the twin. :func:`take_host_args` does the checks and the
warning; each family translates the arguments into its own (the same translation its twin uses).
"""
import difflib
import inspect
import warnings
from typing import Dict, Iterable, List, Sequence


class HostArgumentWarning(UserWarning):
    """An mmdet/mmseg-only argument was given to an mmpretrain-spelled core class."""


def twin_types(owner: str, hosts: Iterable[str]) -> str:
    """``type='mmbackbones.<host>.<owner>'`` for each host that has a twin of ``owner``."""
    from ..registry import HOST_TWINS
    hosts = sorted(set(hosts))
    have = [h for h in hosts if h in HOST_TWINS and HOST_TWINS[h].twin(owner) is not None]
    return ' or '.join(f"type='mmbackbones.{host}.{owner}'" for host in have or hosts)


def own_arguments(cls) -> List[str]:
    """The named arguments of ``cls.__init__`` (``self`` and ``**kwargs`` left out)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name != 'self'
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def take_host_args(module, given: dict, host_only: Dict[str, Sequence[str]]) -> dict:
    """Check the ``**kwargs`` of a core constructor and warn once about host-only arguments.

    ``module`` is the backbone being built (a twin, whose class names its ``host``, passes the
    host's arguments without a warning); ``host_only`` maps each argument that only mmdet's/
    mmseg's class has to the hosts that have it. A name that is not there is a ``TypeError``
    naming the class, the argument and the closest accepted names. Returns ``given``.
    """
    owner = type(module).__name__
    accepted = own_arguments(type(module))
    twin = getattr(type(module), 'host', None) is not None  # a twin passes its own arguments
    unknown = [key for key in given if key not in host_only]
    if unknown:
        key = unknown[0]
        names = list(accepted) + [k for k in host_only if k not in accepted]
        close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
        hint = (' Did you mean ' + ' or '.join(repr(c) for c in close) + '?') if close else ''
        raise TypeError(f'{owner} got an unknown argument {key!r}.{hint} (accepted: '
                        f'{", ".join(accepted)}; mmdet/mmseg spellings: '
                        f'{", ".join(k for k in host_only if k not in accepted)})')
    if given and not twin:
        from .base import caller_stacklevel  # the user's line, past our wrappers and mmengine
        hosts = sorted({host for key in given for host in host_only[key]})
        warnings.warn(
            f'{owner}: {", ".join(sorted(given))} {"is" if len(given) == 1 else "are"} '
            f'{"/".join(hosts)}\'s spelling, not mmpretrain\'s: kept with the '
            f'{"/".join(hosts)} meaning for now, changing no other default. For that '
            f'library\'s whole signature and defaults use {twin_types(owner, hosts)}',
            HostArgumentWarning, stacklevel=caller_stacklevel())
    return given


def check_stage_count(frozen_stages, num_stages: int) -> int:
    """``frozen_stages`` counted as mmpretrain's Swin and CSPNet count it: ``-1`` nothing, ``k``
    the stem and ``stages[0..k]`` (so ``k <= num_stages - 1``); mmdet's/mmseg's Swin and our
    other families count ``k`` as the stem and ``stages[0..k-1]``."""
    last = num_stages - 1
    if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int):
        raise TypeError(f'frozen_stages must be an int in -1..{last}, got {frozen_stages!r}')
    if not -1 <= frozen_stages <= last:
        raise ValueError(f"frozen_stages must be in -1..{last} (mmpretrain's count: -1 nothing, "
                         f"k the stem and stages[0..k]), got {frozen_stages!r}")
    return frozen_stages


def to_contract_count(frozen_stages: int) -> int:
    """mmpretrain's Swin/CSPNet ``k`` (the stem and ``stages[0..k]``) in the contract's count
    (``stem_and_stages()`` groups ``0..k + 1``); ``-1`` stays ``-1``."""
    return -1 if frozen_stages < 0 else frozen_stages + 1


__all__ = ['HostArgumentWarning', 'check_stage_count', 'to_contract_count', 'own_arguments', 'take_host_args',
           'twin_types']
