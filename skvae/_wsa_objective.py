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


def density_ratio_weights(logits, weight_clip=1000.0, eps=LOGIT_EPS, power=1.0, floor=0.0, self_normalize=False):
    """Importance weights from discriminator logits, stabilized and detached.

    The raw weight is the discriminator's odds w = D / (1 - D) = exp(logit D),
    an estimate of p_data(x) / p_model(x). The stabilizers of Grover et al.
    (2019, likelihood-free importance weighting) are applied in this order:

    1. flattening: w ** power (``power=1`` leaves w alone, ``power=0`` gives
       every row weight 1), computed as exp(power * logit);
    2. clipping: w = min(max(w, floor), weight_clip), i.e. Grover et al.'s
       lower threshold max(w, floor) and an upper bound;
    3. self-normalization: w / mean(w) over the given rows (one batch), so
       the weights average to 1 and the weighted term is a self-normalized
       importance-sampling estimate.

    Parameters
    ----------
    logits : Tensor of shape (n,)
        The discriminator's logits log D(x) / (1 - D(x)).
    weight_clip : float, default=1000.0
        Upper bound of the (flattened) weights.
    eps : float, default=1e-3
        D is first clipped to [eps, 1 - eps], i.e. the logit to
        [log(eps / (1 - eps)), log((1 - eps) / eps)].
    power : float, default=1.0
        Flattening exponent α in [0, 1].
    floor : float, default=0.0
        Lower bound β of the (flattened) weights.
    self_normalize : bool, default=False
        Divide by the mean weight of the rows given.

    Returns
    -------
    Tensor of shape (n,)
        Weights without gradient.
    """
    bound = math.log((1.0 - eps) / eps)
    logits = logits.detach().clamp(-bound, bound)
    weights = torch.exp(logits * power) if power != 1.0 else torch.exp(logits)
    weights = weights.clamp(min=floor, max=weight_clip) if floor > 0 else weights.clamp(max=weight_clip)
    if self_normalize:
        weights = weights / weights.mean()
    return weights


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
    """Class-balanced binary cross-entropy of the discriminator, real = 1, fake = 0.

    The mean loss of the real rows and the mean loss of the fake rows count
    equally, whatever the two counts are, so the optimal discriminator's odds
    D / (1 - D) are p_data(x) / p_model(x) also when there are ``n_augment``
    fakes per real row. With equal counts this is the plain mean over all rows.
    """
    real = F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
    fake = F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
    return 0.5 * (real + fake)
