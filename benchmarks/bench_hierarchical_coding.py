"""Coded size of a HierarchicalVAE (ladder) against its -ELBO and against a single-layer VAE's coded file.

Run from the repository root (one core):

    OMP_NUM_THREADS=1 python benchmarks/bench_hierarchical_coding.py nltcs plants

Writes the markdown table to stdout. Models are small and trained briefly (seed 0); each test
split is coded whole with the default coder settings (one chunk of up to 10,000 rows).
"""

import math
import sys
import time

import numpy as np

from skvae import HierarchicalVAE, VAEDensityEstimator
from skvae.coding import BitsBackCoder
from skvae.datasets import load_debd


def row(name, kind, model, X):
    coder = BitsBackCoder(model).fit()
    start = time.perf_counter()
    data = coder.encode(X)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    assert np.array_equal(coder.decode(data), X)
    decode_s = time.perf_counter() - start
    r = coder.report(X)
    dims = X.size
    score = -model.score_samples(X).sum() / math.log(2)
    return (f"| {name} | {kind} | {8 * len(data) / dims:.4f} | {r.payload_bits / dims:.4f} | "
            f"{r.negative_elbo_bits / dims:.4f} | {score / dims:.4f} | {r.overhead_bits:.0f} | "
            f"{encode_s:.2f} / {decode_s:.2f} |")


def main(names):
    print("| data | model | file bits/dim | payload bits/dim | -ELBO bits/dim (report, 16 draws) | "
          "-ELBO bits/dim (score_samples) | start-up bits | encode / decode s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        data = load_debd(name, data_home="../shared/data", download_if_missing=False)
        ladder = HierarchicalVAE(latent_dims=(16, 8), hidden_layer_sizes=(100,), ladder_hidden_sizes=(50,),
                                 max_epochs=60, warmup_epochs=10, random_state=0).fit(data.train)
        single = VAEDensityEstimator(latent_dim=16, hidden_layer_sizes=(100,), max_epochs=60,
                                     random_state=0).fit(data.train)
        X = data.test
        print(row(name, "ladder (16, 8)", ladder, X))
        print(row(name, "single layer 16", single, X))
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:] or ["nltcs", "plants"])
