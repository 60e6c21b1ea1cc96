"""Seeded fuzzing of the public entry points: only clean ValueError/TypeError, never a wrong array."""

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from skvae import BitsBackCoder, ReverseHalfAsleep, VAEDensityEstimator, WSAVAE

CLEAN = (ValueError, TypeError)
BAD_VALUES = [-1, 0, 1.5, float("nan"), float("inf"), -float("inf"), "x", None, [], (3,), 10 ** 12, True, 1e300]


@pytest.fixture(scope="module")
def binary():
    return (np.random.RandomState(0).rand(120, 6) < 0.4).astype(np.uint8)


@pytest.fixture(scope="module")
def coders(binary):
    vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(binary)
    rng = np.random.RandomState(1)
    table = pd.DataFrame({"c": pd.Categorical(rng.choice(["a", "b", "c"], 150)), "n": rng.poisson(3, 150),
                          "r": np.round(rng.randn(150), 1) + 0.0})
    tvae = VAEDensityEstimator(likelihood="auto", latent_dim=2, hidden_layer_sizes=(8,), max_epochs=2,
                               random_state=0).fit(table)
    return [(BitsBackCoder(vae, chunk_size=50).fit(), binary),
            (BitsBackCoder(tvae, quantization={"r": 0.1}, chunk_size=60).fit(), table)]


def _same(a, b):
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.equals(b)
    return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def _mutations(blob, rng, n):
    for _ in range(n):
        data = bytearray(blob)
        kind = rng.randint(4)
        if kind == 0:  # flip a few bytes
            for pos in rng.randint(0, len(data), size=rng.randint(1, 4)):
                data[pos] ^= rng.randint(1, 256)
        elif kind == 1:  # cut
            data = data[:rng.randint(0, len(data))]
        elif kind == 2:  # insert
            pos = rng.randint(0, len(data))
            data[pos:pos] = bytes(rng.randint(0, 256, size=rng.randint(1, 9)).astype(np.uint8))
        else:  # copy one stretch over another
            a, b, k = rng.randint(0, len(data), size=3)
            k = k % 64 + 1
            data[b:b + k] = data[a:a + k]
        yield bytes(data)


def test_mutated_files_raise_value_errors_or_decode_to_the_original(coders):
    rng = np.random.RandomState(0)
    for coder, X in coders:
        blob = coder.encode(X)
        for data in _mutations(blob, rng, 150):
            try:
                out = coder.decode(data)
            except ValueError:
                continue
            assert _same(X, out), "a mutated file decoded to a different array"


def test_mutated_model_files_raise_value_errors(coders, tmp_path):
    coder, X = coders[0]
    coder.save(tmp_path / "model.npz")
    blob = (tmp_path / "model.npz").read_bytes()
    rng = np.random.RandomState(1)
    for i, data in enumerate(_mutations(blob, rng, 60)):
        path = tmp_path / f"m{i}.npz"
        path.write_bytes(data)
        try:
            loaded = BitsBackCoder.load(path)
        except ValueError:
            continue
        assert loaded.fingerprint_ == coder.fingerprint_  # only a change the format ignores may load


def _call(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            fn()
        except CLEAN:
            pass


@pytest.mark.parametrize("cls", [VAEDensityEstimator, WSAVAE, ReverseHalfAsleep])
def test_random_bad_parameters_give_clean_errors(cls, binary):
    base = dict(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=1, batch_size=40, random_state=0)
    names = [n for n in cls().get_params() if n not in ("callbacks", "device", "verbose", "max_epochs")]
    rng = np.random.RandomState(2)
    def fit_and_score(params):
        est = cls(**params).fit(binary)
        assert np.isfinite(est.score_samples(binary)).all(), f"{params} fitted a model with non-finite scores"

    for _ in range(25):
        name = names[rng.randint(len(names))]
        value = BAD_VALUES[rng.randint(len(BAD_VALUES))]
        _call(lambda: fit_and_score({**base, name: value}))


def test_random_bad_inputs_give_clean_errors(binary, coders):
    vae = coders[0][0].estimator_
    coder = coders[0][0]
    inputs = [np.full((3, 6), np.nan), np.full((3, 6), np.inf), np.array([["a"] * 6] * 3), binary[:, :4],
              binary[None], binary[:0], np.full((3, 6), 0.5), sp.csr_matrix(np.full((3, 6), 2.0)), [[1, 0]],
              np.full((3, 6), np.iinfo(np.int64).min), np.full((3, 6), 1e300), "rows", None]
    for X in inputs:
        for method in (vae.score_samples, vae.score, vae.transform, coder.encode, coder.transform):
            _call(lambda: method(X))
    for value in BAD_VALUES:
        _call(lambda: vae.sample(value))
        _call(lambda: vae.inverse_transform(np.full((2, 2), value) if isinstance(value, float) else value))
        _call(lambda: coder.decode(value))
        _call(lambda: BitsBackCoder(vae, latent_clip=value).fit().encode(binary))
        _call(lambda: BitsBackCoder(vae, chunk_size=value).fit().encode(binary))
    _call(lambda: coder.decode(io.BytesIO(b"junk")))
