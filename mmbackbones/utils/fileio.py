"""Writing files safely: :func:`atomic_output`, used by every writer of mmbackbones (checkpoint
``save_file``/``convert``, ``export``'s ONNX file, ``show``'s picture)."""
import contextlib
import os
import tempfile
from typing import Optional

__all__ = ['atomic_output', 'output_problem']

_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_output(path: str):
    """``with atomic_output('out.pth') as tmp: write(tmp)``: the writer writes a temporary file
    in the destination folder, renamed over ``path`` only when the block succeeds (removed when
    it fails). ``path`` is never half-written, and a source file that is still memory-mapped
    (``convert a.pth a.pth``) keeps its old contents until it is unmapped."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    # the suffix is kept: some writers pick the format from it
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{base}.', suffix=f'.tmp{ext}')
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def output_problem(path: str, suffixes=()) -> Optional[str]:
    """Why ``path`` cannot be written as an output file (its folder is missing or not
    writable, it is a folder or a device, its suffix is not one of ``suffixes``), or ``None``.
    Front ends call it before building anything, so a bad ``-o`` costs nothing."""
    path = os.fspath(path)
    if not path:
        return 'the output path is empty'
    full = os.path.abspath(path)
    folder = os.path.dirname(full)
    if os.path.isdir(full):
        return f'output {path} is an existing folder, not a file'
    if os.path.exists(full) and not os.path.isfile(full):
        return f'output {path} exists and is not a regular file'
    if suffixes and not path.lower().endswith(tuple(suffixes)):
        return f'output file must end with {" or ".join(suffixes)}, got {path!r}'
    if not os.path.isdir(folder):
        what = 'is not a folder' if os.path.exists(folder) else 'does not exist'
        return f'output folder {what}: {folder}'
    if not os.access(folder, os.W_OK | os.X_OK):
        return f'output folder is not writable: {folder}'
    if os.path.exists(full) and not os.access(full, os.W_OK):
        return f'output file is not writable: {path}'
    return None
