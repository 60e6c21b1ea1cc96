"""Data sets: generated toy data and loaders of the standard binary benchmarks."""

from ._samples_generator import make_sine_bernoulli, sine_bernoulli_entropy, sine_bernoulli_probs

__all__ = ["make_sine_bernoulli", "sine_bernoulli_entropy", "sine_bernoulli_probs"]
