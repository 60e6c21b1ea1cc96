"""Missing cells in tables: masked likelihood, the encoder's mask, imputation, coding, clear refusals."""

import numpy as np
import pandas as pd
import pytest
import torch

from skvae import ReverseHalfAsleep, VAEDensityEstimator, WSAVAE
from skvae.coding import BitsBackCoder
from skvae.coding._container import parse
from skvae.likelihoods import Bernoulli, Categorical, Gaussian, Mixed

from _helpers import mixed_table, rewrite_header, with_holes

SMALL = dict(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=25, random_state=0)


@pytest.fixture(scope="module")
def holes():
    """A table with 15 % of its cells missing in every column, in pandas' nullable types."""
    table = with_holes(mixed_table(400, 0).convert_dtypes(), 0.15, 0)
    return table, VAEDensityEstimator(**SMALL).fit(table)


def test_missing_cells_leave_the_log_probability():
    lik = Mixed([(Gaussian(), [0]), (Bernoulli(), [1]), (Categorical([3]), [2])])
    params = torch.randn(2, 2 + 1 + 3, dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[0.3, 1.0, 2.0], [float("nan"), 0.0, float("nan")]], dtype=torch.float64)
    per_feature = lik.log_prob_per_feature(params, x)
    full = lik.log_prob_per_feature(params, torch.nan_to_num(x))
    assert per_feature[1, 0] == 0 and per_feature[1, 2] == 0 and per_feature[1, 1] == full[1, 1]
    assert torch.equal(per_feature[0], full[0])
    lik.log_prob(params, x).sum().backward()
    assert torch.isfinite(params.grad).all()


def test_a_table_with_missing_cells_trains_and_scores(holes):
    table, vae = holes
    assert vae.schema_.missing_in_fit and table.isna().to_numpy().mean() > 0.1
    assert vae.schema_.spec == {"categorical": ["color"], "integer": ["count"], "bernoulli": ["flag"],
                                "gaussian": ["size"]}
    assert np.isfinite(vae.history_[:, "train_loss"]).all()
    scores = vae.score_samples(table)
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(scores, vae.score_samples(table))  # deterministic
    # the encoder also reads the mask: 3 one-hot + 3 other inputs + 4 mask channels
    assert vae.net_.module_.encoder.preprocess.n_out == 3 + 3 + 4
    one_cell = table.iloc[:1].copy()
    one_cell.loc[:, ["color", "count", "flag"]] = None
    assert np.isfinite(vae.score_samples(one_cell)).all()


def test_a_bound_on_fewer_cells_is_higher():
    """Leaving cells out drops their (negative) log-probability: on average the bound rises."""
    table = mixed_table(400, 0)
    vae = VAEDensityEstimator(**SMALL).fit(table)
    gaps = vae.score_samples(table.assign(color=None)) - vae.score_samples(table)
    assert gaps.mean() > 0.3


def test_impute_keeps_observed_cells_types_and_index(holes):
    table, vae = holes
    shuffled = table.sample(frac=1.0, random_state=0)  # a non-default index
    filled = vae.impute(shuffled)
    assert filled.index.equals(shuffled.index) and list(filled.columns) == list(table.columns)
    assert filled.dtypes.to_dict() == table.dtypes.to_dict()
    assert not filled.isna().to_numpy().any()
    observed = shuffled.notna()
    for column in table.columns:
        kept = observed[column].to_numpy()
        assert (filled[column][kept] == shuffled[column][kept]).all()
    assert set(filled["flag"].unique()) <= {0, 1} and set(filled["color"]) <= {"red", "green", "blue"}


def test_impute_by_sampling_is_seeded(holes):
    table, vae = holes
    a = vae.impute(table, method="sample", random_state=1)
    pd.testing.assert_frame_equal(a, vae.impute(table, method="sample", random_state=1))
    assert not a.equals(vae.impute(table, method="sample", random_state=2))
    with pytest.raises(ValueError, match="method must be 'mean' or 'sample'"):
        vae.impute(table, method="median")


def test_imputation_uses_the_other_columns():
    rng = np.random.RandomState(0)
    a = rng.randn(600)
    full = pd.DataFrame({"a": a, "b": 2 * a + 0.2 * rng.randn(600), "c": -a + 0.2 * rng.randn(600)})
    holes = with_holes(full, 0.2, 1)
    vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(32,), max_epochs=60, random_state=0).fit(holes)
    filled = vae.impute(holes)
    mask = holes.isna().to_numpy()
    error = np.sqrt(np.mean((filled.to_numpy() - full.to_numpy())[mask] ** 2))
    by_mean = np.sqrt(np.mean((holes.mean().to_numpy() - full.to_numpy())[mask] ** 2))
    assert error < 0.5 * by_mean


def _two_clusters(n, seed):
    rng = np.random.RandomState(seed)
    side = rng.choice([-2.0, 2.0], n)
    return pd.DataFrame({name: side + 0.1 * rng.randn(n) for name in "abcd"})


