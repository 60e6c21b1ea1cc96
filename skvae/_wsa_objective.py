"""Pure tensor functions of weighted self-augmentation (WSA).

A discriminator D separates real rows (label 1) from rows sampled from the
model (label 0). With equal class counts its odds estimate the density ratio
p_data(x) / p_model(x), which WSA uses as the importance weight of each
self-generated row in the VAE loss.
"""

import math

import torch
import torch.nn.functional as F

__all__ = [
    "LOGIT_EPS",
    "density_ratio_weights",
    "weighted_augmentation_loss",
    "effective_sample_size",
    "discriminator_bce",
]

# D(x) is kept in [eps, 1 - eps] before taking odds, so one weight is at
# most (1 - eps) / eps (about 999) before the user's ``weight_clip``.
LOGIT_EPS = 1e-3

_REDUCTIONS = ("per_sample", "batch_mean")


def density_ratio_weights(logits, weight_clip=1000.0, eps=LOGIT_EPS):
    """Importance weights w = D / (1 - D) = exp(logit D), clipped and detached.

    Parameters
    ----------
    logits : Tensor of shape (n,)
        The discriminator's logits log D(x) / (1 - D(x)).
    weight_clip : float, default=1000.0
        Upper bound applied to the weights after the logit clipping.
    eps : float, default=1e-3
        D is clipped to [eps, 1 - eps], i.e. the logit to
        [log(eps / (1 - eps)), log((1 - eps) / eps)].

    Returns
    -------
    Tensor of shape (n,)
        Weights without gradient.
    """
    bound = math.log((1.0 - eps) / eps)
    weights = torch.exp(logits.detach().clamp(-bound, bound))
    return weights.clamp(max=weight_clip)


def weighted_augmentation_loss(real_loss, fake_neg_elbo, weights, reduction="per_sample"):
    """The VAE loss of WSA: half the real-row loss, half the weighted fake-row loss.

    Parameters
    ----------
    real_loss : Tensor, scalar
        Mean training loss of the real rows (the mean negative ELBO).
    fake_neg_elbo : Tensor of shape (m,)
        Negative ELBO of each self-generated row.
    weights : Tensor of shape (m,)
        The rows' importance weights (no gradient).
    reduction : {'per_sample', 'batch_mean'}, default='per_sample'
        ``'per_sample'`` weights each row's own loss: mean(w * loss).
        ``'batch_mean'`` multiplies the batch means: mean(w) * mean(loss),
        which is what broadcasting an (m, 1) weight against an (m,) loss
        computes in a widely read reference implementation.

    Returns
    -------
    Tensor, scalar
    """
    if reduction == "per_sample":
        fake_loss = (weights * fake_neg_elbo).mean()
    elif reduction == "batch_mean":
        fake_loss = weights.mean() * fake_neg_elbo.mean()
    else:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return 0.5 * real_loss + 0.5 * fake_loss


def effective_sample_size(weight_sum, weight_sq_sum, count):
    """Kish's effective sample size as a fraction of ``count``: (Σw)² / (n Σw²).

    1 when all weights are equal, 1/n when one weight carries everything.
    """
    if count == 0 or weight_sq_sum <= 0:
        return float("nan")
    return float(weight_sum**2 / (count * weight_sq_sum))


def discriminator_bce(logits_real, logits_fake):
    """Binary cross-entropy of the discriminator, real = 1, fake = 0, mean over all rows."""
    logits = torch.cat([logits_real, logits_fake])
    labels = torch.cat([torch.ones_like(logits_real), torch.zeros_like(logits_fake)])
    return F.binary_cross_entropy_with_logits(logits, labels)
