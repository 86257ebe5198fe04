"""Sphinx hooks: write the generated reference pages (``mmbdocs.write_all``) before Sphinx
looks for source files, so every build documents the code as it is; and read the docstrings'
own list style as reStructuredText."""
import re

import mmbdocs

# napoleon's Google sections are ``Word words:``; our docstrings also introduce argument lists
# with a longer lead-in (``Our extras (keyword-only):``, ``Their own arguments (...) still work
# here, with one warning:``) followed by indented ``name: meaning`` lines.
_LEAD_IN = re.compile(r'^\s*\S.*:\s*$')
_LITERAL_SUFFIX = re.compile(r'(``[^`\s][^`]*``)(\w)')  # ``Backbone``s


def _generate(app):
    mmbdocs.write_all(app.srcdir, log=lambda text: print(text, flush=True))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def read_docstring_lists(app, what, name, obj, options, lines):
    """A lead-in line ending in ``:`` directly above more-indented ``name: meaning`` lines
    introduces a list (not a continuation of its paragraph): those lines become a bullet list.
    A literal followed by letters (````Backbone````\\ s) gets the escaped space
    reStructuredText needs."""
    out, i = [], 0
    while i < len(lines):
        line = _LITERAL_SUFFIX.sub(r'\1\\ \2', lines[i])
        out.append(line)
        i += 1
        stripped = line.strip()
        if not _LEAD_IN.match(line) or stripped.endswith('::') or \
                stripped.startswith((':', '.. ')):
            continue
        if i >= len(lines) or not lines[i].strip() or _indent(lines[i]) <= _indent(line):
            continue
        lead, base = ' ' * _indent(line), _indent(lines[i])
        out.append('')
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) >= base:
            text = _LITERAL_SUFFIX.sub(r'\1\\ \2', lines[i].strip())
            out.append(f'{lead}- {text}' if _indent(lines[i]) == base else f'{lead}  {text}')
            i += 1
        out.append('')
    lines[:] = out


def setup(app):
    app.connect('builder-inited', _generate)
    app.connect('autodoc-process-docstring', read_docstring_lists, priority=600)
    return dict(version='1', parallel_read_safe=True, parallel_write_safe=True)