def test_imputation_weighs_the_draws_by_the_observed_cells():
    """Fitted on complete rows, the encoder reads a row with three of four cells missing as lying between
    the two clusters; weighting its draws by p(x_observed | z) finds the row's cluster from the cell seen."""
    vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(32,), max_epochs=60, random_state=0)
    vae.fit(_two_clusters(600, 0))
    truth = _two_clusters(200, 1)
    holes = truth.assign(b=np.nan, c=np.nan, d=np.nan)
    filled = vae.impute(holes)
    error = np.sqrt(np.mean((filled - truth)[["b", "c", "d"]].to_numpy() ** 2))
    assert error < 0.7  # one cluster's spread is 0.1, the distance between them 4 (the posterior mean: 0.98)
    one_draw = vae.impute(holes, n_draws=1)
    assert np.sqrt(np.mean((one_draw - truth)[["b", "c", "d"]].to_numpy() ** 2)) > 1.5 * error
    pd.testing.assert_frame_equal(filled, vae.impute(holes))  # 'mean' is deterministic
    for bad, error_type in [(0, ValueError), (2.5, TypeError)]:
        with pytest.raises(error_type, match="n_draws"):
            vae.impute(holes, n_draws=bad)


def test_the_weighted_categorical_mean_is_the_mixtures_most_probable_code():
    lik = Categorical([3])
    probs = torch.tensor([[[0.55, 0.45, 0.0]], [[0.0, 0.45, 0.55]]], dtype=torch.float64)  # (k=2, n=1, 3)
    params = torch.log(probs.clamp_min(1e-300))
    weights = torch.tensor([[0.6], [0.4]], dtype=torch.float64)
    # the mixture is (0.33, 0.45, 0.22): code 1, which neither component's own mode is
    assert lik.weighted_mean(params, weights).tolist() == [[1.0]]
    mixed = Mixed([(Gaussian(), [1]), (Categorical([3]), [0])])
    both = torch.cat([torch.tensor([[[1.0, 0.0]], [[3.0, 0.0]]], dtype=torch.float64), params], dim=-1)
    assert mixed.weighted_mean(both, weights).tolist() == [[1.0, 0.6 * 1.0 + 0.4 * 3.0]]


def test_a_model_fitted_on_complete_rows_scores_and_imputes_rowswith_holes():
    table = mixed_table(300, 0)
    vae = VAEDensityEstimator(**SMALL).fit(table)
    assert not vae.schema_.missing_in_fit and vae.net_.module_.encoder.preprocess.n_out == 3 + 3
    test = with_holes(mixed_table(50, 1), 0.2, 2)
    assert np.isfinite(vae.score_samples(test)).all()
    assert not vae.impute(test).isna().to_numpy().any()


@pytest.mark.parametrize("make", [
    lambda: WSAVAE(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=6, warmup_epochs=2, random_state=0),
    lambda: ReverseHalfAsleep(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=6, rha_epochs=3, random_state=0),
])
def test_the_training_schemes_train_on_rows_with_missing_cells(holes, make):
    table, _ = holes
    est = make().fit(table)
    assert np.isfinite(est.history_[:, "train_loss"]).all() and np.isfinite(est.score_samples(table)).all()
    if isinstance(est, WSAVAE):  # the discriminator saw complete rows: a real signal, not the holes
        assert np.isfinite(est.history_[-1, "discriminator_accuracy"])
        assert est.history_[-1, "discriminator_accuracy"] < 0.99
    np.testing.assert_array_equal(make().fit(table).score_samples(table), est.score_samples(table))


@pytest.mark.parametrize("k", [1, 3])
def test_the_coder_stores_the_mask_and_the_observed_values(holes, k, tmp_path):
    table, vae = holes
    test = with_holes(mixed_table(120, 1).convert_dtypes(), 0.2, 5)
    coder = BitsBackCoder(vae, n_particles=k, chunk_size=50).fit()
    data = coder.encode(test)
    pd.testing.assert_frame_equal(coder.decode(data), test)
    coder.save(tmp_path / "m.npz")  # the portable model file: the encoder's mask inputs included
    loaded = BitsBackCoder.load(tmp_path / "m.npz")
    pd.testing.assert_frame_equal(loaded.decode(data), test)
    assert loaded.encode(test) == data and loaded.schema_.missing_in_fit
    rates = parse(data)[0]["missing"]
    assert sorted(rates) == ["0", "1", "2", "3"] and all(0 < q < 2**16 for q in rates.values())
    complete = coder.encode(mixed_table(120, 1).convert_dtypes())
    assert parse(complete)[0]["missing"] is None


def test_numpy_typed_frames_with_holes_round_trip_as_pandas_upcasts_them():
    vae = VAEDensityEstimator(**{**SMALL, "max_epochs": 3}).fit(mixed_table(150, 0))  # fitted on complete rows
    test = with_holes(mixed_table(60, 1), 0.2, 3)  # int columns become float64 with NaN
    coder = BitsBackCoder(vae).fit()
    pd.testing.assert_frame_equal(coder.decode(coder.encode(test)), test)


def test_forged_missing_rates_are_refused(holes):
    table, vae = holes
    coder = BitsBackCoder(vae).fit()
    data = coder.encode(table.iloc[:50])
    for forged in ({"0": 0}, {"9": 100}, [1, 2]):
        with pytest.raises(ValueError, match="corrupted"):
            coder.decode(rewrite_header(data, missing=forged))
    with pytest.raises(ValueError):  # the mask is part of the fingerprint: removing it is detected
        coder.decode(rewrite_header(data, missing=None))


def test_what_cannot_take_missing_cells_says_so(holes):
    table, vae = holes
    complete = VAEDensityEstimator(**{**SMALL, "max_epochs": 1}).fit(mixed_table(100, 0))
    with pytest.raises(ValueError, match="column 'size' contains infinity"):
        complete.score_samples(mixed_table(5, 1).assign(size=[0.5, np.inf, 1, 2, 3]))
    with pytest.raises(ValueError, match="column 'b' has no observed value"):
        VAEDensityEstimator(**SMALL).fit(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [np.nan] * 3}))
