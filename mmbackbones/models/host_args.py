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
    return ' or '.join(f"type='mmbackbones.{host}.{owner}'" for host in sorted(set(hosts)))


def own_arguments(cls) -> List[str]:
    """The named arguments of ``cls.__init__`` (``self`` and ``**kwargs`` left out)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name != 'self'
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def take_host_args(module, given: dict, host_only: Dict[str, Sequence[str]],
                   stacklevel: int = 4) -> dict:
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
        hosts = sorted({host for key in given for host in host_only[key]})
        warnings.warn(
            f'{owner}: {", ".join(sorted(given))} is {"/".join(hosts)}\'s spelling, not '
            f'mmpretrain\'s. It keeps its {"/".join(hosts)} meaning here for now and changes no '
            f'other default; for that library\'s whole signature and defaults use '
            f'{twin_types(owner, hosts)}', HostArgumentWarning, stacklevel=stacklevel)
    return given


__all__ = ['HostArgumentWarning', 'own_arguments', 'take_host_args', 'twin_types']
