"""Rate and speed of BitsBackCoder (one thread).

Sections (each writes one table into benchmarks/results/coder.md):

* reference: raw throughput of constriction's Bernoulli coder on this machine
  (a ceiling for 0/1 columns: rows/s <= symbols/s / n_columns);
* speed: encode / decode rows/s of the exact (portable) coder for 784 binary
  columns (Caltech-101 Silhouettes, VAE latent 40, hidden 100) and for 16
  columns (nltcs), side by side with the floating-point coder of skvae 0.1
  (commit ``FLOAT_REFERENCE``, checked out with ``git worktree``) on the same
  fitted models and rows: fresh processes, alternating, best of each;
* rate: payload bits of the exact coder against the float model's negative
  ELBO (Monte-Carlo, 16 independent draws per row) plus the one-time
  overhead, on Silhouettes and four of the twenty data sets (nltcs, plants,
  dna, ad: 16 to 1,556 columns);
* parallel: n_jobs=2 against n_jobs=1 (bytes must be identical);
* memory (``--memory``): peak RSS of compressing and decompressing a
  1,000,000 x 100 uint8 .npy memmap, streamed, in a fresh process.

Models are small and trained briefly (``--epochs``): the point is the coder,
not the density model.

    OMP_NUM_THREADS=1 python benchmarks/bench_coder.py [--quick] [--memory]
"""

import argparse
import os
import platform
import subprocess
import sys
import textwrap
import time

import json
import shutil
import tempfile

import joblib
import numpy as np
import torch
from _harness import REPO, RESULTS, command_line, load_dataset

import constriction
from skvae import VAEDensityEstimator
from skvae.coding import BitsBackCoder
from skvae.coding._container import parse


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def bernoulli_ceiling(n=4_000_000, seed=0, repeats=3):
    rng = np.random.default_rng(seed)
    p = np.clip(np.rint(rng.beta(0.3, 0.3, size=n) * 2**16), 1, 2**16 - 1) / 2**16
    x = (rng.uniform(size=n) < p).astype(np.int32)
    model = constriction.stream.model.Bernoulli(perfect=False)
    t_enc = t_dec = np.inf
    for _ in range(repeats):
        coder = constriction.stream.stack.AnsCoder()
        t_enc = min(t_enc, timed(coder.encode_reverse, x, model, p)[1])
        t_dec = min(t_dec, timed(coder.decode, model, p)[1])
    return n / t_enc, n / t_dec


def time_split(coder, X):
    """Share of encode / decode time spent inside constriction's AnsCoder methods (cProfile)."""
    import cProfile
    import pstats

    shares = []
    blob = coder.encode(X)
    for fn in (lambda: coder.encode(X), lambda: coder.decode(blob)):
        profile = cProfile.Profile()
        profile.runcall(fn)
        stats = pstats.Stats(profile).stats
        total = sum(v[2] for v in stats.values())  # tottime over all functions
        ans = sum(v[2] for k, v in stats.items() if "AnsCoder" in k[2])
        shares.append(ans / total)
    return shares


def fit_model(X, latent, hidden, epochs):
    vae = VAEDensityEstimator(latent_dim=latent, hidden_layer_sizes=hidden, max_epochs=epochs,
                              batch_size=100, random_state=0)
    _, seconds = timed(vae.fit, X)
    return vae, seconds


def payload_bits(blob):
    return 32 * sum(len(c.words) for c in parse(blob)[1])


FLOAT_REFERENCE = "6edbbe8"  # the last commit with the floating-point coder (skvae 0.1)

SPEED_SCRIPT = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    import joblib, numpy as np, torch
    torch.set_num_threads(1)
    from skvae.coding import BitsBackCoder
    coder = BitsBackCoder(joblib.load(sys.argv[2])).fit()
    X = np.load(sys.argv[3])
    coder.decode(coder.encode(X[:300]))  # warm-up
    t_enc = t_dec = float("inf")
    for _ in range(int(sys.argv[4])):
        start = time.perf_counter(); blob = coder.encode(X); t_enc = min(t_enc, time.perf_counter() - start)
        start = time.perf_counter(); Y = coder.decode(blob); t_dec = min(t_dec, time.perf_counter() - start)
        assert np.array_equal(X, Y) and Y.dtype == X.dtype
    print(json.dumps({"encode": len(X) / t_enc, "decode": len(X) / t_dec, "bits": 8 * len(blob)}))
