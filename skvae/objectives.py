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
    "importance_log_weights",
    "log_mean_exp",
    "iwae_bound",
    "negative_elbo_loss",
    "air_loss",
    "mixture_encoder_loss",
    "gaussian_kl_between",
    "ladder_elbo_terms",
    "ladder_importance_log_weights",
    "ladder_iwae_bound",
    "negative_ladder_elbo_loss",
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


def importance_log_weights(module, likelihood, x, eps):
    """Decoder outputs and log importance weights log p(x, z_j) / q(z_j | x) of k draws per row.

    Parameters
    ----------
    eps : Tensor of shape (k, n, latent_dim)
        Standard normal noise for the k importance samples of each row.

    Returns
    -------
    params : Tensor of shape (k, n, n_params)
        The decoder's output at each draw z_j.
    log_w : Tensor of shape (k, n)
    """
    mu, logvar = module.encoder(x)
    z = mu + torch.exp(0.5 * logvar) * eps  # (k, n, L)
    params = module.decoder(z)
    return params, likelihood.log_prob(params, x) + log_standard_normal(z) - log_normal(z, mu, logvar)


def iwae_bound(module, likelihood, x, eps):
    """Importance-weighted bound log (1/k) sum_j p(x, z_j) / q(z_j | x) per row.

    Parameters
    ----------
    eps : Tensor of shape (k, n, latent_dim)
        Standard normal noise for the k importance samples of each row.
    """
    return log_mean_exp(importance_log_weights(module, likelihood, x, eps)[1])


def log_mean_exp(log_w):
    """log (1/k) sum_j exp(log_w[j]) over the first axis (the k importance samples)."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


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


def gaussian_kl_between(mu_q, logvar_q, mu_p, logvar_p):
    """KL(N(mu_q, diag exp(logvar_q)) || N(mu_p, diag exp(logvar_p))) summed over the last axis."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) * torch.exp(-logvar_p)
                  - 1.0).sum(-1)


def ladder_elbo_terms(module, likelihood, x, eps=None, betas=None):
    """ELBO of a ladder VAE per row, its distortion and the rate of each layer.

    ELBO(x) = E_q log p(x|z_1) - sum_l beta_l R_l with the rates
    R_L = KL(q(z_L|x) || N(0, I)) (closed form) and, for l < L,
    R_l = KL(q(z_l | z_{l+1}, x) || p(z_l | z_{l+1})) in closed form at the
    drawn z_{l+1}: a one-draw estimate of E_q KL, whose sum over layers is
    the estimate of KL(q(z|x) || p(z)) from the same draw.

    Parameters
    ----------
    module : LadderVAEModule
    likelihood : Likelihood
    x : Tensor of shape (n, n_features)
    eps : Tensor of shape (n, D) or (k, n, D), optional
        Standard normal noise, D = sum(latent_dims), layers z_1 .. z_L in
        order; drawn from the global torch RNG if omitted.
    betas : sequence of float, optional
        Weight of each layer's rate, z_1 first (1 for all when None).

    Returns
    -------
    elbo, distortion : Tensors of shape eps.shape[:-1]
    rates : Tensor of shape eps.shape[:-1] + (L,)
        ``elbo = -distortion - sum_l betas[l] * rates[..., l]``.
    """
    if eps is None:
        eps = torch.randn(x.shape[:-1] + (module.latent_dim,), dtype=x.dtype, device=x.device)
    layers = module.posterior(x, eps)
    distortion = -likelihood.log_prob(module.decoder(layers[0][0]), x)
    rates = []
    for z, mu_q, logvar_q, mu_p, logvar_p in layers:
        if mu_p is None:
            rate = gaussian_kl(mu_q, logvar_q)
            rate = rate.expand(distortion.shape) if rate.shape != distortion.shape else rate
        else:
            rate = gaussian_kl_between(mu_q, logvar_q, mu_p, logvar_p)
        rates.append(rate)
    rates = torch.stack(rates, dim=-1)
    weights = torch.ones(len(layers), dtype=rates.dtype, device=rates.device) if betas is None else \
        torch.as_tensor(tuple(betas), dtype=rates.dtype, device=rates.device)
    return -distortion - (rates * weights).sum(-1), distortion, rates


def ladder_importance_log_weights(module, likelihood, x, eps):
    """Decoder outputs and log importance weights of a ladder VAE over its joint latents.

    log p(x | z_1j) p(z_j) / q(z_j | x) with z_j = (z_1j .. z_Lj) drawn
    top-down from q and p(z) = p(z_L) prod_l p(z_l | z_{l+1}); the ladder
    counterpart of :func:`importance_log_weights`.

    Parameters
    ----------
    eps : Tensor of shape (k, n, sum(latent_dims))
    """
    layers = module.posterior(x, eps)
    params = module.decoder(layers[0][0])
    log_w = likelihood.log_prob(params, x)
    for z, mu_q, logvar_q, mu_p, logvar_p in layers:
        log_prior = log_standard_normal(z) if mu_p is None else log_normal(z, mu_p, logvar_p)
        log_w = log_w + log_prior - log_normal(z, mu_q, logvar_q)
    return params, log_w


def ladder_iwae_bound(module, likelihood, x, eps):
    """Importance-weighted bound of a ladder VAE over its joint latents, per row.

    Parameters
    ----------
    eps : Tensor of shape (k, n, sum(latent_dims))
    """
    return log_mean_exp(ladder_importance_log_weights(module, likelihood, x, eps)[1])


def negative_ladder_elbo_loss(module, likelihood, x, betas=None):
    """Mean negative beta-weighted ladder ELBO over the rows of ``x`` (the ladder VAE's loss)."""
    elbo, _, _ = ladder_elbo_terms(module, likelihood, x, betas=betas)
    return -elbo.mean()
