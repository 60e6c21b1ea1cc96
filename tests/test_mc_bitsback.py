"""Monte-Carlo bits-back (BB-IS, n_particles > 1): exact round trips, k = 1 unchanged, bad input."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from skvae import VAEDensityEstimator
from skvae.coding import BitsBackCoder

from _helpers import mixed_table

# sha256 of the k = 1 files of the cases below, computed with the coder before n_particles existed
K1_DIGESTS = {
    "binary": "924a7c3822491c16b0347d5e07e100efff889280727c77949240b368bf7ff9b7",
    "table": "d9e6066ef0ff3a45566ac72ac4ffbf2696b784b64580f25687c24daa92fab0cc",
    "real": "2ccf8ff4aa18363c5df06c0aa1805ecb8222c26aed9fe37034472543a613ad0d",
}


@pytest.fixture(scope="module")
def cases(nltcs):
    train, test = nltcs
    binary = VAEDensityEstimator(latent_dim=3, hidden_layer_sizes=(24,), max_epochs=3, batch_size=100,
                                 random_state=0).fit(train[:2000])
    tab = VAEDensityEstimator(likelihood="auto", latent_dim=3, hidden_layer_sizes=(24,), max_epochs=6,
                              random_state=0).fit(mixed_table(500, 0, flag=False))
    rng = np.random.RandomState(0)
    real = np.round(rng.randn(400, 5) @ rng.randn(5, 5) * 8) / 8 + 0.0
    gauss = VAEDensityEstimator(likelihood="gaussian", latent_dim=3, hidden_layer_sizes=(24,), max_epochs=6,
                                random_state=0).fit(real)
    return {
        "binary": (BitsBackCoder(binary, chunk_size=500, block_size=64).fit(), test[:800]),
        "table": (BitsBackCoder(tab, quantization={"size": 0.01}, chunk_size=150, block_size=32).fit(),
                  mixed_table(250, 1, flag=False)),
        "real": (BitsBackCoder(gauss, quantization=0.125, chunk_size=150, block_size=32).fit(), real[:250]),
    }


def _same(a, b):
    return a.equals(b) if isinstance(a, pd.DataFrame) else (a.dtype == b.dtype and np.array_equal(a, b))


@pytest.mark.parametrize("name", sorted(K1_DIGESTS))
def test_k1_is_byte_identical_to_the_elbo_coder(cases, name):
    coder, X = cases[name]
    coder.set_params(n_particles=1)
    assert hashlib.sha256(coder.encode(X)).hexdigest() == K1_DIGESTS[name]


@pytest.mark.parametrize("k", [1, 2, 8])
@pytest.mark.parametrize("name", sorted(K1_DIGESTS))
def test_exact_round_trip(cases, name, k):
    coder, X = cases[name]
    coder.set_params(n_particles=k)
    try:
        data = coder.encode(X)
        assert _same(X, coder.decode(data))
        if k > 1:
            assert data != coder.set_params(n_particles=1).encode(X)
    finally:
        coder.set_params(n_particles=1)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), (2.0, TypeError), ("4", TypeError),
                                        (True, TypeError)])
def test_bad_n_particles(cases, bad, error):
    coder, X = cases["binary"]
    with pytest.raises(error, match="n_particles"):
        BitsBackCoder(coder.estimator_, n_particles=bad).fit()
