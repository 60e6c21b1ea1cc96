"""Integer columns beyond the range seen in fit: they score, sample within their dtype, and code losslessly."""

import numpy as np
import pandas as pd
import pytest

from skvae import VAEDensityEstimator
from skvae.coding import BitsBackCoder
from skvae.coding._container import parse

from _helpers import mixed_table, rewrite_header

SMALL = dict(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=15, random_state=0)


@pytest.fixture(scope="module")
def fitted():
    train = mixed_table(300, 0)
    return train, VAEDensityEstimator(**SMALL).fit(train)


def _beyond(train):
    test = mixed_table(60, 1)
    test.loc[3, "count"] = int(train["count"].max()) + 25
    test.loc[4, "count"] = int(train["count"].min()) - 3
    return test


def test_held_out_integers_beyond_the_fit_range_score(fitted):
    train, vae = fitted
    test = _beyond(train)
    scores = vae.score_samples(test)
    assert np.isfinite(scores).all()
    inside = scores[np.r_[0:3, 5:len(test)]]
    assert scores[3] < np.median(inside) and scores[4] < np.median(inside)  # rare, not impossible
    far = test.copy()
    far.loc[3, "count"] += 100
    assert vae.score_samples(far)[3] < scores[3]  # farther out, less likely


def test_integer_samples_stay_within_their_dtype():
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"small": rng.randint(0, 3, 200).astype(np.uint8), "x": rng.randn(200)})
    vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=1, random_state=0).fit(df)
    sample = vae.sample(2000, random_state=0)
    assert sample["small"].dtype == np.uint8
    # an untrained model spreads mass below 0: clipped to the dtype's 0, never wrapped to 255
    assert sample["small"].max() < 200


def test_the_coder_codes_integers_beyond_the_fit_range(fitted):
    train, vae = fitted
    coder = BitsBackCoder(vae).fit()
    test = _beyond(train)
    data = coder.encode(test)
    header = parse(data)[0]
    low, high = int(train["count"].min()) - 3, int(train["count"].max()) + 25
    assert header["integer_ranges"] == {"1": [low, high]}
    pd.testing.assert_frame_equal(coder.decode(data), test)
    # within the range seen in fit the file stores no range
    assert parse(coder.encode(train.iloc[:50]))[0]["integer_ranges"] is None


def test_a_forged_integer_range_is_refused(fitted):
    train, vae = fitted
    coder = BitsBackCoder(vae).fit()
    data = coder.encode(_beyond(train))
    narrower = rewrite_header(data, integer_ranges={"1": [2, 3]})
    with pytest.raises(ValueError, match="corrupted"):
        coder.decode(narrower)
    with pytest.raises(ValueError, match="corrupted"):
        coder.decode(rewrite_header(data, integer_ranges=[1, 2]))


def test_an_integer_column_too_wide_to_code_is_named(fitted):
    train, vae = fitted
    test = mixed_table(10, 1)
    test.loc[0, "count"] = 5_000_000
    assert np.isfinite(vae.score_samples(test)).all()
    with pytest.raises(ValueError, match=r"column 'count' spans .* more than the 1048576 integers"):
        BitsBackCoder(vae).fit().encode(test)


def test_far_outliers_get_finite_bounds_from_a_clipped_encoder_input(fitted):
    from skvae.coding._fixed_point import _INPUT_FORMATS
    from skvae.modules import AFFINE_INPUT_CLIP

    train, vae = fitted
    far = mixed_table(4, 1)
    far.loc[0, "count"] = 10**7
    far.loc[1, "size"] = 1e6
    scores = vae.score_samples(far)
    assert np.isfinite(scores).all() and (scores[:2] < scores[2:].min()).all()
    assert np.isfinite(vae.elbo_components(far).rate).all()
    assert _INPUT_FORMATS["affine"][1] == AFFINE_INPUT_CLIP  # the coder's encoder clips where the float one does


def _wide_integer_table(n, seed):
    """A 2-category column and integer columns whose spread given the latent is hundreds of units."""
    rng = np.random.RandomState(seed)
    group = rng.randint(0, 2, n)
    t = rng.randn(n)
    return pd.DataFrame({"group": pd.Categorical(np.array(["a", "b"])[group]),
                         "wide": np.round(20000 + 3000 * t + 2000 * group + 1500 * rng.randn(n)).astype(np.int64),
                         "mid": np.round(500 + 60 * t + 20 * rng.randn(n)).astype(np.int64),
                         "small": rng.poisson(3 + 2 * group)})


def test_payload_of_wide_integer_columns_is_close_to_the_negative_elbo():
    # Integer columns whose logistic scale spans more bins than the CDF table has steps per unit
    # (here about 1,000 bins), next to a one-hot input: the payload must stay near the model's -ELBO.
    # (It was 9 % above: nearest-entry CDF lookups gave many bins no mass, and the encoder's affine
    # inputs had 2**16 times coarser weights than its one-hot inputs.)
    train, test = _wide_integer_table(1500, 0), _wide_integer_table(400, 1)
    vae = VAEDensityEstimator(likelihood={"categorical": ["group"]}, latent_dim=2, hidden_layer_sizes=(32,),
                              max_epochs=40, batch_size=100, random_state=0).fit(train)
    inside = np.ones(len(test), dtype=bool)
    for col in vae.schema_.columns:
        if col.kind == "integer":
            inside &= test[col.name].between(col.low, col.high).to_numpy()
    test = test[inside].reset_index(drop=True)
    coder = BitsBackCoder(vae).fit()
    report = coder.report(test)
    pd.testing.assert_frame_equal(coder.decode(coder.encode(test)), test)
    ideal = report.negative_elbo_bits + report.overhead_bits
    assert abs(report.payload_bits - ideal) < 0.02 * ideal, (report.payload_bits / len(test), ideal / len(test))
