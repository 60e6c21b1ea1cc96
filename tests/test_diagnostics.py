import copy
import math

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skvae import VAEDensityEstimator
from skvae.datasets import make_sine_bernoulli
from skvae.diagnostics import _mixture_information, generalization_gaps, optimal_inference, rate_distortion
from skvae.inference import refit_encoder


@pytest.fixture(scope="module")
def data():
    X = make_sine_bernoulli(300, 32, random_state=0)
    return X[:150], X[150:]


@pytest.fixture(scope="module")
def overfit_vae(data):
    """A small VAE trained long on few rows, so its gaps are clearly positive."""
    X_train, _ = data
    return VAEDensityEstimator(latent_dim=4, hidden_layer_sizes=(64,), max_epochs=120, batch_size=50,
                               random_state=0).fit(X_train)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- optimal_inference: encoder refit ---------------------------------------

def test_encoder_refit_freezes_decoder_and_leaves_original_untouched(overfit_vae, data):
    _, X_test = data
    before = _state(overfit_vae.net_.module_)
    n_epochs_before = len(overfit_vae.history_)
    score_before = overfit_vae.score(X_test)

    refit = optimal_inference(overfit_vae, X_test, method="encoder", n_epochs=40, random_state=0)

    assert refit is not overfit_vae and refit.net_.module_ is not overfit_vae.net_.module_
    # The copy's decoder is bit-identical, its encoder moved.
    assert _same_state(_state(refit.net_.module_.decoder), _state(overfit_vae.net_.module_.decoder))
    assert not _same_state(_state(refit.net_.module_.encoder), _state(overfit_vae.net_.module_.encoder))
    # The original is untouched: weights, history, scores, gradient flags.
    assert _same_state(_state(overfit_vae.net_.module_), before)
    assert len(overfit_vae.history_) == n_epochs_before
    assert overfit_vae.score(X_test) == score_before
    assert all(p.requires_grad for p in refit.net_.module_.parameters())
    # Fitting the encoder to the test rows raises their ELBO.
    assert refit.score(X_test) > score_before
    assert refit.encoder_refit_loss_.shape == (40,)


def test_encoder_refit_is_reproducible_and_keeps_global_rng(overfit_vae, data):
    _, X_test = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = refit_encoder(overfit_vae, X_test, n_epochs=3, random_state=7)
    assert torch.equal(torch.rand(3), expected)
    b = refit_encoder(overfit_vae, X_test, n_epochs=3, random_state=7)
    assert _same_state(_state(a.net_.module_), _state(b.net_.module_))


def test_encoder_refit_from_scratch_differs_from_warm_start(overfit_vae, data):
    _, X_test = data
    warm = refit_encoder(overfit_vae, X_test, n_epochs=0, random_state=0)
    cold = refit_encoder(overfit_vae, X_test, n_epochs=0, warm_start=False, random_state=0)
    assert _same_state(_state(warm.net_.module_), _state(overfit_vae.net_.module_))
    assert not _same_state(_state(cold.net_.module_.encoder), _state(overfit_vae.net_.module_.encoder))
    assert _same_state(_state(cold.net_.module_.decoder), _state(overfit_vae.net_.module_.decoder))


def test_refit_copy_can_keep_training(overfit_vae, data):
    X_train, X_test = data
    refit = refit_encoder(overfit_vae, X_test, n_epochs=2, random_state=0)
    refit.partial_fit(X_train)
    assert len(refit.history_) == len(overfit_vae.history_) + 1
    # The refit copy trains its own module: the original's stays put.
    assert not _same_state(_state(refit.net_.module_.decoder), _state(overfit_vae.net_.module_.decoder))


# -- optimal_inference: per-row refinement -----------------------------------

def test_per_row_zero_steps_equals_the_estimators_own_elbo(overfit_vae, data):
    _, X_test = data
    res = optimal_inference(overfit_vae, X_test, method="per_row", n_steps=0)
    own = overfit_vae.elbo_components(X_test)
    np.testing.assert_allclose(res.elbo, own.elbo, rtol=1e-12)
    np.testing.assert_allclose(res.rate, own.rate, rtol=1e-12)
    np.testing.assert_allclose(res.mu, overfit_vae.transform(X_test), rtol=1e-12)


def test_per_row_refinement_improves_and_is_per_row(overfit_vae, data):
    _, X_test = data
    before = overfit_vae.elbo_components(X_test).elbo
    res = optimal_inference(overfit_vae, X_test, method="per_row", n_steps=30)
    assert res.elbo.shape == (len(X_test),) and res.mu.shape == (len(X_test), 4)
    assert res.elbo.mean() > before.mean()
    np.testing.assert_allclose(res.elbo, -(res.distortion + res.rate), rtol=1e-12)
    # Each row's result depends on that row alone (order and batch do not matter).
    part = optimal_inference(overfit_vae, X_test[::-1][:20], method="per_row", n_steps=30)
    np.testing.assert_allclose(part.elbo, res.elbo[::-1][:20], rtol=1e-9, atol=1e-9)


