"""Every Python code block of README.md and the hand-written docs/ pages runs (main tier).

Blocks marked for an optional tier (mmdet/mmseg, detectron2) run in tests/downstream and
tests/detectron2 (``test_doc_snippets.py``); here they are only checked to be marked for a tier
that has such a test. How blocks are marked: tests/docs/snippets.py.
"""
import os

import pytest

from tests.docs import snippets

PAGES = [p for p in snippets.doc_pages() if snippets.python_blocks(p)]


def _id(path):
    return os.path.relpath(path, snippets.REPO)


def test_pages_with_python_are_found():
    names = {_id(p) for p in PAGES}
    assert {'README.md', 'docs/concepts.md', 'docs/guides/mmdet-mmseg.md'} <= names, names


@pytest.mark.parametrize('path', PAGES, ids=_id)
def test_page_snippets_run(path, tmp_path, monkeypatch):
    workdir = snippets.prepare_workdir(tmp_path, monkeypatch)
    done = snippets.run_page(path, workdir)
    expected = [b for b in snippets.python_blocks(path) if b.tier is None and b.kind != 'teardown']
    assert [b.line for b in done if b.lang == 'python' and b.kind != 'file'] == \
        [b.line for b in expected]


def test_tier_blocks_have_a_tier_test():
    tiers = {b.tier for p in PAGES for b in snippets.parse(p) if b.tier}
    for tier in tiers:
        assert os.path.isfile(os.path.join(snippets.REPO, 'tests', tier, 'test_doc_snippets.py'))


def test_markers_are_checked(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('<!-- snippet: confg -->\n```python\nx = 1\n```\n')
    with pytest.raises(ValueError, match='unknown snippet marker'):
        snippets.parse(str(page))
    page.write_text('<!-- snippet: config -->\ntext\n```python\nx = 1\n```\n')
    with pytest.raises(ValueError, match='right above its block'):
        snippets.parse(str(page))
    page.write_text('```bash\nmake docs\n\n```python\nx = 1\n')
    with pytest.raises(ValueError, match='never closes'):
        snippets.parse(str(page))


def test_a_broken_snippet_fails(tmp_path, monkeypatch):
    page = tmp_path / 'page.md'
    page.write_text('```python\nfrom mmbackbones import build_backbone\n'
                    "build_backbone(dict(type='ResNet', depth=17))\n```\n")
    (tmp_path / 'run').mkdir()
    workdir = snippets.prepare_workdir(tmp_path / 'run', monkeypatch)
    with pytest.raises(KeyError, match='17'):
        snippets.run_page(str(page), workdir)
