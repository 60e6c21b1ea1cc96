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
"""

import numbers
from contextlib import contextmanager

import joblib
import torch

__all__ = ["limit_torch_threads", "torch_threads_per_worker"]


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
