"""Real-valued columns under a per-column Gaussian mixture, coded on their quantization grid.

A :class:`~skvae.likelihoods.Gaussian` with ``n_components = K > 1`` gives
each column the density ``sum_k w_k N(x; mu_k, sigma_k)`` given z. On the
grid ``x = k * step`` the symbol's probability is the mixture's mass of its
cell,

    P(b) = sum_k w_k (Phi((b + 1/2 - mu_k) / sigma_k) - Phi((b - 1/2 - mu_k) / sigma_k)),

with ``mu_k`` and ``sigma_k`` in grid units and the tails folded into the two
end cells, as :class:`~skvae.coding._entropy_models.QuantizedGaussianColumns`
does for one Gaussian. Every number is computed the portable way
(:mod:`skvae.coding._exact`): the weights are the softmax of the fixed-point
decoder's logits, ``e_k = exp(l_k - max_j l_j)`` by the table-driven
:func:`~skvae.coding._exact.exp` and ``w_k = e_k / (e_1 + ... + e_K)``
summed left to right; each component's cell masses come from the same
tabulated normal CDF as the one-Gaussian model, and the K weighted tables
are added in component order. Only IEEE ``+ - * /``, comparisons and table
lookups are used, element by element, so encoder and decoder build the same
tables on every machine.
"""

import numpy as np

from ..likelihoods import Gaussian
from ._entropy_models import BinnedDistribution, QuantizedGaussianColumns, register_column_model
from ._exact import NORMAL, exp

__all__ = ["BinnedMixture", "GaussianMixtureColumns", "gaussian_columns"]


class BinnedMixture(BinnedDistribution):
    """Integer symbols ``0 .. n_bins - 1`` under a mixture of Gaussians binned at the integers.

    The interface of :class:`~skvae.coding._entropy_models.BinnedDistribution`
    (two-stage coding: group, then bin within the group), with per-row
    component parameters in place of one location and scale: the ``mean``
    argument of :meth:`push`, :meth:`pop` and :meth:`log2_prob` is an array
    of shape (n, K), the components' locations in bin units, and the ``std``
    argument an array of shape (n, K, 2): the components' scales in bin
    units (``[..., 0]``) and their weights (``[..., 1]``, summing to 1 per row).

    Each component's table is the one-Gaussian table (tails folded into the
    end bins, plus the floor that keeps every entry positive), and the
    mixture's table is the weighted sum over components in a fixed order.
    """

    def __init__(self, n_bins, group=None):
        super().__init__(n_bins, NORMAL, group)

    def _masses_into(self, out, first, count, width, mean, std):
        component = np.empty_like(out)
        out[:] = 0.0
        for k in range(mean.shape[1]):  # a fixed order: the same sums on every machine
            super()._masses_into(component, first, count, width, mean[:, k], std[:, k, 0])
            component *= std[:, k, 1:2]
            out += component


def mixture_weights(logits):
    """Softmax over the last axis in portable arithmetic (see the module docstring), float64."""
    logits = np.asarray(logits, dtype=np.float64)
    e = exp(logits - logits.max(axis=-1, keepdims=True))  # the largest term is exactly 1
    total = e[..., 0].copy()
    for k in range(1, e.shape[-1]):
        total += e[..., k]
    return e / total[..., None]


class GaussianMixtureColumns(QuantizedGaussianColumns):
    """Real-valued columns on a grid ``k * step`` under a Gaussian mixture per column, coded as integers k.

    The grid (``[step, k_min, k_max]`` per column), the support check and the
    symbols are those of
    :class:`~skvae.coding._entropy_models.QuantizedGaussianColumns`; the
    model of each symbol is the mixture's mass of its grid cell (module
    docstring). The file's column schema records the component count.
    """

    def __init__(self, likelihood, n_features, precision, grid=None):
        super().__init__(likelihood, n_features, precision, grid)
        self.n_components = int(likelihood.n_components)
        self._laws = [BinnedMixture(int(k + 1)) for k in self.k_max - self.k_min]

    def schema(self):
        return [{**entry, "components": self.n_components} for entry in super().schema()]

    def _locations(self, params):
        """Locations (n, n_features, K) and [scales, weights] (n, n_features, K, 2), in symbol units."""
        likelihood, n, k = self.likelihood, self.n_features, self.n_components
        blocks = np.asarray(params, dtype=np.float64).reshape(len(params), 3, n, k)
        loc = blocks[:, 0]
        scale = exp(np.clip(blocks[:, 1], likelihood.min_log_scale, likelihood.max_log_scale))
        weights = mixture_weights(blocks[:, 2])
        if likelihood.center is not None:  # the decoder works on standardized columns
            loc = loc * likelihood.scale[:, None] + likelihood.center[:, None]
            scale = scale * likelihood.scale[:, None]
        loc = loc / self.steps[:, None] - self.k_min[:, None]
        return loc, np.stack([scale / self.steps[:, None], weights], axis=-1)


def gaussian_columns(likelihood, n_features, precision, grid=None):
    """The column model of a Gaussian likelihood: one Gaussian per column, or a mixture."""
    if getattr(likelihood, "n_components", 1) == 1:
        return QuantizedGaussianColumns(likelihood, n_features, precision, grid)
    return GaussianMixtureColumns(likelihood, n_features, precision, grid)


register_column_model(Gaussian, gaussian_columns)
