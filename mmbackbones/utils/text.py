"""Showing user values in messages: one line, cut to a readable length."""

MAX_SHOWN = 200  # characters of a value's repr an error message shows


def shown(value, limit: int = MAX_SHOWN) -> str:
    """``repr(value)``, cut to ``limit`` characters with a note of how long it was.

    Every message that echoes a user value uses this, so a 200,000-entry ``out_indices`` or a
    megabyte of text in a config gives a message of a few hundred characters, not megabytes.
    """
    try:
        text = repr(value)
    except Exception as err:  # a broken __repr__ must not hide the real error
        text = f'<{type(value).__name__} with a failing repr: {type(err).__name__}>'
    if len(text) <= limit:
        return text
    size = ''
    if isinstance(value, (list, tuple, dict, set, frozenset, str, bytes)):
        unit = 'characters' if isinstance(value, str) else 'bytes' if isinstance(
            value, bytes) else 'items'
        size = f'{len(value)} {unit}, '
    head = max(limit - 40, limit // 2)
    return f'{text[:head]} ... ({size}{len(text)} characters of repr, cut)'


def cut(text: str, limit: int = 1000) -> str:
    """``text`` (a message, already words) cut to ``limit`` characters with a note."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f'{text[:limit - 40]} ... ({len(text)} characters, cut)'
