"""Shared benchmark harness: fit on train, choose on valid, evaluate on test, record.

Every benchmark script imports this module as ``from _harness import ...``
(``python benchmarks/bench_x.py`` puts ``benchmarks/`` first on ``sys.path``).

Protocol, the same for every estimator:

- each configuration of a small grid is fitted on the train split only;
- the valid split is used for early stopping (optional) and to pick the
  configuration with the best mean valid ELBO, nothing else;
- the chosen model is scored once on the test split: mean ELBO and mean IWAE
  bound with k importance samples (nats per row), and bits per dimension of
  the IWAE bound. IWAE-k on big test sets is slow, so it may be computed on a
  fixed random subsample of test rows; the row then says so
  (``iwae_rows < n_test``) and also gives the ELBO on that same subsample.
"""

import csv
import fcntl
import json
import math
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

try:  # run from a checkout without installing the package
    import skvae  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO))


def find_data_home(data_home=None):
    """The argument, else $SKVAE_DATA, else ../shared/data beside the checkout, else ~/skvae_data."""
    from skvae.datasets import get_data_home

    if data_home is not None or os.environ.get("SKVAE_DATA"):
        return get_data_home(data_home)
    shared = REPO.parent / "shared" / "data"
    return str(shared) if shared.is_dir() else get_data_home()


def load_dataset(name, data_home=None):
    """Bunch with ``train``, ``valid``, ``test`` for a DEBD name, 'caltech_silhouettes' or 'binarized_mnist'."""
    from skvae import datasets

    data_home = find_data_home(data_home)
    if name == "caltech_silhouettes":
        return datasets.load_caltech_silhouettes(data_home=data_home)
    if name == "binarized_mnist":
        return datasets.load_binarized_mnist(data_home=data_home)
    return datasets.load_debd(name, data_home=data_home)


def iwae_score(estimator, X, k):
    """Mean IWAE-k bound of X in nats per row; the estimator's n_eval_samples is restored."""
    old = estimator.get_params()["n_eval_samples"]
    estimator.set_params(n_eval_samples=int(k))
    try:
        return float(estimator.score(X))
    finally:
        estimator.set_params(n_eval_samples=old)


def evaluate(estimator, X_test, iwae_samples=1000, max_rows=None, seed=0):
    """Test ELBO and IWAE bound of a fitted estimator, in nats per row.

    Parameters
    ----------
    estimator : fitted skvae estimator
    X_test : ndarray of shape (n_rows, n_features)
    iwae_samples : int, default=1000
        k of the IWAE bound; 0 or 1 skips it (the ELBO is then reported as is).
    max_rows : int or None, default=None
        Score the IWAE bound on at most this many test rows, drawn once at
        random with ``seed`` (the ELBO is always computed on all rows).
    seed : int, default=0

    Returns
    -------
    dict
        ``test_elbo``, ``test_iwae``, ``iwae_samples``, ``n_test``,
        ``iwae_rows``, ``test_elbo_on_iwae_rows``, ``bits_per_dim`` (of the
        IWAE bound, else of the ELBO) and ``eval_time_s``.
    """
    start = time.perf_counter()
    X_test = np.asarray(X_test)
    n, d = X_test.shape
    elbo_rows = estimator.score_samples(X_test)
    rows = np.arange(n)
    if max_rows is not None and n > max_rows:
        rows = np.sort(np.random.RandomState(seed).choice(n, size=int(max_rows), replace=False))
    out = {
        "test_elbo": float(elbo_rows.mean()),
        "n_test": n,
        "iwae_samples": int(iwae_samples) if iwae_samples and iwae_samples > 1 else 0,
        "iwae_rows": len(rows) if iwae_samples and iwae_samples > 1 else 0,
        "test_elbo_on_iwae_rows": float(elbo_rows[rows].mean()),
        "test_iwae": float("nan"),
    }
    if out["iwae_samples"]:
        out["test_iwae"] = iwae_score(estimator, X_test[rows], iwae_samples)
    best = out["test_iwae"] if out["iwae_samples"] else out["test_elbo"]
    out["bits_per_dim"] = -best / (d * math.log(2))
    out["eval_time_s"] = time.perf_counter() - start
    return out


def _with_valid_early_stopping(estimator, X_valid, patience):
    """Add an ELBOMonitor on valid and an EarlyStopping that restores the best epoch."""
    from skorch.callbacks import EarlyStopping

    from skvae.callbacks import ELBOMonitor

    extra = [
        ("harness_valid_elbo", ELBOMonitor(X_valid, name="valid")),
        # 'abs' mode: skorch's relative threshold misbehaves for negative scores.
        ("harness_early_stopping", EarlyStopping(monitor="valid_elbo", lower_is_better=False, patience=patience,
                                                 threshold=1e-3, threshold_mode="abs", load_best=True)),
    ]  # fmt: skip
    return estimator.set_params(callbacks=list(estimator.get_params()["callbacks"] or []) + extra)


