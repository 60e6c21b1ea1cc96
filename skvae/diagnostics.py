"""Diagnostics of a fitted VAE (optimal inference, generalization gaps, rate and distortion) and of a data
split (does the test split come from the training distribution?).

The generalization gap of a VAE (train ELBO minus test ELBO) has two
sources: the decoder p(x|z) may fit the training rows better than new rows,
and the amortized encoder q(z|x) may infer good posteriors only for the rows
it was trained on. Refitting the encoder on the test rows with the decoder
frozen ("optimal amortized inference") separates the two. All ELBO values
come from :mod:`skvae.objectives` through the estimator's deterministic
scores, so repeated calls give the same numbers.
"""

import math

import numpy as np
import torch
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from ._rng import seed_from
from ._validation import _check_int, _check_real
from ._net import eval_mode
from ._row_noise import row_normal_noise
from .inference import refit_encoder
from .objectives import log_normal, log_standard_normal

__all__ = ["optimal_inference", "generalization_gaps", "rate_distortion", "split_mismatch"]

_METHODS = ("encoder", "per_row")
# Seed of the latent draws of the mutual-information estimate, distinct from
# the scoring noise (seed 0) and the refinement noise (seed 1).
_MI_SEED = 2


def _check_single_layer(estimator, what):
    """The refits below train or refine a single-layer posterior; a ladder's is not built."""
    if hasattr(getattr(estimator, "net_", None), "layer_components"):
        raise TypeError(f"{what} refits a single-layer encoder q(z|x); it is not built for "
                        f"{type(estimator).__name__}'s ladder posterior")


def _check_method(method):
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")


def optimal_inference(estimator, X, method="encoder", n_epochs=50, n_steps=50, lr=None,
                      step_size=0.05, batch_size=None, warm_start=True, random_state=None):
    """Inference fitted to the rows of X with the decoder held fixed.

    Two flavours of the "optimal inference" used to split a VAE's
    generalization gap:

    - ``method='encoder'`` (optimal *amortized* inference): a deep copy of
      the estimator whose encoder was trained on ``X`` for ``n_epochs``
      epochs while the decoder is frozen (see
      :func:`skvae.inference.refit_encoder`). The copy's decoder is
      bit-identical to the original's and the original is not modified.
    - ``method='per_row'`` (non-amortized inference): each row's Gaussian
      posterior parameters, started at the encoder's output, take
      ``n_steps`` Adam steps on that row's own ELBO
      (:func:`skvae.inference.refine_posterior`); the refined per-row ELBOs
      are returned.

    Parameters
    ----------
    estimator : fitted skvae estimator
    X : array-like of shape (n_samples, n_features)
    method : {'encoder', 'per_row'}, default='encoder'
    n_epochs : int, default=50
        Epochs of encoder training (``'encoder'`` only).
    n_steps : int, default=50
        Gradient steps per row (``'per_row'`` only); 0 returns the encoder's
        own ELBOs.
    lr : float, optional
        Encoder learning rate (``'encoder'``); defaults to the estimator's.
    step_size : float, default=0.05
        Adam step size on each row's mean and log-variance (``'per_row'``).
    batch_size : int, optional
        Encoder training batch size (``'encoder'``); defaults to the estimator's.
    warm_start : bool, default=True
        ``'encoder'``: start from the fitted encoder rather than from fresh weights.
    random_state : int, RandomState instance or None, default=None
        Seeds the encoder refit. The per-row method is deterministic: its
        noise is a fixed function of each row's values.

    Returns
    -------
    estimator or Bunch
        ``'encoder'``: the refitted copy (score it like any estimator).
        ``'per_row'``: a Bunch with per-row ``elbo``, ``distortion`` and
        ``rate`` (nats, shape (n_samples,)), scored like
        ``estimator.elbo_components`` (same fixed per-row noise), and the refined ``mu`` and
        ``logvar`` (shape (n_samples, latent_dim)).

    See Also
    --------
    generalization_gaps : uses this function on the test (and train) rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEDensityEstimator
    >>> from skvae.diagnostics import optimal_inference
    >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(200, 8))
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=5,
    ...                           random_state=0).fit(X[:100])
    >>> refit = optimal_inference(vae, X[100:], n_epochs=5, random_state=0)
    >>> refit.score(X[100:]) >= vae.score(X[100:]) - 1.0
    True
    >>> optimal_inference(vae, X[100:], method="per_row", n_steps=10).elbo.shape
    (100,)
    """
    _check_method(method)
    check_is_fitted(estimator, "net_")
    _check_single_layer(estimator, "optimal_inference")
    if method == "encoder":
        return refit_encoder(estimator, X, n_epochs=n_epochs, lr=lr, batch_size=batch_size,
                             warm_start=warm_start, random_state=random_state)
    _check_int(n_steps, "n_steps", 0)
    _check_real(step_size, "step_size", low=0.0, low_open=True)
    return _per_row_inference(estimator, estimator._validated_for_scoring(X), n_steps, step_size)


