"""Hyperparameter search on a dask cluster through joblib's dask backend.

One local cluster (two worker processes, one thread each) serves the module.
Its workers are started with ``OMP_NUM_THREADS=MKL_NUM_THREADS=2``, so that
the test sees :class:`~skvae.parallel.TorchThreadsPlugin` bring torch back to
one thread per task (dask's nanny sets both to 1 unless the environment that
starts the workers says otherwise, and torch reads them once at import).
"""

import sys

import cloudpickle
import numpy as np
import pytest
import torch
from distributed import Client, LocalCluster, get_task_stream, get_worker
from joblib import parallel_config
from sklearn.model_selection import GridSearchCV, KFold

from skvae import VAEDensityEstimator
from skvae.parallel import TorchThreadsPlugin

FAST = dict(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=3, batch_size=50, random_state=0)
GRID = {"latent_dim": [2, 4], "beta": [0.5, 1.0]}

# Functions of this module run on the workers, which cannot import it.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def X(nltcs):
    return nltcs[0][:400]


@pytest.fixture(scope="module")
def client():
    with pytest.MonkeyPatch.context() as env:
        # Read by the nanny when it spawns the worker processes; this process's torch is already set up.
        env.setenv("OMP_NUM_THREADS", "2")
        env.setenv("MKL_NUM_THREADS", "2")
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               host="127.0.0.1")
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def _torch_threads():
    return torch.get_num_threads()


def _fit_on_worker(X):
    """Fit inside a task; report the task's torch threads and the worker's thread count."""
    threads = torch.get_num_threads()
    score = VAEDensityEstimator(**FAST).fit(X).score(X)
    return threads, get_worker().state.nthreads, score


def _scores(results):
    keys = sorted(k for k in results if k.endswith("test_score"))
    return {k: np.asarray(results[k]) for k in keys}


def test_plugin_sets_one_torch_thread_per_task(client, X):
    assert set(client.run(_torch_threads).values()) == {2}  # the workers' environment
    client.register_plugin(TorchThreadsPlugin())
    assert set(client.run(_torch_threads).values()) == {1}
    threads, nthreads, score = client.submit(_fit_on_worker, X, pure=False).result()
    assert (threads, nthreads) == (1, 1)
    assert score == VAEDensityEstimator(**FAST).fit(X).score(X)


def test_grid_search_on_dask_matches_sequential(client, X):
    client.register_plugin(TorchThreadsPlugin())
    sequential = GridSearchCV(VAEDensityEstimator(**FAST), GRID, cv=KFold(2)).fit(X)
    with get_task_stream(client) as stream, parallel_config(backend="dask"):
        distributed = GridSearchCV(VAEDensityEstimator(**FAST), GRID, cv=KFold(2), n_jobs=-1).fit(X)
    # The fits ran as tasks on the workers (joblib may batch several per task).
    workers = {task["worker"] for task in stream.data}
    assert workers and workers <= set(client.scheduler_info()["workers"])
    assert distributed.cv_results_["params"] == sequential.cv_results_["params"]
    seq, dist = _scores(sequential.cv_results_), _scores(distributed.cv_results_)
    assert seq.keys() == dist.keys() and "mean_test_score" in seq
    for key in seq:
        np.testing.assert_array_equal(dist[key], seq[key], err_msg=key)
    assert distributed.best_params_ == sequential.best_params_
    assert distributed.best_estimator_.score(X) == sequential.best_estimator_.score(X)


def test_plugin_rejects_bad_thread_count():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads_per_task"):
            TorchThreadsPlugin(threads_per_task=bad)
