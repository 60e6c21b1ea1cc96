"""Two-layer ladder VAE (HierarchicalVAE) against the single-layer VAE at the same training budget.

``run``: on each data set and seed, three models with the same x-side network
and the same training budget (epochs, batch size, lr, rows):

- ``vae``: ``VAEDensityEstimator(latent_dim=32, hidden_layer_sizes=(200,))``;
- ``ladder``: ``HierarchicalVAE(latent_dims=(32, 16), hidden_layer_sizes=(200,),
  ladder_hidden_sizes=(100,))``, betas (1, 1): the same x <-> z_1 networks plus a
  second latent layer (so somewhat more weights: the column ``n_weights``);
- ``ladder_wu``: the same ladder with ``warmup_epochs=20`` (Sønderby et al.'s
  warm-up: the rates' weight grows linearly from 0 to 1 over the first 20 epochs;
  20 was fixed beforehand as a fifth of the budget, not tuned).

All three train ``--epochs`` epochs (no early stopping) on the training split,
subsampled to ``--max-train`` rows (a fixed random subset per seed) when it is
larger: the budget of this machine (two shared cores, one torch thread) does not
allow full passes over pumsb_star, accidents or msnbc. The test split is
scored with the ELBO on at most ``--max-test`` rows and with IWAE-``--iwae``
(default 1000) on a fixed random subsample of ``--iwae-rows`` of those rows
(both subsamples seeded, the same rows for both models). "Coded bits" is the
size of the file ``BitsBackCoder`` writes for the IWAE rows (bits per
dimension) of the VAE; those runs predate the ladder coder, so the ladder has
only its ideal bits-back cost -ELBO/(d log 2) there.

``code``: the VAE and the warm-up ladder trained as in ``run``, both coded on
the ``--max-test`` test rows (file, payload, -ELBO; ``hierarchical_coded.md``).

``sweep``: on one data set, ladders trained with a grid of betas; each row
records the per-layer rates (test rows, nats) for the "trading information
between layers" plot ``hierarchical_betas.png``.

One CSV row per unit, resumable (recorded units are skipped). ``report``
rebuilds the markdown and the plot from the CSVs.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_hierarchical.py run \
        --datasets dna,ad,pumsb_star,accidents,msnbc,caltech_silhouettes --seeds 0
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_hierarchical.py sweep --dataset dna
    python benchmarks/bench_hierarchical.py report
    OMP_NUM_THREADS=1 python benchmarks/bench_hierarchical.py code --seeds 0 --epochs 100 --max-train 10000 \
        --max-test 3000
"""

import argparse
import json
import math
import time

import numpy as np
from _harness import RESULTS, append_row, command_line, load_dataset, markdown_table, read_rows

from skvae import BitsBackCoder, HierarchicalVAE, VAEDensityEstimator

CSV = RESULTS / "hierarchical.csv"
SWEEP_CSV = RESULTS / "hierarchical_betas.csv"
MD = RESULTS / "hierarchical.md"
COMMANDS = RESULTS / "hierarchical_commands.txt"
HIDDEN = (200,)
LADDER = (100,)
DIMS = (32, 16)
WARMUP = 20
SWEEP_BETAS = [(1.0, 1.0), (0.5, 1.0), (2.0, 1.0), (1.0, 0.5), (1.0, 2.0), (0.25, 4.0), (4.0, 0.25)]
MACHINE = ("Machine: 2 CPU cores shared with another developer's jobs, one process, one torch thread "
           "(`OMP_NUM_THREADS=1`, niced); wall times are indicative only.")


MODELS = ("vae", "ladder", "ladder_wu")


def make(model, seed, epochs, betas=(1.0, 1.0)):
    common = dict(hidden_layer_sizes=HIDDEN, max_epochs=epochs, batch_size=100, lr=1e-3, random_state=seed)
    if model == "vae":
        return VAEDensityEstimator(latent_dim=DIMS[0], **common)
    return HierarchicalVAE(latent_dims=DIMS, ladder_hidden_sizes=LADDER, betas=tuple(betas),
                           warmup_epochs=WARMUP if model == "ladder_wu" else 0, **common)


