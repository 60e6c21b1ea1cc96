"""Vanilla VAE vs weighted self-augmentation (WSA).

``compare`` trains the default ``WSAVAE`` and the default
``VAEDensityEstimator`` with the same architecture and epochs on small
subsamples of the DEBD sets, the sine-Bernoulli toy and Silhouettes, and
records final and best-epoch test ELBO, the weights' effective sample size
and seconds per epoch, one CSV row per finished run (resumable: recorded
runs are skipped); ``--methods`` may add ``vanilla_es`` and ``wsa_es``, the
same models with ``early_stopping=True`` (the estimators' defaults: 10 % of
the training rows held out) and the same epoch cap, reported beside them;
``compare-report`` rebuilds its markdown table:

    OMP_NUM_THREADS=1 python benchmarks/bench_wsa.py compare --epochs 500 --seeds 0,1,2
    OMP_NUM_THREADS=1 python benchmarks/bench_wsa.py compare --epochs 500 --seeds 0,1,2 --methods vanilla_es
    OMP_NUM_THREADS=1 python benchmarks/bench_wsa.py compare --datasets dna,ad,cr52 --epochs 300 --seeds 0 \
        --csv wsa_sweep.csv --label my-variant --wsa-params '{"discriminator_lr": 1e-3}'

``run`` and ``report`` (below) are the older learning-curve runs.

The setting of Jin's paper on Caltech-101 Silhouettes: MLP 2x500 ReLU
encoder and decoder, latent 16, Adam lr 5e-4, batch 200, WSA warm-up of 50
epochs, n_augment=4; the paper reports test bits/dim after 200, 600 and 1000
epochs (its Table 1). Both models train on the train split only (no early
stopping: the point is how much each overfits as training goes on); train
and test ELBO are recorded every ``--every`` epochs and the test IWAE-k bound
at each checkpoint. One run per (data set, method, seed) is saved as JSON
under benchmarks/results/wsa_runs/; ``report`` rebuilds the tables and
learning-curve PNGs from those files.

    OMP_NUM_THREADS=1 python benchmarks/bench_wsa.py run --datasets dna,cwebkb,bbc,ad --epochs 150
    python benchmarks/bench_wsa.py report

Silhouettes to 200, 600 and 1000 epochs (the paper's protocol) comes from the
vanilla and WSA runs of ``reproduce_table1.py``, which are resumable and code
the test split at those epochs; ``report`` adds them as a section of their own
(``run --datasets caltech_silhouettes`` still trains a shorter run here).

Time per epoch is measured by skorch's EpochTimer (scoring callbacks are not
included); the WSA/vanilla ratio compares WSA's post-warm-up epochs with the
vanilla epochs of the same invocation.
"""

import argparse
import copy
import json
import math
import sys
import time

import numpy as np
from _harness import RESULTS, append_row, command_line, load_dataset, read_rows
from _harness import markdown_table as harness_table
from skorch.callbacks import Callback
from skorch.history import History

from skvae import VAEDensityEstimator
from skvae.wsa import WSAVAE

RUNS = RESULTS / "wsa_runs"

# Jin, Table 1, Caltech-101 Silhouettes test bits/dim (as quoted in the issue; not re-checked here).
PAPER = {"vanilla": {200: 0.2718, 600: 0.3998, 1000: 0.4817}, "wsa": {200: 0.2564, 600: 0.3063, 1000: 0.3283}}

SETTING = dict(latent_dim=16, hidden_layer_sizes=(500, 500), lr=5e-4, batch_size=200)


class Curves(Callback):
    """Record train/test ELBO every ``every`` epochs and the test IWAE bound at checkpoints.

    ``on_record(history)`` is called after each recording, so a run that is
    stopped early still leaves its curve on disk.
    """

    def __init__(self, X_train, X_test, every, checkpoints, iwae, on_record=None):
        self.X_train = np.asarray(X_train, dtype=np.float64)
        self.X_test = np.asarray(X_test, dtype=np.float64)
        self.every = every
        self.checkpoints = set(checkpoints)
        self.iwae = iwae
        self.on_record = on_record

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch % self.every == 0 or epoch in self.checkpoints:
            net.history.record("train_elbo", float(net.score_rows(self.X_train, 1).mean()))
            net.history.record("test_elbo", float(net.score_rows(self.X_test, 1).mean()))
            if epoch in self.checkpoints and self.iwae > 1:
                net.history.record("test_iwae", float(net.score_rows(self.X_test, self.iwae).mean()))
            if self.on_record is not None:
                self.on_record(net.history)


