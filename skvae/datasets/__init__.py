"""Data sets: generated toy data and loaders of the standard binary benchmarks."""

from ._loaders import DEBD_NAMES, get_data_home, load_binarized_mnist, load_caltech_silhouettes, load_debd
from ._samples_generator import make_sine_bernoulli, sine_bernoulli_entropy, sine_bernoulli_probs

__all__ = [
    "DEBD_NAMES",
    "get_data_home",
    "load_binarized_mnist",
    "load_caltech_silhouettes",
    "load_debd",
    "make_sine_bernoulli",
    "sine_bernoulli_entropy",
    "sine_bernoulli_probs",
]
