"""Monte-Carlo bits-back (BB-IS): bits per row for k importance samples against -ELBO and -IWAE_k.

For each data set a small vanilla VAE is trained once on the train split (fixed epochs, seeded) and
cached under benchmarks/checkpoints/; its test rows (at most --max-rows) are then coded with
``BitsBackCoder(vae, n_particles=k)`` for each k. Per (set, k) the script records, in bits per row:
the payload (the ANS streams), the whole file, the float model's -ELBO and -IWAE_k (``coder.report``:
Monte-Carlo, 16 ELBO draws and 4 IWAE_k estimates per row), the one-time overhead (the first row's
posterior entropy, plus, for k > 1, the rows at the start of a chunk that are coded with one particle
until the ANS stack holds a k-particle row: they pay the -ELBO), and encode / decode rows per second
(best of --repeats, each decode checked value-exact).

    OMP_NUM_THREADS=1 python benchmarks/bench_mc_bitsback.py            # all sets, k = 1 5 20 50

Resumable: one csv row is appended per (set, k) to benchmarks/results/mc_bitsback.csv and rows
already there are skipped; the markdown table benchmarks/results/mc_bitsback.md is rewritten from the
csv after every row (with the command line).
"""

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import REPO, RESULTS, load_dataset  # noqa: E402

SETS = ["caltech_silhouettes", "nltcs", "plants", "baudio", "jester", "dna", "cwebkb"]
LATENT = {"caltech_silhouettes": 40, "nltcs": 8}
FIELDS = ["dataset", "n_features", "n_rows", "latent_dim", "k", "payload_bits_per_row", "file_bits_per_row",
          "neg_elbo_bits_per_row", "neg_iwae_bits_per_row", "overhead_bits", "single_particle_rows",
          "bound_bits_per_row", "payload_vs_bound_pct", "payload_vs_iwae_pct", "saving_vs_k1_pct",
          "encode_rows_per_s", "decode_rows_per_s"]


