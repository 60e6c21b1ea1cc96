"""BitsBackCoder: lossless compression of discrete arrays with a fitted skvae VAE.

Bits-back coding with ANS (Townsend, Bird & Barber, ICLR 2019), using the
``constriction`` ANS stack. The latent space is discretized on a uniform grid
of cells of width ``2**-latent_precision`` on ``[-latent_clip, latent_clip]``
(the two end cells absorb the tails): the prior N(0, I) becomes a categorical
distribution over the cells, and the posterior q(z|x) a Gaussian binned at
the same cells. Per row the encoder pops z from q(z|x), pushes x under p(x|z)
evaluated at the cell centre, then pushes z under the prior; the expected net
cost is the discretized negative ELBO of the coder's model, which tends to
the fitted model's negative ELBO as the cells shrink.

The coder's model is a fixed-point copy of the fitted networks
(:mod:`skvae.coding._fixed_point`) with exact probability functions
(:mod:`skvae.coding._exact`): files decode bit for bit on any machine. See
:mod:`skvae.coding._bitsback` for the block-wise algorithm,
:mod:`skvae.coding._container` for the file format and
:mod:`skvae.coding._model_file` for the portable model file.
"""

import bz2
import copy
import gzip
import hashlib
import io
import json
import lzma
import math
import zlib
from importlib.metadata import version as _dist_version

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from .._validation import _check_int, _check_real, is_fitted
from ._bitsback import ChunkCodec
from ._container import PARAM_NAMES
from ._container import parse, write_chunk, write_preamble, write_trailer
from ._entropy_models import MISSING_PRECISION, LatentGrid, column_model_for
from ._fixed_point import ARITHMETIC_VERSION, READ_ARITHMETIC_VERSIONS
from ._ladder import LadderChunkCodec, PortableLadder, portable_from_module
from ._model_file import read_model_file, write_model_file
from ._index import index_from_json, index_to_json
from ._quantization import check_quantization, measure_grid, measure_integer_ranges, shortest_decimals

__all__ = ["BitsBackCoder"]

# scipy.sparse classes a file may record; decode returns the class the array came in
_SPARSE_CLASSES = tuple(f"{fmt}_{kind}" for kind in ("matrix", "array")
                        for fmt in ("csr", "csc", "coo", "bsr", "dia", "dok", "lil"))

def _constriction_version():
    """constriction's major.minor: its stream format may change between minor versions."""
    return ".".join(_dist_version("constriction").split(".")[:2])


