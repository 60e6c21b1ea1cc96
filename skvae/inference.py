"""Posterior refinement beyond the amortized encoder.

The encoder's q(z|x) is a compromise over all rows; per-row optimization of
the posterior parameters closes part of the amortization gap. The result is a
deterministic function of (model, row), so the bits-back coder can repeat it
exactly on the decoding side.
"""

import copy

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._rng import cuda_index, seed_from
from ._row_noise import row_normal_noise
from ._validation import _check_int, _check_real
from .objectives import negative_elbo_loss, posterior_elbo_terms

__all__ = ["refine_posterior", "refit_encoder"]


def refine_posterior(module, likelihood, x, n_steps, lr=0.05):
    """Improve each row's Gaussian posterior by ``n_steps`` Adam steps on its ELBO.

    Starts from the encoder's (mu, logvar). Each step uses one reparameterized
    sample whose noise is fixed by the row's values and the step number, and
    the loss is the SUM over rows, so every row's update depends on that row
    alone. The module's own parameters and gradients are left untouched.

    Parameters
    ----------
    module : VAEModule
    likelihood : Likelihood
    x : Tensor of shape (n, n_features)
    n_steps : int
        Number of gradient steps (0 returns the encoder's output).
    lr : float, default=0.05
        Adam step size on mu and logvar.

    Returns
    -------
    mu, logvar : Tensors of shape (n, latent_dim), detached

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skvae import VAEDensityEstimator
    >>> from skvae.inference import refine_posterior
    >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(100, 6))
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=2,
    ...                           random_state=0).fit(X)
    >>> x = torch.as_tensor(X[:4], dtype=torch.float32)
    >>> mu, logvar = refine_posterior(vae.net_.module_, vae.likelihood_, x, n_steps=3)
    >>> tuple(mu.shape)
    (4, 2)
    """
    with torch.no_grad():
        mu, logvar = module.encoder(x)
    if n_steps == 0:
        return mu, logvar
    noise = torch.as_tensor(row_normal_noise(x.detach().cpu().numpy(), n_steps, mu.shape[-1], seed=1),
                            device=x.device)
    mu = mu.clone().requires_grad_(True)
    logvar = logvar.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([mu, logvar], lr=lr)
    with torch.enable_grad():
        for step in range(n_steps):
            elbo, _, _ = posterior_elbo_terms(module.decoder, likelihood, x, mu, logvar, noise[step])
            loss = -elbo.sum()
            mu.grad, logvar.grad = torch.autograd.grad(loss, [mu, logvar])
            optimizer.step()
    return mu.detach(), logvar.detach()


def refit_encoder(estimator, X, n_epochs=50, lr=None, batch_size=None, warm_start=True,
                  random_state=None):
    """A copy of a fitted estimator whose encoder was trained on X with the decoder frozen.

    The copy's encoder maximizes the mean ELBO (beta = 1, the bound that
    ``score`` reports) of the rows of ``X`` by mini-batch gradient ascent;
    only encoder parameters are in the optimizer and the decoder's gradients
    are switched off, so the decoder stays bit-identical. The whole module is
    in eval mode (dropout off) while refitting, because the target is the
    best encoder for the deterministic scores, not a regularized one. The
    original estimator is not modified.

    Parameters
    ----------
    estimator : fitted skvae estimator
    X : array-like of shape (n_samples, n_features)
        Rows the encoder is fitted to (e.g. the test set, for the "optimal
        amortized inference" of the generalization-gap analysis).
    n_epochs : int, default=50
        Passes over ``X``.
    lr : float, optional
        Step size; defaults to the estimator's ``lr``. The optimizer class is
        the estimator's.
    batch_size : int, optional
        Defaults to the estimator's ``batch_size``.
    warm_start : bool, default=True
        Start from the fitted encoder (True) or from freshly initialized
        encoder weights (False).
    random_state : int, RandomState instance or None, default=None
        Seeds shuffling, re-initialization and the ELBO's noise. The global
        torch RNG state of the caller is restored afterwards.

    Returns
    -------
    refit : estimator
        A deep copy of ``estimator`` with the new encoder. Its
        ``encoder_refit_loss_`` attribute holds the mean negative ELBO of each
        refit epoch.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEDensityEstimator
    >>> from skvae.inference import refit_encoder
    >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(200, 8))
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=3,
    ...                           random_state=0).fit(X[:100])
    >>> refit = refit_encoder(vae, X[100:], n_epochs=5, random_state=0)
    >>> refit is vae, refit.encoder_refit_loss_.shape
    (False, (5,))
    """
    from ._net import TensorBatches, dropout_off  # here: _net imports this module

    check_is_fitted(estimator, "net_")
    _check_int(n_epochs, "n_epochs", 0)
    lr = estimator.lr if lr is None else lr
    _check_real(lr, "lr", low=0.0, low_open=True)
    batch_size = estimator.batch_size if batch_size is None else batch_size
    _check_int(batch_size, "batch_size", 1)
    X = estimator._validated_for_scoring(X)

    refit = copy.deepcopy(estimator)
    net = refit.net_
    module = net.module_
    encoder, decoder = module.encoder, module.decoder
    dtype = next(module.parameters()).dtype
    x_all = torch.as_tensor(X, dtype=dtype, device=net.device)
    decoder_flags = [p.requires_grad for p in decoder.parameters()]
    cuda = cuda_index(torch.device(net.device))
    losses = []
    with torch.random.fork_rng(devices=[] if cuda is None else [cuda]), dropout_off(module):
        torch.manual_seed(seed_from(random_state))
        if not warm_start:
            for layer in encoder.modules():
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
        optimizer = estimator._optimizer_class()(encoder.parameters(), lr=lr)
        decoder.requires_grad_(False)
        try:
            for _ in range(n_epochs):
                total = 0.0
                for batch in TensorBatches(x_all, batch_size, shuffle=True):
                    optimizer.zero_grad(set_to_none=True)
                    loss = negative_elbo_loss(module, net.likelihood, batch)
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(batch)
                losses.append(total / len(x_all))
        finally:
            for param, flag in zip(decoder.parameters(), decoder_flags):
                param.requires_grad_(flag)
    refit.encoder_refit_loss_ = np.asarray(losses, dtype=np.float64)
    return refit
