"""Training on data larger than memory, one chunk of rows at a time.

:func:`fit_in_chunks` feeds ``partial_fit`` (one epoch over the rows it is
given) with successive chunks of a ``.npy`` file, an array or memmap, or
chunks produced by a callable, for several passes over the whole source.
Only one chunk is in memory at a time.

Pages of a memory-mapped file that have been read stay mapped into the
process and count in its resident memory until the kernel needs them, so
reading a memmap once from end to end would make the process look as large
as the file. After copying a chunk out of a read-only or shared memmap, the
mapping's pages are therefore handed back to the kernel (``MADV_DONTNEED``;
the data stay in the page cache, and nothing is lost for these modes).
"""

import mmap
import os

import numpy as np
from sklearn.utils import check_random_state

from ._validation import _check_int

__all__ = ["fit_in_chunks"]

# Memmap modes whose pages map the file itself, so dropping them loses nothing ('c' is copy-on-write).
_SHARED_MODES = ("r", "r+", "w+")


def fit_in_chunks(estimator, source, n_epochs=1, chunk_size=10_000, shuffle_chunks=True, random_state=None):
    """Train ``estimator`` with ``partial_fit`` over chunks of rows, for several epochs.

    Each epoch visits every chunk once; each chunk is copied into memory,
    passed to ``estimator.partial_fit`` and dropped, so memory use depends on
    ``chunk_size``, not on the size of the source. With skvae estimators one
    ``partial_fit`` call is one epoch over the chunk's rows in mini-batches
    of ``batch_size``, so rows are shuffled within a chunk but not across
    chunks.

    The estimator is trained from its current state: an unfitted estimator
    is initialized by the first chunk; a fitted one continues.

    Parameters
    ----------
    estimator : object with a ``partial_fit(X)`` method
        For instance a :class:`~skvae.VAEDensityEstimator`; any scikit-learn
        style estimator with ``partial_fit`` works.
    source : str or path-like, ndarray or numpy.memmap, or callable
        Where the rows come from:

        - a path to a ``.npy`` file holding a 2-D array; it is opened with
          ``numpy.load(..., mmap_mode='r')`` and never read whole;
        - a 2-D array or memmap, sliced into chunks of ``chunk_size`` rows;
        - a callable with no arguments that returns an iterable of 2-D
          arrays (a generator function, say). It is called once per epoch,
          so it must be able to produce the data again; its chunks are used
          as given, in its order (``chunk_size`` and ``shuffle_chunks`` do
          not apply).
    n_epochs : int, default=1
        Passes over the whole source.
    chunk_size : int, default=10_000
        Rows per chunk for path and array sources (the last chunk may be
        shorter).
    shuffle_chunks : bool, default=True
        Visit the chunks of a path or array source in a new random order at
        each epoch; False keeps file order.
    random_state : int, RandomState instance or None, default=None
        Seeds the order of the chunks. The estimator's own randomness is set
        by its own ``random_state``.

    Returns
    -------
    estimator : object
        The same estimator, trained.

    Raises
    ------
    TypeError
        If ``source`` is none of the kinds above, a callable does not return
        an iterable, or ``estimator`` has no ``partial_fit``.
    ValueError
        If the data are not 2-D, a path does not hold a single ``.npy``
        array, the source has no rows, or a parameter is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEDensityEstimator
    >>> from skvae.streaming import fit_in_chunks
    >>> rng = np.random.default_rng(0)
    >>> X = (rng.random((300, 8)) < 0.3).astype(np.uint8)
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(16,), random_state=0)
    >>> vae = fit_in_chunks(vae, X, n_epochs=2, chunk_size=100, random_state=0)
    >>> len(vae.history_)  # one skorch epoch per chunk and pass
    6

    A file written with ``numpy.save`` is read a chunk at a time:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.npy")
    >>> np.save(path, X)
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(16,), random_state=0)
    >>> vae = fit_in_chunks(vae, path, chunk_size=100)
    >>> vae.n_features_in_
    8

    Or any re-iterable source of arrays, e.g. chunks read from several
    files; here the fitted model continues training:

    >>> parts = [X[:150], X[150:]]
    >>> vae = fit_in_chunks(vae, lambda: iter(parts), n_epochs=1)
    >>> len(vae.history_)  # 3 chunks from the file, then 2 more
    5
    """
    if not callable(getattr(estimator, "partial_fit", None)):
        raise TypeError(f"estimator must have a partial_fit method, got {type(estimator).__name__}")
    _check_int(n_epochs, "n_epochs", 1)
    _check_int(chunk_size, "chunk_size", 1)
    if not isinstance(shuffle_chunks, (bool, np.bool_)):
        raise TypeError(f"shuffle_chunks must be a bool, got {shuffle_chunks!r}")

    chunks = _chunk_source(source, chunk_size, bool(shuffle_chunks), check_random_state(random_state))
    for epoch in range(n_epochs):
        n_rows = 0
        for chunk in chunks():
            estimator.partial_fit(chunk)
            n_rows += len(chunk)
        if n_rows == 0:
            raise ValueError(f"source yielded no rows in epoch {epoch}")
    return estimator


def _chunk_source(source, chunk_size, shuffle, rng):
    """A function that returns one epoch's chunks as in-memory 2-D arrays."""
    if isinstance(source, (str, os.PathLike)):
        source = _open_npy(source)
    if isinstance(source, np.ndarray):
        _check_2d(source, "source")
        return lambda: _array_chunks(source, chunk_size, shuffle, rng)
    if callable(source):
        return lambda: _callable_chunks(source)
    raise TypeError("source must be a path to a .npy file, a 2-D numpy array or memmap, or a callable "
                    f"returning an iterable of 2-D arrays, got {type(source).__name__}")


def _open_npy(path):
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:  # not a .npy file, or an object array
        raise ValueError(f"{os.fspath(path)!r} does not hold a numeric .npy array: {exc}") from exc
    if not isinstance(array, np.ndarray):  # an .npz archive
        array.close()
        raise ValueError(f"{os.fspath(path)!r} is an .npz archive; save each array to its own .npy file")
    return array


def _array_chunks(array, chunk_size, shuffle, rng):
    starts = np.arange(0, len(array), chunk_size)
    if shuffle:
        starts = rng.permutation(starts)
    for start in starts:
        chunk = np.array(array[start:start + chunk_size])  # the one copy into memory
        _release_pages(array)
        yield chunk


def _callable_chunks(make_chunks):
    chunks = make_chunks()
    try:
        iterator = iter(chunks)
    except TypeError:
        raise TypeError(f"the source callable must return an iterable of arrays, got {type(chunks).__name__}") \
            from None
    for i, chunk in enumerate(iterator):
        chunk = np.asarray(chunk)
        _check_2d(chunk, f"chunk {i} of the source")
        if len(chunk):
            yield chunk


def _release_pages(array):
    """Hand the pages of a shared memmap that were read back to the kernel."""
    mapping = getattr(array, "_mmap", None)
    if mapping is None or getattr(array, "mode", None) not in _SHARED_MODES or not hasattr(mmap, "MADV_DONTNEED"):
        return
    mapping.madvise(mmap.MADV_DONTNEED)


def _check_2d(array, name):
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, features), got shape {array.shape}")