""")


def speed_rows(name, estimator, X, reference, workdir, rounds=3, repeats=3):
    """Exact coder against the float coder of ``reference`` (a source tree), alternating fresh processes.

    The machine is shared, so each side keeps its best run (the least disturbed one).
    """
    joblib.dump(estimator, os.path.join(workdir, "estimator.joblib"))
    np.save(os.path.join(workdir, "rows.npy"), X)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    best = {}
    for _ in range(rounds):
        for side, tree in (("exact", str(REPO)), ("float (skvae 0.1)", reference)):
            out = subprocess.run([sys.executable, "-c", SPEED_SCRIPT, tree, os.path.join(workdir, "estimator.joblib"),
                                  os.path.join(workdir, "rows.npy"), str(repeats)],
                                 check=True, capture_output=True, text=True, env=env).stdout
            run = json.loads(out.strip().splitlines()[-1])
            prev = best.setdefault(side, run)
            prev["encode"], prev["decode"] = max(prev["encode"], run["encode"]), max(prev["decode"], run["decode"])
    exact, floating = best["exact"], best["float (skvae 0.1)"]
    rows = [{"data": name, "coder": side, "rows": len(X), "encode rows/s": r["encode"], "decode rows/s": r["decode"],
             "file bits/dim": r["bits"] / X.size} for side, r in best.items()]
    rows.append({"data": name, "coder": "ratio exact / float", "rows": len(X),
                 "encode rows/s": exact["encode"] / floating["encode"],
                 "decode rows/s": exact["decode"] / floating["decode"],
                 "file bits/dim": exact["bits"] / floating["bits"]})
    return rows


def float_reference_tree(workdir):
    """A checkout of the float coder's commit (``git worktree``), removed at exit by the caller."""
    tree = os.path.join(workdir, "skvae-float-reference")
    if not os.path.isdir(tree):
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", tree, FLOAT_REFERENCE],
                       check=True, capture_output=True)
    return tree


def rate_row(name, coder, X):
    r = coder.report(X)
    ideal = r.negative_elbo_bits + r.overhead_bits
    return {"data": name, "rows": r.n_rows, "cols": r.n_features, "payload bits": r.payload_bits,
            "float -ELBO bits (MC)": r.negative_elbo_bits, "overhead bits": r.overhead_bits,
            "gap vs -ELBO+overhead": (r.payload_bits - ideal) / ideal,
            "container bits": r.container_bits, "payload bits/row": r.payload_bits / r.n_rows,
            "gzip bits/row": r.gzip_bits / r.n_rows, "xz bits/row": r.xz_bits / r.n_rows}


def fmt(value):
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if abs(value) < 1:
            return f"{100 * value:+.3f} %" if value != 0 and abs(value) < 0.05 else f"{value:.4f}"
        return f"{value:,.1f}"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return str(value)


