"""The ``skvae`` command line: ``skvae demo``, ``skvae compress`` and ``skvae decompress``."""

import argparse
import math
import sys
import time

from .coding._cli import add_subcommands as add_coding_subcommands

__all__ = ["main"]


def _demo(args):
    import numpy as np

    from . import ELBOMonitor, VAEDensityEstimator
    from .datasets import make_sine_bernoulli, sine_bernoulli_entropy

    X_train = make_sine_bernoulli(args.n_samples, args.n_features, random_state=args.seed)
    X_test = make_sine_bernoulli(args.n_samples, args.n_features, random_state=args.seed + 1)
    print(f"Sine-Bernoulli toy data (embedded generator): {args.n_samples} train and {args.n_samples} test "
          f"rows of {args.n_features} binary columns")
    vae = VAEDensityEstimator(latent_dim=args.latent_dim, hidden_layer_sizes=(args.hidden,) * 2,
                              max_epochs=args.epochs, batch_size=100, lr=1e-3, random_state=args.seed,
                              callbacks=[ELBOMonitor(X_test, every=max(1, args.epochs // 5))],
                              verbose=int(args.progress))
    start = time.perf_counter()
    vae.fit(X_train)
    seconds = time.perf_counter() - start
    print(f"Fitted VAEDensityEstimator(latent_dim={args.latent_dim}, hidden_layer_sizes={(args.hidden,) * 2}) "
          f"for {args.epochs} epochs in {seconds:.1f} s")
    to_bpd = 1.0 / (args.n_features * math.log(2))
    print(f"{'':24s}{'nats/row':>10s}{'bits/dim':>10s}")
    for name, X in (("train", X_train), ("test", X_test)):
        ll = vae.score(X)
        print(f"{name + ' ELBO':24s}{ll:10.3f}{-ll * to_bpd:10.4f}")
    vae.set_params(n_eval_samples=args.iwae)
    for name, X in (("train", X_train), ("test", X_test)):
        ll = vae.score(X)
        print(f"{name + f' IWAE-{args.iwae}':24s}{ll:10.3f}{-ll * to_bpd:10.4f}")
    best = -sine_bernoulli_entropy(args.n_features)
    print(f"{'best possible (entropy)':24s}{best:10.3f}{-best * to_bpd:10.4f}")
    curve = ", ".join(f"{e}: {s:.2f}" for e, s in zip(vae.history_[:, "epoch"], _column(vae.history_, "test_elbo"))
                      if not np.isnan(s))
    print(f"test ELBO during training (epoch: nats) {curve}")
    return 0


def _column(history, key):
    return [row.get(key, float("nan")) for row in history]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="skvae", description="Variational auto-encoder density estimators with a scikit-learn API.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="fit a VAE on embedded toy data and print its log-likelihood",
                          description="Fit a VAE to the sine-Bernoulli toy distribution (generated, no files "
                                      "needed) and print train and test log-likelihood in nats and bits/dim.")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--n-samples", type=int, default=1000)
    demo.add_argument("--n-features", type=int, default=256)
    demo.add_argument("--latent-dim", type=int, default=8)
    demo.add_argument("--hidden", type=int, default=200)
    demo.add_argument("--iwae", type=int, default=100, help="importance samples of the IWAE bound")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--progress", action="store_true", help="show a progress bar")
    demo.set_defaults(func=_demo)
    add_coding_subcommands(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