def subsample(X, n, seed):
    if n is None or len(X) <= n:
        return np.asarray(X), len(X)
    rows = np.sort(np.random.RandomState(seed).choice(len(X), size=n, replace=False))
    return np.asarray(X)[rows], len(X)


def n_weights(estimator):
    return int(sum(p.numel() for p in estimator.net_.module_.parameters()))


def run_unit(name, model, seed, args):
    data = load_dataset(name)
    train, n_train_full = subsample(data.train, args.max_train, seed)
    test, n_test_full = subsample(data.test, args.max_test, 1000 + seed)
    iwae_rows, _ = subsample(test, args.iwae_rows, 2000 + seed)
    est = make(model, seed, args.epochs)
    start = time.perf_counter()
    est.fit(train)
    fit_s = time.perf_counter() - start
    parts = est.elbo_components(test)
    d = test.shape[1]
    start = time.perf_counter()
    est.set_params(n_eval_samples=args.iwae)
    iwae = est.score_samples(iwae_rows)
    est.set_params(n_eval_samples=1)
    iwae_s = time.perf_counter() - start
    row = {
        "dataset": name, "model": model, "seed": seed, "epochs": args.epochs,
        "n_train": len(train), "n_train_full": n_train_full, "n_test": len(test), "n_test_full": n_test_full,
        "n_features": d, "n_weights": n_weights(est),
        "test_elbo": float(parts.elbo.mean()), "distortion": float(parts.distortion.mean()),
        "rate": float(parts.rate.mean()),
        "rate_1": float(parts.rate_1.mean()) if model != "vae" else float(parts.rate.mean()),
        "rate_2": float(parts.rate_2.mean()) if model != "vae" else float("nan"),
        "warmup_epochs": getattr(est, "warmup_epochs", 0),
        "iwae_k": args.iwae, "iwae_rows": len(iwae_rows), "test_iwae": float(iwae.mean()),
        "elbo_on_iwae_rows": float(est.score_samples(iwae_rows).mean()),
        "ideal_bits_per_dim": float(-est.score_samples(iwae_rows).mean() / (d * math.log(2))),
        "coded_bits_per_dim": float("nan"), "fit_s": fit_s, "iwae_s": iwae_s,
        "train_loss_last": float(est.history_[-1, "train_loss"]),
    }
    if model == "vae":
        start = time.perf_counter()
        coder = BitsBackCoder(est).fit()
        blob = coder.encode(iwae_rows)
        assert np.array_equal(coder.decode(blob), iwae_rows)
        row["coded_bits_per_dim"] = 8.0 * len(blob) / iwae_rows.size
        row["code_s"] = time.perf_counter() - start
    return row


def cmd_run(args):
    done = {(r["dataset"], r["model"], r["seed"]) for r in read_rows(CSV)}
    with open(COMMANDS, "a") as f:
        f.write(command_line() + "\n")
    for seed in args.seeds:
        for name in args.datasets:
            for model in MODELS:
                if (name, model, str(seed)) in done:
                    continue
                row = run_unit(name, model, seed, args)
                append_row(CSV, row)
                print(f"{name} {model} seed {seed}: ELBO {row['test_elbo']:.3f} IWAE-{row['iwae_k']} "
                      f"{row['test_iwae']:.3f} rates {row['rate_1']:.2f}/{row['rate_2']:.2f} "
                      f"fit {row['fit_s']:.0f}s iwae {row['iwae_s']:.0f}s", flush=True)
    cmd_report(args)


