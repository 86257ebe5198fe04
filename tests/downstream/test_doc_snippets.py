"""The documentation's code blocks marked `<!-- snippet: ... downstream -->` run here, with the real
libraries (tests/docs/snippets.py explains the markers; the main tier runs the others)."""
import os

import pytest

from tests.downstream._common import require  # noqa: E402

require('mmseg')

from tests.docs import snippets  # noqa: E402

PAGES = [p for p in snippets.doc_pages()
         if any(b.tier == 'downstream' for b in snippets.parse(p))]


def test_some_page_has_downstream_blocks():
    assert PAGES


@pytest.mark.parametrize('path', PAGES, ids=lambda p: os.path.relpath(p, snippets.REPO))
def test_page_snippets_run_in_tier(path, tmp_path, monkeypatch):
    workdir = snippets.prepare_workdir(tmp_path, monkeypatch)
    done = snippets.run_page(path, workdir, tier='downstream')
    assert any(b.tier == 'downstream' for b in done)
