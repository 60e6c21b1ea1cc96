"""What BitsBackCoder accepts at its defaults: real columns on a decimal grid, float32 grids, sparse input."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from skvae import VAEDensityEstimator
from skvae.coding import BitsBackCoder
from skvae.coding._container import parse

from _helpers import mixed_table

SMALL = dict(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=2, batch_size=32, random_state=0)


def _grid(data):
    return parse(data)[0]["grid"]


@pytest.fixture(scope="module")
def real():
    rng = np.random.RandomState(0)
    X = np.column_stack([np.round(rng.randn(120) * 50, 2), np.round(rng.rand(120), 4), rng.randint(0, 9, 120)])
    return X + 0.0  # no -0.0


def test_auto_quantization_finds_each_columns_decimal_grid(real):
    coder = BitsBackCoder(VAEDensityEstimator(likelihood="gaussian", **SMALL)).fit(real)
    data = coder.encode(real)
    assert [g[0] for g in _grid(data).values()] == [0.01, 1e-4, 1.0]
    np.testing.assert_array_equal(coder.decode(data), real)
    # the coarsest grid: step 0.01 costs fewer bits than a needlessly fine 1e-6
    fine = BitsBackCoder(coder.estimator_, quantization=1e-6).fit().encode(real)
    assert len(data) < len(fine)


def test_auto_quantization_names_a_column_on_no_decimal_grid(real):
    X = real.copy()
    X[5, 1] = np.pi
    coder = BitsBackCoder(VAEDensityEstimator(likelihood="gaussian", **SMALL)).fit(X)  # fit does not code
    with pytest.raises(ValueError, match=r"column 1 holds 3.14159.*no decimal grid.*round the column"):
        coder.encode(X)


def test_auto_in_a_table_codes_its_real_column_without_settings():
    df = mixed_table(150, 0)
    coder = BitsBackCoder(VAEDensityEstimator(**SMALL)).fit(df)
    data = coder.encode(df)
    assert [g[0] for g in _grid(data).values()] == [0.01]
    pd.testing.assert_frame_equal(coder.decode(data), df)


def test_a_dict_mixes_steps_and_auto(real):
    vae = VAEDensityEstimator(likelihood="gaussian", **SMALL).fit(real)
    X = real.copy()
    X[:, 0] = np.round(X[:, 0] * 20) / 20 + 0.0  # on a grid of 0.05, which no decimal step 10**-d is coarsest for
    coder = BitsBackCoder(vae, quantization={0: 0.05, 1: "auto", 2: 0.5}).fit()
    data = coder.encode(X)
    assert [g[0] for g in _grid(data).values()] == [0.05, 1e-4, 0.5]
    np.testing.assert_array_equal(coder.decode(data), X)


def test_float32_values_on_a_decimal_grid_round_trip(real):
    X = real.astype(np.float32)  # float32(0.1) is not float64 0.1: the grid is compared in float32
    coder = BitsBackCoder(VAEDensityEstimator(likelihood="gaussian", **SMALL), quantization=0.0001).fit(X)
    Y = coder.decode(coder.encode(X))
    assert Y.dtype == np.float32
    np.testing.assert_array_equal(Y, X)
    auto = BitsBackCoder(coder.estimator_).fit()
    np.testing.assert_array_equal(auto.decode(auto.encode(X)), X)


@pytest.mark.parametrize("dtype", ["float32", "Float32"])
def test_float32_dataframe_columns_of_decimals_round_trip_at_the_defaults(real, dtype):
    """A table's float32 columns are coded as the decimals they hold (the table codes are float64, in which
    float32(0.1) lies on no decimal grid); the decoded frame has the same float32 bits."""
    frame = pd.DataFrame({"x": real[:, 0], "y": real[:, 1]}).astype(dtype)
    frame["n"] = np.arange(len(frame)) % 7
    if dtype == "Float32":
        frame.loc[3, "x"] = pd.NA
    coder = BitsBackCoder(VAEDensityEstimator(**SMALL)).fit(frame)
    back = coder.decode(coder.encode(frame))
    assert back.dtypes.to_dict() == frame.dtypes.to_dict()
    pd.testing.assert_frame_equal(back, frame)
    raw = frame.astype({"x": "float64", "y": "float64"}) if dtype == "float32" else None
    if raw is not None:  # the same values widened to float64 lie on no decimal grid: refused, naming the column
        with pytest.raises(ValueError, match="column 'x'.*no decimal grid"):
            BitsBackCoder(VAEDensityEstimator(**SMALL)).fit(raw).encode(raw)


@pytest.mark.parametrize("quantization, error", [("fine", ValueError), (True, TypeError), (-0.1, ValueError),
                                                  ({"a": "coarse"}, ValueError), ([0.1], TypeError)])
def test_bad_quantization_is_refused_at_fit(real, quantization, error):
    with pytest.raises(error, match="quantization"):
        BitsBackCoder(VAEDensityEstimator(likelihood="gaussian", **SMALL), quantization=quantization).fit(real)


def test_auto_survives_save_and_load(real, tmp_path):
    coder = BitsBackCoder(VAEDensityEstimator(likelihood="gaussian", **SMALL),
                          quantization={0: "auto", 1: 0.0001, 2: "auto"}).fit(real)
    coder.save(tmp_path / "m.npz")
    loaded = BitsBackCoder.load(tmp_path / "m.npz")
    assert loaded.quantization == coder.quantization
    assert loaded.encode(real) == coder.encode(real)


@pytest.mark.parametrize("make", [sp.csr_matrix, sp.csc_array, sp.coo_matrix])
def test_sparse_input_round_trips_to_the_same_class(make):
    X = (np.random.RandomState(1).rand(90, 12) < 0.2).astype(np.uint8)
    coder = BitsBackCoder(VAEDensityEstimator(**SMALL)).fit(sp.csr_matrix(X))
    dense = coder.encode(X)
    data = coder.encode(make(X))
    Y = coder.decode(data)
    assert type(Y) is type(make(X)) and Y.dtype == X.dtype
    np.testing.assert_array_equal(Y.toarray(), X)
    assert len(data) == len(dense) + len(',"m":""') + len(type(Y).__name__)  # one header field more
    np.testing.assert_array_equal(coder.decode(dense), X)  # a dense array still decodes dense
    assert isinstance(coder.inverse_transform(coder.transform(make(X))), type(Y))


def test_wrong_shapes_get_scikit_learn_messages(real):
    coder = BitsBackCoder(VAEDensityEstimator(**SMALL)).fit(mixed_table(60, 0))
    with pytest.raises(ValueError, match="X has 2 features, but BitsBackCoder is expecting 4"):
        coder.encode(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="Reshape your data"):
        coder.encode(np.zeros(4))


@pytest.mark.parametrize("index", [pd.RangeIndex(10, 160, 3, name="row"), pd.Index(np.arange(50)[::-1] * 7),
                                   pd.Index([f"r{i}" for i in range(50)], name="id")])
def test_a_tables_index_round_trips(index):
    df = mixed_table(len(index), 2)
    df.index = index
    coder = BitsBackCoder(VAEDensityEstimator(**SMALL)).fit(mixed_table(100, 0))
    decoded = coder.decode(coder.encode(df))
    pd.testing.assert_frame_equal(decoded, df)
    assert parse(coder.encode(df.reset_index(drop=True)))[0]["index"] is None  # 0 .. n-1 costs nothing


def test_an_index_that_cannot_be_stored_is_refused_with_a_way_out():
    df = mixed_table(20, 2)
    df.index = pd.date_range("2026-01-01", periods=20)
    coder = BitsBackCoder(VAEDensityEstimator(**SMALL)).fit(mixed_table(100, 0))
    with pytest.raises(ValueError, match=r"index \(DatetimeIndex.*only int or str labels.*reset_index"):
        coder.encode(df)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.int16])
def test_an_integer_array_keeps_its_dtype_in_sample_decode_and_a_loaded_coder(dtype, tmp_path):
    X = np.random.RandomState(0).poisson(3, (120, 4)).astype(dtype)  # not 0/1: the table path
    vae = VAEDensityEstimator(**SMALL).fit(X)
    assert vae.sample(5, random_state=0).dtype == dtype
    coder = BitsBackCoder(vae).fit()
    data = coder.encode(X)
    Y = coder.decode(data)
    assert Y.dtype == dtype and np.array_equal(Y, X)
    coder.save(tmp_path / "m.npz")
    Z = BitsBackCoder.load(tmp_path / "m.npz").decode(data)
    assert Z.dtype == dtype and np.array_equal(Z, X)