class Snapshot(Callback):
    """Keep a copy of the VAE, its optimizer and the history at the end of epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch
        self.state = None

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            self.state = (copy.deepcopy(net.module_.state_dict()), copy.deepcopy(net.optimizer_.state_dict()),
                          copy.deepcopy(list(net.history)))


_KEEP = ("epoch", "dur", "train_loss", "train_elbo", "test_elbo", "test_iwae", "weight_mean", "weight_max",
         "weight_ess", "discriminator_loss", "discriminator_accuracy")


def run(args):
    RUNS.mkdir(parents=True, exist_ok=True)
    checkpoints = sorted({int(c) for c in args.checkpoints.split(",") if 0 < int(c) <= args.epochs} | {args.epochs})
    for name in args.datasets.split(","):
        data = load_dataset(name, args.data_home)
        for seed in range(args.seeds):
            meta = {"dataset": name, "seed": seed, "epochs": args.epochs, "warmup_epochs": args.warmup,
                    "n_features": data.train.shape[1], "n_train": len(data.train), "n_test": len(data.test),
                    "iwae_samples": args.iwae, "checkpoints": checkpoints,
                    "setting": {k: str(v) for k, v in SETTING.items()}, "command": command_line()}

            def saver(method, start):
                path = RUNS / f"{name}_{method}_s{seed}_e{args.epochs}.json"

                def save(history, done=False):
                    rows = [{k: row[k] for k in _KEEP if k in row} for row in history]
                    path.write_text(json.dumps({**meta, "method": method, "complete": done,
                                                "fit_wall_s": time.perf_counter() - start, "history": rows}))
                    return path
                return save

            # vanilla, with a snapshot at the end of WSA's warm-up; a labelled WSA
            # variant only needs the snapshot (the vanilla run is the unlabelled one's).
            start = time.perf_counter()
            save = saver("vanilla", start) if not args.label else None
            snap = Snapshot(args.warmup)
            vanilla = VAEDensityEstimator(**SETTING, max_epochs=args.warmup if args.label else args.epochs,
                                          random_state=seed, callbacks=[
                ("curves", Curves(data.train, data.test, args.every, checkpoints, args.iwae, save)),
                ("snapshot", snap)])
            vanilla.fit(data.train)
            if save is not None:
                _report_line(name, "vanilla", save(vanilla.history_, done=True), start)

            # WSA: the warm-up is plain ELBO training, so it is the vanilla run's first
            # `warmup` epochs; WSA continues from that model, optimizer state and history.
            method = "wsa" + (f"-{args.label}" if args.label else "")
            start = time.perf_counter()
            save = saver(method, start)
            wsa = WSAVAE(**SETTING, warmup_epochs=args.warmup, n_augment=4, max_epochs=0, random_state=seed,
                         callbacks=[("curves", Curves(data.train, data.test, args.every, checkpoints, args.iwae,
                                                      save))], **json.loads(args.wsa_params)).fit(data.train)
            module_state, optimizer_state, rows = snap.state
            wsa.net_.module_.load_state_dict(module_state)
            wsa.net_.optimizer_.load_state_dict(optimizer_state)
            wsa.net_.history_ = History(rows)
            wsa.set_params(max_epochs=args.epochs - args.warmup, warm_start=True).fit(data.train)
            _report_line(name, method, save(wsa.history_, done=True), start)


def speed(args):
    """Median seconds per epoch of vanilla and of WSA after warm-up, back to back in one process."""
    rows = []
    for name in args.datasets.split(","):
        X = load_dataset(name, args.data_home).train
        vanilla = VAEDensityEstimator(**SETTING, max_epochs=args.epochs, random_state=0).fit(X)
        wsa = WSAVAE(**SETTING, max_epochs=args.epochs + 1, warmup_epochs=1, random_state=0).fit(X)
        v = float(np.median(vanilla.history_[:, "dur"]))
        w = float(np.median(wsa.history_[1:, "dur"]))
        rows.append({"dataset": name, "epochs": args.epochs, "vanilla_s": v, "wsa_s": w, "ratio": w / v})
        print(rows[-1], flush=True)
    text = ["# WSA time per epoch relative to vanilla", "", "Produced by:", "", "```", command_line(), "```", "",
            "Median over the epochs of each fit; WSA epochs after its one warm-up epoch; the two fits run back "
            "to back in one process (one torch thread).", "",
            markdown_table(rows, [("dataset", "data set"), ("epochs", "epochs timed"), ("vanilla_s", "vanilla s/epoch"),
                                  ("wsa_s", "WSA s/epoch"), ("ratio", "WSA / vanilla")], digits=2), ""]
    (RESULTS / "wsa_speed.md").write_text("\n".join(text))


def _report_line(name, method, path, start):
    last = json.loads(path.read_text())["history"][-1]
    print(f"{name} {method}: {last['epoch']} epochs, {time.perf_counter() - start:.0f} s in this process, "
          f"test ELBO {last.get('test_elbo', float('nan')):.2f}, IWAE {last.get('test_iwae', float('nan')):.2f} "
          f"-> {path.name}", flush=True)


def markdown_table(rows, columns, digits=3):
    """Markdown table; floats with ``digits`` decimals, ints and strings as they are."""
    def cell(v):
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return ""
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "|".join(["---"] * len(columns)) + "|"]
    lines += ["| " + " | ".join(cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines)


def _bpd(nats, d):
    return -nats / (d * math.log(2)) if nats is not None and np.isfinite(nats) else float("nan")


def _epoch_times(run):
    durs = np.array([row["dur"] for row in run["history"]])
    if run["method"].startswith("wsa"):
        warm = run["warmup_epochs"]
        return durs[:warm], durs[warm:]
    return durs, durs[:0]


def report(args):
    runs = [json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))]
    if not runs:
        sys.exit("no runs under " + str(RUNS))
    by_key = {}
    for r in runs:  # the longest run of each (dataset, method, seed) wins
        key = (r["dataset"], r["method"], r["seed"])
        if key not in by_key or r["epochs"] > by_key[key]["epochs"]:
            by_key[key] = r
    rows, speed = [], []
    datasets = sorted({k[0] for k in by_key}, key=lambda n: (n != "caltech_silhouettes", n))
    for name in datasets:
        for (ds, method, seed), r in sorted(by_key.items()):
            if ds != name:
                continue
            hist = {row["epoch"]: row for row in r["history"]}
            for c in r["checkpoints"]:
                row = hist.get(c)
                if row is None:
                    continue
                rows.append({
                    "dataset": name, "method": method, "seed": seed, "epoch": c,
                    "train_bpd_elbo": _bpd(row.get("train_elbo"), r["n_features"]),
                    "test_bpd_elbo": _bpd(row.get("test_elbo"), r["n_features"]),
                    "test_bpd_iwae": _bpd(row.get("test_iwae"), r["n_features"]),
                    "test_nats_elbo": row.get("test_elbo"),
                    "test_nats_iwae": row.get("test_iwae"),
                    "paper_bpd": PAPER.get(method, {}).get(c) if name == "caltech_silhouettes" else None,
                })
        v = [r for (ds, m, _), r in by_key.items() if ds == name and m == "vanilla"]
        w = [r for (ds, m, _), r in by_key.items() if ds == name and m == "wsa"]
        if v and w:
            t_v = np.concatenate([_epoch_times(r)[0] for r in v])
            t_w = np.concatenate([_epoch_times(r)[1] for r in w])
            speed.append({"dataset": name, "vanilla_s": float(np.median(t_v)),
                          "wsa_s": float(np.median(t_w)) if len(t_w) else float("nan"),
                          "ratio": float(np.median(t_w) / np.median(t_v)) if len(t_w) else float("nan")})
    columns = [("dataset", "data set"), ("method", "method"), ("seed", "seed"), ("epoch", "epoch"),
               ("train_bpd_elbo", "train bpd (ELBO)"), ("test_bpd_elbo", "test bpd (ELBO)"),
               ("test_bpd_iwae", "test bpd (IWAE-k)"), ("test_nats_elbo", "test ELBO (nats)"),
               ("test_nats_iwae", "test IWAE-k (nats)"),
               ("paper_bpd", "paper Table 1 bpd")]
    speed_columns = [("dataset", "data set"), ("vanilla_s", "vanilla s/epoch"),
                     ("wsa_s", "WSA s/epoch (after warm-up)"),
                     ("ratio", "WSA / vanilla")]
    partial = [f"- {ds} {m} seed {seed}: stopped after epoch {r['history'][-1]['epoch']} of {r['epochs']} "
               "(time limit); its rows end there." for (ds, m, seed), r in sorted(by_key.items())
               if not r.get("complete", True)]
    commands = sorted({r["command"] for r in by_key.values()})
    k = sorted({r["iwae_samples"] for r in by_key.values()})
    text = ["# Weighted self-augmentation vs vanilla VAE", "", "Produced by:", "", "```",
            *commands, "python benchmarks/bench_wsa.py report", "```", "",
            f"Setting: {SETTING}, Adam; WSA with n_augment 4 and otherwise the defaults `WSAVAE` had when "
            f"the runs were made (warm-up {sorted({r['warmup_epochs'] for r in by_key.values() if r['warmup_epochs']})}"
            "; the recorded runs predate the change of defaults: MLP discriminator 2x500 with Adam at the same "
            f"lr, raw per-sample weights, no discriminator training in warm-up). IWAE k = {k}. bpd = bits per "
            "dimension = -bound / (D ln 2), lower is better; the ELBO and IWAE columns are upper bounds on "
            "the true test NLL in bits/dim.", "",
            markdown_table(rows, columns, digits=4), "", *partial, "", "## Time per epoch (median, seconds)", "",
            markdown_table(speed, speed_columns, digits=3), "", *_table1_section(), args.notes or "", ""]
    (RESULTS / "wsa.md").write_text("\n".join(text))
    _plot(by_key, datasets)
    print("\n".join(text))


def _table1_section():
    """Silhouettes to 1000 epochs: the vanilla and WSA runs of reproduce_table1.py (same setting).

    Those runs are resumable and already take the paper's checkpoints, so
    this benchmark reads them instead of training the same models again.
    """
    table = [r for r in read_rows(RESULTS / "table1.csv") if r["method"] == "vanilla" or r["method"].startswith("wsa")]
    curves = [r for r in read_rows(RESULTS / "table1_curves.csv")
              if r["method"] == "vanilla" or r["method"].startswith("wsa")]
    if not table:
        return []
    rows = [{"method": r["method"], "seed": int(r["seed"]), "epoch": int(r["epoch"]),
             "train_bpd_elbo": float(r["train_bpd_elbo"]), "test_bpd_elbo": float(r["test_bpd_elbo"]),
             "test_bpd_bitsback": float(r["test_bpd_bitsback"]),
             "paper_bpd": PAPER.get(r["method"], {}).get(int(r["epoch"]))}
            for r in sorted(table, key=lambda r: (r["method"] != "vanilla", r["method"], int(r["seed"]),
                                                 int(r["epoch"])))]
    _plot_table1_curves(curves)
    columns = [("method", "method"), ("seed", "seed"), ("epoch", "epoch"), ("train_bpd_elbo", "train bpd (ELBO)"),
               ("test_bpd_elbo", "test bpd (ELBO)"), ("test_bpd_bitsback", "test bpd (BitsBackCoder file)"),
               ("paper_bpd", "paper Table 1 bpd")]
    return ["## Caltech-101 Silhouettes at 200 / 600 / 1000 epochs", "",
            "From the vanilla and WSA runs of `benchmarks/reproduce_table1.py` (same setting; see "
            "[table1.md](table1.md) for its commands). There WSA's warm-up is a run of its own, not a copy of "
            "the vanilla run's first 50 epochs as above. Variants: `wsa_batch_mean` = "
            "`weight_reduction='batch_mean'`; `wsa_small_disc` = discriminator (64,) with lr 1e-4.", "",
            markdown_table(rows, columns, digits=4), "",
            "![Silhouettes curves](wsa_silhouettes_curves.png)", ""]


def _plot_table1_curves(curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    runs = {}
    for r in curves:
        runs.setdefault((r["method"], int(r["seed"])), []).append(
            (int(r["epoch"]), float(r["train_bpd_elbo"]), float(r["test_bpd_elbo"])))
    colors = {"vanilla": "tab:blue", "wsa": "tab:red", "wsa_batch_mean": "tab:green", "wsa_small_disc": "tab:purple"}
    for (method, seed), pts in sorted(runs.items()):
        pts.sort()
        ep, train, test = zip(*pts)
        color = colors.get(method, "tab:gray")
        ax.plot(ep, train, "--", color=color, lw=1, label=f"{method} s{seed} train")
        ax.plot(ep, test, "-", color=color, lw=1.5, label=f"{method} s{seed} test")
    for method, marks in PAPER.items():
        ax.plot(list(marks), list(marks.values()), "x", ms=9, color=colors[method], label=f"paper {method}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits/dim (negative ELBO)")
    ax.set_title("Caltech-101 Silhouettes (reproduce_table1.py runs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(RESULTS / "wsa_silhouettes_curves.png", dpi=110)
    plt.close(fig)


def _plot(by_key, datasets):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.6), squeeze=False)
    for ax, name in zip(axes[0], datasets):
        for (ds, method, seed), r in sorted(by_key.items()):
            if ds != name:
                continue
            pts = [row for row in r["history"] if "test_elbo" in row]
            ep = [row["epoch"] for row in pts]
            color = {"vanilla": "tab:blue", "wsa": "tab:red", "wsa-batch_mean": "tab:green",
                     "wsa-unweighted": "tab:orange"}.get(method, "tab:purple")
            d = r["n_features"]
            ax.plot(ep, [_bpd(row["train_elbo"], d) for row in pts], "--", color=color, label=f"{method} train")
            ax.plot(ep, [_bpd(row["test_elbo"], d) for row in pts], "-", color=color, label=f"{method} test")
            if method.startswith("wsa") and r["warmup_epochs"]:
                ax.axvline(r["warmup_epochs"], color="grey", lw=0.8, ls=":")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("bits/dim (ELBO)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "wsa_curves.png", dpi=110)


# -- compare: default WSAVAE against default VAEDensityEstimator ------------------

COMPARE_CSV = RESULTS / "wsa_compare.csv"
COMPARE_MD = RESULTS / "wsa_compare.md"
# The nine small data sets are subsampled to this many training rows (the test split is kept whole).
N_TRAIN = 1000
SMALL_NET = dict(latent_dim=16, hidden_layer_sizes=(200, 200))
# Silhouettes keeps the paper's setting (its full train split), the sine toy the paper's 1,000 rows.
OWN_SETTING = {"caltech_silhouettes": dict(SETTING)}


def compare_data(name, data_home, seed):
    """(train, test) of a comparison data set; the subsample of training rows depends on the seed."""
    if name == "sine":
        from skvae.datasets import make_sine_bernoulli

        return make_sine_bernoulli(1000, random_state=2 * seed), make_sine_bernoulli(1000, random_state=2 * seed + 1)
    data = load_dataset(name, data_home)
    train = np.asarray(data.train)
    if name != "caltech_silhouettes" and len(train) > N_TRAIN:
        train = train[np.random.RandomState(seed).choice(len(train), N_TRAIN, replace=False)]
    return train, np.asarray(data.test)


class TestCurve(Callback):
    """Test ELBO every ``every`` epochs and at the last epoch (the early-stopping oracle's curve)."""

    def __init__(self, X_test, every, last):
        self.X_test = np.asarray(X_test, dtype=np.float64)
        self.every = every
        self.last = last

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch % self.every == 0 or epoch == self.last:
            net.history.record("test_elbo", float(net.score_rows(self.X_test, 1).mean()))


def _nanmean(values):
    values = np.asarray([v for v in values if v is not None], dtype=float)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def compare_one(name, method, seed, epochs, every, wsa_params, data_home):
    """Train one model and return its row of the comparison CSV."""
    train, test = compare_data(name, data_home, seed)
    setting = {**SETTING, **OWN_SETTING[name]} if name in OWN_SETTING else dict(SMALL_NET)
    curve = TestCurve(test, every, epochs)
    start = time.perf_counter()
    # "<method>_es": the same model with early_stopping=True (validation_fraction, n_iter_no_change and tol at
    # their defaults: 10 % of the training rows held out, 10 epochs without gain; the best epoch's weights kept)
    # (WSA's patience pinned to 10, the value its recorded wsa_es rows were trained with). "wsa_default" is
    # WSAVAE's own defaults since issue 17 (early stopping with patience 30), only the epoch cap from here.
    base, early = (method[:-3], True) if method.endswith("_es") else (method, False)
    if base == "vanilla":
        est = VAEDensityEstimator(**setting, max_epochs=epochs, random_state=seed, callbacks=[("curve", curve)],
                                  early_stopping=early)
    elif base == "wsa_default":
        est = WSAVAE(**setting, max_epochs=epochs, random_state=seed, callbacks=[("curve", curve)], **wsa_params)
        early = est.early_stopping
    else:
        pinned = {"early_stopping": early, **({"n_iter_no_change": 10} if early else {})}
        est = WSAVAE(**setting, max_epochs=epochs, random_state=seed, callbacks=[("curve", curve)],
                     **{**pinned, **wsa_params})
    est.fit(train)
    wall = time.perf_counter() - start
    hist = est.history_
    points = [(row["epoch"], row["test_elbo"]) for row in hist if "test_elbo" in row]
    best_epoch, best = max(points, key=lambda p: p[1])
    durs = np.array(hist[:, "dur"])
    row = {"dataset": name, "method": method, "seed": seed, "epochs": epochs, "n_features": train.shape[1],
           "n_train": len(train), "n_test": len(test),
           "setting": json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in setting.items()}),
           "test_elbo_final": float(est.score(test)), "train_elbo_final": float(est.score(train)),
           "test_elbo_best": best, "best_epoch": best_epoch, "s_per_epoch": float(np.median(durs)),
           "wall_s": wall, "command": command_line()}
    if early:
        # WSA's stopping rule only counts epochs after its warm-up, so its best epoch is one of those
        first = est.get_params().get("warmup_epochs", 0) + 1 if base != "vanilla" else 1
        row.update({"early_stopping": True, "epochs_trained": len(hist),
                    "best_valid_epoch": max(((r["epoch"], r["valid_elbo"]) for r in hist
                                             if "valid_elbo" in r and r["epoch"] >= first),
                                            key=lambda p: p[1], default=(None, None))[0]})
    if base != "vanilla":
        warm = est.get_params()["warmup_epochs"]
        row.update({"wsa_params": json.dumps(wsa_params, sort_keys=True), "warmup_epochs": warm,
                    "s_per_epoch": float(np.median(durs[warm:])) if len(durs) > warm else float("nan"),
                    "s_per_warmup_epoch": float(np.median(durs[:warm])) if warm else float("nan"),
                    "ess_mean": _nanmean(hist[warm:, "weight_ess"]), "ess_last": float(hist[-1, "weight_ess"]),
                    "weight_mean_last": float(hist[-1, "weight_mean"]),
                    "disc_acc_warmup_last": float(hist[warm - 1, "discriminator_accuracy"]) if warm else float("nan"),
                    "disc_acc_last": float(hist[-1, "discriminator_accuracy"])})
    return row


