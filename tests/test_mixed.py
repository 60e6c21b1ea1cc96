"""Mixed-type tables: per-column likelihoods, DataFrame input and output."""

import numpy as np
import pandas as pd
import pytest
import torch

from skvae import VAEDensityEstimator
from skvae.likelihoods import Categorical, DiscretizedLogistic, Mixed, Bernoulli, Gaussian

SMALL = dict(latent_dim=2, hidden_layer_sizes=(32,), max_epochs=40, batch_size=100, random_state=0)


def make_table(n, seed=0):
    """A table whose columns all depend on one latent factor z."""
    rng = np.random.RandomState(seed)
    z = rng.randn(n)
    return pd.DataFrame({
        "flag": z + 0.3 * rng.randn(n) > 0,
        "color": pd.Categorical(np.where(z > 0.5, "red", np.where(z < -0.5, "blue", "green")),
                                categories=["blue", "green", "red"]),
        "count": np.clip(np.round(4 + 2 * z + 0.5 * rng.randn(n)), 0, 9).astype(np.int64),
        "size": 1.5 * z + 0.2 * rng.randn(n),
        "city": rng.choice(np.array(["north", "south"], dtype=object), n),
    })


@pytest.fixture(scope="module")
def table():
    return make_table(800), make_table(400, seed=1)


@pytest.fixture(scope="module")
def fitted(table):
    return VAEDensityEstimator(likelihood="auto", **SMALL).fit(table[0])


def test_auto_schema_from_dtypes(fitted):
    assert fitted.schema_.spec == {"bernoulli": ["flag"], "categorical": ["color", "city"], "integer": ["count"],
                                   "gaussian": ["size"]}
    assert list(fitted.feature_names_in_) == ["flag", "color", "count", "size", "city"]
    assert isinstance(fitted.likelihood_, Mixed)


def test_learns_the_shared_factor(table, fitted):
    train, test = table
    shuffled = test.copy()
    for seed, name in enumerate(shuffled):  # break the dependence between columns, keep the marginals
        shuffled[name] = shuffled[name].sample(frac=1, random_state=seed).to_numpy()
    assert fitted.score(test) > fitted.score(shuffled) + 1.0
    assert np.isfinite(fitted.score_samples(test)).all()


def test_sample_returns_original_types(fitted):
    out = fitted.sample(300, random_state=0)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["flag", "color", "count", "size", "city"]
    assert out["flag"].dtype == bool and out["count"].dtype == np.int64 and out["size"].dtype == np.float64
    assert isinstance(out["color"].dtype, pd.CategoricalDtype)
    assert list(out["color"].cat.categories) == ["blue", "green", "red"]
    # the integer model gives every integer a probability: a draw may leave the range seen in fit (0..9)
    assert set(out["city"]) <= {"north", "south"} and out["count"].between(0, 9).mean() > 0.98
    # The shared factor shows in samples: red rows are larger than blue rows.
    assert out.loc[out.color == "red", "size"].mean() > out.loc[out.color == "blue", "size"].mean()


def test_transform_and_inverse_transform(table, fitted):
    Z = fitted.transform(table[1])
    assert Z.shape == (400, 2)
    means = fitted.inverse_transform(Z[:5])
    assert isinstance(means, pd.DataFrame) and means["flag"].between(0, 1).all()
    assert set(means["color"]) <= {"blue", "green", "red"}


def test_scores_batch_independent(table, fitted):
    rows = table[1].iloc[:30]
    full = fitted.score_samples(rows)
    singles = [fitted.score_samples(rows.iloc[i:i + 1])[0] for i in range(30)]
    np.testing.assert_allclose(full, singles, rtol=1e-10)


