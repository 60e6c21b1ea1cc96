"""Choose a VAE's regularizer by cross-validation, the way the RHA paper picks its baselines.

Zhang, Hayes & Barber (NeurIPS 2022) compare reverse half-asleep with two
baselines tuned on held-out data: dropout ("best p in {0.05, 0.1, 0.2,
0.3}") and amortized inference regularization by denoising ("best rho in
{0.1, 0.2, 0.4, 0.8}"). Every skvae estimator's ``score`` is the mean
held-out log-likelihood bound in nats per row, so scikit-learn's
``GridSearchCV`` ranks candidates by it with no scorer to write:

1. ``GridSearchCV`` over ``dropout`` and ``air_sigma`` of one
   ``VAEDensityEstimator`` (the paper's two grids, plus the plain VAE);
2. a ``Pipeline`` whose final step is searched over whole estimator
   objects: the plain VAE, VAE + dropout, ReverseHalfAsleep and WSA.

``n_jobs=-1`` runs the fits in joblib processes; each worker starts with
``cpu_count() // n_jobs`` torch threads, so the cores are not oversubscribed
(see :mod:`skvae.parallel`).

Run (a few minutes on two cores; ``--quick`` for a smoke run)::

    python examples/select_baseline_by_cv.py
"""

import argparse
import math
import os
from pathlib import Path

import pandas as pd
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skvae import VAEDensityEstimator
from skvae.datasets import load_debd
from skvae.rha import ReverseHalfAsleep
from skvae.wsa import WSAVAE

# The paper's two baseline grids as one scikit-learn grid: the plain VAE,
# then dropout alone, then AIR alone (not their cross product).
PAPER_BASELINE_GRID = [
    {"dropout": [0.0], "air_sigma": [None]},
    {"dropout": [0.05, 0.1, 0.2, 0.3]},
    {"air_sigma": [0.1, 0.2, 0.4, 0.8]},
]


def ranked(search, n_features):
    """cv_results_ as a table, best mean held-out log-likelihood first."""
    res = pd.DataFrame(search.cv_results_)
    table = pd.DataFrame({
        "rank": res["rank_test_score"],
        "candidate": [", ".join(f"{k}={_short(v)}" for k, v in p.items()) for p in res["params"]],
        "mean test LL (nats)": res["mean_test_score"].round(3),
        "std": res["std_test_score"].round(3),
        "bits/dim": (-res["mean_test_score"] / (n_features * math.log(2))).round(4),
        "fit s": res["mean_fit_time"].round(1),
    })  # fmt: skip
    return table.sort_values("rank").to_string(index=False)


def _short(value):
    if hasattr(value, "get_params"):  # an estimator: its class and the parameters set away from defaults
        default = type(value)().get_params()
        changed = {k: v for k, v in value.get_params().items()
                   if k in ("dropout", "air_sigma", "alpha", "mode", "n_augment") and v != default[k]}
        return type(value).__name__ + (f"({', '.join(f'{k}={v}' for k, v in changed.items())})" if changed else "")
    return repr(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--n-jobs", type=int, default=-1)
    args = parser.parse_args()

    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    data_home = os.environ.get("SKVAE_DATA") or (str(shared) if shared.is_dir() else None)
    data = load_debd("nltcs", data_home=data_home)
    n_rows = 500 if args.quick else 3000
    X, X_test = data.train[:n_rows], data.test
    small = dict(latent_dim=4, hidden_layer_sizes=(64,), max_epochs=2 if args.quick else 20, batch_size=100,
                 random_state=0)  # fmt: skip
    cv = KFold(3, shuffle=True, random_state=0)

    # 1. The paper's baselines by cross-validation: one line.
    search = GridSearchCV(VAEDensityEstimator(**small), PAPER_BASELINE_GRID, cv=cv, n_jobs=args.n_jobs).fit(X)
    print(f"nltcs, {len(X)} training rows, 3-fold CV; higher log-likelihood is better\n")
    print("1. VAEDensityEstimator: dropout and AIR (the paper's grids)")
    print(ranked(search, X.shape[1]))
    print(f"best: {search.best_params_}; test LL of the refitted best: {search.score(X_test):.3f} nats\n")

    # 2. A pipeline step searched over whole estimators.
    pipe = Pipeline([("prep", FunctionTransformer(feature_names_out="one-to-one")),  # stand-in preprocessing
                     ("density", VAEDensityEstimator(**small))])
    best_p = search.best_params_.get("dropout") or 0.1
    candidates = [
        VAEDensityEstimator(**small),
        VAEDensityEstimator(dropout=best_p, **small),
        ReverseHalfAsleep(alpha=0.5, **small),
        WSAVAE(warmup_epochs=small["max_epochs"] // 2, n_augment=1, discriminator_hidden_layer_sizes=(64,), **small),
    ]
    search2 = GridSearchCV(pipe, {"density": candidates}, cv=cv, n_jobs=args.n_jobs).fit(X)
    print("2. Pipeline step searched over estimator objects")
    print(ranked(search2, X.shape[1]))
    best = search2.best_estimator_.named_steps["density"]
    print(f"best: {type(best).__name__}; test LL of the refitted pipeline: {search2.score(X_test):.3f} nats")


if __name__ == "__main__":
    main()
