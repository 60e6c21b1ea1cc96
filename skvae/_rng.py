"""Seeds and RNG streams: how a ``random_state`` becomes a torch seed, and which device stream it seeds."""

import numbers

import numpy as np

__all__ = ["seed_from", "cuda_index"]


def cuda_index(device):
    """Index of the CUDA device whose RNG stream a run on ``device`` draws from; None on the CPU."""
    if device.type != "cuda":
        return None
    import torch

    return device.index if device.index is not None else torch.cuda.current_device()


def seed_from(random_state):
    """An int seed for torch from a scikit-learn style ``random_state``.

    None draws fresh OS entropy, so the caller's global numpy RNG is not used.
    """
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state!r}")
        if random_state < 2**32:  # torch's CPU generator keeps 32 bits: these seeds are used as they are
            return int(random_state)
        # larger seeds would wrap around to small ones: mix all their bits into 32
        return int(np.random.SeedSequence(int(random_state)).generate_state(1)[0])
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a numpy RandomState, got {random_state!r}")
