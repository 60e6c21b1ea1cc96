"""Lossless compression with fitted skvae models (bits-back coding with ANS).

:class:`BitsBackCoder` turns a fitted VAE density estimator into a lossless
compressor of binary arrays and mixed-type tables whose rate approaches the
model's negative ELBO.
"""

from ._coder import BitsBackCoder

__all__ = ["BitsBackCoder"]
