"""HierarchicalVAE: the ladder's scores, per-layer rates, validation, and the sklearn face."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from _helpers import mixed_table
from skvae._net import ELBO_DRAWS
from skvae._row_noise import row_normal_noise
from skvae import BitsBackCoder, HierarchicalVAE, VAEDensityEstimator
from skvae.diagnostics import generalization_gaps, optimal_inference, rate_distortion
from skvae.modules import precision_weighted
from skvae.objectives import ladder_elbo_terms, log_normal, log_standard_normal

SMALL = dict(hidden_layer_sizes=(16,), ladder_hidden_sizes=(8,), max_epochs=8, batch_size=32, lr=1e-2, random_state=0)


def binary_data(n=240, d=16, seed=0):
    """0/1 rows with structure (eight noisy prototypes), so that latents carry information."""
    rng = np.random.RandomState(seed)
    proto = rng.binomial(1, 0.5, size=(8, d))
    rows = proto[rng.randint(0, 8, n)]
    flip = rng.rand(n, d) < 0.05
    return np.where(flip, 1 - rows, rows).astype(np.float64)


@pytest.fixture(scope="module")
def X():
    return binary_data()


@pytest.fixture(scope="module")
def fitted(X):
    return HierarchicalVAE(latent_dims=(3, 2), betas=(1.0, 1.0), warmup_epochs=5, **{**SMALL, "max_epochs": 30}).fit(X)


def test_shapes(fitted, X):
    assert fitted.score_samples(X[:5]).shape == (5,)
    Z = fitted.transform(X[:5])
    assert Z.shape == (5, 5) and fitted.get_feature_names_out().shape == (5,)
    assert fitted.inverse_transform(Z).shape == (5, X.shape[1])
    assert fitted.sample(7, random_state=0).shape == (7, X.shape[1])
    assert set(np.unique(fitted.sample(50, random_state=1))) <= {0.0, 1.0}
    parts = fitted.elbo_components(X[:5])
    assert parts.rates.shape == (5, 2) and parts.rate_1.shape == (5,)
    assert np.isfinite(fitted.score(X))


def test_transform_is_the_path_of_posterior_means(fitted, X):
    module = fitted.net_.module_.double()
    try:
        x = torch.as_tensor(X[:4])
        with torch.no_grad():
            (mu1, lv1), (mu2, lv2) = module.bottom_up_estimates(x)
            mu_p, lv_p = module.prior_params(0, mu2)
            expected = torch.cat([precision_weighted(mu1, lv1, mu_p, lv_p)[0], mu2], dim=-1).numpy()
    finally:
        module.float()
    np.testing.assert_allclose(fitted.transform(X[:4]), expected, rtol=1e-10, atol=1e-12)


def test_inverse_transform_uses_z1_and_checks_shape(fitted, X):
    Z = fitted.transform(X[:3])
    Z_other = Z.copy()
    Z_other[:, 3:] += 5.0  # the upper layer does not enter p(x | z_1)
    np.testing.assert_array_equal(fitted.inverse_transform(Z), fitted.inverse_transform(Z_other))
    with pytest.raises(ValueError, match=r"\(n_samples, 5\)"):
        fitted.inverse_transform(Z[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        fitted.inverse_transform(np.full((1, 5), np.nan))


def test_iwae_above_elbo_on_average(fitted, X):
    elbo = fitted.score_samples(X)
    iwae = fitted.set_params(n_eval_samples=64).score_samples(X)
    fitted.set_params(n_eval_samples=1)
    assert iwae.mean() > elbo.mean()
    assert np.all(iwae < 0)


def test_scores_deterministic_and_batch_independent(fitted, X):
    for k in (1, 16):
        fitted.set_params(n_eval_samples=k)
        whole = fitted.score_samples(X)
        np.testing.assert_array_equal(whole, fitted.score_samples(X))
        np.testing.assert_allclose(whole[:7], fitted.score_samples(X[:7]), rtol=1e-12)
        np.testing.assert_allclose(whole[::-1], fitted.score_samples(X[::-1]), rtol=1e-12)
    fitted.set_params(n_eval_samples=1)


def test_fit_reproducible_and_global_rng_untouched(X):
    state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    a = HierarchicalVAE(latent_dims=(3, 2), **SMALL).fit(X)
    b = HierarchicalVAE(latent_dims=(3, 2), **SMALL).fit(X)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.sample(5, random_state=3), b.sample(5, random_state=3))


@pytest.mark.parametrize("betas, match", [
    ((1.0,), r"betas must have one entry per latent layer.*has 2.*has 1"),
    ((1.0, 1.0, 1.0), r"betas must have one entry per latent layer"),
    ((1.0, -0.5), r"betas\[1\] must lie in"),
    ((1.0, float("nan")), r"betas\[1\] must be a finite number"),
])
def test_betas_validation(X, betas, match):
    est = HierarchicalVAE(latent_dims=(3, 2), betas=betas, **SMALL)
    with pytest.raises(ValueError, match=match):
        est.fit(X)
    assert not hasattr(est, "net_")


@pytest.mark.parametrize("betas", [1.0, "1,1"])
def test_betas_must_be_a_sequence(X, betas):
    with pytest.raises(TypeError, match="betas must be a sequence"):
        HierarchicalVAE(latent_dims=(3, 2), betas=betas, **SMALL).fit(X)


@pytest.mark.parametrize("dims, error, match", [
    ((), ValueError, "latent_dims must name at least one latent layer"),
    ((3, 0), ValueError, r"latent_dims\[1\] must be >= 1"),
    ((3, 2.5), TypeError, r"latent_dims\[1\] must be an integer"),
    (4, TypeError, r"latent_dims must be a sequence.*\(4,\)"),
    (None, TypeError, "latent_dims must be a sequence"),
])
def test_latent_dims_validation(X, dims, error, match):
    with pytest.raises(error, match=match):
        HierarchicalVAE(latent_dims=dims, **SMALL).fit(X)


def test_other_parameter_validation(X):
    with pytest.raises(TypeError, match="warmup_epochs must be an integer"):
        HierarchicalVAE(latent_dims=(2,), warmup_epochs=1.5, **SMALL).fit(X)
    with pytest.raises(ValueError, match="ladder_hidden_sizes must be positive integers"):
        HierarchicalVAE(latent_dims=(2, 2), **{**SMALL, "ladder_hidden_sizes": (0,)}).fit(X)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive integers"):
        HierarchicalVAE(latent_dims=(2, 2), **{**SMALL, "hidden_layer_sizes": (-1,)}).fit(X)


def test_one_layer_is_the_single_layer_vae(X):
    """latent_dims=(d,) is VAEDensityEstimator's model, objective and training, bit for bit."""
    settings = dict(hidden_layer_sizes=(16,), max_epochs=4, batch_size=32, random_state=0)
    vae = VAEDensityEstimator(latent_dim=3, **settings).fit(X)
    ladder = HierarchicalVAE(latent_dims=(3,), **settings).fit(X)
    np.testing.assert_array_equal(vae.history_[:, "train_loss"], ladder.history_[:, "train_loss"])
    for k in (1, 20):
        vae.set_params(n_eval_samples=k)
        ladder.set_params(n_eval_samples=k)
        np.testing.assert_allclose(ladder.score_samples(X), vae.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(ladder.transform(X), vae.transform(X), rtol=1e-12)
    np.testing.assert_array_equal(ladder.sample(30, random_state=4), vae.sample(30, random_state=4))
    Z = vae.transform(X[:5])
    np.testing.assert_allclose(ladder.inverse_transform(Z), vae.inverse_transform(Z), rtol=1e-12)
    parts, vparts = ladder.elbo_components(X), vae.elbo_components(X)
    np.testing.assert_allclose(parts.rate_1, vparts.rate, rtol=1e-12)
    np.testing.assert_allclose(parts.distortion, vparts.distortion, rtol=1e-12)


def test_one_layer_elbo_definition(X):
    """ELBO = E_q log p(x|z) - KL(q(z|x) || N(0, I)), from the module's own pieces."""
    est = HierarchicalVAE(latent_dims=(2,), **SMALL).fit(X)
    module = est.net_.module_.double()
    try:
        x = torch.as_tensor(X[:6])
        eps = torch.as_tensor(row_normal_noise(X[:6], ELBO_DRAWS, 2), dtype=torch.float64)  # the rows' own noise
        with torch.no_grad():
            (mu, logvar), = module.bottom_up_estimates(x)
            z = mu + torch.exp(0.5 * logvar) * eps
            log_px = est.likelihood_.log_prob(module.decoder(z), x).mean(0)
            kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)
    finally:
        module.float()
    np.testing.assert_allclose(est.elbo_components(X[:6]).rate, kl.numpy(), rtol=1e-10)
    np.testing.assert_allclose(est.score_samples(X[:6]), (log_px - kl).numpy(), rtol=1e-10)