def compare(args):
    """Resumable: a (data set, method, seed, epochs) already in the CSV is not trained again."""
    csv_path = RESULTS / args.csv
    wsa_params = json.loads(args.wsa_params)
    suffix = f"-{args.label}" if args.label else ""
    method_of = {"vanilla": "vanilla", "wsa": "wsa" + suffix, "vanilla_es": "vanilla_es", "wsa_es": "wsa_es" + suffix,
                 "wsa_default": "wsa_default" + suffix}
    # seeds outermost: a stopped invocation leaves every data set with its first seeds
    for seed in [int(s) for s in args.seeds.split(",")]:
        for name in args.datasets.split(","):
            epochs = args.epochs_by.get(name, args.epochs)
            for method in args.methods.split(","):
                label = method_of[method]
                done = {(r["dataset"], r["method"], r["seed"], r["epochs"]) for r in read_rows(csv_path)}
                if (name, label, str(seed), str(epochs)) in done:
                    continue
                row = compare_one(name, method, seed, epochs, args.every, wsa_params if method.startswith("wsa") else {},
                                  args.data_home)
                row["method"] = label
                append_row(csv_path, row)
                print(f"{name} {label} s{seed}: final {row['test_elbo_final']:.2f} best {row['test_elbo_best']:.2f}"
                      f" @{row['best_epoch']} ess {row.get('ess_mean', float('nan')):.3f} "
                      f"{row['s_per_epoch']:.3f} s/epoch, {row['wall_s']:.0f} s", flush=True)
    compare_report(args)


