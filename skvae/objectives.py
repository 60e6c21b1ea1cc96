"""Training and evaluation objectives as pure functions on tensors.

Every estimator, diagnostic and the coder compute the ELBO through
:func:`elbo_terms`; nothing else in the library re-derives it.
All functions return per-row values (shape ``(n,)``) unless named ``*_loss``.
"""

import math

import torch

__all__ = [
    "gaussian_kl",
    "log_standard_normal",
    "log_normal",
    "elbo_terms",
    "posterior_elbo_terms",
    "iwae_bound",
    "negative_elbo_loss",
    "air_loss",
    "mixture_encoder_loss",
]

_LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu, logvar):
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per row, in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def log_standard_normal(z):
    """log N(z; 0, I) summed over the last axis."""
    return -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)


def log_normal(z, mu, logvar):
    """log N(z; mu, diag exp(logvar)) summed over the last axis."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)


def elbo_terms(module, likelihood, x, eps=None, beta=1.0, encoder_noise=0.0):
    """Single-sample ELBO of each row and its two parts.

    ELBO(x) = E_q log p(x|z) - beta * KL(q(z|x) || p(z)), with the expectation
    estimated by one reparameterized sample and the KL in closed form.

    Parameters
    ----------
    module : VAEModule
    likelihood : Likelihood
    x : Tensor of shape (n, n_features)
        Rows whose likelihood is evaluated (the decoder's target).
    eps : Tensor of shape (n, latent_dim), optional
        Standard normal noise; drawn from the global torch RNG if omitted.
    beta : float, default=1.0
        Weight of the rate term (1 gives a bound on log p(x)).
    encoder_noise : float, default=0.0
        Standard deviation of Gaussian noise added to the encoder's input
        (AIR); the decoder still scores the clean ``x``.

    Returns
    -------
    elbo, distortion, rate : Tensors of shape (n,)
        ``distortion = -log p(x|z)`` and ``rate = KL(q(z|x) || p(z))``;
        ``elbo = -distortion - beta * rate``.
    """
    mu, logvar = module.encoder(x, noise_std=encoder_noise)
    return posterior_elbo_terms(module.decoder, likelihood, x, mu, logvar, eps, beta)


def posterior_elbo_terms(decoder, likelihood, x, mu, logvar, eps=None, beta=1.0):
    """The ELBO terms of :func:`elbo_terms` for given posterior parameters.

    Used where q(z|x) does not come from the encoder (per-row refinement).
    """
    if eps is None:
        eps = torch.randn_like(mu)
    z = mu + torch.exp(0.5 * logvar) * eps
    distortion = -likelihood.log_prob(decoder(z), x)
    rate = gaussian_kl(mu, logvar)
    return -distortion - beta * rate, distortion, rate


def iwae_bound(module, likelihood, x, eps):
    """Importance-weighted bound log (1/k) sum_j p(x, z_j) / q(z_j | x) per row.

    Parameters
    ----------
    eps : Tensor of shape (k, n, latent_dim)
        Standard normal noise for the k importance samples of each row.
    """
    mu, logvar = module.encoder(x)
    z = mu + torch.exp(0.5 * logvar) * eps  # (k, n, L)
    log_px_z = likelihood.log_prob(module.decoder(z), x)
    log_w = log_px_z + log_standard_normal(z) - log_normal(z, mu, logvar)
    return torch.logsumexp(log_w, dim=0) - math.log(eps.shape[0])


def negative_elbo_loss(module, likelihood, x, beta=1.0):
    """Mean negative ELBO over the rows of ``x`` (the plain VAE loss)."""
    elbo, _, _ = elbo_terms(module, likelihood, x, beta=beta)
    return -elbo.mean()


def air_loss(module, likelihood, x, sigma, alpha=0.5, beta=1.0):
    """Amortized inference regularization by denoising.

    The loss mixes the clean negative ELBO with weight ``1 - alpha`` and the
    negative ELBO in which the encoder sees ``x + sigma * noise`` while the
    decoder still reconstructs the clean ``x``, with weight ``alpha``.
    """
    clean, _, _ = elbo_terms(module, likelihood, x, beta=beta)
    noisy, _, _ = elbo_terms(module, likelihood, x, beta=beta, encoder_noise=sigma)
    return -((1.0 - alpha) * clean.mean() + alpha * noisy.mean())


def mixture_encoder_loss(real_loss, model_neg_elbo, alpha):
    """Encoder loss of reverse half-asleep: the negative ELBO under a mixture.

    The mixture is m(x) = alpha * p_model(x) + (1 - alpha) * p_data(x). A
    batch holds equally many real rows and model samples, so the expectation
    under m weights the two halves' means by ``1 - alpha`` and ``alpha``.
    A half whose weight is zero is left out of the graph, so ``alpha=0``
    gives exactly the gradient of ``real_loss`` (plain wake-phase encoder
    training) and ``alpha=1`` exactly that of the model half (reverse sleep).

    Parameters
    ----------
    real_loss : Tensor, scalar
        Mean negative training objective of the real rows (the same value the
        decoder is trained on).
    model_neg_elbo : Tensor of shape (n,) or None
        Negative ELBO of each model sample; None only when ``alpha == 0``.
    alpha : float in [0, 1]
        Weight of the model distribution in the mixture.

    Returns
    -------
    Tensor, scalar
    """
    if alpha == 0:
        return real_loss
    model_loss = model_neg_elbo.mean()
    if alpha == 1:
        return model_loss
    return (1.0 - alpha) * real_loss + alpha * model_loss
