"""Posterior refinement beyond the amortized encoder.

The encoder's q(z|x) is a compromise over all rows; per-row optimization of
the posterior parameters closes part of the amortization gap. The result is a
deterministic function of (model, row), so the bits-back coder can repeat it
exactly on the decoding side.
"""

import torch

from ._row_noise import row_normal_noise
from .objectives import posterior_elbo_terms

__all__ = ["refine_posterior"]


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