def _mean_std(values):
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def compare_report(args):
    """Markdown table per (data set, WSA label): means over the seeds both methods have."""
    csv_path = RESULTS / args.csv
    rows = read_rows(csv_path)
    if not rows:
        sys.exit(f"no rows in {csv_path}")
    out = []
    keys = list(dict.fromkeys((r["dataset"], r["epochs"]) for r in rows))
    for name, epochs in keys:
        mine = [r for r in rows if r["dataset"] == name and r["epochs"] == epochs]
        vanilla = {r["seed"]: r for r in mine if r["method"] == "vanilla"}
        vanilla_es = {r["seed"]: r for r in mine if r["method"] == "vanilla_es"}
        for label in dict.fromkeys(r["method"] for r in mine if r["method"] != "vanilla" and "_es" not in r["method"]
                                   and not r["method"].startswith("wsa_default")):
            wsa = {r["seed"]: r for r in mine if r["method"] == label}
            seeds = sorted(set(vanilla) & set(wsa), key=int)
            if not seeds:
                continue
            get = lambda runs, key: [float(runs[s][key]) for s in seeds]
            wsa_es = {r["seed"]: r for r in mine if r["method"] == label.replace("wsa", "wsa_es", 1)}
            # early-stopped runs: over the seeds of the row that have them (their count is shown)
            es = lambda runs, key: [float(runs[s][key]) for s in seeds if s in runs]
            es_pair = np.array([float(wsa_es[s]["test_elbo_final"]) - float(vanilla_es[s]["test_elbo_final"])
                                for s in seeds if s in wsa_es and s in vanilla_es])
            v_final, w_final = get(vanilla, "test_elbo_final"), get(wsa, "test_elbo_final")
            v_best = get(vanilla, "test_elbo_best")
            diff = np.subtract(w_final, v_final)
            diff_best = np.subtract(w_final, v_best)
            m = lambda x: _mean_std(x)[0]
            sd = lambda x: _mean_std(x)[1]
            out.append({
                "dataset": name, "wsa": label, "epochs": int(epochs), "seeds": len(seeds), "d": mine[0]["n_features"],
                "vanilla_final": m(v_final), "vanilla_final_sd": sd(v_final),
                "vanilla_best": m(v_best), "vanilla_best_epoch": m(get(vanilla, "best_epoch")),
                "wsa_final": m(w_final), "wsa_final_sd": sd(w_final),
                "wsa_best": m(get(wsa, "test_elbo_best")), "wsa_best_epoch": m(get(wsa, "best_epoch")),
                "gain_vs_final": m(diff), "wins_final": f"{int((diff > 0).sum())}/{len(seeds)}",
                "gain_vs_best": m(diff_best), "wins_best": f"{int((diff_best >= 0).sum())}/{len(seeds)}",
                "vanilla_es": m(es(vanilla_es, "test_elbo_final")) if es(vanilla_es, "test_elbo_final") else None,
                "vanilla_es_epochs": m(es(vanilla_es, "epochs_trained")) if es(vanilla_es, "epochs_trained") else None,
                "wsa_es": m(es(wsa_es, "test_elbo_final")) if es(wsa_es, "test_elbo_final") else None,
                "wsa_es_epochs": m(es(wsa_es, "epochs_trained")) if es(wsa_es, "epochs_trained") else None,
                "es_seeds": f"{len(es(vanilla_es, 'seed'))}/{len(es(wsa_es, 'seed'))}",
                # both early-stopped, paired over the seeds that have both
                "es_vs_es": m(es_pair) if len(es_pair) else None,
                "es_vs_es_wins": f"{int((es_pair > 0).sum())}/{len(es_pair)}" if len(es_pair) else None,
                # paired over the seeds that have the early-stopped run
                "gain_vs_es": m(np.subtract(es({s: wsa[s] for s in vanilla_es if s in wsa}, "test_elbo_final"),
                                            es(vanilla_es, "test_elbo_final"))) if es(vanilla_es, "seed") else None,
                "ess": m(get(wsa, "ess_mean")), "disc_acc": m(get(wsa, "disc_acc_last")),
                "v_s": m(get(vanilla, "s_per_epoch")), "w_s": m(get(wsa, "s_per_epoch")),
                "ratio": m(get(wsa, "s_per_epoch")) / m(get(vanilla, "s_per_epoch")),
            })
    columns = [("dataset", "data set"), ("wsa", "WSA"), ("epochs", "epochs"), ("seeds", "seeds"),
               ("vanilla_final", "vanilla final"), ("vanilla_final_sd", "± sd"),
               ("vanilla_best", "vanilla best epoch"), ("vanilla_best_epoch", "(epoch)"),
               ("wsa_final", "WSA final"), ("wsa_final_sd", "± sd"), ("wsa_best_epoch", "WSA best epoch"),
               ("gain_vs_final", "WSA − vanilla final"), ("wins_final", "seeds WSA better"),
               ("gain_vs_best", "WSA − vanilla best"), ("wins_best", "seeds WSA ≥ best"),
               ("vanilla_es", "vanilla early-stopped"), ("vanilla_es_epochs", "(epochs)"),
               ("gain_vs_es", "WSA − vanilla ES"), ("wsa_es", "WSA early-stopped"), ("wsa_es_epochs", "(epochs)"),
               ("es_seeds", "ES seeds (vanilla/WSA)"),
               ("es_vs_es", "WSA ES − vanilla ES"), ("es_vs_es_wins", "seeds WSA ES >"),
               ("ess", "ESS"), ("disc_acc", "D acc"),
               ("v_s", "vanilla s/epoch"), ("w_s", "WSA s/epoch"), ("ratio", "ratio")]
    commands = sorted({r["command"] for r in rows})
    params = sorted({(r["method"], r.get("wsa_params", "")) for r in rows if r["method"] != "vanilla"})
    text = ["# Default WSAVAE against default VAEDensityEstimator", "", "Produced by:", "", "```", *commands,
            f"python benchmarks/bench_wsa.py compare-report --csv {args.csv}", "```", "",
            f"Test ELBO in nats per row (higher is better), mean over seeds; the nine DEBD sets use {N_TRAIN} "
            f"training rows drawn per seed and {SMALL_NET}, the other parameters at their defaults (same for "
            f"both methods); Silhouettes uses {SETTING} on its whole train split; 'sine' is the 256-d "
            "sine-Bernoulli toy (1,000 train / 1,000 test rows per seed). 'vanilla best epoch' is the test "
            "ELBO at vanilla's best recorded epoch (an early-stopping oracle on the test split). 'early-stopped': "
            "the same model with `early_stopping=True` at the estimator's defaults (10 % of the training rows "
            "held out for validation, stop after 10 epochs without a gain of 1e-4 nats, best epoch's weights "
            "restored; WSA counts only after its warm-up), trained on the same rows with the same epoch cap; "
            "'(epochs)' is the mean number of epochs it trained. ESS: Kish's "
            "effective sample size of the weights, mean over WSA epochs. D acc: discriminator accuracy in "
            "the last epoch. s/epoch: median time of an epoch (WSA: after warm-up), one torch thread, on a "
            "machine shared with another developer's jobs.", "",
            "WSA parameters per label (beyond the defaults): "
            + "; ".join(f"`{m}`: `{p or '{}'}`" for m, p in params), "",
            harness_table(out, columns, digits=2), ""]
    (RESULTS / args.csv).with_suffix(".md").write_text("\n".join(text))
    print("\n".join(text))



