"""Tests of WeightedSelfAugmentation (WSAVAE)."""

import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from skvae._wsa_objective import (
    density_ratio_weights,
    discriminator_bce,
    effective_sample_size,
    weighted_augmentation_loss,
)
from skvae.objectives import elbo_terms
from skvae.wsa import WSAVAE, PlainVAEWarning, WeightedSelfAugmentation

# early_stopping=False: these tests count the algorithm's steps on every row of X_small (WSAVAE holds
# out a validation share by default; tests/test_early_stopping.py covers that path)
TINY = dict(latent_dim=2, hidden_layer_sizes=(16,), discriminator_hidden_layer_sizes=(16,), batch_size=50,
            random_state=0, early_stopping=False)
WSA_KEYS = ("weight_mean", "weight_max", "weight_ess", "discriminator_loss", "discriminator_accuracy")
WEIGHT_KEYS = ("weight_mean", "weight_max", "weight_ess")


@pytest.fixture(scope="module")
def X_small():
    rng = np.random.RandomState(0)
    z = rng.rand(200, 1)
    return (rng.rand(200, 8) < np.where(np.arange(8) < 4, z, 1 - z)).astype(np.float64)


def test_alias():
    assert WSAVAE is WeightedSelfAugmentation


# -- the pure objective --------------------------------------------------------

def test_weight_formula_against_hand_computation():
    logits = torch.tensor([-10.0, -1.0, 0.0, 2.0, 10.0], requires_grad=True)
    weights = density_ratio_weights(logits, weight_clip=1000.0)
    expected = []
    for logit in logits.tolist():
        d = 1.0 / (1.0 + math.exp(-logit))
        d = min(max(d, 1e-3), 1 - 1e-3)
        expected.append(d / (1 - d))
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-5)
    assert weights[0].item() == pytest.approx(1e-3 / 0.999, rel=1e-5)
    assert weights[-1].item() == pytest.approx(999.0, rel=1e-5)
    assert not weights.requires_grad
    clipped = density_ratio_weights(logits, weight_clip=5.0)
    np.testing.assert_allclose(clipped.numpy(), np.minimum(expected, 5.0), rtol=1e-5)


def test_flattening_formula():
    logits = torch.tensor([-3.0, -0.5, 0.0, 1.0, 4.0])
    for power in (0.0, 0.3, 0.5, 1.0):
        w = density_ratio_weights(logits, weight_clip=1e6, power=power)
        np.testing.assert_allclose(w.numpy(), np.exp(logits.numpy()) ** power, rtol=1e-5)
    np.testing.assert_array_equal(density_ratio_weights(logits, power=0.0).numpy(), np.ones(5))
    # flattening acts after the logit clip: a huge logit is bounded by 999 ** power
    assert density_ratio_weights(torch.tensor([50.0]), power=0.5).item() == pytest.approx(999.0**0.5, rel=1e-5)


def test_clipping_formula_floor_and_cap():
    logits = torch.tensor([-6.0, -2.0, 0.0, 2.0, 6.0])
    raw = np.exp(logits.numpy())
    w = density_ratio_weights(logits, weight_clip=4.0, floor=0.25)
    np.testing.assert_allclose(w.numpy(), np.minimum(np.maximum(raw, 0.25), 4.0), rtol=1e-6)
    assert w.min().item() == pytest.approx(0.25) and w.max().item() == pytest.approx(4.0)
    # the floor applies to the flattened weight: max(w ** power, floor)
    w = density_ratio_weights(logits, weight_clip=1e6, power=0.5, floor=0.5)
    np.testing.assert_allclose(w.numpy(), np.maximum(raw**0.5, 0.5), rtol=1e-6)