# -- generalization_gaps -----------------------------------------------------

@pytest.mark.parametrize("method", ["per_row", "encoder"])
def test_gap_identity_holds_exactly(overfit_vae, data, method):
    X_train, X_test = data
    g = generalization_gaps(overfit_vae, X_train, X_test, method=method, n_epochs=30, n_steps=30,
                            random_state=0)
    assert abs(g.egg - (g.gmgg + g.aigg)) < 1e-9
    assert g.train_refit_gain == 0.0 and g.train_elbo_optimal == g.train_elbo
    # The pieces are the estimator's own scores.
    assert g.train_elbo == pytest.approx(overfit_vae.score(X_train), rel=1e-12)
    assert g.test_elbo == pytest.approx(overfit_vae.score(X_test), rel=1e-12)
    assert g.egg == pytest.approx(overfit_vae.score(X_train) - overfit_vae.score(X_test), rel=1e-12)
    # An over-trained model generalizes worse, and refitting inference on the
    # test rows recovers part of it.
    assert g.egg > 0 and g.aigg > 0
    to_bpd = 1 / (X_test.shape[1] * math.log(2))
    for name in ("egg", "aigg", "gmgg"):
        assert g[name + "_bpd"] == pytest.approx(g[name] * to_bpd, rel=1e-12)


@pytest.mark.parametrize("method", ["per_row", "encoder"])
def test_gap_identity_with_train_refit_accounts_for_the_train_gain(overfit_vae, data, method):
    X_train, X_test = data
    g = generalization_gaps(overfit_vae, X_train, X_test, method=method, refit_train=True,
                            n_epochs=30, n_steps=30, random_state=0)
    assert g.train_refit_gain == pytest.approx(g.train_elbo_optimal - g.train_elbo, abs=1e-12)
    assert g.train_refit_gain != 0.0
    assert abs(g.egg - (g.gmgg + g.aigg - g.train_refit_gain)) < 1e-9
    # Without the gain term the identity fails, so the test above can fail.
    assert abs(g.egg - (g.gmgg + g.aigg)) > 1e-6


def test_per_row_gaps_are_deterministic(overfit_vae, data):
    X_train, X_test = data
    a = generalization_gaps(overfit_vae, X_train, X_test, method="per_row", n_steps=5)
    b = generalization_gaps(overfit_vae, X_train, X_test, method="per_row", n_steps=5)
    assert a.aigg == b.aigg and a.gmgg == b.gmgg


# -- rate_distortion ---------------------------------------------------------

def test_rate_distortion_matches_elbo_components(overfit_vae, data):
    X_train, _ = data
    rd = rate_distortion(overfit_vae, X_train)
    own = overfit_vae.elbo_components(X_train)
    np.testing.assert_array_equal(rd.rate, own.rate)
    np.testing.assert_array_equal(rd.distortion, own.distortion)
    np.testing.assert_allclose(rd.elbo, -(rd.rate + rd.distortion), rtol=1e-12)
    assert 0.0 < rd.mutual_information <= rd.mi_upper_bound
    assert rd.mi_upper_bound == pytest.approx(math.log(len(X_train)))
    assert "log q(z|x_i)" in rd.mi_estimator
    # I + KL(q(z)||p(z)) is a Monte-Carlo estimate of the mean closed-form rate.
    many = rate_distortion(overfit_vae, X_train, n_samples=64)
    assert many.mutual_information + many.marginal_kl == pytest.approx(rd.rate.mean(), rel=0.1)


def test_mutual_information_zero_when_encoder_ignores_x(overfit_vae, data):
    X_train, _ = data
    blind = copy.deepcopy(overfit_vae)
    last = blind.net_.module_.encoder.net[-1]
    with torch.no_grad():
        last.weight.zero_()  # q(z|x) = N(1, exp(-1)) for every row
        last.bias.copy_(torch.tensor([1.0] * 4 + [-1.0] * 4))
    rd = rate_distortion(blind, X_train, n_samples=16)
    assert abs(rd.mutual_information) < 1e-9
    closed_form = 4 * 0.5 * (1.0 + math.exp(-1.0) - 1.0 + 1.0)
    np.testing.assert_allclose(rd.rate, closed_form, rtol=1e-6)
    # All the rate is then KL(q(z)||p(z)), up to Monte-Carlo error.
    assert rd.marginal_kl == pytest.approx(closed_form, rel=0.1)


