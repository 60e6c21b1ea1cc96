"""Split a VAE's generalization gap into encoder and decoder parts on a real data set.

Trains a plain VAE on the training split of one of the twenty binary data
sets (dna by default) and, at several checkpoints, computes

- EGG  = train ELBO - test ELBO (what one observes),
- AIGG = test ELBO with the encoder refit on the test rows - test ELBO,
- GMGG = train ELBO - test ELBO with the refit encoder,

so EGG = GMGG + AIGG (Zhang, Hayes & Barber 2022, §2), with two kinds of
"optimal inference": an encoder refit on the test rows with the decoder
frozen (amortized), and ``--steps`` gradient steps on each row's own
posterior (per row). The training rows also get the same refit, which shows
how far the trained encoder is from optimal on its own training rows.

    OMP_NUM_THREADS=1 python examples/gap_decomposition.py --dataset dna --out benchmarks/results
"""

import argparse
import csv
import json
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from skvae import ELBOMonitor, VAEDensityEstimator  # noqa: E402
from skvae.diagnostics import generalization_gaps  # noqa: E402
from skvae.plotting import plot_gap_decomposition, plot_learning_curves  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("SKVAE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load(name, data_home):
    try:
        from skvae.datasets import load_debd
    except ImportError:  # before the loaders existed: read the files directly
        folder = Path(data_home) / "twenty_datasets" / name
        read = lambda split: np.loadtxt(folder / f"{name}.{split}.data.gz", delimiter=",", dtype=np.uint8,
                                        ndmin=2)
        return read("ts"), read("test")
    data = load_debd(name, data_home=data_home, download_if_missing=False)
    return data.train, data.test


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="dna")
    parser.add_argument("--data-home", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--checkpoints", default="5,10,20,40,70,100,150,200")
    parser.add_argument("--refit-epochs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=100, help="per-row refinement steps")
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-steps", default="",
                        help="comma-separated per-row step counts to try at the last checkpoint (convergence check)")
    parser.add_argument("--check-refit-epochs", default="",
                        help="comma-separated encoder-refit epoch counts to try at the last checkpoint")
    parser.add_argument("--tag", default="", help="suffix of the output file names")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    X_train, X_test = load(args.dataset, args.data_home)
    checkpoints = sorted({int(c) for c in args.checkpoints.split(",") if int(c) <= args.epochs} | {args.epochs})

    vae = VAEDensityEstimator(latent_dim=args.latent_dim, hidden_layer_sizes=(args.hidden,) * 2,
                              batch_size=args.batch_size, lr=args.lr, warm_start=True, random_state=args.seed,
                              callbacks=[ELBOMonitor(X_test, every=1), ELBOMonitor(X_train, name="train", every=1)])
    rows, done = [], 0
    start = time.perf_counter()
    for checkpoint in checkpoints:
        vae.set_params(max_epochs=checkpoint - done)
        vae.fit(X_train)
        done = checkpoint
        row = dict(epoch=checkpoint)
        for method in ("encoder", "per_row"):
            g = generalization_gaps(vae, X_train, X_test, method=method, refit_train=True,
                                    n_epochs=args.refit_epochs, n_steps=args.steps, random_state=args.seed)
            # The paper's split: the trained encoder is the training rows' optimal inference.
            row.update({f"{method}_egg": g.egg, f"{method}_aigg": g.aigg,
                        f"{method}_gmgg": g.gmgg - g.train_refit_gain,
                        f"{method}_gmgg_train_refit": g.gmgg, f"{method}_train_refit_gain": g.train_refit_gain,
                        f"{method}_test_elbo_optimal": g.test_elbo_optimal,
                        f"{method}_train_elbo_optimal": g.train_elbo_optimal})
            row.update(train_elbo=g.train_elbo, test_elbo=g.test_elbo)
        row["bits_per_dim_test"] = -row["test_elbo"] / (X_test.shape[1] * np.log(2))
        rows.append(row)
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    elapsed = time.perf_counter() - start

    name = f"gap_{args.dataset}{args.tag}"
    checks = [("per_row", dict(n_steps=int(k))) for k in args.check_steps.split(",") if k]
    checks += [("encoder", dict(n_epochs=int(k))) for k in args.check_refit_epochs.split(",") if k]
    if checks:
        with open(out / f"{name}_convergence.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", "method", "n_steps_or_epochs", "aigg", "gmgg", "train_refit_gain", "seconds"])
            for method, kwargs in checks:
                tic = time.perf_counter()
                g = generalization_gaps(vae, X_train, X_test, method=method, refit_train=True,
                                        random_state=args.seed, **kwargs)
                line = [done, method, next(iter(kwargs.values())), g.aigg, g.gmgg - g.train_refit_gain,
                        g.train_refit_gain, time.perf_counter() - tic]
                writer.writerow(line)
                f.flush()  # keep finished rows if the run is stopped
                print(*line, flush=True)
    with open(out / f"{name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.3))
    plot_learning_curves(vae, labels=["VAE"], ax=axes[0])
    axes[0].set_title(f"{args.dataset}: ELBO per epoch")
    low = min(vae.history_[:, "test_elbo"])
    high = max(vae.history_[:, "train_elbo"])
    axes[0].set_ylim(low - 0.3 * (high - low), high + 0.1 * (high - low))
    for ax, method, title in ((axes[1], "encoder", f"encoder refit ({args.refit_epochs} epochs)"),
                              (axes[2], "per_row", f"per-row refinement ({args.steps} steps)")):
        plot_gap_decomposition([r["epoch"] for r in rows],
                               {k: [r[f"{method}_{k}"] for r in rows] for k in ("egg", "aigg", "gmgg")}, ax=ax)
        ax.plot([r["epoch"] for r in rows], [r[f"{method}_train_refit_gain"] for r in rows], color="gray",
                ls=":", marker=".", label="train refit gain")
        ax.legend(fontsize="small")
        ax.set_title(f"{args.dataset}: gaps, {title}")
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=120)
    settings = dict(vars(args), n_train=len(X_train), n_test=len(X_test), n_features=X_train.shape[1],
                    seconds=elapsed, checkpoints=checkpoints)
    (out / f"{name}_settings.json").write_text(json.dumps(settings, indent=2))
    print(json.dumps(settings, indent=2))


if __name__ == "__main__":
    main()
