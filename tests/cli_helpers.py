"""Run the real ``mmbackbones`` console script in a subprocess, on tiny configs.

The configs use the shared test ``ToyBackbone`` (tests/toy_backbone.py: channels 8/16/32 at
strides 4/8/16) through ``custom_imports``, exactly as a user registers an out-of-tree backbone.
The subprocess finds it through PYTHONPATH=tests (a third-party wheel in the venv ships a
top-level ``tests`` package, so ``tests.toy_backbone`` is not importable outside pytest).
"""
import os
import shutil
import subprocess
import sys
import textwrap

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS_DIR = os.path.join(REPO_ROOT, 'tests')
DEMO_IMAGE = os.path.join(REPO_ROOT, 'demo', 'demo.png')


def cli_command():
    """The installed console script next to this interpreter, else ``python -m mmbackbones``."""
    script = os.path.join(os.path.dirname(sys.executable), 'mmbackbones')
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return [script]
    found = shutil.which('mmbackbones')
    return [found] if found else [sys.executable, '-m', 'mmbackbones']


def run_cli(*args, cwd=None, timeout=300, env_extra=None):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([TESTS_DIR, REPO_ROOT] + (
        [env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    env.update({'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'COLUMNS': '160'})
    env.pop('MMBACKBONES_DEBUG', None)
    env.update(env_extra or {})
    return subprocess.run(cli_command() + [str(a) for a in args], cwd=cwd or REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, *fragments, code=2):
    """Exit ``code``, exactly one line on stderr containing every fragment, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert 'Traceback' not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def write_toy_config(folder, name='toy.py', backbone='', extra=''):
    """A config building ``ToyBackbone`` (``backbone`` adds constructor arguments)."""
    path = os.path.join(str(folder), name)
    with open(path, 'w') as f:
        f.write(textwrap.dedent(f'''\
            custom_imports = dict(imports=['toy_backbone'], allow_failed_imports=False)
            model = dict(type='ImageClassifier', backbone=dict(type='ToyBackbone', {backbone}))
            ''') + textwrap.dedent(extra))
    return path


def assert_file_refused(path, text: str, load, match: str) -> None:
    """Write ``text`` to ``path``; ``load(path)`` must raise a ValueError matching ``match``."""
    import pytest
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load(path)
