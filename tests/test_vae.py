"""VAEDensityEstimator on real binary data (nltcs from ../shared/data)."""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skvae import ELBOMonitor, VAEDensityEstimator

SMALL = dict(latent_dim=3, hidden_layer_sizes=(32,), max_epochs=3, batch_size=100, random_state=0)


@pytest.fixture(scope="module")
def data(nltcs):
    train, test = nltcs
    return train[:2000], test[:500]


@pytest.fixture(scope="module")
def fitted(data):
    return VAEDensityEstimator(**SMALL).fit(data[0])


def test_init_stores_parameters_unchanged():
    cbs = [ELBOMonitor(np.zeros((2, 2)))]
    est = VAEDensityEstimator(hidden_layer_sizes=[7, 5], callbacks=cbs, air_sigma=0.1)
    assert est.hidden_layer_sizes == [7, 5] and est.callbacks is cbs and est.air_sigma == 0.1


def test_fit_learns_better_than_independent_bits(data):
    train, test = data
    vae = VAEDensityEstimator(latent_dim=4, hidden_layer_sizes=(64,), max_epochs=15, random_state=0).fit(train)
    p = (train.sum(0) + 1) / (len(train) + 2)
    independent = np.mean(test @ np.log(p) + (1 - test) @ np.log1p(-p))
    assert vae.score(test) > independent
    assert vae.history_[-1, "train_loss"] < vae.history_[0, "train_loss"]


def test_fitted_attributes(fitted, data):
    assert fitted.n_features_in_ == data[0].shape[1] == 16
    assert len(fitted.history_) == SMALL["max_epochs"]
    assert not hasattr(fitted, "feature_names_in_")


def test_score_is_mean_of_score_samples(fitted, data):
    s = fitted.score_samples(data[1])
    assert s.shape == (len(data[1]),) and s.dtype == np.float64 and np.all(s < 0)
    assert fitted.score(data[1]) == pytest.approx(s.mean())


def test_scores_are_deterministic_and_batch_independent(fitted, data):
    X = data[1][:64]
    full = fitted.score_samples(X)
    np.testing.assert_array_equal(full, fitted.score_samples(X))
    singles = np.array([fitted.score_samples(X[i:i + 1])[0] for i in range(len(X))])
    # README: equal up to float64 rounding, a few 1e-15 nats (BLAS sums in a batch-dependent order)
    np.testing.assert_allclose(full, singles, rtol=0, atol=1e-13)
    perm = np.random.RandomState(1).permutation(len(X))
    np.testing.assert_allclose(full[perm], fitted.score_samples(X[perm]), rtol=0, atol=1e-13)


def test_elbo_components_add_up(fitted, data):
    parts = fitted.elbo_components(data[1])
    np.testing.assert_allclose(parts.elbo, -(parts.distortion + parts.rate))
    np.testing.assert_allclose(parts.elbo, fitted.score_samples(data[1]))
    assert np.all(parts.rate >= 0) and np.all(parts.distortion >= 0)


def test_bits_per_dim(fitted, data):
    expected = -fitted.score(data[1]) / (16 * np.log(2))
    assert fitted.bits_per_dim(data[1]) == pytest.approx(expected)


def test_iwae_bound_is_tighter_than_elbo(fitted, data):
    est = clone(fitted).set_params(max_epochs=5).fit(data[0])
    elbo = est.score(data[1])
    est.set_params(n_eval_samples=50)
    iwae = est.score(data[1])
    assert iwae > elbo
    singles = np.array([est.score_samples(data[1][i:i + 1])[0] for i in range(10)])
    np.testing.assert_allclose(est.score_samples(data[1][:10]), singles, rtol=1e-10)


def test_transform_inverse_transform_sample(fitted, data):
    Z = fitted.transform(data[1])
    assert Z.shape == (len(data[1]), SMALL["latent_dim"])
    means = fitted.inverse_transform(Z)
    assert means.shape == data[1].shape and np.all((means > 0) & (means < 1))
    X = fitted.sample(200, random_state=3)
    assert X.shape == (200, 16) and set(np.unique(X)) <= {0.0, 1.0}
    np.testing.assert_array_equal(X, fitted.sample(200, random_state=3))
    assert not np.array_equal(X, fitted.sample(200, random_state=4))
    with pytest.raises(ValueError, match="shape"):
        fitted.inverse_transform(np.zeros((2, 5)))