def test_self_normalization_formula():
    logits = torch.tensor([-1.0, 0.0, 0.5, 3.0], requires_grad=True)
    w = density_ratio_weights(logits, weight_clip=10.0, self_normalize=True)
    raw = np.minimum(np.exp(logits.detach().numpy()), 10.0)  # normalization comes after clipping
    np.testing.assert_allclose(w.numpy(), raw / raw.mean(), rtol=1e-6)
    assert w.mean().item() == pytest.approx(1.0)
    assert not w.requires_grad
    # invariant to a shift of all logits (a constant factor of the odds), unless clipped
    shifted = density_ratio_weights(logits.detach() - 2.0, weight_clip=10.0, self_normalize=True)
    np.testing.assert_allclose(shifted.numpy(), np.exp(logits.detach().numpy())
                               / np.exp(logits.detach().numpy()).mean(), rtol=1e-5)
    # all three together: max(w ** a, floor), capped, then divided by the mean
    w = density_ratio_weights(logits, weight_clip=2.0, power=0.5, floor=0.7, self_normalize=True)
    expected = np.minimum(np.maximum(np.exp(logits.detach().numpy()) ** 0.5, 0.7), 2.0)
    np.testing.assert_allclose(w.numpy(), expected / expected.mean(), rtol=1e-6)


def test_balanced_bce_with_unequal_counts():
    real, fake = torch.tensor([1.0, -0.5]), torch.tensor([0.0, 2.0, -1.0, -3.0])
    sp = lambda t: math.log1p(math.exp(t))  # softplus
    expected = 0.5 * np.mean([sp(-v) for v in real.tolist()]) + 0.5 * np.mean([sp(v) for v in fake.tolist()])
    assert discriminator_bce(real, fake).item() == pytest.approx(expected, rel=1e-6)


def test_reductions_by_hand():
    real = torch.tensor(2.0)
    fake = torch.tensor([1.0, 3.0])
    w = torch.tensor([3.0, 1.0])
    # per row: 0.5 * 2 + 0.5 * mean(3 * 1, 1 * 3) = 2.5; batch mean: 1 + 0.5 * 2 * 2 = 3.
    assert weighted_augmentation_loss(real, fake, w, "per_sample").item() == pytest.approx(2.5)
    assert weighted_augmentation_loss(real, fake, w, "batch_mean").item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="reduction"):
        weighted_augmentation_loss(real, fake, w, "sum")


def test_effective_sample_size_and_bce():
    assert effective_sample_size(4.0, 4.0, 4) == pytest.approx(1.0)
    w = np.array([1.0, 0.0, 0.0, 0.0])
    assert effective_sample_size(w.sum(), (w**2).sum(), 4) == pytest.approx(0.25)
    loss = discriminator_bce(torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 0.0]))
    expected = -(math.log(0.5) + math.log(1 / (1 + math.exp(-2))) + math.log(1 - 1 / (1 + math.exp(1)))
                 + math.log(0.5)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)


# -- the training step ---------------------------------------------------------

@pytest.fixture(scope="module")
def fitted(X_small):
    return WSAVAE(max_epochs=3, warmup_epochs=1, **TINY).fit(X_small)


def test_net_loss_matches_formula_for_both_reductions(fitted, X_small):
    net = fitted.net_
    x = torch.as_tensor(X_small[:20], dtype=torch.float32)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        fakes = net.draw_fakes(x, 4)
        weights = net.fake_weights(fakes)
        assert weights.std() > 0  # otherwise both reductions coincide
        losses = {}
        for reduction in ("per_sample", "batch_mean"):
            net.weight_reduction = reduction
            torch.manual_seed(2)
            losses[reduction] = net.wsa_loss(x, fakes, weights).item()
        net.weight_reduction = "per_sample"
        torch.manual_seed(2)  # real and generated rows go through the VAE in one pass, so one noise draw
        elbo = elbo_terms(net.module_, net.likelihood, torch.cat([x, fakes]))[0]
        real_elbo, fake_elbo = elbo[:len(x)], elbo[len(x):]
    per_sample = 0.5 * -real_elbo.mean() + 0.5 * (weights * -fake_elbo).mean()
    batch_mean = 0.5 * -real_elbo.mean() + 0.5 * weights.mean() * (-fake_elbo).mean()
    assert losses["per_sample"] == pytest.approx(per_sample.item(), rel=1e-6)
    assert losses["batch_mean"] == pytest.approx(batch_mean.item(), rel=1e-6)
    assert abs(losses["per_sample"] - losses["batch_mean"]) > 1e-4