def test_layer_rates_sum_to_the_total_kl(fitted, X):
    parts = fitted.elbo_components(X)
    np.testing.assert_allclose(parts.rate_1 + parts.rate_2, parts.rate, rtol=1e-12)
    np.testing.assert_allclose(parts.rates.sum(1), parts.rate, rtol=1e-12)
    np.testing.assert_allclose(parts.elbo, -(parts.distortion + parts.rate), rtol=1e-12)
    assert np.all(parts.rates >= 0)
    # the total is KL(q(z|x) || p(z)) of the joint latents: E_q[log q(z|x) - log p(z)] by Monte Carlo
    module = fitted.net_.module_.double()
    try:
        x = torch.as_tensor(X[:5])
        eps = torch.randn(20000, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            layers = module.posterior(x, eps)
            log_q = sum(log_normal(z, mq, lq) for z, mq, lq, _, _ in layers)
            log_p = log_standard_normal(layers[1][0]) + log_normal(layers[0][0], layers[0][3], layers[0][4])
            mc_kl = (log_q - log_p).mean(0).numpy()
            _, _, rates = ladder_elbo_terms(module, fitted.likelihood_, x, eps)
            analytic = rates.mean(0).numpy()
    finally:
        module.float()
    np.testing.assert_allclose(analytic.sum(-1), mc_kl, atol=0.05)
    np.testing.assert_allclose(parts.rates[:5], analytic, atol=0.3)  # 8 draws per row against 20,000
    assert mc_kl.mean() > 0.1  # the model is not collapsed, so the check has something to compare


def test_betas_weight_the_rates_in_the_objective(fitted, X):
    module = fitted.net_.module_.double()
    try:
        x = torch.as_tensor(X[:6])
        eps = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            elbo, distortion, rates = ladder_elbo_terms(module, fitted.likelihood_, x, eps, betas=(0.5, 3.0))
    finally:
        module.float()
    np.testing.assert_allclose(elbo, -distortion - 0.5 * rates[:, 0] - 3.0 * rates[:, 1], rtol=1e-12)


def test_a_large_beta_switches_a_layer_off(X):
    free = HierarchicalVAE(latent_dims=(3, 2), betas=(1.0, 0.2), **{**SMALL, "max_epochs": 30}).fit(X)
    taxed = HierarchicalVAE(latent_dims=(3, 2), betas=(1.0, 20.0), **{**SMALL, "max_epochs": 30}).fit(X)
    assert taxed.elbo_components(X).rate_2.mean() < 0.2 * free.elbo_components(X).rate_2.mean()


def test_precision_weighted():
    mu, logvar = precision_weighted(torch.tensor([1.0]), torch.log(torch.tensor([2.0])),
                                    torch.tensor([4.0]), torch.log(torch.tensor([1.0])))
    # precisions 1/2 and 1: variance 2/3, mean (1 * 1/2 + 4 * 1) * 2/3 = 3
    np.testing.assert_allclose(logvar.exp().numpy(), [2 / 3], rtol=1e-6)
    np.testing.assert_allclose(mu.numpy(), [3.0], rtol=1e-6)


def test_warmup(X):
    est = HierarchicalVAE(latent_dims=(3, 2), warmup_epochs=4, **SMALL)
    est.fit(X)
    net = est.net_
    assert net.warmup_epochs == 4 and net.rate_scale() == 1.0
    scales = []
    est2 = HierarchicalVAE(latent_dims=(3, 2), warmup_epochs=4, **SMALL)
    for _ in range(6):
        est2.partial_fit(X)
        scales.append(est2.net_.criterion_.rate_scale)
    assert scales == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert est2.net_.counts_for_early_stopping()


def test_early_stopping_skips_the_warmup(X):
    est = HierarchicalVAE(latent_dims=(3, 2), warmup_epochs=3, early_stopping=True, n_iter_no_change=2,
                          **{**SMALL, "max_epochs": 12}).fit(X)
    assert np.isfinite(est.best_validation_score_)
    assert len(est.history_[:, "valid_elbo"]) >= 5  # 3 uncounted warm-up epochs plus at least patience


def test_grid_search_over_betas(X):
    grid = GridSearchCV(HierarchicalVAE(latent_dims=(2, 2), **{**SMALL, "max_epochs": 3}),
                        {"betas": [(1.0, 1.0), (1.0, 4.0)]}, cv=2)
    grid.fit(X)
    assert grid.best_params_["betas"] in [(1.0, 1.0), (1.0, 4.0)]
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))