def run_one(estimator_factory, dataset_name, grid=({},), *, model_name=None, data_home=None, data=None,
            patience=None, iwae_samples=1000, iwae_max_rows=None, seed=0, log=print):  # fmt: skip
    """Fit every configuration in ``grid``, keep the best on valid, evaluate it on test.

    Parameters
    ----------
    estimator_factory : callable
        ``estimator_factory(**params)`` returns an unfitted estimator for one
        configuration of the grid.
    dataset_name : str
        Passed to :func:`load_dataset` unless ``data`` is given.
    grid : iterable of dict, default=({},)
        Configurations to choose from by mean valid ELBO.
    model_name : str, default=None
        Label of the row; the estimator's class name by default.
    data_home : str, default=None
    data : Bunch, default=None
        Already loaded splits (``train``, ``valid``, ``test``).
    patience : int or None, default=None
        Early stopping on the valid ELBO after this many epochs without
        improvement (best epoch restored); None trains for ``max_epochs``.
    iwae_samples, iwae_max_rows, seed
        See :func:`evaluate`.
    log : callable, default=print

    Returns
    -------
    dict
        One result row (flat, CSV-ready): data set, model, chosen settings,
        valid score, test scores, times, and the environment.
    """
    data = load_dataset(dataset_name, data_home) if data is None else data
    grid = [dict(g) for g in grid]
    best, selection_start = None, time.perf_counter()
    for params in grid:
        estimator = estimator_factory(**params)
        if patience is not None:
            _with_valid_early_stopping(estimator, data.valid, patience)
        start = time.perf_counter()
        estimator.fit(data.train)
        fit_time = time.perf_counter() - start
        valid = float(estimator.score(data.valid))
        epochs = len(estimator.history_)
        log(f"  {dataset_name} {params}: valid ELBO {valid:.3f} ({epochs} epochs, {fit_time:.1f} s)")
        if best is None or valid > best[0]:
            best = (valid, params, estimator, fit_time, epochs)
    selection_time = time.perf_counter() - selection_start
    valid, params, estimator, fit_time, epochs = best
    scores = evaluate(estimator, data.test, iwae_samples=iwae_samples, max_rows=iwae_max_rows, seed=seed)
    settings = {k: v for k, v in estimator.get_params().items() if k != "callbacks" and "__" not in k}
    return {
        "dataset": dataset_name,
        "model": model_name or type(estimator).__name__,
        "chosen": json.dumps(params, default=str),
        "grid_size": len(grid),
        "valid_elbo": valid,
        **scores,
        "n_train": len(data.train),
        "n_features": data.train.shape[1],
        "epochs_run": epochs,
        "early_stopping_patience": patience,
        "fit_time_s": fit_time,
        "selection_time_s": selection_time,
        "settings": json.dumps(settings, default=str, sort_keys=True),
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}",
        "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
    }


def bits_back_round_trip(coder, X):
    """Encode X with a fitted BitsBackCoder and decode it back, timing each way.

    Returns ``(blob, encode_s, decode_s, equal)``; ``equal`` says whether the
    decoded array has X's values, dtype and shape.
    """
    start = time.perf_counter()
    blob = coder.encode(X)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    back = coder.decode(blob)
    decode_s = time.perf_counter() - start
    equal = bool(np.array_equal(back, X) and back.dtype == X.dtype and back.shape == X.shape)
    return blob, encode_s, decode_s, equal


def append_row(path_csv, row):
    """Append a dict as a CSV row; the header grows when a row brings new keys.

    Safe with several benchmark processes writing to one file: the
    read-modify-replace runs under an exclusive lock on a sidecar file.
    """
    path_csv = Path(path_csv)
    path_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(path_csv.with_name(path_csv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = read_rows(path_csv)
        rows.append(row)
        fields = list(dict.fromkeys(k for r in rows for k in r))
        fd, tmp = tempfile.mkstemp(dir=path_csv.parent, suffix=".part")
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path_csv)  # never a half-written results file


def read_rows(path_csv):
    """Rows of a results CSV as dicts of strings ([] when the file does not exist)."""
    path_csv = Path(path_csv)
    if not path_csv.is_file():
        return []
    with open(path_csv, newline="") as f:
        return list(csv.DictReader(f))


def _cell(value, digits):
    if value is None or value == "":
        return ""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():  # an int read back from the CSV
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return ""
    return f"{number:.{digits}f}"


def markdown_table(rows, columns, digits=2):
    """A markdown table; ``columns`` is a list of (key, header) pairs."""
    lines = ["| " + " | ".join(h for _, h in columns) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]  # fmt: skip
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(key), digits) for key, _ in columns) + " |")
    return "\n".join(lines)


def write_markdown(path_md, rows, command, columns=None, title="Benchmark results", notes="", digits=2):
    """Write rows as a markdown table under a title, with the command that produced them."""
    if columns is None:
        columns = [(k, k) for k in dict.fromkeys(k for r in rows for k in r)]
    text = [f"# {title}", "", "Produced by:", "", "```", command, "```", ""]
    if notes:
        text += [notes.strip(), ""]
    text += [markdown_table(rows, columns, digits), ""]
    Path(path_md).parent.mkdir(parents=True, exist_ok=True)
    Path(path_md).write_text("\n".join(text))


def command_line():
    """The command that is running, as typed (for results files)."""
    threads = os.environ.get("OMP_NUM_THREADS")
    prefix = f"OMP_NUM_THREADS={threads} " if threads else ""
    return prefix + "python " + " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
