"""Time VAEDensityEstimator.fit against a minimal hand-written torch loop.

Both train the same architecture (encoder MLP, decoder MLP, Bernoulli
likelihood, one-sample ELBO, Adam) with the same batch size and number of
epochs on the same rows. Runs alternate (estimator, loop, estimator, ...) so
that load on a shared machine hits both alike; the figure of merit is the
median ratio of the two times.

Usage: python benchmarks/bench_fit_overhead.py [--repeats 7] [--threads 1] [--epochs-a 20] [--epochs-b 2]
"""

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skvae import VAEDensityEstimator
from skvae.datasets import make_sine_bernoulli

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def mlp(sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def hand_written_fit(X, hidden, latent, epochs, batch_size, lr, seed):
    """The smallest reasonable torch training loop for the same model."""
    torch.manual_seed(seed)
    d = X.shape[1]
    encoder = mlp([d, *hidden, 2 * latent])
    decoder = mlp([latent, *hidden[::-1], d])
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)
    X = torch.as_tensor(X, dtype=torch.float32)
    for _ in range(epochs):
        Xs = X[torch.randperm(len(X))]
        for start in range(0, len(Xs), batch_size):
            x = Xs[start:start + batch_size]
            mu, logvar = encoder(x).chunk(2, dim=-1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            nll = F.binary_cross_entropy_with_logits(decoder(z), x, reduction="none").sum(-1)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)
            loss = (nll + kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def case_data(name):
    if name == "a":
        path = SHARED / "twenty_datasets" / "nltcs" / "nltcs.ts.data.gz"
        X = np.loadtxt(path, delimiter=",", dtype=np.uint8)[:16000]
        return X, "nltcs train, first 16,000 rows x 16", (100, 100), 4
    X = make_sine_bernoulli(20000, 784, random_state=0)
    return X, "sine-Bernoulli 20,000 rows x 784", (500, 500), 16


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs-a", type=int, default=20)
    parser.add_argument("--epochs-b", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for case, epochs in (("a", args.epochs_a), ("b", args.epochs_b)):
        X, label, hidden, latent = case_data(case)
        batch_size, lr = 100, 1e-3
        est = VAEDensityEstimator(latent_dim=latent, hidden_layer_sizes=hidden, max_epochs=epochs,
                                  batch_size=batch_size, lr=lr, random_state=0)
        t_est, t_loop = [], []
        for r in range(args.repeats):
            t_est.append(timed(lambda: est.fit(X)))
            t_loop.append(timed(lambda: hand_written_fit(X, hidden, latent, epochs, batch_size, lr, r)))
        ratios = [a / b for a, b in zip(t_est, t_loop)]
        rows.append((case, label, hidden, latent, epochs, statistics.median(t_est), statistics.median(t_loop),
                     statistics.median(ratios), min(ratios), max(ratios)))
        print(f"case {case}: {label}, hidden {hidden}, latent {latent}, {epochs} epochs: estimator "
              f"{rows[-1][5]:.2f} s, loop {rows[-1][6]:.2f} s, ratio median {rows[-1][7]:.3f} "
              f"(min {rows[-1][8]:.3f}, max {rows[-1][9]:.3f})")
    RESULTS.mkdir(exist_ok=True)
    lines = [
        "# VAEDensityEstimator.fit vs a minimal torch loop",
        "",
        f"Command: `python benchmarks/bench_fit_overhead.py --repeats {args.repeats} --threads {args.threads} "
        f"--epochs-a {args.epochs_a} --epochs-b {args.epochs_b}`  ",
        f"Machine: {platform.machine()}, {platform.python_version()}, torch {torch.__version__}, "
        f"{args.threads} torch thread(s), batch 100, Adam lr 1e-3. Median of {args.repeats} alternating runs.",
        "",
        "| case | data | hidden | latent | epochs | estimator s | loop s | ratio (median) | ratio min..max |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for case, label, hidden, latent, epochs, te, tl, rm, rmin, rmax in rows:
        lines.append(f"| {case} | {label} | {hidden} | {latent} | {epochs} | {te:.2f} | {tl:.2f} | {rm:.3f} | "
                     f"{rmin:.3f}..{rmax:.3f} |")
    (RESULTS / "fit_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
