"""Vanilla VAE vs weighted self-augmentation (WSA): test bits/dim along training.

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
from pathlib import Path

import numpy as np
from _harness import RESULTS, command_line, load_dataset, read_rows
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
            f"Setting: {SETTING}, Adam; WSA with the defaults of `WSAVAE` (warm-up "
            f"{sorted({r['warmup_epochs'] for r in by_key.values() if r['warmup_epochs']})}, n_augment 4, MLP "
            f"discriminator 2x500 with Adam at the same lr, per-sample weights). IWAE k = {k}. bpd = bits per "
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
    r = sub.add_parser("report", help="tables and PNG from the saved runs")
    r.add_argument("--notes", default="", help="text appended to the markdown")
    args = parser.parse_args(argv)
    {"run": run, "speed": speed, "report": report}[args.cmd](args)


if __name__ == "__main__":
    main()
