"""`make bench` (benchmarks/run_all.py): progress, output folder, tracked results untouched.

The real benchmark scripts take minutes; here run_all drives two small scripts that follow the
same interface (``--quick``, ``--out``/``--output``), written into a temporary folder.
"""
import hashlib
import importlib.util
import json
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = '''import argparse, json, sys
p = argparse.ArgumentParser()
p.add_argument('--quick', action='store_true')
p.add_argument('{option}')
a = p.parse_args()
print('step 1 of 2', flush=True)
print('step 2 of 2', flush=True)
json.dump(dict(quick=a.quick), open(a.{attr}, 'w'))
sys.exit({code})
'''


def _load_run_all():
    spec = importlib.util.spec_from_file_location(
        'run_all', os.path.join(REPO, 'benchmarks', 'run_all.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tracked_results():
    out = subprocess.run(['git', 'ls-files', 'benchmarks/results'], cwd=REPO,
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f'not a git checkout: {out.stderr.strip()}')
    files = out.stdout.split()
    return {f: hashlib.sha256(open(os.path.join(REPO, f), 'rb').read()).hexdigest()
            for f in files}


def _scripts(tmp_path, name: str, code: int) -> str:
    """A scripts folder with ``bench_<name>.py`` (exit ``code``) and a passing ``bench_all.py``
    (which takes ``--output`` where the others take ``--out``)."""
    scripts = tmp_path / 'scripts'
    scripts.mkdir()
    (scripts / f'bench_{name}.py').write_text(SCRIPT.format(option='--out', attr='out',
                                                            code=code))
    (scripts / 'bench_all.py').write_text(SCRIPT.format(option='--output', attr='output',
                                                        code=0))
    return str(scripts)


def test_run_all_streams_progress_and_keeps_tracked_results(tmp_path, capsys):
    scripts = _scripts(tmp_path, 'fam', 0)
    before = _tracked_results()
    run_all = _load_run_all()
    out_dir = tmp_path / 'run'
    assert run_all.main(['--out-dir', str(out_dir)], scripts_dir=scripts) == 0
    printed = capsys.readouterr().out
    assert '[bench 1/2] bench_fam.py --quick' in printed
    assert '  fam | step 2 of 2' in printed and '[bench 2/2] bench_all.py --quick' in printed
    assert sorted(os.listdir(out_dir)) == ['all.json', 'all.log', 'fam.json', 'fam.log']
    assert json.load(open(out_dir / 'fam.json')) == {'quick': True}
    assert 'step 1 of 2' in (out_dir / 'fam.log').read_text()
    assert _tracked_results() == before
    assert not [f for f in os.listdir(os.path.join(REPO, 'benchmarks', 'results'))
                if f.endswith('.log')]


def test_run_all_reports_a_failed_script(tmp_path, capsys):
    scripts = _scripts(tmp_path, 'bad', 3)
    run_all = _load_run_all()
    assert run_all.main(['--out-dir', str(tmp_path / 'run')], scripts_dir=scripts) == 1
    assert 'bench_bad.py: FAILED (exit 3)' in capsys.readouterr().out


def test_every_real_script_takes_an_output_path():
    """run_all passes --out (bench_all: --output) to each script; each must accept it."""
    import glob
    run_all = _load_run_all()
    for script in glob.glob(os.path.join(REPO, 'benchmarks', 'bench_*.py')):
        name = os.path.basename(script)[len('bench_'):-len('.py')]
        option = run_all.OUTPUT_OPTION.get(name, '--out')
        assert f"'{option}'" in open(script).read(), script
