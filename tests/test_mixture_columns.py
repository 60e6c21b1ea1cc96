"""Per-column Gaussian mixtures: the likelihood, the column schema and the bits-back coder's column model."""

import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import constriction
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import norm

from skvae import VAEDensityEstimator
from skvae import likelihoods as lk
from skvae._tabular import TableSchema
from skvae.coding import BitsBackCoder
from skvae.coding._entropy_models import QuantizedGaussianColumns, column_model_for
from skvae.coding._fixed_point import likelihood_from_json, likelihood_to_json
from skvae.coding._mixture_columns import GaussianMixtureColumns, mixture_weights
from skvae.likelihoods import Gaussian, Mixed, get_likelihood

from _helpers import BLOCK_TORCH, mixed_table, with_holes

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(latent_dim=3, hidden_layer_sizes=(24,), max_epochs=6, random_state=0)


def _params(n, n_features, k, seed=0):
    return torch.as_tensor(np.random.RandomState(seed).randn(n, 3 * k * n_features), dtype=torch.float64)


def _numpy_mixture_log_density(params, x, k, center, scale, lo=-7.0, hi=7.0):
    """log sum_k w_k N(x; ...) in data units, straight from the documented parameter layout."""
    n, width = params.shape
    blocks = params.reshape(n, 3, width // (3 * k), k)
    loc, log_scale, logits = blocks[:, 0], np.clip(blocks[:, 1], lo, hi), blocks[:, 2]
    log_w = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    z = ((x - center) / scale)[..., None]
    terms = log_w - 0.5 * ((z - loc) / np.exp(log_scale)) ** 2 - log_scale - 0.5 * np.log(2 * np.pi)
    return np.log(np.exp(terms).sum(-1)) - np.log(scale)


# -- the likelihood ---------------------------------------------------------------------------------


def test_one_component_is_the_plain_gaussian():
    plain, one = Gaussian(), Gaussian(n_components=1)
    assert repr(plain) == repr(one) == "Gaussian(min_log_scale=-7.0, max_log_scale=7.0)"
    assert plain.n_params(5) == one.n_params(5) == 10
    params, x = torch.randn(4, 7, 10), torch.randn(7, 5)
    assert torch.equal(plain.log_prob_per_feature(params, x), one.log_prob_per_feature(params, x))
    assert get_likelihood("gaussian").n_components == lk.GAUSSIAN_COMPONENTS
    assert get_likelihood("gaussian:1").n_components == 1


def test_an_object_pickled_before_the_parameter_has_one_component():
    old = Gaussian()
    del old.__dict__["n_components"]  # as unpickled from a file written before n_components existed
    restored = pickle.loads(pickle.dumps(old))
    assert restored.n_components == 1 and restored.n_params(3) == 6


def test_mixture_log_density_follows_the_documented_layout():
    k, center, scale = 3, np.array([1.0, -2.0]), np.array([2.0, 0.5])
    lik = Gaussian(center=center, scale=scale, n_components=k)
    assert lik.n_params(2) == 18
    params = _params(50, 2, k)
    x = np.random.RandomState(1).randn(50, 2) * 2
    got = lik.log_prob_per_feature(params, torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, _numpy_mixture_log_density(params.numpy(), x, k, center, scale), rtol=1e-10)


def test_mixture_density_integrates_to_one_and_mean_is_the_mixture_mean():
    lik = Gaussian(center=[3.0], scale=[2.0], n_components=4)
    params = _params(1, 1, 4, seed=3).clamp(-1.5, 1.5)
    grid = torch.linspace(-60, 60, 400001, dtype=torch.float64)[:, None]
    density = lik.log_prob(params.expand(len(grid), -1), grid).exp()
    dx = 120 / 400000
    assert abs(float(density.sum() * dx) - 1) < 1e-6
    numeric_mean = float((density * grid[:, 0]).sum() * dx)
    assert abs(float(lik.mean(params)[0, 0]) - numeric_mean) < 1e-6


def test_mixture_samples_follow_the_density():
    lik = Gaussian(center=[0.0], scale=[1.0], n_components=2)
    # two well separated components, weights 0.25 / 0.75, means -4 / +4, sds 0.5 / 1
    params = torch.tensor([[-4.0, 4.0, math.log(0.5), 0.0, 0.0, math.log(3.0)]], dtype=torch.float64)
    draws = lik.sample(params.expand(40000, -1), generator=torch.Generator().manual_seed(0))[:, 0].numpy()
    assert abs((draws < 0).mean() - 0.25) < 0.01
    assert abs(draws[draws < 0].mean() + 4) < 0.03 and abs(draws[draws < 0].std() - 0.5) < 0.02
    assert abs(draws[draws > 0].std() - 1.0) < 0.02
    again = lik.sample(params.expand(40000, -1), generator=torch.Generator().manual_seed(0))[:, 0].numpy()
    assert np.array_equal(draws, again)


def test_fitted_to_keeps_the_components():
    X = np.random.RandomState(0).randn(30, 2) * [1, 10] + [0, 5]
    fitted = Gaussian(n_components=5).fitted_to(X)
    assert fitted.n_components == 5 and np.allclose(fitted.center, X.mean(0)) and np.allclose(fitted.scale, X.std(0))
    assert repr(fitted) == "Gaussian(min_log_scale=-7.0, max_log_scale=7.0, n_components=5)"


@pytest.mark.parametrize("value, error", [(0, ValueError), (-2, ValueError), (65, ValueError), (2.0, TypeError),
                                          (True, TypeError), ("3", TypeError)])
def test_bad_component_counts_are_refused(value, error):
    with pytest.raises(error, match="n_components"):
        Gaussian(n_components=value)


@pytest.mark.parametrize("name", ["gaussian:0", "gaussian:x", "gaussian:", "gaussian:99", "gaussian:-1"])
def test_bad_gaussian_kind_names_are_refused(name):
    with pytest.raises(ValueError, match="gaussian:"):
        get_likelihood(name)
    with pytest.raises(ValueError, match="gaussian:"):
        TableSchema.infer(pd.DataFrame({"a": [0.5, 1.5]}), {name: ["a"]})


def test_missing_cells_in_a_table_contribute_nothing_and_keep_gradients_finite():
    mixed = Mixed([(Gaussian(center=[0.0, 1.0], scale=[1.0, 2.0], n_components=3), [0, 1])])
    params = _params(4, 2, 3).requires_grad_(True)
    x = torch.tensor([[0.5, np.nan], [np.nan, np.nan], [1.0, 2.0], [-1.0, 0.0]], dtype=torch.float64)
    per_feature = mixed.log_prob_per_feature(params, x)
    assert per_feature[0, 1] == 0 and (per_feature[1] == 0).all() and torch.isfinite(per_feature).all()
    per_feature.sum().backward()
    assert torch.isfinite(params.grad).all()
    full = Gaussian(center=[0.0, 1.0], scale=[1.0, 2.0], n_components=3).log_prob_per_feature(params, x.nan_to_num())
    assert torch.equal(per_feature[2:], full[2:]) and torch.equal(per_feature[0, 0], full[0, 0])


# -- the column schema and the estimator --------------------------------------------------------------


def test_schema_gives_declared_and_default_component_counts():
    frame = mixed_table(60, 0)
    frame["other"] = np.linspace(0, 1, 60) ** 2
    schema = TableSchema.infer(frame, {"gaussian:3": ["size"]})
    kinds = {c.name: (c.kind, c.n_components) for c in schema.columns}
    assert kinds["size"] == ("gaussian", 3) and kinds["other"] == ("gaussian", lk.GAUSSIAN_COMPONENTS)
    assert schema.spec["gaussian:3"] == ["size"] and schema.spec["gaussian"] == ["other"]  # the default: 'gaussian'
    gaussians = [part for part, _ in schema.likelihood().parts if part.name == "gaussian"]
    assert sorted(g.n_components for g in gaussians) == sorted({3, lk.GAUSSIAN_COMPONENTS})
    # the spec a schema reports reproduces it
    again = TableSchema.infer(frame, schema.spec)
    assert [(c.kind, c.n_components) for c in again.columns] == [(c.kind, c.n_components) for c in schema.columns]


def test_schema_json_round_trips_components_and_omits_them_for_one():
    frame = mixed_table(40, 0)
    one = TableSchema.infer(frame, {"gaussian:1": ["size"]}).to_json()
    assert all("n_components" not in c for c in one["columns"])
    four = TableSchema.infer(frame, {"gaussian:4": ["size"]})
    spec = json.loads(json.dumps(four.to_json()))
    assert [c.get("n_components") for c in spec["columns"]] == [None, None, None, 4]
    back = TableSchema.from_json(spec)
    assert [c.n_components for c in back.columns] == [1, 1, 1, 4]
    for bad in (0, 2.5, "4", True):
        spec["columns"][3]["n_components"] = bad
        with pytest.raises(ValueError, match="n_components"):
            TableSchema.from_json(spec)
    spec["columns"][3]["n_components"] = 1
    spec["columns"][0]["n_components"] = 2  # a categorical column has no components
    with pytest.raises(ValueError, match="n_components"):
        TableSchema.from_json(spec)


def test_estimator_fits_a_mixed_table_with_holes_under_mixtures():
    frame = with_holes(mixed_table(300, 0).convert_dtypes(), 0.1, 0)
    vae = VAEDensityEstimator(likelihood={"gaussian:4": ["size"]}, **SMALL).fit(frame)
    assert "n_components=4" in repr(vae.likelihood_)
    scores = vae.score_samples(frame)
    assert np.isfinite(scores).all()
    samples = vae.sample(50, random_state=0)
    assert list(samples.dtypes) == list(frame.dtypes) and not samples.isna().any().any()
    assert not vae.impute(frame).isna().any().any()
    assert np.isfinite(vae.history_[-1]["train_loss"])


def test_plain_arrays_take_gaussian_k_strings():
    X = np.random.RandomState(0).randn(200, 3)
    vae = VAEDensityEstimator(likelihood="gaussian:3", **SMALL).fit(X)
    assert vae.likelihood_.n_components == 3 and np.isfinite(vae.score(X))
    assert vae.sample(5, random_state=0).shape == (5, 3)


def test_binary_arrays_keep_the_bernoulli_fast_path():
    X = (np.random.RandomState(0).rand(100, 6) < 0.3).astype(np.uint8)
    vae = VAEDensityEstimator(**SMALL).fit(X)
    assert type(vae.likelihood_) is lk.Bernoulli and not hasattr(vae, "schema_")


# -- the coder ----------------------------------------------------------------------------------------


def _direct_cell_log2(model, symbols, params):
    """log2 of each symbol's grid-cell mass, in float64 with scipy's normal CDF (tails in the end cells)."""
    lik, n, k = model.likelihood, model.n_features, model.n_components
    blocks = params.reshape(len(params), 3, n, k)
    loc = blocks[:, 0] * lik.scale[:, None] + lik.center[:, None]
    sd = np.exp(np.clip(blocks[:, 1], lik.min_log_scale, lik.max_log_scale)) * lik.scale[:, None]
    w = np.exp(blocks[:, 2] - blocks[:, 2].max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    value = (symbols + model.k_min) * model.steps  # the grid value of each symbol
    upper = np.where(symbols == (model.k_max - model.k_min), np.inf, value + model.steps / 2)
    lower = np.where(symbols == 0, -np.inf, value - model.steps / 2)
    mass = (w * (norm.cdf((upper[..., None] - loc) / sd) - norm.cdf((lower[..., None] - loc) / sd))).sum(-1)
    return np.log2(mass)


@pytest.fixture(scope="module")
def column_case():
    """A mixture column model on a grid, decoder outputs, and symbols drawn from the model."""
    rng = np.random.RandomState(0)
    k, n, n_features = 3, 3000, 2
    lik = Gaussian(center=np.array([2.0, -1.0]), scale=np.array([1.5, 0.3]), n_components=k)
    grid = {"0": [0.05, -40, 200], "1": [0.01, -300, 100]}  # steps, k_min, k_max
    model = column_model_for(lik, n_features, 24, grid)
    params = rng.randn(n, 3 * k * n_features) * 0.7
    draws = lik.sample(torch.as_tensor(params), generator=torch.Generator().manual_seed(1)).numpy()
    values = np.clip(np.round(draws / model.steps), model.k_min, model.k_max) * model.steps
    symbols = model.symbols(values)
    return model, params, symbols


def test_coder_picks_the_mixture_model_only_for_mixtures(column_case):
    model = column_case[0]
    assert type(model) is GaussianMixtureColumns and model.schema()[0]["components"] == 3
    one = column_model_for(Gaussian(center=[0.0], scale=[1.0]), 1, 24, {"0": [0.1, -5, 5]})
    assert type(one) is QuantizedGaussianColumns and "components" not in one.schema()[0]


def test_mixture_weights_are_a_softmax_in_portable_arithmetic():
    logits = np.random.RandomState(0).randn(1000, 5) * 4
    w = mixture_weights(logits)
    exact = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(w, exact / exact.sum(1, keepdims=True), rtol=1e-5)


def test_fixed_point_log_probabilities_are_the_grid_cell_masses(column_case):
    model, params, symbols = column_case
    got = model.log2_probs(symbols, params) / 2.0 ** 32
    direct = _direct_cell_log2(model, symbols, params).sum(axis=1)
    # the tabulated CDF read at 2**-11 steps (as for one Gaussian: there max 0.11, mean 2e-5 bits per row here)
    error = got - direct
    assert np.abs(error).max() < 0.3 and np.abs(error).mean() < 0.02 and abs(error.mean()) < 2e-3


def test_payload_is_minus_log2_of_the_grid_probabilities(column_case):
    model, params, symbols = column_case
    coder = constriction.stream.stack.AnsCoder()
    model.push(coder, symbols, params)
    ideal = -_direct_cell_log2(model, symbols, params).sum()
    assert abs(coder.num_bits() - ideal) < 64 + 2e-3 * ideal
    assert np.array_equal(model.pop(coder, params), symbols)  # and pops back what was pushed


def test_masked_cells_are_skipped(column_case):
    model, params, symbols = column_case
    observed = np.random.RandomState(2).rand(*symbols.shape) > 0.3
    coder = constriction.stream.stack.AnsCoder()
    model.push(coder, symbols, params, observed)
    popped = model.pop(coder, params, observed)
    assert np.array_equal(popped[observed], symbols[observed]) and (popped[~observed] == -1).all()
    direct = np.where(observed, _direct_cell_log2(model, symbols, params), 0).sum(axis=1)
    assert np.abs(model.log2_probs(symbols, params, observed) / 2.0 ** 32 - direct).max() < 0.3


def test_likelihood_json_round_trips_components_and_keeps_one_component_files():
    one = Gaussian(center=[1.0], scale=[2.0])
    assert likelihood_to_json(one) == {"kind": "gaussian", "min_log_scale": -7.0, "max_log_scale": 7.0,
                                       "center": [1.0], "scale": [2.0]}  # the keys of files written before
    mix = Gaussian(center=[1.0], scale=[2.0], n_components=6)
    assert likelihood_to_json(mix)["n_components"] == 6
    assert likelihood_from_json(json.loads(json.dumps(likelihood_to_json(mix)))).n_components == 6
    with pytest.raises(ValueError, match="likelihood"):
        likelihood_from_json({**likelihood_to_json(mix), "n_components": 0})


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """A table with holes and mixture columns, its coder (saved) and the encoded bytes, on disk."""
    frame = mixed_table(400, 0).convert_dtypes()
    frame["wide"] = np.round(np.where(np.random.RandomState(3).rand(400) < 0.6, 0.0,
                                      np.random.RandomState(4).exponential(3, 400)), 1) + 0.0
    train, test = with_holes(frame[:300], 0.1, 0), with_holes(frame[300:].reset_index(drop=True), 0.15, 1)
    vae = VAEDensityEstimator(likelihood={"gaussian:3": ["size", "wide"]}, **SMALL).fit(train)
    coder = BitsBackCoder(vae, chunk_size=40).fit()
    folder = tmp_path_factory.mktemp("mixture")
    coder.save(folder / "table.npz")
    (folder / "table.bb").write_bytes(coder.encode(test))
    pd.to_pickle(test, folder / "expected.pkl")
    return coder, test, folder


def test_round_trip_of_a_table_with_holes_is_exact(coded):
    coder, test, folder = coded
    data = (folder / "table.bb").read_bytes()
    pd.testing.assert_frame_equal(coder.decode(data), test, check_exact=True)
    loaded = BitsBackCoder.load(folder / "table.npz")
    assert loaded.fingerprint_ == coder.fingerprint_ and loaded.encode(test) == data
    assert "n_components" in json.dumps(likelihood_to_json(loaded.model_.likelihood))
    report = coder.report(test)
    assert report.payload_bits < 1.1 * (report.negative_elbo_bits + report.overhead_bits) + 64 * 20


_DECODE = BLOCK_TORCH + """
import numpy as np, pandas as pd
from skvae.coding import BitsBackCoder
folder = sys.argv[1]
coder = BitsBackCoder.load(os.path.join(folder, "table.npz"))
data = open(os.path.join(folder, "table.bb"), "rb").read()
out = coder.decode(data)
assert coder.encode(out) == data
pd.to_pickle(out, os.path.join(folder, "decoded." + os.environ["SKVAE_TEST_ENV_ID"] + ".pkl"))
if os.environ.get("SKVAE_TEST_BLOCK_TORCH"):
    assert not [m for m in sys.modules if m.startswith(("torch", "skorch"))]
"""


@pytest.mark.parametrize("environment", [{"MKL_CBWR": "COMPATIBLE"}, {"SKVAE_TEST_BLOCK_TORCH": "1"}],
                         ids=["MKL_CBWR=COMPATIBLE", "without torch"])
def test_files_decode_identically_in_another_environment(coded, environment):
    _, test, folder = coded
    env_id = "_".join(environment)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MKL_", "OPENBLAS_", "ATEN_"))}
    env.update(environment, PYTHONPATH=str(REPO), SKVAE_TEST_ENV_ID=env_id, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", _DECODE, str(folder)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_pickle(folder / f"decoded.{env_id}.pkl"), test, check_exact=True)


def test_one_component_tables_write_the_files_of_before(tmp_path):
    frame = mixed_table(200, 0)
    vae = VAEDensityEstimator(likelihood={"gaussian:1": ["size"]}, **SMALL).fit(frame)
    coder = BitsBackCoder(vae).fit()
    part, cols = [(p, c) for p, c in coder.model_.likelihood.parts if p.name == "gaussian"][0]
    assert part.n_components == 1 and type(column_model_for(part, 1, 24, {"0": [0.01, 0, 9]})) \
        is QuantizedGaussianColumns
    coder.save(tmp_path / "one.npz")
    stored = b"".join(np.load(tmp_path / "one.npz", allow_pickle=False)[name].tobytes()
                      for name in np.load(tmp_path / "one.npz", allow_pickle=False).files)
    assert b"components" not in stored and b"gaussian" in stored  # the model's JSON carries no new key
    assert "n_components" not in json.dumps(coder.model_.config()) + json.dumps(vae.schema_.to_json())
    assert BitsBackCoder.load(tmp_path / "one.npz").fingerprint_ == coder.fingerprint_