class BitsBackCoder(TransformerMixin, BaseEstimator):
    """Lossless compression of binary and tabular arrays by bits-back coding with a VAE.

    The coder turns a fitted skvae density estimator into a compressor whose
    rate approaches the model's negative ELBO (in bits) per row, plus a
    one-time overhead of a few hundred bits per chunk. Decoding returns an
    array equal to the input in values, dtype and shape, on any machine: the
    coder runs a fixed-point copy of the fitted networks in exact arithmetic.

    Parameters
    ----------
    estimator : skvae estimator or None, default=None
        A fitted or unfitted skvae density estimator (``VAEDensityEstimator``
        or a subclass of ``BaseVAE``). None means ``VAEDensityEstimator()``.
        A ``HierarchicalVAE`` (ladder) is coded by bits-back over its latent
        hierarchy, exactly and portably as well (see
        :mod:`skvae.coding._ladder`), with ``n_particles=1`` only and its
        latents on a grid of half-width 28 whatever ``latent_clip``.
        Fit rule: if ``estimator`` is already fitted (``check_is_fitted``
        passes), :meth:`fit` uses it as is and does not train it; otherwise
        :meth:`fit` trains a clone of it on ``X``. (``clone`` of the coder,
        e.g. inside ``GridSearchCV``, clones the estimator too, which is then
        refitted.)
    latent_precision : int, default=5
        Latent cells are ``2**-latent_precision`` prior standard deviations
        wide. Finer cells approach the continuous ELBO more closely and raise
        the one-time overhead by about ``latent_dim`` bits per step.
    latent_clip : float, default=6.0
        Half-width of the latent grid in prior standard deviations (rounded
        up so that the cells split into equal groups).
    likelihood_precision : int, default=16
        Bernoulli probabilities are rounded to multiples of
        ``2**-likelihood_precision`` before coding.
    chunk_size : int, default=10000
        Rows per independently decodable chunk (one ANS stream each).
    block_size : int, default=1024
        Largest number of rows per network call inside a chunk.
    n_jobs : int or None, default=None
        Chunks coded in parallel with joblib; the output does not depend on it.
    quantization : 'auto', float, dict or None, default='auto'
        Grid of real-valued (Gaussian) columns, which have no lossless code
        off a grid. ``'auto'``: each column is coded on the coarsest decimal
        step ``10**-d`` (d = 0 to 12) that holds all its encoded values, the
        precision they were written or rounded with; a column of values on
        no such grid (e.g. random floats) makes ``encode`` raise
        ``ValueError`` naming it. A float: that step for every real column;
        a dict: a step or ``'auto'`` per column name (or index). Each value
        must lie exactly on its grid (``k * step``, with decimal steps such
        as 0.1 computed as ``k / 10``, compared in the column's dtype);
        ``encode`` checks this and raises ``ValueError`` naming the first
        value off the grid. The step and range of k are measured on the
        encoded array and stored in the file. None refuses real columns.
    n_particles : int, default=1
        Importance samples per row (Monte-Carlo bits-back, BB-IS of Ruan et
        al. 2021). 1 is plain bits-back, whose rate approaches the -ELBO;
        k > 1 approaches the tighter -IWAE_k bound (Silhouettes, a small VAE:
        -3.8 % at k = 5, -6.0 % at k = 50 against k = 1), at about 1/k of
        the speed, decoding included. Each chunk starts with one particle per
        row until its ANS stack holds the bits of one k-particle row (the
        report's ``single_particle_rows``), so k > 1 pays off on chunks of
        thousands of rows. Stored in the file header and in the model file;
        decoding reads it from the file. An int in 1 .. 4096.

    Attributes
    ----------
    estimator_ : skvae estimator
        The fitted estimator (the given one when it was already fitted).
        Absent on a coder made by :meth:`load`.
    model_ : PortableModel
        The fixed-point encoder and decoder used for coding, taken at ``fit``
        (later training of ``estimator_`` does not change the code).
    module_ : torch.nn.Module
        Frozen CPU copy of the float networks, used by :meth:`report` for the
        model's -ELBO. Absent on a coder made by :meth:`load`.
    fingerprint_ : str
        SHA-256 of ``model_``; stored in every file and checked when decoding.
    schema_ : TableSchema or None
        The column schema of a table (DataFrame or mixed-type input).
    n_features_in_ : int

    Notes
    -----
    Portability: every probability handed to the entropy coder comes from
    integer arithmetic that is exact in float64 and from tables computed from
    integers, so a file decodes to the same array whatever the CPU, BLAS
    library, thread count or torch build. It needs the same skvae format
    version, an arithmetic version this skvae reads and the same
    ``constriction`` minor version (all checked). Encoding writes arithmetic
    version 2; files of version 1 (nearest-entry CDF lookups, 0/1 encoder
    inputs at scale ``2**0``) still decode exactly with the model file saved
    with them (:meth:`load` keeps the model's version: its old files decode,
    and what it encodes now is written as version 2). A coder fitted now
    builds a version-2 model, whose weights may differ, and refuses
    version-1 files with a message saying so. :meth:`save` writes the model as a pickle-free ``.npz`` file;
    :meth:`load` reads it without executing anything from the file. A SHA-256
    of the original array is verified after decoding: a mismatch raises
    ``ValueError`` instead of returning a wrong array. Binary, categorical
    and integer columns are coded as they are (integers beyond the range
    seen in fit too); real-valued columns on a ``quantization`` grid (by
    default each column's own decimal precision). A table's missing cells
    are coded as a mask plus the observed values. An estimator fitted on a
    DataFrame with ``likelihood='auto'`` takes and returns DataFrames (with
    their index); sparse input decodes to its scipy class.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEDensityEstimator
    >>> from skvae.coding import BitsBackCoder
    >>> X = (np.random.RandomState(0).rand(200, 12) < 0.3).astype(np.uint8)
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=3,
    ...                           random_state=0)
    >>> coder = BitsBackCoder(vae).fit(X)
    >>> data = coder.encode(X)
    >>> Y = coder.decode(data)
    >>> bool(np.array_equal(X, Y)), Y.dtype
    (True, dtype('uint8'))
    """

    def __init__(self, estimator=None, latent_precision=5, latent_clip=6.0, likelihood_precision=16,
                 chunk_size=10_000, block_size=1024, n_jobs=None, quantization="auto", n_particles=1):
        self.estimator = estimator
        self.latent_precision = latent_precision
        self.latent_clip = latent_clip
        self.likelihood_precision = likelihood_precision
        self.chunk_size = chunk_size
        self.block_size = block_size
        self.n_jobs = n_jobs
        self.quantization = quantization
        self.n_particles = n_particles

    # -- fitting --------------------------------------------------------------

    def fit(self, X=None, y=None):
        """Fit the estimator unless it is already fitted, and freeze the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), optional
            Training rows. May be None when ``estimator`` is fitted.
        y : None
            Ignored.

        Returns
        -------
        self : BitsBackCoder
        """
        from ..likelihoods import get_likelihood  # torch is needed to fit, not to load and decode

        self._coding_params()  # validate before any training
        self._check_particles()
        check_quantization(self.quantization)
        if self.estimator is None:
            from ..vae import VAEDensityEstimator
            estimator = VAEDensityEstimator()
        else:
            estimator = self.estimator
        if is_fitted(estimator):
            _check_skvae(estimator)
            self.estimator_ = estimator
            if X is not None:
                shape = X.shape if hasattr(X, "shape") else np.asarray(X, dtype=object).shape
                n_features = shape[1] if len(shape) == 2 else None
                if n_features != estimator.n_features_in_:
                    raise ValueError(f"X has {n_features} features, the fitted estimator expects "
                                     f"{estimator.n_features_in_}")
        else:
            if X is None:
                raise ValueError("X is required to fit an unfitted estimator")
            if not hasattr(estimator, "likelihood"):
                raise TypeError(f"estimator must be a skvae density estimator, got {type(estimator).__name__}")
            _check_codable(estimator)
            # refuse an unsupported likelihood before spending time on training (a
            # per-column 'auto' / dict specification is only known after fit)
            if not estimator._uses_schema():
                column_model_for(get_likelihood(estimator.likelihood), 0, self.likelihood_precision,
                                 None if self.quantization is None else {})
            self.estimator_ = clone(estimator).fit(X)
        _check_skvae(self.estimator_)
        likelihood = self.estimator_.likelihood_
        n_features = int(self.estimator_.n_features_in_)
        # refuses unsupported likelihoods, and real columns when there is no quantization
        real = _real_column_indices(likelihood, n_features)
        column_model_for(likelihood, n_features, self.likelihood_precision,
                         None if self.quantization is None else {str(j): [1.0, 0, 0] for j in real})
        module = copy.deepcopy(self.estimator_.net_.module_).to("cpu").eval()
        for p in module.parameters():
            p.requires_grad_(False)
        self.module_ = module
        model = portable_from_module(module, likelihood, n_features)
        if isinstance(model, PortableLadder) and self._check_particles() > 1:
            raise ValueError(f"n_particles={self.n_particles}: hierarchical models (HierarchicalVAE) code with "
                             "n_particles=1 only")
        self.model_ = model
        self.n_features_in_ = n_features
        self.schema_ = copy.deepcopy(getattr(self.estimator_, "schema_", None))
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        else:
            self.__dict__.pop("feature_names_in_", None)  # from an earlier fit
        self.fingerprint_ = self.model_.fingerprint()
        return self

    # -- the portable model file ----------------------------------------------------

    def save(self, path):
        """Write the coding model to a pickle-free file (``.npz``: integer arrays and JSON).

        The file holds the fixed-point networks, the likelihood, the column
        schema and the coding parameters, everything :meth:`load` needs to
        encode and decode; see :mod:`skvae.coding._model_file` for the
        format. It is written to a temporary file first and renamed, so an
        existing file at ``path`` survives any failure.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        self : BitsBackCoder
        """
        self._check_fitted()
        names = getattr(self, "feature_names_in_", None)
        params = self._coding_params()
        k = self._check_particles()
        if k > 1:  # absent: one particle (files of k = 1 coders are unchanged)
            params["n_particles"] = k
        write_model_file(path, self.model_, params, self.quantization,
                         None if self.schema_ is None else self.schema_.to_json(),
                         None if names is None else [str(n) for n in names])
        return self

    @classmethod
    def load(cls, path):
        """A fitted coder from a file written by :meth:`save`; nothing in the file is executed.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        BitsBackCoder
            With ``model_``, ``fingerprint_``, ``schema_`` and
            ``n_features_in_``; ``estimator`` is None (the float model is not
            in the file, so :meth:`report` gives no -ELBO).

        Raises
        ------
        ValueError
            If the file is not a skvae model file, is truncated or damaged,
            has another version, or holds arrays of the wrong shapes.
        """
        from .._tabular import TableSchema

        model, params, quantization, schema, names = read_model_file(path)
        try:
            n_particles = params.pop("n_particles", 1)
            if sorted(params) != sorted(PARAM_NAMES):
                raise ValueError(f"parameters {sorted(params)}, expected {sorted(PARAM_NAMES)}")
            params = _validated_params(params)
            n_particles = _checked_particles(n_particles)
            if isinstance(model, PortableLadder) and n_particles > 1:
                raise ValueError("a hierarchical model codes with n_particles=1 only")
            check_quantization(quantization)
            schema = None if schema is None else TableSchema.from_json(schema)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path} is a damaged skvae model file: {exc}") from None
        coder = cls(quantization=quantization, n_particles=n_particles, **params)
        coder.model_ = model
        coder.n_features_in_ = model.n_features
        coder.schema_ = schema
        if names is not None:
            coder.feature_names_in_ = np.asarray(names, dtype=object)
        coder.fingerprint_ = model.fingerprint()
        return coder

    # -- helpers ------------------------------------------------------------------

    def _check_fitted(self):
        if not hasattr(self, "model_") and hasattr(self, "module_"):
            raise ValueError("this BitsBackCoder was fitted by skvae 0.1, whose floating-point coder this "
                             "version replaces; fit it again (BitsBackCoder(coder.estimator_).fit())")
        check_is_fitted(self, "model_")

    def _coding_params(self):
        """The validated coding parameters as a JSON-ready dict."""
        return _validated_params({name: getattr(self, name) for name in PARAM_NAMES})

    def _check_particles(self, value=None):
        """The validated n_particles (of the coder, or ``value``)."""
        return _checked_particles(self.n_particles if value is None else value)

    def _codec(self, params, grid=None, n_particles=None, missing=None, arithmetic=ARITHMETIC_VERSION):
        # ``arithmetic``: the file's version (1: nearest-entry CDF lookups); encoding always uses the current one
        columns = column_model_for(self.model_.likelihood, self.n_features_in_,
                                   params["likelihood_precision"], grid, missing, arithmetic)
        grid = LatentGrid(params["latent_precision"], params["latent_clip"], arithmetic)
        k = self._check_particles(n_particles)
        codec_class = LadderChunkCodec if isinstance(self.model_, PortableLadder) else ChunkCodec
        return codec_class(self.model_, columns, grid, params["block_size"], k)

    def _file_fingerprint(self, params, columns):
        blob = json.dumps([self.fingerprint_, params, columns], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:24]  # 96 bits tell models apart; not a signature

    def _column_names(self):
        if self.schema_ is not None:
            return self.schema_.column_names()
        names = getattr(self, "feature_names_in_", None)
        return None if names is None else list(names)

    # -- input checks -----------------------------------------------------------

    def _as_array(self, X):
        if sp.issparse(X):
            X = X.toarray()  # coded as the dense array; decode returns the same sparse class
        if not isinstance(X, np.ndarray):
            X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must hold bool, integer or float values, got dtype {X.dtype}")
        return self._check_shape(X)

    def _check_shape(self, X):
        """X itself, after refusing a shape that is not (n_samples, n_features_in_)."""
        shape = X.shape if hasattr(X, "shape") else np.asarray(X, dtype=object).shape
        if len(shape) != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {shape}. Reshape your data: "
                             f"X.reshape(-1, 1) for a single feature, X.reshape(1, -1) for a single row")
        if hasattr(self, "n_features_in_") and shape[1] != self.n_features_in_:
            raise ValueError(f"X has {shape[1]} features, but BitsBackCoder is expecting {self.n_features_in_} "
                             f"features as input")
        return X

    def _checked_array(self, X):
        self._check_fitted()
        if self.schema_ is None:
            return self._as_array(X)
        # A mixed-type table: code its integer codes; decode maps them back.
        names = self.schema_.column_names()
        if hasattr(X, "columns"):
            if list(X.columns) != names:
                raise ValueError(f"X has the columns {list(X.columns)}, the coder was fitted on {names}")
        else:
            X = self._check_shape(X.toarray() if sp.issparse(X) else X)
        codes = self.schema_.encode(X)
        for j, column in enumerate(self.schema_.columns):
            narrow = _narrow_float_dtype(column)
            if narrow is not None:  # its values as the decimals they were written as; decoding casts back
                codes[:, j] = shortest_decimals(codes[:, j].astype(narrow))
        missing = np.isnan(codes)
        codes[missing] = np.nan  # one NaN bit pattern, the one decoding restores
        self.model_.likelihood.check_support(codes, column_names=names)  # before narrowing the dtype
        if missing.any() or _real_column_indices(self.model_.likelihood, self.n_features_in_):
            return codes  # missing cells and real-valued columns keep float64
        low, high = int(codes.min(initial=0)), int(codes.max(initial=0))
        return codes.astype(np.result_type(np.min_scalar_type(low), np.min_scalar_type(high)))

    # -- encoding -----------------------------------------------------------------

    def _write(self, X, stream):
        """Encode X into a binary stream; returns the number of chunks."""
        sparse_class = type(X).__name__ if sp.issparse(X) else None
        index = index_to_json(X.index) if self.schema_ is not None and hasattr(X, "columns") else None
        if sparse_class is not None and sparse_class not in _SPARSE_CLASSES:
            raise TypeError(f"sparse input of class {sparse_class} is not supported; pass one of {_SPARSE_CLASSES}")
        X = self._checked_array(X)
        params = self._coding_params()
        # what this file stores about its columns: real columns' grids, widened integer ranges
        labels = self._column_names() or list(range(self.n_features_in_))
        likelihood = self.model_.likelihood
        grid = measure_grid(X, _real_column_indices(likelihood, self.n_features_in_), labels, self.quantization)
        ranges = measure_integer_ranges(X, _integer_column_ranges(likelihood, self.n_features_in_), labels)
        missing = _missing_rates(X) if self.schema_ is not None else None
        codec = self._codec(params, _column_grids(grid, ranges), missing=missing)
        columns = codec.columns
        n_rows = X.shape[0]
        n_chunks = -(-n_rows // params["chunk_size"])
        header = {
            "arithmetic": ARITHMETIC_VERSION,
            "constriction_version": _constriction_version(),
            "fingerprint": self._file_fingerprint(params, columns.schema()),
            "dtype": X.dtype.str,
            "shape": [int(n_rows), int(X.shape[1])],
            "params": params,
            "grid": grid,
            "integer_ranges": ranges,  # absent: every integer column within its range seen in fit
            "missing": missing,  # absent: no missing cells
            "n_particles": codec.n_particles if codec.n_particles > 1 else None,  # absent: k = 1
            "sparse": sparse_class,  # absent: a dense array
            "index": index,  # absent: not a DataFrame, or its index is 0 .. n-1
            "model_kind": getattr(self.model_, "kind", None),  # absent: a single-layer model
        }
        write_preamble(stream, header)
        digest = _array_digest(header, columns)
        crcs = []
        names = self._column_names()

        def tasks():
            for start in range(0, n_rows, params["chunk_size"]):
                rows = np.ascontiguousarray(X[start:start + params["chunk_size"]])
                columns.check(rows, column_names=names)
                symbols = columns.symbols(rows)
                raw = memoryview(rows).cast("B")
                crc = zlib.crc32(raw)
                if zlib.crc32(memoryview(np.ascontiguousarray(columns.restore(symbols, rows.dtype))).cast("B")) != crc:
                    raise ValueError("X holds values that decode to different bytes (for example -0.0); "
                                     "they cannot be restored bit for bit")
                digest.update(raw)
                crcs.append(crc)
                yield delayed(codec.encode)(symbols)

        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(tasks())
        for index, (words, ramp) in enumerate(results):
            n = min(params["chunk_size"], n_rows - index * params["chunk_size"])
            write_chunk(stream, n, words, ramp, crcs[index])
        write_trailer(stream, digest.digest())
        return n_chunks

    def encode(self, X):
        """Compress X losslessly.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Values in the fitted likelihood's support (0/1 of any bool,
            integer or float dtype for Bernoulli data; numpy memmaps are read
            chunk by chunk), or a table like the estimator's training table.

        Returns
        -------
        bytes
            A self-contained file (see :mod:`skvae.coding._container`).
        """
        buffer = io.BytesIO()
        self._write(X, buffer)
        return buffer.getvalue()

    # -- decoding -----------------------------------------------------------------

    def _read_header(self, header):
        """Check that this coder can decode a file; return (codec, dtype, shape)."""
        self._check_fitted()
        arithmetic = header.get("arithmetic")
        if arithmetic not in READ_ARITHMETIC_VERSIONS or isinstance(arithmetic, bool):
            raise ValueError(f"the file uses coder arithmetic version {arithmetic!r}; this skvae decodes "
                             f"versions {', '.join(map(str, READ_ARITHMETIC_VERSIONS))}")
        model_version = getattr(self.model_, "arithmetic_version", ARITHMETIC_VERSION)
        if arithmetic < model_version:
            # a file of version 1 was written by a version-1 model (0/1 encoder inputs at scale 2**0), whose
            # integer weights only its model file holds: today's quantization of the same networks differs
            raise ValueError(f"the file uses coder arithmetic version {arithmetic}, written by a model of that "
                             f"version; this coder's model is of version {model_version}. Decode it with the "
                             "model file saved by the coder that wrote it (BitsBackCoder.load)")
        file_cv, our_cv = str(header.get("constriction_version")), _constriction_version()
        if file_cv != our_cv:
            raise ValueError(f"the data were written with constriction {file_cv}, which is not "
                             f"stream-compatible with the installed {our_cv}")
        kind, ours = header.get("model_kind"), getattr(self.model_, "kind", None)
        if kind != ours:
            names = {None: "a single-layer model", PortableLadder.kind: "a hierarchical (ladder) model"}
            if not isinstance(kind, str) and kind is not None or kind not in names:
                raise ValueError(f"corrupted bits-back file: bad model kind {kind!r}")
            raise ValueError(f"the data were encoded with {names[kind]}; this coder's model is {names[ours]}")
        try:
            params = _validated_params(header["params"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"corrupted bits-back file: bad coder parameters ({exc})") from None
        k = header.get("n_particles")  # absent: one particle; the writer never stores 1
        try:
            k = 1 if k is None else _checked_particles(k)
            if header.get("n_particles") is not None and k == 1:
                raise ValueError("n_particles 1 is never stored")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"corrupted bits-back file: bad n_particles ({exc})") from None
        try:
            codec = self._codec(params, _column_grids(header.get("grid"), header.get("integer_ranges")), k,
                                _checked_missing(header.get("missing")), arithmetic)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ValueError(f"corrupted bits-back file: bad column grid ({exc})") from None
        # the fingerprint covers the model, its column schema and the parameters
        if header["fingerprint"] != self._file_fingerprint(params, codec.columns.schema()):
            # params and columns come from the (CRC-checked) file: the model differs
            raise ValueError("the data were encoded with a different model (file fingerprint "
                             f"{header['fingerprint'][:16]}..., this coder's model {self.fingerprint_[:16]}...); "
                             "decode with the model that encoded them")
        try:
            dtype = np.dtype(header["dtype"])
        except TypeError:
            raise ValueError(f"corrupted bits-back file: bad dtype {header['dtype']!r}") from None
        if dtype.kind not in "biuf" or dtype.str != header["dtype"]:
            raise ValueError(f"corrupted bits-back file: bad dtype {header['dtype']!r}")
        if header.get("sparse") not in (None, *_SPARSE_CLASSES):
            raise ValueError(f"corrupted bits-back file: bad sparse class {header['sparse']!r}")
        shape = tuple(header["shape"])
        if shape[1] != self.n_features_in_:
            raise ValueError(f"the file holds {shape[1]} columns, the coder expects {self.n_features_in_}")
        return codec, dtype, shape

    def _read(self, data, out=None):
        """Decode a file into ``out`` (an array, or a callable given shape and dtype) or a new array."""
        return self._read_with_header(data, out)[0]

    def _read_with_header(self, data, out=None):
        header, chunks, expected = parse(data)
        codec, dtype, shape = self._read_header(header)
        for index, chunk in enumerate(chunks):  # before allocating anything of the claimed size
            if chunk.n_rows > codec.max_rows(len(chunk.words)):
                raise ValueError(f"corrupted bits-back file: chunk {index} claims {chunk.n_rows} rows, more than "
                                 f"its {len(chunk.words)} words can hold")
        if out is None:
            out = np.empty(shape, dtype=dtype)
        elif callable(out):  # allocate once shape and dtype are known (e.g. an .npy memmap)
            out = out(shape, dtype)
        if out.shape != shape or out.dtype != dtype:
            raise ValueError(f"out must have shape {shape} and dtype {dtype}")
        digest = _array_digest(header, codec.columns)
        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(
            delayed(codec.decode)(chunk.words, chunk.n_rows, chunk.ramp) for chunk in chunks)
        start = 0
        for index, (chunk, symbols) in enumerate(zip(chunks, results)):
            rows = np.ascontiguousarray(codec.columns.restore(symbols, dtype))
            raw = memoryview(rows).cast("B")
            if zlib.crc32(raw) != chunk.rows_crc:
                raise ValueError(f"decoding failed: chunk {index} does not match its checksum "
                                 "(corrupted data)")
            digest.update(raw)
            out[start:start + chunk.n_rows] = rows
            start += chunk.n_rows
        if digest.digest() != expected:
            raise ValueError("decoding failed: the SHA-256 of the decoded array does not match")
        return out, header

    def decode(self, data):
        """Decompress the output of :meth:`encode`.

        Parameters
        ----------
        data : bytes-like
            A complete file.

        Returns
        -------
        ndarray
            Equal to the encoded array in values, dtype and shape.

        Raises
        ------
        ValueError
            If the data are truncated or corrupted, were written by a
            different model or another format or arithmetic version, or fail
            the checksum after decoding.
        """
        return self._to_output(*self._read_with_header(data))

    def _to_output(self, codes, header):
        """Decoded codes in the caller's form: a table's original columns, the sparse class, else the array."""
        if self.schema_ is not None:
            table = self.schema_.decode(codes)
            if hasattr(table, "index"):
                table.index = index_from_json(header.get("index"), len(table))
            return table
        sparse_class = header.get("sparse")
        return codes if sparse_class is None else getattr(sp, sparse_class)(codes)

    # -- transformer API ------------------------------------------------------------

    def transform(self, X):
        """The encoded bytes of X as a 1-D uint8 array (so a Pipeline can end here)."""
        return np.frombuffer(self.encode(X), dtype=np.uint8)

    def inverse_transform(self, X):
        """Decode a 1-D uint8 array made by :meth:`transform`."""
        X = np.asarray(X)
        if X.ndim != 1 or X.dtype != np.uint8:
            raise ValueError(f"expected the 1-D uint8 array made by transform, got {X.dtype} of shape {X.shape}")
        return self._to_output(*self._read_with_header(np.ascontiguousarray(X)))

    def score(self, X, y=None):
        """Negative bits per dimension of the complete file for X (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        float
        """
        data = self.encode(X)  # validates X
        return -8.0 * len(data) / max(len(X) * self.n_features_in_, 1)

    def report(self, X):
        """Compression statistics of X against the model's ELBO and generic compressors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Bunch
            ``n_rows``, ``n_features``; ``total_bits`` (whole file),
            ``payload_bits`` (the ANS streams), ``container_bits`` (header,
            chunk records and trailer); ``bits_per_row`` and ``bits_per_dim``
            of the whole file; ``negative_elbo_bits`` (sum over rows of the
            float model's -ELBO in bits with the amortized posterior, a
            Monte-Carlo mean over 16 independent draws per row; NaN for a
            coder made by :meth:`load`, which holds no float model),
            ``overhead_bits`` (estimated one-time cost: the entropy of the
            discretized posterior of each chunk's first row, which gets no
            bits back); ``n_particles`` (k) and ``negative_iwae_bits`` (sum
            over rows of the float model's -IWAE_k bound in bits, the mean
            of 4 independent k-sample estimates per row; the -ELBO when
            k = 1; NaN without a float model), the bound that a file coded
            with k particles approaches; ``single_particle_rows`` (k > 1: the
            rows at the start of each chunk coded with one particle while
            the stack is too short for k, which pay about the -ELBO instead;
            0 when k = 1); ``gzip_bits``, ``bz2_bits`` and ``xz_bits`` of the
            bit-packed array (``np.packbits`` of the row-major 0/1 values,
            levels 9, 9 and 9 | extreme); ``raw_bits`` = n_rows * n_features.
        """
        data = self.encode(X)
        X = self._checked_array(X)
        header, chunks, _ = parse(data)
        payload = 32 * sum(len(c.words) for c in chunks)
        codec = self._read_header(header)[0]  # the codec the file was written with
        overhead = 0.0
        for start in range(0, X.shape[0], self.chunk_size):
            first = codec.columns.symbols(np.asarray(X[start:start + 1]))
            overhead += codec.first_row_overhead_bits(first)
        neg_elbo_bits = self._negative_elbo_bits(X) if hasattr(self, "module_") else math.nan
        k = codec.n_particles
        neg_iwae_bits = neg_elbo_bits if k == 1 or math.isnan(neg_elbo_bits) else self._negative_iwae_bits(X, k)
        single = 0
        for chunk in chunks:
            sizes, _ = codec._split_ramp(chunk.ramp)
            single += (1 + sum(sizes) if k > 1 else 0)
        # Generic compressors get the bit-packed array (0/1 data) or the raw integer layout.
        binary = np.isin(X, (0, 1)).all()
        packed = np.packbits(np.asarray(X, dtype=np.uint8).ravel()).tobytes() if binary else \
            np.ascontiguousarray(X).tobytes()
        n, d = X.shape
        total = 8 * len(data)
        return Bunch(
            n_rows=n, n_features=d, total_bits=total, payload_bits=payload, container_bits=total - payload,
            bits_per_row=total / max(n, 1), bits_per_dim=total / max(n * d, 1),
            negative_elbo_bits=neg_elbo_bits, overhead_bits=overhead, n_particles=k,
            negative_iwae_bits=neg_iwae_bits, single_particle_rows=single,
            gzip_bits=8 * len(gzip.compress(packed, 9, mtime=0)), bz2_bits=8 * len(bz2.compress(packed, 9)),
            xz_bits=8 * len(lzma.compress(packed, preset=9 | lzma.PRESET_EXTREME)), raw_bits=n * d,
        )

    def _negative_elbo_bits(self, X, n_draws=16, batch_rows=4096):
        """Sum over rows of the float model's -ELBO in bits, averaged over ``n_draws`` independent draws per row.

        The estimator's ``elbo_components`` draws its noise from each row's
        values, so duplicated rows share one draw; on data with many
        duplicates its sum is much noisier than this estimate.
        """
        import torch

        from ..objectives import elbo_terms, ladder_elbo_terms
        from ..parallel import limit_torch_threads

        module, likelihood = self.module_, self.estimator_.likelihood_
        terms = ladder_elbo_terms if hasattr(module, "top_down") else elbo_terms
        generator = torch.Generator().manual_seed(0)
        total = 0.0
        with limit_torch_threads(1), torch.no_grad():
            for start in range(0, X.shape[0], batch_rows):
                x = torch.as_tensor(np.asarray(X[start:start + batch_rows], dtype=np.float32))
                for _ in range(n_draws):
                    eps = torch.randn((x.shape[0], module.latent_dim), generator=generator)
                    elbo, _, _ = terms(module, likelihood, x, eps=eps)
                    total -= float(elbo.double().sum())
        return total / (n_draws * math.log(2))

    def _negative_iwae_bits(self, X, k, n_draws=4):
        """Sum over rows of the float model's -IWAE_k bound in bits, averaged over ``n_draws`` estimates per row."""
        import torch

        from ..objectives import iwae_bound
        from ..parallel import limit_torch_threads

        module, likelihood = self.module_, self.estimator_.likelihood_
        generator = torch.Generator().manual_seed(0)
        batch_rows = max(1, min(4096, (1 << 22) // (k * max(X.shape[1], module.latent_dim))))
        total = 0.0
        with limit_torch_threads(1), torch.no_grad():
            for start in range(0, X.shape[0], batch_rows):
                x = torch.as_tensor(np.asarray(X[start:start + batch_rows], dtype=np.float32))
                for _ in range(n_draws):
                    eps = torch.randn((k, x.shape[0], module.latent_dim), generator=generator)
                    total -= float(iwae_bound(module, likelihood, x, eps).double().sum())
        return total / (n_draws * math.log(2))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.input_tags.sparse = True  # coded as the dense array, decoded to the same sparse class
        estimator = self.estimator
        if estimator is None:  # VAEDensityEstimator(): 'auto'
            tags.input_tags.allow_nan = True
        elif hasattr(estimator, "__sklearn_tags__"):  # a table model's missing cells are coded too
            tags.input_tags.allow_nan = estimator.__sklearn_tags__().input_tags.allow_nan
        return tags


def _array_digest(header, columns):
    """SHA-256 to be fed the array's bytes, seeded with what says how to read them.

    An edited dtype, shape or grid then fails the check even when the edit
    keeps every byte of the array and recomputes the header CRC.
    """
    layout = [header["dtype"], header["shape"], columns.schema(), header.get("grid")]
    if header.get("sparse") is not None:  # appended only when present: dense files keep their digests
        layout.append(header["sparse"])
    return hashlib.sha256(json.dumps(layout, sort_keys=True).encode())


def _validated_params(params):
    """Check the coding parameters (from the constructor or a file header)."""
    _check_int(params["latent_precision"], "latent_precision", 0)
    if params["latent_precision"] > 12:
        raise ValueError(f"latent_precision must be <= 12, got {params['latent_precision']}")
    _check_real(params["latent_clip"], "latent_clip", low=1.0, high=20.0)
    _check_int(params["likelihood_precision"], "likelihood_precision", 2)
    if params["likelihood_precision"] > 24:
        raise ValueError(f"likelihood_precision must be <= 24, got {params['likelihood_precision']}")
    _check_int(params["chunk_size"], "chunk_size", 1)
    _check_int(params["block_size"], "block_size", 1)
    if params["chunk_size"] > 2**31 - 1:
        raise ValueError("chunk_size must be < 2**31")
    return {"chunk_size": int(params["chunk_size"]), "block_size": int(params["block_size"]),
            "latent_precision": int(params["latent_precision"]), "latent_clip": float(params["latent_clip"]),
            "likelihood_precision": int(params["likelihood_precision"])}


def _real_column_indices(likelihood, n_features):
    """Indices of the columns modelled by a Gaussian (real-valued)."""
    if likelihood.name == "gaussian":
        return list(range(n_features))
    return [c for part, cols in getattr(likelihood, "parts", ()) if part.name == "gaussian" for c in cols]


def _checked_particles(value):
    """n_particles as an int in 1 .. 4096, else TypeError / ValueError naming it."""
    _check_int(value, "n_particles", 1)
    if value > 4096:
        raise ValueError(f"n_particles must be <= 4096, got {value!r}")
    return int(value)


def _integer_column_ranges(likelihood, n_features):
    """``{column: (low, high)}`` seen in fit, for the columns modelled as integers."""
    parts = getattr(likelihood, "parts", None) or [(likelihood, range(n_features))]
    return {int(c): (part.low[i], part.high[i]) for part, cols in parts if part.name == "integer"
            for i, c in enumerate(cols)}


def _missing_rates(X):
    """``{str(j): q}``: each column's share of missing cells in X, in units of 2**-16 within (0, 1), or None."""
    X = np.asarray(X)
    if X.dtype.kind != "f" or not len(X):
        return None
    counts = np.isnan(X).sum(axis=0)
    scale = 1 << MISSING_PRECISION
    rates = {str(j): int(min(max(round(scale * int(c) / len(X)), 1), scale - 1))
             for j, c in enumerate(counts) if c}
    return rates or None


def _checked_missing(missing):
    if missing is not None and not isinstance(missing, dict):
        raise ValueError("corrupted bits-back file: bad missing rates")
    return missing


def _column_grids(grid, ranges):
    """The real columns' grid and the integer columns' stored ranges as one mapping for the column models."""
    for what, value in (("grid", grid), ("integer ranges", ranges)):
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"corrupted bits-back file: bad {what}")
    if grid is None and ranges is None:
        return None
    return {**(grid or {}), **(ranges or {})}


def _check_codable(estimator):
    """Refuse a model kind the coder does not code (it names the reason as ``_not_codable``)."""
    reason = getattr(estimator, "_not_codable", None)
    if reason:
        raise TypeError(f"{reason}; got {type(estimator).__name__}")


def _narrow_float_dtype(column):
    """The numpy dtype of a real-valued table column stored narrower than float64 (float32, Float32), or None."""
    if column.kind != "gaussian" or column.dtype is None:
        return None
    dtype = np.dtype(getattr(column.dtype, "numpy_dtype", column.dtype))
    return dtype if dtype.kind == "f" and dtype.itemsize < 8 else None


def _check_skvae(estimator):
    """A fitted skvae estimator has a net with a module, a likelihood and a feature count."""
    _check_codable(estimator)
    net = getattr(estimator, "net_", None)
    if net is None or not hasattr(net, "module_") or not hasattr(estimator, "likelihood_") \
            or not hasattr(estimator, "n_features_in_"):
        raise TypeError(f"estimator must be a skvae density estimator, got {type(estimator).__name__}")