def test_reduction_changes_training_only_after_warmup(X_small):
    fits = {r: WSAVAE(max_epochs=4, warmup_epochs=2, weight_reduction=r, **TINY).fit(X_small)
            for r in ("per_sample", "batch_mean")}
    a, b = (fits[r].history_[:, "train_loss"] for r in ("per_sample", "batch_mean"))
    assert a[:2] == b[:2]
    assert a[2] != b[2]


@pytest.mark.parametrize("latent_source", ["prior", "aggregate"])
def test_fakes_are_draws_without_gradient(fitted, X_small, latent_source):
    net = fitted.net_
    net.latent_source = latent_source
    try:
        x = torch.as_tensor(X_small[:10], dtype=torch.float32)
        with torch.random.fork_rng():
            fakes = net.draw_fakes(x, 3)
            weights = net.fake_weights(fakes)
    finally:
        net.latent_source = "prior"
    assert fakes.shape == (30, 8)
    assert not fakes.requires_grad and fakes.grad_fn is None
    assert not weights.requires_grad and weights.grad_fn is None
    assert set(np.unique(fakes.numpy())) <= {0.0, 1.0}  # Bernoulli draws, not means
    assert net.module_.training  # sampling turns dropout off only temporarily


def test_discriminator_trains_during_warmup(X_small):
    init = WSAVAE(max_epochs=0, warmup_epochs=2, **TINY).fit(X_small)
    with pytest.warns(PlainVAEWarning):
        warm = WSAVAE(max_epochs=2, warmup_epochs=2, **TINY).fit(X_small)
    state0 = init.net_.discriminator_.state_dict()
    assert any(not torch.equal(v, state0[k]) for k, v in warm.net_.discriminator_.state_dict().items()), \
        "Algorithm 1 trains the discriminator in the warm-up epochs too"
    for row in warm.history_:
        assert all(key in row for key in WSA_KEYS)
        assert all(math.isnan(row[key]) for key in WEIGHT_KEYS)  # no weight was used yet
        assert 0 <= row["discriminator_accuracy"] <= 1 and row["discriminator_loss"] > 0


def test_warmup_vae_step_is_the_plain_elbo(X_small, monkeypatch):
    """In warm-up the VAE loss never sees generated rows; the discriminator sees them after the VAE step."""
    net_class = WSAVAE._net_class
    events = []
    monkeypatch.setattr(net_class, "wsa_loss", lambda *a, **k: events.append("wsa_loss"))
    original_step = net_class.discriminator_step

    def spy(self, x, fakes=None):
        events.append(("disc", len(x), None if fakes is None else len(fakes)))
        return original_step(self, x, fakes)

    monkeypatch.setattr(net_class, "discriminator_step", spy)
    with pytest.warns(PlainVAEWarning):
        est = WSAVAE(max_epochs=2, warmup_epochs=2, n_augment=2, **TINY).fit(X_small)
    assert events == [("disc", 50, 100)] * 8  # 4 batches x 2 epochs, n_augment fakes per real row
    # the VAE's loss in warm-up is the plain negative ELBO of the batch: the recorded epoch loss is
    # the mean of those, and every batch step is VAENet's own (the ELBO criterion).
    assert all(np.isfinite(est.history_[:, "train_loss"]))


