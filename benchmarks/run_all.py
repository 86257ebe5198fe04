"""`make bench`: run every benchmark script, then print the one comparison table.

Each family script (benchmarks/bench_<name>.py) runs in its own process with ``--quick`` (pass
``--full`` for the long runs) and writes its detailed JSON under benchmarks/results/; its console
output goes to benchmarks/results/<name>.log. The table printed at the end is bench_all's: every
backbone against its anchor, measured the same way in one process.
"""
import argparse
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--full', action='store_true', help='long runs instead of --quick')
    parser.add_argument('--skip-family-scripts', action='store_true')
    args = parser.parse_args(argv)
    os.makedirs(RESULTS, exist_ok=True)
    mode = [] if args.full else ['--quick']
    scripts = sorted(p for p in glob.glob(os.path.join(HERE, 'bench_*.py'))
                     if os.path.basename(p) != 'bench_all.py')
    status = []
    for script in [] if args.skip_family_scripts else scripts:
        name = os.path.basename(script)[len('bench_'):-len('.py')]
        log = os.path.join(RESULTS, f'{name}.log')
        start = time.perf_counter()
        print(f'[bench] {os.path.basename(script)} {" ".join(mode)} -> {log}', flush=True)
        with open(log, 'w') as f:
            code = subprocess.call([sys.executable, script, *mode], stdout=f,
                                   stderr=subprocess.STDOUT, cwd=os.path.dirname(HERE))
        status.append((name, code, time.perf_counter() - start))
    subprocess.call([sys.executable, os.path.join(HERE, 'bench_all.py'), *mode],
                    cwd=os.path.dirname(HERE))
    for name, code, seconds in status:
        state = 'ok' if code == 0 else f'FAILED (exit {code})'
        print(f'  bench_{name}.py: {state} in {seconds:.0f}s, log benchmarks/results/{name}.log')
    print(f'JSON results: {", ".join(sorted(os.path.basename(p) for p in glob.glob(os.path.join(RESULTS, "*.json"))))}')
    return 0 if all(code == 0 for _, code, _ in status) else 1


if __name__ == '__main__':
    sys.exit(main())
