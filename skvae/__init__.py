"""skvae: variational auto-encoder density estimators with a scikit-learn API.

Estimators: :class:`VAEDensityEstimator` (plain ELBO, dropout, AIR),
:class:`WeightedSelfAugmentation` (``WSAVAE``), :class:`ReverseHalfAsleep`
(``RHAVAE``); lossless compression with a fitted model: :class:`BitsBackCoder`.
Submodules: ``datasets``, ``diagnostics``, ``plotting``, ``streaming``,
``parallel``, ``likelihoods``.
"""

from .callbacks import ELBOMonitor
from .coding import BitsBackCoder
from .rha import RHAVAE, ReverseHalfAsleep
from .vae import VAEDensityEstimator
from .wsa import WSAVAE, WeightedSelfAugmentation

__version__ = "0.2.0"

__all__ = [
    "VAEDensityEstimator",
    "WeightedSelfAugmentation",
    "WSAVAE",
    "ReverseHalfAsleep",
    "RHAVAE",
    "BitsBackCoder",
    "ELBOMonitor",
    "__version__",
]