def test_mixed_table():
    table = mixed_table(300, seed=0)
    est = HierarchicalVAE(latent_dims=(3, 2), **SMALL).fit(table)
    assert set(est.schema_.spec) >= {"categorical"}
    scores = est.score_samples(table)
    assert scores.shape == (300,) and np.all(np.isfinite(scores))
    drawn = est.sample(20, random_state=0)
    assert list(drawn.columns) == list(table.columns)
    assert set(drawn["color"]) <= {"red", "green", "blue"}
    holes = table.copy()
    holes.loc[::5, "size"] = np.nan
    for method in ("mean", "sample"):
        filled = est.impute(holes, method=method, random_state=0)
        assert filled["size"].notna().all()
        assert (filled.loc[1::5, "size"] == table.loc[1::5, "size"]).all()
    assert est.transform(table).shape == (300, 5)


def test_impute_binary_and_bad_method(fitted, X):
    holes = X[:10].copy()
    holes[:, 0] = np.nan
    with pytest.raises(ValueError):  # a plain 0/1 model has no missing cells
        fitted.impute(holes)
    with pytest.raises(ValueError, match="method must be"):
        fitted.impute(X[:2], method="median")


def test_pickle_and_warm_start(fitted, X):
    back = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(back.score_samples(X), fitted.score_samples(X))
    est = HierarchicalVAE(latent_dims=(3, 2), warm_start=True, **{**SMALL, "max_epochs": 2}).fit(X)
    est.fit(X)
    assert len(est.history_) == 4


