"""Do the test splits of the benchmark data sets come from their training distribution?

Runs :func:`skvae.diagnostics.split_mismatch` (cross-fitted logistic regression, AUC, one-sided
Mann-Whitney p-value) on train vs test, and as a control on train vs valid, of the twenty DEBD data sets
and Caltech-101 Silhouettes. Large splits are subsampled to ``--max-rows`` rows each (fixed seed), which
keeps the run to minutes on one core and only makes the test less sensitive.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_split_mismatch.py
"""

import argparse
import time

import numpy as np
from _harness import RESULTS, append_row, command_line, load_dataset, read_rows

from skvae.datasets import DEBD_NAMES
from skvae.diagnostics import split_mismatch


def subsample(X, max_rows, seed):
    if len(X) <= max_rows:
        return X
    return X[np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))]


def _markdown(rows, columns):
    """Cells as written (the harness's table would round a p-value of 1e-20 to 0.00)."""
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|---" * len(columns) + "|"]
    return lines + ["| " + " | ".join(str(row[key]) for key, _ in columns) + " |" for row in rows]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=[*DEBD_NAMES, "caltech_silhouettes"])
    p.add_argument("--max-rows", type=int, default=5000)
    p.add_argument("--alpha", type=float, default=0.01, help="level at which a split is called suspect")
    p.add_argument("--out", default="split_mismatch")
    args = p.parse_args()
    csv_path, md_path = RESULTS / f"{args.out}.csv", RESULTS / f"{args.out}.md"
    done = {(r["dataset"], r["against"]) for r in read_rows(csv_path)}  # resumable
    for name in args.datasets:
        data = load_dataset(name)
        train = subsample(data.train, args.max_rows, 0)
        for against in ("test", "valid"):
            if (name, against) in done:
                continue
            start = time.perf_counter()
            other = subsample(getattr(data, against), args.max_rows, 1)
            result = split_mismatch(train, other, random_state=0)
            row = {"dataset": name, "against": against, "n_train": len(train), "n_other": len(other),
                   "auc": result.statistic, "p_value": result.p_value, "seconds": time.perf_counter() - start}
            append_row(csv_path, row)
            print(f"{name:20s} train vs {against:5s} AUC {result.statistic:.4f}  p {result.p_value:.2e}", flush=True)
    rows = read_rows(csv_path)
    table = []
    for name in args.datasets:
        cells = {r["against"]: r for r in rows if r["dataset"] == name}
        if set(cells) != {"test", "valid"}:
            continue
        t, v = cells["test"], cells["valid"]
        table.append({"dataset": name, "rows": f"{t['n_train']} / {t['n_other']} / {v['n_other']}",
                      "auc_test": f"{float(t['auc']):.4f}", "p_test": f"{float(t['p_value']):.2g}",
                      "auc_valid": f"{float(v['auc']):.4f}", "p_valid": f"{float(v['p_value']):.2g}",
                      "suspect": ", ".join(s for s, r in (("test", t), ("valid", v))
                                           if float(r["p_value"]) < args.alpha) or "no"})
    columns = [("dataset", "data set"), ("rows", "rows train / test / valid"), ("auc_test", "AUC train vs test"),
               ("p_test", "p"), ("auc_valid", "AUC train vs valid"), ("p_valid", "p"),
               ("suspect", f"suspect at p < {args.alpha}")]
    md_path.write_text("\n".join([
        "# Are the benchmark splits exchangeable?", "", "Produced by:", "", "```", command_line(), "```", "",
        "`skvae.diagnostics.split_mismatch`: a logistic regression (max_iter=1000) cross-fitted over 5 folds "
        "scores every row as 'the other split or train'; AUC 0.5 means the classifier cannot tell them apart, "
        "p is the one-sided Mann-Whitney U test. Splits with more than "
        f"{args.max_rows} rows are subsampled to {args.max_rows} (seeded). A linear classifier only sees "
        "differences in first moments and pairwise-linear structure, so 'no' is not proof of exchangeability.",
        "", *_markdown(table, columns), ""]))
    print(f"wrote {md_path}")


if __name__ == "__main__":
    main()