def test_warmup_switching_and_epoch_counter(X_small):
    warm = WSAVAE(max_epochs=1, warmup_epochs=2, warm_start=True, **TINY)
    with pytest.warns(PlainVAEWarning):
        warm.fit(X_small)
    warm.partial_fit(X_small)  # partial_fit continues the epoch count kept in the history; epoch 2: warm-up
    assert math.isnan(warm.history_[-1, "weight_ess"])
    warm.partial_fit(X_small)  # epoch 3: WSA
    assert np.isfinite([warm.history_[-1, key] for key in WSA_KEYS]).all()

    ws = WSAVAE(max_epochs=2, warmup_epochs=2, warm_start=True, **TINY)
    with pytest.warns(PlainVAEWarning):
        ws.fit(X_small)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlainVAEWarning)  # the second fit trains past the warm-up
        ws.fit(X_small)
    assert len(ws.history_) == 4
    assert [bool(np.isfinite(row["weight_ess"])) for row in ws.history_] == [False, False, True, True]


@pytest.mark.parametrize("max_epochs, warmup", [(3, 3), (2, 5), (1, 50)])
def test_fit_within_warmup_warns_and_history_has_nan_keys(X_small, max_epochs, warmup):
    with pytest.warns(PlainVAEWarning, match="plain VAE"):
        est = WSAVAE(max_epochs=max_epochs, warmup_epochs=warmup, **TINY).fit(X_small)
    for key in WEIGHT_KEYS:  # used to raise KeyError
        values = est.history_[:, key]
        assert len(values) == max_epochs and all(math.isnan(v) for v in values)
    for key in ("discriminator_loss", "discriminator_accuracy"):
        assert np.isfinite(est.history_[:, key]).all()


def test_no_warning_after_warmup(X_small):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlainVAEWarning)
        WSAVAE(max_epochs=2, warmup_epochs=1, **TINY).fit(X_small)
        WSAVAE(max_epochs=0, warmup_epochs=1, **TINY).fit(X_small)  # an untrained model, not a VAE fit


def test_history_statistics_are_consistent(fitted):
    for row in fitted.history_[1:]:
        assert 0 < row["weight_mean"] <= row["weight_max"] <= 1000
        assert 0 < row["weight_ess"] <= 1
        assert 0 <= row["discriminator_accuracy"] <= 1
        assert row["discriminator_loss"] > 0


def test_unweighted_ablation_uses_unit_weights(X_small, monkeypatch):
    est = WSAVAE(max_epochs=3, warmup_epochs=1, weighted=False, **TINY)
    calls = []
    original = type(est)._net_class.fake_weights
    monkeypatch.setattr(type(est)._net_class, "fake_weights",
                        lambda self, fakes: calls.append(1) or original(self, fakes))
    est.fit(X_small)
    assert calls == []
    for row in est.history_[1:]:
        assert row["weight_mean"] == row["weight_max"] == row["weight_ess"] == 1.0
        assert "discriminator_loss" in row
    weighted = WSAVAE(max_epochs=3, warmup_epochs=1, **TINY).fit(X_small)
    assert weighted.history_[-1, "weight_max"] != 1.0


def test_weights_in_loss_come_from_discriminator(fitted, X_small, monkeypatch):
    net_class = type(fitted)._net_class
    seen = []
    original = net_class.wsa_loss

    def spy(self, x, fakes, weights):
        seen.append((fakes, weights, self.fake_weights(fakes)))
        return original(self, x, fakes, weights)

    monkeypatch.setattr(net_class, "wsa_loss", spy)
    WSAVAE(max_epochs=2, warmup_epochs=1, **TINY).fit(X_small)
    assert len(seen) == 4  # 200 rows / 50 per batch, one WSA epoch
    fakes, weights, recomputed = seen[0]
    assert len(fakes) == 50  # n_augment=1 fake per real row by default
    torch.testing.assert_close(weights, recomputed)