def _per_row_inference(estimator, X, n_steps, step_size):
    """Per-row refined posteriors and their ELBO pieces (X already validated).

    Goes through the estimator's own scoring path, so ``n_steps=0`` gives
    exactly ``estimator.elbo_components(X)``.
    """
    elbo, distortion, rate, mu, logvar = estimator.net_.elbo_components(
        X, refine_steps=n_steps, refine_lr=step_size, return_posterior=True)
    return Bunch(elbo=elbo, distortion=distortion, rate=rate, mu=mu, logvar=logvar)


def _mean_elbo(estimator, X, method, n_steps, step_size):
    """Mean ELBO of validated rows X: the encoder's, or after per-row refinement."""
    if method == "per_row":
        return float(np.mean(_per_row_inference(estimator, X, n_steps, step_size).elbo))
    return float(np.mean(estimator.net_.elbo_components(X)[0]))


def generalization_gaps(estimator, X_train, X_test, method="encoder", refit_train=False, n_epochs=50,
                        n_steps=50, lr=None, step_size=0.05, batch_size=None, warm_start=True,
                        random_state=None):
    """Split the ELBO generalization gap into a decoder part and an encoder part.

    With phi the fitted encoder, theta the decoder and phi*_S an encoder
    refit on the rows S with theta frozen (:func:`optimal_inference`),
    mean ELBOs over rows give (Zhang, Hayes & Barber, "Generalization Gap in
    Amortized Inference", NeurIPS 2022, §2)::

        EGG  = ELBO(train; theta, phi)  - ELBO(test; theta, phi)         # what one observes
        AIGG = ELBO(test; theta, phi*_test) - ELBO(test; theta, phi)     # encoder part
        GMGG = ELBO(train; theta, phi*_train) - ELBO(test; theta, phi*_test)  # decoder part

    **Which refit is used where.** On the test rows, phi*_test is always a
    refit: the encoder trained on ``X_test`` (``method='encoder'``) or
    per-row refinement of each test row (``method='per_row'``). On the
    training rows, the default ``refit_train=False`` follows the paper: the
    encoder was trained on exactly these rows to maximize this ELBO with this
    decoder, so it is taken as their optimal amortized inference,
    phi*_train = phi. Then ``EGG = GMGG + AIGG`` holds exactly (up to float
    rounding), by construction. With ``refit_train=True`` the training rows
    get the same refit as the test rows, and the identity becomes
    ``EGG = GMGG + AIGG - train_refit_gain`` where
    ``train_refit_gain = ELBO(train; theta, phi*_train) - ELBO(train; theta, phi)``
    is the training set's own amortization slack (the part of the
    train-side optimality assumption that does not hold; it is small for a
    well-trained amortized encoder and large for per-row refinement).

    Positive gaps mean the first set scores higher. All ELBOs are the
    deterministic single-sample scores of ``estimator.elbo_components``
    (beta = 1), never the IWAE bound.

    Parameters
    ----------
    estimator : fitted skvae estimator
    X_train, X_test : array-like of shape (n_rows, n_features)
        The rows the estimator was trained on, and held-out rows.
    method : {'encoder', 'per_row'}, default='encoder'
        Which optimal inference to use (see :func:`optimal_inference`).
    refit_train : bool, default=False
        Also refit on the training rows (see above).
    n_epochs, n_steps, lr, step_size, batch_size, warm_start, random_state
        Passed to :func:`optimal_inference`.

    Returns
    -------
    Bunch
        ``egg``, ``aigg``, ``gmgg`` in nats per row and ``egg_bpd``,
        ``aigg_bpd``, ``gmgg_bpd`` in bits per dimension (nats divided by
        ``n_features * ln 2``); the mean ELBOs ``train_elbo``, ``test_elbo``,
        ``train_elbo_optimal``, ``test_elbo_optimal`` (nats);
        ``train_refit_gain`` (nats, 0.0 when ``refit_train=False``);
        ``method`` and ``refit_train``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEDensityEstimator
    >>> from skvae.diagnostics import generalization_gaps
    >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(200, 8))
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=5,
    ...                           random_state=0).fit(X[:100])
    >>> g = generalization_gaps(vae, X[:100], X[100:], method="per_row", n_steps=10)
    >>> bool(abs(g.egg - (g.gmgg + g.aigg)) < 1e-9)
    True
    """
    _check_method(method)
    check_is_fitted(estimator, "net_")
    _check_single_layer(estimator, "generalization_gaps")
    if not isinstance(refit_train, (bool, np.bool_)):
        raise TypeError(f"refit_train must be a bool, got {refit_train!r}")
    if method == "per_row":
        _check_int(n_steps, "n_steps", 0)
        _check_real(step_size, "step_size", low=0.0, low_open=True)
    X_train = estimator._validated_for_scoring(X_train)
    X_test = estimator._validated_for_scoring(X_test)

    train_elbo = _mean_elbo(estimator, X_train, "encoder", 0, step_size)
    test_elbo = _mean_elbo(estimator, X_test, "encoder", 0, step_size)
    # One seed stream for the refits; None draws OS entropy (no global RNG is used).
    rng = np.random.RandomState(seed_from(random_state))

    def optimal_mean(X):
        if method == "per_row":
            return _mean_elbo(estimator, X, "per_row", n_steps, step_size)
        refit = refit_encoder(estimator, X, n_epochs=n_epochs, lr=lr, batch_size=batch_size,
                              warm_start=warm_start, random_state=rng)
        return _mean_elbo(refit, X, "encoder", 0, step_size)

    test_optimal = optimal_mean(X_test)
    train_optimal = optimal_mean(X_train) if refit_train else train_elbo

    egg = train_elbo - test_elbo
    aigg = test_optimal - test_elbo
    gmgg = train_optimal - test_optimal
    to_bpd = 1.0 / (X_test.shape[1] * math.log(2))
    return Bunch(
        egg=egg, aigg=aigg, gmgg=gmgg,
        egg_bpd=egg * to_bpd, aigg_bpd=aigg * to_bpd, gmgg_bpd=gmgg * to_bpd,
        train_elbo=train_elbo, test_elbo=test_elbo,
        train_elbo_optimal=train_optimal, test_elbo_optimal=test_optimal,
        train_refit_gain=train_optimal - train_elbo,
        method=method, refit_train=bool(refit_train),
    )