def test_unseen_values_name_column_and_value(table, fitted):
    bad = table[1].iloc[:4].copy()
    bad["city"] = ["north", "west", "south", "north"]
    with pytest.raises(ValueError, match="column 'city' holds the unseen category 'west'"):
        fitted.score_samples(bad)
    bad = table[1].iloc[:4].copy()
    bad["count"] = [1, 2, 2.5, 3]
    with pytest.raises(ValueError, match="column 'count' holds 2.5, which is not an integer"):
        fitted.score_samples(bad.astype({"count": float}))
    bad = table[1].iloc[:4].copy()
    bad["size"] = [0.1, np.inf, 0.2, 0.3]
    with pytest.raises(ValueError, match="column 'size' contains infinity"):
        fitted.score_samples(bad)
    with pytest.raises(ValueError, match="feature names"):
        fitted.score_samples(table[1].rename(columns={"size": "weight"}))


def test_explicit_spec_on_arrays():
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.randint(0, 2, 300), rng.randint(0, 4, 300), rng.randint(0, 4, 300), rng.randn(300)])
    auto = VAEDensityEstimator(likelihood="auto", **{**SMALL, "max_epochs": 2}).fit(X)
    # a float array: integral floats are real values, as in a DataFrame's float column
    assert auto.schema_.spec == {"bernoulli": [0], "gaussian": [1, 2, 3]}
    est = VAEDensityEstimator(likelihood={"categorical": [1], "integer": [2]}, **{**SMALL, "max_epochs": 2}).fit(X)
    assert est.schema_.spec == {"bernoulli": [0], "categorical": [1], "integer": [2], "gaussian": [3]}
    sample = est.sample(50, random_state=0)
    assert sample.shape == (50, 4) and set(np.unique(sample[:, 1])) <= {0, 1, 2, 3}
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'"):
        VAEDensityEstimator(likelihood={"poisson": [0]}).fit(X)
    with pytest.raises(ValueError, match="names 9"):
        VAEDensityEstimator(likelihood={"integer": [9]}).fit(X)
    with pytest.raises(ValueError, match="non-integer"):
        VAEDensityEstimator(likelihood={"integer": [3]}).fit(X)


def test_categorical_log_prob_normalised_and_sampling():
    lik = Categorical([3, 2])
    params = torch.randn(4, 5, dtype=torch.float64)
    grid = torch.tensor([[a, b] for a in range(3) for b in range(2)], dtype=torch.float64)
    total = torch.stack([lik.log_prob(params, row.expand(4, 2)) for row in grid]).exp().sum(0)
    np.testing.assert_allclose(total.numpy(), 1.0, rtol=1e-12)
    draws = lik.sample(params[:1].expand(20000, 5), generator=torch.Generator().manual_seed(0))
    freq = (draws[:, 0] == 2).double().mean().item()
    assert freq == pytest.approx(lik.probs(params[:1])[0, 0, 2].item(), abs=0.015)
    with pytest.raises(ValueError, match="column 1 holds 2.0"):
        lik.check_support(np.array([[0.0, 2.0]]))


def test_discretized_logistic_normalised_with_finite_gradients():
    lik = DiscretizedLogistic(low=[0, -3], high=[5, 3])
    raw = torch.randn(3, 4, dtype=torch.float64)
    params = torch.cat([raw[:, :2], 0.3 * raw[:, 2:] - 1.0], 1).requires_grad_()  # scales below ~4: light tails
    # the mass is spread over all integers, not folded into the range seen in fit
    values = torch.tensor([[a, b] for a in range(-150, 156) for b in range(-153, 154)], dtype=torch.float64)
    logp = lik.log_prob(params.repeat_interleave(len(values), 0), values.repeat(3, 1)).reshape(3, -1)
    np.testing.assert_allclose(logp.exp().sum(1).detach().numpy(), 1.0, rtol=1e-10)
    inside = (values[:, 0] >= 0) & (values[:, 0] <= 5) & (values[:, 1] >= -3) & (values[:, 1] <= 3)
    assert (logp[:, inside].exp().sum(1) < 1 - 1e-6).all()
    logp.sum().backward()
    assert torch.isfinite(params.grad).all()
    far = torch.tensor([[40.0, 0.0, -6.0, -6.0]], dtype=torch.float64)  # sharp peak far above the range
    assert torch.isfinite(lik.log_prob(far, torch.tensor([[5.0, 0.0]], dtype=torch.float64))).all()


