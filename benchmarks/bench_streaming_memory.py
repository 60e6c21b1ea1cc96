"""Peak memory of out-of-core training as the data file grows.

Writes binary ``.npy`` files of 10^5, 3*10^5 and 10^6 rows (100 uint8
columns, so 10, 30 and 100 MB) and trains one epoch of a small VAE on each,
every run in a fresh Python process whose peak resident set size
(``ru_maxrss``) is reported. Three ways of training:

- ``fit_in_chunks``: :func:`skvae.streaming.fit_in_chunks` on the path
  (memmap, chunks of ``--chunk-size`` rows, read pages released);
- ``memmap, pages kept``: the same chunks fed to ``partial_fit`` straight from
  a memmap, without releasing its pages (what a plain loop over memmap slices
  does);
- ``in memory``: ``np.load`` of the whole file and one ``fit``.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bench_streaming_memory.py

Results go to ``benchmarks/results/streaming_memory.md`` (and ``.csv``).
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (100_000, 300_000, 1_000_000)
MODES = ("fit_in_chunks", "memmap, pages kept", "in memory")

# Runs in the child process: argv = mode, path, chunk_size, batch_size.
CHILD = r"""
import json, resource, sys, time
import numpy as np
import torch
torch.set_num_threads(1)
from skvae import VAEDensityEstimator
from skvae.streaming import fit_in_chunks

mode, path, chunk_size, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
vae = VAEDensityEstimator(latent_dim=8, hidden_layer_sizes=(64,), max_epochs=1, batch_size=batch_size,
                          random_state=0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if mode == "fit_in_chunks":
    fit_in_chunks(vae, path, n_epochs=1, chunk_size=chunk_size, shuffle_chunks=False)
elif mode == "memmap, pages kept":
    rows = np.load(path, mmap_mode="r")
    for i in range(0, len(rows), chunk_size):
        vae.partial_fit(rows[i:i + chunk_size])
else:
    vae.fit(np.load(path))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rss_before_mib": before / 1024, "peak_rss_mib": peak / 1024, "seconds": seconds,
                  "train_loss": vae.history_[-1]["train_loss"]}))
"""


def write_file(path, n_rows, n_features, seed, block=100_000):
    """Write a Bernoulli(0.3) uint8 .npy file block by block (never whole in memory)."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n_rows, n_features))
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        out[start:stop] = rng.random((stop - start, n_features)) < 0.3
    out.flush()
    del out


def run_child(mode, path, chunk_size, batch_size):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(chunk_size), str(batch_size)],
                          env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--n-features", type=int, default=100)
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--out", default=str(RESULTS / "streaming_memory"))
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="skvae_stream_") as folder:
        for n in args.sizes:
            path = Path(folder) / f"rows_{n}.npy"
            write_file(path, n, args.n_features, seed=n)
            size_mib = path.stat().st_size / 2**20
            for mode in args.modes:
                result = run_child(mode, path, args.chunk_size, args.batch_size)
                row = {"rows": n, "file_mib": round(size_mib, 1), "mode": mode,
                       "rss_before_fit_mib": round(result["rss_before_mib"], 1),
                       "peak_rss_mib": round(result["peak_rss_mib"], 1),
                       "fit_growth_mib": round(result["peak_rss_mib"] - result["rss_before_mib"], 1),
                       "seconds": round(result["seconds"], 1)}
                print(row, flush=True)
                rows.append(row)
            path.unlink()
    save(rows, args, Path(args.out))


def save(rows, args, out):
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    command = "OMP_NUM_THREADS=1 python benchmarks/bench_streaming_memory.py" + "".join(
        f" {a}" for a in sys.argv[1:])
    lines = [
        "# Peak memory of training on a .npy file, by file size",
        "",
        f"Command: `{command}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; one epoch, "
        f"VAE latent 8, hidden (64,), batch {args.batch_size}, chunks of {args.chunk_size} rows, "
        f"{args.n_features} uint8 columns (Bernoulli 0.3), one torch thread, a fresh process per run.",
        "",
        "Peak RSS is `ru_maxrss` of the process; *growth* is peak minus the peak before training "
        "(after importing torch and skvae). *seconds* is the training time on a 2-core machine shared "
        "with other jobs: not a speed comparison.",
        "",
        "| rows | file MiB | mode | peak RSS MiB | growth MiB | seconds |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['rows']:,} | {r['file_mib']} | {r['mode']} | {r['peak_rss_mib']} | "
                     f"{r['fit_growth_mib']} | {r['seconds']} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