def test_rate_distortion_reports_layers(fitted, X):
    rd = rate_distortion(fitted, X, n_samples=2)
    parts = fitted.elbo_components(X)
    np.testing.assert_allclose(rd.rate_1, parts.rate_1)
    np.testing.assert_allclose(rd.rate_2, parts.rate_2)
    np.testing.assert_allclose(rd.rate, parts.rate)
    assert rd.rate.mean() > 0.5  # an informative model, so that the estimate is not all noise
    assert -0.05 <= rd.mutual_information <= rd.mi_upper_bound + 0.05
    # I(X;Z) + KL(q(z) || p(z)) estimates the mean rate
    assert abs(rd.mutual_information + rd.marginal_kl - rd.rate.mean()) < 0.25 * rd.rate.mean() + 0.2


def test_single_layer_only_diagnostics_refuse(fitted, X):
    with pytest.raises(TypeError, match="not built for HierarchicalVAE"):
        optimal_inference(fitted, X)
    with pytest.raises(TypeError, match="not built for HierarchicalVAE"):
        generalization_gaps(fitted, X, X)
    with pytest.raises(TypeError, match="single-layer"):
        fitted.net_.elbo_components(X, refine_steps=3)


def test_bits_back_coder_codes_hierarchical_models(fitted, X):
    # the ladder coder itself: tests/test_hierarchical_coding.py
    coder = BitsBackCoder(fitted).fit()
    assert np.array_equal(coder.decode(coder.encode(X)), X)
    coder = BitsBackCoder(HierarchicalVAE(latent_dims=(2, 2), **SMALL)).fit(X)  # trains a clone
    assert np.array_equal(coder.decode(coder.encode(X[:50])), X[:50])


def test_plot_layer_rates(fitted, X):
    import matplotlib
    matplotlib.use("Agg")
    from skvae.plotting import plot_layer_rates

    parts = fitted.elbo_components(X)
    ax = plot_layer_rates([(1.0, 1.0), (1.0, 2.0)], [parts, rate_distortion(fitted, X)])
    assert len(ax.patches) == 4 and len(ax.right_ax_.get_lines()) == 1
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights[0], parts.rate_1.mean())
    with pytest.raises(ValueError, match="model 0 has 2 betas but 3 layer rates"):
        plot_layer_rates([(1, 1)], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="rates has 1 models, betas 2"):
        plot_layer_rates([(1, 1), (2, 1)], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="at least one"):
        plot_layer_rates([], [])
    import matplotlib.pyplot as plt

    plt.close("all")


def test_fit_in_chunks(X):
    from skvae.streaming import fit_in_chunks

    est = fit_in_chunks(HierarchicalVAE(latent_dims=(3, 2), warmup_epochs=2, **SMALL), X, n_epochs=3,
                        chunk_size=100, random_state=0)
    assert len(est.history_) == 9  # 3 epochs x 3 chunks, one partial_fit each
    assert est.net_.criterion_.rate_scale == 1.0 and np.isfinite(est.score(X))
