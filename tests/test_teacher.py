"""Training on a teacher's samples (the talk's DMaaPx): teacher=..., n_teacher_samples=... on every estimator."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity

from skvae import ReverseHalfAsleep, VAEDensityEstimator, WSAVAE
from skvae.datasets import make_sine_bernoulli

from _helpers import mixed_table

SMALL = dict(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=3, batch_size=100, random_state=0)


@pytest.fixture(scope="module")
def real():
    rng = np.random.RandomState(0)
    return rng.randn(300, 3) @ rng.randn(3, 3)


def _batches(est):
    return len(est.history_[-1, "batches"])


def test_an_unfitted_teacher_is_cloned_fitted_and_sampled(real):
    teacher = GaussianMixture(3)
    vae = VAEDensityEstimator(teacher=teacher, n_teacher_samples=5, **SMALL).fit(real)
    assert not hasattr(teacher, "means_")  # the user's object is left alone
    assert vae.teacher_.means_.shape == (3, 3)
    assert _batches(vae) == 15  # 5 x 300 teacher rows in batches of 100
    plain = VAEDensityEstimator(**SMALL).fit(real)
    assert _batches(plain) == 3 and plain.score(real) != vae.score(real)


def test_a_fitted_teacher_is_used_as_it_is_and_fits_are_reproducible(real):
    teacher = KernelDensity(bandwidth=0.5).fit(real)
    a = VAEDensityEstimator(teacher=teacher, n_teacher_samples=2, **SMALL).fit(real)
    assert a.teacher_ is teacher and _batches(a) == 6
    b = VAEDensityEstimator(teacher=teacher, n_teacher_samples=2, **SMALL).fit(real)
    np.testing.assert_array_equal(a.score_samples(real), b.score_samples(real))
    c = VAEDensityEstimator(teacher=GaussianMixture(2), **SMALL)
    np.testing.assert_array_equal(clone(c).fit(real).score_samples(real), clone(c).fit(real).score_samples(real))


def test_a_skvae_teacher_on_binary_data_and_a_table():
    X = make_sine_bernoulli(200, random_state=0)
    teacher = VAEDensityEstimator(latent_dim=4, hidden_layer_sizes=(32,), max_epochs=5, random_state=0).fit(X)
    student = VAEDensityEstimator(teacher=teacher, **SMALL).fit(X)
    assert student.likelihood_.name == "bernoulli" and _batches(student) == 20
    table = mixed_table(200, 0)
    tutor = VAEDensityEstimator(**SMALL).fit(table)
    pupil = VAEDensityEstimator(teacher=tutor, n_teacher_samples=3, **SMALL).fit(table)
    assert pupil.schema_.spec == tutor.schema_.spec and list(pupil.feature_names_in_) == list(table.columns)
    assert isinstance(pupil.sample(3, random_state=0), pd.DataFrame)


@pytest.mark.parametrize("make", [
    lambda **kw: WSAVAE(warmup_epochs=1, **kw),
    lambda **kw: ReverseHalfAsleep(rha_epochs=2, **kw),
])
def test_every_training_scheme_takes_a_teacher(real, make):
    est = make(teacher=GaussianMixture(2), n_teacher_samples=2, **SMALL).fit(real)
    assert est.get_params()["n_teacher_samples"] == 2 and _batches(est) == 6
    assert np.isfinite(est.score(real))


def test_bad_teachers_are_refused_by_name(real):
    with pytest.raises(TypeError, match="teacher must be a density estimator with a sample method"):
        VAEDensityEstimator(teacher="gmm", **SMALL).fit(real)
    with pytest.raises(ValueError, match="n_teacher_samples"):
        VAEDensityEstimator(teacher=GaussianMixture(2), n_teacher_samples=0, **SMALL).fit(real)
    X = make_sine_bernoulli(100, random_state=0)
    with pytest.raises(ValueError, match="the teacher's samples are not in the data's support.*0/1"):
        VAEDensityEstimator(teacher=GaussianMixture(2), **SMALL).fit(X)  # real-valued draws for 0/1 data
    counts = pd.DataFrame({"n": np.random.RandomState(0).poisson(3, 100), "x": np.random.RandomState(1).randn(100)})
    with pytest.raises(ValueError, match="not in the data's support.*column 'n' holds .* not an integer"):
        VAEDensityEstimator(teacher=GaussianMixture(2), **SMALL).fit(counts)
