"""ReverseHalfAsleep: estimator checks, the alpha limits, post-hoc training and from_estimator."""

import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import VAEDensityEstimator
from skvae.objectives import elbo_terms, negative_elbo_loss
from skvae.rha import RHAVAE, ReverseHalfAsleep

SMALL = dict(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=3, batch_size=16, likelihood="gaussian",
             random_state=0)
TINY = dict(latent_dim=3, hidden_layer_sizes=(16,), max_epochs=2, batch_size=50, random_state=0)


@parametrize_with_checks([
    ReverseHalfAsleep(**SMALL),
    ReverseHalfAsleep(mode="post_hoc", rha_epochs=2, **SMALL),
    ReverseHalfAsleep(alpha=1.0, latent_source="aggregate", dropout=0.2, **SMALL),
])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def X(nltcs):
    return nltcs[0][:600]


@pytest.fixture(scope="module")
def X_test(nltcs):
    return nltcs[1][:300]


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _differs(a, b):
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_alias():
    assert RHAVAE is ReverseHalfAsleep


# -- the alpha limits ---------------------------------------------------------


@pytest.mark.parametrize("extra", [{}, {"dropout": 0.2, "air_sigma": 0.3}])
def test_alpha_zero_joint_is_the_plain_vae(X, X_test, extra):
    """alpha=0: both halves see exactly the plain ELBO gradient, so the whole fit is the VAE's."""
    rha = ReverseHalfAsleep(alpha=0.0, **TINY, **extra).fit(X)
    vae = VAEDensityEstimator(**TINY, **extra).fit(X)
    _assert_same_state(_state(rha.net_.module_), _state(vae.net_.module_))
    np.testing.assert_array_equal(rha.score_samples(X_test), vae.score_samples(X_test))
    assert rha.history_[:, "phase"] == ["joint", "joint"]
    np.testing.assert_array_equal(rha.history_[:, "train_loss"], vae.history_[:, "train_loss"])


def _fitted_net(X, **params):
    """A net after one epoch (so optimizers carry state), ready for single steps."""
    est = ReverseHalfAsleep(**dict(TINY, max_epochs=1), **params).fit(X)
    return est.net_


def _reference_step(module, likelihood, batch, alpha, phase, latent_source, seed, lr):
    """The documented step written out by hand on a copy of the module.

    Returns the gradients each half should get and the parameters after one
    Adam step of the halves that move (fresh Adam on both sides).
    """
    torch.manual_seed(seed)
    x_model = None
    if alpha > 0:  # model samples first: z, then x ~ p(x|z)
        with torch.no_grad():
            if latent_source == "aggregate":
                mu, logvar = module.encoder(batch)
                z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            else:
                z = torch.randn(len(batch), module.latent_dim)
            x_model = likelihood.sample(module.decoder(z))
    real = negative_elbo_loss(module, likelihood, batch) if (phase == "joint" or alpha < 1) else None
    model = -elbo_terms(module, likelihood, x_model)[0].mean() if alpha > 0 else None
    if alpha == 0:
        encoder_loss = real
    elif alpha == 1:
        encoder_loss = model
    else:
        encoder_loss = (1 - alpha) * real + alpha * model
    enc = list(module.encoder.parameters())
    dec = list(module.decoder.parameters())
    grads = {"encoder": torch.autograd.grad(encoder_loss, enc, retain_graph=True)}
    grads["decoder"] = torch.autograd.grad(real, dec) if phase == "joint" else None
    moved = {"encoder": (enc, grads["encoder"])}
    if phase == "joint":
        moved["decoder"] = (dec, grads["decoder"])
    for params, g in moved.values():
        for p, gi in zip(params, g):
            p.grad = gi.clone()
        torch.optim.Adam(params, lr=lr).step()
    return grads, x_model


@pytest.mark.parametrize("phase", ["joint", "rha"])
@pytest.mark.parametrize("alpha", [0.0, 1.0, 0.3])
@pytest.mark.parametrize("latent_source", ["prior", "aggregate"])
def test_train_step_matches_hand_written_reference(X, phase, alpha, latent_source):
    """alpha=0 is wake-phase encoder training on real rows, alpha=1 reverse sleep on model samples."""
    net = _fitted_net(X, alpha=alpha, latent_source=latent_source)
    net.phase = phase
    net.initialize_optimizer()  # fresh Adam, as in the reference
    batch = torch.as_tensor(X[:50], dtype=torch.float32)
    reference = copy.deepcopy(net.module_)
    decoder_before = _state(net.module_.decoder)

    grads, _ = _reference_step(reference, net.likelihood, batch, alpha, phase, latent_source, seed=7, lr=TINY.get("lr", 1e-3))
    torch.manual_seed(7)
    net.train_step(batch)

    for g_ref, p in zip(grads["encoder"], net.module_.encoder.parameters()):
        torch.testing.assert_close(p.grad, g_ref, rtol=1e-5, atol=1e-7)
    if phase == "joint":
        for g_ref, p in zip(grads["decoder"], net.module_.decoder.parameters()):
            torch.testing.assert_close(p.grad, g_ref, rtol=1e-5, atol=1e-7)
    else:  # encoder-only: no decoder gradient, decoder untouched
        assert all(p.grad is None for p in net.module_.decoder.parameters())
        _assert_same_state(_state(net.module_.decoder), decoder_before)
    for p_ref, p in zip(reference.parameters(), net.module_.parameters()):
        torch.testing.assert_close(p, p_ref, rtol=1e-5, atol=1e-6)