def cmd_sweep(args):
    done = {(r["dataset"], r["betas"], r["seed"]) for r in read_rows(SWEEP_CSV)}
    with open(COMMANDS, "a") as f:
        f.write(command_line() + "\n")
    data = load_dataset(args.dataset)
    seed = args.seeds[0]
    train, _ = subsample(data.train, args.max_train, seed)
    test, _ = subsample(data.test, args.max_test, 1000 + seed)
    for betas in SWEEP_BETAS:
        key = json.dumps(list(betas))
        if (args.dataset, key, str(seed)) in done:
            continue
        est = make("ladder_wu", seed, args.epochs, betas)
        start = time.perf_counter()
        est.fit(train)
        parts = est.elbo_components(test)
        row = {"dataset": args.dataset, "betas": key, "beta_1": betas[0], "beta_2": betas[1], "seed": seed,
               "epochs": args.epochs, "warmup_epochs": WARMUP, "n_train": len(train), "n_test": len(test),
               "test_elbo": float(parts.elbo.mean()), "distortion": float(parts.distortion.mean()),
               "rate_1": float(parts.rate_1.mean()), "rate_2": float(parts.rate_2.mean()),
               "rate": float(parts.rate.mean()), "fit_s": time.perf_counter() - start}
        append_row(SWEEP_CSV, row)
        print(f"betas {betas}: ELBO {row['test_elbo']:.3f} D {row['distortion']:.2f} "
              f"R1 {row['rate_1']:.2f} R2 {row['rate_2']:.2f}", flush=True)
    cmd_report(args)


def _mean(rows, key):
    values = [float(r[key]) for r in rows if r.get(key) not in (None, "", "nan")]
    return float(np.mean(values)) if values else float("nan")


