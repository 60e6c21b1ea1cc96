"""skvae: variational auto-encoder density estimators with a scikit-learn API.

Estimators: :class:`VAEDensityEstimator` (plain ELBO, dropout, AIR),
:class:`WeightedSelfAugmentation` (``WSAVAE``), :class:`ReverseHalfAsleep`
(``RHAVAE``), :class:`HierarchicalVAE` (a ladder VAE); lossless compression
with a fitted model: :class:`BitsBackCoder`.
Submodules: ``datasets``, ``diagnostics``, ``plotting``, ``streaming``,
``parallel``, ``likelihoods``.

The public names are imported on first use, so ``skvae.coding`` loads (and
decodes bits-back files) without torch.
"""

import importlib

__version__ = "0.2.0"

_HOMES = {"VAEDensityEstimator": "vae", "WeightedSelfAugmentation": "wsa", "WSAVAE": "wsa",
          "ReverseHalfAsleep": "rha", "RHAVAE": "rha", "BitsBackCoder": "coding", "ELBOMonitor": "callbacks",
          "HierarchicalVAE": "hierarchical"}

__all__ = [
    "VAEDensityEstimator",
    "WeightedSelfAugmentation",
    "WSAVAE",
    "ReverseHalfAsleep",
    "RHAVAE",
    "HierarchicalVAE",
    "BitsBackCoder",
    "ELBOMonitor",
    "__version__",
]


def __getattr__(name):
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skvae' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
