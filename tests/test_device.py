"""The ``device`` parameter: validated at fit, and 'cpu' in any spelling is the default exactly."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skvae import VAEDensityEstimator

FAST = dict(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=2, batch_size=50, random_state=0)


@pytest.fixture(scope="module")
def data(nltcs):
    train, test = nltcs
    return train[:300], test[:200]


@pytest.fixture(scope="module")
def default(data):
    return VAEDensityEstimator(**FAST).fit(data[0])


def _outputs(vae, X_test):
    return (vae.score_samples(X_test), vae.transform(X_test), vae.sample(5, random_state=1),
            np.array([h["train_loss"] for h in vae.history_]))


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")], ids=["str", "torch.device"])
def test_cpu_spellings_are_bit_identical_to_the_default(data, default, device):
    vae = VAEDensityEstimator(device=device, **FAST)
    assert vae.get_params()["device"] is device  # stored as given (scikit-learn convention)
    vae.fit(data[0])
    for got, expected in zip(_outputs(vae, data[1]), _outputs(default, data[1])):
        np.testing.assert_array_equal(got, expected)
    assert next(vae.net_.module_.parameters()).device.type == "cpu"


def test_torch_device_survives_clone_and_partial_fit(data, default):
    vae = clone(VAEDensityEstimator(device=torch.device("cpu"), **FAST))
    assert vae.device == torch.device("cpu")
    vae.fit(data[0]).partial_fit(data[0])
    ref = clone(default).fit(data[0]).partial_fit(data[0])
    np.testing.assert_array_equal(vae.score_samples(data[1]), ref.score_samples(data[1]))


@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_cuda_is_a_value_error(data, monkeypatch, device):
    # Torch is told that no GPU exists, so the check runs the same on machines that have one.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    vae = VAEDensityEstimator(device=device, **FAST)  # constructing validates nothing
    with pytest.raises(ValueError, match="CUDA"):
        vae.fit(data[0])
    assert not hasattr(vae, "net_")


@pytest.mark.parametrize("device", ["gpu", "cpu0", "cuda:x", "", None, 3.5, ["cpu"]])
def test_nonsense_device_is_a_value_error(data, device):
    with pytest.raises(ValueError, match="device"):
        VAEDensityEstimator(device=device, **FAST).fit(data[0])


def test_cuda_where_available(data, default):
    """On a GPU machine the model trains and scores on it; elsewhere 'cuda' is refused."""
    vae = VAEDensityEstimator(device="cuda", **FAST)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            vae.fit(data[0])
        return
    vae.fit(data[0])
    assert next(vae.net_.module_.parameters()).device.type == "cuda"
    scores = vae.score_samples(data[1])
    assert scores.dtype == np.float64 and np.all(np.isfinite(scores)) and np.all(scores < 0)
    # Another device draws other training noise, so the models differ, but not by much after the same steps.
    assert abs(scores.mean() - default.score_samples(data[1]).mean()) < 1.0


@pytest.mark.parametrize("device", ["mps", "meta", "xpu"])
def test_unsupported_device_types_rejected(device):
    X = np.random.RandomState(0).binomial(1, 0.5, size=(20, 4))
    with pytest.raises(ValueError, match="'cpu' or 'cuda"):
        VAEDensityEstimator(latent_dim=1, hidden_layer_sizes=(4,), max_epochs=1, device=device).fit(X)
