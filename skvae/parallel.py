"""Torch threads under parallel model selection.

``GridSearchCV(..., n_jobs=-1)`` over skvae estimators runs one fit per
joblib worker. With joblib's default process backend (loky), each worker
starts with ``OMP_NUM_THREADS`` set to ``max(1, cpu_count() // n_jobs)``
and torch reads it when the worker first imports torch, so the workers
together use about as many threads as there are cores; nothing needs to be
done (``joblib.parallel_config(inner_max_num_threads=k)`` changes k). That
covers neither the threading backend, where all fits share one torch
thread pool, nor code that fixes torch's thread count itself:
:func:`limit_torch_threads` sets it for a block, and
:func:`torch_threads_per_worker` gives the count joblib would choose.

On a dask cluster (``joblib.parallel_config(backend='dask')``) each fit runs
in one of a worker's threads. A worker with T threads runs up to T fits at
once, and under OpenMP every Python thread that calls into torch opens its
own team of ``torch.get_num_threads()`` threads, so one torch thread per
task keeps the worker at its T threads. Dask's nanny already starts worker
processes with ``OMP_NUM_THREADS=1``; :class:`TorchThreadsPlugin` makes it
hold where that variable is not set (workers without a nanny, or started
with another value). It is built on first use, so importing this module
does not import ``distributed``.
"""

import functools
import numbers
from contextlib import contextmanager

import joblib
import torch

__all__ = ["limit_torch_threads", "torch_threads_per_worker", "TorchThreadsPlugin"]


def torch_threads_per_worker(n_jobs):
    """Torch threads per worker that keep ``n_jobs`` workers within the cores.

    The same rule as joblib's process workers: ``max(1, cpu_count() // n)``
    with ``n`` the number of workers (``n_jobs=-1`` is one per core, -2 all
    but one, and so on).

    Parameters
    ----------
    n_jobs : int
        As for scikit-learn's ``n_jobs``; 0 is not allowed.

    Returns
    -------
    int

    Examples
    --------
    >>> import joblib
    >>> from skvae.parallel import torch_threads_per_worker
    >>> torch_threads_per_worker(-1)
    1
    >>> torch_threads_per_worker(1) == joblib.cpu_count()
    True
    """
    if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a nonzero integer, got {n_jobs!r}")
    cores = joblib.cpu_count()
    workers = n_jobs if n_jobs > 0 else max(cores + 1 + n_jobs, 1)
    return max(1, cores // min(workers, cores))


@contextmanager
def limit_torch_threads(n_threads):
    """Run a block with torch's intra-op thread count set to ``n_threads``.

    The previous count is restored afterwards. Use it around fits run with
    the threading backend (all workers share torch's pool), or to pin a
    sequential fit to fewer threads than torch's default.

    Parameters
    ----------
    n_threads : int >= 1

    Examples
    --------
    >>> import torch
    >>> from skvae.parallel import limit_torch_threads
    >>> before = torch.get_num_threads()
    >>> with limit_torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if not isinstance(n_threads, numbers.Integral) or isinstance(n_threads, bool) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_threads(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@functools.cache
def _torch_threads_plugin_class():
    # Imported here: distributed is an optional dependency (the `dask` extra).
    from distributed.diagnostics.plugin import WorkerPlugin

    class TorchThreadsPlugin(WorkerPlugin):
        """Dask worker plugin: ``threads_per_task`` torch threads per running task.

        Register it with ``client.register_plugin(TorchThreadsPlugin())``
        before submitting work; it is applied to every worker, including
        those that join later. A worker with T threads then uses at most
        ``T * threads_per_task`` threads for torch (T with the default).

        The count is set process-wide when the worker starts; a worker thread
        that already ran torch code keeps the count it had, which is why the
        plugin belongs before the first task. Do not register it on a
        ``LocalCluster(processes=False)``: its workers share the client's
        process, whose torch thread count it would change.

        Parameters
        ----------
        threads_per_task : int, default=1
            Torch intra-op threads of each task. Raise it only for workers
            that run fewer tasks at once than they have cores.

        Attributes
        ----------
        name : str
            The plugin's name on the cluster; registering it again replaces it.

        Examples
        --------
        >>> from skvae.parallel import TorchThreadsPlugin
        >>> TorchThreadsPlugin(threads_per_task=2).threads_per_task
        2

        On a cluster (not run here)::

            from dask.distributed import Client, LocalCluster
            from joblib import parallel_config
            with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
                client.register_plugin(TorchThreadsPlugin())
                with parallel_config(backend="dask"):
                    search.fit(X)
        """

        name = "skvae-torch-threads"

        def __init__(self, threads_per_task=1):
            self.threads_per_task = _check_threads(threads_per_task, "threads_per_task")

        def setup(self, worker):
            torch.set_num_threads(self.threads_per_task)

    TorchThreadsPlugin.__module__ = __name__
    TorchThreadsPlugin.__qualname__ = "TorchThreadsPlugin"
    return TorchThreadsPlugin


def __getattr__(name):
    # Module-level lazy attribute, so pickles refer to skvae.parallel.TorchThreadsPlugin
    # and workers rebuild the same class on unpickling.
    if name == "TorchThreadsPlugin":
        return _torch_threads_plugin_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
