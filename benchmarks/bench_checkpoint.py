"""Loading a checkpoint into a backbone: memory and time, ours against a plain ``torch.load``.

Each method runs in a fresh subprocess: build the model, then load the file and copy it into the
model while the loaded dict is still referenced (the moment of peak use). Reported: growth of
anonymous memory (``RssAnon``: what a second copy of the weights costs) and of file-backed pages
(``RssFile``: the page cache an mmap reads through, which the kernel can drop), and the median
load time. The anchor is ``torch.load(weights_only=True)`` without mmap + ``load_state_dict``
(what mmengine's default loader does).

    python benchmarks/bench_checkpoint.py [--quick] [--threads N]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results')
ROOT = os.path.dirname(HERE)

CHILD = r'''
import json, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads({threads})
import mmbackbones.models
from mmbackbones import build_backbone

def mem():
    out = {{}}
    for line in open('/proc/self/status'):
        if line.startswith(('RssAnon', 'RssFile')):
            k, v = line.split(':')
            out[k] = int(v.split()[0]) / 1024
    return out

model = build_backbone({cfg!r})
before = mem()
t0 = time.perf_counter()
method = {method!r}
path = {path!r}
if method == 'torch.load':
    sd = torch.load(path, map_location='cpu', weights_only=True)
    model.load_state_dict(sd, strict=True)
else:
    from mmbackbones.checkpoint import read_state_dict, load_state_dict
    read = read_state_dict(path, target=model, logger='silent')
    load_state_dict(model, read.state_dict, strict=True, logger='silent')
dt = time.perf_counter() - t0
after = mem()
print(json.dumps(dict(seconds=dt, anon_mb=after['RssAnon'] - before['RssAnon'],
                      file_mb=after['RssFile'] - before['RssFile'])))
'''


def run_child(method, path, cfg, threads):
    code = CHILD.format(root=ROOT, threads=threads, cfg=cfg, method=method, path=path)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='ResNet-50 and 1 run per method')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=os.path.join(RESULTS, 'bench_checkpoint.json'))
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    import torch
    from mmbackbones import build_backbone
    from safetensors.torch import save_file
    cfg = dict(type='ResNet', depth=50) if args.quick else dict(type='ResNet', depth=152)
    runs = 1 if args.quick else 3
    model = build_backbone(cfg)
    sd = model.state_dict()
    size_mb = sum(v.numel() * v.element_size() for v in sd.values()) / 2**20
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pth, st = os.path.join(tmp, 'w.pth'), os.path.join(tmp, 'w.safetensors')
        torch.save(sd, pth)
        save_file({k: v.contiguous() for k, v in sd.items()}, st)
        for name, method, path in (('torch.load (no mmap) [anchor]', 'torch.load', pth),
                                   ('mmbackbones .pth (weights_only, mmap)', 'ours', pth),
                                   ('mmbackbones .safetensors', 'ours', st)):
            results = [run_child(method, path, cfg, args.threads) for _ in range(runs)]
            rows.append(dict(method=name,
                             seconds=statistics.median(r['seconds'] for r in results),
                             anon_mb=statistics.median(r['anon_mb'] for r in results),
                             file_mb=statistics.median(r['file_mb'] for r in results)))
    anchor = rows[0]
    print(f'{cfg} weights: {size_mb:.0f} MB; median of {runs} run(s), fresh process each')
    print(f'{"method":40s} {"load s":>8s} {"x anchor":>9s} {"anon MB":>9s} {"file MB":>9s}')
    for r in rows:
        r['time_ratio'] = r['seconds'] / anchor['seconds']
        print(f'{r["method"]:40s} {r["seconds"]:8.3f} {r["time_ratio"]:9.2f} '
              f'{r["anon_mb"]:9.1f} {r["file_mb"]:9.1f}')
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(config=cfg, weights_mb=size_mb, runs=runs, threads=args.threads,
                       rows=rows), f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
