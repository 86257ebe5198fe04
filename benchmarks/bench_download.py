"""What the download integrity checks cost: ``mmbackbones.checkpoint.download`` against a plain
copy of the same bytes, from an HTTP server on 127.0.0.1 (no network: the loopback is the fastest
link there is, so the relative overhead is the largest a user can see).

Methods, each timed over ``--rounds`` rounds in rotating order, fresh cache every round:

* ``plain copy``: ``urllib`` read + write to a file, no checks (the floor);
* ``torch.hub``: ``torch.hub.download_url_to_file`` (what mmengine's ``load_url`` does; it
  hashes only when asked, here with ``hash_prefix`` like our check);
* ``mmbackbones first download``: temp file + lock + sha256 + length check + rename + marker;
* ``mmbackbones cache hit``: the verified marker matches: stat only;
* ``mmbackbones cache hit, no marker``: a file placed by hand: hashed once.

    python benchmarks/bench_download.py [--size-mb 100] [--rounds 5]

Writes ``benchmarks/results/download.json`` (or ``--out``).
"""
import argparse
import hashlib
import http.server
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def _serve(root):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=root, **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size-mb', type=int, default=100)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'download.json'),
                        help='where the JSON result goes')
    args = parser.parse_args()

    import torch.hub

    from mmbackbones.checkpoint.download import cache_path_for, download
    work = tempfile.mkdtemp(prefix='bench_download-')
    www = os.path.join(work, 'www')
    os.makedirs(www)
    data = os.urandom(args.size_mb << 20)
    name = f'model_20240101-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    with open(os.path.join(www, name), 'wb') as f:
        f.write(data)
    del data
    httpd = _serve(www)
    url = f'http://127.0.0.1:{httpd.server_address[1]}/{name}'
    os.environ['TORCH_HOME'] = os.path.join(work, 'torch_home')  # no hub hit for our loader

    def fresh_home():
        home = os.path.join(work, 'home')
        shutil.rmtree(home, ignore_errors=True)
        os.environ['MMBACKBONES_HOME'] = home

    def plain():
        out = os.path.join(work, 'plain.bin')
        with urllib.request.urlopen(url) as r, open(out, 'wb') as f:
            shutil.copyfileobj(r, f, 1 << 20)
        os.remove(out)

    def hub():
        out = os.path.join(work, 'hub.bin')
        torch.hub.download_url_to_file(url, out, hash_prefix=name.split('-')[-1][:8],
                                       progress=False)
        os.remove(out)

    def ours_first():
        fresh_home()
        download(url, progress=False)

    def ours_hit():
        download(url, progress=False)

    def ours_hit_no_marker():
        shutil.rmtree(os.path.join(os.environ['MMBACKBONES_HOME'], 'checkpoints', '.verified'))
        download(url, progress=False)

    methods = [('plain copy', plain), ('torch.hub', hub), ('mmbackbones first download',
                                                           ours_first),
               ('mmbackbones cache hit', ours_hit),
               ('mmbackbones cache hit, no marker', ours_hit_no_marker)]
    times = {m: [] for m, _ in methods}
    fresh_home()
    download(url, progress=False)  # warm the page cache and the server
    for r in range(args.rounds):
        order = methods[r % 2:] + methods[:r % 2]  # rotate the first two
        for label, fn in order:
            if label.startswith('mmbackbones cache hit') and not os.path.isfile(
                    cache_path_for(url)):
                ours_first()
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    httpd.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(times['plain copy'])
    rows = []
    for label, _ in methods:
        med = statistics.median(times[label])
        rows.append(dict(method=label, median_s=round(med, 4),
                         min_s=round(min(times[label]), 4),
                         vs_plain_copy=round(med / base, 3)))
        print(f'{label:36s} median {med * 1000:8.1f} ms  min {min(times[label]) * 1000:8.1f} ms'
              f'  x{med / base:.2f} of a plain copy')
    result = dict(size_mb=args.size_mb, rounds=args.rounds, python=sys.version.split()[0],
                  cpus=os.cpu_count(), rows=rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