def rate_distortion(estimator, X, n_samples=1, max_rows=2000, random_state=None):
    """Per-row rate and distortion, and the mutual information I(X; Z) of the encoder.

    The rate is KL(q(z|x) || p(z)) (closed form) and the distortion
    -E_q log p(x|z) (one sample with the row's fixed noise): exactly the
    pieces of ``estimator.elbo_components``, so ``elbo = -(distortion + rate)``.

    The mutual information between a row drawn uniformly from ``X`` and its
    code z ~ q(z|x) uses the **mixture (minibatch) estimator**: with the
    aggregate posterior q(z) = (1/N) sum_j q(z|x_j) taken exactly over the
    N rows used,

        I(X; Z) = E_i E_{z ~ q(z|x_i)} [log q(z|x_i) - log q(z)],

    estimated with ``n_samples`` reparameterized draws per row (fixed by each
    row's values). It lies in [0, log N] up to Monte-Carlo error (log N is
    reached when the posteriors do not overlap), so it saturates for small N.
    The same draws give ``marginal_kl``, an estimate of KL(q(z) || p(z)),
    and ``mutual_information + marginal_kl`` is the Monte-Carlo estimate of
    the mean rate (the decomposition rate = I + KL(q(z) || p(z))).

    Parameters
    ----------
    estimator : fitted skvae estimator
    X : array-like of shape (n_rows, n_features)
    n_samples : int, default=1
        Draws per row for the mutual-information estimate.
    max_rows : int or None, default=2000
        The estimate costs O(N^2); when X has more rows, a random subset of
        ``max_rows`` rows is used for it (rate and distortion always use all rows).
    random_state : int, RandomState instance or None, default=None
        Picks that subset.

    Returns
    -------
    Bunch
        ``rate``, ``distortion``, ``elbo`` (per row, nats); for a
        :class:`~skvae.HierarchicalVAE` also ``rate_1`` ... ``rate_L`` and
        ``rates`` (n_rows, L), the rate of each layer (as its
        ``elbo_components``), with I(X; Z) over the joint latents; ``mutual_information``,
        ``marginal_kl`` and ``mi_upper_bound`` (= log N) in nats;
        ``mi_n_rows`` (N) and ``mi_estimator`` (its name).

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEDensityEstimator
    >>> from skvae.diagnostics import rate_distortion
    >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(200, 8))
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=5,
    ...                           random_state=0).fit(X)
    >>> rd = rate_distortion(vae, X)
    >>> rd.rate.shape, bool(0 <= rd.mutual_information <= rd.mi_upper_bound + 1e-9)
    ((200,), True)
    """
    check_is_fitted(estimator, "net_")
    _check_int(n_samples, "n_samples", 1)
    if max_rows is not None:
        _check_int(max_rows, "max_rows", 1)
    X = estimator._validated_for_scoring(X)
    net = estimator.net_
    layered = hasattr(net, "layer_components")  # a HierarchicalVAE: the rate of each layer too
    if layered:
        elbo, distortion, rates = net.layer_components(X)
        rate = rates.sum(-1)
    else:
        elbo, distortion, rate = net.elbo_components(X)

    rows = X
    if max_rows is not None and len(X) > max_rows:
        rng = np.random.default_rng(seed_from(random_state))
        index = np.sort(rng.choice(len(X), max_rows, replace=False))
        rows = X[index]
    module = net.module_
    with eval_mode(module), torch.no_grad():
        dtype = next(module.parameters()).dtype
        x = torch.as_tensor(rows, dtype=dtype, device=net.device)
        eps = torch.as_tensor(row_normal_noise(rows, n_samples, module.latent_dim, seed=_MI_SEED),
                              dtype=dtype, device=net.device)
        if layered:
            mi, marginal_kl = net.mixture_information(x, eps)
        else:
            mu, logvar = module.encoder(x)
            mi, marginal_kl = _mixture_information(mu, logvar, eps)
    extra = {}
    if layered:
        extra = {"rates": rates, **{f"rate_{level + 1}": rates[:, level] for level in range(rates.shape[1])}}
    return Bunch(
        rate=rate, distortion=distortion, elbo=elbo, **extra,
        mutual_information=mi, marginal_kl=marginal_kl,
        mi_upper_bound=math.log(len(rows)), mi_n_rows=len(rows),
        mi_estimator="mixture: mean over rows i and z ~ q(z|x_i) of "
                     "log q(z|x_i) - log (1/N) sum_j q(z|x_j)",
    )