def test_alpha_one_ignores_the_real_rows_in_the_encoder(X):
    """Reverse sleep: changing the real batch does not change the encoder's gradient."""
    net = _fitted_net(X, alpha=1.0)
    net.phase = "rha"
    grads = []
    for rows in (X[:50], X[50:100]):
        net.initialize_optimizer()
        module_before = copy.deepcopy(net.module_.state_dict())
        torch.manual_seed(3)
        net.train_step(torch.as_tensor(rows, dtype=torch.float32))
        grads.append([p.grad.clone() for p in net.module_.encoder.parameters()])
        net.module_.load_state_dict(module_before)
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_alpha_half_uses_both_sources(X):
    net = _fitted_net(X, alpha=0.5)
    net.phase = "rha"
    grads = []
    for rows in (X[:50], X[50:100]):
        state = copy.deepcopy(net.module_.state_dict())
        torch.manual_seed(3)
        net.train_step(torch.as_tensor(rows, dtype=torch.float32))
        grads.append([p.grad.clone() for p in net.module_.encoder.parameters()])
        net.module_.load_state_dict(state)
    assert any(not torch.equal(a, b) for a, b in zip(*grads))


# -- post-hoc mode and from_estimator ------------------------------------------


def test_post_hoc_moves_only_the_encoder(X):
    est = ReverseHalfAsleep(mode="post_hoc", max_epochs=2, rha_epochs=3, dropout=0.2,
                            **{k: v for k, v in TINY.items() if k != "max_epochs"})
    est.partial_fit(X).partial_fit(X)
    assert est.history_[:, "phase"] == ["vae", "vae"]
    decoder, encoder = _state(est.net_.module_.decoder), _state(est.net_.module_.encoder)
    decoder_opt = copy.deepcopy(est.net_.decoder_optimizer_.state_dict())
    for _ in range(3):
        est.partial_fit(X)
    assert est.history_[:, "phase"] == ["vae", "vae", "rha", "rha", "rha"]
    _assert_same_state(_state(est.net_.module_.decoder), decoder)
    assert _differs(_state(est.net_.module_.encoder), encoder)
    after = est.net_.decoder_optimizer_.state_dict()["state"]
    for key, value in decoder_opt["state"].items():
        for name in value:
            assert torch.equal(torch.as_tensor(after[key][name]), torch.as_tensor(value[name]))


def test_post_hoc_fit_equals_vae_then_encoder_only(X):
    """The VAE stage is the plain VAE bit for bit; the encoder-only stage keeps that decoder."""
    vae = VAEDensityEstimator(**TINY).fit(X)
    rha = ReverseHalfAsleep(mode="post_hoc", rha_epochs=2, **TINY).fit(X)
    assert rha.history_[:, "phase"] == ["vae", "vae", "rha", "rha"]
    _assert_same_state(_state(rha.net_.module_.decoder), _state(vae.net_.module_.decoder))
    assert _differs(_state(rha.net_.module_.encoder), _state(vae.net_.module_.encoder))
    # warm start continues with rha_epochs more encoder-only epochs
    rha.set_params(warm_start=True).fit(X)
    assert rha.history_[:, "phase"] == ["vae", "vae"] + ["rha"] * 4
    _assert_same_state(_state(rha.net_.module_.decoder), _state(vae.net_.module_.decoder))