def default_report(args):
    """Markdown table of today's default WSAVAE (rows labelled ``--default``) against vanilla's three numbers."""
    rows = [r for name in args.csv.split(",") for r in read_rows(RESULTS / name)]
    labels = args.default.split(",")
    out, tally = [], {"final": [], "best": [], "es": []}
    for name in dict.fromkeys(r["dataset"] for r in rows if r["method"] in labels):
        runs = lambda method: {r["seed"]: r for r in rows if r["dataset"] == name and r["method"] == method}
        default = {seed: r for label in labels for seed, r in runs(label).items()}
        vanilla, vanilla_es, fixed = runs("vanilla"), runs("vanilla_es"), runs("wsa")
        seeds = sorted(set(default) & set(vanilla), key=int)
        if not seeds:
            continue
        val = lambda group, key, among=seeds: np.array([float(group[s][key]) for s in among])
        w = val(default, "test_elbo_final")
        es_seeds = [s for s in seeds if s in vanilla_es]
        gains = {"final": w - val(vanilla, "test_elbo_final"), "best": w - val(vanilla, "test_elbo_best")}
        if es_seeds:
            gains["es"] = val(default, "test_elbo_final", es_seeds) - val(vanilla_es, "test_elbo_final", es_seeds)
        for key, gain in gains.items():
            tally[key].append(gain.mean() >= 0 if key == "best" else gain.mean() > 0)
        fixed_seeds = [s for s in seeds if s in fixed]
        out.append({
            "dataset": name, "seeds": len(seeds), "vanilla_epochs": int(val(vanilla, "epochs").max()),
            "vanilla_final": val(vanilla, "test_elbo_final").mean(), "vanilla_best": val(vanilla, "test_elbo_best").mean(),
            "vanilla_es": val(vanilla_es, "test_elbo_final", es_seeds).mean() if es_seeds else None,
            "wsa": w.mean(), "wsa_sd": _mean_std(w)[1], "epochs": val(default, "epochs_trained").mean(),
            "gain_final": gains["final"].mean(), "wins_final": f"{int((gains['final'] > 0).sum())}/{len(seeds)}",
            "gain_best": gains["best"].mean(), "wins_best": f"{int((gains['best'] >= 0).sum())}/{len(seeds)}",
            "gain_es": gains["es"].mean() if "es" in gains else None,
            "wins_es": f"{int((gains['es'] > 0).sum())}/{len(es_seeds)}" if "es" in gains else None,
            "wsa_fixed": val(fixed, "test_elbo_final", fixed_seeds).mean() if fixed_seeds else None,
            "wall_ratio": val(default, "wall_s").mean() / val(vanilla, "wall_s").mean(),
        })
    columns = [("dataset", "data set"), ("seeds", "seeds"), ("vanilla_epochs", "vanilla epochs"),
               ("vanilla_final", "vanilla final"),
               ("vanilla_best", "vanilla best epoch (oracle)"), ("vanilla_es", "vanilla early-stopped"),
               ("wsa", "default WSA"), ("wsa_sd", "± sd"), ("epochs", "(epochs)"),
               ("gain_final", "− vanilla final"), ("wins_final", "seeds >"),
               ("gain_best", "− vanilla best"), ("wins_best", "seeds ≥"),
               ("gain_es", "− vanilla ES"), ("wins_es", "seeds >"),
               ("wsa_fixed", "WSA, all epochs (no ES)"), ("wall_ratio", "fit s / vanilla's")]
    count = lambda key: f"{sum(tally[key])} of {len(tally[key])}"
    commands = sorted({r["command"] for r in rows if r["method"] in labels})
    text = ["# Today's default WSAVAE against the plain VAE", "", "Default WSA rows produced by:", "", "```",
            *commands, f"python benchmarks/bench_wsa.py default-report --csv {args.csv} --default {args.default}",
            "```", "",
            "Test ELBO in nats per row (higher is better), mean over seeds, same data, architecture and epoch cap "
            "(500) as `wsa_compare.md`, whose rows give the vanilla columns and the WSA run without early stopping "
            "('vanilla epochs': their budget; Silhouettes' were 200-epoch runs, so its 'vanilla final' and 'all "
            "epochs' are at 200, and its fit-seconds ratio is over a 200-epoch fit). "
            "'default WSA' is `WSAVAE(**setting, max_epochs=500)` at today's defaults: early stopping on 10 % of "
            "the training rows, patience 30 epochs after the 50-epoch warm-up, best epoch's weights kept (rows "
            "labelled `wsa_es-p30` were trained before that became the default, with exactly these parameters "
            "set by hand). 'vanilla best epoch' is an oracle (the best test ELBO along vanilla's curve); "
            "'vanilla early-stopped' is `VAEDensityEstimator(early_stopping=True)` (patience 10, its default). "
            "'fit s / vanilla's': wall seconds of the default WSA fit over the 500-epoch vanilla fit's, one torch "
            "thread on a 2-core machine shared with other jobs (load 2-4).", "",
            f"Default WSA above vanilla's final model on **{count('final')}** sets, at or above vanilla's best "
            f"epoch on **{count('best')}**, above early-stopped vanilla on **{count('es')}** (means over seeds).",
            "", harness_table(out, columns, digits=2), ""]
    (RESULTS / "wsa_default.md").write_text("\n".join(text))
    print("\n".join(text))

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run", help="train and save runs")
    p.add_argument("--datasets", default="caltech_silhouettes")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--checkpoints", default="200,600,1000", help="epochs at which the test IWAE bound is taken")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--every", type=int, default=10, help="record train/test ELBO every this many epochs")
    p.add_argument("--iwae", type=int, default=100, help="importance samples of the checkpoint bound (1: none)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--data-home", default=None)
    p.add_argument("--wsa-params", default="{}", help="JSON dict of extra WSAVAE parameters (a variant)")
    p.add_argument("--label", default="", help="name of the variant; its runs are saved as wsa-<label>")
    sp = sub.add_parser("speed", help="time per epoch, vanilla and WSA back to back")
    sp.add_argument("--datasets", default="caltech_silhouettes")
    sp.add_argument("--epochs", type=int, default=5)
    sp.add_argument("--data-home", default=None)
    c = sub.add_parser("compare", help="default WSAVAE vs default VAEDensityEstimator (resumable CSV)")
    c.add_argument("--datasets", default="dna,bbc,cwebkb,ad,tmovie,cr52,c20ng,nltcs,plants,sine")
    c.add_argument("--epochs", type=int, default=500)
    c.add_argument("--epochs-by", type=json.loads, default={}, help='JSON dict, e.g. {"caltech_silhouettes": 200}')
    c.add_argument("--every", type=int, default=10, help="test ELBO every this many epochs")
    c.add_argument("--seeds", default="0,1,2")
    c.add_argument("--methods", default="vanilla,wsa,vanilla_es,wsa_es",
                   help="among vanilla, wsa, vanilla_es, wsa_es (_es: early_stopping=True; WSA's patience 10) "
                        "and wsa_default (WSAVAE's own defaults)")
    c.add_argument("--wsa-params", default="{}", help="JSON dict of WSAVAE parameters (a variant)")
    c.add_argument("--label", default="", help="the variant's runs are recorded as wsa-<label>")
    c.add_argument("--csv", default="wsa_compare.csv", help="file under benchmarks/results/")
    c.add_argument("--data-home", default=None)
    dr = sub.add_parser("default-report", help="today's default WSAVAE vs vanilla (wsa_default.md)")
    dr.add_argument("--csv", default="wsa_compare.csv,wsa_patience.csv", help="comma-separated CSVs to read")
    dr.add_argument("--default", default="wsa_default,wsa_es-p30", help="labels of default-WSA rows")
    cr = sub.add_parser("compare-report", help="markdown table from a compare CSV")
    cr.add_argument("--csv", default="wsa_compare.csv")
    r = sub.add_parser("report", help="tables and PNG from the saved runs")
    r.add_argument("--notes", default="", help="text appended to the markdown")
    args = parser.parse_args(argv)
    {"run": run, "speed": speed, "report": report, "compare": compare,
     "compare-report": compare_report, "default-report": default_report}[args.cmd](args)


if __name__ == "__main__":
    main()