def test_same_random_state_same_fit(data):
    a = VAEDensityEstimator(**SMALL).fit(data[0]).score_samples(data[1])
    b = VAEDensityEstimator(**SMALL).fit(data[0]).score_samples(data[1])
    c = VAEDensityEstimator(**{**SMALL, "random_state": 1}).fit(data[0]).score_samples(data[1])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_global_rng_state_untouched(data):
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    est = VAEDensityEstimator(**{**SMALL, "random_state": None, "dropout": 0.1}).fit(data[0])
    est.score_samples(data[1])
    est.sample(5)
    assert torch.equal(torch_state, torch.get_rng_state())
    assert all(np.array_equal(a, b) for a, b in zip(np_state, np.random.get_state()) if isinstance(a, np.ndarray))
    assert np_state[2:] == np.random.get_state()[2:]


def test_partial_fit_and_warm_start(data):
    est = VAEDensityEstimator(**SMALL)
    est.partial_fit(data[0])
    est.partial_fit(data[0])
    assert len(est.history_) == 2
    warm = VAEDensityEstimator(**{**SMALL, "warm_start": True}).fit(data[0])
    first = warm.score(data[1])
    warm.fit(data[0])
    assert len(warm.history_) == 2 * SMALL["max_epochs"]
    assert warm.score(data[1]) != first
    cold = VAEDensityEstimator(**SMALL).fit(data[0])
    cold.fit(data[0])
    assert len(cold.history_) == SMALL["max_epochs"]


def test_elbo_monitor_records_held_out_elbo(data):
    est = VAEDensityEstimator(**{**SMALL, "max_epochs": 4},
                              callbacks=[ELBOMonitor(data[1], every=2), ELBOMonitor(data[0][:300], name="train")])
    est.fit(data[0])
    test_curve = est.history_[:, "test_elbo"]
    assert len(test_curve) == 2 and len(est.history_[:, "train_elbo"]) == 4
    assert test_curve[-1] == pytest.approx(est.score(data[1]))


def test_verbose_progress_bar(data, capsys):
    VAEDensityEstimator(**{**SMALL, "verbose": 1}).fit(data[0])
    assert "epoch" in capsys.readouterr().err
    VAEDensityEstimator(**{**SMALL, "verbose": 2}).fit(data[0])
    assert "train_loss" in capsys.readouterr().out


def test_regularizers_change_training(data):
    base = VAEDensityEstimator(**SMALL).fit(data[0]).score(data[1])
    for params in ({"dropout": 0.3}, {"air_sigma": 0.4}, {"beta": 0.5}, {"optimizer": "sgd"}):
        other = VAEDensityEstimator(**SMALL, **params).fit(data[0]).score(data[1])
        assert np.isfinite(other) and other != base, params


@pytest.mark.parametrize("bad, message", [
    (np.nan, "NaN"),
    (np.inf, "infinity"),
    (0.5, "column 3 holds 0.5"),
    (2.0, "column 3 holds 2"),
])
def test_bad_values_are_named(data, bad, message):
    X = data[0][:50].astype(float)
    X[7, 3] = bad
    with pytest.raises(ValueError, match=message):
        VAEDensityEstimator(likelihood="bernoulli", **SMALL).fit(X)


def test_bad_values_at_score_time(fitted, data):
    X = data[1][:20].astype(float)
    X[2, 5] = 0.5
    with pytest.raises(ValueError, match="column 5"):
        fitted.score_samples(X)
    with pytest.raises(ValueError, match="features"):
        fitted.score_samples(data[1][:, :10])
    with pytest.raises(ValueError, match="0 sample"):
        fitted.score_samples(np.zeros((0, 16)))


