"""Nothing silent, nothing broken by concurrent use: the estimators' safety nets."""

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from skvae import BitsBackCoder, VAEDensityEstimator

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=3, batch_size=50, random_state=0)


@pytest.fixture(scope="module")
def binary():
    return (np.random.RandomState(0).rand(400, 10) < 0.3).astype(np.uint8)


# -- concurrent scoring -----------------------------------------------------------------------------


def test_concurrent_scoring_gives_the_serial_scores_and_leaves_the_model_as_it_was(binary):
    vae = VAEDensityEstimator(**SMALL).fit(binary)
    expected = vae.score_samples(binary)
    fingerprint = BitsBackCoder(vae).fit().fingerprint_
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(vae.score_samples(binary))
                vae.transform(binary[:50])
        except Exception as exc:  # collected: an exception in a thread would not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert len(results) == 80 and all(np.array_equal(r, expected) for r in results)
    module = vae.net_.module_
    assert all(p.dtype == vae.net_.module_.encoder.net[0].weight.dtype for p in module.parameters())
    assert str(next(module.parameters()).dtype) == "torch.float32" and module.training
    assert BitsBackCoder(vae).fit().fingerprint_ == fingerprint
    vae.set_params(warm_start=True, max_epochs=1).fit(binary)  # training goes on in float32


# -- parameters and inputs ------------------------------------------------------------------------


@pytest.mark.parametrize("param, value", [("lr", float("inf")), ("beta", float("nan")), ("air_sigma", float("inf")),
                                          ("dropout", float("nan")), ("air_alpha", float("nan")),
                                          ("lr", float("nan"))])
def test_non_finite_hyperparameters_are_refused(binary, param, value):
    with pytest.raises(ValueError, match=f"{param} must be a finite number"):
        VAEDensityEstimator(**{**SMALL, param: value}).fit(binary)


def test_clear_errors_for_misused_inputs(binary):
    table = pd.DataFrame({"a": [0, 1] * 20, "c": pd.Categorical(["x", "y"] * 20)})
    with pytest.raises(ValueError, match="non-numeric.*likelihood='auto'"):
        VAEDensityEstimator(**{**SMALL, "likelihood": "gaussian"}).fit(table)
    with pytest.raises(TypeError, match="skorch Callback"):
        VAEDensityEstimator(**{**SMALL, "callbacks": [1]}).fit(binary)
    with pytest.raises(ValueError, match="weights, more than"):
        VAEDensityEstimator(**{**SMALL, "latent_dim": 10 ** 9}).fit(binary)
    with pytest.raises(ValueError, match="non-negative"):
        VAEDensityEstimator(**{**SMALL, "random_state": -1}).fit(binary)


def test_seeds_beyond_32_bits_give_other_fits(binary):
    scores = [VAEDensityEstimator(**{**SMALL, "random_state": seed}).fit(binary).score(binary)
              for seed in (0, 2 ** 32, 2 ** 40)]
    assert len(set(scores)) == 3
    again = VAEDensityEstimator(**{**SMALL, "random_state": 2 ** 40}).fit(binary).score(binary)
    assert again == scores[2]


# -- divergence --------------------------------------------------------------------------------


class _ExplodeAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            for group in net.optimizer_.param_groups:
                group["lr"] = 1e30


def test_divergence_in_the_first_epoch_raises_and_leaves_nothing_fitted():
    X = np.random.RandomState(0).randn(300, 4)
    vae = VAEDensityEstimator(**{**SMALL, "likelihood": "gaussian", "lr": 1e30})
    with pytest.raises(ValueError, match="diverged.*not fitted"):
        vae.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(vae)


def test_later_divergence_keeps_the_last_finite_weights():
    X = np.random.RandomState(0).randn(300, 4)
    vae = VAEDensityEstimator(**{**SMALL, "likelihood": "gaussian", "max_epochs": 8, "callbacks": [_ExplodeAt(4)]})
    with pytest.warns(ConvergenceWarning, match="epoch 4.*after epoch 3 are kept"):
        vae.fit(X)
    assert len(vae.history_) == 3 and np.isfinite(vae.history_[:, "train_loss"]).all()
    assert np.isfinite(vae.score_samples(X)).all()


def test_real_columns_on_any_scale_train_and_score_in_their_own_units():
    rng = np.random.RandomState(0)
    X = rng.randn(400, 3) @ rng.randn(3, 3) + 1.0
    params = {**SMALL, "likelihood": "gaussian", "max_epochs": 20}
    unit = VAEDensityEstimator(**params).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divergence warning either
        scaled = VAEDensityEstimator(**params).fit(X * 300.0 + 5000.0)
    # about the same model in other units: log densities shift by d log(300) (float32 training
    # trajectories differ slightly with the rounding of the standardized inputs)
    shift = unit.score_samples(X[:200]) - scaled.score_samples(X[:200] * 300.0 + 5000.0)
    assert abs(shift.mean() - 3 * np.log(300.0)) < 0.1
    assert np.isfinite(scaled.sample(20, random_state=0)).all()
    assert abs(scaled.sample(2000, random_state=0).mean() - (X * 300.0 + 5000.0).mean()) < 300


# -- the command line on SIGTERM -----------------------------------------------------------------


def test_sigterm_during_decompress_leaves_the_old_output_and_no_temporary_file(tmp_path):
    X = (np.random.RandomState(1).rand(400_000, 16) < 0.3).astype(np.uint8)
    vae = VAEDensityEstimator(latent_dim=4, hidden_layer_sizes=(16,), max_epochs=1, batch_size=500,
                              random_state=0).fit(X[:2000])
    coder = BitsBackCoder(vae).fit()
    coder.save(tmp_path / "model.npz")
    (tmp_path / "x.bb").write_bytes(coder.encode(X))
    (tmp_path / "out.npy").write_text("precious")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "skvae", "decompress", str(tmp_path / "model.npz"),
                             str(tmp_path / "x.bb"), str(tmp_path / "out.npy")], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.npy.*.part")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "decompress ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert (tmp_path / "out.npy").read_text() == "precious"
    assert not list(tmp_path.glob("*.part"))