def test_reproducible_and_global_rng_untouched(X_small):
    def augment(X, rng):
        flip = rng.random(X.shape) < 0.05
        return np.where(flip, 1 - X, X)

    torch.manual_seed(123)
    np.random.seed(123)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    fits = [WSAVAE(max_epochs=3, warmup_epochs=1, augment=augment, latent_source="aggregate", **TINY).fit(X_small)
            for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    h0, h1 = fits
    for key in ("train_loss",) + WSA_KEYS:
        assert h0.history_[:, key][1:] == h1.history_[:, key][1:]
    np.testing.assert_array_equal(fits[0].score_samples(X_small), fits[1].score_samples(X_small))
    other = WSAVAE(max_epochs=3, warmup_epochs=1, augment=augment, latent_source="aggregate",
                   **{**TINY, "random_state": 1}).fit(X_small)
    assert other.history_[-1, "train_loss"] != h0.history_[-1, "train_loss"]


def test_augment_sees_every_batch_and_bad_output_raises(X_small):
    calls = []

    def augment(X, rng):
        calls.append(X.shape)
        assert isinstance(rng, np.random.Generator)
        return X

    WSAVAE(max_epochs=2, warmup_epochs=1, augment=augment, **TINY).fit(X_small)
    assert calls == [(50, 8)] * 8
    with pytest.raises(ValueError, match="augment"):
        WSAVAE(max_epochs=1, augment=lambda X, rng: X[:, :3], **TINY).fit(X_small)


class RecordingDiscriminator(nn.Module):
    """A small discriminator that records what it is shown."""

    def __init__(self, n_features):
        super().__init__()
        self.linear = nn.Linear(n_features, 1)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, tuple(x.shape), x.detach().clone()))
        return self.linear(x).squeeze(-1)


@pytest.mark.parametrize("n_augment", [1, 3])
def test_discriminator_one_pass_per_batch_on_the_weighted_fakes(X_small, monkeypatch, n_augment):
    """Algorithm 1: one draw of fakes per batch; they are weighted, train the VAE, then the discriminator."""
    net_class = WSAVAE._net_class
    weighted = []
    original = net_class.wsa_loss

    def spy(self, x, fakes, weights):
        weighted.append((fakes.clone(), weights.clone()))
        return original(self, x, fakes, weights)

    monkeypatch.setattr(net_class, "wsa_loss", spy)
    est = WSAVAE(max_epochs=2, warmup_epochs=1, discriminator=RecordingDiscriminator(8), n_augment=n_augment,
                 **{**TINY, "batch_size": 40}).fit(X_small)
    calls = est.net_.discriminator_.calls
    assert all(training for training, _, _ in calls)  # no separate evaluation pass for the weights
    n = 40 * (1 + n_augment)
    assert [c[1] for c in calls] == [(n, 8)] * 10  # 5 batches x 2 epochs, one forward pass each
    X_rows = {tuple(r) for r in X_small}
    for _, _, x in calls:
        assert all(tuple(r) in X_rows for r in x[:40].double().numpy())  # the real part: training rows
    for (_, _, x), (fakes, weights) in zip(calls[5:], weighted):
        torch.testing.assert_close(x[40:], fakes)  # the discriminator trains on the fakes that were weighted
        assert weights.shape == (40 * n_augment,)


def test_vae_sees_real_and_generated_rows_in_one_pass(fitted, X_small, monkeypatch):
    net = fitted.net_
    calls = []
    encoder = net.module_.encoder
    monkeypatch.setattr(encoder, "forward", lambda x, noise_std=0.0, _f=encoder.forward: calls.append(len(x))
                        or _f(x, noise_std))
    x = torch.as_tensor(X_small[:20], dtype=torch.float32)
    fakes = net.draw_fakes(x, 2)
    net.wsa_loss(x, fakes, torch.ones(40))
    assert calls == [60]


def test_default_stabilizers_and_training_length():
    params = WSAVAE().get_params()
    # issue 17: long enough for the plain VAE to over-fit, stopped on held-out rows (bench_wsa default-report)
    assert params["early_stopping"] is True and params["n_iter_no_change"] == 30 and params["max_epochs"] == 500
    assert params["self_normalize"] is True and params["weight_power"] == 0.5 and params["weight_floor"] == 0.0
    assert params["n_augment"] == 1
    assert params["discriminator_hidden_layer_sizes"] == (64,) and params["discriminator_lr"] == 1e-4