def model_for(name, data, epochs, max_train):
    import joblib

    from skvae import VAEDensityEstimator

    path = REPO / "benchmarks" / "checkpoints" / f"mc_bitsback_{name}_e{epochs}.joblib"
    if path.exists():
        return joblib.load(path)
    vae = VAEDensityEstimator(latent_dim=LATENT.get(name, 20), hidden_layer_sizes=(100,), max_epochs=epochs,
                              batch_size=100, random_state=0)
    vae.fit(np.asarray(data.train[:max_train], dtype=np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(vae, path)
    return vae


def measure(vae, X, k, repeats):
    from skvae.coding import BitsBackCoder

    coder = BitsBackCoder(vae, n_particles=k).fit()
    r = coder.report(X)
    n = len(X)
    encode_s = decode_s = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        data = coder.encode(X)
        encode_s = min(encode_s, time.perf_counter() - t)
        t = time.perf_counter()
        Y = coder.decode(data)
        decode_s = min(decode_s, time.perf_counter() - t)
        if not (Y.dtype == X.dtype and np.array_equal(X, Y)):
            raise AssertionError("decoding is not exact")
    elbo, iwae = r.negative_elbo_bits / n, r.negative_iwae_bits / n
    # what the payload should be: -IWAE_k, plus the first row's entropy, plus the one-particle rows at
    # the -ELBO instead of the -IWAE_k
    bound = iwae + (r.overhead_bits + r.single_particle_rows * (elbo - iwae)) / n
    payload = r.payload_bits / n
    return {"n_rows": n, "k": k, "payload_bits_per_row": payload, "file_bits_per_row": r.total_bits / n,
            "neg_elbo_bits_per_row": elbo, "neg_iwae_bits_per_row": iwae, "overhead_bits": r.overhead_bits,
            "single_particle_rows": r.single_particle_rows, "bound_bits_per_row": bound,
            "payload_vs_bound_pct": 100 * (payload / bound - 1), "payload_vs_iwae_pct": 100 * (payload / iwae - 1),
            "encode_rows_per_s": n / encode_s, "decode_rows_per_s": n / decode_s}


def read_rows(path):
    if not path.exists():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def write_markdown(rows, command, path):
    lines = ["# Monte-Carlo bits-back (BB-IS): bits per row against -ELBO and -IWAE_k", "",
             f"`{command}`", "",
             "Test rows of each set (at most the first `--max-rows`), one chunk each; a small vanilla VAE "
             "(hidden 100, latent 20; Silhouettes 40, nltcs 8) trained once on the train split. -ELBO and "
             "-IWAE_k: the float model, Monte-Carlo (`coder.report`). Bound = -IWAE_k + (first-row entropy "
             "+ one-particle rows x (-ELBO - -IWAE_k)) / rows. Saving: payload against the k = 1 payload.", "",
             "| data | D | rows | k | payload | file | −ELBO | −IWAE_k | one-particle rows | payload vs bound "
             "| payload vs −IWAE_k | saving vs k=1 | encode rows/s | decode rows/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        f = {key: float(r[key]) for key in FIELDS[5:]}
        lines.append(f"| {r['dataset']} | {r['n_features']} | {r['n_rows']} | {r['k']} | "
                     f"{f['payload_bits_per_row']:.2f} | {f['file_bits_per_row']:.2f} | "
                     f"{f['neg_elbo_bits_per_row']:.2f} | {f['neg_iwae_bits_per_row']:.2f} | "
                     f"{int(f['single_particle_rows'])} | {f['payload_vs_bound_pct']:+.2f} % | "
                     f"{f['payload_vs_iwae_pct']:+.2f} % | {f['saving_vs_k1_pct']:.2f} % | "
                     f"{f['encode_rows_per_s']:,.0f} | {f['decode_rows_per_s']:,.0f} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=SETS)
    parser.add_argument("--k", nargs="+", type=int, default=[1, 5, 20, 50])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--max-train", type=int, default=20000)
    parser.add_argument("--max-rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS / "mc_bitsback"))
    args = parser.parse_args(argv)
    command = "OMP_NUM_THREADS=%s python benchmarks/bench_mc_bitsback.py %s" % (
        os.environ.get("OMP_NUM_THREADS", "?"), " ".join(argv if argv is not None else sys.argv[1:]))
    csv_path, md_path = Path(args.out + ".csv"), Path(args.out + ".md")
    import torch

    torch.set_num_threads(1)
    rows = read_rows(csv_path)
    done = {(r["dataset"], int(r["k"])) for r in rows}
    for name in args.sets:
        if all((name, k) in done for k in args.k):
            continue
        data = load_dataset(name)
        vae = model_for(name, data, args.epochs, args.max_train)
        X = np.ascontiguousarray(data.test[:args.max_rows], dtype=np.uint8)
        for k in args.k:
            if (name, k) in done:
                continue
            t = time.time()
            row = {"dataset": name, "n_features": X.shape[1], "latent_dim": vae.latent_dim, **measure(vae, X, k, args.repeats)}
            base = [r for r in rows if r["dataset"] == name and int(r["k"]) == 1]
            k1 = row["payload_bits_per_row"] if k == 1 else (float(base[0]["payload_bits_per_row"]) if base else float("nan"))
            row["saving_vs_k1_pct"] = 100 * (1 - row["payload_bits_per_row"] / k1)
            new = not csv_path.exists()
            with open(csv_path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow({key: row[key] for key in FIELDS})
            rows.append({key: str(row[key]) for key in FIELDS})
            write_markdown(rows, command, md_path)
            print(f"{name} k={k}: payload {row['payload_bits_per_row']:.3f} -ELBO {row['neg_elbo_bits_per_row']:.3f} "
                  f"-IWAE {row['neg_iwae_bits_per_row']:.3f} vs bound {row['payload_vs_bound_pct']:+.3f} % "
                  f"saving {row['saving_vs_k1_pct']:.2f} % enc {row['encode_rows_per_s']:.0f}/s "
                  f"dec {row['decode_rows_per_s']:.0f}/s ({time.time() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