def test_empty_and_string_input_rejected(data):
    with pytest.raises(ValueError, match="0 sample"):
        VAEDensityEstimator(**SMALL).fit(np.zeros((0, 16)))
    with pytest.raises(ValueError, match="0 sample"):
        VAEDensityEstimator(likelihood="bernoulli", **SMALL).fit(np.zeros((0, 16)))
    # strings are categories under the default 'auto', but not numbers for a Bernoulli model
    with pytest.raises(ValueError, match="string"):
        VAEDensityEstimator(likelihood="bernoulli", **SMALL).fit(np.array([["a", "b"], ["c", "d"]], dtype=object))
    frame = pd.DataFrame({"a": ["x", "y"], "b": [0, 1]})
    with pytest.raises(ValueError):
        VAEDensityEstimator(likelihood="bernoulli", **SMALL).fit(frame)


@pytest.mark.parametrize("params, error", [
    ({"latent_dim": 0}, ValueError), ({"latent_dim": 2.5}, TypeError), ({"dropout": 1.0}, ValueError),
    ({"hidden_layer_sizes": (0,)}, ValueError), ({"likelihood": "poisson"}, ValueError),
    ({"optimizer": "lbfgs-ish"}, ValueError), ({"optimizer": 3}, TypeError), ({"device": "tpu-9"}, ValueError),
    ({"air_alpha": 2.0}, ValueError), ({"lr": 0.0}, ValueError), ({"random_state": "seed"}, ValueError),
])
def test_bad_parameters(data, params, error):
    with pytest.raises(error):
        VAEDensityEstimator(**{**SMALL, **params}).fit(data[0][:50])


def test_sparse_input_matches_dense(data):
    dense = VAEDensityEstimator(**SMALL).fit(data[0])
    sparse = VAEDensityEstimator(**SMALL).fit(sp.csr_matrix(data[0]))
    np.testing.assert_array_equal(dense.score_samples(data[1]), sparse.score_samples(sp.csr_matrix(data[1])))
    X = sp.lil_matrix(data[1][:10].astype(float))
    X[0, 2] = 0.5
    with pytest.raises(ValueError, match="column 2"):
        dense.score_samples(X.tocsr())


def test_dataframe_feature_names_and_pandas_output(data):
    cols = [f"q{i}" for i in range(16)]
    frame = pd.DataFrame(data[0], columns=cols)
    est = VAEDensityEstimator(**SMALL).set_output(transform="pandas").fit(frame)
    assert list(est.feature_names_in_) == cols
    Z = est.transform(pd.DataFrame(data[1], columns=cols))
    assert isinstance(Z, pd.DataFrame) and list(Z.columns) == [f"vaedensityestimator{i}" for i in range(3)]


def test_pickle_and_joblib_round_trip(fitted, data, tmp_path):
    path = tmp_path / "vae.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.score_samples(data[1]), fitted.score_samples(data[1]))
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(data[1]), fitted.transform(data[1]))


def test_grid_search_cross_val_and_pipeline(data):
    X = data[0][:600]
    grid = GridSearchCV(VAEDensityEstimator(**SMALL),
                        {"latent_dim": [1, 3], "dropout": [0.0, 0.2], "air_sigma": [None, 0.3]}, cv=2)
    grid.fit(X)
    assert len(grid.cv_results_["params"]) == 8
    assert grid.best_score_ == max(grid.cv_results_["mean_test_score"])
    assert np.isfinite(grid.score(data[1]))
    scores = cross_val_score(VAEDensityEstimator(**SMALL), X, cv=3)
    assert scores.shape == (3,) and np.all(scores < 0)
    pipe = make_pipeline(FunctionTransformer(lambda A: 1 - A), VAEDensityEstimator(**SMALL)).fit(X)
    assert np.isfinite(pipe.score(data[1]))
    assert pipe.score_samples(data[1]).shape == (len(data[1]),)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, bool, np.float32])
def test_sample_of_binary_data_keeps_the_training_dtype(data, dtype):
    X = data[0][:200].astype(dtype)
    vae = VAEDensityEstimator(**SMALL).fit(X)
    sample = vae.sample(5, random_state=0)
    assert sample.dtype == np.dtype(dtype) and set(np.unique(sample)) <= {0, 1}
    assert vae.transform(X[:3]).dtype == np.float64  # latent means stay float
