"""The detectron2/detrex tier (``make test-detectron2``): real detectron2 and detrex.

Every module here skips when detectron2 (or detrex) is not importable: neither is on PyPI, the
tier's venv installs the wheels from ../shared/wheels. detrex's ``projects/`` (DINO) come from
``$DETREX_ROOT`` (a detrex checkout) or the source archive ``$DETREX_SRC_TAR`` /
``../shared/wheels/detrex-*.tar.gz``, extracted once per session into a temporary folder.
"""
import glob
import os
import sys
import tarfile

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _detrex_source():
    root = os.environ.get('DETREX_ROOT')
    if root:
        return root, None
    tar = os.environ.get('DETREX_SRC_TAR') or next(iter(sorted(glob.glob(
        os.path.join(REPO, '..', 'shared', 'wheels', 'detrex-*.tar.gz')))), None)
    return None, tar


@pytest.fixture(scope='session')
def detrex_root(tmp_path_factory):
    """A folder holding detrex's ``projects/`` package (every project), put on ``sys.path``."""
    root, tar = _detrex_source()
    if root is None:
        if not tar or not os.path.exists(tar):
            pytest.skip('no detrex source for projects/ (set DETREX_ROOT to a detrex checkout or '
                        'DETREX_SRC_TAR to its source archive; see ../shared/wheels/README.md)')
        out = tmp_path_factory.mktemp('detrex')
        with tarfile.open(tar) as archive:
            # all of projects/ (the corpus test reads every project's configs), not detrex/:
            # the installed detrex (with its packaged configs/) must stay the one imported
            members = [m for m in archive.getmembers() if '/projects/' in m.name]
            archive.extractall(out, members=members, filter='data')
        (top,) = os.listdir(out)
        root = str(out / top)
    if not os.path.isdir(os.path.join(root, 'projects', 'dino')):
        pytest.skip(f'{root} has no projects/dino')
    sys.path.insert(0, root)
    yield root
    sys.path.remove(root)


@pytest.fixture
def cpu_for_cuda(monkeypatch):
    """``.cuda()`` is the identity and ``.to('cuda')`` goes to the CPU (no GPU here)."""
    if torch.cuda.is_available():
        return
    to = torch.Tensor.to

    def to_cpu(self, *args, **kwargs):
        def fix(d):
            return 'cpu' if (isinstance(d, str) and d.startswith('cuda')) or \
                (isinstance(d, torch.device) and d.type == 'cuda') else d
        return to(self, *(fix(a) for a in args), **{k: fix(v) for k, v in kwargs.items()})

    monkeypatch.setattr(torch.Tensor, 'cuda', lambda self, *a, **k: self)
    monkeypatch.setattr(torch.Tensor, 'to', to_cpu)