def _mixture_information(mu, logvar, eps, chunk=256):
    """I(X;Z) and KL(q(z)||p(z)) under the mixture q(z) = mean_j N(mu_j, exp(logvar_j)).

    ``eps`` has shape (n_samples, N, latent_dim); returns two floats in nats.
    """
    n_rows = mu.shape[0]
    log_n = math.log(n_rows)
    z_all = mu + torch.exp(0.5 * logvar) * eps  # (S, N, L)
    log_own = log_normal(z_all, mu, logvar)  # (S, N)
    log_prior = log_standard_normal(z_all)  # (S, N)
    log_aggregate = torch.empty_like(log_own)
    for start in range(0, n_rows, chunk):
        z = z_all[:, start:start + chunk, None, :]  # (S, c, 1, L)
        log_q = log_normal(z, mu, logvar)  # (S, c, N): every draw under every row's posterior
        log_aggregate[:, start:start + chunk] = torch.logsumexp(log_q, dim=-1) - log_n
    mi = float((log_own - log_aggregate).mean())
    marginal_kl = float((log_aggregate - log_prior).mean())
    return mi, marginal_kl



def split_mismatch(X_train, X_test, classifier=None, n_splits=5, random_state=None):
    """Classifier two-sample test: can a classifier tell the test rows from the training rows?

    A test split drawn from another distribution than the training split
    makes every generative model look over-fitted (the "benchmarking
    lesson" of Xiao's talk); this checks the split before blaming the model.
    Every row gets a held-out score from ``n_splits``-fold cross-fitting of
    ``classifier`` on the label "is a test row"; the statistic is the area
    under the ROC curve of those scores (0.5 when the splits are
    exchangeable), and the p-value is the one-sided Mann-Whitney U test of
    test-row scores above training-row scores.

    Parameters
    ----------
    X_train, X_test : array-like of shape (n_train, n_features), (n_test, n_features)
        Numeric rows of the two splits.
    classifier : classifier with ``predict_proba``, default=None
        Cloned for each fold; None uses ``LogisticRegression(max_iter=1000)``.
    n_splits : int, default=5
        Folds of the cross-fitting (at least 2).
    random_state : int or None, default=None
        Seed of the fold assignment.

    Returns
    -------
    result : Bunch
        ``statistic`` (AUC), ``p_value``, ``n_train``, ``n_test``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.diagnostics import split_mismatch
    >>> rng = np.random.RandomState(0)
    >>> same = split_mismatch(rng.rand(300, 5) < 0.3, rng.rand(100, 5) < 0.3, random_state=0)
    >>> shifted = split_mismatch(rng.rand(300, 5) < 0.3, rng.rand(100, 5) < 0.7, random_state=0)
    >>> bool(same.p_value > 0.01), bool(shifted.p_value < 1e-6)
    (True, True)
    """
    from scipy.stats import mannwhitneyu
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.utils import check_array

    X_train = check_array(X_train, dtype=np.float64, input_name="X_train")
    X_test = check_array(X_test, dtype=np.float64, input_name="X_test")
    if X_train.shape[1] != X_test.shape[1]:
        raise ValueError(f"X_train has {X_train.shape[1]} features and X_test {X_test.shape[1]}; they must match")
    _check_int(n_splits, "n_splits", 2)
    if min(len(X_train), len(X_test)) < n_splits:
        raise ValueError(f"each split needs at least n_splits={n_splits} rows, got {len(X_train)} training and "
                         f"{len(X_test)} test rows")
    if classifier is None:
        classifier = LogisticRegression(max_iter=1000)
    elif not hasattr(classifier, "predict_proba"):
        raise TypeError(f"classifier must have predict_proba, got {type(classifier).__name__}")
    X = np.vstack([X_train, X_test])
    is_test = np.r_[np.zeros(len(X_train), dtype=int), np.ones(len(X_test), dtype=int)]
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed_from(random_state))
    score = cross_val_predict(clone(classifier), X, is_test, cv=folds, method="predict_proba")[:, 1]
    p_value = mannwhitneyu(score[is_test == 1], score[is_test == 0], alternative="greater").pvalue
    return Bunch(statistic=float(roc_auc_score(is_test, score)), p_value=float(p_value),
                 n_train=len(X_train), n_test=len(X_test))
