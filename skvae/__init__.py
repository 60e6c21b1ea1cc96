"""skvae: variational auto-encoder density estimators with a scikit-learn API."""

from .callbacks import ELBOMonitor
from .vae import VAEDensityEstimator

__version__ = "0.1.0"

__all__ = ["VAEDensityEstimator", "ELBOMonitor", "__version__"]