def table(rows):
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, time, joblib, numpy as np
    coder = joblib.load(sys.argv[1])
    X = np.load(sys.argv[2], mmap_mode="r")
    start = time.perf_counter()
    with open(sys.argv[3], "wb") as f:
        coder._write(X, f)
    t_enc = time.perf_counter() - start
    rss_enc = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = np.lib.format.open_memmap(sys.argv[4], mode="w+", dtype=X.dtype, shape=X.shape)
    import mmap
    with open(sys.argv[3], "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        start = time.perf_counter()
        coder._read(data, out=out)
        t_dec = time.perf_counter() - start
    out.flush()
    same = bool(np.array_equal(np.load(sys.argv[4], mmap_mode="r")[::997], X[::997]))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(t_enc, t_dec, rss_enc, rss, same)
""")


def memory_section(epochs, n_rows, workdir):
    data = load_dataset("baudio")
    vae, _ = fit_model(data.train, 10, (50,), epochs)
    coder = BitsBackCoder(vae).fit()
    joblib.dump(coder, os.path.join(workdir, "coder.joblib"))
    base = np.concatenate([data.train, data.valid, data.test])
    path = os.path.join(workdir, "big.npy")
    big = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n_rows, base.shape[1]))
    for start in range(0, n_rows, len(base)):
        big[start:start + len(base)] = base[:n_rows - start]
    big.flush()
    del big
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, os.path.join(workdir, "coder.joblib"), path,
                          os.path.join(workdir, "big.bb"), os.path.join(workdir, "back.npy")],
                         check=True, capture_output=True, text=True, env=env).stdout.split()
    t_enc, t_dec, rss_enc, rss = float(out[0]), float(out[1]), int(out[2]), int(out[3])
    size = os.path.getsize(os.path.join(workdir, "big.bb"))
    for name in ("big.npy", "big.bb", "back.npy", "coder.joblib"):
        os.remove(os.path.join(workdir, name))
    return {"rows x cols": f"{n_rows:,} x {base.shape[1]}", "encode s": t_enc, "decode s": t_dec,
            "peak RSS after encode (MB)": rss_enc / 1024, "peak RSS overall (MB)": rss / 1024,
            "file bits/row": 8 * size / n_rows, "round trip (sampled rows)": out[4]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rows and epochs (a smoke run)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--memory", action="store_true", help="also run the 1,000,000 x 100 memmap test")
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", default="/tmp")
    parser.add_argument("--float-reference", default=None, metavar="DIR",
                        help=f"source tree of the float coder (default: a git worktree of {FLOAT_REFERENCE})")
    parser.add_argument("--out", default=str(RESULTS / "coder.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    epochs = 2 if args.quick else args.epochs
    n_speed = 3000 if args.quick else 20000
    sections = []

    enc, dec = bernoulli_ceiling()
    sections.append(("constriction Bernoulli alone (reference ceiling)", [{
        "encode symbols/s": enc, "decode symbols/s": dec,
        "=> rows/s ceiling at 784 cols (enc/dec)": f"{enc / 784:,.0f} / {dec / 784:,.0f}"}]))

    sil = load_dataset("caltech_silhouettes")
    nltcs = load_dataset("nltcs")
    vae784, t784 = fit_model(sil.train, 40, (100,), epochs)
    vae16, t16 = fit_model(nltcs.train, 8, (64,), epochs)
    all_sil = np.concatenate([sil.train, sil.valid, sil.test])
    X784 = np.resize(all_sil, (n_speed, 784))  # repeats rows past 8,671
    X16 = np.resize(nltcs.train, (n_speed, 16))
    coder784 = BitsBackCoder(vae784).fit()

    workdir = tempfile.mkdtemp(prefix="bench-coder-", dir=args.workdir)
    try:
        reference = args.float_reference or float_reference_tree(workdir)
        sections.append(("speed (one thread): exact coder against the float coder of skvae 0.1",
                         speed_rows("silhouettes, 784 cols (latent 40, hidden 100)", vae784, X784, reference, workdir)
                         + speed_rows("nltcs, 16 cols (latent 8, hidden 64)", vae16, X16, reference, workdir)))
    finally:
        if not args.float_reference:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                            os.path.join(workdir, "skvae-float-reference")], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
    enc_share, dec_share = time_split(coder784, X784[:5000])
    sections.append(("where the time goes (784 cols, cProfile)", [{
        "share of encode time in constriction": f"{100 * enc_share:.0f} %",
        "share of decode time in constriction": f"{100 * dec_share:.0f} %"}]))

    n_rate = 2000 if args.quick else 10000
    rate_rows = [rate_row("silhouettes train+valid+test (+1,329 repeated)", coder784, X784[:n_rate]),
                 rate_row("nltcs train[:10000]", BitsBackCoder(vae16).fit(), nltcs.train[:n_rate])]
    for name in ("plants", "dna", "ad"):
        data = load_dataset(name)
        vae, _ = fit_model(data.train, 20, (100,), epochs)
        rows = np.concatenate([data.train, data.valid, data.test])[:n_rate]
        rate_rows.append(rate_row(f"{name} train+valid+test[:{n_rate}]", BitsBackCoder(vae).fit(), rows))
    sections.append(("rate of the exact coder against the float model's -ELBO (default coder)", rate_rows))

    serial = BitsBackCoder(vae784, chunk_size=2500).fit()
    parallel = BitsBackCoder(vae784, chunk_size=2500, n_jobs=2).fit()
    parallel.encode(X784)  # warm-up: starts the worker processes
    blob1, t1 = timed(serial.encode, X784)
    blob2, t2 = timed(parallel.encode, X784)
    sections.append(("parallel chunks (chunk_size=2500, 784 cols)", [{
        "rows": len(X784), "n_jobs=1 encode s": t1, "n_jobs=2 encode s": t2, "identical bytes": blob1 == blob2}]))

    if args.memory:
        sections.append(("memory: streamed .npy memmap (baudio rows tiled, latent 10, hidden 50)",
                         [memory_section(epochs, 20000 if args.quick else args.memory_rows, args.workdir)]))

    load = os.getloadavg()
    lines = ["# BitsBackCoder: rate and speed", "", f"Command: `{command_line()}`", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
             f"{load[0]:.1f} at the end (shared with other jobs: absolute speeds are pessimistic); "
             f"torch {torch.__version__}, numpy {np.__version__}, one thread. Models: {epochs} epochs "
             f"(784 cols: {t784:.0f} s, 16 cols: {t16:.0f} s to fit).", ""]
    for title, rows in sections:
        lines += [f"## {title}", "", table(rows), ""]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
