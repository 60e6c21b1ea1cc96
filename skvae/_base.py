"""BaseVAE: the scikit-learn face shared by every skvae estimator.

It owns parameter and input validation, seeding, and the public methods
(fit / partial_fit / score_samples / score / sample / transform /
inverse_transform). Training itself happens in a private skorch net built in
``fit``; a subclass picks the net class and adds its own net arguments.
"""

import inspect
import math
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, DensityMixin, TransformerMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted, validate_data

from ._net import ELBOLoss, TrainingDiverged, VAENet, eval_mode
from .callbacks import EpochProgressBar, ValidationStopping
from ._rng import cuda_index, seed_from
from ._tabular import TableSchema, is_binary_array
from ._validation import _check_int, _check_real, check_layer_sizes, is_fitted
from .likelihoods import get_likelihood
from .modules import VAEModule

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


class BaseVAE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, DensityMixin, BaseEstimator):
    """Base class of the VAE density estimators; not meant to be used directly."""

    _net_class = VAENet

    def __init__(
        self,
        latent_dim=16,
        hidden_layer_sizes=(500, 500),
        likelihood="auto",
        beta=1.0,
        dropout=0.0,
        air_sigma=None,
        air_alpha=0.5,
        max_epochs=100,
        batch_size=100,
        lr=1e-3,
        optimizer="adam",
        callbacks=None,
        n_eval_samples=1,
        device="cpu",
        random_state=None,
        verbose=0,
        warm_start=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        teacher=None,
        n_teacher_samples=10,
    ):
        self.latent_dim = latent_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.likelihood = likelihood
        self.beta = beta
        self.dropout = dropout
        self.air_sigma = air_sigma
        self.air_alpha = air_alpha
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.callbacks = callbacks
        self.n_eval_samples = n_eval_samples
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.teacher = teacher
        self.n_teacher_samples = n_teacher_samples

    # -- validation ---------------------------------------------------------

    def _check_params(self):
        _check_int(self.latent_dim, "latent_dim", 1)
        sizes = check_layer_sizes(self.hidden_layer_sizes, "hidden_layer_sizes")
        _check_real(self.beta, "beta", low=0.0)
        _check_real(self.dropout, "dropout", low=0.0, high=1.0, high_open=True)
        if self.air_sigma is not None:
            _check_real(self.air_sigma, "air_sigma", low=0.0)
        _check_real(self.air_alpha, "air_alpha", low=0.0, high=1.0)
        _check_int(self.max_epochs, "max_epochs", 0)
        _check_int(self.batch_size, "batch_size", 1)
        _check_real(self.lr, "lr", low=0.0, low_open=True)
        _check_n_eval_samples(self.n_eval_samples)
        _check_int(self.verbose, "verbose", 0)
        _check_callbacks(self.callbacks)
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise TypeError(f"early_stopping must be True or False, got {self.early_stopping!r}")
        _check_real(self.validation_fraction, "validation_fraction", low=0.0, high=1.0, low_open=True,
                    high_open=True)
        _check_int(self.n_iter_no_change, "n_iter_no_change", 1)
        _check_real(self.tol, "tol", low=0.0)
        return sizes

    def _uses_schema(self):
        return isinstance(self.likelihood, dict) or (isinstance(self.likelihood, str) and self.likelihood == "auto")

    def _validate_X(self, X, reset, schema=None):
        if reset:
            # 'auto' on an all-0/1 array takes the plain Bernoulli path: no schema, no per-column work
            table = self._uses_schema() and (schema is not None or not is_binary_array(X))
        else:
            table = hasattr(self, "schema_")
        if table:
            return self._validate_table(X, reset, schema)
        X = validate_data(self, X, reset=reset, accept_sparse=("csr", "csc", "coo"), dtype="numeric",
                          ensure_all_finite=True)
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X holds non-numeric values (dtype {X.dtype}) but likelihood={self.likelihood!r} "
                             f"models numbers; use likelihood='auto' for tables with categorical columns")
        if reset:
            likelihood = get_likelihood("bernoulli" if self._uses_schema() else self.likelihood)
            self._input_dtype_ = X.dtype
        else:
            likelihood = self.likelihood_
        likelihood.check_support(X)
        if hasattr(X, "toarray"):
            X = X.toarray()
        if reset:
            likelihood = likelihood.fitted_to(X)
        # Kept in its validated numeric dtype: training and scoring each convert
        # (float32 / float64) once, without an intermediate copy of the data.
        return np.asarray(X), likelihood

    def _validate_table(self, X, reset, schema=None):
        """Validation of mixed-type tables: column kinds, codes, and support.

        ``schema``, with ``reset``, is used instead of one inferred from X.
        """
        # Feature count and names only; the schema converts the values. A DataFrame skips check_array,
        # which would cast its columns to one dtype (a bool column beside string categories fails).
        if hasattr(X, "toarray"):  # sparse input that is not all 0/1: the table path needs columns
            X = validate_data(self, X, reset=reset, accept_sparse=("csr", "csc", "coo"), dtype="numeric",
                              ensure_all_finite=True).toarray()
        if hasattr(X, "iloc"):
            if X.shape[0] < 1 or X.shape[1] < 1:
                raise ValueError(f"X must have at least one row and one column, got shape {X.shape}")
            validate_data(self, X, reset=reset, skip_check_array=True)
        else:
            validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False, ensure_min_features=1)
        if reset:
            self.schema_ = TableSchema.infer(X, self.likelihood) if schema is None else schema
        codes = self.schema_.encode(X)
        likelihood = self.schema_.likelihood() if reset else self.likelihood_
        likelihood.check_support(codes, column_names=self.schema_.column_names())
        return codes, likelihood.fitted_to(codes) if reset else likelihood

    def _to_output(self, x, cast=True):
        """Model-space rows as numpy, in the original column types when a schema is used."""
        x = x.double().cpu().numpy()
        if hasattr(self, "schema_"):
            return self.schema_.decode(x, cast=cast)
        if cast and self.likelihood_.name == "bernoulli":  # 0/1 values fit the training data's dtype
            return x.astype(getattr(self, "_input_dtype_", np.float64))  # absent in models saved by 0.2
        return x

    def _torch_device(self):
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {self.device!r}") from exc
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(f"device={self.device!r} was requested but torch sees no CUDA device")
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise ValueError(f"device={self.device!r}, but torch sees {torch.cuda.device_count()} CUDA device(s)")
        elif device.type != "cpu":
            # Scoring runs in float64, which e.g. MPS lacks; only CPU and CUDA are supported.
            raise ValueError(f"device must be 'cpu' or 'cuda[:index]', got {self.device!r}")
        return device

    def _optimizer_class(self):
        if isinstance(self.optimizer, str):
            try:
                return _OPTIMIZERS[self.optimizer.lower()]
            except KeyError:
                raise ValueError(f"optimizer must be one of {sorted(_OPTIMIZERS)} or a torch optimizer class, "
                                 f"got {self.optimizer!r}") from None
        if isinstance(self.optimizer, type) and issubclass(self.optimizer, torch.optim.Optimizer):
            return self.optimizer
        raise TypeError(f"optimizer must be a name or a torch.optim.Optimizer subclass, got {self.optimizer!r}")

    # -- the net ------------------------------------------------------------

    def _net_kwargs(self):
        """Extra keyword arguments of the net; subclasses extend this."""
        return {}

    def _net_callbacks(self):
        """The progress bar (``verbose=1``) and the user's callbacks, as (name, callback) pairs."""
        callbacks = [("progress_bar", EpochProgressBar())] if self.verbose == 1 else []
        for i, cb in enumerate(self.callbacks or ()):
            callbacks.append(cb if isinstance(cb, tuple) else (f"{type(cb).__name__}_{i}", cb))
        return callbacks

    def _build_net(self, n_features, likelihood, hidden):
        encoder = [n_features, *hidden, 2 * self.latent_dim]
        decoder = [self.latent_dim, *hidden[::-1], likelihood.n_params(n_features)]
        _check_network_size([encoder, decoder], f"latent_dim={self.latent_dim} and hidden_layer_sizes={hidden} "
                                                f"with {n_features} features")
        callbacks = self._net_callbacks()
        return self._net_class(
            module=VAEModule,
            module__n_features=n_features,
            module__n_params=likelihood.n_params(n_features),
            module__latent_dim=self.latent_dim,
            module__hidden_layer_sizes=hidden,
            module__dropout=self.dropout,
            module__preprocess=likelihood.encoder_preprocess(),
            criterion=ELBOLoss,
            criterion__likelihood=likelihood,
            criterion__beta=self.beta,
            criterion__air_sigma=self.air_sigma,
            criterion__air_alpha=self.air_alpha,
            optimizer=self._optimizer_class(),
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            callbacks=callbacks,
            device=str(self._torch_device()),
            verbose=int(self.verbose >= 2),
            **self._net_kwargs(),
        )

    @contextmanager
    def _own_rng(self):
        """Run training on the estimator's own torch RNG stream.

        The caller's global torch RNG state is saved and restored around the
        block; the estimator's stream continues across fit / partial_fit.
        """
        cuda = cuda_index(self._torch_device())
        with torch.random.fork_rng(devices=[] if cuda is None else [cuda]):
            state = getattr(self, "_rng_state_", None)
            if state is None:
                torch.manual_seed(seed_from(self.random_state))  # seeds the CPU and CUDA streams
            else:
                torch.set_rng_state(state["cpu"])
                if cuda is not None and state["cuda"] is not None:
                    torch.cuda.set_rng_state(state["cuda"], cuda)
            yield
            self._rng_state_ = {"cpu": torch.get_rng_state(),
                                "cuda": None if cuda is None else torch.cuda.get_rng_state(cuda)}

    def _train(self, X, epochs, holdout=True, schema=None):
        """Validate, (re)build the net when needed, and train ``epochs`` epochs.

        With ``early_stopping`` (and ``holdout``: not in ``partial_fit``) a
        fixed share of the rows is held out for :class:`ValidationStopping`,
        and the best epoch's weights are kept.
        """
        continuing = hasattr(self, "net_")
        X, likelihood = self._validate_X(X, reset=not continuing, schema=schema)
        stopper = None
        if holdout and self.early_stopping:
            X, X_valid = self._split_validation(X)
            stopper = ValidationStopping(X_valid, self.n_iter_no_change, self.tol).initialize()
        if not continuing:
            hidden = self._check_params()
            self._rng_state_ = None
            self.likelihood_ = likelihood
            self._n_features_out = self.latent_dim
            with self._own_rng(), _out_of_memory_as_value_error("the networks for these layer sizes"):
                self.net_ = self._build_net(X.shape[1], likelihood, hidden).initialize()
        X_tensor = torch.from_numpy(X.astype(np.float32)).to(self.net_.device)
        if stopper is not None:
            self.net_.callbacks_.append(("early_stopping", stopper))
        try:
            with self._own_rng(), _out_of_memory_as_value_error("the rows these parameters ask for in training"):
                self.net_.partial_fit(X_tensor, epochs=epochs)
            if stopper is not None:
                stopper.restore_best(self.net_)
                self.best_validation_score_ = stopper.best_score_
        except TrainingDiverged as exc:
            if not len(self.net_.history):
                self._reset()
                raise ValueError(f"training diverged: {exc}, before any epoch finished; the model is not "
                                 f"fitted. Lower lr, or scale the data (real columns far from unit scale "
                                 f"are a common cause)") from None
            warnings.warn(f"training stopped: {exc}; the weights after epoch {exc.epoch - 1} are kept. "
                          f"Lower lr to train further", ConvergenceWarning, stacklevel=3)
        finally:
            if stopper is not None and hasattr(self, "net_"):
                self.net_.callbacks_.remove(("early_stopping", stopper))
        self.history_ = self.net_.history
        return self

    def _split_validation(self, X):
        """(training rows, held-out rows): the same split for every fit of this estimator's data."""
        n_valid = int(math.ceil(self.validation_fraction * len(X)))
        if n_valid < 1 or len(X) - n_valid < 1:
            raise ValueError(f"validation_fraction={self.validation_fraction} leaves no rows to "
                             f"{'validate' if n_valid < 1 else 'train'} on with n_samples={len(X)}; "
                             f"early stopping needs at least 2 rows")
        if getattr(self, "_validation_split_", (None,))[0] != len(X):
            order = np.random.default_rng(seed_from(self.random_state)).permutation(len(X))
            self._validation_split_ = (len(X), np.sort(order[n_valid:]), np.sort(order[:n_valid]))
        _, train, valid = self._validation_split_
        return X[train], X[valid]

    # -- public API ---------------------------------------------------------

    def fit(self, X, y=None):
        """Fit the VAE to the rows of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training rows; with ``likelihood='bernoulli'`` every value is 0 or 1.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator. With ``warm_start=True`` a second call
            continues training from the current weights for ``max_epochs``.
        """
        if not (self.warm_start and hasattr(self, "net_")):
            self._reset()
        X, schema = self._training_rows(X)
        return self._train(X, self.max_epochs, schema=schema)

    def _training_rows(self, X):
        """The rows ``fit`` trains on, and the column schema to use (None: infer it as usual).

        Without a teacher, X itself. With one, ``n_teacher_samples * len(X)``
        rows drawn from it (the teacher cloned and fitted on X unless it is
        already fitted); the schema is inferred from the real X, whose column
        types the draws must fit.
        """
        if self.teacher is None:
            return X, None
        if not callable(getattr(self.teacher, "sample", None)):
            raise TypeError(f"teacher must be a density estimator with a sample method (e.g. GaussianMixture, "
                            f"KernelDensity or a fitted skvae model), got {type(self.teacher).__name__}")
        _check_real(self.n_teacher_samples, "n_teacher_samples", low=0.0, low_open=True)
        n_rows = _num_samples(X)
        n_draws = max(1, int(round(self.n_teacher_samples * n_rows)))
        if n_draws > _MAX_TEACHER_ROWS:
            raise ValueError(f"n_teacher_samples={self.n_teacher_samples} asks for {n_draws:,} rows, more than "
                             f"{_MAX_TEACHER_ROWS:,}")
        seed = np.random.SeedSequence(seed_from(self.random_state)).generate_state(2)
        teacher = self.teacher
        if not is_fitted(teacher):
            teacher = clone(teacher)
            if "random_state" in teacher.get_params() and teacher.get_params()["random_state"] is None:
                teacher.set_params(random_state=int(seed[0]))  # reproducible under this random_state
            teacher.fit(X)
        self.teacher_ = teacher
        draws = _draw(teacher, n_draws, int(seed[1]))
        table = self._uses_schema() and not is_binary_array(X)
        schema = TableSchema.infer(X, self.likelihood) if table else None
        if hasattr(X, "columns"):
            import pandas as pd

            draws = draws if hasattr(draws, "columns") else pd.DataFrame(np.asarray(draws), columns=X.columns)
        try:
            if table:
                schema.likelihood().check_support(schema.encode(draws), column_names=schema.column_names())
            elif self._uses_schema():
                if not is_binary_array(draws):
                    raise ValueError("X is 0/1, so the draws must be 0/1 too")
            else:
                get_likelihood(self.likelihood).check_support(np.asarray(draws))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the teacher's samples are not in the data's support ({exc}); a teacher must "
                             f"emit values of X's kind (0/1 rows for 0/1 data, integers in integer columns, "
                             f"known categories), e.g. another skvae model") from None
        return draws, schema

    def partial_fit(self, X, y=None):
        """Train for one epoch over X, initializing the model on the first call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        return self._train(X, 1, holdout=False)

    def _reset(self):
        for name in ("net_", "history_", "likelihood_", "schema_", "_input_dtype_", "_rng_state_", "teacher_",
                     "n_features_in_", "feature_names_in_", "best_validation_score_", "_validation_split_"):
            if hasattr(self, name):
                delattr(self, name)

    def _validated_for_scoring(self, X):
        check_is_fitted(self, "net_")
        return self._validate_X(X, reset=False)[0]

    def score_samples(self, X):
        """Per-row lower bound on log p(x) in nats.

        The ELBO with ``n_eval_samples=1`` (exact KL term, expected
        log-likelihood averaged over 8 reparameterized draws), else the IWAE
        bound with that many importance samples. The Monte-Carlo noise of each row is a fixed
        function of its values, so scores are deterministic and do not depend
        on how rows are batched or ordered.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X = self._validated_for_scoring(X)
        _check_n_eval_samples(self.n_eval_samples)  # may have been set after fit
        return self.net_.score_rows(X, self.n_eval_samples)

    def score(self, X, y=None):
        """Mean per-row log-likelihood bound of X in nats (higher is better).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        float
        """
        return float(np.mean(self.score_samples(X)))

    def bits_per_dim(self, X):
        """Mean negative log-likelihood bound of X in bits per dimension (lower is better).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        return -self.score(X) / (self.n_features_in_ * math.log(2))

    def elbo_components(self, X):
        """Per-row ELBO and its parts, in nats.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        Bunch
            ``elbo``, ``distortion`` (−E_q log p(x|z)) and ``rate``
            (KL(q(z|x) ‖ p(z))), each of shape (n_samples,), with
            ``elbo = -(distortion + rate)``.
        """
        X = self._validated_for_scoring(X)
        elbo, distortion, rate = self.net_.elbo_components(X)
        return Bunch(elbo=elbo, distortion=distortion, rate=rate)

    def transform(self, X):
        """Posterior means E_q[z | x].

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, latent_dim)
        """
        X = self._validated_for_scoring(X)
        with eval_mode(self.net_.module_), torch.no_grad():
            x = torch.from_numpy(np.array(X, dtype=np.float64)).to(self.net_.device)
            mu, _ = self.net_.module_.encoder(x)
        return mu.double().cpu().numpy()

    def inverse_transform(self, Z):
        """Decoder means E[x | z].

        Parameters
        ----------
        Z : array-like of shape (n_samples, latent_dim)

        Returns
        -------
        ndarray or DataFrame of shape (n_samples, n_features)
            In the original column types when fitted with a column schema
            (a DataFrame when fitted on one): numeric columns as float means,
            categorical columns as their most probable category.
        """
        check_is_fitted(self, "net_")
        Z = _as_latent(Z, self.latent_dim)
        with eval_mode(self.net_.module_), torch.no_grad():
            z = torch.as_tensor(Z, dtype=torch.float64, device=self.net_.device)
            mean = self.likelihood_.mean(self.net_.module_.decoder(z))
        return self._to_output(mean, cast=False)

    def impute(self, X, method="mean", n_draws=100, random_state=None):
        """Fill the missing cells of X (NaN, None, pandas NA) from the model; observed cells are kept.

        Each row's missing cells are drawn from, or averaged over, the model's
        conditional p(x_missing | x_observed), estimated by self-normalized
        importance sampling (Mattei & Frellsen, 2019): ``n_draws`` draws
        z_j ~ q(z | x_observed), weighted by p(x_observed, z_j) / q(z_j | x_observed),
        so that a draw which explains the observed cells badly counts little.
        The encoder reads each row's observed cells (and, for a model fitted on
        rows with missing cells, which cells are missing).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows of the kind the estimator was fitted on (a table: any column
            may have missing cells).
        method : {'mean', 'sample'}, default='mean'
            ``'mean'``: the conditional mean of real-valued columns and the
            most probable value of 0/1, integer and categorical columns under
            the weighted mixture of the draws' p(x | z_j) (deterministic: the
            draws use each row's fixed noise, as scoring does). ``'sample'``:
            one draw from that mixture (sampling importance resampling), for
            multiple imputation.
        n_draws : int, default=100
            Importance samples per row; 1 decodes a single draw of q(z | x).
        random_state : int, RandomState instance or None, default=None
            Seed of the draws of ``method='sample'``.

        Returns
        -------
        ndarray or DataFrame of shape (n_samples, n_features)
            X with its missing cells filled, in the original column types (a
            DataFrame keeps its index).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from skvae import VAEDensityEstimator
        >>> rng = np.random.RandomState(0)
        >>> a = rng.randn(200)
        >>> X = pd.DataFrame({"a": a, "b": 2 * a + 0.1 * rng.randn(200)})
        >>> X.loc[::7, "b"] = np.nan
        >>> vae = VAEDensityEstimator(latent_dim=1, hidden_layer_sizes=(16,), max_epochs=30,
        ...                           random_state=0).fit(X)
        >>> filled = vae.impute(X)
        >>> bool(filled["b"].notna().all()), bool((filled["a"] == X["a"]).all())
        (True, True)
        """
        if method not in ("mean", "sample"):
            raise ValueError(f"method must be 'mean' or 'sample', got {method!r}")
        _check_int(n_draws, "n_draws", 1)
        codes = np.array(self._validated_for_scoring(X), dtype=np.float64)
        missing = np.isnan(codes)
        net, likelihood = self.net_, self.likelihood_
        generator = torch.Generator(device=net.device).manual_seed(seed_from(random_state))
        filled = []
        with eval_mode(net.module_), torch.no_grad(), _out_of_memory_as_value_error(f"n_draws={n_draws}"):
            for x, eps in net._eval_chunks(codes, n_draws):
                if method == "sample":
                    eps = torch.randn(eps.shape, generator=generator, device=eps.device, dtype=eps.dtype)
                params, log_w = net.importance_draws(x, eps)
                weights = torch.softmax(log_w, dim=0)
                if method == "mean":
                    values = likelihood.weighted_mean(params, weights)
                else:
                    pick = torch.multinomial(weights.T, 1, generator=generator).squeeze(1)
                    values = likelihood.sample(params[pick, torch.arange(len(x), device=x.device)],
                                               generator=generator)
                filled.append(values.double().cpu().numpy())
        filled = np.concatenate(filled) if filled else np.empty_like(codes)
        if method == "mean" and hasattr(self, "schema_"):  # the most probable value of discrete columns
            discrete = [j for j, col in enumerate(self.schema_.columns) if col.kind in ("bernoulli", "integer")]
            filled[:, discrete] = np.rint(filled[:, discrete])
        out = self._to_output(torch.from_numpy(np.where(missing, filled, codes)))
        if hasattr(X, "index") and hasattr(out, "index"):
            out.index = X.index
        return out

    def sample(self, n_samples=1, random_state=None):
        """Draw rows from the model: z ~ N(0, I), then x ~ p(x | z).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seed of the draw. None uses fresh OS entropy; the global numpy and
            torch RNGs are never touched.

        Returns
        -------
        X : ndarray or DataFrame of shape (n_samples, n_features)
            In the original column types and categories when fitted with a
            column schema (a DataFrame when fitted on one); under a plain
            Bernoulli model, in the dtype of the training array (0/1 values);
            otherwise float64.
        """
        check_is_fitted(self, "net_")
        _check_int(n_samples, "n_samples", 1)
        seed = seed_from(random_state)
        generator = torch.Generator(device=self.net_.device).manual_seed(seed)
        module = self.net_.module_
        with eval_mode(module), torch.no_grad(), _out_of_memory_as_value_error(f"n_samples={n_samples} rows"):
            z = torch.randn((n_samples, module.latent_dim), generator=generator, device=self.net_.device,
                            dtype=torch.float64)
            x = self.likelihood_.sample(module.decoder(z), generator=generator)
        return self._to_output(x)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = self._uses_schema()  # missing cells of a table
        return tags


@contextmanager
def _out_of_memory_as_value_error(what):
    """torch refusing an absurd size or a float32-overflowing parameter becomes a ValueError."""
    try:
        yield
    except RuntimeError as exc:
        message = str(exc).splitlines()[0][:200]
        if "without overflow" in message:
            raise ValueError(f"a parameter is too large for float32 ({message})") from None
        if "allocate" not in message:
            raise
        raise ValueError(f"{what} do not fit in memory ({message})") from None


def _check_n_eval_samples(value):
    _check_int(value, "n_eval_samples", 1)
    if value > _MAX_EVAL_SAMPLES:
        raise ValueError(f"n_eval_samples must be <= {_MAX_EVAL_SAMPLES:,}, got {value!r}")


_MAX_EVAL_SAMPLES = 1 << 20  # importance samples per row; the bound's gain is long flat by then
_MAX_WEIGHTS = 2 ** 31  # beyond this a network is a typo, not a model: refuse it before torch allocates


def _check_network_size(layer_widths, description):
    """Refuse, naming ``description``, networks whose layers (lists of widths) hold more than _MAX_WEIGHTS."""
    n_weights = sum(a * b for widths in layer_widths for a, b in zip(widths, widths[1:]))
    if n_weights > _MAX_WEIGHTS:
        raise ValueError(f"{description} make a network of {n_weights:,} weights, more than {_MAX_WEIGHTS:,}")
_MAX_TEACHER_ROWS = 1 << 26


def _num_samples(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _draw(teacher, n_rows, seed):
    """``n_rows`` rows from a teacher's ``sample``, seeded when it takes a ``random_state``.

    scikit-learn's mixtures return ``(X, labels)``; only X is kept.
    """
    if "random_state" in inspect.signature(teacher.sample).parameters:
        draws = teacher.sample(n_rows, random_state=seed)
    else:
        draws = teacher.sample(n_rows)
    if isinstance(draws, tuple):
        draws = draws[0]
    if _num_samples(draws) != n_rows:
        raise ValueError(f"the teacher's sample({n_rows}) returned {_num_samples(draws)} rows")
    return draws


def _check_callbacks(callbacks):
    from skorch.callbacks import Callback

    for cb in callbacks or ():
        item = cb[1] if isinstance(cb, tuple) and len(cb) == 2 and isinstance(cb[0], str) else cb
        if not isinstance(item, Callback):
            raise TypeError(f"callbacks must be skorch Callback instances or (name, Callback) pairs, got {cb!r}")


def _as_latent(Z, latent_dim):
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] != latent_dim:
        raise ValueError(f"Z must have shape (n_samples, {latent_dim}), got {Z.shape}")
    if not np.isfinite(Z).all():
        raise ValueError("Z contains NaN or infinity")
    return Z