def cmd_report(args):
    rows = read_rows(CSV)
    table = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        got = {m: [r for r in rows if r["dataset"] == name and r["model"] == m] for m in MODELS}
        if not all(got.values()):
            continue
        vae, lad, wu = got["vae"], got["ladder"], got["ladder_wu"]
        table.append({
            "dataset": name, "seeds": len(wu), "n_train": f"{vae[0]['n_train']}/{vae[0]['n_train_full']}",
            "iwae_rows": vae[0]["iwae_rows"],
            "vae_iwae": _mean(vae, "test_iwae"), "ladder_iwae": _mean(lad, "test_iwae"),
            "wu_iwae": _mean(wu, "test_iwae"), "gain": _mean(wu, "test_iwae") - _mean(vae, "test_iwae"),
            "gain_seeds": ", ".join(f"{float(w['test_iwae']) - float(v['test_iwae']):+.2f}"
                                    for v, w in zip(sorted(vae, key=lambda r: r["seed"]),
                                                    sorted(wu, key=lambda r: r["seed"]))),
            "vae_elbo": _mean(vae, "test_elbo"), "ladder_elbo": _mean(lad, "test_elbo"),
            "wu_elbo": _mean(wu, "test_elbo"), "vae_r": _mean(vae, "rate"),
            "ladder_r": f"{_mean(lad, 'rate_1'):.2f} / {_mean(lad, 'rate_2'):.2f}",
            "wu_r": f"{_mean(wu, 'rate_1'):.2f} / {_mean(wu, 'rate_2'):.2f}",
            "vae_coded": _mean(vae, "coded_bits_per_dim"), "vae_ideal": _mean(vae, "ideal_bits_per_dim"),
            "wu_ideal": _mean(wu, "ideal_bits_per_dim"),
            "weights": f"{vae[0]['n_weights']}/{lad[0]['n_weights']}",
        })
    columns = [("dataset", "data set"), ("seeds", "seeds"), ("n_train", "train rows used/all"),
               ("iwae_rows", "IWAE rows"), ("vae_iwae", "VAE IWAE"), ("ladder_iwae", "ladder IWAE"),
               ("wu_iwae", "ladder+wu IWAE"), ("gain", "ladder+wu − VAE"), ("gain_seeds", "per seed"), ("vae_elbo", "VAE ELBO"),
               ("ladder_elbo", "ladder ELBO"), ("wu_elbo", "ladder+wu ELBO"), ("vae_r", "VAE rate"),
               ("ladder_r", "ladder R1 / R2"), ("wu_r", "ladder+wu R1 / R2"),
               ("vae_coded", "VAE coded bits/dim"), ("vae_ideal", "VAE −ELBO bits/dim"),
               ("wu_ideal", "ladder+wu −ELBO bits/dim"), ("weights", "weights VAE/ladder")]
    sweep = read_rows(SWEEP_CSV)
    commands = COMMANDS.read_text().strip() if COMMANDS.is_file() else command_line()
    text = ["# HierarchicalVAE (two-layer ladder) vs VAEDensityEstimator (one layer), same training budget", "",
            "Produced by (in this order; `report` rebuilds this file):", "", "```", commands, "```", "",
            __doc__.split("One CSV row per unit")[0].split("\n\n", 1)[1].strip(), "",
            "Settings: latent_dims (32, 16) vs latent_dim 32, hidden_layer_sizes (200,), ladder_hidden_sizes "
            "(100,), batch 100, lr 1e-3, no early stopping; ladder+wu: warmup_epochs=20; epochs, train/test "
            "subsampling: see the CSV (`epochs`, `n_train`, `n_test`). Scores in nats per row (higher is "
            "better), ELBO on the scored test rows, IWAE on the IWAE rows; bits/dim on the IWAE rows. R1, R2: "
            "the ladder's per-layer rates (nats, test rows).", "", MACHINE, "",
            markdown_table(table, columns, digits=3), ""]
    if sweep:
        text += [f"## Betas sweep on {sweep[0]['dataset']} (layer-wise rates, test rows, nats)", "",
                 "![layer-wise rates against betas](hierarchical_betas.png)", "",
                 markdown_table(sweep, [("betas", "betas (z1, z2)"), ("test_elbo", "test ELBO"),
                                        ("distortion", "distortion"), ("rate_1", "R1"), ("rate_2", "R2"),
                                        ("rate", "R total"), ("epochs", "epochs"), ("warmup_epochs", "warm-up"),
                                        ("n_train", "train rows")],
                                digits=3), ""]
        try:
            import matplotlib

            matplotlib.use("Agg")
            from skvae.plotting import plot_layer_rates

            ax = plot_layer_rates([json.loads(r["betas"]) for r in sweep],
                                  [[float(r["rate_1"]), float(r["rate_2"])] for r in sweep],
                                  distortion=[float(r["distortion"]) for r in sweep])
            ax.set_title(f"{sweep[0]['dataset']}: per-layer rates of a two-layer ladder VAE")
            ax.figure.tight_layout()
            ax.figure.savefig(RESULTS / "hierarchical_betas.png", dpi=110)
        except ImportError:
            pass
    MD.write_text("\n".join(text))
    print(MD.read_text())



CODED_CSV = RESULTS / "hierarchical_coded.csv"
CODED_MD = RESULTS / "hierarchical_coded.md"


