"""Writing files safely: :func:`atomic_output`, used by every writer of mmbackbones (checkpoint
``save_file``/``convert``, ``export``'s ONNX file, ``show``'s picture)."""
import contextlib
import os
import tempfile

__all__ = ['atomic_output']

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
