"""Choosing the paper's baselines by cross-validation, and parallel searches.

The estimators' ``score`` is the mean held-out log-likelihood bound (nats per
row), so ``GridSearchCV`` ranks candidates by it with no scorer to write.
"""

import numpy as np
import pytest
import torch
from joblib import parallel_config
from skorch.callbacks import Callback
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skvae import VAEDensityEstimator
from skvae.parallel import limit_torch_threads, torch_threads_per_worker
from skvae.rha import ReverseHalfAsleep
from skvae.wsa import WSAVAE

FAST = dict(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=2, batch_size=50, random_state=0)


@pytest.fixture(scope="module")
def X(nltcs):
    return nltcs[0][:400]


def _candidates():
    return [
        VAEDensityEstimator(**FAST),
        VAEDensityEstimator(dropout=0.2, **FAST),
        ReverseHalfAsleep(alpha=0.5, **FAST),
        WSAVAE(warmup_epochs=1, n_augment=1, discriminator_hidden_layer_sizes=(8,), **FAST),
    ]


def _search_pipeline(n_jobs=None):
    pipe = Pipeline([("prep", FunctionTransformer(feature_names_out="one-to-one")),
                     ("density", VAEDensityEstimator(**FAST))])
    return GridSearchCV(pipe, {"density": _candidates()}, cv=KFold(2), n_jobs=n_jobs)


def _assert_ranked_by_mean_score(results):
    mean = results["mean_test_score"]
    assert np.all(np.isfinite(mean)) and np.all(mean < 0)  # log-likelihoods of binary rows
    expected = np.empty(len(mean), dtype=int)
    expected[np.argsort(-mean, kind="stable")] = np.arange(1, len(mean) + 1)
    np.testing.assert_array_equal(results["rank_test_score"], expected)


def test_grid_search_over_dropout_and_air(X):
    grid = {"dropout": [0.0, 0.2], "air_sigma": [None, 0.4]}
    search = GridSearchCV(VAEDensityEstimator(**FAST), grid, cv=KFold(2)).fit(X)
    results = search.cv_results_
    assert len(results["params"]) == 4
    _assert_ranked_by_mean_score(results)
    best = int(np.argmax(results["mean_test_score"]))
    assert search.best_params_ == results["params"][best]
    assert search.best_estimator_.get_params()["dropout"] == results["params"][best]["dropout"]
    assert len(set(results["mean_test_score"])) == 4  # each setting gives another model
    # A split's score is the held-out mean log-likelihood bound of that setting, refitted by hand.
    train, test = next(KFold(2).split(X))
    for i in (0, 3):
        refit = VAEDensityEstimator(**FAST).set_params(**results["params"][i]).fit(X[train])
        assert refit.score(X[test]) == results["split0_test_score"][i]


def test_pipeline_step_searched_over_estimators(X):
    search = _search_pipeline().fit(X)
    results = search.cv_results_
    kinds = [type(p["density"]).__name__ for p in results["params"]]
    assert kinds == ["VAEDensityEstimator", "VAEDensityEstimator", "ReverseHalfAsleep",
                     "WeightedSelfAugmentation"]
    _assert_ranked_by_mean_score(results)
    best = search.best_estimator_.named_steps["density"]
    assert type(best) is type(results["params"][search.best_index_]["density"])
    assert search.best_estimator_.score(X) == pytest.approx(best.score_samples(X).mean())


def test_parallel_search_equals_sequential(X):
    """n_jobs=2 (loky processes) reproduces the sequential cv_results_ with fixed random_state."""
    with parallel_config(backend="loky", inner_max_num_threads=1):
        parallel = _search_pipeline(n_jobs=2).fit(X).cv_results_
    with limit_torch_threads(1):
        sequential = _search_pipeline(n_jobs=1).fit(X).cv_results_
    for key in ("split0_test_score", "split1_test_score", "mean_test_score", "rank_test_score"):
        np.testing.assert_array_equal(parallel[key], sequential[key], err_msg=key)


class RecordTorchThreads(Callback):
    """Writes torch's thread count of the process that trains into the history."""

    def on_epoch_end(self, net, **kwargs):
        net.history.record("torch_threads", torch.get_num_threads())


def test_process_workers_do_not_oversubscribe(X):
    est = ReverseHalfAsleep(callbacks=[RecordTorchThreads()], **FAST)
    out = cross_validate(est, X, cv=KFold(2), n_jobs=2, return_estimator=True)
    threads = [t for fitted in out["estimator"] for t in fitted.history_[:, "torch_threads"]]
    assert len(threads) == 4
    assert max(threads) <= torch_threads_per_worker(2)


def test_torch_thread_helpers():
    before = torch.get_num_threads()
    with limit_torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), limit_torch_threads(1):
        raise RuntimeError("restored on errors too")
    assert torch.get_num_threads() == before
    import joblib

    cores = joblib.cpu_count()
    assert torch_threads_per_worker(-1) == 1
    assert torch_threads_per_worker(1) == cores
    assert torch_threads_per_worker(2) == max(1, cores // 2)
    assert torch_threads_per_worker(10 * cores) == 1
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="n_jobs"):
            torch_threads_per_worker(bad)
    with pytest.raises(ValueError, match="n_threads"):
        with limit_torch_threads(0):
            pass
