"""`make bench`: run every benchmark script, then print the one comparison table.

Each family script (benchmarks/bench_<name>.py) runs in its own process with ``--quick`` (pass
``--full`` for the long runs). Its output is shown as it runs, each line prefixed with the
script's name, and also saved with its JSON into one folder per run,
``work_dirs/bench/<date-time>/`` (``<name>.json``, ``<name>.log``; ignored by git). The tracked
files in benchmarks/results/ are the published figures: only ``--update-results`` writes the JSON
there (the logs still go to work_dirs/). The table printed at the end is bench_all's: every
backbone against its anchor, measured the same way in one process.
"""
import argparse
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, 'results')
# the option each script takes for its JSON path
OUTPUT_OPTION = {'all': '--output'}


def run_script(script: str, args, out_dir: str, log_dir: str, label: str) -> tuple:
    """Run one script, echoing its lines live and into ``<log_dir>/<name>.log``."""
    name = os.path.basename(script)[len('bench_'):-len('.py')]
    out = os.path.join(out_dir, f'{name}.json')
    log = os.path.join(log_dir, f'{name}.log')
    command = [sys.executable, script, *args, OUTPUT_OPTION.get(name, '--out'), out]
    start = time.perf_counter()
    print(f'{label} {os.path.basename(script)} {" ".join(args)}', flush=True)
    with open(log, 'w') as f:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                cwd=ROOT, text=True, bufsize=1)
        for line in proc.stdout:
            f.write(line)
            print(f'  {name} | {line.rstrip()}' if name != 'all' else line.rstrip(), flush=True)
        code = proc.wait()
    return name, code, time.perf_counter() - start, out, log


def main(argv=None, scripts_dir: str = HERE):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--full', action='store_true', help='long runs instead of --quick')
    parser.add_argument('--skip-family-scripts', action='store_true')
    parser.add_argument('--out-dir', default=None,
                        help='where JSON and logs go (default work_dirs/bench/<date-time>)')
    parser.add_argument('--update-results', action='store_true',
                        help='write the JSON into benchmarks/results/ (the tracked, published '
                        'figures) instead')
    args = parser.parse_args(argv)
    stamp = time.strftime('%Y%m%d-%H%M%S')
    log_dir = args.out_dir or os.path.join(ROOT, 'work_dirs', 'bench', stamp)
    out_dir = RESULTS if args.update_results else log_dir
    os.makedirs(log_dir, exist_ok=True)
    mode = [] if args.full else ['--quick']
    scripts = sorted(p for p in glob.glob(os.path.join(scripts_dir, 'bench_*.py'))
                     if os.path.basename(p) != 'bench_all.py')
    if args.skip_family_scripts:
        scripts = []
    scripts.append(os.path.join(scripts_dir, 'bench_all.py'))
    status = []
    for i, script in enumerate(scripts, 1):
        status.append(run_script(script, mode, out_dir, log_dir,
                                 f'[bench {i}/{len(scripts)}]'))
    print()
    for name, code, seconds, out, log in status:
        state = 'ok' if code == 0 else f'FAILED (exit {code})'
        print(f'  bench_{name}.py: {state} in {seconds:.0f}s; '
              f'{os.path.relpath(out if os.path.isfile(out) else log, ROOT)}')
    print(f'logs: {os.path.relpath(log_dir, ROOT)}/; JSON: {os.path.relpath(out_dir, ROOT)}/')
    return 0 if all(code == 0 for _, code, *_ in status) else 1


if __name__ == '__main__':
    sys.exit(main())
