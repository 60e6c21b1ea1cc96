"""The WSA paper's toy experiment: a VAE overfitting 1,000 rows of a sine-Bernoulli.

Data: 1,000 training and 1,000 test rows of the 256-dimensional
sine-Bernoulli distribution (dimension i is 1 with probability
0.5 * sin(i * pi / 8) + 0.5). Its exact entropy (98.74 nats) is the best
test negative log-likelihood any model can reach. Each method is trained with
batch 200 for ``--epochs`` epochs (500 in the paper) and every ``--every``
epochs (5) we record the train and test ELBO, the rate, distortion and the
mutual information I(X;Z); at the ``--gap-epochs`` checkpoints the generalization
gap is split into its encoder (AIGG) and decoder (GMGG) parts.

Methods: the plain VAE, reverse half-asleep (``skvae.rha``, joint mode) and
weighted self-augmentation (``skvae.wsa``), each run only if its module is
importable.

    OMP_NUM_THREADS=1 python examples/overfitting_toy.py --out benchmarks/results
"""

import argparse
import csv
import importlib
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from skvae import ELBOMonitor, VAEDensityEstimator  # noqa: E402
from skvae.datasets import make_sine_bernoulli, sine_bernoulli_entropy  # noqa: E402
from skvae.diagnostics import generalization_gaps, rate_distortion  # noqa: E402
from skvae.plotting import (  # noqa: E402
    plot_gap_decomposition,
    plot_learning_curves,
    plot_rate_distortion,
    plot_weighted_samples,
)


def build(method, args, callbacks):
    common = dict(latent_dim=args.latent_dim, hidden_layer_sizes=(args.hidden,) * 2, batch_size=200,
                  lr=args.lr, max_epochs=args.every, warm_start=True, callbacks=callbacks,
                  random_state=args.seed)
    if method == "vanilla":
        return VAEDensityEstimator(**common)
    if method == "rha":
        rha = importlib.import_module("skvae.rha")
        return rha.ReverseHalfAsleep(alpha=0.5, mode="joint", **common)
    if method == "wsa":
        wsa = importlib.import_module("skvae.wsa")
        return wsa.WeightedSelfAugmentation(warmup_epochs=args.warmup, n_augment=4,
                                            discriminator_hidden_layer_sizes=(args.hidden,) * 2, **common)
    raise ValueError(method)


def available(method):
    if method == "vanilla":
        return True
    try:
        importlib.import_module(f"skvae.{method}")
        return True
    except ImportError:
        return False


def run(method, X_train, X_test, args, out):
    callbacks = [ELBOMonitor(X_test, name="test", every=args.every),
                 ELBOMonitor(X_train, name="train", every=args.every)]
    est = build(method, args, callbacks)
    rd_rows, gap_rows = [], []
    gap_epochs = {int(e) for e in args.gap_epochs.split(",") if e}
    start = time.perf_counter()
    train_time = 0.0
    for epoch in range(args.every, args.epochs + 1, args.every):
        tic = time.perf_counter()
        est.fit(X_train)
        train_time += time.perf_counter() - tic
        assert len(est.history_) == epoch
        rd_train = rate_distortion(est, X_train)
        rd_test = rate_distortion(est, X_test)
        rd_rows.append(dict(epoch=epoch, train_elbo=rd_train.elbo.mean(), test_elbo=rd_test.elbo.mean(),
                            rate=rd_train.rate.mean(), distortion=rd_train.distortion.mean(),
                            mutual_information=rd_train.mutual_information, marginal_kl=rd_train.marginal_kl,
                            test_rate=rd_test.rate.mean(), test_distortion=rd_test.distortion.mean(),
                            test_mutual_information=rd_test.mutual_information))
        if epoch in gap_epochs or epoch == args.epochs:
            g = generalization_gaps(est, X_train, X_test, method="encoder", refit_train=True,
                                    n_epochs=args.refit_epochs, random_state=args.seed)
            # The paper's split takes the trained encoder as the train set's
            # optimal inference; refit_train=True also gives the train-side
            # refit, so both splits come from one call.
            gap_rows.append(dict(epoch=epoch, egg=g.egg, aigg=g.aigg, gmgg=g.gmgg - g.train_refit_gain,
                                 gmgg_train_refit=g.gmgg, train_refit_gain=g.train_refit_gain,
                                 train_elbo=g.train_elbo, test_elbo=g.test_elbo,
                                 test_elbo_optimal=g.test_elbo_optimal,
                                 train_elbo_optimal=g.train_elbo_optimal))
            print(f"{method:8s} epoch {epoch:4d}  train {g.train_elbo:8.2f}  test {g.test_elbo:8.2f}  "
                  f"EGG {g.egg:6.2f}  AIGG {g.aigg:6.2f}  GMGG {g.gmgg - g.train_refit_gain:6.2f}  "
                  f"train refit gain {g.train_refit_gain:5.2f}  I(X;Z) {rd_train.mutual_information:5.2f}",
                  flush=True)
            if method == "wsa":
                save_wsa_samples(est, args, out)
        # Written at every record, so an interrupted run keeps what it did.
        write_csv(out / f"toy_{method}_rate_distortion.csv", rd_rows)
        if gap_rows:
            write_csv(out / f"toy_{method}_gaps.csv", gap_rows)
    total = time.perf_counter() - start
    return est, rd_rows, gap_rows, dict(train_seconds=train_time, total_seconds=total)