def cmd_code(args):
    """Coded size of the test rows (``--max-test`` of them) under the VAE and the warm-up ladder, trained as in
    ``run``: the file, its ANS payload and the -ELBO, in bits per dimension (resumable CSV)."""
    done = {(r["dataset"], r["model"], r["seed"]) for r in read_rows(CODED_CSV)}
    with open(COMMANDS, "a") as f:
        f.write(command_line() + "\n")
    for seed in args.seeds:
        for name in args.datasets:
            for model in ("vae", "ladder_wu"):
                if (name, model, str(seed)) in done:
                    continue
                data = load_dataset(name)
                train, _ = subsample(data.train, args.max_train, seed)
                test, _ = subsample(data.test, args.max_test, 1000 + seed)
                est = make(model, seed, args.epochs).fit(train)
                start = time.perf_counter()
                coder = BitsBackCoder(est).fit()
                blob = coder.encode(test)
                assert np.array_equal(coder.decode(blob), test)
                report = coder.report(test)
                dims = test.size
                row = {"dataset": name, "model": model, "seed": seed, "epochs": args.epochs, "n_train": len(train),
                       "n_test": len(test), "file_bits_per_dim": 8.0 * len(blob) / dims,
                       "payload_bits_per_dim": report.payload_bits / dims,
                       "neg_elbo_bits_per_dim": float(-est.score_samples(test).sum() / (dims * math.log(2))),
                       "code_s": time.perf_counter() - start}
                append_row(CODED_CSV, row)
                print(f"{name} {model} seed {seed}: file {row['file_bits_per_dim']:.4f} payload "
                      f"{row['payload_bits_per_dim']:.4f} -ELBO {row['neg_elbo_bits_per_dim']:.4f} bits/dim",
                      flush=True)
    rows = read_rows(CODED_CSV)
    out = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        by = {m: [r for r in rows if r["dataset"] == name and r["model"] == m] for m in ("vae", "ladder_wu")}
        if not all(by.values()):
            continue
        mean = lambda m, k: float(np.mean([float(r[k]) for r in by[m]]))
        out.append({"dataset": name, "seeds": len(by["ladder_wu"]), "n_test": by["vae"][0]["n_test"],
                    "vae_file": mean("vae", "file_bits_per_dim"), "vae_payload": mean("vae", "payload_bits_per_dim"),
                    "vae_elbo": mean("vae", "neg_elbo_bits_per_dim"),
                    "ladder_file": mean("ladder_wu", "file_bits_per_dim"),
                    "ladder_payload": mean("ladder_wu", "payload_bits_per_dim"),
                    "ladder_elbo": mean("ladder_wu", "neg_elbo_bits_per_dim"),
                    "gain": mean("vae", "payload_bits_per_dim") - mean("ladder_wu", "payload_bits_per_dim")})
    columns = [("dataset", "data set"), ("seeds", "seeds"), ("n_test", "test rows coded"),
               ("vae_file", "VAE file"), ("vae_payload", "VAE payload"), ("vae_elbo", "VAE -ELBO"),
               ("ladder_file", "ladder file"), ("ladder_payload", "ladder payload"), ("ladder_elbo", "ladder -ELBO"),
               ("gain", "VAE − ladder payload")]
    text = ["# Coded bits of the warm-up ladder against the single-layer VAE", "", "```",
            *sorted({line for line in COMMANDS.read_text().splitlines() if " code " in line}), "```", "",
            "Bits per dimension of the test rows (the first `--max-test` of a seeded subsample), each model trained "
            "as in `hierarchical.md` (same epochs, rows and networks; the ladder with the 20-epoch warm-up), coded by "
            "`BitsBackCoder(model).fit()` at its defaults and decoded exactly. File: the whole file (container "
            "included); payload: the ANS stream; -ELBO: the model's deterministic score. " + MACHINE, "",
            markdown_table(out, columns, digits=4), ""]
    CODED_MD.write_text("\n".join(text))
    print("\n".join(text))

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "sweep", "report", "code"):
        p = sub.add_parser(name)
        p.add_argument("--datasets", type=lambda s: s.split(","),
                       default=["dna", "ad", "pumsb_star", "accidents", "msnbc", "caltech_silhouettes"])
        p.add_argument("--dataset", default="dna")
        p.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0])
        p.add_argument("--epochs", type=int, default=50)
        p.add_argument("--max-train", type=int, default=5000)
        p.add_argument("--max-test", type=int, default=2000)
        p.add_argument("--iwae-rows", type=int, default=300)
        p.add_argument("--iwae", type=int, default=1000)
    args = parser.parse_args()
    {"run": cmd_run, "sweep": cmd_sweep, "report": cmd_report, "code": cmd_code}[args.command](args)


if __name__ == "__main__":
    main()
