"""Constructors with a host's exact signature, from a table.

A twin's ``__init__`` is ``host_init(PARAMS, translate)``: ``PARAMS`` is the host's signature as
``{name: default}`` in the host's order (``REQUIRED`` for an argument without a default), and
``translate(self, **arguments)`` receives every argument, given or defaulted, by name. So the
twins of one family share one translation and differ only in their tables.
"""
import inspect

REQUIRED = inspect.Parameter.empty
_POSITIONAL_OR_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD


def with_params(params: dict, after: str = None, **changes) -> dict:
    """``params`` with the defaults in ``changes``; names not in ``params`` are inserted right
    after ``after`` (in the order given)."""
    new = {k: v for k, v in changes.items() if k not in params}
    if new and after not in params:
        raise KeyError(f'after={after!r} is not an argument of the table (have: {list(params)})')
    table = {}
    for name, default in params.items():
        table[name] = changes.get(name, default)
        if name == after:
            table.update(new)
    return table


def host_init(params: dict, translate):
    """An ``__init__(self, <params>)`` whose ``inspect.signature`` is the host's (every argument
    positional-or-keyword, as in the hosts) and which calls ``translate(self, **arguments)``."""
    signature = inspect.Signature(
        [inspect.Parameter('self', _POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, _POSITIONAL_OR_KEYWORD, default=default)
           for name, default in params.items()])

    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as err:  # Python's words, with the class they are about
            raise TypeError(f'{type(self).__name__}(): {err}') from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments['self']
        translate(self, **arguments)

    __init__.__signature__ = signature
    __init__.__doc__ = translate.__doc__
    return __init__