def test_stabilizers_reach_the_training_weights(X_small):
    raw = dict(self_normalize=False, weight_power=1.0)
    normalized = WSAVAE(max_epochs=3, warmup_epochs=1, **{**raw, "self_normalize": True}, **TINY).fit(X_small)
    for row in normalized.history_[1:]:
        assert row["weight_mean"] == pytest.approx(1.0, abs=1e-6)  # every batch's weights average to 1
    unnormalized = WSAVAE(max_epochs=3, warmup_epochs=1, **raw, **TINY).fit(X_small)
    assert all(abs(row["weight_mean"] - 1.0) > 1e-4 for row in unnormalized.history_[1:])
    flat = WSAVAE(max_epochs=3, warmup_epochs=1, **{**raw, "weight_power": 0.0}, **TINY).fit(X_small)
    for row in flat.history_[1:]:
        assert row["weight_mean"] == row["weight_max"] == pytest.approx(1.0) and row["weight_ess"] == pytest.approx(1.0)
    floored = WSAVAE(max_epochs=3, warmup_epochs=1, weight_floor=0.9, weight_clip=1.1, **raw, **TINY).fit(X_small)
    for row in floored.history_[1:]:
        assert 0.9 <= row["weight_mean"] <= row["weight_max"] <= 1.1 + 1e-6
    logits = torch.tensor([-5.0, 0.0, 0.05, 5.0])
    torch.testing.assert_close(floored.net_.stabilized_weights(logits),
                               torch.tensor([0.9, 1.0, math.exp(0.05), 1.1]))
    default = WSAVAE(max_epochs=2, warmup_epochs=1, **TINY).fit(X_small)  # flattened by 0.5, self-normalized
    w = np.exp(0.5 * logits.numpy())
    torch.testing.assert_close(default.net_.stabilized_weights(logits), torch.tensor(w / w.mean(), dtype=torch.float32))


def test_sample_with_weights(fitted):
    X, w = fitted.sample_with_weights(50, random_state=3)
    np.testing.assert_array_equal(X, fitted.sample(50, random_state=3))
    with torch.no_grad():
        logits = fitted.net_.discriminator_(torch.as_tensor(X, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(w, np.exp(np.clip(logits, -math.log(999), math.log(999))), rtol=1e-4)
    X2, w2 = fitted.sample_with_weights(50, random_state=3)
    np.testing.assert_array_equal(w, w2)
    assert w.shape == (50,) and w.std() > 0


def test_custom_discriminator_set_params_and_checkpoint(X_small, tmp_path):
    disc = nn.Sequential(nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 1), nn.Flatten(0))
    before = [p.detach().clone() for p in disc.parameters()]
    est = WSAVAE(max_epochs=2, warmup_epochs=1, discriminator=disc, discriminator_lr=0.01, **TINY).fit(X_small)
    assert all(torch.equal(a, b) for a, b in zip(before, disc.parameters())), "the parameter must not change"
    assert est.net_.discriminator_ is not disc
    assert est.net_.discriminator_optimizer_.param_groups[0]["lr"] == 0.01
    assert est.net_.optimizer_.param_groups[0]["lr"] == est.lr

    # the discriminator is a registered skorch module: checkpoints include it
    est.net_.save_params(f_params=tmp_path / "p.pt", f_discriminator=tmp_path / "d.pt")
    other = WSAVAE(max_epochs=2, warmup_epochs=1, discriminator=disc, **{**TINY, "random_state": 5}).fit(X_small)
    other.net_.load_params(f_params=tmp_path / "p.pt", f_discriminator=tmp_path / "d.pt")
    np.testing.assert_array_equal(est.sample_with_weights(20, random_state=0)[1],
                                  other.sample_with_weights(20, random_state=0)[1])

    default = WSAVAE(max_epochs=1, warmup_epochs=0, **TINY).fit(X_small)
    default.net_.set_params(discriminator__hidden_layer_sizes=(3,))
    assert default.net_.discriminator_.net[0].out_features == 3
    default.net_.set_params(discriminator_optimizer__lr=0.5)
    assert default.net_.discriminator_optimizer_.param_groups[0]["lr"] == 0.5
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.score_samples(X_small), est.score_samples(X_small))