def test_mixed_puts_columns_back_in_order():
    lik = Mixed([(Gaussian(), [2]), (Bernoulli(), [0, 1])])
    params = torch.zeros(1, 4)
    x = torch.tensor([[1.0, 0.0, 0.5]])
    per_feature = lik.log_prob_per_feature(params, x)
    np.testing.assert_allclose(per_feature[0, :2].numpy(), np.log(0.5), rtol=1e-6)
    np.testing.assert_allclose(per_feature[0, 2].item(), -0.5 * 0.25 - 0.5 * np.log(2 * np.pi), rtol=1e-6)
    with pytest.raises(ValueError, match="exactly once"):
        Mixed([(Bernoulli(), [0, 0])])


def test_bool_and_string_category_columns_fit_together():
    """check_array used to cast the whole frame to one dtype: 'Cannot cast str dtype to float64'."""
    frame = pd.DataFrame({"flag": [True, False, True, True] * 15,
                          "color": pd.Categorical(["red", "green", "blue", "red"] * 15)})
    vae = VAEDensityEstimator(likelihood="auto", **{**SMALL, "max_epochs": 2}).fit(frame)
    assert vae.schema_.spec == {"bernoulli": ["flag"], "categorical": ["color"]}
    assert np.isfinite(vae.score_samples(frame)).all()
    sample = vae.sample(5, random_state=0)
    assert list(sample.columns) == ["flag", "color"] and sample["flag"].dtype == bool
    with pytest.raises(ValueError, match="feature names"):
        vae.score(frame[["color", "flag"]])


# -- lossless coding of mixed tables ------------------------------------------

@pytest.fixture(scope="module")
def discrete_table():
    make = lambda n, seed: make_table(n, seed).drop(columns=["size"]).assign(
        offset=lambda t: t["count"] * 7 - 20 + np.random.RandomState(seed).randint(0, 3, n))
    return make(600, 0), make(250, 1)


def test_bits_back_round_trip_of_a_mixed_dataframe(discrete_table):
    from skvae import BitsBackCoder

    train, test = discrete_table
    vae = VAEDensityEstimator(likelihood="auto", **{**SMALL, "max_epochs": 15}).fit(train)
    assert vae.schema_.spec["integer"] == ["count", "offset"]
    coder = BitsBackCoder(vae).fit()
    data = coder.encode(test)
    pd.testing.assert_frame_equal(coder.decode(data), test)
    report = coder.report(test)
    # the payload approaches the model's negative ELBO (a few hundred bits of one-time overhead)
    assert report.payload_bits < report.negative_elbo_bits + 400
    assert report.payload_bits > 0.9 * report.negative_elbo_bits
    bad = test.iloc[:5].copy()
    bad["color"] = ["red", "pink", "red", "red", "red"]
    with pytest.raises(ValueError, match="unseen category 'pink'"):
        coder.encode(bad)


def test_bits_back_refuses_real_valued_columns_off_every_grid(table):
    from skvae import BitsBackCoder

    vae = VAEDensityEstimator(likelihood="auto", **{**SMALL, "max_epochs": 1}).fit(table[0])
    with pytest.raises(ValueError, match=r"columns \[3\] are real-valued"):
        BitsBackCoder(vae, quantization=None).fit()
    with pytest.raises(ValueError, match=r"column 'size' holds .* no decimal grid"):  # full-precision floats
        BitsBackCoder(vae).fit().encode(table[0])


def test_real_valued_columns_coded_losslessly_on_a_grid(table):
    from skvae import BitsBackCoder

    train, test = (t.assign(size=np.round(t["size"], 2)) for t in table)
    vae = VAEDensityEstimator(likelihood="auto", **{**SMALL, "max_epochs": 10}).fit(train)
    coder = BitsBackCoder(vae, quantization={"size": 0.01}).fit()
    data = coder.encode(test)
    pd.testing.assert_frame_equal(coder.decode(data), test)  # 0.01 * k reproduced bit for bit
    off_grid = test.iloc[:5].copy()
    off_grid["size"] = [0.1, 0.25, 0.123, 0.0, 1.0]
    with pytest.raises(ValueError, match="column 'size' holds 0.123, which is not on the quantization grid"):
        coder.encode(off_grid)
    with pytest.raises(ValueError, match="quantization names 'flag', which is not a real-valued column"):
        BitsBackCoder(vae, quantization={"flag": 0.1}).fit().encode(test)


