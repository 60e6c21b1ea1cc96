"""VAEDensityEstimator: the plain ELBO with the classic regularizers."""

from ._base import BaseVAE

__all__ = ["VAEDensityEstimator"]


class VAEDensityEstimator(BaseVAE):
    """Variational auto-encoder used as a density estimator.

    Trains an MLP encoder q(z|x) and decoder p(x|z) with a standard normal
    prior by maximizing the evidence lower bound (ELBO). Optional baselines
    against overfitting: dropout in every hidden layer, and amortized
    inference regularization (AIR) by denoising.

    Parameters
    ----------
    latent_dim : int, default=16
        Dimension of the latent code z.
    hidden_layer_sizes : tuple of int, default=(500, 500)
        Hidden widths of the encoder; the decoder uses them in reverse.
    likelihood : {'auto', 'bernoulli', 'gaussian'}, dict or Likelihood, default='auto'
        Observation model p(x|z). ``'auto'`` uses the plain Bernoulli model
        (the fast path) when X is an array or sparse matrix whose every
        value is 0 or 1, and otherwise picks one model per column by one
        rule for arrays and DataFrames alike: bool and 0/1 columns
        Bernoulli, other integer-typed columns a discretized logistic,
        other float columns Gaussian (standardized inside the model),
        category, string and mixed columns categorical with a one-hot
        encoder input; an object column counts as the type of the values it
        holds. A Gaussian column is a mixture of 4 Gaussians given z
        (``skvae.likelihoods.GAUSSIAN_COMPONENTS``), for every table alike,
        so that it can follow a column that is multimodal, zero-inflated or
        takes few values; ``'gaussian:K'`` (as a dict key, or as the whole
        ``likelihood``) asks for K components, ``'gaussian:1'`` for the
        single Gaussian per column (the default of skvae before the
        mixtures). A dict such as ``{'categorical': ['color'], 'integer':
        [3]}`` fixes the kind of the columns it names and infers the rest;
        the result is kept in ``schema_``. ``'bernoulli'`` needs 0/1 data,
        ``'gaussian'`` models every column as real (4 components).
    beta : float, default=1.0
        Weight of the KL (rate) term during training; scores always use 1.
    dropout : float, default=0.0
        Dropout probability after each hidden layer (training only).
    air_sigma : float or None, default=None
        AIR: standard deviation of Gaussian noise added to the encoder's
        input; the decoder still reconstructs the clean row.
    air_alpha : float, default=0.5
        AIR: weight of the noisy-input ELBO in the loss (the clean ELBO gets
        ``1 - air_alpha``).
    max_epochs : int, default=100
        Passes over the data in ``fit``.
    batch_size : int, default=100
    lr : float, default=1e-3
        Learning rate.
    optimizer : str or torch optimizer class, default='adam'
        ``'adam'``, ``'adamw'``, ``'sgd'``, ``'rmsprop'`` or a class.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Added to the training loop, e.g. :class:`~skvae.ELBOMonitor`.
    n_eval_samples : int, default=1
        1 scores with the ELBO; k > 1 with the IWAE bound of k importance samples.
    device : str, default='cpu'
        Torch device to train and score on.
    random_state : int, RandomState instance or None, default=None
        Seeds initialization, shuffling and the training noise. The caller's
        global RNG state is left untouched.
    verbose : int, default=0
        1 shows a progress bar over epochs, 2 prints a table per epoch.
    warm_start : bool, default=False
        When True, a second ``fit`` continues from the fitted weights.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows of ``fit`` (a split
        seeded by ``random_state``), record their mean ELBO as
        ``valid_elbo`` after each epoch, stop once ``n_iter_no_change``
        epochs in a row fail to beat the best by more than ``tol`` nats per
        row, and keep the best epoch's weights. ``partial_fit`` trains
        on every row.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained net (``net_.module_`` is the torch module).
    history_ : skorch.History
        Per-epoch ``train_loss`` (mean negative training objective), ``dur``
        and the scores of any :class:`~skvae.ELBOMonitor`.
    likelihood_ : Likelihood
        The observation model used.
    schema_ : TableSchema
        Only with ``likelihood='auto'`` or a dict: each column's kind,
        categories and integer range (``schema_.spec`` maps kinds to columns).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when fitted on a DataFrame with string column names.
    best_validation_score_ : float
        With ``early_stopping``: the best held-out mean ELBO (nats per row).

    See Also
    --------
    skvae.WeightedSelfAugmentation, skvae.ReverseHalfAsleep

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEDensityEstimator
    >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(300, 10))
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(32,),
    ...                           max_epochs=5, random_state=0).fit(X)
    >>> vae.score_samples(X[:3]).shape
    (3,)
    >>> vae.transform(X[:3]).shape
    (3, 2)
    >>> vae.sample(4, random_state=0).shape
    (4, 10)
    """