@pytest.mark.parametrize("params, error, match", [
    ({"n_augment": 0}, ValueError, "n_augment"),
    ({"n_augment": 1.5}, TypeError, "n_augment"),
    ({"warmup_epochs": -1}, ValueError, "warmup_epochs"),
    ({"weight_clip": 0.0}, ValueError, "weight_clip"),
    ({"weight_clip": "big"}, TypeError, "weight_clip"),
    ({"weight_reduction": "sum"}, ValueError, "weight_reduction"),
    ({"weight_power": 1.5}, ValueError, "weight_power"),
    ({"weight_power": -0.1}, ValueError, "weight_power"),
    ({"weight_power": "half"}, TypeError, "weight_power"),
    ({"weight_floor": -1.0}, ValueError, "weight_floor"),
    ({"weight_floor": 2000.0}, ValueError, "weight_floor"),
    ({"self_normalize": "yes"}, TypeError, "self_normalize"),
    ({"weighted": "yes"}, TypeError, "weighted"),
    ({"latent_source": "posterior"}, ValueError, "latent_source"),
    ({"discriminator": "mlp"}, TypeError, "discriminator"),
    ({"discriminator_hidden_layer_sizes": (0,)}, ValueError, "discriminator_hidden_layer_sizes"),
    ({"discriminator_lr": 0.0}, ValueError, "discriminator_lr"),
    ({"augment": 3}, TypeError, "augment"),
    ({"latent_dim": 0}, ValueError, "latent_dim"),
])
def test_bad_params_raise(X_small, params, error, match):
    with pytest.raises(error, match=match):
        WSAVAE(**{**TINY, "max_epochs": 1, **params}).fit(X_small)


def test_bad_input_raises(X_small):
    with pytest.raises(ValueError, match="bernoulli"):
        WSAVAE(max_epochs=1, likelihood="bernoulli", **TINY).fit(X_small + 0.5)


def test_parameters_follow_base_parameters():
    import inspect

    from skvae._base import BaseVAE

    base = list(inspect.signature(BaseVAE.__init__).parameters)
    own = list(inspect.signature(WSAVAE.__init__).parameters)
    assert own[:len(base)] == base
    assert {"n_augment", "warmup_epochs", "weight_clip", "weight_power", "weight_floor", "self_normalize",
            "weight_reduction", "weighted", "latent_source", "discriminator", "discriminator_hidden_layer_sizes",
            "discriminator_lr", "augment"} <= set(own)


def test_nltcs_fit_and_score(nltcs):
    train, test = nltcs
    rng = np.random.RandomState(0)
    X = train[rng.choice(len(train), 1500, replace=False)]
    X_test = test[:500]
    untrained = WSAVAE(latent_dim=16, max_epochs=0, random_state=0).fit(X).score(X_test)
    est = WSAVAE(latent_dim=16, max_epochs=3, warmup_epochs=1, random_state=0).fit(X)
    score = est.score(X_test)
    assert np.isfinite(score) and score < 0
    assert score > untrained + 1.0
    assert score > 16 * math.log(0.5)  # better than a fair coin per column
    assert 0 < est.bits_per_dim(X_test) < 1
    assert all(key in est.history_[-1] for key in WSA_KEYS)


# -- scikit-learn's checks ---------------------------------------------------------

SMALL = dict(latent_dim=2, hidden_layer_sizes=(8,), discriminator_hidden_layer_sizes=(8,), max_epochs=3,
             warmup_epochs=1, batch_size=16, likelihood="gaussian", random_state=0)


@parametrize_with_checks([WSAVAE(**SMALL),
                          WSAVAE(weight_reduction="batch_mean", latent_source="aggregate", n_augment=2, **SMALL)])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
