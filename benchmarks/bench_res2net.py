"""Res2Net-50 26w x 4s on the CPU: inference and one training step, ours vs mmpretrain's class
and timm's ``res2net50_26w_4s``, in one run (``bench_resnest.py --family res2net``; the same
arguments).

    python benchmarks/bench_res2net.py [--quick] [--threads 2] [--batch 4] [--size 224]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_resnest import main  # noqa: E402

if __name__ == '__main__':
    # every option ('--out' too, as run_all passes it) goes to bench_resnest's parser
    main(['--family', 'res2net'] + sys.argv[1:])
