"""Sphinx hook: write the generated reference pages (``mmbdocs.write_all``) before Sphinx
looks for source files, so every build documents the code as it is."""
import mmbdocs


def _generate(app):
    mmbdocs.write_all(app.srcdir, log=lambda text: print(text, flush=True))


def setup(app):
    app.connect('builder-inited', _generate)
    return dict(version='1', parallel_read_safe=True, parallel_write_safe=True)