def test_gaussian_array_coded_on_a_binary_grid():
    from skvae import BitsBackCoder

    rng = np.random.RandomState(0)
    X = np.round(rng.randn(300, 3) * 8) / 8 + 0.0  # multiples of 1/8 (+ 0.0 turns -0.0 into 0.0)
    vae = VAEDensityEstimator(likelihood="gaussian", **{**SMALL, "max_epochs": 10}).fit(X)
    coder = BitsBackCoder(vae, quantization=0.125).fit()
    data = coder.encode(X)
    back = coder.decode(data)
    assert back.dtype == X.dtype and np.array_equal(back, X)
    # a coarser grid than the data is refused rather than rounded
    with pytest.raises(ValueError, match="not on the quantization grid"):
        BitsBackCoder(vae, quantization=0.25).fit().encode(X)


def test_rha_from_estimator_keeps_the_column_coding(table, fitted):
    """Encoder-only training on rows lacking some values keeps the fitted schema (the weights fix it)."""
    from skvae.rha import ReverseHalfAsleep

    train, test = table
    north = train[(train["city"] == "north") & (train["count"] < 6)]
    rha = ReverseHalfAsleep.from_estimator(fitted, rha_epochs=1).fit(north)
    assert rha.schema_ is not fitted.schema_
    assert rha.schema_.column_names() == fitted.schema_.column_names()
    def coding(schema):
        return [(c.kind, None if c.categories is None else list(c.categories), c.low, c.high)
                for c in schema.columns]

    assert coding(rha.schema_) == coding(fitted.schema_)
    # rows with values absent from `north` are still in the model's support
    assert np.isfinite(rha.score_samples(test)).all()


@pytest.mark.parametrize("as_frame", [False, True])
def test_auto_follows_one_rule_for_arrays_and_frames(as_frame):
    """'auto' reads the storage type the same way in an array and a DataFrame (an object array's columns
    by the values they hold): 0/1 -> Bernoulli, integer dtype -> integer, float -> Gaussian, text -> categorical."""
    rng = np.random.RandomState(0)
    flags, counts, reals = rng.randint(0, 2, 60), rng.randint(0, 9, 60), rng.randint(0, 9, 60).astype(float)
    numeric = {"flag": flags, "count": counts, "real": reals}
    if as_frame:
        X, Y = pd.DataFrame(numeric), pd.DataFrame({**numeric, "word": rng.choice(["a", "b"], 60)})
    else:
        X = np.column_stack([flags, counts, reals])           # one float64 array: every column float
        Y = np.empty((60, 4), dtype=object)                    # an object array keeps each column's type
        for j, column in enumerate([flags, counts, reals, rng.choice(["a", "b"], 60)]):
            Y[:, j] = list(column)
    names = ["flag", "count", "real", "word"] if as_frame else [0, 1, 2, 3]
    float_spec = VAEDensityEstimator(**{**SMALL, "max_epochs": 1}).fit(X).schema_.spec
    object_spec = VAEDensityEstimator(**{**SMALL, "max_epochs": 1}).fit(Y).schema_.spec
    if as_frame:
        assert float_spec == {"bernoulli": names[:1], "integer": names[1:2], "gaussian": names[2:3]}
    else:
        assert float_spec == {"bernoulli": names[:1], "gaussian": names[1:3]}
    assert object_spec == {"bernoulli": names[:1], "categorical": names[3:], "integer": names[1:2],
                           "gaussian": names[2:3]}


