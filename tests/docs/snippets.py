"""Run the Python code blocks of README.md and docs/*.md, offline, with weights made on the spot.

A page's blocks run in order in one namespace, in a scratch folder (``configs/`` linked in), with
``$MMBACKBONES_HOME`` there too, so nothing is downloaded and nothing of the user's is touched.
What a block is comes from an HTML comment on the line above it (invisible on the site and on
GitHub):

* no comment: a ```` ```python ```` block is executed;
* ``<!-- snippet: config [TIER] -->``: a config file; written to a file and read with
  ``mmbackbones.load_config`` (mmengine executes it, ``_base_`` and ``custom_imports`` included);
* ``<!-- snippet: config NAME.py -->``: the same, under that file name;
* ``<!-- snippet: module NAME -->``: written to ``NAME.py`` and imported (a file the page's
  later blocks or configs import);
* ``<!-- snippet: file NAME -->``: any block (yaml, ...) written to ``NAME`` for later blocks;
* ``<!-- snippet: tier TIER -->``: executed only in that optional tier (``downstream``: mmdet and
  mmseg installed; ``detectron2``), by ``tests/downstream`` / ``tests/detectron2``.

Hidden code: ``<!-- snippet-setup`` ... ``-->`` runs where it stands (it makes the files a block
reads, e.g. a checkpoint saved from a random model), ``<!-- snippet-teardown`` ... ``-->`` runs
at the end of the page, also after a failure.
"""
import glob
import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIERS = ('downstream', 'detectron2')
_MARKER = re.compile(r'<!--\s*snippet:\s*(.*?)\s*-->\s*$')
_FENCE = re.compile(r'^(`{3,})\s*([\w+-]*)\s*$')


@dataclass
class Block:
    """One thing to do: ``kind`` is ``run``, ``config``, ``module``, ``file``, ``setup`` or
    ``teardown``; ``tier`` is ``None`` (the main tier) or one of :data:`TIERS`."""
    kind: str
    code: str
    line: int
    lang: str = 'python'
    name: Optional[str] = None
    tier: Optional[str] = None


def doc_pages() -> List[str]:
    """README.md and every hand-written page under docs/ (not the generated reference)."""
    pages = [os.path.join(REPO, 'README.md')]
    for path in sorted(glob.glob(os.path.join(REPO, 'docs', '**', '*.md'), recursive=True)):
        rel = os.path.relpath(path, REPO).replace(os.sep, '/')
        if rel.startswith(('docs/_build/', 'docs/reference/generated/')):
            continue
        pages.append(path)
    return pages


def _parse_marker(text: str, where: str) -> dict:
    words = text.split()
    if not words:
        raise ValueError(f'{where}: empty snippet marker')
    kind, rest = words[0], words[1:]
    if kind == 'tier' and len(rest) == 1 and rest[0] in TIERS:
        return dict(kind='run', tier=rest[0])
    if kind == 'config' and len(rest) <= 2:
        tier = next((w for w in rest if w in TIERS), None)
        name = next((w for w in rest if w not in TIERS), None)
        return dict(kind='config', tier=tier, name=name)
    if kind in ('module', 'file') and len(rest) == 1:
        return dict(kind=kind, name=rest[0])
    raise ValueError(f'{where}: unknown snippet marker {text!r} (see tests/docs/snippets.py)')


def parse(path: str) -> List[Block]:
    """The blocks of one Markdown page, in order. Raises ``ValueError`` for a marker that does
    not apply to the block below it, or a Python block in a form this runner does not know."""
    lines = open(path, encoding='utf-8').read().split('\n')
    rel = os.path.relpath(path, REPO)
    blocks, marker, i = [], None, 0
    while i < len(lines):
        line = lines[i]
        hidden = re.match(r'^<!--\s*snippet-(setup|teardown)\s*$', line)
        if hidden:
            end = lines.index('-->', i)
            blocks.append(Block(hidden.group(1), '\n'.join(lines[i + 1:end]) + '\n', i + 2))
            i = end + 1
            continue
        found = _MARKER.match(line.strip())
        if found:
            marker = _parse_marker(found.group(1), f'{rel}:{i + 1}')
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            ticks, lang = fence.group(1), fence.group(2)
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == ticks), None)
            if end is None:
                raise ValueError(f'{rel}:{i + 1}: a code block that never closes')
            code = '\n'.join(lines[i + 1:end]) + '\n'
            if marker is not None:
                blocks.append(Block(marker.pop('kind'), code, i + 2, lang, **marker))
            elif lang == 'python':
                blocks.append(Block('run', code, i + 2))
            marker = None
            i = end + 1
            continue
        if line.strip() and marker is not None:
            raise ValueError(f'{rel}:{i + 1}: a snippet marker must stand right above its block')
        i += 1
    return blocks


def python_blocks(path: str) -> List[Block]:
    return [b for b in parse(path) if b.lang == 'python' and b.kind != 'file']


def run_page(path: str, workdir: str, tier: Optional[str] = None) -> List[Block]:
    """Run the page's blocks of the main tier (and those of ``tier``) in ``workdir`` (the
    caller's scratch folder, already the current directory); returns the blocks executed.
    Classes registered and modules imported by the page are removed afterwards."""
    from mmbackbones import load_config
    from mmbackbones.registry import MODELS, register_all_modules

    register_all_modules()  # the families register lazily: not the page's to remove
    rel = os.path.relpath(path, REPO)
    registered = set(MODELS.module_dict)
    modules = set(sys.modules)
    namespace = {'__name__': '__snippet__'}
    done, teardown = [], []
    try:
        for block in parse(path):
            where = f'{rel}:{block.line}'
            if block.tier not in (None, tier):
                continue
            if block.kind == 'teardown':
                teardown.append(block)
                continue
            if block.kind in ('run', 'setup'):
                exec(compile(block.code, where, 'exec'), namespace)  # noqa: S102
            elif block.kind == 'module':
                with open(os.path.join(workdir, f'{block.name}.py'), 'w') as f:
                    f.write(block.code)
                importlib.invalidate_caches()
                namespace[block.name] = importlib.import_module(block.name)
            elif block.kind == 'file':
                with open(os.path.join(workdir, block.name), 'w') as f:
                    f.write(block.code)
            elif block.kind == 'config':
                name = block.name or f'snippet_config_{block.line}.py'
                with open(os.path.join(workdir, name), 'w') as f:
                    f.write(block.code)
                namespace['cfg'] = load_config(os.path.join(workdir, name))
            done.append(block)
    finally:
        for block in teardown:
            exec(compile(block.code, f'{rel}:{block.line}', 'exec'), namespace)  # noqa: S102
        for name in set(MODELS.module_dict) - registered:
            MODELS.module_dict.pop(name, None)
        for name in set(sys.modules) - modules:
            module = sys.modules.get(name)
            if os.path.dirname(os.path.abspath(getattr(module, '__file__', None) or '/')) == \
                    os.path.abspath(workdir):
                sys.modules.pop(name, None)
    return done


def prepare_workdir(tmp_path, monkeypatch) -> str:
    """A scratch folder as the current directory: ``configs/`` linked in, the checkpoint cache
    and torch hub inside it, nothing fetched from the network."""
    os.symlink(os.path.join(REPO, 'configs'), tmp_path / 'configs')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv('MMBACKBONES_HOME', str(tmp_path / 'home'))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    return str(tmp_path)