def save_wsa_samples(est, args, out):
    X_s, w = est.sample_with_weights(24, random_state=args.seed)
    fig = plot_weighted_samples(X_s, w, shape=(16, 16), n_cols=8)
    fig.suptitle(f"WSA samples after {len(est.history_)} epochs (16x16 view of 256 dims), "
                 "sorted by discriminator weight", fontsize=9)
    fig.savefig(out / "toy_wsa_samples.png", dpi=120)
    plt.close(fig)


def read_csv(path):
    with open(path) as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    for row in rows:  # the mean ELBO is minus (mean rate + mean distortion)
        if "train_elbo" not in row:
            row["train_elbo"] = -(row["rate"] + row["distortion"])
            row["test_elbo"] = -(row["test_rate"] + row["test_distortion"])
    return rows


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--every", type=int, default=5, help="epochs between ELBO / rate records")
    parser.add_argument("--gap-epochs", default="50,100,200,300,400,500",
                        help="comma-separated epochs at which to split the gap (the last epoch is always one)")
    parser.add_argument("--refit-epochs", type=int, default=50, help="epochs of each encoder refit")
    parser.add_argument("--methods", default="vanilla,rha,wsa")
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup", type=int, default=50, help="WSA warm-up epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--plot-only", action="store_true",
                        help="only redraw the figures from the CSVs already in --out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    X_train = make_sine_bernoulli(1000, 256, random_state=args.seed)
    X_test = make_sine_bernoulli(1000, 256, random_state=args.seed + 1)
    best = -sine_bernoulli_entropy(256)
    methods = [m for m in args.methods.split(",") if available(m)]
    skipped = [m for m in args.methods.split(",") if m not in methods]
    print(f"methods run: {methods}; not importable: {skipped}", flush=True)

    timings = {}
    if not args.plot_only:
        for method in methods:
            est, _, _, timings[method] = run(method, X_train, X_test, args, out)
            timings[method]["epochs"] = len(est.history_)
            (out / f"toy_{method}_timing.json").write_text(json.dumps(timings[method], indent=2))
    plot_all(args, out, best)


def plot_all(args, out, best):
    """Figures and summary from the CSVs of every method that has them."""
    methods = [m for m in args.methods.split(",") if (out / f"toy_{m}_rate_distortion.csv").exists()]
    rd = {m: read_csv(out / f"toy_{m}_rate_distortion.csv") for m in methods}
    gaps = {m: read_csv(out / f"toy_{m}_gaps.csv") for m in methods if (out / f"toy_{m}_gaps.csv").exists()}

    # plot_learning_curves reads history_ rows; the CSV records are such rows.
    curves = [SimpleNamespace(history_=[dict(epoch=int(r["epoch"]), train_elbo=r["train_elbo"],
                                             test_elbo=r["test_elbo"]) for r in rd[m]]) for m in methods]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_learning_curves(curves, labels=methods, best_elbo=best, ax=ax)
    low = min(min(r["test_elbo"] for r in rd[m]) for m in methods)
    ax.set_ylim(max(low - 3, best - 40), best + 12)
    ax.set_title("sine-Bernoulli 256-d, 1000 train / 1000 test rows, batch 200", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "toy_learning_curves.png", dpi=120)

    fig, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 4), squeeze=False)
    for ax, m in zip(axes[0], methods):
        rows = rd[m]
        plot_rate_distortion([r["epoch"] for r in rows],
                             {k: [r[k] for r in rows] for k in ("rate", "distortion", "mutual_information")},
                             ax=ax)
        ax.axhline(math.log(1000), color="gray", lw=0.6, ls=":")
        ax.set_title(f"{m}: training rows (dotted: log N, the MI ceiling)", fontsize=10)
    # Common scales, so the panels compare at a glance.
    top = max(max(r["rate"] for r in rd[m]) for m in methods)
    low = min(min(r["distortion"] for r in rd[m]) for m in methods)
    high = max(max(r["distortion"] for r in rd[m]) for m in methods)
    for ax in axes[0]:
        ax.set_ylim(-0.3, top * 1.05 + 0.5)
        ax.right_ax_.set_ylim(low - 1, high + 1)
    fig.tight_layout()
    fig.savefig(out / "toy_rate_distortion.png", dpi=120)

    fig, axes = plt.subplots(1, len(gaps), figsize=(5 * len(gaps), 4), squeeze=False, sharey=True)
    for ax, (m, rows) in zip(axes[0], gaps.items()):
        plot_gap_decomposition([r["epoch"] for r in rows],
                               {k: [r[k] for r in rows] for k in ("egg", "aigg", "gmgg")}, ax=ax)
        ax.set_title(f"{m}: encoder refit on test ({args.refit_epochs} epochs)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "toy_gaps.png", dpi=120)

    summary = {}
    for m in methods:
        rows = rd[m]
        best_row = max(rows, key=lambda r: r["test_elbo"])
        timing_file = out / f"toy_{m}_timing.json"
        summary[m] = dict(epochs_run=int(rows[-1]["epoch"]), best_test_elbo=best_row["test_elbo"],
                          best_epoch=int(best_row["epoch"]), final_test_elbo=rows[-1]["test_elbo"],
                          final_train_elbo=rows[-1]["train_elbo"],
                          final_mutual_information=rows[-1]["mutual_information"],
                          final_gaps=gaps.get(m, [None])[-1],
                          timing=json.loads(timing_file.read_text()) if timing_file.exists() else None)
    summary["settings"] = dict(vars(args), best_possible_elbo=best, methods_plotted=methods)
    (out / "toy_summary.json").write_text(json.dumps(summary, indent=2, default=float))
    print(json.dumps(summary, indent=2, default=float))

if __name__ == "__main__":
    main()