def test_from_estimator_keeps_the_decoder_and_the_original(X, X_test):
    vae = VAEDensityEstimator(dropout=0.1, **TINY).fit(X)
    original = _state(vae.net_.module_)
    scores = vae.score_samples(X_test)
    rha = ReverseHalfAsleep.from_estimator(vae, alpha=0.7, rha_epochs=3)
    assert rha.mode == "post_hoc" and rha.alpha == 0.7 and rha.rha_epochs == 3
    assert rha.dropout == 0.1 and rha.latent_dim == TINY["latent_dim"] and rha.random_state == 0
    with pytest.raises(NotFittedError):
        rha.score(X)
    rha.fit(X)
    assert rha.history_[:, "phase"] == ["rha"] * 3
    _assert_same_state(_state(rha.net_.module_.decoder), _state(vae.net_.module_.decoder))
    assert _differs(_state(rha.net_.module_.encoder), _state(vae.net_.module_.encoder))
    _assert_same_state(_state(vae.net_.module_), original)  # the given estimator is untouched
    np.testing.assert_array_equal(vae.score_samples(X_test), scores)
    assert not np.array_equal(rha.score_samples(X_test), scores)
    # fit starts again from the copy: refitting reproduces the same model
    first = _state(rha.net_.module_)
    _assert_same_state(_state(rha.fit(X).net_.module_), first)
    # and the pickled copy carries the starting point
    again = pickle.loads(pickle.dumps(ReverseHalfAsleep.from_estimator(vae, alpha=0.7, rha_epochs=3)))
    _assert_same_state(_state(again.fit(X).net_.module_), first)


def test_from_estimator_errors(X):
    vae = VAEDensityEstimator(**TINY).fit(X)
    with pytest.raises(NotFittedError):
        ReverseHalfAsleep.from_estimator(VAEDensityEstimator(**TINY))
    with pytest.raises(TypeError, match="skvae estimator"):
        ReverseHalfAsleep.from_estimator(object())
    with pytest.raises(ValueError, match="latent_dim"):
        ReverseHalfAsleep.from_estimator(vae, latent_dim=5)
    with pytest.raises(ValueError, match="post_hoc"):
        ReverseHalfAsleep.from_estimator(vae, mode="joint")
    with pytest.raises(TypeError, match="no parameter"):
        ReverseHalfAsleep.from_estimator(vae, n_augment=3)
    with pytest.raises(ValueError, match="features"):
        ReverseHalfAsleep.from_estimator(vae, rha_epochs=1).fit(X[:, :10])


# -- the usual estimator properties --------------------------------------------


def test_two_optimizers_own_their_halves(X):
    net = ReverseHalfAsleep(**TINY).fit(X).net_
    assert net._optimizers == ["encoder_optimizer", "decoder_optimizer"]
    assert not hasattr(net, "optimizer_")
    enc = {id(p) for g in net.encoder_optimizer_.param_groups for p in g["params"]}
    dec = {id(p) for g in net.decoder_optimizer_.param_groups for p in g["params"]}
    assert enc == {id(p) for p in net.module_.encoder.parameters()}
    assert dec == {id(p) for p in net.module_.decoder.parameters()}


def test_history_records_phase_and_encoder_loss(X):
    est = ReverseHalfAsleep(alpha=0.5, **TINY).fit(X)
    assert est.history_[:, "phase"] == ["joint", "joint"]
    enc, dec = est.history_[:, "encoder_loss"], est.history_[:, "train_loss"]
    assert np.all(np.isfinite(enc)) and not np.allclose(enc, dec)


def test_determinism_and_global_rng(X, X_test):
    state = torch.get_rng_state()
    a = ReverseHalfAsleep(mode="post_hoc", rha_epochs=1, **TINY).fit(X).score_samples(X_test)
    b = ReverseHalfAsleep(mode="post_hoc", rha_epochs=1, **TINY).fit(X).score_samples(X_test)
    c = ReverseHalfAsleep(mode="post_hoc", rha_epochs=1, **dict(TINY, random_state=1)).fit(X).score_samples(X_test)
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_pickle_round_trip(X, X_test):
    est = ReverseHalfAsleep(latent_source="aggregate", **TINY).fit(X)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.score_samples(X_test), est.score_samples(X_test))
    np.testing.assert_array_equal(clone.sample(5, random_state=0), est.sample(5, random_state=0))


@pytest.mark.parametrize("params, error, match", [
    ({"alpha": 1.5}, ValueError, "alpha"),
    ({"alpha": -0.1}, ValueError, "alpha"),
    ({"alpha": "half"}, TypeError, "alpha"),
    ({"latent_source": "posterior"}, ValueError, "latent_source"),
    ({"mode": "sequential"}, ValueError, "mode"),
    ({"rha_epochs": -1}, ValueError, "rha_epochs"),
    ({"rha_epochs": 2.5}, TypeError, "rha_epochs"),
    ({"latent_dim": 0}, ValueError, "latent_dim"),
])
def test_bad_parameters(X, params, error, match):
    with pytest.raises(error, match=match):
        ReverseHalfAsleep(**dict(TINY, **params)).fit(X)


def test_bad_input(X):
    with pytest.raises(ValueError, match="0/1"):
        ReverseHalfAsleep(likelihood="bernoulli", **TINY).fit(X + 0.5)
    est = ReverseHalfAsleep(**TINY).fit(X)
    with pytest.raises(ValueError, match="features"):
        est.score(X[:, :5])
    with pytest.raises(ValueError):
        ReverseHalfAsleep(**TINY).fit(np.full((10, 3), np.nan))