def test_mixture_information_limits():
    torch.manual_seed(0)
    n, dim = 50, 3
    eps = torch.randn(2, n, dim, dtype=torch.float64)
    logvar = torch.full((n, dim), -12.0, dtype=torch.float64)
    # Far apart, tiny posteriors: every code identifies its row, I = log N.
    separated = 100.0 * torch.arange(n, dtype=torch.float64)[:, None].expand(n, dim)
    mi, _ = _mixture_information(separated, logvar, eps)
    assert mi == pytest.approx(math.log(n), abs=1e-9)
    # Identical posteriors: I = 0 and KL(q(z)||p(z)) is the closed-form KL of one of them.
    same = torch.zeros((n, dim), dtype=torch.float64)
    mi, kl = _mixture_information(same, torch.zeros((n, dim), dtype=torch.float64), eps)
    assert mi == pytest.approx(0.0, abs=1e-12)
    assert kl == pytest.approx(0.0, abs=1e-12)


def test_rate_distortion_subsamples_for_the_mi(overfit_vae, data):
    X_train, _ = data
    rd = rate_distortion(overfit_vae, X_train, max_rows=40, random_state=0)
    assert rd.mi_n_rows == 40 and rd.rate.shape == (len(X_train),)
    assert rd.mi_upper_bound == pytest.approx(math.log(40))
    again = rate_distortion(overfit_vae, X_train, max_rows=40, random_state=0)
    assert again.mutual_information == rd.mutual_information


# -- bad input ---------------------------------------------------------------

def test_bad_input(overfit_vae, data):
    X_train, X_test = data
    with pytest.raises(ValueError, match="method"):
        optimal_inference(overfit_vae, X_test, method="exact")
    with pytest.raises(ValueError, match="method"):
        generalization_gaps(overfit_vae, X_train, X_test, method="exact")
    with pytest.raises(ValueError, match="n_steps"):
        optimal_inference(overfit_vae, X_test, method="per_row", n_steps=-1)
    with pytest.raises(ValueError, match="n_epochs"):
        optimal_inference(overfit_vae, X_test, n_epochs=-1)
    with pytest.raises(TypeError, match="n_epochs"):
        optimal_inference(overfit_vae, X_test, n_epochs=2.5)
    with pytest.raises(ValueError, match="step_size"):
        optimal_inference(overfit_vae, X_test, method="per_row", step_size=0.0)
    with pytest.raises(TypeError, match="refit_train"):
        generalization_gaps(overfit_vae, X_train, X_test, refit_train="yes")
    with pytest.raises(ValueError, match="n_samples"):
        rate_distortion(overfit_vae, X_train, n_samples=0)
    with pytest.raises(ValueError, match="features"):
        rate_distortion(overfit_vae, X_train[:, :5])
    with pytest.raises(ValueError):
        optimal_inference(overfit_vae, X_test + 2, method="per_row")  # outside Bernoulli support
    unfitted = VAEDensityEstimator()
    for call in (lambda: optimal_inference(unfitted, X_test),
                 lambda: generalization_gaps(unfitted, X_train, X_test),
                 lambda: rate_distortion(unfitted, X_train)):
        with pytest.raises(NotFittedError):
            call()


def test_split_mismatch_flags_a_shifted_test_split_only():
    from skvae.diagnostics import split_mismatch

    rng = np.random.RandomState(0)
    train = (rng.rand(400, 8) < 0.3).astype(float)
    same = split_mismatch(train, (rng.rand(200, 8) < 0.3).astype(float), random_state=0)
    shifted = split_mismatch(train, (rng.rand(200, 8) < 0.4).astype(float), random_state=0)
    assert 0.4 < same.statistic < 0.6 and same.p_value > 0.01
    assert shifted.statistic > 0.6 and shifted.p_value < 1e-4
    assert split_mismatch(train, train[:100] * 0 + 1, random_state=0).statistic > 0.99
    again = split_mismatch(train, (rng.rand(200, 8) < 0.4).astype(float), random_state=0)
    assert split_mismatch(train, train[:50], random_state=3) == split_mismatch(train, train[:50], random_state=3)
    assert again.n_train == 400 and again.n_test == 200


def test_split_mismatch_bad_input():
    from skvae.diagnostics import split_mismatch

    X = np.zeros((20, 3))
    with pytest.raises(ValueError, match="features"):
        split_mismatch(X, np.zeros((20, 4)))
    with pytest.raises(ValueError, match="n_splits=5"):
        split_mismatch(X, X[:3])
    with pytest.raises(TypeError, match="predict_proba"):
        split_mismatch(X, X, classifier=object())
