"""fit_in_chunks: out-of-core training through partial_fit."""

import numpy as np
import pytest

from skvae import VAEDensityEstimator
from skvae.streaming import fit_in_chunks

FAST = dict(latent_dim=2, hidden_layer_sizes=(16,), batch_size=50, random_state=0)


@pytest.fixture(scope="module")
def X(nltcs):
    return nltcs[0][:500]


@pytest.fixture(scope="module")
def X_test(nltcs):
    return nltcs[1][:300]


def _vae():
    return VAEDensityEstimator(**FAST)


def _same_model(a, b, X_test):
    np.testing.assert_array_equal(a.score_samples(X_test), b.score_samples(X_test))
    assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]


def test_one_chunk_is_partial_fit_on_the_whole(X, X_test):
    streamed = fit_in_chunks(_vae(), X, n_epochs=3, chunk_size=len(X))
    direct = _vae()
    for _ in range(3):
        direct.partial_fit(X)
    _same_model(streamed, direct, X_test)
    assert len(streamed.history_) == 3


def test_chunks_in_file_order_are_successive_partial_fits(X, X_test):
    streamed = fit_in_chunks(_vae(), X, n_epochs=2, chunk_size=150, shuffle_chunks=False)
    direct = _vae()
    for _ in range(2):
        for start in range(0, len(X), 150):
            direct.partial_fit(X[start:start + 150])
    _same_model(streamed, direct, X_test)
    assert len(streamed.history_) == 2 * 4  # 150, 150, 150, 50 rows


def test_shuffled_chunk_order_follows_random_state(X, X_test):
    seen = []

    class Recorder:
        def partial_fit(self, chunk):
            seen.append((int(chunk[0, 0]), len(chunk)))
            return self

    ids = np.arange(500)[:, None]  # each row names itself
    fit_in_chunks(Recorder(), ids, n_epochs=4, chunk_size=100, random_state=1)
    assert all(size == 100 for _, size in seen)
    orders = [[start for start, _ in seen[i:i + 5]] for i in range(0, 20, 5)]
    assert all(sorted(order) == [0, 100, 200, 300, 400] for order in orders)  # every chunk once per epoch
    assert len({tuple(order) for order in orders}) > 1  # a new order per epoch
    again = fit_in_chunks(_vae(), X, n_epochs=2, chunk_size=100, random_state=1)
    _same_model(again, fit_in_chunks(_vae(), X, n_epochs=2, chunk_size=100, random_state=1), X_test)


def test_npy_path_and_memmap_match_the_array(X, X_test, tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, X)
    kwargs = dict(n_epochs=2, chunk_size=128, random_state=3)
    from_array = fit_in_chunks(_vae(), X, **kwargs)
    from_path = fit_in_chunks(_vae(), path, **kwargs)
    from_str = fit_in_chunks(_vae(), str(path), **kwargs)
    memmap = np.load(path, mmap_mode="r")
    from_memmap = fit_in_chunks(_vae(), memmap, **kwargs)
    for other in (from_path, from_str, from_memmap):
        _same_model(other, from_array, X_test)
    np.testing.assert_array_equal(memmap, X)  # the memmap is still readable after its pages were released


def test_callable_source_is_called_once_per_epoch(X, X_test):
    calls = []

    def chunks():
        calls.append(1)
        return (X[start:start + 200] for start in range(0, len(X), 200))

    streamed = fit_in_chunks(_vae(), chunks, n_epochs=3)
    assert len(calls) == 3
    direct = fit_in_chunks(_vae(), X, n_epochs=3, chunk_size=200, shuffle_chunks=False)
    _same_model(streamed, direct, X_test)


def test_continues_a_fitted_estimator(X, X_test):
    vae = _vae().fit(X[:100])
    n_before = len(vae.history_)
    fit_in_chunks(vae, X, chunk_size=250)
    assert len(vae.history_) == n_before + 2


@pytest.mark.parametrize("source, error, match", [
    (42, TypeError, "source must be"),
    ([[0, 1], [1, 0]], TypeError, "source must be"),
    (np.zeros(10), ValueError, "2-D"),
    (np.zeros((0, 16)), ValueError, "no rows"),
    (lambda: 5, TypeError, "iterable"),
    (lambda: [np.zeros(16)], ValueError, "chunk 0 of the source must be 2-D"),
    (lambda: [], ValueError, "no rows"),
])
def test_bad_sources(source, error, match):
    with pytest.raises(error, match=match):
        fit_in_chunks(_vae(), source)


def test_bad_files(tmp_path, X):
    npz = tmp_path / "rows.npz"
    np.savez(npz, X=X)
    with pytest.raises(ValueError, match="npz"):
        fit_in_chunks(_vae(), npz)
    text = tmp_path / "rows.npy"
    text.write_text("0,1\n1,0\n")
    with pytest.raises(ValueError, match="numeric .npy"):
        fit_in_chunks(_vae(), text)
    with pytest.raises(FileNotFoundError):
        fit_in_chunks(_vae(), tmp_path / "missing.npy")


@pytest.mark.parametrize("kwargs, error", [
    (dict(n_epochs=0), ValueError),
    (dict(n_epochs=1.5), TypeError),
    (dict(chunk_size=0), ValueError),
    (dict(chunk_size=True), TypeError),
    (dict(shuffle_chunks="yes"), TypeError),
])
def test_bad_parameters(X, kwargs, error):
    with pytest.raises(error):
        fit_in_chunks(_vae(), X, **kwargs)


def test_estimator_without_partial_fit(X):
    from sklearn.mixture import GaussianMixture
    with pytest.raises(TypeError, match="partial_fit"):
        fit_in_chunks(GaussianMixture(), X)