def test_auto_on_binary_arrays_takes_the_bernoulli_path():
    X = (np.random.RandomState(0).rand(80, 6) < 0.3).astype(np.float32)
    auto = VAEDensityEstimator(**{**SMALL, "max_epochs": 2}).fit(X)
    plain = VAEDensityEstimator(likelihood="bernoulli", **{**SMALL, "max_epochs": 2}).fit(X)
    assert not hasattr(auto, "schema_") and type(auto.likelihood_) is type(plain.likelihood_)
    np.testing.assert_array_equal(auto.score_samples(X), plain.score_samples(X))
    # a refit on a non-binary table of the same estimator drops the fast path, and back
    auto.set_params(max_epochs=1).fit(X + 0.5)
    assert auto.schema_.spec == {"gaussian": list(range(6))}
    assert not hasattr(auto.fit(X), "schema_")


def test_object_cells_that_are_not_scalars_are_refused():
    X = np.empty((10, 2), dtype=object)
    X[:, 0], X[:, 1] = 1.0, "a"
    X[3, 1] = {"foo": "bar"}
    with pytest.raises(TypeError, match=r"column 1 holds \{'foo': 'bar'\} of type dict"):
        VAEDensityEstimator(**SMALL).fit(X)


def test_quantization_keys_are_real_column_names():
    from skvae import BitsBackCoder

    rng = np.random.RandomState(0)
    table = pd.DataFrame({"flag": rng.randint(0, 2, 120).astype(bool), "w": rng.randint(0, 40, 120) / 2})
    vae = VAEDensityEstimator(**{**SMALL, "max_epochs": 2}).fit(table)
    with pytest.raises(ValueError, match=r"quantization names 'size', which is not a real-valued column.*\['w'\]"):
        BitsBackCoder(vae, quantization={"size": 0.5}).fit().encode(table)
    for quantization in ({"w": 0.5}, {1: 0.5}, 0.5):
        coder = BitsBackCoder(vae, quantization=quantization).fit()
        pd.testing.assert_frame_equal(coder.decode(coder.encode(table)), table)


def test_a_column_seen_as_0_1_names_the_way_to_declare_it():
    train = pd.DataFrame({"x": np.linspace(0, 1, 50), "label": np.arange(50) % 2})  # a sorted table's head
    vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=1, random_state=0).fit(train)
    with pytest.raises(ValueError, match=r"column 'label' holds 2(\.0)?, but it held only 0/1 in fit.*"
                                         r"likelihood=\{'integer': \['label'\]\}"):
        vae.score_samples(train.assign(label=2))


def test_portable_encoder_matches_the_float_encoder_on_a_table_with_one_hot_and_affine_inputs():
    # One-hot codes (0/1) and affine-mapped integer columns (2**-16 units) feed one first layer; the
    # fixed-point copy must keep every input's weights precise (it kept 1-3 bits of the affine ones:
    # posterior means off by up to 0.9 prior standard deviations, payload 7 bits/row above the -ELBO)
    from skvae import BitsBackCoder

    rng = np.random.RandomState(0)
    n = 400
    t = rng.randn(n)
    table = pd.DataFrame({"group": pd.Categorical(rng.choice(["a", "b", "c"], n)),
                          "x": np.round(300 * t + 40 * rng.randn(n)).astype(np.int64),
                          "y": np.round(1000 - 5 * t + rng.randn(n)).astype(np.int64)})
    vae = VAEDensityEstimator(likelihood={"categorical": ["group"]}, latent_dim=2, hidden_layer_sizes=(32, 32),
                              max_epochs=30, random_state=0).fit(table)
    coder = BitsBackCoder(vae).fit()
    codec = coder._codec(coder._coding_params())
    X = coder._checked_array(table)
    mu, logvar = coder.model_.encode(codec.columns.network_input(codec.columns.symbols(X)))
    with torch.no_grad():
        float_mu, float_logvar = coder.module_.encoder(torch.as_tensor(np.asarray(X, dtype=np.float32)))
    assert np.abs(mu - float_mu.double().numpy()).max() < 1e-3
    assert np.abs(logvar - float_logvar.double().numpy()).max() < 1e-3
